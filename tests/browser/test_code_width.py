"""No code cell of a chapter scrolls sideways at 1366 px (issue 19, item 4).

Every chapter page, opened at 1366 px: every ``pre`` of a code cell's input or output (collapsed cells opened first)
is no wider than its box (``scrollWidth <= clientWidth + 1``), so a reader sees each line whole. The chapters' code
lines are at most 88 characters (ruff, ``book/ruff.toml``) and so are their printed lines
(tests/test_notebook_sources.py for the stored outputs); this measures what the page makes of them, build-time
outputs included. The same pages at 390 px (a phone) are measured and reported, not asserted: there a code line of
88 characters cannot fit, and the block scrolls. The power test injects a long line into a page's code cell and
sees it reported.
"""

from __future__ import annotations

import pytest
from gdlab_browser import HTML_DIR, NAV_TIMEOUT_MS, TERMINAL_SUMMARY, skip_or_fail

pytestmark = pytest.mark.browser

WIDE, PHONE = 1366, 390

#: every code cell's input and output ``pre`` on the page, after opening collapsed cells: how many, and those whose
#: content is wider than their box (myst-nb: ``div.cell_input``, ``div.cell_output``).
MEASURE = """() => {
  document.querySelectorAll('details').forEach((d) => { d.open = true; });
  const result = {};
  for (const part of ['input', 'output']) {
    const pres = [...document.querySelectorAll(`div.cell_${part} pre`)];
    result[part] = {
      count: pres.length,
      wide: pres.filter((el) => el.scrollWidth > el.clientWidth + 1).map((el) => ({
        excess: el.scrollWidth - el.clientWidth, box: el.clientWidth,
        line: el.textContent.split('\\n').reduce((a, b) => (b.length > a.length ? b : a), '').slice(0, 70)})),
    };
  }
  return result;
}"""


def chapter_pages() -> list[str]:
    """The built chapter pages (book/NN_name.html), relative to the HTML folder."""
    return sorted(p.relative_to(HTML_DIR).as_posix() for p in (HTML_DIR / "book").glob("[0-9][0-9]_*.html"))


def open_chapter(browser, site, rel: str, width: int):
    """(context, page): ``rel`` loaded at ``width`` px; every request off the local server is aborted."""
    context = browser.new_context(viewport={"width": width, "height": 900}, service_workers="block")
    context.route("**/*", lambda route: route.continue_() if site.is_local(route.request.url)
                  else route.abort("blockedbyclient"))
    page = context.new_page()
    page.set_default_timeout(NAV_TIMEOUT_MS)
    page.goto(site.url(rel), wait_until="load")
    return context, page


def overflows(measured: dict) -> list[str]:
    """One line per code-cell ``pre`` wider than its box: which part, by how many pixels, its longest line."""
    return [f"{part}: {w['excess']} px beyond a {w['box']} px box: {w['line']!r}"
            for part in ("input", "output") for w in measured[part]["wide"]]


@pytest.fixture(scope="module")
def widths(site, browser) -> dict[str, dict[int, dict]]:
    """Chapter page -> viewport width -> what MEASURE found there."""
    pages = chapter_pages()
    if not pages:
        skip_or_fail(f"no built chapter page in {HTML_DIR}")
    found = {}
    for rel in pages:
        context, page = open_chapter(browser, site, rel, WIDE)
        try:
            found[rel] = {WIDE: page.evaluate(MEASURE)}
            page.set_viewport_size({"width": PHONE, "height": 844})
            found[rel][PHONE] = page.evaluate(MEASURE)
        finally:
            context.close()
    lines = []
    for width in (WIDE, PHONE):
        count = {part: sum(m[width][part]["count"] for m in found.values()) for part in ("input", "output")}
        wide = {part: sum(len(m[width][part]["wide"]) for m in found.values()) for part in ("input", "output")}
        lines.append(f"{width} px: {wide['input']} of {count['input']} input and {wide['output']} of "
                     f"{count['output']} output blocks scroll sideways ({len(found)} chapters)")
    TERMINAL_SUMMARY.append(("Code cells wider than the page", lines))
    return found


def test_no_code_cell_scrolls_sideways_at_1366_px(widths):
    problems = {rel: overflows(m[WIDE]) for rel, m in widths.items()}
    problems = {rel: found for rel, found in problems.items() if found}
    assert all(m[WIDE]["input"]["count"] > 0 for m in widths.values()), "a chapter page without code cells"
    assert not problems, "\n".join(f"{rel}:\n  " + "\n  ".join(found) for rel, found in problems.items())


def test_power_a_long_line_is_found(site, browser):
    pages = chapter_pages()
    if not pages:
        skip_or_fail(f"no built chapter page in {HTML_DIR}")
    context, page = open_chapter(browser, site, pages[0], WIDE)
    try:
        assert not overflows(page.evaluate(MEASURE))
        page.evaluate("""() => {
          const pre = document.querySelector('div.cell_output pre');
          pre.textContent += '\\n' + 'x = 1  # a deliberately long line '.repeat(4);
        }""")
        found = overflows(page.evaluate(MEASURE))
    finally:
        context.close()
    assert len(found) == 1 and found[0].startswith("output: ") and "a deliberately long line" in found[0], found
