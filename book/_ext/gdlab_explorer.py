"""The "Run this explorer live" box under each chapter's explorer, in the built book.

In a chapter notebook the box is a standard MyST admonition, so that Jupyter (with jupyterlab-myst), the plain
notebook export and the book all render it::

    :::{admonition} Run this explorer live
    :class: tip gdlab-explorer-live
    The controls set ... Things to try: ...
    :::

The cell before the box, ``live(explorer)``, shows the controls in a running notebook; in the book build this
extension sets ``GDLAB_STATIC_EXPLORERS=1`` for the executing kernels, and the cell shows the default figure.
In the book the page has no Python behind it, so this extension (loaded from ``_config.yml``) puts a first
paragraph into every admonition with the class ``gdlab-explorer-live``: the figure above is the default one, with a
link that opens the chapter in the book's JupyterLite site and one that downloads the notebook. In other output
formats (PDF) the links become plain text.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import gdlab_pyodide
from docutils import nodes
from gdlab_lite import lite_url
from sphinx.application import Sphinx

CLASS = "gdlab-explorer-live"


class live_link(nodes.inline):
    """A link to the live notebook (``target="lite"``) or the notebook download (``target="download"``)."""


def visit_live_link_html(self, node: live_link) -> None:
    target, docname = node["target"], self.builder.current_docname
    root = "../" * docname.count("/")  # the page's way back to the site root
    href = root + (lite_url(docname) if target == "lite" else f"_sources/{docname}.ipynb")
    extra = ' download=""' if target == "download" else ""
    self.body.append(f'<a class="reference external gdlab-{target}" href="{href}"{extra}>')


def depart_live_link_html(self, node: live_link) -> None:
    self.body.append("</a>")


def _skip(self, node) -> None:
    pass


@functools.cache
def live_site(root: str) -> str:
    """What the live site runs and what its first start downloads, in words (from book/_ext/gdlab_pyodide.py)."""
    versions = gdlab_pyodide.live_versions(Path(root))
    size = gdlab_pyodide.megabytes(gdlab_pyodide.download_size(Path(root)))
    return (f"JupyterLite: Python {versions['python']} with numpy {versions['numpy']}, scipy {versions['scipy']} and "
            f"matplotlib {versions['matplotlib']} runs inside the page, served by this site, nothing to install, no "
            f"other server; the first start downloads about {size} MB once, which the browser then keeps")


def book_paragraph(live: str) -> nodes.paragraph:
    """What only a reader of the built page needs: the figure is static; where to move the controls."""
    para = nodes.paragraph()
    para += nodes.Text("The figure above is computed for the default settings when the book is built; this page "
                       "has no Python behind it, so it shows no controls. To move them, ")
    para += live_link("", "", nodes.strong(text="open this chapter live in your browser"), target="lite")
    para += nodes.Text(f" ({live}), or ")
    para += live_link("", "", nodes.Text("download the notebook"), target="download")
    para += nodes.Text(" and open it in Jupyter Lab (see the README). In the notebook the explorer's cell shows the "
                       "controls.")
    return para


def add_book_paragraph(app: Sphinx, doctree: nodes.document) -> None:
    """Insert :func:`book_paragraph` after the title of every ``gdlab-explorer-live`` admonition."""
    for box in doctree.findall(nodes.admonition):
        if CLASS not in box["classes"]:
            continue
        live = live_site(app.srcdir) if app.config.gdlab_lite else "JupyterLite, when the book is built with it"
        titles = [i for i, child in enumerate(box.children) if isinstance(child, nodes.title)]
        box.insert(titles[0] + 1 if titles else 0, book_paragraph(live))


def setup(app: Sphinx) -> dict:
    # The kernels that execute the notebooks for the build inherit this: there ``gdlab.widgets.live`` shows the
    # default figure instead of controls (the name is gdlab.widgets.STATIC_ENV; the extension does not import gdlab).
    os.environ["GDLAB_STATIC_EXPLORERS"] = "1"
    app.add_node(live_link, html=(visit_live_link_html, depart_live_link_html),
                 latex=(_skip, _skip), text=(_skip, _skip), man=(_skip, _skip), texinfo=(_skip, _skip))
    app.connect("doctree-read", add_book_paragraph)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
