"""The page explorers of the built book (book/_ext/gdlab_states.py) in headless Chromium, offline.

On every chapter page whose notebook has an explorer cell (``live(explorer)``): the page shows the explorer's
controls (native range inputs and selects, over states drawn at build time); moving each control with the keyboard
changes the figure (a new image, loaded), its alt text, its status line and the control's readout; no request leaves
the page's host (the local server; every other request is aborted and reported). The same from ``file://`` (the
page opened from the build folder, no server), and the explorer fits a 390 px wide phone screen.

Run after building the book:  python -m pytest tests/browser/test_page_explorers.py   (fixtures: conftest.py).
"""

from __future__ import annotations

import json

import pytest
from gdlab_browser import HTML_DIR, REPO, open_page, skip_or_fail, source_of

pytestmark = pytest.mark.browser

WAIT_MS = 10_000

#: Everything the test compares before and after a key press, read from one explorer (its root element).
SNAPSHOT_JS = """
root => {
  const img = root.querySelector('img.gdlab-states-image');
  const status = root.querySelector('.gdlab-explorer-status');
  return {
    ready: root.classList.contains('gdlab-states-ready'),
    state: root.getAttribute('data-state'),
    src: img.getAttribute('src'), currentSrc: img.currentSrc, alt: img.alt,
    complete: img.complete, naturalWidth: img.naturalWidth,
    status: status ? status.textContent.trim() : null,
    live: status ? status.getAttribute('aria-live') : null,
    busy: root.querySelector('.gdlab-states-figure').getAttribute('aria-busy'),
    controlsHidden: root.querySelector('.gdlab-states-controls').hidden,
  };
}
"""

CONTROLS_JS = """
root => Array.from(root.querySelectorAll('[data-control]')).map(el => {
  const label = el.id ? root.querySelector('label[for="' + el.id + '"]') : null;
  const out = el.id ? root.querySelector('output[for="' + el.id + '"]') : null;
  const n = el.tagName === 'SELECT' ? el.options.length : Number(el.max) - Number(el.min) + 1;
  const i = el.tagName === 'SELECT' ? el.selectedIndex : Number(el.value) - Number(el.min);
  return {id: el.id, name: el.dataset.control, tag: el.tagName, type: el.type || '', n, i,
          label: label ? label.textContent.trim() : null, readout: out ? out.textContent.trim() : null,
          valuetext: el.getAttribute('aria-valuetext'), disabled: el.disabled};
})
"""

#: True once the explorer shows a state other than ``before`` and its image is loaded and decoded.
CHANGED_JS = """
([root, before]) => {
  const img = root.querySelector('img.gdlab-states-image');
  return root.getAttribute('data-state') !== before && img.complete && img.naturalWidth > 0
         && root.querySelector('.gdlab-states-figure').getAttribute('aria-busy') === 'false';
}
"""


def _fmt(items) -> str:
    return "".join(f"\n  {item}" for item in dict.fromkeys(items))


def has_explorer_cell(rel: str) -> bool:
    """Whether the page's notebook has the explorer cell ``live(explorer)`` (from its copy in ``_sources``, else the
    repository's notebook)."""
    source = source_of(rel)
    if source is None or source.suffix != ".ipynb":
        source = REPO / (rel[: -len(".html")] + ".ipynb")
        if not source.is_file():
            return False
    nb = json.loads(source.read_text(encoding="utf-8"))
    return any(c.get("cell_type") == "code" and "live(explorer)" in "".join(c.get("source", [])) for c in nb["cells"])


def explorer_roots(page, rel: str):
    """The page's explorers (a Playwright locator); skips pages without an explorer cell, fails if one is missing."""
    if not has_explorer_cell(rel):
        pytest.skip(f"{rel}: no explorer cell (live(explorer)) in its notebook")
    roots = page.locator(".gdlab-states")
    if roots.count() == 0:
        static = page.locator(".gdlab-page-explorer").count()
        pytest.fail(f"{rel}: the notebook has an explorer cell but the page has no page explorer (.gdlab-states); "
                    f"{static} unreplaced marker(s) (.gdlab-page-explorer): states missing from the build?"
                    if static else f"{rel}: the notebook has an explorer cell but the page shows no explorer marker "
                    "(gdlab.widgets.live without the page-explorer output?)", pytrace=False)
    return roots


def move_every_control(page, root, rel: str) -> list[str]:
    """Press an arrow key on every control of the explorer ``root``; return the problems found."""
    problems = []
    page.wait_for_function("root => root.classList.contains('gdlab-states-ready')", arg=root.element_handle(),
                           timeout=WAIT_MS)
    start = root.evaluate(SNAPSHOT_JS)
    name = root.get_attribute("data-explorer")
    if start["controlsHidden"]:
        problems.append(f"{name}: the controls are still hidden after the script ran")
    if start["live"] != "polite":
        problems.append(f"{name}: the status line is not aria-live=polite ({start['live']!r})")
    if not (start["complete"] and start["naturalWidth"] > 0):
        problems.append(f"{name}: the first figure did not load ({start['src']})")
    controls = root.evaluate(CONTROLS_JS)
    if not controls:
        problems.append(f"{name}: no control")
    for control in controls:
        what = f"{name}: control {control['name']!r} ({control['tag'].lower()})"
        if not control["label"]:
            problems.append(f"{what} has no <label for=...>")
        if control["n"] < 2:
            continue
        before = root.evaluate(SNAPSHOT_JS)
        forward = control["i"] < control["n"] - 1
        if control["tag"] == "SELECT":
            key = "ArrowDown" if forward else "ArrowUp"
        else:
            key = "ArrowRight" if forward else "ArrowLeft"
        page.focus(f"#{control['id']}")
        page.keyboard.press(key)
        try:
            page.wait_for_function(CHANGED_JS, arg=[root.element_handle(), before["state"]], timeout=WAIT_MS)
        except Exception:
            after = root.evaluate(SNAPSHOT_JS)
            problems.append(f"{what}: {key} did not show a new loaded state within {WAIT_MS} ms "
                            f"(state {before['state']} -> {after['state']}, image complete={after['complete']}, "
                            f"naturalWidth={after['naturalWidth']}, busy={after['busy']})")
            continue
        after = root.evaluate(SNAPSHOT_JS)
        moved = next(c for c in root.evaluate(CONTROLS_JS) if c["id"] == control["id"])
        if moved["i"] != control["i"] + (1 if forward else -1):
            problems.append(f"{what}: {key} moved it from {control['i']} to {moved['i']}")
        for field in ("src", "alt", "status"):
            if after[field] == before[field]:
                problems.append(f"{what}: {key} left the {field} unchanged ({before[field]!r:.120})")
        if not after["alt"]:
            problems.append(f"{what}: the new figure has no alt text")
        if control["tag"] == "INPUT":
            if moved["readout"] == control["readout"] or moved["valuetext"] == control["valuetext"]:
                problems.append(f"{what}: the readout did not follow ({control['readout']} -> {moved['readout']})")
        # Focus stays on the control: the reader can keep pressing keys.
        if page.evaluate("() => document.activeElement && document.activeElement.id") != control["id"]:
            problems.append(f"{what}: the control lost the focus")
    return problems


@pytest.mark.chapters_only
def test_keyboard_moves_every_control_offline(page_path, site, browser):
    """On every chapter page with an explorer: each control, moved with the keyboard, changes the figure, its alt
    text and its status line; the new image loads; no request leaves 127.0.0.1; no script error."""
    visit = open_page(browser, site, page_path)
    try:
        if visit.load_error:
            pytest.fail(f"{page_path} did not load: {visit.load_error}", pytrace=False)
        roots = explorer_roots(visit.page, page_path)
        problems = []
        for i in range(roots.count()):
            problems += move_every_control(visit.page, roots.nth(i), page_path)
        visit.page.wait_for_load_state("networkidle", timeout=WAIT_MS)  # prefetches included
        problems += [f"request outside {site.netloc} (aborted): {u}" for u in visit.blocked]
        problems += [f"uncaught exception: {m}" for m in visit.page_errors]
        problems += [f"console error: {m}" for m in visit.console_errors]
        problems += [f"HTTP {m}" for m in visit.bad_responses] + [f"failed: {m}" for m in visit.failed_requests]
        assert not problems, f"{page_path}:{_fmt(problems)}"
    finally:
        visit.close()


def test_from_file_url(browser):
    """The first chapter with an explorer, opened from the build folder as file:// (no server): the controls work and
    nothing but file:// URLs is requested."""
    chapters = sorted(p.relative_to(HTML_DIR).as_posix() for p in (HTML_DIR / "book").glob("[0-9][0-9]_*.html"))
    chapters = [rel for rel in chapters if has_explorer_cell(rel)]
    if not chapters:
        skip_or_fail(f"no built chapter page with an explorer in {HTML_DIR}")
    rel = chapters[0]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        requests, outside, errors = [], [], []

        def on_route(route):
            url = route.request.url
            if url.startswith(("file:", "data:", "blob:", "about:")):
                route.continue_()
            else:
                outside.append(url)
                route.abort("blockedbyclient")

        context.route("**/*", on_route)
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto((HTML_DIR / rel).as_uri(), wait_until="load")
        roots = explorer_roots(page, rel)
        problems = move_every_control(page, roots.first, rel)
        state_images = [u for u in requests if "/_images/gdlab-states/" in u]
        assert state_images and all(u.startswith("file:") for u in state_images), state_images[:5]
        problems += [f"request outside file:// (aborted): {u}" for u in outside]
        problems += [f"uncaught exception: {m}" for m in errors]
        assert not problems, f"file://{rel}:{_fmt(problems)}"
    finally:
        context.close()


PHONE_JS = """
root => {
  const box = root.getBoundingClientRect();
  const img = root.querySelector('img.gdlab-states-image').getBoundingClientRect();
  const controls = Array.from(root.querySelectorAll('.gdlab-states-control')).map(c => c.getBoundingClientRect());
  return {viewport: document.documentElement.clientWidth, left: box.left, right: box.right, imgRight: img.right,
          imgLeft: img.left, controlsRight: Math.max(0, ...controls.map(c => c.right)),
          controlsLeft: Math.min(1e9, ...controls.map(c => c.left))};
}
"""


#: Texts of the explorer (labels, readouts, selects, status line) whose contrast ratio (WCAG) against the first opaque
#: background behind them is below 4.5.
CONTRAST_JS = """
root => {
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
                               return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = el => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor);
                                                                 if (c.length === 3 || c[3] > 0.5) return c; }
                             return [255, 255, 255]; };
  const low = [];
  const texts = 'label, .gdlab-states-label, .gdlab-states-value, select, .gdlab-explorer-status';
  for (const el of root.querySelectorAll(texts)) {
    const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const what = el.tagName.toLowerCase() + ' "' + el.textContent.trim().slice(0, 20) + '"';
    if (ratio < 4.5) low.push(what + ': ' + ratio.toFixed(2));
  }
  return low;
}
"""


@pytest.mark.chapters_only
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_fits_a_phone_in_both_themes(page_path, site, browser, theme):
    """At 390 px wide the explorer, its controls and its figure stay inside the screen; in the light and in the
    dark theme its labels, readouts, selects and status line are readable (contrast ratio >= 4.5)."""
    if not has_explorer_cell(page_path):
        pytest.skip(f"{page_path}: no explorer cell")
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme=theme, service_workers="block")
    try:
        context.route("**/*", lambda route: route.continue_() if site.is_local(route.request.url)
                      else route.abort("blockedbyclient"))
        page = context.new_page()
        page.goto(site.url(page_path), wait_until="load")
        page.evaluate("theme => document.documentElement.setAttribute('data-theme', theme)", theme)
        roots = explorer_roots(page, page_path)
        root = roots.first
        page.wait_for_function("root => root.classList.contains('gdlab-states-ready')", arg=root.element_handle(),
                               timeout=WAIT_MS)
        root.scroll_into_view_if_needed()
        geo = root.evaluate(PHONE_JS)
        problems = []
        for side in ("right", "imgRight", "controlsRight"):
            if geo[side] > geo["viewport"] + 0.5:
                problems.append(f"{side} = {geo[side]:.0f} px beyond the {geo['viewport']} px wide screen")
        for side in ("left", "imgLeft", "controlsLeft"):
            if geo[side] < -0.5:
                problems.append(f"{side} = {geo[side]:.0f} px left of the screen")
        low = root.evaluate(CONTRAST_JS)
        if low:
            problems.append(f"text with a contrast below 4.5 against its background: {low[:4]}")
        assert not problems, f"{page_path} ({theme}, 390 px):{_fmt(problems)}"
    finally:
        context.close()
