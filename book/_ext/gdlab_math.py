"""Math typeset at build time: the pages carry MathJax's CHTML output and load no MathJax at all.

In the browser, MathJax 3 took 1-2 s of main-thread time per chapter and 1.2 MB of JavaScript before the first
formula appeared. This extension renders every formula once, at build time, with the same MathJax (the npm tarball
pinned in gdlab_offline.py, run by ``node`` through its ``es5/node-main.js``; no npm install), and registers a Sphinx
math renderer, ``gdlab``, that writes the result into the page where ``sphinx.ext.mathjax`` would have written the
TeX:

* the TeX is what ``sphinx.ext.mathjax`` would hand to MathJax (:func:`inline_tex`, :func:`display_tex`: a display
  made of several paragraphs becomes an ``align``, a line break a ``split``), with the book's macros and the other
  ``tex`` options of ``mathjax3_config`` (``_config.yml``: their one home);
* Sphinx numbers the equations as before (``<span class="eqno">`` with its permalink, next to the math);
* each formula keeps its MathML for screen readers (MathJax's assistive MathML, as the in-browser menu had it on);
* one stylesheet, ``_static/gdlab-math.css``, holds the CSS of every glyph used in the book, with the MathJax woff
  fonts that it names (served from ``_static/gdlab-assets/``); a colour is never set, so dark mode applies;
* a formula that MathJax cannot typeset (a TeX error, an undefined macro) is a build warning (``-W``: an error),
  naming the page and the TeX.

Rendering is cached: the formulas of the whole book are collected after reading (``env-updated``) and rendered in
one ``node`` run (about 8 s for the book) only when that set, the TeX options or the pins change; the result is kept
in the doctree folder (``jupyter-book clean`` removes it). Formulas met only while writing (none in this book) are
rendered on the spot and the stylesheet is written again at the end.

Needs ``node`` (any version with ES2017; Debian: ``apt-get install nodejs``). Without it the build stops with that
advice; ``gdlab_prerender_math: false`` (``sphinx: config``) keeps the stock in-browser MathJax instead.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

from docutils import nodes
from gdlab_offline import ASSETS, MATHJAX_NODE_MAIN, NPM, ensure_assets
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ExtensionError
from sphinx.locale import _
from sphinx.util import logging
from sphinx.util.math import get_node_equation_number

logger = logging.getLogger(__name__)

RENDERER = "gdlab"
SCRIPT = Path(__file__).with_name("gdlab_math.js")
CSS = "gdlab-math.css"                                        # in _static/
FONT_URL = f"{ASSETS}/mathjax/output/chtml/fonts/woff-v2"     # relative to the stylesheet
CACHE_FILE = "gdlab_math.json"                                # in the doctree folder
SPHINX_CLASSES = "math notranslate nohighlight"               # what sphinx.ext.mathjax writes (themes style it)

#: An error MathJax typeset instead of the formula: a syntax error (<merror>) or an undefined macro (noundefined's
#: red <mtext>), read from the assistive MathML.
ERROR = re.compile(r'<merror[^>]*>.*?</merror>|<mtext mathcolor="red">\\[^<]*</mtext>', re.DOTALL)


def inline_tex(node: nodes.math) -> str:
    """The TeX of an inline formula."""
    return node.astext()


def display_tex(node: nodes.math_block) -> str:
    """The TeX of a displayed formula, as sphinx.ext.mathjax composes it: paragraphs (separated by a blank line)
    become the rows of an ``align``, and a paragraph with a line break (``\\\\``) is a ``split``; a ``nowrap`` block
    is taken as it is (without its own ``\\[ \\]`` or ``$$``)."""
    if node.get("nowrap"):
        text = node.astext().strip()
        for start, end in (("\\[", "\\]"), ("$$", "$$")):
            if text.startswith(start) and text.endswith(end):
                text = text[len(start):-len(end)]
        return text
    parts = [part for part in node.astext().split("\n\n") if part.strip()]
    rows = [f"\\begin{{split}}{part}\\end{{split}}" if "\\\\" in part else part for part in parts]
    if len(rows) > 1:
        return "\\begin{align}\\begin{aligned}" + "\\\\".join(rows) + "\\end{aligned}\\end{align}"
    return rows[0] if rows else ""


def formulas(doctree: nodes.Node) -> set[tuple[str, bool]]:
    """Every formula of a doctree as ``(tex, display)``."""
    found = {(inline_tex(n), False) for n in doctree.findall(nodes.math)}
    return found | {(display_tex(n), True) for n in doctree.findall(nodes.math_block)}


def tex_options(config: Config) -> dict:
    """MathJax's ``tex`` options from ``mathjax3_config`` (the book's macros live there)."""
    return dict((config.mathjax3_config or {}).get("tex", {}))


def render(items: list[tuple[str, bool]], tex: dict, node: str, mathjax_main: Path) -> tuple[list[str], str]:
    """CHTML of each ``(tex, display)`` and the stylesheet of all of them, from one ``node`` run of gdlab_math.js."""
    request = json.dumps({"tex": tex, "fontURL": FONT_URL, "items": items})
    done = subprocess.run([node, str(SCRIPT), str(mathjax_main)], input=request, capture_output=True, text=True)
    if done.returncode != 0:
        raise ExtensionError(f"[gdlab_math] node {SCRIPT.name} failed:\n{done.stderr.strip()[-3000:]}")
    result = json.loads(done.stdout)
    return result["html"], result["css"]


def errors_in(html: str) -> list[str]:
    """The MathJax errors typeset in a formula's CHTML (empty if it rendered cleanly)."""
    return ERROR.findall(html)


class Renderer:
    """The book's rendered formulas: ``(tex, display) -> CHTML``, the stylesheet, and what it took."""

    def __init__(self, app: Sphinx):
        self.app = app
        self.node = shutil.which("node")
        if self.node is None:
            raise ExtensionError("[gdlab_math] `node` is not installed: math is typeset at build time with node "
                                 "(Debian: apt-get install nodejs), or set `gdlab_prerender_math: false` under "
                                 "`sphinx: config` in _config.yml to typeset it in the browser instead")
        self.mathjax_main = ensure_assets(Path(app.srcdir)) / ASSETS / MATHJAX_NODE_MAIN
        self.cache = Path(app.doctreedir) / CACHE_FILE
        self.html: dict[tuple[str, bool], str] = {}
        self.css = ""
        self.late: set[tuple[str, bool]] = set()

    def key(self, items: list[tuple[str, bool]]) -> str:
        """What the rendering depends on: the formulas, the TeX options, the MathJax pin and our script."""
        blob = json.dumps([items, tex_options(self.app.config), NPM["mathjax"], SCRIPT.read_text()], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def render_all(self, items: set[tuple[str, bool]]) -> None:
        """Render ``items`` (from the cache when nothing changed) and write the stylesheet."""
        ordered = sorted(items)
        key = self.key(ordered)
        cached = json.loads(self.cache.read_text()) if self.cache.is_file() else {}
        if cached.get("key") == key:
            html, css = cached["html"], cached["css"]
        else:
            logger.info(f"[gdlab_math] typesetting {len(ordered)} formulas with node")
            html, css = render(ordered, tex_options(self.app.config), self.node, self.mathjax_main)
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            self.cache.write_text(json.dumps({"key": key, "html": html, "css": css}))
        self.html = dict(zip(ordered, html, strict=True))
        self.css = css
        self.write_css()

    def write_css(self) -> None:
        out = Path(self.app.outdir) / "_static" / CSS
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(self.css)

    def get(self, item: tuple[str, bool], source: nodes.Node) -> str:
        """The CHTML of one formula; one met only now is rendered on its own. Errors are build warnings."""
        if item not in self.html:
            self.late.add(item)
            self.html[item] = render([item], tex_options(self.app.config), self.node, self.mathjax_main)[0][0]
        html = self.html[item]
        for error in errors_in(html):
            logger.warning(f"[gdlab_math] MathJax cannot typeset {item[0]!r}: {error}", location=source)
        return html


def _renderer(translator) -> Renderer:
    return translator.builder.app.gdlab_math


def visit_math(self, node: nodes.math) -> None:
    """An inline formula: Sphinx's ``span.math`` holding MathJax's CHTML."""
    html = _renderer(self).get((inline_tex(node), False), node)
    self.body.append(self.starttag(node, "span", "", CLASS=SPHINX_CLASSES) + html + "</span>")
    raise nodes.SkipNode


def visit_displaymath(self, node: nodes.math_block) -> None:
    """A displayed formula: Sphinx's ``div.math`` with its equation number and permalink, then the CHTML."""
    html = _renderer(self).get((display_tex(node), True), node)
    self.body.append(self.starttag(node, "div", CLASS=SPHINX_CLASSES))
    if node["number"] and not node.get("nowrap"):
        self.body.append(f'<span class="eqno">({get_node_equation_number(self, node)})')
        self.add_permalink_ref(node, _("Link to this equation"))
        self.body.append("</span>")
    self.body.append(html + "</div>\n")
    raise nodes.SkipNode


def _config_inited(app: Sphinx, config: Config) -> None:
    if config.gdlab_prerender_math:
        config.html_math_renderer = RENDERER


def _builder_inited(app: Sphinx) -> None:
    if getattr(app.builder, "math_renderer_name", None) == RENDERER:
        app.gdlab_math = Renderer(app)
        app.add_css_file(CSS)


def _env_updated(app: Sphinx, env) -> None:
    renderer = getattr(app, "gdlab_math", None)
    if renderer is not None:
        renderer.render_all(set().union(*(formulas(env.get_doctree(doc)) for doc in env.all_docs)))


def _build_finished(app: Sphinx, exception) -> None:
    renderer = getattr(app, "gdlab_math", None)
    if renderer is not None and exception is None and renderer.late:
        renderer.render_all(set(renderer.html))


def setup(app: Sphinx) -> dict:
    app.add_config_value("gdlab_prerender_math", True, "env", [bool])
    app.add_html_math_renderer(RENDERER, (visit_math, None), (visit_displaymath, None))
    app.connect("config-inited", _config_inited)
    app.connect("builder-inited", _builder_inited)
    app.connect("env-updated", _env_updated)
    app.connect("build-finished", _build_finished)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": False}
