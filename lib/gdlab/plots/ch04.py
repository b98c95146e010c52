"""Chapter 4 figures: one GD step against the kernel prediction, kernel regression by modes, the Gram matrix's error
and ``lambda_0``, lazy training against the width, convergence against the bounds, the kernel predictor, and the
chapter's explorer (:class:`View`).
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, FixedLocator, MaxNLocator

from ..experiments import ch04
from ..runs import divergence_rule
from .style import (
    COLORS,
    ExplorerView,
    PixelCachedLegend,
    diverged_label,
    explorer_log_y,
    finite_part,
    new_figure,
    one_line,
    plain_log,
)

#: A kernel predictor beyond this size has diverged: it is not drawn to scale.
_SHOWN = 1e3


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
    plain_log(ax, "xy")
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
    plain_log(ax)
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
    plain_log(ax, "xy")
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
    plain_log(ax, "xy")
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
        plain_log(ax, "xy")
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
    plain_log(ax)
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
    plain_log(ax2, "xy")
    ax2.set(xlabel="width m", ylabel="max over test inputs of |f_net - predictor|")
    ax2.legend(frameon=False, fontsize="x-small")
    return fig


class View(ExplorerView):
    """The chapter-4 explorer's figure (:class:`gdlab.plots.style.ExplorerView`; settings of
    :data:`gdlab.experiments.ch04.SPEC`).

    Left: ``L(t) / L(0)`` (log) with the bound ``exp(-2 lambda_low t)`` (``lambda_low`` the smallest
    ``lambda_min(H)`` recorded) and Du et al.'s ``exp(-lambda_0 t)``. Right: the net's function on the circle after
    training, the kernel predictor for the same training, the initial function and the data. The line above gives the
    kernel's relative change ``|H(T) - H(0)|_F / |H(0)|_F``, the fraction of flipped activation patterns and the
    largest gap between net and predictor: numbers, not a third panel, because every axis costs ~15 ms per redraw.
    A run that diverged has no trained net (no gap is printed): the loss panel shows the steps before the divergence,
    a dot each, and says where and why it diverged (:func:`gdlab.runs.divergence_rule`).
    """

    run = staticmethod(ch04.run)
    SIZE = (9.0, 3.5)
    DESCRIPTION = ("Chapter 4 explorer, two panels. Left: the loss ratio L(t)/L(0) of gradient descent on a log scale "
                   "against the time t = k eta, with the bounds exp(-2 lambda_low t) (dotted) and exp(-lambda_0 t) "
                   "(dashed). Right: against the angle of the input on the circle (0 to 2 pi), the net at t = 0 "
                   "(grey), the trained net (blue), the kernel predictor (dashed red) and the seven data points.")

    def _build(self, fig: Figure) -> None:
        self._axes = ax_l, ax_f = [fig.add_axes((0.07 + 0.5 * i, 0.14, 0.4, 0.58)) for i in range(2)]
        explorer_log_y(ax_l, y_ticks=3, x_ticks=2)
        ax_l.set_xlabel("time t = k eta")
        (self._loss,) = ax_l.plot([], [], color=COLORS["gd"], lw=2, label="L(t) / L(0)")
        (self._low,) = ax_l.plot([], [], ":", color=COLORS["bound2"], lw=1.5, label="exp(-2 lambda_low t)")
        (self._du,) = ax_l.plot([], [], "--", color=COLORS["bound"], lw=1.2, label="exp(-lambda_0 t)")
        ax_f.set(xlim=(0, 2 * np.pi), xlabel="angle of the input")
        ax_f.xaxis.set_major_locator(FixedLocator([0.0, np.pi, 2 * np.pi]))
        ax_f.xaxis.set_major_formatter(FixedFormatter(["0", "pi", "2 pi"]))
        ax_f.yaxis.set_major_locator(MaxNLocator(3))
        test = ch04.TEST_ANGLES
        (self._f0,) = ax_f.plot(test, np.zeros_like(test), color="0.7", lw=1, label="net at t = 0")
        (self._fnet,) = ax_f.plot(test, np.zeros_like(test), color=COLORS["run"], lw=2, label="trained net")
        (self._fker,) = ax_f.plot(test, np.zeros_like(test), "--", color=COLORS["bound"], lw=1.5,
                                  label="kernel predictor")
        ax_f.plot(ch04.ANGLES, ch04.targets(ch04.ANGLES), "ko", ms=4, label="data")
        for ax in self._axes:
            handles, labels = ax.get_legend_handles_labels()
            ax.legend_ = PixelCachedLegend(ax, handles, labels, loc="lower left", bbox_to_anchor=(0.0, 1.01),
                                           frameon=False, fontsize="x-small", ncol=2, borderaxespad=0.0,
                                           handlelength=1.5)
        self._status = fig.text(0.5, 0.94, "", ha="center", fontsize=9)
        self._note = ax_f.text(0.5, 0.5, "", transform=ax_f.transAxes, ha="center", va="center", fontsize=9,
                               color=COLORS["bound"], visible=False,
                               bbox={"facecolor": "white", "edgecolor": COLORS["bound"]})
        # a diverged run on the loss panel: why its curve stops, top left (the curve ends high, at the right)
        self._div = ax_l.text(0.03, 0.96, "", transform=ax_l.transAxes, ha="left", va="top", fontsize=9,
                              color=COLORS["bound"], visible=False,
                              bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": COLORS["bound"]})

    def _draw(self, res: ch04.Run) -> str:
        s, run = res.settings, res.run
        eta, steps = s["eta"], s["steps"]
        ax_l, ax_f = self._axes
        # the time axis: the whole run, or (diverged) the steps before the divergence, each drawn as a dot
        t_end = 1.05 * run.diverged_at * eta if run.diverged else max(steps * eta, 1e-12)
        t, ratio = finite_part(run.t, run.loss / run.loss[0])
        ratio = np.maximum(ratio, 1e-16)
        lam_low = max(float(np.min(run.lambda_min)), 0.0)
        tt = np.linspace(0.0, t_end, 60)
        self._loss.set_data(t, ratio)
        self._loss.set_marker("o" if run.diverged else "None")  # every step recorded up to the divergence: a dot each
        self._loss.set_markersize(3)
        why = textwrap.wrap(divergence_rule("L(t)", "L(0)"), 22)
        self._div.set(text="\n".join([f"GD {diverged_label(run)}:", *why]), visible=run.diverged)
        self._low.set_data(tt, np.maximum(np.exp(-2 * lam_low * tt), 1e-16))
        self._du.set_data(tt, np.maximum(np.exp(-res.lam0 * tt), 1e-16))
        ax_l.set(xlim=(0, t_end), ylim=(max(1e-16, 0.3 * float(ratio.min())), max(3.0, 3.0 * float(ratio.max()))))
        self._f0.set_ydata(res.f0)
        self._fnet.set_ydata(res.f_net)
        ker_ok = bool(np.all(np.abs(res.f_ker) < _SHOWN))  # a diverged kernel model would flatten the panel
        self._fker.set_ydata(res.f_ker if ker_ok else np.full(res.f_ker.shape, np.nan))
        shown = [ch04.targets(ch04.ANGLES), res.f0] + [f for f, ok in ((res.f_net, run.diverged_at < 0),
                                                                       (res.f_ker, ker_ok)) if ok]
        lo, hi = min(float(v.min()) for v in shown), max(float(v.max()) for v in shown)
        ax_f.set_ylim(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
        notes = [f"GD {diverged_label(run)}"] if run.diverged else []
        if not ker_ok:
            notes.append("the kernel model diverges too\n(eta > 2 / lambda_max(H*))")
        self._note.set_text("\n".join(notes))
        self._note.set_visible(bool(notes))
        drift = (f"|H(t) - H(0)|_F / |H(0)|_F = {run.gram_change[-1] / np.linalg.norm(run.H0):.2g}, flipped "
                 f"{100 * run.flips[-1]:.2g}%")
        if run.diverged_at >= 0:  # no trained net to compare: say where it stopped, never "= nan"
            status = f"GD {diverged_label(run)}; at t = {run.t[-1]:.3g} before that: {drift}"
        elif not ker_ok:
            status = f"t = {run.t[-1]:.3g}: {drift}; the kernel model diverged (no predictor to compare)"
        else:
            status = f"t = {run.t[-1]:.3g}: {drift}, max |net - predictor| = {np.max(np.abs(res.f_net - res.f_ker)):.2g}"
        self._status.set_text(status)
        head = f"width m = {s['m']}, eta = {eta:.3g}, {steps} steps, draw {s['draw']}: L(t)/L(0) = {ratio[-1]:.2g}"
        return one_line(head, status, notes[-1] if run.diverged_at >= 0 and not ker_ok else "")
