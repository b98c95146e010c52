"""The chapter notebooks read correctly outside the book: macros, citations, generated cells (issue 14).

The generated cells (macros first, "Works cited" last) must equal what ``scripts/sync_notebooks.py`` writes from
``_config.yml`` and ``book/references.bib``; every citation link's text must be the author-year label of its bib
entry; and the helpers behind them (book/_ext/gdlab_macros.py, gdlab_cite.py) are checked on their own, each with
a variant that must fail.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import gdlab_cite  # noqa: E402
import gdlab_macros  # noqa: E402

CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
MACROS = gdlab_macros.load(ROOT / "_config.yml")
BIB = gdlab_cite.load_bibliography(ROOT / "book" / "references.bib")
#: Every entry's label, textual (False) and parenthetical (True), with the letters that tell works apart.
LABELS = {p: gdlab_cite.labels(BIB, p) for p in (False, True)}


def _sync_module():
    spec = importlib.util.spec_from_file_location("sync_notebooks", ROOT / "scripts" / "sync_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SYNC = _sync_module()
PLAIN_BOOK = SYNC.gdlab_plain.Book.from_sources(ROOT)


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.name)
def test_generated_cells_are_current(nb_path):
    """Power: a notebook whose macro list or works-cited entry was changed by hand is reported as out of date."""
    nb = nbformat.read(nb_path, as_version=4)
    assert nbformat.writes(SYNC.synced(nb, MACROS, BIB, PLAIN_BOOK)) == nbformat.writes(nb), \
        f"{nb_path.name} is out of date: run scripts/sync_notebooks.py"
    tampered = nbformat.from_dict(nb)
    tampered.cells[0].source = tampered.cells[0].source.replace("\\mathbb{R}", "\\mathbf{R}")
    assert nbformat.writes(SYNC.synced(tampered, MACROS, BIB, PLAIN_BOOK)) != nbformat.writes(tampered)


def test_power_a_stale_cross_chapter_number_is_rewritten():
    source = "By [Theorem 9.9](02_gradient_flow.ipynb#thm-rate) and [(1.1)](02_gradient_flow.ipynb#eq-mlp-grad)."
    fixed = SYNC.gdlab_plain.update_cross_links(source, PLAIN_BOOK)
    assert fixed == "By [Theorem 2.1](02_gradient_flow.ipynb#thm-rate) and [(2.4)](02_gradient_flow.ipynb#eq-mlp-grad)."
    assert SYNC.gdlab_plain.cross_links_to_sphinx(source, PLAIN_BOOK) == "By {prf:ref}`thm-rate` and {eq}`eq-mlp-grad`."
    with pytest.raises(SYNC.gdlab_plain.PlainError, match="no label"):
        SYNC.gdlab_plain.update_cross_links("[x](02_gradient_flow.ipynb#thm-gram)", PLAIN_BOOK)


def test_sync_check_passes_so_the_plain_copies_are_current(capsys):
    """notebooks/NN_name.ipynb (opened by the Colab button) is the plain version of the current source."""
    assert SYNC.main(["--check"]) == 0, capsys.readouterr().out


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.name)
def test_first_cell_declares_every_macro_for_myst(nb_path):
    first = nbformat.read(nb_path, as_version=4).cells[0]
    assert first.cell_type == "markdown" and first.metadata.get("tags") == ["remove-cell"]
    body = first.source.split("---")[1]
    declared = yaml.safe_load(body)["math"]
    assert declared == {f"\\{name}": value for name, (value, _) in MACROS.items()}


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.name)
def test_citation_links_read_author_and_year(nb_path):
    """Every citation link's text is the label its bib entry gives (textual or parenthetical)."""
    nb = nbformat.read(nb_path, as_version=4)
    found = 0
    for cell in nb.cells:
        if cell.cell_type != "markdown" or cell.get("id") == SYNC.CITED_ID:
            continue
        for text, key, parenthetical in gdlab_cite.citations(cell.source):
            assert key in BIB.entries, f"{nb_path.name}: unknown bib key {key!r}"
            assert text == LABELS[parenthetical][key], f"{nb_path.name}: {text!r} ({key})"
            found += 1
        assert "{cite" not in cell.source, f"{nb_path.name}: a {{cite}} role reads as a bare key in Jupyter"
    assert found > 0


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.name)
def test_every_citation_has_its_entry_in_works_cited(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    last = nb.cells[-1]
    assert last.get("id") == SYNC.CITED_ID and last.metadata.get("tags") == ["remove-cell"]
    targets = set(re.findall(r"^\(cite-([^)]+)\)=$", last.source, flags=re.M))
    assert targets == set(SYNC.cited_keys(nb))


# --- the helpers ---------------------------------------------------------------------------------------------


def test_expand_substitutes_arguments_and_nests():
    assert gdlab_macros.expand(r"\norm{u(t)-y}^2", MACROS) == r"\lVert u(t)-y \rVert^2"
    assert gdlab_macros.expand(r"\inner{a}{\norm{b}}", MACROS) == \
        r"\left\langle a, \lVert b \rVert \right\rangle"
    assert gdlab_macros.expand(r"\norm x + \R^n \Rightarrow \relu", MACROS) == \
        r"\lVert x \rVert + \mathbb{R}^n \Rightarrow \operatorname{relu}"
    assert gdlab_macros.expand(r"\norm{\{a\}}", MACROS) == r"\lVert \{a\} \rVert"
    assert gdlab_macros.expand(r"\eps_k \lmin(H)", MACROS) == r"\varepsilon_k \lambda_{\min}(H)"


def test_expand_power_braces_and_longer_names():
    """Power: a version that ignored braces would break \\norm{u(t)-y}; a prefix match would eat \\Rightarrow."""
    assert "Rightarrow" in gdlab_macros.expand(r"\Rightarrow", MACROS)
    assert "}" not in gdlab_macros.expand(r"\norm{a}", MACROS).replace(r"\rVert", "")
    with pytest.raises(ValueError, match="unbalanced"):
        gdlab_macros.expand(r"\norm{a", MACROS)


def test_latex_definitions_cover_every_macro_with_its_arity():
    tex = gdlab_macros.latex_definitions(MACROS)
    assert r"\renewcommand{\norm}[1]{\lVert #1 \rVert}" in tex
    assert r"\renewcommand{\inner}[2]{" in tex
    assert tex.count(r"\renewcommand") == len(MACROS)


def test_bad_macro_definition_is_named():
    with pytest.raises(ValueError, match="'bad'"):
        gdlab_macros.from_mathjax({"tex": {"macros": {"bad": ["x", "1"]}}})


def test_to_sphinx_textual_and_parenthetical():
    md = ("as [Du et al. (2019)](#cite-du2018gradient) show ([Nesterov, 2018](#cite-nesterov2018lectures); "
          "[Golikov, 2019](#cite-golikov2019slides)), see (also [Polyak (1963)](#cite-polyak1963gradient)).")
    assert gdlab_cite.to_sphinx(md) == ("as {cite:t}`du2018gradient` show {cite:p}`nesterov2018lectures,"
                                        "golikov2019slides`, see (also {cite:t}`polyak1963gradient`).")
    assert [p for _, _, p in gdlab_cite.citations(md)] == [False, True, True, False]


def test_label_rules():
    assert gdlab_cite.label(BIB.entries["du2018gradient"], False) == "Du et al. (2019)"
    assert gdlab_cite.label(BIB.entries["gelada2024"], True) == "Gelada and Buckman, 2024"
    assert gdlab_cite.label(BIB.entries["nesterov2018lectures"], False) == "Nesterov (2018)"


# --- the plain conversion (book/_ext/gdlab_plain.py) ---------------------------------------------------------

import gdlab_plain  # noqa: E402

PLAIN_SOURCE = """:::{prf:theorem} Descent
:label: thm-a

For $x \\in \\R$,

$$
\\norm{x}^2 \\ge 0
$$ (eq-a)
:::

:::{prf:proof}
Obvious from {eq}`eq-a`.
:::

:::{prf:theorem}
:label: thm-b
Another one, after {prf:ref}`thm-a` and {prf:ref}`the first <thm-a>`.
:::

:::{exercise} Try
:label: ex-a
Do it, see {numref}`ex-a` and {doc}`01_x`.
:::

:::{solution} ex-a
:class: dropdown
Done: $\\lmin$.
:::
"""


def _plain_book():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title one\n\n" + PLAIN_SOURCE)])
    index = gdlab_plain.index_chapter("03_x", nb)
    return nb, gdlab_plain.Book(index, {"03_x": "Title one", "01_x": "First chapter"}, MACROS)


def test_plain_numbers_links_and_blocks():
    nb, book = _plain_book()
    assert {k: t.text for k, t in book.index.items()} == {
        "thm-a": "Theorem 3.1", "eq-a": "(3.1)", "thm-b": "Theorem 3.2", "ex-a": "Exercise 3.1"}
    text = gdlab_plain.to_plain(nb, "03_x", book).cells[0].source
    assert '<a id="thm-a"></a>\n\n**Theorem 3.1** (Descent)' in text
    assert '<a id="equation-eq-a"></a>' in text and "\\tag{3.1}" in text
    assert "*Proof.* Obvious from [(3.1)](#equation-eq-a)." in text
    assert "[Theorem 3.1](#thm-a) and [the first](#thm-a)" in text
    assert "[Exercise 3.1](#ex-a)" in text and "[First chapter](01_x.ipynb)" in text
    assert "<details>\n<summary><b>Solution to Exercise 3.1</b>" in text and "\\lambda_{\\min}" in text
    assert "\\lVert x \\rVert^2" in text and "\\mathbb{R}" in text
    assert not any(s in text for s in (":::", "{eq}", "{prf:ref}", ":label:", "\\norm", "\\R "))


def test_plain_power_unknown_role_and_label_and_open_directive():
    """Power: MyST the converter cannot write is an error, never left raw."""
    _, book = _plain_book()
    with pytest.raises(gdlab_plain.PlainError, match="cite"):
        gdlab_plain.markdown_to_plain("see {cite}`x`", book, "03_x")
    with pytest.raises(gdlab_plain.PlainError, match="nowhere"):
        gdlab_plain.markdown_to_plain("see {eq}`nowhere`", book, "03_x")
    with pytest.raises(gdlab_plain.PlainError, match="never closed"):
        gdlab_plain.markdown_to_plain(":::{note}\nopen", book, "03_x")


def test_plain_keeps_code_untouched():
    _, book = _plain_book()
    md = "Use `{eq}` like this:\n\n```python\nx = r'\\norm{a}'\n```\n"
    assert gdlab_plain.markdown_to_plain(md, book, "03_x") == md.rstrip("\n")


def display_math_openings_inside_paragraphs(markdown: str) -> list[str]:
    """The ``$$`` lines that open a display equation right after a line of text. MyST (markdown-it's dollarmath)
    starts display math only after a blank line (or a directive's option line): otherwise the ``$$`` stays in the
    paragraph and the page shows the equation inline between literal ``$`` signs."""
    found, inside, previous = [], False, ""
    for line in markdown.split("\n"):
        text = line.strip()
        if text.startswith("$$"):
            one_line = not inside and len(text) > 2 and text.rstrip().endswith("$$") and text != "$$"
            if not inside and not one_line and previous.strip() and not previous.lstrip().startswith(":"):
                found.append(previous.strip()[-60:])
            if not one_line:
                inside = not inside
        previous = line
    return found


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.stem)
def test_display_math_starts_after_a_blank_line(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    bad = [(i, text) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
           for text in display_math_openings_inside_paragraphs(c.source)]
    assert not bad, f"{nb_path.name}: display math opened inside a paragraph (cell, text before it): {bad}"


def test_power_display_math_inside_a_paragraph_is_found():
    assert display_math_openings_inside_paragraphs("Hence\n$$\nx = 1\n$$\nso.") == ["Hence"]
    assert display_math_openings_inside_paragraphs("Hence\n\n$$\nx = 1\n$$ (eq-x)\n\nso.") == []
    assert display_math_openings_inside_paragraphs(":label: a\n$$\nx\n$$\nafter\n\n$$ y $$") == []


# --- code cells as readers see them (issue 19, item 4): no nbval comments, lines that fit the page -----------------
sys.path.insert(0, str(ROOT / "scripts"))
import store_outputs  # noqa: E402  (is_checked: the one test of "nbval compares this cell")
from nbval.plugin import find_comment_markers  # noqa: E402

#: the chapters' ruff configuration, whose line length is the width of the book's code cells
NOTEBOOK_RUFF = ROOT / "book" / "ruff.toml"


def nbval_comments(nb) -> list[tuple[int, str]]:
    """(cell index, kind) for every nbval comment marker (``# NBVAL_CHECK_OUTPUT``, ``# NBVAL_SKIP``, ...) in a
    code cell, found as nbval finds them. The book marks cells with nbval's tags instead: a comment shows on the page."""
    return [(i, marker) for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for marker, _ in find_comment_markers(c.source)]


def check_tag_mismatches(nb) -> list[str]:
    """The code cells whose stored output and ``nbval-check-output`` tag disagree: an output kept without the tag
    is never compared, and a tagged cell without an output (or execution count) compares nothing."""
    found = []
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code":
            continue
        stored = bool(c.outputs) or c.execution_count is not None
        checked = store_outputs.is_checked(c)
        if stored and not checked:
            found.append(f"cell {i}: stored output, no {store_outputs.CHECK_TAG} tag")
        elif checked and not (c.outputs and c.execution_count is not None):
            found.append(f"cell {i}: tagged {store_outputs.CHECK_TAG}, no stored output")
    return found


def long_output_lines(nb, limit: int) -> list[tuple[int, int]]:
    """(cell index, length) of every stored output line (stdout, text/plain) longer than ``limit`` characters."""
    found = []
    for i, c in enumerate(nb.cells):
        for o in c.get("outputs", []) if c.cell_type == "code" else []:
            text = o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", "")
            found += [(i, len(line)) for line in text.splitlines() if len(line) > limit]
    return found


def ruff_line_errors(nb, path: Path) -> list[str]:
    """ruff's E501 (line too long) findings for ``nb`` checked as if it were the file ``path`` (its configuration)."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "E501", "--output-format", "concise",
                             "--stdin-filename", str(path), "-"], input=nbformat.writes(nb), capture_output=True,
                            text=True, cwd=ROOT, check=False)
    assert result.returncode in (0, 1), result.stderr
    return [line for line in result.stdout.splitlines() if "E501" in line]


LINE_LENGTH = tomllib.loads(NOTEBOOK_RUFF.read_text(encoding="utf-8"))["line-length"]


def test_notebook_line_length_fits_the_code_cells():
    """The page's code cells hold 88 characters at 1366 px (tests/browser/test_code_width.py measures it)."""
    assert LINE_LENGTH <= 88


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.stem)
def test_code_cells_use_tags_not_nbval_comments(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    assert not nbval_comments(nb), f"{nb_path.name}: nbval comments readers would see (use cell tags instead)"
    assert not check_tag_mismatches(nb), f"{nb_path.name}: {check_tag_mismatches(nb)}"
    assert sum(map(store_outputs.is_checked, nb.cells)) > 0, f"{nb_path.name} checks no output"


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.stem)
def test_code_and_stored_outputs_fit_the_line_length(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    assert not ruff_line_errors(nb, nb_path), f"{nb_path.name}: code lines over {LINE_LENGTH} characters"
    assert not long_output_lines(nb, LINE_LENGTH), f"{nb_path.name}: (cell, length) {long_output_lines(nb, LINE_LENGTH)}"


def test_power_nbval_comments_and_tag_mismatches_are_found():
    nb = nbformat.read(CHAPTERS[0], as_version=4)
    checked = next(i for i, c in enumerate(nb.cells) if store_outputs.is_checked(c))
    commented = nbformat.from_dict(nb)
    commented.cells[checked].source = "# NBVAL_CHECK_OUTPUT\n" + commented.cells[checked].source + "\n  #  NBVAL_SKIP"
    assert nbval_comments(commented) == [(checked, "check"), (checked, "skip")]
    untagged = nbformat.from_dict(nb)
    untagged.cells[checked].metadata["tags"].remove(store_outputs.CHECK_TAG)
    assert check_tag_mismatches(untagged) == [f"cell {checked}: stored output, no nbval-check-output tag"]
    emptied = nbformat.from_dict(nb)
    emptied.cells[checked].outputs = []
    assert check_tag_mismatches(emptied) == [f"cell {checked}: tagged nbval-check-output, no stored output"]


def test_power_a_long_code_or_output_line_is_found():
    fits, long = "x = 1  # " + "a" * (LINE_LENGTH - 9), "x = 1  # " + "a" * (LINE_LENGTH - 8)
    for line, errors in ((fits, 0), (long, 1)):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(line)])
        assert len(ruff_line_errors(nb, CHAPTERS[0])) == errors, line
    cell = nbformat.v4.new_code_cell("print(s)", execution_count=1, outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="x" * LINE_LENGTH + "\n" + "y" * (LINE_LENGTH + 1))])
    assert long_output_lines(nbformat.v4.new_notebook(cells=[cell]), LINE_LENGTH) == [(0, LINE_LENGTH + 1)]
