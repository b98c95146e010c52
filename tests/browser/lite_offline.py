"""Run every chapter in the book's JupyterLite site, in headless Chromium, on a machine cut off from the network.

Used by test_lite.py, which starts it inside a network namespace that has only the loopback interface
(``unshare -n``), so that nothing can leave the machine whatever the page tries; it can also be run by hand::

    unshare -n .venv/bin/python tests/browser/lite_offline.py _build/html /tmp/lite.json [01_nonconvexity ...]

It brings the loopback interface up, refuses to run if any other interface exists, serves the built book
(``<html>/lite/``) on 127.0.0.1 with the browser tests' server, and drives Chromium with Playwright. For each chapter,
in one browser profile (so the first chapter is a first visit and the others find Pyodide in the browser's cache):
open ``lite/lab/index.html?path=book/<chapter>.ipynb``; check the notice that Python is starting and that it goes
away; wait until the kernel is idle (kernel-ready time); Run All and wait until the last cell has run (run-all
time); collect error outputs and stderr; drag the first slider of the explorer and wait for its figure to change.
It also opens one chapter in a page without WebAssembly and reads the notice there. Every request the browser makes
is recorded; the JSON written to ``<out>`` holds all of it for test_lite.py to judge.
"""

from __future__ import annotations

import fcntl
import json
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from gdlab_browser import CHROMIUM, CHROMIUM_ARGS, _QuietHandler, serve

KERNEL_TIMEOUT_S = 240
RUN_ALL_TIMEOUT_S = 300
FIGURE_TIMEOUT_S = 60
QUIET_S = 10            # idle with nothing queued for this long, before the last cell ran: Run All stopped early
TOTAL_BUDGET_S = 1200   # chapters not started within 20 minutes are reported as not run
NOTICE = "#gdlab-lite-notice"

# The state of the notebook in the page: code cells' prompts, error and stderr outputs, kernel status.
STATE_JS = """
() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)') || document;
  const prompts = Array.from(panel.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt'))
    .map(p => (p.textContent || '').trim());
  const stderr = Array.from(panel.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
    .map(o => (o.textContent || '').trim());
  const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator[data-status]');
  const outputs = Array.from(panel.querySelectorAll('.jp-CodeCell')).map(cell => Array.from(cell.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stdout"], ' +
      '.jp-OutputArea-output[data-mime-type="text/plain"]')).map(o => o.textContent || '').join(''));
  const mathErrors = Array.from(panel.querySelectorAll('.jp-MarkdownCell mjx-merror, .jp-MarkdownCell .katex-error'))
    .map(e => e.getAttribute('data-mjx-error') || e.getAttribute('title') || (e.textContent || '').trim());
  return {prompts, stderr, outputs, mathErrors, status: indicator ? indicator.getAttribute('data-status') : null};
}
"""

# The kernel is ready: the execution indicator says idle and the toolbar names the Pyodide kernel (before a kernel
# exists the indicator says idle too, next to "No Kernel").
READY_JS = """
() => document.querySelector('.jp-Notebook-ExecutionIndicator[data-status="idle"]') !== null
      && Array.from(document.querySelectorAll('.jp-Toolbar-kernelName, .jp-KernelName'))
           .some(e => (e.textContent || '').includes('Pyodide'))
"""

# The explorer (gdlab.widgets.live): the first widget box of an output area that holds a slider and an ipywidgets
# Image; returns the image's src (a blob: URL, new on every change).
FIGURE_JS = """
() => {
  const boxes = Array.from(document.querySelectorAll('.jp-OutputArea-output .widget-vbox'))
    .filter(b => b.querySelector('.widget-slider') && b.querySelector('img.widget-image'));
  if (!boxes.length) return null;
  boxes[0].setAttribute('data-gdlab-explorer', '1');
  return boxes[0].querySelector('img.widget-image').getAttribute('src');
}
"""


def loopback_only() -> list[str]:
    """Bring the loopback interface up (ioctl, as ``ip link set lo up``); return the names of all interfaces."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, siocgifflags, request))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))
    return [name for _, name in socket.if_nameindex()]


class RecordingHandler(_QuietHandler):
    """The browser tests' handler, also remembering every response: (path, status code)."""

    served: list[tuple[str, int]] = []

    def log_request(self, code="-", size="-"):
        RecordingHandler.served.append((unquote(urlsplit(self.path).path), int(code)))


def wait_for(predicate, timeout_s: float, interval_s: float = 0.25):
    """Call ``predicate`` until it returns something true (returned) or ``timeout_s`` passes (None)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    return None


def menu(page, menu_name: str, item: str) -> None:
    """Click ``item`` in the menu ``menu_name`` of JupyterLab's menu bar."""
    page.locator(".lm-MenuBar-itemLabel", has_text=menu_name).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def run_all(page) -> None:
    """Show every cell's code and outputs (the chapters collapse their solutions' cells, whose prompts and outputs
    JupyterLab then leaves out of the page), then Run > Run All Cells."""
    menu(page, "View", "Expand All Code")
    menu(page, "View", "Expand All Outputs")
    menu(page, "Run", "Run All Cells")


def wait_run_all(page, n_code: int, timeout_s: float) -> tuple[dict, bool]:
    """Poll the notebook until Run All is over: (state, True) once the kernel is idle with no cell queued and the
    last cell has run or an error is shown; (state, False) if it sits idle with nothing queued and neither for
    QUIET_S seconds (a run that stopped early), or after ``timeout_s``."""
    end, quiet_since = time.monotonic() + timeout_s, None
    while True:
        state, now = page.evaluate(STATE_JS), time.monotonic()
        prompts = state["prompts"]
        settled = state["status"] == "idle" and not any("*" in p for p in prompts) and len(prompts) >= n_code
        if settled and (any(ch.isdigit() for ch in prompts[-1]) or any("Traceback" in e for e in state["stderr"])):
            return state, True
        quiet_since = (quiet_since or now) if settled else None
        if (quiet_since and now - quiet_since > QUIET_S) or now > end:
            return state, False
        time.sleep(0.5)


def move_slider(page) -> dict:
    """Drag the explorer's first slider 40 px to the left; how long from the release until its figure changed.

    (A drag, not an arrow key: the arrow keys on a focused slider handle do not reach it in JupyterLab 4.4.)"""
    before = page.evaluate(FIGURE_JS)
    if not before:
        return {"figure_changed": False, "why": "no explorer (a widget box with a slider and a figure) found"}
    handle = page.locator('[data-gdlab-explorer="1"] .widget-slider .noUi-handle').first
    handle.scroll_into_view_if_needed()
    time.sleep(0.3)  # let the notebook settle after scrolling
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 40, y, steps=8)
    page.mouse.up()
    t0 = time.monotonic()
    after = wait_for(lambda: (src := page.evaluate(FIGURE_JS)) and src != before and src, FIGURE_TIMEOUT_S, 0.05)
    return {"figure_changed": bool(after), "slider_to_figure_s": round(time.monotonic() - t0, 2) if after else None,
            "why": None if after else f"the figure did not change within {FIGURE_TIMEOUT_S} s of moving the slider"}


def run_chapter(context, base: str, chapter: str, n_code: int, shots: Path | None) -> dict:
    """Open one chapter in the lab, wait for the kernel, Run All, move a slider: what happened, with timings."""
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    console: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)[:300]))
    page.on("console", lambda msg: msg.type == "error" and console.append(msg.text.split("\n")[0][:200]))
    result: dict = {"chapter": chapter, "code_cells": n_code}
    t0 = time.monotonic()
    try:
        page.goto(f"{base}lite/lab/index.html?path=book/{chapter}.ipynb", wait_until="domcontentloaded")
        notice = wait_for(lambda: page.locator(NOTICE).count() and page.locator(NOTICE).inner_text(), 30)
        result["notice"] = notice or None
        status = wait_for(lambda: page.evaluate(READY_JS), KERNEL_TIMEOUT_S, 0.1)
        result["kernel_ready_s"] = round(time.monotonic() - t0, 1) if status else None
        if not status:
            result["why"] = f"the kernel was not idle after {KERNEL_TIMEOUT_S} s"
            return result
        result["notice_gone"] = bool(wait_for(lambda: page.locator(NOTICE).count() == 0, 5))
        t1 = time.monotonic()
        run_all(page)
        state, done = wait_run_all(page, n_code, RUN_ALL_TIMEOUT_S)
        result["run_all_s"] = round(time.monotonic() - t1, 1) if done else None
        result["prompts"] = state["prompts"]
        result["executed"] = sum(any(ch.isdigit() for ch in p) for p in state["prompts"])
        result["stderr"] = [s[-1500:] for s in state["stderr"]]
        result["math_errors"] = state["mathErrors"]   # TeX that KaTeX/MathJax could not render in markdown cells
        result["outputs"] = state["outputs"]           # per code cell: its stdout and text/plain outputs
        if not result["run_all_s"]:
            result["why"] = (f"Run All did not reach the last cell (kernel {state['status']}, "
                             f"{result['executed']} of {n_code} code cells ran)")
            return result
        result |= move_slider(page)
    except Exception as exc:  # a Playwright timeout, a crash: report it with what was recorded so far
        result["why"] = f"{type(exc).__name__}: {exc}"
    finally:
        result["page_errors"] = errors
        result["console_errors"] = sorted(set(console))   # reported, not judged (jupyterlab-myst logs some)
        if shots is not None:
            page.screenshot(path=str(shots / f"{chapter}.png"), full_page=False)
        page.close()
    return result


def without_webassembly(context, base: str, chapter: str) -> str | None:
    """The notice's text on a chapter page whose window has no WebAssembly."""
    page = context.new_page()
    page.add_init_script("delete window.WebAssembly;")
    try:
        page.goto(f"{base}lite/lab/index.html?path=book/{chapter}.ipynb", wait_until="domcontentloaded")
        return wait_for(lambda: page.locator(f"{NOTICE}.gdlab-lite-error").count()
                        and page.locator(NOTICE).inner_text(), 20)
    finally:
        page.close()


def code_cells(html: Path, chapter: str) -> int:
    """Number of code cells of the chapter as the site serves it."""
    nb = json.loads((html / "lite" / "files" / "book" / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    return sum(cell["cell_type"] == "code" for cell in nb["cells"])


def main(html: Path, out: Path, chapters: list[str], shots: Path | None = None) -> dict:
    from playwright.sync_api import sync_playwright

    interfaces = loopback_only()
    report: dict = {"interfaces": interfaces, "chapters": [], "requests": [], "external": [], "bad_responses": []}
    if interfaces != ["lo"]:
        report["why"] = f"refusing to run with network interfaces {interfaces}: start me under `unshare -n`"
        out.write_text(json.dumps(report, indent=1))
        return report
    server, _, base = serve(html, RecordingHandler)
    local = urlsplit(base).hostname
    try:
        with sync_playwright() as p, tempfile.TemporaryDirectory(prefix="gdlab-chromium-") as profile:
            context = p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 900})
            report["chromium"] = context.browser.version if context.browser else None

            def on_request(request):
                report["requests"].append(request.url)
                if urlsplit(request.url).scheme in ("http", "https", "ws", "wss") and \
                        urlsplit(request.url).hostname != local:
                    report["external"].append(request.url)

            def on_response(response):
                if response.status >= 400:
                    report["bad_responses"].append(f"{response.status} {response.url}")

            context.on("request", on_request)
            context.on("response", on_response)
            deadline = time.monotonic() + TOTAL_BUDGET_S
            for chapter in chapters:
                served_before = len(RecordingHandler.served)
                if time.monotonic() > deadline:
                    result = {"chapter": chapter, "why": f"not run: the {TOTAL_BUDGET_S} s budget was used up"}
                elif not (html / "lite" / "files" / "book" / f"{chapter}.ipynb").is_file():
                    result = {"chapter": chapter, "why": "not in the site (lite/files/book/)"}
                else:
                    result = run_chapter(context, base, chapter, code_cells(html, chapter), shots)
                sent = {path for path, code in RecordingHandler.served[served_before:] if code == 200}
                files = [html / path.lstrip("/") for path in sent]
                result["downloaded_files"] = len(sent)   # sent in full (200), not revalidated (304)
                result["downloaded_bytes"] = sum(f.stat().st_size for f in files if f.is_file())
                report["chapters"].append(result)
                out.write_text(json.dumps(report, indent=1))   # as we go: a killed run still leaves its results
                print(json.dumps({k: result.get(k) for k in ("chapter", "kernel_ready_s", "run_all_s",
                                                             "slider_to_figure_s", "why")}), flush=True)
            report["no_webassembly_notice"] = without_webassembly(context, base, chapters[0])
            context.close()
    finally:
        server.shutdown()
        server.server_close()
        out.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    html_dir, out_file, *names = sys.argv[1:]
    html_dir = Path(html_dir).resolve()
    if not names:
        names = sorted(p.stem for p in (html_dir / "lite" / "files" / "book").glob("*.ipynb"))
    main(html_dir, Path(out_file), names)
