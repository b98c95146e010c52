"""ipywidgets explorers over the plot functions (widget layer; imports plots and compute).

Each chapter's explorer is an :class:`Explorer`: a plot function ``update(**settings) -> Figure`` with its
default settings and a factory for the controls. :func:`live` wires the controls to ``update``; the callback
never raises: bad settings are reported as text in place of the figure. ``EXPLORERS`` registers every
explorer by name so that ``benchmarks/run.py`` can time the callbacks at their default settings.

Pattern used on every chapter page: the static page shows ``update(**defaults)`` (a real figure computed at
build time) and the live controls come from ``live(explorer)`` in a cell whose output is removed from the
HTML, so a reader of the static page never meets a slider that does nothing; the text tells them to run the
notebook (locally with Jupyter Lab) to move the controls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display
from matplotlib.figure import Figure

from . import plots  # noqa: F401  (the layer below; chapter sections use it)


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


def live(explorer: Explorer) -> widgets.Widget:
    """Controls plus an output area that redraws ``explorer.update`` whenever a control changes."""
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


def register(explorer: Explorer) -> Explorer:
    """Add ``explorer`` to ``EXPLORERS`` (used by the benchmarks) and return it."""
    EXPLORERS[explorer.name] = explorer
    return explorer


# --- chapter 1 -------------------------------------------------------------------------------------------

# --- chapter 2 -------------------------------------------------------------------------------------------
