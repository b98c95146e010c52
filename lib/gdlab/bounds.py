"""Bounds the book states, as functions, so that notebooks and tests compare them with measured numbers.

Chapter 2: the descent lemma and the iteration bound ``T_eps`` for gradient descent on an L-smooth function
(:cite:`nesterov2018lectures`, :cite:`golikov2019slides`), and the two bounds on the distance between gradient
descent and the gradient flow (Euler's method, with the Lipschitz or the one-sided constant). Chapter 3 adds the
learning-health bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._checks import as_array, as_float, as_int, as_rng
from .runs import NOT_DIVERGED, divergence_threshold, diverges


def descent_omega(eta: float, L: float) -> float:
    """``omega(eta) = eta L (1 - eta L / 2)``, positive exactly for ``0 < eta < 2 / L`` (chapter 2).

    The descent lemma reads ``f(x - eta grad f(x)) <= f(x) - (omega(eta) / L) |grad f(x)|^2`` for L-smooth f.
    """
    eta = as_float("eta", eta)
    L = as_float("L", L)
    return eta * L * (1.0 - eta * L / 2.0)


def steps_to_stationary_bound(eps: float, L: float, eta: float, f0: float, f_star: float = 0.0) -> float:
    """``T_eps = L (f(x_0) - f*) / (eps^2 omega(eta))``: after this many steps of GD with step ``eta`` in (0, 2/L) on an
    L-smooth f, some iterate has ``|grad f| <= eps`` (chapter 2). Returns ``inf`` when ``eta >= 2 / L``.
    """
    eps = as_float("eps", eps)
    L = as_float("L", L)
    eta = as_float("eta", eta)
    f0 = as_float("f0", f0, low=-np.inf)
    f_star = as_float("f_star", f_star, low=-np.inf)
    if f_star > f0:
        raise ValueError(f"f_star must be <= f0 = {f0}; got {f_star}")
    omega = descent_omega(eta, L)
    # test eta against 2 / L as well: omega can round to a tiny positive number at eta = 2 / L
    return np.inf if omega <= 0 or eta >= 2.0 / L else L * (f0 - f_star) / (eps**2 * omega)


def descent_lemma_ratio(loss_grad, w, eta: float, L: float) -> float:
    """Actual over guaranteed decrease of one gradient step from ``w`` (p,) (chapter 2, the descent lemma):
    ``(f(w) - f(w - eta grad f(w))) / ((omega(eta) / L) |grad f(w)|^2)`` for ``eta`` in (0, 2/L).

    At least 1 on an L-smooth f; exactly 1 for a quadratic with top eigenvalue L started on its top eigenvector,
    where the descent lemma is an equality (up to round-off of order ``1e-16 / omega(eta)``).
    """
    if not callable(loss_grad):
        raise ValueError("loss_grad must be a callable w -> (f(w), grad f(w))")
    w = as_array("w", w, ndim=1)
    L = as_float("L", L)
    eta = as_float("eta", eta, high=2.0 / L, high_open=True)
    f0, g = loss_grad(w)
    g_sq = float(np.dot(g, g))
    if g_sq == 0.0:
        raise ValueError("w must not be a critical point (grad f(w) = 0): there is no decrease to compare")
    return (f0 - loss_grad(w - eta * g)[0]) / (descent_omega(eta, L) / L * g_sq)


def euler_bound(eta: float, t, K: float, L: float):
    """``K eta / (2 L) (e^{L t} - 1)``: the bound of chapter 2's Euler theorem (thm-euler) on
    ``|w_k - gamma(t)|`` at ``t = k eta``, for ``grad f`` L-Lipschitz and ``|gamma''| <= K``. ``t`` scalar or array.
    """
    eta, K, L = as_float("eta", eta), as_float("K", K, low_open=False), as_float("L", L)
    t = as_array("t", t)
    if np.any(t < 0):
        raise ValueError("t must be >= 0")
    with np.errstate(over="ignore"):
        return _out(K * eta / (2.0 * L) * np.expm1(L * t))


def euler_one_sided_bound(eta: float, grad_norms, Lam: float, mu: float) -> np.ndarray:
    """The one-sided Euler bound of chapter 2 (thm-euler-one-sided) at every step: (K+1,) from ``grad_norms`` (K+1,),
    the norms ``|grad f(w_j)|`` along a gradient-descent run with step ``eta``:

    ``|w_k - gamma(k eta)| <= (Lam eta^2 / 2) e^{max(mu, 0) eta} sum_{j<k} e^{mu (k-1-j) eta} |grad f(w_j)|``,

    for ``|Hess f| <= Lam`` along the iterates' segments and ``lambda_min(Hess f) >= -mu`` between iterates and flow
    (``mu`` any real; ``mu < 0`` when f is strongly convex). Only ``mu``, not ``Lam``, enters an exponent.
    """
    eta = as_float("eta", eta)
    g = as_array("grad_norms", grad_norms, ndim=1)
    if g.size == 0 or np.any(g < 0):
        raise ValueError("grad_norms must be a non-empty 1-D array of norms >= 0")
    Lam = as_float("Lam", Lam, low_open=False)
    mu = as_float("mu", mu, low=-np.inf)
    decay = np.exp(mu * eta)
    sums = np.zeros(g.size)
    for k in range(1, g.size):  # S_k = e^{mu eta} S_{k-1} + |grad f(w_{k-1})|
        sums[k] = decay * sums[k - 1] + g[k - 1]
    return Lam * eta**2 / 2.0 * np.exp(max(mu, 0.0) * eta) * sums


# ----------------------------------------------------------------------------------------------------------
# Chapter 3: learning health and the loss bounds of the two-layer network on one data point (:cite:`gelada2024`)
# ----------------------------------------------------------------------------------------------------------


def _nonneg(name: str, value, positive: bool = True):
    """``value`` as a finite float array (any shape) of positive (or non-negative) numbers."""
    arr = as_array(name, value)
    if np.any(arr <= 0) if positive else np.any(arr < 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'} everywhere; got min {arr.min()!r}")
    return arr


def _out(arr):
    return float(arr) if np.ndim(arr) == 0 else arr


def health_constants(k, m) -> tuple:
    """The article's gradient-health constants ``alpha = 2 k``, ``beta = 4 sqrt(k m)`` for width ``k`` and
    ``|x|^2 = m`` (chapter 3; they assume ``|b0|^2 = k``). Arrays broadcast."""
    k, m = _nonneg("k", k), _nonneg("m", m)
    return _out(2.0 * k), _out(4.0 * np.sqrt(k * m))


def rigorous_health_constants(b0_sq, x_sq) -> tuple:
    """The constants that hold on every draw: ``alpha = 2 |b0|^2``, ``beta = 4 |b0| |x|`` (chapter 3), from
    ``|grad f(w)|^2 / f(w) >= 2|b0|^2 - 4 |b0| |x| |w - w0|``. Arrays broadcast."""
    b0_sq, x_sq = _nonneg("b0_sq", b0_sq, positive=False), _nonneg("x_sq", x_sq)
    return _out(2.0 * b0_sq), _out(4.0 * np.sqrt(b0_sq * x_sq))


def gd_health_factor(alpha: float, L: float, eta: float) -> float:
    """``1 - alpha omega(eta) / L = 1 - alpha eta (1 - eta L / 2)``: one gradient-descent step with step ``eta`` on an
    L-smooth problem that is healthy with constant ``alpha`` multiplies the loss by at most this factor (chapter 3,
    the discrete counterpart of Result 2.1; ``omega`` is :func:`descent_omega`). It is below 1 exactly for
    ``0 < eta < 2 / L`` and smallest, ``1 - alpha / (2 L)``, at ``eta = 1 / L``; a healthy L-smooth ``f >= 0`` has
    ``alpha <= 2 L``, so it is never negative. ``alpha`` must lie in ``[0, 2 L]``."""
    L = as_float("L", L)
    alpha = as_float("alpha", alpha, low=0.0, high=2.0 * L, low_open=False)
    eta = as_float("eta", eta)
    return 1.0 - alpha * descent_omega(eta, L) / L


def health_envelope(t, l0, alpha, beta, rho=1.0):
    """Result 2.2 as a bound on the loss curve: ``l(t) <= l0 exp(g(min(t, t*)))`` with
    ``g(s) = -rho alpha s + (2/3) sqrt(rho) beta sqrt(l0) s^{3/2}`` and ``t* = rho alpha^2 / (beta^2 l0)`` (chapter 3).

    ``rho = 1`` (the default) is the gradient flow: ``l0 exp(g(t))`` itself bounds ``l(t)``; since ``l`` never
    increases, so does its smallest value over ``[0, t]``, which is attained at ``min(t, t*)`` (``g`` falls up to
    ``t*`` and rises after). ``rho`` in ``(0, inf)`` is gradient descent with step ``eta`` at time ``t = k eta`` whose
    steps all satisfy the sufficient-decrease condition ``f(w_{j+1}) <= f(w_j) - rho eta |grad f(w_j)|^2`` (chapter 3,
    the relaxed-health theorem for gradient descent; :func:`sufficient_decrease_ratio` measures ``rho``). It is the
    flow's envelope with ``alpha -> rho alpha`` and ``beta -> sqrt(rho) beta``. Arrays broadcast; ``beta = 0`` gives
    Result 2.1, ``l0 exp(-rho alpha t)``.
    """
    t = _nonneg("t", t, positive=False)
    l0 = _nonneg("l0", l0)
    alpha = _nonneg("alpha", alpha, positive=False)
    beta = _nonneg("beta", beta, positive=False)
    rho = _nonneg("rho", rho)
    alpha, beta = rho * alpha, np.sqrt(rho) * beta
    with np.errstate(divide="ignore", invalid="ignore"):
        t_star = np.where(beta > 0, alpha**2 / (beta**2 * l0), np.inf)
    s = np.minimum(t, t_star)
    return _out(l0 * np.exp(-alpha * s + (2.0 / 3.0) * beta * np.sqrt(l0) * s**1.5))


def health_limit_bound(l0, alpha, beta, rho=1.0):
    """``l(inf) <= l0 exp(-rho^2 alpha^3 / (3 beta^2 l0))``: the envelope of :func:`health_envelope` at ``t*``
    (Result 2.2 for ``rho = 1``, the flow; for gradient descent whose steps satisfy the sufficient-decrease condition
    with constant ``rho``, it bounds ``f(w_k)`` once ``k eta >= t*``). ``beta = 0`` gives 0 when ``alpha > 0``
    (Result 2.1) and ``l0`` when ``alpha = 0`` too (no health: the loss need not fall at all, as on a draw whose units
    are all dead at initialisation). Arrays broadcast."""
    l0 = _nonneg("l0", l0)
    alpha = _nonneg("alpha", alpha, positive=False)
    beta = _nonneg("beta", beta, positive=False)
    rho = _nonneg("rho", rho)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        expo = np.where(beta > 0, rho**2 * alpha**3 / (3.0 * beta**2 * l0), np.where(alpha > 0, np.inf, 0.0))
        return _out(l0 * np.exp(-expo))


def sufficient_decrease_ratio(loss, grad_sq, eta, floor=0.0, resolution=1e-12, upto=None):
    """The largest ``rho`` with ``f(w_{j+1}) <= f(w_j) - rho eta |grad f(w_j)|^2`` at every recorded step (chapter 3).

    ``loss`` (K+1, ...) and ``grad_sq`` (K+1, ...) are ``f(w_j)`` and ``|grad f(w_j)|^2`` along a gradient-descent run
    with step ``eta``; the result has the trailing shape. Left out are the steps that start with ``loss <= floor``
    (a loss at round-off level, whose differences are noise) and those whose first-order decrease
    ``eta |grad f|^2`` is at most ``resolution * f(w_j)``: float64 cannot tell their sign (a critical point, where
    the condition holds for every ``rho``, is one of them); ``inf`` when no step is left. The descent lemma gives
    ``rho >= 1 - eta L / 2`` on an L-smooth function; ``rho <= 0`` means that some step did not decrease the loss,
    and ``NaN`` that the run diverged (NaN records). ``upto`` (int, or ints of the trailing shape): use only the steps
    ``j < upto`` (default: all).
    """
    loss, grad_sq = np.asarray(loss, dtype=float), np.asarray(grad_sq, dtype=float)  # NaN: a diverged run
    if loss.ndim == 0 or loss.shape[0] < 2:
        raise ValueError(f"loss must have at least 2 records along its first axis; got shape {loss.shape}")
    if grad_sq.shape != loss.shape:
        raise ValueError(f"grad_sq must have the shape of loss, {loss.shape}; got {grad_sq.shape}")
    eta = as_float("eta", eta)
    floor = as_float("floor", floor, low=0.0, low_open=False)
    resolution = as_float("resolution", resolution, low=0.0, low_open=False, high=1.0)
    f, g = loss[:-1], grad_sq[:-1]
    with np.errstate(invalid="ignore"):
        used = ~((eta * g <= resolution * f) | (f <= floor))  # NaN records stay in: a diverged run gives NaN
    if upto is not None:
        j = np.arange(f.shape[0]).reshape((-1,) + (1,) * (f.ndim - 1))
        used &= j < np.asarray(upto)
    with np.errstate(invalid="ignore"):
        ratio = np.where(used, (f - loss[1:]) / (eta * np.where(used, g, 1.0)), np.inf)
    return _out(np.min(ratio, axis=0))


class RelaxedDescentCheck(NamedTuple):
    """The relaxed-health theorem for gradient descent confronted with ``B`` runs (chapter 3); all fields (B,).

    ``rho``: the measured sufficient-decrease constant (:func:`sufficient_decrease_ratio`; NaN: diverged).
    ``holds``: the theorem applies (``rho > 0``, every measured step decreased the loss, and ``alpha > 0``).
    ``worst``: the largest ``f(w_k) / bound_k`` over the compared steps ``1 <= k <= K`` (``<= 1``: the bound holds;
    NaN where the theorem does not apply). ``K`` is the first step whose loss is at or below ``floor * l0``, or the
    last step: later steps are not compared, because the hypothesis was not measured on them.
    ``dist_worst``: the largest ``|w_k - w_0| / sqrt(k eta l0 / rho)`` over the same steps (``<= 1``: the distance
    bound holds).  ``compared``: ``K``.
    """

    rho: np.ndarray
    holds: np.ndarray
    worst: np.ndarray
    dist_worst: np.ndarray
    compared: np.ndarray


def relaxed_descent_check(loss, grad_sq, dist, eta, alpha, beta, *, rho=None, floor=1e-20) -> RelaxedDescentCheck:
    """Check ``f(w_k) <= l0 exp(g(min(k eta, t*)))`` (:func:`health_envelope` with ``rho``) and
    ``|w_k - w0| <= sqrt(k eta l0 / rho)`` along ``B`` gradient-descent runs (chapter 3).

    ``loss``, ``grad_sq``, ``dist`` (K+1, B): ``f(w_k)``, ``|grad f(w_k)|^2``, ``|w_k - w_0|`` (as recorded by
    :func:`one_point_descent`); ``alpha``, ``beta`` (B,) or scalars: relaxed-health constants of each run. ``rho``:
    the sufficient-decrease constant; ``None`` (default) measures it on each run (the theorem's hypothesis). Passing
    a constant instead tests a claim the theorem does not make (``rho = 1`` is the flow's envelope). ``floor``
    (relative to ``l0``): losses at or below it are round-off level and end the comparison (see
    :class:`RelaxedDescentCheck`).
    """
    loss, grad_sq, dist = (np.asarray(v, dtype=float) for v in (loss, grad_sq, dist))
    if loss.ndim != 2 or loss.shape[0] < 2 or grad_sq.shape != loss.shape or dist.shape != loss.shape:
        raise ValueError(f"loss, grad_sq and dist must have one shape (K+1, B) with K >= 1; got {loss.shape}, "
                         f"{grad_sq.shape}, {dist.shape}")
    eta = as_float("eta", eta)
    floor = as_float("floor", floor, low=0.0, low_open=False, high=1.0)
    B = loss.shape[1]
    l0 = _nonneg("loss[0]", loss[0])
    alpha = np.broadcast_to(_nonneg("alpha", alpha, positive=False), (B,))
    beta = np.broadcast_to(_nonneg("beta", beta, positive=False), (B,))
    k = np.arange(loss.shape[0])
    with np.errstate(invalid="ignore"):
        low = loss <= floor * l0
    K = np.where(low.any(axis=0), np.argmax(low, axis=0), loss.shape[0] - 1)
    rho_b = sufficient_decrease_ratio(loss, grad_sq, eta, upto=K) if rho is None \
        else np.full(B, as_float("rho", rho))
    finite = np.all(np.isfinite(np.where(k[:, None] <= K, loss, 0.0)), axis=0)
    with np.errstate(invalid="ignore"):
        holds = (rho_b > 0) & (rho_b < np.inf) & (alpha > 0) & finite
    r = np.where(holds, rho_b, 1.0)
    t = eta * k[1:, None]
    compared = (k[1:, None] <= K) & holds
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):  # env underflows to 0 past the compared steps
        env = health_envelope(np.broadcast_to(t, compared.shape), l0, alpha, beta, r)
        worst = np.max(np.where(compared, loss[1:] / env, -np.inf), axis=0)
        dist_worst = np.max(np.where(compared, dist[1:] / np.sqrt(t * l0 / r), -np.inf), axis=0)
    worst, dist_worst = np.where(holds, worst, np.nan), np.where(holds, dist_worst, np.nan)
    return RelaxedDescentCheck(rho_b, holds, worst, dist_worst, K)


def net_health_sides(M0, M, N, x, q, N0=None) -> tuple[float, float]:
    """Both sides of the gradient-health inequality of the one-point network (chapter 3) at ``w = (M, N)``:
    ``|grad f(w)|^2 / f(w)`` (from :func:`gdlab.nets.mlp_grad`) and ``2 |b0|^2 - 4 |b0| |x| |w - w0|`` with
    ``w0 = (M0, N0)`` (``N0 = None``: ``N0 = N``). ``M0``, ``M`` (k, m); ``N``, ``N0`` (n, k); ``x`` (m,); ``q`` (n,);
    ``f(w)`` must be positive."""
    from .nets import mlp_grad

    N0 = N if N0 is None else N0
    g = mlp_grad(M, N, x, q)
    if not g.loss > 0:
        raise ValueError(f"the loss at (M, N) must be > 0 for the health ratio; got {g.loss!r}")
    x = as_array("x", x, ndim=1)
    b0 = np.linalg.norm(np.maximum(as_array("M0", M0, shape=M.shape) @ x, 0.0))
    dist = np.sqrt(np.sum((M - M0) ** 2) + np.sum((N - as_array("N0", N0, shape=N.shape)) ** 2))
    ratio = (np.sum(g.dM**2) + np.sum(g.dN**2)) / g.loss
    return float(ratio), float(2.0 * b0**2 - 4.0 * b0 * np.linalg.norm(x) * dist)


def net_health_tight_point(M0, x, eps):
    """A first layer ``M = M0 - eps u x^T / |x|`` with ``u = b0 / |b0|`` (chapter 3): with ``N = N0 = 0`` the
    gradient-health inequality is an equality up to ``2 |x|^2 eps^2`` for ``eps |x| <= |b0|``: the move scales every
    active entry of ``a0 = M0 x`` by ``1 - eps |x| / |b0|``, so ``|b| = |b0| - eps |x|``, while ``N = 0`` makes
    ``M^ = 0``. ``M0`` (k, m) with ``b0 != 0``, ``x`` (m,), ``eps >= 0``; returns (k, m)."""
    M0 = as_array("M0", M0, ndim=2)
    x = as_array("x", x, shape=(M0.shape[1],))
    eps = as_float("eps", eps, low=0.0, low_open=False)
    b0 = np.maximum(M0 @ x, 0.0)
    if not np.any(b0 > 0):
        raise ValueError("M0 must have at least one active unit (b0 = relu(M0 x) != 0)")
    return M0 - eps * np.outer(b0 / np.linalg.norm(b0), x) / np.linalg.norm(x)


def b0_lower_tail_bound(k, delta, c=1.0 / 12.0):
    """``P(|b0|^2 < (1 - delta) k) <= exp(-c k delta^2)`` with ``c = 1/12`` for He initialisation (chapter 3):
    the Chernoff bound for a sum of ``k`` independent non-negative ``b_i^2`` with mean 1 and ``E[b_i^4] = 6``.
    ``c`` is a parameter only so that tests can try a wrong constant. Arrays broadcast."""
    k = _nonneg("k", k)
    delta = as_array("delta", delta)
    if np.any((delta <= 0) | (delta >= 1)):
        raise ValueError(f"delta must lie in (0, 1); got {delta!r}")
    c = as_float("c", c)
    return _out(np.exp(-c * k * delta**2))


def high_probability_bound(l0, k, m, delta):
    """``l(inf) <= l0 exp(-(1 - delta)^2 k^2 / (6 m l0))`` (chapter 3): the rigorous bound on the event
    ``|b0|^2 >= (1 - delta) k``, which has probability at least ``1 - exp(-k delta^2 / 12)``
    (:func:`b0_lower_tail_bound`). Arrays broadcast."""
    l0, k, m = _nonneg("l0", l0), _nonneg("k", k), _nonneg("m", m)
    delta = as_array("delta", delta)
    if np.any((delta <= 0) | (delta >= 1)):
        raise ValueError(f"delta must lie in (0, 1); got {delta!r}")
    return _out(l0 * np.exp(-((1.0 - delta) ** 2) * k**2 / (6.0 * m * l0)))


def one_point_balance(runs: OnePointRuns) -> np.ndarray:
    """``E = |a|^2 / m - |N|^2`` at every record of ``runs``, (T, B) (chapter 3). The flow on one data point conserves
    it: ``d|a|^2/dt = -2 m y^ . y`` and ``d|N|^2/dt = -2 y^ . y`` (a unit with ``a_j <= 0`` has ``a^_j = 0`` and
    ``b_j = 0``)."""
    if not isinstance(runs, OnePointRuns):
        raise ValueError("runs must be a OnePointRuns returned by one_point_flows")
    return np.sum(runs.a**2, axis=2) / runs.m - np.sum(runs.N**2, axis=(2, 3))


def idealised_bound(l0, k, m):
    """The article's bound ``l(inf) <= l0 exp(-k^2 / (6 m l0))`` (chapter 3; it assumes ``|b0|^2 = k``)."""
    l0, k, m = _nonneg("l0", l0), _nonneg("k", k), _nonneg("m", m)
    return _out(l0 * np.exp(-(k**2) / (6.0 * m * l0)))


def rigorous_bound(l0, b0_sq, x_sq):
    """The bound that holds on every initialisation: ``l(inf) <= l0 exp(-|b0|^4 / (6 |x|^2 l0))`` (chapter 3)."""
    l0, b0_sq, x_sq = _nonneg("l0", l0), _nonneg("b0_sq", b0_sq, positive=False), _nonneg("x_sq", x_sq)
    return _out(l0 * np.exp(-(b0_sq**2) / (6.0 * x_sq * l0)))


def width_for_loss(eps, m, l0) -> int:
    """The smallest width ``k`` whose idealised bound :func:`idealised_bound` is ``<= eps``:
    ``k >= sqrt(6 m l0 log(l0 / eps))`` (chapter 3); 1 when ``eps >= l0``."""
    eps, l0 = as_float("eps", eps), as_float("l0", l0)
    m = as_float("m", m)
    if eps >= l0:
        return 1
    k = max(1, int(np.ceil(np.sqrt(6.0 * m * l0 * np.log(l0 / eps)))))
    while k > 1 and idealised_bound(l0, k - 1, m) <= eps:  # guard against round-off in the square root
        k -= 1
    while idealised_bound(l0, k, m) > eps:
        k += 1
    return k


@dataclass(frozen=True)
class OnePointRuns:
    """``B`` independent gradient flows of ``y = N relu(M x)`` on one data point each, recorded at ``T`` times.

    With one data point the flow never leaves ``M0 + span{u x^T}``: ``M' = -a^ x^T``, so ``M(t) = M0 + (a(t) - a0) x^T / m``
    with ``a = M x`` and ``m = |x|^2``. The state is therefore ``(a, N)``, with ``a' = -m a^``, ``N' = -y^ b^T``.

    :ivar m: ``|x|^2`` (the input dimension, for :func:`gdlab.nets.mlp_data`).
    :ivar t: (T,) recorded times.
    :ivar x: (B, m) inputs.
    :ivar q: (B, n) targets.
    :ivar M0: (B, k, m) initial first layers.
    :ivar a: (T, B, k) pre-activations.
    :ivar N: (T, B, n, k) second layers.
    :ivar loss: (T, B) ``f``.
    :ivar grad_sq: (T, B) ``|grad f|^2 = m |a^|^2 + |y^|^2 |b|^2``.
    :ivar dist: (T, B) ``|w - w0|``.
    """

    m: int
    t: np.ndarray
    x: np.ndarray
    q: np.ndarray
    M0: np.ndarray
    a: np.ndarray
    N: np.ndarray
    loss: np.ndarray
    grad_sq: np.ndarray
    dist: np.ndarray

    @property
    def l0(self) -> np.ndarray:
        """(B,) initial losses."""
        return self.loss[0]

    @property
    def b0_sq(self) -> np.ndarray:
        """(B,) ``|b0|^2 = |relu(M0 x)|^2``."""
        return np.sum(np.maximum(self.a[0], 0.0) ** 2, axis=1)

    @property
    def dead(self) -> np.ndarray:
        """(T, B) True where every hidden unit is inactive (``a <= 0``): from then on the weights stay put."""
        return np.all(self.a <= 0.0, axis=2)

    def M(self, i: int) -> np.ndarray:
        """(B, k, m) first layers at record ``i`` (an int in ``[-T, T - 1]``, counted from the end if negative)."""
        T = self.a.shape[0]
        i = as_int("i", i, low=-T, high=T - 1)
        return self.M0 + np.einsum("bk,bm->bkm", self.a[i] - self.a[0], self.x) / self.m

    def w(self, i: int) -> np.ndarray:
        """(B, k m + n k) flat parameter vectors at record ``i`` (the packing of :func:`gdlab.nets.mlp_pack`; ``i`` as
        in :meth:`M`)."""
        B = self.x.shape[0]
        M = self.M(i)
        return np.concatenate([M.reshape(B, -1), self.N[i].reshape(B, -1)], axis=1)


def _one_point_fields(a, N, q, m, with_grad_sq: bool = True):
    """Batched forward/backward pass in the reduced coordinates: ``b, y^, a^, f`` and ``|grad f|^2`` (or None)."""
    b = np.maximum(a, 0.0)
    y_hat = np.matmul(N, b[:, :, None])[:, :, 0] - q
    a_hat = (a > 0.0) * np.matmul(y_hat[:, None, :], N)[:, 0, :]
    y_sq = np.sum(y_hat * y_hat, axis=1)
    grad_sq = m * np.sum(a_hat * a_hat, axis=1) + y_sq * np.sum(b * b, axis=1) if with_grad_sq else None
    return b, y_hat, a_hat, 0.5 * y_sq, grad_sq


def one_point_flows(m: int, k: int, n: int, draws: int, seed, t_max: float, *, t_eval=None, rtol: float = 1e-9,
                    atol: float = 1e-12, stop_below: float | None = None, init=None) -> OnePointRuns:
    """Gradient flows of ``draws`` independent one-data-point problems, solved as one ODE (chapter 3).

    Draw ``i`` has data ``x_i`` (``|x_i|^2 = m``), ``q_i ~ N(0, I_n)`` and a He initialisation (:func:`gdlab.nets.mlp_data`,
    :func:`gdlab.nets.mlp_init` conventions), all from one generator seeded by ``seed``; or pass ``init = (x, q, M0, N0)``
    with shapes (B, m), (B, n), (B, k, m), (B, n, k). The flows are independent, so stacking them into one state
    and one vectorised right-hand side is exact; ``scipy``'s DOP853 solves it once. Its error control is on the
    RMS over the whole stack, so per-draw accuracy is a little worse than ``rtol`` for large ``draws``.

    ``t_eval`` (default ``[0, t_max]``) are the recorded times. ``stop_below``: stop early once every draw that
    has a live unit has ``f <= stop_below * l0`` (the last record is then the stopping time).
    """
    from scipy.integrate import solve_ivp

    m, k, n = as_int("m", m), as_int("k", k), as_int("n", n)
    t_max = as_float("t_max", t_max)
    rtol, atol = as_float("rtol", rtol, high=1.0), as_float("atol", atol, high=1.0)
    if init is None:
        B = as_int("draws", draws)
        rng = as_rng(seed)
        x = rng.normal(size=(B, m))
        x *= np.sqrt(m) / np.linalg.norm(x, axis=1, keepdims=True)
        q = rng.normal(size=(B, n))
        M0 = rng.normal(0.0, np.sqrt(2.0 / m), size=(B, k, m))
        N0 = rng.normal(0.0, np.sqrt(2.0 / k), size=(B, n, k))
    else:
        if len(init) != 4:
            raise ValueError("init must be a tuple (x, q, M0, N0)")
        x = as_array("x", init[0], ndim=2)
        B = x.shape[0]
        x = as_array("x", x, shape=(B, m))
        if not np.allclose(np.sum(x**2, axis=1), m, rtol=1e-12):
            raise ValueError(f"x must have rows with |x|^2 = m = {m}")
        q = as_array("q", init[1], shape=(B, n))
        M0 = as_array("M0", init[2], shape=(B, k, m))
        N0 = as_array("N0", init[3], shape=(B, n, k))
    if t_eval is None:
        t_eval = np.array([0.0, t_max])
    else:
        t_eval = as_array("t_eval", t_eval, ndim=1)
        if t_eval.size < 2 or t_eval[0] != 0.0 or np.any(np.diff(t_eval) <= 0) or t_eval[-1] > t_max:
            raise ValueError("t_eval must be strictly increasing, start at 0 and end at or before t_max")
    if stop_below is not None:
        stop_below = as_float("stop_below", stop_below)
    a0 = np.einsum("bkm,bm->bk", M0, x)

    def split(z):
        return z[: B * k].reshape(B, k), z[B * k:].reshape(B, n, k)

    def rhs(_t, z):
        a, N = split(z)
        b, y_hat, a_hat, _, _ = _one_point_fields(a, N, q, m, False)
        return np.concatenate([(-m * a_hat).ravel(), (-y_hat[:, :, None] * b[:, None, :]).ravel()])

    l0 = _one_point_fields(a0, N0, q, m)[3]
    events = None
    if stop_below is not None:
        def stop(_t, z):
            a, N = split(z)
            loss = _one_point_fields(a, N, q, m, False)[3]
            alive = np.any(a > 0.0, axis=1)
            return float(np.max(np.where(alive, loss / l0, 0.0))) - stop_below

        stop.terminal = True
        events = stop
    if B == 1:  # the explorer's case: smooth pieces between unit deaths (much faster, see _one_point_flow_single)
        t, A, NN = _one_point_flow_single(a0[0], N0[0], q[0], m, t_eval, rtol, atol, stop_below)
        return _one_point_runs(m, t, x, q, M0, a0, N0, A[:, None, :], NN[:, None, :, :])
    z0 = np.concatenate([a0.ravel(), N0.ravel()])
    with np.errstate(all="ignore"):
        sol = solve_ivp(rhs, (0.0, float(t_eval[-1])), z0, method="DOP853", t_eval=t_eval, rtol=rtol, atol=atol,
                        events=events)
    t, Z = sol.t, sol.y.T
    if sol.status == 1:  # stopped by the event: record the stopping point
        t = np.append(t, sol.t_events[0][0])
        Z = np.vstack([Z, sol.y_events[0][0]])
    T = t.size
    return _one_point_runs(m, t, x, q, M0, a0, N0, Z[:, : B * k].reshape(T, B, k), Z[:, B * k:].reshape(T, B, n, k))


def _one_point_runs(m, t, x, q, M0, a0, N0, A, NN) -> OnePointRuns:
    """Assemble :class:`OnePointRuns` from the records ``A`` (T, B, k) and ``NN`` (T, B, n, k) at times ``t`` (T,)."""
    T, B, n, k = NN.shape
    _, _, _, loss, grad_sq = _one_point_fields(A.reshape(T * B, k), NN.reshape(T * B, n, k),
                                               np.tile(q, (T, 1)), m)
    dist = np.sqrt(np.sum((A - a0) ** 2, axis=2) / m + np.sum((NN - N0) ** 2, axis=(2, 3)))
    return OnePointRuns(m=m, t=t, x=x, q=q, M0=M0, a=A, N=NN, loss=loss.reshape(T, B),
                        grad_sq=grad_sq.reshape(T, B), dist=dist)


def _one_point_flow_single(a0, N0, q, m, t_eval, rtol, atol, stop_below):
    """One draw of :func:`one_point_flows`, solved piece by piece between unit deaths (chapter 3).

    ``a0`` (k,), ``N0`` (n, k), ``q`` (n,). A unit with ``a_j <= 0`` never moves again (its ``a_j`` and its column of
    ``N`` have zero velocity), so units only die, one at a time. Between deaths the right-hand side is a polynomial
    in the live units' ``a_S``, ``N_S`` only: DOP853 takes large steps there, where across a kink its error control
    would reject step after step. Each death is located as an event (``min a_S = 0``); the unit is then set to
    ``a_j = 0`` and dropped from the state. With every unit dead the flow is at rest and the remaining records are
    exact copies. ``stop_below`` stops the run as in :func:`one_point_flows`. Returns ``t`` (T,), ``A`` (T, k),
    ``NN`` (T, n, k).
    """
    from scipy.integrate import solve_ivp

    n, k = N0.shape
    l0 = 0.5 * float(np.sum((N0 @ np.maximum(a0, 0.0) - q) ** 2))
    a, N = a0.copy(), N0.copy()
    times, A, NN = [0.0], [a.copy()], [N.copy()]
    t_now, t_end = 0.0, float(t_eval[-1])
    pending = t_eval[1:]
    while pending.size:
        live = np.flatnonzero(a > 0.0)
        if live.size == 0:  # at rest for ever: the records are the current state
            times += list(pending)
            A += [a.copy()] * pending.size
            NN += [N.copy()] * pending.size
            break
        s = live.size

        def rhs(_t, z, s=s):
            a_s, N_s = z[:s], z[s:].reshape(n, s)
            r = N_s @ a_s - q
            return np.concatenate([-m * (r @ N_s), -np.outer(r, a_s).ravel()])

        def death(_t, z, s=s):
            return float(np.min(z[:s]))

        death.terminal, death.direction = True, -1
        events = [death]
        if stop_below is not None:
            def low(_t, z, s=s):
                return 0.5 * float(np.sum((z[s:].reshape(n, s) @ z[:s] - q) ** 2)) / l0 - stop_below

            low.terminal, low.direction = True, -1
            events.append(low)
        z0 = np.concatenate([a[live], N[:, live].ravel()])
        with np.errstate(all="ignore"):
            sol = solve_ivp(rhs, (t_now, t_end), z0, method="DOP853", t_eval=pending, rtol=rtol, atol=atol,
                            events=events)
        t_hit = np.asarray(sol.t, dtype=float)  # scipy returns lists when no t_eval point was reached
        for t_rec, z in zip(t_hit, np.reshape(sol.y, (z0.size, -1)).T, strict=True):
            a[live], N[:, live] = z[:s], z[s:].reshape(n, s)
            times.append(float(t_rec))
            A.append(a.copy())
            NN.append(N.copy())
        pending = pending[pending > (t_hit[-1] if t_hit.size else t_now)]
        if sol.status != 1:  # reached t_end
            break
        hit = [i for i, te in enumerate(sol.t_events) if te.size]
        i_event = hit[0] if len(hit) == 1 else min(hit, key=lambda i: sol.t_events[i][0])
        t_now, z = float(sol.t_events[i_event][0]), sol.y_events[i_event][0]
        a[live], N[:, live] = z[:s], z[s:].reshape(n, s)
        pending = pending[pending > t_now]
        if i_event == 1:  # the loss is below stop_below * l0: record the stopping point and stop
            times.append(t_now)
            A.append(a.copy())
            NN.append(N.copy())
            break
        a[live[np.argmin(z[:s])]] = 0.0  # the unit that died
        a[live] = np.where(a[live] <= 0.0, 0.0, a[live])  # and any that died at the same instant
    return np.array(times), np.array(A), np.array(NN)


class OnePointLimits(NamedTuple):
    """Where each flow of :class:`OnePointRuns` ends (chapter 3).

    ``limit`` (B,): 0, or ``|q|^2 / 2`` when every unit is dead; NaN where undecided. ``dead`` (B,) every unit dead at
    the end. ``decided`` (B,) bool.
    """

    limit: np.ndarray
    dead: np.ndarray
    decided: np.ndarray


def one_point_limits(runs: OnePointRuns) -> OnePointLimits:
    """Decide the limit ``l(inf)`` of every flow in ``runs`` from its last record (chapter 3).

    Every critical point of the one-point loss has ``f = 0`` or ``f = |q|^2 / 2`` (``N^ = y^ b^T = 0`` with ``y^ != 0``
    forces ``b = 0``). If every unit is dead (``a <= 0``) the gradient is zero and stays zero: the limit is
    ``|q|^2 / 2``. If the loss is already below ``|q|^2 / 2``, the loss, which never increases, cannot return to that
    value: the limit is 0. Otherwise the run is undecided (run it longer).
    """
    if not isinstance(runs, OnePointRuns):
        raise ValueError("runs must be a OnePointRuns returned by one_point_flows")
    half_q = 0.5 * np.sum(runs.q**2, axis=1)
    dead = runs.dead[-1]
    low = runs.loss[-1] < half_q
    limit = np.where(dead, half_q, np.where(low, 0.0, np.nan))
    return OnePointLimits(limit=limit, dead=dead, decided=dead | low)


class OnePointOutcomes(NamedTuple):
    """Limits of many one-data-point gradient flows (chapter 3), from :func:`one_point_outcomes`.

    All arrays (B,): ``l0`` initial loss, ``b0_sq`` ``|b0|^2``, ``half_q`` ``|q|^2 / 2``, ``limit`` the decided
    ``l(inf)`` (0 or ``|q|^2 / 2``; NaN if undecided), ``dead`` every unit dead at the end, ``decided``.
    """

    l0: np.ndarray
    b0_sq: np.ndarray
    half_q: np.ndarray
    limit: np.ndarray
    dead: np.ndarray
    decided: np.ndarray


def _rk4_rhs(a, N, q, m):
    b, y_hat, a_hat, _, _ = _one_point_fields(a, N, q, m, False)
    return -m * a_hat, -y_hat[:, :, None] * b[:, None, :]


def one_point_outcomes(m: int, k: int, n: int, draws: int, seed, *, courant: float = 0.05,
                       max_steps: int = 20_000) -> OnePointOutcomes:
    """Decide ``l(inf)`` for ``draws`` one-data-point flows (the draws of :func:`one_point_flows` with the same seed).

    A vectorised classical Runge-Kutta scheme runs every undecided draw with its own step
    ``h = courant / lambda``, ``lambda = |b|^2 + m |N_active|^2 + sqrt(2 m f)`` (a scale of the local curvature), and
    drops a draw as soon as it is decided (see :func:`one_point_limits`: all units dead, or ``f < |q|^2 / 2``). An
    adaptive solver on the stacked system would be exact too, but every draw's ReLU kinks would shrink the common
    step; here each draw only pays for its own. ``tests/test_chapter3.py`` checks the decisions against DOP853.
    """
    courant = as_float("courant", courant, high=1.0)
    max_steps = as_int("max_steps", max_steps)
    runs = one_point_flows(m, k, n, draws, seed, 1e-12)
    a, N, q = runs.a[0].copy(), runs.N[0].copy(), runs.q
    half_q = 0.5 * np.sum(q**2, axis=1)
    loss = runs.l0.copy()

    def undecided():
        return ~((loss < half_q) | np.all(a <= 0.0, axis=1))

    und, steps = undecided(), 0
    with np.errstate(all="ignore"):
        while und.any() and steps < max_steps:
            i = np.flatnonzero(und)
            A, NN, Q = a[i], N[i], q[i]
            active = A > 0.0
            lam = (np.sum(np.maximum(A, 0.0) ** 2, axis=1) + m * np.sum((NN * active[:, None, :]) ** 2, axis=(1, 2))
                   + np.sqrt(2.0 * m * loss[i]))
            h = (courant / lam)[:, None]
            h3 = h[:, :, None]
            for _ in range(20):
                k1a, k1n = _rk4_rhs(A, NN, Q, m)
                k2a, k2n = _rk4_rhs(A + h / 2 * k1a, NN + h3 / 2 * k1n, Q, m)
                k3a, k3n = _rk4_rhs(A + h / 2 * k2a, NN + h3 / 2 * k2n, Q, m)
                k4a, k4n = _rk4_rhs(A + h * k3a, NN + h3 * k3n, Q, m)
                A = A + h / 6 * (k1a + 2 * k2a + 2 * k3a + k4a)
                NN = NN + h3 / 6 * (k1n + 2 * k2n + 2 * k3n + k4n)
            steps += 20
            a[i], N[i] = A, NN
            loss[i] = _one_point_fields(A, NN, Q, m)[3]
            und = undecided()
    dead = np.all(a <= 0.0, axis=1)
    limit = np.where(dead, half_q, np.where(loss < half_q, 0.0, np.nan))
    return OnePointOutcomes(l0=runs.l0, b0_sq=runs.b0_sq, half_q=half_q, limit=limit, dead=dead, decided=~und)


class OnePointDescent(NamedTuple):
    """Gradient descent on the draws of a :class:`OnePointRuns` (chapter 3), recorded at every step (NaN after
    divergence): ``loss``, ``grad_sq`` and ``dist`` (steps + 1, B) are ``f(w_j)``, ``|grad f(w_j)|^2`` and
    ``|w_j - w_0|``; ``diverged_at`` (B,) is the step at which the loss became non-finite or exceeded
    :func:`gdlab.runs.divergence_threshold` of ``l0`` (-1: never; :mod:`gdlab.runs`)."""

    loss: np.ndarray
    grad_sq: np.ndarray
    dist: np.ndarray
    diverged_at: np.ndarray

    @property
    def diverged(self) -> np.ndarray:
        """(B,) bool: ``diverged_at >= 0``."""
        return self.diverged_at >= 0


def one_point_descent(runs: OnePointRuns, eta: float, steps: int) -> OnePointDescent:
    """``steps`` steps of gradient descent with step ``eta`` from the initial points of ``runs`` (chapter 3).

    Like the flow, GD never leaves ``M0 + span{u x^T}`` on one data point (``M <- M - eta a^ x^T`` moves ``a = M x`` by
    ``-eta m a^``), so it runs on ``(a, N)`` for all draws at once; it equals :func:`gdlab.flow.gradient_descent` on
    :class:`gdlab.nets.MLPProblem` up to round-off.
    """
    if not isinstance(runs, OnePointRuns):
        raise ValueError("runs must be a OnePointRuns returned by one_point_flows")
    eta = as_float("eta", eta)
    steps = as_int("steps", steps)
    a, N, q, m = runs.a[0].copy(), runs.N[0].copy(), runs.q, runs.m
    a0, N0 = runs.a[0], runs.N[0]
    B = a.shape[0]
    rec = np.full((3, steps + 1, B), np.nan)  # loss, grad_sq, dist
    limit = divergence_threshold(runs.l0)
    div = np.full(B, NOT_DIVERGED)
    alive = np.ones(B, dtype=bool)
    if B == 1:  # the explorer's case: the same iteration on plain vectors, without the batch axis (faster)
        return _one_point_descent_single(a[0], N[0], q[0], m, eta, steps, float(limit[0]))
    with np.errstate(all="ignore"):
        for s in range(steps + 1):
            b, y_hat, a_hat, loss, grad_sq = _one_point_fields(a, N, q, m)
            bad = alive & diverges(loss, limit)
            div[bad] = s
            alive &= ~bad
            dist = np.sqrt(np.sum((a - a0) ** 2, axis=1) / m + np.sum((N - N0) ** 2, axis=(1, 2)))
            for r, v in zip(rec, (loss, grad_sq, dist), strict=True):
                r[s, alive] = v[alive]
            if s == steps or not alive.any():
                break
            a = a - eta * m * a_hat
            N = N - eta * y_hat[:, :, None] * b[:, None, :]
    return OnePointDescent(*rec, diverged_at=div)


def _one_point_descent_single(a, N, q, m, eta, steps, limit) -> OnePointDescent:
    """:func:`one_point_descent` for one draw: ``a`` (k,), ``N`` (n, k), ``q`` (n,)."""
    rec = np.full((3, steps + 1, 1), np.nan)  # loss, grad_sq, dist
    a0, N0 = a, N
    div = NOT_DIVERGED
    with np.errstate(all="ignore"):
        for s in range(steps + 1):
            b = np.maximum(a, 0.0)
            y_hat = N @ b - q
            y_sq = float(y_hat @ y_hat)
            if diverges(0.5 * y_sq, limit):
                div = s
                break
            a_hat = (a > 0.0) * (y_hat @ N)
            da, dN = a - a0, N - N0
            rec[:, s, 0] = (0.5 * y_sq, m * float(a_hat @ a_hat) + y_sq * float(b @ b),
                            np.sqrt(float(da @ da) / m + float(np.sum(dN * dN))))
            if s == steps:
                break
            a = a - (eta * m) * a_hat
            N = N - eta * np.outer(y_hat, b)
    return OnePointDescent(*rec, diverged_at=np.array([div]))
