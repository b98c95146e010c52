"""numerics: finite differences, relative errors, Hessian-vector products, sharpness, power-law fits."""

from __future__ import annotations

import numpy as np
import pytest
from gdlab.numerics import (
    curvature_along,
    fd_grad,
    hessian_fd,
    hvp_fd,
    loglog_slope,
    psd_sqrt,
    relative_error,
    sharpness,
)
from hypothesis import given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None)


def _sym(rng, p):
    A = rng.normal(size=(p, p))
    return 0.5 * (A + A.T)


# ---------------------------------------------------------------------------------------------------------
# fd_grad on functions whose gradient we know
# ---------------------------------------------------------------------------------------------------------


@SETTINGS
@given(p=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_fd_grad_polynomial(p, seed, grad_report):
    """f(w) = w^T A w / 2 + b^T w + sum c_i w_i^3 has gradient A w + b + 3 c w^2 (A symmetric)."""
    rng = np.random.default_rng(seed)
    A, b, c, w = _sym(rng, p), rng.normal(size=p), rng.normal(size=p), rng.normal(size=p)

    def f(v):
        return 0.5 * v @ A @ v + b @ v + np.sum(c * v**3)

    exact = A @ w + b + 3 * c * w**2
    err = relative_error(fd_grad(f, w), exact)
    grad_report("numerics.fd_grad (cubic polynomial, h=1e-6)", err)
    assert err < 1e-8, f"fd_grad relative error {err:.2e}"


def test_fd_grad_is_central_difference():
    """On w^3 a central difference is exactly 3 w^2 + h^2 (a forward difference would be off by O(h))."""
    w = np.array([0.5, -1.25, 2.0])
    h = 1e-2
    g = fd_grad(lambda v: float(np.sum(v**3)), w, h=h)
    assert np.allclose(g, 3 * w**2 + h**2, rtol=0, atol=1e-11)
    # exact for quadratics up to rounding
    g = fd_grad(lambda v: float(v @ v), w, h=1e-3)
    assert np.allclose(g, 2 * w, rtol=0, atol=1e-10)


def test_fd_grad_bad_inputs():
    with pytest.raises(ValueError, match="w must"):
        fd_grad(np.sum, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="w must"):
        fd_grad(np.sum, [1.0, np.nan])
    with pytest.raises(ValueError, match="h must"):
        fd_grad(np.sum, np.zeros(2), h=0.0)
    with pytest.raises(ValueError, match="h must"):
        fd_grad(np.sum, np.zeros(2), h=-1e-6)


# ---------------------------------------------------------------------------------------------------------
# relative_error
# ---------------------------------------------------------------------------------------------------------


@SETTINGS
@given(p=st.integers(1, 10), seed=st.integers(0, 2**32 - 1))
def test_relative_error_properties(p, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=p), rng.normal(size=p)
    assert relative_error(a, a) == 0.0
    assert relative_error(a, b) == relative_error(b, a)
    assert relative_error(3.0 * a, 3.0 * b) == pytest.approx(relative_error(a, b), rel=1e-12)
    assert 0.0 <= relative_error(a, b) <= 2.0
    assert relative_error(a, -a) == pytest.approx(2.0)
    assert relative_error(a, 0 * a) == pytest.approx(1.0)


def test_relative_error_values():
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error([1.0, 0.0], [0.0, 1.0]) == pytest.approx(np.sqrt(2.0))
    assert relative_error([1.0, 0.0], [1.0, 1e-3]) == pytest.approx(1e-3 / np.hypot(1.0, 1e-3))
    # matrices are compared as flat vectors
    assert relative_error(np.eye(2), np.eye(2).ravel()) == 0.0
    with pytest.raises(ValueError, match="a and b"):
        relative_error(np.zeros(3), np.zeros(4))


# ---------------------------------------------------------------------------------------------------------
# Hessian-vector products and sharpness
# ---------------------------------------------------------------------------------------------------------


@SETTINGS
@given(p=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_hvp_fd_quadratic_and_quartic(p, seed, grad_report):
    rng = np.random.default_rng(seed)
    A, b, w, v = _sym(rng, p), rng.normal(size=p), rng.normal(size=p), rng.normal(size=p)
    err = relative_error(hvp_fd(lambda u: A @ u + b, w, v), A @ v)
    grad_report("numerics.hvp_fd vs exact Hessian (quadratic)", err)
    assert err < 1e-8, f"hvp_fd relative error {err:.2e}"
    # f = sum w^4 / 4 + w^T A w / 2: Hess = diag(3 w^2) + A, an O(h^2) = 1e-10 truncation error
    err = relative_error(hvp_fd(lambda u: u**3 + A @ u, w, v), 3 * w**2 * v + A @ v)
    grad_report("numerics.hvp_fd vs exact Hessian (quartic)", err)
    assert err < 1e-7, f"hvp_fd relative error {err:.2e}"


def test_hvp_fd_bad_inputs():
    with pytest.raises(ValueError, match="v must"):
        hvp_fd(lambda u: u, np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="w must"):
        hvp_fd(lambda u: u, np.zeros((3, 1)), np.zeros(3))
    with pytest.raises(ValueError, match="h must"):
        hvp_fd(lambda u: u, np.zeros(3), np.zeros(3), h=0)


@pytest.mark.parametrize("p", [1, 2, 3, 20])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sharpness_is_top_eigenvalue(p, seed, grad_report):
    rng = np.random.default_rng(100 + seed)
    A = _sym(rng, p)
    w = rng.normal(size=p)
    top = np.linalg.eigvalsh(A)[-1]
    s = sharpness(lambda u: A @ u, w, seed=seed)
    err = abs(s - top) / max(1.0, abs(top))
    grad_report("numerics.sharpness vs eigvalsh", err)
    assert err < 1e-7, f"sharpness {s!r} vs lambda_max {top!r}"
    # reproducible bit for bit
    assert sharpness(lambda u: A @ u, w, seed=seed) == s


def test_sharpness_nonquadratic():
    """f = sum w^4 / 4: Hess = diag(3 w^2), so the sharpness is 3 max w^2."""
    w = np.array([0.3, -1.5, 0.7, 1.1])
    assert sharpness(lambda u: u**3, w) == pytest.approx(3 * 1.5**2, rel=1e-7)


def test_sharpness_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        sharpness(lambda u: u, np.zeros(5), seed=-1)


# ---------------------------------------------------------------------------------------------------------
# loglog_slope
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("slope", [-2.0, -0.5, 1.0, 2.0])
def test_loglog_slope_exact_power_law(slope):
    x = np.geomspace(1e-3, 10.0, 9)
    fit = loglog_slope(x, 3.5 * x**slope)
    assert fit.slope == pytest.approx(slope, abs=1e-12)
    assert fit.log_c == pytest.approx(np.log(3.5), abs=1e-12)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)


def test_loglog_slope_noisy_fit_has_r2_below_one():
    rng = np.random.default_rng(0)
    x = np.geomspace(1.0, 100.0, 30)
    y = x**-1.0 * np.exp(0.3 * rng.normal(size=30))
    fit = loglog_slope(x, y)
    assert 0.5 < fit.r2 < 1.0
    assert fit.slope == pytest.approx(-1.0, abs=0.2)


def test_loglog_slope_bad_inputs():
    with pytest.raises(ValueError, match="x and y"):
        loglog_slope([1.0, 2.0], [1.0, -1.0])
    with pytest.raises(ValueError, match="x and y"):
        loglog_slope([0.0, 2.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="x and y"):
        loglog_slope([1.0], [1.0])
    with pytest.raises(ValueError, match="y must"):
        loglog_slope([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="x must"):
        loglog_slope([1.0, np.nan], [1.0, 2.0])


# ---------------------------------------------------------------------------------------------------------
# hessian_fd and curvature_along (chapter 2: the constants of the Euler theorems)
# ---------------------------------------------------------------------------------------------------------


def test_hessian_fd_of_a_quadratic_and_a_quartic():
    rng = np.random.default_rng(3)
    A = _sym(rng, 5)
    np.testing.assert_allclose(hessian_fd(lambda v: A @ v, rng.normal(size=5)), A, atol=1e-9)
    w = rng.normal(size=3)  # f = sum w_i^4 / 4: Hessian diag(3 w^2)
    np.testing.assert_allclose(hessian_fd(lambda v: v**3, w), np.diag(3 * w**2), atol=1e-7)
    with pytest.raises(ValueError, match="h"):
        hessian_fd(lambda v: v, w, h=-1.0)


def test_curvature_along_a_path_of_a_known_quadratic():
    A = np.diag([-2.0, 1.0, 5.0])
    W = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    c = curvature_along(lambda w: A, lambda w: A @ w, W)
    assert np.allclose(c.lmin, -2.0) and np.allclose(c.lmax, 5.0) and np.allclose(c.norm, 5.0)
    np.testing.assert_allclose(c.hess_grad, [4.0, np.hypot(1.0, 25.0)])
    with pytest.raises(ValueError, match="callables"):
        curvature_along(A, lambda w: A @ w, W)
    with pytest.raises(ValueError, match="W"):
        curvature_along(lambda w: A, lambda w: A @ w, W[0])


def test_round_off_text_prints_round_off_as_a_bound():
    from gdlab.numerics import ROUND_OFF, round_off_text

    assert round_off_text(3.7e-31) == f"< {ROUND_OFF:.0e} (round-off)"
    assert round_off_text(0.0) == f"< {ROUND_OFF:.0e} (round-off)"
    assert round_off_text(2.5e-3) == "2.5e-03"
    assert round_off_text(3.806e-2, spec=".3e") == "3.806e-02"
    assert round_off_text(float("nan")) == "nan"
    with pytest.raises(ValueError, match="floor"):
        round_off_text(1.0, floor=-1.0)


_EIGH = np.linalg.eigh


def _flipped_eigh(A):
    """``np.linalg.eigh`` with every other eigenvector's sign flipped and the eigenspace of a repeated eigenvalue
    rotated: another valid answer, as another LAPACK build may give it."""
    lam, V = _EIGH(A)
    V = V * np.where(np.arange(V.shape[1]) % 2 == 0, 1.0, -1.0)
    c, s = np.cos(0.7), np.sin(0.7)
    V[:, 1:3] = V[:, 1:3] @ np.array([[c, -s], [s, c]])  # lam[1] == lam[2] (0.5) in the matrix below
    return lam, V


def _psd_with_a_repeated_eigenvalue() -> np.ndarray:
    rng = np.random.default_rng(3)
    Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    return (Q * np.array([0.5, 0.5, 1.0, 2.0, 3.0, 0.0])) @ Q.T


def test_psd_sqrt_is_the_symmetric_root_whatever_eigenvectors_lapack_returns(monkeypatch):
    """``psd_sqrt(A)`` is symmetric, squares to ``A``, and is the same matrix (to round-off) when the eigensolver
    returns other signs and another basis of a repeated eigenvalue's eigenspace (chapter 4's GP draws)."""
    A = _psd_with_a_repeated_eigenvalue()
    S = psd_sqrt(A)
    np.testing.assert_allclose(S, S.T, atol=1e-14)
    np.testing.assert_allclose(S @ S, A, atol=1e-13)
    monkeypatch.setattr(np.linalg, "eigh", _flipped_eigh)
    np.testing.assert_allclose(psd_sqrt(A), S, atol=1e-13)


def test_power_the_factor_v_sqrt_lambda_depends_on_the_eigenvectors(monkeypatch):
    """Power test: the non-symmetric factor ``V sqrt(Lambda)`` (what gp_residual_sup drew with before) also satisfies
    ``F F^T = A`` but changes with the eigensolver's choices, so the invariance check above would fail for it."""
    A = _psd_with_a_repeated_eigenvalue()

    def factor(M):
        lam, V = np.linalg.eigh(M)
        return V * np.sqrt(np.maximum(lam, 0.0))

    F = factor(A)
    np.testing.assert_allclose(F @ F.T, A, atol=1e-13)
    monkeypatch.setattr(np.linalg, "eigh", _flipped_eigh)
    assert np.max(np.abs(factor(A) - F)) > 0.1


def test_psd_sqrt_bad_inputs():
    with pytest.raises(ValueError, match="A must be a symmetric square matrix"):
        psd_sqrt(np.ones((2, 3)))
    with pytest.raises(ValueError, match="A must be a symmetric square matrix"):
        psd_sqrt(np.array([[1.0, 2.0], [0.0, 1.0]]))
