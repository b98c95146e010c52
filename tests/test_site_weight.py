"""The built site ships only what its pages load, and a chapter page's own weight stays within the budget.

On the built book (``_build/html``; skipped without a build, a failure with ``GDLAB_REQUIRE_BUILDS=1`` as in CI):

- no source map (``*.map``) outside the JupyterLite site;
- every file under ``_static/`` can be loaded by some page (book/_ext/gdlab_weight.py prunes the others; its
  ``LOADERS`` is the one list of folders kept whole because a script computes the paths it loads);
- no page loads MathJax or the icon script when math is typeset at build time (book/_ext/gdlab_math.py);
- each chapter page's static weight: the page, its stylesheets (with their ``@import``), scripts and the images it
  loads eagerly (lazy ones and fonts excluded: the browser fetches them on use; benchmarks/page_load.py measures
  what a cold load really transfers), under the budget of 1.5e6 bytes once gzip-compressed as any static host
  serves text; uncompressed (``python -m http.server``) it is over (strict xfail, so that it is noticed when fixed).

Each check has a power test on a small fake site that breaks it.
"""

from __future__ import annotations

import gzip
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import gdlab_weight  # noqa: E402

HTML_DIR = Path(os.environ.get("GDLAB_HTML_DIR") or ROOT / "_build" / "html")
BYTES_BUDGET = 1.5e6
TAG = re.compile(r"<(link|script|img)\b([^>]*)>", re.IGNORECASE)
ATTR = re.compile(r'(\w[\w-]*)\s*=\s*"([^"]*)"')


@pytest.fixture(scope="module")
def html() -> Path:
    if not (HTML_DIR / "index.html").is_file():
        reason = f"no built book at {HTML_DIR} (jupyter-book build .)"
        if os.environ.get("GDLAB_REQUIRE_BUILDS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return HTML_DIR


def chapter_pages(root: Path) -> list[Path]:
    """The chapter pages: built from a notebook of book/."""
    return [p for p in sorted((root / "book").glob("*.html")) if (ROOT / "book" / (p.stem + ".ipynb")).is_file()]


def source_maps(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.map") if p.relative_to(root).parts[0] not in gdlab_weight.SKIP_DIRS]


def unloadable_static(root: Path) -> list[str]:
    keep = gdlab_weight.loadable(root)
    return sorted(p.relative_to(root).as_posix() for p in (root / "_static").rglob("*") if p.is_file()
                  and p not in keep)


def page_files(page: Path, root: Path) -> set[Path]:
    """What ``page`` loads when it opens: itself, its stylesheets (and their imports), scripts, eager images."""
    files = {page}
    for tag, attrs in TAG.findall(page.read_text(encoding="utf-8")):
        a = dict(ATTR.findall(attrs))
        tag = tag.lower()
        ref = (a.get("href") if tag == "link" and "stylesheet" in a.get("rel", "") else
               a.get("src") if tag == "script" or (tag == "img" and a.get("loading") != "lazy") else None)
        target = gdlab_weight.local_target(ref, page.parent, root) if ref else None
        if target is not None:
            files.add(target)
    for css in [f for f in files if f.suffix == ".css"]:
        files |= {f for f in gdlab_weight.references(css, root) if f.suffix == ".css"}
    return files


def weight(files: set[Path], compress: bool) -> int:
    """Bytes of ``files``; gzip-compressed for text when ``compress``."""
    total = 0
    for f in files:
        data = f.read_bytes()
        total += len(gzip.compress(data, 6)) if compress and f.suffix in (".html", ".css", ".js", ".svg") else len(data)
    return total


def heavy_pages(root: Path, compress: bool) -> list[str]:
    return [f"{p.name}: {weight(page_files(p, root), compress) / 1e6:.2f} MB" for p in chapter_pages(root)
            if weight(page_files(p, root), compress) > BYTES_BUDGET]


# --------------------------------------------------------------------------------------------------------------------
# The built site


def test_no_source_maps(html):
    assert not source_maps(html), f"source maps shipped: {source_maps(html)[:5]}"


def test_every_static_file_is_loadable(html):
    left = unloadable_static(html)
    assert not left, f"{len(left)} files under _static/ that no page loads: {left[:10]}"


def heavy_scripts(page: str) -> list[str]:
    """The in-browser MathJax or the all-icons script, if ``page`` loads them."""
    return re.findall(r'<script[^>]*src="[^"]*/(tex-chtml\.js|fontawesome\.js)', page)


def test_pages_load_no_mathjax_or_icon_script(html):
    offenders = [p.name for p in chapter_pages(html) if heavy_scripts(p.read_text(encoding="utf-8"))]
    assert not offenders, f"pages that still load MathJax or the icon script: {offenders}"


def test_chapter_weight_compressed(html):
    assert chapter_pages(html)
    over = heavy_pages(html, compress=True)
    assert not over, f"chapter pages over {BYTES_BUDGET / 1e6:g} MB (gzip): {over}"


@pytest.mark.xfail(strict=True, reason="the chapters' build-time math (CHTML + assistive MathML) puts most chapter "
                   "pages over the budget uncompressed; served compressed they are well under it")
def test_chapter_weight_uncompressed(html):
    over = heavy_pages(html, compress=False)
    assert not over, f"chapter pages over {BYTES_BUDGET / 1e6:g} MB (uncompressed): {over}"


# --------------------------------------------------------------------------------------------------------------------
# Power tests: a small fake site that breaks each check


@pytest.fixture
def fake_site(tmp_path) -> Path:
    """A site with one chapter page that loads a stylesheet (with a font) and a script."""
    (tmp_path / "book").mkdir()
    (tmp_path / "_static" / "fonts").mkdir(parents=True)
    (tmp_path / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=book/01_nonconvexity.html" />')
    (tmp_path / "book" / "01_nonconvexity.html").write_text(
        '<link rel="stylesheet" href="../_static/a.css?v=1" /><script src="../_static/a.js"></script>'
        '<img src="../_static/lazy.png" loading="lazy" />')
    (tmp_path / "_static" / "a.css").write_text('@font-face{src:url("fonts/f.woff")}')
    (tmp_path / "_static" / "fonts" / "f.woff").write_bytes(b"font")
    (tmp_path / "_static" / "a.js").write_text('const x = "b.json";')
    (tmp_path / "_static" / "b.json").write_text("{}")
    (tmp_path / "_static" / "lazy.png").write_bytes(b"png")
    return tmp_path


def test_power_fake_site_passes(fake_site):
    assert not unloadable_static(fake_site) and not source_maps(fake_site)
    assert not heavy_pages(fake_site, compress=False)


def test_power_unreferenced_file_is_found(fake_site):
    (fake_site / "_static" / "unused.js").write_text("")
    assert unloadable_static(fake_site) == ["_static/unused.js"]


def test_power_source_map_is_found(fake_site):
    (fake_site / "_static" / "a.js.map").write_text("{}")
    assert source_maps(fake_site) == [fake_site / "_static" / "a.js.map"]
    assert "_static/a.js.map" in unloadable_static(fake_site)


def test_power_prune_removes_only_unloadable(fake_site):
    (fake_site / "_static" / "vendor").mkdir()
    (fake_site / "_static" / "vendor" / "big.js").write_text("x" * 100)
    assert gdlab_weight.prune(fake_site) == (1, 100)
    assert not (fake_site / "_static" / "vendor").exists() and (fake_site / "_static" / "b.json").is_file()


def test_power_heavy_page_is_found(fake_site):
    (fake_site / "_static" / "a.js").write_bytes(os.urandom(int(BYTES_BUDGET)))
    assert heavy_pages(fake_site, compress=True) and heavy_pages(fake_site, compress=False)


def test_power_lazy_image_not_counted_eager_is(fake_site):
    page = fake_site / "book" / "01_nonconvexity.html"
    assert fake_site / "_static" / "lazy.png" not in page_files(page, fake_site)
    page.write_text(page.read_text().replace(' loading="lazy"', ""))
    assert fake_site / "_static" / "lazy.png" in page_files(page, fake_site)


def test_power_icons_inlined_and_script_dropped():
    packs = {"fas": {"bars": (448, 512, "M0 96z")}}
    page = ('<script defer src="../_static/scripts/fontawesome.js?digest=1"></script>'
            '<i class="fa-solid fa-bars fa-lg"></i>')
    out = gdlab_weight.inline_icons(page, packs)
    assert "fontawesome.js" not in out and 'viewBox="0 0 448 512"' in out and "fa-lg" in out
    unknown = page + '<i class="fa-solid fa-unknown"></i>'
    assert "fontawesome.js" in gdlab_weight.inline_icons(unknown, packs)   # an icon we cannot draw keeps the script


def test_power_heavy_scripts_are_found():
    assert heavy_scripts('<script defer="defer" src="../_static/gdlab-assets/mathjax/tex-chtml.js?v=1"></script>')
    assert heavy_scripts('<script defer src="../_static/scripts/fontawesome.js?digest=1"></script>')
    assert not heavy_scripts('<script src="../_static/doctools.js"></script>')


# --------------------------------------------------------------------------------------------------------------------
# Build-time math (book/_ext/gdlab_math.py): the TeX it renders and the errors it reports


def test_display_tex_composes_like_sphinx_mathjax():
    import gdlab_math
    from docutils import nodes

    block = nodes.math_block("a = b\n\nc = d \\\\ e", "a = b\n\nc = d \\\\ e", nowrap=False, number=None)
    assert gdlab_math.display_tex(block) == ("\\begin{align}\\begin{aligned}a = b\\\\\\begin{split}c = d \\\\ e"
                                             "\\end{split}\\end{aligned}\\end{align}")
    raw = nodes.math_block("\\[x\\]", "\\[x\\]", nowrap=True, number=None)
    assert gdlab_math.display_tex(raw) == "x"


def test_power_math_errors_are_found():
    import gdlab_math

    clean = '<mjx-assistive-mml><math><mi>x</mi></math></mjx-assistive-mml>'
    assert not gdlab_math.errors_in(clean)
    assert gdlab_math.errors_in('<math><mtext mathcolor="red">\\nrom</mtext></math>')
    assert gdlab_math.errors_in('<math><merror data-mjx-error="Missing close brace"><mtext>x</mtext></merror></math>')
