"""Citations and references agree everywhere (book/_ext/gdlab_cite.py, book/references.md).

- The labels: author-year, the same in the notebooks' links, the book's citations and the bibliography page
  ("Du et al., 2019", not pybtex's alpha "[DZPS19]"); two works of the same authors and year get letters (2019a).
- Every chapter page ends with "Works cited in this chapter", listing exactly the works the page cites.

The built-site tests need ``_build/html``: skipped without it, unless ``GDLAB_REQUIRE_BUILDS=1``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import gdlab_cite  # noqa: E402

BIB = gdlab_cite.load_bibliography(ROOT / "book" / "references.bib")
CHAPTERS = sorted(p.stem for p in (ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
BIB_LABEL = re.compile(r'<span class="label"><span class="fn-bracket">\[</span>(.*?)<span class="fn-bracket">\]</span>')
# An in-text citation: <span class="bibtex-citation" ...>who (<a href="references.html#idN" ...>year</a>)</span>
CITATION = re.compile(r'<span class="bibtex-citation"[^>]*>(.*?)</span>', re.S)
CITED_HREF = re.compile(r'href="references\.html#(id\d+)"')


def text(fragment: str) -> str:
    return re.sub(r"<[^>]+>", "", fragment)


def label_problems(bibliography_labels: list[str], expected: set[str]) -> list[str]:
    """Labels of the bibliography page that are not author-year labels of the bib file (it lists the cited works,
    so it may show fewer than the file has), or no label at all."""
    if not bibliography_labels:
        return ["no label on the bibliography page"]
    return [f"unexpected label {x!r}" for x in sorted(set(bibliography_labels) - expected)]


def works_cited_problems(page: str) -> list[str]:
    """What is wrong with a chapter page's end: its last section is not "Works cited in this chapter", or that
    section's entries are not exactly the works the page cites (compared by label)."""
    sections = re.findall(r'<section id="([^"]+)">\s*<h2>(.*?)</h2>(.*?)</section>', page, re.S)
    if not sections or "Works cited in this chapter" not in text(sections[-1][1]):
        return ["the last section is not 'Works cited in this chapter'"]
    listed = set(re.findall(r"<strong>(.*?)\.</strong>", sections[-1][2]))
    cited = {text(c).strip().replace("(", "").replace(")", "") for c in CITATION.findall(page)}
    cited = {re.sub(r"\s+", " ", c) for part in cited for c in part.split(";")}
    listed_keys = {re.sub(r" \((\w+)\)$", r", \1", x) for x in listed}  # "Du et al. (2019)" -> "Du et al., 2019"
    cited = {c.strip() for c in cited}
    # a textual citation reads "Du et al. 2019" once the brackets are gone: compare without the comma
    norm = {c.replace(",", "") for c in cited}
    listed_norm = {x.replace(",", "") for x in listed_keys}
    return [f"cited, not listed: {c}" for c in sorted(norm - listed_norm)] + \
           [f"listed, not cited: {x}" for x in sorted(listed_norm - norm)]


def test_labels_are_author_year_with_letters():
    assert gdlab_cite.labels(BIB, False)["du2018gradient"] == "Du et al. (2019)"
    assert gdlab_cite.labels(BIB, True)["gelada2024"] == "Gelada and Buckman, 2024"
    arora = gdlab_cite.labels(BIB, True)
    assert {arora["arora2019convergence"], arora["arora2019exact"]} == {"Arora et al., 2019a", "Arora et al., 2019b"}
    assert gdlab_cite.labels(BIB, False)["chen2023nonapprox"] == "Chen and Muñoz Ewald (2023)"  # LaTeX decoded
    assert len(set(gdlab_cite.labels(BIB, True).values())) == len(BIB.entries)  # every label names one work


def test_update_link_texts_sets_labels():
    textual, parenthetical = gdlab_cite.labels(BIB, False), gdlab_cite.labels(BIB, True)
    md = "see [x](#cite-du2018gradient) and ([y](#cite-arora2019exact); [z](#cite-gelada2024))"
    assert gdlab_cite.update_link_texts(md, textual, parenthetical) == (
        "see [Du et al. (2019)](#cite-du2018gradient) and ([Arora et al., 2019b](#cite-arora2019exact); "
        "[Gelada and Buckman, 2024](#cite-gelada2024))")


def test_bibliography_page_shows_the_author_year_labels(html):
    page = (html / "book" / "references.html").read_text(encoding="utf-8")
    assert label_problems(BIB_LABEL.findall(page), set(gdlab_cite.labels(BIB, True).values())) == []


def test_power_alpha_labels_fail():
    assert label_problems(["GB24", "Du et al., 2019"], {"Gelada and Buckman, 2024", "Du et al., 2019"})


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_ends_with_exactly_its_works_cited(html, chapter):
    page = (html / "book" / f"{chapter}.html").read_text(encoding="utf-8")
    assert works_cited_problems(page) == []


def test_power_works_cited_checks(html):
    page = (html / "book" / f"{CHAPTERS[0]}.html").read_text(encoding="utf-8")
    last = page.rindex("<strong>")
    dropped = page[:last] + page[page.index("</strong>", last) + len("</strong>"):]  # one entry's label removed
    assert any("cited, not listed" in p for p in works_cited_problems(dropped))
    renamed = page.replace("Works cited in this chapter<a", "Further reading<a")
    assert works_cited_problems(renamed) == ["the last section is not 'Works cited in this chapter'"]
