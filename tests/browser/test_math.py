"""Displayed equations fit the page, and no literal ``$`` reaches the reader (issue 19, items 2 and 3).

Every page of the built book is opened in headless Chromium (see conftest.py), its folded parts (solutions, proofs,
hidden cells) are opened, and once the math is typeset it is measured at a phone's width (390 px) and a laptop's
(1366 px):

- every display-math box (Sphinx's ``div.math`` and MathJax's ``mjx-container[display]``) is no wider inside than it
  is on the page (``scrollWidth <= clientWidth``, 1 px tolerance) and lies inside the viewport;
- the equation number (``span.eqno``) does not cover any visible part of its equation.

An equation that cannot fit should get the whole width, its number below it, and scroll in its own box
(``book/_ext/gdlab_equations.css``): checked on an equation injected into a page, as are the measuring functions
themselves (power tests: a too-wide equation, a number drawn over its equation, a ``$`` in a paragraph must each be
reported).

The waiting works whether MathJax typesets in the page, lazily (the equations are scrolled into view until each holds
its rendering) or at build time (the rendering is already in the HTML and no MathJax may be loaded at all).

Run after building the book:  python -m pytest tests/browser/test_math.py
"""

from __future__ import annotations

import shutil
import sys

import pytest
import yaml
from gdlab_browser import MATHJAX_TIMEOUT_MS, REPO, discover_pages, open_page

sys.path.insert(0, str(REPO / "book" / "_ext"))

import gdlab_math  # noqa: E402
import gdlab_offline  # noqa: E402

pytestmark = pytest.mark.browser

WIDTHS = (390, 1366)
TOLERANCE_PX = 1
# A chapter page that the injection tests write into.
PROBE_PAGE = "book/01_nonconvexity.html"
# Wider than any phone and than the 1366 px page's text column.
WIDE_TEX = r"\sum_{i=1}^{n} " + " + ".join(rf"\frac{{a_{{{k}}} x^{{{k}}}}}{{b_{{{k}}}}}" for k in range(40))

# Open everything a reader can unfold: <details> (hidden code cells), sphinx-togglebutton's admonitions (solutions,
# folded proofs).
UNFOLD_JS = """() => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  document.querySelectorAll('.toggle-hidden').forEach(el => el.classList.remove('toggle-hidden'));
}"""

# Resolves when every display equation holds its rendering (MathJax's mjx-container, or an svg/img rendered at build
# time): waits for MathJax's startup if it is loaded, scrolls still-raw equations into view (lazy typesetting) and
# asks MathJax to typeset what is left; then waits for the fonts. Returns how many equations stayed raw.
WAIT_FOR_MATH_JS = """async (ms) => {
  const deadline = Date.now() + ms;
  const sleep = (t) => new Promise(r => setTimeout(r, t));
  const frame = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) {
    await Promise.race([mj.startup.promise.catch(() => null), sleep(ms)]);
  }
  const raw = () => [...document.querySelectorAll('div.math')].filter(el => !el.querySelector('mjx-container, svg, img'));
  while (raw().length && Date.now() < deadline) {
    for (const el of raw()) { el.scrollIntoView({block: 'center'}); await frame(); }
    const m = window.MathJax;
    if (m && m.typesetPromise) { await Promise.race([m.typesetPromise().catch(() => null), sleep(1000)]); }
    await sleep(100);
  }
  window.scrollTo(0, 0);
  await document.fonts.ready;
  await frame();
  return raw().length;
}"""

# Every display-math box of the page, measured. A box with no layout (display: none) is skipped and counted.
MEASURE_JS = """(tol) => {
  const mj = window.MathJax;
  const tex = (el) => {
    try {
      const items = mj.startup.document.getMathItemsWithin(el);
      if (items.length) return String(items[0].math);
    } catch (e) { /* no MathJax in the page, or rendered at build time */ }
    return el.getAttribute('data-tex') || el.textContent;
  };
  const name = (el) => {
    const box = el.closest('div.math') || el;
    const eqno = box.querySelector(':scope > span.eqno');
    const number = eqno ? eqno.textContent.replace('#', '').trim() + ' ' : '';
    return (number + tex(box).trim().replace(/\\s+/g, ' ')).slice(0, 90);
  };
  const intersect = (a, b) => ({left: Math.max(a.left, b.left), right: Math.min(a.right, b.right),
                                top: Math.max(a.top, b.top), bottom: Math.min(a.bottom, b.bottom)});
  const area = (r) => Math.max(0, r.right - r.left) * Math.max(0, r.bottom - r.top);
  const overflow = [], offPage = [], overlap = [];
  let measured = 0, hidden = 0;
  const boxes = new Set([...document.querySelectorAll('div.math, mjx-container[display="true"]')]);
  const pageRight = document.documentElement.clientWidth;
  for (const el of boxes) {
    if (!el.getClientRects().length) { hidden += 1; continue; }
    measured += 1;
    if (el.scrollWidth > el.clientWidth + tol) {
      overflow.push(`${el.tagName.toLowerCase()} ${name(el)}: content ${el.scrollWidth} px > box ${el.clientWidth} px`);
    }
    const r = el.getBoundingClientRect();
    if (r.right > pageRight + tol || r.left < -tol) {
      offPage.push(`${name(el)}: box spans ${Math.round(r.left)}..${Math.round(r.right)} px, page 0..${pageRight} px`);
    }
    if (el.matches('div.math')) {
      const eqno = el.querySelector(':scope > span.eqno');
      const math = el.querySelector('mjx-math, svg, img');
      if (eqno && math) {
        const clip = el.querySelector('mjx-container') || el;
        const visible = intersect(math.getBoundingClientRect(), clip.getBoundingClientRect());
        const shared = area(intersect(visible, eqno.getBoundingClientRect()));
        if (shared > tol * tol) overlap.push(`${name(el)}: the number covers ${Math.round(shared)} px² of the math`);
      }
    }
  }
  return {measured, hidden, overflow, offPage, overlap};
}"""

# Text a reader sees with a literal $ in it: text nodes outside code, scripts, styles and MathJax's output.
DOLLARS_JS = """() => {
  const skip = 'pre, code, kbd, samp, script, style, noscript, template, textarea, mjx-container';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const found = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.nodeValue;
    const i = text.indexOf('$');
    if (i < 0 || (node.parentElement && node.parentElement.closest(skip))) continue;
    found.push(text.slice(Math.max(0, i - 40), i + 40).replace(/\\s+/g, ' ').trim());
  }
  return found;
}"""

# Adds a numbered display equation (Sphinx's markup around the CHTML that the build would write) at the end of the
# article, with the stylesheet of its glyphs.
INJECT_JS = """async ({html, css, id, eqnoStyle}) => {
  const box = document.createElement('div');
  box.className = 'math notranslate nohighlight';
  box.id = id;
  const eqno = document.createElement('span');
  eqno.className = 'eqno';
  eqno.textContent = '(9.9)';
  if (eqnoStyle) { eqno.setAttribute('style', eqnoStyle); box.style.position = 'relative'; }
  box.append(eqno);
  box.insertAdjacentHTML('beforeend', html);
  const style = document.createElement('style');
  style.textContent = css;
  document.head.append(style);
  (document.querySelector('article') || document.body).append(box);
  await document.fonts.ready;
}"""

# The state of one injected equation after its box has been scrolled as far right as it goes.
WIDE_STATE_JS = """(id) => {
  const box = document.getElementById(id);
  const inner = box.querySelector('mjx-container');
  const eqno = box.querySelector(':scope > span.eqno');
  inner.scrollLeft = inner.scrollWidth;
  return {
    boxClipped: box.scrollWidth - box.clientWidth,
    innerOverflowX: getComputedStyle(inner).overflowX,
    innerExcess: inner.scrollWidth - inner.clientWidth,
    scrolledBy: inner.scrollLeft,
    widthLeft: box.clientWidth - inner.getBoundingClientRect().width,
    numberBelow: eqno.getBoundingClientRect().top - inner.getBoundingClientRect().bottom,
  };
}"""


def _fmt(items, limit=30):
    items = list(dict.fromkeys(items))
    shown = "\n  ".join(items[:limit])
    more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"\n  {shown}{more}"


def settle_math(page) -> int:
    """Open every folded part of ``page`` and wait until its display math is rendered: how many stayed raw."""
    page.evaluate(UNFOLD_JS)
    return page.evaluate(WAIT_FOR_MATH_JS, MATHJAX_TIMEOUT_MS)


def measure_display_math(page, width: int) -> dict:
    """Lay ``page`` out ``width`` px wide and measure every display equation: a dict with ``measured``, ``hidden``
    (no layout box) and the lists ``overflow`` (content wider than its box), ``offPage`` (box outside the viewport),
    ``overlap`` (equation number over the math), each entry naming the equation."""
    page.set_viewport_size({"width": width, "height": 900})
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    return page.evaluate(MEASURE_JS, TOLERANCE_PX)


def math_problems(report: dict) -> list[str]:
    """The problems in a :func:`measure_display_math` report, one line each."""
    return (
        [f"overflows: {m}" for m in report["overflow"]]
        + [f"off the page: {m}" for m in report["offPage"]]
        + [f"number over the math: {m}" for m in report["overlap"]]
    )


def literal_dollars(page) -> list[str]:
    """The snippets of visible text (code and math excluded) of ``page`` that hold a literal ``$``."""
    return page.evaluate(DOLLARS_JS)


def inject_equation(page, tex: str, id: str, eqno_style: str = "") -> None:
    """Append a numbered display equation ``tex`` (Sphinx's markup, id ``id``) to the page's article, typeset as the
    build typesets the book's equations (:func:`typeset`)."""
    (html,), css = typeset(tex, display=True)
    page.evaluate(INJECT_JS, {"html": html, "css": absolute_fonts(page, css), "id": id, "eqnoStyle": eqno_style})


def scrolls_in_its_box(state: dict) -> bool:
    """True when a too-wide equation (a :data:`WIDE_STATE_JS` state) gets the whole width of its box, its number on
    the line below, and scrolls sideways inside its own box: the Sphinx box clips nothing, the MathJax box scrolls
    (``overflow-x`` auto or scroll) and was scrolled."""
    return (
        state["boxClipped"] <= TOLERANCE_PX
        and state["innerOverflowX"] in ("auto", "scroll")
        and state["innerExcess"] > TOLERANCE_PX
        and state["scrolledBy"] > 0
        and state["widthLeft"] <= TOLERANCE_PX
        and state["numberBelow"] >= -TOLERANCE_PX
    )


# Puts the CHTML of a formula and of ``(u)``, with their stylesheet, into a paragraph of the article: the heights of
# the first delimiter of each.
DELIMITERS_JS = """async ([math, paren, css]) => {
  const style = document.createElement('style');
  style.textContent = css;
  const p = document.createElement('p');
  p.innerHTML = math + ' and ' + paren;
  document.head.append(style);
  (document.querySelector('article') || document.body).append(p);
  await document.fonts.ready;
  const height = (c) => c.querySelector('mjx-mo').getBoundingClientRect().height;
  const [m, q] = p.querySelectorAll('mjx-container');
  const out = {delimiter: height(m), paren: height(q)};
  p.remove();
  style.remove();
  return out;
}"""
#: A norm's bars (and an inner product's angle brackets) must be at least this fraction of the height of a
#: parenthesis around the same argument.
NORM_BAR_MIN = 0.9


# --------------------------------------------------------------------------------------------------------------------
# The book's pages


@pytest.fixture(scope="module")
def _opened(site, browser):
    """Pages opened for this module (their folds opened, their viewport changed: not shared with other modules)."""
    cache = {}
    yield cache
    for visit in cache.values():
        visit.close()


@pytest.fixture
def math_page(page_path, site, browser, _opened):
    """``page_path`` loaded with its folded parts open and its math rendered."""
    if page_path not in _opened:
        visit = open_page(browser, site, page_path)
        if visit.load_error:
            pytest.fail(f"{page_path} did not load: {visit.load_error}", pytrace=False)
        raw = settle_math(visit.page)
        assert raw == 0, f"{page_path}: {raw} display equations were never rendered"
        _opened[page_path] = visit
    return _opened[page_path].page


@pytest.mark.parametrize("width", WIDTHS)
def test_display_math_fits(math_page, page_path, width):
    """Every displayed equation fits its box and the page at ``width`` px, its number beside it, not over it."""
    report = measure_display_math(math_page, width)
    problems = math_problems(report)
    assert not problems, (
        f"{page_path} at {width} px: {len(problems)} problems in {report['measured']} display-math boxes:"
        + _fmt(problems)
    )


def test_no_literal_dollar(math_page, page_path):
    """No text the reader sees (outside code) holds a ``$``: math that failed to parse shows its delimiters."""
    found = literal_dollars(math_page)
    assert not found, f"{page_path}: literal $ in the text:" + _fmt(found)


# --------------------------------------------------------------------------------------------------------------------
# The measuring functions and the style sheet, on equations injected into a page


@pytest.fixture
def probe(site, browser):
    """A fresh chapter page with its math rendered, to write into."""
    if PROBE_PAGE not in discover_pages():
        pytest.skip(f"no {PROBE_PAGE} in the build")
    visit = open_page(browser, site, PROBE_PAGE)
    try:
        settle_math(visit.page)
        yield visit.page
    finally:
        visit.close()


def _named(problems: list[str], marker: str) -> list[str]:
    return [p for p in problems if marker in p]


def test_power_too_wide_equation_is_reported(probe):
    """Power test of test_display_math_fits: an equation wider than the page is reported, at both widths."""
    before = {w: math_problems(measure_display_math(probe, w)) for w in WIDTHS}
    inject_equation(probe, WIDE_TEX, "equation-probe-wide")
    for width in WIDTHS:
        problems = math_problems(measure_display_math(probe, width))
        new = [p for p in problems if p not in before[width]]
        assert _named(new, "(9.9)") and all("overflows" in p for p in new), f"at {width} px:" + _fmt(new)


def test_power_number_over_equation_is_reported(probe):
    """Power test of the overlap check: an equation number drawn over a short equation is reported."""
    inject_equation(probe, r"a + b = c", "equation-probe-overlap", "position: absolute; left: 0; width: 100%")
    problems = math_problems(measure_display_math(probe, 1366))
    assert _named(problems, "number over the math: (9.9)"), _fmt(problems)


def test_power_literal_dollar_is_reported(probe):
    """Power test of test_no_literal_dollar: a $ in a paragraph is reported, one in code is not."""
    probe.evaluate(
        """() => { const p = document.createElement('p');
                   p.innerHTML = 'the loss $L(w)$ of <code>$HOME</code>';
                   document.querySelector('article').append(p); }"""
    )
    found = literal_dollars(probe)
    assert any("$L(w)$" in f for f in found), found
    assert not any("HOME" in f for f in found), found


def test_wide_equation_scrolls_in_its_box(probe):
    """An equation that cannot fit gets the whole width, its number below it, and scrolls inside its own box
    (gdlab_equations.css); without the style sheet its number takes width beside it (the check's power).

    (Whether the scrollbar shows cannot be checked here: Playwright's headless Chromium hides scrollbars.)"""
    inject_equation(probe, WIDE_TEX, "equation-probe-scroll")
    report = measure_display_math(probe, 390)
    state = probe.evaluate(WIDE_STATE_JS, "equation-probe-scroll")
    assert scrolls_in_its_box(state), state
    assert not _named(report["overlap"], "(9.9)"), report["overlap"]
    disabled = probe.evaluate(
        """() => { const links = [...document.querySelectorAll('link[rel=stylesheet][href*="gdlab_equations"]')];
                   links.forEach(l => { l.disabled = true; }); return links.length; }"""
    )
    assert disabled == 1, f"{PROBE_PAGE} loads gdlab_equations.css {disabled} times (expected once)"
    measure_display_math(probe, 390)
    assert not scrolls_in_its_box(probe.evaluate(WIDE_STATE_JS, "equation-probe-scroll"))


def typeset(*tex: str, display: bool = False) -> tuple[list[str], str]:
    """CHTML of formulas (inline, or displayed) and their stylesheet, typeset as the build typesets the book
    (gdlab_math: MathJax in node, with the ``tex`` options of ``_config.yml``, the macros' one home). Skips without
    node."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node: the book's math is typeset with node (gdlab_math)")
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    tex_options = config["sphinx"]["config"]["mathjax3_config"]["tex"]
    main = gdlab_offline.ensure_assets(REPO) / gdlab_offline.ASSETS / gdlab_offline.MATHJAX_NODE_MAIN
    return gdlab_math.render([(t, display) for t in tex], tex_options, node, main)


def absolute_fonts(page, css: str) -> str:
    """``css`` (from :func:`typeset`) with its font addresses, relative to ``_static/`` where the page's
    gdlab-math.css is, made absolute for ``page``."""
    fonts = page.evaluate("([css, rel]) => new URL(rel, document.querySelector(`link[href*='${css}']`).href).href",
                          [gdlab_math.CSS, gdlab_math.FONT_URL])
    return css.replace(gdlab_math.FONT_URL, fonts)


def norm_bar_ratio(page, tex: str) -> float:
    """Height of the first delimiter of ``tex`` (say ``\\norm{u}``) over that of the parenthesis in ``(u)``."""
    (math, paren), css = typeset(tex, "(u)")
    heights = page.evaluate(DELIMITERS_JS, [math, paren, absolute_fonts(page, css)])
    return heights["delimiter"] / heights["paren"]


def test_norm_bars_are_full_size(probe):
    """The book's \\norm draws bars as tall as parentheses around a short argument (``\\left..\\right`` drew tiny
    ones in MathJax); power: the ``\\left\\lVert ... \\right\\rVert`` form is caught."""
    for tex in (r"\norm{u}", r"\norm{x}", r"\norm{\nabla f(w)}^2"):
        ratio = norm_bar_ratio(probe, tex)
        assert ratio >= NORM_BAR_MIN, f"{tex}: bars {ratio:.2f} of a parenthesis"
    assert norm_bar_ratio(probe, r"\left\lVert u \right\rVert") < NORM_BAR_MIN


def test_inner_brackets_are_full_size(probe):
    """The book's \\inner (``\\left\\langle #1, #2 \\right\\rangle``) draws angle brackets as tall as parentheses
    around short arguments: unlike ``\\left\\lVert``, MathJax's ``\\left\\langle`` never goes below the normal size
    (measured 1.00 of a parenthesis for every case here), so it keeps growing around tall arguments; power: small
    brackets (``\\scriptstyle``, 0.70) are caught."""
    for tex in (r"\inner{u}{v}", r"\inner{x}{y}", r"\inner{u}{w_0}", r"\inner{\nabla f(u)}{v - u}"):
        ratio = norm_bar_ratio(probe, tex)
        assert ratio >= NORM_BAR_MIN, f"{tex}: brackets {ratio:.2f} of a parenthesis"
    assert norm_bar_ratio(probe, r"{\scriptstyle\langle} u, v {\scriptstyle\rangle}") < NORM_BAR_MIN
