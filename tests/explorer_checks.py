"""Helpers shared by the explorer tests (tests/test_explorers.py and the chapter tests; imported by name:
``from explorer_checks import ...``).

Kept out of ``conftest.py`` because ``tests/browser`` has a conftest of its own: ``from conftest import`` would be
ambiguous when the whole suite is collected.
"""

from __future__ import annotations

import itertools
import math
import warnings

import matplotlib.pyplot as plt
from gdlab import widgets
from gdlab.spec import Control, Spec


def control_ends(control: Control) -> tuple:
    """The two extreme values of a control as the spec writes them: ``(low, high)``, or the first and last option."""
    if control.kind == "choice":
        return control.options[0], control.options[-1]
    return control.low, control.high


def widget_ends(widget) -> tuple:
    """The two extreme values a reader can set on an ipywidgets control (a log slider's ends are ``base**min``,
    ``base**max``; a drop-down's or selection slider's its first and last option)."""
    options = getattr(widget, "options", None)
    if options is not None:
        values = [o[1] if isinstance(o, tuple) else o for o in options]
        return values[0], values[-1]
    if hasattr(widget, "base"):
        return widget.base**widget.min, widget.base**widget.max
    return widget.min, widget.max


def just_outside(control: Control) -> tuple:
    """Values just outside the control's range, that validation must reject: one step (int), the next float (float),
    a relative 1e-6 (log) beyond each end, or a value that is not an option (choice)."""
    if control.kind == "choice":
        return ("not an option",)
    if control.kind == "int":
        return control.low - 1, control.high + 1
    if control.kind == "log":
        return control.low * (1 - 1e-6), control.high * (1 + 1e-6)
    return math.nextafter(control.low, -math.inf), math.nextafter(control.high, math.inf)


def corners(spec: Spec) -> list[dict]:
    """Every combination of the extreme values of the spec's controls (:func:`control_ends`)."""
    return [dict(zip(spec.names, combo, strict=True))
            for combo in itertools.product(*(control_ends(c) for c in spec.controls))]


def draws_cleanly(explorer: widgets.Explorer, settings: dict) -> widgets.Frame:
    """The explorer draws ``settings`` (as a PNG frame) without raising and without any warning (overflow, invalid
    values); returns the frame."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = explorer.frame(**settings)
    plt.close("all")
    return frame


def figure_texts(fig) -> str:
    """The visible texts of a figure and of its axes, joined by spaces."""
    texts = [t for t in fig.texts if t.get_visible()] + [t for ax in fig.axes for t in ax.texts if t.get_visible()]
    return " ".join(t.get_text() for t in texts)
