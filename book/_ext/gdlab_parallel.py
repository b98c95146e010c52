"""Execute the book's notebooks in parallel, before Sphinx reads them.

Loaded from ``_config.yml`` (``sphinx: local_extensions``). Jupyter Book 1.x executes notebooks in ``cache`` mode
through myst-nb, one after the other, as it reads them; on the 2-core machines this book is built on, that serial
execution was two thirds of a clean build (52 s of 78 s with five chapters, budget 90 s). On ``builder-inited`` this
extension finds the chapter notebooks that are not in the jupyter-cache yet, adds them to the cache's project and runs
jupyter-cache's local multi-process executor on them in a separate interpreter (one process per core; each notebook
runs in its own folder, as myst-nb runs it with ``execution_in_temp: false``, with the same timeout and
``allow_errors`` setting). myst-nb then
finds every notebook in the cache and renders it from there. A notebook that fails here is not cached, so myst-nb
executes it again as usual and reports the failure as usual: the build's behaviour on errors is unchanged.

The notebooks are those of the table of contents (``_toc.yml``); Sphinx has not read any document yet at this point.
Set ``gdlab_parallel: false`` (``sphinx: config``) to leave execution to myst-nb alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)


def toc_notebooks(app: Sphinx) -> list[Path]:
    """The ``.ipynb`` files of the book's table of contents (sphinx-external-toc's site map), in TOC order."""
    site_map = getattr(app.config, "external_site_map", None)
    srcdir = Path(app.srcdir)
    names = list(site_map) if site_map is not None else []
    paths = [srcdir / f"{name}.ipynb" for name in names]
    return [path for path in paths if path.is_file()]


def uncached(cache, paths: list[Path]) -> list[Path]:
    """The notebooks among ``paths`` whose code has no executed match in ``cache``."""
    missing = []
    for path in paths:
        try:
            cache.match_cache_notebook(nbformat.read(path, as_version=4))
        except KeyError:
            missing.append(path)
    return missing


def cache_path(app: Sphinx) -> str:
    """The jupyter-cache folder myst-nb uses: ``nb_execution_cache_path``, else ``.jupyter_cache`` next to the output
    folder (myst-nb's own rule, ``myst_nb.sphinx_ext``)."""
    configured = app.config.nb_execution_cache_path
    return str(configured) if configured else str(Path(app.outdir).parent.joinpath(".jupyter_cache").resolve())


def execute_in_parallel(app: Sphinx) -> None:
    """Pre-execute the uncached TOC notebooks with jupyter-cache's multi-process executor (see the module text)."""
    if not app.config.gdlab_parallel or app.config.nb_execution_mode != "cache":
        return
    from jupyter_cache import get_cache

    cache = get_cache(cache_path(app))
    todo = uncached(cache, toc_notebooks(app))
    if len(todo) < 2:  # nothing to run side by side
        return
    uris = [cache.add_nb_to_project(str(path)).uri for path in todo]
    logger.info(f"[gdlab_parallel] executing {len(uris)} notebooks in parallel")
    # In a separate interpreter, not in a pool forked from this Sphinx process: forked from here, the first chapter's
    # notebook stalled for ~2 minutes (the timeout then) in 3 of 7 clean builds; from a fresh interpreter, in none of 6.
    # See book/_ext/gdlab_execution.py (issue 20) for what such a stall is and what the runner does against it.
    args, env = runner_command(cache_path(app), app.config.nb_execution_timeout,
                               bool(app.config.nb_execution_allow_errors), uris)
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or lines[:1] != ["0"]:  # myst-nb executes these again while reading, and reports
        failed = "; ".join(lines[1:]) or f"runner exit status {proc.returncode}"
        logger.info(f"[gdlab_parallel] not executed here: {failed}; myst-nb will run and report them")


def runner_command(cache: str, timeout: float, allow_errors: bool, uris: list[str]) -> tuple[list[str], dict]:
    """The command line and environment of the runner below (also used by ``benchmarks/stall_loop.py``)."""
    here = str(Path(__file__).resolve().parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)}
    return [sys.executable, "-c", _RUNNER, cache, str(timeout), str(allow_errors), *uris], env


#: The runner: jupyter-cache's multi-process executor on the given project notebooks, its kernel clients waiting in
#: slices (``gdlab_execution.poll_in_slices``; the pool's forked workers inherit it). Prints the number that failed,
#: then one line per failed notebook: its file name and the exception of its traceback (a stalled kernel: nbclient's
#: CellTimeoutError after the cell timeout, ``execute: timeout`` of ``_config.yml``).
_RUNNER = """
import re, sys
from pathlib import Path
import gdlab_execution
gdlab_execution.poll_in_slices()
from jupyter_cache import get_cache
from jupyter_cache.executors import load_executor
cache = get_cache(sys.argv[1])
executor = load_executor("local-parallel", cache=cache, logger=None)
result = executor.run_and_cache(filter_uris=sys.argv[4:], timeout=float(sys.argv[2]), allow_errors=sys.argv[3] == "True")
failed = [*result.excepted, *result.errored]
print(len(failed))
for uri in failed:
    lines = (cache.get_project_record(uri).traceback or "").splitlines()
    errors = [l for l in lines if re.match(r"[A-Za-z_][\\w.]*(Error|Exception|Interrupt)\\b", l)]
    print(f"{Path(uri).name} ({errors[-1][:200] if errors else 'failed'})")
"""


def setup(app: Sphinx) -> dict:
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import gdlab_execution

    gdlab_execution.poll_in_slices()  # for the notebooks myst-nb executes in this process
    app.add_config_value("gdlab_parallel", True, "env")
    app.connect("builder-inited", execute_in_parallel)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
