"""Export the chapter notebooks without their solutions, for handing out to students.

For each chapter notebook ``book/NN_name.ipynb`` this writes ``<output>/NN_name.ipynb`` (default output:
``_build/student-notebooks/``) in which

- every ``{solution}`` directive block in a markdown cell is removed (colon or backtick fences);
- every code cell tagged ``solution`` (a solution's code, which follows its ``{solution}`` block) is removed;
- every output and execution count is cleared, so that no answer survives in a stored output;
- the rest is written as a plain notebook (book/_ext/gdlab_plain.py): no MyST, numbered theorem and exercise blocks,
  the book's macros expanded, so that it reads correctly in Colab, VS Code or Jupyter without any extension.

Everything else stays: the exercises, the TODO cells and the check cells that tell a student whether an answer is
right (they print "not answered yet" until the TODO is filled in). Run from anywhere::

    .venv/bin/python scripts/export_student_notebooks.py                      # all chapters
    .venv/bin/python scripts/export_student_notebooks.py book/02_gradient_flow.ipynb --output /tmp/handout

The exported notebooks import ``gdlab`` like the originals: students need the repository's environment (or
``pip install`` of the library) to run them.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book" / "_ext"))

from gdlab_plain import Book, to_plain  # noqa: E402

BOOK = ROOT / "book"
DEFAULT_OUTPUT = ROOT / "_build" / "student-notebooks"

# The opening line of a MyST directive: a fence of 3+ colons, backticks or tildes, then {name}.
_OPEN = re.compile(r"^\s*(?P<fence>:{3,}|`{3,}|~{3,})\{(?P<name>[A-Za-z0-9_:-]+)\}")


#: Tag of the code cells that belong to a solution (they follow its ``{solution}`` block; collapsed in Jupyter).
SOLUTION_TAG = "solution"


class ExportError(ValueError):
    """A notebook whose solution markup cannot be removed safely (an unclosed block, a gated solution)."""


def _closing_line(lines: list[str], start: int, fence: str) -> int:
    """Index of the line that closes the directive opened at ``lines[start]`` with ``fence``."""
    char, length = fence[0], len(fence)
    close = re.compile(rf"^\s*{re.escape(char)}{{{length},}}\s*$")
    for j in range(start + 1, len(lines)):
        if close.match(lines[j]):
            return j
    raise ExportError(f"directive opened with {fence!r} is never closed: {lines[start].strip()!r}")


def strip_solutions(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int]:
    """Remove every solution from ``nb`` in place and clear all outputs; return ``(nb, number of solutions)``.

    A solution is a ``{solution}`` block in a markdown cell, plus the code cells tagged ``solution`` (the solution's
    code, collapsed, right after its block). Gated solutions (``{solution-start}`` ... ``{solution-end}``) are
    refused: Jupyter renders each cell on its own, so a gate spanning cells shows the solution's code open.
    """
    kept = []
    removed = 0
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            if SOLUTION_TAG not in cell.get("metadata", {}).get("tags", []):
                kept.append(cell)
            continue
        lines = cell.source.splitlines(keepends=True)
        out: list[str] = []
        i = 0
        while i < len(lines):
            match = _OPEN.match(lines[i])
            name = match["name"] if match else None
            if name in ("solution-start", "solution-end"):
                raise ExportError(f"gated solution at {lines[i].strip()!r}: use a {{solution}} block and tag the "
                                  f"solution's code cells {SOLUTION_TAG!r}")
            if name == "solution":
                removed += 1
                i = _closing_line(lines, i, match["fence"]) + 1
                continue
            out.append(lines[i])
            i += 1
        text = re.sub(r"\n{3,}", "\n\n", "".join(out)).strip("\n")  # no double blank line where a block was
        if text.strip():
            cell.source = text
            kept.append(cell)
    for cell in kept:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.get("metadata", {}).pop("execution", None)
    nb.cells = kept
    return nb, removed


def export_notebook(source: Path, output_dir: Path, book: Book | None = None) -> tuple[Path, int]:
    """Write the student version of ``source`` into ``output_dir``; return its path and the solutions removed.
    ``book`` (labels, titles, macros of the whole book) is read from the sources when not given."""
    nb = nbformat.read(source, as_version=4)
    nb, removed = strip_solutions(nb)
    nb = to_plain(nb, source.stem, book or Book.from_sources(ROOT))
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / source.name
    nbformat.write(nb, target)
    return target, removed


def chapter_notebooks() -> list[Path]:
    """The chapter notebooks of the book, ``book/NN_*.ipynb``, in order."""
    return sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to export (default: every book/NN_*.ipynb)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"output folder (default: {DEFAULT_OUTPUT})")
    args = parser.parse_args(argv)
    sources = args.notebooks or chapter_notebooks()
    if not sources:
        print("no notebooks to export", file=sys.stderr)
        return 1
    book = Book.from_sources(ROOT)
    for source in sources:
        target, removed = export_notebook(source, args.output, book)
        print(f"{source.name}: {removed} solution(s) removed -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
