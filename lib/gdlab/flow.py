"""Gradient flow and gradient descent on a flat parameter vector (compute layer; chapter 2 and every later chapter).

Both integrators take a ``loss_grad(w) -> (f(w), grad f(w))`` callable (for instance ``MLPProblem(...).loss_grad``)
and return a :class:`Trajectory`: times, loss, gradient norm, distance from ``w0``, path length and energy
(Definition 0.4 of :cite:`gelada2024`), the recorded parameters, and whether the run diverged.

* :func:`gradient_flow` solves ``gamma' = -grad f(gamma)`` with the adaptive solvers behind ``scipy.integrate.solve_ivp``
  (Dormand-Prince 8(5,3) by default, :cite:`dormand1980family`), stepped one step at a time so that every step can
  check for divergence and an evaluation budget, on the augmented state ``(w, len, en)`` with
  ``len' = |grad f|`` and ``en' = |grad f|^2``, so length and energy are integrated to the stated tolerances.
* :func:`gradient_descent` iterates ``w_{k+1} = w_k - eta_k grad f(w_k)``; its "time" is ``t_k = eta_0 + ... + eta_{k-1}``,
  its length ``sum eta_k |grad f(w_k)|`` and its energy ``sum |w_{k+1} - w_k|^2 / eta_k = sum eta_k |grad f(w_k)|^2``,
  the discrete counterparts of the flow's quantities.

A run whose loss becomes non-finite or exceeds ``max_loss`` (default :func:`gdlab.runs.divergence_threshold` of
``f(w0)``) stops and says where in ``diverged_at`` (and ``diverged_time``), by the convention of :mod:`gdlab.runs`;
no floating-point warning escapes. Nothing here is random: the same input gives the same bits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import integrate
from scipy.optimize import brentq

from ._checks import as_array, as_float, as_int, as_rng
from .runs import NOT_DIVERGED, divergence_threshold, diverges

LossGrad = Callable[[np.ndarray], tuple[float, np.ndarray]]

#: The adaptive solvers of ``scipy.integrate`` that :func:`gradient_flow` can use.
_SOLVERS = {name: getattr(integrate, name) for name in ("RK23", "RK45", "DOP853", "Radau", "BDF", "LSODA")}


@dataclass(frozen=True)
class Trajectory:
    """A recorded optimisation run with ``T`` recorded points on a ``p``-dimensional parameter space.

    :ivar t: (T,) times (flow) or cumulative step sizes ``t_k = sum_{i<k} eta_i`` (descent).
    :ivar k: (T,) iteration index of each record (descent) or ``-1`` (flow).
    :ivar w: (T, p) recorded parameters; ``w[0] = w0``.
    :ivar loss: (T,) ``f(w)``.
    :ivar grad_norm: (T,) ``|grad f(w)|``.
    :ivar dist: (T,) ``|w - w0|``.
    :ivar length: (T,) path length from 0 up to each record.
    :ivar energy: (T,) energy from 0 up to each record.
    :ivar diverged_at: where the run stopped because the loss became non-finite or exceeded ``max_loss``
        (:mod:`gdlab.runs`): the step (descent; the records end at the step before it) or the index of the record
        (flow: its last record, where the loss reached ``max_loss`` or the solver failed); -1 if it did not.
    :ivar diverged_time: the time at which divergence was detected, else ``None``.
    :ivar message: a one-line human-readable account of how the run ended.
    :ivar method: ``"flow"`` or ``"descent"``.
    :ivar status: ``"completed"``, ``"diverged"`` (exactly when ``diverged_at >= 0``), or why a flow stopped early:
        ``"min_loss"``, ``"max_evals"``.
    :ivar diverged: (property) ``diverged_at >= 0``.
    """

    t: np.ndarray
    k: np.ndarray
    w: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    dist: np.ndarray
    length: np.ndarray
    energy: np.ndarray
    diverged_at: int
    diverged_time: float | None
    message: str
    method: str
    status: str = "completed"

    def __post_init__(self):
        if (self.status == "diverged") != (self.diverged_at >= 0):
            raise ValueError(f"status {self.status!r} contradicts diverged_at = {self.diverged_at}")

    @property
    def diverged(self) -> bool:
        """Whether the run diverged (``diverged_at >= 0``)."""
        return self.diverged_at >= 0

    @property
    def final_loss(self) -> float:
        """Loss at the last recorded point; NaN if the run diverged."""
        return float("nan") if self.diverged else float(self.loss[-1])


def _safe_loss_grad(loss_grad: LossGrad, w: np.ndarray) -> tuple[float, np.ndarray, bool]:
    """Evaluate ``loss_grad`` with floating-point warnings silenced; report whether the result is finite.

    A non-finite ``w`` (an iterate that overflowed) is not passed to ``loss_grad``, whose argument checks would
    reject it: it is reported as a non-finite loss, so that the caller declares divergence.
    """
    if not np.all(np.isfinite(w)):
        return np.inf, np.full_like(w, np.nan), False
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
    max_loss = divergence_threshold(f0) if max_loss is None else as_float("max_loss", max_loss)
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
    max_evals: int = 200_000,
) -> Trajectory:
    """Solve the gradient flow ``gamma(0) = w0``, ``gamma'(t) = -grad f(gamma(t))`` on ``[0, t_max]`` (chapter 2, Def. 0.6).

    :param loss_grad: callable ``w (p,) -> (f(w), grad f(w) (p,))``.
    :param w0: (p,) initial point.
    :param t_max: final time, > 0.
    :param t_eval: increasing times in ``[0, t_max]`` to record, starting at 0 (default: ``n_eval`` equally spaced).
    :param rtol: relative tolerance of the adaptive solver; the energy identity holds to about ``rtol * l(0)``.
    :param atol: absolute tolerance of the adaptive solver.
    :param method: an explicit or implicit ``scipy.integrate`` solver class name (``"DOP853"``, ``"RK45"``,
        ``"LSODA"``, ...).
    :param max_loss: stop and report divergence if the loss exceeds this (default
        :func:`gdlab.runs.divergence_threshold` of ``f(w0)``); ``diverged_at`` is then the index of the last record,
        the point where the loss reached it, and ``diverged_time`` its time.
    :param min_loss: optionally stop once the loss falls below this value (``status="min_loss"``, not diverged).
    :param max_evals: stop (``status="max_evals"``, not diverged) after this many gradient evaluations. The ReLU loss
        has a discontinuous gradient: when a hidden unit sits on its kink for one data point and is pushed
        across it by another, the flow slides along the kink and an adaptive solver takes ever smaller steps.
    :returns: a :class:`Trajectory` with ``method="flow"``, recorded at the times of ``t_eval`` reached (dense output
        of each step), plus the stopping point if the run ended early.
    """
    w0, f0, _, max_loss = _check_common(loss_grad, w0, max_loss)
    t_max = as_float("t_max", t_max)
    rtol = as_float("rtol", rtol, high=1.0)
    atol = as_float("atol", atol, high=1.0)
    max_evals = as_int("max_evals", max_evals)
    if min_loss is not None:
        min_loss = as_float("min_loss", min_loss, low=0.0, low_open=False)
    if method not in _SOLVERS:
        raise ValueError(f"method must be one of {sorted(_SOLVERS)}; got {method!r}")
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
            return np.full_like(z, np.nan)
        gg = float(g @ g)
        return np.concatenate([-g, [np.sqrt(gg), gg]])

    z0 = np.concatenate([w0, [0.0, 0.0]])
    times, states = [0.0], [z0]
    status, message = "completed", ""
    with np.errstate(all="ignore"):
        solver = _SOLVERS[method](rhs, 0.0, z0, float(t_eval[-1]), rtol=rtol, atol=atol)
        nxt = 1  # index of the next t_eval to record
        while solver.status == "running":
            solver.step()
            if solver.status == "failed" or not np.all(np.isfinite(solver.y)):
                status, message = "diverged", f"diverged at t = {solver.t:.4g}: the ODE solver failed ({solver.status})"
                break
            hi = np.searchsorted(t_eval, solver.t, side="right")
            if hi > nxt:
                interp = solver.dense_output()
                times.extend(t_eval[nxt:hi])
                states.extend(np.atleast_2d(interp(t_eval[nxt:hi]).T))
                nxt = hi
            f = _safe_loss_grad(loss_grad, solver.y[:p])[0]
            if diverges(f, max_loss):
                status, message = "diverged", f"diverged at t = {solver.t:.4g}: loss exceeded {max_loss:.3g}"
            elif min_loss is not None and f < min_loss:
                status, message = "min_loss", f"stopped at t = {solver.t:.4g}: loss fell below min_loss = {min_loss:.3g}"
            elif solver.nfev >= max_evals and solver.status == "running":
                status = "max_evals"
                message = (f"stopped at t = {solver.t:.4g} of {t_max:.4g}: {solver.nfev} evaluations reached max_evals "
                           "(the flow is stiff here, e.g. sliding along a ReLU kink)")
            if status != "completed":
                t_stop, z_stop = solver.t, solver.y.copy()
                if status in ("diverged", "min_loss") and np.isfinite(f):  # locate the crossing inside the step
                    level = max_loss if status == "diverged" else min_loss
                    t_stop, z_stop = _crossing(loss_grad, solver.dense_output(), solver.t_old, solver.t, level, p)
                while len(times) > 1 and times[-1] >= t_stop:  # records the step made past the stopping time
                    times.pop()
                    states.pop()
                times.append(t_stop)
                states.append(z_stop)
                message = message.replace(f"t = {solver.t:.4g}", f"t = {t_stop:.4g}", 1)
                break
    if status == "completed":
        message = f"gradient flow to t = {t_eval[-1]:.4g} ({method}, rtol={rtol:g}, atol={atol:g}): {solver.nfev} evals"
    ts, Z = np.array(times), np.array(states)
    W = Z[:, :p]
    losses, gnorms = _evaluate(loss_grad, W)
    diverged = status == "diverged"
    with np.errstate(all="ignore"):
        dist = np.linalg.norm(W - w0, axis=1)
    return Trajectory(
        t=ts,
        k=np.full(ts.shape, -1),
        w=W,
        loss=losses,
        grad_norm=gnorms,
        dist=dist,
        length=Z[:, p],
        energy=Z[:, p + 1],
        diverged_at=ts.size - 1 if diverged else NOT_DIVERGED,
        diverged_time=float(ts[-1]) if diverged else None,
        message=message,
        method="flow",
        status=status,
    )


def _crossing(loss_grad: LossGrad, interp, t_lo: float, t_hi: float, level: float, p: int) -> tuple[float, np.ndarray]:
    """The time in ``[t_lo, t_hi]`` at which the loss along the step's dense output crosses ``level``, and the state."""

    def gap(t):
        return _safe_loss_grad(loss_grad, interp(t)[:p])[0] - level

    a, b = gap(t_lo), gap(t_hi)
    t = brentq(gap, t_lo, t_hi, xtol=1e-14, rtol=1e-12) if np.isfinite(a) and np.isfinite(b) and a * b < 0 else t_hi
    return float(t), interp(t)


def _evaluate(loss_grad: LossGrad, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Loss and gradient norm at every row of ``W`` (non-finite values become inf)."""
    losses = np.empty(len(W))
    gnorms = np.empty(len(W))
    for i, w in enumerate(W):
        f, g, ok = _safe_loss_grad(loss_grad, w)
        with np.errstate(all="ignore"):
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

    :param loss_grad: callable ``w (p,) -> (f(w), grad f(w) (p,))``.
    :param w0: (p,) initial point.
    :param eta: step size > 0, or an array of ``n_steps`` step sizes (a schedule, e.g. ``a / (b + k)^gamma``).
    :param n_steps: number of steps, >= 1.
    :param record_every: record every this many steps (the first and the last point are always recorded).
    :param max_loss: the run is declared diverged when the loss exceeds this (default
        :func:`gdlab.runs.divergence_threshold` of ``f(w0)``) or becomes non-finite; it stops at once,
        ``diverged_at`` is the step where this was seen, and the records end at the step before it.
    :returns: a :class:`Trajectory` with ``method="descent"``; ``k`` holds the iteration index of each record.
    """
    w0, f0, g0, max_loss = _check_common(loss_grad, w0, max_loss)
    n_steps = as_int("n_steps", n_steps)
    record_every = as_int("record_every", record_every)
    etas = _step_sizes(eta, n_steps)

    rec_k, rec_t, rec_w, rec_f, rec_g, rec_len, rec_en = [], [], [], [], [], [], []
    w, f, g = w0, f0, g0
    t = length = energy = 0.0
    diverged_at = NOT_DIVERGED
    for k in range(n_steps + 1):
        with np.errstate(all="ignore"):  # a finite gradient can still have an overflowing norm
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
        with np.errstate(all="ignore"):  # gnorm * gnorm, not gnorm**2: a float ** overflow raises OverflowError
            t += etas[k]
            length += etas[k] * gnorm
            energy += etas[k] * (gnorm * gnorm)
        if not ok or diverges(f, max_loss):  # ok is False for a non-finite iterate or gradient
            diverged_at = k + 1
            break
    diverged = diverged_at >= 0
    if diverged:
        message = f"diverged at step {diverged_at}: loss {'is not finite' if not np.isfinite(f) else f'{f:.3g}'} " \
                  f"(limit {max_loss:.3g})"
    else:
        message = f"{n_steps} steps of gradient descent; final loss {f:.3g}"
    W = np.array(rec_w)
    with np.errstate(all="ignore"):
        dist = np.linalg.norm(W - w0, axis=1)
    return Trajectory(
        t=np.array(rec_t),
        k=np.array(rec_k),
        w=W,
        loss=np.array(rec_f),
        grad_norm=np.array(rec_g),
        dist=dist,
        length=np.array(rec_len),
        energy=np.array(rec_en),
        diverged_at=diverged_at,
        diverged_time=t if diverged else None,
        message=message,
        method="descent",
        status="diverged" if diverged else "completed",
    )


@dataclass(frozen=True)
class FlowIdentities:
    """Residuals of Results 1.2-1.5 of :cite:`gelada2024` on a gradient-flow trajectory (chapter 2).

    :ivar rate_residual: (T,) ``l'(t) + |grad f|^2`` with ``l'`` from second-order finite differences of the recorded
        loss curve (Result 1.2; the error shrinks like the squared spacing of the records, except at ReLU kinks).
    :ivar energy_residual: (T,) ``en(gamma|[0,t]) - (l(0) - l(t))`` (Result 1.3; zero up to the ODE tolerance).
    :ivar length_gap: (T,) ``t en - len^2`` (Result 1.4 says >= 0).
    :ivar distance_gap: (T,) ``sqrt(t l(0)) - |gamma(t) - w0|`` (Result 1.5 says >= 0).
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

    ``eta`` (E,) step sizes, ``gap`` (E,) ``max_k |w_k - gamma(k eta)|`` over ``k eta <= t_max``; ``runs`` the E
    gradient-descent Trajectories and ``distances`` the E arrays (K_e + 1,) of ``|w_k - gamma(k eta)|``, k = 0..K_e,
    that the maxima are taken over (to compare with a bound step by step).
    """

    eta: np.ndarray
    gap: np.ndarray
    runs: tuple = ()
    distances: tuple = ()


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
    gaps, runs, distances = [], [], []
    for n, eta in zip(steps, etas, strict=True):
        gd = gradient_descent(loss_grad, w0, float(eta), n)
        idx = np.searchsorted(flow.t, np.arange(n + 1) * eta - 1e-12 * eta)
        with np.errstate(all="ignore"):
            dist = np.linalg.norm(gd.w - flow.w[idx[: gd.w.shape[0]]], axis=1)  # a diverged run stops early
        gaps.append(np.inf if gd.diverged else float(np.max(dist)))
        runs.append(gd)
        distances.append(dist)
    return FlowGap(eta=etas, gap=np.array(gaps), runs=tuple(runs), distances=tuple(distances))


# ----------------------------------------------------------------------------------------------------------
# Chapter 2 helpers: a quadratic with known smoothness constant, and tools to read trajectories
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuadraticProblem:
    """``f(w) = (1/2) w^T H w`` with ``H = Q diag(eigenvalues) Q^T`` symmetric positive definite (chapter 2).

    :ivar eigenvalues: (d,) the eigenvalues of ``H``, increasing; ``L = eigenvalues[-1]`` is the smoothness constant
        (the gradient ``H w`` is exactly L-Lipschitz) and ``mu = eigenvalues[0]`` the strong-convexity constant.
    :ivar Q: (d, d) orthogonal matrix whose columns are the eigenvectors, in the order of ``eigenvalues``.
    :ivar H: (d, d) the Hessian. The minimum is ``f* = 0`` at ``w = 0``.
    """

    eigenvalues: np.ndarray
    Q: np.ndarray
    H: np.ndarray

    @property
    def L(self) -> float:
        """Smoothness constant ``lambda_max(H)``."""
        return float(self.eigenvalues[-1])

    @property
    def mu(self) -> float:
        """``lambda_min(H)``."""
        return float(self.eigenvalues[0])

    @property
    def dim(self) -> int:
        """Dimension ``d``."""
        return self.eigenvalues.size

    def loss_grad(self, w) -> tuple[float, np.ndarray]:
        """``(f(w), H w)`` for ``w`` (d,)."""
        g = self.H @ w
        return 0.5 * float(w @ g), g

    def coordinates(self, w) -> np.ndarray:
        """Coordinates ``Q^T w`` in the eigenbasis; ``w`` (..., d) -> (..., d)."""
        w = as_array("w", w)
        if w.ndim == 0 or w.shape[-1] != self.dim:
            raise ValueError(f"w must have shape (..., {self.dim}); got {w.shape}")
        return w @ self.Q

    def flow(self, w0, t) -> np.ndarray:
        """The exact gradient flow ``gamma(t) = Q exp(-t diag(eigenvalues)) Q^T w0`` at times ``t`` (T,) -> (T, d)."""
        w0 = as_array("w0", w0, shape=(self.dim,))
        t = as_array("t", t, ndim=1)
        return (np.exp(-np.outer(t, self.eigenvalues)) * self.coordinates(w0)) @ self.Q.T

    def descent_loss(self, w0, eta: float, n_steps: int) -> np.ndarray:
        """Closed-form loss of gradient descent ``f(w_k) = (1/2) sum_i lambda_i c_i^2 (1 - eta lambda_i)^(2k)``,
        ``k = 0..n_steps`` (``c = Q^T w0``); returns (n_steps + 1,). Values may overflow to ``inf`` (no warning).
        """
        w0 = as_array("w0", w0, shape=(self.dim,))
        eta = as_float("eta", eta)
        n_steps = as_int("n_steps", n_steps, low=0)
        c = self.coordinates(w0)
        k = np.arange(n_steps + 1)[:, None]
        with np.errstate(all="ignore"):
            factors = np.abs(1.0 - eta * self.eigenvalues) ** (2 * k)
            return 0.5 * np.sum(self.eigenvalues * c**2 * factors, axis=1)


def quadratic_problem(eigenvalues, seed) -> QuadraticProblem:
    """A quadratic ``f(w) = (1/2) w^T H w`` with the given positive ``eigenvalues`` (d,) and Haar-random eigenvectors
    (``scipy.stats.ortho_group``; ``seed`` a non-negative int or Generator). Chapter 2: a problem whose smoothness
    constant ``L = max(eigenvalues)`` is known exactly, for the step-size regimes of gradient descent.
    """
    from scipy.stats import ortho_group

    lam = as_array("eigenvalues", eigenvalues, ndim=1)
    if lam.size == 0 or np.any(lam <= 0):
        raise ValueError("eigenvalues must be a non-empty 1-D array of positive numbers")
    order = np.argsort(lam, kind="stable")
    lam = lam[order]
    rng = as_rng(seed)
    Q = np.ones((1, 1)) if lam.size == 1 else ortho_group.rvs(lam.size, random_state=rng)
    H = (Q * lam) @ Q.T
    return QuadraticProblem(eigenvalues=lam, Q=Q, H=0.5 * (H + H.T))


def thin_trajectory(traj: Trajectory, every: int) -> Trajectory:
    """Keep every ``every``-th record of ``traj`` (always starting with the first); chapter 2 uses it to measure the
    finite-difference residual of Result 1.2 at several record spacings from one flow solution. A diverged flow keeps
    its last record too, the one its ``diverged_at`` names (:mod:`gdlab.runs`).
    """
    if not isinstance(traj, Trajectory):
        raise ValueError("traj must be a Trajectory")
    every = as_int("every", every)
    from dataclasses import replace

    idx = np.arange(0, traj.t.size, every)
    flow_diverged = traj.method == "flow" and traj.diverged
    if flow_diverged and idx[-1] != traj.t.size - 1:
        idx = np.append(idx, traj.t.size - 1)
    return replace(traj, t=traj.t[idx], k=traj.k[idx], w=traj.w[idx], loss=traj.loss[idx],
                   grad_norm=traj.grad_norm[idx], dist=traj.dist[idx], length=traj.length[idx],
                   energy=traj.energy[idx], diverged_at=idx.size - 1 if flow_diverged else traj.diverged_at)


def switch_mask(traj: Trajectory, pattern: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Records (T,) bool whose three-point difference stencil contains a change of ``pattern(w)`` (chapter 2).

    ``pattern`` maps a parameter vector (p,) to an array of any fixed shape, e.g. the ReLU activation pattern
    ``M x > 0`` of an MLP. Where the pattern changes the gradient of a ReLU network jumps, so ``l'(t)`` jumps and the
    finite-difference residual of Result 1.2 (:func:`flow_identities`) does not shrink with the record spacing there.
    Record ``i`` is flagged if the pattern differs anywhere among records ``i - 1, i, i + 1`` (the first and last two
    records use the one-sided stencil ``np.gradient`` uses at the ends).
    """
    if not isinstance(traj, Trajectory):
        raise ValueError("traj must be a Trajectory")
    if not callable(pattern):
        raise ValueError("pattern must be a callable w -> array")
    P = np.array([np.asarray(pattern(w)) for w in traj.w])
    T = len(P)
    changed = np.any((P[1:] != P[:-1]).reshape(T - 1, -1), axis=1) if T > 1 else np.zeros(0, bool)
    mask = np.zeros(T, dtype=bool)
    for j in np.flatnonzero(changed):  # a change between records j and j + 1
        mask[j: j + 2] = True
    if T >= 3:
        mask[0] |= bool(np.any(changed[:2]))
        mask[-1] |= bool(np.any(changed[-2:]))
    return mask


@dataclass(frozen=True)
class RateResiduals:
    """Result 1.2 measured at several record spacings of one flow solution (chapter 2, :func:`rate_residuals`).

    ``spacing`` (S,) record spacings h, coarsest first; ``median`` (S,) median of the relative residual
    ``|l'(t) + |grad f|^2| / |grad f|^2`` over the records away from kinks; ``kink_max`` (S,) its largest value at
    the flagged records (NaN if none); ``n_flagged`` (S,) their number. ``t``, ``relative`` and ``flagged`` hold, per
    spacing, the record times, relative residuals and kink flags (arrays (T_s,)), for plotting.
    """

    spacing: np.ndarray
    median: np.ndarray
    kink_max: np.ndarray
    n_flagged: np.ndarray
    t: tuple
    relative: tuple
    flagged: tuple


def rate_residuals(traj: Trajectory, everies, pattern: Callable[[np.ndarray], np.ndarray]) -> RateResiduals:
    """The finite-difference residual of Result 1.2 on ``traj`` thinned by each of ``everies`` (chapter 2).

    ``l'`` comes from second-order differences of the recorded loss (:func:`flow_identities`), so away from ReLU
    kinks the residual is the difference quotient's error, O(h^2) for spacing h; records whose stencil contains a
    change of ``pattern`` (:func:`switch_mask`) are flagged and left out of the median: there ``l'`` jumps.
    """
    everies = sorted((as_int("everies", e) for e in np.atleast_1d(everies)), reverse=True)
    if not everies:
        raise ValueError("everies must hold at least one positive integer")
    out = {key: [] for key in ("spacing", "median", "kink_max", "n_flagged", "t", "relative", "flagged")}
    for every in everies:
        thin = thin_trajectory(traj, every)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.abs(flow_identities(thin).rate_residual) / thin.grad_norm**2
        flagged = switch_mask(thin, pattern)
        for key, value in (("spacing", thin.t[1] - thin.t[0]), ("median", np.median(rel[~flagged])),
                           ("kink_max", rel[flagged].max() if flagged.any() else np.nan),
                           ("n_flagged", int(flagged.sum())), ("t", thin.t), ("relative", rel), ("flagged", flagged)):
            out[key].append(value)
    return RateResiduals(*(np.array(out[key]) for key in ("spacing", "median", "kink_max", "n_flagged")),
                         *(tuple(out[key]) for key in ("t", "relative", "flagged")))


def steps_to_stationary(traj: Trajectory, eps: float) -> int | None:
    """The first recorded step ``k`` with ``|grad f(w_k)| <= eps`` in a gradient-descent run, or ``None`` (chapter 2).

    Compare with :func:`gdlab.bounds.steps_to_stationary_bound`. With ``record_every > 1`` the answer is the first
    *recorded* such step, an upper bound on the true one.
    """
    if not isinstance(traj, Trajectory) or traj.method != "descent":
        raise ValueError("traj must be a Trajectory returned by gradient_descent")
    eps = as_float("eps", eps)
    hits = np.flatnonzero(traj.grad_norm <= eps)
    return int(traj.k[hits[0]]) if hits.size else None


def flow_interpolant(traj: Trajectory, loss_grad: LossGrad) -> Callable[[np.ndarray], np.ndarray]:
    """The gradient flow of ``traj`` at arbitrary times: ``times (T',) -> w (T', p)`` (chapter 2 explorer).

    Cubic Hermite interpolation between the records, using the exact velocities ``gamma' = -grad f(gamma)``
    (error O(h^4) for record spacing h, O(h) across a ReLU kink, where the velocity jumps). Beyond the last record
    the last point is returned: once the loss is ``l(T)``, Result 1.5 applied from time T bounds the further motion
    over a time s by ``sqrt(s l(T))``, negligible when the run ended at a tiny loss. Times must be >= 0.
    """
    from scipy.interpolate import CubicHermiteSpline

    if not isinstance(traj, Trajectory) or traj.method != "flow":
        raise ValueError("traj must be a Trajectory returned by gradient_flow")
    if not callable(loss_grad):
        raise ValueError("loss_grad must be a callable w -> (f(w), grad f(w))")
    V = -np.array([_safe_loss_grad(loss_grad, w)[1] for w in traj.w])
    spline = CubicHermiteSpline(traj.t, traj.w, V, axis=0, extrapolate=False)
    t_end = float(traj.t[-1])

    def at(times) -> np.ndarray:
        times = as_array("times", times, ndim=1)
        if np.any(times < 0):
            raise ValueError("times must be >= 0")
        W = spline(np.minimum(times, t_end))
        return W

    return at


def loss_increases(traj: Trajectory, floor: float = 0.0) -> np.ndarray:
    """Recorded steps ``k`` at which the loss went up, ``f(w_k) > f(w_{k-1})``, ignoring records where both losses are
    at or below ``floor`` (round-off level); returns an int array (chapter 2: monotone descent below 2/L).
    """
    if not isinstance(traj, Trajectory):
        raise ValueError("traj must be a Trajectory")
    floor = as_float("floor", floor, low=0.0, low_open=False)
    up = (traj.loss[1:] > traj.loss[:-1]) & (np.maximum(traj.loss[1:], traj.loss[:-1]) > floor)
    return traj.k[1:][up] if traj.method == "descent" else np.flatnonzero(up) + 1
