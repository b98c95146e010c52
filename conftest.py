"""Repository-wide pytest set-up for the chapter notebooks that ``pytest --nbval-lax`` executes.

- Their kernels run on the fixed floating-point path of ``book/_ext/gdlab_fixed_float.py``, so that their checked
  outputs do not depend on the CPU's SIMD extensions. Kernels are started after this file is imported and inherit its
  environment.
- nbval's cell timeout and kernel start-up timeout are the book's cell timeout (``execute: timeout`` in
  ``_config.yml``, read by ``book/_ext/gdlab_execution.py``), unless given on the command line: a stalled kernel fails
  its cell (test ``book/NN_name.ipynb::Cell K``, "Timeout of ... seconds exceeded") within that bound.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "book" / "_ext"))
import gdlab_execution  # noqa: E402
import gdlab_fixed_float  # noqa: E402

sys.path.pop(0)
gdlab_fixed_float.apply()


def pytest_configure(config):
    given = " ".join([*map(str, config.invocation_params.args), os.environ.get("PYTEST_ADDOPTS", "")])
    for option in ("nbval_cell_timeout", "nbval_kernel_startup_timeout"):
        if hasattr(config.option, option) and f"--{option.replace('_', '-')}" not in given:
            setattr(config.option, option, float(gdlab_execution.cell_timeout()))
