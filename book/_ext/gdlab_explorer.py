"""The "Run this explorer live" box under each chapter's explorer, in the built book.

In a chapter notebook the box is a standard MyST admonition, so that Jupyter (with jupyterlab-myst), the plain
notebook export and the book all render it::

    :::{admonition} Run this explorer live
    :class: tip gdlab-explorer-live
    The controls set ... Things to try: ...
    :::

The cell before the box, ``live(explorer)``, shows the controls in a running notebook; in the book build this
extension sets ``GDLAB_STATIC_EXPLORERS=1`` for the executing kernels, and the cell shows the default figure, which
book/_ext/gdlab_states.py turns into controls over a few precomputed values per control on the web page. The page
runs no Python, so this extension (loaded from ``_config.yml``) puts a first paragraph into every admonition with the
class ``gdlab-explorer-live``: the page's controls offer a few values drawn at build time (in the PDF, or without
page controls: the figure is the default one); to move every control over its whole range, a link opens the chapter
in the book's JupyterLite site and another downloads the notebook. In other output formats (PDF) the links become
plain text.
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


def book_paragraph(live: str, controls: bool = True) -> nodes.paragraph:
    """What only a reader of the built book needs: on a web page with controls (``controls``), that they offer a few
    values drawn at build time; elsewhere (the PDF), that the figure is the default one. Then where to move every
    control over its whole range."""
    para = nodes.paragraph()
    if controls:
        para += nodes.Text("On this page the controls offer a few values each, and the settings without a control "
                           "stay at their defaults: every figure they show was drawn when the book was built, by the "
                           "same code as in the notebook, and the page runs no Python. To move every control over its "
                           "whole range, ")
    else:
        para += nodes.Text("The figure above is computed for the default settings when the book is built; the book "
                           "has no Python behind it. To move the controls, ")
    para += live_link("", "", nodes.strong(text="open this chapter live in your browser"), target="lite")
    para += nodes.Text(f" ({live}), or ")
    para += live_link("", "", nodes.Text("download the notebook"), target="download")
    para += nodes.Text(" and open it in Jupyter Lab (see the README). In the notebook the explorer's cell shows the "
                       "full controls.")
    return para


def has_page_controls(app: Sphinx, doctree: nodes.document) -> bool:
    """Whether the page will show the explorer's controls: an HTML build with book/_ext/gdlab_states.py on, and the
    explorer cell's output marked for it (``class="gdlab-page-explorer"``)."""
    if app.builder.format != "html" or not getattr(app.config, "gdlab_states", False):
        return False
    return any('class="gdlab-page-explorer"' in node.astext() for node in doctree.findall(nodes.raw))


def add_book_paragraph(app: Sphinx, doctree: nodes.document) -> None:
    """Insert :func:`book_paragraph` after the title of every ``gdlab-explorer-live`` admonition."""
    controls = None
    for box in doctree.findall(nodes.admonition):
        if CLASS not in box["classes"]:
            continue
        if controls is None:
            controls = has_page_controls(app, doctree)
        live = live_site(app.srcdir) if app.config.gdlab_lite else "JupyterLite, when the book is built with it"
        titles = [i for i, child in enumerate(box.children) if isinstance(child, nodes.title)]
        box.insert(titles[0] + 1 if titles else 0, book_paragraph(live, controls))


def setup(app: Sphinx) -> dict:
    # The kernels that execute the notebooks for the build inherit this: there ``gdlab.widgets.live`` shows the
    # default figure instead of controls (the name is gdlab.widgets.STATIC_ENV; the extension does not import gdlab).
    os.environ["GDLAB_STATIC_EXPLORERS"] = "1"
    app.add_node(live_link, html=(visit_live_link_html, depart_live_link_html),
                 latex=(_skip, _skip), text=(_skip, _skip), man=(_skip, _skip), texinfo=(_skip, _skip))
    app.connect("doctree-read", add_book_paragraph)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
