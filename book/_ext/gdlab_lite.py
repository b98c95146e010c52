"""A JupyterLite site (Python in the browser, no server) built with the book, and the links to it.

Loaded from ``_config.yml`` (``sphinx: local_extensions``). On ``build-finished`` of an HTML build it

1. builds a wheel of gdlab (``pip wheel --no-deps --no-build-isolation`` on a copy of ``pyproject.toml``,
   ``README.md`` and ``lib/``, so the repository gets no ``build/`` folder);
2. copies every chapter notebook ``book/*.ipynb`` to a staging folder, keeping its path (``book/NN_name.ipynb``)
   and its stored outputs, with the kernelspec of JupyterLite's Pyodide kernel;
3. runs ``jupyter lite build --contents <staging> --piplite-wheels <wheel> --output-dir _build/html/lite``.

The site's address is ``lite/`` next to ``index.html``; a notebook opens at
``lite/lab/index.html?path=book/NN_name.ipynb``. Steps 1 and 3 are skipped when their inputs (the library's
sources; the notebooks, the wheel and the JupyterLite versions) have not changed since the last build, so a
no-change rebuild costs nothing. Scratch files live in ``_build/.gdlab-lite/``.

It also makes the "JupyterLite" launch button's address relative to the page (``launch_buttons: jupyterlite_url``
in ``_config.yml`` is given relative to the site root; sphinx-book-theme would use it as is on every page).
``lite_url`` is the address of a chapter in the site (book/_ext/gdlab_explorer.py links to it too).

Set ``gdlab_lite: false`` (``sphinx: config``) to build the book without the site.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

LITE_DIR = "lite"                       # the site, inside the HTML output
LAB_PAGE = f"{LITE_DIR}/lab/index.html"  # a notebook opens at LAB_PAGE?path=book/NN_name.ipynb
NOTEBOOKS = "book"                      # chapter notebooks: <book root>/book/*.ipynb
PYODIDE_KERNELSPEC = {"name": "python", "display_name": "Python (Pyodide)", "language": "python"}


def _digest(paths: list[Path], root: Path, extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def build_wheel(root: Path, work: Path) -> Path:
    """Build (or reuse) the gdlab wheel from ``root``'s pyproject.toml and lib/; return its path."""
    sources = [root / "pyproject.toml", root / "README.md", *(root / "lib").rglob("*.py")]
    sources = [p for p in sources if p.is_file() and "egg-info" not in p.as_posix()]
    key = _digest(sources, root)[:16]
    out = work / "wheels" / key
    found = sorted(out.glob("gdlab-*.whl"))
    if found:
        return found[0]
    src = work / "wheel-src"
    shutil.rmtree(src, ignore_errors=True)
    for path in sources:
        target = src / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    shutil.rmtree(work / "wheels", ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-cache-dir",
           "-w", str(out), str(src)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    shutil.rmtree(src, ignore_errors=True)
    return sorted(out.glob("gdlab-*.whl"))[0]


def stage_notebooks(root: Path, stage: Path) -> list[Path]:
    """Copy book/*.ipynb to ``stage/book/`` with the Pyodide kernelspec and no widget state; return the copies."""
    shutil.rmtree(stage, ignore_errors=True)
    (stage / NOTEBOOKS).mkdir(parents=True)
    copies = []
    for nb_path in sorted((root / NOTEBOOKS).glob("*.ipynb")):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        nb.setdefault("metadata", {})["kernelspec"] = dict(PYODIDE_KERNELSPEC)
        nb["metadata"].pop("widgets", None)
        copy = stage / NOTEBOOKS / nb_path.name
        copy.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        copies.append(copy)
    return copies


def _jupyter_lite() -> list[str]:
    exe = Path(sys.executable).parent / "jupyter-lite"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "jupyterlite_core"]


def build_lite(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html" or not app.config.gdlab_lite:
        return
    root, outdir = Path(app.srcdir), Path(app.outdir)
    work = outdir.parent / ".gdlab-lite"
    site = outdir / LITE_DIR
    try:
        wheel = build_wheel(root, work)
        stage = work / "contents"
        copies = stage_notebooks(root, stage)
        versions = {p: importlib.metadata.version(p) for p in ("jupyterlite-core", "jupyterlite-pyodide-kernel")}
        key = _digest([*copies, wheel], work, json.dumps(versions, sort_keys=True))
        stamp = site / ".gdlab-stamp"
        if stamp.is_file() and stamp.read_text() == key:
            logger.info("[gdlab_lite] JupyterLite site is up to date")
            return
        logger.info(f"[gdlab_lite] building the JupyterLite site in {site}")
        shutil.rmtree(site, ignore_errors=True)
        lite_dir = work / "lite-dir"
        shutil.rmtree(lite_dir, ignore_errors=True)
        lite_dir.mkdir(parents=True)
        cmd = [*_jupyter_lite(), "build", "--lite-dir", str(lite_dir), "--output-dir", str(site),
               "--contents", str(stage), "--piplite-wheels", str(wheel), "--no-sourcemaps",
               "--apps", "lab", "--apps", "notebooks", "--apps", "tree"]
        subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=lite_dir)
        stamp.write_text(key)
    except subprocess.CalledProcessError as exc:
        logger.warning(f"[gdlab_lite] {' '.join(exc.cmd[:4])} ... failed:\n{exc.stdout}\n{exc.stderr}")
    except (OSError, IndexError) as exc:
        logger.warning(f"[gdlab_lite] cannot build the JupyterLite site: {exc}")


def lite_url(docname: str) -> str:
    """Address, relative to the site root, that opens ``docname``'s notebook in the JupyterLite site."""
    return f"{LAB_PAGE}?path={docname}.ipynb"


def fix_launch_button(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Make the theme's JupyterLite launch button relative to the page (it is configured relative to the root)."""
    pathto = context.get("pathto")
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            if button.get("text") == "JupyterLite" and pathto is not None:
                button["url"] = pathto(lite_url(pagename), 1)


def setup(app: Sphinx) -> dict:
    app.add_config_value("gdlab_lite", True, "html", [bool])
    app.connect("html-page-context", fix_launch_button, priority=600)
    app.connect("build-finished", build_lite)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
