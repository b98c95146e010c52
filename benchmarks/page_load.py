"""Cold load of every chapter page of the built book in headless Chromium: first paint, math and network done, bytes.

The site is served from 127.0.0.1 (nothing else reachable) as a static host serves it: by :class:`GzipHandler`, which
sends text (``gdlab_weight.COMPRESSIBLE``: HTML, CSS, JavaScript, JSON, SVG, ...) gzip-compressed when the browser
accepts it, as GitHub Pages, Netlify and nginx's usual configurations do, and images and fonts as they are. The
budget (README.md, "Budgets"; issue 19), for the median of ``--runs`` cold loads of each chapter page:

- **first paint** (the ``first-paint`` entry of the Paint Timing API, else ``first-contentful-paint``) <= 0.5 s;
- **ready**: math typeset and the network idle <= 1.5 s. Both are times since the navigation started: math is typeset
  when ``MathJax.startup.promise`` settles (0 when the page loads no MathJax, as when its math is rendered at build
  time); the network is idle at the end of the last response (``responseEnd`` of the last resource, or the page's
  ``loadEventEnd`` if later), measured once no request has been in flight for 500 ms. Ready is the later of the
  two;
- **transferred** <= 1.5 MB (1.5e6 bytes): the sum of ``transferSize`` of the navigation and of every resource timing
  entry, i.e. response headers plus body as received, the text compressed. This is the budgeted number.

Reported, not budgeted: the **uncompressed** size, the sum of ``decodedBodySize`` (bodies only, as the page uses them:
what ``python -m http.server``, which does not compress, would send). It is over 1.5 MB on most chapters, because
their math is typeset at build time: each page carries its formulas as MathJax's HTML output together with their
MathML for screen readers (book/_ext/gdlab_math.py), text that compresses about tenfold. Also reported: the main
thread's long tasks (``PerformanceObserver`` ``longtask``, tasks over 50 ms: their total and the longest) and the
number of requests, and of them the page explorer's state images (book/_ext/gdlab_states.py: only the first state's,
as its neighbours are prefetched once the explorer comes near the viewport). A cold load is a fresh browser context
(empty cache, no service worker); every request is routed through Playwright, which also keeps Chromium's HTTP cache
out of the way, and any request to another host is aborted and reported. The handler compresses each file once and
keeps the result (as a host's cache does), so the first load of a page also pays for its compression (about 16 ms for
the largest chapter's HTML).

Run it with the project's interpreter after building the book (Debian's /usr/bin/chromium, or $GDLAB_CHROMIUM; never
``playwright install``)::

    .venv/bin/python benchmarks/page_load.py
    .venv/bin/python benchmarks/page_load.py --runs 5 --json /tmp/page_load.json

It prints a markdown table (median and range over the runs for every chapter page, then the worst page per measure)
and the heaviest resources of the heaviest page; the exit status is 1 and the last line says VIOLATED if a median is
over its budget or a load fails, 0 otherwise.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "browser"))
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import gdlab_weight  # noqa: E402
from gdlab_browser import HTML_DIR, browser_missing, discover_pages, error_line, is_chapter, launched_chromium, serving  # noqa: E402
from gdlab_browser import _QuietHandler as QuietHandler  # noqa: E402
from gdlab_states import STATES_DIR  # noqa: E402
from page_latency import load_average  # noqa: E402

FIRST_PAINT_BUDGET_MS = 500.0
READY_BUDGET_MS = 1500.0
BYTES_BUDGET = 1.5e6
TIMEOUT_MS = 30_000
QUIET_S = 0.5
TOP_RESOURCES = 8

#: Installed in every page before its own scripts: collect the main thread's long tasks from the start.
LONGTASK_JS = """
window.__gdlabLongTasks = [];
try {
  new PerformanceObserver(list => { for (const e of list.getEntries()) window.__gdlabLongTasks.push(e.duration); })
    .observe({type: 'longtask', buffered: true});
} catch (e) { window.__gdlabLongTasks = null; }
"""

#: Settles with the time (ms since navigation start) at which MathJax has typeset the page, 0 without MathJax.
MATH_DONE_JS = """
(ms) => new Promise((resolve, reject) => {
  const mj = window.MathJax;
  if (!(mj && mj.startup && mj.startup.promise)) { resolve(0); return; }
  setTimeout(() => reject(new Error('MathJax did not finish within ' + ms + ' ms')), ms);
  mj.startup.promise.then(() => resolve(performance.now()), reject);
})
"""

#: Paint, network and long-task figures of the loaded page.
METRICS_JS = """
() => {
  const paint = Object.fromEntries(performance.getEntriesByType('paint').map(e => [e.name, e.startTime]));
  const nav = performance.getEntriesByType('navigation')[0];
  const resources = performance.getEntriesByType('resource').filter(e => !e.name.startsWith('data:'));
  const decoded = (nav ? nav.decodedBodySize : 0) + resources.reduce((s, e) => s + e.decodedBodySize, 0);
  const networkEnd = Math.max(nav ? nav.loadEventEnd : 0, ...resources.map(e => e.responseEnd));
  return {
    firstPaint: paint['first-paint'] ?? paint['first-contentful-paint'] ?? null,
    networkEnd,
    bytes: (nav ? nav.transferSize : 0) + resources.reduce((s, e) => s + e.transferSize, 0),
    decoded,
    resources: [[location.href, nav ? nav.transferSize : 0, nav ? nav.decodedBodySize : 0],
                ...resources.map(e => [e.name, e.transferSize, e.decodedBodySize])],
    longTasks: window.__gdlabLongTasks,
  };
}
"""


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header value accepts gzip: ``gzip`` or ``*`` listed without ``q=0``."""
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        q = re.search(r"\bq\s*=\s*(\d+(?:\.\d*)?)", params)
        if coding.strip().lower() in ("gzip", "*") and (q is None or float(q.group(1)) > 0):
            return True
    return False


class GzipHandler(QuietHandler):
    """The book's local server (gdlab_browser's handler: media types, no log) sending text the way static hosts do:
    a file whose suffix is in ``gdlab_weight.COMPRESSIBLE``, asked for by a browser that accepts gzip, is sent
    gzip-compressed (``gdlab_weight.gzipped``) with ``Content-Encoding: gzip`` and ``Vary: Accept-Encoding``;
    everything else as the plain handler sends it. Compressed bodies are kept per (path, size, mtime)."""

    compressed: dict[tuple[str, int, int], bytes] = {}

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if not (path.is_file() and gdlab_weight.compressible(path)
                and accepts_gzip(self.headers.get("Accept-Encoding", ""))):
            return super().send_head()
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        body = self.compressed.get(key)
        if body is None:
            body = self.compressed[key] = gdlab_weight.gzipped(path.read_bytes())
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Vary", "Accept-Encoding")
        self.send_header("Last-Modified", self.date_time_string(int(stat.st_mtime)))
        self.end_headers()
        return io.BytesIO(body)


@dataclass
class Load:
    """One cold load of one page."""

    first_paint_ms: float
    math_ms: float          # MathJax done (0: no MathJax on the page)
    network_ms: float       # end of the last response
    bytes: int              # transferred: headers + bodies as sent (text compressed)
    decoded: int            # bodies uncompressed (reported, not budgeted)
    requests: int
    long_tasks_ms: list[float]
    resources: list[tuple[str, int, int]] = field(default_factory=list)   # (url, transferred, uncompressed)

    @property
    def state_images(self) -> int:
        """How many of the page explorer's state images the load fetched."""
        return sum(f"/{STATES_DIR}/" in url for url, _, _ in self.resources)

    @property
    def ready_ms(self) -> float:
        return max(self.math_ms, self.network_ms)


@dataclass
class PageResult:
    page: str
    loads: list[Load] = field(default_factory=list)
    error: str = ""


class NetworkActivity:
    """The page's requests in flight, to wait until the network has been quiet for ``QUIET_S`` (what Playwright's
    ``networkidle`` means; that event was seen to never fire on some pages whose requests had all finished)."""

    def __init__(self):
        self.pending: set[object] = set()
        self.last = time.monotonic()

    def started(self, request) -> None:
        self.pending.add(request)
        self.last = time.monotonic()

    def ended(self, request) -> None:
        self.pending.discard(request)
        self.last = time.monotonic()

    def wait_quiet(self, page) -> None:
        """Return once no request has been in flight for ``QUIET_S``; RuntimeError after ``TIMEOUT_MS``."""
        deadline = time.monotonic() + TIMEOUT_MS / 1e3
        while self.pending or time.monotonic() - self.last < QUIET_S:
            if time.monotonic() > deadline:
                urls = sorted(r.url for r in self.pending)[:3]
                raise RuntimeError(f"the network did not go quiet within {TIMEOUT_MS} ms; in flight: {urls}")
            page.wait_for_timeout(50)


def chapter_pages(html_dir: Path) -> list[str]:
    """The chapter pages of the built book (pages built from a notebook), relative to ``html_dir``."""
    return [rel for rel in discover_pages(html_dir) if is_chapter(rel)]


def cold_load(browser, base: str, rel: str) -> Load:
    """Open ``base + rel`` in a fresh browser context and measure it (see the module docstring)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    outside: list[str] = []

    def route(r):
        if r.request.url.startswith(base):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort("blockedbyclient")

    try:
        context.route("**/*", route)
        context.add_init_script(LONGTASK_JS)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        activity = NetworkActivity()
        page.on("request", activity.started)
        page.on("requestfinished", activity.ended)
        page.on("requestfailed", activity.ended)
        response = page.goto(base + rel, wait_until="load")
        if response is None or response.status != 200:
            raise RuntimeError(f"GET {rel} -> {response.status if response else 'no response'}")
        math_ms = page.evaluate(MATH_DONE_JS, TIMEOUT_MS)
        activity.wait_quiet(page)
        m = page.evaluate(METRICS_JS)
        if outside:
            raise RuntimeError(f"requests to other hosts: {outside[:3]}")
        if m["firstPaint"] is None:
            raise RuntimeError("no paint timing entry")
        return Load(first_paint_ms=m["firstPaint"], math_ms=math_ms, network_ms=m["networkEnd"], bytes=m["bytes"],
                    decoded=m["decoded"], requests=len(m["resources"]), long_tasks_ms=list(m["longTasks"] or []),
                    resources=[tuple(r) for r in m["resources"]])
    finally:
        context.close()


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    """``median (min-max)`` of ``values``, each formatted with ``fmt``."""
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def verdicts(loads: list[Load]) -> dict[str, bool]:
    """Whether each budgeted median is within its budget."""
    return {"first paint": statistics.median(x.first_paint_ms for x in loads) <= FIRST_PAINT_BUDGET_MS,
            "ready": statistics.median(x.ready_ms for x in loads) <= READY_BUDGET_MS,
            "transferred": statistics.median(x.bytes for x in loads) <= BYTES_BUDGET}


def page_row(r: PageResult) -> str:
    """One markdown row: the medians and ranges of one page's loads."""
    if r.error:
        return f"| {r.page} | - | - | - | - | - | - | - | failed: {r.error} |"
    loads = r.loads
    over = [name for name, ok in verdicts(loads).items() if not ok]
    return (f"| {r.page} | {spread([x.first_paint_ms for x in loads])} | {spread([x.math_ms for x in loads])} "
            f"| {spread([x.ready_ms for x in loads])} | {spread([x.bytes / 1e6 for x in loads], '{:.2f}')} "
            f"| {spread([x.decoded / 1e6 for x in loads], '{:.2f}')} "
            f"| {spread([sum(x.long_tasks_ms) for x in loads])} / {max(max(x.long_tasks_ms, default=0) for x in loads):.0f} "
            f"| {statistics.median(x.requests for x in loads):.0f} ({max(x.state_images for x in loads)}) "
            f"| {'OVER: ' + ', '.join(over) if over else 'ok'} |")


def worst_rows(results: list[PageResult]) -> list[str]:
    """The worst page for each budgeted median."""
    ok = [r for r in results if r.loads and not r.error]
    rows = []
    for name, get, budget, unit, scale in (("first paint", lambda x: x.first_paint_ms, FIRST_PAINT_BUDGET_MS, "ms", 1),
                                           ("ready (math + network idle)", lambda x: x.ready_ms, READY_BUDGET_MS,
                                            "ms", 1),
                                           ("transferred", lambda x: x.bytes, BYTES_BUDGET, "MB", 1e6)):
        if not ok:
            break
        worst = max(ok, key=lambda r: statistics.median(get(x) for x in r.loads))
        value = statistics.median(get(x) for x in worst.loads)
        rows.append(f"| {name} | {worst.page} | {value / scale:.{2 if scale > 1 else 0}f} {unit} "
                    f"| <= {budget / scale:g} {unit} | {'ok' if value <= budget else 'OVER'} |")
    return rows


def heaviest_resources(results: list[PageResult], base: str) -> list[str]:
    """The largest transfers of the heaviest page's first load."""
    ok = [r for r in results if r.loads and not r.error]
    if not ok:
        return []
    heaviest = max(ok, key=lambda r: statistics.median(x.bytes for x in r.loads))
    load = heaviest.loads[0]
    top = sorted(load.resources, key=lambda r: -r[1])[:TOP_RESOURCES]
    return [f"heaviest page {heaviest.page} ({load.bytes / 1e6:.2f} MB transferred, {load.decoded / 1e6:.2f} MB "
            f"uncompressed, in {load.requests} requests); largest transfers (transferred / uncompressed):",
            *(f"  {sent / 1e3:8.1f} KB / {size / 1e3:8.1f} KB  {url.removeprefix(base)}" for url, sent, size in top)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html-dir", type=Path, default=HTML_DIR, help="the built book (default: _build/html)")
    parser.add_argument("--runs", type=int, default=3, help="cold loads per page (default 3)")
    parser.add_argument("--pages", nargs="*", help="only these pages (paths relative to the build)")
    parser.add_argument("--json", type=Path, help="also write every load here")
    args = parser.parse_args(argv)

    html_dir = args.html_dir.resolve()
    pages = args.pages or chapter_pages(html_dir)
    if not pages:
        print(f"no chapter page in {html_dir}: build the book first (jupyter-book build .)", file=sys.stderr)
        return 1
    problem = browser_missing()
    if problem:
        print(problem, file=sys.stderr)
        return 1

    load_start = load_average()
    results = []
    with serving(html_dir, GzipHandler) as base, launched_chromium() as browser:
        for rel in pages:
            result = PageResult(rel)
            try:
                result.loads = [cold_load(browser, base, rel) for _ in range(args.runs)]
            except Exception as exc:  # reported in the table
                result.error = error_line(exc, 200)
            results.append(result)

    print(f"Cold loads of the chapter pages, served with gzip for text, median (min-max) of {args.runs} runs each; "
          "times in ms since the navigation started; transferred: headers and bodies as sent (budgeted); "
          "uncompressed: the bodies decoded (reported only).\n")
    print("| page | first paint | MathJax done | ready (math + network idle) | transferred (MB) | uncompressed (MB) "
          "| long tasks total / longest (ms) | requests (explorer states) | status |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        print(page_row(r))
    print("\n| budget (median) | worst page | measured | budget | status |\n|---|---|---:|---:|---|")
    print("\n".join(worst_rows(results)))
    print("\n" + "\n".join(heaviest_resources(results, base)))
    print(f"\nnote: {os.cpu_count()} cores, load average {load_start} at the start, {load_average()} at the end")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    failed = any(r.error or not all(verdicts(r.loads).values()) for r in results)
    print("VIOLATED: a median is over its budget or a load failed" if failed else "all budgets met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
