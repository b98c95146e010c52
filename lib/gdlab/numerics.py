"""Numerical tools used to check the book's calculus (compute layer).

Central finite differences for gradients, Hessian-vector products and the sharpness ``lambda_max(Hess f)``,
relative errors, and log-log slope fits. Every hand-derived gradient in gdlab is compared with
:func:`fd_grad` in ``tests/``; the chapters use the same functions in their "check it" cells.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.sparse.linalg import LinearOperator, eigsh

from ._checks import as_array, as_float, as_rng


def fd_grad(f: Callable[[np.ndarray], float], w, h: float = 1e-6) -> np.ndarray:
    """Central finite-difference gradient ``(f(w + h e_i) - f(w - h e_i)) / (2h)``; ``w`` (p,) -> (p,).

    Truncation error O(h^2) for smooth ``f``; 2p evaluations of ``f``.
    """
    w = as_array("w", w, ndim=1)
    h = as_float("h", h)
    g = np.empty_like(w)
    for i in range(w.size):
        e = np.zeros_like(w)
        e[i] = h
        g[i] = (f(w + e) - f(w - e)) / (2.0 * h)
    return g


def relative_error(a, b) -> float:
    """``|a - b| / max(|a|, |b|)`` in the Euclidean norm (0 when both are zero)."""
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same size; got {a.size} and {b.size}")
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if scale == 0.0 else float(np.linalg.norm(a - b) / scale)


def hvp_fd(grad: Callable[[np.ndarray], np.ndarray], w, v, h: float = 1e-5) -> np.ndarray:
    """Hessian-vector product ``Hess f(w) v`` by central differences of the gradient; ``w``, ``v`` (p,) -> (p,)."""
    w = as_array("w", w, ndim=1)
    v = as_array("v", v, shape=w.shape)
    h = as_float("h", h)
    return (np.asarray(grad(w + h * v)) - np.asarray(grad(w - h * v))) / (2.0 * h)


def hessian_fd(grad: Callable[[np.ndarray], np.ndarray], w, h: float = 1e-4) -> np.ndarray:
    """Hessian ``Hess f(w)`` (p, p) by central differences of ``grad`` along each coordinate, symmetrised (chapters 1-2).

    ``w`` may also be a batch (..., p) of points when ``grad`` maps (..., p) to (..., p); the result is then
    (..., p, p). Truncation error O(h^2) for smooth ``f`` (``h^2 / 6`` times the third derivative of ``grad``),
    round-off about ``1e-16 |grad| / h``; 2p evaluations of ``grad``. For the spectrum use ``numpy.linalg.eigvalsh``.
    Near a ReLU kink pass the gradient of the polynomial piece instead (:func:`gdlab.nets.mlp_piece_hessian`): a
    stencil that straddles the kink measures the jump of the gradient divided by ``2h``, not a curvature.
    """
    w = as_array("w", w)
    if w.ndim == 0:
        raise ValueError("w must have shape (p,) or (..., p); got a scalar")
    h = as_float("h", h)
    H = np.stack([(np.asarray(grad(w + h * e)) - np.asarray(grad(w - h * e))) / (2.0 * h) for e in np.eye(w.shape[-1])],
                 axis=-1)
    return 0.5 * (H + np.swapaxes(H, -1, -2))


def sharpness(grad: Callable[[np.ndarray], np.ndarray], w, seed=0, h: float = 1e-5, tol: float = 1e-8) -> float:
    """Largest Hessian eigenvalue ``lambda_max(Hess f(w))`` (the local smoothness constant; chapters 2 and 7).

    Lanczos (``scipy.sparse.linalg.eigsh``) on finite-difference Hessian-vector products; the start vector comes
    from ``seed`` so the result is reproducible. For p <= 2 the Hessian is formed column by column instead.
    """
    w = as_array("w", w, ndim=1)
    p = w.size
    if p <= 2:
        return float(np.linalg.eigvalsh(hessian_fd(grad, w, h))[-1])
    op = LinearOperator((p, p), matvec=lambda v: hvp_fd(grad, w, np.ravel(v), h), dtype=float)
    v0 = as_rng(seed).normal(size=p)
    return float(eigsh(op, k=1, which="LA", v0=v0, tol=tol, return_eigenvectors=False)[0])


class Curvature(NamedTuple):
    """Curvature along a path of T points (chapter 2, the constants of the Euler theorems): ``lmin`` (T,) and
    ``lmax`` (T,) the extreme Hessian eigenvalues, ``norm`` (T,) the spectral norm ``max(|lmin|, |lmax|)``, and
    ``hess_grad`` (T,) ``|Hess f(w) grad f(w)|``, which is ``|gamma''|`` on a gradient flow."""

    lmin: np.ndarray
    lmax: np.ndarray
    norm: np.ndarray
    hess_grad: np.ndarray


def curvature_along(hessian: Callable[[np.ndarray], np.ndarray], grad: Callable[[np.ndarray], np.ndarray],
                    W) -> Curvature:
    """:class:`Curvature` at the rows of ``W`` (T, p), from ``hessian`` (p,) -> (p, p) (e.g. :func:`hessian_fd`, or
    :func:`gdlab.nets.mlp_piece_hessian` on a ReLU network) and ``grad`` (p,) -> (p,)."""
    if not callable(hessian) or not callable(grad):
        raise ValueError("hessian and grad must be callables of w (p,)")
    W = as_array("W", W, ndim=2)
    lmin, lmax, hess_grad = [], [], []
    for w in W:
        H = hessian(w)
        ev = np.linalg.eigvalsh(H)
        lmin.append(ev[0])
        lmax.append(ev[-1])
        hess_grad.append(np.linalg.norm(H @ grad(w)))
    lmin, lmax = np.array(lmin), np.array(lmax)
    return Curvature(lmin, lmax, np.maximum(-lmin, lmax), np.array(hess_grad))


class PowerLaw(NamedTuple):
    """A fit ``y ~ C x^slope`` on a log-log scale: ``slope``, ``log_c`` (natural log of C), ``r2`` of the fit."""

    slope: float
    log_c: float
    r2: float


def loglog_slope(x, y) -> PowerLaw:
    """Least-squares fit of ``log y = slope log x + log_c`` (x, y positive 1-D arrays of equal length >= 2)."""
    x = as_array("x", x, ndim=1)
    y = as_array("y", y, shape=x.shape)
    if x.size < 2 or np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("x and y must hold at least 2 positive values each")
    lx, ly = np.log(x), np.log(y)
    slope, log_c = np.polyfit(lx, ly, 1)
    resid = ly - (slope * lx + log_c)
    ss = float(np.sum((ly - ly.mean()) ** 2))
    return PowerLaw(float(slope), float(log_c), 1.0 - float(resid @ resid) / ss if ss > 0 else 1.0)


ROUND_OFF = 1e-20  # losses (relative to O(1) targets) below this are float64 round-off, whose digits depend on the CPU


def round_off_text(value: float, floor: float = ROUND_OFF, spec: str = ".1e") -> str:
    """``value`` formatted with ``spec``, or ``"< floor (round-off)"`` when it is below ``floor`` (all chapters).

    Checked outputs print round-off as a bound, never as a value: its last digits change with the CPU's SIMD path
    and with the numpy version, the conclusion does not."""
    value, floor = float(value), as_float("floor", floor)
    if not np.isfinite(value):
        return str(value)
    return format(value, spec) if abs(value) >= floor else f"< {floor:.0e} (round-off)"


def psd_sqrt(A) -> np.ndarray:
    """The symmetric square root ``V sqrt(Lambda) V^T`` of a symmetric positive semi-definite ``A`` (n, n); negative
    round-off eigenvalues count as 0 (chapter 4's Gaussian-process draws).

    Unlike the factor ``V sqrt(Lambda)``, it does not depend on which signs and which bases of repeated eigenvalues'
    eigenspaces the LAPACK build returns, so samples ``psd_sqrt(A) @ g`` of ``N(0, A)`` are the same numbers, up to
    round-off, with any numpy (the live site's included)."""
    A = as_array("A", A, ndim=2)
    if A.shape[0] != A.shape[1] or not np.allclose(A, A.T, rtol=1e-12, atol=0.0):
        raise ValueError(f"A must be a symmetric square matrix, got shape {A.shape}")
    lam, V = np.linalg.eigh(A)
    return (V * np.sqrt(np.maximum(lam, 0.0))) @ V.T
