"""ipywidgets explorers over the plot functions (widget layer; imports plots and compute).

Each chapter's explorer is an :class:`Explorer`: a plot function ``update(**settings) -> Figure`` with its
default settings and a factory for the controls. :func:`live` wires the controls to ``update``; the callback
never raises: bad settings are reported as text in place of the figure. ``EXPLORERS`` registers every
explorer by name so that ``benchmarks/run.py`` can time the callbacks at their default settings.

Pattern used on every chapter page: one cell ``live(explorer)``. In a running notebook it shows the controls and
the figure. When the book is built, the kernels that execute the notebooks have ``GDLAB_STATIC_EXPLORERS=1`` in
their environment (set by book/_ext/gdlab_explorer.py): there ``live`` returns the figure for the default settings,
so the page shows a real figure computed at build time, never a slider that does nothing (and embeds no widget
state). The admonition after the cell (class ``gdlab-explorer-live``) tells the reader how to move the controls.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display
from matplotlib.figure import Figure

from . import plots  # noqa: F401  (the layer below; chapter sections use it)
from .landscapes import LANDSCAPES


@dataclass(frozen=True)
class Explorer:
    """An explorer: ``update(**settings) -> Figure``, its ``defaults``, and ``controls() -> {name: widget}``."""

    name: str
    chapter: str
    update: Callable[..., Figure]
    defaults: dict
    controls: Callable[[], dict[str, widgets.Widget]]
    description: str = field(default="")


def safe_update(explorer: Explorer, **settings) -> Figure | str:
    """Run ``explorer.update``; return the figure, or a message string if the settings are invalid."""
    try:
        return explorer.update(**settings)
    except ValueError as exc:
        return f"Cannot draw these settings: {exc}"


#: Environment variable that makes :func:`live` show the default figure instead of controls (the book build).
STATIC_ENV = "GDLAB_STATIC_EXPLORERS"


def live(explorer: Explorer) -> widgets.Widget | Figure:
    """Controls plus an output area that redraws ``explorer.update`` whenever a control changes.

    Where ``GDLAB_STATIC_EXPLORERS=1`` (the kernels of the book build), the figure for ``explorer.defaults`` instead.
    """
    if os.environ.get(STATIC_ENV) == "1":
        return explorer.update(**explorer.defaults)
    controls = explorer.controls()
    out = widgets.Output()

    def redraw(**settings):
        result = safe_update(explorer, **settings)
        with out:
            out.clear_output(wait=True)
            if isinstance(result, str):
                print(result)
            else:
                display(result)
                plt.close(result)

    interactive = widgets.interactive_output(redraw, controls)
    box = widgets.VBox([widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap")), out])
    box.children += (interactive,)
    return box


EXPLORERS: dict[str, Explorer] = {}

#: Keyword arguments shared by every slider: redraw on release (not while dragging), full-width descriptions.
SLIDER_STYLE = {"continuous_update": False, "style": {"description_width": "initial"}}


def log_slider(value: float, low_exp: float, high_exp: float, description: str, step: float = 0.05):
    """A base-10 logarithmic slider from ``10**low_exp`` to ``10**high_exp`` (step sizes of every chapter)."""
    return widgets.FloatLogSlider(value=value, base=10, min=low_exp, max=high_exp, step=step, readout_format=".3g",
                                  description=description, **SLIDER_STYLE)


def draw_slider(value: int, high: int):
    """The "draw" slider: which random initialisation (and data) to use, ``0..high``."""
    return widgets.IntSlider(value=value, min=0, max=high, description="draw", **SLIDER_STYLE)


def register(explorer: Explorer) -> Explorer:
    """Add ``explorer`` to ``EXPLORERS`` (used by the benchmarks) and return it."""
    EXPLORERS[explorer.name] = explorer
    return explorer


# --- chapter 1 -------------------------------------------------------------------------------------------

# Chapter 1: gradient descent on the 2-D landscapes (convex, bulge, trap) from a start point chosen by the reader.

_CH01_BOX = (
    min(ls.box[0] for ls in LANDSCAPES.values()),
    max(ls.box[1] for ls in LANDSCAPES.values()),
    min(ls.box[2] for ls in LANDSCAPES.values()),
    max(ls.box[3] for ls in LANDSCAPES.values()),
)
CH01_DEFAULTS = {"landscape": "bulge", "x0": 1.8, "y0": 1.6, "eta": 0.3, "n_steps": 60}


def _ch01_controls() -> dict[str, widgets.Widget]:
    """Controls of the chapter-1 explorer: landscape, start point, step size (log scale), number of steps."""
    d = CH01_DEFAULTS
    x_lo, x_hi, y_lo, y_hi = _CH01_BOX
    common = SLIDER_STYLE
    return {
        "landscape": widgets.Dropdown(options=list(LANDSCAPES), value=d["landscape"], description="landscape"),
        "x0": widgets.FloatSlider(value=d["x0"], min=x_lo, max=x_hi, step=0.05, description="start x0", **common),
        "y0": widgets.FloatSlider(value=d["y0"], min=y_lo, max=y_hi, step=0.05, description="start y0", **common),
        "eta": log_slider(d["eta"], -3, 0.5, "step size eta"),
        "n_steps": widgets.IntSlider(value=d["n_steps"], min=1, max=500, step=1, description="steps", **common),
    }


#: One persistent figure for the chapter-1 explorer: each callback updates it in place (fast; see
#: :class:`gdlab.plots.LandscapeExplorerView`) and returns it.
ch01_view = plots.LandscapeExplorerView()

ch01_landscape = register(Explorer(
    name="ch01 landscape",
    chapter="1",
    update=ch01_view.update,
    defaults=dict(CH01_DEFAULTS),
    controls=_ch01_controls,
    description="Gradient descent on a convex, a non-convex but healthy ('bulge') and a trap landscape.",
))


# --- chapter 2 -------------------------------------------------------------------------------------------

# Chapter 2: gradient descent against the gradient flow, on the chapter's MLP or on a quadratic with known L.
# The step is set as eta * L (L = the quadratic's smoothness constant, or lambda_max(Hess f(w0)) for the MLP), so
# that the threshold 2/L sits at 2 for both problems.

CH02_DEFAULTS = {"problem": "quadratic", "step": 0.5, "steps": 100}


def _ch02_controls() -> dict[str, widgets.Widget]:
    """Controls of the chapter-2 explorer: problem, step size as eta * L (log scale), number of steps."""
    d = CH02_DEFAULTS
    lo, hi = plots.CH02_STEP_RANGE
    s_lo, s_hi = plots.CH02_STEPS_RANGE
    return {
        "problem": widgets.Dropdown(options=["quadratic", "MLP"], value=d["problem"], description="problem"),
        "step": log_slider(d["step"], float(np.log10(lo)), float(np.log10(hi)), "step size eta * L", step=0.02),
        "steps": widgets.IntSlider(value=d["steps"], min=s_lo, max=s_hi, step=5, description="steps",
                                   **SLIDER_STYLE),
    }


ch02_gd_vs_flow = register(Explorer(
    name="ch02 gd vs flow",
    chapter="2",
    update=plots.gd_flow_explorer_figure,
    defaults=dict(CH02_DEFAULTS),
    controls=_ch02_controls,
    description="Gradient descent against the gradient flow: loss and distance at equal time, for eta * L up to 8.",
))


# --- chapter 3 -------------------------------------------------------------------------------------------

# Chapter 3: the one-data-point network trained by GD and by the flow, against the idealised and rigorous bounds.

CH03_DEFAULTS = dict(plots.CH03_DEFAULTS)


def _ch03_controls() -> dict[str, widgets.Widget]:
    """Controls of the chapter-3 explorer: m, k, n, step size (log scale), steps and the draw (a new random start)."""
    d = CH03_DEFAULTS
    return {
        "m": widgets.IntSlider(value=d["m"], min=1, max=16, description="input dim m", **SLIDER_STYLE),
        "k": widgets.IntSlider(value=d["k"], min=1, max=256, description="width k", **SLIDER_STYLE),
        "n": widgets.IntSlider(value=d["n"], min=1, max=8, description="outputs n", **SLIDER_STYLE),
        "eta": log_slider(d["eta"], -4, -0.5, "step size eta"),
        "steps": widgets.IntSlider(value=d["steps"], min=10, max=1000, step=10, description="steps", **SLIDER_STYLE),
        "draw": draw_slider(d["draw"], 999),
    }


ch03_health = register(Explorer(
    name="ch03 health",
    chapter="3",
    update=plots.health_explorer_figure,
    defaults=dict(CH03_DEFAULTS),
    controls=_ch03_controls,
    description="Loss of GD and of the flow on one data point against the idealised and the rigorous bounds.",
))


# --- chapter 4 -------------------------------------------------------------------------------------------

# Chapter 4: the Du et al. net on seven inputs on the circle: loss against the bounds, the kernel's drift, and the
# trained function against the kernel predictor, for a width, a step size, a number of steps and an initialisation.


def _ch04_controls() -> dict[str, widgets.Widget]:
    """Controls of the chapter-4 explorer: width (a ladder of values), step size (log scale), steps, draw."""
    d = plots.CH04_DEFAULTS
    return {
        "m": widgets.SelectionSlider(options=list(plots.CH04_WIDTHS), value=d["m"], description="width m",
                                     **SLIDER_STYLE),
        "eta": log_slider(d["eta"], -2, 0.5, "step size eta"),
        "steps": widgets.IntSlider(value=d["steps"], min=10, max=200, step=10, description="steps", **SLIDER_STYLE),
        "draw": draw_slider(d["draw"], 99),
    }


ch04_ntk = register(Explorer(
    name="ch04 ntk",
    chapter="4",
    update=plots.ntk_explorer_figure,
    defaults=dict(plots.CH04_DEFAULTS),
    controls=_ch04_controls,
    description="Lazy training of a wide two-layer ReLU net: loss against the bounds, kernel drift, function against "
                "the kernel predictor.",
))


# --- chapter 5 -------------------------------------------------------------------------------------------

# Chapter 5: a one-hidden-layer ReLU net with Q = 6 outputs: width and number of inputs set K against QN; generic or
# clustered data.


def _ch05_controls() -> dict[str, widgets.Widget]:
    """Controls of the chapter-5 explorer: width, number of inputs, generic or clustered data, draw."""
    d = plots.CH05_DEFAULTS
    return {
        "width": widgets.IntSlider(value=d["width"], min=1, max=8, description="width W", **SLIDER_STYLE),
        "n_points": widgets.IntSlider(value=d["n_points"], min=2, max=12, description="inputs N", **SLIDER_STYLE),
        "data": widgets.Dropdown(options=["generic", "clustered"], value=d["data"], description="data"),
        "draw": draw_slider(d["draw"], 99),
    }


ch05_params = register(Explorer(
    name="ch05 params",
    chapter="5",
    update=plots.params_explorer_figure,
    defaults=dict(plots.CH05_DEFAULTS),
    controls=_ch05_controls,
    description="Gradient descent on a small ReLU net: K parameters against QN outputs, the rank of D, the final cost.",
))


# --- chapter 6 -------------------------------------------------------------------------------------------

# Chapter 6: GD, noisy GD, perturbed GD or SGLD on the worked strict saddle, from a start a chosen offset off its
# stable set.


def _ch06_controls() -> dict[str, widgets.Widget]:
    """Controls of the chapter-6 explorer: method, noise level and step (log scales), offset of the start, draw."""
    d = plots.CH06_DEFAULTS
    return {
        "method": widgets.Dropdown(options=list(plots.CH06_METHODS), value=d["method"], description="method"),
        "noise": log_slider(d["noise"], -6, 0, "noise level"),
        "alpha": log_slider(d["alpha"], -2, 0, "step size alpha"),
        "offset": log_slider(d["offset"], -16, -1, "start offset y0", step=0.5),
        "draw": draw_slider(d["draw"], 99),
    }


ch06_saddles = register(Explorer(
    name="ch06 saddles",
    chapter="6",
    update=plots.saddle_explorer_figure,
    defaults=dict(plots.CH06_DEFAULTS),
    controls=_ch06_controls,
    description="Escaping the strict saddle of f = x^2/2 + y^4/4 - y^2/2 with GD, noisy GD, perturbed GD or SGLD.",
))


# --- chapter 7 -------------------------------------------------------------------------------------------

# Chapter 7: gradient descent on a deep linear network: depth, step, initial scale, balanced or random start.


def _ch07_controls() -> dict[str, widgets.Widget]:
    """Controls of the chapter-7 explorer: depth, step size and initial scale (log scales), initialisation, draw."""
    d = plots.CH07_DEFAULTS
    return {
        "depth": widgets.IntSlider(value=d["depth"], min=1, max=6, description="depth N", **SLIDER_STYLE),
        "eta": log_slider(d["eta"], -3, 0, "step size eta"),
        "scale": log_slider(d["scale"], -1, 0.3, "initial scale"),
        "init": widgets.Dropdown(options=["balanced", "random"], value=d["init"], description="init"),
        "draw": draw_slider(d["draw"], 99),
    }


ch07_deep_linear = register(Explorer(
    name="ch07 deep linear",
    chapter="7",
    update=plots.deep_linear_explorer_figure,
    defaults=dict(plots.CH07_DEFAULTS),
    controls=_ch07_controls,
    description="Gradient descent on a deep linear network: loss, balancedness, and eta against 2 / lambda_max.",
))
