"""The book's JupyterLite site, offline, in headless Chromium: every chapter runs to its end and its explorer redraws.

One run of ``lite_offline.py`` (next to this file) drives everything, inside a new network namespace that has only
the loopback interface (``unshare -n`` as root, else ``unshare -r -n`` in a user namespace): the site is served on
127.0.0.1 and nothing else can be reached, so a request to any other host fails, and every request is recorded
anyway. Per chapter: the "Python is starting" notice with the site's versions and download size, then gone; the
kernel ready; Run All to the last cell without an error output; a drag of the explorer's first slider changes its
figure. Kernel-ready and run-all times are printed at the end of the run and written to ``lite-browser.json`` next
to the HTML folder (``_build/lite-browser.json``).

Needs the book built (``_build/html/lite``, or ``GDLAB_HTML_DIR``), Debian's Chromium and a network namespace; without
them the tests skip and say why, and with ``GDLAB_REQUIRE_BROWSER=1`` (CI) that is a failure. About 3-4 minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from gdlab_browser import HTML_DIR, REPO, TERMINAL_SUMMARY, browser_missing, skip_or_fail

sys.path.insert(0, str(REPO / "scripts"))
import store_outputs as STORE  # noqa: E402  (is_checked: which cells nbval compares)

pytestmark = pytest.mark.browser

HELPER = Path(__file__).with_name("lite_offline.py")
LITE = HTML_DIR / "lite"
CHAPTERS = sorted(REPO.glob("book/*.ipynb"))
RUN_TIMEOUT_S = 1500  # the helper stops starting chapters after 1200 s


def namespace_prefix() -> list[str] | None:
    """A command prefix that runs a program in a new network namespace on this machine, or None."""
    if not shutil.which("unshare"):
        return None
    for prefix in (["unshare", "-n"], ["unshare", "-r", "-n"]):
        if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return prefix
    return None


def run_helper(prefix: list[str], out: Path) -> subprocess.CompletedProcess:
    """Run lite_offline.py on every chapter in its own process group (killed whole on a timeout)."""
    cmd = [*prefix, sys.executable, str(HELPER), str(HTML_DIR), str(out), *(p.stem for p in CHAPTERS)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        stderr += f"\n(killed after {RUN_TIMEOUT_S} s)"
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def spread(values: list[float]) -> str:
    """``median (min-max)`` of ``values``, or ``-``."""
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} s ({min(values):.1f}-{max(values):.1f})"


def checked_outputs(nb_path: Path) -> dict[int, str]:
    """Code-cell index -> stored text output (stdout, text/plain) of the cells nbval compares (``is_checked``)."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    checked = {}
    for i, cell in enumerate(code):
        if STORE.is_checked(cell):
            texts = ["".join(o["text"]) if o["output_type"] == "stream" and o["name"] == "stdout"
                     else "".join(o.get("data", {}).get("text/plain", "")) for o in cell["outputs"]]
            if any(texts):
                checked[i] = "".join(texts)
    return checked


def differences(stored: dict[int, str], outputs: list[str]) -> list[tuple[int, str, str]]:
    """``(code cell, book line, live line)`` for every checked cell whose live output is not its stored one (first
    differing line; lines compared without surrounding blanks)."""
    found = []
    for i, text in stored.items():
        live = outputs[i] if i < len(outputs) else ""
        book_lines, live_lines = text.strip().splitlines(), live.strip().splitlines()
        pairs = [(a, b) for a, b in zip(book_lines, live_lines, strict=False) if a.strip() != b.strip()]
        if pairs or len(book_lines) != len(live_lines):
            book, browser = pairs[0] if pairs else (text.strip()[-100:], live.strip()[-100:])
            found.append((i, book.strip(), browser.strip()))
    return found


def chapter_differences(c: dict) -> tuple[int, list[str]]:
    """How many of a chapter's checked outputs the browser printed exactly as stored, and the others, as text."""
    site_copy = LITE / "files" / "book" / f"{c['chapter']}.ipynb"   # the notebook that ran, with its stored outputs
    stored = checked_outputs(site_copy) if site_copy.is_file() else {}
    other = [f"{c['chapter']} code cell {i}: book {book!r}\n    live {live!r}"
             for i, book, live in differences(stored, c.get("outputs") or [])]
    return len(stored) - len(other), other


def compare_outputs(report: dict) -> tuple[int, list[str]]:
    """How many checked outputs the browser printed exactly as stored, and where it printed something else."""
    same, other = 0, []
    for c in report["chapters"]:
        n, diff = chapter_differences(c)
        same, other = same + n, other + diff
    return same, other


def summary_lines(report: dict) -> list[str]:
    """The timings of a run, as lines of text."""
    lines = [f"{'chapter':<22} {'kernel ready':>12} {'run all':>8} {'slider->figure':>15} {'downloaded':>11}"]
    for c in report["chapters"]:
        cells = [c.get("kernel_ready_s"), c.get("run_all_s"), c.get("slider_to_figure_s")]
        shown = [f"{v:.{d}f} s" if isinstance(v, int | float) else "-" for v, d in zip(cells, (1, 1, 2), strict=True)]
        mb = f"{c.get('downloaded_bytes', 0) / 1e6:.1f} MB"
        lines.append(f"{c['chapter']:<22} {shown[0]:>12} {shown[1]:>8} {shown[2]:>15} {mb:>11}"
                     + (f"  ({c['why']})" if c.get("why") else ""))
    ready = [c["kernel_ready_s"] for c in report["chapters"] if c.get("kernel_ready_s")]
    run = [c["run_all_s"] for c in report["chapters"] if c.get("run_all_s")]
    lines.append(f"median (min-max): kernel ready {spread(ready)}, run all {spread(run)}; Chromium "
                 f"{report.get('chromium')}, {len(report['requests'])} requests, {len(report['external'])} external")
    math = [f"{c['chapter']}: {e}" for c in report["chapters"] for e in c.get("math_errors") or []]
    lines.append(f"math that did not render in the markdown cells: {len(math)}" + "".join(f"\n  {m}" for m in math))
    same, other = compare_outputs(report)
    lines.append(f"checked outputs (tagged nbval-check-output) printed as in the book: {same} of {same + len(other)}"
                 + ("; elsewhere (older numpy/scipy in the browser):" if other else ""))
    return lines + [f"  {line}" for line in other]


@pytest.fixture(scope="module")
def lite_run() -> dict:
    """The report of one offline run of every chapter (see lite_offline.py)."""
    if not (LITE / "lab" / "index.html").is_file():
        skip_or_fail(f"no JupyterLite site at {LITE} (build the book first, or point GDLAB_HTML_DIR at a build)")
    problem = browser_missing()
    if problem:
        skip_or_fail(problem)
    prefix = namespace_prefix()
    if prefix is None:
        skip_or_fail("cannot create a network namespace (`unshare -n` needs root, `unshare -r -n` user namespaces)")
    out = HTML_DIR.parent / "lite-browser.json"
    out.unlink(missing_ok=True)
    done = run_helper(prefix, out)
    if not out.is_file():
        pytest.fail(f"lite_offline.py wrote no report (exit {done.returncode}):\n{done.stdout[-3000:]}"
                    f"\n{done.stderr[-3000:]}", pytrace=False)
    report = json.loads(out.read_text())
    TERMINAL_SUMMARY.append((f"JupyterLite offline, every chapter in Chromium ({out})", summary_lines(report)))
    report["stderr_of_run"] = done.stderr[-3000:]
    return report


def chapter_result(report: dict, nb_path: Path) -> dict:
    found = [c for c in report["chapters"] if c["chapter"] == nb_path.stem]
    assert found, f"{nb_path.stem} was not run:\n{report.get('why', '')}{report['stderr_of_run']}"
    return found[0]


def expected_notice() -> list[str]:
    """What the notice must say, read from the site: the versions in its Pyodide lock, the download in MB."""
    pyodide = LITE / "static" / "pyodide"
    lock = json.loads((pyodide / "pyodide-lock.json").read_text())
    size = sum(p.stat().st_size for p in pyodide.iterdir() if p.is_file())
    versions = [f"Python {lock['info']['python']}", f"Pyodide {lock['info']['version']}"]
    versions += [f"{name} {lock['packages'][name]['version']}" for name in ("numpy", "scipy", "matplotlib")]
    return ["Python is starting in your browser", f"about {round(size / 1e6)} MB", *versions]


def has_explorer(nb_path: Path) -> bool:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    return any(c["cell_type"] == "code" and "live(explorer)" in "".join(c["source"]) for c in nb["cells"])


def test_the_run_was_offline(lite_run):
    """The browser ran with only the loopback interface, and asked no host but 127.0.0.1 for anything."""
    assert lite_run["interfaces"] == ["lo"], lite_run.get("why")
    assert lite_run["requests"], "no request recorded at all"
    assert not lite_run["external"], "requests to other hosts:\n  " + "\n  ".join(sorted(set(lite_run["external"])))


def test_no_local_request_fails(lite_run):
    """Every file the site asks for exists (no 404 from the local server). Not counted: ``/favicon.ico`` at the
    server's root, which Chromium asks for by itself (the book has none there; the site sets its own icon)."""
    bad = sorted({r for r in lite_run["bad_responses"] if not r.endswith(f"{urlsplit(r.split()[-1]).netloc}/favicon.ico")})
    assert not bad, "\n  ".join(["failed requests:", *bad])


def test_without_webassembly_the_page_says_so(lite_run):
    """A browser without WebAssembly is told that it cannot run Python here and to download the notebook."""
    text = lite_run.get("no_webassembly_notice") or ""
    assert "cannot run Python here" in text and "Download the notebook" in text, text


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_offline(lite_run, nb_path):
    """The notice while Python starts, then the kernel; Run All reaches the last cell with no error output."""
    c = chapter_result(lite_run, nb_path)
    assert c.get("kernel_ready_s"), c.get("why")
    notice = c.get("notice") or ""
    missing = [text for text in expected_notice() if text not in notice]
    assert not missing, f"the notice {notice!r} does not say {missing}"
    assert c.get("notice_gone"), "the notice stayed after the kernel was ready"
    assert c.get("run_all_s"), c.get("why")
    assert c["executed"] == c["code_cells"], f"{c['executed']} of {c['code_cells']} code cells ran: {c['prompts']}"
    errors = [s for s in c["stderr"] if "Traceback" in s or "Error" in s]
    assert not errors, "error outputs:\n" + "\n---\n".join(errors)
    assert not c["page_errors"], c["page_errors"]


@pytest.mark.parametrize("nb_path", [p for p in CHAPTERS if has_explorer(p)], ids=lambda p: p.stem)
def test_explorer_redraws(lite_run, nb_path):
    """Dragging the explorer's first slider changes its figure (the PNG in the explorer's output)."""
    c = chapter_result(lite_run, nb_path)
    assert c.get("figure_changed"), c.get("why")


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.stem)
def test_checked_outputs_as_in_the_book(lite_run, nb_path):
    """The browser's older libraries (Pyodide 0.27.7: numpy 2.0.2, scipy 1.14.1, matplotlib 3.8.4, WebAssembly) print
    every checked output exactly as the book stores it: no conclusion depends on the reader's library versions."""
    c = chapter_result(lite_run, nb_path)
    same, other = chapter_differences(c)
    assert same > 0 and not other, "checked outputs that differ in the browser:\n" + "\n".join(other)


def test_power_a_changed_digit_is_a_difference():
    """Power test (no browser needed): one changed digit, a missing line, a missing output are each reported."""
    stored = {2: "rate 0.50\ncost < 1e-12 (round-off)\n", 5: "done\n"}
    assert differences(stored, ["", "", " rate 0.50\ncost < 1e-12 (round-off)", "", "", "done"]) == []
    assert differences(stored, ["", "", "rate 0.50\ncost 3e-16", "", "", "done"]) == [
        (2, "cost < 1e-12 (round-off)", "cost 3e-16")]
    assert [d[0] for d in differences(stored, ["", "", "rate 0.50", "", "", "done"])] == [2]
    assert [d[0] for d in differences(stored, ["", "", "rate 0.50\ncost < 1e-12 (round-off)"])] == [5]
