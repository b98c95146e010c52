"""Chapter 6 figures: the worked strict saddle (basins, escape times, the fold of the gradient map), the chain of
saddles, the escape algorithms (SGD's noise spectrum, SGLD's law, annealing), the non-strict saddle of a deep scalar
net, and the chapter's explorer (:class:`View`).
"""

from __future__ import annotations

from functools import lru_cache

import contourpy
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .. import saddles
from ..experiments import ch06
from .style import COLORS, ExplorerView, diverged_label, explorer_log_y, finite_part, new_figure, plain_log

#: Colours of the basin labels of :func:`gdlab.saddles.example_basins`: -1, 0, 1, 2 (not settled), 3 (diverged).
BASIN_COLORS = ("#9ecae1", "#000000", "#fdae6b", "#bdbdbd", "#ffffff")
BASIN_NAMES = ("to (0, -1)", "to the saddle", "to (0, 1)", "not settled", "diverged")
#: The square on which the chapter-6 figures and the explorer show the worked example.
BOX = (-2.0, 2.0, -1.6, 1.6)


@lru_cache(maxsize=8)
def _example_segments(box: tuple[float, float, float, float], n: int = 121) -> tuple[np.ndarray, ...]:
    """Contour lines of the worked example over ``box`` as (P, 2) polylines (computed once per box)."""
    xs, ys = np.linspace(box[0], box[1], n), np.linspace(box[2], box[3], n)
    F = saddles.example_f(np.stack(np.meshgrid(xs, ys), axis=-1))
    gen = contourpy.contour_generator(xs, ys, F)
    levels = np.r_[-0.24, -0.2, -0.12, -0.05, 0.0, 0.1, 0.3, 0.6, 1.0, 1.5, 2.2]
    segs = [seg for level in levels for seg in gen.lines(level) if len(seg) > 1]
    for seg in segs:
        seg.flags.writeable = False
    return tuple(segs)


def _draw_example(ax, box=BOX) -> None:
    """Contours of the worked example, its saddle (x) and minima (stars) on ``ax``."""
    ax.add_collection(LineCollection(_example_segments(tuple(box)), colors="0.45", linewidths=0.6))
    ax.plot(*saddles.EXAMPLE_MINIMA.T, "*", color="k", ms=10, zorder=5)
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


def basins_figure(xs, ys, labels, alpha: float, paths: dict | None = None, box=BOX):
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
    plain_log(ax, "x")
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
        gy = saddles.gd_map(np.c_[np.zeros_like(y), y], alpha)[:, 1]
        (line,) = ax1.plot(y, gy, lw=1.8, label=f"alpha = {alpha:.3g}")
        yc = saddles.fold_y(alpha)
        if yc <= y_max:
            yc_pts = np.array([-yc, yc])
            ax1.plot(yc_pts, saddles.gd_map(np.c_[np.zeros(2), yc_pts], alpha)[:, 1], "o", color=line.get_color())
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
    every run in ``runs``: ``{d: [(L, gd_run, pgd_run), ...]}`` with :class:`gdlab.chain.ChainRun` results; GD solid,
    PGD dashed, one panel per d (chapter 6, section 4)."""
    fig, axes = new_figure(len(runs), width=4.6, height=3.6)
    for ax, (d, rows) in zip(axes, runs.items(), strict=True):
        for j, (L, gd, pgd, nu) in enumerate(rows):
            color = f"C{j}"
            ax.plot(np.maximum(gd.k, 1), gd.f / nu, "-", color=color, lw=1.6, label=f"GD, L = {L:g}")
            ax.plot(np.maximum(pgd.k, 1), pgd.f / nu, "--", color=color, lw=1.2, label=f"PGD, L = {L:g}")
        plain_log(ax, "x")
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
    plain_log(ax)
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
    plain_log(ax, "xy")
    ticks = np.unique(np.round(scales, 6))  # label every scale used: the range spans less than a decade
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks], minor=False)
    ax.set_xticks([], minor=True)
    ax.set(xlabel="initial scale s", ylabel="steps until w_1 ... w_N >= 1/2")
    ax.legend(frameon=False, fontsize="x-small", ncols=2)
    return fig


class View(ExplorerView):
    """The chapter-6 explorer's figure (:class:`gdlab.plots.style.ExplorerView`; settings of
    :data:`gdlab.experiments.ch06.SPEC`): left, the path on the worked example's contours (saddle: red cross, minima:
    stars); right, ``f - f*`` (log) against the step; a status line says when the run left the saddle, or that it did
    not, and for PGD where it perturbed and whether it stopped."""

    run = staticmethod(ch06.run)
    SIZE = (8.0, 3.6)
    DESCRIPTION = ("Chapter 6 explorer, two panels. Left: the path of the run (blue) from x = "
                   f"{ch06.X0:g} on the contour lines "
                   f"of f = x^2/2 + y^4/4 - y^2/2 over x from {BOX[0]:g} to {BOX[1]:g} and y from {BOX[2]:g} to "
                   f"{BOX[3]:g}, with the saddle at the origin (red cross), the two minima at y = 1 and y = -1 (stars), "
                   "the stable set y = 0 (dashed), PGD's perturbations (purple dots) and the end point (orange dot). "
                   f"Right: f - min f on a log scale against the step (0 to {ch06.STEPS}).")

    def _build(self, fig: Figure) -> None:
        self._ax_path = ax_p = fig.add_axes((0.06, 0.13, 0.42, 0.7))
        self._ax_loss = ax_l = fig.add_axes((0.6, 0.13, 0.37, 0.7))
        _draw_example(ax_p)
        ax_p.set(xlabel="", ylabel="", xticks=[-2, 0, 2], yticks=[-1, 0, 1])
        ax_p.axhline(0.0, color="k", lw=0.8, ls="--")
        (self._path,) = ax_p.plot([], [], "-", color=COLORS["run"], lw=1.0)
        (self._pert,) = ax_p.plot([], [], "o", color=COLORS["bound2"], ms=4, ls="none")
        (self._end,) = ax_p.plot([], [], "o", color=COLORS["gd"], ms=6)
        explorer_log_y(ax_l, y_ticks=4, x_ticks=3)
        ax_l.set(xlim=(0, ch06.STEPS), ylim=(1e-16, 10.0))
        (self._loss,) = ax_l.plot([], [], color=COLORS["run"], lw=1.4)
        fig.text(0.61, 0.85, "f - min f", fontsize=9)
        fig.text(0.78, 0.02, "step", ha="center", fontsize=9)
        self._status = fig.text(0.5, 0.93, "", ha="center", fontsize=9.5)
        # the settings, drawn: a start offset far below the noise changes nothing else in the figure
        self._settings = fig.text(0.27, 0.86, "", ha="center", fontsize=8, color="0.25")

    def _draw(self, res: ch06.Run) -> str:
        method = res.settings["method"]
        x = res.x[np.all(np.isfinite(res.x), axis=1)]
        self._path.set_data(x[:, 0], x[:, 1])
        self._end.set_data(x[-1:, 0], x[-1:, 1])
        self._pert.set_data(res.x[res.perturbations, 0], res.x[res.perturbations, 1])
        k, gap = finite_part(np.arange(res.f.size, dtype=float), res.f - saddles.EXAMPLE_MIN_VALUE)
        self._loss.set_data(k, np.maximum(gap, 1e-16))
        if res.diverged_at >= 0:
            msg, color = f"{method} {diverged_label(res)}", COLORS["bound"]
        elif res.escaped_at >= 0:
            msg, color = f"{method} left the saddle (|y| >= 0.5) at step {res.escaped_at}", COLORS["flow"]
        else:
            msg, color = f"{method} stayed near the saddle's stable set for {res.f.size - 1} steps", COLORS["bound"]
        if method == "PGD":
            msg += f"; {res.perturbations.size} perturbation(s)"
            if res.returned >= 0:
                msg += f", stopped at step {res.returned}"
        self._status.set(text=msg, color=color)
        s = res.settings
        self._settings.set_text(f"start y0 = {s['offset']:.3g}, alpha = {s['alpha']:.3g}, noise {s['noise']:.3g}, "
                                f"draw {s['draw']}")
        start = (f"start ({ch06.X0:g}, {s['offset']:.3g}), step alpha = {s['alpha']:.3g}, noise level "
                 f"{s['noise']:.3g}, draw {s['draw']}")
        if res.diverged_at >= 0:
            return f"{msg}; {start}"
        gap_end = res.f[-1] - saddles.EXAMPLE_MIN_VALUE
        return f"{msg}; {start}; at the end ({x[-1, 0]:.3g}, {x[-1, 1]:.3g}), f - min f = {gap_end:.2g}"
