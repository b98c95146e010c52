"""Long proofs fold away on the web page, short ones stay open (book/_ext/gdlab_proofs.py; issue 19, item 5).

A proof is *long* when its MyST source has more than :data:`LONG_WORDS` words (math included). Measured in Chromium
on the build before folding, at 1366 px, the five proofs above that limit (188 to 302 words) were 343 to 549 px tall,
every other proof (at most 130 words) at most 239 px; on a 390 px phone the long ones took 683 to 1208 px, a screen
or more. Source lines are a worse measure: the 18 short lines of an ``align`` (Theorem 2.4's proof, 107 words) make
239 px, and 13 long lines (Theorem 6.1's, 193 words) 366 px.

* In the sources (no build needed): a proof carries ``:class: dropdown`` (the marker gdlab_proofs folds) exactly
  when it is long.
* In the built pages (skipped without ``_build/html``, a failure with ``GDLAB_REQUIRE_BUILDS=1``): each chapter's
  proofs are, in order, those of its source; the long ones are ``<details>`` closed by default, with a "Proof"
  ``<summary>`` and an id that no other element of the page has, no ``dropdown`` class (sphinx-togglebutton would
  take the box over, and its script throws on a box without a title) and no second "Proof." in the text; the short
  ones are sphinx-proof's open boxes.

Each check is a pure function that returns the problems it finds; the power tests feed it wrong variants.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import gdlab_proofs  # noqa: E402

CHAPTERS = sorted((ROOT / "book").glob("0*.ipynb"))
#: A proof of more words than this in its source is long, and folds (see the module docstring for the measurements).
LONG_WORDS = 150

_OPEN = re.compile(r"^(?P<fence>:{3,})\{prf:proof\}\s*$")
_OPTION = re.compile(r"^:(?P<key>[A-Za-z_-]+):[ \t]*(?P<value>.*?)\s*$")


@dataclass(frozen=True)
class SourceProof:
    """A ``{prf:proof}`` block of a chapter source: its number of words and whether it is marked to fold."""

    words: int
    folds: bool


def source_proofs(markdown: str) -> list[SourceProof]:
    """The proofs of a MyST source, in order (colon fences, as the chapters write them)."""
    lines, proofs, i = markdown.splitlines(), [], 0
    while i < len(lines):
        opened = _OPEN.match(lines[i].strip())
        if not opened:
            i += 1
            continue
        j, options = i + 1, {}
        while j < len(lines) and (option := _OPTION.match(lines[j].strip())):
            options[option["key"]] = option["value"]
            j += 1
        end = j
        while end < len(lines) and lines[end].strip() != opened["fence"]:
            end += 1
        words = len(" ".join(lines[j:end]).split())
        proofs.append(SourceProof(words, gdlab_proofs.FOLD_CLASS in options.get("class", "").split()))
        i = end + 1
    return proofs


def chapter_proofs(path: Path) -> list[SourceProof]:
    """The proofs of a chapter notebook's markdown cells, in order."""
    nb = nbformat.read(path, as_version=4)
    return [p for cell in nb.cells if cell.cell_type == "markdown" for p in source_proofs(cell.source)]


def marker_problems(proofs: list[SourceProof], limit: int = LONG_WORDS) -> list[str]:
    """The proofs whose fold marker disagrees with their length."""
    return [
        f"proof {k + 1} ({p.words} words) is {'marked' if p.folds else 'not marked'} to fold"
        for k, p in enumerate(proofs)
        if p.folds != (p.words > limit)
    ]


@dataclass
class PageProof:
    """A proof of a built page: a folded ``<details>`` or an open ``<div>`` box."""

    folded: bool
    id: str
    classes: list[str]
    opens_open: bool = False
    title: str = ""
    text: str = ""


class _ProofParser(HTMLParser):
    """Collects the proofs of a page, in order, and every id of the page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.proofs: list[PageProof] = []
        self.ids: list[str] = []
        self._stack: list[tuple[str, PageProof | None, bool]] = []  # (tag, proof it opens, is its summary)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        classes = (a.get("class") or "").split()
        proof, summary = None, False
        if tag == "details" and "gdlab-proof" in classes:
            proof = PageProof(True, a.get("id", ""), classes, opens_open="open" in a)
        elif tag == "div" and "proof" in classes and "admonition" in classes and not (
            set(classes) - {"proof", "admonition", "dropdown", "toggle"}
        ):
            proof = PageProof(False, a.get("id", ""), classes)
        elif tag == "summary" and self._current() and self._current().folded and self._stack[-1][1]:
            summary = True
        if proof:
            self.proofs.append(proof)
        if tag not in {"br", "img", "hr", "meta", "link", "input", "source", "wbr"}:
            self._stack.append((tag, proof, summary))

    def handle_endtag(self, tag):
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        current = self._current()
        if current is None:
            return
        if any(s for _, _, s in self._stack):
            current.title += data
        else:
            current.text += data

    def _current(self) -> PageProof | None:
        return next((p for _, p, _ in reversed(self._stack) if p), None)


def page_proofs(html: str) -> tuple[list[PageProof], list[str]]:
    """The proofs of a built page in order, and the ids of all its elements."""
    parser = _ProofParser()
    parser.feed(html)
    return parser.proofs, parser.ids


def page_problems(source: list[SourceProof], html: str, limit: int = LONG_WORDS) -> list[str]:
    """What is wrong with the proofs of a built page, given its source's proofs."""
    proofs, ids = page_proofs(html)
    if len(proofs) != len(source):
        return [f"{len(proofs)} proofs on the page, {len(source)} in the source"]
    problems = []
    for k, (src, got) in enumerate(zip(source, proofs, strict=True)):
        name = f"proof {k + 1} ({src.words} words)"
        if got.folded != (src.words > limit):
            problems.append(f"{name} is {'folded' if got.folded else 'open'}")
        if not got.folded:
            continue
        if got.opens_open:
            problems.append(f"{name} opens unfolded")
        if got.title.strip() != gdlab_proofs.TITLE:
            problems.append(f"{name} has the bar {got.title.strip()!r}")
        if not got.id or ids.count(got.id) != 1:
            problems.append(f"{name} has the id {got.id!r}, which is not unique on the page")
        if gdlab_proofs.FOLD_CLASS in got.classes:
            problems.append(f"{name} keeps the class {gdlab_proofs.FOLD_CLASS!r} (sphinx-togglebutton would take it)")
        if got.text.lstrip().startswith(gdlab_proofs.PREFIX.strip()):
            problems.append(f"{name} says 'Proof.' again under its bar")
    return problems


# --- the sources (no build needed) ----------------------------------------------------------------------------


def test_there_are_long_and_short_proofs():
    proofs = [p for path in CHAPTERS for p in chapter_proofs(path)]
    assert any(p.words > LONG_WORDS for p in proofs) and any(p.words <= LONG_WORDS for p in proofs)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_long_proofs_are_marked_to_fold(path):
    assert marker_problems(chapter_proofs(path)) == []


def test_power_marker_check():
    """A long proof without the marker, and a short one with it, are reported; options other than the class and
    a class list that holds the marker are understood."""
    long_body = " ".join(["word"] * (LONG_WORDS + 1))
    unmarked = f":::{{prf:proof}}\n{long_body}\n:::\n"
    marked_short = ":::{prf:proof}\n:class: dropdown\nShort.\n:::\n"
    assert marker_problems(source_proofs(unmarked)) == [f"proof 1 ({LONG_WORDS + 1} words) is not marked to fold"]
    assert marker_problems(source_proofs(marked_short)) == ["proof 1 (1 words) is marked to fold"]
    fine = f"::::{{prf:proof}}\n:class: tight dropdown\n:label: p\n{long_body}\n::::\n"
    assert source_proofs(fine) == [SourceProof(LONG_WORDS + 1, True)]


# --- the built pages --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_long_proofs_fold_on_the_page(html, path):
    page = html / "book" / f"{path.stem}.html"
    assert page.is_file(), f"{page} is missing"
    assert page_problems(chapter_proofs(path), page.read_text(encoding="utf-8")) == []


def test_the_book_folds_some_proofs(html):
    folded = [p for path in CHAPTERS for p in page_proofs((html / "book" / f"{path.stem}.html").read_text())[0]
              if p.folded]
    assert len(folded) == sum(p.folds for path in CHAPTERS for p in chapter_proofs(path)) > 0


SHORT, LONG = SourceProof(10, False), SourceProof(LONG_WORDS + 1, True)
OPEN_BOX = '<div class="proof admonition" id="proof"><p>Proof. Short.</p></div>'
FOLDED = '<details class="proof gdlab-proof" id="proof-thm-a"><summary class="gdlab-proof-bar">Proof</summary>' \
         "<p>Long.</p></details>"


def test_power_page_check_accepts_the_right_page():
    assert page_problems([SHORT, LONG], OPEN_BOX + FOLDED) == []


@pytest.mark.parametrize(
    "html, expected",
    [
        # sphinx-proof's own rendering of a marked proof: an untitled box that sphinx-togglebutton cannot fold
        (OPEN_BOX + '<div class="proof admonition dropdown" id="proof"><p>Proof. Long.</p></div>', "is open"),
        (OPEN_BOX + FOLDED.replace('id="proof-thm-a"', 'id="proof"'), "not unique"),
        (OPEN_BOX + FOLDED.replace(">Proof</summary>", "></summary>"), "has the bar ''"),
        (OPEN_BOX + FOLDED.replace("<details ", "<details open "), "opens unfolded"),
        (OPEN_BOX + FOLDED.replace("gdlab-proof\"", "gdlab-proof dropdown\""), "keeps the class"),
        (OPEN_BOX + FOLDED.replace("<p>Long.", "<p>Proof. Long."), "again"),
        (FOLDED.replace("thm-a", "thm-b") + FOLDED, "is folded"),
        (FOLDED, "1 proofs on the page, 2 in the source"),
    ],
    ids=["untitled-dropdown", "duplicate-id", "no-title", "open", "dropdown-class", "proof-twice", "short-folded",
         "missing"],
)
def test_power_page_check(html, expected):
    problems = page_problems([SHORT, LONG], html)
    assert any(expected in p for p in problems), problems
