"""Repository-wide pytest set-up for the chapter notebooks that ``pytest --nbval-lax`` executes: nbval's cell timeout
and kernel start-up timeout are the book's cell timeout (``execute: timeout`` in ``_config.yml``, read by
``book/_ext/gdlab_execution.py``), unless given on the command line, so that a stalled kernel fails its cell (test
``book/NN_name.ipynb::Cell K``, "Timeout of ... seconds exceeded") within that bound. Nothing here changes the
floating-point path: the checked outputs hold on any (``tests/test_float_paths.py``)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "book" / "_ext"))
import gdlab_execution  # noqa: E402

sys.path.pop(0)


def pytest_configure(config):
    given = " ".join([*map(str, config.invocation_params.args), os.environ.get("PYTEST_ADDOPTS", "")])
    for option in ("nbval_cell_timeout", "nbval_kernel_startup_timeout"):
        if hasattr(config.option, option) and f"--{option.replace('_', '-')}" not in given:
            setattr(config.option, option, float(gdlab_execution.cell_timeout()))
