"""Time what a student waits for in Jupyter Lab: an explorer's control changed until its new figure is painted.

Measured in Chromium, per chapter and over all chapters, against the budget; printed as a markdown table.

``benchmarks/run.py`` times the explorer callbacks alone (``update()`` + Agg draw, in-process). This script measures
the round trip a reader sees: the widget sends the new value to the kernel, the kernel runs the callback, draws and
encodes the PNG, the figure comes back over the websocket, and Lab renders, decodes and paints it. Budget: median
<= 100 ms and 95th percentile <= 200 ms, per chapter and over all chapters.

How it is measured:

- the private Jupyter Lab of the browser tests (``tests/browser/jupyterlab_server.py``: the venv's ``jupyter-lab`` on
  a temporary copy of ``book/*.ipynb``, or of ``$GDLAB_LAB_BOOK``) in the student's environment (the variables of
  ``SCRUBBED_ENV`` are removed, so ``GDLAB_STATIC_EXPLORERS`` is unset and ``live(explorer)`` shows live controls)
  and with the notebook windowing of a student's Lab (its default; the acceptance test renders every cell instead:
  ``--windowing none``), driven in Debian's headless Chromium (``/usr/bin/chromium``, or ``$GDLAB_CHROMIUM``) through
  Playwright;
- per chapter: open the notebook, run the cells up to and including the explorer cell (the line ``live(explorer)``)
  on a fresh kernel, wait for the controls and the figure, and scroll them to the top of the view;
- per control (sliders and dropdowns, in the order shown), one-step moves as a student makes them: the slider's
  handle is focused and gets ArrowRight/ArrowLeft (``--input mouse``: the handle is dragged by one step's width and
  released; a drag is also the fallback should a key not move the slider); a dropdown gets its next/previous option
  chosen (Playwright selects it: ``input`` and ``change`` fire as on a click on the option; in Lab's command mode
  ArrowDown/ArrowUp belong to the notebook). Directions alternate, so every value stays next to its default and in
  range; the first 2 moves of every control in every pass are a warm-up and are not counted;
- per move, in the page: a capture-phase listener on ``window`` stamps ``performance.now()`` at the user's action
  (``keydown``, ``pointerup`` or ``input``, whichever comes first): t0. A MutationObserver on the explorer cell's
  output area waits for the new figure: an ``<img>`` that is new, or whose ``src`` changed, since before the action,
  once ``img.decode()`` resolved and it is ``complete`` with ``naturalWidth > 0``. This covers both ways of showing
  the figure: an ``Output`` widget that displays a new output ``<img>`` per update (a ``data:`` URL), and an
  ``ipywidgets.Image`` updated in place (a new ``blob:`` URL per update; text around it does not matter). Then the
  next frame: its ``requestAnimationFrame`` callback posts a message, whose handler runs after that frame's style,
  layout and paint and stamps t1. The latency is t1 - t0, both in the page (Playwright's round trips are not
  included). Before the next move the kernel must be idle again, plus 150 ms;
- ``--repeat N`` makes N passes over the controls per chapter (same kernel); the spread of the per-pass medians
  shows how stable the numbers are. The 1-minute load average before and after is printed: other work on the
  machine shares its cores with the kernel, the server and Chromium, and inflates the times.

A move without a new figure within 15 s (e.g. a rejected setting shows a message instead) is reported and fails the
run. Run it with the project's interpreter, from anywhere (about 5 minutes for every chapter with the defaults on a
2-core machine, of which about 2.5 minutes open and run the notebooks; each further pass about 2 minutes)::

    .venv/bin/python benchmarks/lab_latency.py                          # every chapter, 10 moves per control
    .venv/bin/python benchmarks/lab_latency.py --chapters 1,3 --moves 20 --repeat 3 --json /tmp/lab.json
    .venv/bin/python benchmarks/lab_latency.py --input mouse            # sliders dragged, not keyed

The exit status is 1 if a chapter or the total is over budget or a measurement failed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from gdlab_browser import browser_missing, error_line, launched_chromium  # noqa: E402
from jupyterlab_server import BOOK, LAB_SETTINGS, LabServer, lab_available, start_lab, write_settings  # noqa: E402

MEDIAN_BUDGET_MS = 100.0
P95_BUDGET_MS = 200.0
WARMUP_MOVES = 2
FIGURE_TIMEOUT_MS = 15_000  # a move whose figure takes longer is a failure
SETTLE_MS = 150  # quiet time after the kernel is idle again, before the next move
OPEN_TIMEOUT_MS = 60_000
RUN_TIMEOUT_MS = 300_000
VIEWPORT = {"width": 1400, "height": 1000}
EXPLORER_LINE = re.compile(r"^live\(explorer\)\s*$", re.MULTILINE)

# ---------------------------------------------------------------------------------------------------------------------
# In the page (``window.jupyterapp`` is exposed by the server's settings)

PANEL_READY_JS = """
async (name) => {
  const panel = window.jupyterapp.shell.currentWidget;
  await panel.context.ready;
  await panel.sessionContext.ready;
  await panel.revealed;
  return panel.content.notebookConfig.windowingMode;
}
"""

KERNEL_IDLE_JS = """
async ([settle, timeout]) => {
  const kernel = () => {
    const session = window.jupyterapp.shell.currentWidget.sessionContext.session;
    return session && session.kernel;
  };
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const start = performance.now();
  for (;;) {
    const k = kernel();
    if (k && k.status === 'idle' && k.connectionStatus === 'connected') {
      await sleep(settle);
      if (kernel().status === 'idle') return 'idle';
    }
    if (performance.now() - start > timeout) return k ? k.status + '/' + k.connectionStatus : 'no kernel';
    await sleep(10);
  }
}
"""

# Run the cells 0..idx (Run > Run All Above on the cell after the explorer, or Run All if it is the last cell).
RUN_TO_JS = """
async (idx) => {
  const app = window.jupyterapp;
  const notebook = app.shell.currentWidget.content;
  const last = idx + 1 >= notebook.widgets.length;
  if (!last) notebook.activeCellIndex = idx + 1;
  const ok = await app.commands.execute(last ? 'notebook:run-all-cells' : 'notebook:run-all-above');
  return ok;
}
"""

# The explorer's controls and figure: sliders (the noUiSlider handle takes the keys) and dropdowns (the <select>).
CONTROLS_JS = """
(idx) => {
  const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[idx];
  const scope = cell && cell.querySelector('.jp-Cell-outputArea');
  if (!scope) return null;
  const controls = [...scope.querySelectorAll('.widget-slider, .widget-dropdown')].map(el => {
    const label = ((el.querySelector('.widget-label') || {}).textContent || '').trim();
    const slider = el.querySelector('.noUi-target');
    const options = slider && slider.noUiSlider.options;
    if (slider) return {kind: 'slider', label, value: String(slider.noUiSlider.get()), ...options.range, step: options.step};
    const select = el.querySelector('select');
    return {kind: 'dropdown', label, value: select ? select.value : null, index: select ? select.selectedIndex : -1,
            options: select ? select.options.length : 0};
  });
  const imgs = [...scope.querySelectorAll('img')].filter(img => img.complete && img.naturalWidth > 0);
  return {controls, images: imgs.length};
}
"""

# The explorer (controls, then figure) at the top of the notebook's view.
SCROLL_TO_EXPLORER_JS = """
(idx) => document.querySelectorAll('.jp-Notebook .jp-Cell')[idx].querySelector('.jp-Cell-outputArea')
           .scrollIntoView({block: 'start'})
"""

# Arm the measurement of one move: focus the control (without scrolling), remember the figure's <img> elements and
# their src, stamp the next user action (keydown, pointerup or input: the first one) and watch the output area for a
# new figure. Returns what the caller needs to act: the value, and the handle's geometry (for a drag) or the option.
ARM_JS = """
([idx, k]) => {
  const scope = document.querySelectorAll('.jp-Notebook .jp-Cell')[idx].querySelector('.jp-Cell-outputArea');
  const control = scope.querySelectorAll('.widget-slider, .widget-dropdown')[k];
  const target = control.querySelector('.noUi-handle') || control.querySelector('select');
  const slider = control.querySelector('.noUi-target');
  // A slider's exact value (noUiSlider's; aria-valuenow is rounded to one decimal): an exponent for a log slider,
  // an index for a selection slider.
  const value = () => target.tagName === 'SELECT' ? target.value : String(slider.noUiSlider.get());
  target.focus({preventScroll: true});
  const before = new Map([...scope.querySelectorAll('img')].map(img => [img, img.getAttribute('src')]));
  const m = {action: null, t0: null, loaded: null, frame: null, painted: null, newNode: null, value: value()};
  let resolve;
  m.done = new Promise(r => { resolve = r; });
  m.readValue = value;
  const ACTIONS = ['keydown', 'pointerup', 'input'];
  const onAction = ev => { if (m.t0 === null) { m.t0 = performance.now(); m.action = ev.type; } };
  ACTIONS.forEach(t => window.addEventListener(t, onAction, true));
  const isNew = img => {
    const src = img.getAttribute('src');
    return !!src && (!before.has(img) || before.get(img) !== src);
  };
  let found = false;
  const finish = img => {
    found = true;
    m.loaded = performance.now();
    m.newNode = !before.has(img);
    m.stop();
    requestAnimationFrame(() => {
      m.frame = performance.now();
      const channel = new MessageChannel();  // its message is handled after this frame's rendering
      channel.port1.onmessage = () => { m.painted = performance.now(); resolve(); };
      channel.port2.postMessage(null);
    });
  };
  // A new figure counts once decoded (img.decode(): the image of the src it had when asked; rejected if the src
  // changes meanwhile) and complete with naturalWidth > 0.
  const asked = new Map();
  const check = () => {
    if (found || m.t0 === null) return;
    for (const img of scope.querySelectorAll('img')) {
      const src = img.getAttribute('src');
      if (!isNew(img) || asked.get(img) === src) continue;
      asked.set(img, src);
      img.decode().then(() => {
        if (!found && img.isConnected && img.getAttribute('src') === src && img.complete && img.naturalWidth > 0) {
          finish(img);
        }
      }, () => {});
    }
  };
  const observer = new MutationObserver(check);
  observer.observe(scope, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
  m.check = check;
  m.stop = () => { observer.disconnect(); ACTIONS.forEach(t => window.removeEventListener(t, onAction, true)); };
  window.__gdlabMove = m;
  const out = {value: m.value, focused: document.activeElement === target};
  if (target.tagName === 'SELECT') return {...out, index: target.selectedIndex, options: target.options.length};
  const base = control.querySelector('.noUi-base').getBoundingClientRect();
  const handle = target.getBoundingClientRect();
  const options = slider.noUiSlider.options;
  return {...out, min: options.range.min, max: options.range.max, step: options.step || null, width: base.width,
          x: handle.x + handle.width / 2, y: handle.y + handle.height / 2};
}
"""

# Wait for the armed move's new figure to be painted (or the timeout); the times are relative to the action (t0).
WAIT_JS = """
async (timeout) => {
  const m = window.__gdlabMove;
  let outcome = 'no move';  // the action changed nothing: no new figure to wait for
  if (m.readValue() !== m.value) {
    m.check();  // in case everything happened before the observer's first callback
    outcome = await Promise.race([m.done.then(() => 'ok'), new Promise(r => setTimeout(() => r('timeout'), timeout))]);
  }
  m.stop();
  const rel = t => (t === null || m.t0 === null) ? null : t - m.t0;
  return {outcome, action: m.action, loaded: rel(m.loaded), frame: rel(m.frame), painted: rel(m.painted),
          newNode: m.newNode, value: m.value, valueAfter: m.readValue()};
}
"""

# The first error output of the notebook's cells 0..idx, if any (cell index, exception name and message).
FIRST_ERROR_JS = """
(idx) => {
  const cells = window.jupyterapp.shell.currentWidget.content.widgets.slice(0, idx + 1);
  for (const [i, cell] of cells.entries()) {
    if (cell.model.type !== 'code') continue;
    for (const out of cell.model.outputs.toJSON()) {
      if (out.output_type === 'error') return `cell ${i}: ${out.ename}: ${out.evalue}`;
    }
  }
  return null;
}
"""

EXPLORER_TEXT_JS = """
(idx) => {
  const scope = document.querySelectorAll('.jp-Notebook .jp-Cell')[idx].querySelector('.jp-Cell-outputArea');
  return scope ? scope.innerText.replace(/\\s+/g, ' ').trim().slice(-300) : '';
}
"""


# ---------------------------------------------------------------------------------------------------------------------
# Results


@dataclass
class Move:
    """One timed move: the pass, the control, what was done, the latency to the painted figure (ms), how it went."""

    pass_no: int
    control: str
    input: str  # what was done: "ArrowRight", "drag +3 px", "select option 2"
    value_before: str | None
    value_after: str | None
    painted_ms: float | None  # action -> the frame after the new figure was decoded has been rendered: the latency
    loaded_ms: float | None  # action -> the new <img> decoded, complete, with naturalWidth > 0
    frame_ms: float | None  # action -> the requestAnimationFrame callback after that
    new_node: bool | None  # True: a new <img> (Output widget); False: the same <img>, new src (Image widget)
    outcome: str  # "ok"; "timeout": no new figure; "no move": the value did not change; "at end": not tried
    event: str | None = None  # the page event that stamped t0: keydown, pointerup or input


@dataclass
class ChapterResult:
    """Everything measured on one chapter."""

    name: str
    explorer_cell: int | None = None
    windowing: str | None = None  # the notebook's windowing mode in Lab
    controls: list[dict] = field(default_factory=list)
    open_s: float | None = None
    run_s: float | None = None
    moves: list[Move] = field(default_factory=list)
    error: str | None = None

    def latencies(self, pass_no: int | None = None, control: str | None = None) -> np.ndarray:
        return np.array([m.painted_ms for m in self.moves if m.outcome == "ok"
                         and (pass_no is None or m.pass_no == pass_no) and (control is None or m.control == control)])

    def failures(self) -> list[Move]:
        return [m for m in self.moves if m.outcome != "ok"]


def stats(ms: np.ndarray) -> dict:
    """Median, 95th percentile, max and count of latencies in ms (NaN when there are none)."""
    if ms.size == 0:
        return {"median": float("nan"), "p95": float("nan"), "max": float("nan"), "n": 0}
    return {"median": float(np.median(ms)), "p95": float(np.percentile(ms, 95)), "max": float(ms.max()), "n": ms.size}


def within_budget(s: dict) -> bool:
    return s["n"] > 0 and s["median"] <= MEDIAN_BUDGET_MS and s["p95"] <= P95_BUDGET_MS


# ---------------------------------------------------------------------------------------------------------------------
# Driving Lab


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def explorer_cell(path: Path) -> int | None:
    """Index of the code cell that shows the explorer: the first with a line ``live(explorer)``."""
    for i, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        src = cell.get("source", "")
        if cell["cell_type"] == "code" and EXPLORER_LINE.search("".join(src) if isinstance(src, list) else src):
            return i
    return None


def open_and_run(page, lab: LabServer, result: ChapterResult) -> dict:
    """Open the notebook, run it up to the explorer cell, wait for the explorer; return its controls (CONTROLS_JS)."""
    name, idx = result.name, result.explorer_cell
    start = time.monotonic()
    page.goto(lab.url(f"lab/tree/{urllib.parse.quote(name)}?reset"), wait_until="load")
    page.wait_for_function(f"""() => window.jupyterapp && window.jupyterapp.shell.currentWidget
                                      && window.jupyterapp.shell.currentWidget.context.path === {name!r}""")
    result.windowing = page.evaluate(PANEL_READY_JS, name)
    state = page.evaluate(KERNEL_IDLE_JS, [0, OPEN_TIMEOUT_MS])
    if state != "idle":
        raise RuntimeError(f"the kernel did not become idle ({state})")
    result.open_s = time.monotonic() - start
    start = time.monotonic()
    ok = page.evaluate(RUN_TO_JS, idx)
    state = page.evaluate(KERNEL_IDLE_JS, [0, RUN_TIMEOUT_MS])
    if not ok or state != "idle":
        raise RuntimeError(f"running the cells up to {idx} failed (command returned {ok}, kernel {state}): "
                           f"{page.evaluate(FIRST_ERROR_JS, idx) or page.evaluate(EXPLORER_TEXT_JS, idx)!r}")
    result.run_s = time.monotonic() - start
    try:
        page.wait_for_function(f"""() => {{ const s = ({CONTROLS_JS})({idx});
                                            return s && s.controls.length > 0 && s.images > 0; }}""",
                               timeout=OPEN_TIMEOUT_MS, polling=100)
    except Exception as exc:  # e.g. a static figure (GDLAB_STATIC_EXPLORERS=1 in the kernel's environment)
        state = page.evaluate(CONTROLS_JS, idx) or {"controls": [], "images": 0}
        raise RuntimeError(f"cell {idx} shows {len(state['controls'])} controls and {state['images']} figures after "
                           f"{OPEN_TIMEOUT_MS / 1e3:g} s: {page.evaluate(EXPLORER_TEXT_JS, idx)!r}") from exc
    page.evaluate(SCROLL_TO_EXPLORER_JS, idx)
    page.evaluate(KERNEL_IDLE_JS, [500, OPEN_TIMEOUT_MS])
    return page.evaluate(CONTROLS_JS, idx)


def at_end(armed: dict, direction: int) -> bool:
    """Whether the control cannot go further in ``direction`` (+1 up, -1 down) from its armed value."""
    if "index" in armed:
        return not 0 <= armed["index"] + direction < armed["options"]
    value, tol = float(armed["value"]), (armed["step"] or 0) / 2
    return value >= armed["max"] - tol if direction > 0 else value <= armed["min"] + tol


def act(page, cell, k: int, armed: dict, direction: int, method: str) -> str:
    """Change control ``k`` one step in ``direction`` as a student does; return what was done.

    ``key``: the focused slider handle gets ArrowRight/ArrowLeft. ``drag``: the handle is dragged by one step's width in
    pixels (at least 1) and released. ``select``: the dropdown's next (previous) option is chosen, as a click on it does
    (Playwright sets it and fires ``input`` and ``change``; Lab's command mode takes ArrowDown/ArrowUp for itself).
    """
    if method == "select":
        cell.locator(".widget-slider, .widget-dropdown").nth(k).locator("select").select_option(
            index=armed["index"] + direction)
        return f"select option {armed['index'] + direction}"
    if method == "key":
        key = "ArrowRight" if direction > 0 else "ArrowLeft"
        page.keyboard.press(key)
        return key
    span = armed["max"] - armed["min"]
    dx = direction * max(1.0, float(np.ceil(armed["width"] * (armed["step"] or span / 100) / span)))
    page.mouse.move(armed["x"], armed["y"])
    page.mouse.down()
    page.mouse.move(armed["x"] + dx / 2, armed["y"])
    page.mouse.move(armed["x"] + dx, armed["y"])
    page.mouse.up()
    return f"drag {dx:+.0f} px"


def move_once(page, idx: int, k: int, direction: int, pass_no: int, label: str, mouse: bool = False) -> Move:
    """One step of control ``k``, timed in the page from the user's action until the new figure is painted; then wait
    until the kernel is idle again. A slider is moved with an arrow key (should a key not move it, by a drag of its
    handle), or with ``mouse`` by a drag; a dropdown by choosing the next option."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(idx).locator(".jp-Cell-outputArea")
    armed = page.evaluate(ARM_JS, [idx, k])
    methods = ["select"] if "index" in armed else ["drag"] if mouse else ["key", "drag"]
    if at_end(armed, direction):
        page.evaluate(WAIT_JS, 0)  # disarm
        return Move(pass_no=pass_no, control=label, input="-", value_before=armed["value"],
                    value_after=armed["value"], painted_ms=None, loaded_ms=None, frame_ms=None, new_node=None,
                    outcome="at end")
    for method in methods:
        if method != methods[0]:
            armed = page.evaluate(ARM_JS, [idx, k])
        if not armed["focused"]:
            raise RuntimeError(f"could not focus the control {label!r}")
        how = act(page, cell, k, armed, direction, method)
        r = page.evaluate(WAIT_JS, FIGURE_TIMEOUT_MS)
        if r["outcome"] != "no move":
            break
    outcome = "timeout" if r["outcome"] == "ok" and r["painted"] is None else r["outcome"]
    state = page.evaluate(KERNEL_IDLE_JS, [SETTLE_MS, 60_000])
    if state != "idle":
        raise RuntimeError(f"the kernel did not become idle after a move ({state})")
    return Move(pass_no=pass_no, control=label, input=how, value_before=r["value"], value_after=r["valueAfter"],
                painted_ms=r.get("painted"), loaded_ms=r.get("loaded"), frame_ms=r.get("frame"),
                new_node=r.get("newNode"), outcome=outcome, event=r.get("action"))


def measure_chapter(browser, lab: LabServer, name: str, moves: int, repeat: int, artifacts: Path,
                    mouse: bool = False) -> ChapterResult:
    """Open chapter ``name`` in a fresh browser context and time ``moves`` moves per control, ``repeat`` times."""
    result = ChapterResult(name=name, explorer_cell=explorer_cell(lab.root / name))
    if result.explorer_cell is None:
        result.error = "no code cell with live(explorer)"
        return result
    context = browser.new_context(viewport=VIEWPORT, service_workers="block")
    page = context.new_page()
    page.set_default_timeout(OPEN_TIMEOUT_MS)
    idx = result.explorer_cell
    try:
        explorer = open_and_run(page, lab, result)
        result.controls = explorer["controls"]
        log(f"{name}: opened in {result.open_s:.1f} s (windowing mode {result.windowing}), cells 0..{idx} run in "
            f"{result.run_s:.1f} s; controls: "
            + ", ".join(f"{c['label']} ({c['kind']})" for c in result.controls))
        for pass_no in range(repeat):
            for k, control in enumerate(result.controls):
                direction, done, stuck = 1, 0, 0
                while done < WARMUP_MOVES + moves and stuck < 2:
                    move = move_once(page, idx, k, direction, pass_no, control["label"], mouse)
                    direction = -direction  # back again (or, at an end, the other way)
                    stuck = stuck + 1 if move.outcome == "at end" else 0
                    if move.outcome == "at end":
                        continue
                    if move.outcome != "ok":
                        text = page.evaluate(EXPLORER_TEXT_JS, idx)
                        log(f"  {control['label']}: {move.input} {move.value_before} -> {move.value_after}: "
                            f"{move.outcome}; explorer output: {text!r}")
                    if done >= WARMUP_MOVES:
                        result.moves.append(move)
                    done += 1
            s = stats(result.latencies(pass_no))
            log(f"  pass {pass_no + 1}: median {s['median']:.0f} ms, p95 {s['p95']:.0f} ms, max {s['max']:.0f} ms, "
                f"n {s['n']}")
    except Exception as exc:
        shot = artifacts / f"{Path(name).stem}.png"
        try:
            page.screenshot(path=str(shot))
        except Exception:
            shot = "(none)"
        result.error = f"{error_line(exc)} (screenshot {shot})"
        log(f"{name}: {result.error}")
    finally:
        context.close()
        failed = lab.shutdown_kernels()  # the next chapter gets every core
        if failed:
            log(f"could not shut down: {failed}")
    return result


# ---------------------------------------------------------------------------------------------------------------------
# Report


def fmt_ms(x: float) -> str:
    return "-" if np.isnan(x) else f"{x:.0f} ms"


def pass_medians(results: list[ChapterResult], repeat: int) -> list[float]:
    """The median over the given chapters of every pass."""
    return [stats(np.concatenate([r.latencies(p) for r in results]))["median"] for p in range(repeat)]


def spread(medians: list[float]) -> str:
    vals = [m for m in medians if not np.isnan(m)]
    if len(vals) < 2:
        return "-"
    return " / ".join(f"{m:.0f}" for m in vals) + f" ms (spread {max(vals) - min(vals):.0f} ms)"


def summary_rows(results: list[ChapterResult], repeat: int) -> list[dict]:
    """One row per chapter and one for all of them: stats, pass medians, failures, verdict."""
    rows = []
    for label, group in [*((r.name.removesuffix(".ipynb"), [r]) for r in results), ("all chapters", results)]:
        ms = np.concatenate([r.latencies() for r in group]) if group else np.array([])
        s = stats(ms)
        failures = sum(len(r.failures()) for r in group)
        errors = [r.error for r in group if r.error]
        status = "failed" if errors or failures else ("ok" if within_budget(s) else "OVER")
        rows.append({"chapter": label, **s, "pass_medians": pass_medians(group, repeat), "failed_moves": failures,
                     "errors": errors, "status": status})
    return rows


def markdown_report(results: list[ChapterResult], rows: list[dict], repeat: int, mouse: bool) -> str:
    """The summary table (per chapter, all chapters) and a table per control."""
    how = "slider handle dragged and released" if mouse else "arrow key on a slider handle"
    lines = [f"Jupyter Lab, control change ({how}; option chosen in a dropdown) to new figure painted in Chromium. "
             f"Budget: median <= {MEDIAN_BUDGET_MS:g} ms, p95 <= {P95_BUDGET_MS:g} ms.", "",
             "| chapter | n | median | p95 | max | pass medians | status | note |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        total = row["chapter"] == "all chapters"
        errors = ([f"{len(row['errors'])} chapters failed"] if total and row["errors"] else row["errors"])
        note = "; ".join(errors + ([f"{row['failed_moves']} moves without a new figure"] if row["failed_moves"] else []))
        lines.append(f"| {row['chapter']} | {row['n']} | {fmt_ms(row['median'])} | {fmt_ms(row['p95'])} | "
                     f"{fmt_ms(row['max'])} | {spread(row['pass_medians']) if repeat > 1 else '-'} | {row['status']} | "
                     f"{note} |")
    lines += ["", "Per control (all passes):", "", "| chapter | control | n | median | p95 | max |",
              "|---|---|---|---|---|---|"]
    for r in results:
        for c in r.controls:
            s = stats(r.latencies(control=c["label"]))
            lines.append(f"| {r.name.removesuffix('.ipynb')} | {c['label']} ({c['kind']}) | {s['n']} | "
                         f"{fmt_ms(s['median'])} | {fmt_ms(s['p95'])} | {fmt_ms(s['max'])} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------------
# Main


def student_settings(windowing: str) -> dict[str, dict]:
    """The Lab settings of the browser tests, but with the notebook's windowing mode of a student's Lab (its default,
    ``contentVisibility`` in Lab 4.6: off-screen cells are not rendered) unless ``windowing`` names another one
    (``none``, as the acceptance test uses, renders every cell)."""
    tracker = "@jupyterlab/notebook-extension:tracker"
    values = {k: v for k, v in LAB_SETTINGS.get(tracker, {}).items() if k != "windowingMode"}
    if windowing != "default":
        values["windowingMode"] = windowing
    return {**LAB_SETTINGS, tracker: values}


def json_safe(obj):
    """``obj`` with NaN replaced by None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and np.isnan(obj):
        return None
    return obj


def select_chapters(spec: str | None) -> list[str]:
    """Chapter notebooks of the book (``NN_*.ipynb``), all or those whose numbers ``spec`` lists (``"1,3"``)."""
    names = sorted(p.name for p in BOOK.glob("[0-9][0-9]_*.ipynb"))
    if not spec:
        return names
    wanted = {f"{int(s):02d}" for s in spec.split(",") if s.strip()}
    return [n for n in names if n[:2] in wanted]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", metavar="LIST", help="chapter numbers, comma-separated (default: all)")
    parser.add_argument("--moves", type=int, default=10, help="timed moves per control and pass (default 10)")
    parser.add_argument("--repeat", type=int, default=1, help="passes over the controls per chapter (default 1)")
    parser.add_argument("--input", choices=["keys", "mouse"], default="keys",
                        help="move sliders with the arrow keys (default) or by dragging their handles")
    parser.add_argument("--windowing", choices=["default", "contentVisibility", "defer", "full", "none"],
                        default="default", help="the notebook's windowing mode (default: Lab's default, as a student has)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every move and the summary to PATH")
    args = parser.parse_args(argv)
    if args.moves < 1 or args.repeat < 1:
        parser.error("--moves and --repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Start Lab and Chromium, measure the selected chapters, print the table; 1 if over budget or failed."""
    args = parse_args(argv)
    reason = lab_available()
    if reason:
        log(f"cannot run: {reason}")
        return 1
    reason = browser_missing()
    if reason:
        log(f"cannot run: {reason}")
        return 1
    chapters = select_chapters(args.chapters)
    if not chapters:
        log(f"cannot run: no chapter notebook matches {args.chapters!r} in {BOOK}")
        return 1
    started, load_before = time.monotonic(), os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="gdlab-lab-latency-"))
    artifacts = workdir / "artifacts"
    artifacts.mkdir()
    lab = start_lab(workdir, workdir / "jupyter-lab.log")
    write_settings(lab.settings_dir, student_settings(args.windowing))  # read by Lab when a page loads
    log(f"Jupyter Lab at {lab.base} on {lab.root} (log {lab.log_path})")
    results: list[ChapterResult] = []
    try:
        with launched_chromium() as browser:
            for name in chapters:
                results.append(measure_chapter(browser, lab, name, args.moves, args.repeat, artifacts,
                                               args.input == "mouse"))
    finally:
        lab.stop()
    rows = summary_rows(results, args.repeat)
    load = f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores"
    print(markdown_report(results, rows, args.repeat, args.input == "mouse"))
    print(f"\nLoad average (1 min): {load}. Other work on the machine (tests, builds) shares the cores with the "
          "kernel, the server and Chromium, and inflates these times.")
    elapsed = time.monotonic() - started
    log(f"\n{len(chapters)} chapters, {args.moves} moves per control, {args.repeat} pass(es) in {elapsed:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"budget_ms": {"median": MEDIAN_BUDGET_MS, "p95": P95_BUDGET_MS}, "input": args.input,
                   "moves_per_control": args.moves, "repeat": args.repeat, "warmup_moves": WARMUP_MOVES,
                   "seconds": round(elapsed, 1), "load_average": load, "summary": rows,
                   "chapters": [asdict(r) for r in results]}
        args.json.write_text(json.dumps(json_safe(payload), indent=2) + "\n")
    ok = all(row["status"] == "ok" for row in rows)
    if ok:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        log(f"Lab log and screenshots kept in {workdir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
