"""Ship only what the pages load, and make each page load less.

At ``build-finished`` (HTML builder, successful build), on the built site (the JupyterLite site under ``lite/`` is
separate and left alone):

* **icons**: the theme draws its Font Awesome icons (``<i class="fa-solid fa-bars">``) with a 1.5 MB script that holds
  every icon and replaces each ``<i>`` with an SVG once the page has loaded. Each page gets the SVGs of the icons it
  uses written in place instead (:func:`inline_icons`, the paths taken from that same script, whatever its version),
  and the script is no longer loaded. An icon that a theme script creates later (the search dialog's close button)
  is drawn by the theme's CSS icon font, which the browser loads only then;
* **icon fonts** (:func:`subset_icon_fonts`): that CSS icon font also draws the admonitions' title icons and a few
  others (``content`` in CSS). Each Font Awesome font a stylesheet declares is cut down to the glyphs that the site
  can show (:func:`icon_codepoints`: the icons named by a class in a page or a script, and every icon character in
  a CSS string other than the per-icon class rules), written as WOFF (WOFF2 when ``brotli`` is installed) and the
  ``@font-face`` rewritten to it; the per-icon class rules of the other icons, which would point at glyphs the font
  no longer has, are dropped (:func:`strip_icon_rules`); the original font files are then pruned;
* **images** load lazily (``loading="lazy"``): a figure far down a chapter is fetched when the reader gets near it;
* **pruning** (:func:`prune`): every file under ``_static/`` that no page can load is removed (the ipywidgets manager
  when no page embeds widgets, the full MathJax when math is typeset at build time, the theme's unused vendor files,
  translations and templates), and so is every source map (``*.map``). A file is loadable if a page references it
  (``src``/``href``, a stylesheet's ``url()`` or ``@import``, a script's string that names an existing file), or a
  loadable file does, recursively; a loader that computes the paths it loads keeps its whole folder
  (:data:`LOADERS`, the one list of exceptions).

Pages not rewritten by an incremental build keep what an earlier build did to them (each step is idempotent).

Served weight: every static host (GitHub Pages, Netlify, nginx's usual configurations) sends text gzip-compressed to a
browser that accepts it. :data:`COMPRESSIBLE` is the one list of the suffixes counted as compressed text, and
:func:`served_size` the bytes a file costs that way; ``tests/test_site_weight.py`` budgets a chapter with them and
``benchmarks/page_load.py`` serves the site so.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import io
import os
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from gdlab_assets import copy_changed, html_succeeded
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

SKIP_DIRS = {"lite"}                 # top-level folders of the build that are not the book's (the JupyterLite site)
ICON_SCRIPT = "fontawesome.js"       # the theme's all-icons script, found by name under _static/
ICON_CSS = Path(__file__).with_name("gdlab_weight.css")

#: Scripts that load files by computed paths, and the folder (under _static/) each may load from: kept whole when
#: the script itself is loadable. MathJax loads its TeX extensions, fonts and menu on demand; the ipywidgets
#: manager loads its AMD bundle and fonts through gdlab-shim.js's paths.
LOADERS = {
    "gdlab-assets/mathjax/tex-chtml.js": "gdlab-assets/mathjax/",
    "gdlab-assets/html-manager/embed-amd.js": "gdlab-assets/html-manager/",
}

#: Suffixes of the files that static hosts send gzip-compressed (text); images and fonts are sent as they are.
COMPRESSIBLE = frozenset({".html", ".css", ".js", ".mjs", ".json", ".svg", ".txt", ".xml"})
#: The compression level counted: zlib's default (nginx compresses on the fly at level 1 by default, which gives
#: larger bodies; precompressing hosts use 6 to 9).
GZIP_LEVEL = 6

HTML_REF = re.compile(r'\s(?:src|href|data-src|poster)\s*=\s*"([^"]+)"', re.IGNORECASE)
CSS_REF = re.compile(r'url\(\s*[\'"]?([^\'")]+)[\'"]?\s*\)|@import\s+[\'"]([^\'"]+)[\'"]')
JS_STRING = re.compile(r'[\'"]([\w./@-]+\.(?:js|css|json|png|svg|gif|jpe?g|woff2?|ttf|otf|eot|html))[\'"]')
FONT_FACE = re.compile(r"@font-face\s*(?:/\*.*?\*/\s*)*\{([^{}]*)\}", re.DOTALL)   # MathJax writes "@font-face /* 0 */ {"
SRC_DECL = re.compile(r"(?<![\w-])src\s*:[^;}]*")
CSS_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'', re.DOTALL)
CSS_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6})\s?|\\(.)", re.DOTALL)
#: A per-icon rule of Font Awesome's CSS: ``.fa-bars:before,.fa-navicon:before{content:"\f0c9"}``.
ICON_RULE = re.compile(r'((?:\.fa-[\w-]+::?before\s*,\s*)*\.fa-[\w-]+::?before)\s*'
                       r'\{\s*content\s*:\s*("[^"]*"|\'[^\']*\')\s*;?\s*\}')
ICON_SELECTOR = re.compile(r"\.(fa-[\w-]+)::?before")
ICON_CLASS = re.compile(r"(?<![\w-])fa-[a-z0-9]+(?:-[a-z0-9]+)*")
ICON_FONT_FAMILY = "Font Awesome"
PRIVATE_USE = range(0xE000, 0xF900)   # where icon fonts put their glyphs (Font Awesome also maps 0-9, A-Z, ! ...)
FONT_FORMATS = {".woff2": "woff2", ".woff": "woff", ".ttf": "truetype", ".otf": "opentype"}
FA_PREFIXES = {"fa-solid": "fas", "fas": "fas", "fa-regular": "far", "far": "far", "fa-brands": "fab", "fab": "fab"}
ICON_TAG = re.compile(r'<i class="([^"]*)"([^>]*)>\s*</i>')
PACK = re.compile(r'\(function\(\)\{\w+\("(fa[srb])",(\w+)\)')
ICON = re.compile(r'(?:"([^"]+)"|([\w$]+)):\[(\d+),(\d+),\[([^\]]*)\],"[0-9a-f]+","([^"]+)"\]')


# --------------------------------------------------------------------------------------------------------------------
# Icons


def icon_packs(script: str) -> dict[str, dict[str, tuple[int, int, str]]]:
    """The icons defined in a Font Awesome 6 bundle: ``{"fas": {"bars": (width, height, path), ...}, "far": ...}``
    (aliases included)."""
    packs: dict[str, dict[str, tuple[int, int, str]]] = {}
    for m in PACK.finditer(script):
        prefix, var = m.groups()
        start = script.rfind(f"var {var}={{", 0, m.start())
        icons = packs.setdefault(prefix, {})
        for e in ICON.finditer(script, start, m.start()):
            icon = (int(e.group(3)), int(e.group(4)), e.group(6))
            icons[e.group(1) or e.group(2)] = icon
            for alias in re.findall(r'"([^"]+)"', e.group(5)):
                icons.setdefault(alias, icon)
    return packs


def icon_svg(classes: list[str], attrs: str, packs: dict) -> str | None:
    """The inline SVG for an ``<i>`` with these classes (None if it is not a known icon)."""
    prefix = next((FA_PREFIXES[c] for c in classes if c in FA_PREFIXES), None)
    names = [c[3:] for c in classes if c.startswith("fa-") and c not in FA_PREFIXES]
    found = [(n, packs.get(prefix, {}).get(n)) for n in names]
    found = [(n, icon) for n, icon in found if icon]
    if prefix is None or len(found) != 1:
        return None
    name, (width, height, path) = found[0]
    rest = " ".join(c for c in classes if c not in FA_PREFIXES and c != f"fa-{name}")
    return (f'<svg class="svg-inline--fa fa-{name}{" " + rest if rest else ""}"{attrs} aria-hidden="true" '
            f'focusable="false" role="img" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}">'
            f'<path fill="currentColor" d="{path}"></path></svg>')


def inline_icons(page: str, packs: dict) -> str:
    """``page`` with every known icon ``<i>`` written as an SVG; the icon script's tag is dropped once none is left."""
    def replace(m: re.Match) -> str:
        svg = icon_svg(html.unescape(m.group(1)).split(), m.group(2), packs)
        return svg if svg is not None else m.group(0)

    page = ICON_TAG.sub(replace, page)
    if any(FA_PREFIXES.keys() & set(m.group(1).split()) for m in ICON_TAG.finditer(page)):
        return page   # an icon that the script knows and we could not find: keep the script
    return re.sub(rf'<script[^>]*\ssrc="[^"]*/{re.escape(ICON_SCRIPT)}[^"]*"[^>]*>\s*</script>\s*', "", page)


# --------------------------------------------------------------------------------------------------------------------
# Icon fonts


def css_text(literal: str) -> str:
    """The characters of a CSS string's content (between its quotes), escapes decoded (``\\f0c9 `` -> U+F0C9)."""
    def decode(m: re.Match) -> str:
        if m.group(1) is None:
            return m.group(2) if m.group(2) != "\n" else ""
        code = int(m.group(1), 16)
        return chr(code) if 0 < code <= 0x10FFFF else "\ufffd"
    return CSS_ESCAPE.sub(decode, literal)


def css_strings(css: str) -> list[str]:
    """The decoded contents of every string in a stylesheet."""
    return [css_text(a or b) for a, b in CSS_STRING.findall(css)]


def icon_classes(texts: Iterable[str]) -> set[str]:
    """The ``fa-*`` class names that pages or scripts mention (``fa-solid``, ``fa-xmark``, ...)."""
    return {name for text in texts for name in ICON_CLASS.findall(text)}


def icon_codepoints(stylesheets: Iterable[str], classes: set[str]) -> set[int]:
    """The icon characters the site can draw with these stylesheets: the ``content`` of each per-icon rule one of
    whose classes is in ``classes``, and every private-use character in any other string of the stylesheets (the
    theme's admonition icons, ``--pst-icon-*: "\uf05a"`` or ``content: "\\f107"``)."""
    found: set[int] = set()
    for css in stylesheets:
        for m in ICON_RULE.finditer(css):
            if classes & set(ICON_SELECTOR.findall(m.group(1))):
                found |= {ord(c) for c in css_text(m.group(2)[1:-1])}
        found |= {ord(c) for s in css_strings(ICON_RULE.sub("", css)) for c in s if ord(c) in PRIVATE_USE}
    return found


def strip_icon_rules(css: str, classes: set[str]) -> str:
    """``css`` without the per-icon rules' selectors for classes not in ``classes`` (a rule left with none goes)."""
    def keep(m: re.Match) -> str:
        selectors = [s.strip() for s in m.group(1).split(",")]
        used = [s for s in selectors if ICON_SELECTOR.fullmatch(s).group(1) in classes]
        return f"{','.join(used)}{{content:{m.group(2)}}}" if used else ""
    return ICON_RULE.sub(keep, css)


def font_urls(face: str) -> list[str]:
    """The URLs of a ``@font-face`` block's ``src``, in order."""
    src = SRC_DECL.search(face)
    return [a for a, _ in CSS_REF.findall(src.group(0))] if src else []


def font_source(paths: list[Path]) -> Path | None:
    """The font file to subset among a ``@font-face``'s sources: fontTools reads TrueType, OpenType and WOFF with
    the standard library, WOFF2 only with ``brotli``."""
    readable = [p for p in paths if p.suffix.lower() in (".ttf", ".otf", ".woff")]
    if not readable and has_brotli():
        readable = [p for p in paths if p.suffix.lower() == ".woff2"]
    return readable[0] if readable else None


def has_brotli() -> bool:
    """Whether WOFF2 can be read and written (fontTools needs the ``brotli`` package for it)."""
    try:
        import brotli  # noqa: F401
    except ImportError:
        return False
    return True


def subset_font(data: bytes, codepoints: set[int], flavor: str) -> bytes:
    """A font (bytes of a TTF, OTF, WOFF or WOFF2) cut down to the glyphs of ``codepoints`` it has, as ``flavor``
    (``"woff"`` or ``"woff2"``), with fontTools' defaults for web fonts (hinting and glyph names dropped). The same
    bytes in, the same bytes out (the font keeps its own time stamp)."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(io.BytesIO(data), recalcTimestamp=False)    # the same bytes on every build
    options = subset.Options()
    options.flavor = flavor
    options.name_IDs = ["*"]
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(codepoints & set(font.getBestCmap())))
    subsetter.subset(font)
    out = io.BytesIO()
    subset.save_font(font, out, options)
    return out.getvalue()


def subset_face(face: str, sheet: Path, outdir: Path, codepoints: set[int], flavor: str) -> tuple[str, int, int]:
    """A Font Awesome ``@font-face`` block of the stylesheet ``sheet`` pointed at its font cut down to
    ``codepoints`` (written next to the original, named by a hash of its bytes); (block, bytes of the font a browser
    picked before, bytes of the cut font). Other blocks, and fonts that cannot be read, come back unchanged (0, 0)."""
    if ICON_FONT_FAMILY not in css_text(face):
        return face, 0, 0
    paths = [target for u in font_urls(face) if (target := local_target(u, sheet.parent, outdir))]
    source = font_source(paths)
    if source is None:
        return face, 0, 0
    data = subset_font(source.read_bytes(), codepoints, flavor)
    base = source.name.split(".")[0]     # fa-solid-900, also when a rebuild with no page written cuts a cut font
    cut = source.parent / f"{base}.{hashlib.sha256(data).hexdigest()[:10]}.{flavor}"
    cut.write_bytes(data)
    url = os.path.relpath(cut, sheet.parent).replace(os.sep, "/")
    return SRC_DECL.sub(lambda _: f'src:url({url}) format("{flavor}")', face, count=1), paths[0].stat().st_size, len(data)


def subset_icon_fonts(outdir: Path) -> list[tuple[str, int, int]]:
    """Cut every Font Awesome font declared by a stylesheet of ``_static/`` down to the icons the site can show (as
    named by the pages and the scripts and stylesheets they can load, :func:`loadable`: not by the all-icons script
    that the pages no longer load) with :func:`subset_face`, and drop the other icons' class rules
    (:func:`strip_icon_rules`). Returns (stylesheet, bytes of the fonts it declared, bytes of the cut fonts) per
    rewritten stylesheet."""
    static = outdir / "_static"
    files = [p for p in loadable(outdir) if static in p.parents or p.suffix == ".html"]
    sheets = {p: p.read_text(encoding="utf-8") for p in sorted(files) if p.suffix == ".css"}
    classes = icon_classes(p.read_text(encoding="utf-8", errors="replace")
                           for p in files if p.suffix in (".html", ".js"))
    codepoints = icon_codepoints(sheets.values(), classes)
    flavor = "woff2" if has_brotli() else "woff"
    report = []
    for sheet, css in sheets.items():
        new, before, after, end = [], 0, 0, 0
        for m in FONT_FACE.finditer(css):
            face, size, cut = subset_face(m.group(0), sheet, outdir, codepoints, flavor)
            new += [css[end:m.start()], face]
            before, after, end = before + size, after + cut, m.end()
        if before:
            sheet.write_text(strip_icon_rules("".join(new) + css[end:], classes), encoding="utf-8")
            report.append((sheet.relative_to(outdir).as_posix(), before, after))
    return report


# --------------------------------------------------------------------------------------------------------------------
# Served weight


def compressible(path: Path | str) -> bool:
    """Whether a static host sends ``path`` gzip-compressed (its suffix is in :data:`COMPRESSIBLE`)."""
    return Path(path).suffix.lower() in COMPRESSIBLE


def gzipped(data: bytes) -> bytes:
    """``data`` gzip-compressed at :data:`GZIP_LEVEL`, with a fixed header (no time stamp): same input, same bytes."""
    return gzip.compress(data, GZIP_LEVEL, mtime=0)


def served_size(path: Path, compress: bool = True) -> int:
    """The body bytes a host sends for ``path``: gzip-compressed if it is text and ``compress``, else its size."""
    if compress and compressible(path):
        return len(gzipped(path.read_bytes()))
    return path.stat().st_size


# --------------------------------------------------------------------------------------------------------------------
# What the pages can load


def pages(outdir: Path) -> list[Path]:
    """The HTML pages of the book (not the JupyterLite site, not templates under _static)."""
    return [p for p in outdir.rglob("*.html")
            if p.relative_to(outdir).parts[0] not in SKIP_DIRS | {"_static"}]


def local_target(ref: str, base: Path, outdir: Path) -> Path | None:
    """The file under ``outdir`` that ``ref`` (relative to the folder ``base``) names, if it exists."""
    parts = urlsplit(html.unescape(ref))
    if parts.scheme or parts.netloc or not parts.path or ref.startswith(("#", "data:")):
        return None
    path = unquote(parts.path)
    target = (outdir / path.lstrip("/")) if path.startswith("/") else (base / path)
    target = Path(os.path.normpath(target))
    return target if target.is_file() and outdir in target.parents else None


def references(path: Path, outdir: Path) -> set[Path]:
    """The files of the site that ``path`` (a page, stylesheet or script) can make the browser load."""
    text = path.read_text(encoding="utf-8", errors="replace")
    suffix = path.suffix.lower()
    refs: list[str] = []
    bases = [path.parent]
    if suffix == ".html":
        refs += HTML_REF.findall(text) + [a or b for a, b in CSS_REF.findall(text)]
    elif suffix == ".css":
        refs += [a or b for a, b in CSS_REF.findall(text)]
    elif suffix == ".js":
        refs += JS_STRING.findall(text)
        bases += [outdir / "_static", outdir]   # scripts build paths from the page or from _static/
    found = {t for ref in refs if not ref.endswith(".map") for b in bases if (t := local_target(ref, b, outdir))}
    return found


def loadable(outdir: Path, roots: Iterable[Path] | None = None) -> set[Path]:
    """Every file of the site that a page can load (the pages themselves included), following references from
    pages to stylesheets, scripts, fonts and images, and :data:`LOADERS`' folders."""
    static = outdir / "_static"
    seen: set[Path] = set()
    todo = list(pages(outdir) if roots is None else roots)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        rel = path.relative_to(static).as_posix() if static in path.parents else None
        if rel in LOADERS:
            todo += [p for p in (static / LOADERS[rel]).rglob("*") if p.is_file()]
        if path.suffix.lower() in (".html", ".css", ".js"):
            todo += references(path, outdir)
    return seen


def unloadable(outdir: Path) -> list[Path]:
    """Files under ``_static/`` that no page can load, and source maps anywhere outside the skipped folders."""
    keep = loadable(outdir)
    static = [p for p in (outdir / "_static").rglob("*") if p.is_file() and p not in keep]
    maps = [p for p in outdir.rglob("*.map") if p.relative_to(outdir).parts[0] not in SKIP_DIRS]
    return sorted(set(static) | set(maps))


def prune(outdir: Path) -> tuple[int, int]:
    """Remove :func:`unloadable` files and the folders they leave empty; (files, bytes) removed."""
    gone = unloadable(outdir)
    size = sum(p.stat().st_size for p in gone)
    for path in gone:
        path.unlink()
    for folder in sorted((p for p in (outdir / "_static").rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(folder.iterdir()):
            folder.rmdir()
    return len(gone), size


# --------------------------------------------------------------------------------------------------------------------
# Sphinx


def _builder_inited(app: Sphinx) -> None:
    if app.builder.format == "html":
        app.env.settings["image_loading"] = "lazy"
        app.add_css_file(ICON_CSS.name)


def _build_finished(app: Sphinx, exception) -> None:
    if not html_succeeded(app, exception):
        return
    outdir = Path(app.outdir)
    copy_changed([ICON_CSS], outdir / "_static")
    scripts = list((outdir / "_static").rglob(ICON_SCRIPT))
    packs = icon_packs(scripts[0].read_text(encoding="utf-8")) if scripts else {}
    if packs:
        for page in pages(outdir):
            text = page.read_text(encoding="utf-8")
            new = inline_icons(text, packs)
            if new != text:
                page.write_text(new, encoding="utf-8")
    for sheet, before, after in subset_icon_fonts(outdir):
        logger.info(f"[gdlab_weight] {sheet}: icon fonts cut from {before / 1e3:.0f} KB to {after / 1e3:.1f} KB")
    files, size = prune(outdir)
    logger.info(f"[gdlab_weight] removed {files} files ({size / 1e6:.1f} MB) that no page loads")


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", _builder_inited)
    app.connect("build-finished", _build_finished, priority=900)   # after the other extensions wrote their files
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
