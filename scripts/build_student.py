"""Build the student edition of the book: the HTML book without any solution, into ``_build/student/``.

    .venv/bin/python scripts/build_student.py            # from the repository root or anywhere

What it does:

1. writes a temporary configuration, ``_build/.student-work/_config.yml``: the book's ``_config.yml`` plus
   ``sphinx.config.hide_solutions: true`` and the small extension ``scripts/student_solutions.py``, which also
   removes the solutions' code cells (tagged ``solution``). The notebooks' execution cache is shared with the
   normal build (``_build/.jupyter_cache``), so notebooks already executed there are not executed again;
2. runs ``jupyter-book build . --config <that file> --path-output _build/.student-work -W -n --keep-going``
   (warnings are errors, as in CI);
3. copies the HTML to ``_build/student/`` and replaces every copy of a chapter notebook in it (the download
   button's ``_sources/book/*.ipynb``, the JupyterLite site's files) with the student notebook written by
   ``scripts/export_student_notebooks.py``;
4. checks that no solution is left in the pages (no element of class ``solution``).

With ``--pdf`` it first builds the student PDF (``scripts/build_pdfs.py --edition student``, into
``_build/pdf/gdlab-book-student.pdf``; this needs the TeX packages listed in README.md); the student site offers the
student PDF whenever it is there (``book/_ext/gdlab_pdf.py``), and never the PDF with solutions. Serve the HTML
with ``.venv/bin/python -m http.server -d _build/student``. The exit status is that of the builds (1 if the final
check fails).
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
sys.path.insert(0, str(SCRIPTS))

from export_student_notebooks import export_notebook  # noqa: E402

WORK = ROOT / "_build" / ".student-work"
DEFAULT_OUTPUT = ROOT / "_build" / "student"
# An HTML element whose class list contains "solution" (sphinx-exercise's solution boxes).
SOLUTION_CLASS = re.compile(r"""class="(?:[^"]*\s)?solution(?:\s[^"]*)?\"""")


def work_config(config: dict) -> dict:
    """The book's configuration, ready to be written outside the repository root (``--config``): the local
    extensions' folders made absolute, the notebooks' execution cache shared with the normal build."""
    config = copy.deepcopy(config)
    sphinx = config.setdefault("sphinx", {})
    # local_extensions paths are resolved against the folder of the configuration file: make them absolute.
    sphinx["local_extensions"] = {name: str((ROOT / path).resolve())
                                  for name, path in (sphinx.get("local_extensions") or {}).items()}
    config.setdefault("execute", {}).setdefault("cache", str(ROOT / "_build" / ".jupyter_cache"))
    return config


def student_config(config: dict) -> dict:
    """The book's configuration with solutions hidden (and only the student PDF offered), ready to be written
    outside the repository root."""
    config = work_config(config)
    sphinx = config["sphinx"]
    sphinx.setdefault("config", {})["hide_solutions"] = True
    sphinx["config"]["gdlab_pdf_editions"] = ["student"]
    sphinx["local_extensions"]["student_solutions"] = str(SCRIPTS)
    return config


def jupyter_book() -> str:
    """The jupyter-book script next to the running interpreter, else the one on PATH."""
    local = Path(sys.executable).parent / "jupyter-book"
    return str(local) if local.exists() else (shutil.which("jupyter-book") or "jupyter-book")


def leftover_solutions(html_dir: Path) -> list[str]:
    """Pages of ``html_dir`` that still contain a solution element."""
    return [str(p.relative_to(html_dir)) for p in sorted(html_dir.rglob("*.html"))
            if SOLUTION_CLASS.search(p.read_text(encoding="utf-8"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the student edition (no solutions) into _build/student/.")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help=f"HTML output folder (default: {DEFAULT_OUTPUT})")
    parser.add_argument("--no-strict", action="store_true", help="do not pass -W -n --keep-going")
    parser.add_argument("--pdf", action="store_true",
                        help="first build the student PDF (scripts/build_pdfs.py --edition student; needs TeX, see "
                             "README), which the site then offers")
    args = parser.parse_args(argv)
    if args.pdf:  # first: the HTML build puts the PDF into the site
        import build_pdfs

        status = build_pdfs.build("student")
        if status:
            return status

    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    WORK.mkdir(parents=True, exist_ok=True)
    config_path = WORK / "_config.yml"
    config_path.write_text(yaml.safe_dump(student_config(config), sort_keys=False, allow_unicode=True), encoding="utf-8")

    command = [jupyter_book(), "build", str(ROOT), "--config", str(config_path), "--path-output", str(WORK)]
    if not args.no_strict:
        command += ["-W", "-n", "--keep-going"]
    print("+", " ".join(command), flush=True)
    status = subprocess.run(command, cwd=ROOT, check=False).returncode
    if status != 0:
        print(f"student build failed (exit status {status})", file=sys.stderr)
        return status

    html = WORK / "_build" / "html"
    output = args.output.resolve()
    if output.exists():
        shutil.rmtree(output)
    shutil.copytree(html, output)
    # Every copy of a chapter notebook in the site (the download button's _sources/, a JupyterLite site's files/)
    # becomes the student notebook.
    chapters = {path.name for path in (ROOT / "book").glob("*.ipynb")}
    for notebook in sorted(output.rglob("*.ipynb")):
        if notebook.name in chapters:
            export_notebook(ROOT / "book" / notebook.name, notebook.parent)

    leftovers = leftover_solutions(output)
    if leftovers:
        print(f"solutions left in: {', '.join(leftovers)}", file=sys.stderr)
        return 1
    print(f"student edition (no solutions): {output / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
