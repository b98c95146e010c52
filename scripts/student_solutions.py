"""Sphinx extension for the student build (loaded by scripts/build_student.py): hide gated solutions completely.

sphinx-exercise 1.2.1 honours ``hide_solutions: true`` for ``{solution}`` blocks, but for a *gated* solution
(``{solution-start}`` ... ``{solution-end}``, the form that can hold code cells) it only drops the start directive:
everything between the two markers, the solution's text and its code cells with their outputs, stays in the
document, and the orphaned end marker stops the HTML writer ("unknown node type: solution_end_node").
With this extension, when ``hide_solutions`` is true, ``{solution-start}`` leaves a marker node, and a transform
that runs before sphinx-exercise merges gated solutions removes the marker, every node up to the matching
``{solution-end}``, and the end marker itself. Without ``hide_solutions`` the extension changes nothing.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.transforms import SphinxTransform
from sphinx.util import logging
from sphinx_exercise.directive import SolutionStartDirective
from sphinx_exercise.nodes import solution_end_node

logger = logging.getLogger(__name__)


class hidden_solution_start(nodes.Element):  # noqa: N801 (docutils node classes are lower case)
    """Where a gated solution began; removed again by :class:`DropHiddenGatedSolutions`."""


class StudentSolutionStartDirective(SolutionStartDirective):
    """``{solution-start}``: as in sphinx-exercise, plus a marker node when solutions are hidden."""

    def run(self):
        result = super().run()  # registers the gate, so that sphinx-exercise's structure check still passes
        if self.env.app.config.hide_solutions:
            return [hidden_solution_start(label=self.arguments[0])]
        return result


class DropHiddenGatedSolutions(SphinxTransform):
    """Remove everything from a hidden solution-start marker to its solution-end, both included."""

    default_priority = 9  # before sphinx-exercise's MergeGatedSolutions (10)

    def apply(self, **kwargs) -> None:
        for start in list(self.document.findall(hidden_solution_start)):
            parent = start.parent
            index = parent.index(start)
            end = next((j for j in range(index + 1, len(parent.children))
                        if isinstance(parent.children[j], solution_end_node)), None)
            if end is None:
                logger.warning("solution-start %r: no solution-end in the same section; nothing removed",
                               start["label"], location=start)
                parent.remove(start)
                continue
            for child in parent.children[index:end + 1]:
                parent.remove(child)


def setup(app):
    app.setup_extension("sphinx_exercise")
    app.add_node(hidden_solution_start)
    app.add_directive("solution-start", StudentSolutionStartDirective, override=True)
    app.add_transform(DropHiddenGatedSolutions)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
