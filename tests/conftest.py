"""Shared test helpers for the gdlab core tests.

``grad_report`` collects the worst relative error of every hand-derived gradient against central finite
differences (and of the other numerical checks); the values are printed in pytest's terminal summary, so a
run shows how close each gradient is, not just that it passed.

Bad-input tests run with warnings as errors (design.md, "Bad input": a bad argument raises ``ValueError`` before
any computation, so before any overflow or invalid-value warning). The rule is applied here, once, by
:func:`pytest_collection_modifyitems`: every test function whose source contains ``pytest.raises(ValueError`` gets
``@pytest.mark.filterwarnings("error")`` (the same as ``-W error`` for that test). A filter that a test or its module
states itself (``filterwarnings("ignore:...")``) still takes precedence for the warnings it names.

The tests of the built book take it from the fixture :func:`html` (skipped without a build, a failure under
``GDLAB_REQUIRE_BUILDS=1``; see ``site_paths.py``).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from site_paths import HTML_DIR, require_build

#: What marks a bad-input test: the text that :func:`bad_input_test` looks for in a test function's source.
BAD_INPUT = "pytest.raises(ValueError"


def bad_input_test(function) -> bool:
    """Whether ``function`` (a test function) checks that a bad input raises ``ValueError``."""
    try:
        return BAD_INPUT in inspect.getsource(function)
    except (OSError, TypeError):
        return False


@pytest.hookimpl(tryfirst=True)  # before -m selects: `pytest -m filterwarnings` runs the bad-input tests
def pytest_collection_modifyitems(items):
    """Bad-input tests (:func:`bad_input_test`) run with warnings as errors (see the module docstring)."""
    for item in items:
        function = getattr(item, "function", None)
        if function is not None and bad_input_test(function):
            # prepended: the test's and its module's own filterwarnings marks are applied after it, so they win
            item.add_marker(pytest.mark.filterwarnings("error"), append=False)

_WORST: dict[str, tuple[float, int]] = {}


@pytest.fixture(scope="session")
def grad_report():
    """``grad_report(name, value)``: remember the largest ``value`` seen under ``name`` (printed at the end)."""

    def record(name: str, value: float) -> None:
        worst, count = _WORST.get(name, (0.0, 0))
        _WORST[name] = (max(worst, float(value)), count + 1)

    return record


def pytest_terminal_summary(terminalreporter):
    if not _WORST:
        return
    terminalreporter.section("gdlab numerical checks: worst value over all instances (number of instances)")
    for name, (worst, count) in sorted(_WORST.items()):
        terminalreporter.write_line(f"{name:<58s} {worst:9.2e}  ({count})")


@pytest.fixture(scope="module")
def html(request) -> Path:
    """The built book (``site_paths.HTML_DIR``), once it holds ``index.html``, or the file that the test's module
    names in ``HTML_NEEDS``; else the test is skipped (failed under ``GDLAB_REQUIRE_BUILDS=1``)."""
    needs = getattr(request.module, "HTML_NEEDS", "index.html")
    return require_build(HTML_DIR, f"no built book in {HTML_DIR} (no {needs}): run `jupyter-book build .` first, "
                                   "or point GDLAB_HTML_DIR at a build", needs)
