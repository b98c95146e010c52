"""The book's figure style and the helpers every chapter's figures share (plot layer).

Importing this module applies the book-wide figure style :data:`STYLE` to matplotlib's ``rcParams``: an opaque white
background (the figures stay legible when the book or Jupyter Lab is shown in dark mode; a transparent PNG with black
text would not), black text, moderate font sizes, and a colour cycle that starts with :data:`COLORS`. It sets no
figure size or resolution, so figure sizes are those the functions ask for. Use ``plt.style.context(STYLE)`` to get
the same look for figures drawn after another style was applied.

Besides the style: figure constructors (:func:`new_figure`, :func:`fixed_figure`, :func:`agg_figure`), the treatment
of diverged runs (:func:`finite_part`, :func:`diverged_label`), log axes with plain-text ticks (:func:`plain_log`,
:func:`explorer_log_y`), the legend the explorers draw once (:class:`PixelCachedLegend`), the base class of the
explorers' views (:class:`ExplorerView`) and the one way an explorer's figure becomes a PNG (:func:`png_bytes`).
"""

from __future__ import annotations

import io

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.ticker import FuncFormatter, LogFormatter, LogLocator, MaxNLocator, NullLocator

from ..flow import Trajectory
from ..runs import diverged_text

#: Colours used consistently across the book: measured runs, bounds and the flow.
COLORS = {"run": "#1f77b4", "flow": "#2ca02c", "bound": "#d62728", "bound2": "#9467bd", "gd": "#ff7f0e"}

#: The book-wide figure style (matplotlib rcParams), applied on import; see the module docstring.
STYLE = {
    # Opaque white everywhere a figure could otherwise be transparent or take a dark theme's colours.
    "figure.facecolor": "white",
    "figure.edgecolor": "white",
    "savefig.facecolor": "white",
    "savefig.edgecolor": "white",
    "savefig.transparent": False,
    "axes.facecolor": "white",
    "legend.facecolor": "white",
    "axes.edgecolor": "black",
    "text.color": "black",
    "axes.labelcolor": "black",
    "xtick.color": "black",
    "ytick.color": "black",
    # Font sizes: 10 pt text and labels, titles no larger than labels, small ticks and legends.
    "font.size": 10.0,
    "axes.titlesize": "medium",
    "axes.labelsize": "medium",
    "xtick.labelsize": "small",
    "ytick.labelsize": "small",
    "legend.fontsize": "small",
    # Lines not given a colour cycle through the book's colours first (the same as matplotlib's first five).
    "axes.prop_cycle": mpl.cycler(color=[COLORS["run"], COLORS["gd"], COLORS["flow"], COLORS["bound"], COLORS["bound2"],
                                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]),
}
mpl.rcParams.update(STYLE)

#: Resolution of an explorer's PNG (:func:`png_bytes`), in dots per inch: the same in the notebook and on the page.
FIGURE_DPI = 100


# --- figures ---------------------------------------------------------------------------------------------------


def new_figure(ncols: int = 1, width: float = 4.2, height: float = 3.4):
    """A figure with ``ncols`` axes side by side, sized for the book's pages; returns ``(fig, axes)``."""
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), layout="constrained", squeeze=False)
    return fig, axes[0]


def fixed_figure(ncols: int, width: float, height: float, **margins):
    """Like :func:`new_figure` but with fixed margins (``subplots_adjust`` keywords, by default those of chapter 1)
    instead of constrained layout: constrained layout measures every tick label on each draw, which dominated the
    drawing time of the chapter-1 and chapter-2 figures. Returns ``(fig, axes)``."""
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    fig.subplots_adjust(**{"left": 0.1, "right": 0.97, "bottom": 0.14, "top": 0.9, "wspace": 0.3, **margins})
    return fig, axes[0]


def agg_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches on its own Agg canvas, not managed by pyplot (an explorer's figure)."""
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """The PNG of ``fig`` at :data:`FIGURE_DPI` (its own size, no tight bounding box, no metadata): the one way an
    explorer's figure becomes an image, in the notebook's live explorer and on the web page. The same figure gives
    the same bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FIGURE_DPI, metadata={"Software": None})
    return buf.getvalue()


# --- diverged runs -------------------------------------------------------------------------------------------------


def diverged_label(result) -> str:
    """A short status for one run, any result with a ``diverged_at`` (:mod:`gdlab.runs`): ``"diverged at step k"``,
    ``"diverged at t = ..."`` for a gradient flow (a :class:`gdlab.flow.Trajectory` with ``method="flow"``), or
    ``""`` if it did not diverge."""
    if isinstance(result, Trajectory) and result.method == "flow" and result.diverged:
        return f"diverged at t = {result.diverged_time:.3g}"
    return diverged_text(result.diverged_at)


def finite_part(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points of a curve where ``y`` is finite (and positive, for log axes)."""
    keep = np.isfinite(y) & (y > 0)
    return x[keep], y[keep]


# --- log axes with plain-text ticks ----------------------------------------------------------------------------------


def plain_log(ax, which: str = "y") -> None:
    """Log scale on the ``which`` axes ("x", "y" or "xy") with plain-text tick labels (``1e-05``).

    The figures use no mathtext in their ticks: parsing it dominated their drawing time.
    """
    for name in which:
        axis = ax.xaxis if name == "x" else ax.yaxis
        (ax.set_xscale if name == "x" else ax.set_yscale)("log")
        axis.set_major_locator(LogLocator(base=10.0, numticks=6))
        axis.set_major_formatter(LogFormatter(base=10.0, labelOnlyBase=True))
        axis.set_minor_locator(NullLocator())


def ascii_power_of_ten(value, _pos=None) -> str:
    """Tick label ``1e-8`` for a power of ten, ``2e-8`` or ``5e-8`` for those multiples of one (ASCII only), empty
    for anything else."""
    if value <= 0:
        return ""
    exponent = int(np.floor(np.log10(value) + 1e-9))
    mantissa = value / 10.0**exponent
    return next((f"{c}e{exponent}" for c in (1, 2, 5) if abs(mantissa - c) < 1e-6 * c), "")


def explorer_log_y(ax, y_ticks: int, x_ticks: int) -> None:
    """Log y-axis with at most ``y_ticks`` plain-ASCII power-of-ten labels (no mathtext, no minor ticks) and at most
    ``x_ticks`` x ticks: the explorers' axes, where every tick label costs ~1 ms per redraw."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10.0, numticks=y_ticks))
    ax.yaxis.set_major_formatter(FuncFormatter(ascii_power_of_ten))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_locator(MaxNLocator(x_ticks))


def fit_log_ticks(ax, y_ticks: int) -> None:
    """After a y-range change on an :func:`explorer_log_y` axis: ticks at 1, 2 and 5 times powers of ten when the
    range spans under two decades (a run that stalls near its bounds), at powers of ten otherwise."""
    low, high = ax.get_ylim()
    subs = (1.0, 2.0, 5.0) if np.log10(high / low) < 2.0 else (1.0,)
    ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=subs, numticks=y_ticks))


# --- explorers -------------------------------------------------------------------------------------------------------


class PixelCachedLegend(Legend):
    """A legend whose entries never change, drawn once per canvas and afterwards copied back as pixels.

    Laying out a legend costs ~10 ms per redraw on a small machine, a fifth of an explorer's budget. An explorer's
    legend is static, so on a raster (Agg) renderer the first draw keeps its pixels (``copy_from_bbox``) and later
    draws of the same canvas geometry restore them (``restore_region``). The cache key is the renderer's size and
    resolution and the figure transform (a tight-bbox ``savefig`` changes it), so any other geometry draws afresh;
    vector renderers always draw. Place it where nothing else is drawn (e.g. outside the axes): the restored pixels
    replace whatever lies under the legend's box. Add it with ``ax.legend_ = PixelCachedLegend(ax, handles, labels)``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pixels = None

    def _geometry(self, renderer) -> tuple:
        return (getattr(renderer, "width", None), getattr(renderer, "height", None), renderer.dpi,
                self.figure.transSubfigure.get_matrix().tobytes(), self.axes.get_position().bounds)

    def draw(self, renderer):
        copy = getattr(renderer, "copy_from_bbox", None)
        if copy is None or not self.get_visible():
            return super().draw(renderer)
        key = self._geometry(renderer)
        if self._pixels is not None and self._pixels[0] == key:
            renderer.restore_region(self._pixels[1])
            return None
        super().draw(renderer)
        self._pixels = (key, copy(self.get_window_extent(renderer).padded(4)))  # with the antialiased frame
        return None


class ExplorerView:
    """The figure of a chapter's explorer, built once and then updated in place (base class of ``plots.chNN.View``).

    Creating axes and tick labels is most of the cost of a fresh matplotlib figure, so an explorer keeps one figure
    (on its own Agg canvas, not managed by pyplot) and only replaces its artists' data, the usual way to animate
    matplotlib. ``update(**settings)`` runs the chapter's experiment (:attr:`run`, ``gdlab.experiments.chNN.run``:
    bad settings raise ``ValueError`` before the figure is touched), builds the figure on the first call, redraws it
    and returns the *same* Figure on every call. After each update :attr:`status` says in one line of words what the
    figure's title and notes say, and :attr:`alt` describes the figure for a reader who cannot see it: the fixed
    :attr:`DESCRIPTION` of its panels and axes followed by the status.

    A subclass sets :attr:`run`, :attr:`SIZE` (inches) and :attr:`DESCRIPTION`, and implements ``_build(fig)`` (the
    artists) and ``_draw(run) -> status`` (new data for them, and the status line).
    """

    #: The chapter's ``experiments.chNN.run`` (a staticmethod in the subclass).
    run = None
    #: The figure's size in inches (width, height).
    SIZE: tuple[float, float] = (8.0, 3.5)
    #: The fixed words of the alt text: the figure's panels and axes.
    DESCRIPTION = ""

    def __init__(self):
        self.fig: Figure | None = None
        #: One line of words saying what the figure's title and notes say (after each update).
        self.status = ""
        #: The figure's alt text: :attr:`DESCRIPTION` followed by :attr:`status`.
        self.alt = ""

    def update(self, **settings) -> Figure:
        """Run the experiment with these settings (the others at their defaults) and redraw; returns the Figure."""
        result = self.run(**settings)
        if self.fig is None:
            self.fig = agg_figure(*self.SIZE)
            self._build(self.fig)
        self.status = self._draw(result)
        self.alt = f"{self.DESCRIPTION} Shown: {self.status}"
        return self.fig

    def _build(self, fig: Figure) -> None:
        raise NotImplementedError

    def _draw(self, run) -> str:
        raise NotImplementedError


def one_line(*parts: str) -> str:
    """The non-empty ``parts`` joined by ``"; "``, each on one line (a status line from a title and notes)."""
    return "; ".join(" ".join(part.split()) for part in parts if part)
