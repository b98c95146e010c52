"""Sphinx extension for the student build (loaded by scripts/build_student.py): hide the solutions' code cells too.

sphinx-exercise 1.2.1 removes the ``{solution}`` blocks when ``hide_solutions`` is true. A solution's code lives in
the code cells right after its block, tagged ``solution`` (and ``hide-cell``, so the normal book shows them collapsed
behind a toggle; in Jupyter their input and output are collapsed). myst-nb gives each cell's container the class
``tag_<tag>``; with ``hide_solutions`` true this extension removes the containers of class ``tag_solution``, with
their code and outputs. Without ``hide_solutions`` it changes nothing.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.transforms import SphinxTransform

#: The class myst-nb gives the container of a cell tagged ``solution``.
SOLUTION_CELL_CLASS = "tag_solution"


class DropSolutionCells(SphinxTransform):
    """Remove every cell container of class ``tag_solution`` when ``hide_solutions`` is true."""

    default_priority = 9

    def apply(self, **kwargs) -> None:
        if not self.config.hide_solutions:
            return
        for cell in list(self.document.findall(nodes.container)):
            if SOLUTION_CELL_CLASS in cell.get("classes", []) and cell.parent is not None:
                cell.parent.remove(cell)


def setup(app):
    app.setup_extension("sphinx_exercise")
    app.add_transform(DropSolutionCells)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
