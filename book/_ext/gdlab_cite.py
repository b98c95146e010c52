"""Citations that read as author and year wherever a chapter notebook is opened, and are bibtex citations in the book.

A chapter notebook cites with a Markdown link to the reference's entry at the end of the notebook::

    as [Du et al. (2019)](#cite-du2018gradient) show ...                       textual citation
    ... converges ([Du et al., 2019](#cite-du2018gradient); [Jacot et al., 2018](#cite-jacot2018ntk)).   parenthetical

Jupyter (with or without jupyterlab-myst), Colab and VS Code show the author and year, linked to the entry in the
notebook's last cell, "Works cited", which :func:`works_cited` generates from ``book/references.bib``
(``scripts/sync_notebooks.py`` writes it; it is tagged ``remove-cell``, so the book does not show it). Markdown
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
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    return [" ".join(p.prelast_names + p.last_names) for p in persons]


def label(entry, parenthetical: bool) -> str:
    """Author-year label of a pybtex entry: "Du et al. (2019)" (textual) or "Du et al., 2019" (parenthetical),
    with sphinxcontrib-bibtex's author_year rules for the names (one, two, or first et al.)."""
    names = _surnames(entry)
    if not names:
        raise ValueError(f"bib entry {entry.key!r} has no author or editor")
    who = names[0] if len(names) == 1 else f"{names[0]} and {names[1]}" if len(names) == 2 else f"{names[0]} et al."
    year = entry.fields["year"]
    return f"{who}, {year}" if parenthetical else f"{who} ({year})"


def link(entry, parenthetical: bool) -> str:
    """The Markdown citation link to ``entry`` (what a notebook's source holds)."""
    return f"[{label(entry, parenthetical)}](#{PREFIX}{entry.key})"


def load_bibliography(path: Path):
    """The pybtex database of ``path`` (``book/references.bib``)."""
    from pybtex.database import parse_file

    return parse_file(str(path))


def works_cited(keys: list[str], bibliography) -> str:
    """Markdown of the "Works cited" cell: one labelled entry per key, in author-year order."""
    from pybtex.plugin import find_plugin

    style = find_plugin("pybtex.style.formatting", "plain")()
    backend = find_plugin("pybtex.backends", "markdown")()
    entries = sorted((bibliography.entries[k] for k in set(keys)), key=lambda e: (_surnames(e), e.fields["year"]))
    lines = [WORKS_CITED_TITLE, "",
             "The sources cited above; the book's bibliography lists them all. (This cell is generated from",
             "`book/references.bib` by `scripts/sync_notebooks.py`.)", ""]
    for entry in entries:
        formatted = next(iter(style.format_entries([entry])))
        text = " ".join(formatted.text.render(backend).split())
        lines += [f"({PREFIX}{entry.key})=", f"**{label(entry, False)}.** {text}", ""]
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


def on_source_read(app, docname: str, source: list[str]) -> None:
    if str(app.env.doc2path(docname)).endswith(".ipynb"):
        source[0] = rewrite_notebook(source[0])


def setup(app) -> dict:
    app.connect("source-read", on_source_read)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
