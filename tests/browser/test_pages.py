"""Every page of the built book, opened in headless Chromium from a local server (see conftest.py).

Per page: no request leaves the local server; no console errors or uncaught exceptions; math typeset, at build time
or by MathJax in the page (no raw TeX left, no MathJax errors); every image loads; embedded widget views render;
every local link resolves. Per chapter
page (built from a notebook): theorem/proof and exercise/solution blocks render; solutions are collapsed and open
on a click; the run-live (JupyterLite) and download (.ipynb) links point at files the site serves.

Run after building the book:  python -m pytest tests/browser   (GDLAB_HTML_DIR=... for another build folder).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import parse_qs, quote, unquote, urljoin, urlsplit, urlunsplit

import pytest
from gdlab_browser import HTML_DIR, REPO, discover_pages, is_chapter, redirect_target, source_of

pytestmark = pytest.mark.browser

# File types that a link downloads rather than displays.
DOWNLOAD_SUFFIXES = (".ipynb", ".md", ".pdf", ".py", ".zip", ".tex", ".bib")
# Raw TeX that MathJax should have replaced.
RAW_TEX = ("\\(", "\\)", "\\[", "\\]", "$$", "\\begin{")


def _fmt(items, limit=25):
    items = list(dict.fromkeys(items))  # unique, in order
    shown = "\n  ".join(items[:limit])
    more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"\n  {shown}{more}"


def _get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    """GET ``url`` (without its fragment) from the local server: (status, body)."""
    parts = urlsplit(url)
    url = urlunsplit(parts._replace(fragment=""))
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def _links(page) -> list[dict]:
    return page.eval_on_selector_all(
        "a[href]",
        """els => els.map(a => ({href: a.href, raw: a.getAttribute('href'), text: (a.innerText || '').trim(),
                                 title: a.title || a.getAttribute('data-bs-original-title') || '',
                                 cls: a.className}))""",
    )


# --------------------------------------------------------------------------------------------------------------------
# The build as a whole


def test_pages_discovered(site):
    """Every file of the table of contents has a built page, and at least one of them is a chapter (a notebook)."""
    pages = discover_pages()
    toc = REPO / "_toc.yml"
    if toc.is_file():
        import yaml

        def files(node):
            if isinstance(node, dict):
                for key, value in node.items():
                    if key in ("root", "file") and isinstance(value, str):
                        yield value
                    else:
                        yield from files(value)
            elif isinstance(node, list):
                for item in node:
                    yield from files(item)

        expected = {f.removesuffix(".md").removesuffix(".ipynb") + ".html" for f in files(yaml.safe_load(toc.read_text()))}
        missing = sorted(expected - set(pages))
        assert not missing, f"pages of _toc.yml missing from {HTML_DIR} (stale build?):{_fmt(missing)}"
    chapters = [p for p in pages if is_chapter(p)]
    assert chapters, f"no chapter page (built from a .ipynb) found in {HTML_DIR}: pages are {pages}"


def test_root_redirect(site):
    """The root index.html sends the reader to a page that exists."""
    target = redirect_target("index.html")
    if target is None:
        return  # a real page, tested with the others
    status, _ = _get(urljoin(site.url("index.html"), target))
    assert status == 200, f"index.html redirects to {target!r}, which the server answers with {status}"


# --------------------------------------------------------------------------------------------------------------------
# Every page


def test_no_external_requests(visit, site):
    """(a) Everything the page loads (scripts, styles, fonts, images, XHR, websockets) comes from its own host."""
    assert visit.requests, "no request recorded at all (the page did not load?)"
    blocked = list(dict.fromkeys(visit.blocked))
    assert not blocked, (
        f"{visit.rel} requested {len(blocked)} URL(s) outside {site.netloc} (aborted by the test; "
        f"offline they fail):{_fmt(blocked)}"
    )


def test_no_console_errors(visit):
    """(b) No console error, no uncaught exception, no local request that fails (404 or network error)."""
    problems = (
        [f"console error: {m}" for m in visit.console_errors]
        + [f"uncaught exception: {m}" for m in visit.page_errors]
        + [f"HTTP {m}" for m in visit.bad_responses]
        + [f"request failed: {m}" for m in visit.failed_requests]
    )
    assert not problems, f"{visit.rel}:{_fmt(problems)}"


MATH_STATE_JS = r"""
() => {
  const skip = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'PRE', 'CODE', 'TEXTAREA', 'MJX-CONTAINER']);
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
      for (let el = node.parentElement; el; el = el.parentElement) {
        if (skip.has(el.tagName)) return NodeFilter.FILTER_REJECT;
      }
      return NodeFilter.FILTER_ACCEPT;
    }
  });
  const raw = [];
  const needles = RAW_TEX;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.nodeValue;
    for (const needle of needles) {
      const i = text.indexOf(needle);
      if (i >= 0) {
        raw.push(needle + '  in  "' + text.slice(Math.max(0, i - 30), i + 50).replace(/\s+/g, ' ') + '"');
        break;
      }
    }
  }
  const mathEls = Array.from(document.querySelectorAll('.math'));
  const untypeset = mathEls.filter(el => !el.querySelector('mjx-container'))
                           .map(el => el.textContent.trim().replace(/\s+/g, ' ').slice(0, 80));
  // TeX errors: a syntax error gives <merror>; an undefined macro (MathJax's noundefined package) a red <mtext>
  // with the macro's name. Read them from MathJax's own list of typeset expressions, with their TeX source.
  const mj = window.MathJax;
  const errors = [];
  if (mj && mj.startup && mj.startup.document && mj.startup.toMML) {
    for (const item of mj.startup.document.math) {
      let mml = '';
      try { mml = mj.startup.toMML(item.root); } catch (e) { mml = '<merror>' + e + '</merror>'; }
      const undef = mml.match(/<mtext mathcolor="red">(\\[^<]*)<\/mtext>/);
      if (/<merror/.test(mml) || undef) {
        errors.push((undef ? 'undefined ' + undef[1] : 'error') + '  in  ' + String(item.math).trim().slice(0, 80));
      }
    }
  }
  for (const el of document.querySelectorAll('mjx-merror')) {
    if (!errors.length) errors.push((el.getAttribute('data-mjx-error') || 'error') + '  in  ' + el.textContent.slice(0, 80));
  }
  // Math typeset at build time (book/_ext/gdlab_math.py) carries its MathML: an undefined macro is a red <mtext>.
  for (const el of document.querySelectorAll('mjx-assistive-mml mtext[mathcolor="red"]')) {
    errors.push('undefined ' + el.textContent + '  in  ' + el.closest('.math').textContent.slice(0, 80));
  }
  return {
    raw, untypeset, errors,
    nMath: mathEls.length,
    nContainers: document.querySelectorAll('mjx-container').length,
    mathjax: !!(mj && mj.startup && mj.startup.promise),
    prerendered: mathEls.length > 0 && mathEls.every(el => el.querySelector('mjx-container')) && !mj,
    glyphsStyled: (() => {  // a typeset glyph has its CSS (the build's gdlab-math.css, or MathJax's own sheet)
      const c = document.querySelector('mjx-c');
      return !c || getComputedStyle(c, '::before').content !== 'none';
    })(),
    innerTextRaw: [...needles].filter(n => document.body.innerText.includes(n)),
  };
}
""".replace("RAW_TEX", json.dumps(list(RAW_TEX)))


def test_math_typeset(visit):
    """(c) Math is typeset: no raw TeX delimiters left in the text (hidden solutions included, code excluded), every
    Sphinx math element holds an mjx-container whose glyphs are styled, and no error (e.g. an undefined macro). The
    math is typeset at build time (book/_ext/gdlab_math.py: no MathJax in the page), or else by MathJax in the
    page, which must then have finished."""
    state = visit.page.evaluate(MATH_STATE_JS)
    problems = []
    if state["raw"]:
        problems.append(f"raw TeX left in the page text:{_fmt(state['raw'], 10)}")
    if state["nMath"]:
        if not state["glyphsStyled"]:
            problems.append("the math glyphs have no CSS (no ::before content): the math stylesheet is missing")
        if state["prerendered"]:
            pass
        elif not state["mathjax"]:
            problems.append(f"the page has {state['nMath']} math elements but MathJax did not load")
        elif visit.mathjax != "ready":
            problems.append(f"MathJax did not finish typesetting: {visit.mathjax}")
        if state["untypeset"]:
            problems.append(
                f"{len(state['untypeset'])} of {state['nMath']} math elements are not typeset "
                f"(no mjx-container):{_fmt(state['untypeset'], 10)}"
            )
        if state["nContainers"] == 0:
            problems.append("no mjx-container element on a page with math")
    if state["errors"]:
        problems.append(f"MathJax errors:{_fmt(state['errors'], 10)}")
    assert not problems, f"{visit.rel}: " + "\n".join(problems)
    # The plain reading of the requirement: nothing that looks like TeX in the visible text.
    assert not state["innerTextRaw"], f"{visit.rel}: raw TeX delimiters {state['innerTextRaw']} in document.body.innerText"


IMAGES_JS = """
async () => {
  const imgs = Array.from(document.images);
  for (const img of imgs) { if (img.loading === 'lazy') img.loading = 'eager'; }
  await Promise.all(imgs.map(img => img.complete ? null : new Promise(resolve => {
    img.addEventListener('load', resolve); img.addEventListener('error', resolve); setTimeout(resolve, 10000);
  })));
  const out = [];
  for (const img of imgs) {
    let ok = img.complete && img.naturalWidth > 0;
    if (!ok && img.complete) {  // an SVG without intrinsic size has naturalWidth 0 but decodes
      try { await img.decode(); ok = true; } catch (e) { ok = false; }
    }
    out.push({src: img.currentSrc || img.src, ok, complete: img.complete, width: img.naturalWidth,
              explorer: img.closest('.gdlab-page-explorer') !== null});
  }
  return out;
}
"""


def test_images_load(visit):
    """(d) Every <img> loaded (complete, naturalWidth > 0)."""
    images = visit.page.evaluate(IMAGES_JS)
    broken = [f"{i['src']} (complete={i['complete']}, naturalWidth={i['width']})" for i in images if not i["ok"]]
    assert not broken, f"{visit.rel}: {len(broken)} of {len(images)} images did not load:{_fmt(broken)}"
    if is_chapter(visit.rel):
        # Figures computed by the notebook land in _images/, the explorer's in its page explorer; logos and icons do
        # not count. Every chapter draws at least three (its checks' figures and the explorer's default figure):
        # fewer means outputs were lost, e.g. a kernel on a non-inline matplotlib backend, whose figures have only
        # a text repr.
        figures = [i["src"] for i in images if "/_images/" in i["src"] or i["explorer"]]
        assert len(figures) >= 3, f"{visit.rel} is a chapter but shows {len(figures)} computed figures (lost outputs?)"


WIDGETS_JS = """
async () => {
  const views = () => Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'));
  const rendered = s => { const n = s.nextElementSibling || s.previousElementSibling;
                          return !!(n && n.classList.contains('widget-subarea') && n.childElementCount > 0); };
  const t0 = Date.now();
  while (Date.now() - t0 < 10000 && !views().every(rendered)) await new Promise(r => setTimeout(r, 100));
  return views().map(s => ({rendered: rendered(s), id: (JSON.parse(s.textContent || '{}').model_id || '?')}));
}
"""


def test_widgets_render(visit):
    """Embedded ipywidgets views (if the page has any) are rendered by the widget manager."""
    views = visit.page.evaluate(WIDGETS_JS)
    if not views:
        return
    blank = [v["id"] for v in views if not v["rendered"]]
    assert not blank, f"{visit.rel}: {len(blank)} of {len(views)} widget views stayed blank (models{_fmt(blank, 10)})"


def test_local_links_resolve(visit, site):
    """Every link to a file of the site (pages, downloads, the live site) gets a 200 from the local server."""
    urls = sorted({urlunsplit(urlsplit(link["href"])._replace(fragment="")) for link in _links(visit.page)})
    local = [u for u in urls if site.is_local(u) and urlsplit(u).scheme in ("http", "https")]
    broken = []
    for url in local:
        status, _ = _get(url)
        if status != 200:
            broken.append(f"{status} {url}")
    assert not broken, f"{visit.rel}: broken local links:{_fmt(broken)}"


# --------------------------------------------------------------------------------------------------------------------
# Chapter pages (built from notebooks)

BLOCKS_JS = """
() => {
  const visible = el => !!el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const plain = new Set(['proof', 'admonition', 'dropdown', 'toggle', 'toggle-hidden', 'toggle-shown']);
  return Array.from(document.querySelectorAll('div.proof, div.exercise, div.solution')).map(el => {
    // sphinx-proof's {prf:proof} has no .admonition-title: its first paragraph starts with "Proof."
    const title = el.querySelector(':scope > .admonition-title')
               || Array.from(el.children).find(c => /^Proof\\b/.test((c.textContent || '').trim()));
    const body = Array.from(el.children).filter(c => !c.classList.contains('admonition-title'));
    const classes = Array.from(el.classList);
    let kind = el.classList.contains('exercise') ? 'exercise' : el.classList.contains('solution') ? 'solution'
             : (classes.filter(c => !plain.has(c))[0] || 'proof');
    return {
      id: el.id, kind, classes: classes.join(' '),
      dropdown: el.classList.contains('dropdown') || el.classList.contains('toggle'),
      visible: visible(el),
      title: title ? title.innerText.trim().slice(0, 60) : null,
      titleVisible: visible(title),
      bodyText: body.map(c => c.textContent).join(' ').replace(/^\\s*Proof\\.?/, '').trim().length,
      bodyVisible: body.some(visible),
    };
  });
}
"""

STATEMENT_KINDS = {"theorem", "lemma", "proposition", "corollary", "definition", "remark", "example", "conjecture",
                   "axiom", "criterion", "algorithm", "assumption", "observation", "property"}  # fmt: skip


@pytest.mark.chapters_only
def test_proof_and_exercise_blocks(visit):
    """(e) sphinx-proof blocks (theorem-like statements and proofs) and sphinx-exercise blocks (exercises and
    solutions) are on the page, each with a visible, non-empty title and content (shown, or behind its toggle)."""
    blocks = visit.page.evaluate(BLOCKS_JS)
    kinds = {b["kind"] for b in blocks}
    problems = []
    if not kinds & STATEMENT_KINDS:
        problems.append(f"no theorem-like block (div.proof.theorem/.definition/...) found; kinds present: {sorted(kinds)}")
    for kind in ("proof", "exercise", "solution"):
        if kind not in kinds:
            problems.append(f"no {kind} block (div.{kind}) found")
    for b in blocks:
        name = f"{b['kind']} #{b['id'] or '?'} ({b['title']!r})"
        if not b["visible"]:
            problems.append(f"{name} is not visible")
        if not b["title"] or not b["titleVisible"]:
            problems.append(f"{name} has no visible title")
        if not b["bodyText"]:
            problems.append(f"{name} is empty")
        if not b["dropdown"] and not b["bodyVisible"]:
            problems.append(f"{name}: its content is hidden although it is not a dropdown")
    assert not problems, f"{visit.rel}:{_fmt(problems)}"


@pytest.mark.chapters_only
def test_solutions_toggle(visit):
    """(f) Every solution, and every other dropdown block, starts collapsed and opens (and closes) with a click on its
    toggle button (sphinx-togglebutton). Each block is closed again afterwards, so the shared page is left as loaded."""
    page = visit.page
    errors_before = len(visit.page_errors)
    solutions = page.locator("div.solution")
    assert solutions.count() > 0, f"{visit.rel}: no solution block"
    blocks = page.locator("div.admonition.dropdown, div.solution")
    problems = []
    for i in range(blocks.count()):
        block = blocks.nth(i)
        name = f"{block.get_attribute('class')} #{block.get_attribute('id')}"
        body = block.locator(":scope > :not(.admonition-title)")
        if body.count() == 0:
            problems.append(f"{name}: no content")
            continue
        if block.locator(":scope > .admonition-title").count() == 0:
            problems.append(
                f"{name}: a dropdown without an .admonition-title: sphinx-togglebutton cannot give it a toggle button "
                "(its script throws here and leaves the later dropdowns of the page open)"
            )
            continue
        first = body.first
        if first.is_visible():
            problems.append(f"{name}: content visible before any click (solutions should start collapsed)")
            continue
        button = block.locator(":scope > .admonition-title .toggle-button")
        if button.count() == 0:
            problems.append(f"{name}: no toggle button (sphinx-togglebutton did not run, or stopped at an earlier block)")
            continue
        button.first.click()
        try:
            first.wait_for(state="visible", timeout=5000)
        except Exception:
            problems.append(f"{name}: content still hidden after clicking the toggle")
            continue
        if not block.locator(":scope > :not(.admonition-title)").last.is_visible():
            problems.append(f"{name}: only part of the content shown after clicking the toggle")
        button.first.click()
        try:
            first.wait_for(state="hidden", timeout=5000)
        except Exception:
            problems.append(f"{name}: content still visible after clicking the toggle a second time")
    assert not problems, f"{visit.rel}:{_fmt(problems)}"
    new_errors = visit.page_errors[errors_before:]
    assert not new_errors, f"{visit.rel}: exceptions while toggling:{_fmt(new_errors)}"


def _live_contents_ok(site, live_url: str) -> str | None:
    """For a JupyterLite link ``.../lite/<app>/index.html?path=<nb>``: None if the site holds <nb>, else why not.

    JupyterLite lists a folder from ``api/contents/<folder>/all.json`` and reads a file from ``files/<path>``: the
    notebook must be in both."""
    parts = urlsplit(live_url)
    paths = parse_qs(parts.query).get("path", [])
    if not paths:
        return None  # a link to the live site as a whole
    nb = unquote(paths[0])
    lite_root = parts.path[: parts.path.index("/lite/") + len("/lite/")]
    base = urlunsplit((parts.scheme, parts.netloc, lite_root, "", ""))
    problems = []
    status, body = _get(urljoin(base, "files/" + quote(nb)))
    if status != 200:
        problems.append(f"{base}files/{nb} -> HTTP {status}")
    else:
        try:
            assert json.loads(body).get("nbformat") == 4
        except (ValueError, AssertionError):
            problems.append(f"{base}files/{nb} is not a notebook")
    folder, _, name = nb.rpartition("/")
    listing_url = urljoin(base, "api/contents/" + (quote(folder) + "/" if folder else "") + "all.json")
    status, body = _get(listing_url)
    try:
        names = {item.get("name") for item in json.loads(body).get("content", [])} if status == 200 else set()
    except (ValueError, AttributeError):
        names = set()
    if name not in names:
        problems.append(f"{name!r} not listed in {listing_url} (HTTP {status})")
    return f"the live site cannot open {nb!r}: " + "; ".join(problems) if problems else None


def test_run_live_and_download_links(visit, site):
    """(g) A chapter page links to a JupyterLite copy of its notebook ("run live", href containing /lite/) and to the
    notebook itself (.ipynb download); both are served by the site. Pages not built from a notebook skip."""
    links = [link for link in _links(visit.page) if site.is_local(link["href"])]
    live = [link for link in links if "/lite/" in urlsplit(link["href"]).path]
    downloads = [link for link in links if urlsplit(link["href"]).path.endswith(DOWNLOAD_SUFFIXES)]
    notebooks = [link for link in downloads if urlsplit(link["href"]).path.endswith(".ipynb")]
    chapter = is_chapter(visit.rel)
    if not chapter and not live and not notebooks:
        source = source_of(visit.rel)
        pytest.skip(
            f"{visit.rel} is not built from a notebook (source: {source.name if source else 'none'}): "
            "no run-live / .ipynb link to check"
        )
    problems = []
    if chapter and not live:
        problems.append("no run-live link (an <a> whose href contains /lite/)")
    if chapter and not notebooks:
        problems.append("no download link to the chapter's .ipynb")
    for link in live + downloads:
        status, body = _get(link["href"])
        label = f"{link['text'] or link['title'] or link['cls']!r} -> {link['raw']}"
        if status != 200:
            problems.append(f"{label}: HTTP {status}")
            continue
        path = urlsplit(link["href"]).path
        if path.endswith(".ipynb"):
            try:
                nb = json.loads(body)
                assert nb.get("nbformat") == 4 and nb.get("cells")
            except (ValueError, AssertionError):
                problems.append(f"{label}: not a notebook (nbformat 4 with cells)")
        if link in live:
            why = _live_contents_ok(site, link["href"])
            if why:
                problems.append(f"{label}: {why}")
    assert not problems, f"{visit.rel}:{_fmt(problems)}"
