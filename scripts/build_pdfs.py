"""Build the book's PDFs into ``_build/pdf/``: the book with solutions and the student edition without them.

    .venv/bin/python scripts/build_pdfs.py                    # both (about a minute each with executed notebooks)
    .venv/bin/python scripts/build_pdfs.py --edition student  # one

Each edition is built by Sphinx's LaTeX builder and xelatex (``jupyter-book build --builder pdflatex``, needs the
TeX packages listed in README.md) in its own folder, ``_build/.pdf-work/<edition>/``, so that it never shares Sphinx's
environment with an HTML build (an HTML build after it still reads every page). The configuration is the book's
``_config.yml`` (the student edition: the one of ``scripts/build_student.py``, without solutions); the notebooks'
execution cache is the normal build's. The finished PDF is checked (its LaTeX log: enough pages, no character
missing from the fonts, no reference printed as ``??``) and copied to ``_build/pdf/`` under the name that
``book/_ext/gdlab_pdf.py`` gives it. Build the PDFs before the HTML: the HTML build copies them into the site and
links them (``{gdlab-pdf}`` on the lecturers' page, the ".pdf" entry of every page's download menu).

The exit status is 1 if a build or a check fails.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
sys.path.insert(0, str(SCRIPTS))
sys.path.insert(0, str(ROOT / "book" / "_ext"))

from build_student import jupyter_book, student_config, work_config  # noqa: E402
from gdlab_pdf import EDITIONS, PDF_DIR  # noqa: E402

WORK = ROOT / "_build" / ".pdf-work"
#: A PDF with fewer pages is not the book.
MIN_PAGES = 30
CONFIGS = {"book": work_config, "student": student_config}


def log_problems(log: str, min_pages: int = MIN_PAGES) -> tuple[int, list[str]]:
    """The page count that the LaTeX log ``log`` reports for its PDF, and what is wrong with the PDF, in words:
    too few pages, characters missing from the fonts, references still undefined in the last pass (printed ``??``)."""
    match = re.search(r"Output written on \S+\.pdf \((\d+) pages?", log)
    pages = int(match.group(1)) if match else 0
    problems = []
    if pages < min_pages:
        problems.append(f"{pages} pages (at least {min_pages} expected)")
    missing = log.count("Missing character")
    if missing:
        problems.append(f"{missing} characters missing from the fonts (see the LaTeX log)")
    undefined = sorted(set(re.findall(r"[Rr]eference `([^']+)' on page \d+ *undefined", log.replace("\n", ""))))
    if undefined:
        problems.append(f"references printed as ??: {undefined}")
    return pages, problems


def build(edition: str) -> int:
    """Build the PDF of ``edition`` and copy it to ``_build/pdf/``; the exit status (1 on a failed check)."""
    work = WORK / edition
    work.mkdir(parents=True, exist_ok=True)
    config = CONFIGS[edition](yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8")))
    config_path = work / "_config.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    command = [jupyter_book(), "build", str(ROOT), "--config", str(config_path), "--path-output", str(work),
               "--builder", "pdflatex"]
    print("+", " ".join(command), flush=True)
    status = subprocess.run(command, cwd=ROOT, check=False).returncode
    latex = work / "_build" / "latex"
    pdf, log = latex / "gdlab-book.pdf", latex / "gdlab-book.log"
    if status != 0 or not pdf.is_file() or not log.is_file():
        print(f"PDF build of {edition!r} failed (exit status {status}; no {pdf}?)", file=sys.stderr)
        return status or 1
    pages, problems = log_problems(log.read_text(encoding="utf-8", errors="replace"))
    target = ROOT / PDF_DIR / EDITIONS[edition].file
    print(f"{EDITIONS[edition].file}: {pages} pages, {pdf.stat().st_size / 1e6:.1f} MB")
    if problems:
        print(f"PDF of {edition!r}: " + "; ".join(problems), file=sys.stderr)
        return 1
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pdf, target)
    print(f"-> {target}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edition", choices=sorted(EDITIONS), action="append",
                        help="build only this edition (repeatable; default: all)")
    args = parser.parse_args(argv)
    for edition in args.edition or list(EDITIONS):
        status = build(edition)
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
