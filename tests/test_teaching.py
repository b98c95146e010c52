"""Checks of the material for lecturers: student notebooks, the student edition of the book, the figure style.

- The notebook export (``scripts/export_student_notebooks.py``) removes every solution and every output, keeps the
  exercises, TODO cells and check cells, and the exported notebooks still run on a fresh kernel, their check cells
  printing "not answered yet".
- The builds: the normal book (``_build/html``) shows the solutions, the student edition (``_build/student``, made by
  ``scripts/build_student.py``) shows none, neither in the pages nor in the downloadable notebooks. Both builds run
  with ``-W`` (their commands fail on any warning), so these tests only look at their output. They are skipped when
  a build folder is missing, unless the environment variable ``GDLAB_REQUIRE_BUILDS=1`` is set: then a missing build
  is a failure (CI builds both first).
- Figures drawn by ``gdlab.plots`` have an opaque white background, so that they stay legible in the book's dark mode.
"""

from __future__ import annotations

import html
import io
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from site_paths import BUILD, require_build

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
SCRIPTS = ROOT / "scripts"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))

sys.path.insert(0, str(SCRIPTS))
sys.path.insert(0, str(BOOK / "_ext"))
from export_student_notebooks import ExportError, strip_solutions  # noqa: E402
from gdlab_execution import execute_notebook  # noqa: E402

# Code that appears only inside solutions (chapter -> strings), and the markup of solutions.
SOLUTION_CODE = {
    "01_nonconvexity": ["16 * x**2", "M_a, N_a = np.array([[1.0], [1.0]]), np.array([[1.0, -1.0]])"],
    "02_gradient_flow": ["return np.outer(M @ x - q, x)", "eta_best = grid[np.argmax("],
}
SOLUTION_MARKUP = re.compile(r"\{solution(?:-start|-end)?\}")
NOT_ANSWERED = "not answered yet"


def _is_check_cell(cell) -> bool:
    """A cell that prints the verdict of an exercise's check (``print(check_...(...))``)."""
    return cell.cell_type == "code" and re.search(r"^print\(check_\w+\(", cell.source, re.M) is not None


def _count(nb, pattern: str, cell_type: str | None = None) -> int:
    return sum(len(re.findall(pattern, c.source)) for c in nb.cells if cell_type in (None, c.cell_type))


# --- the notebook export ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """The student notebooks of every chapter, written by the export script (run as a user would run it)."""
    out = tmp_path_factory.mktemp("student-notebooks")
    subprocess.run([sys.executable, str(SCRIPTS / "export_student_notebooks.py"), "--output", str(out)],
                   check=True, capture_output=True, text=True)
    return out


def test_chapters_have_solutions_to_remove():
    assert CHAPTERS, "no chapter notebooks found in book/"
    for path in CHAPTERS:
        nb = nbformat.read(path, as_version=4)
        assert SOLUTION_MARKUP.search("".join(c.source for c in nb.cells)), f"{path.name} has no solutions"
        assert any(_is_check_cell(c) for c in nb.cells), f"{path.name} has no check cell"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_export_removes_solutions_and_outputs(exported, path):
    original = nbformat.read(path, as_version=4)
    student = nbformat.read(exported / path.name, as_version=4)
    nbformat.validate(student)
    text = "\n".join(c.source for c in student.cells)
    assert not SOLUTION_MARKUP.search(text) and "Solution to" not in text  # MyST, or its plain form
    for code in SOLUTION_CODE.get(path.stem, []):
        assert code in "\n".join(c.source for c in original.cells), f"test out of date: {code!r} not in {path.name}"
        assert code not in text
    for cell in student.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    # What the student works with is all there: every exercise (written as a plain "**Exercise N.k**" block, the
    # student notebook is a plain one), every TODO cell, every check cell.
    assert _count(student, r"(?m)^\*\*Exercise \d+\.\d+\*\*") == _count(original, r"\{exercise\}") > 0
    defined = set(re.findall(r"^def (check_\w+)", "\n".join(c.source for c in original.cells), re.M))
    assert defined and defined == set(re.findall(r"^def (check_\w+)", text, re.M))
    called = {m for c in student.cells if _is_check_cell(c) for m in re.findall(r"^print\((check_\w+)\(", c.source, re.M)}
    assert called == defined, "every check must still be run once in the student notebook"
    assert _count(student, r"# TODO|#\s*TODO", "code") >= 1
    labels = set(re.findall(r":label: (ex-[\w-]+)", "\n".join(c.source for c in original.cells)))
    assert labels and all(f'<a id="{label}"></a>' in text for label in labels)
    assert ":::" not in text and "{eq}" not in text, "the student notebook is not plain"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_exported_notebook_executes(exported, path):
    """A fresh kernel runs the student notebook from book/ without error; every check says "not answered yet". A
    stalled kernel fails within the cell timeout (book/_ext/gdlab_execution.py), naming the notebook and the cell."""
    nb = nbformat.read(exported / path.name, as_version=4)
    execute_notebook(nb, f"student notebook {path.name}", BOOK)
    checks = [c for c in nb.cells if _is_check_cell(c)]
    assert checks
    for cell in checks:
        printed = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert NOT_ANSWERED in printed, f"check cell printed {printed!r}:\n{cell.source}"
    for cell in nb.cells:
        assert not any(o.output_type == "error" for o in cell.get("outputs", []))


def _nb(*cells):
    return nbformat.v4.new_notebook(cells=list(cells))


def test_strip_solutions_blocks_fences_and_tagged_cells():
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    secret_code = code("x = 'secret three'", outputs=[nbformat.v4.new_output("stream", text="secret four")])
    secret_code.metadata["tags"] = ["hide-cell", "solution"]
    nb = _nb(
        md(":::{exercise} E\n:label: ex-a\nDo it.\n:::\n\n```{solution} ex-a\nsecret one\n```\nafter"),
        code("x = None  # TODO"),
        md(":::{solution} ex-a\n:class: dropdown\n\nsecret two\n:::"),
        secret_code,
        md("kept text"),
    )
    out, removed = strip_solutions(nb)
    assert removed == 2
    sources = [c.source for c in out.cells]
    assert sources == [":::{exercise} E\n:label: ex-a\nDo it.\n:::\n\nafter", "x = None  # TODO", "kept text"]
    assert "secret" not in str(out)


def test_strip_solutions_refuses_gates():
    """Gated solutions span cells, which Jupyter renders one by one (the code would show open): refused."""
    md = nbformat.v4.new_markdown_cell
    with pytest.raises(ExportError, match="gated"):
        strip_solutions(_nb(md("::::{solution-start} ex-a\n::::\n\ntext")))
    with pytest.raises(ExportError, match="gated"):
        strip_solutions(_nb(md("::::{solution-end}\n::::")))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_solution_code_cells_are_collapsed_and_follow_their_solution(path):
    """Each cell tagged `solution` is collapsed in Jupyter (input and output) and in the book (hide-cell), and comes
    right after a {solution} block (or another solution cell)."""
    nb = nbformat.read(path, as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "solution" in c.metadata.get("tags", [])]
    assert tagged, f"{path.name}: no solution code cell"
    for i in tagged:
        cell = nb.cells[i]
        assert cell.cell_type == "code" and "hide-cell" in cell.metadata["tags"]
        assert cell.metadata.get("jupyter") == {"source_hidden": True, "outputs_hidden": True}
        before = nb.cells[i - 1]
        assert i - 1 in tagged or re.search(r"^:::\{solution\} ex-[\w-]+$", before.source, re.M)


# --- the builds ------------------------------------------------------------------------------------------


def _build_dir(name: str) -> Path:
    path = BUILD / name
    return require_build(path, f"no built book in {path}: build it first (`jupyter-book build .` for _build/html, "
                               "`python scripts/build_student.py` for _build/student)")


def _page_text(path: Path) -> str:
    """The visible text of an HTML page (tags and scripts dropped, entities decoded)."""
    raw = re.sub(r"<(script|style)\b.*?</\1>", " ", path.read_text(encoding="utf-8"), flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


_SOLUTION_ELEMENT = re.compile(r"""class="(?:[^"]*\s)?solution(?:\s[^"]*)?\"""")


def test_normal_build_shows_solutions():
    site = _build_dir("html")
    for chapter, codes in SOLUTION_CODE.items():
        page = site / "book" / f"{chapter}.html"
        assert _SOLUTION_ELEMENT.search(page.read_text(encoding="utf-8")), f"no solution box in {page}"
        text = _page_text(page)
        for code in codes:
            assert code in text, f"{code!r} missing from {page}"


def test_student_build_has_no_solutions():
    site = _build_dir("student")
    normal = BUILD / "html"
    pages = sorted(site.rglob("*.html"))
    assert any(p.name == "02_gradient_flow.html" for p in pages)
    all_codes = [code for codes in SOLUTION_CODE.values() for code in codes]
    for page in pages:
        assert not _SOLUTION_ELEMENT.search(page.read_text(encoding="utf-8")), f"solution box in {page}"
        text = _page_text(page)
        for code in all_codes:
            assert code not in text, f"{code!r} in {page}"
    # Nothing else in the site hands out a solution either (downloadable notebooks, sources, search index).
    for path in site.rglob("*"):
        if path.suffix in {".ipynb", ".md", ".txt", ".js", ".json", ".py"} and path.is_file():
            content = path.read_text(encoding="utf-8", errors="replace")
            assert not SOLUTION_MARKUP.search(content) or path.suffix == ".js", f"solution markup in {path}"
            for code in all_codes:
                assert code not in content, f"{code!r} in {path}"
    # Same pages as the normal book, exercises and their checks still there.
    if (normal / "index.html").exists():
        assert {p.relative_to(site) for p in pages} == {p.relative_to(normal) for p in normal.rglob("*.html")}
    for chapter in SOLUTION_CODE:
        page = site / "book" / f"{chapter}.html"
        raw = page.read_text(encoding="utf-8")
        labels = re.findall(r":label: (ex-[\w-]+)", (BOOK / f"{chapter}.ipynb").read_text(encoding="utf-8"))
        for label in labels:
            assert f'id="{label}"' in raw, f"exercise {label} missing from {page}"
        assert NOT_ANSWERED in _page_text(page)


# --- figures ---------------------------------------------------------------------------------------------


def test_figures_have_opaque_white_background():
    """A PNG as the notebook shows it (figure facecolor, tight box) is opaque and white at the border."""
    import matplotlib.pyplot as plt
    from gdlab import plots

    for fig in (plots.segment_figure(), plots.new_figure(2)[0]):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", facecolor=fig.get_facecolor(), bbox_inches="tight")
        plt.close(fig)
        buf.seek(0)
        image = plt.imread(buf)
        assert image.shape[2] == 3 or np.all(image[..., 3] == 1.0), "transparent pixels in a figure"
        border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])[:, :3]
        assert np.all(border == 1.0), "figure border is not white"
