"""The library's layers (see ``gdlab/__init__.py``): compute modules import no plotting or widget code, the plot layer
no widget code; every module has its imports at the top; the book's layout: one plot module and one experiment
module per chapter.

Imports are read from the sources (every ``import`` statement, also inside functions), and checked once more by
importing the compute layer in a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import gdlab
import pytest
from gdlab import experiments, plots
from gdlab.plots.style import ExplorerView
from gdlab.spec import Spec

LIB = Path(gdlab.__file__).parent
CHAPTERS = [f"ch{i:02d}" for i in range(1, 8)]
#: What the compute layer must not import, and what the plot layer must not.
NOT_IN_COMPUTE = ("matplotlib", "ipywidgets", "IPython", "contourpy", "gdlab.plots", "gdlab.widgets")
NOT_IN_PLOTS = ("ipywidgets", "IPython", "gdlab.widgets")


def _module_name(path: Path) -> str:
    parts = path.relative_to(LIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


MODULES = {_module_name(p): p for p in sorted(LIB.rglob("*.py"))}
PLOTS = sorted(name for name in MODULES if name == "gdlab.plots" or name.startswith("gdlab.plots."))
COMPUTE = sorted(name for name in MODULES if name not in PLOTS and name != "gdlab.widgets")


def _imports(name: str) -> set[str]:
    """Every module that ``name``'s source imports, as absolute names (``from . import x`` gives ``pkg.x``)."""
    path = MODULES[name]
    package = name if _is_package(path) else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            out.add(module)
            out.update(f"{module}.{alias.name}" for alias in node.names)
    return out


def _forbidden(imported: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in imported for p in prefixes if m == p or m.startswith(p + "."))


def test_the_layers_are_the_ones_the_docstring_names():
    assert {"gdlab.spec", "gdlab.chain", "gdlab.saddles", "gdlab.experiments"} <= set(COMPUTE)
    assert {f"gdlab.experiments.{ch}" for ch in CHAPTERS} <= set(COMPUTE)
    assert set(PLOTS) == {"gdlab.plots", "gdlab.plots.style", *(f"gdlab.plots.{ch}" for ch in CHAPTERS)}


@pytest.mark.parametrize("name", COMPUTE)
def test_compute_modules_import_no_plots_or_widgets(name):
    assert _forbidden(_imports(name), NOT_IN_COMPUTE) == []


@pytest.mark.parametrize("name", PLOTS)
def test_plot_modules_import_no_widgets(name):
    assert _forbidden(_imports(name), NOT_IN_PLOTS) == []


def test_the_import_checks_see_relative_imports():
    """Power: the reader resolves ``from . import plots`` and ``from ..plots import x`` (the forms a violation
    would take in this package)."""
    assert "gdlab.plots" in _imports("gdlab.widgets")
    assert "gdlab.experiments.ch01" in _imports("gdlab.plots.ch01")
    assert "gdlab.spec" in _imports("gdlab.experiments.ch01")


def test_importing_the_compute_layer_loads_no_matplotlib_or_widgets():
    code = ("import sys, importlib\n"
            f"for name in {COMPUTE!r}:\n"
            "    importlib.import_module(name)\n"
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {NOT_IN_COMPUTE[:4]!r}"
            " or m.startswith(('gdlab.plots', 'gdlab.widgets')))\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def _late_imports(source: str) -> list[int]:
    """Lines of the top-level imports that follow a top-level statement other than an import or the docstring."""
    late, seen_other = [], False
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            if seen_other:
                late.append(node.lineno)
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            seen_other = True
    return late


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_come_first(name):
    """No mid-file imports: after the docstring, every top-level import precedes every other top-level statement."""
    assert _late_imports(MODULES[name].read_text()) == []


def test_late_imports_are_found():
    source = '"""Doc."""\n\nimport numpy as np\n\nX = 1\n\nfrom . import plots  # noqa: E402\n'
    assert _late_imports(source) == [7]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_each_chapter_has_an_experiment_and_a_plot_module(chapter):
    experiment, figures = getattr(experiments, chapter), getattr(plots, chapter)
    assert isinstance(experiment.SPEC, Spec) and callable(experiment.run)
    assert issubclass(figures.View, ExplorerView) and figures.View.run is experiment.run
