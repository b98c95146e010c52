"""Helpers shared by the chapter tests of the explorers (imported by name: ``from explorer_checks import ...``).

Kept out of ``conftest.py`` because ``tests/browser`` has a conftest of its own: ``from conftest import`` would be
ambiguous when the whole suite is collected.
"""

from __future__ import annotations


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
