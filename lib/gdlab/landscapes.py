"""Loss landscapes for chapter 1 (compute layer): the non-convexity counterexample, 2-D test surfaces,
the health ratio ``|grad f|^2 / f`` on a grid, random slices through an MLP loss, and vectorised descent paths.

The 2-D surfaces all have infimum 0:

* ``"convex"``: the quadratic ``f(x, y) = (x^2 + 4 y^2) / 2``.
* ``"bulge"``: ``f(w) = (|w|^2 / 2) (1 + B exp(-|w - c|^2 / (2 s^2)))``, a quadratic with a bump: not convex,
  yet its only critical point is the global minimum at 0 and its health ratio stays bounded away from 0.
* ``"trap"``: ``f(x, y) = (x^2 - 1)^2 / 4 + (x - 1)^2 / 10 + y^2 / 2``: a global minimum at (1, 0) and a spurious
  local minimum near (-0.72, 0), where the health ratio is 0 (for contrast; chapter 3 makes "health" precise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._checks import as_array, as_float, as_int, as_rng
from .nets import MLPProblem, mlp_loss
from .numerics import hessian_fd
from .runs import NOT_DIVERGED, divergence_threshold, diverges

# ----------------------------------------------------------------------------------------------------------
# The counterexample of Gelada & Buckman (chapter 1)
# ----------------------------------------------------------------------------------------------------------


class Counterexample(NamedTuple):
    """Two zero-loss parameter points of the MLP with m = n = 1, k = 2 on the data point x = 1, q = 0.

    ``w = (M, N)`` with ``M = [1, 0]^T``, ``N = [0, 1]``; ``w' = (M', N')`` with ``M' = [0, 1]^T``, ``N' = [1, 0]``.
    """

    M: np.ndarray
    N: np.ndarray
    M_prime: np.ndarray
    N_prime: np.ndarray
    x: np.ndarray
    q: np.ndarray


def counterexample() -> Counterexample:
    """The two parameter points of the non-convexity counterexample (chapter 1, :cite:`gelada2024`)."""
    return Counterexample(
        M=np.array([[1.0], [0.0]]),
        N=np.array([[0.0, 1.0]]),
        M_prime=np.array([[0.0], [1.0]]),
        N_prime=np.array([[1.0, 0.0]]),
        x=np.array([1.0]),
        q=np.array([0.0]),
    )


def segment_loss(s) -> np.ndarray:
    """Loss of the MLP at ``u(s) = s w + (1 - s) w'`` for each ``s`` in the array ``s`` (chapter 1).

    Computed by evaluating the network, not from a formula; compare with :func:`segment_loss_closed_form`.
    """
    s = as_array("s", s)
    c = counterexample()
    return np.array([
        mlp_loss(si * c.M + (1 - si) * c.M_prime, si * c.N + (1 - si) * c.N_prime, c.x, c.q) for si in s.ravel()
    ]).reshape(s.shape)


def segment_loss_closed_form(s) -> np.ndarray:
    """The loss on the segment worked out by hand: ``y(s) = 2 s (1 - s)`` for s in [0, 1], so ``f = 2 s^2 (1 - s)^2``.

    (The article states ``s^2 (1 - s)^2 / 2``, a factor 4 smaller; the shape, and the conclusion, are the same.)
    Outside [0, 1] one hidden unit is switched off and the formula no longer applies.
    """
    s = as_array("s", s)
    return 2.0 * s**2 * (1.0 - s) ** 2


def segment_loss_piecewise(s) -> np.ndarray:
    """The loss on the whole line ``u(s) = s w + (1 - s) w'``, worked out by hand for every real ``s`` (chapter 1).

    ``s`` is an array of any shape; the result has the same shape. The hidden pre-activations are
    ``a(s) = (s, 1 - s)``: both units are on for s in [0, 1], where ``y = 2 s (1 - s)`` and ``f = 2 s^2 (1 - s)^2``;
    outside [0, 1] exactly one unit is on, ``y = s (1 - s)`` and ``f = s^2 (1 - s)^2 / 2`` (the article's expression,
    which therefore holds off the segment but not on it).
    """
    s = as_array("s", s)
    both_on = (s >= 0.0) & (s <= 1.0)
    return np.where(both_on, 2.0, 0.5) * s**2 * (1.0 - s) ** 2


# ----------------------------------------------------------------------------------------------------------
# 2-D landscapes
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Landscape:
    """A 2-D loss surface with infimum 0. ``f`` maps (..., 2) -> (...), ``grad`` maps (..., 2) -> (..., 2).

    ``box = (x_min, x_max, y_min, y_max)`` is the region shown in the book; ``minimiser`` (2,) a global minimiser.
    """

    name: str
    f: Callable[[np.ndarray], np.ndarray]
    grad: Callable[[np.ndarray], np.ndarray]
    box: tuple[float, float, float, float]
    minimiser: np.ndarray
    description: str


def _quadratic_f(w):
    return 0.5 * (w[..., 0] ** 2 + 4.0 * w[..., 1] ** 2)


def _quadratic_grad(w):
    return np.stack([w[..., 0], 4.0 * w[..., 1]], axis=-1)


_BULGE_B, _BULGE_C, _BULGE_S = 1.0, np.array([1.0, 1.0]), 0.7


def _bulge_parts(w):
    d = w - _BULGE_C
    phi = np.exp(-np.sum(d * d, axis=-1) / (2 * _BULGE_S**2))
    return 0.5 * np.sum(w * w, axis=-1), phi, d


def _bulge_f(w):
    q, phi, _ = _bulge_parts(w)
    return q * (1.0 + _BULGE_B * phi)


def _bulge_grad(w):
    q, phi, d = _bulge_parts(w)
    return w * (1.0 + _BULGE_B * phi)[..., None] - (q * _BULGE_B * phi / _BULGE_S**2)[..., None] * d


def _trap_f(w):
    x, y = w[..., 0], w[..., 1]
    return 0.25 * (x**2 - 1.0) ** 2 + 0.1 * (x - 1.0) ** 2 + 0.5 * y**2


def _trap_grad(w):
    x, y = w[..., 0], w[..., 1]
    return np.stack([x * (x**2 - 1.0) + 0.2 * (x - 1.0), y], axis=-1)


#: The three 2-D landscapes of chapter 1 by name: ``"convex"``, ``"bulge"`` and ``"trap"``.
LANDSCAPES: dict[str, Landscape] = {
    "convex": Landscape("convex", _quadratic_f, _quadratic_grad, (-2.0, 2.0, -2.0, 2.0), np.zeros(2),
                        "convex quadratic (x^2 + 4 y^2) / 2"),
    "bulge": Landscape("bulge", _bulge_f, _bulge_grad, (-2.0, 2.0, -2.0, 2.0), np.zeros(2),
                       "quadratic with a bulge: non-convex, no bad minima"),
    "trap": Landscape("trap", _trap_f, _trap_grad, (-2.0, 2.0, -2.0, 2.0), np.array([1.0, 0.0]),
                      "tilted double well: a spurious local minimum near (-0.72, 0)"),
}


def get_landscape(name: str) -> Landscape:
    """The landscape called ``name`` (one of ``LANDSCAPES``)."""
    if name not in LANDSCAPES:
        raise ValueError(f"name must be one of {sorted(LANDSCAPES)}; got {name!r}")
    return LANDSCAPES[name]


class Grid(NamedTuple):
    """Values on a grid: ``xs`` (nx,), ``ys`` (ny,), ``f`` (ny, nx), ``ratio`` (ny, nx) = ``|grad f|^2 / f``.

    ``ratio`` is NaN where ``f`` is 0 (the quotient is undefined at a global minimiser).
    """

    xs: np.ndarray
    ys: np.ndarray
    f: np.ndarray
    ratio: np.ndarray


def health_ratio(landscape: Landscape, w) -> np.ndarray:
    """``|grad f(w)|^2 / f(w)`` at points ``w`` (..., 2); NaN where ``f(w) = 0`` (chapter 1, made precise in chapter 3)."""
    w = as_array("w", w)
    if w.shape[-1:] != (2,):
        raise ValueError(f"w must have shape (..., 2); got {w.shape}")
    f = landscape.f(w)
    g = landscape.grad(w)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(f > 0, np.sum(g * g, axis=-1) / np.where(f > 0, f, 1.0), np.nan)


def landscape_grid(landscape: Landscape, n: int = 161) -> Grid:
    """Loss and health ratio of ``landscape`` on an ``n x n`` grid covering its box."""
    n = as_int("n", n, low=2)
    x0, x1, y0, y1 = landscape.box
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    W = np.stack(np.meshgrid(xs, ys), axis=-1)
    return Grid(xs, ys, landscape.f(W), health_ratio(landscape, W))


def _box_points(landscape: Landscape, n: int) -> np.ndarray:
    """An ``n x n`` grid covering the landscape's box, as points of shape (n, n, 2)."""
    x0, x1, y0, y1 = landscape.box
    return np.stack(np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n)), axis=-1)


def hessian(landscape: Landscape, w, h: float = 1e-5) -> np.ndarray:
    """``Hess f(w)`` at points ``w`` (..., 2) -> (..., 2, 2), by central differences of ``landscape.grad`` (chapter 1).

    Step ``h``: truncation error O(h^2) plus round-off O(eps / h), about 1e-10 for these surfaces at the default.
    The result is symmetrised.
    """
    if not isinstance(landscape, Landscape):
        raise ValueError(f"landscape must be a Landscape (see get_landscape); got {type(landscape).__name__}")
    w = as_array("w", w)
    if w.shape[-1:] != (2,):
        raise ValueError(f"w must have shape (..., 2); got {w.shape}")
    return hessian_fd(landscape.grad, w, as_float("h", h, high=1e-2))


def lipschitz_on_box(landscape: Landscape, n: int = 201, h: float = 1e-5) -> float:
    """Estimate ``L = max |Hess f|_2`` over the landscape's box on an ``n x n`` grid (finite-difference Hessians).

    A *global* constant (chapter 1): on the box, every step with ``eta < 2 / L`` decreases ``f`` (descent lemma).
    """
    n = as_int("n", n, low=2)
    return float(np.max(np.abs(np.linalg.eigvalsh(hessian(landscape, _box_points(landscape, n), h)))))


class HessianMin(NamedTuple):
    """Smallest Hessian eigenvalue found on a grid: ``value`` (float) and the grid point ``where`` (2,) it occurs."""

    value: float
    where: np.ndarray


def hessian_min_eig_on_box(landscape: Landscape, n: int = 201, h: float = 1e-5) -> HessianMin:
    """Smallest eigenvalue of ``Hess f`` over an ``n x n`` grid covering the landscape's box (chapter 1).

    The Hessian at each grid point (n, n, 2, 2) comes from :func:`hessian` (central differences of
    ``landscape.grad`` with step ``h``, error O(h^2) plus round-off O(eps / h)). A negative ``value`` certifies that
    ``f`` is not convex (a C^2 function is convex exactly when its Hessian is positive semi-definite everywhere).
    """
    if not isinstance(landscape, Landscape):
        raise ValueError(f"landscape must be a Landscape (see get_landscape); got {type(landscape).__name__}")
    n = as_int("n", n, low=2)
    W = _box_points(landscape, n)
    lam = np.linalg.eigvalsh(hessian(landscape, W, h))[..., 0]
    i, j = np.unravel_index(np.argmin(lam), lam.shape)
    return HessianMin(float(lam[i, j]), W[i, j].copy())


def critical_point(landscape: Landscape, w0, n_iter: int = 30) -> np.ndarray:
    """Newton's method ``w <- w - Hess f(w)^{-1} grad f(w)`` from ``w0`` (2,) for ``n_iter`` steps (chapter 1).

    Polishes a point found by gradient descent (typically 1e-6 away) into the critical point next to it, to
    round-off. Raises ValueError if a Hessian is singular or the gradient at the result is not below 1e-12.
    """
    w = as_array("w0", w0, shape=(2,)).copy()
    n_iter = as_int("n_iter", n_iter)
    for _ in range(n_iter):
        try:
            w = w - np.linalg.solve(hessian(landscape, w), landscape.grad(w))
        except np.linalg.LinAlgError as err:
            raise ValueError(f"w0 leads Newton's method to a singular Hessian at {w}") from err
    if not np.all(np.isfinite(w)) or np.linalg.norm(landscape.grad(w)) >= 1e-12:
        raise ValueError(f"w0 = {w0} does not lead Newton's method to a critical point in {n_iter} steps")
    return w


class LocalStability(NamedTuple):
    """Linear stability of gradient descent at a point ``w_star`` (2,) (chapter 1).

    ``eigenvalues`` (2,): of ``Hess f(w_star)``, ascending; ``limit``: the local stability limit
    ``2 / lambda_max`` (``inf`` if ``lambda_max <= 0``). Near a minimum, one step of size ``eta`` maps the error
    ``e = w - w_star`` to about ``(I - eta H) e``: for ``eta < limit`` every factor ``|1 - eta lambda_i|`` is below 1
    (when ``lambda_min > 0``), and :meth:`rate` is the contraction per step; above ``limit`` the top factor exceeds 1.
    """

    w_star: np.ndarray
    eigenvalues: np.ndarray
    limit: float

    def rate(self, eta: float) -> float:
        """``max_i |1 - eta lambda_i|``: the predicted contraction of ``|w_k - w_star|`` per step near ``w_star``."""
        eta = as_float("eta", eta)
        return float(np.max(np.abs(1.0 - eta * self.eigenvalues)))


def local_stability(landscape: Landscape, w_star, h: float = 1e-5) -> LocalStability:
    """Eigenvalues of ``Hess f(w_star)`` (:func:`hessian`) and the local limit ``2 / lambda_max`` (chapter 1).

    ``w_star`` (2,) is meant to be a minimum; unlike ``2 / L`` with ``L`` from :func:`lipschitz_on_box` (a global
    bound that guarantees descent from anywhere in the box), this limit decides only whether gradient descent can
    converge to ``w_star`` from nearby.
    """
    w_star = as_array("w_star", w_star, shape=(2,))
    lam = np.linalg.eigvalsh(hessian(landscape, w_star, h))
    return LocalStability(w_star.copy(), lam, float(2.0 / lam[-1]) if lam[-1] > 0 else np.inf)


class Paths(NamedTuple):
    """Gradient-descent paths from ``S`` starts: ``w`` (T+1, S, 2), ``loss`` (T+1, S), ``diverged_at`` (S,) int.

    ``diverged_at[i]`` is the step at which start i diverged (:mod:`gdlab.runs`: its losses are NaN from then on and
    its path is frozen at its last finite iterate), or -1 if it did not.
    """

    w: np.ndarray
    loss: np.ndarray
    diverged_at: np.ndarray

    @property
    def diverged(self) -> np.ndarray:
        """(S,) bool: ``diverged_at >= 0``."""
        return self.diverged_at >= 0


def descent_paths(landscape: Landscape, starts, eta: float, n_steps: int, max_loss: float | None = None) -> Paths:
    """Gradient descent with step ``eta`` on ``landscape`` from every row of ``starts`` (S, 2), all at once.

    A start whose loss exceeds ``max_loss`` (default: :func:`gdlab.runs.divergence_threshold` of its own start loss)
    or stops being finite is marked diverged and frozen.
    """
    starts = as_array("starts", starts, shape=(None, 2))
    eta = as_float("eta", eta)
    n_steps = as_int("n_steps", n_steps)
    W = np.empty((n_steps + 1, *starts.shape))
    F = np.empty((n_steps + 1, starts.shape[0]))
    diverged_at = np.full(starts.shape[0], NOT_DIVERGED)
    W[0], F[0] = starts, landscape.f(starts)
    max_loss = divergence_threshold(F[0]) if max_loss is None else as_float("max_loss", max_loss)
    with np.errstate(all="ignore"):
        for k in range(n_steps):
            alive = diverged_at < 0
            step = np.where(alive[:, None], eta * landscape.grad(W[k]), 0.0)
            W[k + 1] = W[k] - step
            f = landscape.f(W[k + 1])
            bad = alive & (diverges(f, max_loss) | ~np.all(np.isfinite(W[k + 1]), axis=1))
            diverged_at[bad] = k + 1
            W[k + 1][bad] = W[k][bad]
            F[k + 1] = np.where(diverged_at >= 0, np.nan, f)
    return Paths(W, F, diverged_at)


def inside_box(landscape: Landscape, paths: Paths) -> np.ndarray:
    """(S,) bool: every iterate of start i in ``paths`` lies in the landscape's box (chapter 1).

    The box is where :func:`lipschitz_on_box` bounds the Hessian, so this is the hypothesis under which its ``L``
    applies to the run.
    """
    if not isinstance(paths, Paths):
        raise ValueError(f"paths must be a Paths result of descent_paths; got {type(paths).__name__}")
    x0, x1, y0, y1 = landscape.box
    x, y = paths.w[..., 0], paths.w[..., 1]
    return np.all((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1), axis=0)


def descent_lemma_ratio(landscape: Landscape, paths: Paths, eta: float, L: float, floor: float = 1e-8) -> float:
    """Smallest ratio, over all steps of ``paths``, of the actual decrease to the one the descent lemma guarantees.

    For every step k of every start that has not diverged: ``(f(w_k) - f(w_{k+1})) / (eta (1 - eta L / 2)
    |grad f(w_k)|^2)`` (chapter 1; chapter 2 proves the lemma when ``L`` bounds the Hessian on the step's segment and
    ``0 < eta < 2 / L``). The lemma holds on the run exactly when the result is at least 1; it equals 1 for a step
    along an eigenvector of curvature ``L`` of a quadratic. Steps whose guaranteed decrease is below ``floor`` are
    left out: there the round-off of ``f`` (about 1e-16 f) could decide the ratio. Returns NaN if no step is left.
    """
    if not isinstance(paths, Paths):
        raise ValueError(f"paths must be a Paths result of descent_paths; got {type(paths).__name__}")
    L = as_float("L", L)
    eta = as_float("eta", eta, high=2.0 / L, high_open=True)
    floor = as_float("floor", floor)
    g = landscape.grad(paths.w[:-1])
    guaranteed = eta * (1.0 - eta * L / 2.0) * np.sum(g * g, axis=-1)
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(paths.loss[1:]) & (guaranteed > floor)
    if not np.any(keep):
        return np.nan
    return float(np.min((paths.loss[:-1][keep] - paths.loss[1:][keep]) / guaranteed[keep]))


class Outcomes(NamedTuple):
    """Where the runs of a :class:`Paths` (S starts) ended (chapter 1).

    ``at_minimum`` (M,) int: runs whose last iterate lies within ``tol`` of each of the M given minima; ``diverged``:
    runs marked diverged; ``other``: the rest (still moving, cycling, or elsewhere); ``rose``: runs with at least one
    step on which the loss rose by more than ``rise`` (an absolute tolerance above the round-off of ``f``).
    """

    at_minimum: np.ndarray
    diverged: int
    other: int
    rose: int


def run_outcomes(paths: Paths, minima, tol: float = 1e-6, rise: float = 1e-9) -> Outcomes:
    """Count where the runs of ``paths`` ended, near each row of ``minima`` (M, 2) or not (chapter 1)."""
    if not isinstance(paths, Paths):
        raise ValueError(f"paths must be a Paths result of descent_paths; got {type(paths).__name__}")
    minima = as_array("minima", minima, shape=(None, 2))
    tol, rise = as_float("tol", tol), as_float("rise", rise)
    diverged = paths.diverged_at >= 0
    near = (np.linalg.norm(paths.w[-1][None] - minima[:, None], axis=-1) < tol) & ~diverged  # (M, S)
    with np.errstate(invalid="ignore"):
        rose = np.any(np.diff(paths.loss, axis=0) > rise, axis=0)
    return Outcomes(near.sum(axis=1), int(diverged.sum()), int(np.sum(~diverged & ~near.any(axis=0))),
                    int(rose.sum()))


class StabilityCheck(NamedTuple):
    """Gradient descent started next to ``w_star`` at steps ``eta`` (E,) = ``factors`` (E,) * limit (chapter 1).

    ``predicted`` (E,): ``max_i |1 - eta lambda_i|`` from :meth:`LocalStability.rate`; ``measured`` (E,): the median
    of ``|w_{k+1} - w_star| / |w_k - w_star|`` over the steps with both distances in ``window``; ``final_distance``
    (E,): ``|w_T - w_star|`` after the run (NaN if it diverged); ``converged`` (E,) bool: final distance below
    ``tol``.
    """

    factors: np.ndarray
    eta: np.ndarray
    predicted: np.ndarray
    measured: np.ndarray
    final_distance: np.ndarray
    converged: np.ndarray

    def agrees(self, tol: float = 1e-4) -> bool:
        """The verdict of the check: gradient descent converged exactly at the factors below 1 (steps below the
        limit), and every measured rate is within ``tol`` of the predicted one."""
        tol = as_float("tol", tol)
        rates_ok = np.all(np.abs(self.measured - self.predicted) < tol)  # False where measured is NaN
        return bool(np.array_equal(self.converged, self.factors < 1.0) and rates_ok)


def check_local_stability(landscape: Landscape, stability: LocalStability, factors=(0.95, 1.05),
                          offset: float = 1e-6, n_steps: int = 300, window=(1e-9, 1e-4),
                          tol: float = 1e-12) -> StabilityCheck:
    """Run gradient descent at ``eta = factor * stability.limit`` for each factor, from ``w_star`` moved by
    ``offset`` along (1, 1) / sqrt 2, and compare the measured contraction per step with the predicted one (chapter 1).

    The window keeps the distances where the linearisation holds (above it, cubic terms) and round-off does not
    (below it: ``|w| ~ 1`` carries an error of about 1e-16 per step). Converged means a final distance below ``tol``.
    """
    if not isinstance(stability, LocalStability):
        raise ValueError(f"stability must be a LocalStability (see local_stability); got {type(stability).__name__}")
    factors = as_array("factors", factors, ndim=1)
    if factors.size == 0 or np.any(factors <= 0):
        raise ValueError(f"factors must be a non-empty list of positive numbers; got {factors}")
    offset = as_float("offset", offset)
    lo, hi = (as_float("window", v) for v in window)
    if not lo < hi:
        raise ValueError(f"window must be (low, high) with 0 < low < high; got {window}")
    etas = factors * stability.limit
    start = stability.w_star + offset * np.array([[1.0, 1.0]]) / np.sqrt(2.0)
    measured, final = np.empty(etas.size), np.empty(etas.size)
    for i, eta in enumerate(etas):
        paths = descent_paths(landscape, start, float(eta), n_steps)
        d = np.linalg.norm(paths.w[:, 0] - stability.w_star, axis=-1)
        both = (d[:-1] >= lo) & (d[:-1] <= hi) & (d[1:] >= lo) & (d[1:] <= hi)
        measured[i] = float(np.median(d[1:][both] / d[:-1][both])) if np.any(both) else np.nan
        final[i] = np.nan if paths.diverged_at[0] >= 0 else d[-1]
    predicted = np.array([stability.rate(float(eta)) for eta in etas])
    return StabilityCheck(factors, etas, predicted, measured, final, final < as_float("tol", tol))


# ----------------------------------------------------------------------------------------------------------
# Random slices through the loss of a real MLP (chapter 1)
# ----------------------------------------------------------------------------------------------------------


class Slices(NamedTuple):
    """Loss along random lines ``w0 + s d``: ``s`` (S,), ``loss`` (n_slices, S), ``concavity`` (n_slices,).

    ``concavity[j]`` is the largest amount by which a sample on line j lies above the average of its two
    neighbours, ``max_i f_i - (f_{i-1} + f_{i+1}) / 2``; a positive value is a witness of non-convexity.
    """

    s: np.ndarray
    loss: np.ndarray
    concavity: np.ndarray


def random_slices(problem: MLPProblem, w0, n_slices: int, seed, s=None) -> Slices:
    """The MLP loss along ``n_slices`` random directions through ``w0`` (p,); each direction has norm ``|w0|``.

    ``s`` defaults to 201 points in [-1.5, 1.5].
    """
    w0 = as_array("w0", w0, shape=(problem.dim,))
    n_slices = as_int("n_slices", n_slices)
    s = np.linspace(-1.5, 1.5, 201) if s is None else as_array("s", s, ndim=1)
    if s.size < 3:
        raise ValueError("s must contain at least 3 points")
    rng = as_rng(seed)
    D = rng.normal(size=(n_slices, problem.dim))
    D *= np.linalg.norm(w0) / np.linalg.norm(D, axis=1, keepdims=True)
    loss = np.array([[problem.loss(w0 + si * d) for si in s] for d in D])
    return Slices(s, loss, concavity_witness(loss))


def concavity_witness(values) -> np.ndarray:
    """``max_i f_i - (f_{i-1} + f_{i+1}) / 2`` along the last axis of ``values`` (..., S), S >= 3 (chapter 1).

    For samples of a convex function on an equally spaced grid this is never positive (up to round-off, about
    1e-16 times the values), so a clearly positive value certifies non-convexity; the result has shape (...).
    """
    values = as_array("values", values)
    if values.ndim == 0 or values.shape[-1] < 3:
        raise ValueError(f"values must have at least 3 samples along its last axis; got shape {values.shape}")
    return np.max(values[..., 1:-1] - 0.5 * (values[..., :-2] + values[..., 2:]), axis=-1)
