"""Checks of the built site: offline pages, no dead controls, the JupyterLite site and the links to it.

Most tests need a built book (``jupyter-book build .``): they are skipped, with that reason, when ``_build/html``
does not exist, unless the environment variable ``GDLAB_REQUIRE_BUILDS=1`` is set (as in CI, after the clean
build): then a missing build is a failure. The tests on the source notebooks always run.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from site_paths import HTML_DIR

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import gdlab_plain  # noqa: E402
import gdlab_pyodide  # noqa: E402

BOOK = gdlab_plain.Book.from_sources(ROOT)
LITE = HTML_DIR / "lite"
ASSETS = HTML_DIR / "_static" / "gdlab-assets"
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))
EXTERNAL_HOSTS = ("cdn", "jsdelivr", "unpkg", "googleapis", "cdnjs", "thebe@")


def book_pages(root: Path) -> list[Path]:
    """Every HTML page of the book (not of the JupyterLite site, which is an application of its own)."""
    return [p for p in root.rglob("*.html") if LITE not in p.parents]


def has_explorer(nb_path: Path) -> bool:
    nb = nbformat.read(nb_path, as_version=4)
    return any(c.cell_type == "code" and "live(explorer)" in c.source for c in nb.cells)


def test_there_are_chapters():
    assert CHAPTERS, "no chapter notebooks in book/"


# --- source notebooks (no build needed) ------------------------------------------------------------------


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.name)
def test_notebook_saved_without_widget_state(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    assert "widgets" not in nb.metadata, f"{nb_path.name}: save it without widget state (metadata.widgets)"


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.name)
def test_first_code_cell_installs_gdlab_in_jupyterlite(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code").source
    assert 'if sys.platform == "emscripten":' in first and 'await piplite.install("gdlab")' in first


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.name)
def test_explorer_follows_the_pattern(nb_path):
    """One cell `live(explorer)` (controls in Jupyter, the default figure in the book), then the standard
    admonition with the class `gdlab-explorer-live` that book/_ext/gdlab_explorer.py completes."""
    nb = nbformat.read(nb_path, as_version=4)
    cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "live(explorer)" in c.source]
    assert len(cells) == (1 if has_explorer(nb_path) else 0), f"{nb_path.name}: one live(explorer) cell"
    for i in cells:
        assert "remove-output" not in nb.cells[i].metadata.get("tags", []), "the book shows this cell's figure"
        box = nb.cells[i + 1].source.splitlines()
        assert box[0] == ":::{admonition} Run this explorer live" and box[1] == ":class: tip gdlab-explorer-live"
    assert not any("explorer.update(**explorer.defaults)" in c.source for c in nb.cells), "the figure twice"


# --- offline pages ---------------------------------------------------------------------------------------

TAG_URL = re.compile(r"<(script|link|img|iframe|source|audio|video|embed)\b[^>]*?\b(src|href)=\"((?:https?:)?//[^\"]*)\"",
                     re.IGNORECASE | re.DOTALL)

DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+")


def test_no_page_loads_anything_from_another_host(html):
    offenders = {}
    for page in book_pages(html):
        # data: URIs (an image inlined as base64) are part of the page, and their text can contain any word
        text = DATA_URI.sub("data:", page.read_text(encoding="utf-8"))
        found = [m.group(3) for m in TAG_URL.finditer(text)]
        found += [h for h in EXTERNAL_HOSTS if h in text.lower()]
        if found:
            offenders[str(page.relative_to(html))] = found
    assert not offenders


def test_no_widget_state_is_embedded(html):
    pages = [p for p in book_pages(html) if "application/vnd.jupyter.widget-state+json" in p.read_text(encoding="utf-8")]
    assert not pages, "widget state embedded (controls without a kernel) in " + ", ".join(p.name for p in pages)


def test_math_uses_the_local_mathjax(html):
    """The math is typeset at build time (book/_ext/gdlab_math.py): the page links the glyph stylesheet, whose
    MathJax fonts are served by the book; no MathJax script is loaded (nor shipped, see test_site_weight.py)."""
    page = (html / "book" / f"{CHAPTERS[0].stem}.html").read_text(encoding="utf-8")
    assert re.search(r'<link[^>]*href="\.\./_static/gdlab-math\.css', page)
    assert "<mjx-container" in page and "tex-chtml.js" not in page
    fonts = re.findall(r'url\("?([^")]+\.woff)', (html / "_static" / "gdlab-math.css").read_text(encoding="utf-8"))
    assert fonts and all((html / "_static" / font).is_file() for font in fonts)


# --- chapter pages: launch, download, explorer ---------------------------------------------------------------


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_page_links(html, nb_path):
    name = nb_path.stem
    page = (html / "book" / f"{name}.html").read_text(encoding="utf-8")
    lite = f'href="../lite/lab/index.html?path=book/{name}.ipynb"'
    assert lite in page, "no JupyterLite launch link"
    # Colab and Binder buttons exist only with a repository: tests/test_site_links.py checks them.
    assert f'href="../_sources/book/{name}.ipynb"' in page, "no .ipynb download"
    text = re.sub(r"<[^>]+>", " ", page)
    # The generated works-cited cell is the chapter's last section on the page (tests/test_citations.py checks it).
    assert "math:" not in text, "the notebook's generated macros cell must stay out of the page"
    download = nbformat.read(html / "_sources" / "book" / f"{name}.ipynb", as_version=4)
    assert download == gdlab_plain.to_plain(nbformat.read(nb_path, as_version=4), name, BOOK), \
        "the .ipynb download is not the plain notebook of the source"
    if has_explorer(nb_path):
        assert "gdlab-explorer-live" in page and page.count(lite) >= 2, "explorer without its 'run live' admonition"
        versions = gdlab_pyodide.live_versions(ROOT)
        assert all(f"{name} {versions[name]}" in page for name in ("numpy", "scipy", "matplotlib")), \
            "the 'run live' admonition must say which versions the live site runs"
        assert "widget-view+json" not in page, "a widget view (dead control) on the static page"


# --- the JupyterLite site --------------------------------------------------------------------------------


def test_lite_site_lists_every_chapter(html):
    assert (LITE / "lab" / "index.html").is_file() and (LITE / "jupyter-lite.json").is_file()
    listing = json.loads((LITE / "api" / "contents" / "book" / "all.json").read_text())
    listed = {item["path"] for item in listing["content"]}
    assert {f"book/{p.name}" for p in CHAPTERS} <= listed
    for nb_path in CHAPTERS:
        copy = nbformat.read(LITE / "files" / "book" / nb_path.name, as_version=4)
        assert copy.metadata.kernelspec.name == "python"            # the Pyodide kernel
        assert "piplite" in next(c for c in copy.cells if c.cell_type == "code").source


def test_lite_site_ships_the_gdlab_wheel(html):
    index = json.loads((LITE / "pypi" / "all.json").read_text())
    assert "gdlab" in index
    releases = [f for files in index["gdlab"]["releases"].values() for f in files]
    wheel = LITE / "pypi" / releases[-1]["url"].removeprefix("./")
    assert wheel.is_file()
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "gdlab/widgets.py" in names and "gdlab/__init__.py" in names
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    # Only lower bounds, all met by Pyodide's own numpy/scipy/matplotlib: piplite takes those, fetches nothing else.
    requires = sorted(line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:"))
    assert all(">=" in r and "<" not in r.replace(">=", "") for r in requires), requires


def test_lite_site_has_the_widgets_extension(html):
    assert (LITE / "extensions" / "@jupyter-widgets" / "jupyterlab-manager").is_dir()


def _shipped_lock() -> dict:
    return json.loads((LITE / "static" / "pyodide" / gdlab_pyodide.LOCK).read_text())


def test_lite_site_self_hosts_pyodide_with_a_filtered_lock(html):
    """Pyodide is in the site (lite/static/pyodide/): the runtime, and exactly the packages the chapters need (the
    closure of gdlab_pyodide.ROOTS), each file matching the sha256 of the lock, which lists nothing else."""
    pyodide = LITE / "static" / "pyodide"
    lock = _shipped_lock()
    assert lock["info"]["version"] == gdlab_pyodide.PYODIDE_VERSION
    assert gdlab_pyodide.closure(lock, gdlab_pyodide.ROOTS) == sorted(lock["packages"]), "the lock is not filtered"
    files = {p["file_name"]: p["sha256"] for p in lock["packages"].values()}
    assert {p.name for p in pyodide.iterdir()} == {*gdlab_pyodide.CORE_FILES, gdlab_pyodide.LOCK, *files}
    bad = [name for name, sha in files.items() if hashlib.sha256((pyodide / name).read_bytes()).hexdigest() != sha]
    assert not bad, f"files that do not match the lock: {bad}"


def test_lite_site_config_names_no_other_host(html):
    """The kernel loads Pyodide from the site and never falls back to PyPI; no config file holds a URL."""
    configs = [*LITE.rglob("jupyter-lite.json"), *LITE.rglob("overrides.json")]
    assert len(configs) >= 4, configs
    offenders = [str(p.relative_to(LITE)) for p in configs if "://" in p.read_text() or "cdn" in p.read_text().lower()]
    assert not offenders, f"a URL in {offenders}"
    settings = json.loads((LITE / "jupyter-lite.json").read_text())["jupyter-config-data"]["litePluginSettings"]
    kernel = settings["@jupyterlite/pyodide-kernel-extension:kernel"]
    assert kernel["pyodideUrl"] == "./static/pyodide/pyodide.js" and (LITE / "static/pyodide/pyodide.js").is_file()
    assert kernel["disablePyPIFallback"] is True
    assert all(url.startswith("./") for url in kernel["pipliteUrls"]), kernel["pipliteUrls"]


def test_lite_site_installs_gdlab_without_pypi(html):
    """Every requirement of the wheels in lite/pypi/ (gdlab, ipywidgets and its dependencies) is met by a package
    that the site ships: in Pyodide's lock, in lite/pypi/, or among the Pyodide kernel's own wheels."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    available = {name: [p["version"]] for name, p in _shipped_lock()["packages"].items()}
    for index in (LITE / "pypi" / "all.json",
                  LITE / "extensions/@jupyterlite/pyodide-kernel-extension/static/pypi/all.json"):
        for name, entry in json.loads(index.read_text()).items():
            available.setdefault(canonicalize_name(name), []).extend(entry["releases"])
    unmet = []
    for wheel in sorted((LITE / "pypi").glob("*.whl")):
        with zipfile.ZipFile(wheel) as zf:
            metadata = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        for line in metadata.splitlines():
            if line.startswith("Requires-Dist:"):
                req = Requirement(line.split(":", 1)[1].strip())
                if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                    continue
                versions = available.get(canonicalize_name(req.name), [])
                if not any(req.specifier.contains(v, prereleases=True) for v in versions):
                    unmet.append(f"{wheel.name}: {req} (site has {versions or 'nothing'})")
    assert not unmet, "\n".join(unmet)


@pytest.mark.parametrize("app", ["lab", "notebooks"])
def test_lite_pages_carry_the_starting_notice(html, app):
    """The lab and notebook pages hold the notice (inline script and style): the versions and the download size
    are those of the Pyodide the site ships."""
    page = (LITE / app / "index.html").read_text(encoding="utf-8")
    assert 'id="gdlab-lite-notice-script"' in page and 'id="gdlab-lite-notice-style"' in page
    lock = _shipped_lock()
    size = sum(p.stat().st_size for p in (LITE / "static" / "pyodide").iterdir())
    expected = {"python": lock["info"]["python"], "megabytes": round(size / 1e6),
                **{name: lock["packages"][name]["version"] for name in ("numpy", "scipy", "matplotlib")}}
    settings = json.loads(re.search(r"window\.GDLAB_LITE = (\{.*?\});", page).group(1))
    assert {k: settings.get(k) for k in expected} == expected


def _parallel_extension():
    """book/_ext/gdlab_parallel.py loaded as a module (it is a Sphinx local extension, not part of gdlab)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gdlab_parallel", ROOT / "book" / "_ext" / "gdlab_parallel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parallel_execution_finds_every_chapter_in_toc_order():
    """book/_ext/gdlab_parallel.py pre-executes the notebooks of the table of contents: every chapter, in order."""
    from types import SimpleNamespace

    from sphinx_external_toc.parsing import parse_toc_yaml

    module = _parallel_extension()
    app = SimpleNamespace(srcdir=str(ROOT), config=SimpleNamespace(external_site_map=parse_toc_yaml(ROOT / "_toc.yml")))
    assert module.toc_notebooks(app) == CHAPTERS


def test_parallel_execution_skips_cached_notebooks(tmp_path):
    """Only notebooks without an executed match in the jupyter-cache are run again."""
    from jupyter_cache import get_cache

    module = _parallel_extension()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1 + 1)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    done, todo = tmp_path / "done.ipynb", tmp_path / "todo.ipynb"
    nbformat.write(nb, done)
    nb2 = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(2 + 2)")], metadata=nb.metadata)
    nbformat.write(nb2, todo)
    cache = get_cache(tmp_path / "cache")
    from jupyter_cache.base import CacheBundleIn

    cache.cache_notebook_bundle(CacheBundleIn(nbformat.read(done, 4), str(done)), check_validity=False)
    assert module.uncached(cache, [done, todo]) == [todo]


# --- the plain notebooks' numbers are the book's -------------------------------------------------------------------

NUMBERED = re.compile(r'<div class="(?:proof|exercise)[^"]*"[^>]*\bid="(?P<label>[^"]+)"[^>]*>\s*'
                      r'<p class="admonition-title"><span class="caption-number">(?P<text>[^<]+?)\s*</span>')
EQUATION = re.compile(r'<div class="math[^"]*" id="equation-(?P<label>[^"]+)">\s*<span class="eqno">(?P<text>\([^)]+\))')


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.name)
def test_plain_numbers_are_the_books(html, nb_path):
    """Every theorem, exercise and equation number the plain notebook shows is the one on the built page (and the
    page has no numbered block the plain notebook does not know)."""
    page = (html / "book" / f"{nb_path.stem}.html").read_text(encoding="utf-8")
    shown = {m["label"]: m["text"] for m in NUMBERED.finditer(page)}
    shown |= {m["label"]: m["text"] for m in EQUATION.finditer(page)}
    ours = {label: t.text for label, t in BOOK.index.items() if t.doc == nb_path.stem}
    assert shown and shown == ours
