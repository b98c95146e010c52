"""Fixtures for the browser tests of the built book: a local server, one Chromium, pages (see gdlab_browser.py).

Without a built book, Chromium or Playwright the tests skip with the reason; with ``GDLAB_REQUIRE_BROWSER=1`` (set in
CI after the book build) the skip becomes a failure.
"""

from __future__ import annotations

import pytest
from gdlab_browser import (
    HTML_DIR,
    TERMINAL_SUMMARY,
    Visit,
    browser_missing,
    discover_pages,
    is_chapter,
    launched_chromium,
    open_page,
    redirect_target,
    served_site,
    skip_or_fail,
)


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: opens the built book in headless Chromium (needs _build/html)")
    config.addinivalue_line("markers", "chapters_only: parametrize page_path over chapter pages (built from notebooks)")


def pytest_terminal_summary(terminalreporter):
    for title, lines in TERMINAL_SUMMARY:
        terminalreporter.section(title, sep="-")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_generate_tests(metafunc):
    if "page_path" not in metafunc.fixturenames:
        return
    pages = discover_pages()
    if not pages:  # one placeholder, so that the `site` fixture can say why nothing ran
        metafunc.parametrize("page_path", [pytest.param(None, id="no-built-book")])
        return
    chapter_only = metafunc.definition.get_closest_marker("chapters_only") is not None
    params = []
    for rel in pages:
        if redirect_target(rel):
            continue  # index.html: tested by test_root_redirect
        if chapter_only and not is_chapter(rel):
            continue
        params.append(pytest.param(rel, id=rel))
    metafunc.parametrize("page_path", params)


@pytest.fixture(scope="session")
def site():
    """Serve the built book on a free port of 127.0.0.1 for the whole session."""
    if not (HTML_DIR / "index.html").is_file():
        skip_or_fail(
            f"no built book at {HTML_DIR} (build it with `jupyter-book build .`, or point GDLAB_HTML_DIR at a build)"
        )
    with served_site(HTML_DIR) as site:
        yield site


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the whole session, shared by every browser test (Playwright's sync API allows one
    instance per thread: a second ``sync_playwright()`` inside a running one fails)."""
    problem = browser_missing()
    if problem:
        skip_or_fail(problem)
    with launched_chromium() as b:
        yield b


@pytest.fixture(scope="session")
def browser(site, chromium):
    """The session's Chromium, for tests of the built book (so they skip, or fail in CI, without a build)."""
    return chromium


@pytest.fixture(scope="session")
def _visits(browser):
    cache: dict[str, Visit] = {}
    yield cache
    for visit in cache.values():
        try:
            visit.close()
        except Exception:
            pass


@pytest.fixture
def visit(page_path, site, browser, _visits) -> Visit:
    """The page ``page_path``, loaded once per session and shared by the read-only checks."""
    if page_path not in _visits:
        _visits[page_path] = open_page(browser, site, page_path)
    v = _visits[page_path]
    if v.load_error:
        pytest.fail(f"{page_path} did not load: {v.load_error}", pytrace=False)
    return v
