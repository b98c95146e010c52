"""Checks of what the built sites offer for download: the PDFs (book/_ext/gdlab_pdf.py, scripts/build_pdfs.py) and
the links to them, and the entries of every page's download menu.

The site checks are pure functions over a site folder (``pdf_problems``, ``menu_problems``), run on the built book
(``_build/html``) and on the student edition (``_build/student``), and, as power tests, on small fake sites that
break them on purpose. The build tests are skipped when a build folder is missing, unless ``GDLAB_REQUIRE_BUILDS=1``
(CI, after building the PDFs and the HTML): then a missing build is a failure, and so is a site without its PDFs.
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from site_paths import BUILD, require_build

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
sys.path.insert(0, str(ROOT / "scripts"))

import gdlab_pdf  # noqa: E402
from build_pdfs import log_problems  # noqa: E402

#: Each site and the PDFs it must offer: the book site both, the student site only its own (no solutions).
SITES = {"html": ["book", "student"], "student": ["student"]}
NOT_IN_SITE = ("lite", "_static", "_sources", "_images", "_downloads")


class _Links(HTMLParser):
    """The ``<a>`` elements of a page (attributes), and the print buttons (``onclick="window.print()"``)."""

    def __init__(self):
        super().__init__()
        self.links: list[dict] = []
        self.print_buttons = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs)
        if "window.print()" in (attrs.get("onclick") or ""):
            self.print_buttons += 1


def page_links(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def pages(site: Path) -> list[Path]:
    """The book's pages of a site (not the JupyterLite application, not Sphinx's assets)."""
    return [p for p in sorted(site.rglob("*.html")) if p.relative_to(site).parts[0] not in NOT_IN_SITE]


def target(page: Path, href: str) -> Path:
    """The file a relative link of ``page`` points at."""
    return (page.parent / unquote(urlsplit(href).path)).resolve()


def is_pdf(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:5] == b"%PDF-"


def pdf_problems(site: Path, editions: list[str]) -> list[str]:
    """What is wrong with the PDFs of ``site``: a PDF of ``editions`` missing from ``pdf/`` or not a PDF, a PDF there
    that the site should not offer, a page that links a PDF that does not resolve, a link text saying the PDF is not
    included, no page linking each PDF."""
    problems = []
    for edition in editions:
        if not is_pdf(site / gdlab_pdf.site_path(edition)):
            problems.append(f"no PDF at {gdlab_pdf.site_path(edition)}")
    others = [e for e in gdlab_pdf.EDITIONS if e not in editions and (site / gdlab_pdf.site_path(e)).exists()]
    problems += [f"{gdlab_pdf.site_path(e)} should not be in this site" for e in others]
    linked = set()
    for page in pages(site):
        rel = page.relative_to(site).as_posix()
        text = page.read_text(encoding="utf-8")
        if gdlab_pdf.MISSING in text:
            problems.append(f"{rel} says a PDF is not included")
        for link in page_links(page).links:
            href = link["href"]
            if urlsplit(href).scheme or not urlsplit(href).path.endswith(".pdf"):
                continue
            path = target(page, href)
            if not is_pdf(path):
                problems.append(f"{rel} links {href}, which is not a PDF of the site")
            linked.add(path)
    for edition in editions:
        if (site / gdlab_pdf.site_path(edition)).resolve() not in linked:
            problems.append(f"no page links {gdlab_pdf.site_path(edition)}")
    return problems


def menu_problems(site: Path) -> list[str]:
    """What is wrong with the download menus of ``site``: a page whose menu prints instead of linking the PDF, has no
    .pdf entry, or has an entry whose link does not resolve to a file of the site."""
    problems = []
    for page in pages(site):
        rel = page.relative_to(site).as_posix()
        parsed = page_links(page)
        if parsed.print_buttons:
            problems.append(f"{rel}: a print button")
        entries = [a for a in parsed.links if "dropdown-item" in (a.get("class") or "")
                   and re.search(r"\bbtn-download-", a.get("class") or "")]
        if "dropdown-download-buttons" not in page.read_text(encoding="utf-8"):
            continue
        if not any("btn-download-pdf-button" in a["class"] for a in entries):
            problems.append(f"{rel}: no .pdf entry in the download menu")
        for a in entries:
            if not target(page, a["href"]).is_file():
                problems.append(f"{rel}: the menu entry {a['href']} does not resolve")
    return problems


def built(name: str) -> Path:
    return require_build(BUILD / name, f"no built site in {BUILD / name}")


# --- the built sites ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SITES)
def test_site_offers_its_pdfs_and_links_them(name):
    site = built(name)
    assert pdf_problems(site, SITES[name]) == []


@pytest.mark.parametrize("name", SITES)
def test_download_menu_entries_resolve(name):
    assert menu_problems(built(name)) == []


def test_lecturers_page_links_both_pdfs():
    page = built("html") / "book" / "lecturers.html"
    hrefs = {target(page, a["href"]) for a in page_links(page).links}
    for edition in gdlab_pdf.EDITIONS:
        assert (page.parents[1] / gdlab_pdf.site_path(edition)).resolve() in hrefs, edition


def test_student_pdf_has_no_solutions():
    """The student PDF is smaller than the book's (the solutions are the difference)."""
    site = built("html")
    book, student = (site / gdlab_pdf.site_path(e) for e in ("book", "student"))
    if not (is_pdf(book) and is_pdf(student)):
        pytest.fail("the PDFs are missing (see test_site_offers_its_pdfs_and_links_them)")
    assert student.stat().st_size < book.stat().st_size


# --- power tests: fake sites that break the checks ----------------------------------------------------------

MENU = ('<div class="dropdown dropdown-download-buttons"><ul>'
        '<li><a href="../_sources/book/a.md" class="btn btn-download-source-button dropdown-item">.md</a></li>{pdf}'
        "</ul></div>")
PDF_ENTRY = '<li><a href="../pdf/gdlab-book.pdf" class="btn btn-download-pdf-button dropdown-item">.pdf</a></li>'
PRINT_ENTRY = '<li><button onclick="window.print()" class="btn btn-download-pdf-button dropdown-item">.pdf</button></li>'


def fake_site(tmp_path: Path, body: str, menu_pdf: str = PDF_ENTRY, pdfs=("book",)) -> Path:
    """A one-page site ``book/a.html`` with ``body``, a download menu and the PDFs of ``pdfs``."""
    (tmp_path / "book").mkdir()
    (tmp_path / "_sources" / "book").mkdir(parents=True)
    (tmp_path / "_sources" / "book" / "a.md").write_text("# A\n")
    (tmp_path / "book" / "a.html").write_text(f"<html><body>{MENU.format(pdf=menu_pdf)}{body}</body></html>")
    for edition in pdfs:
        path = tmp_path / gdlab_pdf.site_path(edition)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"%PDF-1.5\n")
    return tmp_path


GOOD_BODY = '<a href="../pdf/gdlab-book.pdf" download="">gdlab-book.pdf (2.7 MB)</a>'


def test_fake_site_passes(tmp_path):
    site = fake_site(tmp_path, GOOD_BODY)
    assert pdf_problems(site, ["book"]) == [] and menu_problems(site) == []


def test_power_missing_pdf(tmp_path):
    problems = pdf_problems(fake_site(tmp_path, GOOD_BODY, pdfs=()), ["book"])
    assert any("no PDF at" in p for p in problems) and any("not a PDF of the site" in p for p in problems)


def test_power_unresolved_link(tmp_path):
    site = fake_site(tmp_path, GOOD_BODY + '<a href="../pdf/gdlab-book-student.pdf">student</a>')
    assert any("gdlab-book-student.pdf, which is not a PDF" in p for p in pdf_problems(site, ["book"]))


def test_power_pdf_not_linked_or_not_included(tmp_path):
    site = fake_site(tmp_path, "gdlab-book.pdf (not included in this build of the site)", menu_pdf="")
    problems = pdf_problems(site, ["book"])
    assert any("no page links" in p for p in problems) and any("says a PDF is not included" in p for p in problems)


def test_power_solutions_pdf_in_student_site(tmp_path):
    site = fake_site(tmp_path, GOOD_BODY, pdfs=("book", "student"))
    assert any("should not be in this site" in p for p in pdf_problems(site, ["book"]))


def test_power_print_button_in_menu(tmp_path):
    problems = menu_problems(fake_site(tmp_path, GOOD_BODY, menu_pdf=PRINT_ENTRY))
    assert any("print button" in p for p in problems) and any("no .pdf entry" in p for p in problems)


def test_power_menu_entry_does_not_resolve(tmp_path):
    site = fake_site(tmp_path, GOOD_BODY)
    (site / "_sources" / "book" / "a.md").unlink()
    assert any("does not resolve" in p for p in menu_problems(site))


# --- the extension and the PDF build's checks, without a build ----------------------------------------------


def test_link_text_gives_size_or_says_missing(tmp_path):
    pdf = tmp_path / "x.pdf"
    pdf.write_bytes(b"%PDF-" + b"0" * 2_500_000)
    assert gdlab_pdf.link_text("book", pdf, True) == "gdlab-book.pdf (2.5 MB)"
    assert gdlab_pdf.MISSING in gdlab_pdf.link_text("book", None, True)
    assert "not offered in this edition" in gdlab_pdf.link_text("book", None, False)


def test_available_finds_only_built_pdfs(tmp_path):
    (tmp_path / gdlab_pdf.PDF_DIR).mkdir(parents=True)
    (tmp_path / gdlab_pdf.PDF_DIR / "gdlab-book-student.pdf").write_bytes(b"%PDF-")
    assert list(gdlab_pdf.available(tmp_path, ["book", "student"])) == ["student"]
    assert gdlab_pdf.available(tmp_path, ["book"]) == {}


def test_download_menu_replaces_the_print_button(tmp_path):
    (tmp_path / gdlab_pdf.PDF_DIR).mkdir(parents=True)
    (tmp_path / gdlab_pdf.PDF_DIR / "gdlab-book.pdf").write_bytes(b"%PDF-")

    class App:
        srcdir = str(tmp_path)

        class config:  # noqa: N801
            gdlab_pdf_editions = ["book", "student"]

    def menu():
        return {"header_buttons": [{"label": "download-buttons", "buttons": [
            {"type": "link", "label": "download-source-button", "url": "x.ipynb"},
            {"type": "javascript", "label": "download-pdf-button", "javascript": "window.print()"}]}],
            "pathto": lambda path, relative: "../" + path}

    context = menu()
    gdlab_pdf.download_menu(App, "book/a", "page.html", context, None)
    buttons = context["header_buttons"][0]["buttons"]
    assert [b["type"] for b in buttons] == ["link", "link"] and buttons[1]["url"] == "../pdf/gdlab-book.pdf"
    (tmp_path / gdlab_pdf.PDF_DIR / "gdlab-book.pdf").unlink()  # no PDF: no entry, and no print button either
    context = menu()
    gdlab_pdf.download_menu(App, "book/a", "page.html", context, None)
    assert [b["label"] for b in context["header_buttons"][0]["buttons"]] == ["download-source-button"]


GOOD_LOG = "Output written on gdlab-book.pdf (190 pages).\n"


def test_log_problems_accepts_a_good_log():
    assert log_problems(GOOD_LOG) == (190, [])


@pytest.mark.parametrize("log, words", [
    ("Output written on gdlab-book.pdf (12 pages).\n", "12 pages"),
    (GOOD_LOG + "Missing character: There is no ∇ in font\n", "missing from the fonts"),
    (GOOD_LOG + "LaTeX Warning: Reference `equation:book/x:eq' on page 9 \nundefined on input line 3.\n",
     "printed as ??"),
    ("no output line at all\n", "0 pages"),
])
def test_power_log_problems(log, words):
    assert any(words in p for p in log_problems(log)[1])
