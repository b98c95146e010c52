"""deeplinear: Hessian-vector products against finite differences, the sharpness against the full Hessian, the
balanced initialisation, balancedness and its conservation (gradient flow: to the solver tolerance; one gradient
step: the exact eta^2 change), the end-to-end operator and flow, gradient descent with its records and divergence,
decaying steps, the per-neuron balance of a ReLU net, and bad inputs (chapter 7).

Notation: ``EPS`` is machine epsilon (twice the unit round-off), ``D`` the largest width, ``|A|`` the entrywise
absolute value. A chain of products and sums computed in floating point is off by at most ``m EPS`` times the same
chain evaluated on absolute values, where ``m`` bounds the inner dimensions and additions along the chain (Higham's
``gamma_m``, to first order, with a factor 2 to spare since ``gamma_m ~ m EPS / 2``).

* Round-off of the gradient. ``G_j = S_j^T (W X - Y) X^T P_j^T`` is a chain with ``m_G = 2 sum(d) + p + 2``; its
  absolute version ``Gabs`` is :func:`gdlab.nets.deep_linear_grad` at ``(|W_j|, |X|, -|Y|)`` (every product then has
  non-negative terms and ``W X - Y`` becomes ``|W| |X| + |Y|``).
* Hessian-vector products are checked against an 11-point central difference of the gradient along ``V``. On the
  line ``t -> W + t V`` the gradient is a polynomial of degree ``2N - 1 <= 9``, and the 11-point stencil is exact for
  polynomials of degree ``<= 10``: there is no truncation error at all. The instances live on a dyadic grid (entries
  multiples of 1/16 or 1/8, step ``h = 1/32``), so every stencil point ``W + k h V`` is exactly representable and the
  only error is the round-off of the gradients, ``<= (m_G + 8) EPS / h sum_k |c_k| (Gabs(W + k h V) + Gabs(W - k h V))``
  (the 8 covers the rounded coefficients and the final sum). The round-off of the library's product, a chain with
  ``m_H = 3 sum(d) + 2 p + 2 N + 4``, is ``m_H EPS Habs``, where ``Habs`` (the derivative of ``Gabs`` along ``|V|``, a
  polynomial with non-negative coefficients) is bounded by the secant ``(Gabs(|W| + tau |V|) - Gabs(|W|)) / tau``.
* The sharpness by Lanczos: ARPACK stops when the residual is below ``tol |theta|`` (Ritz value ``theta``), so
  ``theta`` is within ``tol |theta|`` of an eigenvalue (factor 2 for the estimated against the true residual); the
  dense reference ``eigvalsh`` is backward stable (``p EPS |H|``), and both see the round-off ``m_H EPS Habs`` of
  the products.
* Balanced initialisation: the Haar factors are orthogonal to ``delta_Q <= 4 D^2 EPS`` (Householder QR; observed
  ``<= 8 EPS`` for ``D <= 5``). Forming ``W_j = alpha U_j E U_{j-1}^T`` costs ``gamma_{D+1} alpha D`` in the spectral
  norm and ``W W^T`` another ``gamma_D alpha^2 D``: ``|Delta_j|_2 <= (5 D^2 + 3 D) EPS alpha^2``.
* Flows are compared with tolerances built from the solver's: DOP853 keeps the local error of every step below about
  ``rtol |w| + atol``, so a conserved quantity drifts by about ``2 rtol |W|_2^2`` per step at most, and errors of a
  few dozen steps do not add up coherently (``10 rtol`` is asked; observed below ``0.2 rtol``). Two flows solved with
  ``rtol = 1e-10`` that should agree are asked to agree to ``1e3 rtol`` relative (observed ``<= 5e-10``); every such
  check is also shown to fail on a case where the property does not hold (unbalanced start, depth 1).
"""

from __future__ import annotations

import re
import warnings
from fractions import Fraction

import numpy as np
import pytest
from gdlab import deeplinear as dl
from gdlab import runs
from gdlab.nets import (
    deep_linear_grad,
    deep_linear_init,
    deep_linear_loss,
    deep_linear_product,
    mlp_data,
    mlp_grad,
    mlp_init,
    pack,
    unpack,
)
from gdlab.numerics import relative_error
from hypothesis import given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None)
FEW = settings(max_examples=15, deadline=None, derandomize=True, database=None)  # examples that integrate ODEs
SEEDS = st.integers(0, 2**32 - 1)
EPS = np.finfo(float).eps
DIMS = st.lists(st.integers(1, 5), min_size=2, max_size=6)  # (d_0, ..., d_N), depth N = 1..5
SMALL_DIMS = st.lists(st.integers(1, 4), min_size=2, max_size=5)  # for the flows: depth 1..4, widths 1..4
DATA = st.integers(1, 5)
H = 1 / 32  # stencil step on the dyadic grid
TAU = 1 / 16  # secant step of the Habs bound
# the 11-point central difference: f'(0) = sum_k C[k-1] (f(k h) - f(-k h)) / h, exact for polynomials of degree <= 10
STENCIL = (Fraction(5, 6), Fraction(-5, 21), Fraction(5, 84), Fraction(-5, 504), Fraction(1, 1260))
C = np.array([float(c) for c in STENCIL])


def _names(name):
    """A message that names ``name`` as the subject ("name must ...")."""
    return rf"(^|\W){re.escape(name)} (must|and)\b"


# ---------------------------------------------------------------------------------------------------------
# Instances and round-off bounds
# ---------------------------------------------------------------------------------------------------------


def _grid_instance(dims, p, seed):
    """Factors (entries in [-1/2, 1/2], multiples of 1/16), data and two directions (multiples of 1/8) on a dyadic
    grid: ``W + k H V`` is exact for |k| <= 5."""
    rng = np.random.default_rng(seed)
    Ws = [rng.integers(-8, 9, size=(dims[j + 1], dims[j])) / 16 for j in range(len(dims) - 1)]
    X = rng.integers(-8, 9, size=(dims[0], p)) / 8
    Y = rng.integers(-8, 9, size=(dims[-1], p)) / 8
    Vs = [rng.integers(-8, 9, size=W.shape) / 8 for W in Ws]
    Us = [rng.integers(-8, 9, size=W.shape) / 8 for W in Ws]
    return Ws, X, Y, Vs, Us


def _gauss_instance(dims, p, seed, scale=1.0):
    """Unbalanced Gaussian factors and Gaussian data."""
    Ws = deep_linear_init(dims, scale, seed)
    rng = np.random.default_rng(seed + 1)
    return Ws, rng.normal(size=(dims[0], p)), rng.normal(size=(dims[-1], p))


def _m_grad(dims, p):
    return 2 * sum(dims) + p + 2


def _m_hvp(dims, p):
    return 3 * sum(dims) + 2 * p + 2 * (len(dims) - 1) + 4


def _gabs(Ws, X, Y):
    """The gradient chain on absolute values: bounds the sum of |terms| behind every entry of G_j."""
    return deep_linear_grad([np.abs(W) for W in Ws], np.abs(X), -np.abs(Y))[1]


def _habs(Ws, X, Y, Vs, m):
    """Upper bound on the sum of |terms| behind every entry of Hess L [V] (module docstring): the secant of Gabs along
    |V| plus the round-off of that secant."""
    lo = _gabs(Ws, X, Y)
    hi = _gabs([np.abs(W) + TAU * np.abs(V) for W, V in zip(Ws, Vs, strict=True)], X, Y)
    return [(b - a) / TAU + 2 * m * EPS * b / TAU for a, b in zip(lo, hi, strict=True)]


def _stencil_derivative(Ws, X, Y, Vs, h=H):
    """11-point central difference of the gradient along V, and its round-off bound (module docstring)."""
    dims = dl.dims_of(Ws)
    m = _m_grad(dims, X.shape[1])
    fd = [np.zeros_like(W) for W in Ws]
    err = [np.zeros_like(W) for W in Ws]
    for k, c in enumerate(C, start=1):
        plus = [W + (k * h) * V for W, V in zip(Ws, Vs, strict=True)]
        minus = [W - (k * h) * V for W, V in zip(Ws, Vs, strict=True)]
        gp, gm = deep_linear_grad(plus, X, Y)[1], deep_linear_grad(minus, X, Y)[1]
        ap, am = _gabs(plus, X, Y), _gabs(minus, X, Y)
        for j in range(len(Ws)):
            fd[j] += c * (gp[j] - gm[j])
            err[j] += abs(c) * (ap[j] + am[j])
    return [f / h for f in fd], [(m + 8) * EPS * e / h for e in err]


def _hessian(Ws, X, Y):
    """The full Hessian, column by column from ``hvp``."""
    shapes = [W.shape for W in Ws]
    p = sum(a * b for a, b in shapes)
    return np.column_stack([pack(dl.hvp(Ws, X, Y, unpack(e, shapes))) for e in np.eye(p)])


def _abs_hessian(Ws, X, Y):
    """Column by column: the round-off scale ``Habs`` of every Hessian column (for the round-off of ``H``)."""
    shapes = [W.shape for W in Ws]
    p = sum(a * b for a, b in shapes)
    m = _m_hvp(dl.dims_of(Ws), X.shape[1])
    return np.column_stack([pack(_habs(Ws, X, Y, unpack(e, shapes), m)) for e in np.eye(p)])


def _loss_roundoff(Ws, X, Y):
    """Round-off bound of L = |W_N..W_1 X - Y|^2 / 2 (two ways of computing it differ by at most twice this):
    the residual is off by m EPS (|W_N|..|W_1| |X| + |Y|), the sum of squares by a further (d_N p + 2) EPS."""
    dims = dl.dims_of(Ws)
    R_abs = _abs_product(Ws) @ np.abs(X) + np.abs(Y)
    R = deep_linear_product(Ws) @ X - Y
    m = sum(dims) + 2
    return 2 * (m * EPS * float(np.sum(np.abs(R) * R_abs)) + (R.size + 2) * EPS * 0.5 * float(np.sum(R_abs**2)))


def _worst_ratio(err, tol):
    """max err / tol, with 0 / 0 = 0 (entries that are exactly zero on both sides)."""
    err, tol = np.broadcast_arrays(np.asarray(err, dtype=float), np.asarray(tol, dtype=float))
    if np.any((err > 0) & (tol == 0)):
        return np.inf
    return float(np.max(np.divide(err, tol, out=np.zeros_like(err), where=tol > 0), initial=0.0))


def _sharpness_tolerance(lam, Habs, m_h, p, tol):
    return 2 * tol * max(abs(lam), EPS ** (2 / 3)) + (m_h + 2 * p) * EPS * np.linalg.norm(Habs)


# ---------------------------------------------------------------------------------------------------------
# Hessian-vector products and sharpness
# ---------------------------------------------------------------------------------------------------------


def test_stencil_is_exact_for_polynomials_of_degree_10():
    """The coefficients give f'(0) exactly (rational arithmetic) for every monomial t^n, n <= 10, and not for t^11."""
    for n in range(12):
        d = sum(c * (Fraction(k) ** n - Fraction(-k) ** n) for k, c in enumerate(STENCIL, start=1))
        assert (d == (1 if n == 1 else 0)) == (n <= 10)
    assert np.all(C == [float(c) for c in STENCIL])


def _check_hvp(Ws, X, Y, Vs, grad_report, label="hvp"):
    """Compare hvp with the exact stencil (module docstring); returns the worst |err| / tolerance."""
    dims = dl.dims_of(Ws)
    HV = dl.hvp(Ws, X, Y, Vs)
    fd, fd_err = _stencil_derivative(Ws, X, Y, Vs)
    Habs = _habs(Ws, X, Y, Vs, _m_grad(dims, X.shape[1]))
    m_h = _m_hvp(dims, X.shape[1])
    err = np.abs(pack(HV) - pack(fd))
    tol = pack(fd_err) + m_h * EPS * pack(Habs)
    ratio = _worst_ratio(err, tol)
    grad_report(f"{label} vs exact 11-point stencil (|err| / bound)", ratio)
    grad_report(f"{label} vs exact 11-point stencil (relative)", relative_error(pack(HV), pack(fd)))
    assert np.all(err <= tol), f"{label}: worst |err| / tolerance = {ratio:.3g}"
    return HV


@SETTINGS
@given(dims=DIMS, p=DATA, seed=SEEDS)
def test_hvp_matches_exact_finite_differences_of_the_gradient(dims, p, seed, grad_report):
    Ws, X, Y, Vs, _ = _grid_instance(dims, p, seed)
    HV = _check_hvp(Ws, X, Y, Vs, grad_report)
    assert [A.shape for A in HV] == [W.shape for W in Ws]
    assert all(np.array_equal(a, b) for a, b in zip(HV, dl.hvp(Ws, X, Y, Vs), strict=True))  # same input, same bits


def test_hvp_check_can_fail():
    """A relative change of 1e-9 in the largest entry of H V is caught by the stencil comparison."""
    Ws, X, Y, Vs, _ = _grid_instance([3, 4, 2, 3], 4, 5)
    dims = dl.dims_of(Ws)
    HV = pack(dl.hvp(Ws, X, Y, Vs))
    fd, fd_err = _stencil_derivative(Ws, X, Y, Vs)
    tol = pack(fd_err) + _m_hvp(dims, 4) * EPS * pack(_habs(Ws, X, Y, Vs, _m_grad(dims, 4)))
    i = int(np.argmax(np.abs(HV)))
    bad = HV.copy()
    bad[i] *= 1 + 1e-9
    assert np.all(np.abs(HV - pack(fd)) <= tol)
    assert np.abs(bad - pack(fd))[i] > tol[i]


def test_hvp_depth_one_is_the_data_covariance():
    """N = 1: Hess L [V] = V X X^T exactly in real arithmetic; the products differ only by rounding."""
    rng = np.random.default_rng(0)
    W, X, Y, V = rng.normal(size=(3, 4)), rng.normal(size=(4, 6)), rng.normal(size=(3, 6)), rng.normal(size=(3, 4))
    HV = dl.hvp([W], X, Y, [V])[0]
    ref = V @ X @ X.T
    assert np.all(np.abs(HV - ref) <= 4 * (4 + 6 + 4) * EPS * (np.abs(V) @ np.abs(X) @ np.abs(X).T))


@SETTINGS
@given(dims=DIMS, p=DATA, seed=SEEDS, ab=st.tuples(st.floats(-2, 2), st.floats(-2, 2)))
def test_hvp_is_symmetric_and_linear(dims, p, seed, ab, grad_report):
    """Generic (Gaussian) factors, data and directions: on the dyadic grid these products would be exact."""
    Ws, X, Y = _gauss_instance(dims, p, seed)
    rng = np.random.default_rng(seed + 7)
    Vs, Us = ([rng.normal(size=W.shape) for W in Ws] for _ in range(2))
    m, m_h = _m_grad(dims, p), _m_hvp(dims, p)
    n_par = sum(W.size for W in Ws)
    HV, HU = pack(dl.hvp(Ws, X, Y, Vs)), pack(dl.hvp(Ws, X, Y, Us))
    v, u = pack(Vs), pack(Us)
    Habs_v, Habs_u = pack(_habs(Ws, X, Y, Vs, m)), pack(_habs(Ws, X, Y, Us, m))
    # <V, H U> = <U, H V>: each side off by the round-off of H U (m_h EPS Habs) plus that of the inner product
    lhs, rhs = float(v @ HU), float(u @ HV)
    tol = (m_h * EPS * (np.abs(v) @ Habs_u + np.abs(u) @ Habs_v)
           + n_par * EPS * (np.abs(v) @ np.abs(HU) + np.abs(u) @ np.abs(HV)))
    grad_report("hvp symmetry |<V,HU> - <U,HV>| / bound", _worst_ratio(abs(lhs - rhs), tol))
    assert abs(lhs - rhs) <= tol
    # H (a V + b U) = a H V + b H U; a V + b U is rounded (EPS |a V + b U|), which H carries at most by Habs
    a, b = ab
    H_lin = pack(dl.hvp(Ws, X, Y, [a * V + b * U for V, U in zip(Vs, Us, strict=True)]))
    Habs_lin = pack(_habs(Ws, X, Y, [abs(a) * np.abs(V) + abs(b) * np.abs(U) for V, U in zip(Vs, Us, strict=True)], m))
    tol = (2 * m_h + 2) * EPS * Habs_lin + 3 * EPS * (abs(a) * np.abs(HV) + abs(b) * np.abs(HU))
    err = np.abs(H_lin - (a * HV + b * HU))
    grad_report("hvp linearity |err| / bound", _worst_ratio(err, tol))
    assert np.all(err <= tol)


def _lanczos_sharpness(Ws, X, Y, **kw):
    """:func:`deeplinear.sharpness` on its Lanczos path (forced by lowering the dense threshold; needs p >= 2)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dl, "DENSE_HESSIAN_MAX", 0)
        return dl.sharpness(Ws, X, Y, **kw)


@SETTINGS
@given(dims=DIMS, p=DATA, seed=SEEDS, tol=st.sampled_from([1e-8, 1e-11]))
def test_hessian_and_sharpness(dims, p, seed, tol, grad_report):
    """``hessian`` is the symmetrised matrix of ``hvp`` columns; ``sharpness`` its largest eigenvalue, on the dense path
    (to round-off) and on the Lanczos path (to the eigsh tolerance)."""
    Ws, X, Y = _gauss_instance(dims, p, seed)
    H = _hessian(Ws, X, Y)
    Habs = _abs_hessian(Ws, X, Y)
    n_par = H.shape[0]
    m_h = _m_hvp(dims, p)
    # the Hessian built from hvp is symmetric up to the round-off of its columns
    assert np.all(np.abs(H - H.T) <= m_h * EPS * (Habs + Habs.T))
    Hs = dl.hessian(Ws, X, Y)
    assert Hs.shape == (n_par, n_par) and np.array_equal(Hs, Hs.T)
    err = np.abs(Hs - 0.5 * (H + H.T))
    grad_report("hessian vs symmetrised hvp columns (|err| / bound)", _worst_ratio(err, m_h * EPS * (Habs + Habs.T)))
    assert np.all(err <= m_h * EPS * (Habs + Habs.T))
    lam = np.linalg.eigvalsh(0.5 * (H + H.T))[-1]
    s = dl.sharpness(Ws, X, Y, tol=tol)
    bound = _sharpness_tolerance(lam, Habs, m_h, n_par, tol if n_par > dl.DENSE_HESSIAN_MAX else 0.0)
    path = "Lanczos" if n_par > dl.DENSE_HESSIAN_MAX else "dense"
    grad_report(f"sharpness ({path}, tol={tol:g}) vs lambda_max (|err| / bound)", abs(s - lam) / bound)
    assert abs(s - lam) <= bound
    assert s == dl.sharpness(Ws, X, Y, tol=tol)  # deterministic (fixed start vector)
    if n_par >= 2:  # the Lanczos path on every instance
        s = _lanczos_sharpness(Ws, X, Y, tol=tol)
        bound = _sharpness_tolerance(lam, Habs, m_h, n_par, tol)
        grad_report(f"sharpness (forced Lanczos, tol={tol:g}) vs lambda_max (|err| / bound)", abs(s - lam) / bound)
        assert abs(s - lam) <= bound
        assert s == _lanczos_sharpness(Ws, X, Y, tol=tol)


def _scalar_chain_hessian(w, X, Y):
    """Hessian by hand for scalar factors w_1..w_N (d_j = 1): with pi = prod w_i,
    L = (pi^2 Sxx - 2 pi Sxy + Syy) / 2 and d_i d_j L = d_i pi d_j pi Sxx + (pi Sxx - Sxy) d_i d_j pi."""
    n = len(w)
    sxx, sxy = float(X @ X.T), float(X @ Y.T)
    pi = float(np.prod(w))

    def prod_except(*idx):
        return float(np.prod([w[k] for k in range(n) if k not in idx]))

    Href = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            second = 0.0 if i == j else prod_except(i, j)
            Href[i, j] = prod_except(i) * prod_except(j) * sxx + (pi * sxx - sxy) * second
    return Href


@pytest.mark.parametrize("shapes", [[(1, 1)], [(1, 2)], [(2, 1)], [(3, 2)], [(1, 1), (1, 1)], [(1, 1)] * 3,
                                    [(1, 1)] * 5])
def test_hessian_by_hand(shapes):
    """Depth 1: Hess = I (x) X X^T in the row-major layout of vec W; scalar factors: the formula by hand."""
    rng = np.random.default_rng(len(shapes) + shapes[0][1])
    Ws = [rng.normal(size=s) for s in shapes]
    X, Y = rng.normal(size=(shapes[0][1], 5)), rng.normal(size=(shapes[-1][0], 5))
    if len(Ws) == 1:
        ref = np.kron(np.eye(shapes[0][0]), X @ X.T)
    else:
        ref = _scalar_chain_hessian([W.item() for W in Ws], X.ravel(), Y.ravel())
    Habs = _abs_hessian(Ws, X, Y)
    tol = 2 * (_m_hvp(dl.dims_of(Ws), 5) + 3 * len(Ws)) * EPS * Habs
    assert np.all(np.abs(dl.hessian(Ws, X, Y) - ref) <= tol)
    lam = np.linalg.eigvalsh(ref)[-1]
    assert abs(dl.sharpness(Ws, X, Y) - lam) <= (ref.shape[0] + 1) * np.linalg.norm(tol) + 4 * EPS * abs(lam)


@pytest.mark.parametrize("force_lanczos", [False, True])
def test_sharpness_is_the_largest_algebraic_eigenvalue(force_lanczos):
    """Scalar factors 1/2, x = 1, y = 10: the residual r = 1/8 - 10 makes the Hessian s^4 1 1^T + r s (1 1^T - I)
    (s = 1/2), eigenvalues 2 r s + 3 s^4 = -9.6875 (along (1, 1, 1)) and -r s = 4.9375 (twice): lambda_max is 4.9375,
    not the eigenvalue of largest magnitude."""
    Ws = [np.array([[0.5]])] * 3
    X, Y = np.array([[1.0]]), np.array([[10.0]])
    ev = np.linalg.eigvalsh(dl.hessian(Ws, X, Y))
    assert np.allclose(ev, [-9.6875, 4.9375, 4.9375], rtol=0, atol=64 * EPS * 10)
    s = _lanczos_sharpness(Ws, X, Y, tol=1e-12) if force_lanczos else dl.sharpness(Ws, X, Y)
    assert abs(s - 4.9375) <= 1e-10


# ---------------------------------------------------------------------------------------------------------
# Balanced initialisation and balancedness
# ---------------------------------------------------------------------------------------------------------


def _abs_product(Ws):
    P = np.abs(Ws[0])
    for W in Ws[1:]:
        P = np.abs(W) @ P
    return P


@SETTINGS
@given(dims=DIMS, alpha=st.floats(0.2, 3.0), seed=SEEDS, data=st.data())
def test_balanced_init(dims, alpha, seed, data, grad_report):
    r = data.draw(st.one_of(st.none(), st.integers(1, min(dims))), label="rank")
    Ws = dl.balanced_init(dims, alpha, seed, rank=r)
    r = min(dims) if r is None else r
    N, D = len(dims) - 1, max(dims)
    assert [W.shape for W in Ws] == [(dims[j + 1], dims[j]) for j in range(N)]
    assert dl.dims_of(Ws) == tuple(dims)
    bal = dl.balancedness(Ws)
    bound = (5 * D**2 + 3 * D) * EPS * alpha**2
    grad_report("balanced_init delta / (EPS alpha^2)", bal.delta / (EPS * alpha**2))
    assert bal.delta <= bound and bal.delta_fro <= np.sqrt(D) * bound
    # every factor: r singular values alpha, the rest 0
    for W in Ws:
        sv = np.linalg.svd(W, compute_uv=False)
        assert np.all(np.abs(sv[:r] - alpha) <= (2 * D + 2) * D * EPS * alpha)
        assert np.all(sv[r:] <= (2 * D + 2) * D * EPS * alpha)
    # the end-to-end matrix: r singular values alpha^N, the rest 0 (rounding of N products, non-orthogonal U's)
    sv = np.linalg.svd(deep_linear_product(Ws), compute_uv=False)
    tol = (N * (D + 1) + 4 * N * D**2 + 10) * EPS * max(np.linalg.norm(_abs_product(Ws), 2), alpha**N)
    grad_report("balanced_init end-to-end singular values |err| / bound",
                float(np.max(np.abs(sv - np.where(np.arange(sv.size) < r, alpha**N, 0.0)))) / tol)
    assert np.all(np.abs(sv[:r] - alpha**N) <= tol)
    assert np.all(sv[r:] <= tol)
    assert int(np.sum(sv > 1e3 * tol)) == r and alpha**N > 1e3 * tol  # the rank is unambiguous
    # deterministic, and a Generator works as a seed
    assert all(np.array_equal(a, b) for a, b in zip(Ws, dl.balanced_init(dims, alpha, seed, rank=r), strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(
        Ws, dl.balanced_init(dims, alpha, np.random.default_rng(seed), rank=r), strict=True))


def test_balanced_init_widths_of_one_and_defaults():
    # all widths 1: W_j = +-alpha
    Ws = dl.balanced_init([1, 1, 1, 1], 0.5, 3)
    assert all(W.shape == (1, 1) and abs(W.item()) == 0.5 for W in Ws)
    assert dl.balancedness(Ws).delta == 0.0
    assert abs(deep_linear_product(Ws).item()) == 0.125
    # a bottleneck of width 1 inside wider layers: rank 1 end to end
    Ws = dl.balanced_init([4, 3, 1, 5], 2.0, 0)
    sv = np.linalg.svd(deep_linear_product(Ws), compute_uv=False)
    assert abs(sv[0] - 8.0) <= 1e-13 * 8 and np.all(sv[1:] <= 1e-13 * 8)
    # the default rank is min(dims)
    Ws = dl.balanced_init([3, 5, 4], 1.0, 1)
    assert np.linalg.matrix_rank(deep_linear_product(Ws)) == 3
    # a single layer is balanced by definition
    assert dl.balancedness(dl.balanced_init([3, 2], 1.0, 0)).delta == 0.0
    # the check can fail: an unbalanced Gaussian initialisation is far from balanced
    assert dl.balancedness(deep_linear_init([3, 4, 2], 1.0, 0)).delta > 0.1


@pytest.mark.parametrize("rank", [0, 4, -1, 2.0, True])
def test_balanced_init_rank_out_of_range_raises(rank):
    with pytest.raises(ValueError, match=_names("rank")):
        dl.balanced_init([3, 5, 4], 1.0, 0, rank=rank)


@SETTINGS
@given(dims=DIMS, seed=SEEDS, scale=st.floats(0.1, 3.0))
def test_balancedness_formula(dims, seed, scale):
    Ws = deep_linear_init(dims, scale, seed)
    bal = dl.balancedness(Ws)
    N = len(Ws)
    assert len(bal.Delta) == N - 1
    spec, fro = [], []
    for j in range(N - 1):
        A, B = Ws[j + 1], Ws[j]  # Delta_j = W_{j+1}^T W_{j+1} - W_j W_j^T, an independent loop over entries
        d = A.shape[1]
        ref = np.array([[sum(A[i, a] * A[i, b] for i in range(A.shape[0])) - sum(B[a, i] * B[b, i]
                                                                               for i in range(B.shape[1]))
                         for b in range(d)] for a in range(d)])
        scale_ab = np.abs(A).T @ np.abs(A) + np.abs(B) @ np.abs(B).T
        assert bal.Delta[j].shape == (d, d)
        assert np.all(np.abs(bal.Delta[j] - ref) <= 2 * (max(dims) + 1) * EPS * scale_ab)
        ev = np.linalg.eigvalsh(0.5 * (ref + ref.T))  # symmetric: the spectral norm is the largest |eigenvalue|
        spec.append(np.max(np.abs(ev)))
        fro.append(np.sqrt(np.sum(ref * ref)))
    s = max(spec, default=0.0)
    f = max(fro, default=0.0)
    tol = 4 * (max(dims) + 2) ** 2 * EPS * max((np.max(np.abs(np.abs(Ws[j + 1]).T @ np.abs(Ws[j + 1])
                                                       + np.abs(Ws[j]) @ np.abs(Ws[j]).T)) * max(dims)
                                                for j in range(N - 1)), default=0.0)
    assert abs(bal.delta - s) <= tol and abs(bal.delta_fro - f) <= tol
    assert bal.delta <= bal.delta_fro <= np.sqrt(max(dims)) * bal.delta + tol
    if N == 1:
        assert bal.Delta == [] and bal.delta == 0.0 and bal.delta_fro == 0.0
    assert isinstance(bal.delta, float) and isinstance(bal.delta_fro, float)


def test_balancedness_by_hand():
    W1 = np.array([[1.0, 2.0], [0.0, 1.0], [3.0, -1.0]])  # (3, 2)
    W2 = np.array([[2.0, 0.0, 1.0]])  # (1, 3)
    bal = dl.balancedness([W1, W2])
    ref = W2.T @ W2 - W1 @ W1.T
    assert np.array_equal(bal.Delta[0], ref)
    assert bal.delta == pytest.approx(np.max(np.abs(np.linalg.eigvalsh(ref))), rel=1e-14)
    assert bal.delta_fro == pytest.approx(np.sqrt(np.sum(ref**2)), rel=1e-14)
    assert dl.balancedness([W1]) == ([], 0.0, 0.0)


# ---------------------------------------------------------------------------------------------------------
# Conservation: gradient flow (invariance, factor flow) and one gradient step
# ---------------------------------------------------------------------------------------------------------


@SETTINGS
@given(dims=st.lists(st.integers(1, 5), min_size=3, max_size=6), p=DATA, seed=SEEDS, scale=st.floats(0.3, 2.0))
def test_gradient_flow_invariance(dims, p, seed, scale, grad_report):
    """W_{j+1}^T G_{j+1} = G_j W_j^T for any factors and data: d/dt Delta_j = 0 under gradient flow."""
    Ws, X, Y = _gauss_instance(dims, p, seed, scale)
    _, G = deep_linear_grad(Ws, X, Y)
    Gabs = _gabs(Ws, X, Y)
    m = _m_grad(dims, p) + max(dims) + 2
    for j in range(len(Ws) - 1):
        lhs, rhs = Ws[j + 1].T @ G[j + 1], G[j] @ Ws[j].T
        tol = m * EPS * (np.abs(Ws[j + 1]).T @ Gabs[j + 1] + Gabs[j] @ np.abs(Ws[j]).T)
        grad_report("invariance W_{j+1}^T G_{j+1} - G_j W_j^T (|err| / bound)", _worst_ratio(np.abs(lhs - rhs), tol))
        assert np.all(np.abs(lhs - rhs) <= tol)


def _drift(flow_, Delta0):
    return max(np.linalg.norm(D - D0, 2) for Ws in flow_.Ws for D, D0 in zip(dl.balancedness(Ws).Delta, Delta0,
                                                                              strict=True))


@FEW
@given(dims=st.lists(st.integers(1, 4), min_size=3, max_size=5), p=st.integers(1, 4), seed=SEEDS)
def test_factor_flow_conserves_balancedness(dims, p, seed, grad_report):
    Ws, X, Y = _gauss_instance(dims, p, seed)
    T = 3.0 / (1.0 + dl.sharpness(Ws, X, Y))  # a few time constants of the stiffest direction
    t = np.linspace(0.0, T, 4)
    Delta0 = dl.balancedness(Ws).Delta
    drifts = {}
    for rtol in (1e-8, 1e-11):
        fl = dl.factor_flow(Ws, X, Y, t, rtol=rtol, atol=1e-2 * rtol)
        assert np.array_equal(fl.t, t) and len(fl.Ws) == t.size
        assert all(np.array_equal(a, b) for a, b in zip(fl.Ws[0], Ws, strict=True))
        scale = max(np.linalg.norm(W, 2) ** 2 for Wt in fl.Ws for W in Wt)
        drifts[rtol] = _drift(fl, Delta0)
        grad_report(f"factor_flow balancedness drift / (rtol |W|^2) (rtol={rtol:g})", drifts[rtol] / (rtol * scale))
        assert drifts[rtol] <= 10 * rtol * scale
        # the loss is the loss of the recorded factors (up to round-off) and decreases along the flow
        ref = [deep_linear_loss(W, X, Y) for W in fl.Ws]
        assert np.all(np.abs(fl.loss - ref) <= [_loss_roundoff(W, X, Y) for W in fl.Ws])
        assert np.all(np.diff(fl.loss) <= 10 * rtol * fl.loss[0])
    # a tighter tolerance shrinks the drift, unless it is at round-off level already
    assert drifts[1e-11] <= max(drifts[1e-8] / 10, 1e3 * EPS * scale)
    # not vacuous: the flow moved the factors, and W_j W_j^T alone is far from conserved
    moved = max(np.linalg.norm(a @ a.T - b @ b.T, 2) for a, b in zip(fl.Ws[-1], Ws, strict=True))
    assert moved > 1e4 * 10 * 1e-8 * scale


@SETTINGS
@given(dims=DIMS, p=DATA, seed=SEEDS, scale=st.floats(0.3, 2.0), eta=st.floats(1e-3, 1.0))
def test_one_step_change_of_balancedness_is_exact(dims, p, seed, scale, eta, grad_report):
    Ws, X, Y = _gauss_instance(dims, p, seed, scale)
    _, G = deep_linear_grad(Ws, X, Y)
    Gabs = _gabs(Ws, X, Y)
    new = [W - eta * g for W, g in zip(Ws, G, strict=True)]
    change = [a - b for a, b in zip(dl.balancedness(new).Delta, dl.balancedness(Ws).Delta, strict=True)]
    pred = dl.delta_step_change(G, eta)
    assert len(pred) == len(Ws) - 1
    m, D = _m_grad(dims, p), max(dims)
    for j in range(len(Ws) - 1):
        A, B, An, Bn = Ws[j + 1], Ws[j], new[j + 1], new[j]
        # first-order terms cancel only up to the round-off of the computed G; the Deltas and the step are rounded
        tol = (2 * eta * (m + D + 2) * EPS * (np.abs(A).T @ Gabs[j + 1] + Gabs[j] @ np.abs(B).T
                                               + (np.abs(A).T @ Gabs[j + 1] + Gabs[j] @ np.abs(B).T).T)
               + 2 * (D + 3) * EPS * (np.abs(An).T @ np.abs(An) + np.abs(Bn) @ np.abs(Bn).T
                                      + np.abs(A).T @ np.abs(A) + np.abs(B) @ np.abs(B).T)
               + eta**2 * (D + 3) * EPS * (np.abs(G[j + 1]).T @ np.abs(G[j + 1]) + np.abs(G[j]) @ np.abs(G[j]).T))
        err = np.abs(change[j] - pred[j])
        grad_report("delta_step_change vs Delta(new) - Delta(old) (|err| / bound)", _worst_ratio(err, tol))
        assert np.all(err <= tol)


def test_one_step_change_check_can_fail():
    """Without the eta^2 term (i.e. claiming GD conserves Delta like the flow) the same comparison fails."""
    Ws, X, Y = _gauss_instance([3, 4, 2], 5, 0)
    _, G = deep_linear_grad(Ws, X, Y)
    eta = 0.05
    new = [W - eta * g for W, g in zip(Ws, G, strict=True)]
    change = dl.balancedness(new).Delta[0] - dl.balancedness(Ws).Delta[0]
    pred = dl.delta_step_change(G, eta)[0]
    assert np.max(np.abs(change - pred)) < 1e-12 * np.max(np.abs(pred))
    assert np.max(np.abs(change)) > 1e6 * np.max(np.abs(change - pred))
    # quadratic in eta, exactly
    assert np.allclose(dl.delta_step_change(G, 2 * eta)[0], 4 * pred, rtol=4 * EPS, atol=0)


# ---------------------------------------------------------------------------------------------------------
# The end-to-end operator and flow
# ---------------------------------------------------------------------------------------------------------


@SETTINGS
@given(d_out=st.integers(1, 5), d_in=st.integers(1, 5), seed=SEEDS, zero=st.booleans())
def test_end_to_end_operator_depth_one_is_the_identity(d_out, d_in, seed, zero):
    rng = np.random.default_rng(seed)
    W = np.zeros((d_out, d_in)) if zero else rng.normal(size=(d_out, d_in))
    Z = rng.normal(size=(d_out, d_in))
    # A_W(Z) = Q Q^T Z R R^T with orthonormal eigenvector matrices Q, R of W W^T, W^T W (to delta_Q <= 4 D^2 EPS)
    D = max(d_out, d_in)
    A = dl.end_to_end_operator(W, Z, 1)
    assert np.linalg.norm(A - Z) <= (8 * D**2 + 4 * D) * EPS * np.linalg.norm(Z)
    if zero:  # every power (W W^T)^0 of the zero matrix is the identity
        assert np.linalg.norm(A - Z) <= 4 * D * EPS * np.linalg.norm(Z)
        assert np.all(dl.end_to_end_operator(W, Z, 2) == 0.0)


@SETTINGS
@given(dims=DIMS, alpha=st.floats(0.5, 1.5), seed=SEEDS, data=st.data())
def test_end_to_end_operator_is_the_chain_rule_for_balanced_factors(dims, alpha, seed, data, grad_report):
    """For balanced factors, d/dt (W_N..W_1) = sum_j S_j dW_j P_j with dW_j = -S_j^T E P_j^T gives
    A_W(E) = sum_j S_j S_j^T E P_j^T P_j (Arora et al.): an independent form of the operator. Linear in Z."""
    r = data.draw(st.integers(1, min(dims)), label="rank")
    Ws = dl.balanced_init(dims, alpha, seed, rank=r)
    N, D = len(Ws), max(dims)
    rng = np.random.default_rng(seed + 1)
    Z1, Z2 = rng.normal(size=(dims[-1], dims[0])), rng.normal(size=(dims[-1], dims[0]))
    W = deep_linear_product(Ws)
    ref = np.zeros_like(Z1)
    for j in range(N):
        S = deep_linear_product(Ws[j + 1:]) if j + 1 < N else np.eye(dims[-1])
        P = deep_linear_product(Ws[:j]) if j > 0 else np.eye(dims[0])
        ref += S @ S.T @ Z1 @ P.T @ P
    A1 = dl.end_to_end_operator(W, Z1, N)
    # both sides have N terms of size alpha^{2(N-1)} |Z|; the powers are matrix functions at one cluster of equal
    # eigenvalues (and a thresholded zero cluster), as well conditioned as the eigenvalues: a few D EPS each
    tol = 8 * N * (N + 3) * D**2 * EPS * alpha ** (2 * (N - 1)) * np.linalg.norm(Z1)
    grad_report("end_to_end_operator vs sum_j S_j S_j^T Z P_j^T P_j (|err| / bound)", np.linalg.norm(A1 - ref) / tol)
    assert np.linalg.norm(A1 - ref) <= tol
    # linear in Z: the powers are the same bits in every call; only the products and sums round differently
    a, b = rng.normal(size=2)
    lin = dl.end_to_end_operator(W, a * Z1 + b * Z2, N) - (a * A1 + b * dl.end_to_end_operator(W, Z2, N))
    scale = N * alpha ** (2 * (N - 1)) * (abs(a) * np.linalg.norm(Z1) + abs(b) * np.linalg.norm(Z2))
    assert np.linalg.norm(lin) <= 4 * (2 * D + N + 4) * D * EPS * scale


def _short_time(Ws, X, Y):
    return 3.0 / (1.0 + dl.sharpness(Ws, X, Y))


@FEW
@given(dims=SMALL_DIMS, p=st.integers(1, 4), alpha=st.floats(0.5, 1.2), seed=SEEDS, data=st.data())
def test_end_to_end_flow_is_the_flow_of_the_product(dims, p, alpha, seed, data, grad_report):
    r = data.draw(st.integers(1, min(dims)), label="rank")
    Ws = dl.balanced_init(dims, alpha, seed, rank=r)
    rng = np.random.default_rng(seed + 2)
    X, Y = rng.normal(size=(dims[0], p)), rng.normal(size=(dims[-1], p))
    t = np.linspace(0.0, _short_time(Ws, X, Y), 4)
    N = len(Ws)
    ff = dl.factor_flow(Ws, X, Y, t)
    ee = dl.end_to_end_flow(deep_linear_product(Ws), X, Y, N, t)
    path = dl.product_path(ff)
    assert path.shape == ee.W.shape == (t.size, dims[-1], dims[0]) and np.array_equal(ee.t, t)
    err = max(np.linalg.norm(a - b) / np.linalg.norm(a) for a, b in zip(path, ee.W, strict=True))
    grad_report("end_to_end_flow vs product_path(factor_flow) (relative, rtol 1e-10)", err)
    assert err <= 1e3 * 1e-10
    # the recorded losses are those of the recorded matrices
    for W, loss in zip(ee.W, ee.loss, strict=True):
        assert abs(loss - 0.5 * np.sum((W @ X - Y) ** 2)) <= _loss_roundoff([W], X, Y)
    assert np.allclose(ee.loss, ff.loss, rtol=1e-7, atol=0)


def test_end_to_end_flow_check_can_fail():
    """From an unbalanced start the product of the factor flow is not the end-to-end flow: far outside 1e3 rtol."""
    Ws = deep_linear_init([3, 4, 2], 1.0, 3)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(3, 4)), rng.normal(size=(2, 4))
    t = np.linspace(0.0, _short_time(Ws, X, Y), 4)
    path = dl.product_path(dl.factor_flow(Ws, X, Y, t))
    ee = dl.end_to_end_flow(deep_linear_product(Ws), X, Y, 2, t)
    assert max(np.linalg.norm(a - b) / np.linalg.norm(a) for a, b in zip(path, ee.W, strict=True)) > 1e-3


@FEW
@given(dims=st.lists(st.integers(2, 4), min_size=3, max_size=5), p=st.integers(1, 4), alpha=st.floats(0.5, 1.2),
       seed=SEEDS, data=st.data())
def test_end_to_end_flow_keeps_the_rank(dims, p, alpha, seed, data, grad_report):
    """Depth N >= 2 from a rank-r balanced start: singular values r+1.. stay zero (d sigma/dt ~ sigma^{2 - 2/N}),
    to the solver's accuracy; the first r stay clearly positive."""
    r = data.draw(st.integers(1, min(dims) - 1), label="rank")
    Ws = dl.balanced_init(dims, alpha, seed, rank=r)
    rng = np.random.default_rng(seed + 3)
    X, Y = rng.normal(size=(dims[0], p)), rng.normal(size=(dims[-1], p))
    t = np.linspace(0.0, _short_time(Ws, X, Y), 5)
    ee = dl.end_to_end_flow(deep_linear_product(Ws), X, Y, len(Ws), t)
    sv = np.array([np.linalg.svd(W, compute_uv=False) for W in ee.W])
    worst = float(np.max(sv[:, r] / sv[:, 0]))
    grad_report("end_to_end_flow sigma_{r+1} / sigma_1 along the flow", worst)
    assert worst <= 1e2 * 1e-10  # a hundred steps of local error rtol (1e-10) at most
    assert np.min(sv[:, r - 1] / sv[:, 0]) >= 1e-4  # rank r, not less
    assert np.linalg.norm(ee.W[-1] - ee.W[0]) > 1e-2 * np.linalg.norm(ee.W[0])  # the flow moved


def test_end_to_end_flow_rank_check_can_fail():
    """Depth 1 is plain least squares: a rank-deficient start does not stay rank deficient."""
    Ws = dl.balanced_init([3, 3], 1.0, 0, rank=1)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    ee = dl.end_to_end_flow(Ws[0], X, Y, 1, np.linspace(0, _short_time(Ws, X, Y), 3))
    sv = np.linalg.svd(ee.W[-1], compute_uv=False)
    assert sv[1] / sv[0] > 1e-2


# ---------------------------------------------------------------------------------------------------------
# Gradient descent
# ---------------------------------------------------------------------------------------------------------


def _manual_gd(Ws, X, Y, etas):
    """The iterates of W_j <- W_j - eta_k G_j, written out."""
    out = [[W.copy() for W in Ws]]
    for eta in etas:
        _, G = deep_linear_grad(out[-1], X, Y)
        out.append([W - eta * g for W, g in zip(out[-1], G, strict=True)])
    return out


@SETTINGS
@given(dims=st.lists(st.integers(1, 4), min_size=2, max_size=5), p=st.integers(1, 4), seed=SEEDS,
       steps=st.integers(0, 12), records=st.integers(2, 15), sharp=st.integers(0, 3), decay=st.booleans(),
       c=st.floats(0.01, 0.5))
def test_gradient_descent_records_the_iterates(dims, p, seed, steps, records, sharp, decay, c):
    Ws, X, Y = _gauss_instance(dims, p, seed)
    s0 = dl.sharpness(Ws, X, Y)
    etas = dl.decaying_steps(c / (1 + s0), 1.0, 0.5, steps) if decay else np.full(steps, c / (1 + s0))
    eta = etas if decay else c / (1 + s0)
    run = dl.gradient_descent(Ws, X, Y, eta, steps, records=records, sharpness_records=sharp)
    its = _manual_gd(Ws, X, Y, etas)
    k = run.k
    assert run.diverged_at == -1
    assert k[0] == 0 and k[-1] == steps and np.all(np.diff(k) > 0)
    assert min(records, steps + 1) <= k.size <= records + sharp
    assert run.loss.shape == run.delta.shape == run.sharpness.shape == k.shape
    for i, kk in enumerate(k):
        assert run.loss[i] == deep_linear_grad(its[kk], X, Y)[0]
        assert run.delta[i] == dl.balancedness(its[kk]).delta
        if np.isfinite(run.sharpness[i]):
            assert run.sharpness[i] == dl.sharpness(its[kk], X, Y)
        else:
            assert np.isnan(run.sharpness[i])
    n_sharp = int(np.sum(np.isfinite(run.sharpness)))
    if sharp == 0:
        assert n_sharp == 0
    else:
        assert 1 <= n_sharp <= min(sharp, steps + 1)
        assert np.isfinite(run.sharpness[0])
        if sharp >= 2:
            assert np.isfinite(run.sharpness[-1])
    assert all(np.array_equal(a, b) for a, b in zip(run.Ws, its[-1], strict=True))
    # deterministic
    again = dl.gradient_descent(Ws, X, Y, eta, steps, records=records, sharpness_records=sharp)
    for a, b in zip(run[:4], again[:4], strict=True):
        np.testing.assert_array_equal(a, b)
    # the input factors are not modified
    assert all(np.array_equal(a, b) for a, b in zip(Ws, _gauss_instance(dims, p, seed)[0], strict=True))


@SETTINGS
@given(dims=st.lists(st.integers(1, 4), min_size=2, max_size=5), p=st.integers(1, 4), seed=SEEDS)
def test_gradient_descent_with_tiny_steps_decreases_the_loss(dims, p, seed):
    """eta = 0.01 / lambda_max: L(W - eta G) <= L - eta |G|^2 (1 - eta lambda / 2) while the sharpness along the path
    stays below 2 / eta; allowed to go up only by the round-off of L (m EPS times the loss of absolute values)."""
    Ws, X, Y = _gauss_instance(dims, p, seed)
    eta = 0.01 / (1.0 + dl.sharpness(Ws, X, Y))
    run = dl.gradient_descent(Ws, X, Y, eta, 30, records=31)
    assert np.array_equal(run.k, np.arange(31))
    assert np.all(np.diff(run.loss) <= [_loss_roundoff(W, X, Y) for W in _manual_gd(Ws, X, Y, np.full(30, eta))[1:]])
    assert run.loss[-1] < run.loss[0]


def test_gradient_descent_constant_array_equals_constant_step():
    Ws, X, Y = _gauss_instance([3, 4, 2, 2], 5, 1)
    a = dl.gradient_descent(Ws, X, Y, 0.01, 20, records=7, sharpness_records=2)
    b = dl.gradient_descent(Ws, X, Y, np.full(20, 0.01), 20, records=7, sharpness_records=2)
    c = dl.gradient_descent(Ws, X, Y, [0.01] * 20, 20, records=7, sharpness_records=2)
    for run in (b, c):
        for x, y in zip(a[:5], run[:5], strict=True):
            np.testing.assert_array_equal(x, y)
        assert all(np.array_equal(x, y) for x, y in zip(a.Ws, run.Ws, strict=True))
    # a different step somewhere changes the result (the array is used step by step)
    e = np.full(20, 0.01)
    e[10] = 0.02
    assert not np.array_equal(a.loss, dl.gradient_descent(Ws, X, Y, e, 20, records=7).loss)


def test_gradient_descent_without_delta_tracking():
    Ws, X, Y = _gauss_instance([3, 4, 2, 2], 5, 1)
    a = dl.gradient_descent(Ws, X, Y, 0.01, 20, records=7, sharpness_records=2)
    b = dl.gradient_descent(Ws, X, Y, 0.01, 20, records=7, sharpness_records=2, track_delta=False)
    assert np.all(np.isnan(b.delta)) and np.all(np.isfinite(a.delta))
    for x, y in zip(a[:2] + a[3:5], b[:2] + b[3:5], strict=True):
        np.testing.assert_array_equal(x, y)


def test_gradient_descent_zero_steps():
    Ws, X, Y = _gauss_instance([2, 3, 1], 3, 0)
    run = dl.gradient_descent(Ws, X, Y, 0.1, 0, sharpness_records=1)
    assert np.array_equal(run.k, [0]) and run.loss[0] == deep_linear_loss(Ws, X, Y) and run.diverged_at == -1
    assert run.sharpness[0] == dl.sharpness(Ws, X, Y)


@SETTINGS
@given(dims=st.lists(st.integers(1, 4), min_size=2, max_size=6), p=st.integers(1, 4), seed=SEEDS,
       log_factor=st.floats(2.0, 250.0), sharp=st.integers(0, 3))
def test_gradient_descent_divergence_stops_cleanly(dims, p, seed, log_factor, sharp):
    Ws, X, Y = _gauss_instance(dims, p, seed)
    # far beyond the stability limit 2 / lambda_max; up to steps that overflow the next products at once
    eta = 10**log_factor / dl.sharpness(Ws, X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = dl.gradient_descent(Ws, X, Y, eta, 200, records=10, sharpness_records=sharp)
    d = run.diverged_at
    assert d >= 1 and run.diverged and run.k[-1] < d  # the records end before the step at which it diverged
    assert np.all(np.isfinite(run.loss)) and np.all(np.isfinite(run.delta))
    limit = runs.divergence_threshold(run.loss[0])
    assert np.all(run.loss <= limit)
    # the first bad step of the same iteration written out
    with np.errstate(over="ignore", invalid="ignore"):
        its = _manual_gd(Ws, X, Y, np.full(d, eta))
        assert all(deep_linear_grad(w, X, Y)[0] <= limit for w in its[:-1])
        bad = deep_linear_loss(its[-1], X, Y) if all(np.all(np.isfinite(W)) for W in its[-1]) else np.inf
    assert not np.isfinite(bad) or bad > limit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = dl.gradient_descent(Ws, X, Y, eta, 200, records=10, sharpness_records=sharp)
    for a, b in zip(run[:5], again[:5], strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------------------
# Steps to a loss fraction, step-size scans, whitened data and the deficiency margin
# ---------------------------------------------------------------------------------------------------------


@SETTINGS
@given(dims=st.lists(st.integers(1, 4), min_size=2, max_size=5), p=st.integers(1, 4), seed=SEEDS,
       c=st.floats(0.05, 0.9), fraction=st.floats(0.05, 0.95))
def test_steps_to_fraction_is_the_first_step_below_the_fraction(dims, p, seed, c, fraction):
    Ws, X, Y = _gauss_instance(dims, p, seed)
    eta = c / dl.sharpness(Ws, X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a diverging run must end quietly
        k = dl.steps_to_fraction(Ws, X, Y, eta, fraction, max_steps=150)
    # the iteration written out; a run that sharpens past 2 / eta and overflows never reaches the fraction
    w, expected, L0 = Ws, -1, None
    for i in range(151):
        if not all(np.all(np.isfinite(W)) for W in w):
            break
        with np.errstate(over="ignore", invalid="ignore"):
            L, G = deep_linear_grad(w, X, Y)
            L0 = L if L0 is None else L0
            if L <= fraction * L0:
                expected = i
                break
            if not np.isfinite(L) or L > runs.divergence_threshold(L0):  # diverged (gdlab.runs): never gets there
                break
            w = [W - eta * g for W, g in zip(w, G, strict=True)]
    assert k == expected
    assert k != 0  # L(0) > 0 here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert dl.steps_to_fraction(Ws, X, Y, eta, fraction, max_steps=150) == k


def test_steps_to_fraction_edge_cases():
    Ws, X, Y = _gauss_instance([3, 4, 2], 5, 0)
    eta = 0.5 / dl.sharpness(Ws, X, Y)
    k = dl.steps_to_fraction(Ws, X, Y, eta, 0.7)
    assert k > 1
    assert dl.steps_to_fraction(Ws, X, Y, eta, 0.7, max_steps=k) == k
    assert dl.steps_to_fraction(Ws, X, Y, eta, 0.7, max_steps=k - 1) == -1
    assert dl.steps_to_fraction(Ws, X, Y, eta, 0.5, max_steps=300) == -1  # this run plateaus at 0.63 L(0)
    # a zero loss at the start: step 0 already
    assert dl.steps_to_fraction([np.eye(2)], np.eye(2), np.eye(2), 0.1) == 0
    # the saddle at 0 of a depth-2 net: the gradient vanishes, the loss never moves
    assert dl.steps_to_fraction([np.zeros((2, 3)), np.zeros((2, 2))], X, np.ones((2, 5)), 0.1, max_steps=20) == -1


def test_step_scan_against_gradient_descent():
    X, Y, _ = dl.whitened_data(3, 6, [2.0, 1.5, 1.0], 0)
    Ws = dl.balanced_init([3, 3, 3], 1.0, 1)
    etas = [0.01, 0.1, 0.3, 0.5, 0.8, 5.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scan = dl.step_scan(Ws, X, Y, etas, 1500, tol=1e-10)
    assert np.array_equal(scan.eta, etas)
    for i, eta in enumerate(etas):
        run = dl.gradient_descent(Ws, X, Y, eta, 1500, records=2)
        assert scan.diverged_at[i] == run.diverged_at and scan.diverged[i] == run.diverged
        assert np.isnan(scan.final_loss[i]) if run.diverged else scan.final_loss[i] == run.loss[-1]
        assert scan.converged[i] == (run.diverged_at < 0 and run.loss[-1] < 1e-10)
        if scan.converged[i]:
            s = dl.sharpness(run.Ws, X, Y)
            assert scan.sharpness_end[i] == s
            # linear stability: GD cannot converge to a minimum sharper than 2 / eta
            assert s <= 2 / eta * (1 + 1e-6)
        else:
            assert np.isnan(scan.sharpness_end[i])
    # this instance shows all three outcomes
    assert scan.converged.any() and scan.diverged.any() and (~scan.converged & ~scan.diverged).any()
    assert scan.eta_max == max(e for e, ok in zip(etas, scan.converged, strict=True) if ok)
    none = dl.step_scan(Ws, X, Y, [5.0, 8.0], 50)
    assert np.isnan(none.eta_max) and not none.converged.any()


@SETTINGS
@given(d=st.integers(1, 5), extra=st.integers(0, 4), seed=SEEDS, noise=st.sampled_from([0.0, 0.3]), data=st.data())
def test_whitened_data(d, extra, seed, noise, data):
    m = d + extra
    s = np.array(data.draw(st.lists(st.floats(0.0, 5.0), min_size=1, max_size=d), label="singular_values"))
    X, Y, Phi = dl.whitened_data(d, m, s, seed, noise=noise)
    assert X.shape == (d, m) and Phi.shape == (s.size, d) and Y.shape == (s.size, m)
    D = max(m, s.size)
    # orthonormal rows (Householder QR: 4 D^2 EPS), the singular values of Phi (two Haar factors and a product)
    assert np.linalg.norm(X @ X.T - np.eye(d), 2) <= 4 * D**2 * EPS
    sv = np.linalg.svd(Phi, compute_uv=False)
    assert np.allclose(sv, np.sort(s)[::-1], rtol=0, atol=(12 * D**2 + 4 * D) * EPS * max(s.max(), 1e-300))
    if noise == 0.0:
        assert np.array_equal(Y, Phi @ X)
        assert np.allclose(Y @ X.T, Phi, rtol=0, atol=(8 * D**2 + 2 * m) * EPS * max(s.max(), 1e-300))
    # L^1(W) = |W - Y X^T|^2 / 2 + const: differences of the two sides agree for two matrices
    rng = np.random.default_rng(seed + 5)
    W1, W2 = rng.normal(size=(2, s.size, d))
    lhs = deep_linear_loss([W1], X, Y) - deep_linear_loss([W2], X, Y)
    B = Y @ X.T
    rhs = 0.5 * (np.sum((W1 - B) ** 2) - np.sum((W2 - B) ** 2))
    scale = sum(np.sum((np.abs(W) @ np.abs(X) + np.abs(Y)) ** 2) for W in (W1, W2))
    assert abs(lhs - rhs) <= (4 * D**2 + 2 * m + 8) * EPS * scale
    # deterministic
    again = dl.whitened_data(d, m, s, seed, noise=noise)
    assert all(np.array_equal(a, b) for a, b in zip((X, Y, Phi), again, strict=True))


def test_whitened_data_noise_is_standard_normal():
    X, Y, Phi = dl.whitened_data(4, 2000, [1.0, 1.0], 3, noise=0.5)
    Z = (Y - Phi @ X) / 0.5
    # 4000 standard normals: mean within 6 sd (6 / sqrt(4000)), variance within 6 sd (6 sqrt(2 / 4000))
    assert abs(Z.mean()) <= 6 / np.sqrt(Z.size) and abs(Z.var() - 1) <= 6 * np.sqrt(2 / Z.size)


@SETTINGS
@given(rows=st.integers(1, 4), cols=st.integers(1, 4), seed=SEEDS, t=st.floats(0.0, 2.0))
def test_deficiency_margin(rows, cols, seed, t):
    rng = np.random.default_rng(seed)
    Phi, V = rng.normal(size=(rows, cols)), rng.normal(size=(rows, cols))
    W = Phi + t * V
    ref = np.linalg.svd(Phi, compute_uv=False).min() - t * np.linalg.norm(V)
    assert abs(dl.deficiency_margin(W, Phi) - ref) <= 16 * (rows + cols) * EPS * (np.linalg.norm(Phi)
                                                                                   + t * np.linalg.norm(V))
    # by hand: diag(3, 1), moved by 0.5 in one entry
    assert dl.deficiency_margin([[3.0, 0.5], [0.0, 1.0]], np.diag([3.0, 1.0])) == pytest.approx(0.5, rel=4 * EPS)


# ---------------------------------------------------------------------------------------------------------
# Decaying steps
# ---------------------------------------------------------------------------------------------------------


@SETTINGS
@given(a=st.floats(1e-3, 10.0), b=st.floats(0.1, 10.0), gamma=st.floats(0.0, 2.0), steps=st.integers(0, 60))
def test_decaying_steps_formula(a, b, gamma, steps):
    eta = dl.decaying_steps(a, b, gamma, steps)
    assert eta.shape == (steps,)
    ref = np.array([a / (b + k) ** gamma for k in range(steps)])
    # two correctly rounded operations (power within an ulp): a few EPS relative
    assert np.all(np.abs(eta - ref) <= 4 * EPS * ref)
    assert np.all(np.diff(eta) <= 0)
    assert np.all(dl.decaying_steps(a, b, 0.0, steps) == a)
    assert np.all(dl.decaying_steps(a, 0.0, 0.0, steps) == a)


def test_decaying_steps_by_hand():
    assert np.allclose(dl.decaying_steps(1.0, 1.0, 1.0, 4), [1, 1 / 2, 1 / 3, 1 / 4], rtol=2 * EPS, atol=0)
    assert np.allclose(dl.decaying_steps(2.0, 4.0, 0.5, 3), [1.0, 2 / np.sqrt(5), 2 / np.sqrt(6)], rtol=2 * EPS, atol=0)
    with pytest.raises(ValueError, match=_names("b")):
        dl.decaying_steps(1.0, 0.0, 0.5, 3)


# ---------------------------------------------------------------------------------------------------------
# Two-layer ReLU networks: the per-neuron balance
# ---------------------------------------------------------------------------------------------------------


def _mlp(m, k, n, p, seed):
    x, q = mlp_data(m, n, seed, p=p)
    M, N = mlp_init(m, k, n, seed + 1)
    return M, N, x, q


@SETTINGS
@given(m=st.integers(1, 5), k=st.integers(1, 6), n=st.integers(1, 4), p=st.integers(1, 5), seed=SEEDS)
def test_neuron_balance_formula_and_conservation(m, k, n, p, seed, grad_report):
    M, N, x, q = _mlp(m, k, n, p, seed)
    nb = dl.neuron_balance(M, N)
    ref = np.array([sum(M[i, a] ** 2 for a in range(m)) - sum(N[b, i] ** 2 for b in range(n)) for i in range(k)])
    assert nb.shape == (k,)
    assert np.all(np.abs(nb - ref) <= 2 * (m + n) * EPS * (np.sum(M**2, axis=1) + np.sum(N**2, axis=0)))
    # d/dt: <M_i, dM_i> = sum_p relu'(a_ip) a_ip (N^T r)_ip = sum_p relu(a_ip) (N^T r)_ip = <N_i, dN_i>, at kinks too.
    # Each side is a chain of products of length <= m + n + k + p + 4 on the "absolute network".
    rate = dl.neuron_balance_rate(M, N, x, q)
    b_abs = np.abs(M) @ np.abs(x)
    t_abs = np.sum(b_abs * (np.abs(N).T @ (np.abs(N) @ b_abs + np.abs(q))), axis=1)
    tol = 2 * 2 * (m + n + k + p + 4) * EPS * t_abs
    grad_report("neuron_balance_rate / (round-off of its terms)", _worst_ratio(np.abs(rate), tol))
    assert np.all(np.abs(rate) <= tol)
    # the rate is the stated combination of the gradients of nets.mlp_grad
    g = mlp_grad(M, N, x, q)
    assert np.array_equal(rate, -2.0 * (np.sum(M * g.dM, axis=1) - np.sum(N * g.dN, axis=0)))


@SETTINGS
@given(m=st.integers(1, 5), k=st.integers(1, 6), n=st.integers(1, 4), p=st.integers(1, 5), seed=SEEDS)
def test_neuron_balance_changes_by_eta_squared_in_one_step(m, k, n, p, seed):
    """One GD step: change = -eta rate + eta^2 (|dM_i|^2 - |dN_i|^2) = eta^2 (|dM_i|^2 - |dN_i|^2) up to round-off, so
    change / eta^2 stays bounded (and converges) as eta shrinks; the sum |M_i|^2 + |N_i|^2 changes at order eta."""
    M, N, x, q = _mlp(m, k, n, p, seed)
    g = mlp_grad(M, N, x, q)
    c2 = np.sum(g.dM**2, axis=1) - np.sum(g.dN**2, axis=0)
    size = np.sum(M**2, axis=1) + np.sum(N**2, axis=0)
    b_abs = np.abs(M) @ np.abs(x)
    t_abs = np.sum(b_abs * (np.abs(N).T @ (np.abs(N) @ b_abs + np.abs(q))), axis=1)
    for eta in (1e-1, 1e-2, 1e-3):
        M1, N1 = M - eta * g.dM, N - eta * g.dN
        change = dl.neuron_balance(M1, N1) - dl.neuron_balance(M, N)
        size1 = np.sum(M1**2, axis=1) + np.sum(N1**2, axis=0)
        # rounding: the balance (2 (m + n) EPS its size, twice), the step (EPS |w|), the vanishing first-order term
        tol = (4 * (m + n + 2) * EPS * (size + size1) + 4 * eta * (m + n + k + p + 4) * EPS * t_abs
               + 4 * EPS * eta**2 * (np.sum(g.dM**2, axis=1) + np.sum(g.dN**2, axis=0)))
        assert np.all(np.abs(change - eta**2 * c2) <= tol)
        assert np.all(np.abs(change) / eta**2 <= np.abs(c2) + tol / eta**2)


def test_neuron_balance_checks_can_fail_and_kinks():
    """The sum |M_i|^2 + |N_i|^2 is not conserved: its one-step change over eta^2 grows like 1/eta (the bound above
    would fail). At a kink (a pre-activation exactly 0) the rate still vanishes: relu'(0) a = 0 = relu(0)."""
    M, N, x, q = _mlp(3, 4, 2, 3, 1)
    g = mlp_grad(M, N, x, q)
    first = np.sum(M * g.dM, axis=1) + np.sum(N * g.dN, axis=0)
    i = int(np.argmax(np.abs(first)))
    assert abs(first[i]) > 1e-2
    ratios = []
    for eta in (1e-1, 1e-2, 1e-3):
        total = lambda A, B: np.sum(A**2, axis=1) + np.sum(B**2, axis=0)  # noqa: E731
        ratios.append(abs(total(M - eta * g.dM, N - eta * g.dN)[i] - total(M, N)[i]) / eta**2)
    assert ratios[2] > 50 * ratios[0]
    # a kink: unit 0 has a = M[0] . x = 0 exactly for the single data point
    M = np.array([[1.0, -1.0], [0.5, 2.0]])
    N = np.array([[1.5, -0.5]])
    x, q = np.array([1.0, 1.0]), np.array([0.3])
    assert (M @ x)[0] == 0.0
    rate = dl.neuron_balance_rate(M, N, x, q)
    assert rate[0] == 0.0  # no gradient reaches a unit at its kink (relu'(0) = 0, relu(0) = 0)
    assert abs(rate[1]) <= 64 * EPS


# ---------------------------------------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------------------------------------

W2 = [np.ones((3, 2)), np.ones((1, 3))]
X2, Y2 = np.ones((2, 4)), np.ones((1, 4))
T2 = [0.0, 1.0]
BAD_CALLS = [
    (lambda: dl.balancedness([]), "Ws"),
    (lambda: dl.balancedness(np.ones((2, 2, 2))), "Ws"),
    (lambda: dl.balancedness([np.ones((3, 2)), np.ones((2, 2))]), "Ws[1]"),
    (lambda: dl.balancedness([np.ones(3)]), "Ws[0]"),
    (lambda: dl.balancedness([np.ones((3, 2)), np.full((1, 3), np.nan)]), "Ws[1]"),
    (lambda: dl.dims_of([]), "Ws"),
    (lambda: dl.hvp(W2, np.ones((3, 4)), Y2, W2), "X"),
    (lambda: dl.hvp(W2, X2, np.ones((2, 4)), W2), "Y"),
    (lambda: dl.hvp(W2, X2, np.ones((1, 5)), W2), "Y"),
    (lambda: dl.hvp(W2, X2, Y2, [np.ones((3, 2)), np.ones((3, 1))]), "Vs[1]"),
    (lambda: dl.hvp(W2, X2, Y2, [np.ones((3, 2)), np.full((1, 3), np.inf)]), "Vs[1]"),
    (lambda: dl.hvp([np.ones((3, 2)), np.ones((1, 2))], X2, Y2, W2), "Ws[1]"),
    (lambda: dl.sharpness(W2, X2, np.ones((1, 3))), "Y"),
    (lambda: dl.sharpness([], X2, Y2), "Ws"),
    (lambda: dl.delta_step_change(W2, 0.0), "eta"),
    (lambda: dl.delta_step_change(W2, -0.1), "eta"),
    (lambda: dl.delta_step_change(W2, np.nan), "eta"),
    (lambda: dl.balanced_init([3], 1.0, 0), "dims"),
    (lambda: dl.balanced_init([], 1.0, 0), "dims"),
    (lambda: dl.balanced_init([3, 0, 2], 1.0, 0), "dims[1]"),
    (lambda: dl.balanced_init([3, 2.0], 1.0, 0), "dims[1]"),
    (lambda: dl.balanced_init([3, 2], 0.0, 0), "alpha"),
    (lambda: dl.balanced_init([3, 2], -1.0, 0), "alpha"),
    (lambda: dl.balanced_init([3, 2], np.inf, 0), "alpha"),
    (lambda: dl.balanced_init([3, 2], 1.0, -1), "seed"),
    (lambda: dl.gradient_descent(W2, X2, Y2, 0.1, -1), "steps"),
    (lambda: dl.gradient_descent(W2, X2, Y2, 0.1, 2.5), "steps"),
    (lambda: dl.gradient_descent(W2, X2, Y2, 0.0, 5), "eta"),
    (lambda: dl.gradient_descent(W2, X2, Y2, -0.1, 5), "eta"),
    (lambda: dl.gradient_descent(W2, X2, Y2, np.nan, 5), "eta"),
    (lambda: dl.gradient_descent(W2, X2, Y2, [0.1, 0.0, 0.1], 3), "eta"),
    (lambda: dl.gradient_descent(W2, X2, Y2, [0.1, -0.1, 0.1], 3), "eta"),
    (lambda: dl.gradient_descent(W2, X2, Y2, [0.1, 0.1], 3), "eta"),
    (lambda: dl.gradient_descent(W2, X2, Y2, [0.1, np.inf, 0.1], 3), "eta"),
    (lambda: dl.gradient_descent(W2, X2, Y2, 0.1, 5, records=1), "records"),
    (lambda: dl.gradient_descent(W2, X2, Y2, 0.1, 5, sharpness_records=-1), "sharpness_records"),
    (lambda: dl.gradient_descent([], X2, Y2, 0.1, 5), "Ws"),
    (lambda: dl.gradient_descent(W2, np.ones((3, 4)), Y2, 0.1, 5), "X"),
    (lambda: dl.gradient_descent(W2, X2, np.ones((2, 4)), 0.1, 5), "Y"),
    (lambda: dl.gradient_descent(W2, np.full((2, 4), np.nan), Y2, 0.1, 5), "X"),
    (lambda: dl.factor_flow(W2, X2, Y2, [1.0, 2.0]), "t_eval"),
    (lambda: dl.factor_flow(W2, X2, Y2, [0.0, 1.0, 1.0]), "t_eval"),
    (lambda: dl.factor_flow(W2, X2, Y2, [0.0, 2.0, 1.0]), "t_eval"),
    (lambda: dl.factor_flow(W2, X2, Y2, [0.0]), "t_eval"),
    (lambda: dl.factor_flow(W2, X2, Y2, [[0.0, 1.0]]), "t_eval"),
    (lambda: dl.factor_flow(W2, X2, Y2, [0.0, np.nan]), "t_eval"),
    (lambda: dl.factor_flow(W2, X2, np.ones((1, 3)), T2), "Y"),
    (lambda: dl.factor_flow([np.ones((3, 2)), np.ones((1, 2))], X2, Y2, T2), "Ws[1]"),
    (lambda: dl.end_to_end_operator(np.ones((2, 3)), np.ones((3, 2)), 2), "Z"),
    (lambda: dl.end_to_end_operator(np.ones(3), np.ones(3), 2), "W"),
    (lambda: dl.end_to_end_operator(np.ones((2, 3)), np.ones((2, 3)), 0), "N"),
    (lambda: dl.end_to_end_operator(np.ones((2, 3)), np.ones((2, 3)), 1.0), "N"),
    (lambda: dl.end_to_end_operator(np.full((2, 3), np.inf), np.ones((2, 3)), 2), "W"),
    (lambda: dl.end_to_end_flow(np.ones((1, 2)), X2, Y2, 0, T2), "N"),
    (lambda: dl.end_to_end_flow(np.ones((1, 3)), X2, Y2, 2, T2), "X"),
    (lambda: dl.end_to_end_flow(np.ones((2, 2)), X2, Y2, 2, T2), "Y"),
    (lambda: dl.end_to_end_flow(np.ones(2), X2, Y2, 2, T2), "W0"),
    (lambda: dl.end_to_end_flow(np.ones((1, 2)), X2, Y2, 2, [0.5, 1.0]), "t_eval"),
    (lambda: dl.end_to_end_flow(np.ones((1, 2)), X2, Y2, 2, [0.0, -1.0]), "t_eval"),
    (lambda: dl.decaying_steps(0.0, 1.0, 0.5, 3), "a"),
    (lambda: dl.decaying_steps(1.0, -1.0, 0.5, 3), "b"),
    (lambda: dl.decaying_steps(1.0, 1.0, -0.5, 3), "gamma"),
    (lambda: dl.decaying_steps(1.0, 1.0, np.nan, 3), "gamma"),
    (lambda: dl.decaying_steps(1.0, 1.0, 0.5, -1), "steps"),
    (lambda: dl.neuron_balance(np.ones((3, 2)), np.ones((1, 2))), "N"),
    (lambda: dl.neuron_balance(np.ones(3), np.ones((1, 3))), "M"),
    (lambda: dl.neuron_balance(np.ones((3, 2)), np.full((1, 3), np.nan)), "N"),
    (lambda: dl.neuron_balance_rate(np.ones((3, 2)), np.ones((1, 3)), np.ones(3), np.ones(1)), "x"),
    (lambda: dl.neuron_balance_rate(np.ones((3, 2)), np.ones((1, 3)), np.ones(2), np.ones(2)), "q"),
    (lambda: dl.hessian(W2, X2, np.ones((2, 4))), "Y"),
    (lambda: dl.hessian([], X2, Y2), "Ws"),
    (lambda: dl.steps_to_fraction(W2, X2, Y2, 0.0), "eta"),
    (lambda: dl.steps_to_fraction(W2, X2, Y2, 0.1, 1.0), "fraction"),
    (lambda: dl.steps_to_fraction(W2, X2, Y2, 0.1, 0.0), "fraction"),
    (lambda: dl.steps_to_fraction(W2, X2, Y2, 0.1, max_steps=0), "max_steps"),
    (lambda: dl.steps_to_fraction(W2, np.ones((3, 4)), Y2, 0.1), "X"),
    (lambda: dl.step_scan(W2, X2, Y2, [[0.1]], 5), "etas"),
    (lambda: dl.step_scan(W2, X2, Y2, [0.1, np.nan], 5), "etas"),
    (lambda: dl.step_scan(W2, X2, Y2, [0.1], 5, tol=0.0), "tol"),
    (lambda: dl.step_scan(W2, X2, Y2, [0.1], -1), "steps"),
    (lambda: dl.step_scan([], X2, Y2, [0.1], 5), "Ws"),
    (lambda: dl.whitened_data(0, 3, [1.0], 0), "d"),
    (lambda: dl.whitened_data(3, 2, [1.0], 0), "m"),
    (lambda: dl.whitened_data(3, 3, [], 0), "singular_values"),
    (lambda: dl.whitened_data(3, 3, [-1.0], 0), "singular_values"),
    (lambda: dl.whitened_data(3, 3, [[1.0]], 0), "singular_values"),
    (lambda: dl.whitened_data(3, 3, [1.0], 0, noise=-1.0), "noise"),
    (lambda: dl.whitened_data(3, 3, [1.0], -1), "seed"),
    (lambda: dl.deficiency_margin(np.ones((2, 2)), np.ones((2, 3))), "Phi"),
    (lambda: dl.deficiency_margin(np.ones(2), np.ones(2)), "W"),
    (lambda: dl.hvp(W2, X2, Y2, [np.ones((3, 2))]), "Vs"),  # a wrong number of directions
    (lambda: dl.balanced_init(3, 1.0, 0), "dims"),  # not a sequence
    (lambda: dl.delta_step_change([np.ones((3, 2)), np.ones((2, 2))], 0.1), "grads[1]"),  # shapes that do not chain
    (lambda: dl.step_scan(W2, X2, Y2, [0.1, -0.1], 5), "etas"),  # a non-positive step
    (lambda: dl.factor_flow(W2, X2, Y2, T2, rtol=-1.0), "rtol"),
    (lambda: dl.factor_flow(W2, X2, Y2, T2, rtol=1e-16), "rtol"),  # below what DOP853 accepts
    (lambda: dl.end_to_end_flow(np.ones((1, 2)), X2, Y2, 2, T2, atol=-1.0), "atol"),
]


@pytest.mark.parametrize("call,name", BAD_CALLS)
def test_bad_inputs_raise_value_error_naming_the_argument(call, name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=_names(name)):
            call()


def test_steps_to_fraction_diverging_run_is_quiet():
    Ws, X, Y = _gauss_instance([3, 4, 2], 5, 0)
    eta = 1e3 / dl.sharpness(Ws, X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dl.steps_to_fraction(Ws, X, Y, eta, 0.5) == -1


# ---------------------------------------------------------------------------------------------------------
# Balanced factorisations and the sufficient conditions of Arora et al. (2019)
# ---------------------------------------------------------------------------------------------------------


@SETTINGS
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.integers(0, 3), SEEDS)
def test_balanced_factors_multiply_to_w_and_are_balanced(dx, dy, depth, extra, seed):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(dy, dx))
    r = min(dx, dy)
    dims = [dx] + [r + int(e) for e in rng.integers(0, extra + 1, size=depth - 1)] + [dy]
    Ws = dl.balanced_factors(W, dims, seed)
    assert dl.dims_of(Ws) == tuple(dims)
    scale = max(1.0, np.linalg.norm(W, 2))
    np.testing.assert_allclose(deep_linear_product(Ws), W, rtol=0, atol=50 * depth * max(dims) * EPS * scale)
    assert dl.balancedness(Ws).delta <= 50 * max(dims) ** 2 * EPS * scale ** (2 / depth)
    # the factors share the singular values s^(1/N) of W
    s = np.linalg.svd(W, compute_uv=False)
    for Wj in Ws:
        np.testing.assert_allclose(np.linalg.svd(Wj, compute_uv=False)[:r], s ** (1 / depth), rtol=1e-10, atol=1e-12)


def test_balanced_factors_bad_inputs():
    W = np.ones((2, 3))
    for call, name in ((lambda: dl.balanced_factors(W, (3, 1, 2), 0), "dims"),  # hidden width below min(d_0, d_N)
                       (lambda: dl.balanced_factors(W, (2, 2, 3), 0), "dims"),  # ends do not match W
                       (lambda: dl.balanced_factors(W, 3, 0), "dims"),
                       (lambda: dl.balanced_factors(W, (3, 0, 2), 0), "dims[1]"),
                       (lambda: dl.balanced_factors(np.ones(3), (3, 2), 0), "W"),
                       (lambda: dl.balanced_factors(W, (3, 2, 2), -1), "seed")):
        with pytest.raises(ValueError, match=_names(name)):
            call()


def test_arora_conditions_formulas():
    Phi = np.diag([2.0, 1.0])
    Ws = dl.balanced_factors(0.9 * Phi, (2, 2, 2, 2), 0)  # N = 3, |W(0) - Phi|_F = 0.1 sqrt(5)
    cond = dl.arora_conditions(Ws, Phi)
    c, phi = 1.0 - 0.1 * np.sqrt(5.0), np.sqrt(5.0)
    assert cond.c == pytest.approx(c, rel=1e-14)
    assert cond.delta_max == pytest.approx(c**2 / (256 * 27 * phi ** (4 / 3)), rel=1e-13)
    assert cond.eta_max == pytest.approx(c ** (10 / 3) / (6144 * 27 * phi ** (14 / 3)), rel=1e-13)
    assert cond.rate == pytest.approx(c ** (4 / 3), rel=1e-13)
    assert cond.widths_ok and cond.delta < 1e-14
    assert cond.hold(cond.eta_max) and not cond.hold(1.01 * cond.eta_max) and not cond.hold(0.0)
    # a start that is not balanced enough, one with a narrow hidden layer, and one with no margin
    assert not dl.arora_conditions([Ws[0] * 1.1, Ws[1], Ws[2] / 1.1], Phi).hold(cond.eta_max)
    narrow = dl.arora_conditions([np.array([[1.0, 0.0]]), np.array([[1.0], [0.0]])], Phi)
    assert not narrow.widths_ok and not narrow.hold(1e-12)
    far = dl.arora_conditions(dl.balanced_init((2, 2, 2), 0.1, 0), Phi)
    assert far.c < 0 and np.isnan(far.eta_max) and far.delta_max == 0.0 and not far.hold(1e-12)


def test_arora_conditions_bad_inputs():
    Ws = [np.eye(2), np.eye(2)]
    for call, name in ((lambda: dl.arora_conditions(Ws, np.ones((2, 3))), "Phi"),
                       (lambda: dl.arora_conditions(Ws, np.zeros((2, 2))), "Phi"),
                       (lambda: dl.arora_conditions([], np.eye(2)), "Ws")):
        with pytest.raises(ValueError, match=_names(name)):
            call()


@FEW
@given(st.integers(1, 4), st.integers(2, 4), st.floats(0.05, 0.6), SEEDS)
def test_arora_rate_holds_under_its_conditions(d, depth, shrink, seed):
    """Theorem 1 of Arora et al. (2019): under its conditions, loss(k) <= loss(0) exp(-eta c^(2(N-1)/N) k)."""
    rng = np.random.default_rng(seed)
    s = np.sort(rng.uniform(0.5, 2.0, size=d))[::-1]
    X, Y, Phi = dl.whitened_data(d, 2 * d, s, seed)
    # a balanced start at distance shrink * sigma_min(Phi) from Phi: margin (1 - shrink) sigma_min(Phi) > 0
    P = rng.normal(size=Phi.shape)
    Ws = dl.balanced_factors(Phi + shrink * s[-1] * P / np.linalg.norm(P), (d,) * (depth + 1), seed)
    cond = dl.arora_conditions(Ws, Phi)
    assert cond.c == pytest.approx((1 - shrink) * s[-1], rel=1e-9)
    assert cond.hold(cond.eta_max)
    run = dl.gradient_descent(Ws, X, Y, cond.eta_max, 300, records=301, track_delta=False)
    bound = run.loss[0] * np.exp(-cond.eta_max * cond.rate * run.k)
    assert np.all(run.loss <= bound * (1 + 1e-9) + 1e-14)


# ---------------------------------------------------------------------------------------------------------
# Chapter 7 power tests: Theorem 2.4 needs sum_k eta_k = infinity
# ---------------------------------------------------------------------------------------------------------


def _chapter7_start():
    X, Y, _ = dl.whitened_data(4, 16, (2.0, 1.5, 1.0, 0.5), seed=7)
    return dl.balanced_init((4, 4, 4, 4), 1.0, seed=1), X, Y


def _reaches_critical_point(run, X, Y, tol=1e-6) -> bool:
    """The chapter's verdict on a run: it ends at a critical point when |grad L^N| < tol."""
    return run.diverged_at < 0 and dl.gradient_norm(run.Ws, X, Y) < tol


def test_gradient_norm_is_the_norm_of_all_gradients():
    Ws, X, Y = _gauss_instance([3, 4, 2], 5, 0)
    _, G = deep_linear_grad(Ws, X, Y)
    assert dl.gradient_norm(Ws, X, Y) == pytest.approx(np.sqrt(sum(np.sum(g * g) for g in G)), rel=1e-14)
    with pytest.raises(ValueError, match="X"):
        dl.gradient_norm(Ws, X[:-1], Y)


def test_summable_step_schedule_claimed_to_converge_fails():
    """Theorem 2.4 without sum eta_k = infinity: eta_k = 0.1 * 2^-k stops short of a critical point, by a wide
    margin (|grad| > 1), while the constant step 0.1 from the same start passes the same check."""
    W0, X, Y = _chapter7_start()
    summable = dl.gradient_descent(W0, X, Y, 0.1 * 0.5 ** np.arange(200), 200, records=2)
    assert not _reaches_critical_point(summable, X, Y)
    assert dl.gradient_norm(summable.Ws, X, Y) > 1.0 and summable.loss[-1] > 1.0
    # stopped: 5x more steps of the same schedule (2^-1000 is still a positive float) change nothing visible
    longer = dl.gradient_descent(W0, X, Y, 0.1 * 0.5 ** np.arange(1000), 1000, records=2)
    assert abs(longer.loss[-1] - summable.loss[-1]) < 1e-12
    # the balance is broken at once: a fixed delta' > 0 is needed even from delta = 0
    assert summable.delta[0] < 1e-12 < 1e-3 < summable.delta[-1]
    constant = dl.gradient_descent(W0, X, Y, 0.1, 300, records=2)
    assert _reaches_critical_point(constant, X, Y)


def _chapter7_mlp_after_run(steps=100, eta=1e-3):
    M, N = mlp_init(3, 8, 2, seed=0)
    x, q = mlp_data(3, 2, seed=1, p=5)
    for _ in range(steps):
        g = mlp_grad(M, N, x, q)
        M, N = M - eta * g.dM, N - eta * g.dN
    return M, N, x, q


def test_relu_balance_claim_that_both_inner_products_vanish_fails():
    """The chapter's statement: the difference <M_i, dM_i> - <N_i, dN_i> vanishes, not each inner product. The wrong
    claim (both are the derivative along the rescaling, hence zero) fails by a wide margin on the chapter's run."""
    M, N, x, q = _chapter7_mlp_after_run(steps=0)  # the start of the chapter's run, where they reach 7.5
    g = mlp_grad(M, N, x, q)
    inner_M, inner_N = np.sum(M * g.dM, axis=1), np.sum(N * g.dN, axis=0)
    scale = np.max(np.abs(inner_M))
    assert scale > 1.0  # the wrong claim "both vanish" fails
    assert np.max(np.abs(inner_M - inner_N)) <= 1e-12 * scale  # the right one holds


def test_relu_one_step_identity_holds_across_kinks_and_its_check_can_fail():
    """One GD step changes Q_i by exactly eta^2 (|dM_i|^2 - |dN_i|^2) even when pre-activations change sign during the
    step (no kink caveat); dropping the eta^2 term (claiming GD conserves Q_i) fails the same check."""
    M, N, x, q = _chapter7_mlp_after_run()
    g = mlp_grad(M, N, x, q)
    size = np.max(np.sum(M**2, axis=1) + np.sum(N**2, axis=0))
    eta = 0.3
    M1, N1 = M - eta * g.dM, N - eta * g.dN
    assert np.sum(np.sign(M1 @ x) != np.sign(M @ x)) >= 1
    change = dl.neuron_balance(M1, N1) - dl.neuron_balance(M, N)
    pred = eta**2 * (np.sum(g.dM**2, axis=1) - np.sum(g.dN**2, axis=0))
    assert np.max(np.abs(change - pred)) <= 1e-12 * size
    assert np.max(np.abs(change - 0.0)) > 1e6 * 1e-12 * size  # the wrong variant (no eta^2 term) fails


def test_rank2_start_check_separates_depths():
    """Theorem 2.6's check near a rank-2 balanced start (chapter 7): with noise 1e-3 on the factors, N = 2 reaches the
    global minimum within 1000 steps while N = 3 stays at the best rank-2 loss for 4000 steps; the wrong claim "N = 3
    reaches the global minimum too" fails (the exact rank-2 start, an invariant null set, is what the chapter's
    by-construction check used)."""
    X, Y, _ = dl.whitened_data(4, 16, (2.0, 1.5, 1.0, 0.5), seed=9, noise=0.1)
    s = np.linalg.svd(Y @ X.T, compute_uv=False)
    floor = 0.5 * np.sum(Y**2) - 0.5 * np.sum(s**2)
    best2 = floor + 0.5 * np.sum(s[2:] ** 2)
    assert best2 - floor > 0.5
    ends = {}
    for N in (2, 3):
        B = dl.balanced_init((4,) * (N + 1), 0.5, seed=5, rank=2)
        rng = np.random.default_rng(10)
        noisy = [W + 1e-3 * rng.normal(size=W.shape) for W in B]
        ends[N] = dl.gradient_descent(noisy, X, Y, 0.05, 4000, records=5, track_delta=False)
    assert ends[2].loss[ends[2].k == 1000][0] < floor + 1e-6
    assert abs(ends[3].loss[-1] - best2) < 1e-6
    assert not ends[3].loss[-1] < floor + 1e-6  # "N = 3 reaches the global minimum" is false here


@pytest.mark.parametrize("depth", [2, 3, 5])
def test_arora_flow_check_holds_and_a_too_fast_rate_fails(depth):
    """Chapter 7's check of Arora et al.: along the end-to-end flow from balanced factors of 0.9 Phi, the loss stays
    below l(0) exp(-c^(2(N-1)/N) t) up to t = 20 and decays at the slowest mode's rate 2 N sigma_min^(2(N-1)/N) late.
    The same check with a claimed rate 1.2 x that slowest rate fails; 2000 steps at the step bound cover t < 1e-5
    (the old check, which could only see the initial slope)."""
    X, Y, Phi = dl.whitened_data(4, 16, (2.0, 1.5, 1.0, 0.5), seed=7)
    W_good = dl.balanced_factors(0.9 * Phi, (4,) * (depth + 1), seed=2)
    cond = dl.arora_conditions(W_good, Phi)
    assert cond.hold(cond.eta_max) and 2000 * cond.eta_max < 1e-5
    t = np.linspace(0, 20, 201)
    flow_run = dl.end_to_end_flow(deep_linear_product(W_good), X, Y, depth, t)
    ell = flow_run.loss
    slowest = 2 * depth * 0.5 ** (2 * (depth - 1) / depth)

    def bound_holds(rate):
        return bool(np.all(ell <= ell[0] * np.exp(-rate * t) * (1 + 1e-6)))

    assert bound_holds(cond.rate)
    assert not bound_holds(1.2 * slowest)
    late = (ell > 1e-14) & (t >= 5)
    slope = -np.polyfit(t[late], np.log(ell[late]), 1)[0]
    assert abs(slope / slowest - 1) < 0.01


def test_factor_flow_rank_check_holds_and_can_fail():
    """Chapter 7's rank check on the factor flow (no thresholds): from a rank-2 balanced start the two smallest singular
    values of W and of every factor stay below 1e-12 up to t = 5; from the same start plus noise 1e-3 (N = 2) they
    grow (to order 1), and the check fails."""
    X, Y, _ = dl.whitened_data(4, 16, (2.0, 1.5, 1.0, 0.5), seed=7)
    t = np.linspace(0, 5, 11)

    def small_svs_stay_zero(Ws0):
        run = dl.factor_flow(Ws0, X, Y, t)
        sv_W = np.array([np.linalg.svd(W, compute_uv=False) for W in dl.product_path(run)])
        sv_f = np.array([[np.linalg.svd(W, compute_uv=False) for W in Ws] for Ws in run.Ws])
        return bool(np.all(sv_W[:, 2:] < 1e-12) and np.all(sv_f[:, :, 2:] < 1e-12)), sv_W

    ok, _ = small_svs_stay_zero(dl.balanced_init((4, 4, 4, 4), 0.8, seed=3, rank=2))
    assert ok
    B2 = dl.balanced_init((4, 4, 4), 0.8, seed=3, rank=2)
    rng = np.random.default_rng(0)
    ok, sv_W = small_svs_stay_zero([W + 1e-3 * rng.normal(size=W.shape) for W in B2])
    assert not ok and sv_W[-1, 2] > 0.1


def test_largest_convergent_step_bracket_and_bad_brackets():
    X, Y, _ = dl.whitened_data(2, 4, (1.0, 0.5), seed=0)
    W0 = dl.balanced_init((2, 2, 2), 1.0, seed=0)
    br = dl.largest_convergent_step(W0, X, Y, 0.1, 3.0, steps=300, rel=1e-2)
    assert br.hi / br.lo <= 1.01 and br.tries >= 3
    run = dl.gradient_descent(W0, X, Y, br.lo, 300, records=2)
    assert run.loss[-1] < 1e-12 or np.min(run.loss) < 1e-12
    for lo, hi, name in ((2.9, 3.0, "lo"), (0.1, 0.2, "hi"), (0.2, 0.1, "hi")):
        with pytest.raises(ValueError, match=name):
            dl.largest_convergent_step(W0, X, Y, lo, hi, steps=300)


def test_step_threshold_is_the_local_limit_and_its_wrong_laws_fail():
    """Chapter 7: the bisected threshold is 0.95-1.0 times 2 / (N sigma_max^(2(N-1)/N)) for N = 2..8 (here 2, 3, 5, 8).
    Wrong laws fail: N x threshold constant (it varies by more than 30%), and exponential decay in N (the ratio of the
    thresholds at N = 8 and 2 is far above 2^-6)."""
    X, Y, Phi = dl.whitened_data(4, 16, (2.0, 1.5, 1.0, 0.5), seed=7)
    reflect = np.diag([-1.0, 1.0, 1.0, 1.0])
    th = {}
    for N in (2, 3, 5, 8):
        W0 = dl.balanced_init((4,) * (N + 1), 1.0, seed=1)
        if np.linalg.det(deep_linear_product(W0)) * np.linalg.det(Phi) < 0:
            W0 = [W0[0] @ reflect] + W0[1:]
        assert dl.balancedness(W0).delta < 1e-12
        limit = 2 / (N * 2.0 ** (2 * (N - 1) / N))
        br = dl.largest_convergent_step(W0, X, Y, 0.8 * limit, 1.05 * limit, steps=1000, rel=5e-3)
        assert 0.95 < br.lo / limit < 1.0
        th[N] = br.lo
    n_times = [N * t for N, t in th.items()]
    assert max(n_times) / min(n_times) > 1.3  # "N eta_max is constant" fails
    assert th[8] / th[2] > 5 * 2.0**-6  # "shrinks exponentially like 2^-N" fails (by a factor of about 9)


def test_descent_record_matches_gradient_descent():
    Ws, X, Y = _gauss_instance([3, 4, 2], 5, 0, scale=0.5)
    rec = dl.descent_record(Ws, X, Y, 0.01, 20)
    run = dl.gradient_descent(Ws, X, Y, 0.01, 20, records=21)
    np.testing.assert_allclose(rec.loss, run.loss, rtol=1e-12, atol=0)
    np.testing.assert_allclose(rec.delta, run.delta, rtol=1e-9, atol=1e-15)
    assert rec.length[0] == 0.0 and np.all(np.diff(rec.length) >= 0)
    assert np.all(rec.delta <= rec.delta_bound * (1 + 1e-9) + 1e-15)
    with pytest.raises(ValueError, match="eta"):
        dl.descent_record(Ws, X, Y, 1e3, 50)


def test_summed_balance_bound_and_path_length_checks_can_fail():
    """Chapter 7, the mechanism of Theorem 2.4 on the chapter's run (N = 3, eta = 0.1, 300 steps): the summed bound
    (eq-delta-sum) holds at every step, and the wrong variants fail: conservation (delta_k <= delta_0) and the bound with
    eta^3 in place of eta^2. The path length settles below the strong-descent / Lojasiewicz bound; a run with summable
    steps has a finite length too but stops at a non-critical point, so finite length alone is not the conclusion."""
    W0, X, Y = _chapter7_start()
    rec = dl.descent_record(W0, X, Y, 0.1, 300)
    assert np.all(rec.delta <= rec.delta_bound * (1 + 1e-9))
    assert rec.delta[-1] > 1e3 * rec.delta[0] + 1e-3  # "GD conserves the balance" fails
    eta3_bound = rec.delta[0] + 0.1 * (rec.delta_bound - rec.delta[0])  # eta^3 instead of eta^2 (eta = 0.1)
    assert np.any(rec.delta > eta3_bound)
    meaningful = rec.loss[:-1] > 1e-12
    c = np.min((rec.loss[:-1] - rec.loss[1:])[meaningful] / (0.1 * rec.grad_norm[:-1][meaningful] ** 2))
    above = rec.loss > 1e-16
    loj = np.min(rec.grad_norm[above] / np.sqrt(rec.loss[above]))
    assert c > 0.5 and loj > 0.5
    assert rec.length[-1] <= np.sqrt(rec.loss[0]) / (0.5 * c * loj)
    assert rec.length[-1] - rec.length[150] < 1e-3 * rec.length[-1]
