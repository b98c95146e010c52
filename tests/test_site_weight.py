"""The built site ships only what its pages load, and a chapter page's own weight stays within the budget.

On the built book (``_build/html``; skipped without a build, a failure with ``GDLAB_REQUIRE_BUILDS=1`` as in CI):

- no source map (``*.map``) outside the JupyterLite site;
- every file under ``_static/`` can be loaded by some page (book/_ext/gdlab_weight.py prunes the others; its
  ``LOADERS`` is the one list of folders kept whole because a script computes the paths it loads);
- no page loads MathJax or the icon script when math is typeset at build time (book/_ext/gdlab_math.py);
- the Font Awesome fonts are the cut ones (book/_ext/gdlab_weight.py, ``subset_icon_fonts``): no full font is
  shipped, and every icon character the site's pages, scripts and stylesheets can show is in the font declared
  for it;
- each chapter page's weight as a static host serves it, under the budget of 1.5e6 bytes: the page, its
  stylesheets (with their ``@import``), scripts, the images it loads eagerly (lazy ones excluded: the browser
  fetches them when the reader gets near them) and every font its stylesheets declare (an upper bound: a browser
  fetches only the fonts a page draws with), text gzip-compressed at level 6 (``gdlab_weight.served_size``).
  benchmarks/page_load.py measures what a cold load really transfers. The uncompressed weight (what ``python -m
  http.server`` sends) is reported, not budgeted: the build-time math puts most chapters over 1.5 MB that way (the
  heaviest chapter's two figures are printed in the numerical-checks summary at the end of the run).

Each check has a power test on a small fake site that breaks it.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import gdlab_weight  # noqa: E402

BYTES_BUDGET = 1.5e6
PYDATA_STATIC = Path(__import__("pydata_sphinx_theme").__file__).parent / "theme" / "pydata_sphinx_theme" / "static"
TAG = re.compile(r"<(link|script|img)\b([^>]*)>", re.IGNORECASE)
ATTR = re.compile(r'(\w[\w-]*)\s*=\s*"([^"]*)"')


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
    for css in [f for f in files if f.suffix == ".css"]:
        files |= declared_fonts(css, root)
    return files


def declared_fonts(css: Path, root: Path) -> set[Path]:
    """The font each ``@font-face`` of ``css`` makes a browser fetch when it is used: its first source."""
    fonts = set()
    for face in gdlab_weight.FONT_FACE.findall(css.read_text(encoding="utf-8")):
        targets = [t for u in gdlab_weight.font_urls(face) if (t := gdlab_weight.local_target(u, css.parent, root))]
        fonts |= set(targets[:1])
    return fonts


def weight(files: set[Path], compress: bool) -> int:
    """Bytes of ``files`` as served: text gzip-compressed when ``compress``."""
    return sum(gdlab_weight.served_size(f, compress) for f in files)


def page_weights(root: Path, compress: bool) -> dict[str, int]:
    """Each chapter page's weight (:func:`page_files`), by file name."""
    return {p.name: weight(page_files(p, root), compress) for p in chapter_pages(root)}


def heavy_pages(root: Path, compress: bool) -> list[str]:
    return [f"{name}: {size / 1e6:.2f} MB" for name, size in page_weights(root, compress).items()
            if size > BYTES_BUDGET]


def font_codepoints(path: Path) -> set[int]:
    """The characters a font file has glyphs for."""
    from fontTools.ttLib import TTFont

    return set(TTFont(path).getBestCmap())


def icon_fonts(root: Path) -> dict[Path, list[Path]]:
    """Per stylesheet under ``_static/``, the fonts its Font Awesome ``@font-face`` blocks point at (for each block,
    the source fontTools can read: ``gdlab_weight.font_source``)."""
    found = {}
    for css in (root / "_static").rglob("*.css"):
        text = css.read_text(encoding="utf-8")
        faces = [f for f in gdlab_weight.FONT_FACE.findall(text) if gdlab_weight.ICON_FONT_FAMILY in
                 gdlab_weight.css_text(f)]
        sources = [[t for u in gdlab_weight.font_urls(f) if (t := gdlab_weight.local_target(u, css.parent, root))]
                   for f in faces]
        fonts = [font for s in sources if (font := gdlab_weight.font_source(s))]
        if fonts:
            found[css] = fonts
    return found


def icon_glyphs(root: Path, theme_css: Path = PYDATA_STATIC / "styles" / "pydata-sphinx-theme.css"):
    """(needed, shipped): the icon characters the site can show (``gdlab_weight.icon_codepoints`` over its pages
    and scripts, its stylesheets and the theme's own, uncut stylesheet) that the theme's full fonts have, and those
    the shipped icon fonts have."""
    static = root / "_static"
    classes = gdlab_weight.icon_classes(p.read_text(encoding="utf-8", errors="replace")
                                        for p in [*gdlab_weight.pages(root), *static.rglob("*.js")])
    sheets = [*static.rglob("*.css"), theme_css]
    needed = gdlab_weight.icon_codepoints((p.read_text(encoding="utf-8") for p in sheets), classes)
    full = set().union(*(font_codepoints(f) for f in (PYDATA_STATIC / "vendor" / "fontawesome").rglob("*.ttf")))
    shipped = set().union(*(font_codepoints(f) for fonts in icon_fonts(root).values() for f in fonts))
    return needed & full, shipped


def missing_icon_glyphs(root: Path, theme_css: Path = PYDATA_STATIC / "styles" / "pydata-sphinx-theme.css") -> list[str]:
    """Icon characters the site can show but no shipped icon font has (:func:`icon_glyphs`)."""
    needed, shipped = icon_glyphs(root, theme_css)
    return sorted(f"U+{c:04X}" for c in needed - shipped)


def extra_icon_glyphs(root: Path, theme_css: Path = PYDATA_STATIC / "styles" / "pydata-sphinx-theme.css") -> int:
    """How many characters the shipped icon fonts have that the site cannot show (:func:`icon_glyphs`)."""
    needed, shipped = icon_glyphs(root, theme_css)
    return len(shipped - needed)


def full_icon_fonts(root: Path) -> list[str]:
    """Shipped Font Awesome fonts that are the theme's full ones (same bytes as a file of the theme's webfonts)."""
    full = {f.read_bytes() for f in (PYDATA_STATIC / "vendor" / "fontawesome").rglob("*") if f.is_file()}
    return sorted(p.relative_to(root).as_posix() for p in (root / "_static").rglob("*")
                  if p.suffix in gdlab_weight.FONT_FORMATS and p.read_bytes() in full)


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


def test_chapter_weight_compressed(html, grad_report):
    assert chapter_pages(html)
    over = heavy_pages(html, compress=True)
    assert not over, f"chapter pages over {BYTES_BUDGET / 1e6:g} MB (gzip): {over}"
    for compress, label in ((True, "served gzip, budget 1.5"), (False, "uncompressed, reported only")):
        grad_report(f"site weight: heaviest chapter page, MB ({label})",
                    max(page_weights(html, compress).values()) / 1e6)


def test_icon_fonts_are_cut_and_cover_every_icon(html):
    assert icon_fonts(html), "no stylesheet declares a Font Awesome font: did the theme change?"
    assert not full_icon_fonts(html), f"full Font Awesome fonts shipped: {full_icon_fonts(html)}"
    assert not missing_icon_glyphs(html), f"icons the site can show but its fonts lack: {missing_icon_glyphs(html)}"
    assert not extra_icon_glyphs(html), f"{extra_icon_glyphs(html)} icons in the fonts that the site cannot show"


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


def test_power_text_is_counted_compressed_and_fonts_are_counted(fake_site):
    page = fake_site / "book" / "01_nonconvexity.html"
    page.write_text(page.read_text() + "<p>x = y</p>" * 200_000)     # 2.4 MB of text, a few KB gzipped
    assert not heavy_pages(fake_site, compress=True) and heavy_pages(fake_site, compress=False)
    assert fake_site / "_static" / "fonts" / "f.woff" in page_files(page, fake_site)
    (fake_site / "_static" / "fonts" / "f.woff").write_bytes(os.urandom(int(BYTES_BUDGET)))
    assert heavy_pages(fake_site, compress=True)
    (fake_site / "_static" / "a.css").write_text('@font-face /* 0 */ {\n  src: url("fonts/f.woff") format("woff");\n}')
    assert heavy_pages(fake_site, compress=True)                      # as MathJax writes its @font-face


@pytest.fixture
def icon_site(tmp_path) -> Path:
    """A site whose stylesheet declares the theme's full solid icon font and three icons; its page uses one, and a
    script that no page loads names the two others."""
    fonts = tmp_path / "_static" / "vendor" / "fontawesome" / "webfonts"
    fonts.mkdir(parents=True)
    (tmp_path / "_static" / "styles").mkdir()
    for name in ("fa-solid-900.woff2", "fa-solid-900.ttf"):
        (fonts / name).write_bytes((PYDATA_STATIC / "vendor" / "fontawesome" / "webfonts" / name).read_bytes())
    (tmp_path / "_static" / "styles" / "theme.css").write_text(
        '@font-face{font-family:Font Awesome\\ 6 Free;font-weight:900;src:url(../vendor/fontawesome/webfonts/'
        'fa-solid-900.woff2) format("woff2"),url(../vendor/fontawesome/webfonts/fa-solid-900.ttf) format("truetype")}'
        '.fa-bars:before,.fa-navicon:before{content:"\\f0c9"}.fa-xmark:before{content:"\\f00d"}'
        '.fa-rocket:before{content:"\\f135"}html{--pst-icon-info-circle:"\uf05a"}'
        '.admonition-title:after{content:var(--pst-icon-info-circle);font:var(--fa-font-solid)}')
    (tmp_path / "index.html").write_text('<link rel="stylesheet" href="_static/styles/theme.css">'
                                         '<i class="fa-solid fa-bars"></i>')
    (tmp_path / "_static" / "fontawesome.js").write_text('const all = ["fa-xmark", "fa-rocket"];')   # no page loads it
    return tmp_path


def test_power_icon_fonts_are_cut_to_the_icons_used(icon_site, tmp_path_factory):
    theme_css = icon_site / "_static" / "styles" / "theme.css"
    original = tmp_path_factory.mktemp("theme") / "theme.css"    # the theme's uncut stylesheet
    original.write_text(theme_css.read_text())
    assert full_icon_fonts(icon_site) and not missing_icon_glyphs(icon_site, original)
    assert extra_icon_glyphs(icon_site, original) > 1000
    assert gdlab_weight.icon_codepoints([original.read_text()], {"fa-bars"}) == {0xF0C9, 0xF05A}
    [(sheet, before, after)] = gdlab_weight.subset_icon_fonts(icon_site)
    gdlab_weight.prune(icon_site)
    assert sheet == "_static/styles/theme.css" and after < before / 20
    assert not full_icon_fonts(icon_site)
    [font] = icon_fonts(icon_site)[theme_css]
    assert font_codepoints(font) == {0xF0C9, 0xF05A}
    css = theme_css.read_text()
    assert ".fa-bars:before{" in css and "fa-xmark" not in css and "fa-navicon" not in css and "--pst-icon-info" in css
    assert not missing_icon_glyphs(icon_site, original) and not extra_icon_glyphs(icon_site, original)
    # a rebuild that writes no page (Sphinx copies no theme file) cuts the cut font again: same name, same bytes
    from fontTools.ttLib import TTFont

    data = font.read_bytes()
    assert gdlab_weight.subset_font(data, {0xF0C9, 0xF05A}, "woff") == data
    theme_font = PYDATA_STATIC / "vendor" / "fontawesome" / "webfonts" / "fa-solid-900.ttf"
    assert TTFont(font)["head"].modified == TTFont(theme_font)["head"].modified   # not the time of the build
    assert gdlab_weight.subset_icon_fonts(icon_site)[0][1:] == (after, after)
    gdlab_weight.prune(icon_site)
    assert icon_fonts(icon_site)[theme_css] == [font] and font.name.startswith("fa-solid-900.")
    # a page that uses an icon the cut font lacks (the theme's own stylesheet defines it)
    (icon_site / "index.html").write_text('<i class="fa-solid fa-xmark"></i><i class="fa-solid fa-bars"></i>')
    assert missing_icon_glyphs(icon_site, original) == ["U+F00D"]


def test_icon_characters_are_read_from_css_strings():
    assert gdlab_weight.css_text("\\f0c9 x\\\\") == "\uf0c9x\\"
    assert gdlab_weight.css_strings('a{content:"\\e4bd"}b{content:\'\\31 \'}') == ["\ue4bd", "1"]
    css = '.fa-0:before{content:"\\30 "}.fa-a:before{content:"A"}x{--i:"\uf107";font-family:"A B"}'
    assert gdlab_weight.icon_codepoints([css], set()) == {0xF107}     # private use only, outside the icon rules
    assert gdlab_weight.icon_codepoints([css], {"fa-0", "fa-a"}) == {0xF107, 0x30, 0x41}
    assert gdlab_weight.strip_icon_rules(css, {"fa-a"}) == '.fa-a:before{content:"A"}x{--i:"\uf107";font-family:"A B"}'


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


# --------------------------------------------------------------------------------------------------------------------
# benchmarks/page_load.py's server: text gzip-compressed as a static host sends it


def test_accepts_gzip():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from page_load import accepts_gzip

    assert accepts_gzip("gzip, deflate, br, zstd") and accepts_gzip("br;q=1.0, gzip;q=0.8") and accepts_gzip("*")
    assert not accepts_gzip("") and not accepts_gzip("identity") and not accepts_gzip("br, gzip;q=0")
    assert not accepts_gzip("gzip; q=0.0, deflate")


def test_gzip_handler_compresses_text_only_when_accepted(fake_site):
    import urllib.request

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gdlab_browser import serve
    from page_load import GzipHandler

    (fake_site / "_static" / "big.css").write_text("a{color:red}\n" * 5000)
    server, _, base = serve(fake_site, GzipHandler)
    try:
        def get(rel: str, encoding: str | None):
            request = urllib.request.Request(base + rel, headers={"Accept-Encoding": encoding} if encoding else {})
            with urllib.request.urlopen(request) as response:
                return response.headers.get("Content-Encoding"), response.headers["Content-Type"], response.read()

        css = (fake_site / "_static" / "big.css").read_bytes()
        coding, kind, body = get("_static/big.css?v=1", "gzip, br")
        assert coding == "gzip" and kind.startswith("text/css") and body == gdlab_weight.gzipped(css)
        assert len(body) == gdlab_weight.served_size(fake_site / "_static" / "big.css") < len(css) / 20
        assert get("_static/big.css", None) == (None, kind, css)                       # no Accept-Encoding: plain
        assert get("_static/fonts/f.woff", "gzip")[0] is None                          # fonts are sent as they are
        assert get("_static/lazy.png", "gzip")[2] == b"png"
    finally:
        server.shutdown()
        server.server_close()
