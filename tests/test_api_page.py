"""The library reference (book/api/): every public object of gdlab is documented, and chapters link to it.

What "public" means is defined once, in ``book/_ext/gdlab_apilinks.py`` (:func:`gdlab_apilinks.public_objects`).
The tests on the link transform run on small docutils trees and always run; the tests on the built book need
``jupyter-book build .`` first: they are skipped without ``_build/html``, unless ``GDLAB_REQUIRE_BUILDS=1`` (CI,
after its clean ``-W -n`` build), which makes a missing build a failure. Each check is a function that returns the
problems it finds, and a power test shows it finding them in a deliberately wrong input.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest
import yaml
from docutils import nodes
from docutils.frontend import get_default_settings
from docutils.parsers.rst import Parser
from docutils.utils import new_document
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.util.docutils import docutils_namespace
from sphinx.util.inventory import InventoryFile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import gdlab_apilinks  # noqa: E402

#: The file of the build that these tests read (the ``html`` fixture of conftest.py waits for it).
HTML_NEEDS = "objects.inv"
API = "book/api/"
CHAPTERS = sorted(p.stem for p in (ROOT / "book").glob("[0-9][0-9]_*.ipynb"))


# --- checks (pure functions) ----------------------------------------------------------------------------------


def undocumented(public: dict[str, str], inventory: dict[str, tuple[str, str]]) -> list[str]:
    """The public objects that the inventory (``{fullname: (objtype, uri)}``) lacks or has on no API page."""
    return sorted(name for name in public
                  if name not in inventory or not inventory[name][1].startswith(API))


def read_inventory(path: Path) -> dict[str, tuple[str, str]]:
    """``{fullname: (objtype, uri)}`` of the Python objects in a Sphinx ``objects.inv``."""
    with path.open("rb") as f:
        inventory = InventoryFile.load(f, "", lambda base, uri: uri)
    return {name: (kind.removeprefix("py:"), entry[2])
            for kind, entries in inventory.items() if kind.startswith("py:") for name, entry in entries.items()}


def first_mention_problems(doctree: nodes.Node, index: dict[str, str]) -> list[str]:
    """How ``doctree`` breaks the rule "the first literal naming each object of ``index`` links to it, no later one
    does" (literals already inside a link, a title or an API entry are not mentions)."""
    problems, seen = [], set()
    for literal in doctree.findall(nodes.literal):
        if any(isinstance(a, gdlab_apilinks.NO_LINK_INSIDE) and not _is_our_link(a, literal)
               for a in gdlab_apilinks._ancestors(literal)):
            continue
        target = gdlab_apilinks.literal_target(literal.astext(), index)
        if target is None:
            continue
        linked = _is_our_link(literal.parent, literal)
        if target not in seen and not linked:
            problems.append(f"first mention of {target} ({literal.astext()!r}) is not linked")
        if target in seen and linked:
            problems.append(f"a later mention of {target} ({literal.astext()!r}) is linked")
        seen.add(target)
    return problems


def _is_our_link(node: nodes.Node, literal: nodes.literal) -> bool:
    return (isinstance(node, addnodes.pending_xref) and node is literal.parent
            and node.get("refdomain") == "py" and node.get("reftarget", "").startswith(gdlab_apilinks.PACKAGE))


def api_links(page: str) -> list[tuple[str, str]]:
    """``(href, code text)`` of every link from an HTML page to the API pages whose text is inline code."""
    found = re.findall(r'<a class="reference internal" href="(api/[^"]+)"[^>]*><code[^>]*>(.*?)</code>', page)
    return [(href, re.sub(r"<[^>]+>", "", text)) for href, text in found]


def dangling(links: list[tuple[str, str]], html_root: Path) -> list[str]:
    """The links whose page or anchor (``id="..."``) does not exist in the built site."""
    bad = []
    for href, _ in links:
        path, _, anchor = href.partition("#")
        target = html_root / "book" / path
        if not target.is_file() or (anchor and f'id="{anchor}"' not in target.read_text(encoding="utf-8")):
            bad.append(href)
    return bad


def api_blocks(api_dir: Path) -> list[str]:
    """The reST of every ``{eval-rst}`` block of the API pages (their ``automodule`` directives), page by page."""
    return [block for page in sorted(api_dir.glob("*.md"))
            for block in re.findall(r"```\{eval-rst\}\n(.*?)```", page.read_text(encoding="utf-8"), re.S)]


def docstring_warnings(blocks: list[str], workdir: Path) -> list[str]:
    """The warnings of a nitpicky Sphinx build of ``blocks`` alone, with the book's autodoc settings (``_config.yml``)
    and its bibliography: the docstrings' reST errors and unresolved references, in seconds instead of a book
    build."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["sphinx"]["config"]
    src = workdir / "src"
    src.mkdir()
    (src / "index.rst").write_text("API\n===\n\n" + "\n".join(blocks) + "\n.. bibliography::\n", encoding="utf-8")
    warnings = io.StringIO()
    overrides = {"extensions": ["sphinx.ext.autodoc", "sphinxcontrib.bibtex", "gdlab_apilinks"], "nitpicky": True,
                 "bibtex_bibfiles": [str(ROOT / "book" / "references.bib")],
                 **{key: config[key] for key in ("autodoc_default_options", "nitpick_ignore_regex")}}
    # A fresh docutils namespace (as sphinx.testing does): another Sphinx application run earlier in the same process
    # (tests/test_states.py) has registered node classes that would otherwise clash with this one's.
    with docutils_namespace():
        app = Sphinx(str(src), None, str(workdir / "out"), str(workdir / "doctrees"), "dummy",
                     confoverrides=overrides, status=None, warning=warnings, freshenv=True)
        app.build()
    return [line for line in warnings.getvalue().splitlines() if "WARNING" in line or "ERROR" in line]


# --- what is public -------------------------------------------------------------------------------------------

PUBLIC, ALIASES = gdlab_apilinks.public_objects()


def test_public_objects_are_the_library_s_functions_classes_and_methods():
    assert PUBLIC["gdlab.nets.mlp_grad"] == "function"
    assert PUBLIC["gdlab.flow.Trajectory"] == "class"
    assert PUBLIC["gdlab.spec.Spec.bind"] == "method"
    assert PUBLIC["gdlab.flow.Trajectory.diverged"] == "property"
    assert PUBLIC["gdlab.experiments.ch02.setup"] == "function"  # a cached function
    assert ALIASES["gdlab.plots.width_figure"] == "gdlab.plots.ch03.width_figure"
    assert not any(name.startswith("gdlab._") or "._" in name for name in PUBLIC)
    # A view's ``run`` is the experiment's function and matplotlib adds ``set`` to every artist: not theirs.
    assert "gdlab.plots.ch01.View.run" not in PUBLIC
    assert "gdlab.plots.style.PixelCachedLegend.set" not in PUBLIC
    assert len(PUBLIC) > 300


def test_every_public_module_is_found():
    modules = gdlab_apilinks.public_modules()
    assert {"gdlab", "gdlab.nets", "gdlab.experiments.ch07", "gdlab.plots.style", "gdlab.widgets"} <= set(modules)
    assert "gdlab._checks" not in modules


def test_undocumented_reports_a_missing_public_function():
    inventory = {name: (kind, API + "ch01.html#" + name) for name, kind in PUBLIC.items()}
    assert undocumented(PUBLIC, inventory) == []
    fake = {**PUBLIC, "gdlab.nets.fake_public_function": "function"}
    assert undocumented(fake, inventory) == ["gdlab.nets.fake_public_function"]
    elsewhere = {**inventory, "gdlab.nets.mlp_grad": ("function", "book/02_gradient_flow.html#x")}
    assert undocumented(PUBLIC, elsewhere) == ["gdlab.nets.mlp_grad"]


# --- the link transform on small docutils trees ---------------------------------------------------------------

DOCUMENTED = {
    "gdlab": "module", "gdlab.nets": "module", "gdlab.nets.mlp_grad": "function", "gdlab.nets.MLPProblem": "class",
    "gdlab.nets.MLPProblem.loss_grad": "method", "gdlab.plots.ch03.width_figure": "function",
    "gdlab.experiments.ch01.run": "function", "gdlab.experiments.ch02.run": "function",
    "gdlab.experiments.ch07.D": "data", "gdlab.spec.Spec.bind": "method",
}
INDEX = gdlab_apilinks.link_index(DOCUMENTED, {"gdlab.plots.width_figure": "gdlab.plots.ch03.width_figure"})

PAGE = """\
Title with ``nets.mlp_grad``
=============================

The library ``gdlab`` computes ``nets.mlp_grad(M, N, x, q)``; ``gdlab.nets.mlp_grad`` again. Then
``mlp_grad``, ``MLPProblem.loss_grad``, ``plots.width_figure``, ``run``, ``D``, ``bind``, ``np.gradient`` and
``gdlab.nets.mlp_grad``.
"""


def parse(rst: str) -> nodes.document:
    document = new_document("<test>", get_default_settings(Parser))
    Parser().parse(rst, document)
    return document


def test_link_index_names_objects_by_their_unambiguous_tails():
    assert INDEX["nets.mlp_grad"] == INDEX["mlp_grad"] == INDEX["gdlab.nets.mlp_grad"] == "gdlab.nets.mlp_grad"
    assert INDEX["MLPProblem.loss_grad"] == "gdlab.nets.MLPProblem.loss_grad"
    assert INDEX["plots.width_figure"] == INDEX["width_figure"] == "gdlab.plots.ch03.width_figure"
    assert "run" not in INDEX  # two chapters' run: ambiguous
    assert "D" not in INDEX and "experiments.ch07.D" not in INDEX  # data is never linked
    assert "bind" not in INDEX and "loss_grad" not in INDEX  # a bare method name is not enough
    assert gdlab_apilinks.literal_target("bounds.health_envelope(t, l0)", {"bounds.health_envelope": "x"}) == "x"
    assert gdlab_apilinks.literal_target("np.linalg.norm(D, 2)", INDEX) is None


def test_first_mentions_are_linked_once_each():
    document = parse(PAGE)
    linked = gdlab_apilinks.link_first_mentions(document, INDEX)
    assert linked == ["gdlab", "gdlab.nets.mlp_grad", "gdlab.nets.MLPProblem.loss_grad",
                      "gdlab.plots.ch03.width_figure"]
    assert first_mention_problems(document, INDEX) == []
    title = next(iter(document.findall(nodes.title)))
    assert not list(title.findall(addnodes.pending_xref))


def test_first_mention_check_has_power():
    unlinked = parse(PAGE)
    assert "first mention of gdlab.nets.mlp_grad ('nets.mlp_grad(M, N, x, q)') is not linked" in \
        first_mention_problems(unlinked, INDEX)
    every = parse(PAGE)  # a wrong transform: it links every mention, not the first
    for _ in range(3):
        gdlab_apilinks.link_first_mentions(every, INDEX)
    assert any("later mention of gdlab.nets.mlp_grad" in p for p in first_mention_problems(every, INDEX))


def test_no_links_inside_links_or_the_api_pages_own_entries():
    document = parse("Some text.\n")
    desc = addnodes.desc()  # an API entry: its docstring's literals stay code
    desc += nodes.paragraph("", "", nodes.literal("", "nets.mlp_grad"))
    link = nodes.reference("", "", nodes.literal("", "nets"), refuri="https://example.org")
    document += [desc, nodes.paragraph("", "", link), nodes.paragraph("", "", nodes.literal("", "nets.mlp_grad"))]
    assert gdlab_apilinks.link_first_mentions(document, INDEX) == ["gdlab.nets.mlp_grad"]
    assert not list(desc.findall(addnodes.pending_xref)) and not list(link.findall(addnodes.pending_xref))


# --- the docstrings build with -W -n -----------------------------------------------------------------------------


def test_api_pages_document_every_public_module():
    documented = {m for block in api_blocks(ROOT / "book" / "api") for m in re.findall(r"automodule:: (\S+)", block)}
    assert documented == set(gdlab_apilinks.public_modules())


def test_docstrings_build_without_warnings(tmp_path):
    assert docstring_warnings(api_blocks(ROOT / "book" / "api"), tmp_path) == []


def test_docstring_check_has_power(tmp_path, monkeypatch):
    (tmp_path / "fake_api.py").write_text('''"""A module."""


def f(x):
    """The norm |x| of :func:`no_such_function`."""
''', encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "build").mkdir()
    found = docstring_warnings([".. automodule:: fake_api\n"], tmp_path / "build")
    assert any("Undefined substitution" in w for w in found), found
    assert any("no_such_function" in w for w in found), found


# --- the built book -------------------------------------------------------------------------------------------


def test_every_public_object_is_on_an_api_page(html):
    inventory = read_inventory(html / "objects.inv")
    assert undocumented(PUBLIC, inventory) == []
    for module in gdlab_apilinks.public_modules():
        assert inventory.get(module, ("", ""))[0] == "module", module


def test_general_index_is_filled_and_reachable(html):
    genindex = (html / "genindex.html").read_text(encoding="utf-8")
    assert genindex.count('href="book/api/') >= len(PUBLIC)
    assert 'href="../../genindex.html"' in (html / "book" / "api" / "index.html").read_text(encoding="utf-8")
    assert 'href="../../py-modindex.html"' in (html / "book" / "api" / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapters_link_their_first_mentions_to_the_api(html, chapter):
    links = api_links((html / "book" / f"{chapter}.html").read_text(encoding="utf-8"))
    assert len(links) >= 2, "a chapter mentions the gdlab package and at least one of its functions"
    assert dangling(links, html) == []
    targets = [href.partition("#")[2] for href, _ in links]
    assert len(targets) == len(set(targets)), "an object is linked more than once on the page"


def test_dangling_link_check_has_power(html):
    assert dangling([("api/ch01.html#gdlab.nets.mlp_grad", "nets.mlp_grad")], html) == []
    assert dangling([("api/ch01.html#gdlab.nets.no_such_function", "x")], html) == [
        "api/ch01.html#gdlab.nets.no_such_function"]
    assert dangling([("api/no_page.html", "x")], html) == ["api/no_page.html"]
