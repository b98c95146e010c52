"""Saddle points: random initialisation, noise and perturbations (chapter 6, compute layer).

Sections, in the order of the chapter:

* the worked strict-saddle example ``f(x, y) = x^2/2 + y^4/4 - y^2/2`` (:cite:`lee2016gradient`): its gradient map
  ``g(w) = w - alpha grad f(w)``, basins of gradient descent, escape times, and the fold of ``g`` for large steps;
* the escape algorithms: noisy GD (:cite:`ge2015escaping`), perturbed GD (:cite:`jin2017escape`), SGD on a finite sum
  and its noise covariance, SGLD at a fixed noise level and with the annealed schedule of :cite:`gelfand1991recursive`;
* the non-strict saddle at 0 of the depth-N scalar linear network ``(w_1 ... w_N - 1)^2 / 2``.

Every function is pure: arrays and a seed (or ``numpy.random.Generator``) in, arrays or a small NamedTuple out.
A run that blows up or leaves the region where its function is defined stops and says so in its result, by the
convention of :mod:`gdlab.runs` (``diverged_at``).
The chain of saddles of :cite:`du2017exponential`, the chapter's other example, has a module of its own:
:mod:`gdlab.chain`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._checks import as_array, as_float, as_int, as_rng
from .runs import NOT_DIVERGED, divergence_threshold, diverges, record_steps

#: SGLD chains, which have no objective to compare with :func:`gdlab.runs.divergence_threshold`, are dropped (NaN)
#: once they leave this ball: far beyond every region the chapter looks at.
BLOW_UP = 1e6

# ----------------------------------------------------------------------------------------------------------
# The worked example f(x, y) = x^2/2 + y^4/4 - y^2/2
# ----------------------------------------------------------------------------------------------------------

#: Critical points of the worked example: the strict saddle and the two minimisers (f = -1/4).
EXAMPLE_SADDLE = np.array([0.0, 0.0])
EXAMPLE_MINIMA = np.array([[0.0, 1.0], [0.0, -1.0]])
EXAMPLE_MIN_VALUE = -0.25


def _points(w) -> np.ndarray:
    w = as_array("w", w)
    if w.ndim == 0 or w.shape[-1] != 2:
        raise ValueError(f"w must have shape (..., 2); got {w.shape}")
    return w


def example_f(w) -> np.ndarray:
    """The worked example ``f(x, y) = x^2/2 + y^4/4 - y^2/2`` (chapter 6); ``w`` (..., 2) -> (...).

    Saddle at 0 (Hessian ``diag(1, -1)``), minima ``(0, +-1)`` with value -1/4.
    """
    w = _points(w)
    x, y = w[..., 0], w[..., 1]
    return 0.5 * x**2 + 0.25 * y**4 - 0.5 * y**2


def example_value(w) -> float:
    """:func:`example_f` at one point ``w`` (2,), as a float (the objective handed to the escape algorithms)."""
    return float(example_f(w))


def example_grad(w) -> np.ndarray:
    """Gradient ``(x, y^3 - y)`` of :func:`example_f`; ``w`` (..., 2) -> (..., 2)."""
    w = _points(w)
    return np.stack([w[..., 0], w[..., 1] ** 3 - w[..., 1]], axis=-1)


def example_hessian(w) -> np.ndarray:
    """Hessian ``diag(1, 3 y^2 - 1)`` of :func:`example_f`; ``w`` (..., 2) -> (..., 2, 2)."""
    w = _points(w)
    H = np.zeros(w.shape + (2,))
    H[..., 0, 0] = 1.0
    H[..., 1, 1] = 3.0 * w[..., 1] ** 2 - 1.0
    return H


def example_smoothness(y_max: float) -> float:
    """``L = max |Hess f|_2 = max(1, 3 y_max^2 - 1)`` on the strip ``|y| <= y_max`` (chapter 6).

    The example's gradient is not globally Lipschitz (``y^3`` grows), so every statement with ``alpha < 1/L``
    refers to a strip that gradient descent does not leave.
    """
    y_max = as_float("y_max", y_max)
    return max(1.0, 3.0 * y_max**2 - 1.0)


def gd_map(w, alpha: float) -> np.ndarray:
    """The gradient map ``g(w) = w - alpha grad f(w) = ((1 - alpha) x, (1 + alpha) y - alpha y^3)`` of the worked
    example; ``w`` (..., 2) -> (..., 2). Gradient descent is ``w_{k+1} = g(w_k)``."""
    alpha = as_float("alpha", alpha)
    w = _points(w)
    x, y = w[..., 0], w[..., 1]
    return np.stack([(1.0 - alpha) * x, (1.0 + alpha) * y - alpha * y**3], axis=-1)


def gd_map_det(w, alpha: float) -> np.ndarray:
    """``det Dg(w) = (1 - alpha)(1 + alpha - 3 alpha y^2)`` for the worked example; ``w`` (..., 2) -> (...).

    ``g`` is a local diffeomorphism where this is non-zero; it vanishes on ``alpha = 1`` and on the fold lines
    ``|y| = fold_y(alpha)``.
    """
    alpha = as_float("alpha", alpha)
    y = _points(w)[..., 1]
    return (1.0 - alpha) * (1.0 + alpha - 3.0 * alpha * y**2)


def fold_y(alpha: float) -> float:
    """``|y|`` of the fold lines of the worked example's gradient map, ``sqrt((1 + alpha) / (3 alpha))``, where
    ``alpha (3 y^2 - 1) = 1``, i.e. where the step reaches ``1 / lambda_max(Hess f)``."""
    alpha = as_float("alpha", alpha)
    return float(np.sqrt((1.0 + alpha) / (3.0 * alpha)))


def landing_y(alpha: float) -> float:
    """The start height ``y0 = sqrt(1 + 1/alpha)`` from which one gradient step lands exactly on the saddle's stable
    set (the x-axis) of the worked example: ``(1 + alpha) y0 - alpha y0^3 = 0``."""
    alpha = as_float("alpha", alpha)
    return float(np.sqrt(1.0 + 1.0 / alpha))


def example_path(w0, alpha: float, steps: int) -> np.ndarray:
    """The gradient-descent path ``w0, g(w0), ..., g^steps(w0)`` on the worked example; ``w0`` (2,) -> (steps+1, 2)."""
    w = _points(w0)
    if w.shape != (2,):
        raise ValueError(f"w0 must have shape (2,); got {w.shape}")
    steps = as_int("steps", steps, low=0)
    path = np.empty((steps + 1, 2))
    path[0] = w
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(steps):
            path[k + 1] = gd_map(path[k], alpha)
    return path


class Basins(NamedTuple):
    """Where gradient descent from each start ends (chapter 6).

    ``w`` (n, 2) final iterates (NaN for a diverged run); ``label`` (n,) int: 0 at the saddle, +1 at the minimum
    (0, 1), -1 at (0, -1), 2 not settled within the steps, 3 diverged (:mod:`gdlab.runs`: ``f`` went above
    :func:`gdlab.runs.divergence_threshold` of its start value or stopped being finite).
    """

    w: np.ndarray
    label: np.ndarray


def example_basins(starts, alpha: float, steps: int, tol: float = 1e-6) -> Basins:
    """Run gradient descent on the worked example from every row of ``starts`` (n, 2), vectorised over starts,
    and label where each run ends (within ``tol`` of a critical point after ``steps`` steps)."""
    W = as_array("starts", starts, shape=(None, 2)).copy()
    alpha = as_float("alpha", alpha)
    steps = as_int("steps", steps, low=0)
    tol = as_float("tol", tol)
    alive = np.ones(W.shape[0], dtype=bool)
    limit = divergence_threshold(example_f(W))
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):  # all rows step together until one blows up; from then on only the live ones
            if alive.all():
                W = gd_map(W, alpha)
            else:
                W[alive] = gd_map(W[alive], alpha)
            alive &= ~diverges(example_f(W), limit)
    label = np.full(W.shape[0], 2)
    label[np.linalg.norm(W - EXAMPLE_SADDLE, axis=1) < tol] = 0
    label[np.linalg.norm(W - EXAMPLE_MINIMA[0], axis=1) < tol] = 1
    label[np.linalg.norm(W - EXAMPLE_MINIMA[1], axis=1) < tol] = -1
    label[~alive] = 3
    W[~alive] = np.nan
    return Basins(W, label)


# ----------------------------------------------------------------------------------------------------------
# Escape time near a strict saddle
# ----------------------------------------------------------------------------------------------------------


def escape_law(eps, alpha: float, gamma: float, r: float) -> np.ndarray:
    """The escape-time law ``log(r / eps) / log(1 + alpha gamma)`` (chapter 6): steps for gradient descent to
    leave the ball of radius ``r`` around a strict saddle with Hessian eigenvalue ``-gamma``, started ``eps`` off
    its stable manifold, if the dynamics were linear. ``eps`` (k,) -> (k,)."""
    eps = as_array("eps", eps)
    alpha = as_float("alpha", alpha)
    gamma = as_float("gamma", gamma)
    r = as_float("r", r)
    if np.any(eps <= 0):
        raise ValueError("eps must be positive")
    return np.log(r / eps) / np.log1p(alpha * gamma)


def escape_law_deficit(alpha: float, r: float) -> float:
    """How many steps the escape-time law (chapter 6, eq-escape-law) undercounts on the example, in the limit of a
    start at ``eps -> 0`` from the stable set, treating ``log |y|`` as continuous in the step count.

    The exact map multiplies ``y`` by ``1 + alpha - alpha y^2`` per step, not by ``1 + alpha``: the steps from ``y`` to
    ``y + dy`` are ``dy / (y log(1 + alpha - alpha y^2))`` instead of ``dy / (y log(1 + alpha))``. The difference,
    integrated from 0 (where the integrand vanishes like ``y``) to ``r``, does not depend on ``eps``. Needs
    ``0 < alpha <= 1`` and ``0 < r < 1`` (beyond ``|y| = 1`` the cubic term stops the growth).
    """
    from scipy.integrate import quad

    alpha = as_float("alpha", alpha, high=1.0)
    r = as_float("r", r, high=1.0, high_open=True)
    lg = np.log1p(alpha)

    def integrand(y: float) -> float:
        return (1.0 / np.log1p(alpha - alpha * y * y) - 1.0 / lg) / y if y > 0 else 0.0

    return float(quad(integrand, 0.0, r, epsabs=1e-13, epsrel=1e-12)[0])


def escape_steps(grad: Callable[[np.ndarray], np.ndarray], w_saddle, offsets, alpha: float, r: float,
                 max_steps: int = 100_000) -> np.ndarray:
    """Steps gradient descent needs to leave the ball ``|w - w_saddle| < r`` from each start ``w_saddle + offsets[i]``
    (chapter 6); vectorised over the starts. ``grad`` maps (n, p) -> (n, p); ``offsets`` (n, p).

    Returns (n,) ints; -1 where the run did not leave the ball within ``max_steps`` steps (for instance a start
    exactly on the stable manifold).
    """
    _callable("grad", grad)
    w_saddle = as_array("w_saddle", w_saddle, ndim=1)
    offsets = as_array("offsets", offsets, shape=(None, w_saddle.size))
    alpha = as_float("alpha", alpha)
    r = as_float("r", r)
    max_steps = as_int("max_steps", max_steps)
    if np.any(np.linalg.norm(offsets, axis=1) >= r):
        raise ValueError("offsets must lie inside the ball of radius r")
    W = w_saddle + offsets
    out = np.full(W.shape[0], -1)
    inside = np.ones(W.shape[0], dtype=bool)
    for k in range(1, max_steps + 1):
        W[inside] = W[inside] - alpha * grad(W[inside])
        left = inside & (np.linalg.norm(W - w_saddle, axis=1) >= r)
        out[left] = k
        inside &= ~left
        if not inside.any():
            break
    return out


class EscapeFit(NamedTuple):
    """Least-squares fit ``steps = intercept + slope log(1/eps)``; ``slope_law = 1 / log(1 + alpha gamma)``."""

    slope: float
    intercept: float
    slope_law: float


def fit_escape_law(eps, steps, alpha: float, gamma: float) -> EscapeFit:
    """Fit the measured escape steps against ``log(1/eps)`` and return the slope with the law's ``1/log(1+alpha gamma)``
    (chapter 6). ``eps``, ``steps`` (k,) with k >= 2."""
    eps = as_array("eps", eps, ndim=1)
    steps = as_array("steps", steps, shape=eps.shape)
    if eps.size < 2 or np.any(eps <= 0) or np.any(steps < 0):
        raise ValueError("eps must hold at least 2 positive values and steps non-negative ones")
    slope, intercept = np.polyfit(np.log(1.0 / eps), steps, 1)
    return EscapeFit(float(slope), float(intercept), float(1.0 / np.log1p(as_float("alpha", alpha)
                                                                               * as_float("gamma", gamma))))


# ----------------------------------------------------------------------------------------------------------
# Escape algorithms: noisy GD, perturbed GD, SGD, SGLD
# ----------------------------------------------------------------------------------------------------------


class Run(NamedTuple):
    """A stepwise run of an escape algorithm (chapter 6): ``x`` (T+1, p) iterates (after any perturbation, before
    the step), ``f`` (T+1,) objective values, ``diverged_at`` the step at which the iterate or ``f`` there stopped
    being finite (``f`` is NaN outside its function's domain) or ``f`` went above
    :func:`gdlab.runs.divergence_threshold` of ``f(x0)`` (-1: never; :mod:`gdlab.runs`: the records end before it,
    ``T = diverged_at - 1``)."""

    x: np.ndarray
    f: np.ndarray
    diverged_at: int

    @property
    def diverged(self) -> bool:
        """Whether the run diverged (``diverged_at >= 0``)."""
        return self.diverged_at >= 0


def unit_sphere(n: int, p: int, seed) -> np.ndarray:
    """``n`` points uniform on the unit sphere of ``R^p``; returns (n, p)."""
    n = as_int("n", n, low=0)
    p = as_int("p", p)
    z = as_rng(seed).normal(size=(n, p))
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def uniform_ball(n: int, p: int, radius: float, seed) -> np.ndarray:
    """``n`` points uniform in the ball of radius ``radius`` in ``R^p``; returns (n, p)."""
    radius = as_float("radius", radius)
    rng = as_rng(seed)
    directions = unit_sphere(n, p, rng)
    return radius * directions * rng.uniform(size=(n, 1)) ** (1.0 / p)


def _callable(name: str, fn) -> None:
    if not callable(fn):
        raise ValueError(f"{name} must be a callable; got {type(fn).__name__}")


def _run_checks(f, grad, x0, eta, steps, *, x0_name: str = "x0", eta_name: str = "eta"):
    _callable("f", f)
    _callable("grad", grad)
    return (as_array(x0_name, x0, ndim=1).copy(), as_float(eta_name, eta), as_int("steps", steps, low=0))


def _value_grad(f, grad, x: np.ndarray, with_grad: bool = True) -> tuple[float, np.ndarray | None]:
    """``f(x)`` and (``with_grad``) ``grad f(x)``, with floating-point warnings silenced; NaN at a non-finite ``x``."""
    if not np.all(np.isfinite(x)):
        return np.nan, np.full(x.shape, np.nan)
    with np.errstate(all="ignore"):
        return float(f(x)), (np.asarray(grad(x), dtype=float) if with_grad else None)


def _start_value(f, x0: np.ndarray) -> tuple[float, float]:
    """``f(x0)`` and the divergence threshold of a run from ``x0`` (ValueError if ``f(x0)`` is not finite)."""
    f0 = _value_grad(f, None, x0, with_grad=False)[0]
    if not np.isfinite(f0):
        raise ValueError(f"x0 must be a point where f is finite; got f(x0) = {f0}")
    return f0, divergence_threshold(f0)


def noisy_gd(f, grad, x0, eta: float, steps: int, seed, noise: float = 1.0) -> Run:
    """Noisy gradient descent of :cite:`ge2015escaping`: ``x <- x - eta (grad f(x) + noise * n)``, ``n`` uniform on the
    unit sphere (chapter 6). ``x0`` (p,); returns a :class:`Run`."""
    x, eta, steps = _run_checks(f, grad, x0, eta, steps)
    noise = as_float("noise", noise, low=0.0, low_open=False)
    n = unit_sphere(steps, x.size, seed)
    return _iterate(f, lambda x_, k: x_ - eta * (grad(x_) + noise * n[k]), x, steps)


def _iterate(f, step_fn, x, steps) -> Run:
    X = np.empty((steps + 1, x.size))
    F = np.empty(steps + 1)
    F[0], limit = _start_value(f, x)
    X[0] = x
    for k in range(steps):
        with np.errstate(all="ignore"):
            X[k + 1] = step_fn(X[k], k)
        F[k + 1] = _value_grad(f, None, X[k + 1], with_grad=False)[0]
        if diverges(F[k + 1], limit):
            return Run(X[: k + 1], F[: k + 1], k + 1)
    return Run(X, F, NOT_DIVERGED)


@dataclass(frozen=True)
class PGDParameters:
    """The hyper-parameters of perturbed gradient descent (chapter 6): step ``eta``, perturbation radius ``r``,
    gradient threshold ``g_thres``, decrease threshold ``f_thres`` (None: never stop), waiting time ``t_thres``,
    and ``chi`` (NaN when the parameters were set by hand)."""

    eta: float
    r: float
    g_thres: float
    f_thres: float | None
    t_thres: int
    chi: float = float("nan")

    def __post_init__(self):
        object.__setattr__(self, "eta", as_float("eta", self.eta))
        object.__setattr__(self, "r", as_float("r", self.r))
        object.__setattr__(self, "g_thres", as_float("g_thres", self.g_thres, low=0.0, low_open=False))
        if self.f_thres is not None:
            object.__setattr__(self, "f_thres", as_float("f_thres", self.f_thres, low=0.0, low_open=False))
        object.__setattr__(self, "t_thres", as_int("t_thres", self.t_thres, low=0))


def pgd_parameters(d: int, ell: float, rho: float, eps: float, delta_f: float, delta: float = 0.1,
                   c: float = 1.0) -> PGDParameters:
    """The parameter choice of :cite:`jin2017escape` for an ``ell``-gradient-Lipschitz, ``rho``-Hessian-Lipschitz
    ``f`` on ``R^d`` with ``f(x0) - f* <= delta_f``, target accuracy ``eps`` and failure probability ``delta``:

    ``chi = 3 max(log(d ell delta_f / (c eps^2 delta)), 4)``, ``eta = c / ell``, ``r = sqrt(c) eps / (chi^2 ell)``,
    ``g_thres = sqrt(c) eps / chi^2``, ``f_thres = (c / chi^3) sqrt(eps^3 / rho)``,
    ``t_thres = ceil((chi / c^2) ell / sqrt(rho eps))`` (rounded up to whole steps).
    """
    d = as_int("d", d)
    ell, rho, eps = as_float("ell", ell), as_float("rho", rho), as_float("eps", eps)
    delta_f = as_float("delta_f", delta_f)
    delta = as_float("delta", delta, high=1.0, high_open=True)
    c = as_float("c", c)
    chi = 3.0 * max(np.log(d * ell * delta_f / (c * eps**2 * delta)), 4.0)
    return PGDParameters(
        eta=c / ell,
        r=np.sqrt(c) * eps / (chi**2 * ell),
        g_thres=np.sqrt(c) * eps / chi**2,
        f_thres=(c / chi**3) * np.sqrt(eps**3 / rho),
        t_thres=int(np.ceil((chi / c**2) * ell / np.sqrt(rho * eps))),
        chi=float(chi),
    )


class PGDRun(NamedTuple):
    """A run of perturbed gradient descent (chapter 6).

    ``x`` (T+1, p) the iterates ``x_t`` before any perturbation at step t; ``grad_norm`` (T+1,) ``|grad f(x_t)|``
    there; ``perturbed`` (T+1,) bool, whether a perturbation was added at step t; ``f`` (T+1,) the objective at
    ``x_t``; ``returned`` the step t at which the stopping rule fired (-1: it did not), ``x_out`` (p,) the point
    returned (``x~`` if it fired, else the last iterate); ``diverged_at`` as in :class:`Run` (a non-finite gradient
    counts too; the records end before it and ``x_out`` is the iterate at which it was detected).
    """

    x: np.ndarray
    f: np.ndarray
    grad_norm: np.ndarray
    perturbed: np.ndarray
    returned: int
    x_out: np.ndarray
    diverged_at: int

    @property
    def diverged(self) -> bool:
        """Whether the run diverged (``diverged_at >= 0``)."""
        return self.diverged_at >= 0


def perturbed_gd(f, grad, x0, params: PGDParameters, steps: int, seed) -> PGDRun:
    """Perturbed gradient descent exactly as :cite:`jin2017escape` (chapter 6). With ``t_noise = -t_thres - 1``, at
    each t = 0, 1, ...:

    1. if ``|grad f(x_t)| <= g_thres`` and ``t - t_noise > t_thres``: ``x~ = x_t``, ``t_noise = t`` and
       ``x_t = x~ + xi`` with ``xi`` uniform in the ball of radius ``r``;
    2. if ``t - t_noise == t_thres`` and ``f(x_t) - f(x~) > -f_thres``: return ``x~`` (skipped if ``f_thres`` is None);
    3. ``x_{t+1} = x_t - eta grad f(x_t)``.
    """
    if not isinstance(params, PGDParameters):
        raise ValueError("params must be a PGDParameters (see pgd_parameters)")
    x, eta, steps = _run_checks(f, grad, x0, params.eta, steps)
    rng = as_rng(seed)
    p = x.size
    X = np.empty((steps + 1, p))
    F = np.empty(steps + 1)
    G = np.empty(steps + 1)
    P = np.zeros(steps + 1, dtype=bool)
    t_noise, x_tilde, f_tilde = -params.t_thres - 1, None, np.nan
    limit = _start_value(f, x)[1]
    for t in range(steps + 1):
        fx, g = _value_grad(f, grad, x)
        if diverges(fx, limit) or not np.all(np.isfinite(g)):
            return PGDRun(X[:t], F[:t], G[:t], P[:t], NOT_DIVERGED, x, t)
        with np.errstate(over="ignore"):  # a finite gradient can still have an overflowing norm
            X[t], F[t], G[t] = x, fx, np.linalg.norm(g)
        if G[t] <= params.g_thres and t - t_noise > params.t_thres:
            x_tilde, f_tilde, t_noise = x, fx, t
            x = x_tilde + uniform_ball(1, p, params.r, rng)[0]
            P[t] = True
            fx, g = _value_grad(f, grad, x)
        if params.f_thres is not None and t - t_noise == params.t_thres and fx - f_tilde > -params.f_thres:
            return PGDRun(X[: t + 1], F[: t + 1], G[: t + 1], P[: t + 1], t, x_tilde.copy(), NOT_DIVERGED)
        if t == steps:
            break
        with np.errstate(all="ignore"):
            x = x - eta * g
    return PGDRun(X, F, G, P, NOT_DIVERGED, x.copy(), NOT_DIVERGED)


# --- SGD on a finite sum -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FiniteSumSaddle:
    """``f(w) = (1/m) sum_i f_i(w)`` with ``f_i(w) = w^T A_i w / 2 + |w|^4 / 4`` (chapter 6): every ``f_i`` is
    stationary at 0, where ``f`` has a strict saddle (``mean A_i = diag(1, ..., 1, -gamma)``). ``A`` (m, p, p)."""

    A: np.ndarray

    def f(self, w) -> float:
        """``f(w)``; ``w`` (p,)."""
        w = np.asarray(w, dtype=float)
        return float(0.5 * w @ self.A.mean(axis=0) @ w + 0.25 * (w @ w) ** 2)

    def grad(self, w) -> np.ndarray:
        """``grad f(w) = mean(A_i) w + |w|^2 w``; ``w`` (p,) -> (p,)."""
        w = np.asarray(w, dtype=float)
        return self.A.mean(axis=0) @ w + (w @ w) * w

    def grads(self, w) -> np.ndarray:
        """All per-sample gradients ``grad f_i(w) = A_i w + |w|^2 w``; ``w`` (p,) -> (m, p)."""
        w = np.asarray(w, dtype=float)
        return self.A @ w + (w @ w) * w


def finite_sum_saddle(p: int, m: int, seed, gamma: float = 1.0, spread: float = 1.0) -> FiniteSumSaddle:
    """A random :class:`FiniteSumSaddle`: ``A_i = diag(1, ..., 1, -gamma) + spread * (S_i - mean S)`` with ``S_i``
    symmetric Gaussian, so the mean is exactly the saddle's Hessian."""
    p, m = as_int("p", p, low=2), as_int("m", m, low=2)
    gamma = as_float("gamma", gamma)
    spread = as_float("spread", spread, low=0.0, low_open=False)
    Z = as_rng(seed).normal(size=(m, p, p))
    S = 0.5 * (Z + Z.transpose(0, 2, 1))
    A = np.diag(np.r_[np.ones(p - 1), -gamma]) + spread * (S - S.mean(axis=0))
    return FiniteSumSaddle(A)


def first_below(f_values, level: float) -> int:
    """The first index at which ``f_values`` (T,) is at most ``level``, -1 if never (chapter 6: escape times of
    SGD and noisy GD from the stable set, counted until ``f <= level``)."""
    f_values = np.asarray(f_values, dtype=float)
    if f_values.ndim != 1:
        raise ValueError(f"f_values must have shape (T,); got {f_values.shape}")
    if isinstance(level, bool) or not np.isfinite(level):
        raise ValueError(f"level must be a finite number; got {level!r}")
    hit = np.nonzero(f_values <= level)[0]
    return int(hit[0]) if hit.size else -1


def sgd_noise_covariance(grads_w: np.ndarray) -> np.ndarray:
    """Covariance ``(1/m) sum_i (g_i - g)(g_i - g)^T`` of one uniformly sampled gradient around the full gradient
    ``g`` (chapter 6): the noise covariance of SGD at a point. ``grads_w`` (m, p) -> (p, p); rank at most m - 1."""
    G = as_array("grads_w", grads_w, ndim=2)
    Z = G - G.mean(axis=0)
    return Z.T @ Z / G.shape[0]


def sgd(problem: FiniteSumSaddle, w0, eta: float, steps: int, seed) -> Run:
    """Stochastic gradient descent ``w <- w - eta grad f_i(w)``, ``i`` uniform in 1..m (chapter 6)."""
    if not isinstance(problem, FiniteSumSaddle):
        raise ValueError("problem must be a FiniteSumSaddle")
    w, eta, steps = _run_checks(problem.f, problem.grad, w0, eta, steps, x0_name="w0")
    if w.size != problem.A.shape[1]:
        raise ValueError(f"w0 must have shape ({problem.A.shape[1]},); got {w.shape}")
    idx = as_rng(seed).integers(problem.A.shape[0], size=steps)
    return _iterate(problem.f, lambda w_, k: w_ - eta * (problem.A[idx[k]] @ w_ + (w_ @ w_) * w_), w, steps)


# --- SGLD --------------------------------------------------------------------------------------------------


def sgld(grad, x0, a: float, eps: float, steps: int, seed) -> np.ndarray:
    """SGLD at a fixed noise level (chapter 6): ``x <- x - a grad f(x) + eps sqrt(a) W``, ``W ~ N(0, I)``, for many
    independent chains at once. ``x0`` (n, p) starts, ``grad`` (n, p) -> (n, p); returns the final states (n, p).

    For small ``a`` the chains' law tends to the density proportional to ``exp(-2 f / eps^2)``, the stationary law of
    ``dx = -grad f dt + eps dB``. Chains that blow up come back as NaN rows.
    """
    X = as_array("x0", x0, ndim=2).copy()
    a, eps = as_float("a", a), as_float("eps", eps, low=0.0, low_open=False)
    steps = as_int("steps", steps, low=0)
    _callable("grad", grad)
    rng = as_rng(seed)
    scale = eps * np.sqrt(a)
    alive = np.ones(X.shape[0], dtype=bool)
    for _ in range(steps):  # the noise is drawn for every chain, so a chain's path does not depend on the others
        W = rng.standard_normal(X.shape)
        with np.errstate(over="ignore", invalid="ignore"):
            if alive.all():
                X = X - a * grad(X) + scale * W
            else:
                X[alive] = X[alive] - a * grad(X[alive]) + scale * W[alive]
            alive &= np.all(np.abs(X) < BLOW_UP, axis=1)
    X[~alive] = np.nan
    return X


class SGLDMixing(NamedTuple):
    """How fast SGLD chains forget their start (chapter 6): at the times ``t`` (T,), the total-variation distance
    ``tv`` (T,) between the chains' histogram and ``exp(-2 f / eps^2)``, and the share ``below`` (T,) of chains with
    ``x < 0``; ``x`` (n, 1) the chains at the last time."""

    t: np.ndarray
    tv: np.ndarray
    below: np.ndarray
    x: np.ndarray


def sgld_mixing(grad, f, x0, a: float, eps: float, times, edges, seed) -> SGLDMixing:
    """Run :func:`sgld` for one-dimensional chains ``x0`` (n, 1) and record, at each of the increasing ``times`` (T,)
    (in units of ``a`` times steps, each rounded to a whole number of steps), the total variation to the Gibbs law on
    the bins ``edges`` (:func:`total_variation`) and the share of chains below 0. Segment j uses the seed
    ``[seed, j]``, so the result does not depend on which times are recorded before it."""
    X = as_array("x0", x0, ndim=2)
    if X.shape[1] != 1:
        raise ValueError(f"x0 must have shape (n, 1); got {X.shape}")
    a = as_float("a", a)
    times = as_array("times", times, ndim=1)
    if times.size == 0 or np.any(times < 0) or np.any(np.diff(times) <= 0):
        raise ValueError("times must be a non-empty increasing array of non-negative times")
    seed = as_int("seed", seed, low=0)
    steps = np.rint(times / a).astype(int)
    tv, below, done = [], [], 0
    for j, k in enumerate(steps):
        X = sgld(grad, X, a, eps, int(k - done), seed=np.random.default_rng([seed, j]))
        done = int(k)
        tv.append(total_variation(X[:, 0], edges, f, eps))
        below.append(float(np.mean(X[:, 0] < 0)))
    return SGLDMixing(steps * a, np.array(tv), np.array(below), X)


def sgld_path(f, grad, x0, a: float, eps: float, steps: int, seed) -> Run:
    """One SGLD chain ``x <- x - a grad f(x) + eps sqrt(a) W`` with its path (chapter 6); ``x0`` (p,)."""
    x, a, steps = _run_checks(f, grad, x0, a, steps, eta_name="a")
    eps = as_float("eps", eps, low=0.0, low_open=False)
    W = as_rng(seed).standard_normal((steps, x.size))
    return _iterate(f, lambda x_, k: x_ - a * grad(x_) + eps * np.sqrt(a) * W[k], x, steps)


def gelfand_mitter_schedule(k, A: float, B: float) -> tuple[np.ndarray, np.ndarray]:
    """The annealing schedule of :cite:`gelfand1991recursive`: ``a_k = A / k``, ``b_k = sqrt(B) / sqrt(k log log k)``
    for iterations ``k`` (array, all > e^e so that ``log log k >= 1``). Returns ``(a_k, b_k)``; the noise level
    ``eps_k = b_k / sqrt(a_k) = sqrt((B / A) / log log k)`` decreases to 0, very slowly."""
    k = as_array("k", k)
    A, B = as_float("A", A), as_float("B", B)
    if np.any(k <= np.e**np.e):
        raise ValueError(f"k must be > e^e = {np.e ** np.e:.2f} (so that log log k >= 1)")
    return A / k, np.sqrt(B / (k * np.log(np.log(k))))


def annealed_sgld(grad, x0, A: float, B: float, steps: int, seed, k0: int = 16, records: int = 50):
    """SGLD with the Gelfand-Mitter schedule (chapter 6): ``x_{k+1} = x_k - a_k grad f(x_k) + b_k W_k`` for
    ``k = k0, ..., k0 + steps - 1``, many chains at once (``x0`` (n, p)). Returns ``(k, X)``: ``k`` (R,) recorded
    iterations and ``X`` (R, n, p) the chains there."""
    _callable("grad", grad)
    X = as_array("x0", x0, ndim=2).copy()
    steps = as_int("steps", steps, low=1)
    k0 = as_int("k0", k0, low=16)
    records = as_int("records", records, low=2)
    ks = np.arange(k0, k0 + steps)
    a, b = gelfand_mitter_schedule(ks, A, B)
    rng = as_rng(seed)
    keep = set(record_steps(steps, records).tolist())
    rec_k, rec_X = [], []
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps + 1):
            if t in keep:
                rec_k.append(k0 + t)
                rec_X.append(X.copy())
            if t == steps:
                break
            X = X - a[t] * grad(X) + b[t] * rng.standard_normal(X.shape)
    return np.array(rec_k), np.array(rec_X)


class TiltedWell(NamedTuple):
    """The tilted double well ``f(x) = x^4 / 4 - x^2 / 2 + tilt x`` (chapter 6): its critical points ``x_global``,
    ``x_saddle``, ``x_local`` (the minimum on the side opposite to the tilt is the global one), the barrier
    ``dU = f(x_saddle) - f(x_local)`` seen from the non-global minimum, and Kramers' prefactor
    ``c = sqrt(f''(x_local) |f''(x_saddle)|) / (2 pi)``."""

    x_global: float
    x_saddle: float
    x_local: float
    dU: float
    prefactor: float


def tilted_well(tilt: float) -> TiltedWell:
    """Critical points and barrier of ``x^4 / 4 - x^2 / 2 + tilt x`` for ``0 < tilt < 2 / (3 sqrt 3)`` (three real
    critical points; see :class:`TiltedWell`)."""
    tilt = as_float("tilt", tilt, high=2.0 / (3.0 * np.sqrt(3.0)), high_open=True)
    xl, xs, xr = np.sort(np.roots([1.0, 0.0, -1.0, tilt]).real)

    def f(x):
        return x**4 / 4 - x**2 / 2 + tilt * x

    c = np.sqrt((3 * xr**2 - 1) * abs(3 * xs**2 - 1)) / (2 * np.pi)
    return TiltedWell(float(xl), float(xs), float(xr), float(f(xs) - f(xr)), float(c))


def gelfand_mitter_hazard(k, A: float, B: float, dU: float) -> np.ndarray:
    """Cumulative escape hazard of the Gelfand-Mitter schedule over a barrier ``dU`` (chapter 6):
    ``S_k = sum_{j <= k} a_j exp(-2 dU / eps_j^2)`` over the iterations ``k`` (K,), with ``a_j = A / j`` and
    ``eps_j^2 = (B / A) / log log j``, so each term is ``A / (j (log j)^p)``, ``p = 2 dU A / B``. The series diverges
    iff ``p <= 1``, that is ``B / A >= 2 dU``. Multiplied by Kramers' prefactor it is the expected number of crossings
    of a chain held in the well; returns (K,)."""
    k = as_array("k", k, ndim=1)
    if np.any(k < 16):
        raise ValueError("k must be at least 16 (log log k > 1)")
    A, B, dU = as_float("A", A), as_float("B", B), as_float("dU", dU)
    return np.cumsum(A / k * np.log(k) ** (-2.0 * dU * A / B))


def gibbs_density(f_values, x, eps: float) -> np.ndarray:
    """The density proportional to ``exp(-2 f / eps^2)`` on the 1-D grid ``x`` (k,), from ``f_values`` (k,) = f(x),
    normalised by the trapezoid rule (chapter 6)."""
    x = as_array("x", x, ndim=1)
    fv = as_array("f_values", f_values, shape=x.shape)
    eps = as_float("eps", eps)
    logp = -2.0 * (fv - fv.min()) / eps**2
    p = np.exp(logp)
    return p / np.trapezoid(p, x)


def _edges(edges) -> np.ndarray:
    edges = as_array("edges", edges, ndim=1)
    if edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("edges must be an increasing array of at least 2 values")
    return edges


def _gibbs_cdf(f: Callable[[np.ndarray], np.ndarray], lo: float, hi: float, eps: float, n: int):
    """Grid (n,) on [lo, hi] and the cumulative distribution of the density of :func:`gibbs_density` there."""
    grid = np.linspace(lo, hi, n)
    dens = gibbs_density(f(grid), grid, eps)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
    return grid, cdf / cdf[-1]


def gibbs_bin_masses(f: Callable[[np.ndarray], np.ndarray], edges, eps: float, points_per_bin: int = 64) -> np.ndarray:
    """Probabilities of the bins ``edges`` (k+1,) under the law proportional to ``exp(-2 f / eps^2)`` restricted to
    ``[edges[0], edges[-1]]`` (chapter 6); ``f`` maps (n,) -> (n,). Returns (k,), summing to 1."""
    _callable("f", f)
    edges = _edges(edges)
    points_per_bin = as_int("points_per_bin", points_per_bin)
    grid, cdf = _gibbs_cdf(f, edges[0], edges[-1], as_float("eps", eps), (edges.size - 1) * points_per_bin + 1)
    return np.diff(np.interp(edges, grid, cdf))


def gibbs_sample(f: Callable[[np.ndarray], np.ndarray], lo: float, hi: float, eps: float, n: int, seed,
                 grid_points: int = 20_001) -> np.ndarray:
    """``n`` exact draws (up to the grid) from the law proportional to ``exp(-2 f / eps^2)`` on ``[lo, hi]``, by
    inverting its distribution function (chapter 6): the reference against which SGLD's sampling error is judged."""
    _callable("f", f)
    lo, hi = as_float("lo", lo, low=-np.inf), as_float("hi", hi, low=-np.inf)
    if hi <= lo:
        raise ValueError(f"hi must be larger than lo; got lo = {lo}, hi = {hi}")
    grid, cdf = _gibbs_cdf(f, lo, hi, as_float("eps", eps), as_int("grid_points", grid_points, low=3))
    return np.interp(as_rng(seed).uniform(size=as_int("n", n)), cdf, grid)


def total_variation(samples, edges, f: Callable[[np.ndarray], np.ndarray], eps: float) -> float:
    """Total-variation distance ``(1/2) sum_bins |P_hist - P_gibbs|`` between the histogram of ``samples`` (n,) on the
    bins ``edges`` (k+1,) and :func:`gibbs_bin_masses` (chapter 6). Samples outside the bins count as mass the
    density does not have there."""
    _callable("f", f)
    s = as_array("samples", samples, ndim=1)
    if s.size == 0:
        raise ValueError("samples must hold at least one value")
    edges = _edges(edges)
    counts, _ = np.histogram(s, bins=edges)
    p_hist = counts / s.size
    return 0.5 * float(np.abs(p_hist - gibbs_bin_masses(f, edges, eps)).sum() + (1.0 - p_hist.sum()))


# ----------------------------------------------------------------------------------------------------------
# A ReLU unit: a loss that is not C^2, where random initialization does not avoid the saddle
# ----------------------------------------------------------------------------------------------------------


def _relu_points(W, lam) -> tuple[np.ndarray, float]:
    W = as_array("W", W)
    if W.ndim != 2 or W.shape[1] != 2:
        raise ValueError(f"W must have shape (n, 2); got {W.shape}")
    return W, as_float("lam", lam)


def relu_unit_loss(W, lam: float) -> np.ndarray:
    """``f(w, v) = (v relu(w) - 1)^2 / 2 + lam (w^2 + v^2) / 2``, one ReLU unit fitted to the target 1 at the input 1
    with weight decay ``lam`` (chapter 6); ``W`` (n, 2) rows ``(w, v)`` -> (n,). Not C^2 on the line ``w = 0``, where
    the origin is a saddle (strict from the side ``w > 0`` when ``lam < 1``, a minimum in every direction into ``w < 0``)."""
    W, lam = _relu_points(W, lam)
    w, v = W[:, 0], W[:, 1]
    return 0.5 * (v * np.maximum(w, 0.0) - 1.0) ** 2 + 0.5 * lam * (w**2 + v**2)


def relu_unit_grad(W, lam: float) -> np.ndarray:
    """Gradient of :func:`relu_unit_loss` (the derivative of relu taken as 0 at 0); ``W`` (n, 2) -> (n, 2)."""
    W, lam = _relu_points(W, lam)
    w, v = W[:, 0], W[:, 1]
    h = np.maximum(w, 0.0)
    r = v * h - 1.0
    return np.column_stack([r * v * (w > 0) + lam * w, r * h + lam * v])


def relu_unit_hessian(W, lam: float) -> np.ndarray:
    """Hessian of :func:`relu_unit_loss` off the line ``w = 0``; ``W`` (n, 2) -> (n, 2, 2). For ``w > 0`` it is
    ``[[v^2 + lam, 2 v w - 1], [2 v w - 1, w^2 + lam]]``; for ``w < 0`` it is ``lam I``."""
    W, lam = _relu_points(W, lam)
    w, v = W[:, 0], W[:, 1]
    on = (w > 0).astype(float)
    H = np.empty((W.shape[0], 2, 2))
    H[:, 0, 0] = on * v**2 + lam
    H[:, 1, 1] = on * w**2 + lam
    H[:, 0, 1] = H[:, 1, 0] = on * (2 * v * w - 1)
    return H


def relu_unit_gd(W0, alpha: float, lam: float, steps: int) -> tuple[np.ndarray, float]:
    """Gradient descent with step ``alpha`` on :func:`relu_unit_loss` from each row of ``W0`` (n, 2) for ``steps``
    steps (chapter 6); returns the final iterates (n, 2) and the largest ``|w|`` or ``|v|`` of any iterate."""
    W, lam = _relu_points(W0, lam)
    alpha = as_float("alpha", alpha)
    steps = as_int("steps", steps, low=0)
    W = W.copy()
    largest = float(np.abs(W).max()) if W.size else 0.0
    for _ in range(steps):
        W = W - alpha * relu_unit_grad(W, lam)
        largest = max(largest, float(np.abs(W).max()) if W.size else 0.0)
    return W, largest


# ----------------------------------------------------------------------------------------------------------
# Non-strict saddles: the depth-N scalar linear network
# ----------------------------------------------------------------------------------------------------------


def depth_loss(w) -> np.ndarray:
    """``f(w) = (w_1 w_2 ... w_N - 1)^2 / 2``, the depth-N scalar linear network on one example (chapter 6);
    ``w`` (..., N) -> (...). 0 is a saddle; for N >= 3 its Hessian vanishes (non-strict)."""
    w = as_array("w", w)
    return 0.5 * (np.prod(w, axis=-1) - 1.0) ** 2


def depth_grad(w) -> np.ndarray:
    """Gradient ``(prod(w) - 1) prod_{k != j} w_k`` of :func:`depth_loss`; ``w`` (..., N) -> (..., N)."""
    w = as_array("w", w)
    if w.ndim == 0:
        raise ValueError("w must have shape (..., N) with N >= 1; got a scalar")
    ones = np.ones(w.shape[:-1] + (1,))
    left = np.cumprod(np.concatenate([ones, w[..., :-1]], axis=-1), axis=-1)
    right = np.cumprod(np.concatenate([ones, w[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    others = left * right
    return (np.prod(w, axis=-1, keepdims=True) - 1.0) * others


def depth_escape_steps(N: int, scales, alpha: float, level: float = 0.5, max_steps: int = 10**6) -> np.ndarray:
    """Steps gradient descent on :func:`depth_loss` needs from the balanced start ``w_j = s`` for each ``s`` in
    ``scales`` (k,) until the product ``w_1 ... w_N`` reaches ``level`` (chapter 6); vectorised over ``scales``.
    -1 where ``max_steps`` did not suffice."""
    N = as_int("N", N, low=2, high=64)
    level = as_float("level", level, high=1.0, high_open=True)
    scales = as_array("scales", scales, ndim=1)
    if np.any(scales <= 0) or np.any(scales**N >= level):
        raise ValueError("scales must be positive with s^N < level")
    alpha = as_float("alpha", alpha)
    max_steps = as_int("max_steps", max_steps)
    W = np.repeat(scales[:, None], N, axis=1)
    out = np.full(scales.size, -1)
    active = np.ones(scales.size, dtype=bool)
    for k in range(1, max_steps + 1):
        W[active] -= alpha * depth_grad(W[active])
        done = active & (np.prod(W, axis=1) >= level)
        out[done] = k
        active &= ~done
        if not active.any():
            break
    return out


def depth_escape_law(N: int, scales, alpha: float) -> np.ndarray:
    """Leading-order escape time from the balanced start ``w_j = s`` near 0 (chapter 6): gradient flow on the common
    value obeys ``w' = (1 - w^N) w^{N-1} ~ w^{N-1}``, so ``N = 2``: ``log(1/s) / log(1 + alpha)`` steps (strict saddle,
    exponential escape); ``N >= 3``: ``s^{2-N} / ((N - 2) alpha)`` steps (polynomial in ``1/s``). ``scales`` (k,)."""
    N = as_int("N", N, low=2, high=64)
    scales = as_array("scales", scales, ndim=1)
    if np.any(scales <= 0):
        raise ValueError("scales must be positive")
    alpha = as_float("alpha", alpha)
    if N == 2:
        return np.log(1.0 / scales) / np.log1p(alpha)
    return scales ** (2.0 - N) / ((N - 2) * alpha)
