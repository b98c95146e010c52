"""Repository-wide pytest set-up: the chapter notebooks that ``pytest --nbval-lax`` executes run on kernels with the
fixed floating-point path of ``book/_ext/gdlab_fixed_float.py``, so that their checked outputs do not depend on the CPU's
SIMD extensions. Kernels are started after this file is imported and inherit its environment."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "book" / "_ext"))
import gdlab_fixed_float  # noqa: E402

sys.path.pop(0)
gdlab_fixed_float.apply()
