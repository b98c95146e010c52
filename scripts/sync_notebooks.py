"""Write the generated parts of every chapter notebook: the book's macros first, "Works cited" last, link numbers.

Each chapter notebook ``book/NN_name.ipynb`` carries two cells that are generated, never edited by hand:

- its first cell: MyST front matter with the book's LaTeX macros (``math:``), from the one list in ``_config.yml``
  (book/_ext/gdlab_macros.py), so that Jupyter with jupyterlab-myst typesets ``\\R``, ``\\norm{x}``, ...;
- the number in each link to another chapter, ``[Theorem 2.1](02_gradient_flow.ipynb#thm-rate)``, and the text of
  each citation link, ``[Du et al. (2019)](#cite-du2018gradient)``: its entry's label (book/_ext/gdlab_cite.py);
- its last cell: "Works cited in this chapter", one labelled entry per work the notebook cites, formatted from
  ``book/references.bib`` (book/_ext/gdlab_cite.py); the citation links ``[Du et al. (2019)](#cite-du2018gradient)``
  jump there.

Both are tagged ``remove-cell``: the book does not show the macros (MathJax has them) and shows its own version of
"Works cited" as the chapter's last section (book/_ext/gdlab_cite.py).

It also writes ``notebooks/NN_name.ipynb``, the plain version of each chapter (book/_ext/gdlab_plain.py: no MyST,
macros expanded), which the Colab button of each page opens from the repository: Colab has no MyST renderer.

Run it after changing a chapter, the macros or the bibliography::

    .venv/bin/python scripts/sync_notebooks.py            # rewrite the notebooks that are out of date
    .venv/bin/python scripts/sync_notebooks.py --check    # only report; exit status 1 if any is out of date

``tests/test_notebook_sources.py`` runs the check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import gdlab_cite  # noqa: E402
import gdlab_macros  # noqa: E402
import gdlab_plain  # noqa: E402

CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
PLAIN = ROOT / gdlab_plain.PLAIN_DIR
MACROS_ID, CITED_ID = "book-macros", gdlab_cite.WORKS_CITED_ID


def _generated(cell_id: str, source: str, tag: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell(source, id=cell_id)
    cell.metadata["tags"] = [tag]
    return cell


def cited_keys(nb: nbformat.NotebookNode) -> list[str]:
    """The bibtex keys the notebook cites (outside its generated cells), in order of first citation."""
    keys: list[str] = []
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.get("id") not in (MACROS_ID, CITED_ID):
            keys += [key for _, key, _ in gdlab_cite.citations(cell.source) if key not in keys]
    return keys


def synced(nb: nbformat.NotebookNode, macros, bibliography, book) -> nbformat.NotebookNode:
    """A copy of ``nb`` whose first and last cells are the generated ones (added or replaced), and whose links into
    other chapters show the numbers the book gives their targets."""
    nb = nbformat.from_dict(nb)
    body = [c for c in nb.cells if c.get("id") not in (MACROS_ID, CITED_ID)]
    cite_labels = gdlab_cite.labels(bibliography, False), gdlab_cite.labels(bibliography, True)
    for cell in body:
        if cell.cell_type == "markdown":
            cell.source = gdlab_cite.update_link_texts(gdlab_plain.update_cross_links(cell.source, book), *cite_labels)
    cells = [_generated(MACROS_ID, gdlab_macros.frontmatter(macros), gdlab_macros.FRONTMATTER_TAG), *body]
    keys = cited_keys(nb)
    if keys:
        cells.append(_generated(CITED_ID, gdlab_cite.works_cited(keys, bibliography), gdlab_cite.WORKS_CITED_TAG))
    nb.cells = cells
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report out-of-date notebooks, change nothing")
    args = parser.parse_args(argv)
    macros = gdlab_macros.load(ROOT / "_config.yml")
    bibliography = gdlab_cite.load_bibliography(ROOT / "book" / "references.bib")
    book = gdlab_plain.Book.from_sources(ROOT)
    stale = []
    for path in CHAPTERS:
        nb = nbformat.read(path, as_version=4)
        new = synced(nb, macros, bibliography, book)
        plain_path = PLAIN / path.name
        plain = nbformat.writes(gdlab_plain.to_plain(new, path.stem, book))
        current = plain_path.read_text(encoding="utf-8") if plain_path.is_file() else None
        if nbformat.writes(new) != nbformat.writes(nb) or plain != current:
            stale.append(path.name)
            if not args.check:
                nbformat.write(new, path)
                PLAIN.mkdir(exist_ok=True)
                plain_path.write_text(plain, encoding="utf-8")
    verb = "out of date" if args.check else "rewritten"
    print(f"{len(stale)} of {len(CHAPTERS)} notebooks {verb}" + (": " + ", ".join(stale) if stale else ""))
    return 1 if (stale and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
