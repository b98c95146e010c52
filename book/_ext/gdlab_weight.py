"""Ship only what the pages load, and make each page load less.

At ``build-finished`` (HTML builder, successful build), on the built site (the JupyterLite site under ``lite/`` is
separate and left alone):

* **icons**: the theme draws its Font Awesome icons (``<i class="fa-solid fa-bars">``) with a 1.5 MB script that holds
  every icon and replaces each ``<i>`` with an SVG once the page has loaded. Each page gets the SVGs of the icons it
  uses written in place instead (:func:`inline_icons`, the paths taken from that same script, whatever its version),
  and the script is no longer loaded. An icon that a theme script creates later (the search dialog's close button)
  is drawn by the theme's CSS icon font, which the browser loads only then;
* **images** load lazily (``loading="lazy"``): a figure far down a chapter is fetched when the reader gets near it;
* **pruning** (:func:`prune`): every file under ``_static/`` that no page can load is removed (the ipywidgets manager
  when no page embeds widgets, the full MathJax when math is typeset at build time, the theme's unused vendor files,
  translations and templates), and so is every source map (``*.map``). A file is loadable if a page references it
  (``src``/``href``, a stylesheet's ``url()`` or ``@import``, a script's string that names an existing file), or a
  loadable file does, recursively; a loader that computes the paths it loads keeps its whole folder
  (:data:`LOADERS`, the one list of exceptions).

Pages not rewritten by an incremental build keep what an earlier build did to them (each step is idempotent).
"""

from __future__ import annotations

import html
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

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

HTML_REF = re.compile(r'\s(?:src|href|data-src|poster)\s*=\s*"([^"]+)"', re.IGNORECASE)
CSS_REF = re.compile(r'url\(\s*[\'"]?([^\'")]+)[\'"]?\s*\)|@import\s+[\'"]([^\'"]+)[\'"]')
JS_STRING = re.compile(r'[\'"]([\w./@-]+\.(?:js|css|json|png|svg|gif|jpe?g|woff2?|ttf|otf|eot|html))[\'"]')
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
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    shutil.copyfile(ICON_CSS, outdir / "_static" / ICON_CSS.name)
    scripts = list((outdir / "_static").rglob(ICON_SCRIPT))
    packs = icon_packs(scripts[0].read_text(encoding="utf-8")) if scripts else {}
    if packs:
        for page in pages(outdir):
            text = page.read_text(encoding="utf-8")
            new = inline_icons(text, packs)
            if new != text:
                page.write_text(new, encoding="utf-8")
    files, size = prune(outdir)
    logger.info(f"[gdlab_weight] removed {files} files ({size / 1e6:.1f} MB) that no page loads")


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", _builder_inited)
    app.connect("build-finished", _build_finished, priority=900)   # after the other extensions wrote their files
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
