"""Gradient flow and gradient descent on a flat parameter vector (compute layer; chapter 2 and every later chapter).

Both integrators take a ``loss_grad(w) -> (f(w), grad f(w))`` callable (for instance ``MLPProblem(...).loss_grad``)
and return a :class:`Trajectory`: times, loss, gradient norm, distance from ``w0``, path length and energy
(Definition 0.4 of :cite:`gelada2024`), the recorded parameters, and whether the run diverged.

* :func:`gradient_flow` solves ``gamma' = -grad f(gamma)`` with ``scipy.integrate.solve_ivp`` (adaptive
  Dormand-Prince 8(5,3) by default, :cite:`dormand1980family`) on the augmented state ``(w, len, en)`` with
  ``len' = |grad f|`` and ``en' = |grad f|^2``, so length and energy are integrated to the stated tolerances.
* :func:`gradient_descent` iterates ``w_{k+1} = w_k - eta_k grad f(w_k)``; its "time" is ``t_k = eta_0 + ... + eta_{k-1}``,
  its length ``sum eta_k |grad f(w_k)|`` and its energy ``sum |w_{k+1} - w_k|^2 / eta_k = sum eta_k |grad f(w_k)|^2``,
  the discrete counterparts of the flow's quantities.

A run whose loss becomes non-finite or exceeds ``max_loss`` stops, sets ``diverged=True`` and records the step
(or time); no floating-point warning escapes. Nothing here is random: the same input gives the same bits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

from ._checks import as_array, as_float, as_int

LossGrad = Callable[[np.ndarray], tuple[float, np.ndarray]]


@dataclass(frozen=True)
class Trajectory:
    """A recorded optimisation run with ``T`` recorded points on a ``p``-dimensional parameter space.

    Attributes
    ----------
    t : (T,) times (flow) or cumulative step sizes ``t_k = sum_{i<k} eta_i`` (descent).
    steps : (T,) iteration index of each record (descent) or ``-1`` (flow).
    w : (T, p) recorded parameters; ``w[0] = w0``.
    loss, grad_norm, dist : (T,) ``f(w)``, ``|grad f(w)|`` and ``|w - w0|``.
    length, energy : (T,) path length and energy from 0 up to each record.
    diverged : True if the run stopped because the loss became non-finite or exceeded ``max_loss``.
    diverged_at : the step index (descent) at which divergence was detected, else ``None``.
    diverged_time : the time at which divergence was detected, else ``None``.
    message : a one-line human-readable account of how the run ended.
    method : ``"flow"`` or ``"descent"``.
    """

    t: np.ndarray
    steps: np.ndarray
    w: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    dist: np.ndarray
    length: np.ndarray
    energy: np.ndarray
    diverged: bool
    diverged_at: int | None
    diverged_time: float | None
    message: str
    method: str

    @property
    def final_loss(self) -> float:
        """Loss at the last recorded point."""
        return float(self.loss[-1])


def _safe_loss_grad(loss_grad: LossGrad, w: np.ndarray) -> tuple[float, np.ndarray, bool]:
    """Evaluate ``loss_grad`` with floating-point warnings silenced; report whether the result is finite."""
    with np.errstate(all="ignore"):
        f, g = loss_grad(w)
        g = np.asarray(g, dtype=float)
        ok = bool(np.isfinite(f) and np.all(np.isfinite(g)))
    return float(f), g, ok


def _check_common(loss_grad, w0, max_loss) -> tuple[np.ndarray, float, np.ndarray, float]:
    if not callable(loss_grad):
        raise ValueError("loss_grad must be a callable w -> (f(w), grad f(w))")
    w0 = as_array("w0", w0, ndim=1)
    if w0.size == 0:
        raise ValueError("w0 must have at least one entry")
    f0, g0, ok = _safe_loss_grad(loss_grad, w0)
    if not ok:
        raise ValueError("w0 must be a point where the loss and its gradient are finite")
    if np.shape(g0) != w0.shape:
        raise ValueError(f"loss_grad must return a gradient of shape {w0.shape}; got {np.shape(g0)}")
    max_loss = 1e6 * (1.0 + abs(f0)) if max_loss is None else as_float("max_loss", max_loss)
    return w0, f0, g0, max_loss


def gradient_flow(
    loss_grad: LossGrad,
    w0,
    t_max: float,
    *,
    t_eval=None,
    n_eval: int = 201,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    method: str = "DOP853",
    max_loss: float | None = None,
    min_loss: float | None = None,
) -> Trajectory:
    """Solve the gradient flow ``gamma(0) = w0``, ``gamma'(t) = -grad f(gamma(t))`` on ``[0, t_max]`` (chapter 2, Def. 0.6).

    Parameters
    ----------
    loss_grad : callable ``w (p,) -> (f(w), grad f(w) (p,))``.
    w0 : (p,) initial point.
    t_max : final time, > 0.
    t_eval : increasing times in ``[0, t_max]`` to record, starting at 0 (default: ``n_eval`` equally spaced).
    rtol, atol : tolerances passed to ``solve_ivp``; the energy identity holds to about ``rtol * l(0)``.
    method : a ``solve_ivp`` method name (``"DOP853"``, ``"RK45"``, ``"LSODA"``, ...).
    max_loss : stop and report divergence if the loss exceeds this (default ``1e6 (1 + |f(w0)|)``).
    min_loss : optionally stop once the loss falls below this value (the run is then not "diverged").

    Returns
    -------
    Trajectory with ``method="flow"``.
    """
    w0, f0, _, max_loss = _check_common(loss_grad, w0, max_loss)
    t_max = as_float("t_max", t_max)
    rtol = as_float("rtol", rtol, high=1.0)
    atol = as_float("atol", atol, high=1.0)
    if min_loss is not None:
        min_loss = as_float("min_loss", min_loss, low=0.0, low_open=False)
    if t_eval is None:
        t_eval = np.linspace(0.0, t_max, as_int("n_eval", n_eval, low=2))
    else:
        t_eval = as_array("t_eval", t_eval, ndim=1)
        if t_eval.size < 2 or t_eval[0] != 0.0 or np.any(np.diff(t_eval) <= 0) or t_eval[-1] > t_max:
            raise ValueError("t_eval must be strictly increasing, start at 0 and end at or before t_max")
    p = w0.size

    def rhs(_t, z):
        _, g, ok = _safe_loss_grad(loss_grad, z[:p])
        if not ok:
            return np.zeros_like(z)
        gg = float(g @ g)
        return np.concatenate([-g, [np.sqrt(gg), gg]])

    def blow_up(_t, z):
        f, _, ok = _safe_loss_grad(loss_grad, z[:p])
        return max_loss - f if ok else -1.0

    blow_up.terminal = True
    events = [blow_up]
    if min_loss is not None:

        def reached_floor(_t, z):
            return _safe_loss_grad(loss_grad, z[:p])[0] - min_loss

        reached_floor.terminal = True
        events.append(reached_floor)

    z0 = np.concatenate([w0, [0.0, 0.0]])
    with np.errstate(all="ignore"):
        sol = solve_ivp(rhs, (0.0, t_max), z0, method=method, t_eval=t_eval, rtol=rtol, atol=atol, events=events)
    ts, Z = sol.t, sol.y.T
    stopped_at = None
    if sol.status == 1 and sol.t_events[0].size:
        stopped_at = float(sol.t_events[0][0])
        ts, Z = np.append(ts, stopped_at), np.vstack([Z, sol.y_events[0][0]])
    elif sol.status == 1:  # reached min_loss: record the stopping point
        t_stop = float(sol.t_events[1][0])
        ts, Z = np.append(ts, t_stop), np.vstack([Z, sol.y_events[1][0]])
    diverged = stopped_at is not None or sol.status == -1
    W = Z[:, :p]
    losses, gnorms = _evaluate(loss_grad, W)
    diverged = diverged or not np.all(np.isfinite(losses))
    if stopped_at is not None:
        message = f"diverged at t = {stopped_at:.4g}: loss exceeded {max_loss:.3g}"
    elif sol.status == -1:
        stopped_at = float(ts[-1]) if ts.size else 0.0
        message = f"diverged at t = {stopped_at:.4g}: the ODE solver failed ({sol.message})"
    elif sol.status == 1:
        message = f"stopped at t = {ts[-1]:.4g}: loss fell below min_loss = {min_loss:.3g}"
    else:
        message = f"gradient flow to t = {t_max:.4g} ({method}, rtol={rtol:g}, atol={atol:g}): {sol.nfev} evaluations"
    return Trajectory(
        t=ts,
        steps=np.full(ts.shape, -1),
        w=W,
        loss=losses,
        grad_norm=gnorms,
        dist=np.linalg.norm(W - w0, axis=1),
        length=Z[:, p],
        energy=Z[:, p + 1],
        diverged=diverged,
        diverged_at=None,
        diverged_time=stopped_at if diverged else None,
        message=message,
        method="flow",
    )


def _evaluate(loss_grad: LossGrad, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Loss and gradient norm at every row of ``W`` (non-finite values become inf)."""
    losses = np.empty(len(W))
    gnorms = np.empty(len(W))
    for i, w in enumerate(W):
        f, g, ok = _safe_loss_grad(loss_grad, w)
        losses[i], gnorms[i] = (f, np.linalg.norm(g)) if ok else (np.inf, np.inf)
    return losses, gnorms


def _step_sizes(eta, n_steps: int) -> np.ndarray:
    if np.ndim(eta) == 0:
        return np.full(n_steps, as_float("eta", eta))
    etas = as_array("eta", eta, shape=(n_steps,))
    if np.any(etas <= 0):
        raise ValueError("eta must be positive: a number > 0 or an array of n_steps numbers > 0")
    return etas


def gradient_descent(
    loss_grad: LossGrad,
    w0,
    eta,
    n_steps: int,
    *,
    record_every: int = 1,
    max_loss: float | None = None,
) -> Trajectory:
    """Run ``n_steps`` of gradient descent ``w_{k+1} = w_k - eta_k grad f(w_k)`` from ``w0`` (chapter 2).

    Parameters
    ----------
    loss_grad : callable ``w (p,) -> (f(w), grad f(w) (p,))``.
    w0 : (p,) initial point.
    eta : step size > 0, or an array of ``n_steps`` step sizes (a schedule, e.g. ``a / (b + k)^gamma``).
    n_steps : number of steps, >= 1.
    record_every : record every this many steps (the first and the last point are always recorded).
    max_loss : the run is declared diverged when the loss exceeds this (default ``1e6 (1 + |f(w0)|)``) or
        becomes non-finite; it stops at once and ``diverged_at`` is the step index where this was seen.

    Returns
    -------
    Trajectory with ``method="descent"``; ``steps`` holds the iteration index of each record.
    """
    w0, f0, g0, max_loss = _check_common(loss_grad, w0, max_loss)
    n_steps = as_int("n_steps", n_steps)
    record_every = as_int("record_every", record_every)
    etas = _step_sizes(eta, n_steps)

    rec_k, rec_t, rec_w, rec_f, rec_g, rec_len, rec_en = [], [], [], [], [], [], []
    w, f, g = w0, f0, g0
    t = length = energy = 0.0
    diverged_at = None
    for k in range(n_steps + 1):
        gnorm = float(np.linalg.norm(g))
        if k % record_every == 0 or k == n_steps:
            for lst, val in zip((rec_k, rec_t, rec_w, rec_f, rec_g, rec_len, rec_en),
                                (k, t, w, f, gnorm, length, energy), strict=True):
                lst.append(val)
        if k == n_steps:
            break
        with np.errstate(all="ignore"):
            w = w - etas[k] * g
        f, g, ok = _safe_loss_grad(loss_grad, w)
        t += etas[k]
        length += etas[k] * gnorm
        energy += etas[k] * gnorm**2
        if not ok or not np.all(np.isfinite(w)) or f > max_loss:
            diverged_at = k + 1
            break
    diverged = diverged_at is not None
    if diverged:
        message = f"diverged at step {diverged_at}: loss {'is not finite' if not np.isfinite(f) else f'{f:.3g}'} " \
                  f"(limit {max_loss:.3g})"
    else:
        message = f"{n_steps} steps of gradient descent; final loss {f:.3g}"
    W = np.array(rec_w)
    return Trajectory(
        t=np.array(rec_t),
        steps=np.array(rec_k),
        w=W,
        loss=np.array(rec_f),
        grad_norm=np.array(rec_g),
        dist=np.linalg.norm(W - w0, axis=1),
        length=np.array(rec_len),
        energy=np.array(rec_en),
        diverged=diverged,
        diverged_at=diverged_at,
        diverged_time=t if diverged else None,
        message=message,
        method="descent",
    )


@dataclass(frozen=True)
class FlowIdentities:
    """Residuals of Results 1.2-1.5 of :cite:`gelada2024` on a gradient-flow trajectory (chapter 2).

    Attributes
    ----------
    rate_residual : (T,) ``l'(t) + |grad f|^2`` with ``l'`` from second-order finite differences of the recorded
        loss curve (Result 1.2; the error shrinks like the squared spacing of the records, except at ReLU kinks).
    energy_residual : (T,) ``en(gamma|[0,t]) - (l(0) - l(t))`` (Result 1.3; zero up to the ODE tolerance).
    length_gap : (T,) ``t en - len^2`` (Result 1.4 says >= 0).
    distance_gap : (T,) ``sqrt(t l(0)) - |gamma(t) - w0|`` (Result 1.5 says >= 0).
    """

    rate_residual: np.ndarray
    energy_residual: np.ndarray
    length_gap: np.ndarray
    distance_gap: np.ndarray


def flow_identities(traj: Trajectory) -> FlowIdentities:
    """Measure Results 1.2-1.5 on a trajectory returned by :func:`gradient_flow` (chapter 2)."""
    if not isinstance(traj, Trajectory) or traj.method != "flow":
        raise ValueError("traj must be a Trajectory returned by gradient_flow")
    if traj.t.size < 3:
        raise ValueError("traj must have at least 3 recorded points")
    rate = np.gradient(traj.loss, traj.t, edge_order=2)
    return FlowIdentities(
        rate_residual=rate + traj.grad_norm**2,
        energy_residual=traj.energy - (traj.loss[0] - traj.loss),
        length_gap=traj.t * traj.energy - traj.length**2,
        distance_gap=np.sqrt(traj.t * traj.loss[0]) - traj.dist,
    )


@dataclass(frozen=True)
class FlowGap:
    """Distance between gradient-descent iterates and the flow at equal times ``t_k = k eta`` (chapter 2).

    ``eta`` (E,) step sizes, ``gap`` (E,) ``max_k |w_k - gamma(k eta)|`` over ``k eta <= t_max``.
    """

    eta: np.ndarray
    gap: np.ndarray


def gd_flow_gap(loss_grad: LossGrad, w0, etas, t_max: float, *, rtol: float = 1e-11, atol: float = 1e-13) -> FlowGap:
    """For each step size in ``etas``, the largest distance between GD iterates and the gradient flow at equal time.

    The flow is solved once, accurately, at every time ``k eta`` needed. Euler's method has global error
    O(eta) on a fixed time interval, so ``gap`` should scale like ``eta`` (fit the slope on a log-log plot).
    """
    etas = as_array("etas", etas, ndim=1)
    if etas.size == 0 or np.any(etas <= 0):
        raise ValueError("etas must be a non-empty 1-D array of positive step sizes")
    t_max = as_float("t_max", t_max)
    steps = [max(1, int(np.floor(t_max / eta + 1e-9))) for eta in etas]
    times = np.unique(np.concatenate([np.arange(n + 1) * eta for n, eta in zip(steps, etas, strict=True)]))
    flow = gradient_flow(loss_grad, w0, float(times[-1]), t_eval=times, rtol=rtol, atol=atol)
    gaps = []
    for n, eta in zip(steps, etas, strict=True):
        gd = gradient_descent(loss_grad, w0, float(eta), n)
        idx = np.searchsorted(flow.t, np.arange(n + 1) * eta - 1e-12 * eta)
        gaps.append(np.inf if gd.diverged else float(np.max(np.linalg.norm(gd.w - flow.w[idx], axis=1))))
    return FlowGap(eta=etas, gap=np.array(gaps))
