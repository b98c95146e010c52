"""How long a notebook cell may run, and a notebook execution that fails fast, naming the notebook, when it stalls.

The one home of the number is ``execute: timeout`` in ``_config.yml``, which the book build passes to myst-nb and
``gdlab_parallel`` to jupyter-cache. :func:`cell_timeout` reads it for everything else that executes notebooks:

- ``conftest.py`` gives it to nbval (``--nbval-cell-timeout`` and ``--nbval-kernel-startup-timeout``, unless given on
  the command line): a cell that runs longer fails with nbval's "Timeout of ... seconds exceeded" in the test named
  ``book/NN_name.ipynb::Cell K``;
- :func:`execute_notebook` (``tests/test_teaching.py``, ``scripts/store_outputs.py``, ``benchmarks/run.py``) runs
  nbclient with it as the cell timeout and as the kernel start-up timeout, and turns any failure into a
  :class:`NotebookExecutionError` whose message starts with the notebook's name and says which cell.

So a kernel that stalls costs at most the timeout, plus nbclient's 5 s of graceful kernel shutdown, instead of hanging
the run. The slowest cell of any chapter took 9 s on an idle 2-core machine and 20 s with that machine busy (the
exported ``03_learning_health`` cell that trains the sweep); the timeout leaves a margin of three over that.
"""

from __future__ import annotations

import atexit
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "_config.yml"


def cell_timeout(config: Path = CONFIG) -> int:
    """Seconds a notebook cell may run: ``execute: timeout`` of ``_config.yml``."""
    import yaml

    return int(yaml.safe_load(config.read_text(encoding="utf-8"))["execute"]["timeout"])


class NotebookExecutionError(RuntimeError):
    """A notebook that did not run to its end: a cell raised, a cell or the kernel timed out, or the kernel died."""


def _first_line(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip()]
    return (lines[0][:100] + (" ..." if len(lines) > 1 else "")) if lines else ""


def execute_notebook(nb, name: str, cwd: Path | str, *, timeout: float | None = None, kernel_name: str = "python3",
                     **client_options):
    """Execute the notebook ``nb`` (in place) on a fresh ``kernel_name`` kernel whose working directory is ``cwd``.

    ``timeout`` (default :func:`cell_timeout`) bounds every wait for the kernel: its start (until it answers
    ``kernel_info``) and each cell. Any failure is raised as :class:`NotebookExecutionError` with ``name`` (the
    notebook's path or file name), the cell's index and first line, and the original exception as its cause.
    ``client_options`` go to ``nbclient.NotebookClient``. Returns ``nb``.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    limit = cell_timeout() if timeout is None else timeout
    current: dict = {"index": None, "cell": None}

    def on_cell_execute(cell, cell_index, **_):
        current["index"], current["cell"] = cell_index, cell

    client = NotebookClient(nb, timeout=limit, startup_timeout=limit, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(cwd)}}, on_cell_execute=on_cell_execute,
                            **client_options)
    start = time.monotonic()
    try:
        client.execute()
    except Exception as err:
        elapsed = time.monotonic() - start
        if client.km is None:  # nbclient cleaned up a kernel that did not start, but left its exit hook (an error)
            atexit.unregister(client._cleanup_kernel)
        index, cell = current["index"], current["cell"]
        where = (f"cell {index} ({_first_line(cell.source)!r})" if cell is not None
                 else "before its first cell (kernel start-up, kernel_info)")
        if isinstance(err, CellTimeoutError) or (cell is None and isinstance(err, (AssertionError, RuntimeError))
                                                 and elapsed >= limit):
            what = (f"no answer from the kernel within {limit:g} s: the kernel stalled, or the cell needs longer "
                    f"than the cell timeout (execute: timeout in _config.yml)")
        elif isinstance(err, DeadKernelError):
            what = "the kernel died"
        elif isinstance(err, CellExecutionError):
            what = f"the cell raised {err.ename}: {err.evalue}"
        else:
            what = f"{type(err).__name__}: {err}"
        raise NotebookExecutionError(f"{name}: {where}: {what} (after {elapsed:.1f} s)") from err
    return nb
