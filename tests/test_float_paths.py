"""The chapters' checked outputs on each floating-point path of an x86-64 CPU (issue 20).

The last digits of a float64 computation depend on the SIMD kernels that numpy and OpenBLAS pick for the CPU at run
time (AVX2 or AVX-512 loops and GEMM kernels sum in other orders). The book prints round-off as bounds and conclusions
at the precision they need, so that every checked output (the cells tagged ``nbval-check-output``) is the same on any
path; nothing pins a path any more. ``pytest tests book --nbval-lax`` checks the notebooks on the machine's own path;
this module forces each of the two paths of x86-64 machines in turn and executes every chapter notebook there:

* ``avx2``: OpenBLAS's Haswell kernels, numpy's dispatch capped at x86-64-v3 (AVX2, FMA3);
* ``avx512``: OpenBLAS's SkylakeX kernels and numpy's AVX-512 loops, on a CPU that has AVX-512.

The first test shows that the two paths really are different arithmetic (their ``exp`` differs in the last bits on a
CPU with AVX-512), so that passing on both is not passing twice on the same path.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Environment variables that force each path: OpenBLAS's core type, and numpy's dispatch targets (numpy >= 2.3 names;
#: the list must name every group: ``X86_V3`` alone is not "up to x86-64-v3"). The AVX-512 path leaves numpy's
#: dispatch to numpy, which takes every AVX-512 loop the CPU has.
PATHS = {
    "avx2": {"OPENBLAS_CORETYPE": "Haswell", "NPY_ENABLE_CPU_FEATURES": "X86_V2 X86_V3"},
    "avx512": {"OPENBLAS_CORETYPE": "SkylakeX"},
}
VARIABLES = ("OPENBLAS_CORETYPE", "NPY_ENABLE_CPU_FEATURES", "NPY_DISABLE_CPU_FEATURES")

#: CPU flags (``/proc/cpuinfo``) each path needs.
NEEDS = {"avx2": ("avx2", "fma"), "avx512": ("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl")}

#: Prints, as JSON, OpenBLAS's core type and a digest of ``exp`` over 10^4 fixed arguments.
PROBE = """
import hashlib, json
import numpy as np, threadpoolctl
blas = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"]
x = np.random.default_rng(0).standard_normal(10_000)
print(json.dumps({"coretype": blas[0]["architecture"] if blas else None,
                  "exp": hashlib.sha256(np.exp(x).tobytes()).hexdigest()}))
"""


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return set(next((line for line in f if line.startswith("flags")), "").split())
    except OSError:
        return set()


def path_env(path: str) -> dict[str, str]:
    """The environment of a process on ``path``: this one's, with the path's variables (and no others of theirs)."""
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    return env | PATHS[path]


def skip_unless_available(path: str) -> None:
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip(f"the {path} path exists on x86-64 CPUs only (this is {platform.machine()})")
    missing = [flag for flag in NEEDS[path] if flag not in cpu_flags()]
    if missing:
        pytest.skip(f"this CPU cannot run the {path} path (no {', '.join(missing)})")


def probe(path: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE], env=path_env(path), capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize("path", sorted(PATHS))
def test_each_path_is_in_effect(path):
    """OpenBLAS runs the path's kernels; on a CPU with AVX-512 the two paths' ``exp`` differ in some last bits."""
    skip_unless_available(path)
    seen = probe(path)
    assert seen["coretype"] == PATHS[path]["OPENBLAS_CORETYPE"], seen
    if path == "avx512":
        assert seen["exp"] != probe("avx2")["exp"], "numpy's exp is bit-identical on both paths: dispatch not forced"


def run_nbval(target: str, path: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``pytest TARGET --nbval-lax`` in a fresh process on ``path``."""
    return subprocess.run([sys.executable, "-m", "pytest", target, "--nbval-lax", "-q", "-p", "no:cacheprovider"],
                          cwd=cwd, env=path_env(path), capture_output=True, text=True, timeout=1800)


@pytest.mark.parametrize("path", sorted(PATHS))
def test_checked_outputs_on_path(path):
    """Every chapter notebook, executed by nbval on this path, prints its checked outputs exactly as stored."""
    skip_unless_available(path)
    done = run_nbval("book", path)
    tail = "\n".join(done.stdout.splitlines()[-40:])
    assert done.returncode == 0, f"checked outputs differ on the {path} path:\n{tail}"


def test_power_a_round_off_value_fails_on_the_other_path(tmp_path, monkeypatch):
    """Power test: a checked cell that prints round-off as a value (the largest relative error of numpy's ``exp``
    over 10^4 arguments, 1.1e-16 on one path and 1.3e-16 on the other) passes nbval on the path that stored it and
    fails on the other, so the test above would catch such an output."""
    skip_unless_available("avx512")
    nbformat = pytest.importorskip("nbformat")
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    from gdlab_execution import execute_notebook

    cell = nbformat.v4.new_code_cell("import numpy as np\n"
                                     "x = np.random.default_rng(0).standard_normal(10_000)\n"
                                     "exact = np.exp(x.astype(np.longdouble))\n"
                                     "print(f'{float(np.max(np.abs(np.exp(x) - exact) / exact)):.1e}')")
    cell.metadata["tags"] = ["nbval-check-output"]
    nb = nbformat.v4.new_notebook(cells=[cell])
    for key in VARIABLES:  # the kernel inherits this environment: the avx2 path's
        monkeypatch.delenv(key, raising=False)
    for key, value in PATHS["avx2"].items():
        monkeypatch.setenv(key, value)
    execute_notebook(nb, "round_off.ipynb", tmp_path)
    nbformat.write(nb, tmp_path / "round_off.ipynb")
    assert run_nbval("round_off.ipynb", "avx2", tmp_path).returncode == 0
    failed = run_nbval("round_off.ipynb", "avx512", tmp_path)
    assert failed.returncode != 0 and "outputs differ" in failed.stdout, failed.stdout[-2000:]
