"""Folded proofs in Chromium (book/_ext/gdlab_proofs.py; issue 19, item 5).

On every chapter page of the built book, each folded proof (``details.gdlab-proof``):

- shows its "Proof" bar and hides its text until opened; the bar is in Chromium's accessibility tree as a focusable
  disclosure control whose ``expanded`` state follows the proof;
- opens and closes with a click on the bar, and with Enter and Space once the bar has the focus;
- opens when the address points at it (a link to the proof, ``#proof-<label>``);

and the page's solutions (sphinx-togglebutton) still fold and open, with no JavaScript error: sphinx-proof's own
folded proof, a box without a title, made sphinx-togglebutton's script throw and leave every solution after it
open. The power test puts that box back into a page and checks that the same measurements report it.

Folding is by length (tests/test_site_proofs.py counts words): measured here, each folded proof, opened at 1366 px,
is taller than every proof left open.

Run after building the book:  python -m pytest tests/browser/test_proofs.py
"""

from __future__ import annotations

import pytest
from gdlab_browser import HTML_DIR, discover_pages, is_chapter, open_page, skip_or_fail

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1366, 800
FOLDED = "details.gdlab-proof"
#: The chapter pages that fold a proof (read from the built HTML), or one placeholder so that the fixtures can say
#: why nothing ran.
PAGES = [rel for rel in discover_pages() if is_chapter(rel) and FOLDED.split(".")[1] in
         (HTML_DIR / rel).read_text(encoding="utf-8")] or [None]

# The state of one folded proof as a reader meets it: open or not, whether any of its text is rendered (a closed
# <details> keeps its content's boxes but skips painting them: checkVisibility), whether its bar has a box.
STATE_JS = """(id) => {
  const d = document.getElementById(id);
  const bar = d.querySelector(':scope > summary');
  const shown = [...d.children].filter(el => el !== bar).some(el => {
    const r = el.getBoundingClientRect();
    return el.checkVisibility({visibilityProperty: true, opacityProperty: true}) && r.width > 0 && r.height > 0; });
  const b = bar.getBoundingClientRect();
  return {open: d.open, textShown: shown, barShown: b.width > 0 && b.height > 0, bar: bar.textContent.trim()};
}"""

# The solutions of the page (sphinx-exercise's boxes that sphinx-togglebutton folds), in order: folded or not, and
# whether they have the toggle button that opens them.
SOLUTIONS_JS = """() => [...document.querySelectorAll('.solution.dropdown')].map(el => ({
  id: el.id, hidden: el.classList.contains('toggle-hidden'), button: !!el.querySelector('.toggle-button')}))"""

# Puts back what sphinx-proof writes for a proof marked `:class: dropdown` (an untitled box that sphinx-togglebutton
# takes over), in place of the first folded proof, before the page's scripts run.
UNTITLED_DROPDOWN_JS = """document.addEventListener('DOMContentLoaded', () => {
  const d = document.querySelector('details.gdlab-proof');
  const box = document.createElement('div');
  box.className = 'proof admonition dropdown'; box.id = 'proof';
  box.innerHTML = '<p>Proof. A long argument.</p>';
  d.replaceWith(box);
});"""


@pytest.fixture(params=PAGES, ids=lambda rel: rel or "no-built-book")
def visit(request, site, browser):
    """A chapter page with folded proofs, opened afresh (the tests click on it) at :data:`WIDTH` px."""
    if request.param is None:
        skip_or_fail("no chapter page of the build folds a proof")
    v = open_page(browser, site, request.param)
    if v.load_error:
        v.close()
        pytest.fail(f"{request.param} did not load: {v.load_error}", pytrace=False)
    v.page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    yield v
    v.close()


def folded_ids(page) -> list[str]:
    return page.evaluate(f"() => [...document.querySelectorAll('{FOLDED}')].map(d => d.id)")


def state(page, proof_id: str) -> dict:
    """:data:`STATE_JS` for the proof, with ``expanded`` and ``focusable`` of its bar in the accessibility tree."""
    s = page.evaluate(STATE_JS, proof_id)
    cdp = page.context.new_cdp_session(page)
    try:
        doc = cdp.send("DOM.getDocument")
        node = cdp.send("DOM.querySelector", {"nodeId": doc["root"]["nodeId"], "selector": f"#{proof_id} > summary"})
        ax = cdp.send("Accessibility.getPartialAXTree", {"nodeId": node["nodeId"], "fetchRelatives": False})["nodes"][0]
    finally:
        cdp.detach()
    props = {p["name"]: p["value"].get("value") for p in ax.get("properties", [])}
    return {**s, "expanded": props.get("expanded"), "focusable": props.get("focusable", False)}


def folded_problems(s: dict) -> list[str]:
    """What is wrong with a proof that should be folded."""
    wrong = {"open": True, "textShown": True, "barShown": False, "expanded": True, "focusable": False}
    return [f"{k} = {s[k]}" for k, v in wrong.items() if s[k] == v] + ([] if s["bar"] == "Proof" else [s["bar"]])


def opened_problems(s: dict) -> list[str]:
    """What is wrong with a proof that should be open."""
    wrong = {"open": False, "textShown": False, "barShown": False, "expanded": False}
    return [f"{k} = {s[k]}" for k, v in wrong.items() if s[k] == v]


def solution_problems(visit) -> list[str]:
    """Solutions that sphinx-togglebutton did not fold, or that do not open with their button, and JS errors."""
    page = visit.page
    problems = [f"JS error: {e}" for e in visit.page_errors + visit.console_errors]
    solutions = page.evaluate(SOLUTIONS_JS)
    if not solutions:
        return problems + ["no solution on the page"]
    problems += [f"{s['id']}: not folded" for s in solutions if not s["hidden"] or not s["button"]]
    last = page.locator(".solution.dropdown").last
    if solutions[-1]["button"]:
        last.locator(".toggle-button").click()
        if last.evaluate("(el) => el.classList.contains('toggle-hidden')"):
            problems.append(f"{solutions[-1]['id']}: does not open")
    return problems


def test_folded_proofs_open_with_a_click_and_the_keyboard(visit):
    page = visit.page
    ids = folded_ids(page)
    assert ids
    for proof_id in ids:
        bar = page.locator(f"#{proof_id} > summary")
        assert folded_problems(state(page, proof_id)) == [], proof_id
        bar.click()
        assert opened_problems(state(page, proof_id)) == [], proof_id
        bar.click()
        assert folded_problems(state(page, proof_id)) == [], proof_id
        bar.focus()
        page.keyboard.press("Enter")
        assert opened_problems(state(page, proof_id)) == [], proof_id
        page.keyboard.press("Space")
        assert folded_problems(state(page, proof_id)) == [], proof_id
    assert visit.page_errors == [] and visit.console_errors == []


def test_solutions_still_fold_and_open(visit):
    for proof_id in folded_ids(visit.page):
        visit.page.click(f"#{proof_id} > summary")
    assert solution_problems(visit) == []


def test_a_link_to_a_folded_proof_opens_it(visit):
    page = visit.page
    first, *rest = folded_ids(page)
    page.goto(f"{visit.url}#{first}")
    assert opened_problems(state(page, first)) == []
    if rest:  # a link followed on the same page
        page.evaluate("(id) => { window.location.hash = id; }", rest[-1])
        page.wait_for_function("(id) => document.getElementById(id).open", arg=rest[-1])
    assert visit.page_errors == []


def test_folded_proofs_are_the_long_ones(site, browser):
    """Opened, every folded proof of the book is taller than every proof left open (at 1366 px)."""
    heights = {"folded": {}, "open": {}}
    for rel in [r for r in discover_pages() if is_chapter(r)]:
        v = open_page(browser, site, rel)
        try:
            v.page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
            measured = v.page.evaluate(f"""() => {{
              document.querySelectorAll('{FOLDED}').forEach(d => {{ d.open = true; }});
              const h = (el) => Math.round(el.getBoundingClientRect().height);
              return {{folded: [...document.querySelectorAll('{FOLDED}')].map(d => [d.id, h(d)]),
                       open: [...document.querySelectorAll('div.proof.admonition[id="proof"]')]
                               .map((el, k) => ['proof ' + (k + 1), h(el)])}};
            }}""")
        finally:
            v.close()
        for kind in heights:
            heights[kind].update({f"{rel} {name}": h for name, h in measured[kind]})
    assert heights["folded"] and heights["open"]
    shortest = min(heights["folded"].items(), key=lambda kv: kv[1])
    tallest = max(heights["open"].items(), key=lambda kv: kv[1])
    assert shortest[1] > tallest[1], f"folded {shortest} is not taller than open {tallest}"


def test_power_untitled_dropdown_is_reported(visit):
    """sphinx-proof's untitled dropdown box in place of the first folded proof: sphinx-togglebutton throws, the
    solutions after it stay open, and :func:`solution_problems` says so; the state checks tell open from folded."""
    page = visit.page
    first = folded_ids(page)[0]
    assert folded_problems(state(page, first)) == []
    assert opened_problems(state(page, first))  # a folded proof is not taken for an open one
    page.click(f"#{first} > summary")
    assert folded_problems(state(page, first))  # nor an open one for a folded one
    page.add_init_script(UNTITLED_DROPDOWN_JS)
    page.reload(wait_until="load")
    problems = solution_problems(visit)
    assert any("JS error" in p for p in problems), problems
    assert any("not folded" in p for p in problems), problems
