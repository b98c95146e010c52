"""Citations that read as author and year wherever a chapter notebook is opened, and are bibtex citations in the book.

A chapter notebook cites with a Markdown link to the reference's entry at the end of the notebook::

    as [Du et al. (2019)](#cite-du2018gradient) show ...                       textual citation
    ... converges ([Du et al., 2019](#cite-du2018gradient); [Jacot et al., 2018](#cite-jacot2018ntk)).   parenthetical

Jupyter (with or without jupyterlab-myst), Colab and VS Code show the author and year, linked to the entry in the
notebook's last cell, "Works cited", which :func:`works_cited` generates from ``book/references.bib``
(``scripts/sync_notebooks.py`` writes it; it is tagged ``remove-cell``: the book shows its own version of it,
:func:`for_book`, as the chapter's last section, and has its bibliography page as well). Markdown
cannot ask sphinxcontrib-bibtex for a citation, so this Sphinx extension (``_config.yml``) rewrites the links of
every chapter notebook on ``source-read``, before myst-nb parses it: a parenthesised group of links separated by
``;`` becomes ``{cite:p}`k1,k2```, any other link ``{cite:t}`k```. The book keeps its bibliography page and its
numbered, linked citations. ``tests/test_notebook_sources.py`` checks that each link's text is the label
:func:`label` makes from the bib entry (so the text cannot drift from the bibliography) and that the notebook's
"Works cited" cell is current.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

#: Prefix of a citation link's target: ``#cite-<bibtex key>``; the entry in "Works cited" has the label ``cite-<key>``.
PREFIX = "cite-"
LINK = re.compile(r"\[(?P<text>[^\[\]]+)\]\(#" + PREFIX + r"(?P<key>[A-Za-z0-9_:-]+)\)")
_LINK = LINK.pattern.replace("?P<text>", "?:").replace("?P<key>", "?:")
GROUP = re.compile(r"\((?P<links>" + _LINK + r"(?:; " + _LINK + r")*)\)")
#: Tag of the "Works cited" cell (left out of the book, which has its bibliography page).
WORKS_CITED_TAG = "remove-cell"
WORKS_CITED_TITLE = "## Works cited in this chapter"
#: The cell id of "Works cited" (written by scripts/sync_notebooks.py).
WORKS_CITED_ID = "works-cited"
#: The first paragraph of "Works cited" in the book (the notebook's says how the cell is made).
BOOK_INTRO = "The works cited in this chapter; the {doc}`references` page lists every work cited in the book."


def citations(markdown: str) -> list[tuple[str, str, bool]]:
    """Every citation link of ``markdown`` as ``(text, key, parenthetical)``, in order."""
    found, spans = [], []
    for group in GROUP.finditer(markdown):
        spans.append(group.span())
        start = group.start("links")
        found += [(start + m.start(), m["text"], m["key"], True) for m in LINK.finditer(group["links"])]
    for m in LINK.finditer(markdown):
        if not any(a <= m.start() < b for a, b in spans):
            found.append((m.start(), m["text"], m["key"], False))
    return [(text, key, parenthetical) for _, text, key, parenthetical in sorted(found)]


def to_sphinx(markdown: str) -> str:
    """``markdown`` with its citation links replaced by sphinxcontrib-bibtex roles."""
    def group(m: re.Match) -> str:
        keys = [link["key"] for link in LINK.finditer(m["links"])]
        return "{cite:p}`" + ",".join(keys) + "`"

    markdown = GROUP.sub(group, markdown)
    return LINK.sub(lambda m: "{cite:t}`" + m["key"] + "`", markdown)


def _surnames(entry) -> list[str]:
    """The authors' (else editors') last names, with LaTeX accents decoded (``Mu{\\~n}oz`` -> ``Muñoz``)."""
    from pybtex.richtext import Text

    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    return [Text.from_latex(" ".join(p.prelast_names + p.last_names)).render_as("text") for p in persons]


def author_year(entry) -> tuple[str, str]:
    """Who and when, with sphinxcontrib-bibtex's author_year rules for the names (one, two, or first et al.):
    ``("Du et al.", "2019")``."""
    names = _surnames(entry)
    if not names:
        raise ValueError(f"bib entry {entry.key!r} has no author or editor")
    who = names[0] if len(names) == 1 else f"{names[0]} and {names[1]}" if len(names) == 2 else f"{names[0]} et al."
    return who, entry.fields["year"]


def years(entries) -> dict[str, str]:
    """The year each entry's label shows: its year, with a letter when other entries share its author-year
    (``2019a``, ``2019b``, in the order of their titles), so that every label names one work."""
    groups: dict[tuple[str, str], list] = {}
    for entry in entries:
        groups.setdefault(author_year(entry), []).append(entry)
    shown = {}
    for (_, year), group in groups.items():
        group.sort(key=lambda e: e.fields.get("title", "").lower())
        for i, entry in enumerate(group):
            shown[entry.key] = year + (chr(ord("a") + i) if len(group) > 1 else "")
    return shown


def label(entry, parenthetical: bool, year: str | None = None) -> str:
    """Author-year label of a pybtex entry: "Du et al. (2019)" (textual) or "Du et al., 2019" (parenthetical); ``year``
    replaces the entry's year (with its letter from :func:`years`)."""
    who, own_year = author_year(entry)
    year = year or own_year
    return f"{who}, {year}" if parenthetical else f"{who} ({year})"


def labels(bibliography, parenthetical: bool) -> dict[str, str]:
    """The label of every entry of ``bibliography`` (a pybtex database): key -> label."""
    shown = years(bibliography.entries.values())
    return {key: label(entry, parenthetical, shown[key]) for key, entry in bibliography.entries.items()}


def update_link_texts(markdown: str, textual: dict[str, str], parenthetical: dict[str, str]) -> str:
    """``markdown`` with the text of each citation link set to its entry's label (``textual`` or ``parenthetical``,
    from :func:`labels`, as the link is used), so that the text cannot drift from the bibliography.
    ``scripts/sync_notebooks.py`` runs it."""

    def group(m: re.Match) -> str:
        return "(" + LINK.sub(lambda k: f"[{parenthetical[k['key']]}](#{PREFIX}{k['key']})", m["links"]) + ")"

    def single(m: re.Match) -> str:
        return f"[{textual[m['key']]}](#{PREFIX}{m['key']})"

    parts, last = [], 0
    for g in GROUP.finditer(markdown):
        parts += [LINK.sub(single, markdown[last:g.start()]), group(g)]
        last = g.end()
    return "".join(parts) + LINK.sub(single, markdown[last:])


def load_bibliography(path: Path):
    """The pybtex database of ``path`` (``book/references.bib``)."""
    from pybtex.database import parse_file

    return parse_file(str(path))


def works_cited(keys: list[str], bibliography) -> str:
    """Markdown of the "Works cited" cell: one labelled entry per key, in author-year order."""
    from pybtex.plugin import find_plugin

    style = find_plugin("pybtex.style.formatting", "plain")()
    backend = find_plugin("pybtex.backends", "markdown")()
    shown = labels(bibliography, False)
    entries = sorted((bibliography.entries[k] for k in set(keys)), key=lambda e: (_surnames(e), shown[e.key]))
    lines = [WORKS_CITED_TITLE, "",
             "The sources cited above; the book's bibliography lists them all. (This cell is generated from",
             "`book/references.bib` by `scripts/sync_notebooks.py`.)", ""]
    for entry in entries:
        formatted = next(iter(style.format_entries([entry])))
        text = " ".join(formatted.text.render(backend).split())
        lines += [f"({PREFIX}{entry.key})=", f"**{shown[entry.key]}.** {text}", ""]
    return "\n".join(lines).rstrip() + "\n"


def rewrite_notebook(text: str, change=to_sphinx) -> str:
    """The JSON text of a notebook with every markdown cell's source passed through ``change`` (by default the
    citation links rewritten by :func:`to_sphinx`). Used on ``source-read``, before myst-nb parses the notebook."""
    nb = json.loads(text)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            cell["source"] = change(source)
    return json.dumps(nb, ensure_ascii=False)


def for_book(works_cited_cell: dict) -> dict:
    """The notebook's "Works cited" cell as the book shows it, as the chapter's last section: shown (the notebook
    tags it ``remove-cell``), without its entries' link targets (the book's citations link to the bibliography page,
    and the same target in several chapters would be a duplicate label), with :data:`BOOK_INTRO` as first paragraph."""
    source = "".join(works_cited_cell["source"]) if isinstance(works_cited_cell["source"], list) \
        else works_cited_cell["source"]
    target = re.compile(r"^\(" + PREFIX + r"[^)]*\)=\n", re.M)
    entries = [p for p in (target.sub("", p) for p in source.split("\n\n")) if p.startswith("**")]
    cell = dict(works_cited_cell, source="\n\n".join([WORKS_CITED_TITLE, BOOK_INTRO, *entries]) + "\n")
    tags = [t for t in cell.get("metadata", {}).get("tags", []) if t != WORKS_CITED_TAG]
    cell["metadata"] = dict(cell.get("metadata", {}), tags=tags)
    return cell


def book_notebook(text: str) -> str:
    """The JSON text of a chapter notebook as the book reads it: citation links as bibtex roles (:func:`to_sphinx`)
    and "Works cited" shown as its last section (:func:`for_book`)."""
    nb = json.loads(rewrite_notebook(text))
    nb["cells"] = [for_book(c) if c.get("id") == WORKS_CITED_ID else c for c in nb.get("cells", [])]
    return json.dumps(nb, ensure_ascii=False)


def on_source_read(app, docname: str, source: list[str]) -> None:
    if str(app.env.doc2path(docname)).endswith(".ipynb"):
        source[0] = book_notebook(source[0])


#: Name of the styles below, for ``bibtex_default_style`` and ``bibtex_reference_style`` in ``_config.yml``.
STYLE = "gdlab_author_year"


def split_label(text: str) -> tuple[str, str]:
    """A parenthetical label's who and year: ``"Du et al., 2019"`` -> ``("Du et al.", "2019")``."""
    who, _, year = text.rpartition(", ")
    return who, year


def register_styles() -> None:
    """Register with pybtex and sphinxcontrib-bibtex the styles that make the book's citations and its bibliography
    read as the notebooks do: bibliography labels "Du et al., 2019" (from :func:`labels`, instead of pybtex's alpha
    labels "[DZPS19]"), textual citations "Du et al. (2019)", parenthetical "(Du et al., 2019; Jacot et al., 2018)".
    Both citation forms take who and year from the label, so that a letter that tells two works apart (2019a)
    shows in the text too."""
    from dataclasses import dataclass

    import pybtex.plugin
    import sphinxcontrib.bibtex.plugin
    from pybtex.richtext import Text
    from pybtex.style.formatting.plain import Style as PlainStyle
    from pybtex.style.labels import BaseLabelStyle
    from sphinxcontrib.bibtex.style.referencing import BaseReferenceStyle, BracketStyle, GroupReferenceStyle
    from sphinxcontrib.bibtex.style.template import join, node, reference

    class LabelStyle(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            entries = list(sorted_entries)
            shown = years(entries)
            return [label(entry, True, shown[entry.key]) for entry in entries]

    class FormattingStyle(PlainStyle):
        default_label_style = LabelStyle

    @node
    def who(children, data):
        return Text(split_label(data["formatted_entry"].label)[0])

    @node
    def year(children, data):
        return Text(split_label(data["formatted_entry"].label)[1])

    round_ = BracketStyle(left="(", right=")", sep="; ")

    @dataclass
    class Textual(BaseReferenceStyle):
        def role_names(self):
            return ["t"]

        def outer(self, role_name, children):
            return round_.outer(children, brackets=False)

        def inner(self, role_name):
            return join[who, " (", reference[year], ")"]

    @dataclass
    class Parenthetical(BaseReferenceStyle):
        def role_names(self):
            return ["p"]

        def outer(self, role_name, children):
            return round_.outer(children, brackets=True)

        def inner(self, role_name):
            return reference[join[who, ", ", year]]

    @dataclass
    class ReferenceStyle(GroupReferenceStyle):
        def __post_init__(self):
            self.styles.extend([Textual(), Parenthetical()])
            super().__post_init__()

    pybtex.plugin.register_plugin("pybtex.style.labels", STYLE, LabelStyle, force=True)
    pybtex.plugin.register_plugin("pybtex.style.formatting", STYLE, FormattingStyle, force=True)
    sphinxcontrib.bibtex.plugin.register_plugin("sphinxcontrib.bibtex.style.referencing", STYLE, ReferenceStyle,
                                                force=True)


def setup(app) -> dict:
    register_styles()
    app.connect("source-read", on_source_read)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
