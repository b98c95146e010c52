"""Latency and weight of the page explorers (book/_ext/gdlab_states.py) in the built book, in headless Chromium.

For every chapter page with a page explorer, on the built site served from 127.0.0.1 (nothing else reachable):

- **prefetched**: a control moved with the keyboard to a state that the page has prefetched (one step away from the
  current state along a control; the benchmark waits for the prefetches before each key press);
- **on demand**: the same with prefetching off (``window.GDLAB_STATES_PREFETCH = false``) and a fresh browser
  context, along a walk that visits no state twice: every image comes from the local server when the key is pressed;
- **initial page weight**: what the explorer adds to the page's first load (its HTML and JSON, gdlab_states.js and
  .css, the first state's image) minus what the static page had (the default figure and its ``<img>`` tag).

A latency is the time from the ``keydown`` event (its ``timeStamp``) to the first paint after the new image is shown:
the explorer's ``gdlab-states:shown`` event, then ``requestAnimationFrame``, then a message posted from there (it runs
after that frame is painted). Budgets: p95 <= 50 ms prefetched, <= 150 ms on demand; weight increase <= 300 KB.

Run it with the project's interpreter after building the book (Debian's /usr/bin/chromium, or $GDLAB_CHROMIUM; never
``playwright install``)::

    .venv/bin/python benchmarks/page_latency.py
    .venv/bin/python benchmarks/page_latency.py --runs 5 --steps 20 --json /tmp/page_latency.json

It prints a markdown table; the exit status is 1 if a measurement is over its budget or fails, 0 otherwise.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import random
import re
import statistics
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from gdlab_browser import HTML_DIR, browser_missing, error_line, launched_chromium, serving  # noqa: E402

PREFETCHED_P95_BUDGET_MS = 50.0
ON_DEMAND_P95_BUDGET_MS = 150.0
WEIGHT_BUDGET_KB = 300.0
TIMEOUT_MS = 15_000

EXPLORER = re.compile(r'<div class="gdlab-page-explorer gdlab-states".*?</script></div>', re.DOTALL)
STATIC_IMG_TAG = '<img alt="../_images/{0}.png" src="../_images/{0}.png" />'  # what the static page had
ASSETS = ("_static/gdlab_states.js", "_static/gdlab_states.css")

#: Installed in every page before its scripts: records keydown -> painted for each state the explorer shows.
PROBE_JS = """
window.__gdlab = {samples: [], t0: null};
document.addEventListener('keydown', e => { window.__gdlab.t0 = e.timeStamp; }, true);
window.addEventListener('DOMContentLoaded', () => {
  for (const root of document.querySelectorAll('.gdlab-states')) {
    root.addEventListener('gdlab-states:shown', e => {
      const t0 = window.__gdlab.t0;
      if (t0 === null) return;
      window.__gdlab.t0 = null;
      requestAnimationFrame(() => {
        const channel = new MessageChannel();
        channel.port1.onmessage = () => window.__gdlab.samples.push(
          {ms: performance.now() - t0, key: e.detail.key, prefetched: e.detail.prefetched});
        channel.port2.postMessage(0);
      });
    });
  }
});
"""

#: True when the explorer has started prefetching and every image it asked for so far is loaded.
PREFETCHED_JS = """
root => { const ex = root.gdlabExplorer;
          return !!ex && ex.prefetching && ex.images.size > 0
                 && Array.from(ex.images.values()).every(im => im.complete); }
"""


@dataclass
class PageResult:
    page: str
    explorer: str = ""
    states: int = 0
    controls: int = 0
    prefetched_ms: list[float] = field(default_factory=list)
    on_demand_ms: list[float] = field(default_factory=list)
    on_demand_was_prefetched: int = 0   # samples of the on-demand walk that hit a loaded image (should be 0)
    section_bytes: int = 0              # the explorer's HTML and JSON in the page
    assets_bytes: int = 0               # gdlab_states.js + .css
    image_bytes: int = 0                # the first state's image
    static_bytes: int = 0               # what the static page had: the default figure and its <img> tag
    neighbour_bytes: int = 0            # prefetched when the explorer comes near the viewport (not initial weight)
    error: str = ""

    @property
    def weight_increase(self) -> int:
        return self.section_bytes + self.assets_bytes + self.image_bytes - self.static_bytes


def explorer_pages(html_dir: Path) -> list[str]:
    return [p.relative_to(html_dir).as_posix() for p in sorted(html_dir.rglob("*.html"))
            if "lite" not in p.relative_to(html_dir).parts[:1] and 'class="gdlab-page-explorer gdlab-states"' in
            p.read_text(encoding="utf-8", errors="replace")]


def page_weight(result: PageResult, html_dir: Path, rel: str) -> None:
    """The explorer's share of the page's first load, from the built files."""
    text = (html_dir / rel).read_text(encoding="utf-8")
    section = EXPLORER.search(text).group(0)
    data = json.loads(re.search(r'<script type="application/json" class="gdlab-states-data">(.*?)</script>',
                                section, re.DOTALL).group(1))
    base = html.unescape(re.search(r'data-gdlab-base="([^"]*)"', section).group(1))
    folder = (html_dir / rel).parent / base
    first = folder / data["states"][data["default"]][0]
    result.explorer, result.states, result.controls = data["name"], len(data["states"]), len(data["controls"])
    result.section_bytes = len(section.encode())
    result.assets_bytes = sum((html_dir / a).stat().st_size for a in ASSETS)
    result.image_bytes = first.stat().st_size
    # The static page showed the same default figure under a 64-hex name in _images/, as the kernel's full-colour
    # PNG: larger than the state's palette PNG (gdlab_states.palette_png), counted here at the state's size, so the
    # increase is an upper bound.
    result.static_bytes = first.stat().st_size + len(STATIC_IMG_TAG.format("0" * 64))
    sizes = [len(c["text"]) for c in data["controls"]]
    index = [int(i) for i in data["default"].split("-")] if data["default"] else []
    neighbours = set()
    for i, n in enumerate(sizes):
        for j in (index[i] - 1, index[i] + 1):
            if 0 <= j < n:
                neighbours.add("-".join(map(str, index[:i] + [j] + index[i + 1:])))
    result.neighbour_bytes = sum((folder / data["states"][k][0]).stat().st_size for k in neighbours)


def controls_of(page):
    """Every page control of the first explorer, in the order of the state keys (one-value controls: no input)."""
    return page.eval_on_selector(
        ".gdlab-states",
        """root => { const ex = root.gdlabExplorer;
                    return ex.controls.map((c, i) => ({id: ex.inputs[i] ? ex.inputs[i].id : null,
                      select: !!ex.inputs[i] && ex.inputs[i].tagName === 'SELECT', n: c.text.length,
                      i: ex.index[i]})); }""")


def press(page, control: dict, forward: bool) -> None:
    page.focus(f"#{control['id']}")
    if control["select"]:
        page.keyboard.press("ArrowDown" if forward else "ArrowUp")
    else:
        page.keyboard.press("ArrowRight" if forward else "ArrowLeft")


def wait_sample(page, count: int) -> dict:
    page.wait_for_function("n => window.__gdlab.samples.length >= n", arg=count, timeout=TIMEOUT_MS)
    return page.evaluate("n => window.__gdlab.samples[n - 1]", count)


def open_explorer(browser, base: str, rel: str, prefetch: bool):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    outside = []

    def route(r):
        if r.request.url.startswith(base) or r.request.url.startswith("data:"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort("blockedbyclient")

    context.route("**/*", route)
    if not prefetch:
        context.add_init_script("window.GDLAB_STATES_PREFETCH = false;")
    context.add_init_script(PROBE_JS)
    page = context.new_page()
    page.goto(base + rel, wait_until="load")
    root = page.locator(".gdlab-states").first
    page.wait_for_function("r => r.classList.contains('gdlab-states-ready')", arg=root.element_handle(),
                           timeout=TIMEOUT_MS)
    root.scroll_into_view_if_needed()
    return context, page, root, outside


def measure_prefetched(browser, base: str, rel: str, steps: int, rng: random.Random) -> list[float]:
    """A random walk of single steps; before each step every prefetch has finished."""
    context, page, root, outside = open_explorer(browser, base, rel, prefetch=True)
    try:
        samples = []
        for _ in range(steps):
            page.wait_for_function(PREFETCHED_JS, arg=root.element_handle(), timeout=TIMEOUT_MS)
            page.wait_for_timeout(30)  # let the prefetched images' decode finish too
            movable = [c for c in controls_of(page) if c["n"] > 1 and c["id"]]
            control = rng.choice(movable)
            forward = control["i"] == 0 or (control["i"] < control["n"] - 1 and rng.random() < 0.5)
            press(page, control, forward)
            sample = wait_sample(page, len(samples) + 1)
            if not sample["prefetched"]:
                raise RuntimeError(f"{rel}: state {sample['key']} was not prefetched")
            samples.append(sample["ms"])
        if outside:
            raise RuntimeError(f"{rel}: requests outside the local server: {outside[:3]}")
        return samples
    finally:
        context.close()


def measure_on_demand(browser, base: str, rel: str, steps: int, rng: random.Random) -> tuple[list[float], int]:
    """A walk of single steps that never revisits a state, prefetching off, cold browser cache."""
    context, page, root, outside = open_explorer(browser, base, rel, prefetch=False)
    try:
        samples, hits = [], 0
        visited = {root.get_attribute("data-state")}
        for _ in range(steps):
            controls = controls_of(page)
            index = [c["i"] for c in controls]
            options = []
            for k, c in enumerate(controls):
                for d in (-1, 1):
                    if c["id"] and 0 <= c["i"] + d < c["n"]:
                        key = "-".join(str(index[j] + (d if j == k else 0)) for j in range(len(index)))
                        if key not in visited:
                            options.append((c, d > 0, key))
            if not options:
                break
            control, forward, key = rng.choice(options)
            visited.add(key)
            press(page, control, forward)
            sample = wait_sample(page, len(samples) + 1)
            hits += bool(sample["prefetched"])
            samples.append(sample["ms"])
        if outside:
            raise RuntimeError(f"{rel}: requests outside the local server: {outside[:3]}")
        return samples, hits
    finally:
        context.close()


def p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = 0.95 * (len(ordered) - 1)
    lo = int(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def fmt_ms(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} / {p95(values):.1f}" if values else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html-dir", type=Path, default=HTML_DIR, help="the built book (default: _build/html)")
    parser.add_argument("--runs", type=int, default=3, help="browser contexts per page and kind (default 3)")
    parser.add_argument("--steps", type=int, default=12, help="key presses per run (default 12)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    html_dir = args.html_dir.resolve()
    if not (html_dir / "index.html").is_file():
        print(f"no built book at {html_dir}: build it first (jupyter-book build .)", file=sys.stderr)
        return 1
    pages = explorer_pages(html_dir)
    if not pages:
        print(f"no page explorer (class gdlab-states) in {html_dir}: is book/_ext/gdlab_states.py loaded, and does "
              "gdlab.widgets output the page-explorer marker?", file=sys.stderr)
        return 1
    problem = browser_missing()
    if problem:
        print(problem, file=sys.stderr)
        return 1

    load_start = load_average()
    rng = random.Random(args.seed)
    results = []
    with serving(html_dir) as base, launched_chromium() as browser:
        for rel in pages:
            result = PageResult(rel)
            try:
                page_weight(result, html_dir, rel)
                for _ in range(args.runs):
                    result.prefetched_ms += measure_prefetched(browser, base, rel, args.steps, rng)
                    samples, hits = measure_on_demand(browser, base, rel, args.steps, rng)
                    result.on_demand_ms += samples
                    result.on_demand_was_prefetched += hits
            except Exception as exc:  # reported in the table
                result.error = error_line(exc, 200)
            results.append(result)

    # The latency budgets hold for the control changes of all pages together (pooled samples); a page's own p95
    # (n = runs x steps) is shown for diagnosis, marked with * when it is above the budget.
    failed = False
    print("| page | explorer | states | prefetched median / p95 (ms) | on demand median / p95 (ms) "
          "| initial weight increase (KB) | neighbours prefetched on view (KB) | status |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in results:
        heavy = r.weight_increase / 1024 > WEIGHT_BUDGET_KB
        failed |= bool(r.error) or heavy or not r.prefetched_ms or not r.on_demand_ms
        status = "failed: " + r.error if r.error else ("OVER (weight)" if heavy else "ok")
        pre_mark = "*" if r.prefetched_ms and p95(r.prefetched_ms) > PREFETCHED_P95_BUDGET_MS else ""
        dem_mark = "*" if r.on_demand_ms and p95(r.on_demand_ms) > ON_DEMAND_P95_BUDGET_MS else ""
        print(f"| {r.page} | {r.explorer} | {r.states} | {fmt_ms(r.prefetched_ms)}{pre_mark} "
              f"| {fmt_ms(r.on_demand_ms)}{dem_mark} | {r.weight_increase / 1024:.1f} | {r.neighbour_bytes / 1024:.0f} "
              f"| {status} |")
    pre = [x for r in results for x in r.prefetched_ms]
    dem = [x for r in results for x in r.on_demand_ms]
    heaviest = max((r.weight_increase for r in results), default=0) / 1024
    print()
    print("| benchmark | measured | budget | status |")
    print("|---|---:|---:|---|")
    for name, values, budget in (("control change -> painted, prefetched state (p95)", pre, PREFETCHED_P95_BUDGET_MS),
                                 ("control change -> painted, on demand from 127.0.0.1 (p95)", dem,
                                  ON_DEMAND_P95_BUDGET_MS)):
        value = p95(values)
        ok = bool(values) and value <= budget
        failed |= not ok
        print(f"| {name} | {value:.1f} ms (median {statistics.median(values) if values else float('nan'):.1f}, "
              f"n = {len(values)}) | <= {budget:g} ms | {'ok' if ok else 'OVER'} |")
    print(f"| initial page weight increase (heaviest page) | {heaviest:.1f} KB | <= {WEIGHT_BUDGET_KB:g} KB "
          f"| {'ok' if heaviest <= WEIGHT_BUDGET_KB else 'OVER'} |")
    hits = sum(r.on_demand_was_prefetched for r in results)
    notes = [f"{os.cpu_count()} cores, load average {load_start} at the start, {load_average()} at the end"]
    if hits:
        notes.append(f"{hits} on-demand samples found their image already loaded (not a cold load)")
    print("\n" + "\n".join(f"note: {n}" for n in notes))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) | {"weight_increase": r.weight_increase} for r in results],
                                        indent=1))
    return 1 if failed else 0


def load_average() -> str:
    """The system's load averages over 1, 5 and 15 minutes, as text (``n/a`` where the system has none)."""
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


if __name__ == "__main__":
    sys.exit(main())
