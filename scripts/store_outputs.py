"""Execute chapter notebooks and store the outputs that nbval compares (the cells tagged ``nbval-check-output``).

    .venv/bin/python scripts/store_outputs.py book/07_deep_linear.ipynb [more notebooks]

Each notebook runs on a fresh kernel, with ``book/`` as working directory. Afterwards only the checked
cells keep their outputs and execution counts; every other cell is cleared (figures are made again by the book build,
and a notebook stays small). A notebook whose execution fails (a cell raises, or a cell or the kernel does not answer
within the cell timeout, ``execute: timeout`` of ``_config.yml``) is left unchanged and the script exits with status 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book" / "_ext"))
from gdlab_execution import NotebookExecutionError, execute_notebook  # noqa: E402

#: nbval's cell tag for "compare this cell's output with the stored one" (honoured by ``pytest --nbval-lax``); the
#: book marks its checked cells with it, not with nbval's ``# NBVAL_CHECK_OUTPUT`` comment, which readers would see.
CHECK_TAG = "nbval-check-output"


def is_checked(cell) -> bool:
    """Whether nbval compares this notebook cell's output with its stored one (a code cell tagged ``CHECK_TAG``)."""
    return cell.get("cell_type") == "code" and CHECK_TAG in cell.get("metadata", {}).get("tags", [])


def keep_checked_outputs(nb) -> int:
    """Clear outputs and execution counts of every code cell not tagged ``CHECK_TAG``; return how many are kept."""
    kept = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if is_checked(cell):
            kept += 1
        else:
            cell.outputs, cell.execution_count = [], None
    return kept


def store(path: Path) -> bool:
    nb = nbformat.read(path, as_version=4)
    try:  # a stalled kernel or cell fails after the cell timeout (book/_ext/gdlab_execution.py)
        execute_notebook(nb, str(path), path.parent, record_timing=False)
    except NotebookExecutionError as err:
        print(f"{err}\n{path} left unchanged\n{err.__cause__}", file=sys.stderr)
        return False
    nb.metadata.pop("widgets", None)  # widget state of the executed explorer: not needed, and large
    kept = keep_checked_outputs(nb)
    nbformat.write(nb, path)
    print(f"{path}: stored the outputs of {kept} checked cells")
    return True


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return 0 if all([store(Path(a)) for a in argv]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
