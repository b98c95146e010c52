"""Matplotlib figures drawn from the compute modules' result objects (plot layer; imports compute only).

Every function takes result objects (or the arguments to compute them) and returns a
``matplotlib.figure.Figure``; none of them computes anything a notebook could not get from the compute layer.
A diverged run is drawn up to its last finite point and labelled "diverged at step k" instead of a broken curve.

Importing this module applies the book-wide figure style :data:`STYLE` to matplotlib's ``rcParams``: an opaque
white background (the figures stay legible when the book or Jupyter Lab is shown in dark mode; a transparent PNG
with black text would not), black text, moderate font sizes, and a colour cycle that starts with :data:`COLORS`.
It sets no figure size or resolution, so figure sizes are those the functions ask for. Use
``plt.style.context(plots.STYLE)`` to get the same look for figures drawn after another style was applied.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import contourpy
import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.ticker import FixedFormatter, FixedLocator, FuncFormatter, LogFormatter, LogLocator, MaxNLocator, NullLocator

from . import flow as _flow
from . import nets as _nets
from . import numerics as _numerics
from ._checks import as_float, as_int
from .flow import Trajectory
from .landscapes import (
    Grid,
    Paths,
    Slices,
    descent_paths,
    get_landscape,
    landscape_grid,
    lipschitz_on_box,
    local_stability,
    segment_loss,
    segment_loss_closed_form,
)

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


def new_figure(ncols: int = 1, width: float = 4.2, height: float = 3.4):
    """A figure with ``ncols`` axes side by side, sized for the book's pages; returns ``(fig, axes)``."""
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), layout="constrained", squeeze=False)
    return fig, axes[0]


def diverged_label(traj: Trajectory) -> str:
    """A short status for a run: ``"diverged at step k"``, ``"diverged at t = ..."``, or ``""``."""
    if not traj.diverged:
        return ""
    if traj.diverged_at is not None:
        return f"diverged at step {traj.diverged_at}"
    return f"diverged at t = {traj.diverged_time:.3g}"


def finite_part(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points of a curve where ``y`` is finite (and positive, for log axes)."""
    keep = np.isfinite(y) & (y > 0)
    return x[keep], y[keep]


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


# --- chapter 1 -------------------------------------------------------------------------------------------

# Chapter 1: the counterexample on its segment, random slices through an MLP loss, the 2-D landscapes with
# gradient-descent paths and their health-ratio maps, and the figure of the chapter's explorer.


def _fixed_figure(ncols: int, width: float, height: float, **margins):
    """Like :func:`new_figure` but with fixed margins (``subplots_adjust`` keywords) instead of constrained layout.

    Constrained layout measures every tick label on each draw, which dominated the drawing time of the chapter-1
    figures; fixed margins keep the notebook and the explorer fast. Returns ``(fig, axes)``.
    """
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    fig.subplots_adjust(**{"left": 0.1, "right": 0.97, "bottom": 0.14, "top": 0.9, "wspace": 0.3, **margins})
    return fig, axes[0]


@lru_cache(maxsize=16)
def _landscape_grid_cached(name: str, n: int) -> Grid:
    """:func:`gdlab.landscapes.landscape_grid` for a registered landscape, computed once per (name, n)."""
    grid = landscape_grid(get_landscape(name), n)
    for arr in grid:
        arr.flags.writeable = False
    return grid


@lru_cache(maxsize=16)
def _lipschitz_cached(name: str) -> float:
    """:func:`gdlab.landscapes.lipschitz_on_box` for a registered landscape, computed once per name."""
    return lipschitz_on_box(get_landscape(name))


@lru_cache(maxsize=16)
def _local_limit_cached(name: str) -> float:
    """The local stability limit ``2 / lambda_max(Hess f)`` at a registered landscape's global minimiser (cached)."""
    ls = get_landscape(name)
    return local_stability(ls, ls.minimiser).limit


def step_regime(eta: float, global_limit: float, local_limit: float) -> str:
    """Chapter 1: where ``eta`` lies with respect to the global limit ``2 / L_box`` and the local one ``2 / lambda_max``.

    Below the global limit every step from anywhere in the box decreases the loss (sufficient); below the local
    limit the minimum attracts the starts near it (what decides convergence there); above it the minimum is unstable.
    """
    if eta < min(global_limit, local_limit):
        return "below both limits"
    if eta < local_limit:
        return "above 2/L_box, below the local limit"
    return "above the local limit: the star is unstable"


def _loss_levels(f: np.ndarray, n_levels: int = 14) -> np.ndarray:
    """Contour levels at evenly spaced quantiles of the loss values ``f`` (so every region of the box gets lines)."""
    return np.unique(np.quantile(f, np.linspace(0.01, 0.97, n_levels)))


def _draw_contours(ax, name: str, n: int = 81) -> None:
    """Loss contours of landscape ``name`` over its box on ``ax``, with the global minimiser marked."""
    grid = _landscape_grid_cached(name, n)
    ax.contour(grid.xs, grid.ys, grid.f, levels=_loss_levels(grid.f), colors="0.55", linewidths=0.7)
    m = get_landscape(name).minimiser
    ax.plot(m[0], m[1], marker="*", color="k", markersize=11, linestyle="none", zorder=5)
    x0, x1, y0, y1 = get_landscape(name).box
    ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="$x$", ylabel="$y$", aspect="equal")


def segment_figure(s_min: float = -0.5, s_max: float = 1.5, n: int = 401):
    """Chapter 1: the counterexample's loss along the line ``u(s) = s w + (1 - s) w'`` for s in [s_min, s_max].

    Draws the loss computed by the network (:func:`gdlab.landscapes.segment_loss`), the hand-derived
    ``2 s^2 (1 - s)^2`` on [0, 1], the article's ``s^2 (1 - s)^2 / 2``, and the chord between the two zero-loss ends.
    """
    s_min = as_float("s_min", s_min, low=-np.inf)
    s_max = as_float("s_max", s_max, low=s_min)
    s = np.linspace(s_min, s_max, as_int("n", n, low=3))
    fig, (ax,) = _fixed_figure(1, width=6.0, height=3.6)
    ax.plot(s, segment_loss(s), color=COLORS["run"], lw=2.5, label="network: $f(u(s))$")
    inside = (s >= 0) & (s <= 1)
    ax.plot(s[inside], segment_loss_closed_form(s[inside]), color=COLORS["gd"], ls="--", lw=1.5,
            label="$2 s^2 (1-s)^2$ (both units on)")
    ax.plot(s, s**2 * (1 - s) ** 2 / 2, color=COLORS["bound2"], ls=":", lw=1.5, label="article: $s^2 (1-s)^2 / 2$")
    ax.plot([0, 1], [0, 0], color=COLORS["bound"], lw=1.5, marker="o", label="chord between $w'$ and $w$")
    ax.axvspan(0, 1, color="0.93", zorder=0)
    ax.set(xlabel="$s$ (position on the line; $u(0) = w'$, $u(1) = w$)", ylabel="loss",
           title="Loss along the line through two global minima")
    ax.set_ylim(-0.02, 1.15 * float(np.max(segment_loss(s))))
    ax.legend(fontsize=8, loc="upper center")
    return fig


def slices_figure(slices: Slices, max_curves: int = 12):
    """Chapter 1: the loss of an MLP along random lines ``w0 + s d`` (a :class:`gdlab.landscapes.Slices`).

    One curve per slice (at most ``max_curves``); lines with a positive concavity witness are drawn solid, the
    others dashed; ``s = 0`` (the initialisation ``w0``) is marked.
    """
    if not isinstance(slices, Slices):
        raise ValueError(f"slices must be a Slices result of random_slices; got {type(slices).__name__}")
    max_curves = as_int("max_curves", max_curves)
    fig, (ax,) = _fixed_figure(1, width=6.0, height=3.6, left=0.12)
    cmap = plt.get_cmap("viridis")
    count = min(max_curves, slices.loss.shape[0])
    for j in range(count):
        ax.plot(slices.s, slices.loss[j], color=cmap(j / max(count - 1, 1)), lw=1.2,
                ls="-" if slices.concavity[j] > 0 else "--")
    ax.axvline(0.0, color="0.4", lw=0.8, ls=":")
    ax.annotate("$w_0$", xy=(0.0, ax.get_ylim()[1]), xytext=(3, -12), textcoords="offset points", fontsize=9)
    ax.set(xlabel="$s$ (distance along the line, in units of $|w_0|$)", ylabel="loss $f(w_0 + s\\,d)$", yscale="log",
           title=f"{count} random slices through an MLP loss")
    return fig


def descent_paths_figure(paths: dict, every: int = 1):
    """Chapter 1: gradient-descent paths on 2-D landscapes, one panel per landscape.

    ``paths`` maps a landscape name (a key of ``LANDSCAPES``) to the :class:`gdlab.landscapes.Paths` of
    :func:`gdlab.landscapes.descent_paths` on it. Each panel shows the loss contours, every ``every``-th path
    (thin lines from a dot at the start), and the end points (crosses).
    """
    if not isinstance(paths, dict) or not paths:
        raise ValueError("paths must be a non-empty dict {landscape name: Paths}")
    every = as_int("every", every)
    fig, axes = _fixed_figure(len(paths), width=3.6, height=3.7, left=0.06, right=0.98, wspace=0.25)
    for ax, (name, p) in zip(axes, paths.items(), strict=True):
        if not isinstance(p, Paths):
            raise ValueError(f"paths[{name!r}] must be a Paths result of descent_paths")
        _draw_contours(ax, name)
        W = p.w[:, ::every]
        ax.plot(W[..., 0], W[..., 1], color=COLORS["run"], lw=0.6, alpha=0.6)
        ax.plot(W[0, :, 0], W[0, :, 1], "o", color=COLORS["run"], markersize=2.5)
        ax.plot(W[-1, :, 0], W[-1, :, 1], "x", color=COLORS["bound"], markersize=8, mew=2)
        ax.set_title(f"{name}: {W.shape[1]} of {p.w.shape[1]} paths", fontsize=10)
    return fig


def health_maps_figure(names=("convex", "bulge", "trap"), n: int = 161):
    """Chapter 1: maps of the health ratio ``|grad f|^2 / f`` (log10 colour scale) for the named landscapes.

    The grid minimum of the ratio is printed in each panel's title and marked with a triangle.
    """
    names = list(names)
    if not names:
        raise ValueError("names must list at least one landscape")
    n = as_int("n", n, low=2)
    fig, axes = _fixed_figure(len(names), width=3.6, height=3.6, left=0.06, right=0.86, wspace=0.25)
    for ax, name in zip(axes, names, strict=True):
        grid = _landscape_grid_cached(name, n)
        with np.errstate(divide="ignore"):
            logr = np.log10(grid.ratio)
        mesh = ax.pcolormesh(grid.xs, grid.ys, logr, cmap="magma", vmin=-4, vmax=1.5, shading="auto")
        i, j = np.unravel_index(np.nanargmin(grid.ratio), grid.ratio.shape)
        ax.plot(grid.xs[j], grid.ys[i], "^", color="cyan", markersize=8, mec="k")
        ax.set(xlabel="$x$", ylabel="$y$", aspect="equal")
        ax.set_title(f"{name}: min ratio {np.nanmin(grid.ratio):.2g}", fontsize=10)
    cax = fig.add_axes((0.89, 0.18, 0.015, 0.66))
    fig.colorbar(mesh, cax=cax, label="$\\log_{10}(|\\nabla f|^2 / f)$")
    return fig


@lru_cache(maxsize=16)
def _contour_segments(name: str, n: int = 81) -> tuple[np.ndarray, ...]:
    """Loss contour lines of landscape ``name`` as a tuple of (P, 2) polylines, computed once per (name, n).

    The explorer redraws them as one ``LineCollection``, which is much cheaper than a fresh ``contour`` call.
    """
    grid = _landscape_grid_cached(name, n)
    gen = contourpy.contour_generator(grid.xs, grid.ys, grid.f)
    segs = [seg for level in _loss_levels(grid.f) for seg in gen.lines(level) if len(seg) > 1]
    for seg in segs:
        seg.flags.writeable = False
    return tuple(segs)


def _explorer_run(landscape: str, x0: float, y0: float, eta: float, n_steps: int):
    """Run the chapter-1 explorer's gradient descent; returns ``(paths, lip, local_limit)`` (checks every setting)."""
    ls = get_landscape(landscape)
    x0 = as_float("x0", x0, low=-np.inf)
    y0 = as_float("y0", y0, low=-np.inf)
    paths = descent_paths(ls, np.array([[x0, y0]]), eta, n_steps)
    return paths, _lipschitz_cached(landscape), _local_limit_cached(landscape)


class LandscapeExplorerView:
    """The chapter-1 explorer's figure, built once and then updated in place.

    Left panel: the gradient-descent path from ``(x0, y0)`` on the loss contours of a 2-D landscape (the square
    of :data:`gdlab.landscapes.LANDSCAPES`, star: global minimiser). Right panel: the loss against the step on a
    log scale, both with coordinate and step ticks. The title says where ``eta`` lies (:func:`step_regime`) with
    respect to the *global* limit ``2 / L_box`` (L_box from :func:`gdlab.landscapes.lipschitz_on_box`: below it every
    step from anywhere in the square decreases the loss) and the *local* limit ``2 / lambda_max`` of the Hessian at
    the star (:func:`gdlab.landscapes.local_stability`: below it the star attracts nearby starts, above it the star is
    unstable); the second line gives both numbers. A run that diverges (see
    :func:`gdlab.landscapes.descent_paths`) is drawn up to its last finite point and labelled "diverged at step k".

    Creating axes and tick labels is most of the cost of a fresh matplotlib figure, so an explorer callback keeps
    one figure and only replaces its artists' data (the usual way to animate matplotlib): :meth:`update` returns
    the *same* Figure on every call. The figure is built on the first update; pass ``fig`` to draw on a given
    (empty) figure instead of a private one that pyplot does not manage. Use :func:`landscape_explorer_figure`
    for an independent figure.
    """

    def __init__(self, fig: Figure | None = None):
        self._fig = fig
        self._built = False

    def _build(self) -> None:
        if self._fig is None:
            self._fig = Figure(figsize=(7.8, 3.8))
            FigureCanvasAgg(self._fig)
        fig = self._fig
        fig.set_size_inches(7.8, 3.8)
        self._ax_path = ax_path = fig.add_axes((0.07, 0.13, 0.37, 0.68))
        self._ax_loss = ax_loss = fig.add_axes((0.58, 0.13, 0.39, 0.68))
        ax_path.set_aspect("equal")
        for axis in (ax_path.xaxis, ax_path.yaxis):  # coordinate ticks at whole numbers on the squares of the book
            axis.set_major_locator(MaxNLocator(5, steps=[1, 2, 5, 10]))
        ax_path.set(xlabel="x", ylabel="y")
        self._contours = LineCollection([], colors="0.6", linewidths=0.7)
        ax_path.add_collection(self._contours)
        (self._star,) = ax_path.plot([], [], marker="*", color="k", markersize=11, linestyle="none")
        (self._path,) = ax_path.plot([], [], "-o", color=COLORS["run"], lw=1.2, markersize=2.5)
        (self._start,) = ax_path.plot([], [], "o", color=COLORS["gd"], markersize=7)
        (self._loss,) = ax_loss.plot([], [], color=COLORS["run"], lw=1.5)
        _explorer_log_y(ax_loss, y_ticks=5, x_ticks=5)
        ax_loss.xaxis.set_major_locator(MaxNLocator(5, integer=True))
        ax_loss.set(xlabel="step k", ylabel="loss f(w_k)")
        self._title = fig.text(0.5, 0.94, "", ha="center", va="baseline", fontsize=10)
        self._limits = fig.text(0.5, 0.87, "", ha="center", va="baseline", fontsize=9, color="0.25")
        self._div_text = [ax.text(0.5, 0.5, "", transform=ax.transAxes, ha="center", va="center", visible=False,
                                  color=COLORS["bound"], fontsize=12, weight="bold",
                                  bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})
                          for ax in (ax_path, ax_loss)]
        self._shown_landscape = None
        self._built = True

    def update(self, landscape: str = "bulge", x0: float = 1.8, y0: float = 1.6, eta: float = 0.3,
               n_steps: int = 60) -> Figure:
        """Run gradient descent with these settings and redraw; returns the view's Figure (chapter 1 explorer)."""
        paths, lip, local = _explorer_run(landscape, x0, y0, eta, n_steps)
        if not self._built:
            self._build()
        if landscape != self._shown_landscape:
            ls = get_landscape(landscape)
            self._contours.set_segments(_contour_segments(landscape))
            self._star.set_data([ls.minimiser[0]], [ls.minimiser[1]])
            bx0, bx1, by0, by1 = ls.box
            self._ax_path.set(xlim=(bx0, bx1), ylim=(by0, by1))
            self._shown_landscape = landscape
        k_div = int(paths.diverged_at[0])
        w = paths.w[: (k_div if k_div >= 0 else n_steps) + 1, 0]
        self._path.set_data(w[:, 0], w[:, 1])
        self._start.set_data([w[0, 0]], [w[0, 1]])
        steps, loss = finite_part(np.arange(n_steps + 1, dtype=float), paths.loss[:, 0])
        self._loss.set_data(steps, loss)
        lo, hi = (max(float(loss.min()), 1e-300), float(loss.max())) if loss.size else (1e-3, 1.0)  # no subnormals
        self._ax_loss.set(xlim=(0, n_steps), ylim=(lo / 10.0, hi * 10.0))  # >= two labelled powers of ten
        head = f"{landscape}, eta = {eta:.3g} ({step_regime(eta, 2 / lip, local)})"
        self._limits.set_text(f"global limit 2/L_box = {2 / lip:.3g} (descent from anywhere in the square);  "
                              f"local limit at the star 2/lambda_max = {local:.3g}")
        if k_div >= 0:
            msg = f"diverged at step {k_div}"
            self._title.set(text=f"{head}: {msg}", color=COLORS["bound"])
        else:
            msg = ""
            self._title.set(text=f"{head}: final loss {paths.loss[-1, 0]:.2g}", color="k")
        for text in self._div_text:
            text.set(text=msg, visible=k_div >= 0)
        return self._fig


def landscape_explorer_figure(landscape: str = "bulge", x0: float = 1.8, y0: float = 1.6, eta: float = 0.3,
                              n_steps: int = 60):
    """Chapter 1 explorer figure as a new, independent pyplot figure (see :class:`LandscapeExplorerView`).

    Gradient descent with step ``eta`` from ``(x0, y0)`` for ``n_steps`` steps on the landscape called
    ``landscape``: the path on the loss contours (left) and the loss curve on a log scale (right).
    """
    fig = plt.figure(figsize=(7.8, 3.5))
    try:
        return LandscapeExplorerView(fig).update(landscape, x0, y0, eta, n_steps)
    except ValueError:
        plt.close(fig)
        raise


# --- chapter 2 -------------------------------------------------------------------------------------------

# Chapter 2: gradient flow against gradient descent. The figures of the notebook (Results 1.2-1.5 measured on an
# MLP, the O(eta) distance between GD and the flow, step-size regimes, steps to an eps-stationary point against
# the bound) and the figure of the chapter's explorer, with its cached problem set-ups.




#: The two-layer MLP of chapter 2 (same sizes and seeds as the notebook): m, k, n, data points, seeds.
CH02_MLP = {"m": 4, "k": 32, "n": 2, "p": 3, "data_seed": 0, "init_seed": 100}
#: The quadratic of chapter 2: eigenvalues (L = 1), seed of the eigenvectors, seed of the start.
CH02_QUADRATIC = {"eigenvalues": (0.1, 0.16, 0.25, 0.4, 0.63, 1.0), "seed": 2, "w0_seed": 3}
#: Ranges of the explorer's controls: eta * L and the number of steps.
CH02_STEP_RANGE = (0.05, 8.0)
CH02_STEPS_RANGE = (10, 300)
_CH02_FLOW_T = 4.0  # the MLP flow is cached on [0, _CH02_FLOW_T]; see _ch02_setup


def _ch02_axes(ncols: int, width: float = 4.3, height: float = 3.3, **margins):
    """A row of ``ncols`` axes with fixed margins (fast to draw; no constrained layout). Returns ``(fig, axes)``."""
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    fig.subplots_adjust(**{"left": 0.09, "right": 0.98, "bottom": 0.15, "top": 0.88, "wspace": 0.28, **margins})
    return fig, axes[0]


class Ch02Setup(NamedTuple):
    """A problem of the chapter-2 explorer: ``loss_grad``, start ``w0`` (p,), smoothness scale ``L`` (exact for the
    quadratic, ``lambda_max(Hess f(w0))`` for the MLP), ``flow_at(times (T,)) -> (T, p)``, and a flow loss curve
    ``flow_t``, ``flow_loss`` (for the quadratic: ``None``, computed in closed form when drawn)."""

    name: str
    loss_grad: object
    w0: np.ndarray
    L: float
    L_name: str
    flow_at: object
    flow_t: np.ndarray | None
    flow_loss: np.ndarray | None


def ch02_mlp() -> tuple[_nets.MLPProblem, np.ndarray]:
    """The MLP problem and its He initialisation ``w0`` used throughout chapter 2 (:data:`CH02_MLP`)."""
    c = CH02_MLP
    x, q = _nets.mlp_data(c["m"], c["n"], seed=c["data_seed"], p=c["p"])
    M, N = _nets.mlp_init(c["m"], c["k"], c["n"], seed=c["init_seed"])
    return _nets.MLPProblem(x, q, c["k"]), _nets.mlp_pack(M, N)


def ch02_quadratic() -> tuple[_flow.QuadraticProblem, np.ndarray]:
    """The quadratic of chapter 2 (:data:`CH02_QUADRATIC`) and its start ``w0`` (d,) ~ N(0, I)."""
    c = CH02_QUADRATIC
    quad = _flow.quadratic_problem(np.array(c["eigenvalues"]), c["seed"])
    return quad, np.random.default_rng(c["w0_seed"]).normal(size=quad.dim)


@lru_cache(maxsize=4)
def _ch02_setup(problem: str) -> Ch02Setup:
    """Set up ``problem`` ("MLP" or "quadratic") once: the flow does not depend on the step size, so it is cached.

    The MLP flow is solved on [0, 4] (rtol 1e-10) and interpolated (:func:`gdlab.flow.flow_interpolant`); by then
    its loss is at round-off level, so holding the last point for later times moves nothing visible (Result 1.5).
    """
    if problem == "quadratic":
        quad, w0 = ch02_quadratic()
        return Ch02Setup("quadratic", quad.loss_grad, w0, quad.L, "L (exact)", lambda t: quad.flow(w0, t), None, None)
    if problem == "MLP":
        prob, w0 = ch02_mlp()
        L = _numerics.sharpness(lambda w: prob.loss_grad(w)[1], w0)
        t_eval = np.unique(np.concatenate([np.linspace(0.0, 2.0, 801), np.linspace(2.0, _CH02_FLOW_T, 41)]))
        traj = _flow.gradient_flow(prob.loss_grad, w0, _CH02_FLOW_T, t_eval=t_eval, rtol=1e-10, atol=1e-12)
        for arr in (traj.t, traj.loss):
            arr.flags.writeable = False
        return Ch02Setup("MLP", prob.loss_grad, w0, L, "lambda_max(Hess f(w0))",
                         _flow.flow_interpolant(traj, prob.loss_grad), traj.t, traj.loss)
    raise ValueError(f"problem must be 'MLP' or 'quadratic'; got {problem!r}")


def _plain_log(ax, which: str = "y") -> None:
    """Log scale on the ``which`` axes ("x", "y" or "xy") with plain-text tick labels (``1e-05``).

    Chapter-2 figures use no mathtext at all: parsing it dominated their drawing time.
    """
    for name in which:
        axis = ax.xaxis if name == "x" else ax.yaxis
        (ax.set_xscale if name == "x" else ax.set_yscale)("log")
        axis.set_major_locator(LogLocator(base=10.0, numticks=6))
        axis.set_major_formatter(LogFormatter(base=10.0, labelOnlyBase=True))
        axis.set_minor_locator(NullLocator())


def _ch02_run(problem: str, step: float, steps: int):
    """Compute what the explorer draws: ``(setup, eta, gd, gap, tf, lf, df)`` (arrays of the GD run and the flow)."""
    step = as_float("step", step, low=CH02_STEP_RANGE[0], high=CH02_STEP_RANGE[1], low_open=False)
    steps = as_int("steps", steps, low=CH02_STEPS_RANGE[0], high=CH02_STEPS_RANGE[1])
    setup = _ch02_setup(problem)
    eta = step / setup.L
    gd = _flow.gradient_descent(setup.loss_grad, setup.w0, eta, steps)
    gap = np.linalg.norm(gd.w - setup.flow_at(gd.t), axis=1)
    t_end = float(steps * eta)
    if setup.flow_t is None:  # quadratic: closed form on a fine grid
        tf = np.linspace(0.0, t_end, 241)
        Wf = setup.flow_at(tf)
        lf = np.array([setup.loss_grad(w)[0] for w in Wf])
    else:  # MLP: the cached records up to t_end, then the flow's own loss at t_end (interpolated; past the cache
        # the flow is held at its last point). Not the cache's last loss: that is the loss at t = _CH02_FLOW_T.
        keep = setup.flow_t <= t_end
        tf, lf = setup.flow_t[keep], setup.flow_loss[keep]
        if t_end > tf[-1]:
            tf = np.append(tf, t_end)
        Wf = setup.flow_at(tf)
        if lf.size < tf.size:
            lf = np.append(lf, setup.loss_grad(Wf[-1])[0])
    return setup, eta, gd, gap, tf, lf, np.linalg.norm(Wf - setup.w0, axis=1)


def _ascii_power_of_ten(value, _pos=None) -> str:
    """Tick label ``1e-8`` for a power of ten, ``2e-8`` or ``5e-8`` for those multiples of one (ASCII only), empty
    for anything else."""
    if value <= 0:
        return ""
    exponent = int(np.floor(np.log10(value) + 1e-9))
    mantissa = value / 10.0**exponent
    return next((f"{c}e{exponent}" for c in (1, 2, 5) if abs(mantissa - c) < 1e-6 * c), "")


def _fit_log_ticks(ax, y_ticks: int) -> None:
    """After a y-range change on an :func:`_explorer_log_y` axis: ticks at 1, 2 and 5 times powers of ten when the
    range spans under two decades (a run that stalls near its bounds), at powers of ten otherwise."""
    low, high = ax.get_ylim()
    subs = (1.0, 2.0, 5.0) if np.log10(high / low) < 2.0 else (1.0,)
    ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=subs, numticks=y_ticks))


def _explorer_log_y(ax, y_ticks: int, x_ticks: int) -> None:
    """Log y-axis with at most ``y_ticks`` plain-ASCII power-of-ten labels (no mathtext, no minor ticks) and at most
    ``x_ticks`` x ticks: the explorers' axes, where every tick label costs ~1 ms per redraw."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10.0, numticks=y_ticks))
    ax.yaxis.set_major_formatter(FuncFormatter(_ascii_power_of_ten))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_locator(MaxNLocator(x_ticks))


class GdFlowView:
    """The chapter-2 explorer's figure, built once and updated in place (as :class:`LandscapeExplorerView`).

    Left: loss against time ``t_k = k eta`` for gradient descent (orange, dots) and the flow (green). Right: the
    distance ``|w_k - gamma(k eta)|`` between iterates and flow at equal time, k >= 1 (orange, dots), and the flow's
    own distance from ``w0`` for scale (green, dashed); y ranges span at most 16 decades below the largest value.
    Colours are explained in the chapter's text, not in legends: to keep a redraw within the explorer budget the
    figure has few, short, ASCII texts (no legends, no axes titles, no mathtext). A diverged run is drawn up to its
    last finite step and labelled "diverged at step k". :meth:`update` returns the same Figure on every call.
    """

    def __init__(self):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.fig = fig = Figure(figsize=(8.4, 3.3))  # not managed by pyplot
        FigureCanvasAgg(fig)
        self._axes = (fig.add_axes((0.08, 0.13, 0.39, 0.66)), fig.add_axes((0.59, 0.13, 0.39, 0.66)))
        ax_l, ax_d = self._axes
        (self._flow_loss,) = ax_l.plot([], [], color=COLORS["flow"], lw=2)
        (self._gd_loss,) = ax_l.plot([], [], color=COLORS["gd"], marker="o", ms=2.5, lw=0.8)
        (self._flow_dist,) = ax_d.plot([], [], color=COLORS["flow"], ls="--", lw=1.2)
        (self._gd_gap,) = ax_d.plot([], [], color=COLORS["gd"], marker="o", ms=2.5, lw=0.8)
        for ax in self._axes:  # both panels carry time ticks and value ticks (every few decades)
            _explorer_log_y(ax, y_ticks=5, x_ticks=4)
        # few, short texts instead of legends and titles: on a small machine every text costs ~1 ms per draw
        fig.text(0.09, 0.82, "loss", fontsize=9)
        fig.text(0.60, 0.82, "distance", fontsize=9)
        fig.text(0.275, 0.02, "time t = k eta", ha="center", fontsize=9)
        fig.text(0.785, 0.02, "time t = k eta", ha="center", fontsize=9)
        self._title = fig.text(0.5, 0.93, "", ha="center", fontsize=10)
        self._div = [ax.text(0.5, 0.5, "", transform=ax.transAxes, ha="center", va="center", fontsize=13,
                             color=COLORS["bound"], visible=False,
                             bbox={"facecolor": "white", "edgecolor": COLORS["bound"]}) for ax in self._axes]

    @staticmethod
    def _set_log_ylim(ax, *ys) -> None:
        vals = np.concatenate([y[np.isfinite(y) & (y > 0)] for y in ys])
        lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (1e-3, 1.0)
        lo = max(lo, 1e-16 * hi)  # below that, only round-off
        ax.set_ylim(lo / 4.0, hi * 4.0)  # spans more than a factor 10: at least one labelled power of ten

    def update(self, problem: str = "quadratic", step: float = 0.5, steps: int = 100):
        """Run GD with ``eta = step / L`` for ``steps`` steps on ``problem`` and redraw; returns the Figure."""
        setup, eta, gd, gap, tf, lf, df = _ch02_run(problem, step, steps)
        self._flow_loss.set_data(*finite_part(tf, lf))
        self._gd_loss.set_data(*finite_part(gd.t, gd.loss))
        self._flow_dist.set_data(*finite_part(tf[1:], df[1:]))  # t = 0: distance 0 up to round-off
        self._gd_gap.set_data(*finite_part(gd.t[1:], gap[1:]))  # k = 0: both at w0 (gap 0 up to round-off)
        ax_l, ax_d = self._axes
        self._set_log_ylim(ax_l, lf, gd.loss)
        self._set_log_ylim(ax_d, df[1:], gap[1:])
        t_shown = float(gd.t[-1]) * 1.05 if gd.diverged else float(steps * eta)
        for ax in self._axes:
            ax.set_xlim(0.0, t_shown)
        L_name = "L" if problem == "quadratic" else "lambda_max"
        self._title.set_text(f"{problem}, eta {L_name} = {step:.3g}, eta = {eta:.3g}")
        for text in self._div:
            text.set(text=diverged_label(gd), visible=gd.diverged)
        return self.fig


_CH02_VIEW: list[GdFlowView] = []


def gd_flow_explorer_figure(problem: str = "quadratic", step: float = 0.5, steps: int = 100):
    """The chapter-2 explorer's callback: one shared :class:`GdFlowView`, updated in place (returns its Figure).

    ``problem`` "quadratic" (exact L) or "MLP" (L = sharpness at w0); ``step`` = eta * L in [0.05, 8];
    ``steps`` in [10, 300]. Use :func:`gd_flow_figure` for an independent figure.
    """
    if not _CH02_VIEW:
        _CH02_VIEW.append(GdFlowView())
    return _CH02_VIEW[0].update(problem, step, steps)


def gd_flow_figure(problem: str = "quadratic", step: float = 0.5, steps: int = 100):
    """Gradient descent against the gradient flow on a new, independent figure (see :class:`GdFlowView`)."""
    return GdFlowView().update(problem, step, steps)


def rate_residual_figure(rates: _flow.RateResiduals):
    """Result 1.2 on a recorded flow (``rates`` from :func:`gdlab.flow.rate_residuals`): the relative residual
    ``|l'(t) + |grad f|^2| / |grad f|^2`` with ``l'`` from finite differences of the records, at several spacings.

    Left: the residual against t for the coarsest and finest spacing, records next to an activation-pattern change
    circled. Right: the median away from kinks and the kink-record maximum against the spacing, with a slope-2 line.
    """
    fig, (ax_t, ax_h) = _ch02_axes(2)
    hs, med = rates.spacing, rates.median
    for i, color in ((0, COLORS["bound2"]), (hs.size - 1, COLORS["run"])):
        t, rel, mask = rates.t[i], rates.relative[i], rates.flagged[i]
        ax_t.plot(*finite_part(t, rel), color=color, lw=1, label=f"spacing h = {hs[i]:.2g}")
        ax_t.plot(t[mask], rel[mask], "o", mfc="none", color=color, ms=6)
    _plain_log(ax_t)
    ax_t.set(xlabel="t", ylabel="|ℓ′(t) + |∇f|²| / |∇f|²")
    ax_t.legend(fontsize=8, title="circles: kink records", title_fontsize=8)
    fit = _numerics.loglog_slope(hs, med)
    ax_h.plot(hs, med, "o-", color=COLORS["run"], label=f"median away from kinks (slope {fit.slope:.2f})")
    ax_h.plot(hs, rates.kink_max, "s--", color=COLORS["bound"], label="largest at a kink record")
    ax_h.plot(hs, med[-1] * (hs / hs[-1]) ** 2, ":", color="0.4", label="∝ h²")
    _plain_log(ax_h, "xy")
    ax_h.set(xlabel="record spacing h", ylabel="relative residual")
    ax_h.legend(fontsize=8)
    return fig


def flow_chain_figure(traj: Trajectory, rtols, energy_residuals):
    """Results 1.3-1.5 on a flow. Left: the chain ``|gamma(t) - w0| <= len <= sqrt(t en) <= sqrt(t l(0))`` against t
    (the last two coincide once the loss has gone to about 0: ``sqrt(t en)`` is drawn dashed with markers on top).
    Right: the largest energy residual ``|en - (l(0) - l(t))|`` against the solver tolerance ``rtols`` (R,), with
    ``rtol * l(0)`` for reference."""
    fig, (ax_c, ax_e) = _ch02_axes(2)
    t = traj.t
    # sqrt(t en) runs onto sqrt(t l(0)) once the loss is burnt (en = l(0) - l(t)): the bound is drawn wide and pale,
    # sqrt(t en) dashed with markers on top of it, so that both stay visible where they coincide
    marks = max(1, t.size // 12)
    curves = [(traj.dist, "|γ(t) − w0|", {"color": COLORS["run"], "lw": 1.6}),
              (traj.length, "len", {"color": COLORS["gd"], "lw": 1.6}),
              (np.sqrt(t * traj.loss[0]), "√(t·ℓ(0))", {"color": COLORS["bound"], "lw": 5, "alpha": 0.35}),
              (np.sqrt(t * traj.energy), "√(t·en)  (dashed, on √(t·ℓ(0)) once ℓ ≈ 0)",
               {"color": COLORS["bound2"], "lw": 1.4, "ls": "--", "marker": "o", "ms": 3.5, "markevery": marks})]
    for y, label, style in curves:
        ax_c.plot(t, y, label=label, **style)
    ax_c.set(xlabel="t", ylabel="distance", ylim=(0.0, 1.15 * float(np.sqrt(t[-1] * traj.loss[0]))))
    ax_c.legend(fontsize=8, loc="upper left")
    rtols = np.asarray(rtols, dtype=float)
    res = np.asarray(energy_residuals, dtype=float)
    ax_e.plot(rtols, res, "o-", color=COLORS["run"], label="max over t of |en − (ℓ(0) − ℓ(t))|")
    ax_e.plot(rtols, rtols * traj.loss[0], ":", color="0.4", label="rtol · ℓ(0)")
    _plain_log(ax_e, "xy")
    ax_e.set(xlabel="solver tolerance rtol", ylabel="energy residual")
    ax_e.legend(fontsize=8)
    return fig


def flow_gap_figure(gap: _flow.FlowGap, fit_last: int):
    """``max_k |w_k - gamma(k eta)|`` against ``eta`` on log-log axes, with the slope fitted on the ``fit_last``
    smallest step sizes and a slope-1 reference line (chapter 2: Euler's method is first order)."""
    order = np.argsort(gap.eta)
    eta, g = gap.eta[order], gap.gap[order]
    fit = _numerics.loglog_slope(eta[:fit_last], g[:fit_last])
    fig, (ax,) = _ch02_axes(1, width=5.0, left=0.15, right=0.96)
    ax.plot(eta, g, "o", color=COLORS["gd"], label="measured")
    ax.plot(eta[:fit_last], np.exp(fit.log_c) * eta[:fit_last] ** fit.slope, "-", color=COLORS["run"],
            label=f"fit on the {fit_last} smallest: slope {fit.slope:.2f}")
    ax.plot(eta, g[0] * eta / eta[0], ":", color="0.4", label="∝ η")
    _plain_log(ax, "xy")
    ax.set(xlabel="step size η", ylabel="max over k of |w_k − γ(kη)|")
    ax.legend(fontsize=8)
    return fig


def quadratic_regimes_figure(quad: _flow.QuadraticProblem, runs, max_steps: int = 40):
    """Gradient descent on a quadratic for several step sizes (``runs``: list of descent Trajectories).

    Left: loss against step. Right: the coordinate along the top eigenvector (eigenvalue L), divided by its start
    value: it shrinks monotonically for ``eta L < 1``, flips sign every step for ``1 < eta L < 2`` and grows for
    ``eta L > 2``. Diverged runs are labelled with their step.
    """
    fig, (ax_l, ax_c) = _ch02_axes(2)
    colors = [COLORS["run"], COLORS["gd"], COLORS["bound"], COLORS["bound2"], COLORS["flow"]]
    for traj, color in zip(runs, colors * 4, strict=False):
        eta = traj.t[1] - traj.t[0] if traj.t.size > 1 else np.nan
        label = f"η·L = {eta * quad.L:.2g}" + (f" ({diverged_label(traj)})" if traj.diverged else "")
        k = traj.steps <= max_steps
        ax_l.plot(*finite_part(traj.steps[k].astype(float), traj.loss[k]), color=color, marker="o", ms=2.5, lw=1,
                  label=label)
        c = quad.coordinates(traj.w[k])[:, -1]
        ax_c.plot(traj.steps[k], c / c[0], color=color, marker="o", ms=2.5, lw=1, label=label)
    _plain_log(ax_l)
    ax_l.set(xlabel="step k", ylabel="loss", xlim=(0, max_steps))
    ax_l.legend(fontsize=8)
    ax_c.axhline(0.0, color="0.6", lw=0.8)
    ax_c.set(xlabel="step k", ylabel="top-eigenvector coordinate / start", ylim=(-3, 3), xlim=(0, max_steps))
    return fig


def step_scan_figure(ratios, runs, show=()):
    """Gradient descent on the MLP for step sizes ``eta = ratio * 2 / lambda_max(Hess f(w0))``.

    ``ratios`` (R,) and ``runs`` (R descent Trajectories). Left: loss against step for the ratios in ``show``.
    Right: final loss against the ratio; diverged runs are marked at the top with their step.
    """
    ratios = np.asarray(ratios, dtype=float)
    fig, (ax_l, ax_r) = _ch02_axes(2)
    colors = [COLORS["run"], COLORS["gd"], COLORS["bound2"], COLORS["flow"], COLORS["bound"], "0.3"]
    shown = [i for i, r in enumerate(ratios) if any(np.isclose(r, s) for s in show)]
    for i, color in zip(shown, colors * 4, strict=False):
        tr = runs[i]
        label = f"η = {ratios[i]:.3g} × 2/λmax" + (f" ({diverged_label(tr)})" if tr.diverged else "")
        ax_l.plot(*finite_part(tr.steps.astype(float), tr.loss), color=color, lw=1.2, label=label)
    _plain_log(ax_l)
    ax_l.set(xlabel="step k", ylabel="loss")
    ax_l.legend(fontsize=7)
    final = np.array([tr.loss[-1] if not tr.diverged else np.nan for tr in runs])
    ok = ~np.isnan(final)
    ax_r.plot(ratios[ok], np.maximum(final[ok], 1e-300), "o", color=COLORS["run"], label="final loss")
    _plain_log(ax_r)
    top = np.nanmax(final) * 1e3 if ok.any() else 1.0
    for r, tr in zip(ratios, runs, strict=True):
        if tr.diverged:
            ax_r.plot(r, top, "x", color=COLORS["bound"], ms=8)
            ax_r.annotate(f"{tr.diverged_at}", (r, top), textcoords="offset points", xytext=(0, 6), ha="center",
                          fontsize=7, color=COLORS["bound"])
    ax_r.axvline(1.0, color="0.5", ls="--", lw=1)
    ax_r.set(xlabel="η / (2/λmax(w0))", ylabel="final loss (×: diverged, at step)")
    return fig


def steps_bound_figure(eps, measured, bound, labels):
    """Steps to ``|grad f| <= eps`` against ``eps`` (E,): ``measured`` and ``bound`` (S, E) for S settings named by
    ``labels``; the bound ``T_eps`` of chapter 2 dashed, the measured counts solid, on log-log axes."""
    eps = np.asarray(eps, dtype=float)
    fig, (ax,) = _ch02_axes(1, width=5.2, left=0.14, right=0.97)
    colors = [COLORS["run"], COLORS["gd"], COLORS["bound2"], COLORS["flow"], COLORS["bound"], "0.3"]
    for m, b, label, color in zip(measured, bound, labels, colors * 4, strict=False):
        ax.plot(eps, np.asarray(m, dtype=float), "o-", color=color, label=f"{label}: measured")
        ax.plot(eps, np.asarray(b, dtype=float), "--", color=color, label=f"{label}: bound T_ε")
    _plain_log(ax, "xy")
    ax.set(xlabel="ε", ylabel="steps until |∇f| ≤ ε")
    ax.invert_xaxis()
    ax.legend(fontsize=7, ncol=2)
    return fig


# --- chapter 3 -------------------------------------------------------------------------------------------

from . import bounds as _bounds  # noqa: E402  (chapter 3 section)

CH03_DEFAULTS = {"m": 2, "k": 16, "n": 2, "eta": 0.01, "steps": 200, "draw": 1}
_CH03_FLOOR = 1e-16  # losses are drawn down to this fraction of l(0) (round-off relative to l(0))
_CH03_FLOW_STOP = 1e-12  # the explorer's flow (rtol 1e-6) stops once every live draw is below this fraction of l(0)


class Ch03Run(NamedTuple):
    """One draw of the chapter-3 explorer: GD and the flow on one data point, and the bounds (chapter 3).

    ``gd_loss`` (steps+1,); ``flow_t``, ``flow_loss`` (T,); ``flow_dead``: every unit is dead at the flow's last
    record, so the flow stalls there for good (``l(inf) = |q|^2 / 2``). ``envelope`` and ``gd_envelope`` (121,) on
    ``linspace(0, steps eta, 121)``: the flow's envelope (Result 2.2 with the measured ``|b0|``) and the one of the
    relaxed-health theorem for gradient descent with the run's measured sufficient-decrease constant ``rho``
    (NaN where that theorem does not apply: a step raised the loss, or ``b0 = 0``).
    """

    gd_loss: np.ndarray
    gd_diverged_at: int
    flow_t: np.ndarray
    flow_loss: np.ndarray
    flow_dead: bool
    l0: float
    b0_sq: float
    idealised: float
    rigorous: float
    envelope: np.ndarray
    rho: float
    gd_envelope: np.ndarray


def ch03_run(m: int = 2, k: int = 16, n: int = 2, eta: float = 0.01, steps: int = 200, draw: int = 1) -> Ch03Run:
    """Gradient descent (``steps`` steps of size ``eta``) and the gradient flow on ``[0, steps * eta]`` for draw ``draw``
    of the one-data-point problem (:func:`gdlab.bounds.one_point_flows`), with the idealised and rigorous bounds."""
    m, k, n = as_int("m", m, high=64), as_int("k", k, high=1024), as_int("n", n, high=16)
    eta = as_float("eta", eta, high=10.0)
    steps = as_int("steps", steps, high=5000)
    draw = as_int("draw", draw, low=0)
    t_max = eta * steps
    runs = _bounds.one_point_flows(m, k, n, 1, draw, t_max, t_eval=np.linspace(0.0, t_max, 121), rtol=1e-6,
                                   atol=1e-13, stop_below=_CH03_FLOW_STOP)
    gd = _bounds.one_point_descent(runs, eta, steps)
    l0, b0_sq = float(runs.l0[0]), float(runs.b0_sq[0])
    alpha, beta = _bounds.rigorous_health_constants(b0_sq, m)
    check = _bounds.relaxed_descent_check(gd.loss, gd.grad_sq, gd.dist, eta, alpha, beta, floor=_CH03_FLOOR)
    env_t = np.linspace(0.0, t_max, 121)
    env = _bounds.health_envelope(env_t, l0, alpha, beta) if b0_sq > 0 else np.full(env_t.shape, l0)
    rho = float(check.rho[0])
    gd_env = _bounds.health_envelope(env_t, l0, alpha, beta, rho) if check.holds[0] else np.full(env_t.shape, np.nan)
    return Ch03Run(gd.loss[:, 0], int(gd.diverged_at[0]), runs.t, runs.loss[:, 0], bool(runs.dead[-1, 0]), l0, b0_sq,
                   _bounds.idealised_bound(l0, k, m), _bounds.rigorous_bound(l0, b0_sq, m), np.atleast_1d(env), rho,
                   np.atleast_1d(gd_env))


def ch03_notes(run: Ch03Run) -> list[str]:
    """The chapter-3 explorer's warnings for ``run``, in words: vacuous or violated bounds, no GD guarantee,
    divergence (chapter 3)."""
    notes = []
    for name, bound in (("idealised", run.idealised), ("rigorous", run.rigorous)):
        if bound >= run.l0:
            notes.append(f"{name} bound is vacuous")
        elif run.flow_dead and run.flow_loss[-1] > bound:
            notes.append(f"{name} bound VIOLATED: flow stalls\nat {run.flow_loss[-1]:.3g} > {bound:.3g} (units dead)")
    if run.gd_diverged_at >= 0:
        notes.append(f"GD diverged at step {run.gd_diverged_at}")
    elif not np.isfinite(run.gd_envelope[-1]) and run.b0_sq > 0:
        notes.append("a GD step raised the loss:\nno GD guarantee (rho <= 0)")
    return notes


class HealthExplorerView:
    """The chapter-3 explorer's figure (built once, updated in place like :class:`LandscapeExplorerView`).

    Loss on a log scale against time ``t = k eta``: gradient descent (thick line), the gradient flow (thin line, solved
    with ``rtol = 1e-6`` and stopped at ``1e-12 l(0)``, below which that tolerance no longer resolves the loss), the
    rigorous envelopes with the measured ``|b0|`` for the flow (Result 2.2, solid) and for gradient descent (the
    relaxed-health theorem for GD with the run's measured ``rho``, dashed), and the two bounds on ``l(inf)``
    (horizontal lines). The y range fits what is drawn (down to at most ``1e-16 l(0)``, round-off relative to the
    start), so a run that stalls near its bounds is readable. :func:`ch03_notes` says in words when a bound is
    vacuous or violated, when GD has no guarantee, and when it diverged.
    """

    def __init__(self):
        self._fig = None

    def _build(self):
        self._fig = fig = Figure(figsize=(7.0, 3.6))
        FigureCanvasAgg(fig)
        self._ax = ax = fig.add_axes((0.1, 0.14, 0.52, 0.72))
        _explorer_log_y(ax, y_ticks=5, x_ticks=3)
        ax.set(xlabel="time t = k eta", ylabel="loss")
        (self._gd,) = ax.plot([], [], "-", color=COLORS["gd"], lw=2.5, label="gradient descent")
        (self._fl,) = ax.plot([], [], "-", color=COLORS["flow"], lw=1.5, label="gradient flow")
        (self._env,) = ax.plot([], [], "-", color=COLORS["bound2"], lw=1.2, label="flow envelope (Res. 2.2)")
        (self._gd_env,) = ax.plot([], [], "--", color=COLORS["gd"], lw=1.2, label="GD envelope (measured rho)")
        (self._ideal,) = ax.plot([], [], "--", color=COLORS["bound"], lw=1.2, label="idealised bound on l(inf)")
        (self._rig,) = ax.plot([], [], ":", color=COLORS["bound2"], lw=1.5, label="rigorous bound on l(inf)")
        handles, labels = ax.get_legend_handles_labels()
        ax.legend_ = PixelCachedLegend(ax, handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                                       frameon=False, fontsize="x-small")  # static: drawn once, then copied
        self._title = fig.text(0.5, 0.92, "", ha="center", fontsize=9)
        self._note = fig.text(0.64, 0.16, "", ha="left", fontsize=8, color=COLORS["bound"], weight="bold",
                              visible=False)

    def update(self, m: int = 2, k: int = 16, n: int = 2, eta: float = 0.01, steps: int = 200, draw: int = 1):
        """Run draw ``draw`` with these settings and redraw; returns the view's Figure (chapter 3 explorer)."""
        run = ch03_run(m, k, n, eta, steps, draw)
        if self._fig is None:
            self._build()
        floor = _CH03_FLOOR * run.l0
        t_end = eta * steps
        env_t = np.linspace(0.0, t_end, run.envelope.size)
        curves = [finite_part(eta * np.arange(steps + 1), np.maximum(run.gd_loss, floor)),
                  (run.flow_t, np.maximum(run.flow_loss, floor)), (env_t, np.maximum(run.envelope, floor)),
                  finite_part(env_t, np.maximum(run.gd_envelope, floor)),
                  ([0, t_end], [max(run.idealised, floor)] * 2), ([0, t_end], [max(run.rigorous, floor)] * 2)]
        for line, (x, y) in zip((self._gd, self._fl, self._env, self._gd_env, self._ideal, self._rig), curves,
                                strict=True):
            line.set_data(x, y)
        shown = np.concatenate([np.asarray(y, dtype=float) for _, y in curves])
        top = max(run.l0, float(shown.max()))
        self._ax.set(xlim=(0, t_end), ylim=(max(floor, float(shown.min())) / 3, top * 3))
        _fit_log_ticks(self._ax, y_ticks=5)
        notes = ch03_notes(run)
        self._note.set_text("\n".join(notes))
        self._note.set_visible(bool(notes))  # an empty text still costs a layout
        gd_rho = f"GD rho={run.rho:.2f}" if np.isfinite(run.gd_envelope[-1]) else "GD: no guarantee"
        self._title.set_text(f"l(0)={run.l0:.3g}, |b0|^2/k={run.b0_sq / k:.2f}, {gd_rho}; "
                             f"final loss: GD {run.gd_loss[-1]:.2g}, flow {run.flow_loss[-1]:.2g}")
        return self._fig


_CH03_VIEW: list[HealthExplorerView] = []


def health_explorer_figure(m: int = 2, k: int = 16, n: int = 2, eta: float = 0.01, steps: int = 200, draw: int = 1):
    """The chapter-3 explorer figure (one persistent :class:`HealthExplorerView`)."""
    if not _CH03_VIEW:
        _CH03_VIEW.append(HealthExplorerView())
    return _CH03_VIEW[0].update(m, k, n, eta, steps, draw)


def concentration_figure(ks, ratios):
    """Histograms of ``|b0|^2 / k`` over many He draws, one per width in ``ks`` (chapter 3); ``ratios[i]`` (draws,)."""
    fig, (ax,) = new_figure(1, width=5.2, height=3.2)
    bins = np.linspace(0.0, 3.0, 61)
    for k, r in zip(ks, ratios, strict=True):
        ax.hist(np.clip(r, 0, 3), bins=bins, histtype="step", density=True, lw=1.4, label=f"k = {k}")
    ax.axvline(1.0, color="k", lw=0.8, ls=":")
    ax.set(xlabel="|b0|^2 / k", ylabel="density")
    ax.legend(frameon=False)
    return fig


def health_trajectory_figure(t, ratio, line_rig, line_ideal, loss, envelope):
    """Left: the health ratio ``|grad f|^2 / f`` along a flow against the two lines ``alpha - beta |w - w0|``. Right: the
    loss against the Result 2.2 envelope with the measured ``|b0|`` (chapter 3)."""
    fig, (ax1, ax2) = new_figure(2, width=4.3, height=3.3)
    ax1.plot(t, ratio, color=COLORS["flow"], label="|grad f|^2 / f")
    ax1.plot(t, line_rig, color=COLORS["bound2"], label="2|b0|^2 - 4|b0||x||w - w0|")
    ax1.plot(t, line_ideal, "--", color=COLORS["bound"], label="2k - 4 sqrt(km) |w - w0|")
    ax1.set(xlabel="t", ylabel="health ratio")
    ax1.legend(frameon=False, fontsize="x-small")
    ax2.semilogy(t, loss, color=COLORS["flow"], label="loss l(t)")
    ax2.semilogy(t, envelope, color=COLORS["bound2"], label="envelope, Result 2.2")
    ax2.set(xlabel="t", ylabel="loss")
    ax2.legend(frameon=False, fontsize="x-small")
    return fig


def width_figure(ks, gd_loss, rig, ideal, floor, fractions):
    """Against the width ``k`` (chapter 3). Left: medians over draws, relative to ``l(0)``, of the GD loss at time
    ``t = 1`` and of the two bounds on it at the same time (the relaxed-health theorem for GD with the measured
    ``rho``, with the measured ``|b0|`` and with ``|b0|^2 = k``); values below ``floor`` are round-off (shaded) and
    are drawn at ``floor / 10``. Right: ``fractions``, a dict label -> (len(ks),) fractions of draws."""
    fig, (ax1, ax2) = new_figure(2, width=4.3, height=3.3)
    low = floor / 10.0
    for y, style, color, label in ((gd_loss, "o-", COLORS["gd"], "GD loss at t = 1"),
                                   (rig, "^:", COLORS["bound2"], "rigorous bound at t = 1"),
                                   (ideal, "s--", COLORS["bound"], "idealised bound at t = 1")):
        ax1.loglog(ks, np.maximum(y, low), style, color=color, label=label)
    ax1.axhspan(low / 10.0, floor, color="0.85", lw=0)
    ax1.text(ks[0], floor / 3.0, "round-off: not compared", fontsize="x-small", va="top")
    ax1.set(xlabel="width k", ylabel="median of loss / l(0)", ylim=(low / 10.0, 3.0))
    ax1.legend(frameon=False, fontsize="x-small", loc="lower left", bbox_to_anchor=(0.0, 0.12))
    for (label, frac), style in zip(fractions.items(), ("o-", "s--", "^:", "v-."), strict=False):
        ax2.semilogx(ks, frac, style, label=label)
    ax2.set(xlabel="width k", ylabel="fraction of draws", ylim=(-0.03, 1.03))
    ax2.legend(frameon=False, fontsize="x-small")
    return fig


# --- chapter 4 -------------------------------------------------------------------------------------------

from . import ntk as _ntk  # noqa: E402  (chapter 4 section)


def _fit_line(ax, x, y, color, label: str) -> float:
    """Least-squares line through ``(log x, log y)`` drawn dashed on ``ax``; returns the slope (chapter 4)."""
    slope, icpt = np.polyfit(np.log(x), np.log(y), 1)
    ax.plot(x, np.exp(icpt) * np.asarray(x, dtype=float) ** slope, "--", color=color, lw=1,
            label=f"{label}: slope {slope:.2f}")
    return float(slope)


def step_residual_figure(etas, rel_residual, flipped):
    """One GD step of size ``eta`` against ``-eta H (u - y)`` (chapter 4, section 1): the relative residual
    ``|du - predicted| / |predicted|`` (E,) against ``eta`` (E,), filled where no activation pattern flipped
    (``flipped`` (E,) counts), open where some did."""
    etas, res, flipped = (np.asarray(v, dtype=float) for v in (etas, rel_residual, flipped))
    fig, (ax,) = new_figure(1, width=5.0, height=3.2)
    floor = 1e-17
    none = flipped == 0
    ax.plot(etas[none], np.maximum(res[none], floor), "o", color=COLORS["flow"], label="no pattern flipped")
    ax.plot(etas[~none], np.maximum(res[~none], floor), "o", mfc="none", color=COLORS["bound"],
              label="some pattern flipped")
    _plain_log(ax, "xy")
    ax.set(xlabel="step size eta", ylabel="|du + eta H (u - y)| / |eta H (u - y)|")
    ax.legend(frameon=False, fontsize="small")
    return fig


def kernel_regression_figure(t, exact_modes, t_num, numeric_modes, lam):
    """The residual of kernel regression along the eigenvectors of ``H`` (chapter 4, section 2): the exact
    ``|v_k^T (u(t) - y)|`` (T, K) as lines and the numerically integrated parameter flow (T', K) as dots; each mode
    decays at its own rate ``lambda_k`` (K,)."""
    fig, (ax,) = new_figure(1, width=5.2, height=3.3)
    for k in range(exact_modes.shape[1]):
        (line,) = ax.plot(t, exact_modes[:, k], lw=1.5, label=f"lambda = {lam[k]:.2g}")
        ax.plot(t_num, numeric_modes[:, k], "o", ms=3, color=line.get_color())
    _plain_log(ax)
    ax.set(xlabel="t", ylabel="|v_k^T (u(t) - y)|")
    ax.legend(frameon=False, fontsize="x-small", title="lines: exact; dots: flow of theta", title_fontsize="x-small")
    return fig


def gram_error_figure(ms, errors, band):
    """``|H(0) - H*|_F`` against the width ``m`` (M,) on log-log axes (chapter 4, section 3): every draw (M, S) as a
    dot, the median with its fitted slope, and the Hoeffding band (M,) that holds with probability ``1 - delta``."""
    ms = np.asarray(ms, dtype=float)
    fig, (ax,) = new_figure(1, width=5.2, height=3.3)
    for j in range(errors.shape[1]):
        ax.plot(ms, errors[:, j], ".", color="0.6", label="one draw" if j == 0 else None)
    med = np.median(errors, axis=1)
    ax.plot(ms, med, "o", color=COLORS["run"], label="median over draws")
    _fit_line(ax, ms, med, COLORS["run"], "fit")
    ax.plot(ms, band, "-", color=COLORS["bound"], label="Hoeffding bound (prob. 0.95)")
    _plain_log(ax, "xy")
    ax.set(xlabel="width m", ylabel="|H(0) - H*|_F")
    ax.legend(frameon=False, fontsize="x-small")
    return fig


def lambda0_figure(deltas, lam0_pair, lam0_set):
    """``lambda_0`` as two inputs on the circle approach each other (chapter 4, section 3): for the pair alone
    (D,) and for a set of inputs in which one pair closes (D,), against the angle ``delta`` (D,) on log-log axes."""
    fig, (ax,) = new_figure(1, width=5.0, height=3.2)
    ax.plot(deltas, lam0_pair, "o-", color=COLORS["run"], ms=3, label="two inputs")
    ax.plot(deltas, lam0_set, "s-", color=COLORS["gd"], ms=3, label="eight inputs, one pair closing")
    ax.plot(deltas, np.asarray(deltas) / (2 * np.pi), ":", color="0.3", label="delta / (2 pi)")
    _plain_log(ax, "xy")
    ax.set(xlabel="angle delta between the two inputs", ylabel="lambda_0 = lambda_min(H*)")
    ax.legend(frameon=False, fontsize="x-small")
    return fig


def lazy_figure(ms, drift, flips, gram_change):
    """Lazy training against the width ``m`` (M,) (chapter 4, section 4): ``max_r |w_r(T) - w_r(0)|``, the fraction
    of flipped activation patterns and ``|H(T) - H(0)|_F`` (each (M,), medians over draws), with fitted slopes."""
    ms = np.asarray(ms, dtype=float)
    fig, axes = new_figure(3, width=3.3, height=3.0)
    for ax, vals, name in zip(axes, (drift, flips, gram_change),
                              ("max_r |w_r(T) - w_r(0)|", "fraction of flipped patterns", "|H(T) - H(0)|_F"),
                              strict=True):
        ax.plot(ms, vals, "o", color=COLORS["run"])
        _fit_line(ax, ms, vals, COLORS["bound"], "fit")
        _plain_log(ax, "xy")
        ax.set(xlabel="width m", title=name)
        ax.legend(frameon=False, fontsize="x-small")
    return fig


def ntk_convergence_figure(curves, lam0):
    """``L(t) / L(0)`` against ``t`` for several widths (chapter 4, section 5): ``curves`` maps a label to
    ``(t, ratio, lam_low)``, drawn with the bound ``exp(-2 lam_low t)`` of the theorem (dotted, same colour); the
    dashed black line is the bound ``exp(-lambda_0 t)`` of Du et al."""
    fig, (ax,) = new_figure(1, width=5.6, height=3.5)
    t_max = 0.0
    for label, (t, ratio, lam_low) in curves.items():
        (line,) = ax.plot(t, ratio, lw=1.6, label=label)
        ax.plot(t, np.exp(-2 * lam_low * t), ":", color=line.get_color())
        t_max = max(t_max, float(t[-1]))
    tt = np.linspace(0, t_max, 100)
    ax.plot(tt, np.exp(-lam0 * tt), "--", color="k", lw=1, label="exp(-lambda_0 t)")
    _plain_log(ax)
    ax.set(xlabel="t = k eta", ylabel="L(t) / L(0)")
    ax.legend(frameon=False, fontsize="x-small", title="dotted: exp(-2 lambda_low t)", title_fontsize="x-small")
    return fig


def kernel_predictor_figure(theta, f_net, f_ker, theta_train, y_train, ms, distances: dict, plateau=None):
    """Left: the trained net's function on the circle (angle ``theta`` (T,)), ``f_net`` (T,), against the kernel
    predictor ``f_ker`` (T,) and the training points. Right: each series of ``distances`` (label -> (M,), or
    (M, draws): then the median with the band from the smallest to the largest draw) between the net and a predictor
    against the width ``ms`` (M,), log-log, and ``plateau`` (optional) as a horizontal line (chapter 4, section 6)."""
    fig, (ax1, ax2) = new_figure(2, width=4.4, height=3.4)
    ax1.plot(theta, f_net, color=COLORS["run"], lw=2, label="trained net (widest)")
    ax1.plot(theta, f_ker, "--", color=COLORS["bound"], lw=1.5, label="kernel predictor, corrected")
    ax1.plot(theta_train, y_train, "ko", ms=5, label="training points")
    ax1.set(xlabel="angle of the input on the circle", ylabel="output")
    ax1.legend(frameon=False, fontsize="x-small")
    ms = np.asarray(ms, dtype=float)
    for (label, dist), marker in zip(distances.items(), "os^v", strict=False):
        dist = np.asarray(dist, dtype=float)
        (line,) = ax2.plot(ms, np.median(dist, axis=1) if dist.ndim == 2 else dist, marker + "-", ms=4, label=label)
        if dist.ndim == 2:
            ax2.fill_between(ms, dist.min(axis=1), dist.max(axis=1), color=line.get_color(), alpha=0.15, lw=0)
    if plateau is not None:
        ax2.axhline(plateau, color="0.4", ls=":", lw=1.2, label="predicted plateau of (b)")
    _plain_log(ax2, "xy")
    ax2.set(xlabel="width m", ylabel="max over test inputs of |f_net - predictor|")
    ax2.legend(frameon=False, fontsize="x-small")
    return fig


#: The chapter-4 explorer's data: seven inputs on the unit circle (no two parallel; lambda_0 = 0.050) and targets
#: ``y = sin(theta) + cos(2 theta) / 2``.
CH04_ANGLES = np.array([0.3, 1.1, 1.9, 2.6, 3.8, 4.6, 5.5])
CH04_DEFAULTS = {"m": 300, "eta": 1.0, "steps": 100, "draw": 0}
CH04_WIDTHS = (10, 30, 100, 300, 1000, 3000)  # wider nets train too slowly for the explorer's 100 ms budget
_CH04_TEST = np.linspace(0.0, 2.0 * np.pi, 121)
_CH04_SHOWN = 1e3  # a kernel predictor beyond this size has diverged: it is not drawn to scale


def ch04_targets(theta):
    """Targets ``y = sin(theta) + cos(2 theta) / 2`` of the chapter-4 circle examples."""
    return np.sin(theta) + 0.5 * np.cos(2.0 * theta)


@lru_cache(maxsize=1)
def _ch04_kernels() -> tuple[np.ndarray, np.ndarray, float]:
    """``H*`` (n, n) on the explorer's inputs, ``K*`` (T, n) from the test grid to them, and ``lambda_0``."""
    X = _ntk.circle_inputs(CH04_ANGLES)
    H, K = _ntk.ntk_limit(X), _ntk.ntk_limit(_ntk.circle_inputs(_CH04_TEST), X)
    H.flags.writeable = K.flags.writeable = False  # shared by every call of the cache
    return H, K, _ntk.lambda_0(X)


class Ch04Run(NamedTuple):
    """One setting of the chapter-4 explorer: the GD run on the circle data (:class:`gdlab.ntk.LazyRun`), the net's
    function ``f_net`` (T,) and ``f_0`` (T,) on the test angles, the kernel predictor ``f_ker`` (T,) for the same
    training time and ``lambda_0``."""

    run: _ntk.LazyRun
    f_net: np.ndarray
    f0: np.ndarray
    f_ker: np.ndarray
    lam0: float


def ch04_run(m: int = 300, eta: float = 1.0, steps: int = 100, draw: int = 0) -> Ch04Run:
    """Train the Du et al. net of width ``m`` (initialisation ``draw``) for ``steps`` GD steps of size ``eta`` on the
    seven circle inputs; compare its function with the kernel predictor (limit kernel, same steps) (chapter 4)."""
    m = as_int("m", m, high=100_000)
    eta = as_float("eta", eta, high=10.0)
    steps = as_int("steps", steps, high=5000)
    draw = as_int("draw", draw, low=0)
    X = _ntk.circle_inputs(CH04_ANGLES)
    y = ch04_targets(CH04_ANGLES)
    W0, a = _nets.du_init(m, 2, draw)
    run = _ntk.lazy_training(X, y, W0, a, eta, steps, records=20)
    if run.diverged_at > 0:  # again up to the divergence, every step recorded: the loss curve is drawn up to there
        run = _ntk.lazy_training(X, y, W0, a, eta, run.diverged_at, records=run.diverged_at + 1)
    Z = _ntk.circle_inputs(_CH04_TEST)
    H, K, lam0 = _ch04_kernels()
    with _ntk.one_blas_thread():
        f0 = _nets.du_forward(W0, a, Z)
        f_net = _nets.du_forward(run.W, a, Z) if run.diverged_at < 0 else np.full(Z.shape[0], np.nan)
    with np.errstate(over="ignore", invalid="ignore"):  # the kernel model diverges too when eta > 2 / lambda_max
        f_ker = _ntk.kernel_predictor(K, H, y, u0=run.u[0], f0_te=f0, t=steps * eta, eta=eta)
    return Ch04Run(run, f_net, f0, f_ker, lam0)


class NTKExplorerView:
    """The chapter-4 explorer's figure (built once, updated in place).

    Left: ``L(t) / L(0)`` (log) with the bound ``exp(-2 lambda_low t)`` (``lambda_low`` the smallest
    ``lambda_min(H)`` recorded) and Du et al.'s ``exp(-lambda_0 t)``. Right: the net's function on the circle after
    training, the kernel predictor for the same training, the initial function and the data. The line above gives the
    kernel's relative change ``|H(T) - H(0)|_F / |H(0)|_F``, the fraction of flipped activation patterns and the
    largest gap between net and predictor: numbers, not a third panel, because every axis costs ~15 ms per redraw.
    """

    def __init__(self):
        self._fig = None

    def _build(self):
        self._fig = fig = Figure(figsize=(9.0, 3.5))
        FigureCanvasAgg(fig)
        self._axes = ax_l, ax_f = [fig.add_axes((0.07 + 0.5 * i, 0.14, 0.4, 0.58)) for i in range(2)]
        _explorer_log_y(ax_l, y_ticks=3, x_ticks=2)
        ax_l.set_xlabel("time t = k eta")
        (self._loss,) = ax_l.plot([], [], color=COLORS["gd"], lw=2, label="L(t) / L(0)")
        (self._low,) = ax_l.plot([], [], ":", color=COLORS["bound2"], lw=1.5, label="exp(-2 lambda_low t)")
        (self._du,) = ax_l.plot([], [], "--", color=COLORS["bound"], lw=1.2, label="exp(-lambda_0 t)")
        ax_f.set(xlim=(0, 2 * np.pi), xlabel="angle of the input")
        ax_f.xaxis.set_major_locator(FixedLocator([0.0, np.pi, 2 * np.pi]))
        ax_f.xaxis.set_major_formatter(FixedFormatter(["0", "pi", "2 pi"]))
        ax_f.yaxis.set_major_locator(MaxNLocator(3))
        (self._f0,) = ax_f.plot(_CH04_TEST, np.zeros_like(_CH04_TEST), color="0.7", lw=1, label="net at t = 0")
        (self._fnet,) = ax_f.plot(_CH04_TEST, np.zeros_like(_CH04_TEST), color=COLORS["run"], lw=2,
                                  label="trained net")
        (self._fker,) = ax_f.plot(_CH04_TEST, np.zeros_like(_CH04_TEST), "--", color=COLORS["bound"], lw=1.5,
                                  label="kernel predictor")
        ax_f.plot(CH04_ANGLES, ch04_targets(CH04_ANGLES), "ko", ms=4, label="data")
        for ax in self._axes:
            handles, labels = ax.get_legend_handles_labels()
            ax.legend_ = PixelCachedLegend(ax, handles, labels, loc="lower left", bbox_to_anchor=(0.0, 1.01),
                                           frameon=False, fontsize="x-small", ncol=2, borderaxespad=0.0,
                                           handlelength=1.5)
        self._status = fig.text(0.5, 0.94, "", ha="center", fontsize=9)
        self._note = ax_f.text(0.5, 0.5, "", transform=ax_f.transAxes, ha="center", va="center", fontsize=9,
                               color=COLORS["bound"], visible=False,
                               bbox={"facecolor": "white", "edgecolor": COLORS["bound"]})

    def update(self, m: int = 300, eta: float = 1.0, steps: int = 100, draw: int = 0):
        """Run this setting and redraw; returns the view's Figure (chapter-4 explorer)."""
        res = ch04_run(m, eta, steps, draw)
        if self._fig is None:
            self._build()
        run = res.run
        ax_l, ax_f = self._axes
        t_end = max(steps * eta, 1e-12)
        t, ratio = finite_part(run.t, run.loss / run.loss[0])
        ratio = np.maximum(ratio, 1e-16)
        lam_low = max(float(np.min(run.lambda_min)), 0.0)
        tt = np.linspace(0.0, t_end, 60)
        self._loss.set_data(t, ratio)
        self._low.set_data(tt, np.maximum(np.exp(-2 * lam_low * tt), 1e-16))
        self._du.set_data(tt, np.maximum(np.exp(-res.lam0 * tt), 1e-16))
        ax_l.set(xlim=(0, t_end), ylim=(max(1e-16, 0.3 * float(ratio.min())), max(3.0, 3.0 * float(ratio.max()))))
        self._f0.set_ydata(res.f0)
        self._fnet.set_ydata(res.f_net)
        ker_ok = bool(np.all(np.abs(res.f_ker) < _CH04_SHOWN))  # a diverged kernel model would flatten the panel
        self._fker.set_ydata(res.f_ker if ker_ok else np.full(res.f_ker.shape, np.nan))
        shown = [ch04_targets(CH04_ANGLES), res.f0] + [f for f, ok in ((res.f_net, run.diverged_at < 0),
                                                                       (res.f_ker, ker_ok)) if ok]
        lo, hi = min(float(v.min()) for v in shown), max(float(v.max()) for v in shown)
        ax_f.set_ylim(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
        notes = [f"GD diverged at step {run.diverged_at}"] if run.diverged_at >= 0 else []
        if not ker_ok:
            notes.append("the kernel model diverges too\n(eta > 2 / lambda_max(H*))")
        self._note.set_text("\n".join(notes))
        self._note.set_visible(bool(notes))
        drift = (f"|H(t) - H(0)|_F / |H(0)|_F = {run.gram_change[-1] / np.linalg.norm(run.H0):.2g}, flipped "
                 f"{100 * run.flips[-1]:.2g}%")
        if run.diverged_at >= 0:  # no trained net to compare: say where it stopped, never "= nan"
            status = f"GD diverged at step {run.diverged_at}; at t = {run.t[-1]:.3g} before that: {drift}"
        elif not ker_ok:
            status = f"t = {run.t[-1]:.3g}: {drift}; the kernel model diverged (no predictor to compare)"
        else:
            status = f"t = {run.t[-1]:.3g}: {drift}, max |net - predictor| = {np.max(np.abs(res.f_net - res.f_ker)):.2g}"
        self._status.set_text(status)
        return self._fig


_CH04_VIEW: list[NTKExplorerView] = []


def ntk_explorer_figure(m: int = 300, eta: float = 1.0, steps: int = 100, draw: int = 0):
    """The chapter-4 explorer figure (one persistent :class:`NTKExplorerView`)."""
    if not _CH04_VIEW:
        _CH04_VIEW.append(NTKExplorerView())
    return _CH04_VIEW[0].update(m, eta, steps, draw)


# --- chapter 5 -------------------------------------------------------------------------------------------

from . import params as _params  # noqa: E402  (chapter 5 section)


def output_flow_figure(s, cost, cost_comparison, decay_rate, rate_bound):
    """Left: the cost of the network's gradient flow (T,) and the comparison model's (T,) against ``s`` (T,). Right:
    the measured decay rate ``-d log C / ds`` (T,) and its guaranteed floor ``2 lambda_min(D D^T)(s) / N`` (T,)
    (chapter 5, Theorem 1.3 pointwise)."""
    fig, (ax1, ax2) = new_figure(2, width=4.3, height=3.3)
    ax1.plot(s, cost, color=COLORS["run"], lw=2, label="network, cost C(s)")
    ax1.plot(s, cost_comparison, "--", color=COLORS["flow"], label="comparison model")
    _plain_log(ax1)
    ax1.set(xlabel="s", ylabel="cost")
    ax1.legend(frameon=False, fontsize="x-small")
    ax2.plot(s, decay_rate, color=COLORS["run"], lw=2, label="-d log C / ds (measured)")
    ax2.plot(s, rate_bound, ":", color=COLORS["bound"], lw=1.5, label="2 lambda_min(s) / N (guaranteed)")
    _plain_log(ax2)
    ax2.set(xlabel="s", ylabel="decay rate of C")
    ax2.legend(frameon=False, fontsize="x-small")
    return fig


def transition_figure(ratio, fraction, low, high, n_points):
    """The fraction of draws that reach zero cost (C,) against ``K / (QN)`` (C,) for each cell of the transition
    experiment, with its interval ``low``, ``high`` (C,) as error bars, one line per number of inputs ``n_points`` (C,)
    (chapter 5, section 5)."""
    ratio, frac, low, high, n_points = (np.asarray(v) for v in (ratio, fraction, low, high, n_points))
    fig, (ax,) = new_figure(1, width=5.4, height=3.4)
    palette = (COLORS["run"], COLORS["flow"], COLORS["bound"], COLORS["bound2"], COLORS["gd"])
    for i, n in enumerate(dict.fromkeys(n_points.tolist())):
        sel, color = n_points == n, palette[i % len(palette)]
        ax.errorbar(ratio[sel], frac[sel], yerr=(frac[sel] - low[sel], high[sel] - frac[sel]), fmt="o-",
                    color=color, capsize=2, ms=4, label=f"N = {n}")
    ax.axvline(1.0, color="0.5", ls="--", lw=1)
    ax.set(xlabel="K / (QN)", ylabel="fraction of draws with zero cost", ylim=(-0.03, 1.03))
    ax.legend(frameon=False, fontsize="x-small")
    return fig


#: The chapter-5 explorer: a one-hidden-layer ReLU net on inputs in R^3 with Q = 6 outputs.
CH05_M, CH05_Q = 3, 6
CH05_DEFAULTS = {"width": 2, "n_points": 6, "data": "generic", "draw": 0}
CH05_STEPS = 250


class Ch05Run(NamedTuple):
    """One setting of the chapter-5 explorer: the GD run (:class:`gdlab.params.Fit`), ``K``, ``QN``, the rank of ``D``
    and ``lambda_min(D D^T)`` at the end, the rank bound of :func:`gdlab.params.one_hidden_rank_bound` (for every
    ``theta``), ``lam_max`` ``lambda_max(D D^T)`` at the end and the ``data`` kind ("generic" or "clustered")."""

    fit: _params.Fit
    K: int
    QN: int
    rank: int
    lam_min: float
    rank_bound: int
    lam_max: float = 0.0
    data: str = "generic"


def ch05_run(width: int = 2, n_points: int = 6, data: str = "generic", draw: int = 0) -> Ch05Run:
    """Train the explorer's network of ``width`` hidden units on ``n_points`` inputs (``data``: "generic" or
    "clustered" in 2 clusters) for :data:`CH05_STEPS` GD steps (chapter 5)."""
    width = as_int("width", width, high=64)
    n_points = as_int("n_points", n_points, high=64)
    draw = as_int("draw", draw, low=0)
    if data == "generic":
        X, Y = _params.generic_data(n_points, CH05_M, CH05_Q, 1000 + draw)
    elif data == "clustered":
        X, Y = _params.clustered_data(n_points, CH05_M, CH05_Q, min(2, n_points), 1000 + draw)
    else:
        raise ValueError(f"data must be 'generic' or 'clustered'; got {data!r}")
    sizes = (CH05_M, width, CH05_Q)
    problem = _params.FCProblem(sizes, X, Y)
    fit = _params.fit(problem, _params.init(sizes, draw), CH05_STEPS, records=81)
    D = problem.jacobian(fit.gd_theta)
    sv = np.linalg.svd(D, compute_uv=False)
    QN = D.shape[0]
    lam = float(sv[QN - 1] ** 2) if sv.size >= QN else 0.0
    return Ch05Run(fit, problem.K, QN, _params.numerical_rank(D), lam,
                   _params.one_hidden_rank_bound(CH05_M, width, CH05_Q, n_points), float(sv[0] ** 2), data)


def ch05_verdict(res: Ch05Run) -> tuple[str, str]:
    """The explorer's status line and verdict for a :class:`Ch05Run` (chapter 5). ``lambda_min(D D^T)`` is shown as a
    value only where ``rank D = QN``; below, it is round-off and shown as a bound. A rank deficit at the end of the
    run is a verdict on zero cost only where the rank bound holds at every ``theta`` and the targets are generic."""
    if res.rank >= res.QN:
        lam = f"lambda_min(D D^T) = {res.lam_min:.2g}"
    else:
        lam = "lambda_min(D D^T) < 1e-18 lambda_max (round-off)"
    status = f"K = {res.K} parameters, QN = {res.QN} outputs; rank D = {res.rank} (bound {res.rank_bound}); {lam}"
    if res.fit.diverged_at >= 0:
        return status, f"GD diverged at step {res.fit.diverged_at}"
    if res.rank_bound < res.QN and res.data == "generic":
        return status, "rank D <= bound < QN at every theta: zero cost is out of reach for generic targets"
    if res.rank_bound < res.QN:
        return status, "rank bound < QN, but clustered targets are not generic: zero cost may still be reachable"
    if res.rank < res.QN:
        return status, f"rank D < QN after {CH05_STEPS} steps, but the bound allows QN: no verdict on zero cost"
    return status, "rank D = QN: the cost can still go to zero"


class ParamsExplorerView:
    """The chapter-5 explorer's figure (built once, updated in place): the cost of gradient descent (log) against the
    step, and a status line with ``K``, ``QN``, the rank of ``D``, its ReLU bound and ``lambda_min(D D^T)``."""

    def __init__(self):
        self._fig = None

    def _build(self):
        self._fig = fig = Figure(figsize=(7.0, 3.4))
        FigureCanvasAgg(fig)
        self._ax = ax = fig.add_axes((0.11, 0.15, 0.85, 0.66))
        _explorer_log_y(ax, y_ticks=4, x_ticks=4)
        ax.set(xlabel="gradient-descent step", ylabel="cost C", xlim=(0, CH05_STEPS))
        (self._cost,) = ax.plot([], [], color=COLORS["gd"], lw=2)
        self._status = fig.text(0.5, 0.9, "", ha="center", fontsize=9)
        self._verdict = fig.text(0.5, 0.84, "", ha="center", fontsize=9, weight="bold")

    def update(self, width: int = 2, n_points: int = 6, data: str = "generic", draw: int = 0):
        """Run this setting and redraw; returns the view's Figure (chapter-5 explorer)."""
        res = ch05_run(width, n_points, data, draw)
        if self._fig is None:
            self._build()
        k, cost = finite_part(res.fit.k.astype(float), res.fit.cost)
        cost = np.maximum(cost, 1e-30)
        self._cost.set_data(k, cost)
        self._ax.set_ylim(max(1e-30, 0.3 * float(cost.min())), 3.0 * float(cost.max()))
        status, verdict = ch05_verdict(res)
        self._status.set_text(status)
        self._verdict.set_text(verdict)
        self._verdict.set_color(COLORS["flow"] if "can" in verdict and "cannot" not in verdict else COLORS["bound"])
        return self._fig


_CH05_VIEW: list[ParamsExplorerView] = []


def params_explorer_figure(width: int = 2, n_points: int = 6, data: str = "generic", draw: int = 0):
    """The chapter-5 explorer figure (one persistent :class:`ParamsExplorerView`)."""
    if not _CH05_VIEW:
        _CH05_VIEW.append(ParamsExplorerView())
    return _CH05_VIEW[0].update(width, n_points, data, draw)


# --- chapter 6 -------------------------------------------------------------------------------------------

# Chapter 6: the worked strict saddle (basins, escape times, the fold of the gradient map), the chain of saddles,
# the escape algorithms (SGD's noise spectrum, SGLD's law, annealing), the non-strict saddle of a deep scalar net,
# and the chapter's explorer.

from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from . import saddles as _saddles  # noqa: E402  (chapter 6 section)

#: Colours of the basin labels of :func:`gdlab.saddles.example_basins`: -1, 0, 1, 2 (not settled), 3 (diverged).
BASIN_COLORS = ("#9ecae1", "#000000", "#fdae6b", "#bdbdbd", "#ffffff")
BASIN_NAMES = ("to (0, -1)", "to the saddle", "to (0, 1)", "not settled", "diverged")
#: The square on which the chapter-6 figures and the explorer show the worked example.
CH06_BOX = (-2.0, 2.0, -1.6, 1.6)


@lru_cache(maxsize=8)
def _example_segments(box: tuple[float, float, float, float], n: int = 121) -> tuple[np.ndarray, ...]:
    """Contour lines of the worked example over ``box`` as (P, 2) polylines (computed once per box)."""
    xs, ys = np.linspace(box[0], box[1], n), np.linspace(box[2], box[3], n)
    F = _saddles.example_f(np.stack(np.meshgrid(xs, ys), axis=-1))
    gen = contourpy.contour_generator(xs, ys, F)
    levels = np.r_[-0.24, -0.2, -0.12, -0.05, 0.0, 0.1, 0.3, 0.6, 1.0, 1.5, 2.2]
    segs = [seg for level in levels for seg in gen.lines(level) if len(seg) > 1]
    for seg in segs:
        seg.flags.writeable = False
    return tuple(segs)


def _draw_example(ax, box=CH06_BOX) -> None:
    """Contours of the worked example, its saddle (x) and minima (stars) on ``ax``."""
    ax.add_collection(LineCollection(_example_segments(tuple(box)), colors="0.45", linewidths=0.6))
    ax.plot(*_saddles.EXAMPLE_MINIMA.T, "*", color="k", ms=10, zorder=5)
    ax.plot(0.0, 0.0, "X", color=COLORS["bound"], ms=8, zorder=5)
    ax.set(xlim=box[:2], ylim=box[2:], xlabel="x", ylabel="y", aspect="equal")


def _basins_panel(ax, xs, ys, labels, box) -> None:
    cmap = ListedColormap(BASIN_COLORS)
    ax.pcolormesh(xs, ys, np.asarray(labels) + 1, cmap=cmap, vmin=-0.5, vmax=4.5, shading="nearest",
                  rasterized=True)
    _draw_example(ax, box)
    ax.axhline(0.0, color="k", lw=1.2, ls="--")


def _basin_legend(fig, labels) -> None:
    shown = sorted(set(np.unique(labels).tolist()))
    handles = [Patch(facecolor=BASIN_COLORS[v + 1], edgecolor="0.5", label=BASIN_NAMES[v + 1]) for v in shown]
    handles.append(plt.Line2D([], [], color="k", ls="--", label="x-axis: stable set"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize="x-small")


def basins_figure(xs, ys, labels, alpha: float, paths: dict | None = None, box=CH06_BOX):
    """Where gradient descent with step ``alpha`` ends from each start of the grid ``xs`` (nx,) x ``ys`` (ny,)
    (``labels`` (ny, nx) from :func:`gdlab.saddles.example_basins`), on the example's contours; ``paths`` maps a
    label to a (T, 2) path drawn on top (chapter 6, section 1)."""
    fig, (ax,) = new_figure(1, width=6.2, height=4.0)
    _basins_panel(ax, xs, ys, labels, box)
    for i, (name, path) in enumerate((paths or {}).items()):
        ax.plot(path[:, 0], path[:, 1], "-o", ms=2, lw=1, color=("C0", "C3", "C2", "C4")[i % 4], label=name)
    if paths:
        ax.legend(loc="lower left", fontsize="x-small", framealpha=0.9)
    ax.set_title(f"gradient descent, alpha = {alpha:.3g}")
    _basin_legend(fig, labels)
    return fig


def escape_figure(eps, steps, law, alpha: float):
    """Measured escape steps (k,) against the offset ``eps`` (k,) from the stable set, with the law
    ``log(r / eps) / log(1 + alpha gamma)`` (k,) (chapter 6, section 2)."""
    fig, (ax,) = new_figure(1, width=5.4, height=3.4)
    ax.plot(eps, steps, "o", color=COLORS["run"], label="measured")
    ax.plot(eps, law, "-", color=COLORS["bound"], label="log(r / eps) / log(1 + alpha gamma)")
    _plain_log(ax, "x")
    ax.set(xlabel="offset eps from the stable set", ylabel="steps to leave |w| < r", title=f"alpha = {alpha:.3g}")
    ax.legend(frameon=False, fontsize="x-small")
    return fig


def fold_figure(alphas, y_max: float, xs, ys, labels, alpha_fold: float, box):
    """Left: the y-part ``(1 + alpha) y - alpha y^3`` of the gradient map for each step in ``alphas``, with its fold
    points ``|y| = fold_y(alpha)`` where it stops being one-to-one. Right: the basins (as :func:`basins_figure`) for
    the step ``alpha_fold`` (chapter 6, section 3)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.0, 4.0), layout="constrained",
                                   gridspec_kw={"width_ratios": [1.0, 1.2]})
    y = np.linspace(-y_max, y_max, 401)
    for alpha in alphas:
        gy = _saddles.gd_map(np.c_[np.zeros_like(y), y], alpha)[:, 1]
        (line,) = ax1.plot(y, gy, lw=1.8, label=f"alpha = {alpha:.3g}")
        yc = _saddles.fold_y(alpha)
        if yc <= y_max:
            yc_pts = np.array([-yc, yc])
            ax1.plot(yc_pts, _saddles.gd_map(np.c_[np.zeros(2), yc_pts], alpha)[:, 1], "o", color=line.get_color())
    ax1.plot(y, y, ":", color="0.5", lw=1, label="identity")
    ax1.axhline(0.0, color="k", lw=0.8)
    ax1.set(xlabel="y", ylabel="next y", ylim=(-y_max, y_max))
    ax1.legend(frameon=False, fontsize="x-small")
    _basins_panel(ax2, xs, ys, labels, box)
    ax2.set_title(f"basins, alpha = {alpha_fold:.3g}")
    _basin_legend(fig, labels)
    return fig


def chain_figure(runs: dict):
    """The chain of saddles: objective ``f / nu`` (plateau -(i - 1) at saddle i) against the iteration, log scale, for
    every run in ``runs``: ``{d: [(L, gd_run, pgd_run), ...]}`` with :class:`gdlab.saddles.ChainRun` results; GD solid,
    PGD dashed, one panel per d (chapter 6, section 4)."""
    fig, axes = new_figure(len(runs), width=4.6, height=3.6)
    for ax, (d, rows) in zip(axes, runs.items(), strict=True):
        for j, (L, gd, pgd, nu) in enumerate(rows):
            color = f"C{j}"
            ax.plot(np.maximum(gd.k, 1), gd.f / nu, "-", color=color, lw=1.6, label=f"GD, L = {L:g}")
            ax.plot(np.maximum(pgd.k, 1), pgd.f / nu, "--", color=color, lw=1.2, label=f"PGD, L = {L:g}")
        _plain_log(ax, "x")
        ax.set(xlabel="iteration", ylabel="f / nu", title=f"d = {d}")
    axes[0].legend(frameon=False, fontsize="xx-small", ncol=2)
    return fig


def sgd_spectrum_figure(eigs_sgd, p: int):
    """Eigenvalues of SGD's noise covariance (p,), as fractions of their sum, against isotropic noise (``1/p`` each,
    the covariance of noisy GD's uniform direction) (chapter 6, section 5)."""
    fig, (ax,) = new_figure(1, width=5.4, height=3.2)
    share = np.sort(np.clip(eigs_sgd, 0.0, None))[::-1] / np.sum(np.clip(eigs_sgd, 0.0, None))
    ax.bar(np.arange(1, p + 1), np.maximum(share, 1e-18), color=COLORS["run"], label="SGD noise covariance")
    ax.axhline(1.0 / p, color=COLORS["bound"], ls="--", label="isotropic noise (noisy GD)")
    _plain_log(ax)
    ax.set(xlabel="eigenvalue index", ylabel="share of the total variance", ylim=(1e-18, 1.5))
    ax.legend(frameon=False, fontsize="x-small")
    return fig


def sgld_figure(samples, edges, grid, density, eps: float, k, fractions: dict, gibbs_share: dict):
    """Left: histogram of SGLD samples (n,) on ``edges`` against the density ``exp(-2 f / eps^2) / Z`` on ``grid``.
    Right: fraction of annealed chains in the global minimum's basin against the iteration ``k`` (R,) for each
    schedule in ``fractions`` ({label: (R,)}), with the Gibbs share at the final noise level (dotted) (chapter 6)."""
    fig, (ax1, ax2) = new_figure(2, width=4.6, height=3.4)
    ax1.hist(samples, bins=edges, density=True, color=COLORS["run"], alpha=0.6, label="SGLD samples")
    ax1.plot(grid, density, color=COLORS["bound"], lw=1.8, label="exp(-2 f / eps^2) / Z")
    ax1.set(xlabel="y", ylabel="density", title=f"fixed noise level eps = {eps:g}")
    ax1.legend(frameon=False, fontsize="x-small")
    for j, (label, frac) in enumerate(fractions.items()):
        ax2.plot(k, frac, color=f"C{j}", lw=1.8, label=label)
        ax2.axhline(gibbs_share[label], color=f"C{j}", ls=":", lw=1)
    ax2.set(xlabel="iteration k", ylabel="fraction in the global basin", ylim=(0, 1.02), title="annealed SGLD")
    ax2.legend(frameon=False, fontsize="x-small")
    return fig


def depth_figure(results: dict):
    """Escape steps from the balanced start ``w_j = s`` against ``s`` for each depth: ``{N: (scales, steps, law)}``,
    measured (dots) and the leading-order law (line), log-log (chapter 6, section 6)."""
    fig, (ax,) = new_figure(1, width=5.4, height=3.6)
    scales = []
    for j, (N, (s, steps, law)) in enumerate(results.items()):
        ax.plot(s, steps, "o", color=f"C{j}", label=f"N = {N}, measured")
        ax.plot(s, law, "-", color=f"C{j}", lw=1, label=f"N = {N}, law")
        scales.extend(np.asarray(s, dtype=float).tolist())
    _plain_log(ax, "xy")
    ticks = np.unique(np.round(scales, 6))  # label every scale used: the range spans less than a decade
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks], minor=False)
    ax.set_xticks([], minor=True)
    ax.set(xlabel="initial scale s", ylabel="steps until w_1 ... w_N >= 1/2")
    ax.legend(frameon=False, fontsize="x-small", ncols=2)
    return fig


#: The chapter-6 explorer: an escape algorithm on the worked example from (1.5, offset), CH06_STEPS steps.
CH06_METHODS = ("GD", "noisy GD", "PGD", "SGLD")
CH06_DEFAULTS = {"method": "noisy GD", "noise": 0.01, "alpha": 0.1, "offset": 1e-12, "draw": 0}
CH06_STEPS = 300
CH06_X0 = 1.5
#: PGD in the explorer: perturb when |grad f| <= g_thres, then wait t_thres = ceil(CH06_PGD_WAIT / alpha) steps (the
#: theory's t_thres scales like 1/eta) and stop if f fell by less than f_thres meanwhile.
CH06_PGD = {"g_thres": 0.01, "f_thres": 1e-4}
CH06_PGD_WAIT = 6.0
#: The explorer's run "leaves the saddle" when |y| first reaches this.
CH06_ESCAPE_R = 0.5


class Ch06Run(NamedTuple):
    """One setting of the chapter-6 explorer: the path ``x`` (T+1, 2), ``f`` (T+1,), ``escaped_at`` (first step with
    ``|y| >= 0.5``, -1: never), ``diverged_at`` (-1: never), and PGD's perturbation steps and return step."""

    x: np.ndarray
    f: np.ndarray
    escaped_at: int
    diverged_at: int
    perturbations: np.ndarray
    returned: int


def ch06_run(method: str = "noisy GD", noise: float = 0.01, alpha: float = 0.1, offset: float = 1e-12,
             draw: int = 0) -> Ch06Run:
    """Run ``method`` (one of :data:`CH06_METHODS`) with step ``alpha`` in (0, 1] and noise level ``noise`` in [0, 1]
    (noisy GD's noise size, PGD's radius, SGLD's eps) from ``(1.5, offset)`` on the worked example (chapter 6)."""
    if method not in CH06_METHODS:
        raise ValueError(f"method must be one of {CH06_METHODS}; got {method!r}")
    noise = as_float("noise", noise, low=0.0, high=1.0, low_open=False)
    alpha = as_float("alpha", alpha, high=1.0)
    offset = as_float("offset", offset, low=0.0, high=1.0, low_open=False)
    draw = as_int("draw", draw, low=0)
    x0 = np.array([CH06_X0, offset])
    f = _saddles.example_value
    if method == "PGD":
        prm = _saddles.PGDParameters(eta=alpha, r=max(noise, 1e-300), t_thres=int(np.ceil(CH06_PGD_WAIT / alpha)),
                                     **CH06_PGD)
        run = _saddles.perturbed_gd(f, _saddles.example_grad, x0, prm, CH06_STEPS, seed=draw)
        x, fx, div = run.x, run.f, run.diverged_at
        pert, ret = np.nonzero(run.perturbed)[0], run.returned
    else:
        if method == "SGLD":
            run = _saddles.sgld_path(f, _saddles.example_grad, x0, alpha, noise, CH06_STEPS, seed=draw)
        else:
            run = _saddles.noisy_gd(f, _saddles.example_grad, x0, alpha, CH06_STEPS, seed=draw,
                                    noise=noise if method == "noisy GD" else 0.0)
        x, fx, div, pert, ret = run.x, run.f, run.diverged_at, np.zeros(0, dtype=int), -1
    far = np.nonzero(np.abs(x[:, 1]) >= CH06_ESCAPE_R)[0]
    return Ch06Run(x, fx, int(far[0]) if far.size else -1, div, pert, ret)


class SaddleExplorerView:
    """The chapter-6 explorer's figure (built once, updated in place): left, the path on the worked example's
    contours (saddle: red cross, minima: stars); right, ``f - f*`` (log) against the step; a status line says when
    the run left the saddle, or that it did not, and for PGD where it perturbed and whether it stopped."""

    def __init__(self):
        self._fig = None

    def _build(self):
        self._fig = fig = Figure(figsize=(8.0, 3.6))
        FigureCanvasAgg(fig)
        self._ax_path = ax_p = fig.add_axes((0.06, 0.13, 0.42, 0.7))
        self._ax_loss = ax_l = fig.add_axes((0.6, 0.13, 0.37, 0.7))
        _draw_example(ax_p)
        ax_p.set(xlabel="", ylabel="", xticks=[-2, 0, 2], yticks=[-1, 0, 1])
        ax_p.axhline(0.0, color="k", lw=0.8, ls="--")
        (self._path,) = ax_p.plot([], [], "-", color=COLORS["run"], lw=1.0)
        (self._pert,) = ax_p.plot([], [], "o", color=COLORS["bound2"], ms=4, ls="none")
        (self._end,) = ax_p.plot([], [], "o", color=COLORS["gd"], ms=6)
        _explorer_log_y(ax_l, y_ticks=4, x_ticks=3)
        ax_l.set(xlim=(0, CH06_STEPS), ylim=(1e-16, 10.0))
        (self._loss,) = ax_l.plot([], [], color=COLORS["run"], lw=1.4)
        fig.text(0.61, 0.85, "f - min f", fontsize=9)
        fig.text(0.78, 0.02, "step", ha="center", fontsize=9)
        self._status = fig.text(0.5, 0.93, "", ha="center", fontsize=9.5)

    def update(self, method: str = "noisy GD", noise: float = 0.01, alpha: float = 0.1, offset: float = 1e-12,
               draw: int = 0):
        """Run this setting and redraw; returns the view's Figure (chapter-6 explorer)."""
        res = ch06_run(method, noise, alpha, offset, draw)
        if self._fig is None:
            self._build()
        x = res.x[np.all(np.isfinite(res.x), axis=1)]
        self._path.set_data(x[:, 0], x[:, 1])
        self._end.set_data(x[-1:, 0], x[-1:, 1])
        self._pert.set_data(res.x[res.perturbations, 0], res.x[res.perturbations, 1])
        k, gap = finite_part(np.arange(res.f.size, dtype=float), res.f - _saddles.EXAMPLE_MIN_VALUE)
        self._loss.set_data(k, np.maximum(gap, 1e-16))
        if res.diverged_at >= 0:
            msg, color = f"{method} diverged at step {res.diverged_at}", COLORS["bound"]
        elif res.escaped_at >= 0:
            msg, color = f"{method} left the saddle (|y| >= 0.5) at step {res.escaped_at}", COLORS["flow"]
        else:
            msg, color = f"{method} stayed near the saddle's stable set for {res.f.size - 1} steps", COLORS["bound"]
        if method == "PGD":
            msg += f"; {res.perturbations.size} perturbation(s)"
            if res.returned >= 0:
                msg += f", stopped at step {res.returned}"
        self._status.set(text=msg, color=color)
        return self._fig


_CH06_VIEW: list[SaddleExplorerView] = []


def saddle_explorer_figure(method: str = "noisy GD", noise: float = 0.01, alpha: float = 0.1, offset: float = 1e-12,
                           draw: int = 0):
    """The chapter-6 explorer figure (one persistent :class:`SaddleExplorerView`)."""
    if not _CH06_VIEW:
        _CH06_VIEW.append(SaddleExplorerView())
    return _CH06_VIEW[0].update(method, noise, alpha, offset, draw)


# --- chapter 7 -------------------------------------------------------------------------------------------

# Chapter 7: deep linear networks: the balancedness drift of gradient descent, step-size scans per depth, decaying
# steps, and the chapter's explorer.

from . import deeplinear as _deeplinear  # noqa: E402  (chapter 7 section)


def balance_drift_figure(etas, drift, slope: float):
    """Balancedness drift ``max_j |Delta_j(K) - Delta_j(0)|`` after a fixed number of steps against the step ``eta``
    (S,), log-log, with the fitted slope (chapter 7, section 2)."""
    fig, (ax,) = new_figure(1, width=5.0, height=3.4)
    ax.plot(etas, drift, "o-", color=COLORS["run"], label=f"gradient descent (fitted slope {slope:.2f})")
    ref = drift[0] * (np.asarray(etas) / etas[0]) ** 2
    ax.plot(etas, ref, ":", color=COLORS["bound"], label="slope 2")
    _plain_log(ax, "xy")
    ax.set(xlabel="step size eta", ylabel="drift of the balancedness")
    ax.legend(frameon=False, fontsize="x-small")
    return fig


def step_scan_depths_figure(scans: dict, limits: dict, floor: float = 1e-30):
    """Final loss against the constant step for each depth: ``scans`` {N: :class:`gdlab.deeplinear.StepScan`};
    filled: converged, open: not converged, x: diverged; dashed: ``2 / lambda_max`` at the initialisation
    (``limits`` {N: value}) (chapter 7, section 4)."""
    fig, axes = new_figure(len(scans), width=3.4, height=3.2)
    for ax, (N, sc) in zip(axes, scans.items(), strict=True):
        loss = np.where(np.isfinite(sc.final_loss), np.clip(sc.final_loss, floor, 1e30), 1e30)
        stuck = ~sc.converged & ~sc.diverged
        ax.plot(sc.eta[sc.converged], loss[sc.converged], "o", color=COLORS["run"], label="converged")
        ax.plot(sc.eta[stuck], loss[stuck], "o", mfc="none", color=COLORS["gd"], label="no convergence")
        ax.plot(sc.eta[sc.diverged], np.full(int(sc.diverged.sum()), 1e20), "x", color=COLORS["bound"],
                label="diverged (drawn at 1e20)")
        ax.axvline(limits[N], color="0.4", ls="--", lw=1)
        _plain_log(ax, "xy")
        ax.set(xlabel="step size eta", title=f"N = {N}", ylim=(floor / 10, 1e25))
    axes[0].set_ylabel("loss after the run")
    axes[0].legend(frameon=False, fontsize="xx-small", loc="center left")
    return fig


def sharpness_path_figure(runs: dict):
    """``eta lambda_max(Hess L^N)`` along gradient descent for several constant steps: ``runs`` {eta: DLRun recorded
    with ``sharpness_records``}; dashed: the stability limit ``eta lambda_max = 2`` (chapter 7, section 4)."""
    fig, (ax,) = new_figure(1, width=5.2, height=3.4)
    for j, (eta, run) in enumerate(runs.items()):
        has = np.isfinite(run.sharpness)
        ax.plot(run.k[has], eta * run.sharpness[has], color=f"C{j}", lw=1.4, label=f"eta = {eta:.3g}")
    ax.axhline(2.0, color="0.4", ls="--", lw=1)
    ax.set_xscale("symlog", linthresh=10)
    ax.set(xlabel="step k", ylabel="eta * lambda_max", xlim=(0, max(float(run.k[-1]) for run in runs.values())))
    ax.legend(frameon=False, fontsize="x-small", ncol=2)
    return fig


def decaying_steps_figure(runs: dict):
    """Loss against the step for gradient descent with ``eta_k = a / (b + k)^gamma``: ``runs`` {label: DLRun}
    (chapter 7, section 4)."""
    fig, (ax,) = new_figure(1, width=5.2, height=3.4)
    for j, (label, run) in enumerate(runs.items()):
        k, loss = finite_part(run.k.astype(float), run.loss)
        ax.plot(k, loss, color=f"C{j}", lw=1.6, label=label)
    _plain_log(ax)
    ax.set(xlabel="step k", ylabel="loss")
    ax.legend(frameon=False, fontsize="x-small")
    return fig


#: The chapter-7 explorer: d = 4 inputs and outputs, hidden widths 4, 16 whitened samples, CH07_STEPS steps.
CH07_D, CH07_M, CH07_STEPS = 4, 16, 300
CH07_SINGULAR_VALUES = (2.0, 1.5, 1.0, 0.5)
CH07_DEFAULTS = {"depth": 3, "eta": 0.1, "scale": 1.0, "init": "balanced", "draw": 1}


class Ch07Run(NamedTuple):
    """One setting of the chapter-7 explorer: the gradient-descent run and the sharpness at its start and end."""

    run: _deeplinear.DLRun
    sharp_start: float
    sharp_end: float


@lru_cache(maxsize=1)
def _ch07_data():
    X, Y, _ = _deeplinear.whitened_data(CH07_D, CH07_M, CH07_SINGULAR_VALUES, seed=7)
    for a in (X, Y):
        a.flags.writeable = False
    return X, Y


def ch07_run(depth: int = 3, eta: float = 0.1, scale: float = 1.0, init: str = "balanced", draw: int = 0) -> Ch07Run:
    """Train the explorer's deep linear network of ``depth`` layers (1..6) with constant step ``eta`` from a balanced
    or a random (Gaussian, unbalanced) initialisation of size ``scale`` (chapter 7)."""
    depth = as_int("depth", depth, high=6)
    eta = as_float("eta", eta, high=10.0)
    scale = as_float("scale", scale, high=10.0)
    draw = as_int("draw", draw, low=0)
    dims = (CH07_D,) * (depth + 1)
    if init == "balanced":
        Ws0 = _deeplinear.balanced_init(dims, scale, draw)
    elif init == "random":
        Ws0 = _nets.deep_linear_init(dims, scale, draw)
    else:
        raise ValueError(f"init must be 'balanced' or 'random'; got {init!r}")
    X, Y = _ch07_data()
    run = _deeplinear.gradient_descent(Ws0, X, Y, eta, CH07_STEPS, records=41)
    end = _deeplinear.sharpness(run.Ws, X, Y) if run.diverged_at < 0 else float("nan")
    return Ch07Run(run, _deeplinear.sharpness(Ws0, X, Y), end)


class DeepLinearExplorerView:
    """The chapter-7 explorer's figure (built once, updated in place): loss (left) and balancedness constant delta
    (right) against the step, both log scale; the status line compares eta with 2 / lambda_max at the start and
    reports eta lambda_max at the end (below 2 where gradient descent settled)."""

    def __init__(self):
        self._fig = None

    def _build(self):
        self._fig = fig = Figure(figsize=(8.0, 3.4))
        FigureCanvasAgg(fig)
        self._ax_l = ax_l = fig.add_axes((0.08, 0.14, 0.38, 0.64))
        self._ax_d = ax_d = fig.add_axes((0.59, 0.14, 0.38, 0.64))
        for ax in (ax_l, ax_d):
            _explorer_log_y(ax, y_ticks=4, x_ticks=3)
            ax.set_xlim(0, CH07_STEPS)
        (self._loss,) = ax_l.plot([], [], color=COLORS["run"], lw=1.6)
        (self._delta,) = ax_d.plot([], [], color=COLORS["bound2"], lw=1.6)
        fig.text(0.09, 0.8, "loss", fontsize=9)
        fig.text(0.60, 0.8, "balancedness delta", fontsize=9)
        fig.text(0.5, 0.01, "step", ha="center", fontsize=9)
        self._status = fig.text(0.5, 0.9, "", ha="center", fontsize=9)

    def update(self, depth: int = 3, eta: float = 0.1, scale: float = 1.0, init: str = "balanced", draw: int = 0):
        """Run this setting and redraw; returns the view's Figure (chapter-7 explorer)."""
        res = ch07_run(depth, eta, scale, init, draw)
        if self._fig is None:
            self._build()
        run = res.run
        k, loss = finite_part(run.k.astype(float), run.loss)
        loss = np.maximum(loss, 1e-30)
        self._loss.set_data(k, loss)
        self._ax_l.set_ylim(max(1e-30, 0.3 * float(loss.min())), 3.0 * float(loss.max()))
        kd, delta = finite_part(run.k.astype(float), np.maximum(run.delta, 1e-17))
        self._delta.set_data(kd, delta)
        self._ax_d.set_ylim(max(1e-17, 0.3 * float(delta.min())), 3.0 * float(delta.max()))
        head = f"N = {depth}, eta = {eta:.3g}; 2 / lambda_max at the start = {2 / res.sharp_start:.3g}"
        if run.diverged_at >= 0:
            self._status.set(text=f"{head}; diverged at step {run.diverged_at}", color=COLORS["bound"])
        else:
            self._status.set(text=f"{head}; at the end loss {run.loss[-1]:.2g}, eta lambda_max = "
                                  f"{eta * res.sharp_end:.3g}", color="k")
        return self._fig


_CH07_VIEW: list[DeepLinearExplorerView] = []


def deep_linear_explorer_figure(depth: int = 3, eta: float = 0.1, scale: float = 1.0, init: str = "balanced",
                                draw: int = 0):
    """The chapter-7 explorer figure (one persistent :class:`DeepLinearExplorerView`)."""
    if not _CH07_VIEW:
        _CH07_VIEW.append(DeepLinearExplorerView())
    return _CH07_VIEW[0].update(depth, eta, scale, init, draw)
