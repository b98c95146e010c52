"""Plain notebooks: the chapters in Markdown that any notebook tool renders, with no MyST extension.

A chapter notebook is written in MyST: ``:::{prf:theorem}`` blocks, ``{eq}`` / ``{prf:ref}`` / ``{numref}`` roles,
the book's macros. Colab, VS Code, plain Jupyter and ``nbconvert`` show that markup raw. :func:`to_plain` turns a
chapter into a notebook they all render:

* theorem, definition, proof, exercise and admonition blocks become paragraphs headed by their kind, number and
  title ("**Theorem 2.3** (Descent lemma)"), with an HTML anchor at their label; dropdown solutions become
  ``<details>`` blocks (collapsed); a solution's code cells (tagged ``solution``) keep their collapsed input and
  output (``jupyter.source_hidden`` / ``outputs_hidden``, which Jupyter and VS Code honour);
* ``{eq}``, ``{prf:ref}``, ``{numref}``, ``{ref}`` become links showing the number the book gives ("(2.1)",
  "Theorem 2.3"), ``{doc}`` the chapter's title linked to its notebook; labelled equations get ``\\tag{2.1}``.
  (The sources refer to another chapter with a Markdown link, ``[Theorem 2.1](02_gradient_flow.ipynb#thm-rate)``,
  which Jupyter can follow; :func:`cross_links_to_sphinx` makes it a numbered reference in the book, on
  ``source-read``, and :func:`update_cross_links`, run by ``scripts/sync_notebooks.py``, keeps its number current);
* every macro is expanded in place (book/_ext/gdlab_macros.py); citation links stay (author and year, linked to the
  "Works cited" cell, which stays); the MyST front-matter cell goes.

Numbers are computed from the sources the way sphinx-proof, sphinx-exercise and Sphinx's math numbering count them
(per chapter, per kind, in order; the chapter number is the file's ``NN_`` prefix); ``tests/test_site.py`` checks
them against the built pages. This Sphinx extension (``_config.yml``) writes the plain notebook of every chapter
over the page's ``.ipynb`` download (``_build/html/_sources/book/NN_name.ipynb``) at the end of an HTML build;
``scripts/export_student_notebooks.py`` uses :func:`to_plain` for the student notebooks, and
``scripts/sync_notebooks.py`` for the copies in ``notebooks/`` that the pages' Colab button opens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import gdlab_cite
import gdlab_macros
import nbformat

#: Directive kinds that sphinx-proof numbers, with their display names.
PROOF_KINDS = {"prf:theorem": "Theorem", "prf:definition": "Definition", "prf:proposition": "Proposition",
               "prf:lemma": "Lemma", "prf:corollary": "Corollary", "prf:algorithm": "Algorithm",
               "prf:example": "Example", "prf:remark": "Remark", "prf:conjecture": "Conjecture",
               "prf:axiom": "Axiom", "prf:criterion": "Criterion", "prf:property": "Property",
               "prf:observation": "Observation", "prf:assumption": "Assumption", "prf:notation": "Notation"}
ADMONITIONS = {"note": "Note", "tip": "Tip", "warning": "Warning", "important": "Important", "hint": "Hint",
               "caution": "Caution", "attention": "Attention", "danger": "Danger", "error": "Error",
               "seealso": "See also"}

_OPEN = re.compile(r"^(?P<fence>:{3,})\{(?P<name>[A-Za-z0-9_:-]+)\}[ \t]*(?P<args>.*?)\s*$")
_OPTION = re.compile(r"^:(?P<key>[A-Za-z_-]+):[ \t]*(?P<value>.*?)\s*$")
_CODE_FENCE = re.compile(r"^(`{3,}|~{3,})")
_LABELLED_MATH = re.compile(r"\$\$(?P<body>.+?)\$\$[ \t]*\((?P<label>[A-Za-z0-9_:-]+)\)", re.S)
_TARGET = re.compile(r"^\((?P<label>[A-Za-z0-9_:-]+)\)=[ \t]*$", re.M)
_ROLE = re.compile(r"\{(?P<role>[a-z:]+)\}`(?P<body>[^`]+)`")
#: A link to a label in another chapter, as the sources write it: ``[Theorem 2.1](02_gradient_flow.ipynb#thm-rate)``.
CROSS = re.compile(r"\[(?P<text>[^\[\]]+)\]\((?P<doc>\d\d_[\w-]+)\.ipynb#(?P<label>[A-Za-z0-9_:-]+)\)")
_INLINE_CODE = re.compile(r"(`+)[^`]+?\1")


#: Folder (at the repository root) of the plain chapters that the Colab button opens; scripts/sync_notebooks.py
#: writes them, tests/test_notebook_sources.py checks they are current.
PLAIN_DIR = "notebooks"


class PlainError(ValueError):
    """MyST that the plain conversion does not know how to write (an unknown role, an unresolved label, ...)."""


@dataclass(frozen=True)
class Target:
    """Where a label points: the chapter's notebook name (``NN_name``) and the text the book shows for it."""

    doc: str
    text: str


def _directives(source: str):
    """Yield ``(name, args, options, label)`` for every directive opening of a MyST source, outside code fences."""
    lines, in_code = source.splitlines(), None
    for i, line in enumerate(lines):
        fence = _CODE_FENCE.match(line.strip())
        if fence and (in_code is None or line.strip().startswith(in_code)):
            in_code = None if in_code else fence.group(1)
            continue
        if in_code:
            continue
        opened = _OPEN.match(line.strip())
        if opened:
            options = {}
            for nxt in lines[i + 1:]:
                option = _OPTION.match(nxt.strip())
                if not option:
                    break
                options[option["key"]] = option["value"]
            yield opened["name"], opened["args"], options, options.get("label")


def chapter_number(doc: str) -> int:
    """The chapter number of ``NN_name``: its ``NN`` prefix (the book's numbered parts follow the file order)."""
    match = re.match(r"(\d+)_", doc)
    if not match:
        raise PlainError(f"{doc!r} is not a chapter notebook name (NN_name)")
    return int(match.group(1))


def index_chapter(doc: str, nb) -> dict[str, Target]:
    """Labels of one chapter -> what the book shows: "Theorem 2.3", "Exercise 2.1", "(2.4)"."""
    number, counters, index = chapter_number(doc), {}, {}
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for name, _, options, label in _directives(cell.source):
            kind = PROOF_KINDS.get(name) or ("Exercise" if name == "exercise" and "nonumber" not in options else None)
            if kind is None:
                continue
            counters[kind] = counters.get(kind, 0) + 1
            if label:
                index[label] = Target(doc, f"{kind} {number}.{counters[kind]}")
        for match in _LABELLED_MATH.finditer(cell.source):
            counters["eq"] = counters.get("eq", 0) + 1
            index[match["label"]] = Target(doc, f"({number}.{counters['eq']})")
    return index


def chapter_title(nb) -> str:
    """The first ``# `` heading of the notebook (after its front matter)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and not cell.source.startswith("---"):
            match = re.search(r"^# (.+)$", cell.source, re.M)
            if match:
                return match.group(1).strip()
    raise PlainError("the notebook has no '# ' title")


@dataclass(frozen=True)
class Book:
    """What the conversion needs to know about the whole book: labels, chapter titles and the macros."""

    index: dict[str, Target]
    titles: dict[str, str]
    macros: gdlab_macros.Macros

    @classmethod
    def from_sources(cls, root: Path) -> Book:
        index, titles = {}, {}
        for path in sorted((root / "book").glob("[0-9][0-9]_*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            index.update(index_chapter(path.stem, nb))
            titles[path.stem] = chapter_title(nb)
        return cls(index, titles, gdlab_macros.load(root / "_config.yml"))


# --- markdown ------------------------------------------------------------------------------------------------


def _block(head: str, body: str) -> str:
    """A block headed by ``head`` in bold. Not a Markdown quote: Jupyter takes the math out of a cell before it parses
    the Markdown, so a ``> `` in front of the lines of a display formula would end up inside the formula."""
    body = re.sub(r"\n{3,}", "\n\n", body.strip("\n"))
    return f"{head}\n\n{body}" if body else head


def _anchor(label: str | None) -> str:
    return f'<a id="{label}"></a>\n\n' if label else ""


def _render_block(name: str, args: str, options: dict, body: str, book: Book, doc: str) -> str:
    label = options.get("label")
    if name in PROOF_KINDS or name == "exercise":
        target = book.index.get(label) if label else None
        kind = PROOF_KINDS.get(name, "Exercise")
        head = f"**{target.text if target else kind}**" + (f" ({args})" if args else "")
        return _anchor(label) + _block(head, body)
    if name == "prf:proof":
        return f"*Proof.* {body.strip()} $\\square$"
    if name == "solution":
        of = book.index.get(args)
        summary = f"Solution to {of.text}" if of else "Solution"
        return f"<details>\n<summary><b>{summary}</b> (click to open)</summary>\n\n{body.strip()}\n\n</details>"
    if name == "admonition":
        return _block(f"**{args}**", body)
    if name in ADMONITIONS:
        return _block(f"**{ADMONITIONS[name]}.**" + (f" {args}" if args else ""), body)
    raise PlainError(f"{doc}: no plain form for the directive {{{name}}}")


def _blocks(lines: list[str], book: Book, doc: str) -> str:
    """Render a list of MyST lines: directives (recursively) into their plain forms, other lines as they are."""
    out, i, in_code = [], 0, None
    while i < len(lines):
        line = lines[i]
        fence = _CODE_FENCE.match(line.strip())
        if fence and (in_code is None or line.strip().startswith(in_code)):
            in_code = None if in_code else fence.group(1)
        if in_code or fence:
            out.append(line)
            i += 1
            continue
        opened = _OPEN.match(line.strip())
        if not opened:
            out.append(line)
            i += 1
            continue
        width = len(opened["fence"])
        j, options = i + 1, {}
        while j < len(lines) and (option := _OPTION.match(lines[j].strip())):
            options[option["key"]] = option["value"]
            j += 1
        end, depth = j, 0
        while end < len(lines):
            inner = _OPEN.match(lines[end].strip())
            if inner and len(inner["fence"]) == width:
                depth += 1
            elif re.fullmatch(f":{{{width},}}", lines[end].strip()):
                if depth == 0:
                    break
                depth -= 1
            end += 1
        if end == len(lines):
            raise PlainError(f"{doc}: the directive {{{opened['name']}}} is never closed")
        body = _blocks(lines[j:end], book, doc).strip("\n")
        out.append(_render_block(opened["name"], opened["args"], options, body, book, doc))
        i = end + 1
    return "\n".join(out)


def _link(label: str, text: str | None, book: Book, doc: str, role: str) -> str:
    target = book.index.get(label)
    if target is None:
        raise PlainError(f"{doc}: {{{role}}} points at {label!r}, which no chapter defines")
    where = "" if target.doc == doc else f"{target.doc}.ipynb"
    anchor = f"equation-{label}" if role == "eq" else label
    return f"[{text or target.text}]({where}#{anchor})"


def _role(match: re.Match, book: Book, doc: str) -> str:
    role, body = match["role"], match["body"].strip()
    explicit = re.fullmatch(r"(?P<text>.+?)\s*<(?P<label>[^<>]+)>", body, re.S)
    text, label = (explicit["text"], explicit["label"]) if explicit else (None, body)
    if role in ("eq", "prf:ref", "numref", "ref"):
        return _link(label, text, book, doc, role)
    if role == "doc":
        title = book.titles.get(label)
        return f"[{text or title}]({label}.ipynb)" if title else f"*{text or label.replace('_', ' ').title()}*"
    raise PlainError(f"{doc}: no plain form for the role {{{role}}}")


def _outside_code(text: str, change, inline: bool = True) -> str:
    """Apply ``change`` to the parts of ``text`` outside fenced code blocks (and inline code, if ``inline``)."""
    parts, out = re.split(r"(^(?:`{3,}|~{3,})[^\n]*\n.*?^(?:`{3,}|~{3,})[ \t]*$)", text, flags=re.M | re.S), []
    for k, part in enumerate(parts):
        if k % 2 or not inline:
            out.append(part if k % 2 else change(part))
            continue
        pieces = _INLINE_CODE.split(part)
        spans = [m.group(0) for m in _INLINE_CODE.finditer(part)]
        chunk = []
        for n, piece in enumerate(pieces[::2]):
            chunk.append(change(piece))
            if n < len(spans):
                chunk.append(spans[n])
        out.append("".join(chunk))
    return "".join(out)


def _cross_target(match: re.Match, book: Book) -> Target:
    target = book.index.get(match["label"])
    if target is None or target.doc != match["doc"]:
        raise PlainError(f"{match.group(0)}: {match['doc']} has no label {match['label']!r}")
    return target


def update_cross_links(source: str, book: Book) -> str:
    """``source`` with the text of every link into another chapter set to what the book shows for its label
    ("Theorem 2.1", "(2.4)"): the sources keep these numbers current through scripts/sync_notebooks.py."""
    return CROSS.sub(lambda m: f"[{_cross_target(m, book).text}]({m['doc']}.ipynb#{m['label']})", source)


def cross_links_to_sphinx(source: str, book: Book) -> str:
    """``source`` with every link into another chapter turned into the role that numbers it in the book."""
    def role(m: re.Match) -> str:
        text = _cross_target(m, book).text
        name = "eq" if text.startswith("(") else "numref" if text.startswith("Exercise") else "prf:ref"
        return f"{{{name}}}`{m['label']}`"

    return CROSS.sub(role, source)


def markdown_to_plain(source: str, book: Book, doc: str) -> str:
    """One markdown cell of chapter ``doc`` in plain Markdown."""
    def tagged(match: re.Match) -> str:
        label = match["label"]
        target = book.index.get(label)
        tag = target.text.strip("()") if target else "?"
        return f'<a id="equation-{label}"></a>\n\n$${match["body"].rstrip()}\n\\tag{{{tag}}}\n$$'

    text = _LABELLED_MATH.sub(tagged, source)
    text = _TARGET.sub(lambda m: f'<a id="{m["label"]}"></a>', text)
    text = _blocks(text.splitlines(), book, doc)
    text = CROSS.sub(lambda m: m.group(0) if not _cross_target(m, book).text.startswith("(")
                     else m.group(0).replace(f"#{m['label']})", f"#equation-{m['label']})"), text)
    text = _outside_code(text, lambda part: _ROLE.sub(lambda m: _role(m, book, doc), part), inline=False)
    return _outside_code(text, lambda part: gdlab_macros.expand(part, book.macros))


# --- notebooks -----------------------------------------------------------------------------------------------


def to_plain(nb, doc: str, book: Book):
    """A copy of chapter ``doc``'s notebook that renders without MyST (see the module docstring)."""
    nb = nbformat.from_dict(nb)
    cells = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "markdown" and gdlab_macros.FRONTMATTER_TAG in tags and cell.source.startswith("---"):
            continue
        cell.metadata.pop("execution", None)
        if cell.cell_type == "markdown":
            cell.source = markdown_to_plain(cell.source, book, doc)
            if cell.source.startswith(gdlab_cite.WORKS_CITED_TITLE):
                cell.metadata["tags"] = [t for t in tags if t != gdlab_cite.WORKS_CITED_TAG]
        cells.append(cell)
    nb.cells = cells
    return nb


def write_downloads(app, exception) -> None:
    """``build-finished``: the plain notebook of every chapter as the page's ``.ipynb`` download."""
    if exception is not None or app.builder.format != "html":
        return
    root, outdir = Path(app.srcdir), Path(app.outdir)
    book = app.gdlab_book
    for path in sorted((root / "book").glob("[0-9][0-9]_*.ipynb")):
        target = outdir / "_sources" / "book" / path.name
        if target.parent.is_dir():
            nb = to_plain(nbformat.read(path, as_version=4), path.stem, book)
            nbformat.write(nb, target)


def latex_exercise_labels(app, exception) -> None:
    """``build-finished`` (LaTeX): give every exercise the label that references from *other* documents use.

    sphinx-exercise labels an exercise ``exercise:<label>`` in LaTeX, which only references within its own chapter
    point at; a reference from another chapter (or from the lecturers' page) points at ``<docname>:<label>``, the
    name Sphinx gives every other target, and printed "Exercise ??". The second label is added next to the first.
    """
    if exception is not None or app.builder.format != "latex":
        return
    index = app.gdlab_book.index

    def both(match: re.Match) -> str:
        target = index.get(match[1])
        extra = rf"\label{{\detokenize{{book/{target.doc}:{match[1]}}}}}" if target is not None else ""
        return match[0] + extra

    for tex in Path(app.outdir).glob("*.tex"):
        text = tex.read_text(encoding="utf-8")
        new = re.sub(r"\\label\{exercise:([\w-]+)\}", both, text)
        if new != text:
            tex.write_text(new, encoding="utf-8")


def colab_opens_plain(app, pagename: str, templatename: str, context: dict, doctree) -> None:
    """``html-page-context``: the Colab button opens the chapter's plain copy (``notebooks/``), not its MyST source."""
    source = f"/{pagename}.ipynb"
    if not re.fullmatch(r"book/\d\d_[\w-]+", pagename):
        return
    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []) if group.get("label") == "launch-buttons" else []:
            if button.get("text") == "Colab" and button.get("url", "").endswith(source):
                button["url"] = button["url"][: -len(source)] + f"/{PLAIN_DIR}/{pagename.split('/')[-1]}.ipynb"


def on_source_read(app, docname: str, source: list[str]) -> None:
    """``source-read``: links into other chapters become numbered references of the book."""
    if str(app.env.doc2path(docname)).endswith(".ipynb"):
        source[0] = gdlab_cite.rewrite_notebook(source[0], lambda md: cross_links_to_sphinx(md, app.gdlab_book))


def read_book(app) -> None:
    """``builder-inited``: index the chapters once per build (labels, titles, macros), for every handler here."""
    app.gdlab_book = Book.from_sources(Path(app.srcdir))


def setup(app) -> dict:
    app.connect("builder-inited", read_book)
    app.connect("source-read", on_source_read)
    app.connect("build-finished", write_downloads, priority=400)
    app.connect("build-finished", latex_exercise_labels)
    app.connect("html-page-context", colab_opens_plain, priority=600)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
