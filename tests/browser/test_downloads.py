"""The header's download menu, clicked in Chromium on every page: each entry saves the file it names.

The theme's menu has, per page, the page's source (``.ipynb`` on a chapter, ``.md`` on the other pages) and a
``.pdf`` entry, which it makes a print button. book/_ext/gdlab_pdf.py turns ``.pdf`` into a link to the book's PDF
and gdlab_downloads.js gives every entry the ``download`` attribute. Here every entry of every page is clicked:
it must start a download (no new tab showing the file as text, no print dialog) whose suggested name is the entry's
suffix and whose bytes are the site's file. The power test blocks gdlab_downloads.js: the chapter's ``.ipynb`` then
opens in a new tab as JSON instead of downloading, and the check must say so.
"""

from __future__ import annotations

from urllib.parse import unquote, urljoin, urlsplit

import pytest
from gdlab_browser import NAV_TIMEOUT_MS, Site

CLICK_TIMEOUT_MS = 5_000
MENU = ".dropdown-download-buttons"


def open_plain(browser, site: Site, rel: str, block_script: bool = False):
    """``rel`` in a fresh context that accepts downloads; only the local server is reachable (and, if
    ``block_script``, not gdlab_downloads.js)."""
    context = browser.new_context(accept_downloads=True, service_workers="block")

    def on_route(route):
        url = route.request.url
        if not site.is_local(url) or (block_script and url.endswith("gdlab_downloads.js")):
            route.abort("blockedbyclient")
        else:
            route.continue_()

    context.route("**/*", on_route)
    page = context.new_page()
    page.set_default_timeout(NAV_TIMEOUT_MS)
    page.goto(site.url(rel), wait_until="load")
    return context, page


def click_entry(context, page, index: int) -> dict:
    """Open the menu, click its ``index``-th entry: what happened (a download with its name and bytes, a new tab,
    a print call, or nothing)."""
    page.evaluate("() => { window.__printed = 0; window.print = () => { window.__printed += 1; }; }")
    page.click(f"{MENU} .dropdown-toggle")
    entry = page.locator(f"{MENU} .dropdown-item").nth(index)
    entry.wait_for(state="visible", timeout=CLICK_TIMEOUT_MS)
    href = entry.get_attribute("href")
    result = {"text": entry.inner_text().strip(), "href": href}
    pages_before = len(context.pages)
    try:
        with page.expect_download(timeout=CLICK_TIMEOUT_MS) as info:
            entry.click()
        download = info.value
        result.update(kind="download", name=download.suggested_filename,
                      data=open(download.path(), "rb").read())
    except Exception:
        if len(context.pages) > pages_before:
            result.update(kind="new tab", url=context.pages[-1].url)
        elif page.evaluate("() => window.__printed"):
            result["kind"] = "print dialog"
        else:
            result["kind"] = "nothing"
    page.keyboard.press("Escape")
    return result


def entry_problems(site: Site, rel: str, result: dict) -> list[str]:
    """What is wrong with one click: not a download, or a download of another name or other bytes than the file."""
    what = f"{rel}: the menu entry {result['text']!r}"
    if result["kind"] != "download":
        return [f"{what} gave {result['kind']}" + (f" ({result.get('url')})" if result.get("url") else "")]
    path = unquote(urlsplit(urljoin(site.url(rel), result["href"])).path).lstrip("/")
    expected = site.root / path
    problems = []
    if not result["name"].endswith(result["text"]):
        problems.append(f"{what} saved {result['name']!r}")
    if not expected.is_file() or expected.read_bytes() != result["data"]:
        problems.append(f"{what} saved other bytes than {path}")
    return problems


def menu_results(browser, site: Site, rel: str, block_script: bool = False) -> list[dict]:
    context, page = open_plain(browser, site, rel, block_script)
    try:
        count = page.locator(f"{MENU} .dropdown-item").count()
        return [click_entry(context, page, i) for i in range(count)]
    finally:
        context.close()


@pytest.mark.browser
def test_every_menu_entry_downloads_its_file(page_path, site, browser):
    if "dropdown-download-buttons" not in (site.root / page_path).read_text(encoding="utf-8"):
        pytest.skip(f"{page_path} has no download menu (a generated page without a source)")
    results = menu_results(browser, site, page_path)
    texts = [r["text"] for r in results]
    assert ".pdf" in texts, f"{page_path}: no .pdf entry in the download menu ({texts})"
    assert any(t in (".ipynb", ".md") for t in texts), f"{page_path}: no source entry ({texts})"
    assert [p for r in results for p in entry_problems(site, page_path, r)] == []


@pytest.mark.browser
def test_power_without_the_script_the_notebook_opens_as_text(site, browser):
    rel = "book/01_nonconvexity.html"
    if not (site.root / rel).is_file():
        pytest.skip(f"no {rel} in the build")
    results = menu_results(browser, site, rel, block_script=True)
    notebook = [r for r in results if r["text"] == ".ipynb"]
    assert notebook, f"no .ipynb entry on {rel}"
    problems = entry_problems(site, rel, notebook[0])
    assert problems and "gave new tab" in problems[0], problems
