"""One floating-point path for the notebooks' stored outputs, whatever x86-64 machine runs them.

The cells tagged ``nbval-check-output`` are compared, character for character, with outputs stored in the
notebooks. Some of the numbers they print are round-off (a gradient error of ``4e-10``, a loss of ``2e-32``) or come
out of iterations that amplify round-off (gradient descent on a ReLU loss). Those digits depend on the SIMD kernels
that numpy and OpenBLAS pick at run time for the CPU: on an AVX-512 machine (OpenBLAS "SkylakeX", numpy's
AVX512_SPR loops) eight checked cells of chapters 5-7 printed other digits than on the AVX2 machine that stored them,
and one ReLU sweep of chapter 5 ended at another point. Both libraries can be told to use their AVX2 kernels on any
CPU that has AVX2 and FMA, which every x86-64 machine of the last decade does:

* ``OPENBLAS_CORETYPE=Haswell``: OpenBLAS's AVX2 kernels;
* ``NPY_ENABLE_CPU_FEATURES=X86_V3``: numpy dispatches nothing beyond x86-64-v3 (AVX2, FMA3).

These are set in the environment of every kernel that ``pytest --nbval-lax`` starts (``conftest.py`` at the root),
of ``scripts/store_outputs.py``, which writes the stored outputs, and, as a Sphinx extension, of the kernels that
execute the notebooks for the book build, so that the rendered book shows the stored numbers. Elsewhere (other CPUs,
a reader's own Jupyter) nothing is set, and the numbers may differ in their last digits. Variables already set are
left alone.
"""

from __future__ import annotations

import os
import platform

FIXED = {"OPENBLAS_CORETYPE": "Haswell", "NPY_ENABLE_CPU_FEATURES": "X86_V3"}


def _has_avx2_fma() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx2" in flags and "fma" in flags


def apply(environ=os.environ) -> dict[str, str]:
    """Set the variables of ``FIXED`` in ``environ`` (not already set ones) on an x86-64 Linux CPU with AVX2 and FMA;
    return what is set now."""
    if platform.machine() in ("x86_64", "AMD64") and _has_avx2_fma():
        for key, value in FIXED.items():
            environ.setdefault(key, value)
    return {key: environ[key] for key in FIXED if key in environ}


def setup(app) -> dict:
    """Sphinx extension: fix the floating-point path before any notebook of the build is executed."""
    apply()
    return {"parallel_read_safe": True, "parallel_write_safe": True}
