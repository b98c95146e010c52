"""Run the chapter notebooks in the current environment and compare their checked outputs with the stored ones.

    python scripts/checked_outputs.py run OUT.json [book/NN_name.ipynb ...]    # default: every book/*.ipynb
    python scripts/checked_outputs.py report DIR [DIR ...] [--out report.txt]

``run`` executes each notebook on a fresh kernel of the interpreter that runs the script (nbval's
``--nbval-current-env`` kernel), with ``book/`` as working directory, as ``pytest --nbval-lax`` does, and writes to
OUT.json: the versions of the numerical stack and its BLAS, each notebook's run time, cells that raised or wrote to
stderr, and for every checked cell (tagged ``nbval-check-output``, :func:`store_outputs.is_checked`) the stored and
the new output in the form nbval compares (:func:`comparable`) and whether they are equal. Cells that raise do not
stop a notebook (as with nbval, every cell runs). Exit status 1 if a cell raised or wrote to stderr (which fails the
book build) or a checked output differs.

``report`` reads what ``.ci/environments`` leaves in each environment's folder (``checked.json`` from ``run``,
``tests.log``, ``timings.txt``) and prints one table of versions, times and results per environment, then every
checked cell whose output differs from the stored one in some environment, with both texts and the first line that
differs. It needs only the standard library.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: What nbval leaves out of a comparison (``IPyNbFile.skip_compare`` in nbval/plugin.py, without ``--nbdime``):
#: output keys and MIME types. Everything else (stdout, stderr, text/plain, text/html, ename, evalue, ...) must be equal.
SKIP_COMPARE = ("metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
                "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg")

#: The versions recorded for each environment (distribution names).
PACKAGES = ("numpy", "scipy", "matplotlib", "contourpy", "ipywidgets", "threadpoolctl", "pillow", "ipykernel",
            "pytest", "nbval", "hypothesis")


# --- run (needs nbformat, nbclient, nbval: the test tools) -----------------------------------------------------------

def comparable(outputs) -> dict[str, list]:
    """``outputs`` (a code cell's) as nbval compares them: streams merged by name (``\\r`` and ``\\b`` applied), then
    ``{key: [value, ...]}`` over every output key and MIME type not in :data:`SKIP_COMPARE`. Two cells pass nbval's
    check exactly when these are equal (no sanitizers are configured)."""
    from nbval.plugin import coalesce_streams, transform_streams_for_comparison

    flat = defaultdict(list)
    for out in transform_streams_for_comparison(coalesce_streams(copy.deepcopy(outputs))):
        for key, value in out.items():
            if key in SKIP_COMPARE:
                continue
            if key == "data":
                for mime, data in value.items():
                    if mime not in SKIP_COMPARE:
                        flat[mime].append(data)
            else:
                flat[key].append(value)
    return dict(flat)


def versions() -> dict:
    """Python, :data:`PACKAGES` and the BLAS libraries that numpy and scipy load (threadpoolctl, if installed)."""
    import os
    import platform
    from importlib import metadata

    found = {"python": platform.python_version(),
             "environment": {k: v for k, v in os.environ.items() if re.match(r"(OPENBLAS|NPY|OMP|MKL)_", k)}}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    import numpy
    import scipy.linalg  # noqa: F401  (loads scipy's own BLAS)

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        found["blas"] = []
    else:
        found["blas"] = [{k: lib.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "filepath")}
                         for lib in threadpool_info() if lib.get("user_api") == "blas"]
    try:
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        found["numpy_blas_build"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # numpy < 1.26 has no mode="dicts"
        found["numpy_blas_build"] = None
    return found


def _kernel_manager_class():
    from jupyter_client.manager import AsyncKernelManager
    from nbval.kernel import NbvalKernelspecManager

    class CurrentEnvKernelManager(AsyncKernelManager):
        """A kernel of this script's interpreter whatever kernelspecs the machine has (nbval's current-env kernel)."""

        def __init__(self, **kwargs):
            kwargs.setdefault("kernel_spec_manager", NbvalKernelspecManager())
            super().__init__(**kwargs)

    return CurrentEnvKernelManager


def run_notebook(path: Path) -> dict:
    """Execute ``path`` (every cell, errors kept as outputs) within the book's cell timeout
    (``gdlab_execution.execute_notebook``) and compare its checked cells with the stored outputs."""
    import nbformat
    from nbval.kernel import CURRENT_ENV_KERNEL_NAME

    sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "book" / "_ext")]
    from gdlab_execution import execute_notebook
    from store_outputs import is_checked

    nb = nbformat.read(path, as_version=4)
    stored = {i: comparable(cell.outputs) for i, cell in enumerate(nb.cells) if is_checked(cell)}
    start = time.perf_counter()
    execute_notebook(nb, str(path), path.parent, kernel_name=CURRENT_ENV_KERNEL_NAME,
                     kernel_manager_class=_kernel_manager_class(), allow_errors=True, record_timing=False)
    seconds = time.perf_counter() - start
    errors, stderr, checked = [], [], []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            if out.output_type == "error":
                errors.append({"index": i, "id": cell.get("id"), "error": f"{out.ename}: {out.evalue}"})
            elif out.output_type == "stream" and out.name == "stderr":
                stderr.append({"index": i, "id": cell.get("id"), "text": out.text})
        if i in stored:
            got = comparable(cell.outputs)
            checked.append({"index": i, "id": cell.get("id"), "stored": stored[i], "got": got,
                            "equal": got == stored[i]})
    return {"seconds": round(seconds, 1), "errors": errors, "stderr": stderr, "checked": checked}


def run(out: Path, notebooks: list[Path]) -> int:
    result = {"versions": versions(), "executable": sys.executable, "notebooks": {}}
    print("versions:", json.dumps(result["versions"]), flush=True)
    for path in notebooks:
        nb = run_notebook(path)
        result["notebooks"][path.name] = nb
        differ = [c for c in nb["checked"] if not c["equal"]]
        print(f"{path.name}: {nb['seconds']:6.1f} s, {len(nb['checked'])} checked cells, {len(differ)} differ, "
              f"{len(nb['errors'])} errors, {len(nb['stderr'])} cells with stderr", flush=True)
        for c in differ:
            print(f"  differs: cell {c['index']} ({c['id']}): {first_difference(c['stored'], c['got'])}")
        for e in nb["errors"]:
            print(f"  error: cell {e['index']} ({e['id']}): {e['error']}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    bad = any(nb["errors"] or nb["stderr"] or not all(c["equal"] for c in nb["checked"])
              for nb in result["notebooks"].values())
    return 1 if bad else 0


# --- report (standard library only) ----------------------------------------------------------------------------------

def text(flat: dict[str, list]) -> str:
    """A :func:`comparable` output as text: the stdout alone as it is, else each key's values under a ``[key]`` line."""
    if set(flat) == {"stdout"}:
        return "".join(map(str, flat["stdout"]))
    return "".join(f"[{key}]\n" + "".join(map(str, values)).rstrip("\n") + "\n" for key, values in sorted(flat.items()))


def first_difference(stored: dict[str, list], got: dict[str, list]) -> str:
    """Where two :func:`comparable` outputs first differ: a key only one has, or the first differing line of a key's
    values, as ``stdout line N: 'stored' -> 'got'``."""
    for key in sorted(set(stored) | set(got)):
        if key not in got or key not in stored:
            return f"{key} only in the {'stored' if key in stored else 'new'} output"
        a, b = "".join(map(str, stored[key])).splitlines(), "".join(map(str, got[key])).splitlines()
        for n in range(max(len(a), len(b))):
            left, right = (a[n] if n < len(a) else "<none>"), (b[n] if n < len(b) else "<none>")
            if left != right:
                return f"{key} line {n + 1}: {left!r} -> {right!r}"
        if stored[key] != got[key]:
            return f"{key}: same lines, split into outputs differently or whitespace at the end"
    return "equal"


def _timings(folder: Path) -> dict[str, str]:
    path = folder / "timings.txt"
    lines = path.read_text().splitlines() if path.is_file() else []
    return dict(line.split(" ", 1) for line in lines if " " in line)


def _test_summary(folder: Path) -> str:
    """pytest's last line (``250 passed, 12 skipped, 3 warnings in 100.00s``), or why there is none."""
    log = folder / "tests.log"
    if not log.is_file():
        return "not run"
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if re.match(r"^=+ .* in [0-9.]+s", ln)]
    return lines[-1].strip("= ") if lines else "no pytest summary (see tests.log)"


def _blas(v: dict) -> str:
    libs = v.get("blas") or []
    return "; ".join(f"{b['internal_api']} {b['version']} {b['architecture']} ({Path(b['filepath'] or '').parent.name})"
                     for b in libs) or "?"


def report(folders: list[Path]) -> tuple[str, bool]:
    envs = {}
    for folder in folders:
        checked = folder / "checked.json"
        envs[folder.name] = {"timings": _timings(folder), "tests": _test_summary(folder),
                             "run": json.loads(checked.read_text()) if checked.is_file() else None}
    names = list(envs)
    lines = ["# gdlab in three environments (bash .ci/environments)", ""]

    def row(label, values):
        lines.append(f"| {label} | " + " | ".join(values) + " |")

    row("", names)
    lines.append("|---|" + "---|" * len(names))
    def versions_row(label, show):
        row(label, [show(env["run"]["versions"]) if env["run"] else "-" for env in envs.values()])

    row("status", [env["timings"].get("status", "not run") for env in envs.values()])
    for key in ("python", *PACKAGES):
        versions_row(key, lambda v, key=key: str(v.get(key)))
    versions_row("BLAS (threadpoolctl)", _blas)
    versions_row("numpy built with", lambda v: str(v.get("numpy_blas_build")))
    versions_row("OPENBLAS_*, NPY_*, OMP_*, MKL_* set", lambda v: " ".join(f"{k}={x}" for k, x in v["environment"].items())
                 or "none")
    for key, label in (("install_s", "install (s)"), ("tests_s", "tests (s)"), ("notebooks_s", "notebooks (s)")):
        row(label, [env["timings"].get(key, "-") for env in envs.values()])
    row("tests", [env["tests"] for env in envs.values()])
    row("tests left out", [env["timings"].get("ignored", "-") or "none" for env in envs.values()])

    def count(env, what):
        if not env["run"]:
            return "-"
        nbs = env["run"]["notebooks"].values()
        if what == "checked":
            total = sum(len(nb["checked"]) for nb in nbs)
            return f"{sum(c['equal'] for nb in nbs for c in nb['checked'])} of {total} equal"
        return str(sum(len(nb[what]) for nb in nbs))

    row("checked outputs", [count(env, "checked") for env in envs.values()])
    row("cells raising", [count(env, "errors") for env in envs.values()])
    row("cells writing to stderr", [count(env, "stderr") for env in envs.values()])

    # Every checked cell that differs somewhere, once, with each environment's verdict and text.
    cells: dict[tuple[str, int], dict] = {}
    for name, env in envs.items():
        for nb_name, nb in (env["run"] or {}).get("notebooks", {}).items():
            for c in nb["checked"]:
                cells.setdefault((nb_name, c["index"]), {"id": c["id"], "stored": c["stored"], "by_env": {}})
                cells[(nb_name, c["index"])]["by_env"][name] = c
    differing = {key: cell for key, cell in sorted(cells.items())
                 if any(not c["equal"] for c in cell["by_env"].values())}
    lines += ["", f"## Checked cells whose output differs from the stored one ({len(differing)} of {len(cells)})", ""]
    if differing:
        row("notebook, cell (id)", names)
        lines.append("|---|" + "---|" * len(names))
        for (nb_name, index), cell in differing.items():
            row(f"{nb_name} {index} ({cell['id']})",
                ["equal" if env_cell["equal"] else "DIFFERS" if env_cell else "-"
                 for env_cell in (cell["by_env"].get(n) for n in names)])
        for (nb_name, index), cell in differing.items():
            stored = text(cell["stored"])
            lines += ["", f"### {nb_name}, cell {index} ({cell['id']})", "", "stored:", "```", stored.rstrip("\n"), "```"]
            for name in names:
                env_cell = cell["by_env"].get(name)
                if env_cell and not env_cell["equal"]:
                    lines += [f"{name}: {first_difference(cell['stored'], env_cell['got'])}", "```",
                              text(env_cell["got"]).rstrip("\n"), "```"]
    for what, title in (("errors", "Cells that raised"), ("stderr", "Cells that wrote to stderr")):
        found = [(name, nb_name, e) for name, env in envs.items()
                 for nb_name, nb in (env["run"] or {}).get("notebooks", {}).items() for e in nb[what]]
        if found:
            lines += ["", f"## {title}", ""]
            lines += [f"- {name}: {nb_name} cell {e['index']} ({e['id']}): " + (e.get("error") or e["text"].strip())
                      for name, nb_name, e in found]
    ok = all(env["timings"].get("status") == "passed" for env in envs.values()) and not differing
    lines += ["", "All environments passed." if ok else "FAILED: see above."]
    return "\n".join(lines) + "\n", ok


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="execute notebooks here and write their checked outputs to OUT.json")
    p_run.add_argument("out", type=Path)
    p_run.add_argument("notebooks", type=Path, nargs="*")
    p_report = sub.add_parser("report", help="one report over environment folders left by .ci/environments")
    p_report.add_argument("folders", type=Path, nargs="+")
    p_report.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.out, [p.resolve() for p in args.notebooks] or sorted((ROOT / "book").glob("*.ipynb")))
    table, ok = report(args.folders)
    print(table, end="")
    if args.out:
        args.out.write_text(table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
