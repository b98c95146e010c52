"""The plain chapter notebooks (each page's .ipynb download) read correctly with no MyST extension (issue 14).

Each download in the built book (``_build/html/_sources/book/NN_name.ipynb``, written by book/_ext/gdlab_plain.py)
is converted by ``jupyter nbconvert --to html`` exactly as a user would (no extension, nbconvert's default template)
and opened in headless Chromium. The template loads MathJax 2.7.7 from cdnjs; the test answers those requests with
the same version from the npm registry (fetched once into ``.cache/``, checked against its pinned sha512) and aborts
every other request, so nothing leaves the machine. Checked: no raw MyST in the page's text, the math is typeset,
and MathJax reports no error and no undefined macro (MathJax 2 shows an undefined ``\\R`` as red text).
The power test converts a MyST source notebook the same way: it must fail both checks.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from gdlab_browser import HTML_DIR, REPO, skip_or_fail

sys.path.insert(0, str(REPO / "book" / "_ext"))

CHAPTERS = sorted((REPO / "book").glob("[0-9][0-9]_*.ipynb"))
RAW_MYST = (":::{", "{cite", "{eq}", "{prf:ref}", "{numref}", "{doc}", "{ref}", ":label:", ":class:")
# nbconvert's default MathJax (HTMLExporter.mathjax_url), served here from the npm package of the same version.
MATHJAX_CDN = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/"
MATHJAX2 = ("2.7.7", "sha512-OOl0B2/0tSJAtAZarXnQuLDBLgTNRqiI9VqHTQzPsxf4okT2iIpDrvaklK9x2QEMD1sDj4yRn11Ygci41DxMAQ==")

# Run in the page once MathJax has typeset everything: what it produced and what it complained about.
MATH_REPORT = """() => {
  const scripts = document.querySelectorAll('script[type^="math/tex"]').length;
  const errors = [...document.querySelectorAll('.MathJax_Error, .mjx-merror, .merror')].map(e => e.textContent);
  const red = [...document.querySelectorAll('.mjx-chtml [style*="color: red"], .mjx-chtml [mathcolor="red"]')]
    .map(e => e.textContent);
  return {scripts, errors, red, messages: window.__gdlabMathMessages || []};
}"""
WATCH_MATHJAX = """() => new Promise(resolve => {
  window.__gdlabMathMessages = [];
  const wait = () => {
    if (!window.MathJax || !MathJax.Hub || !MathJax.Hub.Queue) { setTimeout(wait, 50); return; }
    MathJax.Hub.Register.MessageHook("TeX Jax - parse error", m => window.__gdlabMathMessages.push(String(m)));
    MathJax.Hub.Register.MessageHook("Math Processing Error", m => window.__gdlabMathMessages.push(String(m)));
    MathJax.Hub.Queue(["Typeset", MathJax.Hub], () => resolve(true));
  };
  wait();
})"""


@pytest.fixture(scope="module")
def mathjax2() -> Path:
    """MathJax 2.7.7 unpacked from its npm tarball into ``.cache/mathjax-2.7.7`` (fetched once, hash-checked)."""
    from gdlab_fetch import fetch_npm

    target = REPO / ".cache" / f"mathjax-{MATHJAX2[0]}"
    if not (target / "MathJax.js").is_file():
        tarball = fetch_npm("mathjax", MATHJAX2[0], MATHJAX2[1], REPO / ".cache" / "npm")
        with tarfile.open(tarball) as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.startswith("package/"):
                    member.name = member.name[len("package/"):]
                    tar.extract(member, target, filter="data")
    return target


def nbconvert(notebook: Path, out_dir: Path) -> Path:
    """``jupyter nbconvert --to html`` with its defaults; return the HTML file."""
    jupyter = Path(sys.executable).parent / "jupyter"
    subprocess.run([str(jupyter), "nbconvert", "--to", "html", "--output-dir", str(out_dir), str(notebook)],
                   check=True, capture_output=True, text=True)
    return out_dir / (notebook.stem + ".html")


def render(browser, html: Path, mathjax: Path) -> dict:
    """Open ``html`` offline with MathJax served from ``mathjax``; return the page text and the math report."""
    blocked = []

    def route(route):
        url = route.request.url
        if url.startswith(MATHJAX_CDN):
            path = mathjax / url[len(MATHJAX_CDN):].split("?")[0]
            if path.is_file():
                return route.fulfill(path=str(path))
        if url.startswith("file://"):
            return route.continue_()
        blocked.append(url)
        return route.abort()

    page = browser.new_page()
    try:
        page.route("**/*", route)
        page.goto(html.as_uri(), wait_until="load", timeout=60_000)
        page.evaluate(WATCH_MATHJAX)
        report = page.evaluate(MATH_REPORT)
        report["text"] = page.inner_text("body")
        report["blocked"] = blocked
        return report
    finally:
        page.close()


def _plain_download(nb_path: Path) -> Path:
    download = HTML_DIR / "_sources" / "book" / nb_path.name
    if not download.is_file():
        skip_or_fail(f"no built book with downloads at {HTML_DIR} (build it with `jupyter-book build .`)")
    return download


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.stem)
def test_plain_download_renders_without_myst(nb_path, browser, mathjax2, tmp_path):
    report = render(browser, nbconvert(_plain_download(nb_path), tmp_path), mathjax2)
    raw = [s for s in RAW_MYST if s in report["text"]]
    assert not raw, f"raw MyST in the plain notebook as nbconvert renders it: {raw}"
    assert report["scripts"] > 20, "MathJax typeset (almost) no math: is the page's math still there?"
    assert not report["errors"] and not report["messages"], f"MathJax errors: {report['errors'] + report['messages']}"
    assert not report["red"], f"undefined macros (red in MathJax): {sorted(set(report['red']))[:20]}"
    assert all(not url.startswith(("http://127.0.0.1", "http://localhost")) for url in report["blocked"])


def test_power_the_myst_source_fails_these_checks(browser, mathjax2, tmp_path):
    """The same checks on the MyST source notebook (what the download used to be) find raw markup and red macros."""
    source = next(p for p in CHAPTERS if p.stem.startswith("04_"))
    _plain_download(source)
    report = render(browser, nbconvert(source, tmp_path), mathjax2)
    assert any(s in report["text"] for s in RAW_MYST)
    assert report["red"] or report["errors"], "an undefined \\norm was not detected"
