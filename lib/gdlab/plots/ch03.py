"""Chapter 3 figures: the concentration of ``|b0|^2 / k``, the health ratio along a flow, the bounds against the width,
and the chapter's explorer (:class:`View`).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..experiments import ch03
from .style import COLORS, ExplorerView, PixelCachedLegend, explorer_log_y, finite_part, fit_log_ticks, new_figure, one_line


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


class View(ExplorerView):
    """The chapter-3 explorer's figure (:class:`gdlab.plots.style.ExplorerView`; settings of
    :data:`gdlab.experiments.ch03.SPEC`).

    Loss on a log scale against time ``t = k eta``: gradient descent (thick line), the gradient flow (thin line, solved
    with ``rtol = 1e-6`` and stopped at ``1e-12 l(0)``, below which that tolerance no longer resolves the loss), the
    rigorous envelopes with the measured ``|b0|`` for the flow (Result 2.2, solid) and for gradient descent (the
    relaxed-health theorem for GD with the run's measured ``rho``, dashed), and the two bounds on ``l(inf)``
    (horizontal lines). The y range fits what is drawn (down to at most ``1e-16 l(0)``, round-off relative to the
    start), so a run that stalls near its bounds is readable. :func:`gdlab.experiments.ch03.notes` says in words when
    a bound is vacuous or violated, when GD has no guarantee, and when it diverged.
    """

    run = staticmethod(ch03.run)
    SIZE = (7.0, 3.6)
    DESCRIPTION = ("Chapter 3 explorer: the loss on a log scale against the time t = k eta for one draw of the "
                   "one-data-point network: gradient descent (thick orange line), the gradient flow (green), the "
                   "flow's envelope (purple) and gradient descent's envelope (dashed orange), and the idealised "
                   "(dashed red) and rigorous (dotted purple) bounds on the final loss as horizontal lines; a legend "
                   "on the right, warnings below it.")

    def _build(self, fig: Figure) -> None:
        self._ax = ax = fig.add_axes((0.1, 0.14, 0.52, 0.72))
        explorer_log_y(ax, y_ticks=5, x_ticks=3)
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

    def _draw(self, run: ch03.Run) -> str:
        s = run.settings
        eta, steps = s["eta"], s["steps"]
        floor = ch03.FLOOR * run.l0
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
        fit_log_ticks(self._ax, y_ticks=5)
        notes = ch03.notes(run)
        self._note.set_text("\n".join(notes))
        self._note.set_visible(bool(notes))  # an empty text still costs a layout
        gd_rho = f"GD rho={run.rho:.2f}" if np.isfinite(run.gd_envelope[-1]) else "GD: no guarantee"
        self._title.set_text(f"l(0)={run.l0:.3g}, |b0|^2/k={run.b0_sq / s['k']:.2f}, {gd_rho}; "
                             f"final loss: GD {run.gd_loss[-1]:.2g}, flow {run.flow_loss[-1]:.2g}")
        bounds = f"bounds on l(inf): idealised {run.idealised:.3g}, rigorous {run.rigorous:.3g}"
        head = f"m = {s['m']}, k = {s['k']}, n = {s['n']}, eta = {eta:.3g}, {steps} steps, draw {s['draw']}"
        return one_line(head, self._title.get_text(), bounds, *notes)
