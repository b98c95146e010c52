"""The page explorers' states (book/_ext/gdlab_states.py), tested on a fake explorer library.

The fake (:data:`FAKE_SOURCE`, written to a temporary package ``fakelab``) follows the contract of
``gdlab.widgets``: ``EXPLORERS`` maps a name to an object with ``name``, ``chapter``, ``description``, a
``gdlab.spec.Spec`` and ``frame(**settings) -> Frame(png, alt, status)`` drawing a small matplotlib figure. The
tests cover the state keys, the page's HTML and JSON, the PNGs written (the same bytes as ``frame(**state).png``),
the cache (a hit when nothing changed, a miss when the spec or the library's sources change), the worker
interpreters, the copy into the site, and a small Sphinx build that replaces a marker by the page explorer.
"""

from __future__ import annotations

import base64
import hashlib
import html
import importlib
import io
import json
import re
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import pytest
from site_paths import HTML_DIR

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import gdlab_states as gs  # noqa: E402

pytest.importorskip("gdlab.spec")

FAKE_SOURCE = '''
"""A fake explorer library for tests/test_states.py (the contract of gdlab.widgets)."""
import io
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from gdlab.spec import Control, Spec

CALLS = []


class Frame(NamedTuple):
    png: bytes
    alt: str
    status: str


class FakeExplorer:
    def __init__(self, name, chapter, spec, description=""):
        self.name, self.chapter, self.spec, self.description = name, chapter, spec, description

    def update(self, **settings):
        s = self.spec.bind(settings)
        fig, ax = plt.subplots(figsize=(2.0, 1.2), dpi=40)
        x = np.linspace(0, 2 * np.pi, s["n"])
        ax.plot(x, s["a"] * getattr(np, s["curve"])(x))
        ax.set_ylim(-3, 3)
        return fig

    def frame(self, **settings):
        CALLS.append((self.name, tuple(sorted(settings.items()))))
        s = self.spec.bind(settings)
        buf = io.BytesIO()
        # matplotlib's default style: the same in the workers and here, whatever this process imported before
        # (importing gdlab.plots applies the book's style to rcParams)
        with plt.style.context("default"):
            fig = self.update(**s)
            fig.savefig(buf, format="png", metadata={"Software": None})
        plt.close(fig)
        alt = f"A {s['curve']} curve of amplitude {s['a']:g} over {s['n']} points </script>"
        return Frame(buf.getvalue(), alt, f"amplitude {s['a']:g} & curve {s['curve']}: done")


SPEC = Spec((
    Control("a", "amplitude", "log", 1.0, low=0.1, high=3.0, page=(0.5, 1, 2.0)),
    Control("curve", "curve <f>", "choice", "sin", options=("sin", "cos", "tan"), page=("sin", "cos")),
    Control("n", "points", "int", 40, low=10, high=100),
    Control("fixed", "fixed", "int", 3, low=1, high=5, page=(3,)),
))


class StickyExplorer(FakeExplorer):
    """A figure that remembers the state it was first drawn with (as a figure created on first use may)."""

    first = None

    def update(self, **settings):
        if self.first is None:
            self.first = self.spec.bind(settings)["a"]
        fig = super().update(**settings)
        fig.axes[0].set_title(f"first a = {self.first:g}", fontsize=5)
        return fig


EXPLORERS = {"ch09 fake": FakeExplorer("ch09 fake", "9", SPEC, "A fake explorer."),
             "ch10 sticky": StickyExplorer("ch10 sticky", "10", SPEC, "A figure that remembers its first state.")}
'''


@pytest.fixture(scope="module")
def fakelab(tmp_path_factory):
    """The fake library: a package ``fakelab`` in a temporary folder, on sys.path; returns (module, folder)."""
    folder = tmp_path_factory.mktemp("fakelib")
    (folder / "fakelab").mkdir()
    (folder / "fakelab" / "__init__.py").write_text(FAKE_SOURCE)
    sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module("fakelab")
        yield module, folder
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("fakelab", None)


@pytest.fixture
def fake(fakelab):
    return fakelab[0].EXPLORERS["ch09 fake"]


VERSIONS = {"matplotlib": "m", "numpy": "n"}


# --- keys --------------------------------------------------------------------------------------------------------


def test_slug():
    assert gs.slug("ch01 landscape") == "ch01-landscape"
    assert gs.slug("ch07 Deep linear!") == "ch07-deep-linear"
    assert gs.slug("???") == "explorer"


def test_state_keys_are_the_indices_of_the_page_values(fake):
    keys = [key for key, _ in gs.page_states(fake.spec)]
    assert len(keys) == len(set(keys)) == fake.spec.n_page_states == 3 * 2 * 1
    assert keys[0] == "0-0-0"
    assert gs.state_key(fake.spec, fake.spec.defaults) == "1-0-0"  # a = 1 is the second page value (as 1.0)
    assert gs.state_key(fake.spec, {**fake.spec.defaults, "a": 2, "curve": "cos"}) == "2-1-0"
    with pytest.raises(ValueError, match="not among the page values"):
        gs.state_key(fake.spec, {**fake.spec.defaults, "a": 0.7})


def test_controls_data(fake):
    data = gs.controls_data(fake.spec)
    assert [c["name"] for c in data] == ["a", "curve", "fixed"]  # "n" has no page values: not on the page
    assert [c["widget"] for c in data] == ["range", "select", "fixed"]
    assert data[0]["text"] == ["0.5", "1", "2"] and data[0]["default"] == 1
    assert data[1]["text"] == ["sin", "cos"] and data[1]["default"] == 0


def test_png_size_and_file_name():
    png = b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + (640).to_bytes(4, "big") + (480).to_bytes(4, "big") + b"\x08\x06"
    assert gs.png_size(png) == (640, 480)
    assert gs.state_file("1-0", png) == f"1-0.{hashlib.sha256(png).hexdigest()[:10]}.png"
    assert gs.state_file("", png).startswith("default.")
    with pytest.raises(ValueError):
        gs.png_size(b"GIF89a....")


# --- cache keys --------------------------------------------------------------------------------------------------


def test_source_digest_follows_every_source_file(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("y = 2\n")
    (tmp_path / "pkg" / "notes.txt").write_text("not a source")
    d0 = gs.source_digest(tmp_path / "pkg")
    assert gs.source_digest(tmp_path / "pkg") == d0
    (tmp_path / "pkg" / "notes.txt").write_text("changed, still not a source")
    assert gs.source_digest(tmp_path / "pkg") == d0
    (tmp_path / "pkg" / "sub" / "b.py").write_text("y = 3\n")
    d1 = gs.source_digest(tmp_path / "pkg")
    assert d1 != d0
    (tmp_path / "pkg" / "sub" / "b.py").rename(tmp_path / "pkg" / "b.py")
    assert gs.source_digest(tmp_path / "pkg") != d1  # the path counts too


def test_explorer_key_depends_on_spec_sources_and_versions():
    k = gs.explorer_key("ch09 fake", "Spec(a)", "digest", VERSIONS)
    assert k.startswith("ch09-fake-")
    assert gs.explorer_key("ch09 fake", "Spec(a)", "digest", dict(VERSIONS)) == k
    assert gs.explorer_key("ch09 fake", "Spec(b)", "digest", VERSIONS) != k
    assert gs.explorer_key("ch09 fake", "Spec(a)", "other", VERSIONS) != k
    assert gs.explorer_key("ch09 fake", "Spec(a)", "digest", {**VERSIONS, "numpy": "2"}) != k
    assert gs.source_stamp("digest", VERSIONS) != gs.source_stamp("other", VERSIONS)


# --- palette PNGs ----------------------------------------------------------------------------------------------------


def palette_error(png: bytes, reduced: bytes) -> tuple[int, float]:
    """The largest and the mean absolute difference of any colour channel between two PNGs of the same size."""
    import numpy as np
    from PIL import Image

    a, b = (np.asarray(Image.open(io.BytesIO(x)).convert("RGB"), dtype=int) for x in (png, reduced))
    assert a.shape == b.shape
    return int(np.abs(a - b).max()), float(np.abs(a - b).mean())


def explorer_frame_png() -> bytes:
    """A real explorer figure: chapter 6's default state (text, contours, a red marker, a log plot)."""
    from gdlab.widgets import EXPLORERS

    explorer = next(e for e in EXPLORERS.values() if str(getattr(e, "chapter", "")) == "6")
    return bytes(explorer.frame(**explorer.spec.defaults).png)


def test_palette_png_is_small_and_keeps_the_figure_legible():
    from PIL import Image

    png = explorer_frame_png()
    reduced = gs.palette_png(png)
    with Image.open(io.BytesIO(reduced)) as image:
        assert image.mode == "P" and len(image.getcolors()) <= gs.PALETTE_COLORS
    assert gs.png_size(reduced) == gs.png_size(png) and len(reduced) < len(png) / 2
    worst, mean = palette_error(png, reduced)
    assert worst <= 32 and mean < 1.0, (worst, mean)     # no colour moves far: lines, markers and text keep theirs
    assert gs.palette_png(png) == reduced                 # deterministic


def test_power_palette_png_too_few_colours_is_caught():
    png = explorer_frame_png()
    worst, mean = palette_error(png, gs.palette_png(png, colors=4))
    assert worst > 32 or mean >= 1.0


def test_palette_png_leaves_transparent_images_alone():
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGBA", (8, 8), (255, 0, 0, 128)).save(out, "PNG")
    assert gs.palette_png(out.getvalue()) == out.getvalue()


# --- rendering and the cache (in this process) ---------------------------------------------------------------------


def test_written_pngs_are_the_frames(fake, tmp_path):
    """The file of every state holds exactly ``frame(**state).png`` (the figure update(**state) draws) reduced to its
    palette by ``palette_png``."""
    manifest = gs.render_in_process({fake.name: fake}, tmp_path, "digest", VERSIONS)[fake.name]
    folder = tmp_path / manifest["key"]
    assert set(manifest["states"]) == {key for key, _ in gs.page_states(fake.spec)}
    for key, state in gs.page_states(fake.spec):
        frame = fake.frame(**state)
        entry = manifest["states"][key]
        assert (folder / entry["file"]).read_bytes() == gs.palette_png(frame.png)
        assert entry["alt"] == frame.alt and entry["status"] == frame.status
        assert (entry["width"], entry["height"]) == gs.png_size(frame.png) == (80, 48)
    assert manifest["default"] == "1-0-0"
    assert manifest["spec"] == repr(fake.spec)


def test_cache_hit_when_nothing_changed_and_miss_when_spec_or_sources_change(fakelab, fake, tmp_path):
    module = fakelab[0]
    first = gs.render_in_process({fake.name: fake}, tmp_path, "digest", VERSIONS)[fake.name]
    module.CALLS.clear()
    again = gs.render_in_process({fake.name: fake}, tmp_path, "digest", VERSIONS)[fake.name]
    assert again == first and module.CALLS == [], "unchanged spec and sources: every state from the cache"

    other = gs.render_in_process({fake.name: fake}, tmp_path, "changed sources", VERSIONS)[fake.name]
    assert other["key"] != first["key"] and len(module.CALLS) == 1 + fake.spec.n_page_states  # warm-up + states
    assert module.CALLS[0][1] == tuple(sorted(fake.spec.defaults.items())), "the default is drawn first"

    from gdlab.spec import Control, Spec

    controls = list(fake.spec.controls)
    controls[0] = Control("a", "amplitude", "log", 1.0, low=0.1, high=3.0, page=(0.5, 1, 2.0, 3.0))
    changed = module.FakeExplorer(fake.name, "9", Spec(tuple(controls)))
    module.CALLS.clear()
    new = gs.render_in_process({fake.name: changed}, tmp_path, "digest", VERSIONS)[fake.name]
    assert new["key"] != first["key"] and len(new["states"]) == 8 and len(module.CALLS) == 1 + 8


def test_incomplete_cache_folder_is_not_a_hit(fake, tmp_path):
    manifest = gs.render_in_process({fake.name: fake}, tmp_path, "digest", VERSIONS)[fake.name]
    (tmp_path / manifest["key"] / manifest["states"]["0-1-0"]["file"]).unlink()
    assert gs.load_manifest(tmp_path / manifest["key"]) is None


# --- the page --------------------------------------------------------------------------------------------------------


class _Elements(HTMLParser):
    """Every start tag as (tag, attributes), and the text of the <script> and of each element with an id."""

    def __init__(self):
        super().__init__()
        self.tags, self.script, self._in_script = [], "", False
        self.text: dict[str, str] = {}
        self._open: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self._in_script = tag == "script"
        if tag not in ("img", "input"):
            self._open.append(attrs.get("id") or attrs.get("class"))

    def handle_endtag(self, tag):
        self._in_script = False
        if tag not in ("img", "input") and self._open:
            self._open.pop()

    def handle_data(self, data):
        if self._in_script:
            self.script += data
        elif self._open and self._open[-1]:
            self.text[self._open[-1]] = self.text.get(self._open[-1], "") + data

    def find(self, tag, **attrs):
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


@pytest.fixture
def page(fake, tmp_path):
    manifest = gs.render_in_process({fake.name: fake}, tmp_path, "digest", VERSIONS)[fake.name]
    text = gs.explorer_html(manifest, "../_images/gdlab-states/ch09-fake/", "gdlab-ch09-fake")
    parser = _Elements()
    parser.feed(text)
    return manifest, text, parser


def test_html_has_a_labelled_control_for_every_page_control(fake, page):
    manifest, text, p = page
    labels = {a["for"]: a for a in p.find("label")}
    (rng,) = p.find("input", type="range")
    assert rng["id"] in labels and rng["min"] == "0" and rng["max"] == "2" and rng["step"] == "1"
    assert rng["value"] == "1" and rng["aria-valuetext"] == "1" and rng["data-control"] == "a"
    assert p.find("output", **{"for": rng["id"]}), "the range's readout"
    assert p.text[rng["id"] + "-value"] == "1"
    (sel,) = p.find("select")
    assert sel["id"] in labels and sel["data-control"] == "curve"
    assert [a["value"] for a in p.find("option")] == ["0", "1"]
    assert "selected" in p.find("option")[0]
    assert "curve &lt;f&gt;" in text, "labels are escaped"
    assert p.text["gdlab-ch09-fake-fixed"] == "3", "a control with one page value is shown, not movable"
    (group,) = [a for t, a in p.tags if a.get("role") == "group"]
    assert "hidden" in group and "6 precomputed states" in group["aria-label"]


def test_html_image_status_and_json_match_the_states(fake, page):
    manifest, text, p = page
    default = fake.frame(**fake.spec.defaults)
    (img,) = p.find("img")
    entry = manifest["states"]["1-0-0"]
    assert img["src"] == "../_images/gdlab-states/ch09-fake/" + entry["file"]
    assert img["alt"] == default.alt and (img["width"], img["height"]) == ("80", "48")
    (root,) = [a for t, a in p.tags if "gdlab-states" in (a.get("class") or "").split()]
    assert root["data-explorer"] == "ch09 fake" and root["data-state"] == "1-0-0"
    assert "gdlab-page-explorer" in root["class"].split()
    (status,) = p.find("p", **{"aria-live": "polite"})
    assert status["class"] == "gdlab-explorer-status"
    assert p.text["gdlab-explorer-status"] == default.status
    assert "</script>" not in p.script, "the alt text's </script> must not end the JSON"
    data = json.loads(p.script)
    assert data["default"] == "1-0-0"
    assert [c["name"] for c in data["controls"]] == ["a", "curve", "fixed"]
    assert set(data["states"]) == {gs.state_key(fake.spec, s) for s in fake.spec.page_states()}
    for state in fake.spec.page_states():
        file, alt, status_text, width, height = data["states"][gs.state_key(fake.spec, state)]
        frame = fake.frame(**state)
        assert (alt, status_text) == (frame.alt, frame.status)
        assert file == gs.state_file(gs.state_key(fake.spec, state), gs.palette_png(frame.png))
    # Every neighbour the script can ask for (one step along a control) is a state of the JSON.
    sizes = [len(c["text"]) for c in data["controls"]]
    for key in data["states"]:
        index = [int(i) for i in key.split("-")]
        for i, n in enumerate(sizes):
            for j in (index[i] - 1, index[i] + 1):
                if 0 <= j < n:
                    assert "-".join(map(str, index[:i] + [j] + index[i + 1:])) in data["states"]


def test_markers_are_found_and_replaced_only_once():
    from docutils import nodes
    from docutils.utils import new_document

    doc = new_document("test")
    marker = ('<div class="gdlab-page-explorer" data-explorer="ch09 &quot;fake&quot;"><img alt="x" '
              'src="data:image/png;base64,AAAA"><p class="gdlab-explorer-status">s</p></div>')
    doc += nodes.raw("", marker, format="html")
    doc += nodes.raw("", "<p>other html</p>", format="html")
    doc += nodes.raw("", marker, format="latex")
    found = list(gs.find_markers(doc))
    assert [name for _, name in found] == ['ch09 "fake"']
    assert gs.marker_name(marker) == 'ch09 "fake"'
    done = nodes.raw("", '<div class="gdlab-page-explorer gdlab-states" data-explorer="x"></div>', format="html")
    assert not list(gs.find_markers(nodes.section("", done)))


# --- workers, the site's copy, a Sphinx build ----------------------------------------------------------------------


def test_workers_draw_the_states_and_the_index_makes_the_next_build_start_none(fakelab, fake, tmp_path):
    module, folder = fakelab
    cache = tmp_path / "cache"
    digest = gs.source_digest(folder / "fakelab")
    render = gs.start_render(cache, digest, VERSIONS, names=[fake.name], registry="fakelab:EXPLORERS", workers=2,
                             extra_path=[str(folder)])
    report = gs.collect_render(render)
    assert not report.problems, report.problems
    assert report.drawn == fake.spec.n_page_states
    manifest = report.manifests[fake.name]
    for key, state in gs.page_states(fake.spec):
        written = (cache / manifest["key"] / manifest["states"][key]["file"]).read_bytes()
        assert written == gs.palette_png(fake.frame(**state).png)
    assert gs.cached_manifests(cache, gs.source_stamp(digest, VERSIONS)) == report.manifests
    assert gs.cached_manifests(cache, gs.source_stamp("other", VERSIONS)) is None
    # The copy into the site: hard links (or copies); stale files and folders go.
    static = tmp_path / "html" / "_images" / "gdlab-states"
    (static / "old-explorer").mkdir(parents=True)
    (static / "ch09-fake").mkdir()
    (static / "ch09-fake" / "stale.png").write_bytes(b"old")
    assert gs.sync_states(report.manifests, cache, static) == fake.spec.n_page_states
    assert sorted(p.name for p in static.iterdir()) == ["ch09-fake"]
    assert {p.name for p in (static / "ch09-fake").iterdir()} == {s["file"] for s in manifest["states"].values()}
    assert gs.sync_states(report.manifests, cache, static) == 0


def test_the_bytes_do_not_depend_on_how_the_states_are_shared_among_workers(fakelab, tmp_path):
    """Each worker draws an explorer's default state first, as the notebook does: a figure that remembers its first
    state then gives the same bytes with 1 worker and with 3 (and the same as a notebook that drew the default)."""
    module, folder = fakelab
    digest = gs.source_digest(folder / "fakelab")
    manifests = []
    for workers in (1, 3):
        render = gs.start_render(tmp_path / f"cache{workers}", digest, VERSIONS, names=["ch10 sticky"],
                                 registry="fakelab:EXPLORERS", workers=workers, extra_path=[str(folder)])
        report = gs.collect_render(render)
        assert not report.problems, report.problems
        manifests.append(report.manifests["ch10 sticky"])
    one, three = ({k: s["file"] for k, s in m["states"].items()} for m in manifests)
    assert one == three
    notebook = module.StickyExplorer("ch10 sticky", "10", module.SPEC)
    notebook.frame(**module.SPEC.defaults)  # live(explorer) draws the default first
    for key, state in gs.page_states(module.SPEC):
        assert one[key] == gs.state_file(key, gs.palette_png(notebook.frame(**state).png))


def test_workers_report_an_unknown_registry(tmp_path):
    render = gs.start_render(tmp_path / "cache", "d", VERSIONS, registry="no_such_module_here:EXPLORERS", workers=1)
    report = gs.collect_render(render)
    assert report.problems and "No module named" in report.problems[0]
    assert not list((tmp_path / "cache").glob("index-*"))


SPHINX_CONF = """
import sys
sys.path.insert(0, {ext!r})
extensions = ["gdlab_states"]
gdlab_states_registry = "fakelab:EXPLORERS"
gdlab_states_sources = "fakelab"
html_theme = "basic"
"""

MARKER = ('<div class="gdlab-page-explorer" data-explorer="{name}"><img alt="{text}" src="data:image/png;base64,AAAA">'
          '<p class="gdlab-explorer-status">{text}</p></div>')
SPHINX_INDEX = f"""
Fake
====

.. raw:: html

   {MARKER.format(name="ch09 fake", text="default")}

.. raw:: html

   {MARKER.format(name="ch99 unknown", text="static")}
"""


def _build(src: Path, out: Path):
    from io import StringIO

    from sphinx.application import Sphinx
    from sphinx.util.docutils import docutils_namespace

    warnings = StringIO()
    # docutils_namespace (as sphinx.testing does): the node classes this build registers are unregistered afterwards,
    # so that a later Sphinx application in the same process (tests/test_api_page.py) does not see them.
    with docutils_namespace():
        app = Sphinx(str(src), str(src), str(out / "html"), str(out / "doctrees"), "html", status=StringIO(),
                     warning=warnings, freshenv=False)
        app.build()
    return app, warnings.getvalue()


def test_sphinx_build_replaces_the_marker_and_reuses_the_cache(fakelab, fake, tmp_path):
    module, folder = fakelab
    src = tmp_path / "src"
    src.mkdir()
    import shutil

    shutil.copytree(folder / "fakelab", src / "fakelab")
    (src / "conf.py").write_text(SPHINX_CONF.format(ext=str(ROOT / "book" / "_ext")))
    (src / "index.rst").write_text(textwrap.dedent(SPHINX_INDEX))
    (src / "stale.rst").write_text(":orphan:\n\nStale\n=====\n\n.. code-block:: python\n\n   live(explorer)\n")
    out = tmp_path / "_build"
    _, warnings = _build(src, out)
    assert "no states for the explorer 'ch99 unknown'" in warnings
    assert "stale: the explorer cell (live(explorer)) shows no page-explorer marker" in warnings
    page = (out / "html" / "index.html").read_text()
    assert 'data-explorer="ch09 fake"' in page and 'class="gdlab-page-explorer gdlab-states"' in page
    assert '<div class="output gdlab-states-output"><div class="gdlab-page-explorer gdlab-states"' in page
    assert 'src="_images/gdlab-states/ch09-fake/1-0-0.' in page
    assert "static" in page, "the unknown explorer keeps its static figure"
    assert re.search(r'<script async="async" src="_static/gdlab_states\.js', page)
    assert 'href="_static/gdlab_states.css' in page
    assert (out / "html" / "_static" / "gdlab_states.js").read_bytes() == gs.ASSETS[0].read_bytes()
    images = sorted((out / "html" / "_images" / "gdlab-states" / "ch09-fake").iterdir())
    assert len(images) == fake.spec.n_page_states
    (index,) = (src / "_build" / ".gdlab-states").glob("index-*.json")

    # No change: no worker, nothing drawn; the page is not rewritten.
    mtime = (out / "html" / "index.html").stat().st_mtime_ns
    app, _ = _build(src, out)
    assert app._gdlab_states.get("render") is None and app._gdlab_states["manifests"]
    assert (out / "html" / "index.html").stat().st_mtime_ns == mtime

    # A change in the library's sources: states drawn again and the page rewritten (its source did not change).
    with open(src / "fakelab" / "__init__.py", "a") as f:
        f.write("\n# a change\n")
    _build(src, out)
    assert (out / "html" / "index.html").stat().st_mtime_ns != mtime
    assert not index.exists(), "the old index is pruned"
    assert html.escape(fake.frame(**fake.spec.defaults).alt) in (out / "html" / "index.html").read_text()


# --- the built book (skipped without one) ----------------------------------------------------------------------------


def _built_markers():
    """(page, marker HTML) for every explorer marker in the built book's doctrees (the kernel's output)."""
    import pickle

    doctrees = HTML_DIR.parent / ".doctrees"
    if not doctrees.is_dir():
        pytest.skip(f"no built book at {HTML_DIR} (doctrees in {doctrees})")
    found = []
    for path in sorted(doctrees.rglob("*.doctree")):
        doc = pickle.loads(path.read_bytes())
        for node, _ in gs.find_markers(doc):
            found.append((path.relative_to(doctrees).with_suffix(".html").as_posix(), node.astext()))
    if not found:
        pytest.skip("the built book has no explorer marker (a library without page states, or a stale build)")
    return found


def test_built_first_state_is_the_notebooks_figure():
    """On every built page, the explorer's first image (after ``palette_png``), alt text and status line are byte for
    byte those of the figure the notebook's kernel drew (``live(explorer)`` in the build: ``frame(**defaults)``)."""
    problems = []
    for rel, marker in _built_markers():
        png = base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', marker).group(1))
        alt = html.unescape(re.search(r'<img alt="([^"]*)"', marker).group(1))
        status = html.unescape(re.search(r'class="gdlab-explorer-status">([^<]*)<', marker).group(1))
        page = (HTML_DIR / rel).read_text(encoding="utf-8")
        m = re.search(r'<img class="gdlab-states-image" src="([^"]+)" alt="([^"]*)"', page)
        if m is None:
            problems.append(f"{rel}: no page explorer")
            continue
        shown = html.unescape(re.search(r'<p class="gdlab-explorer-status" aria-live="polite">([^<]*)<', page).group(1))
        if ((HTML_DIR / rel).parent / m.group(1)).read_bytes() != gs.palette_png(png):
            problems.append(f"{rel}: the first state's PNG differs from the notebook's figure")
        if html.unescape(m.group(2)) != alt or shown != status:
            problems.append(f"{rel}: the first state's alt text or status line differs from the notebook's")
    assert not problems, problems
