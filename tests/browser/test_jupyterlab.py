"""Acceptance test: every chapter notebook reads and runs in Jupyter Lab (what a student gets from the README's
``.venv/bin/jupyter lab``), driven in headless Chromium.

One Jupyter Lab server for the session (``jupyterlab_server.py``: the venv's ``jupyter-lab`` on a temporary copy of
``book/*.ipynb``, windowing off so that every cell is rendered, autosave off) and one Chromium. Per chapter, in order:

1. open ``lab/tree/<chapter>.ipynb`` and wait until every markdown cell is rendered by jupyterlab-myst;
2. reading checks: no raw MyST markup in the visible text; no math error (KaTeX, MathJax) and no jupyterlab-myst
   error or warning marker (unknown directive, unresolved reference, bad math); as many rendered theorem/proof,
   exercise and solution blocks as the source declares, each with a title and a body; solutions collapsed (gated
   solutions included) and opening on a click; links that resolve (``{doc}`` included); the notebook not modified
   by opening it;
3. Run All: every code cell executes, on the venv's python, without an error output (stderr warnings are reported);
4. the chapter's explorer (``live(explorer)``): moving a slider redraws its figure.

Times (open and render, Run All, slider to new figure) are printed at the end of the session and written, with
screenshots of whatever failed, to the artifacts folder that the session prints.

jupyterlab-myst 2.7 facts these checks rely on (test_detectors_catch_known_problems, at the end, checks them):
math is typeset by KaTeX at render time (``span.katex``, ``.katex-display``), not by MathJax; a bad formula is not
a ``.katex-error`` but a ``span.text-yellow-600`` (inline; the KaTeX message in ``title``) or a ``pre`` with a
``span.text-red-500`` (display); an unresolved ``{eq}``/``{numref}``/``{prf:ref}`` is a ``span.text-yellow-600``
titled "Cross Reference Not Found", an unknown citation "Citation Not Found"; an unknown directive is a red dropdown
titled "<name> - Unknown Directive"; an unknown role is rendered as its bare content, with no marker at all (so roles
are checked against the source). ``{prf:*}`` blocks are ``.myst-proof``; ``{exercise}`` and ``{solution}`` blocks
are ``.myst-exercise`` (a closed ``<details>`` for ``:class: dropdown``). MathJax (``mjx-merror``) only typesets
outputs of code cells, and ``.katex-error`` is KaTeX's own marker; both are checked too.

Run:  .venv/bin/python -m pytest tests/browser/test_jupyterlab.py -v     (about 2 minutes on 2 cores; -s shows progress)
A candidate fix can be tested before it is applied: GDLAB_LAB_BOOK=/path/to/fixed/notebooks (see jupyterlab_server.py).
Without Chromium, Playwright or the venv's jupyter-lab the tests skip with the reason; with
``GDLAB_REQUIRE_BROWSER=1`` the skip becomes a failure.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from gdlab_browser import error_line, skip_or_fail
from jupyterlab_server import BOOK, VENV, LabServer, lab_available, start_lab

pytestmark = pytest.mark.browser

CHAPTERS = sorted(p.name for p in BOOK.glob("[0-9][0-9]_*.ipynb"))

#: Strings that must not be left in the visible text: MyST syntax that was not rendered.
RAW_MARKUP = (":::{", "```{", "{cite", "{eq}", "{prf:ref}", "{numref}", "{ref}", "{doc}", ":label:", ":class:")
#: ... and patterns: an equation label ``(eq-...)``, a target line ``(label)=``, any role ``{name}`text```.
RAW_PATTERNS = (
    re.compile(r"\(eq-[\w.:-]+\)=?"),
    re.compile(r"^\s*\([\w.:-]+\)=\s*$", re.MULTILINE),
    re.compile(r"\{[a-z][\w:-]*\}`"),
)

#: Roles that jupyterlab-myst 2.7 implements (its myst-roles bundle); any other role renders as bare text, silently.
KNOWN_ROLES = {
    "abbr", "abbreviation", "chem", "cite", "del", "delete", "doc", "download", "eq", "eval", "index", "kbd",
    "keyboard", "math", "mermaid", "numref", "prf:ref", "ref", "sc", "si", "smallcaps", "span", "strike", "sub",
    "subscript", "sup", "superscript", "term", "u", "underline",
}  # fmt: skip

NAV_TIMEOUT_MS = 60_000
RENDER_TIMEOUT_S = 60
KERNEL_TIMEOUT_S = 60
RUN_ALL_TIMEOUT_S = 240
FIGURE_TIMEOUT_S = 60

# Timings and findings of every chapter, printed at the end of the session (see the `lab` fixture).
REPORT: dict[str, dict] = {}


# ---------------------------------------------------------------------------------------------------------------------
# The notebook's source: what the rendered page must show


DIRECTIVE_RE = re.compile(r"^[ \t]{0,3}(?::{3,}|`{3,})\{([A-Za-z][\w:.-]*)\}(.*)$", re.MULTILINE)
ROLE_RE = re.compile(r"\{([a-z][\w:-]*)\}`")
FRONT_MATTER_RE = re.compile(r"\A---\s*\n.*?\n---\s*(\n|\Z)", re.DOTALL)


def cell_source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


@dataclass
class NotebookSource:
    """What the ``.ipynb`` declares: its cells, and per markdown cell the directives it opens."""

    name: str
    cells: list[dict]

    @classmethod
    def load(cls, path: Path) -> NotebookSource:
        return cls(name=path.name, cells=json.loads(path.read_text(encoding="utf-8"))["cells"])

    def indices(self, cell_type: str) -> list[int]:
        return [i for i, c in enumerate(self.cells) if c["cell_type"] == cell_type]

    def directives(self, i: int) -> list[str]:
        """Names of the directives opened in cell ``i``, in order (``prf:theorem``, ``exercise``, ...)."""
        return [m.group(1) for m in DIRECTIVE_RE.finditer(cell_source(self.cells[i]))]

    def renders_empty(self, i: int) -> bool:
        """A markdown cell with only front matter (the ``math:`` macros) renders to nothing."""
        return not FRONT_MATTER_RE.sub("", cell_source(self.cells[i])).strip()

    def expected_blocks(self) -> dict[int, list[tuple[str, str]]]:
        """Per markdown cell, the rendered blocks its directives must give: ``(family, kind)`` with family
        ``proof`` (kind Theorem, Proof, Definition, ...), ``exercise`` or ``solution``. ``*-end`` gates give none."""
        out: dict[int, list[tuple[str, str]]] = {}
        for i in self.indices("markdown"):
            blocks = []
            for name in self.directives(i):
                if name.startswith("prf:"):
                    blocks.append(("proof", name.split(":", 1)[1].capitalize()))
                elif name in ("exercise", "exercise-start"):
                    blocks.append(("exercise", "Exercise"))
                elif name in ("solution", "solution-start"):
                    blocks.append(("solution", "Solution"))
            if blocks:
                out[i] = blocks
        return out

    def gated_solutions(self) -> list[tuple[int, int]]:
        """``(start cell, end cell)`` of every ``solution-start`` ... ``solution-end`` pair."""
        pairs, start = [], None
        for i in self.indices("markdown"):
            for name in self.directives(i):
                if name == "solution-start":
                    start = i
                elif name == "solution-end" and start is not None:
                    pairs.append((start, i))
                    start = None
        return pairs

    def text_before_end_gate(self, i: int) -> str:
        """The markdown of cell ``i`` before its ``solution-end`` directive: part of the gated solution."""
        m = re.search(r"^[ \t]{0,3}:{3,}\{solution-end\}", cell_source(self.cells[i]), re.MULTILINE)
        return cell_source(self.cells[i])[: m.start()].strip() if m else ""

    def roles(self) -> dict[str, list[int]]:
        """Every role used in the markdown cells, with the cells that use it."""
        found: dict[str, list[int]] = {}
        for i in self.indices("markdown"):
            for role in ROLE_RE.findall(cell_source(self.cells[i])):
                found.setdefault(role, []).append(i)
        return found

    def explorer_cell(self) -> int | None:
        """The code cell that shows the chapter's explorer (``live(explorer)``)."""
        for i in self.indices("code"):
            if "live(explorer)" in cell_source(self.cells[i]):
                return i
        return None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fmt(items, limit: int = 40) -> str:
    """A bulleted list of ``items`` (unique, in order) for an assertion message."""
    items = list(dict.fromkeys(items))
    shown = "\n  - ".join(items[:limit])
    more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"\n  - {shown}{more}"


# ---------------------------------------------------------------------------------------------------------------------
# In the page: JavaScript run through Playwright (``window.jupyterapp`` is exposed by the server's settings)

PANEL_JS = "window.jupyterapp && window.jupyterapp.shell.currentWidget"

NOTEBOOK_READY_JS = """
async (name) => {
  const panel = window.jupyterapp.shell.currentWidget;
  await panel.context.ready;
  await panel.revealed;
  return panel.context.path;
}
"""

# A fingerprint of the rendered markdown, to wait until jupyterlab-myst has finished (re-)rendering every cell.
RENDER_STATE_JS = """
() => {
  const cells = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')];
  const md = cells.map((c, i) => [c, i]).filter(([c]) => c.classList.contains('jp-MarkdownCell'));
  return {
    cells: cells.length,
    markdown: md.length,
    rendered: md.filter(([c]) => c.classList.contains('jp-mod-rendered')).length,
    filled: md.filter(([c]) => { const m = c.querySelector('.myst'); return m && m.childElementCount > 0; })
              .map(([c, i]) => i),
    size: md.reduce((n, [c]) => n + ((c.querySelector('.myst') || {}).innerHTML || '').length, 0),
    katex: document.querySelectorAll('.jp-Notebook .katex').length,
  };
}
"""

# Per cell: its type and its text as a reader sees it. Markdown: the rendered MyST (closed dropdowns included, as
# their content is one click away), without KaTeX (its MathML annotation holds the TeX source). Code: the outputs
# (the source is Python, not MyST).
CELL_TEXTS_JS = """
() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')].map((cell, i) => {
  if (cell.classList.contains('jp-MarkdownCell')) {
    const myst = cell.querySelector('.myst');
    if (!myst) return {i, type: 'markdown', text: cell.innerText || ''};
    const copy = myst.cloneNode(true);
    copy.querySelectorAll('.katex, .katex-display, svg').forEach(el => el.remove());
    return {i, type: 'markdown', text: copy.textContent || ''};
  }
  const outputs = cell.querySelector('.jp-OutputArea');
  return {i, type: 'code', text: outputs ? outputs.innerText || '' : ''};
})
"""

ERROR_MARKERS_JS = """
() => {
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')];
  const where = el => cells.indexOf(el.closest('.jp-Cell'));
  const clip = s => (s || '').replace(/\\s+/g, ' ').trim().slice(0, 160);
  const out = [];
  document.querySelectorAll('.jp-Notebook .katex-error').forEach(el =>
    out.push({cell: where(el), kind: 'KaTeX error (.katex-error)', text: clip(el.textContent), title: el.title}));
  document.querySelectorAll('.jp-Notebook mjx-merror, .jp-Notebook .MathJax_Error').forEach(el =>
    out.push({cell: where(el), kind: 'MathJax error (mjx-merror)', text: clip(el.textContent),
              title: el.getAttribute('data-mjx-error') || el.title || ''}));
  document.querySelectorAll('.jp-Notebook .myst .text-yellow-600').forEach(el =>
    out.push({cell: where(el), kind: 'jupyterlab-myst warning (span.text-yellow-600)', text: clip(el.textContent),
              title: el.title}));
  document.querySelectorAll('.jp-Notebook .myst .text-red-500').forEach(el =>
    out.push({cell: where(el), kind: 'jupyterlab-myst error (.text-red-500)', text: clip(el.textContent),
              title: (el.closest('[title]') || {}).title || ''}));
  document.querySelectorAll('.jp-Notebook .myst .myst-exercise-title').forEach(el => {
    if (/Unknown Directive\\s*$/.test(el.textContent))
      out.push({cell: where(el), kind: 'unknown directive', text: clip(el.textContent), title: ''});
  });
  return out;
}
"""

BLOCKS_JS = """
() => {
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')];
  return [...document.querySelectorAll('.jp-Notebook .myst .myst-proof, .jp-Notebook .myst .myst-exercise')]
    .map(el => {
      const proof = el.classList.contains('myst-proof');
      const pre = proof ? 'myst-proof' : 'myst-exercise';
      const title = el.querySelector(`:scope > .${pre}-header .${pre}-title`);
      const body = el.querySelector(`:scope > .${pre}-body`);
      return {
        cell: cells.indexOf(el.closest('.jp-Cell')), proof, tag: el.tagName.toLowerCase(), id: el.id,
        open: el.tagName === 'DETAILS' ? el.open : null,
        title: (title ? title.textContent : '').replace(/\\s+/g, ' ').trim(),
        body: (body ? body.textContent : '').trim().length,
      };
    });
}
"""

LINKS_JS = """
() => {
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')];
  return [...document.querySelectorAll('.jp-Notebook .myst a[href]')].map(a => {
    const raw = a.getAttribute('href');
    const target = raw.startsWith('#') ? document.getElementById(decodeURIComponent(raw.slice(1))) : null;
    return {cell: cells.indexOf(a.closest('.jp-Cell')), raw, href: a.href, text: a.textContent.trim().slice(0, 60),
            target: raw.startsWith('#') ? !!target : null, self: /^Link to this/.test(a.title || '')};
  });
}
"""

DIRTY_JS = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const tab = [...document.querySelectorAll('.lm-DockPanel .lm-TabBar-tab')]
                .find(t => t.textContent.trim() === panel.context.localPath) || null;
  return {model: panel.context.model.dirty, tab: tab ? tab.classList.contains('jp-mod-dirty') : null,
          panel: panel.title.className.includes('jp-mod-dirty')};
}
"""

MODEL_JSON_JS = "() => window.jupyterapp.shell.currentWidget.context.model.toJSON()"

KERNEL_STATE_JS = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel) return {status: 'no kernel'};
  return {status: kernel.status, connection: kernel.connectionStatus, name: kernel.name};
}
"""

RUN_ALL_JS = """
() => {
  const app = window.jupyterapp;
  window.__gdlabRunAll = null;
  if (!app.commands.hasCommand('notebook:run-all-cells')) return 'no command notebook:run-all-cells';
  app.commands.execute('notebook:run-all-cells').then(
    ok => { window.__gdlabRunAll = {ok: ok}; },
    err => { window.__gdlabRunAll = {error: String(err)}; });
  return 'started';
}
"""

# Every code cell's execution count and outputs, from the notebook model; "running" = prompt shows [*].
CODE_CELLS_JS = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  return panel.content.widgets.map((cell, i) => ({cell, i})).filter(({cell}) => cell.model.type === 'code')
    .map(({cell, i}) => ({
      i,
      count: cell.model.executionCount,
      running: /\\*/.test((cell.node.querySelector('.jp-InputArea-prompt') || {}).textContent || ''),
      outputs: cell.model.outputs.toJSON(),
    }));
}
"""

STDERR_DOM_JS = """
() => {
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')];
  return [...document.querySelectorAll(
      '.jp-Notebook .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(el => ({cell: cells.indexOf(el.closest('.jp-Cell')), text: el.textContent}));
}
"""

KERNEL_EXEC_JS = """
async (code) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const future = kernel.requestExecute({code, silent: false, store_history: false});
  let out = '';
  future.onIOPub = msg => {
    if (msg.header.msg_type === 'stream') out += msg.content.text;
    if (msg.header.msg_type === 'error') out += 'ERROR ' + msg.content.ename + ': ' + msg.content.evalue;
  };
  await future.done;
  return out;
}
"""


# ---------------------------------------------------------------------------------------------------------------------
# One chapter open in the browser


@dataclass
class LabChapter:
    """A chapter notebook opened in its own browser context, with what happened while it was open."""

    name: str
    source: NotebookSource
    disk_path: Path
    disk_hash: str
    artifacts: Path
    lab: LabServer
    page: object = None  # playwright Page
    context: object = None  # playwright BrowserContext
    open_error: str | None = None
    open_seconds: float | None = None
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    run_result: dict | None = None  # set by run_all()

    @property
    def stem(self) -> str:
        return self.name.removesuffix(".ipynb")

    def cell(self, i: int):
        """Locator of the ``i``-th cell of the notebook."""
        return self.page.locator(".jp-Notebook .jp-Cell").nth(i)

    def screenshot(self, label: str, cell: int | None = None) -> str:
        """Save a screenshot (of cell ``cell``, else of the window) in the artifacts folder; return its path."""
        path = self.artifacts / f"{self.stem}-{label}.png"
        try:
            if cell is not None:
                self.cell(cell).scroll_into_view_if_needed(timeout=5_000)
                self.cell(cell).screenshot(path=str(path), timeout=10_000)
            else:
                self.page.screenshot(path=str(path), timeout=10_000)
        except Exception as exc:  # a screenshot is a debugging aid: never the reason a test fails
            return f"(no screenshot: {type(exc).__name__})"
        return str(path)

    def report(self) -> dict:
        return REPORT.setdefault(self.stem, {})

    def require_open(self) -> None:
        if self.open_error:
            pytest.fail(f"{self.name} did not open and render in Jupyter Lab: {self.open_error}", pytrace=False)


def open_chapter(browser, lab: LabServer, name: str, artifacts: Path) -> LabChapter:
    """Open ``lab/tree/<name>`` in a fresh context and wait until the notebook is loaded and every markdown cell is
    rendered (:func:`wait_rendered`). Errors are recorded in ``open_error``, not raised: the tests report them."""
    disk = lab.root / name
    chapter = LabChapter(name=name, source=NotebookSource.load(disk), disk_path=disk, disk_hash=sha256(disk),
                         artifacts=artifacts, lab=lab)
    chapter.context = browser.new_context(viewport={"width": 1400, "height": 1000}, service_workers="block")
    page = chapter.page = chapter.context.new_page()
    page.set_default_timeout(NAV_TIMEOUT_MS)

    def on_route(route):
        if urllib.parse.urlsplit(route.request.url).netloc in ("", urllib.parse.urlsplit(lab.base).netloc):
            route.continue_()
        else:
            chapter.blocked.append(route.request.url)
            route.abort("blockedbyclient")

    chapter.context.route("**/*", on_route)
    page.on("console", lambda msg: msg.type == "error" and chapter.console_errors.append(msg.text.split("\n")[0]))
    page.on("pageerror", lambda exc: chapter.page_errors.append(str(exc).split("\n")[0]))
    start = time.monotonic()
    try:
        page.goto(lab.url(f"lab/tree/{urllib.parse.quote(name)}?reset"), wait_until="load")
        page.wait_for_function(f"() => {PANEL_JS} && {PANEL_JS}.context && {PANEL_JS}.context.path === {name!r}")
        page.evaluate(NOTEBOOK_READY_JS, name)
        wait_rendered(chapter)
        chapter.open_seconds = time.monotonic() - start
        chapter.report()["open_s"] = round(chapter.open_seconds, 1)
    except Exception as exc:
        chapter.open_error = f"{error_line(exc)} (screenshot {chapter.screenshot('open')})"
    return chapter


def wait_rendered(chapter: LabChapter, timeout_s: float = RENDER_TIMEOUT_S) -> dict:
    """Wait until every cell is in the DOM, every markdown cell is rendered (those with more than front matter have
    content) and the rendered markdown has not changed for a second (jupyterlab-myst re-renders the notebook when
    cross-references resolve)."""
    src = chapter.source
    markdown = src.indices("markdown")
    must_fill = {i for i in markdown if not src.renders_empty(i)}
    deadline = time.monotonic() + timeout_s
    last, stable_since = None, None
    while True:
        state = chapter.page.evaluate(RENDER_STATE_JS)
        done = (state["cells"] == len(src.cells) and state["markdown"] == len(markdown)
                and state["rendered"] == len(markdown) and must_fill <= set(state["filled"]))
        key = (state["size"], state["katex"], tuple(state["filled"]))
        now = time.monotonic()
        if key != last:
            last, stable_since = key, now
        if done and now - stable_since >= 1.0:
            return state
        if now > deadline:
            missing = sorted(must_fill - set(state["filled"]))
            raise TimeoutError(f"not rendered after {timeout_s:.0f} s: {state['cells']}/{len(src.cells)} cells in the "
                               f"page, {state['rendered']}/{len(markdown)} markdown cells rendered, empty: {missing}")
        time.sleep(0.25)


def wait_kernel_idle(chapter: LabChapter, timeout_s: float = KERNEL_TIMEOUT_S) -> dict:
    """Wait until the notebook's kernel is connected and idle; return its state."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = chapter.page.evaluate(KERNEL_STATE_JS)
        if state.get("status") == "idle" and state.get("connection") == "connected":
            return state
        if time.monotonic() > deadline:
            raise TimeoutError(f"kernel not idle after {timeout_s:.0f} s: {state}")
        time.sleep(0.25)


def run_all(chapter: LabChapter) -> dict:
    """Run every cell (Lab's command ``notebook:run-all-cells``, as Run > Run All Cells), once per chapter, and wait
    until it is done: the command's promise settled, the kernel idle and no cell queued or running. Returns (and
    caches) ``{seconds, cells, command, kernel_python, error}``."""
    if chapter.run_result is not None:
        return chapter.run_result
    result = chapter.run_result = {"error": None}
    page = chapter.page
    try:
        wait_kernel_idle(chapter)
        start = time.monotonic()
        started = page.evaluate(RUN_ALL_JS)
        if started != "started":
            raise RuntimeError(started)
        page.wait_for_function("() => window.__gdlabRunAll !== null", timeout=RUN_ALL_TIMEOUT_S * 1000, polling=250)
        result["command"] = page.evaluate("() => window.__gdlabRunAll")
        deadline = time.monotonic() + RUN_ALL_TIMEOUT_S
        while True:  # the command resolves when the last cell replied; outputs and status follow within ms
            cells = page.evaluate(CODE_CELLS_JS)
            kernel = page.evaluate(KERNEL_STATE_JS)
            if kernel.get("status") == "idle" and not any(c["running"] for c in cells):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"cells still running after {RUN_ALL_TIMEOUT_S} s (kernel {kernel})")
            time.sleep(0.25)
        result["seconds"] = time.monotonic() - start
        result["cells"] = cells
        chapter.report()["run_all_s"] = round(result["seconds"], 1)
        result["kernel_python"] = page.evaluate(
            KERNEL_EXEC_JS, "import sys, gdlab; print(sys.prefix); print(sys.executable); print(gdlab.__file__)")
    except Exception as exc:
        result["error"] = f"{error_line(exc)} (screenshot {chapter.screenshot('run-all')})"
    return result


def output_text(output: dict) -> str:
    """The text of a stream or error output (for messages)."""
    if output.get("output_type") == "error":
        return f"{output.get('ename')}: {output.get('evalue')}"
    text = output.get("text", "")
    return "".join(text) if isinstance(text, list) else text


def screenshots_of(chapter: LabChapter, problems: list[str], label: str, limit: int = 4) -> list[str]:
    """Screenshots of the first ``limit`` distinct cells that ``problems`` name (messages start with "cell N")."""
    cells = [int(m.group(1)) for p in problems if (m := re.match(r"cell (\d+)\b", p))]
    return [chapter.screenshot(f"{label}-cell{i}", i) for i in list(dict.fromkeys(cells))[:limit]]


def clip(text: str, n: int = 300) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # ANSI colours of tracebacks
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


# ---------------------------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def lab(tmp_path_factory, request):
    """One Jupyter Lab server for the session, on a temporary copy of book/*.ipynb (see jupyterlab_server.py)."""
    reason = lab_available()
    if reason:
        skip_or_fail(reason)
    workdir = tmp_path_factory.mktemp("jupyterlab")
    log = workdir / "jupyter-lab.log"
    try:
        server = start_lab(workdir, log)
    except RuntimeError as exc:
        pytest.fail(f"Jupyter Lab did not start: {exc}", pytrace=False)
    (workdir / "artifacts").mkdir()
    try:
        yield server
    finally:
        server.stop()
        _print_report(request.config, workdir, log)


def _print_report(config, workdir: Path, log: Path) -> None:
    """Print the per-chapter timings and findings (and where the log and screenshots are); save them as JSON."""
    (workdir / "artifacts" / "report.json").write_text(json.dumps(REPORT, indent=2), encoding="utf-8")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():  # else pytest swallows it
        _write_report(reporter.write_line if reporter else print, workdir, log)


def _write_report(write, workdir: Path, log: Path) -> None:
    """Write the table of :data:`REPORT` with ``write`` (one line per call)."""
    write("")
    write(f"Jupyter Lab acceptance: server log {log}, screenshots and report.json in {workdir / 'artifacts'}")
    write(f"{'chapter':<24} {'open+render':>11} {'Run All':>8} {'slider->fig':>11}  stderr warnings")
    for stem, r in REPORT.items():
        cols = [f"{r[k]:.{digits}f} s" if isinstance(r.get(k), float | int) else "-"
                for k, digits in (("open_s", 1), ("run_all_s", 1), ("slider_s", 2))]
        write(f"{stem:<24} {cols[0]:>11} {cols[1]:>8} {cols[2]:>11}  {len(r.get('warnings', []))}")
        for key, what in (("warnings", "stderr"), ("labels_in_outputs", "equation label printed by an output"),
                          ("console_errors", "browser console error"), ("blocked_requests", "blocked request"),
                          ("kernel_shutdown_failures", "kernel not shut down")):
            for item in r.get(key, []):
                write(f"    {what}: {item}")


@pytest.fixture(scope="session")
def lab_browser(lab, chromium):
    """The session's headless Chromium (conftest.py), for every chapter."""
    return chromium


@pytest.fixture(scope="module", params=CHAPTERS, ids=[c.removesuffix(".ipynb") for c in CHAPTERS])
def chapter(request, lab, lab_browser) -> LabChapter:
    """The chapter notebook, open in Jupyter Lab. Module scope with a parameter: pytest runs all the tests of one
    chapter (in file order) before it opens the next, and closes the page and shuts the kernel down in between."""
    ch = open_chapter(lab_browser, lab, request.param, lab.root.parent / "artifacts")
    try:
        yield ch
    finally:
        ch.report()["console_errors"] = list(dict.fromkeys(ch.console_errors + ch.page_errors))
        ch.report()["blocked_requests"] = list(dict.fromkeys(ch.blocked))
        try:
            ch.context.close()
        finally:
            failed = lab.shutdown_kernels()
            if failed:
                ch.report()["kernel_shutdown_failures"] = failed


# ---------------------------------------------------------------------------------------------------------------------
# Reading: the notebook as it opens


def test_opens_and_renders(chapter):
    """The notebook opens and jupyterlab-myst renders every markdown cell (the ones with more than front matter
    are not empty) within a minute."""
    chapter.require_open()
    print(f"\n{chapter.name}: opened and rendered in {chapter.open_seconds:.1f} s")
    chapter.screenshot("opened")


def test_no_raw_markup(chapter):
    """No MyST syntax is left in the text a reader sees: directive fences, roles (``{eq}``, ``{prf:ref}``,
    ``{numref}``, ``{cite}``), ``:label:``/``:class:`` options, ``(eq-...)`` labels and ``(label)=`` targets.
    Markdown cells are checked as rendered (closed dropdowns included), code cells by their outputs, where an
    equation label that a program prints on purpose (``bound (eq-hoeffding) holds``) is reported, not failed."""
    chapter.require_open()
    problems, notes = [], []
    for cell in chapter.page.evaluate(CELL_TEXTS_JS):
        text, code = cell["text"], cell["type"] == "code"
        hits = [s for s in RAW_MARKUP if s in text]
        labels = []
        for k, pattern in enumerate(RAW_PATTERNS):
            found = [m.group(0).strip() for m in pattern.finditer(text)]
            (labels if code and k == 0 else hits).extend(found)  # k == 0: the (eq-...) pattern
        problems += [f"cell {cell['i']} ({cell['type']}): {h!r} in ...{_around(text, h)}..." for h in dict.fromkeys(hits)]
        notes += [f"cell {cell['i']}: {h} in ...{_around(text, h)}..." for h in dict.fromkeys(labels)]
    chapter.report()["labels_in_outputs"] = notes
    for note in notes:
        print(f"\n{chapter.name}: note: a stored output prints an equation label: {note}")
    shots = screenshots_of(chapter, problems, "raw")
    assert not problems, f"{chapter.name}: raw MyST markup in the rendered notebook:{fmt(problems)}\nscreenshots: {shots}"


def _around(text: str, hit: str, width: int = 60) -> str:
    pos = text.find(hit)
    return clip(text[max(0, pos - width) : pos + len(hit) + width], 2 * width + len(hit))


def test_no_math_or_myst_errors(chapter):
    """No math error (KaTeX ``.katex-error``, MathJax ``mjx-merror``) and no jupyterlab-myst error or warning marker
    (bad math, unresolved cross-reference or citation, unknown directive); every role the source uses is one that
    jupyterlab-myst implements (an unknown role would be shown as bare text, without a marker)."""
    chapter.require_open()
    problems = [
        f"cell {m['cell']}: {m['kind']}: {m['text']!r}" + (f" -- {m['title']!r}" if m["title"] else "")
        for m in chapter.page.evaluate(ERROR_MARKERS_JS)
    ]
    for role, cells in chapter.source.roles().items():
        if role not in KNOWN_ROLES:
            problems.append(f"cells {sorted(set(cells))}: role {{{role}}} is unknown to jupyterlab-myst (plain text)")
    shots = screenshots_of(chapter, problems, "error")
    assert not problems, f"{chapter.name}: errors in the rendered notebook:{fmt(problems)}\nscreenshots: {shots}"


def test_proof_and_exercise_blocks(chapter):
    """Every ``{prf:...}`` directive is rendered as a jupyterlab-myst proof block titled with its kind (Theorem 2,
    Proof, Definition 1, ...), every ``{exercise}`` as an exercise block and every ``{solution}`` /
    ``{solution-start}`` as a solution block, in the cell that declares it; each block has a title and a body, and no
    other block (e.g. one rendered from a ``{solution-end}`` gate) appears."""
    chapter.require_open()
    expected = chapter.source.expected_blocks()
    rendered: dict[int, list[dict]] = {}
    for block in chapter.page.evaluate(BLOCKS_JS):
        rendered.setdefault(block["cell"], []).append(block)
    problems = []
    totals = {"proof": [0, 0], "exercise": [0, 0], "solution": [0, 0]}
    for i in sorted(set(expected) | set(rendered)):
        want = expected.get(i, [])
        got = rendered.get(i, [])
        for family, _ in want:
            totals[family][0] += 1
        gates = [d for d in chapter.source.directives(i) if d.endswith("-end")]
        for b in got:
            family = _block_family(b)
            if family in totals:
                totals[family][1] += 1
            if not b["title"] or not b["body"]:
                empty = " and ".join(w for w, v in (("title", b["title"]), ("body", b["body"])) if not v)
                hint = ""
                if not b["title"] and gates:
                    hint = f" (the cell's {{{gates[0]}}} gate, rendered as an empty block)"
                elif b["title"].startswith("Start of"):
                    hint = " (a {solution-start} gate with no text of its own: the solution's cells follow, outside)"
                problems.append(f"cell {i}: a rendered <{b['tag']}> {('proof' if b['proof'] else 'exercise/solution')}"
                                f" block with an empty {empty}, title {b['title']!r}{hint}")
        titled = [b for b in got if b["title"]]  # empty blocks are reported above
        matched = len(want) == len(titled) and all(
            _block_family(b) == family and (family != "proof" or b["title"].startswith(kind))
            for (family, kind), b in zip(want, titled, strict=True)
        )
        if not matched:
            kinds_want = [f"{family}:{kind}" for family, kind in want]
            kinds_got = [f"{_block_family(b)}:{b['title'][:40]}" for b in titled]
            problems.append(f"cell {i}: source declares {kinds_want or 'no block'}, rendered {kinds_got or 'none'}")
    summary = ", ".join(f"{family}: {w} declared / {g} rendered" for family, (w, g) in totals.items())
    print(f"\n{chapter.name}: {summary}")
    shots = screenshots_of(chapter, problems, "blocks")
    assert not problems, f"{chapter.name}: proof/exercise blocks ({summary}):{fmt(problems)}\nscreenshots: {shots}"


def _block_family(block: dict) -> str:
    """``proof``, ``exercise``, ``solution``, ``unknown-directive`` or ``unidentified`` (by the rendered title)."""
    if block["proof"]:
        return "proof"
    title = block["title"]
    if title.endswith("Unknown Directive"):
        return "unknown-directive"
    if re.search(r"\bSolution to\b", title):
        return "solution"
    if re.match(r"^(Start of |End of )?Exercise\b", title):
        return "exercise"
    return "unidentified"


def test_solutions_collapsed(chapter):
    """Every solution starts collapsed: a ``{solution}`` is a closed dropdown whose body is hidden; for a gated
    ``{solution-start}`` ... ``{solution-end}`` solution, the cells between the gates (the solution's code and its
    output) are hidden too (source and outputs not shown: e.g. collapsed with the ``jupyter.source_hidden`` and
    ``jupyter.outputs_hidden`` metadata). A click on the first solution's title opens it, a second click closes it."""
    chapter.require_open()
    blocks = chapter.page.evaluate(BLOCKS_JS)
    exercises = chapter.page.locator(".jp-Notebook .myst .myst-exercise")
    problems = []
    if not any(_block_family(b) == "solution" for b in blocks):
        problems.append("no rendered solution block")
    for k, b in enumerate(blocks):
        if _block_family(b) != "solution":
            continue
        name = f"cell {b['cell']}: solution {b['title']!r}"
        if b["tag"] != "details":
            problems.append(f"{name} is not a dropdown (<{b['tag']}>): its body is shown")
        elif b["open"]:
            problems.append(f"{name} starts open")
        else:
            body = exercises.nth(_nth_exercise(blocks, k)).locator(":scope > .myst-exercise-body")
            if body.count() and body.first.is_visible():
                problems.append(f"{name}: its body is visible before any click")
    for start, end in chapter.source.gated_solutions():
        for i in range(start + 1, end):
            visible = _visible_parts(chapter, i)
            if visible:
                problems.append(f"cell {i} (between the solution-start gate in cell {start} and the solution-end gate "
                                f"in cell {end}): {' and '.join(visible)} shown: {_first_line(chapter, i)!r}")
        before = chapter.source.text_before_end_gate(end)
        first = chapter.cell(end).locator(".myst > *").first
        if before and first.count() and first.is_visible() and "myst-exercise" not in (first.get_attribute("class") or ""):
            problems.append(f"cell {end}: the text before its solution-end gate (the end of the solution opened in cell "
                            f"{start}) is shown: {clip(before, 80)!r}")
    opened = _click_first_solution(chapter, blocks)
    if opened:
        problems.append(opened)
    shots = screenshots_of(chapter, problems, "solution")
    assert not problems, f"{chapter.name}: solutions not collapsed:{fmt(problems)}\nscreenshots: {shots}"


def _nth_exercise(blocks: list[dict], k: int) -> int:
    """Index among the ``.myst-exercise`` elements of the ``k``-th block of BLOCKS_JS (which lists proofs too)."""
    return sum(1 for b in blocks[:k] if not b["proof"])


def _visible_parts(chapter: LabChapter, i: int) -> list[str]:
    """What of cell ``i`` a reader sees: its source (``code``), its outputs, its rendered markdown."""
    cell = chapter.cell(i)
    parts = []
    for selector, what in ((".jp-InputArea-editor", "its source"), (".jp-OutputArea-output", "its output"),
                           (".myst > *", "its text")):
        loc = cell.locator(selector)
        if any(loc.nth(k).is_visible() for k in range(loc.count())):
            parts.append(what)
    return parts


def _first_line(chapter: LabChapter, i: int) -> str:
    lines = [ln for ln in cell_source(chapter.source.cells[i]).splitlines() if ln.strip()]
    return lines[0][:80] if lines else ""


def _click_first_solution(chapter: LabChapter, blocks: list[dict]) -> str | None:
    """Click the title of the first dropdown solution: it must open (body visible); click again to close it.
    Returns a problem description, or None."""
    for k, b in enumerate(blocks):
        if _block_family(b) != "solution" or b["tag"] != "details":
            continue
        details = chapter.page.locator(".jp-Notebook .myst .myst-exercise").nth(_nth_exercise(blocks, k))
        summary = details.locator(":scope > summary")
        body = details.locator(":scope > .myst-exercise-body")
        summary.scroll_into_view_if_needed()
        summary.click()
        try:
            body.wait_for(state="visible", timeout=5_000)
        except Exception:
            return f"cell {b['cell']}: solution {b['title']!r} did not open on a click on its title"
        summary.click()
        try:
            body.wait_for(state="hidden", timeout=5_000)
        except Exception:
            return f"cell {b['cell']}: solution {b['title']!r} did not close on a second click"
        return None
    return None


def test_links_resolve(chapter):
    """Every link of the rendered markdown leads where the book's link leads: ``#label`` to an element of the
    notebook, a link into the Jupyter server (``files/...``, ``lab/tree/...``) to a file that exists. A ``{doc}``
    role must become a link to the other document: jupyterlab-myst 2.7 turns ``{doc}`name``` into ``files/name``
    (no such file: the notebook is ``name.ipynb``), or, when this notebook has a heading ``name``, into a link to that
    heading. External links are not followed."""
    chapter.require_open()
    lab_netloc = urllib.parse.urlsplit(chapter.lab.base).netloc
    docs = {(i, target.split("<")[-1].rstrip(">").strip()) for i in chapter.source.indices("markdown")
            for target in re.findall(r"\{doc\}`([^`]+)`", cell_source(chapter.source.cells[i]))}
    problems = []
    for link in chapter.page.evaluate(LINKS_JS):
        shown = re.sub(r"\?_xsrf=[^#]*", "", link["raw"]).replace(chapter.lab.base, "/")
        where = f"cell {link['cell']}: link {link['text']!r} -> {shown!r}"
        parts = urllib.parse.urlsplit(link["href"])
        path = urllib.parse.unquote(parts.path) if parts.netloc == lab_netloc else ""
        doc = next((d for c, d in docs if c == link["cell"] and not link["self"]
                    and (path.endswith(f"/files/{d}") or shown == f"#{d}")), None)
        if doc is not None:
            if shown == f"#{doc}":
                page = next((f for f in (f"{doc}.ipynb", f"{doc}.md") if (chapter.lab.root / f).is_file()), None)
                hint = f" (write [text]({page}))" if page else ""
                problems.append(f"{where}: {{doc}}`{doc}` became a link to this notebook's own heading {doc!r}, not to "
                                f"the {doc!r} document{hint}")
                continue
            if not (chapter.lab.root / doc).exists():
                hint = f" (write [text]({doc}.ipynb))" if (chapter.lab.root / f"{doc}.ipynb").is_file() else ""
                problems.append(f"{where}: {{doc}}`{doc}` became a link to the file {doc!r}, which does not exist{hint}")
                continue
        if link["raw"] == "#":
            problems.append(f"{where}: goes nowhere (a reference that jupyterlab-myst could not resolve)")
            continue
        if link["target"] is False:
            problems.append(f"{where}: no element with that id in the notebook")
            continue
        if link["target"] is None and path:
            m = re.match(r"^/(?:files|lab/tree|tree|edit|notebooks)/(.*)$", path)
            if not m:
                problems.append(f"{where}: not a file of the server")
                continue
            status = chapter.lab.request("GET", f"api/contents/{urllib.parse.quote(m.group(1))}?content=0")
            if status != 200:
                problems.append(f"{where}: {m.group(1)!r} does not exist (HTTP {status} from the contents API)")
    assert not problems, f"{chapter.name}: broken links in the rendered notebook:{fmt(problems)}"


def test_not_modified_by_opening(chapter):
    """Opening and rendering the notebook, and connecting its kernel (Lab then updates ``language_info``), does not
    change it: the model is clean, the tab shows no unsaved-changes mark, and the file on disk is byte for byte the
    one copied from book/. A dirty model is compared with the file to say what changed."""
    chapter.require_open()
    try:
        wait_kernel_idle(chapter)
    except TimeoutError as exc:
        pytest.fail(f"{chapter.name}: {exc}", pytrace=False)
    time.sleep(0.5)
    dirty = chapter.page.evaluate(DIRTY_JS)
    problems = []
    if dirty["model"]:
        changes = model_changes(chapter.page.evaluate(MODEL_JSON_JS), json.loads(chapter.disk_path.read_text("utf-8")))
        problems.append(f"the notebook model is dirty after opening; it differs from the file in: {changes or '?'}")
    if dirty["tab"] or dirty["panel"]:
        problems.append(f"the tab shows the unsaved-changes mark (jp-mod-dirty): {dirty}")
    if sha256(chapter.disk_path) != chapter.disk_hash:
        problems.append(f"{chapter.disk_path} changed on disk")
    if problems:
        problems.append(f"screenshot {chapter.screenshot('dirty')}")
    assert not problems, f"{chapter.name}: modified by opening it:{fmt(problems)}"


def model_changes(model: dict, disk: dict) -> list[str]:
    """Where the notebook model differs from the file: metadata keys, and per cell source/metadata/outputs."""
    changes = [f"metadata.{k}" for k in sorted(set(model.get("metadata", {})) | set(disk.get("metadata", {})))
               if model.get("metadata", {}).get(k) != disk.get("metadata", {}).get(k)]
    mcells, dcells = model.get("cells", []), disk.get("cells", [])
    if len(mcells) != len(dcells):
        changes.append(f"number of cells ({len(mcells)} vs {len(dcells)})")
    for i, (m, d) in enumerate(zip(mcells, dcells, strict=False)):
        for key in ("cell_type", "source", "metadata", "outputs", "execution_count", "attachments"):
            if key in m or key in d:
                mv, dv = m.get(key), d.get(key)
                if key == "source":
                    mv, dv = cell_source(m), cell_source(d)
                if mv != dv and not (key == "attachments" and not mv and not dv):
                    changes.append(f"cell {i} {key}")
    return changes


# ---------------------------------------------------------------------------------------------------------------------
# Running: Run All, then the explorer


def test_run_all(chapter):
    """Run > Run All Cells executes every code cell on the venv's python (the kernel's ``sys.prefix`` is the venv,
    gdlab is the repository's) with no error output: no output of type ``error`` and no stderr text with a
    Traceback. Other stderr output (warnings) is reported, not failed."""
    chapter.require_open()
    result = run_all(chapter)
    if result["error"]:
        pytest.fail(f"{chapter.name}: Run All did not complete: {result['error']}", pytrace=False)
    problems, warnings = [], []
    prefix, executable, gdlab_file = ([*result["kernel_python"].splitlines(), "", "", ""])[:3]
    if Path(prefix).resolve() != VENV.resolve():
        problems.append(f"the kernel runs on {executable} (sys.prefix {prefix}), not on the venv {VENV}")
    if not Path(gdlab_file).resolve().is_relative_to(VENV.parent.resolve()):
        problems.append(f"the kernel imports gdlab from {gdlab_file}, not from the repository")
    if result["command"] != {"ok": True}:
        problems.append(f"the command notebook:run-all-cells ended with {result['command']} (false: a cell failed)")
    for cell in result["cells"]:
        if cell["count"] is None:
            problems.append(f"cell {cell['i']}: not executed (no execution count): {_first_line(chapter, cell['i'])!r}")
        for out in cell["outputs"]:
            if out.get("output_type") == "error":
                tb = clip("\n".join(out.get("traceback", [])[-3:]), 400)
                problems.append(f"cell {cell['i']}: error output {output_text(out)} | {tb}")
            elif out.get("output_type") == "stream" and out.get("name") == "stderr":
                text = output_text(out)
                (problems if "Traceback" in text else warnings).append(f"cell {cell['i']}: stderr: {clip(text)}")
    for el in chapter.page.evaluate(STDERR_DOM_JS):  # also catches widget Output areas, outside the cell model
        if "Traceback" in el["text"]:
            problems.append(f"cell {el['cell']}: stderr output with a Traceback: {clip(el['text'])}")
    code_cells = set(chapter.source.indices("code"))
    for m in chapter.page.evaluate(ERROR_MARKERS_JS):  # math in outputs is typeset by Lab's MathJax
        if m["cell"] in code_cells:
            problems.append(f"cell {m['cell']}: {m['kind']} in an output: {m['text']!r} {m['title']!r}")
    chapter.report()["warnings"] = list(dict.fromkeys(warnings))
    print(f"\n{chapter.name}: Run All in {result['seconds']:.1f} s, {len(result['cells'])} code cells, "
          f"kernel {executable}; stderr warnings: {len(warnings)}{fmt(warnings) if warnings else ''}")
    if problems:
        problems.append(f"screenshot {chapter.screenshot('run-all-errors')}")
    assert not problems, f"{chapter.name}: Run All:{fmt(problems)}"


def test_explorer_slider(chapter):
    """After Run All, the explorer cell (``live(explorer)``) shows sliders and a figure; moving the first slider one
    step with the keyboard (ArrowRight, or ArrowLeft at the right end) redraws the figure: the PNG changes."""
    chapter.require_open()
    index = chapter.source.explorer_cell()
    assert index is not None, f"{chapter.name}: no code cell with live(explorer)"
    result = run_all(chapter)
    if result["error"]:
        pytest.fail(f"{chapter.name}: Run All did not complete, no explorer to move: {result['error']}", pytrace=False)
    cell = chapter.cell(index)
    cell.scroll_into_view_if_needed()
    sliders = cell.locator(".widget-slider")
    images = cell.locator("img.widget-image")  # gdlab.widgets.live: an ipywidgets.Image replaced on every change
    try:
        sliders.first.wait_for(state="visible", timeout=FIGURE_TIMEOUT_S * 1000)
        images.first.wait_for(state="visible", timeout=FIGURE_TIMEOUT_S * 1000)
    except Exception:
        text = clip(cell.locator(".jp-Cell-outputWrapper").inner_text(timeout=5_000), 400)
        pytest.fail(f"{chapter.name}: cell {index}: no slider and figure after Run All; its output: {text!r} "
                    f"(screenshot {chapter.screenshot('explorer', index)})", pytrace=False)
    slider = sliders.first
    label = clip(slider.inner_text(), 80)
    before_src = images.first.get_attribute("src")
    before_value = _slider_readout(slider)
    chapter.screenshot("explorer-before", index)
    handle = slider.locator(".noUi-handle").first
    handle.focus()
    start = time.monotonic()
    handle.press("ArrowRight")
    if _slider_readout(slider) == before_value:  # at the right end: go left instead
        handle.press("ArrowLeft")
    after_value = _slider_readout(slider)
    assert after_value != before_value, (f"{chapter.name}: the slider {label!r} did not move with the arrow keys "
                                         f"(readout {before_value!r})")
    deadline = time.monotonic() + FIGURE_TIMEOUT_S
    new_src = before_src
    while time.monotonic() < deadline:
        if images.count():
            new_src = images.first.get_attribute("src")
            if new_src and new_src != before_src:
                break
        time.sleep(0.1)
    seconds = time.monotonic() - start
    shot = chapter.screenshot("explorer-after", index)
    output = clip(cell.locator(".jp-Cell-outputWrapper").first.inner_text(), 300)
    assert new_src and new_src != before_src, (
        f"{chapter.name}: slider {label!r} moved from {before_value} to {after_value}, but the explorer's figure did "
        f"not change within {FIGURE_TIMEOUT_S} s; output area: {output!r} (screenshot {shot})")
    assert "Traceback" not in output and "Cannot draw" not in output, f"{chapter.name}: explorer output: {output!r}"
    chapter.report()["slider_s"] = round(seconds, 2)
    print(f"\n{chapter.name}: slider {label!r} {before_value} -> {after_value}: new figure after {seconds:.2f} s")


def _slider_readout(slider) -> str:
    readout = slider.locator(".widget-readout")
    return readout.first.inner_text().strip() if readout.count() else slider.inner_text().strip()


# ---------------------------------------------------------------------------------------------------------------------
# The detectors themselves: a notebook with one of each known problem


CANARY_CELLS = [
    ("markdown", "---\nmath:\n  '\\R': '\\mathbb{R}'\n---"),
    ("markdown", "# Canary\n\nBad inline math $\\frac{1}{$, an undefined macro $\\undefinedmacro x$, a good "
                 "macro $\\R$.\n\n$$\n\\begin{nosuchenv} x \\end{nosuchenv}\n$$ (eq-bad)\n"),
    ("markdown", ":::{nosuchdirective} arg\nbody\n:::\n\nUnknown role {nosuchrole}`foo`. Unresolved "
                 "{eq}`eq-missing`, {prf:ref}`thm-missing`, {numref}`ex-missing`, a citation {cite}`nobody2020`."),
    ("markdown", ":::{prf:theorem} T\n:label: thm-a\nStatement.\n:::\n\n:::{prf:proof}\nProof text.\n:::\n\n"
                 ":::{exercise} E\n:label: ex-a\nDo it.\n:::\n\n:::{solution} ex-a\n:class: dropdown\nAnswer.\n:::\n"),
    ("markdown", "::::{solution-start} ex-a\n:class: dropdown\n::::\n\nGated answer."),
    ("code", "print('the gated solution code')"),
    ("markdown", "::::{solution-end}\n::::\n\nAfter the gate."),
]


def write_canary(root: Path, name: str = "zz_canary.ipynb") -> str:
    """Write the canary notebook (:data:`CANARY_CELLS`) into the server's root; return its name."""
    cells = []
    for k, (cell_type, text) in enumerate(CANARY_CELLS):
        cell = {"cell_type": cell_type, "id": f"canary-{k}", "metadata": {}, "source": text}
        if cell_type == "code":
            cell.update(outputs=[], execution_count=None)
        cells.append(cell)
    kernelspec = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": kernelspec}, "cells": cells}
    (root / name).write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return name


def test_detectors_catch_known_problems(lab, lab_browser):
    """The checks above are not vacuous: on a notebook with one of each problem they find every one, and the
    jupyterlab-myst facts they rely on hold (KaTeX renders the math; proofs are .myst-proof, exercises and
    solutions .myst-exercise, a dropdown solution a closed <details>)."""
    name = write_canary(lab.root)
    canary = open_chapter(lab_browser, lab, name, lab.root.parent / "artifacts")
    try:
        canary.require_open()
        page = canary.page
        markers = page.evaluate(ERROR_MARKERS_JS)
        found = {(m["cell"], m["kind"].split(" (")[0], m["title"] or m["text"]) for m in markers}
        print("\ncanary markers:" + fmt(f"cell {c}: {k}: {t[:70]!r}" for c, k, t in sorted(found)))
        expect = [
            (1, "jupyterlab-myst warning", "Unexpected end of input"),  # inline math error
            (1, "jupyterlab-myst warning", "Undefined control sequence: \\undefinedmacro"),
            (1, "jupyterlab-myst error", "No such environment: nosuchenv"),  # display math error
            (2, "unknown directive", "nosuchdirective - Unknown Directive"),
            (2, "jupyterlab-myst warning", "Cross Reference Not Found"),
            (2, "jupyterlab-myst warning", "Citation Not Found"),
        ]
        missing = [e for e in expect if not any(c == e[0] and k == e[1] and e[2] in t for c, k, t in found)]
        refs = [m for m in markers if m["title"] == "Cross Reference Not Found"]
        problems = [f"not detected: {e}" for e in missing]
        if len(refs) != 3:
            problems.append(f"{len(refs)} unresolved references detected, 3 expected ({{eq}}, {{prf:ref}}, {{numref}})")
        roles = NotebookSource.load(lab.root / name).roles()
        if set(roles) - KNOWN_ROLES != {"nosuchrole"}:
            problems.append(f"unknown roles found: {sorted(set(roles) - KNOWN_ROLES)}, expected ['nosuchrole']")
        engine = page.evaluate("""() => ({katex: document.querySelectorAll('.jp-Notebook .myst .katex').length,
                                          mathjax: document.querySelectorAll('.jp-Notebook .myst mjx-container').length})""")
        if not engine["katex"] or engine["mathjax"]:
            problems.append(f"math is not (only) typeset by KaTeX: {engine}")
        blocks = [(b["cell"], _block_family(b), b["tag"], b["open"], b["title"]) for b in page.evaluate(BLOCKS_JS)]
        print("canary blocks:" + fmt(str(b) for b in blocks))
        for want in [(3, "proof", "aside", None, "Theorem 1 (T)"), (3, "proof", "aside", None, "Proof"),
                     (3, "exercise", "aside", None, "Exercise 1 (E)"), (3, "solution", "details", False, "Solution to")]:
            if not any(b[:4] == want[:4] and b[4].startswith(want[4]) for b in blocks):
                problems.append(f"no rendered block {want}")
        if 5 not in [int(m.group(1)) for m in [re.match(r"cell (\d+)", p) for p in _gated_visible(canary)] if m]:
            problems.append("the gated solution's code cell was not detected as shown")
        assert not problems, f"the detectors missed known problems:{fmt(problems)}"
    finally:
        canary.context.close()
        lab.shutdown_kernels()
        REPORT.pop(canary.stem, None)
        (lab.root / name).unlink(missing_ok=True)


def _gated_visible(chapter: LabChapter) -> list[str]:
    """The cells between gates that are shown (as test_solutions_collapsed reports them)."""
    return [f"cell {i}" for start, end in chapter.source.gated_solutions() for i in range(start + 1, end)
            if _visible_parts(chapter, i)]
