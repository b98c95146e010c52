"""The library reference and the chapters: what is public in ``gdlab``, and links from a chapter's prose to it.

The reference pages (``book/api/``) render the docstrings of ``lib/gdlab`` with ``sphinx.ext.autodoc``. This
extension does two things for them:

* it defines what is public, once (:func:`public_objects`): every module of ``gdlab`` whose dotted name has no part
  starting with ``_``; in each, the names of its ``__all__`` if it has one, else its names that do not start with
  ``_``; of those, the functions and classes (a name re-exported from another module counts once, under the module
  that defines it), and the methods and properties of those classes whose names do not start with ``_``.
  ``tests/test_api_page.py`` checks that each is documented in the built book;
* it links a chapter's first mention of each library function to its entry: after every page is read (a post-
  transform, so the reference's entries are all known), the first inline literal of a page that names a documented
  ``gdlab`` object (``nets.mlp_grad``, ``gdlab.flow.gradient_flow``, ``bounds.health_envelope(t, l0, ...)``, or a
  bare function or class name that only one public object has, like ``lipschitz_on_box``) becomes a reference to it;
  later mentions of the same object on that page stay plain code. The notebooks are not edited: in Jupyter they read
  as before.

It also leaves out of a class's entry the fields of the ``NamedTuple`` results (their only docstring is Python's
"Alias for field number N"; each class's docstring describes its fields) and the functions the class holds without
defining them (:func:`foreign_function`).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
import re

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms.post_transforms import SphinxPostTransform

PACKAGE = "gdlab"
#: An inline literal that may name an object: a dotted name, optionally called (``f(x, y)`` names ``f``).
NAME = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(?:\(.*\))?")
#: Python domain object types that a literal may link to (not data or attributes: ``D`` or ``M`` in prose is a
#: matrix, not ``experiments.ch07.D``).
LINKABLE = frozenset({"module", "function", "class", "method", "property", "exception"})
#: Object types that a bare name (no dot) may link to.
BARE = frozenset({"function", "class", "exception"})
#: Where a literal is not prose to link: already a link, a heading, or the reference's own entries.
NO_LINK_INSIDE = (nodes.reference, addnodes.pending_xref, nodes.title, addnodes.desc)


def public_modules(package: str = PACKAGE) -> list[str]:
    """The dotted names of ``package`` and its modules, without those with a part starting with ``_``, sorted."""
    root = importlib.import_module(package)
    names = [package] + [m.name for m in pkgutil.walk_packages(root.__path__, package + ".")]
    return sorted(n for n in names if not any(part.startswith("_") for part in n.split(".")))


def foreign_function(obj, package: str = PACKAGE) -> bool:
    """Whether ``obj`` is a function (or static/class method) that a class holds but did not define in its body:
    a module-level function stored as a class attribute (a view's ``run = staticmethod(experiments.chNN.run)``) or
    one made by another package (matplotlib gives every ``Artist`` subclass a ``set`` method)."""
    func = inspect.unwrap(getattr(obj, "__func__", obj))
    if not inspect.isfunction(func):
        return False
    return "." not in func.__qualname__ or not func.__module__.startswith(package)


def _defined_members(cls: type) -> dict[str, str]:
    """Public methods and properties defined in the body of ``cls``: ``{name: "method" | "property"}``."""
    found = {}
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, property):
            found[name] = "property"
        elif inspect.isfunction(inspect.unwrap(getattr(value, "__func__", value))) and not foreign_function(value):
            found[name] = "method"
    return found


def public_objects(package: str = PACKAGE) -> tuple[dict[str, str], dict[str, str]]:
    """Every public function, class, method and property of ``package`` (see the module docstring).

    Returns ``(objects, aliases)``: ``objects`` maps each canonical dotted name (where the object is defined) to its
    kind (``"function"``, ``"class"``, ``"method"``, ``"property"``); ``aliases`` maps each public name under which
    another module re-exports one of them (``gdlab.plots.width_figure``) to its canonical name.
    """
    objects, aliases = {}, {}
    for modname in public_modules(package):
        module = importlib.import_module(modname)
        names = getattr(module, "__all__", None)
        if names is None:
            names = [n for n in vars(module) if not n.startswith("_")]
        for name in names:
            obj = getattr(module, name)
            if not (inspect.isfunction(inspect.unwrap(obj)) or inspect.isclass(obj)):
                continue  # a module, a constant
            if not obj.__module__.startswith(package):
                continue  # imported from another package
            canonical = f"{obj.__module__}.{obj.__qualname__}"
            if obj.__module__ != modname:
                if names is getattr(module, "__all__", None):
                    aliases[f"{modname}.{name}"] = canonical
                continue
            objects[canonical] = "class" if inspect.isclass(obj) else "function"  # a cached function too
            if inspect.isclass(obj):
                objects.update({f"{canonical}.{m}": kind for m, kind in _defined_members(obj).items()})
    return objects, aliases


def link_index(documented: dict[str, str], aliases: dict[str, str]) -> dict[str, str]:
    """``{name: target}`` for every name a literal may use, from the documented ``{fullname: objtype}``.

    A documented object of a :data:`LINKABLE` type is named by its full name and by every dotted tail of it that
    no other such object shares (``nets.mlp_grad``, ``MLPProblem.loss_grad``); a bare tail (``mlp_grad``) only for
    the types in :data:`BARE`. A re-export (``aliases``) names its canonical object the same way.
    """
    full = {name: name for name, kind in documented.items() if kind in LINKABLE}
    full.update({alias: target for alias, target in aliases.items() if target in full})
    tails: dict[str, set[str]] = {}
    for name, target in full.items():
        parts = name.split(".")
        for i in range(1, len(parts)):
            tail = ".".join(parts[i:])
            if "." in tail or documented[target] in BARE:
                tails.setdefault(tail, set()).add(target)
    index = {tail: targets.pop() for tail, targets in tails.items() if len(targets) == 1}
    index.update(full)
    return index


def literal_target(text: str, index: dict[str, str]) -> str | None:
    """The full name of the object the inline literal ``text`` names in ``index``, or ``None``."""
    match = NAME.fullmatch(text.strip())
    return index.get(match["name"]) if match else None


def link_first_mentions(doctree: nodes.Node, index: dict[str, str]) -> list[str]:
    """Turn the first inline literal naming each object of ``index`` into a ``py:obj`` reference to it.

    Returns the full names linked, in the order of the page. The references are ``pending_xref`` nodes, which
    Sphinx resolves afterwards like any ``{py:obj}`` role (and reports, under ``-n``, if one did not resolve).
    """
    linked: list[str] = []
    for literal in list(doctree.findall(nodes.literal)):
        target = literal_target(literal.astext(), index)
        if target is None or target in linked:
            continue
        if any(isinstance(a, NO_LINK_INSIDE) for a in _ancestors(literal)):
            continue
        xref = addnodes.pending_xref("", refdomain="py", reftype="obj", reftarget=target, refexplicit=True,
                                     refwarn=True, py_module=None, py_class=None)
        literal.replace_self(xref)
        xref += literal
        linked.append(target)
    return linked


def _ancestors(node: nodes.Node):
    node = node.parent
    while node is not None:
        yield node
        node = node.parent


class FirstMentionLinks(SphinxPostTransform):
    """Link each page's first mention of each documented ``gdlab`` object (before references are resolved)."""

    default_priority = 5  # before sphinx's ReferencesResolver (10)

    def run(self, **kwargs) -> None:
        domain = self.env.get_domain("py")
        documented = {name: entry.objtype for name, entry in domain.objects.items()
                      if name.startswith(PACKAGE + ".") or name == PACKAGE}
        if not documented:
            return
        _, aliases = _public_objects_once()
        link_first_mentions(self.document, link_index(documented, aliases))


@functools.cache
def _public_objects_once() -> tuple[dict[str, str], dict[str, str]]:
    return public_objects()


def skip_member(app, what, name, obj, skip, options):
    """``autodoc-skip-member``: leave out of a class's entry a ``NamedTuple`` field (docstring "Alias for field
    number N") and a :func:`foreign_function`, which is documented where it is defined, if at all."""
    if what != "class":
        return None
    if (getattr(obj, "__doc__", None) or "").startswith("Alias for field number") or foreign_function(obj):
        return True
    return None


def setup(app):
    app.add_post_transform(FirstMentionLinks)
    app.connect("autodoc-skip-member", skip_member)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
