"""The networks of the book, their losses and hand-derived gradients (compute layer: numpy only).

* Two-layer ReLU MLP ``y = N relu(M x)`` with He initialisation (chapters 1-3, :cite:`gelada2024`).
* The two-layer net of Du et al., ``u(x) = m^{-1/2} sum_r a_r relu(w_r^T x)`` with fixed signs ``a_r``
  (chapter 4, :cite:`du2018gradient`).
* Deep linear networks ``W = W_N ... W_1`` (chapter 7, :cite:`nguegnang2024convergence`).

Every gradient here is checked against central finite differences in ``tests/test_nets.py``. All parameters
of a network can be packed into one flat vector ``w`` (the book's parameter space) and unpacked again; the
``*Problem`` classes expose ``loss_grad(w) -> (f, grad)`` on that flat vector for :mod:`gdlab.flow`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._checks import as_array, as_float, as_int, as_rng

# ----------------------------------------------------------------------------------------------------------
# Flat parameter vectors
# ----------------------------------------------------------------------------------------------------------


def pack(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate the raveled ``arrays`` into one flat float vector ``w`` (C order)."""
    if len(arrays) == 0:
        raise ValueError("arrays must contain at least one array")
    return np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])


def unpack(w: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """Split the flat vector ``w`` into arrays of the given ``shapes`` (inverse of :func:`pack`).

    Raises ``ValueError`` if ``w`` is not 1-D or its length is not the total size of ``shapes``.
    """
    w = np.asarray(w, dtype=float)
    sizes = [int(np.prod(s)) for s in shapes]
    if w.ndim != 1 or w.size != sum(sizes):
        raise ValueError(f"w must be a 1-D vector of length {sum(sizes)} for shapes {list(shapes)}; got {w.shape}")
    bounds = np.cumsum([0, *sizes])
    return [w[lo:hi].reshape(s) for lo, hi, s in zip(bounds[:-1], bounds[1:], shapes, strict=True)]


# ----------------------------------------------------------------------------------------------------------
# Two-layer ReLU MLP y = N relu(M x)   (chapters 1-3)
# ----------------------------------------------------------------------------------------------------------


class MLPForward(NamedTuple):
    """Intermediate values of ``y = N relu(M x)`` for data ``x`` of shape (m, p).

    ``a = M x`` (k, p), ``b = relu(a)`` (k, p), ``y = N b`` (n, p).
    """

    a: np.ndarray
    b: np.ndarray
    y: np.ndarray


class MLPGrad(NamedTuple):
    """Loss ``f = (1/2) |y - q|^2`` and its gradients ``M^`` (k, m) and ``N^`` (n, k) (chapter 3, eq. for hats)."""

    loss: float
    dM: np.ndarray
    dN: np.ndarray


def _as_columns(name: str, v, rows: int | None = None) -> np.ndarray:
    """Data as a (rows, p) matrix; a 1-D vector is one data point (one column)."""
    arr = as_array(name, v)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] == 0 or (rows is not None and arr.shape[0] != rows):
        want = f"({rows if rows is not None else 'rows'},) or ({rows if rows is not None else 'rows'}, p)"
        raise ValueError(f"{name} must have shape {want} with p >= 1; got {np.shape(v)}")
    return arr


def _check_mlp(M, N, x, q=None):
    M = as_array("M", M, ndim=2)
    N = as_array("N", N, ndim=2)
    k, m = M.shape
    if N.shape[1] != k:
        raise ValueError(f"N must have shape (n, {k}) to match M of shape {M.shape}; got {N.shape}")
    x = _as_columns("x", x, rows=m)
    if q is None:
        return M, N, x
    q = _as_columns("q", q, rows=N.shape[0])
    if q.shape[1] != x.shape[1]:
        raise ValueError(f"q must have as many columns (data points) as x ({x.shape[1]}); got {q.shape[1]}")
    return M, N, x, q


def mlp_init(m: int, k: int, n: int, seed) -> tuple[np.ndarray, np.ndarray]:
    """He initialisation of the two-layer MLP (chapter 1-3; :cite:`he2015delving`).

    Returns ``M`` (k, m) with entries N(0, 2/m) and ``N`` (n, k) with entries N(0, 2/k), so that
    ``E[b_i^2] = 1`` for an input with ``|x|^2 = m`` and ``E|b|^2 = k``.
    """
    m, k, n = as_int("m", m), as_int("k", k), as_int("n", n)
    rng = as_rng(seed)
    M = rng.normal(0.0, np.sqrt(2.0 / m), size=(k, m))
    N = rng.normal(0.0, np.sqrt(2.0 / k), size=(n, k))
    return M, N


def mlp_data(m: int, n: int, seed, p: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Random data for the MLP: inputs ``x`` (m, p) with every column of norm ``sqrt(m)``, targets ``q`` (n, p) ~ N(0, 1).

    With ``p = 1`` this is the one-data-point problem of chapter 3 (``|x|^2 = m``).
    """
    m, n, p = as_int("m", m), as_int("n", n), as_int("p", p)
    rng = as_rng(seed)
    x = rng.normal(size=(m, p))
    x *= np.sqrt(m) / np.linalg.norm(x, axis=0, keepdims=True)
    q = rng.normal(size=(n, p))
    return x, q


def mlp_forward(M, N, x) -> MLPForward:
    """Forward pass ``a = M x``, ``b = relu(a)``, ``y = N b``; ``x`` is (m,) or (m, p)."""
    M, N, x = _check_mlp(M, N, x)
    a = M @ x
    b = np.maximum(a, 0.0)
    return MLPForward(a, b, N @ b)


def mlp_loss(M, N, x, q) -> float:
    """Loss ``f(w) = (1/2) |N relu(M x) - q|^2`` (Frobenius norm over outputs and data points)."""
    M, N, x, q = _check_mlp(M, N, x, q)
    r = N @ np.maximum(M @ x, 0.0) - q
    return 0.5 * float(np.sum(r * r))


def mlp_grad(M, N, x, q) -> MLPGrad:
    """Loss and gradients of the two-layer MLP (chapter 3).

    Backward rules, side by side with the forward pass: ``y^ = y - q``, ``b^ = N^T y^``,
    ``a^ = relu'(a) * b^`` (with ``relu'(0) = 0``), ``M^ = a^ x^T``, ``N^ = y^ b^T``.
    """
    return _mlp_grad(*_check_mlp(M, N, x, q))


def _mlp_grad(M: np.ndarray, N: np.ndarray, x: np.ndarray, q: np.ndarray) -> MLPGrad:
    """:func:`mlp_grad` on arguments already checked (x, q as columns): the hot path of :class:`MLPProblem`."""
    a = M @ x
    b = np.maximum(a, 0.0)
    y_hat = N @ b - q
    a_hat = (a > 0.0) * (N.T @ y_hat)
    return MLPGrad(0.5 * float(np.sum(y_hat * y_hat)), a_hat @ x.T, y_hat @ b.T)


def mlp_pack(M, N) -> np.ndarray:
    """Flat parameter vector ``w = (vec M, vec N)`` of length ``k m + n k`` from ``M`` (k, m) and ``N`` (n, k)."""
    M = as_array("M", M, ndim=2)
    N = as_array("N", N, shape=(None, M.shape[0]))
    return pack([M, N])


def mlp_unpack(w, m: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`mlp_pack`: ``M`` (k, m) and ``N`` (n, k)."""
    M, N = unpack(w, [(k, m), (n, k)])
    return M, N


@dataclass(frozen=True)
class MLPProblem:
    """The learning problem ``(W, w0, f)`` of the two-layer MLP on data ``x`` (m, p), ``q`` (n, p), width ``k``.

    ``loss_grad(w)`` works on the flat vector of :func:`mlp_pack` and is what :mod:`gdlab.flow` integrates.
    """

    x: np.ndarray
    q: np.ndarray
    k: int

    def __post_init__(self):
        object.__setattr__(self, "x", _as_columns("x", self.x))
        object.__setattr__(self, "q", _as_columns("q", self.q))
        object.__setattr__(self, "k", as_int("k", self.k))
        if self.q.shape[1] != self.x.shape[1]:
            raise ValueError(f"q must have as many columns as x ({self.x.shape[1]}); got {self.q.shape[1]}")

    @property
    def shapes(self) -> tuple[int, int, int]:
        """``(m, k, n)``: input dimension, width, output dimension."""
        return self.x.shape[0], self.k, self.q.shape[0]

    @property
    def dim(self) -> int:
        """Number of parameters ``k m + n k``."""
        m, k, n = self.shapes
        return k * m + n * k

    def unpack(self, w) -> tuple[np.ndarray, np.ndarray]:
        """``(M, N)`` from the flat vector ``w``."""
        return mlp_unpack(w, *self.shapes)

    def loss(self, w) -> float:
        """``f(w)``."""
        return mlp_loss(*self.unpack(w), self.x, self.q)

    def loss_grad(self, w) -> tuple[float, np.ndarray]:
        """``(f(w), grad f(w))`` with the gradient as a flat vector (``x`` and ``q`` were checked at construction)."""
        g = _mlp_grad(*self.unpack(w), self.x, self.q)
        return g.loss, np.concatenate([g.dM.ravel(), g.dN.ravel()])


def mlp_piece_hessian(problem: MLPProblem, w, h: float = 1e-4) -> np.ndarray:
    """Hessian (d, d) of the polynomial piece of the MLP loss that contains ``w`` (d,) (chapter 2).

    The activation pattern ``D = [M x > 0]`` (k, p) is frozen at ``w``, so that ``f_D(v) = (1/2) |N (D * (M x)) - q|^2``
    is a polynomial of degree 4 that equals ``f`` on the closed piece where the pattern is ``D``; its Hessian is formed
    by central differences (:func:`gdlab.numerics.hessian_fd`, error O(h^2)). At a point near or on a kink (a unit
    that has just died sits a hair below ``a = 0``) this is the one-sided curvature of the piece, where differences
    of the true gradient would measure the jump across the kink instead.
    """
    from .numerics import hessian_fd

    if not isinstance(problem, MLPProblem):
        raise ValueError(f"problem must be an MLPProblem; got {type(problem).__name__}")
    w = as_array("w", w, shape=(problem.dim,))
    x, q = problem.x, problem.q
    active = problem.unpack(w)[0] @ x > 0.0

    def piece_grad(v):
        M, N = problem.unpack(v)
        b = active * (M @ x)
        y_hat = N @ b - q
        return pack([(active * (N.T @ y_hat)) @ x.T, y_hat @ b.T])  # mlp_pack unchecked: one call per difference

    return hessian_fd(piece_grad, w, h)


# ----------------------------------------------------------------------------------------------------------
# The two-layer net of Du et al.: u(x) = m^{-1/2} sum_r a_r relu(w_r^T x), only W trained   (chapter 4)
# ----------------------------------------------------------------------------------------------------------


def du_init(m: int, d: int, seed) -> tuple[np.ndarray, np.ndarray]:
    """Du et al. initialisation (chapter 4): ``W`` (m, d) with rows ``w_r(0) ~ N(0, I_d)``; signs ``a`` (m,) in {-1, +1}."""
    m, d = as_int("m", m), as_int("d", d)
    rng = as_rng(seed)
    W = rng.normal(size=(m, d))
    a = rng.choice(np.array([-1.0, 1.0]), size=m)
    return W, a


def _check_du(W, a, X, y=None):
    W = as_array("W", W, ndim=2)
    m, d = W.shape
    a = as_array("a", a, shape=(m,))
    X = as_array("X", X, ndim=2)
    if X.shape[1] != d:
        raise ValueError(f"X must have shape (n, {d}) (one input per row); got {X.shape}")
    if y is None:
        return W, a, X
    return W, a, X, as_array("y", y, shape=(X.shape[0],))


def du_forward(W, a, X) -> np.ndarray:
    """Predictions ``u_i = m^{-1/2} sum_r a_r relu(w_r^T x_i)`` for inputs ``X`` (n, d); returns ``u`` (n,)."""
    W, a, X = _check_du(W, a, X)
    return a @ np.maximum(W @ X.T, 0.0) / np.sqrt(W.shape[0])  # (m, n) layout: fast for wide nets


def du_loss(W, a, X, y) -> float:
    """``L(W) = (1/2) sum_i (u_i - y_i)^2`` (the sum convention of :cite:`du2018gradient`; no 1/n)."""
    W, a, X, y = _check_du(W, a, X, y)
    r = np.maximum(X @ W.T, 0.0) @ a / np.sqrt(W.shape[0]) - y
    return 0.5 * float(r @ r)


def du_grad(W, a, X, y) -> tuple[float, np.ndarray]:
    """Loss and gradient w.r.t. ``W`` (m, d) of the Du et al. net.

    Per neuron: ``dL/dw_r = m^{-1/2} a_r sum_i (u_i - y_i) 1{w_r^T x_i >= 0} x_i`` (the indicator uses ``>= 0``
    as in the paper's Gram matrix; the seed lecture's extra sum over r is a slip, see formulas.md).
    """
    W, a, X, y = _check_du(W, a, X, y)
    _, r, dW = du_parts(W, a, X, y)
    return 0.5 * float(r @ r), dW


def du_parts(W, a, X, y, work: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unchecked core of :func:`du_grad` for loops that checked their arguments once (chapter 4): the
    pre-activations ``X W^T`` (n, m) (a transposed view), the residual ``u - y`` (n,) and ``dL/dW`` (m, d).

    ``work`` (from :func:`du_workspace`) holds preallocated (m, n) and (m, d) buffers: in a training loop on a wide
    net, allocating fresh arrays of that size at every step costs more (page faults) than the arithmetic. The
    returned arrays then live in ``work`` and are overwritten by the next call.
    """
    m = W.shape[0]
    scale = 1.0 / np.sqrt(m)
    if work is None:
        work = du_workspace(m, X.shape[0], X.shape[1])
    P, G, mask, dW = work["P"], work["G"], work["mask"], work["dW"]
    np.matmul(W, X.T, out=P)  # (m, n): neuron-major, several times faster than X @ W.T for wide nets
    np.maximum(P, 0.0, out=G)
    r = a @ G * scale - y
    np.greater_equal(P, 0.0, out=mask)
    np.multiply(mask, r, out=G)
    np.matmul(G, X, out=dW)
    dW *= (a * scale)[:, None]
    return P.T, r, dW


def du_workspace(m: int, n: int, d: int) -> dict:
    """Buffers for :func:`du_parts` on a net of width ``m`` with ``n`` inputs in ``R^d`` (chapter 4)."""
    return {"P": np.empty((m, n)), "G": np.empty((m, n)), "mask": np.empty((m, n), dtype=bool),
            "dW": np.empty((m, d))}


@dataclass(frozen=True)
class DuProblem:
    """Learning problem of chapter 4: inputs ``X`` (n, d), targets ``y`` (n,), fixed signs ``a`` (m,); ``w = vec W``."""

    X: np.ndarray
    y: np.ndarray
    a: np.ndarray

    def __post_init__(self):
        X = as_array("X", self.X, ndim=2)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", as_array("y", self.y, shape=(X.shape[0],)))
        object.__setattr__(self, "a", as_array("a", self.a, ndim=1))

    @property
    def dim(self) -> int:
        """Number of trained parameters ``m d``."""
        return self.a.size * self.X.shape[1]

    def unpack(self, w) -> np.ndarray:
        """``W`` (m, d) from the flat vector."""
        return unpack(w, [(self.a.size, self.X.shape[1])])[0]

    def loss_grad(self, w) -> tuple[float, np.ndarray]:
        """``(L(W), grad L(W))`` on the flat vector."""
        loss, dW = du_grad(self.unpack(w), self.a, self.X, self.y)
        return loss, dW.ravel()


# ----------------------------------------------------------------------------------------------------------
# Deep linear networks W = W_N ... W_1   (chapter 7)
# ----------------------------------------------------------------------------------------------------------


def _check_deep_linear(Ws, X=None, Y=None) -> tuple[list[np.ndarray], np.ndarray | None, np.ndarray | None]:
    if len(Ws) == 0:
        raise ValueError("Ws must contain at least one matrix W_1")
    Ws = [as_array(f"Ws[{j}]", W, ndim=2) for j, W in enumerate(Ws)]
    for j in range(1, len(Ws)):
        if Ws[j].shape[1] != Ws[j - 1].shape[0]:
            raise ValueError(
                f"Ws[{j}] must have {Ws[j - 1].shape[0]} columns to follow Ws[{j - 1}] {Ws[j - 1].shape}; "
                f"got {Ws[j].shape}"
            )
    if X is not None:
        X = as_array("X", X, shape=(Ws[0].shape[1], None))
    if Y is not None:
        Y = as_array("Y", Y, shape=(Ws[-1].shape[0], X.shape[1] if X is not None else None))
    return Ws, X, Y


def deep_linear_init(dims: Sequence[int], scale: float, seed) -> list[np.ndarray]:
    """Gaussian factors ``W_j`` (d_j, d_{j-1}) with i.i.d. N(0, scale^2 / d_{j-1}) entries; ``dims = (d_0, ..., d_N)``."""
    if len(dims) < 2:
        raise ValueError(f"dims must list at least d_0 and d_1; got {list(dims)}")
    dims = [as_int(f"dims[{j}]", d) for j, d in enumerate(dims)]
    scale = as_float("scale", scale)
    rng = as_rng(seed)
    return [rng.normal(0.0, scale / np.sqrt(dims[j]), size=(dims[j + 1], dims[j])) for j in range(len(dims) - 1)]


def deep_linear_product(Ws) -> np.ndarray:
    """End-to-end matrix ``W = W_N ... W_1`` (d_N, d_0); ``Ws = [W_1, ..., W_N]``."""
    Ws, _, _ = _check_deep_linear(Ws)
    W = Ws[0]
    for Wj in Ws[1:]:
        W = Wj @ W
    return W


def deep_linear_loss(Ws, X, Y) -> float:
    """``L^N = (1/2) |W_N ... W_1 X - Y|_F^2`` for data ``X`` (d_0, p) and ``Y`` (d_N, p)."""
    Ws, X, Y = _check_deep_linear(Ws, X, Y)
    R = deep_linear_product(Ws) @ X - Y
    return 0.5 * float(np.sum(R * R))


def deep_linear_grad(Ws, X, Y) -> tuple[float, list[np.ndarray]]:
    """Loss and gradients ``G_j = (W_N..W_{j+1})^T (W X - Y) X^T (W_{j-1}..W_1)^T`` (chapter 7).

    Uses prefix products ``P_j = W_{j-1} ... W_1`` and suffix products ``S_j = W_N ... W_{j+1}``; O(N) products.
    """
    Ws, X, Y = _check_deep_linear(Ws, X, Y)
    return deep_linear_grad_unchecked(Ws, X, Y)


def deep_linear_grad_unchecked(Ws: list[np.ndarray], X: np.ndarray, Y: np.ndarray) -> tuple[float, list[np.ndarray]]:
    """:func:`deep_linear_grad` without the argument checks, for training loops whose arguments were checked once
    (chapter 7). Arguments must be float arrays of chained shapes."""
    n_layers = len(Ws)
    prefix = [np.eye(Ws[0].shape[1])]
    for Wj in Ws:
        prefix.append(Wj @ prefix[-1])
    R = prefix[-1] @ X - Y
    E = R @ X.T
    suffix = [np.eye(Ws[-1].shape[0])]
    for Wj in reversed(Ws):
        suffix.append(suffix[-1] @ Wj)
    grads = [suffix[n_layers - 1 - j].T @ E @ prefix[j].T for j in range(n_layers)]
    return 0.5 * float(np.sum(R * R)), grads


@dataclass(frozen=True)
class DeepLinearProblem:
    """Learning problem of chapter 7: data ``X`` (d_0, p), ``Y`` (d_N, p), layer widths ``dims = (d_0, ..., d_N)``."""

    X: np.ndarray
    Y: np.ndarray
    dims: tuple[int, ...]

    def __post_init__(self):
        dims = tuple(as_int(f"dims[{j}]", d) for j, d in enumerate(self.dims))
        if len(dims) < 2:
            raise ValueError(f"dims must list at least d_0 and d_1; got {list(dims)}")
        object.__setattr__(self, "dims", dims)
        object.__setattr__(self, "X", as_array("X", self.X, shape=(dims[0], None)))
        object.__setattr__(self, "Y", as_array("Y", self.Y, shape=(dims[-1], self.X.shape[1])))

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """Shapes ``(d_j, d_{j-1})`` of ``W_1, ..., W_N``."""
        return [(self.dims[j + 1], self.dims[j]) for j in range(len(self.dims) - 1)]

    def unpack(self, w) -> list[np.ndarray]:
        """``[W_1, ..., W_N]`` from the flat vector."""
        return unpack(w, self.shapes)

    def loss_grad(self, w) -> tuple[float, np.ndarray]:
        """``(L^N, grad L^N)`` on the flat vector."""
        loss, grads = deep_linear_grad(self.unpack(w), self.X, self.Y)
        return loss, pack(grads)
