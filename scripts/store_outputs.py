"""Execute chapter notebooks and store the outputs that nbval compares (the cells tagged ``nbval-check-output``).

    .venv/bin/python scripts/store_outputs.py book/07_deep_linear.ipynb [more notebooks]

Each notebook runs on a fresh kernel, with ``book/`` as working directory. Afterwards only the checked
cells keep their outputs and execution counts; every other cell is cleared (figures are made again by the book build,
and a notebook stays small). A notebook whose execution fails is left unchanged and the script exits with status 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

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
    client = NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except CellExecutionError as err:
        print(f"{path}: execution failed, left unchanged\n{err}", file=sys.stderr)
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
