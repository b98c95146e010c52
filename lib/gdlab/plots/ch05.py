"""Chapter 5 figures: the output-space flow and its decay rate, the transition in K / (QN), and the chapter's explorer
(:class:`View`).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..experiments import ch05
from .style import COLORS, ExplorerView, explorer_log_y, finite_part, new_figure, one_line, plain_log


def output_flow_figure(s, cost, cost_comparison, decay_rate, rate_bound):
    """Left: the cost of the network's gradient flow (T,) and the comparison model's (T,) against ``s`` (T,). Right:
    the measured decay rate ``-d log C / ds`` (T,) and its guaranteed floor ``2 lambda_min(D D^T)(s) / N`` (T,)
    (chapter 5, Theorem 1.3 pointwise)."""
    fig, (ax1, ax2) = new_figure(2, width=4.3, height=3.3)
    ax1.plot(s, cost, color=COLORS["run"], lw=2, label="network, cost C(s)")
    ax1.plot(s, cost_comparison, "--", color=COLORS["flow"], label="comparison model")
    plain_log(ax1)
    ax1.set(xlabel="s", ylabel="cost")
    ax1.legend(frameon=False, fontsize="x-small")
    ax2.plot(s, decay_rate, color=COLORS["run"], lw=2, label="-d log C / ds (measured)")
    ax2.plot(s, rate_bound, ":", color=COLORS["bound"], lw=1.5, label="2 lambda_min(s) / N (guaranteed)")
    plain_log(ax2)
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
        # yerr as one (2, n) array, not a tuple of two: matplotlib calls math.isfinite on a tuple's first element,
        # which for a single point is a 1-element array: a DeprecationWarning with numpy < 2.4 (a TypeError after).
        yerr = np.array([frac[sel] - low[sel], high[sel] - frac[sel]])
        ax.errorbar(ratio[sel], frac[sel], yerr=yerr, fmt="o-", color=color, capsize=2, ms=4, label=f"N = {n}")
    ax.axvline(1.0, color="0.5", ls="--", lw=1)
    ax.set(xlabel="K / (QN)", ylabel="fraction of draws with zero cost", ylim=(-0.03, 1.03))
    ax.legend(frameon=False, fontsize="x-small")
    return fig


class View(ExplorerView):
    """The chapter-5 explorer's figure (:class:`gdlab.plots.style.ExplorerView`; settings of
    :data:`gdlab.experiments.ch05.SPEC`): the cost of gradient descent (log) against the step, a status line with
    ``K``, ``QN``, the rank of ``D``, its ReLU bound and ``lambda_min(D D^T)``, and the verdict
    (:func:`gdlab.experiments.ch05.verdict`)."""

    run = staticmethod(ch05.run)
    SIZE = (7.0, 3.4)
    DESCRIPTION = ("Chapter 5 explorer: the cost C of gradient descent on a log scale against the step (0 to "
                   f"{ch05.STEPS}), for a one-hidden-layer ReLU net with Q = {ch05.Q} outputs; above it the number of "
                   "parameters K against the number of outputs QN, the rank of the Jacobian D and the verdict.")

    def _build(self, fig: Figure) -> None:
        self._ax = ax = fig.add_axes((0.11, 0.15, 0.85, 0.66))
        explorer_log_y(ax, y_ticks=4, x_ticks=4)
        ax.set(xlabel="gradient-descent step", ylabel="cost C", xlim=(0, ch05.STEPS))
        (self._cost,) = ax.plot([], [], color=COLORS["gd"], lw=2)
        self._status = fig.text(0.5, 0.9, "", ha="center", fontsize=9)
        self._verdict = fig.text(0.5, 0.84, "", ha="center", fontsize=9, weight="bold")

    def _draw(self, res: ch05.Run) -> str:
        k, cost = finite_part(res.fit.k.astype(float), res.fit.cost)
        cost = np.maximum(cost, 1e-30)
        self._cost.set_data(k, cost)
        self._ax.set_ylim(max(1e-30, 0.3 * float(cost.min())), 3.0 * float(cost.max()))
        status, verdict = ch05.verdict(res)
        self._status.set_text(status)
        self._verdict.set_text(verdict)
        self._verdict.set_color(COLORS["flow"] if "can" in verdict and "cannot" not in verdict else COLORS["bound"])
        s = res.settings
        head = f"width W = {s['width']}, N = {s['n_points']} {s['data']} inputs, draw {s['draw']}"
        if res.fit.diverged_at < 0:
            head += f", cost after {ch05.STEPS} steps {res.fit.cost[-1]:.3g}"
        return one_line(head, status, verdict)
