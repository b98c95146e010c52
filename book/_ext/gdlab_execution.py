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

:func:`poll_in_slices` is the other half (issue 20). The stalls seen so far lasted exactly the client's timeout (300 s
in ``tests/test_teaching.py``, 120 s in book builds) and then the notebook went on and passed, with kernel and
client both idle meanwhile. The likeliest explanation (inferred from those timings and the code; 450 fresh-process
runs of ``benchmarks/stall_loop.py`` caught no stall to confirm it) is a lost wake-up in nbclient's asyncio client,
whose effect ``tests/test_execution.py`` shows with a simulated one: the kernel's reply is already in the client's
ZMQ socket, but the event loop is not woken for it (ZMQ's notification file descriptor is
edge-triggered), so ``get_msg(timeout=...)`` sleeps until its timer fires, and pyzmq's last non-blocking poll then
finds the reply and returns it as if nothing happened. A kernel that stalls instead would make nbclient raise
``CellTimeoutError``, and a wait in the kernel (a DNS look-up, say) could not know the client's timeout. Waiting in
slices of at most one second makes pyzmq repeat that non-blocking check every second, so a lost wake-up costs at most
a second. It is applied by :func:`execute_notebook`, by ``gdlab_parallel`` to its jupyter-cache runner and to the
Sphinx process (myst-nb's own execution); nbval's blocking client polls with ``zmq_poll`` and needs nothing.
"""

from __future__ import annotations

import atexit
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "_config.yml"


def cell_timeout(config: Path = CONFIG) -> int:
    """Seconds a notebook cell may run: ``execute: timeout`` of ``_config.yml``."""
    import yaml

    return int(yaml.safe_load(config.read_text(encoding="utf-8"))["execute"]["timeout"])


#: Longest single wait, in seconds, of an asyncio kernel client channel once :func:`poll_in_slices` is applied.
POLL_SLICE_S = 1.0


def sliced_get_msg(get_msg, slice_s: float = POLL_SLICE_S):
    """``get_msg`` (an ``AsyncZMQSocketChannel.get_msg``) waiting in slices of at most ``slice_s`` seconds: the same
    result, and ``queue.Empty`` only once the whole ``timeout`` (None: none) has passed without a message."""
    from queue import Empty

    async def get_msg_in_slices(self, timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await get_msg(self, slice_s if remaining is None else min(slice_s, remaining))
            except Empty:
                if remaining is not None and remaining <= slice_s:
                    raise

    get_msg_in_slices.__wrapped__ = get_msg
    return get_msg_in_slices


def poll_in_slices(slice_s: float = POLL_SLICE_S) -> None:
    """Make jupyter_client's asyncio channels (nbclient's, jupyter-cache's, myst-nb's) wait for a message in slices of
    at most ``slice_s`` seconds, so that a lost wake-up delays a message by at most that (see the module text). Once
    per process; later calls do nothing. ``GDLAB_POLL_SLICES=0`` in the environment turns it off (for
    ``benchmarks/stall_loop.py``, which measures with and without it)."""
    from jupyter_client.channels import AsyncZMQSocketChannel

    if os.environ.get("GDLAB_POLL_SLICES") == "0":
        return
    if not hasattr(AsyncZMQSocketChannel.get_msg, "__wrapped__"):
        AsyncZMQSocketChannel.get_msg = sliced_get_msg(AsyncZMQSocketChannel.get_msg, slice_s)


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

    poll_in_slices()
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
