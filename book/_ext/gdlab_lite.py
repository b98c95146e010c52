"""A JupyterLite site (Python in the browser, no server, no network) built with the book, and the links to it.

Loaded from ``_config.yml`` (``sphinx: local_extensions``). On ``build-finished`` of an HTML build it

1. builds a wheel of gdlab (``pip wheel --no-deps --no-build-isolation`` on a copy of ``pyproject.toml``,
   ``README.md`` and ``lib/``, so the repository gets no ``build/`` folder);
2. copies every chapter notebook ``book/*.ipynb`` to a staging folder, keeping its path (``book/NN_name.ipynb``)
   and its stored outputs, with the kernelspec of JupyterLite's Pyodide kernel (:func:`stage_notebooks`);
3. takes a self-hosted Pyodide and the pure-Python wheels the chapters install at run time from
   book/_ext/gdlab_pyodide.py (pinned, checked files in ``.cache/``; a file that does not match its pin stops the
   build and is named);
4. runs ``jupyter lite build --contents <staging> --piplite-wheels <wheels> --no-sourcemaps --output-dir
   _build/html/lite`` in a lite dir whose ``static/pyodide/`` holds that Pyodide and whose ``jupyter-lite.json``
   points the kernel at it (``pyodideUrl``) and forbids PyPI (``disablePyPIFallback``): the site fetches nothing
   from another host;
5. injects a notice into ``lab/index.html`` and ``notebooks/index.html`` (the script and style sheet
   ``gdlab_lite_notice.js`` / ``.css`` next to this file, inline): while the kernel starts it says that Python is
   starting in the browser, how much the first visit downloads and which versions run; it goes away when the kernel
   is idle. A browser without WebAssembly is told that it cannot run Python here and to download the notebook.

The site's address is ``lite/`` next to ``index.html``; a notebook opens at
``lite/lab/index.html?path=book/NN_name.ipynb``. Steps 1 and 4-5 are skipped when their inputs (the library's
sources; the notebooks, the wheels, the Pyodide pins, the notice and the JupyterLite versions) have not changed
since the last build, so a no-change rebuild costs little. Scratch files live in ``_build/.gdlab-lite/``. The site
must be served over HTTP with ``.wasm`` as ``application/wasm`` (see the README).

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

import gdlab_pyodide
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

LITE_DIR = "lite"                       # the site, inside the HTML output
LAB_PAGE = f"{LITE_DIR}/lab/index.html"  # a notebook opens at LAB_PAGE?path=book/NN_name.ipynb
NOTEBOOKS = "book"                      # chapter notebooks: <book root>/book/*.ipynb
PYODIDE_KERNELSPEC = {"name": "python", "display_name": "Python (Pyodide)", "language": "python"}
KERNEL_PLUGIN = "@jupyterlite/pyodide-kernel-extension:kernel"
PYODIDE_URL = "./static/pyodide/pyodide.js"   # relative to the site's jupyter-lite.json
APPS = ("lab", "notebooks", "tree")
NOTICE_PAGES = ("lab/index.html", "notebooks/index.html")  # the apps that start a kernel
NOTICE_SOURCES = [Path(__file__).with_name(f"gdlab_lite_notice.{ext}") for ext in ("css", "js")]
NOTICE_MARK = "gdlab-lite-notice"


def _digest(files: dict[str, Path], extra: str = "") -> str:
    """sha256 of ``extra`` and of the files' labels and contents (in label order)."""
    h = hashlib.sha256(extra.encode())
    for label, path in sorted(files.items()):
        h.update(label.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def build_wheel(root: Path, work: Path) -> Path:
    """Build (or reuse) the gdlab wheel from ``root``'s pyproject.toml and lib/; return its path."""
    sources = [root / "pyproject.toml", root / "README.md", *(root / "lib").rglob("*.py")]
    sources = [p for p in sources if p.is_file() and "egg-info" not in p.as_posix()]
    key = _digest({p.relative_to(root).as_posix(): p for p in sources})[:16]
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


def lite_config() -> dict:
    """The lite dir's ``jupyter-lite.json``: the kernel loads Pyodide from the site and never asks PyPI."""
    kernel = {"pyodideUrl": PYODIDE_URL, "disablePyPIFallback": True}
    return {"jupyter-lite-schema-version": 0, "jupyter-config-data": {"litePluginSettings": {KERNEL_PLUGIN: kernel}}}


def lite_overrides() -> dict:
    """The lite dir's ``overrides.json`` (default settings of the site's JupyterLab and Notebook).

    ``windowingMode: none`` attaches every cell of a notebook to the page, not only those in view (JupyterLab's
    default, ``full``): the chapters are short, and so the browser's find, the MyST links to equations and
    sections further down, and the browser tests all see every cell."""
    return {"@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"}}


def notice_settings(versions: dict[str, str], download_bytes: int) -> dict:
    """What the notice tells the reader: the versions that run and the first visit's download, in MB."""
    return {"pyodide": gdlab_pyodide.PYODIDE_VERSION, **versions, "megabytes": gdlab_pyodide.megabytes(download_bytes)}


def notice_snippet(settings: dict) -> str:
    """The notice's ``<style>`` and ``<script>`` (inline, nothing fetched), with ``settings`` as ``GDLAB_LITE``."""
    css, js = (path.read_text(encoding="utf-8") for path in NOTICE_SOURCES)
    data = json.dumps(settings, sort_keys=True).replace("</", "<\\/")
    return (f'<style id="{NOTICE_MARK}-style">\n{css}</style>\n'
            f'<script id="{NOTICE_MARK}-script">\nwindow.GDLAB_LITE = {data};\n{js}</script>\n')


def inject_notice(page: Path, snippet: str) -> None:
    """Put ``snippet`` at the end of the ``<body>`` of the HTML file ``page`` (once)."""
    text = page.read_text(encoding="utf-8")
    if f'id="{NOTICE_MARK}-script"' in text:
        return
    if "</body>" not in text:
        raise ValueError(f"{page}: no </body> to put the notice before")
    page.write_text(text.replace("</body>", snippet + "</body>", 1), encoding="utf-8")


def _jupyter_lite() -> list[str]:
    exe = Path(sys.executable).parent / "jupyter-lite"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "jupyterlite_core"]


def jupyter_lite_build(lite_dir: Path, site: Path, contents: Path, wheels: list[Path], pyodide: Path) -> None:
    """Run ``jupyter lite build`` into ``site`` from a fresh ``lite_dir`` holding ``pyodide`` and :func:`lite_config`."""
    shutil.rmtree(site, ignore_errors=True)
    shutil.rmtree(lite_dir, ignore_errors=True)
    shutil.copytree(pyodide, lite_dir / "static" / "pyodide")   # the Pyodide add-on's "well-known" place
    (lite_dir / "jupyter-lite.json").write_text(json.dumps(lite_config(), indent=2) + "\n")
    (lite_dir / "overrides.json").write_text(json.dumps(lite_overrides(), indent=2) + "\n")
    cmd = [*_jupyter_lite(), "build", "--lite-dir", str(lite_dir), "--output-dir", str(site), "--contents",
           str(contents), "--no-sourcemaps", *(f"--piplite-wheels={w}" for w in wheels),
           *(f"--apps={app}" for app in APPS)]
    subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=lite_dir)


def build_site(root: Path, work: Path, site: Path) -> bool:
    """Build the JupyterLite site of the book at ``root`` into ``site`` (scratch files in ``work``).

    Returns False if the site was up to date. Raises gdlab_fetch's errors (a file that does not match its pin, a
    download that failed) and subprocess.CalledProcessError."""
    pyodide = gdlab_pyodide.ensure_pyodide(root)   # first: a file that does not match its pin fails at once
    wheels = [build_wheel(root, work), *gdlab_pyodide.piplite_wheels(root)]
    stage = work / "contents"
    copies = stage_notebooks(root, stage)
    lock = json.loads((pyodide / gdlab_pyodide.LOCK).read_text())
    settings = notice_settings(gdlab_pyodide.versions_of(lock), gdlab_pyodide.tree_size(pyodide))
    versions = {p: importlib.metadata.version(p) for p in ("jupyterlite-core", "jupyterlite-pyodide-kernel")}
    files = {**{f"contents/{p.name}": p for p in copies}, **{f"wheels/{w.name}": w for w in wheels},
             **{f"notice/{p.name}": p for p in NOTICE_SOURCES}, "pyodide/lock": pyodide / gdlab_pyodide.LOCK}
    extra = json.dumps([versions, settings, lite_config(), lite_overrides(), gdlab_pyodide.PYODIDE_INTEGRITY],
                       sort_keys=True)
    key = _digest(files, extra)
    stamp = site / ".gdlab-stamp"
    if stamp.is_file() and stamp.read_text() == key:
        return False
    jupyter_lite_build(work / "lite-dir", site, stage, wheels, pyodide)
    snippet = notice_snippet(settings)
    for page in NOTICE_PAGES:
        inject_notice(site / page, snippet)
    stamp.write_text(key)
    return True


def build_lite(app: Sphinx, exception: Exception | None) -> None:
    """``build-finished``: build the site into ``<outdir>/lite`` (a pin mismatch or failed download fails the build)."""
    if exception is not None or app.builder.format != "html" or not app.config.gdlab_lite:
        return
    root, outdir = Path(app.srcdir), Path(app.outdir)
    site = outdir / LITE_DIR
    try:
        logger.info(f"[gdlab_lite] JupyterLite site in {site}")
        if not build_site(root, outdir.parent / ".gdlab-lite", site):
            logger.info("[gdlab_lite] JupyterLite site is up to date")
    except subprocess.CalledProcessError as exc:
        logger.warning(f"[gdlab_lite] {' '.join(exc.cmd[:4])} ... failed:\n{exc.stdout}\n{exc.stderr}")
    except (OSError, IndexError, ValueError) as exc:
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
