"""Chapter 3 explorer: the one-data-point network trained by gradient descent and by the gradient flow, against the
idealised and the rigorous bounds on its final loss, and the envelopes of the relaxed-health theorems.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import bounds
from ..runs import diverged_text
from ..spec import Control, Spec

#: Losses are drawn down to this fraction of l(0) (round-off relative to l(0)).
FLOOR = 1e-16
#: The explorer's flow (rtol 1e-6) stops once every live draw is below this fraction of l(0).
FLOW_STOP = 1e-12
#: Points of the envelopes on [0, steps eta].
ENVELOPE_POINTS = 121

#: The explorer's settings. On the page: a narrow, the default and a wide net; one and two outputs; a small step, a
#: larger one and one where gradient descent parts from the flow; the default draw and draw 66 (with m = k = 2,
#: n = 1 it stalls with every unit dead, above the idealised bound).
SPEC = Spec((
    Control("m", "input dim m", "int", 2, low=1, high=16, step=1),
    Control("k", "width k", "int", 16, low=1, high=256, step=1, page=(2, 16, 128)),
    Control("n", "outputs n", "int", 2, low=1, high=8, step=1, page=(1, 2)),
    Control("eta", "step size eta", "log", 0.01, low=1e-4, high=10**-0.5, step=0.05, page=(0.01, 0.1, 0.3)),
    Control("steps", "steps", "int", 200, low=10, high=1000, step=10),
    Control("draw", "draw", "int", 1, low=0, high=999, step=1, page=(1, 66)),
))


class Run(NamedTuple):
    """One draw of the chapter-3 explorer: GD and the flow on one data point, and the bounds (chapter 3).

    ``gd_loss`` (steps+1,) (NaN from ``diverged_at`` on, the step at which gradient descent diverged, -1 if it did
    not; :mod:`gdlab.runs`); ``flow_t``, ``flow_loss`` (T,); ``flow_dead``: every unit is dead at the flow's last
    record, so the flow stalls there for good (``l(inf) = |q|^2 / 2``). ``envelope`` and ``gd_envelope``
    (:data:`ENVELOPE_POINTS`,) on ``linspace(0, steps eta, ENVELOPE_POINTS)``: the flow's envelope (Result 2.2 with the
    measured ``|b0|``) and the one of the relaxed-health theorem for gradient descent with the run's measured
    sufficient-decrease constant ``rho`` (NaN where that theorem does not apply: a step raised the loss, or ``b0 = 0``).
    """

    settings: dict
    gd_loss: np.ndarray
    diverged_at: int
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


def run(**settings) -> Run:
    """Gradient descent (``steps`` steps of size ``eta``) and the gradient flow on ``[0, steps * eta]`` for draw
    ``draw`` of the one-data-point problem (:func:`gdlab.bounds.one_point_flows`), with the idealised and rigorous
    bounds (settings of :data:`SPEC`)."""
    s = SPEC.bind(settings)
    m, k, n, eta, steps = s["m"], s["k"], s["n"], s["eta"], s["steps"]
    t_max = eta * steps
    runs = bounds.one_point_flows(m, k, n, 1, s["draw"], t_max, t_eval=np.linspace(0.0, t_max, ENVELOPE_POINTS),
                                  rtol=1e-6, atol=1e-13, stop_below=FLOW_STOP)
    gd = bounds.one_point_descent(runs, eta, steps)
    l0, b0_sq = float(runs.l0[0]), float(runs.b0_sq[0])
    alpha, beta = bounds.rigorous_health_constants(b0_sq, m)
    check = bounds.relaxed_descent_check(gd.loss, gd.grad_sq, gd.dist, eta, alpha, beta, floor=FLOOR)
    env_t = np.linspace(0.0, t_max, ENVELOPE_POINTS)
    env = bounds.health_envelope(env_t, l0, alpha, beta) if b0_sq > 0 else np.full(env_t.shape, l0)
    rho = float(check.rho[0])
    gd_env = bounds.health_envelope(env_t, l0, alpha, beta, rho) if check.holds[0] else np.full(env_t.shape, np.nan)
    return Run(s, gd.loss[:, 0], int(gd.diverged_at[0]), runs.t, runs.loss[:, 0], bool(runs.dead[-1, 0]), l0, b0_sq,
               bounds.idealised_bound(l0, k, m), bounds.rigorous_bound(l0, b0_sq, m), np.atleast_1d(env), rho,
               np.atleast_1d(gd_env))


def notes(run: Run) -> list[str]:
    """The explorer's warnings for ``run``, in words: vacuous or violated bounds, no GD guarantee, divergence."""
    out = []
    for name, bound in (("idealised", run.idealised), ("rigorous", run.rigorous)):
        if bound >= run.l0:
            out.append(f"{name} bound is vacuous")
        elif run.flow_dead and run.flow_loss[-1] > bound:
            out.append(f"{name} bound VIOLATED: flow stalls\nat {run.flow_loss[-1]:.3g} > {bound:.3g} (units dead)")
    if run.diverged_at >= 0:
        out.append(f"GD {diverged_text(run.diverged_at)}")
    elif not np.isfinite(run.gd_envelope[-1]) and run.b0_sq > 0:
        out.append("a GD step raised the loss:\nno GD guarantee (rho <= 0)")
    return out
