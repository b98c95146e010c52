"""The book's PDFs in the built site: copied in, linked from the pages, and behind the download menu's ".pdf" entry.

``scripts/build_pdfs.py`` builds the PDFs (Sphinx's LaTeX builder and xelatex) into ``_build/pdf/`` before the HTML
build; this extension (``_config.yml``) takes them from there:

- ``build-finished`` (HTML builders) copies each available PDF of the site's editions to ``pdf/`` in the site;
- the role ``{gdlab-pdf}`book``` (or ``student``, or ``site``: the site's own edition, the first of
  ``gdlab_pdf_editions``) is a download link to that copy, its text the file name and size (measured on the file).
  In the PDF itself, and in a site without that PDF, it is plain text that says so;
- the header's download menu: its ".pdf" entry, which the theme makes a ``window.print()`` button, becomes a link to
  the site's PDF (or is removed when there is none), and ``gdlab_downloads.js`` gives every entry of the menu the
  ``download`` attribute, so that ``.ipynb``, ``.md`` and ``.pdf`` are saved as files instead of opened as text.

Editions: ``gdlab_pdf_editions`` (default both; ``scripts/build_student.py`` sets ``["student"]``, so the student site
offers no PDF with solutions). The first listed is the one behind the menu's ".pdf". A build without the PDFs (a plain
local ``jupyter-book build .``) works and says at its start which PDFs are missing and how to build them; CI builds
them first, and ``tests/test_site_downloads.py`` fails when the site lacks them or a link to them does not resolve.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from docutils import nodes
from gdlab_assets import copy_changed, html_succeeded
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: Where scripts/build_pdfs.py puts the PDFs (relative to the repository root), and where the site serves them.
PDF_DIR = "_build/pdf"
SITE_DIR = "pdf"
#: Gives the download menu's entries the ``download`` attribute (the theme's template has no place for it).
SCRIPT = Path(__file__).with_name("gdlab_downloads.js")
#: What a link to a PDF says when the build lacks it.
MISSING = "not included in this build of the site"
#: The role's name for the site's own edition.
SITE_EDITION = "site"


@dataclass(frozen=True)
class Edition:
    """One PDF of the book: its file name and what it is, in words."""

    file: str
    title: str


#: The one list of the book's PDFs.
EDITIONS = {
    "book": Edition("gdlab-book.pdf", "the book with solutions"),
    "student": Edition("gdlab-book-student.pdf", "the student edition, without solutions"),
}


def megabytes(path: Path) -> str:
    """The size of the file at ``path`` in words: ``"3.1 MB"``."""
    return f"{path.stat().st_size / 1e6:.1f} MB"


def available(srcdir: Path, editions: list[str]) -> dict[str, Path]:
    """The built PDFs of ``editions`` found in ``srcdir/_build/pdf``: edition -> path (missing ones left out)."""
    found = {name: srcdir / PDF_DIR / EDITIONS[name].file for name in editions}
    return {name: path for name, path in found.items() if path.is_file()}


def site_path(edition: str) -> str:
    """The PDF's path in the built site, from its root: ``pdf/gdlab-book.pdf``."""
    return f"{SITE_DIR}/{EDITIONS[edition].file}"


class pdf_link(nodes.inline):
    """A link to one of the site's PDFs (``edition``); its children are the link text."""


def pdf_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{gdlab-pdf}`book```: a download link to the site's PDF of that edition (resolved per builder)."""
    edition = text.strip()
    if edition not in (*EDITIONS, SITE_EDITION):
        msg = inliner.reporter.error(f"gdlab-pdf: unknown edition {edition!r} (one of {sorted(EDITIONS)})", line=lineno)
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    env = inliner.document.settings.env
    for name in EDITIONS if edition == SITE_EDITION else [edition]:  # re-read the page when the PDF changes
        env.note_dependency(str(Path(env.srcdir) / PDF_DIR / EDITIONS[name].file))
    return [pdf_link(rawtext, edition=edition)], []


def link_text(edition: str, path: Path | None, offered: bool) -> str:
    """What the reader sees: the file and its size; or that this edition of the site does not offer it (the student
    site and the book with solutions); or that this build lacks it (built without ``scripts/build_pdfs.py``)."""
    file = EDITIONS[edition].file
    if not offered:
        return f"{file} (not offered in this edition of the site)"
    if path is None:
        return f"{file} ({MISSING})"
    return f"{file} ({megabytes(path)})"


def resolve_links(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Give every ``pdf_link`` its text; outside HTML, or when the site has no such PDF, it becomes plain text."""
    found = available(Path(app.srcdir), app.config.gdlab_pdf_editions)
    html = app.builder.format == "html"
    for node in list(doctree.findall(pdf_link)):
        if node["edition"] == SITE_EDITION:
            node["edition"] = app.config.gdlab_pdf_editions[0]
        edition = node["edition"]
        if not html:
            node.replace_self(nodes.emphasis("", EDITIONS[edition].file))
            continue
        text = link_text(edition, found.get(edition), edition in app.config.gdlab_pdf_editions)
        if edition in found:
            node += nodes.Text(text)
        else:
            node.replace_self(nodes.emphasis("", text))


def visit_pdf_link_html(self, node: pdf_link) -> None:
    root = "../" * self.builder.current_docname.count("/")  # the page's way back to the site root
    self.body.append(f'<a class="reference download gdlab-pdf" href="{root}{site_path(node["edition"])}" download="">')


def depart_pdf_link_html(self, node: pdf_link) -> None:
    self.body.append("</a>")


def menu_entry(edition: str, path: Path, pathto) -> dict:
    """The download menu's ".pdf" entry: a link to the site's PDF (the theme's entry prints the page instead)."""
    return {
        "type": "link",
        "url": pathto(site_path(edition), 1),
        "text": ".pdf",
        "tooltip": f"Download {EDITIONS[edition].title} as PDF ({megabytes(path)})",
        "icon": "fas fa-file-pdf",
        "label": "download-pdf-button",
    }


def download_menu(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Replace the theme's print button in the download menu by the site's PDF, or drop it when there is none."""
    found = available(Path(app.srcdir), app.config.gdlab_pdf_editions)
    first = next((e for e in app.config.gdlab_pdf_editions if e in found), None)
    for group in context.get("header_buttons", []):
        if group.get("label") != "download-buttons":
            continue
        buttons = [b for b in group["buttons"] if b.get("label") != "download-pdf-button"]
        if first is not None:
            buttons.append(menu_entry(first, found[first], context["pathto"]))
        group["buttons"] = buttons


def report_missing(app: Sphinx) -> None:
    """Say at the start of an HTML build which PDFs the site will lack (an info line: a local build may skip them)."""
    if app.builder.format != "html":
        return
    missing = [EDITIONS[e].file for e in app.config.gdlab_pdf_editions
               if e not in available(Path(app.srcdir), app.config.gdlab_pdf_editions)]
    if missing:
        logger.info(f"gdlab_pdf: the PDFs {', '.join(missing)} are not in {PDF_DIR}/, so this site will not offer "
                    "them (their links say so): build them first with `python scripts/build_pdfs.py`")


def copy_files(app: Sphinx, exception) -> None:
    """Copy the available PDFs into the site's ``pdf/`` folder, and the menu's script into ``_static/``."""
    if not html_succeeded(app, exception):
        return
    copy_changed([SCRIPT], Path(app.outdir) / "_static")
    target = Path(app.outdir) / SITE_DIR
    for edition, path in available(Path(app.srcdir), app.config.gdlab_pdf_editions).items():
        target.mkdir(exist_ok=True)
        shutil.copyfile(path, target / EDITIONS[edition].file)


def setup(app: Sphinx) -> dict:
    app.add_config_value("gdlab_pdf_editions", list(EDITIONS), "env", [list])
    app.add_node(pdf_link, html=(visit_pdf_link_html, depart_pdf_link_html))
    app.add_role("gdlab-pdf", pdf_role)
    app.add_js_file(SCRIPT.name, loading_method="defer")
    app.connect("builder-inited", report_missing)
    app.connect("doctree-resolved", resolve_links)
    app.connect("html-page-context", download_menu, priority=502)
    app.connect("build-finished", copy_files)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
