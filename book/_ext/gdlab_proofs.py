"""Long proofs fold away on the web page: a proof marked ``:class: dropdown`` opens folded under a "Proof" bar.

In the chapter sources a long proof carries the usual MyST marker for a box that opens folded::

    :::{prf:proof}
    :class: dropdown
    ...
    :::

sphinx-proof 0.4.0 keeps the class, but its proof box has no title and every proof the same id, ``proof``, so
sphinx-togglebutton could not fold it: its script looks for the box's title to put its button in, threw on the
first folded proof, and so also left every solution after it on the page unfolded. Here, on HTML builders only, a
post-transform turns each marked proof into a native ``<details>`` element (:class:`folded_proof`):

* its ``<summary>`` is the "Proof" bar, a disclosure button that the mouse and the keyboard (Enter, Space) open and
  close and that assistive technology reads as "Proof, collapsed"; the proof's own leading "Proof." goes, so the
  word is not said twice;
* it gets a unique id, ``proof-`` and the label of the statement it proves (:func:`fold_id`);
* it loses the ``dropdown`` class, so sphinx-togglebutton leaves it alone; it folds without any script.

``gdlab_proofs.css`` draws the bar like the solutions' bars; ``gdlab_proofs.js`` opens a folded proof when the
address points at it or inside it (a link to the proof, or to an equation of it), and opens them all for printing.
Short proofs stay as they are, and so does every proof in the PDF: the LaTeX builder prints all proofs in full, with
sphinx-proof's "Proof." once. In Jupyter Lab, jupyterlab-myst (2.7) folds a ``{prf:proof}`` with the class
``dropdown`` itself, under its "Proof" title; the plain notebooks (gdlab_plain) drop the option.
``tests/test_site_proofs.py`` checks the built pages (and which proofs are long enough to fold),
``tests/browser/test_proofs.py`` the folding in Chromium.
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes
from gdlab_assets import copy_to_static
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx_proof.nodes import proof_node

ASSETS = [Path(__file__).with_name(f"gdlab_proofs.{ext}") for ext in ("css", "js")]
#: The class that marks a proof to fold (the MyST convention for a box that opens folded).
FOLD_CLASS = "dropdown"
#: The text of the bar, and the prefix sphinx-proof writes before a proof's first paragraph.
TITLE = "Proof"
PREFIX = "Proof. "


class folded_proof(nodes.General, nodes.Element):
    """A proof that opens folded: ``<details>`` with a "Proof" ``<summary>`` (HTML only)."""


def visit_folded_proof(self, node: folded_proof) -> None:
    self.body.append(self.starttag(node, "details"))
    self.body.append(f'<summary class="gdlab-proof-bar">{TITLE}</summary>\n')


def depart_folded_proof(self, node: folded_proof) -> None:
    self.body.append("</details>\n")


def fold_id(proof: proof_node, taken: set[str]) -> str:
    """``proof-<label>`` for the proof of the labelled statement just before it (``proof-thm-euler``), else
    ``proof-<n>``; never one in ``taken`` (a page's ids)."""
    parent = proof.parent
    index = parent.index(proof) if parent is not None else 0
    before = parent[index - 1] if index > 0 else None
    label = before.get("label") if isinstance(before, nodes.Element) else None
    base = f"proof-{label}" if label else "proof"
    candidate, n = base, 1
    while candidate in taken or candidate == "proof":
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def drop_prefix(box: nodes.Element) -> None:
    """Remove sphinx-proof's leading "Proof. " from the first paragraph of ``box`` (the bar says it)."""
    first = next(iter(box.findall(nodes.paragraph)), None)
    if first is None or not first.children or not isinstance(first[0], nodes.Text):
        return
    text = str(first[0])
    if text.startswith(PREFIX):
        rest = text[len(PREFIX):]
        if rest:
            first[0] = nodes.Text(rest)
        else:
            first.remove(first[0])


def fold(proof: proof_node, taken: set[str]) -> folded_proof | None:
    """Replace the box of a proof marked :data:`FOLD_CLASS` by a :class:`folded_proof`; return it (or None)."""
    box = proof.children[0] if proof.children else None
    if not isinstance(box, nodes.Element) or FOLD_CLASS not in box["classes"]:
        return None
    new_id = fold_id(proof, taken)
    classes = list(dict.fromkeys(c for c in box["classes"] if c != FOLD_CLASS)) + ["gdlab-proof"]
    folded = folded_proof(ids=[new_id], classes=classes)
    folded.extend(box.children)
    drop_prefix(folded)
    proof.replace(box, folded)
    taken.add(new_id)
    return folded


class FoldProofs(SphinxPostTransform):
    """Fold every proof marked :data:`FOLD_CLASS` on HTML pages (see the module docstring)."""

    default_priority = 900
    formats = ("html",)

    def run(self, **kwargs) -> None:
        taken = set(self.document.ids)
        for proof in list(self.document.findall(proof_node)):
            fold(proof, taken)


#: ``build-finished``: put the style sheet and the script into ``_static/`` (only when they changed).
copy_assets = copy_to_static(*ASSETS)


def setup(app: Sphinx) -> dict:
    app.add_node(folded_proof, html=(visit_folded_proof, depart_folded_proof))
    app.add_post_transform(FoldProofs)
    app.add_css_file("gdlab_proofs.css")
    app.add_js_file("gdlab_proofs.js", loading_method="defer")
    app.connect("build-finished", copy_assets)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
