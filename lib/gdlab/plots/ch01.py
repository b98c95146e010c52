"""Chapter 1 figures: the counterexample on its segment, random slices through an MLP loss, the 2-D landscapes with
gradient-descent paths and their health-ratio maps, and the chapter's explorer (:class:`View`).
"""

from __future__ import annotations

from functools import lru_cache

import contourpy
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .._checks import as_float, as_int
from ..experiments import ch01
from ..landscapes import Grid, Paths, Slices, get_landscape, landscape_grid, segment_loss, segment_loss_closed_form
from .style import COLORS, ExplorerView, diverged_label, explorer_log_y, finite_part, fixed_figure, one_line


@lru_cache(maxsize=16)
def _landscape_grid_cached(name: str, n: int) -> Grid:
    """:func:`gdlab.landscapes.landscape_grid` for a registered landscape, computed once per (name, n)."""
    grid = landscape_grid(get_landscape(name), n)
    for arr in grid:
        arr.flags.writeable = False
    return grid


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
    fig, (ax,) = fixed_figure(1, width=6.0, height=3.6)
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
    fig, (ax,) = fixed_figure(1, width=6.0, height=3.6, left=0.12)
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
    fig, axes = fixed_figure(len(paths), width=3.6, height=3.7, left=0.06, right=0.98, wspace=0.25)
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
    fig, axes = fixed_figure(len(names), width=3.6, height=3.6, left=0.06, right=0.86, wspace=0.25)
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


class View(ExplorerView):
    """The chapter-1 explorer's figure (:class:`gdlab.plots.style.ExplorerView`; settings of
    :data:`gdlab.experiments.ch01.SPEC`).

    Left panel: the gradient-descent path from ``(x0, y0)`` on the loss contours of a 2-D landscape (the square
    of :data:`gdlab.landscapes.LANDSCAPES`, star: global minimiser). Right panel: the loss against the step on a
    log scale, both with coordinate and step ticks. The title says where ``eta`` lies
    (:func:`gdlab.experiments.ch01.step_regime`) with respect to the *global* limit ``2 / L_box`` (below it every
    step from anywhere in the square decreases the loss) and the *local* limit ``2 / lambda_max`` of the Hessian at
    the star (below it the star attracts nearby starts, above it the star is unstable); the second line gives both
    numbers. A run that diverges is drawn up to its last finite point and labelled "diverged at step k".
    """

    run = staticmethod(ch01.run)
    SIZE = (7.8, 3.8)
    DESCRIPTION = ("Chapter 1 explorer, two panels. Left: the path of gradient descent (blue line with dots, from an "
                   "orange dot at the start) on the contour lines of the loss over the square from "
                   f"{ch01.BOX[0]:g} to {ch01.BOX[1]:g} in x and y, the global minimiser marked by a star. Right: the "
                   "loss f(w_k) on a log scale against the step k.")

    def _build(self, fig: Figure) -> None:
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
        explorer_log_y(ax_loss, y_ticks=5, x_ticks=5)
        ax_loss.xaxis.set_major_locator(MaxNLocator(5, integer=True))
        ax_loss.set(xlabel="step k", ylabel="loss f(w_k)")
        self._title = fig.text(0.5, 0.94, "", ha="center", va="baseline", fontsize=10)
        self._limits = fig.text(0.5, 0.87, "", ha="center", va="baseline", fontsize=9, color="0.25")
        self._div_text = [ax.text(0.5, 0.5, "", transform=ax.transAxes, ha="center", va="center", visible=False,
                                  color=COLORS["bound"], fontsize=12, weight="bold",
                                  bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})
                          for ax in (ax_path, ax_loss)]
        self._shown_landscape = None

    def _draw(self, run: ch01.Run) -> str:
        s = run.settings
        landscape, eta, n_steps = s["landscape"], s["eta"], s["n_steps"]
        if landscape != self._shown_landscape:
            ls = get_landscape(landscape)
            self._contours.set_segments(_contour_segments(landscape))
            self._star.set_data([ls.minimiser[0]], [ls.minimiser[1]])
            bx0, bx1, by0, by1 = ls.box
            self._ax_path.set(xlim=(bx0, bx1), ylim=(by0, by1))
            self._shown_landscape = landscape
        paths = run.paths
        k_div = run.diverged_at
        w = paths.w[: (k_div if k_div >= 0 else n_steps) + 1, 0]
        self._path.set_data(w[:, 0], w[:, 1])
        self._start.set_data([w[0, 0]], [w[0, 1]])
        steps, loss = finite_part(np.arange(n_steps + 1, dtype=float), paths.loss[:, 0])
        self._loss.set_data(steps, loss)
        lo, hi = (max(float(loss.min()), 1e-300), float(loss.max())) if loss.size else (1e-3, 1.0)  # no subnormals
        self._ax_loss.set(xlim=(0, n_steps), ylim=(lo / 10.0, hi * 10.0))  # >= two labelled powers of ten
        head = f"{landscape}, eta = {eta:.3g} ({run.regime})"
        limits = (f"global limit 2/L_box = {run.global_limit:.3g} (descent from anywhere in the square);  "
                  f"local limit at the star 2/lambda_max = {run.local_limit:.3g}")
        self._limits.set_text(limits)
        msg = diverged_label(run)
        if k_div >= 0:
            self._title.set(text=f"{head}: {msg}", color=COLORS["bound"])
        else:
            self._title.set(text=f"{head}: final loss {paths.loss[-1, 0]:.2g}", color="k")
        for text in self._div_text:
            text.set(text=msg, visible=k_div >= 0)
        start = f"start ({s['x0']:.3g}, {s['y0']:.3g}), {n_steps} steps"
        return one_line(start, self._title.get_text(), limits)
