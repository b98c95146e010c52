"""Bounds the book states, as functions, so that notebooks and tests compare them with measured numbers.

Chapter 2: the descent lemma and the iteration bound ``T_eps`` for gradient descent on an L-smooth function
(:cite:`nesterov2018lectures`, :cite:`golikov2019slides`). Chapter 3 adds the learning-health bounds.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_float


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
