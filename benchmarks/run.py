"""Measure the book's performance budgets on this machine and print them as a markdown table.

The budgets (see README.md, "Budgets"):

- clean build of the whole book, executing every notebook: under 90 s; no-change rebuild: under 10 s;
- each chapter notebook, executed on a fresh kernel: under 20 s;
- each explorer callback at its default settings (``Explorer.frame``: compute, redraw and the PNG that the notebook
  shows, with the Agg backend): median under 50 ms, 95th percentile under 100 ms; and along a seeded random walk of
  single control moves over the controls' whole ranges (what a reader does; no repeated settings, so no cache
  helps): 95th percentile under 100 ms;
- library kernels with their own budget: the chapter-4 Gram matrix (n = 200, d = 10, m = 1e4) under 1 s;
- what a reader waits for, in Chromium (only with ``--only lab`` / ``--only page``; each runs a script of this
  folder): in Jupyter Lab, control change to new figure painted, median under 100 ms and p95 under 200 ms
  (``lab_latency.py``); on the web page without a kernel, p95 under 50 ms for a prefetched state and 150 ms for
  one loaded on demand, and at most 300 KB more on the page's first load (``page_latency.py``);
- a chapter page's cold load in Chromium (only with ``--only load``): first paint under 0.5 s, math typeset and
  network idle under 1.5 s, under 1.5 MB transferred, medians of 3 loads (``page_load.py``).

Explorers are found through the convention of ``gdlab.widgets``: ``EXPLORERS`` maps a name to an object with a
``frame`` (or ``update``) callable and a ``defaults`` dict.

Run it with the project's interpreter, from anywhere::

    .venv/bin/python benchmarks/run.py                 # everything (the clean build deletes _build)
    .venv/bin/python benchmarks/run.py --skip-build    # notebooks, explorers and library kernels
    .venv/bin/python benchmarks/run.py --only explorers --calls 50 --json /tmp/bench.json

The exit status is 1 if a measurement exceeds its budget or fails, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"

BUILD_BUDGET_S = 90.0
REBUILD_BUDGET_S = 10.0
NOTEBOOK_BUDGET_S = 20.0
GRAM_BUDGET_S = 1.0  # issue 5: the empirical NTK Gram matrix for n = 200, d = 10, m = 1e4, "well under a second"
EXPLORER_MEDIAN_BUDGET_MS = 50.0
EXPLORER_P95_BUDGET_MS = 100.0
WARMUP_CALLS = 2


@dataclass(frozen=True)
class Row:
    """One line of the report: what was measured, the result, the budget and the verdict."""

    benchmark: str
    measured: str
    budget: str
    status: str  # "ok", "OVER", "failed" or "n/a"
    note: str = ""


def jupyter_book_executable() -> str:
    """The ``jupyter-book`` script next to the running interpreter, else the first one on PATH."""
    local = Path(sys.executable).parent / "jupyter-book"
    if local.exists():
        return str(local)
    found = shutil.which("jupyter-book")
    if found is None:
        raise FileNotFoundError("jupyter-book is not installed in this environment")
    return found


def timed_command(args: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``args`` in the repository root; return the wall time in seconds and the finished process."""
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, proc


def seconds_row(name: str, seconds: float, budget_s: float, note: str = "") -> Row:
    """A row for a wall-time measurement against a budget in seconds."""
    status = "ok" if seconds <= budget_s else "OVER"
    return Row(name, f"{seconds:.1f} s", f"< {budget_s:g} s", status, note)


def report_failure(name: str, proc: subprocess.CompletedProcess[str]) -> Row:
    """Print the end of a failed command's output to stderr and return a 'failed' row."""
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-30:]
    print(f"--- {name} failed (exit {proc.returncode}); last lines:", *tail, sep="\n", file=sys.stderr)
    return Row(name, "-", "", "failed", f"exit status {proc.returncode}")


def bench_build() -> list[Row]:
    """Clean build (``jupyter-book clean . --all`` then ``build .``) and a no-change rebuild."""
    jb = jupyter_book_executable()
    _, proc = timed_command([jb, "clean", ".", "--all"])
    if proc.returncode != 0:
        return [report_failure("clean", proc)]
    rows = []
    for name, budget in (("clean build", BUILD_BUDGET_S), ("no-change rebuild", REBUILD_BUDGET_S)):
        seconds, proc = timed_command([jb, "build", "."])
        if proc.returncode != 0:
            return [*rows, report_failure(name, proc)]
        rows.append(seconds_row(name, seconds, budget))
    return rows


def execute_notebook(path: Path) -> float:
    """Execute one notebook on a fresh kernel, with the notebook's folder as working directory; seconds. A stalled
    kernel fails after the cell timeout of ``book/_ext/gdlab_execution.py``."""
    import nbformat

    sys.path.insert(0, str(BOOK / "_ext"))
    from gdlab_execution import execute_notebook as execute

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    execute(nb, path.name, path.parent)
    return time.perf_counter() - start


def bench_library() -> list[Row]:
    """Library kernels with a budget of their own: the chapter-4 Gram matrix ``gdlab.ntk.gram`` for n = 200 inputs in
    R^10 and width m = 1e4 (median of 5 runs after one warm-up)."""
    try:
        from gdlab import nets, ntk
    except ImportError as err:
        return [Row("gram n=200 d=10 m=1e4", "-", f"< {GRAM_BUDGET_S:g} s", "n/a", f"cannot import gdlab.ntk ({err})")]
    X = ntk.sphere_inputs(200, 10, seed=0)
    W, _ = nets.du_init(10_000, 10, seed=1)
    ntk.gram(W, X)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        ntk.gram(W, X)
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times))
    status = "ok" if seconds <= GRAM_BUDGET_S else "OVER"
    return [Row("gram n=200 d=10 m=1e4 (ntk.gram)", f"{1e3 * seconds:.1f} ms", f"< {GRAM_BUDGET_S:g} s", status,
                "median of 5")]


def bench_notebooks() -> list[Row]:
    """Wall time of every ``book/*.ipynb``, each on its own fresh kernel (kernel start-up included)."""
    paths = sorted(BOOK.glob("*.ipynb"))
    if not paths:
        return [Row("notebooks", "-", f"< {NOTEBOOK_BUDGET_S:g} s each", "n/a", "no book/*.ipynb found")]
    rows = []
    for path in paths:
        name = f"notebook {path.name}"
        try:
            rows.append(seconds_row(name, execute_notebook(path), NOTEBOOK_BUDGET_S))
        except Exception as err:  # a failing cell: report it and go on with the other notebooks
            rows.append(Row(name, "-", f"< {NOTEBOOK_BUDGET_S:g} s", "failed", type(err.__cause__ or err).__name__))
    return rows


def load_explorers() -> tuple[dict[str, object], str]:
    """``gdlab.widgets.EXPLORERS`` (or an empty dict) and a note saying why it is empty."""
    try:
        import gdlab.widgets as widgets
    except ImportError as err:
        return {}, f"cannot import gdlab.widgets ({err})"
    explorers = getattr(widgets, "EXPLORERS", None)
    if not explorers:
        return {}, "gdlab.widgets defines no EXPLORERS yet"
    return dict(explorers), ""


def control_values(widget, rng: np.random.Generator):
    """A random value the control ``widget`` can take: an option of a dropdown, a point of a slider's grid (a log
    slider's grid is in the exponent)."""
    options = getattr(widget, "options", None)
    if options is not None:
        labels = list(options)
        choice = labels[rng.integers(len(labels))]
        return choice[1] if isinstance(choice, tuple) else choice
    lo, hi, step = widget.min, widget.max, widget.step
    n_points = int(round((hi - lo) / step))
    value = lo + step * rng.integers(n_points + 1)
    if hasattr(widget, "base"):  # FloatLogSlider: min, max, step are exponents
        return float(widget.base ** value)
    return type(widget.value)(value)


def random_moves(explorer, calls: int, seed: int = 0) -> list[dict]:
    """Settings for ``calls`` callbacks as a reader produces them: start at the defaults, then move one randomly chosen
    control to a random position of its range at each call (seeded, so runs are comparable)."""
    rng = np.random.default_rng(seed)
    controls = explorer.controls()
    settings = dict(explorer.defaults)
    sequence = []
    names = sorted(controls)
    for _ in range(calls):
        name = names[rng.integers(len(names))]
        settings = {**settings, name: control_values(controls[name], rng)}
        sequence.append(settings)
    return sequence


def time_callback(update: Callable[..., object], settings: list[dict]) -> np.ndarray:
    """Milliseconds for one run of update + draw + close per entry of ``settings``, after WARMUP_CALLS untimed runs at
    the first entry. Settings that the explorer rejects (``ValueError``, shown as a message in the notebook) are timed
    too: the reader waits for the message as well."""
    import matplotlib.pyplot as plt

    def once(kwargs: dict) -> None:
        try:
            result = update(**kwargs)
        except ValueError:
            return
        if hasattr(result, "canvas"):  # a Figure: draw it (a Frame's PNG is drawn already)
            result.canvas.draw()
            plt.close(result)

    for _ in range(WARMUP_CALLS):
        once(settings[0])
    times = np.empty(len(settings))
    for i, kwargs in enumerate(settings):
        start = time.perf_counter()
        once(kwargs)
        times[i] = time.perf_counter() - start
    return 1e3 * times


def explorer_row(name: str, times_ms: np.ndarray, how: str) -> Row:
    """A row for one explorer. At the default settings (``how == "defaults"``) both budgets apply: median and 95th
    percentile. Along random moves only the 95th-percentile budget applies (the median budget is set for the
    defaults); the median is reported for information."""
    median, p95 = np.median(times_ms), np.percentile(times_ms, 95)
    ok = p95 <= EXPLORER_P95_BUDGET_MS and (how != "defaults" or median <= EXPLORER_MEDIAN_BUDGET_MS)
    budget = (f"< {EXPLORER_MEDIAN_BUDGET_MS:g} ms, < {EXPLORER_P95_BUDGET_MS:g} ms" if how == "defaults"
              else f"p95 < {EXPLORER_P95_BUDGET_MS:g} ms")
    return Row(f"explorer {name}", f"median {median:.1f} ms, p95 {p95:.1f} ms", budget, "ok" if ok else "OVER",
               f"{times_ms.size} calls, {how}")


def bench_explorers(calls: int) -> list[Row]:
    """Time every registered explorer callback with the Agg backend, twice: repeated at its default settings, and along a
    seeded random walk of single control moves over the controls' whole ranges (:func:`random_moves`), which
    defeats any caching of repeated settings and visits the expensive corners."""
    import matplotlib

    matplotlib.use("Agg")
    explorers, why_empty = load_explorers()
    if not explorers:
        budget = f"< {EXPLORER_MEDIAN_BUDGET_MS:g} ms, < {EXPLORER_P95_BUDGET_MS:g} ms"
        return [Row("explorers", "-", budget, "n/a", why_empty)]
    rows = []
    for name, explorer in sorted(explorers.items()):
        for how, settings in (("defaults", lambda e=explorer: [dict(e.defaults)] * calls),
                              ("random moves", lambda e=explorer: random_moves(e, calls))):
            try:
                times_ms = time_callback(getattr(explorer, "frame", explorer.update), settings())
            except Exception as err:  # report a broken explorer and go on with the others
                rows.append(Row(f"explorer {name}", "-", "", "failed", f"{how}: {type(err).__name__}: {err}"))
                continue
            rows.append(explorer_row(name, times_ms, how))
    return rows


def bench_browser(script: str, args: list[str]) -> list[Row]:
    """Run a browser benchmark of this folder (``lab_latency.py``: Jupyter Lab, ``page_latency.py``: the web page,
    no kernel, ``page_load.py``: the chapter pages' cold loads), which prints its own tables; one row with its
    verdict."""
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name(script)), *args], text=True)
    status = "ok" if proc.returncode == 0 else "OVER"
    return [Row(script, "see its tables above", "its own (README, Budgets)", status, f"exit status {proc.returncode}")]


def markdown_table(rows: list[Row]) -> str:
    """The rows as a markdown table."""
    lines = ["| benchmark | measured | budget | status | note |", "|---|---|---|---|---|"]
    lines += [f"| {r.benchmark} | {r.measured} | {r.budget} | {r.status} | {r.note} |" for r in rows]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-build", action="store_true", help="skip the clean build and the rebuild")
    parser.add_argument("--only", choices=["build", "notebooks", "explorers", "library", "lab", "page", "load"],
                        help="run one group only (lab, page, load: the browser benchmarks, only when asked for)")
    parser.add_argument("--calls", type=int, default=25, help="timed calls per explorer (at least 25)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the rows as JSON to PATH")
    args = parser.parse_args(argv)
    if args.calls < 25:
        parser.error("--calls must be at least 25")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks, print the table, optionally write JSON; 1 if any budget is missed."""
    args = parse_args(argv)
    groups = {
        "build": bench_build,
        "notebooks": bench_notebooks,
        "explorers": lambda: bench_explorers(args.calls),
        "library": bench_library,
        "lab": lambda: bench_browser("lab_latency.py", ["--repeat", "3"]),
        "page": lambda: bench_browser("page_latency.py", []),
        "load": lambda: bench_browser("page_load.py", ["--runs", "3"]),
    }
    default = ("build", "notebooks", "explorers", "library")
    selected = [args.only] if args.only else [g for g in default if not (g == "build" and args.skip_build)]
    rows = [row for group in selected for row in groups[group]()]
    print(markdown_table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return 1 if any(r.status in ("OVER", "failed") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
