"""Loop fresh-process executions of the first chapter notebook and catch the "first-notebook stall" (issue 20).

What it measures: the wall time of executing ``book/01_nonconvexity.ipynb`` (``--notebook book``) or the first
exported student notebook (``--notebook student``, written by ``scripts/export_student_notebooks.py`` as
``tests/test_teaching.py`` writes it, and run with ``book/`` as working directory as that test runs it), N times, each
in a fresh Python interpreter that starts a fresh kernel, in one of these ways (``--mode``):

- ``nbclient``: ``NotebookClient(nb, kernel_name="python3").execute()``, as ``tests/test_teaching.py``,
  ``scripts/store_outputs.py`` and ``benchmarks/run.py`` run notebooks. Besides the total, the time until the kernel
  answered ``kernel_info`` (nbclient's ``on_notebook_start``) is recorded.
- ``cache``: jupyter-cache's multi-process executor, through the very runner of ``book/_ext/gdlab_parallel.py``, on a
  fresh cache holding two notebooks (the first chapter and ``--partner``, default ``book/02_gradient_flow.ipynb``), so
  that two notebooks run at once as in a clean book build. The time of the first notebook is the one jupyter-cache
  records (``execution_seconds``); the process's wall time is reported as well.
- ``cache-fork``: as ``cache``, but the runner first calls through ``jupyter_core``'s ``run_sync``, so that it holds
  an event loop when the executor forks its pool and the workers inherit that loop (its epoll instance shared among
  them). A candidate condition of the stalls of the time when ``gdlab_parallel`` ran the executor inside the Sphinx
  process (the first chapter in 3 of 7 clean builds); whether that process held such a loop is not known.
- ``nbval``: ``pytest --nbval-lax`` on the notebook (the root ``conftest.py`` and the ``addopts`` of
  ``pyproject.toml`` apply); the wall time is that of the whole pytest process.
- ``teaching``: the test where the stall was seen, ``tests/test_teaching.py::test_exported_notebook_executes`` for
  the first chapter, in a fresh pytest process (it exports the student notebooks first); wall time of the process.

Load (``--load``): ``numpy`` keeps all cores but one busy with a single-threaded numpy matrix-product loop for the
whole run; ``--concurrency K`` starts K executions at once (each one counted as a run). The machine's other work
comes on top of both.

``--sliced``: the kernel clients wait for messages in slices of at most a second (``poll_in_slices`` of
``book/_ext/gdlab_execution.py``, which the project's own notebook execution applies); without it (the default)
jupyter_client waits as it is (``GDLAB_POLL_SLICES=0`` for the fresh processes).

A run that takes longer than ``--threshold`` seconds counts as a stall: the Python stacks of every Python process of
its tree (the client, jupyter-cache's pool workers, the kernels) are dumped with py-spy (``pip install py-spy``; run
as root or with ptrace permission), with each thread's state and kernel wait channel from ``/proc`` (and in ``nbclient``
mode the stacks of the client's asyncio tasks, which the worker prints on SIGUSR1), into
``--out/stall-<run>.txt``; then the whole tree is killed and the loop goes on. Failures (non-zero exit) are counted
separately and their output saved in ``--out``.

Printed: one line per run, then n, median, min, max, 90th percentile, the number of stalls and of failures (and for
``nbclient`` the same for the kernel start-up). Examples::

    .venv/bin/python benchmarks/stall_loop.py --runs 50
    .venv/bin/python benchmarks/stall_loop.py --runs 50 --mode cache
    .venv/bin/python benchmarks/stall_loop.py --runs 50 --load numpy --concurrency 2 --notebook student
    .venv/bin/python benchmarks/stall_loop.py --runs 5 --threshold 2   # exercise the stall dump

Exit status: 1 if any run stalled or failed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
EXT = BOOK / "_ext"
FIRST = BOOK / "01_nonconvexity.ipynb"


@dataclass
class Run:
    """One fresh-process execution."""

    index: int
    seconds: float  # the first notebook's execution time (see the module text), or the wall time if unknown
    wall: float  # wall time of the fresh process
    status: str  # "ok", "stall" or "failed"
    kernel_ready: float | None = None  # nbclient mode: seconds until the kernel answered kernel_info
    extra: dict = field(default_factory=dict)


# --- the worker: what runs in the fresh interpreter ----------------------------------------------------------------


def worker_nbclient(path: Path, cwd: Path) -> None:
    """Execute ``path`` with nbclient on a fresh kernel in ``cwd``; print a JSON line with the times."""
    import nbformat
    from nbclient import NotebookClient

    start = time.perf_counter()
    marks: dict[str, float] = {}

    def progress(what: str) -> None:  # on stderr, so that the parent's stall report shows where it was
        print(f"[stall_loop] {time.perf_counter() - start:8.2f} s {what}", file=sys.stderr, flush=True)

    def notebook_start(**_):
        marks["ready"] = time.perf_counter() - start
        progress("kernel ready (kernel_info answered)")

    def cell_execute(cell, cell_index, **_):
        progress(f"cell {cell_index} sent")

    def cell_executed(cell, cell_index, **_):
        progress(f"cell {cell_index} replied")

    def dump_tasks(*_):  # SIGUSR1 from the parent's stall report: which coroutine the client is waiting in
        import asyncio

        for task in asyncio.all_tasks():
            print(f"[stall_loop] asyncio task {task.get_name()}:", file=sys.stderr)
            task.print_stack(file=sys.stderr)
        sys.stderr.flush()

    signal.signal(signal.SIGUSR1, dump_tasks)
    if os.environ.get("GDLAB_POLL_SLICES") == "1":  # --sliced: as the project's own execution does
        sys.path.insert(0, str(EXT))
        import gdlab_execution

        gdlab_execution.poll_in_slices()
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=3600, startup_timeout=3600, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}}, on_notebook_start=notebook_start,
                            on_cell_execute=cell_execute, on_cell_executed=cell_executed)
    progress("starting kernel")
    client.execute()
    progress("done")
    print(json.dumps({"seconds": time.perf_counter() - start, "kernel_ready": marks.get("ready")}))


# --- the parent: process trees, stall reports ----------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (all its threads'), from /proc."""
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
            except OSError:
                pass
    except OSError:
        pass
    return found


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (jupyter_client starts kernels in a session of their own, so a process group
    or session kill would miss them)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out


def read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError as err:
        return f"<{err.strerror}>"


def describe(pid: int) -> str:
    """Command line, state, CPU time, and every thread's state and wait channel of ``pid``, from /proc."""
    cmd = read(f"/proc/{pid}/cmdline").replace("\0", " ").strip()
    stat = read(f"/proc/{pid}/stat").rsplit(")", 1)[-1].split()
    cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK") if len(stat) > 12 else float("nan")
    lines = [f"## pid {pid}: {cmd}", f"state {stat[0] if stat else '?'}, CPU {cpu:.1f} s"]
    try:
        tasks = sorted(os.listdir(f"/proc/{pid}/task"), key=int)
    except OSError:
        tasks = []
    for tid in tasks:
        comm = read(f"/proc/{pid}/task/{tid}/comm").strip()
        tstate = read(f"/proc/{pid}/task/{tid}/stat").rsplit(")", 1)[-1].split()[:1]
        wchan = read(f"/proc/{pid}/task/{tid}/wchan").strip()
        lines.append(f"  thread {tid} {comm!r}: state {''.join(tstate)}, wchan {wchan}")
    return "\n".join(lines)


def py_spy_dump(pid: int) -> str:
    """``py-spy dump`` of ``pid`` (a Python process), with locals; non-blocking if the blocking dump fails."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        return "py-spy not installed (pip install py-spy)"
    for extra in ([], ["--nonblocking"]):
        try:
            proc = subprocess.run([exe, "dump", "--locals", "--pid", str(pid), *extra], capture_output=True, text=True,
                                  timeout=60, check=False)
        except subprocess.TimeoutExpired:
            continue
        if proc.returncode == 0:
            return proc.stdout
    return f"py-spy failed: {(proc.stdout + proc.stderr).strip()}"


def report_stall(pid: int, log: Path, out: Path) -> Path:
    """Write the stacks and wait channels of the tree of ``pid`` and the worker's own output so far to ``out``."""
    try:
        os.kill(pid, signal.SIGUSR1)  # nbclient mode: the worker prints its asyncio tasks' stacks to its log
        time.sleep(2)
    except ProcessLookupError:
        pass
    sections = [f"# stall report, {time.strftime('%Y-%m-%d %H:%M:%S')}", f"load average: {read('/proc/loadavg')}"]
    for p in tree(pid):
        sections.append(describe(p))
        if "python" in read(f"/proc/{p}/cmdline"):
            sections.append(py_spy_dump(p))
    sections += ["## worker output", read(str(log))]
    out.write_text("\n\n".join(sections) + "\n")
    return out


def kill_tree(pid: int) -> None:
    for p in reversed(tree(pid)):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- the modes -----------------------------------------------------------------------------------------------------


def student_notebook(work: Path) -> Path:
    """The first chapter's student notebook, exported as tests/test_teaching.py exports it."""
    subprocess.run([sys.executable, str(ROOT / "scripts" / "export_student_notebooks.py"), str(FIRST), "--output",
                    str(work / "student")], check=True, capture_output=True, text=True)
    return work / "student" / FIRST.name


def command(args: argparse.Namespace, notebook: Path, work: Path, index: int) -> tuple[list[str], dict]:
    """The fresh-process command of one run, and what the parent needs to read its result."""
    if args.mode == "nbclient":
        return [sys.executable, __file__, "--worker", str(notebook), str(BOOK)], {}
    if args.mode == "nbval":
        return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", str(notebook)], {}
    if args.mode == "teaching":
        test = f"tests/test_teaching.py::test_exported_notebook_executes[{FIRST.stem}]"
        return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test], {}
    from jupyter_cache import get_cache

    sys.path.insert(0, str(EXT))
    import gdlab_parallel

    cache_dir = work / f"cache-{index}"
    cache = get_cache(str(cache_dir))
    uris = [cache.add_nb_to_project(str(p)).uri for p in (notebook, args.partner)]
    # gdlab_parallel's runner, with the build's timeout; allow_errors False as in _config.yml
    cmd, env = gdlab_parallel.runner_command(str(cache_dir), args.cache_timeout, False, uris)
    if args.mode == "cache-fork":
        cmd[2] = _LOOP_FIRST + cmd[2]
    return cmd, {"cache": cache_dir, "uri": uris[0], "env": env}


#: cache-fork mode: what runs before gdlab_parallel's runner, in the same process.
_LOOP_FIRST = """
from jupyter_core.utils import run_sync
async def _nothing():
    pass
run_sync(_nothing)()
"""


def result(args: argparse.Namespace, run: Run, stdout: str, info: dict) -> None:
    """Fill in ``run``'s notebook time from the worker's output."""
    if args.mode == "nbclient":
        data = json.loads(stdout.strip().splitlines()[-1])
        run.seconds, run.kernel_ready = data["seconds"], data["kernel_ready"]
    elif args.mode in ("cache", "cache-fork"):
        from jupyter_cache import get_cache

        cache = get_cache(str(info["cache"]))
        times = {Path(r.uri).name: r.data.get("execution_seconds") for r in cache.list_cache_records()}
        run.extra = {"notebooks": times, "failed": stdout.strip()}
        first = times.get(Path(info["uri"]).name)
        if first is None or stdout.strip().splitlines()[:1] != ["0"]:
            run.status = "failed"
        else:
            run.seconds = first


def start_load(n: int) -> list[subprocess.Popen]:
    """``n`` single-threaded numpy matrix-product loops, to keep ``n`` cores busy."""
    code = "import numpy as np\na = np.random.default_rng(0).random((400, 400))\nwhile True:\n    a = (a @ a) / 400\n"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return [subprocess.Popen([sys.executable, "-c", code], env=env) for _ in range(n)]


def run_all(args: argparse.Namespace) -> list[Run]:
    work = Path(tempfile.mkdtemp(prefix="stall_loop-"))
    args.out.mkdir(parents=True, exist_ok=True)
    notebook = student_notebook(work) if args.notebook == "student" else FIRST
    load = start_load(max(1, (os.cpu_count() or 2) - 1)) if args.load == "numpy" else []
    runs: list[Run] = []
    try:
        index = 0
        while index < args.runs:
            batch = []
            for _ in range(min(args.concurrency, args.runs - index)):
                cmd, info = command(args, notebook, work, index)
                log = work / f"run-{index}.log"
                stdout = work / f"run-{index}.out"
                env = {**info.get("env", os.environ), "GDLAB_POLL_SLICES": "1" if args.sliced else "0"}
                proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=stdout.open("w"), stderr=log.open("w"))
                batch.append((index, proc, time.perf_counter(), log, stdout, info))
                index += 1
            for i, proc, start, log, stdout, info in batch:
                deadline = start + args.threshold
                while proc.poll() is None and time.perf_counter() < deadline:
                    time.sleep(0.1)
                wall = time.perf_counter() - start
                run = Run(i, wall, wall, "ok")
                if proc.poll() is None:
                    run.status = "stall"
                    report = report_stall(proc.pid, log, args.out / f"stall-{i}.txt")
                    kill_tree(proc.pid)
                    proc.wait()
                    print(f"run {i}: STALL after {wall:.0f} s, stacks in {report}", flush=True)
                elif proc.returncode != 0:
                    run.status = "failed"
                else:
                    try:
                        result(args, run, stdout.read_text(), info)
                    except (ValueError, KeyError, IndexError) as err:
                        run.status, run.extra = "failed", {"error": repr(err)}
                if run.status == "failed":
                    saved = args.out / f"failed-{i}.txt"
                    saved.write_text(stdout.read_text() + "\n" + log.read_text())
                    print(f"run {i}: FAILED (exit {proc.returncode}), output in {saved}", flush=True)
                ready = f", kernel ready {run.kernel_ready:.2f} s" if run.kernel_ready is not None else ""
                print(f"run {i}: {run.status} {run.seconds:.2f} s (process {run.wall:.2f} s{ready}) "
                      f"{run.extra or ''}", flush=True)
                runs.append(run)
    finally:
        for p in load:
            p.kill()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)
    return runs


def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: no values"
    q = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
    return (f"{name}: n {len(values)}, median {statistics.median(values):.2f} s, min {min(values):.2f} s, "
            f"max {max(values):.2f} s, p90 {q:.2f} s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="fresh-process executions (default 50)")
    parser.add_argument("--mode", choices=["nbclient", "cache", "cache-fork", "nbval", "teaching"], default="nbclient")
    parser.add_argument("--notebook", choices=["book", "student"], default="book",
                        help="book/01_nonconvexity.ipynb or its exported student notebook")
    parser.add_argument("--partner", type=Path, default=BOOK / "02_gradient_flow.ipynb",
                        help="cache mode: the notebook that runs alongside the first one")
    parser.add_argument("--cache-timeout", type=float, default=120,
                        help="cache mode: the executor's cell timeout (default 120, the build's when stalls were seen)")
    parser.add_argument("--load", choices=["none", "numpy"], default="none",
                        help="numpy: keep all cores but one busy with a numpy loop")
    parser.add_argument("--concurrency", type=int, default=1, help="executions started at once (default 1)")
    parser.add_argument("--sliced", action="store_true",
                        help="kernel clients wait in 1 s slices (gdlab_execution.poll_in_slices, as the project runs "
                             "notebooks); default: jupyter_client as it is")
    parser.add_argument("--threshold", type=float, default=40.0,
                        help="seconds after which a run is a stall (default 40: runs take under 20 s even with the "
                             "machine busy; keep it below the cell timeout of _config.yml, which would end a stall first)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "stall_loop",
                        help="folder for stall reports and failed runs' output")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every run as JSON to PATH")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:  # inside the fresh interpreter
        worker_nbclient(Path(argv[1]), Path(argv[2]))
        return 0
    args = parse_args(argv)
    print(f"mode {args.mode}, notebook {args.notebook}, load {args.load}, concurrency {args.concurrency}, "
          f"{'sliced' if args.sliced else 'unsliced'} polls, "
          f"threshold {args.threshold:g} s, {os.cpu_count()} cores, load average {read('/proc/loadavg').strip()}",
          flush=True)
    runs = run_all(args)
    ok = [r for r in runs if r.status == "ok"]
    stalls = sum(r.status == "stall" for r in runs)
    failed = sum(r.status == "failed" for r in runs)
    print(summary("first notebook, runs that finished", [r.seconds for r in ok]))
    print(summary("fresh process wall time, all runs", [r.wall for r in runs]))
    if args.mode == "nbclient":
        print(summary("kernel start until kernel_info reply", [r.kernel_ready for r in ok if r.kernel_ready]))
    print(f"runs {len(runs)}, stalls (> {args.threshold:g} s) {stalls}, failed {failed}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2, default=str) + "\n")
    return 1 if stalls or failed else 0


if __name__ == "__main__":
    sys.exit(main())
