"""Helpers shared by the explorer tests (tests/test_explorers.py and the chapter tests; imported by name:
``from explorer_checks import ...``).

Kept out of ``conftest.py`` because ``tests/browser`` has a conftest of its own: ``from conftest import`` would be
ambiguous when the whole suite is collected.
"""

from __future__ import annotations

import itertools
import math
import re
import warnings

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
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


# --- what a reader can see: texts without NaN / inf, no empty panels, divergence in words --------------------------------

#: A non-finite number printed as text: ``nan``, ``NaN``, ``inf``, ``-inf``, ``+Inf`` as whole words (not ``infinity``,
#: not inside a word such as ``lambda_inf`` or ``info``).
NONFINITE = re.compile(r"\b(?:nan|inf)\b", re.IGNORECASE)
#: Notation that spells ``inf`` on purpose and is not a number: chapter 3's limit loss ``l(inf)`` (the loss as t -> oo).
#: Each entry is removed, exactly as written, before :data:`NONFINITE` is looked for (``l(inf) = inf`` still fails).
NOTATION = ("l(inf)",)


def visible_texts(fig) -> list[tuple[str, str]]:
    """``(where, text)`` for every visible, non-empty text of a drawn figure: the figure's texts (and suptitle), and of
    each visible axes its three titles, axis labels, texts, legend (entries and title) and tick labels."""
    out = []

    def add(where, text):
        if text is not None and text.get_visible() and text.get_text().strip():
            out.append((where, text.get_text()))

    for text in [*fig.texts, getattr(fig, "_suptitle", None)]:
        add("figure text", text)
    for legend in fig.legends:
        for text in [*legend.get_texts(), legend.get_title()]:
            add("figure legend", text)
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        for text in (ax.title, ax._left_title, ax._right_title):
            add(f"axes {i} title", text)
        add(f"axes {i} x label", ax.xaxis.label)
        add(f"axes {i} y label", ax.yaxis.label)
        for text in ax.texts:
            add(f"axes {i} text", text)
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            for text in [*legend.get_texts(), legend.get_title()]:
                add(f"axes {i} legend", text)
        for axis, name in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            if axis.get_visible():
                for text in axis.get_ticklabels(which="both"):
                    add(f"axes {i} {name} tick label", text)
    return out


def nonfinite_problems(fig, alt: str, status: str) -> list[str]:
    """Every visible text of ``fig``, the alt text and the status line that prints a non-finite number
    (:data:`NONFINITE`, after removing :data:`NOTATION`): ``["where: 'text'", ...]``, empty if none."""
    problems = []
    for where, text in [*visible_texts(fig), ("alt", alt), ("status", status)]:
        scanned = text
        for notation in NOTATION:
            scanned = scanned.replace(notation, "")
        if NONFINITE.search(scanned):
            problems.append(f"{where} prints a non-finite number: {text!r}")
    return problems


def _inside(ax, x, y) -> bool:
    """Whether any point ``(x, y)`` (data coordinates) is finite and inside ``ax``'s view limits (positive on a log
    axis): something of it is drawn."""
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.size == 0 or x.size != y.size:
        return False
    keep = np.isfinite(x) & np.isfinite(y)
    for v, lim, scale in ((x, ax.get_xlim(), ax.get_xscale()), (y, ax.get_ylim(), ax.get_yscale())):
        with np.errstate(invalid="ignore"):
            keep &= (min(lim) <= v) & (v <= max(lim))
            if scale == "log":
                keep &= v > 0
    return bool(keep.any())


def shows_data(ax) -> bool:
    """Whether ``ax`` draws any data inside its view: a visible line (with markers, or two consecutive finite points:
    a single point of a line without markers draws nothing), collection (its segments, paths or offsets in data
    coordinates), image or patch with at least one finite point within the limits."""
    for line in ax.lines:
        if not line.get_visible():
            continue
        x, y = (np.asarray(v, dtype=float) for v in line.get_data())
        if line.get_marker() in (None, "", " ", "None", "none"):  # no markers: only a segment between two points shows
            with np.errstate(invalid="ignore"):
                ok = np.isfinite(x) & np.isfinite(y)
            if not (ok[1:] & ok[:-1]).any():
                continue
        if _inside(ax, x, y):
            return True
    for coll in ax.collections:
        if not coll.get_visible():
            continue
        offsets = np.asarray(coll.get_offsets())
        if offsets.size and offsets.ndim == 2 and _inside(ax, offsets[:, 0], offsets[:, 1]):
            return True
        if coll.get_transform() == ax.transData or hasattr(coll, "get_segments"):
            for path in coll.get_paths():
                if len(path.vertices) and _inside(ax, path.vertices[:, 0], path.vertices[:, 1]):
                    return True
    for image in ax.images:
        if image.get_visible() and np.any(np.isfinite(np.ma.filled(np.ma.asarray(image.get_array(), dtype=float),
                                                                  np.nan))):
            return True
    return any(patch.get_visible() for patch in ax.patches)


def empty_axes_problems(fig) -> list[str]:
    """The visible axes of ``fig`` that draw no data (:func:`shows_data`) and carry no visible message text of their
    own (``ax.text``) saying why: ``["axes i (labels) ...", ...]``, empty if none."""
    problems = []
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible() or shows_data(ax):
            continue
        if any(t.get_visible() and t.get_text().strip() for t in ax.texts):
            continue
        problems.append(f"axes {i} ({ax.get_xlabel()!r} / {ax.get_ylabel()!r}) draws no data and says nothing")
    return problems


#: The word a figure, its status line and its alt text use for a diverged run (:func:`gdlab.runs.diverged_text`).
DIVERGE = "diverge"


def divergence_problems(result, fig, alt: str, status: str) -> list[str]:
    """If the run ``result`` diverged by its own record (``result.diverged_at >= 0``, :mod:`gdlab.runs`): the places
    among the figure's visible texts, the status line and the alt text that do not say so (:data:`DIVERGE`)."""
    if int(result.diverged_at) < 0:
        return []
    where = {"figure": " ".join(text for _, text in visible_texts(fig)), "status": status, "alt": alt}
    return [f"the run diverged at step {int(result.diverged_at)} but the {name} does not say so: {text!r}"
            for name, text in where.items() if DIVERGE not in text.lower()]


# --- a reader's random walk over the controls ----------------------------------------------------------------------------


def _grid(widget) -> tuple[float, float, float]:
    """A slider's grid: ``(min, max, step)``, of its exponent for a log slider."""
    return widget.min, widget.max, widget.step


def widget_move(widget, rng: np.random.Generator) -> None:
    """Move one ipywidgets control as a reader can: a slider one step up or down on its grid (a log slider one step
    of its exponent, ``base**(min + j step)``), clipped to its ends; a selection slider to the next or previous
    option; a drop-down to a random option."""
    if isinstance(widget, ipywidgets.Dropdown):
        widget.value = widget.options[int(rng.integers(len(widget.options)))]
        return
    direction = int(rng.choice((-1, 1)))
    if isinstance(widget, ipywidgets.SelectionSlider):
        widget.index = min(max(widget.index + direction, 0), len(widget.options) - 1)
        return
    low, high, step = _grid(widget)
    if isinstance(widget, ipywidgets.FloatLogSlider):  # the frontend sets base**(min + j step)
        j = round((math.log(widget.value, widget.base) - low) / step) + direction
        widget.value = widget.base ** min(max(low + j * step, low), high)
        return
    j = round((widget.value - low) / step) + direction
    value = min(max(low + j * step, low), high)
    widget.value = int(value) if isinstance(widget, ipywidgets.IntSlider) else value


def widget_jump(widget, rng: np.random.Generator) -> None:
    """Set one ipywidgets control to a uniformly random value it offers: a point of a slider's grid (clipped to its
    ends), any option of a drop-down or selection slider (the start of a walk)."""
    if isinstance(widget, ipywidgets.Dropdown | ipywidgets.SelectionSlider):
        widget.index = int(rng.integers(len(widget.options)))
        return
    low, high, step = _grid(widget)
    value = min(low + int(rng.integers(math.floor((high - low) / step + 1e-9) + 2)) * step, high)
    if isinstance(widget, ipywidgets.FloatLogSlider):
        widget.value = widget.base**value
    else:
        widget.value = int(value) if isinstance(widget, ipywidgets.IntSlider) else value


def random_walk(explorer: widgets.Explorer, seed: int, steps: int) -> list[dict]:
    """A seeded walk over the explorer's ipywidgets controls (:meth:`Explorer.controls`), as a reader moves them: it
    starts at a random state of the controls (:func:`widget_jump` on each), then each of ``steps`` steps moves one
    randomly chosen control (:func:`widget_move`). Returns the start and the state after each step, as the live
    explorer passes them (``{name: widget.value}``)."""
    rng = np.random.default_rng(seed)
    controls = explorer.controls()
    names = list(controls)
    for widget in controls.values():
        widget_jump(widget, rng)
    out = [{name: control.value for name, control in controls.items()}]
    for _ in range(steps):
        widget_move(controls[names[int(rng.integers(len(names)))]], rng)
        out.append({name: control.value for name, control in controls.items()})
    return out
