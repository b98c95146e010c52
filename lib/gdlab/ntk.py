"""The neural tangent kernel of a wide two-layer ReLU net and lazy training (chapter 4; compute layer: numpy/scipy only).

The model is the net of :cite:`du2018gradient` (:func:`gdlab.nets.du_forward`):
``u(x) = m^{-1/2} sum_r a_r relu(w_r^T x)`` with ``w_r(0) ~ N(0, I_d)``, fixed signs ``a_r`` in {-1, +1}, only ``W``
trained, on the loss ``L(W) = (1/2) sum_i (u_i - y_i)^2`` (the sum convention; the seed lecture divides by n).

* The Gram matrix ``H(W)_ij = <du_i/dW, du_j/dW> = (x_i^T x_j / m) #{r : w_r^T x_i >= 0, w_r^T x_j >= 0}``, computed
  from the activation-pattern matrix with one matrix product (:func:`gram`), and from the explicit Jacobian as a
  reference (:func:`gram_jacobian`).
* Its limit for ``m -> inf`` on unit inputs, ``H*_ij = x_i^T x_j (pi - arccos x_i^T x_j) / (2 pi)`` (:func:`ntk_limit`),
  ``lambda_0 = lambda_min(H*)`` and the Hoeffding radius of ``H(0) - H*`` (:func:`hoeffding_radius`).
* Kernel regression, where ``H`` is constant: the exact prediction dynamics (:func:`kernel_dynamics`) and the kernel
  predictor at a test input (:func:`kernel_predictor`).
* Gradient descent on the net with what lazy training is about recorded along the way: how far each ``w_r`` moved, the
  fraction of activation patterns that flipped, ``|H(t) - H(0)|_F`` and ``lambda_min(H(t))`` (:func:`lazy_training`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from . import nets as _nets
from ._checks import as_array, as_float, as_int, as_rng
from .numerics import psd_sqrt
from .runs import NOT_DIVERGED, divergence_threshold, diverges, record_steps

UNIT_TOL = 1e-10  # rows of an input matrix count as unit vectors when ||x| - 1| <= UNIT_TOL


@lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's controller of the loaded BLAS libraries, or None where threadpoolctl is not installed
    (JupyterLite, whose BLAS is single-threaded anyway)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


def one_blas_thread() -> AbstractContextManager:
    """A context in which BLAS runs on one thread (chapter 4's training loops).

    The products of a wide net with few inputs, ``(m, d) x (d, n)`` and ``(m, n) x (n, d)`` with small ``n, d``, are
    too thin to share between threads: on a 2-core machine OpenBLAS's thread hand-offs made a gradient-descent step
    three to four times slower than on one thread (measured with ``m = 1e5``, ``n = 10``, ``d = 5``).
    """
    controller = _blas_controller()
    return nullcontext() if controller is None else controller.limit(limits=1, user_api="blas")


# --- inputs ----------------------------------------------------------------------------------------------------


def unit_inputs(name: str, X) -> np.ndarray:
    """Check that ``X`` (n, d) is finite with unit-norm rows (the setting of the closed-form kernel, chapter 4);
    return it as a float array. Raises ``ValueError`` naming ``name`` otherwise."""
    X = as_array(name, X, ndim=2)
    norms = np.linalg.norm(X, axis=1)
    bad = np.flatnonzero(np.abs(norms - 1.0) > UNIT_TOL)
    if bad.size:
        raise ValueError(f"{name} must have rows of unit norm (|x_i| = 1 within {UNIT_TOL:g}); row {bad[0]} has "
                         f"norm {norms[bad[0]]:.6g}")
    return X


def sphere_inputs(n: int, d: int, seed) -> np.ndarray:
    """``n`` inputs drawn uniformly on the unit sphere of ``R^d``: ``X`` (n, d) (chapter 4)."""
    n, d = as_int("n", n), as_int("d", d, low=2)
    X = as_rng(seed).normal(size=(n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def circle_inputs(angles) -> np.ndarray:
    """Inputs on the unit circle, ``x = (cos theta, sin theta)``: ``X`` (n, 2) for ``angles`` (n,) (chapter 4)."""
    angles = as_array("angles", angles, ndim=1)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def symmetric_init(m: int, d: int, seed) -> tuple[np.ndarray, np.ndarray]:
    """An initialisation with ``u_0 = 0`` everywhere: ``m/2`` Du et al. neurons (:func:`gdlab.nets.du_init`) and a copy
    of each with the opposite sign. ``m`` must be even. Returns ``W`` (m, d), ``a`` (m,) (chapter 4, section 6).
    In floating point the output is zero up to round-off (~1e-15): the matrix product does not add each pair first."""
    m = as_int("m", m, low=2)
    if m % 2:
        raise ValueError(f"m must be an even integer >= 2 for the symmetric initialisation; got {m}")
    W, a = _nets.du_init(m // 2, d, seed)
    return np.vstack([W, W]), np.concatenate([a, -a])


# --- the Gram matrix and its limit ---------------------------------------------------------------------------


def activation_patterns(W, X) -> np.ndarray:
    """``S`` (n, m) bool: ``S_ir = 1{w_r^T x_i >= 0}`` for ``W`` (m, d), ``X`` (n, d) (chapter 4)."""
    W = as_array("W", W, ndim=2)
    X = as_array("X", X, shape=(None, W.shape[1]))
    return X @ W.T >= 0.0


def gram_from_patterns(S: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``H = (X X^T) * (S S^T) / m`` (n, n) from the pattern matrix ``S`` (n, m) (unchecked; chapter 4).

    The counts ``S S^T`` are integers below ``2^24`` for ``m < 2^24``, which single precision adds exactly: half the
    memory traffic of double precision for the same, exact, result."""
    Sf = S.astype(np.float32 if S.shape[1] < 2**24 else np.float64)
    return (X @ X.T) * (Sf @ Sf.T).astype(np.float64) / S.shape[1]


def gram(W, X) -> np.ndarray:
    """The Gram matrix ``H(W)`` (n, n) of the Du et al. net at first-layer weights ``W`` (m, d) on inputs ``X`` (n, d).

    ``H_ij = <du_i/dW, du_j/dW> = (x_i^T x_j / m) #{r : w_r^T x_i >= 0 and w_r^T x_j >= 0}`` (the signs ``a_r = +-1``
    square away). One product of the pattern matrix with its transpose: no loop over neurons, no Jacobian.
    """
    W = as_array("W", W, ndim=2)
    X = as_array("X", X, shape=(None, W.shape[1]))
    return gram_from_patterns(X @ W.T >= 0.0, X)


def jacobian(W, a, X) -> np.ndarray:
    """The Jacobian ``J`` (n, m d) of the predictions ``u`` (n,) with respect to ``vec W`` (row-major), written out
    (the reference for :func:`gram`; memory ``n m d``, small nets only). Row ``i``, block ``r``:
    ``du_i/dw_r = m^{-1/2} a_r 1{w_r^T x_i >= 0} x_i`` (chapter 4)."""
    W = as_array("W", W, ndim=2)
    m, d = W.shape
    a = as_array("a", a, shape=(m,))
    X = as_array("X", X, shape=(None, d))
    S = (X @ W.T >= 0.0).astype(float)
    return (S[:, :, None] * a[None, :, None] * X[:, None, :]).reshape(X.shape[0], m * d) / np.sqrt(m)


def gram_jacobian(W, a, X) -> np.ndarray:
    """``H = J J^T`` (n, n) from the explicit Jacobian (:func:`jacobian`): the definition, for checking :func:`gram`."""
    J = jacobian(W, a, X)
    return J @ J.T


def ntk_limit(X, Z=None) -> np.ndarray:
    """The limit kernel ``K*(x, z) = x^T z (pi - arccos x^T z) / (2 pi)`` between the unit-norm rows of ``X`` (n, d)
    and ``Z`` (n', d) (default ``Z = X``, giving ``H*``): (n, n'). It is ``E_w[x^T z 1{w^T x >= 0, w^T z >= 0}]`` for
    ``w ~ N(0, I)``: the two half-spaces overlap in a fraction ``(pi - angle) / (2 pi)`` of directions (chapter 4)."""
    X = unit_inputs("X", X)
    Z = X if Z is None else unit_inputs("Z", Z)
    c, angle = _cos_angle(X, Z)
    return c * (np.pi - angle) / (2.0 * np.pi)


def _cos_angle(X: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x^T z`` and the angle between the unit rows of ``X`` (n, d) and ``Z`` (n', d): two (n, n') arrays."""
    if Z.shape[1] != X.shape[1]:
        raise ValueError(f"Z must have shape (n', {X.shape[1]}) like X; got {Z.shape}")
    c = np.clip(X @ Z.T, -1.0, 1.0)
    # the angle as 2 atan2(|x - z|, |x + z|): accurate for nearly parallel inputs, where arccos(x^T z) loses half
    # the digits (arccos of a number that rounds to 1 - 1e-16 is already 1.5e-8)
    diff = np.linalg.norm(X[:, None, :] - Z[None, :, :], axis=2)
    total = np.linalg.norm(X[:, None, :] + Z[None, :, :], axis=2)
    return c, 2.0 * np.arctan2(diff, total)


def relu_gp_kernel(X, Z=None) -> np.ndarray:
    """``Sigma(x, z) = E_w[relu(w^T x) relu(w^T z)] = (sin phi + (pi - phi) cos phi) / (2 pi)`` for ``w ~ N(0, I)``
    between the unit rows of ``X`` (n, d) and ``Z`` (n', d) (default ``Z = X``), ``phi`` their angle: (n, n').

    The covariance of the Du et al. net's initial function ``f_0`` (signs ``a_r = +-1``), so the limit of ``f_0`` for
    ``m -> inf`` is the Gaussian process with this kernel (the arc-cosine kernel of degree one; chapter 4)."""
    X = unit_inputs("X", X)
    Z = X if Z is None else unit_inputs("Z", Z)
    c, angle = _cos_angle(X, Z)
    return (np.sin(angle) + (np.pi - angle) * c) / (2.0 * np.pi)


def lambda_0(X) -> float:
    """``lambda_0 = lambda_min(H*)`` for unit inputs ``X`` (n, d) (chapter 4). Positive when no two inputs are parallel
    (Du et al.); it goes to 0 as two inputs approach each other. Returned as computed (it may be ~1e-17 or slightly
    negative in floating point for parallel inputs)."""
    return float(np.linalg.eigvalsh(ntk_limit(X))[0])


def hoeffding_radius(m: int, n: int, delta: float) -> float:
    """``eps`` with ``P(max_ij |H_ij(0) - H*_ij| / |x_i^T x_j| > eps) <= delta`` over the Gaussian draw of ``m``
    neurons, for ``n`` inputs (chapter 4, claim 1).

    ``H_ij(0) / x_i^T x_j`` is a mean of ``m`` independent indicators in [0, 1] with mean ``H*_ij / x_i^T x_j``;
    Hoeffding gives ``P(|mean - E| >= eps) <= 2 exp(-2 m eps^2)`` per entry, and a union bound over the
    ``n (n + 1) / 2`` distinct entries gives ``eps = sqrt(log(n (n + 1) / delta) / (2 m))``. Then
    ``|H(0) - H*|_F <= eps |X X^T|_F`` with probability at least ``1 - delta``.
    """
    m, n = as_int("m", m), as_int("n", n)
    delta = as_float("delta", delta, high=1.0, high_open=True)
    return float(np.sqrt(np.log(n * (n + 1) / delta) / (2.0 * m)))


# --- kernel regression: constant H ------------------------------------------------------------------------------


def _eig_checked(H) -> tuple[np.ndarray, np.ndarray]:
    H = as_array("H", H, ndim=2)
    if H.shape[0] != H.shape[1] or not np.allclose(H, H.T, rtol=1e-12, atol=1e-14):
        raise ValueError(f"H must be a symmetric (n, n) matrix; got shape {H.shape}")
    lam, V = np.linalg.eigh(H)
    if lam[0] < -1e-12 * max(1.0, abs(lam[-1])):
        raise ValueError(f"H must be positive semi-definite; its smallest eigenvalue is {lam[0]:.3g}")
    return np.maximum(lam, 0.0), V


class KernelRegressionProblem:
    """Kernel regression as a learning problem (chapter 4, section 2): predictions ``u = Phi theta`` with a fixed
    feature matrix ``Phi`` (n, p) (row ``i`` is ``phi(x_i)``), targets ``y`` (n,), loss ``L = |Phi theta - y|^2 / 2``.
    Its Gram matrix ``H = Phi Phi^T`` does not depend on ``theta``. ``loss_grad(theta)`` serves :mod:`gdlab.flow`."""

    def __init__(self, Phi, y):
        self.Phi = as_array("Phi", Phi, ndim=2)
        self.y = as_array("y", y, shape=(self.Phi.shape[0],))

    @property
    def H(self) -> np.ndarray:
        """The constant Gram matrix ``Phi Phi^T`` (n, n)."""
        return self.Phi @ self.Phi.T

    def loss_grad(self, theta) -> tuple[float, np.ndarray]:
        """``(L(theta), Phi^T (Phi theta - y))`` for ``theta`` (p,)."""
        r = self.Phi @ theta - self.y
        return 0.5 * float(r @ r), self.Phi.T @ r


def kernel_dynamics(H, u0, y, t) -> np.ndarray:
    """Exact solution of ``du/dt = -H (u - y)`` for a constant kernel ``H`` (n, n) (chapter 4, kernel regression):
    ``u(t) = y + V exp(-Lambda t) V^T (u0 - y)`` with ``H = V Lambda V^T``. ``t`` (T,) non-negative; returns (T, n).
    The residual's component along eigenvector ``v_k`` decays like ``exp(-lambda_k t)``."""
    lam, V = _eig_checked(H)
    n = lam.size
    u0, y = as_array("u0", u0, shape=(n,)), as_array("y", y, shape=(n,))
    t = as_array("t", t, ndim=1)
    if np.any(t < 0):
        raise ValueError("t must contain only times >= 0")
    coef = V.T @ (u0 - y)
    return y + (np.exp(-np.outer(t, lam)) * coef) @ V.T


def kernel_predictor(K_te, H, y, *, u0=None, f0_te=None, t: float = np.inf, eta: float | None = None) -> np.ndarray:
    """Predictions at test inputs of kernel regression trained for time ``t`` (chapter 4, section 6).

    By gradient flow: ``f_t(z) = f_0(z) + K(z, X) H^{-1} (I - exp(-H t)) (y - u_0)``, with ``K_te`` (n_te, n) the
    kernel between test and training inputs, ``H`` (n, n) the training kernel, ``y`` (n,) targets. ``u0`` (n,) and
    ``f0_te`` (n_te,) are the initial outputs on the training and test inputs (default: zero, the predictor
    ``K_te H^{-1} y``). With ``eta``, by ``t / eta`` steps of gradient descent instead: ``exp(-H t)`` becomes
    ``(I - eta H)^(t / eta)``. ``t = inf`` (default) is the trained limit, where ``H`` must be invertible: a singular
    ``H`` (two parallel inputs) raises ``ValueError``.
    """
    lam, V = _eig_checked(H)
    n = lam.size
    K_te = as_array("K_te", K_te, shape=(None, n))
    y = as_array("y", y, shape=(n,))
    u0 = np.zeros(n) if u0 is None else as_array("u0", u0, shape=(n,))
    f0 = np.zeros(K_te.shape[0]) if f0_te is None else as_array("f0_te", f0_te, shape=(K_te.shape[0],))
    if not (isinstance(t, float) and t == np.inf):
        t = as_float("t", t, low=0.0, low_open=False)
    coef = V.T @ (y - u0)
    if np.isinf(t):
        if lam[0] <= 1e-12 * lam[-1]:
            raise ValueError(f"H must be invertible for t = inf; lambda_min(H) = {lam[0]:.3g} (are two inputs "
                             "parallel?)")
        gain = 1.0 / lam
    else:
        zero = lam == 0.0
        safe = np.where(zero, 1.0, lam)
        if eta is None:  # (1 - exp(-lambda t)) / lambda, with its limit t at lambda = 0
            gain = np.where(zero, t, -np.expm1(-lam * t) / safe)
        else:  # (1 - (1 - eta lambda)^k) / lambda = eta sum_{j < k} (1 - eta lambda)^j, for k = t / eta steps
            eta = as_float("eta", eta)
            k = int(round(t / eta))
            x = eta * lam
            inside = x < 1.0  # there 1 - (1 - x)^k = -expm1(k log1p(-x)), without cancellation for small x
            power_term = np.where(inside, -np.expm1(k * np.log1p(-np.where(inside, x, 0.0))),
                                  1.0 - (1.0 - x) ** k)
            gain = np.where(zero, k * eta, power_term / safe)
    return f0 + K_te @ (V @ (gain * coef))


# --- gradient descent on the net, with the lazy-training measurements -------------------------------------------


class LazyRun(NamedTuple):
    """Gradient descent on the Du et al. net (chapter 4), from :func:`lazy_training`.

    Recorded at steps ``k`` (R,) (times ``t = k eta``): ``loss`` (R,) ``L = |u - y|^2 / 2``; ``u`` (R, n) predictions;
    ``drift`` (R,) ``max_r |w_r(k) - w_r(0)|``; ``flips`` (R,) the fraction of the ``m n`` activation patterns
    ``1{w_r^T x_i >= 0}`` that differ from step 0; ``gram_change`` (R,) ``|H(k) - H(0)|_F``; ``lambda_min`` (R,)
    ``lambda_min(H(k))``. ``H0`` (n, n) is ``H(0)``, ``W`` (m, d) the last iterate. ``min_lambda_min`` is
    ``lambda_min(H(k))`` minimised over every step (with ``track_lambda``; else over the records), ``flip_steps``
    the number of steps during which some pattern flipped (the steps where ``u(k+1) - u(k) = -eta H(k) (u(k) - y)``
    is not exact), ``max_lambda_max`` the largest ``lambda_max(H(k))`` likewise (the step-size condition
    ``eta lambda_max(H(k)) <= 1`` of chapter 4 is about it). ``diverged_at``: the step at which the loss
    became non-finite or exceeded :func:`gdlab.runs.divergence_threshold` of ``L(0)``, else -1 (the records stop
    before it, and ``W`` is the iterate at which it was detected; :mod:`gdlab.runs`).
    """

    k: np.ndarray
    t: np.ndarray
    loss: np.ndarray
    u: np.ndarray
    drift: np.ndarray
    flips: np.ndarray
    gram_change: np.ndarray
    lambda_min: np.ndarray
    H0: np.ndarray
    W: np.ndarray
    min_lambda_min: float
    flip_steps: int
    diverged_at: int
    max_lambda_max: float = np.nan

    @property
    def diverged(self) -> bool:
        """Whether the run diverged (``diverged_at >= 0``)."""
        return self.diverged_at >= 0


def lazy_training(X, y, W0, a, eta: float, steps: int, *, records: int = 50, track_lambda: bool = False) -> LazyRun:
    """``steps`` steps of gradient descent ``W <- W - eta dL/dW`` on the Du et al. net from ``W0`` (m, d) with signs
    ``a`` (m,), inputs ``X`` (n, d), targets ``y`` (n,); lazy-training quantities at about ``records`` steps.

    With ``track_lambda`` the spectrum of ``H(k)`` is also computed at every step (an n x n eigenproblem and an
    ``n x m`` pattern product per step) for ``min_lambda_min`` and ``max_lambda_max``; otherwise they are taken over
    the records. Memory ``O(n m + m d)``; the work per step is two ``n x m x d`` products (chapter 4).
    """
    W = as_array("W0", W0, ndim=2)
    m, d = W.shape
    a = as_array("a", a, shape=(m,))
    X = as_array("X", X, shape=(None, d))
    y = as_array("y", y, shape=(X.shape[0],))
    eta = as_float("eta", eta)
    steps = as_int("steps", steps, low=0)
    records = as_int("records", records, low=2)
    rec = set(record_steps(steps, records).tolist())
    W0, W = W.copy(), W.copy()
    work = _nets.du_workspace(m, X.shape[0], d)
    _, r, dW = _nets.du_parts(W, a, X, y, work)
    mask = work["mask"]  # (m, n) patterns 1{w_r^T x_i >= 0} of the current iterate, the transpose of S
    S0, S_prev = mask.copy(), mask.copy()
    H0 = gram_from_patterns(S0.T, X)
    limit = divergence_threshold(0.5 * float(r @ r))
    out = {key: [] for key in ("k", "loss", "u", "drift", "flips", "gram_change", "lambda_min")}
    lam_min_all, lam_max_all, flip_steps, diverged_at = np.inf, -np.inf, 0, NOT_DIVERGED
    with np.errstate(all="ignore"), one_blas_thread():
        for k in range(steps + 1):
            loss = 0.5 * float(r @ r)
            if diverges(loss, limit):
                diverged_at = k
                break
            if k > 0 and not np.array_equal(mask, S_prev):
                flip_steps += 1
                np.copyto(S_prev, mask)
            is_record = k in rec
            if is_record or track_lambda:
                H = gram_from_patterns(mask.T, X)
                spectrum = np.linalg.eigvalsh(H)
                lam = float(spectrum[0])
                lam_min_all, lam_max_all = min(lam_min_all, lam), max(lam_max_all, float(spectrum[-1]))
            if is_record:
                out["k"].append(k)
                out["loss"].append(loss)
                out["u"].append(r + y)
                out["drift"].append(float(np.sqrt(np.max(np.sum((W - W0) ** 2, axis=1)))))
                out["flips"].append(float(np.mean(mask != S0)))
                out["gram_change"].append(float(np.linalg.norm(H - H0)))
                out["lambda_min"].append(lam)
            if k == steps:
                break
            W -= eta * dW
            _, r, dW = _nets.du_parts(W, a, X, y, work)
    arr = {key: np.array(val) for key, val in out.items()}
    n = X.shape[0]
    return LazyRun(k=arr["k"].astype(int), t=eta * arr["k"], loss=arr["loss"], u=arr["u"].reshape(-1, n),
                   drift=arr["drift"], flips=arr["flips"], gram_change=arr["gram_change"],
                   lambda_min=arr["lambda_min"], H0=H0, W=W, min_lambda_min=float(lam_min_all), flip_steps=flip_steps,
                   diverged_at=diverged_at, max_lambda_max=float(lam_max_all))


class StepCheck(NamedTuple):
    """One gradient-descent step against the prediction dynamics (chapter 4, section 1): ``du`` (n,) the actual
    change of the predictions, ``predicted`` (n,) ``-eta H(k) (u(k) - y)``, ``flipped`` the number of activation
    patterns that changed during the step."""

    du: np.ndarray
    predicted: np.ndarray
    flipped: int


def prediction_step(W, a, X, y, eta: float) -> StepCheck:
    """Take one GD step of size ``eta`` from ``W`` (m, d) and compare the change of ``u`` with ``-eta H (u - y)``.

    Within a fixed activation pattern ``u`` is linear in ``W``, so the two agree to round-off unless a pattern flips
    during the step (chapter 4, section 1)."""
    W = as_array("W", W, ndim=2)
    a = as_array("a", a, shape=(W.shape[0],))
    X = as_array("X", X, shape=(None, W.shape[1]))
    y = as_array("y", y, shape=(X.shape[0],))
    eta = as_float("eta", eta)
    pre, r, dW = _nets.du_parts(W, a, X, y)
    S = pre >= 0.0
    pre1, r1, _ = _nets.du_parts(W - eta * dW, a, X, y)
    H = gram_from_patterns(S, X)
    return StepCheck(du=r1 - r, predicted=-eta * H @ r, flipped=int(np.sum(S != (pre1 >= 0.0))))


# --- the proof's own quantities: radius, flips, kernel change, required width ------------------------------------


class GramChangeBound(NamedTuple):
    """How flipped activation patterns move the Gram matrix (chapter 4, lazy training), from :func:`gram_change_bound`.

    ``f`` (n,): ``f_i`` the fraction of the ``m`` neurons whose pattern on ``x_i`` differs between the two weights;
    ``change`` (n, n): ``H(W) - H(W0)``; ``entry_bound`` (n, n): ``|x_i^T x_j| (f_i + f_j)``, a bound on each
    ``|change_ij|``; ``frobenius_bound``: ``2 sqrt(n) |f|_2``, a bound on ``|change|_F`` for unit inputs;
    ``random_sign``: ``sqrt(sum_ij (x_i^T x_j)^2 (f_i + f_j) / m)``, the size of ``|change|_F`` if each flip moved its
    counts up or down with independent fair signs (a heuristic, not a bound)."""

    f: np.ndarray
    change: np.ndarray
    entry_bound: np.ndarray
    frobenius_bound: float
    random_sign: float


def gram_change_bound(W0, W, X) -> GramChangeBound:
    """The change of the Gram matrix between first-layer weights ``W0`` and ``W`` (m, d) on inputs ``X`` (n, d), with
    the bound that the flipped patterns give it (chapter 4, lazy training).

    A flip of pattern ``(r, i)`` changes the count of every entry in row ``i`` and column ``i`` whose other input
    is active on neuron ``r``, not one count: ``|S_ir S_jr - S0_ir S0_jr| <= 1{(r, i) flipped} + 1{(r, j) flipped}``,
    so ``|H_ij - H0_ij| <= |x_i^T x_j| (f_i + f_j)`` and, for unit inputs (``|x_i^T x_j| <= 1``),
    ``|H - H0|_F^2 <= sum_ij (f_i + f_j)^2 <= 4 n |f|_2^2``, i.e. ``|H - H0|_F <= 2 sqrt(n) |f|_2``.
    """
    W0 = as_array("W0", W0, ndim=2)
    W = as_array("W", W, shape=W0.shape)
    X = as_array("X", X, shape=(None, W0.shape[1]))
    m = W0.shape[0]
    S0, S = X @ W0.T >= 0.0, X @ W.T >= 0.0
    f = np.mean(S0 != S, axis=1)
    G = np.abs(X @ X.T)
    pair = f[:, None] + f[None, :]
    change = gram_from_patterns(S, X) - gram_from_patterns(S0, X)
    return GramChangeBound(f=f, change=change, entry_bound=G * pair,
                           frobenius_bound=float(2.0 * np.sqrt(f.size) * np.linalg.norm(f)),
                           random_sign=float(np.sqrt(np.sum(G**2 * pair) / m)))


def lazy_radius(n: int, residual0: float, m: int, lam: float) -> float:
    """``R = sqrt(n) |u(0) - y| / (sqrt(m) lam)``: how far any ``w_r`` can move under gradient flow while
    ``lambda_min(H) >= lam`` (chapter 4, eq. ``eq-lazy-radius``), for ``n`` inputs, initial residual norm
    ``residual0`` and width ``m``."""
    n, m = as_int("n", n), as_int("m", m)
    residual0 = as_float("residual0", residual0, low=0.0, low_open=False)
    lam = as_float("lam", lam)
    return float(np.sqrt(n) * residual0 / (np.sqrt(m) * lam))


def flip_probability_bound(R: float) -> float:
    """``2 R / sqrt(2 pi)``: the Gaussian anti-concentration bound on ``P(|w_r(0)^T x| <= R)`` for a unit input, the
    probability that a neuron within distance ``R`` of its start can have flipped its pattern on ``x`` (chapter 4).
    Returned as computed: a value >= 1 says nothing."""
    R = as_float("R", R, low=0.0, low_open=False)
    return float(2.0 * R / np.sqrt(2.0 * np.pi))


def du_required_width(n: int, lambda0: float, delta: float) -> float:
    """``n^6 / (lambda_0^4 delta^3)``: the width that Du et al.'s theorem asks for, constants aside (chapter 4)."""
    n = as_int("n", n)
    lambda0 = as_float("lambda0", lambda0)
    delta = as_float("delta", delta, high=1.0, high_open=True)
    return float(n**6 / (lambda0**4 * delta**3))


def antipodal_floor(X_half, y) -> float:
    """The loss below which no net of chapter 4 gets, at any width and any weights, on antipodal pairs.

    ``X_half`` (k, d): unit inputs ``x_1 .. x_k``; the inputs are ``[X_half; -X_half]`` (2k, d) with targets ``y``
    (2k,). Since ``relu(z) - relu(-z) = z``, ``u(x) - u(-x) = b^T x`` with ``b = m^{-1/2} sum_r a_r w_r``, so the
    differences ``u(x_k) - u(-x_k)`` are linear in ``x_k``. Splitting the loss into sums and differences of the pairs,
    ``L >= (1/4) min_b |X_half b - (y_+ - y_-)|^2`` (a least-squares residual): positive as soon as the targets'
    differences are not a linear function of the inputs, which for ``k >= d + 1`` pairs in general position they
    generically are not (chapter 4, antipodal inputs)."""
    X_half = unit_inputs("X_half", X_half)
    k = X_half.shape[0]
    y = as_array("y", y, shape=(2 * k,))
    diff = y[:k] - y[k:]
    b = np.linalg.lstsq(X_half, diff, rcond=None)[0]
    return float(0.25 * np.sum((X_half @ b - diff) ** 2))


# --- the trained net against kernel predictors, one draw at a time ---------------------------------------------


class PredictorGaps(NamedTuple):
    """Sup-norm distances on test inputs between a trained net and three kernel predictors (chapter 4), from
    :func:`predictor_gaps`: ``corrected`` the random start against ``f_0 + K* H*^{-1}(I - (I - eta H*)^k)(y - u_0)``;
    ``plain`` the random start against ``K* H*^{-1} y``; ``symmetric`` the symmetric start
    (:func:`symmetric_init`) against ``K* H*^{-1}(I - (I - eta H*)^k) y``; ``plateau`` the limit of ``plain`` for
    ``m -> inf`` on this draw, ``sup |f_0 - K* H*^{-1} u_0|``: the part of the initial function that the kernel does not
    infer from its values on the training inputs. ``loss``: the random start's final training loss."""

    corrected: float
    plain: float
    symmetric: float
    plateau: float
    loss: float


def predictor_gaps(X, y, Z, m: int, eta: float, steps: int, seed) -> PredictorGaps:
    """Train the Du et al. net of width ``m`` on unit inputs ``X`` (n, d), targets ``y`` (n,) for ``steps`` GD steps
    of size ``eta`` from a random start (:func:`gdlab.nets.du_init` with ``seed``) and from the symmetric start with
    the same seed; compare with the kernel predictors on the unit test inputs ``Z`` (T, d) (chapter 4, section 6)."""
    X, Z = unit_inputs("X", X), unit_inputs("Z", Z)
    H, K = ntk_limit(X), ntk_limit(Z, X)
    t = eta * as_int("steps", steps)
    W, a = _nets.du_init(m, X.shape[1], seed)
    run = lazy_training(X, y, W, a, eta, steps, records=2)
    f0 = _nets.du_forward(W, a, Z)
    f_net = _nets.du_forward(run.W, a, Z)
    corrected = kernel_predictor(K, H, y, u0=run.u[0], f0_te=f0, t=t, eta=eta)
    plain = kernel_predictor(K, H, y)
    W_s, a_s = symmetric_init(m, X.shape[1], seed)
    run_s = lazy_training(X, y, W_s, a_s, eta, steps, records=2)
    f_sym = kernel_predictor(K, H, y, t=t, eta=eta)
    plateau = f0 - K @ np.linalg.solve(H, run.u[0])
    return PredictorGaps(corrected=float(np.max(np.abs(f_net - corrected))),
                         plain=float(np.max(np.abs(f_net - plain))),
                         symmetric=float(np.max(np.abs(_nets.du_forward(run_s.W, a_s, Z) - f_sym))),
                         plateau=float(np.max(np.abs(plateau))), loss=float(run.loss[-1]))


def gp_residual_sup(X, Z, draws: int, seed) -> np.ndarray:
    """``sup_z |g(z) - K*(z, X) H*^{-1} g(X)|`` over the unit test inputs ``Z`` (T, d) for ``draws`` samples ``g`` of the
    Gaussian process with kernel :func:`relu_gp_kernel`, the infinite-width initial function; ``X`` (n, d) unit
    training inputs. Returns (draws,): the distribution of the plateau of ``|f_net - K* H*^{-1} y|`` (chapter 4)."""
    X, Z = unit_inputs("X", X), unit_inputs("Z", Z)
    draws = as_int("draws", draws)
    A = np.hstack([np.eye(Z.shape[0]), -ntk_limit(Z, X) @ np.linalg.inv(ntk_limit(X))])  # r = A (g(Z), g(X))
    cov = A @ relu_gp_kernel(np.vstack([Z, X])) @ A.T
    root = psd_sqrt((cov + cov.T) / 2)  # unique: the same draws with any LAPACK build
    g = as_rng(seed).normal(size=(Z.shape[0], draws))
    return np.max(np.abs(root @ g), axis=0)
