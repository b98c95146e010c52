"""Navigation of the built book in headless Chromium at a phone's, a tablet's and a laptop's width.

At 390 and 800 px the menu button opens the navigation drawer (visible, on screen) listing every page of _toc.yml,
and a click beside it closes it; "On this page" opens the page's contents where the theme puts them behind a button;
at 1366 px the sidebar toggle hides the primary sidebar and shows it again; at every width there is one search
control (no blank second search bar). Each check is a function that returns what is wrong (an empty list when
nothing is), so the power tests run the same functions on pages broken on purpose (a script that swallows the
button's clicks, a chapter link removed, a dialog that cannot close, a second header with a search field) and
show that they report it.

Run after building the book:  python -m pytest tests/browser/test_navigation.py
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import yaml
from gdlab_browser import REPO, open_page

pytestmark = pytest.mark.browser

PAGE = "book/01_nonconvexity.html"  # a chapter: both sidebars
HEIGHT = 850
NARROW = (390, 800)  # phone, tablet: the sidebars are drawers
WIDE = 1366  # laptop: the sidebars are columns
SETTLE_MS = 400  # the drawers' transitions

# Checks run in the page. across(el): rendered, not hidden, with a size, and horizontally inside the viewport (it
# may be further down a scrolling drawer); visible(el): across, and vertically inside the viewport too.
VISIBLE_JS = """
const across = (el) => {
  if (!el || !el.checkVisibility({visibilityProperty: true, opacityProperty: true})) return false;
  const r = el.getBoundingClientRect();
  return r.width > 0 && r.height > 0 && r.right > 0 && r.left < innerWidth;
};
const visible = (el) => {
  const r = el && el.getBoundingClientRect();
  return across(el) && r.bottom > 0 && r.top < innerHeight;
};
"""
NAV = ".bd-docs-nav"  # the book's table of contents
PAGE_TOC = "nav.page-toc, nav.bd-toc-nav"  # the page's contents ("On this page"), as pydata 0.16 / 0.17 mark them
SEARCH_CONTROLS = ".search-button, .search-button-field, input[type=search]"
PRIMARY_TOGGLE = ".primary-toggle"
SECONDARY_TOGGLE = ".secondary-toggle"


def toc_pages() -> list[str]:
    """Every page of _toc.yml (the root and each part's chapters), as output paths (``book/01_x.html``)."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    return [f"{f}.html" for f in files]


LINKS_JS = "const links = (s) => [...document.querySelectorAll(s)].flatMap(el => [...el.querySelectorAll('a[href]')]);"


def shown(page, selector: str) -> bool:
    """Whether an element matching ``selector`` is visible on screen."""
    return page.evaluate(f"(s) => {{ {VISIBLE_JS} return [...document.querySelectorAll(s)].some(visible); }}",
                         selector)


def shown_links(page, selector: str) -> list[str]:
    """The paths (relative to the site root) of the links shown inside ``selector`` (on screen, or further down
    where it scrolls)."""
    hrefs = page.evaluate(
        f"(s) => {{ {VISIBLE_JS} {LINKS_JS} return links(s).filter(across).map(a => a.href); }}", selector)
    return [urlsplit(h).path.lstrip("/") for h in hrefs]


def click_visible(page, selector: str) -> bool:
    """Click the first element matching ``selector`` that is visible; False when there is none."""
    buttons = page.locator(selector)
    for i in range(buttons.count()):
        if buttons.nth(i).is_visible():
            buttons.nth(i).click()
            page.wait_for_timeout(SETTLE_MS)
            return True
    return False


def width_of(page) -> int:
    return page.viewport_size["width"]


# --- the checks ------------------------------------------------------------------------------------------------


def drawer_problems(page) -> list[str]:
    """Narrow screens: the menu button opens the navigation drawer, on screen, listing every page of _toc.yml; a
    click beside the drawer closes it."""
    if shown(page, NAV):
        return ["the table of contents is on screen before the menu button is pressed"]
    if not click_visible(page, PRIMARY_TOGGLE):
        return ["no visible menu button"]
    if not shown(page, NAV):
        return ["the menu button opened no drawer"]
    problems = []
    box = page.evaluate("(s) => { const r = document.querySelector(s).getBoundingClientRect(); "
                        "return [r.left, r.right]; }", NAV)
    if box[0] < 0 or box[1] > width_of(page):
        problems.append(f"the drawer is partly off screen ({box[0]:.0f} to {box[1]:.0f} px)")
    missing = sorted(set(toc_pages()) - set(shown_links(page, NAV)) - {urlsplit(page.url).path.lstrip("/")})
    if missing:
        problems.append(f"the drawer does not list {missing}")
    page.mouse.click(width_of(page) - 8, HEIGHT // 2)  # beside the drawer
    page.wait_for_timeout(SETTLE_MS)
    if shown(page, NAV):
        problems.append("a click beside the drawer does not close it")
    return problems


def page_toc_problems(page) -> list[str]:
    """The page's contents ("On this page") are on screen, or a visible button opens them (and Escape closes)."""
    if shown(page, PAGE_TOC):
        return []
    if not click_visible(page, SECONDARY_TOGGLE):
        return ["the page's contents are not shown and no visible button opens them"]
    anchors = page.evaluate(f"(s) => {{ {LINKS_JS} return links(s).map(a => a.getAttribute('href')); }}", PAGE_TOC)
    if not shown(page, PAGE_TOC) or not any(h.startswith("#") for h in anchors):
        return ['"On this page" opened no contents']
    page.keyboard.press("Escape")
    page.wait_for_timeout(SETTLE_MS)
    return ["Escape does not close the page's contents"] if shown(page, PAGE_TOC) else []


def sidebar_toggle_problems(page) -> list[str]:
    """Wide screens: the sidebar toggle hides the primary sidebar (the article gets its room) and shows it again."""
    if not shown(page, NAV):
        return ["the primary sidebar is not shown"]
    article = "document.querySelector('.bd-article-container').getBoundingClientRect().width"
    before = page.evaluate(article)
    if not click_visible(page, PRIMARY_TOGGLE):
        return ["no visible sidebar toggle"]
    problems = []
    if shown(page, NAV):
        problems.append("the toggle does not hide the primary sidebar")
    elif page.evaluate(article) <= before:
        problems.append("the article does not widen when the sidebar is hidden")
    if page.evaluate("() => !!document.querySelector('dialog[open]')"):
        problems.append("the toggle opened a dialog on a wide screen")
        page.keyboard.press("Escape")
    if not click_visible(page, PRIMARY_TOGGLE) or not shown(page, NAV):
        problems.append("a second click does not show the primary sidebar again")
    return problems


def search_bar_problems(page) -> list[str]:
    """One search control on screen: not none, and no second (blank) search bar."""
    count = page.evaluate(f"(s) => {{ {VISIBLE_JS} return [...document.querySelectorAll(s)].filter(visible).length; }}",
                          SEARCH_CONTROLS)
    return [] if count == 1 else [f"{count} search controls on screen"]


# --- pages, whole and broken -------------------------------------------------------------------------------------

#: Scripts that break one thing each, run in the loaded page (the power tests).
SWALLOW_CLICKS = """(sel) => document.addEventListener('click', (e) => {
    if (e.target.closest(sel)) { e.stopImmediatePropagation(); e.preventDefault(); } }, true)"""
DROP_CHAPTER = "() => document.querySelector('.bd-docs-nav a[href*=\"05_\"]').closest('li').remove()"
DIALOGS_STAY_OPEN = "() => { HTMLDialogElement.prototype.close = function () {}; }"
SECOND_SEARCH_BAR = """() => document.body.insertAdjacentHTML('afterbegin',
    '<header style="height:64px;display:flex"><button class="search-button-field">Search</button></header>')"""


@pytest.fixture
def page_at(site, browser):
    """``page_at(width, breakage=None)``: the chapter page loaded at ``width`` px (the script ``breakage``, with
    its argument, run in it first); closed after the test."""
    visits = []

    def load(width: int, breakage: tuple | None = None):
        visit = open_page(browser, site, PAGE)
        visits.append(visit)
        if visit.load_error:
            pytest.fail(f"{PAGE} did not load: {visit.load_error}", pytrace=False)
        visit.page.set_viewport_size({"width": width, "height": HEIGHT})
        visit.page.wait_for_timeout(SETTLE_MS)
        if breakage:
            visit.page.evaluate(*breakage)
        return visit.page

    yield load
    for visit in visits:
        visit.close()


def test_every_page_of_the_toc_is_built(site):
    missing = [p for p in toc_pages() if not (site.root / p).is_file()]
    assert not missing, f"_toc.yml pages missing from the build: {missing}"


@pytest.mark.parametrize("width", NARROW)
def test_narrow_screens_navigate(page_at, width):
    page = page_at(width)
    assert not search_bar_problems(page)
    assert not drawer_problems(page)
    assert not page_toc_problems(page)


def test_wide_screen_toggles_the_sidebar(page_at):
    page = page_at(WIDE)
    assert not search_bar_problems(page)
    assert not page_toc_problems(page)
    assert not sidebar_toggle_problems(page)


@pytest.mark.parametrize(("width", "check", "breakage", "expected"), [
    (390, drawer_problems, (SWALLOW_CLICKS, PRIMARY_TOGGLE), "the menu button opened no drawer"),
    (800, drawer_problems, (DROP_CHAPTER,), "the drawer does not list ['book/05_parametrization.html']"),
    (390, drawer_problems, (DIALOGS_STAY_OPEN,), "a click beside the drawer does not close it"),
    (390, page_toc_problems, (SWALLOW_CLICKS, SECONDARY_TOGGLE), '"On this page" opened no contents'),
    (WIDE, sidebar_toggle_problems, (SWALLOW_CLICKS, PRIMARY_TOGGLE), "the toggle does not hide the primary sidebar"),
    (WIDE, search_bar_problems, (SECOND_SEARCH_BAR,), "2 search controls on screen"),
], ids=["menu-button-dead", "chapter-missing", "drawer-stays-open", "on-this-page-dead", "toggle-dead",
        "second-search-bar"])
def test_the_checks_have_power(page_at, width, check, breakage, expected):
    """The same checks on a page broken on purpose report the breakage."""
    assert expected in check(page_at(width, breakage))


# --- search snippets -----------------------------------------------------------------------------------------------

SEARCH_WORD = "gradient"  # in every chapter, often next to math
RAW_TEX = ("\\(", "\\)", "\\[", "\\]", "$$", "\\begin{")
# book/_ext/gdlab_theme.py's script, blocked in the power test
SEARCH_FIX = re.compile(r"/_static/gdlab_search\.js(\?|$)")
SEARCH_TIMEOUT_MS = 20_000


def search_snippets(page, site, word: str, without_fix: bool = False) -> list[str]:
    """Search the book for ``word`` on its search page: the snippet under each result (all of them fetched)."""
    if without_fix:
        page.route(SEARCH_FIX, lambda route: route.abort())
    page.goto(site.url(f"search.html?q={word}"), wait_until="load")
    # Results found by an object's name (the library reference's entries) carry no snippet: wait until the search
    # has finished and every page result has fetched its snippet.
    page.wait_for_function(
        """() => { const summary = document.querySelector('.search-summary');
                   const pages = [...document.querySelectorAll('#search-results li')]
                       .filter(li => !li.querySelector('a[href*="#"]'));
                   return summary && summary.textContent.includes('found') && pages.length > 0
                          && pages.every(li => li.querySelector('p.context')); }""",
        timeout=SEARCH_TIMEOUT_MS)
    return page.eval_on_selector_all("#search-results li p.context", "els => els.map(p => p.textContent)")


#: A page whose math MathJax rendered at build time, and one with TeX left outside a math element.
RENDERED_MATH_PAGE = ('<div role="main">the loss <mjx-container class="MathJax"><mjx-math>L(w)</mjx-math>'
                      '<mjx-assistive-mml><math><mi>L</mi></math></mjx-assistive-mml></mjx-container> falls'
                      ' as \\(e^{-t}\\)</div>')


def page_text(page, html: str) -> str:
    """The text the search page's snippet would be cut from, for the page ``html``."""
    return page.evaluate("(html) => Search.htmlToText(html)", html)


def raw_tex_snippets(snippets: list[str]) -> list[str]:
    """The snippets that show raw TeX."""
    return [s for s in snippets if any(mark in s for mark in RAW_TEX)]


def test_search_snippets_show_no_raw_math(page_at, site):
    page = page_at(WIDE)
    snippets = search_snippets(page, site, SEARCH_WORD)
    assert len(snippets) >= len([p for p in toc_pages() if p.startswith("book/0")]), "a chapter is not found"
    assert not raw_tex_snippets(snippets)
    text = page_text(page, RENDERED_MATH_PAGE)
    assert " ".join(text.split()) == "the loss \u2026 falls as \u2026", "math rendered at build time"


def test_the_search_check_has_power(page_at, site):
    """Without gdlab_search.js the same search shows raw TeX in its snippets, and MathJax's markup as text."""
    page = page_at(WIDE)
    search_snippets(page, site, SEARCH_WORD, without_fix=True)
    # The book's math is typeset at build time (gdlab_math), so its pages hold no raw TeX any more; a page that
    # still did would show it, and MathJax's markup comes through as text.
    assert raw_tex_snippets([page_text(page, RENDERED_MATH_PAGE)])
    assert "L(w)" in page_text(page, RENDERED_MATH_PAGE)
