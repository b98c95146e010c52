"""The chapters' explorers: controls, live image and the page's static figure (widget layer; imports plots and compute).

Each chapter's explorer is an :class:`Explorer`: the chapter's experiment spec (``gdlab.experiments.chNN.SPEC``, the
one home of its settings) and its figure (``gdlab.plots.chNN.View``, created on first use, one per explorer).
``update(**settings)`` redraws the figure, ``frame(**settings)`` gives its PNG with the alt text and the status line,
and ``controls()`` the ipywidgets controls, derived from the spec by :func:`control_widget`. ``EXPLORERS`` registers
every explorer by name (``"ch01 landscape"`` .. ``"ch07 deep linear"``), for the benchmarks and the book build.

Pattern used on every chapter page: one cell ``live(explorer)``. In a running notebook it shows the controls, the
figure as an image that each change of a control replaces, and a status line in words; the callback never raises:
bad settings are reported in the status line and the image is kept. When the book is built, the kernels that execute
the notebooks have ``GDLAB_STATIC_EXPLORERS=1`` in their environment (set by book/_ext/gdlab_explorer.py): there
``live`` returns a :class:`StaticExplorer`, the default frame marked with the explorer's name, which the book's
extension replaces by the page's controls over states drawn at build time (``SPEC.page_states()``).
"""

from __future__ import annotations

import base64
import html
import math
import os
from typing import NamedTuple

import ipywidgets as widgets
from matplotlib.figure import Figure

from . import experiments, plots
from .plots.style import ExplorerView, png_bytes
from .spec import Control, Spec

#: Environment variable that makes :func:`live` show the default figure instead of controls (the book build).
STATIC_ENV = "GDLAB_STATIC_EXPLORERS"

#: Keyword arguments of the sliders: redraw on release (not while dragging), full-width descriptions.
SLIDER_STYLE = {"continuous_update": False, "style": {"description_width": "initial"}}


class Frame(NamedTuple):
    """One drawn state of an explorer: its PNG (:func:`gdlab.plots.style.png_bytes`), alt text and status line."""

    png: bytes
    alt: str
    status: str


class Explorer:
    """A chapter's explorer: ``name`` (the registry key), ``chapter`` ("1".."7"), its ``spec``, its figure (an
    instance of ``view``, a :class:`gdlab.plots.style.ExplorerView` subclass, created on first use) and a one-line
    ``description``."""

    def __init__(self, name: str, chapter: str, spec: Spec, view: type[ExplorerView], description: str = ""):
        self.name, self.chapter, self.spec, self.description = name, chapter, spec, description
        self._view_class = view
        self._view: ExplorerView | None = None

    def __repr__(self) -> str:
        return f"Explorer({self.name!r}, chapter {self.chapter}, controls {list(self.spec.names)})"

    @property
    def defaults(self) -> dict:
        """The default settings, ``spec.defaults`` (a new dict on every call)."""
        return self.spec.defaults

    @property
    def view(self) -> ExplorerView:
        """The explorer's figure view (created on first use)."""
        if self._view is None:
            self._view = self._view_class()
        return self._view

    def update(self, **settings) -> Figure:
        """Draw these settings (the others at their defaults); returns the same Figure on every call. Raises
        ``ValueError`` for bad settings, before the figure is touched."""
        return self.view.update(**settings)

    def frame(self, **settings) -> Frame:
        """Draw these settings and return the PNG, the alt text and the status line."""
        fig = self.update(**settings)
        return Frame(png_bytes(fig), self.view.alt, self.view.status)

    def controls(self) -> dict[str, widgets.Widget]:
        """``{name: widget}``: one control per setting of the spec (:func:`control_widget`), at its default."""
        return {control.name: control_widget(control) for control in self.spec.controls}


def control_widget(control: Control) -> widgets.Widget:
    """The ipywidgets control of a spec's :class:`~gdlab.spec.Control`, at its default: an ``IntSlider`` (int), a
    ``FloatSlider`` (float), a ``FloatLogSlider`` in base 10 (log; ``step`` in decades), a ``Dropdown`` (choice) or
    a ``SelectionSlider`` (choice with ``slider=True``); it redraws on release, labelled with ``control.label``."""
    common = {"value": control.default, "description": control.label, **SLIDER_STYLE}
    if control.kind == "choice" and not control.slider:
        return widgets.Dropdown(options=list(control.options), value=control.default, description=control.label,
                                style=SLIDER_STYLE["style"])
    if control.kind == "choice":
        return widgets.SelectionSlider(options=list(control.options), **common)
    if control.kind == "log":
        return widgets.FloatLogSlider(base=10, min=math.log10(control.low), max=math.log10(control.high),
                                      step=control.step or 0.05, readout_format=".3g", **common)
    cls = widgets.IntSlider if control.kind == "int" else widgets.FloatSlider
    return cls(min=control.low, max=control.high, step=control.step or (1 if control.kind == "int" else 0.1), **common)


def _message(exc: ValueError) -> str:
    return f"Cannot draw these settings: {exc}"


def safe_update(explorer: Explorer, **settings) -> Figure | str:
    """``explorer.update``: the figure, or a message string if the settings are invalid (never raises for them)."""
    try:
        return explorer.update(**settings)
    except ValueError as exc:
        return _message(exc)


def safe_frame(explorer: Explorer, **settings) -> Frame | str:
    """``explorer.frame``: the frame, or a message string if the settings are invalid (never raises for them)."""
    try:
        return explorer.frame(**settings)
    except ValueError as exc:
        return _message(exc)


class StaticExplorer:
    """What ``live(explorer)`` shows in the book build: the default frame, as a PNG and as a marked-up image with its
    alt text and status line (``<div class="gdlab-page-explorer" data-explorer="NAME">``), which the book's extension
    replaces by the page's controls."""

    def __init__(self, explorer: Explorer):
        self.explorer = explorer
        self.frame = explorer.frame(**explorer.defaults)

    def html(self) -> str:
        """The default frame as marked-up HTML: the image with its alt text, and the status line under it."""
        name, alt, status = (html.escape(text, quote=True) for text in (self.explorer.name, self.frame.alt,
                                                                         self.frame.status))
        src = "data:image/png;base64," + base64.b64encode(self.frame.png).decode("ascii")
        return (f'<div class="gdlab-page-explorer" data-explorer="{name}"><img alt="{alt}" src="{src}">'
                f'<p class="gdlab-explorer-status">{status}</p></div>')

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"image/png": base64.b64encode(self.frame.png).decode("ascii"), "text/plain": self.frame.alt,
                "text/html": self.html()}


def live(explorer: Explorer) -> widgets.Widget | StaticExplorer:
    """The explorer in a running kernel: its controls, the figure as an image that every change of a control replaces
    by ``explorer.frame(...).png``, and a status line with the figure's description (its alt text) folded under it
    (bad settings: the message, and the image is kept). Where ``GDLAB_STATIC_EXPLORERS=1`` (the book build): a
    :class:`StaticExplorer`."""
    if os.environ.get(STATIC_ENV) == "1":
        return StaticExplorer(explorer)
    controls = explorer.controls()
    image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
    status = widgets.HTML()

    def redraw(_change=None) -> None:
        result = safe_frame(explorer, **{name: control.value for name, control in controls.items()})
        if isinstance(result, str):
            status.value = f'<span class="gdlab-explorer-error">{html.escape(result)}</span>'
            return
        image.value = result.png  # (no tooltip: an Image has no description, and ipywidgets 8.1 fails on it)
        status.value = (f"{html.escape(result.status)}<details><summary>What the figure shows</summary>"
                        f"{html.escape(result.alt)}</details>")

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    row = widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
    return widgets.VBox([row, image, status])


def _register(*explorers: Explorer) -> dict[str, Explorer]:
    return {explorer.name: explorer for explorer in explorers}


#: Every chapter's explorer by name (the benchmarks time ``update(**spec.defaults)``; the book draws the page states).
EXPLORERS: dict[str, Explorer] = _register(
    Explorer("ch01 landscape", "1", experiments.ch01.SPEC, plots.ch01.View,
             "Gradient descent on a convex, a non-convex but healthy ('bulge') and a trap landscape."),
    Explorer("ch02 gd vs flow", "2", experiments.ch02.SPEC, plots.ch02.View,
             "Gradient descent against the gradient flow: loss and distance at equal time, for eta * L up to 8."),
    Explorer("ch03 health", "3", experiments.ch03.SPEC, plots.ch03.View,
             "Loss of GD and of the flow on one data point against the idealised and the rigorous bounds."),
    Explorer("ch04 ntk", "4", experiments.ch04.SPEC, plots.ch04.View,
             "Lazy training of a wide two-layer ReLU net: loss against the bounds, kernel drift, function against the "
             "kernel predictor."),
    Explorer("ch05 params", "5", experiments.ch05.SPEC, plots.ch05.View,
             "Gradient descent on a small ReLU net: K parameters against QN outputs, the rank of D, the final cost."),
    Explorer("ch06 saddles", "6", experiments.ch06.SPEC, plots.ch06.View,
             "Escaping the strict saddle of f = x^2/2 + y^4/4 - y^2/2 with GD, noisy GD, perturbed GD or SGLD."),
    Explorer("ch07 deep linear", "7", experiments.ch07.SPEC, plots.ch07.View,
             "Gradient descent on a deep linear network: loss, balancedness, and eta against 2 / lambda_max."),
)
