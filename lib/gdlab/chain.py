"""The chain of saddles of Du et al. (2017) (chapter 6, compute layer): a function on ``R^d`` with ``d`` strict saddles in a
row, on which gradient descent needs a time exponential in ``d`` (:cite:`du2017exponential`).

:class:`Chain` and :func:`chain` give the parameters; :func:`chain_f`, :func:`chain_grad` and :func:`chain_domain` the
function on the union of its domains (NaN outside); :func:`chain_smoothness` and :func:`chain_block_hessian` its
smoothness; :func:`chain_gd` a gradient-descent runner that keeps the vanishing coordinates as ``log |x_j|`` (no
float64 underflow), :func:`chain_gd_plain` the plain iteration it is checked against, and :func:`chain_run_from_path`
the same summary for any recorded path (perturbed or noisy GD from :mod:`gdlab.saddles`).

Every function is pure: arrays and a seed (or ``numpy.random.Generator``) in, arrays or a small NamedTuple out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._checks import as_array, as_float, as_int, as_rng
from .runs import NOT_DIVERGED, divergence_threshold, diverges, record_steps


@dataclass(frozen=True)
class Chain:
    """The chain-of-saddles function of :cite:`du2017exponential` in ``R^d`` (chapter 6).

    Parameters ``L`` (smoothness of the quadratic pieces), ``gamma`` (negative curvature at each saddle) and ``tau``
    (length scale). The i-th saddle (i = 1..d) is ``(4 tau, ..., 4 tau, 0, ..., 0)`` with i - 1 leading entries,
    value ``-(i - 1) nu``; the minimum is at ``|x_j| = 4 tau`` for all j, value ``-d nu``. ``f`` depends on ``|x_j|``
    only (mirror symmetry) and is defined on the union of the domains D_{i,1}, D_{i,2}, D_{d+1}
    (see :func:`chain_domain`); :func:`chain_f` and :func:`chain_grad` return NaN outside it.
    """

    d: int
    L: float
    gamma: float
    tau: float

    @property
    def nu(self) -> float:
        """The drop in value between successive saddles, ``nu = -g1(2 tau) + 4 L tau^2 = tau^2 (37 L + 13 gamma) / 6``."""
        return self.tau**2 * (37.0 * self.L + 13.0 * self.gamma) / 6.0

    @property
    def step(self) -> float:
        """The gradient-descent step ``1 / (4 L)`` of the paper's experiments."""
        return 1.0 / (4.0 * self.L)


def chain(d: int, L: float = 1.0, gamma: float = 1.0, tau: float = np.e) -> Chain:
    """The chain of :cite:`du2017exponential` (checked parameters; defaults are the paper's ``gamma = 1``, ``tau = e``)."""
    d = as_int("d", d, low=1, high=1000)
    L = as_float("L", L)
    gamma = as_float("gamma", gamma)
    tau = as_float("tau", tau)
    return Chain(d, L, gamma, tau)


def chain_g1(ch: Chain, a) -> np.ndarray:
    """``g1(a) = -gamma a^2 + c3 (a - tau)^3 + c4 (a - tau)^4`` with ``c3 = (-14 L + 10 gamma) / (3 tau)``,
    ``c4 = (5 L - 3 gamma) / (2 tau^2)``: the spline that carries ``-gamma a^2`` at ``a = tau`` into
    ``L (a - 4 tau)^2 + const`` at ``a = 2 tau`` with matching value, slope and curvature."""
    a = np.asarray(a, dtype=float)
    c3 = (-14.0 * ch.L + 10.0 * ch.gamma) / (3.0 * ch.tau)
    c4 = (5.0 * ch.L - 3.0 * ch.gamma) / (2.0 * ch.tau**2)
    z = a - ch.tau
    return -ch.gamma * a**2 + c3 * z**3 + c4 * z**4


def chain_g1_prime(ch: Chain, a) -> np.ndarray:
    """Derivative of :func:`chain_g1`."""
    a = np.asarray(a, dtype=float)
    c3 = (-14.0 * ch.L + 10.0 * ch.gamma) / (3.0 * ch.tau)
    c4 = (5.0 * ch.L - 3.0 * ch.gamma) / (2.0 * ch.tau**2)
    z = a - ch.tau
    return -2.0 * ch.gamma * a + 3.0 * c3 * z**2 + 4.0 * c4 * z**3


def chain_g2(ch: Chain, a) -> np.ndarray:
    """``g2(a) = -gamma - (L + gamma)(10 s^3 + 15 s^4 + 6 s^5)``, ``s = (a - 2 tau) / tau``: the curvature of the
    next coordinate, from ``+L`` at ``a = tau`` to ``-gamma`` at ``a = 2 tau`` (flat at both ends)."""
    s = (np.asarray(a, dtype=float) - 2.0 * ch.tau) / ch.tau
    return -ch.gamma - (ch.L + ch.gamma) * (10.0 * s**3 + 15.0 * s**4 + 6.0 * s**5)


def chain_g2_prime(ch: Chain, a) -> np.ndarray:
    """Derivative of :func:`chain_g2`."""
    s = (np.asarray(a, dtype=float) - 2.0 * ch.tau) / ch.tau
    return -(ch.L + ch.gamma) * (30.0 * s**2 + 60.0 * s**3 + 30.0 * s**4) / ch.tau


class Domain(NamedTuple):
    """Where points lie in the chain: ``i`` (n,) in 1..d+1 (the saddle whose neighbourhood it is; d + 1 for the
    final domain) and ``part`` (n,) 1 or 2 (D_{i,1}: ``|x_i| <= tau``; D_{i,2}: ``tau < |x_i| < 2 tau``); ``inside``
    (n,) False where the point lies in no domain."""

    i: np.ndarray
    part: np.ndarray
    inside: np.ndarray


def _domain_from_abs(ch: Chain, a: np.ndarray) -> Domain:
    lead = a >= 2.0 * ch.tau
    i0 = np.where(lead.all(axis=1), ch.d, np.argmin(lead, axis=1))  # 0-based index of the first coordinate < 2 tau
    j = np.arange(ch.d)
    ai = np.take_along_axis(a, np.minimum(i0, ch.d - 1)[:, None], axis=1)[:, 0]
    part = np.where((i0 < ch.d) & (ai > ch.tau), 2, 1)
    leading_ok = np.all((j[None, :] >= i0[:, None]) | (a <= 6.0 * ch.tau), axis=1)
    trailing_ok = np.all((j[None, :] <= i0[:, None]) | (a <= ch.tau), axis=1)
    return Domain(i0 + 1, part, leading_ok & trailing_ok)


def _chain_points(ch: Chain, x) -> np.ndarray:
    if not isinstance(ch, Chain):
        raise ValueError("ch must be a Chain (see gdlab.chain.chain)")
    x = as_array("x", x)
    if x.ndim == 0 or x.shape[-1] != ch.d:
        raise ValueError(f"x must have shape (..., {ch.d}); got {x.shape}")
    return x


def chain_domain(ch: Chain, x) -> Domain:
    """The domain of each point of ``x`` (..., d): see :class:`Domain` (arrays of shape (...))."""
    x = _chain_points(ch, x)
    flat = np.abs(x.reshape(-1, ch.d))
    dom = _domain_from_abs(ch, flat)
    return Domain(*(v.reshape(x.shape[:-1]) for v in dom))


def _chain_terms(ch: Chain, x: np.ndarray):
    """Per-point pieces shared by value and gradient: flat x (n, d), |x|, domain, 0-based i0 and masks."""
    xf = x.reshape(-1, ch.d)
    a = np.abs(xf)
    dom = _domain_from_abs(ch, a)
    i0 = dom.i - 1
    j = np.arange(ch.d)[None, :]
    two = (dom.part == 2)[:, None]
    lead = j < i0[:, None]
    at = j == i0[:, None]
    nxt = two & (j == i0[:, None] + 1)
    tail = (j > i0[:, None]) & ~nxt
    return xf, a, dom, i0, lead, at, nxt, tail, two


def _chain_point(ch: Chain, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Value and gradient of the chain at one point ``x`` (d,), by slices (the fast path of single points)."""
    d, L, tau = ch.d, ch.L, ch.tau
    a = np.abs(x)
    lead = a >= 2.0 * tau
    i0 = d if lead.all() else int(np.argmin(lead))
    if np.any(a[:i0] > 6.0 * tau) or np.any(a[i0 + 1:] > tau):
        return np.nan, np.full(d, np.nan)
    g = np.empty(d)
    sgn = np.sign(x)
    f = float(L * np.sum((a[:i0] - 4.0 * tau) ** 2)) - i0 * ch.nu
    g[:i0] = 2.0 * L * (a[:i0] - 4.0 * tau) * sgn[:i0]
    if i0 == d:
        return f, g
    ai = a[i0]
    if ai <= tau:  # D_{i,1}
        f += -ch.gamma * ai**2 + L * float(x[i0 + 1:] @ x[i0 + 1:])
        g[i0] = -2.0 * ch.gamma * x[i0]
        g[i0 + 1:] = 2.0 * L * x[i0 + 1:]
        return f, g
    b = x[i0 + 1] if i0 + 1 < d else 0.0  # D_{i,2}
    f += float(chain_g1(ch, ai) + chain_g2(ch, ai) * b**2) + L * float(x[i0 + 2:] @ x[i0 + 2:])
    g[i0] = float(chain_g1_prime(ch, ai) + chain_g2_prime(ch, ai) * b**2) * sgn[i0]
    if i0 + 1 < d:
        g[i0 + 1] = 2.0 * float(chain_g2(ch, ai)) * b
    g[i0 + 2:] = 2.0 * L * x[i0 + 2:]
    return f, g


def chain_f(ch: Chain, x) -> np.ndarray:
    """The chain-of-saddles function (formulas.md, chapter 6 of the book); ``x`` (..., d) -> (...).

    On D_{i,1}: ``sum_{j<i} L (|x_j| - 4tau)^2 - gamma x_i^2 + sum_{j>i} L x_j^2 - (i-1) nu``;
    on D_{i,2}: the same with ``-gamma x_i^2 + L x_{i+1}^2`` replaced by ``g1(|x_i|) + g2(|x_i|) x_{i+1}^2``
    (``g1(|x_d|)`` alone for i = d); on D_{d+1}: ``sum_j L (|x_j| - 4tau)^2 - d nu``. NaN outside the domains.
    """
    x = _chain_points(ch, x)
    if x.ndim == 1:
        return np.asarray(_chain_point(ch, x)[0])
    xf, a, dom, i0, lead, at, nxt, tail, two = _chain_terms(ch, x)
    ai = np.take_along_axis(a, np.minimum(i0, ch.d - 1)[:, None], axis=1)
    b2 = np.sum(np.where(nxt, xf**2, 0.0), axis=1, keepdims=True)
    f_at = np.where(two, chain_g1(ch, ai) + chain_g2(ch, ai) * b2, -ch.gamma * ai**2)
    terms = (np.where(lead, ch.L * (a - 4.0 * ch.tau) ** 2, 0.0) + np.where(tail, ch.L * xf**2, 0.0)
             + np.where(at, f_at, 0.0))
    f = terms.sum(axis=1) - i0 * ch.nu
    f = np.where(dom.inside, f, np.nan)
    return f.reshape(x.shape[:-1])


def chain_grad(ch: Chain, x) -> np.ndarray:
    """Gradient of :func:`chain_f`; ``x`` (..., d) -> (..., d). NaN outside the domains."""
    x = _chain_points(ch, x)
    if x.ndim == 1:
        return _chain_point(ch, x)[1]
    xf, a, dom, i0, lead, at, nxt, tail, two = _chain_terms(ch, x)
    sgn = np.sign(xf)
    ai = np.take_along_axis(a, np.minimum(i0, ch.d - 1)[:, None], axis=1)
    b2 = np.sum(np.where(nxt, xf**2, 0.0), axis=1, keepdims=True)
    g_at = np.where(two, (chain_g1_prime(ch, ai) + chain_g2_prime(ch, ai) * b2) * sgn, -2.0 * ch.gamma * xf)
    g = (np.where(lead, 2.0 * ch.L * (a - 4.0 * ch.tau) * sgn, 0.0) + np.where(tail, 2.0 * ch.L * xf, 0.0)
         + np.where(at, g_at, 0.0) + np.where(nxt, 2.0 * chain_g2(ch, ai) * xf, 0.0))
    g = np.where(dom.inside[:, None], g, np.nan)
    return g.reshape(x.shape)


class BoundaryGaps(NamedTuple):
    """Largest one-sided-limit differences of ``f`` and of ``grad f`` across the chain's domain boundaries."""

    f: float
    grad: float


def chain_boundary_gaps(ch: Chain, delta: float, n: int, seed) -> BoundaryGaps:
    """Continuity check of the chain across ``|x_i| = tau`` and ``|x_i| = 2 tau`` (chapter 6).

    For ``n`` random points on each kind of boundary (random i, signs, other coordinates inside the domains), the
    limits of ``f`` and ``grad f`` from either side are estimated by linear extrapolation from distances ``delta``
    and ``2 delta``; returns the largest differences. They are O(delta^2) where ``f`` is C^1 and O(1) at a jump.
    """
    delta = as_float("delta", delta, high=0.25 * ch.tau if isinstance(ch, Chain) else np.inf)
    n = as_int("n", n)
    if not isinstance(ch, Chain):
        raise ValueError("ch must be a Chain (see gdlab.chain.chain)")
    rng = as_rng(seed)
    gap_f = gap_g = 0.0
    for _ in range(n):
        for level in (1.0, 2.0):
            i0 = int(rng.integers(ch.d))
            x = np.empty(ch.d)
            x[:i0] = rng.uniform(2.5, 5.5, size=i0) * ch.tau
            x[i0] = level * ch.tau
            x[i0 + 1:] = rng.uniform(-0.9, 0.9, size=ch.d - i0 - 1) * ch.tau
            x *= rng.choice([-1.0, 1.0], size=ch.d)
            e = np.zeros(ch.d)
            e[i0] = np.sign(x[i0])
            side = [x + k * delta * e for k in (-2, -1, 1, 2)]
            f = [float(chain_f(ch, p)) for p in side]
            g = [chain_grad(ch, p) for p in side]
            gap_f = max(gap_f, abs((2 * f[1] - f[0]) - (2 * f[2] - f[3])))
            gap_g = max(gap_g, float(np.max(np.abs((2 * g[1] - g[0]) - (2 * g[2] - g[3])))))
    return BoundaryGaps(gap_f, gap_g)


def chain_block_hessian(ch: Chain, a, b) -> np.ndarray:
    """The Hessian of the chain on D_{i,2} (i < d) in the coordinates ``(|x_i|, x_{i+1})`` (chapter 6).

    ``a`` and ``b`` broadcast to a common shape S (``tau <= a <= 2 tau``, ``|b| <= tau``); returns (S + (2, 2)):
    ``[[g1''(a) + g2''(a) b^2, 2 g2'(a) b], [2 g2'(a) b, 2 g2(a)]]``. The other diagonal entries of the Hessian there
    are ``2L``; flipping the sign of ``x_i`` flips the off-diagonal entry, which leaves the eigenvalues unchanged.
    """
    if not isinstance(ch, Chain):
        raise ValueError("ch must be a Chain (see gdlab.chain.chain)")
    a, b = np.broadcast_arrays(as_array("a", a), as_array("b", b))
    c3 = (-14.0 * ch.L + 10.0 * ch.gamma) / (3.0 * ch.tau)
    c4 = (5.0 * ch.L - 3.0 * ch.gamma) / (2.0 * ch.tau**2)
    z, s = a - ch.tau, (a - 2.0 * ch.tau) / ch.tau
    g1pp = -2.0 * ch.gamma + 6.0 * c3 * z + 12.0 * c4 * z**2
    g2pp = -(ch.L + ch.gamma) * (60.0 * s + 180.0 * s**2 + 120.0 * s**3) / ch.tau**2
    off = 2.0 * chain_g2_prime(ch, a) * b
    return np.stack([np.stack([g1pp + g2pp * b**2, off], axis=-1),
                     np.stack([off, 2.0 * chain_g2(ch, a)], axis=-1)], axis=-2)


class ChainSmoothness(NamedTuple):
    """The Lipschitz constant of the chain's gradient on its domains: ``ell`` = the largest ``|eigenvalue|`` of the
    Hessian, attained at ``|x_i| = a``, ``|x_{i+1}| = b`` of some D_{i,2}; ``eigenvalue`` the signed eigenvalue there."""

    ell: float
    a: float
    b: float
    eigenvalue: float


def chain_smoothness(ch: Chain, n: int = 201) -> ChainSmoothness:
    """``sup ||Hess f||_2`` over the union of the chain's domains (chapter 6), the smallest ``ell`` with
    ``||grad f(x) - grad f(y)|| <= ell ||x - y||`` for nearby ``x, y`` in a domain.

    On D_{i,1}, D_{d+1} the Hessian is diagonal with entries ``2L``, ``-2 gamma``; on D_{i,2} it is ``2L`` except for
    the block :func:`chain_block_hessian` (and ``g1''(|x_d|)`` alone on D_{d,2}), whose largest ``|eigenvalue|`` is
    maximised over ``tau <= a <= 2 tau``, ``0 <= b <= tau``: on an ``n`` x ``n`` grid, then on an ``n`` x ``n`` grid
    over the four grid cells around the best point (spacing ``tau / (50 (n - 1))`` for the default). The result does
    not depend on ``tau`` or ``d`` (for d >= 2); it is about 15.5 L for L = gamma = 1, far above the ``2L`` of the
    quadratic pieces.
    """
    if not isinstance(ch, Chain):
        raise ValueError("ch must be a Chain (see gdlab.chain.chain)")
    n = as_int("n", n, low=3)
    h = ch.tau / (n - 1)
    lo_a, hi_a, lo_b, hi_b = ch.tau, 2.0 * ch.tau, 0.0, ch.tau
    for _ in range(2):  # the whole rectangle, then the neighbourhood of its best grid point
        a = np.linspace(lo_a, hi_a, n)
        b = np.linspace(lo_b, hi_b, n) if ch.d > 1 else np.zeros(1)
        lam = np.linalg.eigvalsh(chain_block_hessian(ch, a[:, None], b[None, :] if ch.d > 1 else 0.0))
        k = np.unravel_index(np.argmax(np.abs(lam)), lam.shape)
        a_star, b_star = float(a[k[0]]), float(b[k[1]]) if ch.d > 1 else 0.0
        lo_a, hi_a = max(ch.tau, a_star - 2 * h), min(2.0 * ch.tau, a_star + 2 * h)
        lo_b, hi_b = max(0.0, b_star - 2 * h), min(ch.tau, b_star + 2 * h)
    ell, lam_star = float(np.abs(lam[k])), float(lam[k])
    flat = max(2.0 * ch.L, 2.0 * ch.gamma)
    if flat >= ell:
        return ChainSmoothness(flat, np.nan, np.nan, flat if ch.L >= ch.gamma else -flat)
    return ChainSmoothness(ell, a_star, b_star, lam_star)


def chain_kappa(ch: Chain, alpha: float | None = None) -> float:
    """The growth ratio ``kappa = 1 + log(1 / (1 - 2 alpha L)) / log(1 + 2 alpha gamma)`` of gradient descent's
    passing times on the chain (chapter 6, eq-kappa); ``alpha`` defaults to the paper's ``1 / (4L)``, where it is
    ``1 + log 2 / log(1 + gamma / (2L))``. Needs ``0 < alpha < 1 / (2L)``."""
    if not isinstance(ch, Chain):
        raise ValueError("ch must be a Chain (see gdlab.chain.chain)")
    alpha = ch.step if alpha is None else as_float("alpha", alpha, high=0.5 / ch.L, high_open=True)
    return float(1.0 + -np.log1p(-2.0 * alpha * ch.L) / np.log1p(2.0 * alpha * ch.gamma))


def chain_init(ch: Chain, seed) -> np.ndarray:
    """The paper's initialisation: uniform on ``[-1, 1]^d`` (inside D_{1,1} because ``tau > 1``); returns (d,)."""
    if not isinstance(ch, Chain):
        raise ValueError("ch must be a Chain (see gdlab.chain.chain)")
    if ch.tau <= 1.0:
        raise ValueError(f"the chain's tau must be > 1 for the [-1, 1]^d initialisation; got {ch.tau}")
    return as_rng(seed).uniform(-1.0, 1.0, size=ch.d)


class ChainRun(NamedTuple):
    """Gradient descent on the chain (chapter 6).

    ``k`` (R,) recorded iterations and ``f`` (R,) the objective there; ``passed`` (d,) the first iteration at which
    ``|x_i| >= 2 tau`` (saddle i passed, the run is in a domain beyond i), -1 if never; ``steps`` the iterations run;
    ``diverged_at`` the iteration at which an iterate left the domains, where ``f`` is not defined (NaN), or ``f``
    went above :func:`gdlab.runs.divergence_threshold` of ``f(x0)`` (-1: never; :mod:`gdlab.runs`: the records end
    before it); ``x`` (d,) the last iterate, whose tiny coordinates may be 0 in float64; ``log_abs_x`` (d,)
    ``log |x_j|`` of the last iterate, exact.
    """

    k: np.ndarray
    f: np.ndarray
    passed: np.ndarray
    steps: int
    diverged_at: int
    x: np.ndarray
    log_abs_x: np.ndarray

    @property
    def diverged(self) -> bool:
        """Whether the run left the domains or diverged (``diverged_at >= 0``)."""
        return self.diverged_at >= 0


def _passed_update(passed: np.ndarray, i_reached: int, k: int) -> None:
    """Mark saddles 1..i_reached-1 as passed at iteration k (those not marked before)."""
    idx = np.arange(passed.size)
    passed[(idx < i_reached - 1) & (passed < 0)] = k


def _chain_log_step(ch: Chain, sign: np.ndarray, u: np.ndarray, alpha: float, i0: int, part: int) -> None:
    """One gradient step on the chain in the representation ``x_j = sign_j exp(u_j)``, in place.

    Coordinates that GD multiplies by a constant factor (the escaping one in D_{i,1}, the next one in D_{i,2},
    the trailing ones) are updated through their logarithm, so they never underflow; the others (order tau) through
    their value.
    """
    d, L = ch.d, ch.L

    def scale(jj, factor):  # a zero factor makes the coordinate exactly 0: u = -inf
        sign[jj] *= np.sign(factor)
        with np.errstate(divide="ignore"):
            u[jj] += np.log(np.abs(factor))

    def shift(jj, new_value):
        sign[jj] = np.where(new_value < 0, -1.0, 1.0) * sign[jj]
        with np.errstate(divide="ignore"):
            u[jj] = np.log(np.abs(new_value))

    a = np.exp(u)
    lead = slice(0, i0)
    shift(lead, a[lead] - alpha * 2.0 * L * (a[lead] - 4.0 * ch.tau))
    if i0 == d:
        return
    if part == 1:
        scale(i0, 1.0 + 2.0 * alpha * ch.gamma)
        scale(slice(i0 + 1, d), np.full(d - i0 - 1, 1.0 - 2.0 * alpha * L))
        return
    ai = a[i0]
    b2 = np.exp(2.0 * u[i0 + 1]) if i0 + 1 < d else 0.0
    if i0 + 1 < d:
        scale(i0 + 1, 1.0 - 2.0 * alpha * float(chain_g2(ch, ai)))
        scale(slice(i0 + 2, d), np.full(d - i0 - 2, 1.0 - 2.0 * alpha * L))
    shift(i0, ai - alpha * float(chain_g1_prime(ch, ai) + chain_g2_prime(ch, ai) * b2))


def chain_gd(ch: Chain, x0, max_steps: int = 10**9, *, alpha: float | None = None, jump: bool = True,
             records_per_phase: int = 40) -> ChainRun:
    """Gradient descent with step ``alpha`` (default ``1/(4L)``) on the chain from ``x0`` (d,), exactly and fast
    (chapter 6), until every saddle is passed or ``max_steps`` iterations.

    The coordinates that GD only rescales are kept as ``log |x_j|``: in float64 they would underflow after about
    1000 halvings and GD would stall on a stable manifold (:func:`chain_gd_plain` shows it). In D_{i,1} every
    coordinate evolves by a fixed affine map per step, so with ``jump=True`` the whole stay in D_{i,1} is applied
    at once (the same iterates, computed in closed form); ``jump=False`` steps one by one. ``f`` is recorded at
    every step outside those stays and at ``records_per_phase`` iterations spread over each of them.
    """
    x0 = as_array("x0", x0, shape=(ch.d,) if isinstance(ch, Chain) else None)
    _chain_points(ch, x0)
    alpha = ch.step if alpha is None else as_float("alpha", alpha)
    max_steps = as_int("max_steps", max_steps, low=0)
    records_per_phase = as_int("records_per_phase", records_per_phase, low=2)
    if np.any(x0 == 0):
        raise ValueError("x0 must have no zero coordinate (a zero coordinate lies on a stable manifold)")
    sign, u = np.sign(x0), np.log(np.abs(x0))
    log_tau, log_2tau, log_6tau = np.log(ch.tau), np.log(2.0 * ch.tau), np.log(6.0 * ch.tau)
    passed = np.full(ch.d, -1)
    ks, fs = [], []
    rho_up, rho_down = 1.0 + 2.0 * alpha * ch.gamma, 1.0 - 2.0 * alpha * ch.L

    def value():
        return float(chain_f(ch, sign * np.exp(u)))

    def record(k, f_k=None):
        ks.append(k)
        fs.append(value() if f_k is None else f_k)

    limit = divergence_threshold(value())
    k, left = 0, NOT_DIVERGED
    while True:
        lead = u >= log_2tau
        i0 = ch.d if lead.all() else int(np.argmin(lead))
        inside = np.all(u[:i0] <= log_6tau) and np.all(u[i0 + 1:] <= log_tau)
        part = 2 if (i0 < ch.d and u[i0] > log_tau) else 1
        if i0 < ch.d and part == 2 and i0 + 1 < ch.d:
            inside = inside and u[i0 + 1] <= log_tau
        # checked at every step, and at the start of a stay in D_{i,1}: along it f only decreases (its quadratic
        # terms shrink by rho_down^2, the -gamma x_i^2 term grows in size), so it cannot cross the threshold there
        f_now = value() if inside else np.nan
        if diverges(f_now, limit):
            left = k
            break
        _passed_update(passed, i0 + 1, k)
        if i0 == ch.d or k >= max_steps:
            record(k, f_now)
            break
        if jump and part == 1 and rho_up > 1.0 and 0.0 < rho_down:
            n = int(np.floor((log_tau - u[i0]) / np.log(rho_up))) + 1  # steps until |x_i| > tau
            n = max(1, min(n, max_steps - k))
            u0, s0 = u.copy(), sign.copy()
            for kk in record_steps(n - 1, records_per_phase):
                u, sign = _chain_affine(ch, s0, u0, i0, kk, rho_up, rho_down)
                record(k + kk)
            u, sign = _chain_affine(ch, s0, u0, i0, n, rho_up, rho_down)
            k += n
            continue
        record(k, f_now)
        _chain_log_step(ch, sign, u, alpha, i0, part)
        k += 1
    k_arr, f_arr = np.array(ks), np.array(fs)
    return ChainRun(k_arr, f_arr, passed, k, left, sign * np.exp(u), u.copy())


def _chain_affine(ch: Chain, sign, u, i0: int, n: int, rho_up: float, rho_down: float):
    """``n`` gradient steps inside D_{i0+1,1} in closed form: ``|x_j| - 4tau`` (j < i) and ``x_j`` (j > i) scale by
    ``rho_down^n``, ``x_i`` by ``rho_up^n``. Returns new ``(u, sign)`` (log-abs and signs)."""
    u, sign = u.copy(), sign.copy()
    a_lead = 4.0 * ch.tau + (np.exp(u[:i0]) - 4.0 * ch.tau) * rho_down**n
    u[:i0] = np.log(a_lead)
    u[i0] += n * np.log(rho_up)
    u[i0 + 1:] += n * np.log(rho_down)
    return u, sign


def chain_gd_plain(ch: Chain, x0, steps: int, *, alpha: float | None = None) -> ChainRun:
    """Plain float64 gradient descent ``x <- x - alpha grad f(x)`` on the chain, step by step (chapter 6): the
    numerical trap. Coordinates that are halved every step reach the smallest subnormal after about 1075 steps and
    then stay there or become exactly 0, so GD stalls near a saddle it should leave. Compare with :func:`chain_gd`."""
    x = as_array("x0", x0, shape=(ch.d,) if isinstance(ch, Chain) else None).copy()
    _chain_points(ch, x)
    alpha = ch.step if alpha is None else as_float("alpha", alpha)
    steps = as_int("steps", steps, low=0)
    X = np.full((steps + 1, ch.d), np.nan)
    X[0] = x
    for k in range(steps):
        g = chain_grad(ch, x)
        if not np.all(np.isfinite(g)):  # outside the domains: the rows from here on stay NaN
            break
        x = x - alpha * g
        X[k + 1] = x
    return chain_run_from_path(ch, X)


def chain_run_from_path(ch: Chain, X: np.ndarray) -> ChainRun:
    """A :class:`ChainRun` from a stepwise path ``X`` (T+1, d) (NaN rows after the run left the domains)."""
    if not isinstance(ch, Chain):
        raise ValueError("ch must be a Chain (see gdlab.chain.chain)")
    try:
        X = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError("x must be an array of real numbers (the path, NaN rows allowed)") from exc
    if X.ndim != 2 or X.shape[1] != ch.d or X.shape[0] < 1:
        raise ValueError(f"x must have shape (T, {ch.d}) with T >= 1 (the path X); got {X.shape}")
    finite = np.all(np.isfinite(X), axis=1)
    f = np.full(X.shape[0], np.nan)
    f[finite] = chain_f(ch, X[finite])
    dom = _domain_from_abs(ch, np.abs(np.where(finite[:, None], X, 0.0)))
    bad = ~dom.inside | diverges(f, divergence_threshold(f[0]))  # f is NaN at a non-finite row
    left = int(np.argmax(bad)) if bad.any() else NOT_DIVERGED
    T = X.shape[0] if left < 0 else left
    passed = np.full(ch.d, -1)
    for i in range(1, ch.d + 1):
        hit = np.nonzero(dom.i[:T] > i)[0]
        passed[i - 1] = hit[0] if hit.size else -1
    with np.errstate(divide="ignore"):
        log_abs = np.log(np.abs(X[T - 1]))
    return ChainRun(np.arange(T), f[:T], passed, T - 1, left, X[T - 1].copy(), log_abs)
