"""Deep linear networks and balancedness (chapter 7, compute layer).

The network is ``x -> W_N ... W_1 x`` with ``W_j`` (d_j, d_{j-1}); the loss ``L^N = |W_N ... W_1 X - Y|_F^2 / 2`` and its
gradients are :func:`gdlab.nets.deep_linear_loss` and :func:`gdlab.nets.deep_linear_grad`. This module adds what
chapter 7 measures (:cite:`nguegnang2024convergence`, :cite:`arora2018optimization`, :cite:`du2018balanced`):

* balancedness ``Delta_j = W_{j+1}^T W_{j+1} - W_j W_j^T``, a balanced initialisation for any widths, and the exact
  change of ``Delta_j`` in one gradient step;
* exact Hessian-vector products of ``L^N`` and the sharpness ``lambda_max(Hess L^N)``;
* gradient descent with constant or decaying steps, recording loss, balancedness and (optionally) sharpness;
* a balanced factorisation of a given matrix, and the sufficient conditions of :cite:`arora2019convergence`
  (deficiency margin, balancedness, step size) at a start;
* the factor flow and the end-to-end flow ``dW/dt = -A_W(grad L^1(W))`` of a balanced initialisation;
* the per-neuron conserved quantity of a two-layer ReLU network under gradient flow.
"""

from __future__ import annotations

from numbers import Real
from typing import NamedTuple

import numpy as np
from scipy.integrate import solve_ivp
from scipy.sparse.linalg import LinearOperator, eigsh
from scipy.stats import ortho_group

from ._checks import as_array, as_float, as_int, as_rng
from .nets import deep_linear_grad, deep_linear_grad_unchecked, deep_linear_product, mlp_grad, pack, unpack
from .runs import NOT_DIVERGED, divergence_threshold, diverges, record_steps


def _check_layers(Ws, X=None, Y=None, name: str = "Ws"):
    """Factors as float arrays with chained shapes (and data with matching shapes); raises ValueError naming them
    (the factors as ``name``)."""
    if isinstance(Ws, np.ndarray) or not hasattr(Ws, "__len__") or len(Ws) < 1:
        raise ValueError(f"{name} must be a list [W_1, ..., W_N] of N >= 1 matrices")
    Ws = [as_array(f"{name}[{j}]", W, ndim=2) for j, W in enumerate(Ws)]
    for j in range(1, len(Ws)):
        if Ws[j].shape[1] != Ws[j - 1].shape[0]:
            raise ValueError(f"{name}[{j}] must have {Ws[j - 1].shape[0]} columns to follow {name}[{j - 1}] "
                             f"{Ws[j - 1].shape}; got {Ws[j].shape}")
    if X is not None:
        X = as_array("X", X, shape=(Ws[0].shape[1], None))
    if Y is not None:
        Y = as_array("Y", Y, shape=(Ws[-1].shape[0], None if X is None else X.shape[1]))
    return Ws, X, Y


def dims_of(Ws) -> tuple[int, ...]:
    """The widths ``(d_0, d_1, ..., d_N)`` of the factors ``Ws``."""
    Ws, _, _ = _check_layers(Ws)
    return (Ws[0].shape[1],) + tuple(W.shape[0] for W in Ws)


# ----------------------------------------------------------------------------------------------------------
# Balancedness
# ----------------------------------------------------------------------------------------------------------


def _check_dims(dims) -> list[int]:
    """Widths ``(d_0, ..., d_N)``, N >= 1, as a list of positive ints; raises ValueError naming ``dims``."""
    if isinstance(dims, np.ndarray | str) or not hasattr(dims, "__len__") or len(dims) < 2:
        raise ValueError(f"dims must be a sequence (d_0, ..., d_N) of N + 1 >= 2 positive integers; got {dims!r}")
    return [as_int(f"dims[{j}]", d) for j, d in enumerate(dims)]


def _haar(d: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-random orthogonal d x d matrix (for d = 1 a random sign)."""
    if d == 1:
        return np.array([[rng.choice([-1.0, 1.0])]])
    return ortho_group.rvs(d, random_state=rng)


def balanced_init(dims, alpha: float, seed, rank: int | None = None) -> list[np.ndarray]:
    """A balanced initialisation for any widths ``dims = (d_0, ..., d_N)`` (chapter 7).

    With ``r = rank`` (default and largest value ``min_j d_j``), Haar-random orthogonal ``U_j`` in ``O(d_j)`` and
    ``E_j = diag(I_r, 0)`` (d_j, d_{j-1}), ``W_j = alpha U_j E_j U_{j-1}^T``. Then
    ``W_j W_j^T = alpha^2 U_j diag(I_r, 0) U_j^T = W_{j+1}^T W_{j+1}``, and the end-to-end matrix is
    ``alpha^N U_N E U_0^T``, of rank r.
    """
    dims = _check_dims(dims)
    alpha = as_float("alpha", alpha)
    rng = as_rng(seed)
    r = min(dims) if rank is None else as_int("rank", rank, low=1, high=min(dims))
    U = [_haar(d, rng) for d in dims]
    Ws = []
    for j in range(1, len(dims)):
        E = np.zeros((dims[j], dims[j - 1]))
        E[:r, :r] = np.eye(r)
        Ws.append(alpha * U[j] @ E @ U[j - 1].T)
    return Ws


class Balance(NamedTuple):
    """``Delta`` the list of ``Delta_j = W_{j+1}^T W_{j+1} - W_j W_j^T`` (d_j, d_j), j = 1..N-1, and the balancedness
    constant ``delta = max_j |Delta_j|`` in the spectral norm (``delta_fro``: in the Frobenius norm)."""

    Delta: list
    delta: float
    delta_fro: float


def balancedness(Ws) -> Balance:
    """The balancedness of the factors ``Ws`` (chapter 7); ``delta = 0`` for a single layer."""
    Ws, _, _ = _check_layers(Ws)
    Delta = [Ws[j + 1].T @ Ws[j + 1] - Ws[j] @ Ws[j].T for j in range(len(Ws) - 1)]
    spec = max((np.linalg.norm(D, 2) for D in Delta), default=0.0)
    fro = max((np.linalg.norm(D) for D in Delta), default=0.0)
    return Balance(Delta, float(spec), float(fro))


def delta_step_change(grads, eta: float) -> list[np.ndarray]:
    """The exact change of every ``Delta_j`` in one gradient step ``W_j <- W_j - eta G_j`` (chapter 7):
    ``eta^2 (G_{j+1}^T G_{j+1} - G_j G_j^T)``, because the first-order terms cancel (``W_{j+1}^T G_{j+1} = G_j W_j^T``)."""
    grads, _, _ = _check_layers(grads, name="grads")
    eta = as_float("eta", eta)
    return [eta**2 * (grads[j + 1].T @ grads[j + 1] - grads[j] @ grads[j].T) for j in range(len(grads) - 1)]


# ----------------------------------------------------------------------------------------------------------
# Hessian-vector products and sharpness
# ----------------------------------------------------------------------------------------------------------


def _partial_products(Ws: list[np.ndarray]) -> list[list[np.ndarray]]:
    """``T[a][b] = W_b ... W_{a+1}`` (1-based factors; the product of ``Ws[a:b]``, identity when a = b), 0 <= a <= b <= N:
    every partial product the Hessian needs, O(N^2) matrix products once."""
    N = len(Ws)
    dims = [Ws[0].shape[1]] + [W.shape[0] for W in Ws]
    T = [[None] * (N + 1) for _ in range(N + 1)]
    for a in range(N + 1):
        T[a][a] = np.eye(dims[a])
        for b in range(a + 1, N + 1):
            T[a][b] = Ws[b - 1] @ T[a][b - 1]
    return T


def _hvp_from(T, X: np.ndarray, E: np.ndarray, Vs: list[np.ndarray]) -> list[np.ndarray]:
    """:func:`hvp` given the partial products ``T`` and ``E = (W X - Y) X^T``."""
    N = len(Vs)
    dW = sum(T[k + 1][N] @ Vs[k] @ T[0][k] for k in range(N))
    dE = dW @ X @ X.T
    out = []
    for j in range(N):
        S, P = T[j + 1][N], T[0][j]
        dS = sum((T[k + 1][N] @ Vs[k] @ T[j + 1][k] for k in range(j + 1, N)), np.zeros_like(S))
        dP = sum((T[k + 1][j] @ Vs[k] @ T[0][k] for k in range(j)), np.zeros_like(P))
        out.append(dS.T @ E @ P.T + S.T @ dE @ P.T + S.T @ E @ dP.T)
    return out


def hvp(Ws, X, Y, Vs) -> list[np.ndarray]:
    """Exact Hessian-vector product ``Hess L^N (W) [V]`` (chapter 7); ``Vs`` has the shapes of ``Ws``.

    ``G_j = S_j^T E P_j^T`` with ``S_j = W_N .. W_{j+1}``, ``P_j = W_{j-1} .. W_1``, ``E = (W X - Y) X^T``; its
    derivative along V is ``dS_j^T E P_j^T + S_j^T dE P_j^T + S_j^T E dP_j^T`` with ``dE = dW X X^T``,
    ``dW = sum_k S_k V_k P_k``, and ``dS_j``, ``dP_j`` the sums over the factors of ``S_j``, ``P_j`` with one replaced
    by its ``V``. O(N^2) matrix products, from the partial products computed once.
    """
    Ws, X, Y = _check_layers(Ws, X, Y)
    if isinstance(Vs, np.ndarray) or not hasattr(Vs, "__len__") or len(Vs) != len(Ws):
        raise ValueError(f"Vs must be a list of {len(Ws)} directions, one per factor of Ws")
    Vs = [as_array(f"Vs[{j}]", V, shape=W.shape) for j, (V, W) in enumerate(zip(Vs, Ws, strict=True))]
    T = _partial_products(Ws)
    return _hvp_from(T, X, (T[0][len(Ws)] @ X - Y) @ X.T, Vs)


#: Up to this many parameters :func:`sharpness` forms the Hessian densely.
DENSE_HESSIAN_MAX = 48


def hessian(Ws, X, Y) -> np.ndarray:
    """The Hessian of ``L^N`` on the flat parameter vector (``nets.pack`` order), column by column from :func:`hvp`,
    symmetrised; (p, p) with p the number of parameters (chapter 7; for small networks)."""
    Ws, X, Y = _check_layers(Ws, X, Y)
    shapes = [W.shape for W in Ws]
    p = sum(a * b for a, b in shapes)
    T = _partial_products(Ws)
    E = (T[0][len(Ws)] @ X - Y) @ X.T
    H = np.column_stack([pack(_hvp_from(T, X, E, unpack(e, shapes))) for e in np.eye(p)])
    return 0.5 * (H + H.T)


def sharpness(Ws, X, Y, seed=0, tol: float = 1e-8) -> float:
    """``lambda_max(Hess L^N)`` at ``Ws`` by Lanczos (``eigsh``) on exact Hessian-vector products (chapter 7); the local
    stability limit of gradient descent with a constant step ``eta`` is ``lambda_max < 2 / eta``."""
    Ws, X, Y = _check_layers(Ws, X, Y)
    shapes = [W.shape for W in Ws]
    p = sum(a * b for a, b in shapes)
    if p <= DENSE_HESSIAN_MAX:  # small: the whole Hessian, column by column, is cheaper than Lanczos
        return float(np.linalg.eigvalsh(hessian(Ws, X, Y))[-1])
    T = _partial_products(Ws)
    E = (T[0][len(Ws)] @ X - Y) @ X.T
    op = LinearOperator((p, p), matvec=lambda v: pack(_hvp_from(T, X, E, unpack(np.ravel(v), shapes))), dtype=float)
    v0 = as_rng(seed).normal(size=p)
    return float(eigsh(op, k=1, which="LA", v0=v0, tol=tol, return_eigenvectors=False)[0])


# ----------------------------------------------------------------------------------------------------------
# Gradient descent
# ----------------------------------------------------------------------------------------------------------


def decaying_steps(a: float, b: float, gamma: float, steps: int) -> np.ndarray:
    """Step sizes ``eta_k = a / (b + k)^gamma`` for k = 0..steps-1 (chapter 7); ``gamma = 0`` is the constant step
    ``a``."""
    a, b = as_float("a", a), as_float("b", b, low=0.0, low_open=False)
    gamma = as_float("gamma", gamma, low=0.0, low_open=False)
    steps = as_int("steps", steps, low=0)
    if b == 0.0 and gamma > 0:
        raise ValueError("b must be positive when gamma > 0 (the first step would be infinite)")
    return a / (b + np.arange(steps)) ** gamma


class DLRun(NamedTuple):
    """Gradient descent on a deep linear network (chapter 7): at the recorded steps ``k`` (R,), the loss (R,), the
    balancedness constant ``delta`` (R,) and the sharpness (R,) (NaN where not computed); ``diverged_at`` (-1: never,
    else the step at which the loss became non-finite or exceeded :func:`gdlab.runs.divergence_threshold` of ``L(0)``;
    :mod:`gdlab.runs`: the records end before it) and the last factors ``Ws`` (for a diverged run, those at which
    the divergence was detected)."""

    k: np.ndarray
    loss: np.ndarray
    delta: np.ndarray
    sharpness: np.ndarray
    diverged_at: int
    Ws: list

    @property
    def diverged(self) -> bool:
        """Whether the run diverged (``diverged_at >= 0``)."""
        return self.diverged_at >= 0


def gradient_descent(Ws0, X, Y, eta, steps: int, *, records: int = 100, sharpness_records: int = 0,
                     track_delta: bool = True) -> DLRun:
    """Gradient descent ``W_j <- W_j - eta_k G_j`` from ``Ws0`` (chapter 7); ``eta`` a positive number or an array of
    ``steps`` step sizes. Records loss and balancedness at about ``records`` steps and the sharpness at about
    ``sharpness_records`` of them (it costs a Lanczos run each); ``track_delta=False`` records NaN for the
    balancedness (cheaper when every step is recorded). A diverging run stops and says so."""
    Ws, X, Y = _check_layers(Ws0, X, Y)
    steps = as_int("steps", steps, low=0)
    etas = np.full(steps, as_float("eta", eta)) if np.ndim(eta) == 0 else as_array("eta", eta, shape=(steps,))
    if np.any(etas <= 0):
        raise ValueError("eta must be positive")
    records = as_int("records", records, low=2)
    sharpness_records = as_int("sharpness_records", sharpness_records, low=0)
    rec = set(record_steps(steps, records).tolist())
    sharp = set(record_steps(steps, sharpness_records).tolist()) if sharpness_records else set()
    Ws = [W.copy() for W in Ws]
    ks, losses, deltas, sharps = [], [], [], []
    limit, diverged_at = None, NOT_DIVERGED
    for k in range(steps + 1):
        with np.errstate(over="ignore", invalid="ignore"):
            loss, grads = deep_linear_grad_unchecked(Ws, X, Y)
        limit = divergence_threshold(loss) if limit is None else limit
        if diverges(loss, limit):
            diverged_at = k
            break
        if k in rec or k in sharp:
            ks.append(k)
            losses.append(loss)
            deltas.append(balancedness(Ws).delta if track_delta else np.nan)
            sharps.append(sharpness(Ws, X, Y) if k in sharp else np.nan)
        if k == steps:
            break
        Ws = [W - etas[k] * G for W, G in zip(Ws, grads, strict=True)]
    return DLRun(np.array(ks, dtype=int), np.array(losses), np.array(deltas), np.array(sharps), diverged_at, Ws)


def gradient_norm(Ws, X, Y) -> float:
    """``|grad L^N| = (sum_j |G_j|_F^2)^(1/2)`` at the factors ``Ws`` for data ``X`` (d_0, m), ``Y`` (d_N, m)
    (chapter 7): zero exactly at the critical points of ``L^N``, so a run that ends with it far from 0 has stopped
    short of one (Theorem 2.4 of :cite:`nguegnang2024convergence` needs ``sum_k eta_k = infinity``)."""
    Ws, X, Y = _check_layers(Ws, X, Y)
    return float(np.linalg.norm(pack(deep_linear_grad(Ws, X, Y)[1])))


class DescentRecord(NamedTuple):
    """Gradient descent recorded at every step k = 0..K (chapter 7, the mechanism of Theorem 2.4 of
    :cite:`nguegnang2024convergence`): ``loss`` (K+1,), ``grad_norm`` (K+1,) ``|grad L^N|``, ``delta`` (K+1,) the
    balancedness constant, ``delta_bound`` (K+1,) ``delta_0 + sum_{i<k} eta_i^2 max_j (|G_{j+1}(i)|_2^2 + |G_j(i)|_2^2)``
    (the one-step identity summed with the triangle inequality), ``length`` (K+1,) the path length
    ``sum_{i<k} |W(i+1) - W(i)| = sum_{i<k} eta_i |grad L^N(W(i))|``, and the last factors ``Ws``."""

    loss: np.ndarray
    grad_norm: np.ndarray
    delta: np.ndarray
    delta_bound: np.ndarray
    length: np.ndarray
    Ws: list


def descent_record(Ws0, X, Y, eta, steps: int) -> DescentRecord:
    """Gradient descent ``W_j <- W_j - eta_k G_j`` from ``Ws0`` for ``steps`` steps, with the quantities of
    :class:`DescentRecord` at every step (chapter 7); ``eta`` a positive number or an array of ``steps`` step sizes.
    Raises ValueError if the run diverges (this record is for runs that the theorem covers)."""
    Ws, X, Y = _check_layers(Ws0, X, Y)
    steps = as_int("steps", steps, low=0)
    etas = np.full(steps, as_float("eta", eta)) if np.ndim(eta) == 0 else as_array("eta", eta, shape=(steps,))
    if np.any(etas <= 0):
        raise ValueError("eta must be positive")
    Ws = [W.copy() for W in Ws]
    loss, gnorm, delta, bound, length = (np.empty(steps + 1) for _ in range(5))
    bound[0], length[0] = balancedness(Ws).delta, 0.0
    for k in range(steps + 1):
        loss[k], grads = deep_linear_grad(Ws, X, Y)
        if diverges(loss[k], divergence_threshold(loss[0])):
            raise ValueError(f"eta: gradient descent diverged at step {k}; descent_record needs a convergent run")
        gnorm[k] = np.linalg.norm(pack(grads))
        delta[k] = balancedness(Ws).delta
        if k == steps:
            break
        sq = [np.linalg.norm(G, 2) ** 2 for G in grads]
        bound[k + 1] = bound[k] + etas[k] ** 2 * max((sq[j + 1] + sq[j] for j in range(len(sq) - 1)), default=0.0)
        length[k + 1] = length[k] + etas[k] * gnorm[k]
        Ws = [W - etas[k] * G for W, G in zip(Ws, grads, strict=True)]
    return DescentRecord(loss, gnorm, delta, bound, length, Ws)


def steps_to_fraction(Ws0, X, Y, eta: float, fraction: float = 0.5, max_steps: int = 100_000) -> int:
    """The first step k at which gradient descent with constant step ``eta`` from ``Ws0`` has loss
    ``L(k) <= fraction * L(0)`` (chapter 7: the escape from the saddle at 0); -1 if not within ``max_steps``."""
    Ws, X, Y = _check_layers(Ws0, X, Y)
    eta = as_float("eta", eta)
    fraction = as_float("fraction", fraction, high=1.0, high_open=True)
    max_steps = as_int("max_steps", max_steps)
    loss0 = None
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run ends quietly with -1
        for k in range(max_steps + 1):
            loss, grads = deep_linear_grad_unchecked(Ws, X, Y)
            loss0 = loss if loss0 is None else loss0
            if loss <= fraction * loss0:
                return k
            if diverges(loss, divergence_threshold(loss0)):
                return -1
            Ws = [W - eta * G for W, G in zip(Ws, grads, strict=True)]
    return -1


class StepScan(NamedTuple):
    """Constant step sizes ``eta`` (S,) tried from one initialisation: ``converged`` (S,) (loss below ``tol`` within
    the steps, no divergence), ``diverged_at`` (S,) (:class:`DLRun`; -1: did not diverge), ``final_loss`` (S,) (NaN
    if diverged), ``sharpness_end`` (S,) (NaN unless converged), and ``eta_max`` the largest converged step of the list
    (NaN if none)."""

    eta: np.ndarray
    converged: np.ndarray
    diverged_at: np.ndarray
    final_loss: np.ndarray
    sharpness_end: np.ndarray
    eta_max: float

    @property
    def diverged(self) -> np.ndarray:
        """(S,) bool: ``diverged_at >= 0``."""
        return self.diverged_at >= 0


def step_scan(Ws0, X, Y, etas, steps: int, tol: float = 1e-12) -> StepScan:
    """Gradient descent from ``Ws0`` with each constant step in ``etas`` for ``steps`` steps (chapter 7): which ones
    converge (loss < ``tol``), which diverge, and the sharpness at the end of the converged runs."""
    etas = as_array("etas", etas, ndim=1)
    if etas.size < 1 or np.any(etas <= 0):
        raise ValueError(f"etas must be a non-empty array of positive step sizes; got {etas}")
    tol = as_float("tol", tol)
    conv, div, final, sharp = [], [], [], []
    for eta in etas:
        run = gradient_descent(Ws0, X, Y, float(eta), steps, records=2)
        ok = not run.diverged and run.loss[-1] < tol
        conv.append(ok)
        div.append(run.diverged_at)
        final.append(np.nan if run.diverged else run.loss[-1])
        sharp.append(sharpness(run.Ws, X, Y) if ok else np.nan)
    conv = np.array(conv)
    return StepScan(etas, conv, np.array(div), np.array(final), np.array(sharp),
                    float(etas[conv].max()) if conv.any() else float("nan"))


def _converges(Ws, X, Y, eta: float, steps: int, tol: float) -> bool:
    """Whether gradient descent with constant step ``eta`` from ``Ws`` reaches a loss below ``tol`` within ``steps``
    steps (stopping there), without diverging."""
    limit = None
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps + 1):
            loss, grads = deep_linear_grad_unchecked(Ws, X, Y)
            limit = divergence_threshold(loss) if limit is None else limit
            if loss < tol:
                return True
            if diverges(loss, limit):
                return False
            Ws = [W - eta * G for W, G in zip(Ws, grads, strict=True)]
    return False


class StepBracket(NamedTuple):
    """The largest convergent constant step, bracketed (chapter 7): gradient descent converges at ``lo`` and does not
    at ``hi``, ``hi / lo <= 1 + rel``; ``tries`` the number of runs it took."""

    lo: float
    hi: float
    tries: int


def largest_convergent_step(Ws0, X, Y, lo: float, hi: float, steps: int = 1000, tol: float = 1e-12,
                            rel: float = 1e-2) -> StepBracket:
    """Bisect (geometrically) the threshold between constant steps that converge (loss below ``tol`` within ``steps``
    steps, as in :func:`step_scan`) and steps that do not, from ``Ws0`` (chapter 7). ``lo`` must converge and ``hi``
    must not (ValueError otherwise); the bracket is narrowed until ``hi / lo <= 1 + rel``. It assumes one switch
    between them: it finds a switching point, the largest convergent step if convergence is monotone in the step."""
    Ws, X, Y = _check_layers(Ws0, X, Y)
    lo, hi = as_float("lo", lo), as_float("hi", hi)
    if hi <= lo:
        raise ValueError(f"hi must be larger than lo = {lo}; got {hi}")
    steps = as_int("steps", steps)
    tol, rel = as_float("tol", tol), as_float("rel", rel)
    if not _converges(Ws, X, Y, lo, steps, tol):
        raise ValueError(f"lo = {lo} must be a step at which gradient descent converges")
    if _converges(Ws, X, Y, hi, steps, tol):
        raise ValueError(f"hi = {hi} must be a step at which gradient descent does not converge")
    tries = 2
    while hi / lo > 1.0 + rel:
        mid = float(np.sqrt(lo * hi))
        tries += 1
        if _converges(Ws, X, Y, mid, steps, tol):
            lo = mid
        else:
            hi = mid
    return StepBracket(lo, hi, tries)


def whitened_data(d: int, m: int, singular_values, seed, noise: float = 0.0):
    """Data for chapter 7: inputs ``X`` (d, m) with orthonormal rows (``X X^T = I``, whitened), a target map ``Phi``
    (d_y, d) with the given singular values (d_y = their number) and Haar-random singular vectors, and
    ``Y = Phi X + noise * Z`` (Z standard normal). Returns ``(X, Y, Phi)``. With whitened data
    ``L^1(W) = |W - Y X^T|_F^2 / 2 + const``, so the best matrix of rank k is a truncated SVD of ``Y X^T``."""
    d, m = as_int("d", d), as_int("m", m)
    if m < d:
        raise ValueError(f"m must be at least d = {d} for whitened inputs; got {m}")
    s = as_array("singular_values", singular_values, ndim=1)
    if s.size < 1 or np.any(s < 0):
        raise ValueError("singular_values must be a non-empty array of non-negative numbers")
    noise = as_float("noise", noise, low=0.0, low_open=False)
    rng = as_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(m, d)))
    X = Q.T
    k = min(s.size, d)
    S = np.zeros((s.size, d))
    S[np.arange(k), np.arange(k)] = s[:k]
    Phi = _haar(s.size, rng) @ S @ _haar(d, rng).T
    return X, Phi @ X + noise * rng.normal(size=(s.size, m)), Phi


def deficiency_margin(W, Phi) -> float:
    """``sigma_min(Phi) - |W - Phi|_F`` (chapter 7): positive when ``W`` is closer to the target ``Phi`` than every
    rank-deficient matrix is, the "deficiency margin" that :cite:`arora2019convergence` require of the start."""
    W = as_array("W", W, ndim=2)
    Phi = as_array("Phi", Phi, shape=W.shape)
    return float(np.linalg.svd(Phi, compute_uv=False)[-1] - np.linalg.norm(W - Phi))


def balanced_factors(W, dims, seed) -> list[np.ndarray]:
    """Balanced factors ``W_N ... W_1 = W`` with widths ``dims = (d_0, ..., d_N)`` (chapter 7); ``W`` (d_N, d_0), every
    hidden width at least ``r = min(d_0, d_N)``.

    With the thin SVD ``W = U diag(s) V^T`` (r singular values), ``O_0 = V``, ``O_N = U`` and ``O_j`` the first r
    columns of a Haar-random orthogonal matrix in ``O(d_j)``: ``W_j = O_j diag(s^(1/N)) O_{j-1}^T``. Then
    ``W_j W_j^T = O_j diag(s^(2/N)) O_j^T = W_{j+1}^T W_{j+1}`` and the product telescopes to ``W``.
    """
    W = as_array("W", W, ndim=2)
    dims = _check_dims(dims)
    if (dims[-1], dims[0]) != W.shape:
        raise ValueError(f"dims must start with d_0 = {W.shape[1]} and end with d_N = {W.shape[0]} (the shape of W); "
                         f"got {tuple(dims)}")
    r = min(dims[0], dims[-1])
    if min(dims) < r:
        raise ValueError(f"dims must have hidden widths of at least min(d_0, d_N) = {r}; got {tuple(dims)}")
    rng = as_rng(seed)
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    N = len(dims) - 1
    O = [Vt.T] + [_haar(d, rng)[:, :r] for d in dims[1:-1]] + [U]
    root = s ** (1.0 / N)
    return [(O[j] * root) @ O[j - 1].T for j in range(1, N + 1)]


class AroraConditions(NamedTuple):
    """The sufficient conditions of Theorem 1 of :cite:`arora2019convergence` at a start (chapter 7), for whitened
    data and the target ``Phi``: the deficiency margin ``c`` (must be > 0), the balancedness ``delta`` in the Frobenius
    norm and the largest one allowed, ``delta_max = c^2 / (256 N^3 |Phi|_F^(2(N-1)/N))``, the largest step allowed,
    ``eta_max = c^((4N-2)/N) / (6144 N^3 |Phi|_F^((6N-4)/N))`` (NaN when ``c <= 0``), whether the hidden widths are at
    least ``min(d_0, d_N)``, and ``rate = c^(2(N-1)/N)``: under the conditions the loss (its excess over the minimum)
    obeys ``L(k) <= L(0) exp(-eta rate k)``."""

    c: float
    delta: float
    delta_max: float
    eta_max: float
    widths_ok: bool
    rate: float

    def hold(self, eta: float) -> bool:
        """Whether the theorem's hypotheses hold for the constant step ``eta`` (a real number; they need
        ``0 < eta <= eta_max``, which no step meets when ``eta_max`` is NaN)."""
        if isinstance(eta, bool) or not isinstance(eta, Real):
            raise ValueError(f"eta must be a real number; got {eta!r}")
        return bool(self.c > 0 and self.widths_ok and self.delta <= self.delta_max and 0 < eta <= self.eta_max)


def arora_conditions(Ws, Phi) -> AroraConditions:
    """:class:`AroraConditions` of the factors ``Ws`` for the target ``Phi`` (d_N, d_0) (chapter 7)."""
    Ws, _, _ = _check_layers(Ws)
    dims = dims_of(Ws)
    Phi = as_array("Phi", Phi, shape=(dims[-1], dims[0]))
    N = len(Ws)
    c = deficiency_margin(deep_linear_product(Ws), Phi)
    phi = float(np.linalg.norm(Phi))
    if phi == 0.0:
        raise ValueError("Phi must not be zero (the conditions divide by its norm)")
    c_pos = max(c, 0.0)
    delta_max = c_pos**2 / (256 * N**3 * phi ** (2 * (N - 1) / N))
    eta_max = c_pos ** ((4 * N - 2) / N) / (6144 * N**3 * phi ** ((6 * N - 4) / N)) if c > 0 else float("nan")
    return AroraConditions(c, balancedness(Ws).delta_fro, delta_max, eta_max, min(dims) >= min(dims[0], dims[-1]),
                           c_pos ** (2 * (N - 1) / N))


# ----------------------------------------------------------------------------------------------------------
# Gradient flow: the factors and the end-to-end matrix
# ----------------------------------------------------------------------------------------------------------


class FactorFlow(NamedTuple):
    """Gradient flow of the factors at the times ``t`` (T,): ``Ws`` a list over time of factor lists, ``loss`` (T,)."""

    t: np.ndarray
    Ws: list
    loss: np.ndarray


def factor_flow(Ws0, X, Y, t_eval, rtol: float = 1e-10, atol: float = 1e-12) -> FactorFlow:
    """Gradient flow ``dW_j/dt = -G_j`` from ``Ws0`` (chapter 7), solved with ``solve_ivp`` (DOP853) and recorded at
    the increasing times ``t_eval`` (T,) starting at 0."""
    Ws, X, Y = _check_layers(Ws0, X, Y)
    t_eval = _times(t_eval)
    rtol, atol = _tolerances(rtol, atol)
    shapes = [W.shape for W in Ws]

    def rhs(_t, w):
        return -pack(deep_linear_grad(unpack(w, shapes), X, Y)[1])

    sol = solve_ivp(rhs, (0.0, float(t_eval[-1])), pack(Ws), method="DOP853", t_eval=t_eval, rtol=rtol, atol=atol)
    if not sol.success:
        raise ValueError(f"the factor flow failed: {sol.message}")
    Ws_t = [unpack(w, shapes) for w in sol.y.T]
    return FactorFlow(sol.t, Ws_t, np.array([deep_linear_grad(W, X, Y)[0] for W in Ws_t]))


def _times(t_eval) -> np.ndarray:
    t = as_array("t_eval", t_eval, ndim=1)
    if t.size < 2 or t[0] != 0.0 or np.any(np.diff(t) <= 0):
        raise ValueError("t_eval must be increasing, start at 0 and hold at least 2 times")
    return t


def _tolerances(rtol, atol) -> tuple[float, float]:
    """The solver's tolerances, checked: ``rtol`` in [1e-13, 1) (below, DOP853 silently raises it), ``atol`` > 0."""
    return as_float("rtol", rtol, low=1e-13, high=1.0, low_open=False, high_open=True), as_float("atol", atol)


def _psd_power(S: np.ndarray, power: float) -> np.ndarray:
    """``S^power`` for a symmetric positive semi-definite ``S`` (tiny negative eigenvalues from round-off set to 0)."""
    lam, Q = np.linalg.eigh(0.5 * (S + S.T))
    # eigenvalues at round-off level are zeros of the exact matrix: S^p has eigenvalue 0 there (p > 0), and keeping
    # their noise would make the flow's right-hand side jitter like (1e-17)^p
    lam = np.where(lam > 1e-12 * max(float(lam[-1]), 0.0), lam, 0.0)
    with np.errstate(divide="ignore"):
        lp = np.where(lam > 0, lam ** power, 1.0 if power == 0 else 0.0)
    return (Q * lp) @ Q.T


def end_to_end_operator(W, Z, N: int) -> np.ndarray:
    """``A_W(Z) = sum_{j=1}^N (W W^T)^{(N-j)/N} Z (W^T W)^{(j-1)/N}`` (chapter 7, :cite:`arora2018optimization`);
    ``W``, ``Z`` (d_N, d_0)."""
    W = as_array("W", W, ndim=2)
    Z = as_array("Z", Z, shape=W.shape)
    N = as_int("N", N)
    WWt, WtW = W @ W.T, W.T @ W
    return sum(_psd_power(WWt, (N - j) / N) @ Z @ _psd_power(WtW, (j - 1) / N) for j in range(1, N + 1))


class EndToEndFlow(NamedTuple):
    """The end-to-end flow at the times ``t`` (T,): ``W`` (T, d_N, d_0) and ``loss`` (T,)."""

    t: np.ndarray
    W: np.ndarray
    loss: np.ndarray


def end_to_end_flow(W0, X, Y, N: int, t_eval, rtol: float = 1e-10, atol: float = 1e-12) -> EndToEndFlow:
    """The end-to-end flow ``dW/dt = -A_W((W X - Y) X^T)`` of depth ``N`` from ``W0`` (chapter 7). For a balanced
    initialisation it is the flow of the product ``W_N ... W_1`` of the factor flow."""
    W0 = as_array("W0", W0, ndim=2)
    X = as_array("X", X, shape=(W0.shape[1], None))
    Y = as_array("Y", Y, shape=(W0.shape[0], X.shape[1]))
    N = as_int("N", N)
    t_eval = _times(t_eval)
    rtol, atol = _tolerances(rtol, atol)
    shape = W0.shape

    def rhs(_t, w):
        W = w.reshape(shape)
        return -end_to_end_operator(W, (W @ X - Y) @ X.T, N).ravel()

    sol = solve_ivp(rhs, (0.0, float(t_eval[-1])), W0.ravel(), method="DOP853", t_eval=t_eval, rtol=rtol, atol=atol)
    if not sol.success:
        raise ValueError(f"the end-to-end flow failed: {sol.message}")
    Wt = sol.y.T.reshape((-1,) + shape)
    R = Wt @ X - Y
    return EndToEndFlow(sol.t, Wt, 0.5 * np.sum(R * R, axis=(1, 2)))


def product_path(flow_: FactorFlow) -> np.ndarray:
    """The end-to-end matrices ``W_N ... W_1`` along a :class:`FactorFlow`; returns (T, d_N, d_0)."""
    if not isinstance(flow_, FactorFlow):
        raise ValueError(f"flow_ must be a FactorFlow returned by factor_flow; got {type(flow_).__name__}")
    return np.array([deep_linear_product(Ws) for Ws in flow_.Ws])


# ----------------------------------------------------------------------------------------------------------
# Two-layer ReLU networks are automatically balanced (Du, Hu, Lee 2018)
# ----------------------------------------------------------------------------------------------------------


def neuron_balance(M, N_) -> np.ndarray:
    """Per hidden unit i of ``y = N relu(M x)``: ``|M[i, :]|^2 - |N[:, i]|^2`` (chapter 7, :cite:`du2018balanced`);
    ``M`` (k, m), ``N_`` (n, k) -> (k,). Gradient flow conserves each entry, because ReLU is positively homogeneous."""
    M = as_array("M", M, ndim=2)
    N_ = as_array("N", N_, shape=(None, M.shape[0]))
    return np.sum(M * M, axis=1) - np.sum(N_ * N_, axis=0)


def neuron_balance_rate(M, N_, x, q) -> np.ndarray:
    """``d/dt`` of :func:`neuron_balance` under gradient flow, ``-2 (<M_i, dM_i> - <N_i, dN_i>)`` with the loss
    gradients of :func:`gdlab.nets.mlp_grad`: zero up to round-off away from the kinks (chapter 7)."""
    g = mlp_grad(M, N_, x, q)
    return -2.0 * (np.sum(M * g.dM, axis=1) - np.sum(N_ * g.dN, axis=0))
