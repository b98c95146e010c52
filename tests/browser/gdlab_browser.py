"""Helpers for the browser tests of the built book (``tests/browser``; the fixtures are in conftest.py).

The built HTML (``_build/html``, or ``$GDLAB_HTML_DIR``) is served on 127.0.0.1 by a threaded ``http.server`` on a free
port, and every page of the book is opened in Debian's headless Chromium (``/usr/bin/chromium``, or
``$GDLAB_CHROMIUM``) through Playwright. Every request that does not go to that local server is recorded and aborted,
so the tests never touch the network and report exactly which URLs a page would have fetched from elsewhere.

Without a built book, Chromium or Playwright the tests skip with the reason; with ``GDLAB_REQUIRE_BROWSER=1`` (set in
CI after the book build) the skip becomes a failure.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
HTML_DIR = Path(os.environ.get("GDLAB_HTML_DIR") or REPO / "_build" / "html").resolve()
CHROMIUM = os.environ.get("GDLAB_CHROMIUM", "/usr/bin/chromium")
REQUIRE = os.environ.get("GDLAB_REQUIRE_BROWSER", "") not in ("", "0")

# Headless flags that work on the project's machines (see the toolchain notes). Playwright adds --headless itself and
# gives every launch a fresh temporary profile (it refuses --user-data-dir in `args`).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Top-level folders of the build that hold no book pages: Sphinx's assets and sources, the JupyterLite site.
NON_PAGE_DIRS = {"_static", "_sources", "_images", "_downloads", "lite"}
# Generated pages that are not part of the book's content.
NON_PAGE_FILES = {"genindex.html", "search.html"}

#: Sections printed at the end of the run by conftest.py (title, lines): test_lite.py's timings.
TERMINAL_SUMMARY: list[tuple[str, list[str]]] = []

NAV_TIMEOUT_MS = 30_000
MATHJAX_TIMEOUT_MS = 30_000


def skip_or_fail(reason: str):
    """Skip the test with ``reason``; fail it instead when GDLAB_REQUIRE_BROWSER is set (CI, after the build)."""
    if REQUIRE:
        pytest.fail(f"{reason} (GDLAB_REQUIRE_BROWSER is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def discover_pages(html_dir: Path = HTML_DIR) -> list[str]:
    """Every HTML page of the built book, as a path relative to ``html_dir`` with forward slashes."""
    if not (html_dir / "index.html").is_file():
        return []
    pages = []
    for path in sorted(html_dir.rglob("*.html")):
        rel = path.relative_to(html_dir)
        top = rel.parts[0]
        if len(rel.parts) > 1 and (top in NON_PAGE_DIRS or top.startswith((".", "_"))):
            continue
        if rel.as_posix() in NON_PAGE_FILES:
            continue
        pages.append(rel.as_posix())
    return pages


def source_of(rel: str, html_dir: Path = HTML_DIR) -> Path | None:
    """The page's source as Sphinx copied it to ``_sources/`` (``book/01_x.html`` -> ``_sources/book/01_x.ipynb``)."""
    stem = rel[: -len(".html")]
    for suffix in (".ipynb", ".md", ".rst"):
        candidate = html_dir / "_sources" / (stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def is_chapter(rel: str) -> bool:
    """A chapter page is one built from a notebook: its copied source in ``_sources/``, or the repository's file
    next to this test suite, is a ``.ipynb`` (either is enough: a build may skip copying sources)."""
    source = source_of(rel)
    return (source is not None and source.suffix == ".ipynb") or (REPO / (rel[: -len(".html")] + ".ipynb")).is_file()


def redirect_target(rel: str) -> str | None:
    """The target of a ``<meta http-equiv="Refresh">`` redirect page (the root index.html), else None."""
    text = (HTML_DIR / rel).read_text(encoding="utf-8", errors="replace")
    m = re.search(r'<meta\s+http-equiv="Refresh"\s+content="\d+;\s*url=([^"]+)"', text, re.IGNORECASE)
    return m.group(1) if m else None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without logging, with the media types the book and its JupyterLite site need: JupyterLite's
    Pyodide needs ``.wasm`` as ``application/wasm`` (to compile it while it downloads) and ``.mjs`` as JavaScript."""

    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",
        ".json": "application/json",
        ".ipynb": "application/json",
        ".woff": "font/woff",
        ".woff2": "font/woff2",
    }

    def log_message(self, format, *args):
        pass


def serve(directory: Path, handler: type[http.server.SimpleHTTPRequestHandler] = _QuietHandler):
    """Serve ``directory`` on a free port of 127.0.0.1 from a daemon thread: (server, thread, base URL).

    Stop it with ``server.shutdown(); server.server_close()``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="book-http", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    return server, thread, f"http://{host}:{port}/"


@contextlib.contextmanager
def serving(directory: Path, handler: type[http.server.SimpleHTTPRequestHandler] = _QuietHandler) -> Iterator[str]:
    """:func:`serve` for a ``with`` block: yields the base URL; on leaving, stops the server and waits for its
    thread."""
    server, thread, base = serve(directory, handler)
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def error_line(exc: BaseException, limit: int | None = None) -> str:
    """An exception in one line, for a report: its type and the first line of its message (cut to ``limit``
    characters)."""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:limit]}"


def chromium_executable() -> str:
    """The Chromium to launch: :data:`CHROMIUM` as found on the PATH, else as given."""
    return shutil.which(CHROMIUM) or CHROMIUM


def browser_missing() -> str | None:
    """Why headless Chromium cannot be driven here, with the fix (Playwright not installed, no Chromium at
    :data:`CHROMIUM`), or None when it can: what the browser tests skip on and the benchmarks stop on."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -r requirements.txt)"
    if not Path(chromium_executable()).is_file():
        return f"no Chromium at {CHROMIUM} (Debian: apt-get install -y chromium; or set GDLAB_CHROMIUM)"
    return None


@contextlib.contextmanager
def launched_chromium() -> Iterator:
    """One headless Chromium (Playwright's sync API, :data:`CHROMIUM_ARGS`) for a ``with`` block, closed on leaving
    it; :func:`browser_missing` says beforehand whether it can start. Playwright's sync API allows one instance per
    thread: a second one inside a running one fails."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Site:
    """The book served on 127.0.0.1."""

    root: Path
    base: str  # http://127.0.0.1:<port>/
    netloc: str  # 127.0.0.1:<port>

    def url(self, rel: str) -> str:
        return urljoin(self.base, rel)

    def is_local(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about", "javascript"):
            return True
        return parts.scheme in ("http", "https", "ws", "wss") and parts.netloc == self.netloc


@contextlib.contextmanager
def served_site(root: Path) -> Iterator[Site]:
    """The folder ``root`` served on 127.0.0.1 (:func:`serving`) for a ``with`` block, as a :class:`Site`."""
    with serving(root) as base:
        yield Site(root=root, base=base, netloc=urlsplit(base).netloc)


@dataclass
class Visit:
    """One page opened in its own browser context, with everything it did while loading."""

    rel: str
    url: str
    page: object  # playwright Page
    context: object  # playwright BrowserContext
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # non-local requests, aborted
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)  # local responses with status >= 400
    failed_requests: list[str] = field(default_factory=list)  # local requests that failed without a response
    load_error: str | None = None
    mathjax: str = "not checked"  # 'absent' (not loaded), 'ready' (typeset done), 'timeout ...', 'failed: ...'

    def close(self):
        self.context.close()


def open_page(browser, site: Site, rel: str) -> Visit:
    """Open ``rel`` in a fresh context; block (and record) non-local requests; wait until math and network settle."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    page = context.new_page()
    page.set_default_timeout(NAV_TIMEOUT_MS)
    visit = Visit(rel=rel, url=site.url(rel), page=page, context=context)

    def on_route(route):
        url = route.request.url
        if site.is_local(url):
            route.continue_()
        else:
            visit.blocked.append(url)
            route.abort("blockedbyclient")

    def on_console(msg):
        if msg.type != "error":
            return
        loc = msg.location or {}
        where = loc.get("url", "")
        # "Failed to load resource" for a request that on_route aborted: reported by the external-requests test.
        if where and not site.is_local(where) and where in visit.blocked:
            return
        visit.console_errors.append(f"{msg.text}  [at {where}:{loc.get('lineNumber', '?')}]")

    def on_response(response):
        if response.status >= 400 and site.is_local(response.url):
            visit.bad_responses.append(f"{response.status} {response.url}")

    def on_request_failed(request):
        if site.is_local(request.url):
            visit.failed_requests.append(f"{request.failure} {request.url}")

    def on_websocket(ws):
        if not site.is_local(ws.url):
            visit.blocked.append(ws.url)

    context.route("**/*", on_route)
    page.on("request", lambda request: visit.requests.append(request.url))
    page.on("console", on_console)
    page.on("pageerror", lambda exc: visit.page_errors.append(str(exc)))
    page.on("response", on_response)
    page.on("requestfailed", on_request_failed)
    page.on("websocket", on_websocket)

    try:
        response = page.goto(visit.url, wait_until="load")
        if response is None or response.status != 200:
            visit.load_error = f"GET {visit.url} -> {response.status if response else 'no response'}"
        # MathJax 3 typesets after the load event; its promise settles when the page is done (or it gives up).
        visit.mathjax = page.evaluate(
            """(ms) => new Promise((resolve) => {
                   const mj = window.MathJax;
                   if (!(mj && mj.startup && mj.startup.promise)) { resolve('absent'); return; }
                   setTimeout(() => resolve('timeout after ' + ms + ' ms'), ms);
                   mj.startup.promise.then(() => resolve('ready'), (e) => resolve('failed: ' + e));
               })""",
            MATHJAX_TIMEOUT_MS,
        )
        # Fonts (MathJax loads its own on demand), widget scripts, ...: wait until the network is quiet.
        page.wait_for_load_state("networkidle", timeout=MATHJAX_TIMEOUT_MS)
    except Exception as exc:  # a timeout or a crash: keep what was recorded, the tests report it
        visit.load_error = f"{type(exc).__name__}: {exc}"
    return visit
