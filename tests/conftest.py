"""Shared test helpers for the gdlab core tests.

``grad_report`` collects the worst relative error of every hand-derived gradient against central finite
differences (and of the other numerical checks); the values are printed in pytest's terminal summary, so a
run shows how close each gradient is, not just that it passed.
"""

from __future__ import annotations

import pytest

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


# --- explorers ---------------------------------------------------------------------------------------------------


def explorer_corners(name: str) -> list[dict]:
    """Every combination of the extreme values of each control of explorer ``name`` (sliders: min and max; selection
    sliders and dropdowns: first and last option), as a reader can set them. Used to parametrise explorer tests."""
    import itertools

    from gdlab import widgets

    def ends(widget):
        options = getattr(widget, "options", None)
        if options is not None:
            values = [o[1] if isinstance(o, tuple) else o for o in options]
            return [values[0], values[-1]]
        if hasattr(widget, "base"):  # log slider: min and max are exponents
            return [widget.base**widget.min, widget.base**widget.max]
        return [widget.min, widget.max]

    controls = widgets.EXPLORERS[name].controls()
    values = {key: ends(widget) for key, widget in controls.items()}
    return [dict(zip(values, combo, strict=True)) for combo in itertools.product(*values.values())]


def check_explorer_draws(name: str, settings: dict) -> None:
    """Explorer ``name`` draws ``settings`` without raising and without any warning (overflow, invalid values)."""
    import warnings

    import matplotlib.pyplot as plt
    from gdlab import widgets
    from matplotlib.figure import Figure

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = widgets.safe_update(widgets.EXPLORERS[name], **settings)
        assert isinstance(result, Figure), result
        result.canvas.draw()
    plt.close("all")
