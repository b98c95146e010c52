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


def lipschitz_on_box(landscape: Landscape, n: int = 201, h: float = 1e-5) -> float:
    """Estimate ``L = max |Hess f|_2`` over the landscape's box on an ``n x n`` grid (finite-difference Hessians)."""
    n = as_int("n", n, low=2)
    x0, x1, y0, y1 = landscape.box
    W = np.stack(np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n)), axis=-1)
    cols = [(landscape.grad(W + h * e) - landscape.grad(W - h * e)) / (2 * h) for e in np.eye(2)]
    H = np.stack(cols, axis=-1)
    H = 0.5 * (H + np.swapaxes(H, -1, -2))
    return float(np.max(np.abs(np.linalg.eigvalsh(H))))


class HessianMin(NamedTuple):
    """Smallest Hessian eigenvalue found on a grid: ``value`` (float) and the grid point ``where`` (2,) it occurs."""

    value: float
    where: np.ndarray


def hessian_min_eig_on_box(landscape: Landscape, n: int = 201, h: float = 1e-5) -> HessianMin:
    """Smallest eigenvalue of ``Hess f`` over an ``n x n`` grid covering the landscape's box (chapter 1).

    The Hessian at each grid point (n, n, 2, 2) is formed by central differences of ``landscape.grad`` with step
    ``h`` (error O(h^2) plus round-off O(eps / h)) and symmetrised. A negative ``value`` certifies that ``f`` is
    not convex (a C^2 function is convex exactly when its Hessian is positive semi-definite everywhere).
    """
    if not isinstance(landscape, Landscape):
        raise ValueError(f"landscape must be a Landscape (see get_landscape); got {type(landscape).__name__}")
    n = as_int("n", n, low=2)
    h = as_float("h", h, high=1e-2)
    x0, x1, y0, y1 = landscape.box
    W = np.stack(np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n)), axis=-1)
    cols = [(landscape.grad(W + h * e) - landscape.grad(W - h * e)) / (2 * h) for e in np.eye(2)]
    H = np.stack(cols, axis=-1)
    lam = np.linalg.eigvalsh(0.5 * (H + np.swapaxes(H, -1, -2)))[..., 0]
    i, j = np.unravel_index(np.argmin(lam), lam.shape)
    return HessianMin(float(lam[i, j]), W[i, j].copy())


class Paths(NamedTuple):
    """Gradient-descent paths from ``S`` starts: ``w`` (T+1, S, 2), ``loss`` (T+1, S), ``diverged_at`` (S,) int.

    ``diverged_at[i]`` is the step at which start i diverged (its path is frozen from then on, and its later
    losses are NaN), or -1 if it did not.
    """

    w: np.ndarray
    loss: np.ndarray
    diverged_at: np.ndarray


def descent_paths(landscape: Landscape, starts, eta: float, n_steps: int, max_loss: float = 1e6) -> Paths:
    """Gradient descent with step ``eta`` on ``landscape`` from every row of ``starts`` (S, 2), all at once.

    A start whose loss exceeds ``max_loss`` or stops being finite is marked diverged and frozen.
    """
    starts = as_array("starts", starts, shape=(None, 2))
    eta = as_float("eta", eta)
    n_steps = as_int("n_steps", n_steps)
    max_loss = as_float("max_loss", max_loss)
    W = np.empty((n_steps + 1, *starts.shape))
    F = np.empty((n_steps + 1, starts.shape[0]))
    diverged_at = np.full(starts.shape[0], -1)
    W[0], F[0] = starts, landscape.f(starts)
    with np.errstate(all="ignore"):
        for k in range(n_steps):
            alive = diverged_at < 0
            step = np.where(alive[:, None], eta * landscape.grad(W[k]), 0.0)
            W[k + 1] = W[k] - step
            f = landscape.f(W[k + 1])
            bad = alive & ~(np.isfinite(f) & (f <= max_loss) & np.all(np.isfinite(W[k + 1]), axis=1))
            diverged_at[bad] = k + 1
            W[k + 1][bad] = W[k][bad]
            F[k + 1] = np.where(diverged_at >= 0, np.nan, f)
    return Paths(W, F, diverged_at)


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
    concavity = np.max(loss[:, 1:-1] - 0.5 * (loss[:, :-2] + loss[:, 2:]), axis=1)
    return Slices(s, loss, concavity)
