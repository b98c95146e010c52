"""Chapter 7 figures: deep linear networks: the balancedness drift of gradient descent, step-size scans per depth,
the sharpness along a run, decaying steps, and the chapter's explorer (:class:`View`).
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..experiments import ch07
from ..numerics import round_off_text
from ..runs import divergence_rule
from .style import COLORS, ExplorerView, diverged_label, explorer_log_y, finite_part, new_figure, one_line, plain_log

#: The explorer's loss axis ends here: smaller losses, an exact 0 included, are drawn at this floor.
LOSS_FLOOR = 1e-30


def balance_drift_figure(etas, drift, slope: float):
    """Balancedness drift ``max_j |Delta_j(K) - Delta_j(0)|`` after a fixed number of steps against the step ``eta``
    (S,), log-log, with the fitted slope (chapter 7, section 2)."""
    fig, (ax,) = new_figure(1, width=5.0, height=3.4)
    ax.plot(etas, drift, "o-", color=COLORS["run"], label=f"gradient descent (fitted slope {slope:.2f})")
    ref = drift[0] * (np.asarray(etas) / etas[0]) ** 2
    ax.plot(etas, ref, ":", color=COLORS["bound"], label="slope 2")
    plain_log(ax, "xy")
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
        plain_log(ax, "xy")
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
    plain_log(ax)
    ax.set(xlabel="step k", ylabel="loss")
    ax.legend(frameon=False, fontsize="x-small")
    return fig


class View(ExplorerView):
    """The chapter-7 explorer's figure (:class:`gdlab.plots.style.ExplorerView`; settings of
    :data:`gdlab.experiments.ch07.SPEC`): loss (left) and balancedness constant delta (right) against the step, both
    log scale; the status line compares eta with 2 / lambda_max at the start and reports eta lambda_max at the end
    (below 2 where gradient descent settled). A diverged run (every step recorded up to the divergence) is drawn as a
    dot per step over the steps before the divergence, each panel saying where it diverged and the loss panel why
    (:func:`gdlab.runs.divergence_rule`): a divergence at step 1 leaves a single point per panel."""

    run = staticmethod(ch07.run)
    SIZE = (8.0, 3.4)
    DESCRIPTION = ("Chapter 7 explorer, two panels against the gradient-descent step (0 to "
                   f"{ch07.STEPS}) on a deep linear network: left, the loss on a log scale; right, the balancedness "
                   "constant delta on a log scale.")

    def _build(self, fig: Figure) -> None:
        self._ax_l = ax_l = fig.add_axes((0.08, 0.14, 0.38, 0.64))
        self._ax_d = ax_d = fig.add_axes((0.59, 0.14, 0.38, 0.64))
        for ax in (ax_l, ax_d):
            explorer_log_y(ax, y_ticks=4, x_ticks=3)
            ax.xaxis.set_major_locator(MaxNLocator(3, integer=True))  # steps (a diverged run shows few of them)
            ax.set_xlim(0, ch07.STEPS)
        (self._loss,) = ax_l.plot([], [], color=COLORS["run"], lw=1.6)
        (self._delta,) = ax_d.plot([], [], color=COLORS["bound2"], lw=1.6)
        fig.text(0.09, 0.8, "loss", fontsize=9)
        fig.text(0.60, 0.8, "balancedness delta", fontsize=9)
        fig.text(0.5, 0.01, "step", ha="center", fontsize=9)
        self._status = fig.text(0.5, 0.9, "", ha="center", fontsize=9)
        # a diverged run: the message on each panel (a divergence at step 1 leaves one recorded point per panel), top
        # left, where a run that blows up draws nothing (it ends high, at the right)
        self._div = [ax.text(0.03, 0.96, "", transform=ax.transAxes, ha="left", va="top", fontsize=9,
                             color=COLORS["bound"], visible=False,
                             bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": COLORS["bound"]})
                     for ax in (ax_l, ax_d)]

    def _draw(self, res: ch07.Run) -> str:
        s, run = res.settings, res.run
        # a loss of exactly 0 (N = 1 at eta lambda = 1 reaches the minimum in one step; whether round-off leaves
        # 1e-33 or 0 there depends on the numpy build) is drawn at the floor, not dropped
        k, loss = finite_part(run.k.astype(float), np.maximum(run.loss, LOSS_FLOOR))
        self._loss.set_data(k, loss)
        self._ax_l.set_ylim(max(LOSS_FLOOR, 0.3 * float(loss.min())), 3.0 * float(loss.max()))
        kd, delta = finite_part(run.k.astype(float), np.maximum(run.delta, 1e-17))
        self._delta.set_data(kd, delta)
        self._ax_d.set_ylim(max(1e-17, 0.3 * float(delta.min())), 3.0 * float(delta.max()))
        diverged = run.diverged_at >= 0
        # a diverged run is recorded at every step up to its divergence: each step a dot, the steps before it shown
        span = max(run.diverged_at, 1) if diverged else ch07.STEPS
        for line in (self._loss, self._delta):
            line.set_marker("o" if diverged else "None")
            line.set_markersize(3)
        for ax in (self._ax_l, self._ax_d):
            ax.set_xlim(-0.05 * span if diverged else 0, 1.05 * span if diverged else span)
        notes = ("\n".join([f"{diverged_label(run)}:", *textwrap.wrap(divergence_rule("loss", "L(0)"), 22)]),
                 diverged_label(run))
        for text, note in zip(self._div, notes, strict=True):
            text.set(text=note, visible=diverged)
        head = f"N = {s['depth']}, eta = {s['eta']:.3g}; 2 / lambda_max at the start = {2 / res.sharp_start:.3g}"
        if run.diverged_at >= 0:
            self._status.set(text=f"{head}; {diverged_label(run)}", color=COLORS["bound"])
        else:
            end_loss = round_off_text(run.loss[-1], spec=".2g")
            self._status.set(text=f"{head}; at the end loss {end_loss}, eta lambda_max = "
                                  f"{s['eta'] * res.sharp_end:.3g}", color="k")
        start = f"{s['init']} start of scale {s['scale']:.3g}, draw {s['draw']}"
        end = "" if run.diverged_at >= 0 else f"delta at the end {run.delta[-1]:.2g}"
        return one_line(f"{start}: {self._status.get_text()}", end)
