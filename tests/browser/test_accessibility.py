"""Accessibility of the built book: axe-core on every page in headless Chromium, light and dark, and the figures' alt text.

axe-core (:data:`AXE`, pinned by version and the npm registry's sha512 integrity) is fetched once from the npm registry
into ``.cache/npm/`` with the book's own fetch code (``book/_ext/gdlab_fetch.py``: checked on every use), and its
``axe.min.js`` is written to ``.cache/axe-core/``. The test injects it into every page of the built book, served from
127.0.0.1 (the browser itself never leaves the local server), at 1366 px, in the theme's light and dark colour modes
(the page follows the system's ``prefers-color-scheme``, which Playwright emulates; the test waits for the theme's
``data-theme`` to follow), and runs ``axe.run()``: no violation of impact serious or critical may remain. The moderate
and minor ones are listed in a summary at the end of the run.

Every ``<img>`` of a chapter page must have alt text that says something: not empty, and not a file name or an
address (myst-nb's default for a figure without alt text is its hashed file name, ``../_images/676b...png``). The
chapters' figures take theirs from their code cell's metadata (``mystnb.image.alt``, with a caption in
``mystnb.figure``); the page explorers from ``gdlab.plots`` (``View.alt``).

Power: the same checks run on a small local page with an image without alt, an image whose alt is its file name and
grey text on white; they must report ``image-alt``, ``color-contrast`` and the file-name alt.

Run after building the book:  python -m pytest tests/browser/test_accessibility.py
"""

from __future__ import annotations

import re
import sys
import tarfile
from pathlib import Path

import pytest
from gdlab_browser import REPO, TERMINAL_SUMMARY, open_page, served_site, skip_or_fail

sys.path.insert(0, str(REPO / "book" / "_ext"))

pytestmark = pytest.mark.browser

#: axe-core from the npm registry: (name, version, sha512 integrity of the registry tarball).
AXE = ("axe-core", "4.14.1",
       "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==")
#: The impacts that fail the test; the others are reported.
BLOCKING = ("serious", "critical")
WIDTH, HEIGHT = 1366, 900
MODES = ("light", "dark")
THEME_TIMEOUT_MS = 10_000

#: Alt text that is a file name or an address: ends in an image suffix, or is one word with a slash or a long hash.
_FILE_LIKE = re.compile(r"(\.(png|jpe?g|gif|svg|webp|avif)\s*$)|(^\S*/\S*$)|(^\S*[0-9a-f]{16,}\S*$)", re.IGNORECASE)

#: Read every image of the page: its alt attribute (null when absent), address and whether it is hidden from
#: assistive technology (aria-hidden, or role presentation/none with an empty alt).
IMAGES_JS = """
() => Array.from(document.querySelectorAll('img')).map(img => ({
  alt: img.getAttribute('alt'), src: img.getAttribute('src') || '',
  hidden: img.closest('[aria-hidden="true"]') !== null
          || (['presentation', 'none'].includes(img.getAttribute('role')) && img.getAttribute('alt') === ''),
}))
"""

RUN_AXE_JS = """
async () => {
  const results = await window.axe.run(document, {resultTypes: ['violations']});
  return results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: (n.failureSummary || '').split('\\n').slice(0, 3)
                                                                    .join(' ')})),
  }));
}
"""

_SUMMARY: dict[tuple[str, str], set[str]] = {}  # (rule id, impact) -> "page (mode)" where axe reported it


# --------------------------------------------------------------------------------------------------------------------
# Pure helpers


def alt_problem(alt: str | None) -> str | None:
    """Why ``alt`` does not describe an image (``None`` if it may): missing, empty, or a file name / address."""
    if alt is None:
        return "no alt attribute"
    text = alt.strip()
    if not text:
        return "empty alt text"
    if _FILE_LIKE.search(text):
        return f"alt text is a file name: {text[:80]!r}"
    return None


def image_problems(images: list[dict]) -> list[str]:
    """One line per image (from :data:`IMAGES_JS`) whose alt text fails :func:`alt_problem`; hidden images pass."""
    out = []
    for img in images:
        if img["hidden"]:
            continue
        problem = alt_problem(img["alt"])
        if problem:
            out.append(f"{img['src'][:100]}: {problem}")
    return out


def blocking(violations: list[dict]) -> list[dict]:
    """The violations whose impact fails the test (:data:`BLOCKING`)."""
    return [v for v in violations if v["impact"] in BLOCKING]


def describe(violations: list[dict], limit: int = 6) -> str:
    """The violations, one paragraph each: rule, impact, help and the first ``limit`` elements with what is wrong."""
    lines = []
    for v in violations:
        lines.append(f"  [{v['impact']}] {v['id']}: {v['help']} ({len(v['nodes'])} elements)")
        lines += [f"      {n['target']}  --  {n['summary']}" for n in v["nodes"][:limit]]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------------
# axe-core and the browser


def axe_script(root: Path = REPO) -> Path:
    """``axe.min.js`` of :data:`AXE`, extracted from the registry tarball (fetched once into ``root/.cache/npm``,
    checked against its integrity on every call) to ``root/.cache/axe-core/<version>/axe.min.js``."""
    from gdlab_fetch import CACHE, fetch_npm

    name, version, integrity = AXE
    tarball = fetch_npm(name, version, integrity, root / CACHE / "npm")
    out = root / CACHE / name / version / "axe.min.js"
    with tarfile.open(tarball) as tar, tar.extractfile("package/axe.min.js") as src:
        data = src.read()
    if not out.is_file() or out.read_bytes() != data:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    return out


@pytest.fixture(scope="session")
def axe_path() -> Path:
    try:
        return axe_script()
    except Exception as exc:  # no registry (offline machine) or a bad pin
        skip_or_fail(f"cannot get {AXE[0]}@{AXE[1]} from the npm registry: {exc}")


#: Resolves when the page's finite CSS transitions and animations have ended (a colour change fades in; axe must
#: not measure contrast halfway), or after ``ms`` milliseconds.
SETTLE_JS = """
(ms) => Promise.race([
  new Promise((resolve) => setTimeout(resolve, ms)),
  Promise.all(document.getAnimations()
    .filter((a) => a.effect && a.effect.getComputedTiming().endTime !== Infinity)
    .map((a) => a.finished.catch(() => null))),
])
"""


def set_mode(page, mode: str) -> None:
    """Emulate the system colour scheme ``mode``, wait until the theme shows it (``<html data-theme=...>``; a page
    without the theme's attribute is left as it is) and until the colours have stopped changing."""
    page.emulate_media(color_scheme=mode)
    page.wait_for_function(
        "(mode) => !document.documentElement.dataset.theme || document.documentElement.dataset.theme === mode",
        arg=mode, timeout=THEME_TIMEOUT_MS)
    page.evaluate(SETTLE_JS, THEME_TIMEOUT_MS)


def run_axe(page, axe: Path) -> list[dict]:
    """Inject axe-core into ``page`` (once) and return its violations."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(axe))
    return page.evaluate(RUN_AXE_JS)


def check_page(page, axe: Path, label: str, summary: dict, modes=MODES) -> list[str]:
    """Run axe in each colour mode; record the non-blocking violations in ``summary`` ((rule, impact) -> pages)
    and return a failure message per mode with blocking ones."""
    failures = []
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    for mode in modes:
        set_mode(page, mode)
        violations = run_axe(page, axe)
        for v in violations:
            if v["impact"] not in BLOCKING:
                summary.setdefault((v["id"], v["impact"] or "?"), set()).add(f"{label} ({mode})")
        bad = blocking(violations)
        if bad:
            failures.append(f"{label}, {mode} mode, {WIDTH} px:\n{describe(bad)}")
    return failures


def _summary_lines() -> list[str]:
    lines = []
    for (rule, impact), where in sorted(_SUMMARY.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        pages = sorted(where)
        lines.append(f"[{impact}] {rule}: {len(pages)} page-modes, e.g. {', '.join(pages[:3])}")
    return lines or ["(none)"]


@pytest.fixture(scope="module", autouse=True)
def _report_summary():
    yield
    if _SUMMARY:
        TERMINAL_SUMMARY.append(("axe-core: moderate and minor violations (not failing)", _summary_lines()))


# --------------------------------------------------------------------------------------------------------------------
# The book


#: The images of each page (from :data:`IMAGES_JS`), read while test_axe has the page open.
_IMAGES: dict[str, list[dict]] = {}


def open_for_check(browser, site, rel):
    """The page, opened by gdlab_browser.open_page; a page that loaded but whose network never went quiet (the
    explorers prefetch their states; test_pages.py reports a slow page) is checked anyway."""
    visit = open_page(browser, site, rel)
    if visit.load_error and not visit.load_error.startswith("TimeoutError: Page.wait_for_load_state"):
        visit.close()
        pytest.fail(f"{rel} did not load: {visit.load_error}", pytrace=False)
    return visit


def test_axe(page_path, site, browser, axe_path):
    """axe-core reports no serious or critical violation on the page, in light and dark mode, at 1366 px."""
    visit = open_for_check(browser, site, page_path)
    try:
        _IMAGES[page_path] = visit.page.evaluate(IMAGES_JS)
        failures = check_page(visit.page, axe_path, page_path, _SUMMARY)
    finally:
        visit.close()
    assert not failures, "axe-core violations of impact " + "/".join(BLOCKING) + ":\n" + "\n".join(failures)


@pytest.mark.chapters_only
def test_images_have_alt_text(page_path, site, browser):
    """Every image of a chapter page has alt text that is not empty and not a file name."""
    if page_path not in _IMAGES:
        visit = open_for_check(browser, site, page_path)
        try:
            _IMAGES[page_path] = visit.page.evaluate(IMAGES_JS)
        finally:
            visit.close()
    images = _IMAGES[page_path]
    assert any(not img["hidden"] for img in images), f"{page_path} shows no image at all: nothing was checked"
    problems = image_problems(images)
    assert not problems, f"{page_path}: images without a description:\n  " + "\n  ".join(problems)


# --------------------------------------------------------------------------------------------------------------------
# Power: the checks fail on a page that breaks them

BAD_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>A page with accessibility faults</title></head>
<body><main>
<h1>Faults</h1>
<p style="color: #c8c8c8; background: #ffffff">Grey text on white, far below the contrast ratio 4.5:1.</p>
<img src="a.png">
<img src="b.png" alt="../_images/676b3c0f9e8d7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f.png">
<img src="c.png" alt="A figure described in words.">
</main></body></html>
"""
# A 1x1 transparent PNG, so that the images load.
PIXEL = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c63"
                      "60606060000000050001a5f645400000000049454e44ae426082")


@pytest.fixture(scope="module")
def bad_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("a11y-bad")
    (root / "index.html").write_text(BAD_PAGE, encoding="utf-8")
    for name in ("a.png", "b.png", "c.png"):
        (root / name).write_bytes(PIXEL)
    with served_site(root) as site:
        yield site


def test_power_axe_finds_faults(chromium, bad_site, axe_path):
    """On the faulty page axe reports a missing alt and low contrast as serious or critical, so check_page fails."""
    visit = open_page(chromium, bad_site, "index.html")
    try:
        assert not visit.load_error, visit.load_error
        failures = check_page(visit.page, axe_path, "power page", {}, modes=("light",))
        found = {v["id"] for v in blocking(run_axe(visit.page, axe_path))}
    finally:
        visit.close()
    assert {"image-alt", "color-contrast"} <= found, f"axe missed a fault of the power page; found {sorted(found)}"
    assert failures, "check_page passed a page with serious violations"


def test_power_alt_check_finds_faults(chromium, bad_site):
    """The alt check flags the image without alt and the one whose alt is a file name, and only those."""
    visit = open_page(chromium, bad_site, "index.html")
    try:
        images = visit.page.evaluate(IMAGES_JS)
    finally:
        visit.close()
    problems = image_problems(images)
    assert len(problems) == 2, problems
    assert "no alt attribute" in problems[0] and "file name" in problems[1], problems


@pytest.mark.parametrize(("alt", "ok"), [
    (None, False), ("", False), ("   ", False),
    ("../_images/676b3c0f9e8d7a6b5c4d3e2f1a0b9c8d.png", False), ("figure.PNG", False), ("_static/logo.svg", False),
    ("676b3c0f9e8d7a6b5c4d3e2f1a0b9c8d", False),
    ("Binder logo", True), ("Log-log plot of the error against the step size eta, slope 1/2.", True),
    ("Two panels against t = k eta: the loss ratio L(t)/L(0) on a log scale.", True),
])
def test_alt_problem(alt, ok):
    """alt_problem accepts words and rejects missing, empty, file-name and hash alt texts."""
    assert (alt_problem(alt) is None) == ok, alt_problem(alt)


def test_fix_body():
    """gdlab_a11y's body fixes: bibliography entries become list items, myst-nb's toggles lose their hiding label."""
    from gdlab_a11y import fix_body

    body = ('<div role="list" class="citation-list"><div class="citation" role="doc-biblioentry">A</div></div>'
            '<details><summary aria-label="Toggle hidden content"><p>Show code cell source</p></summary></details>')
    fixed = fix_body(body)
    assert 'role="listitem"' in fixed and "doc-biblioentry" not in fixed
    assert "<summary><p>Show code cell source</p></summary>" in fixed
