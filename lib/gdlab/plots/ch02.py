"""Chapter 2 figures: gradient flow against gradient descent. The figures of the notebook (Results 1.2-1.5 measured
on an MLP, the O(eta) distance between GD and the flow, step-size regimes, steps to an eps-stationary point against
the bound) and the chapter's explorer (:class:`View`).

Chapter-2 figures use no mathtext at all (parsing it dominated their drawing time) and fixed margins.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .. import flow, numerics
from ..experiments import ch02
from ..flow import Trajectory
from .style import COLORS, ExplorerView, diverged_label, explorer_log_y, finite_part, fixed_figure, one_line, plain_log


def _axes(ncols: int, width: float = 4.3, height: float = 3.3, **margins):
    """A row of ``ncols`` axes with the chapter's fixed margins (:func:`gdlab.plots.style.fixed_figure`). Returns
    ``(fig, axes)``."""
    return fixed_figure(ncols, width, height,
                        **{"left": 0.09, "right": 0.98, "bottom": 0.15, "top": 0.88, "wspace": 0.28, **margins})


def rate_residual_figure(rates: flow.RateResiduals):
    """Result 1.2 on a recorded flow (``rates`` from :func:`gdlab.flow.rate_residuals`): the relative residual
    ``|l'(t) + |grad f|^2| / |grad f|^2`` with ``l'`` from finite differences of the records, at several spacings.

    Left: the residual against t for the coarsest and finest spacing, records next to an activation-pattern change
    circled. Right: the median away from kinks and the kink-record maximum against the spacing, with a slope-2 line.
    """
    fig, (ax_t, ax_h) = _axes(2)
    hs, med = rates.spacing, rates.median
    for i, color in ((0, COLORS["bound2"]), (hs.size - 1, COLORS["run"])):
        t, rel, mask = rates.t[i], rates.relative[i], rates.flagged[i]
        ax_t.plot(*finite_part(t, rel), color=color, lw=1, label=f"spacing h = {hs[i]:.2g}")
        ax_t.plot(t[mask], rel[mask], "o", mfc="none", color=color, ms=6)
    plain_log(ax_t)
    ax_t.set(xlabel="t", ylabel="|ℓ′(t) + |∇f|²| / |∇f|²")
    ax_t.legend(fontsize=8, title="circles: kink records", title_fontsize=8)
    fit = numerics.loglog_slope(hs, med)
    ax_h.plot(hs, med, "o-", color=COLORS["run"], label=f"median away from kinks (slope {fit.slope:.2f})")
    ax_h.plot(hs, rates.kink_max, "s--", color=COLORS["bound"], label="largest at a kink record")
    ax_h.plot(hs, med[-1] * (hs / hs[-1]) ** 2, ":", color="0.4", label="∝ h²")
    plain_log(ax_h, "xy")
    ax_h.set(xlabel="record spacing h", ylabel="relative residual")
    ax_h.legend(fontsize=8)
    return fig


def flow_chain_figure(traj: Trajectory, rtols, energy_residuals):
    """Results 1.3-1.5 on a flow. Left: the chain ``|gamma(t) - w0| <= len <= sqrt(t en) <= sqrt(t l(0))`` against t
    (the last two coincide once the loss has gone to about 0: ``sqrt(t en)`` is drawn dashed with markers on top).
    Right: the largest energy residual ``|en - (l(0) - l(t))|`` against the solver tolerance ``rtols`` (R,), with
    ``rtol * l(0)`` for reference."""
    fig, (ax_c, ax_e) = _axes(2)
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
    plain_log(ax_e, "xy")
    ax_e.set(xlabel="solver tolerance rtol", ylabel="energy residual")
    ax_e.legend(fontsize=8)
    return fig


def flow_gap_figure(gap: flow.FlowGap, fit_last: int):
    """``max_k |w_k - gamma(k eta)|`` against ``eta`` on log-log axes, with the slope fitted on the ``fit_last``
    smallest step sizes and a slope-1 reference line (chapter 2: Euler's method is first order)."""
    order = np.argsort(gap.eta)
    eta, g = gap.eta[order], gap.gap[order]
    fit = numerics.loglog_slope(eta[:fit_last], g[:fit_last])
    fig, (ax,) = _axes(1, width=5.0, left=0.15, right=0.96)
    ax.plot(eta, g, "o", color=COLORS["gd"], label="measured")
    ax.plot(eta[:fit_last], np.exp(fit.log_c) * eta[:fit_last] ** fit.slope, "-", color=COLORS["run"],
            label=f"fit on the {fit_last} smallest: slope {fit.slope:.2f}")
    ax.plot(eta, g[0] * eta / eta[0], ":", color="0.4", label="∝ η")
    plain_log(ax, "xy")
    ax.set(xlabel="step size η", ylabel="max over k of |w_k − γ(kη)|")
    ax.legend(fontsize=8)
    return fig


def quadratic_regimes_figure(quad: flow.QuadraticProblem, runs, max_steps: int = 40):
    """Gradient descent on a quadratic for several step sizes (``runs``: list of descent Trajectories).

    Left: loss against step. Right: the coordinate along the top eigenvector (eigenvalue L), divided by its start
    value: it shrinks monotonically for ``eta L < 1``, flips sign every step for ``1 < eta L < 2`` and grows for
    ``eta L > 2``. Diverged runs are labelled with their step.
    """
    fig, (ax_l, ax_c) = _axes(2)
    colors = [COLORS["run"], COLORS["gd"], COLORS["bound"], COLORS["bound2"], COLORS["flow"]]
    for traj, color in zip(runs, colors * 4, strict=False):
        eta = traj.t[1] - traj.t[0] if traj.t.size > 1 else np.nan
        label = f"η·L = {eta * quad.L:.2g}" + (f" ({diverged_label(traj)})" if traj.diverged else "")
        k = traj.k <= max_steps
        ax_l.plot(*finite_part(traj.k[k].astype(float), traj.loss[k]), color=color, marker="o", ms=2.5, lw=1,
                  label=label)
        c = quad.coordinates(traj.w[k])[:, -1]
        ax_c.plot(traj.k[k], c / c[0], color=color, marker="o", ms=2.5, lw=1, label=label)
    plain_log(ax_l)
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
    fig, (ax_l, ax_r) = _axes(2)
    colors = [COLORS["run"], COLORS["gd"], COLORS["bound2"], COLORS["flow"], COLORS["bound"], "0.3"]
    shown = [i for i, r in enumerate(ratios) if any(np.isclose(r, s) for s in show)]
    for i, color in zip(shown, colors * 4, strict=False):
        tr = runs[i]
        label = f"η = {ratios[i]:.3g} × 2/λmax" + (f" ({diverged_label(tr)})" if tr.diverged else "")
        ax_l.plot(*finite_part(tr.k.astype(float), tr.loss), color=color, lw=1.2, label=label)
    plain_log(ax_l)
    ax_l.set(xlabel="step k", ylabel="loss")
    ax_l.legend(fontsize=7)
    final = np.array([tr.final_loss for tr in runs])  # NaN for a diverged run
    ok = ~np.isnan(final)
    ax_r.plot(ratios[ok], np.maximum(final[ok], 1e-300), "o", color=COLORS["run"], label="final loss")
    plain_log(ax_r)
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
    fig, (ax,) = _axes(1, width=5.2, left=0.14, right=0.97)
    colors = [COLORS["run"], COLORS["gd"], COLORS["bound2"], COLORS["flow"], COLORS["bound"], "0.3"]
    for m, b, label, color in zip(measured, bound, labels, colors * 4, strict=False):
        ax.plot(eps, np.asarray(m, dtype=float), "o-", color=color, label=f"{label}: measured")
        ax.plot(eps, np.asarray(b, dtype=float), "--", color=color, label=f"{label}: bound T_ε")
    plain_log(ax, "xy")
    ax.set(xlabel="ε", ylabel="steps until |∇f| ≤ ε")
    ax.invert_xaxis()
    ax.legend(fontsize=7, ncol=2)
    return fig


class View(ExplorerView):
    """The chapter-2 explorer's figure (:class:`gdlab.plots.style.ExplorerView`; settings of
    :data:`gdlab.experiments.ch02.SPEC`).

    Left: loss against time ``t_k = k eta`` for gradient descent (orange, dots) and the flow (green). Right: the
    distance ``|w_k - gamma(k eta)|`` between iterates and flow at equal time, k >= 1 (orange, dots), and the flow's
    own distance from ``w0`` for scale (green, dashed); y ranges span at most 16 decades below the largest value.
    Colours are explained in the chapter's text, not in legends: to keep a redraw within the explorer budget the
    figure has few, short, ASCII texts (no legends, no axes titles, no mathtext). A diverged run is drawn up to its
    last finite step and labelled "diverged at step k".
    """

    run = staticmethod(ch02.run)
    SIZE = (8.4, 3.3)
    DESCRIPTION = ("Chapter 2 explorer, two panels against the time t = k eta. Left: the loss on a log scale of "
                   "gradient descent (orange dots) and of the gradient flow (green line). Right: on a log scale, the "
                   "distance between the gradient-descent iterate and the flow at equal time (orange dots) and the "
                   "flow's own distance from its start (green, dashed).")

    def _build(self, fig: Figure) -> None:
        self._axes = (fig.add_axes((0.08, 0.13, 0.39, 0.66)), fig.add_axes((0.59, 0.13, 0.39, 0.66)))
        ax_l, ax_d = self._axes
        (self._flow_loss,) = ax_l.plot([], [], color=COLORS["flow"], lw=2)
        (self._gd_loss,) = ax_l.plot([], [], color=COLORS["gd"], marker="o", ms=2.5, lw=0.8)
        (self._flow_dist,) = ax_d.plot([], [], color=COLORS["flow"], ls="--", lw=1.2)
        (self._gd_gap,) = ax_d.plot([], [], color=COLORS["gd"], marker="o", ms=2.5, lw=0.8)
        for ax in self._axes:  # both panels carry time ticks and value ticks (every few decades)
            explorer_log_y(ax, y_ticks=5, x_ticks=4)
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

    def _draw(self, run: ch02.Run) -> str:
        s, gd = run.settings, run.gd
        tf, lf, df, gap = run.flow_t, run.flow_loss, run.flow_dist, run.gap
        self._flow_loss.set_data(*finite_part(tf, lf))
        self._gd_loss.set_data(*finite_part(gd.t, gd.loss))
        self._flow_dist.set_data(*finite_part(tf[1:], df[1:]))  # t = 0: distance 0 up to round-off
        self._gd_gap.set_data(*finite_part(gd.t[1:], gap[1:]))  # k = 0: both at w0 (gap 0 up to round-off)
        ax_l, ax_d = self._axes
        self._set_log_ylim(ax_l, lf, gd.loss)
        self._set_log_ylim(ax_d, df[1:], gap[1:])
        t_shown = float(gd.t[-1]) * 1.05 if gd.diverged else float(s["steps"] * run.eta)
        for ax in self._axes:
            ax.set_xlim(0.0, t_shown)
        L_name = "L" if s["problem"] == "quadratic" else "lambda_max"
        self._title.set_text(f"{s['problem']}, eta {L_name} = {s['step']:.3g}, eta = {run.eta:.3g}")
        for text in self._div:
            text.set(text=diverged_label(gd), visible=gd.diverged)
        end = f"{s['steps']} steps: " + (diverged_label(gd) if gd.diverged else
                                         f"at t = {t_shown:.3g} loss {gd.loss[-1]:.2g} (flow {lf[-1]:.2g}), "
                                         f"distance to the flow {gap[-1]:.2g}")
        return one_line(self._title.get_text(), end)
