"""bounds (chapter 2): the descent lemma constant omega(eta) and the iteration bound T_eps, checked on GD runs."""

from __future__ import annotations

import numpy as np
import pytest
from gdlab import bounds, flow
from hypothesis import given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None)
SEEDS = st.integers(0, 2**32 - 1)


def _random_quadratic(rng, p):
    """f(w) = (w - w*)^T A (w - w*) / 2 + c with A positive semi-definite; returns (loss_grad, L, f*)."""
    Q, _ = np.linalg.qr(rng.normal(size=(p, p)))
    lam = rng.uniform(0.0, 5.0, size=p)
    A = (Q * lam) @ Q.T
    w_star, c = rng.normal(size=p), rng.normal()

    def loss_grad(w):
        d = w - w_star
        g = A @ d
        return 0.5 * float(d @ g) + c, g

    return loss_grad, float(lam.max()), c


@pytest.mark.parametrize("L", [0.3, 1.0, 7.0])
def test_descent_omega_shape(L):
    etas = np.linspace(0.0, 3.0 / L, 601)[1:]
    om = np.array([bounds.descent_omega(e, L) for e in etas])
    inside = etas < 2.0 / L * (1 - 1e-9)
    outside = etas > 2.0 / L * (1 + 1e-9)
    assert np.all(om[inside] > 0) and np.all(om[outside] < 0)
    # maximal at eta = 1/L with value 1/2
    assert bounds.descent_omega(1.0 / L, L) == pytest.approx(0.5, rel=1e-15)
    assert np.max(om) <= 0.5
    assert abs(bounds.descent_omega(2.0 / L, L)) < 1e-15
    assert bounds.descent_omega(0.5 / L, L) == pytest.approx(0.375, rel=1e-14)


@SETTINGS
@given(L=st.floats(1e-3, 1e3), frac=st.floats(1.0, 10.0))
def test_steps_bound_infinite_from_two_over_L(L, frac):
    eta = frac * 2.0 / L if frac > 1.0 else 2.0 / L
    assert bounds.steps_to_stationary_bound(1e-3, L, eta, 1.0) == np.inf


@pytest.mark.parametrize("L", [0.15945945945945947, 0.20900900900900904, 0.3675675675675676, 1.0, 3.0, 10.0])
def test_steps_bound_infinite_at_exactly_two_over_L(L):
    """At eta = 2 / L (as the reader would type it) the bound is inf, even when omega rounds to a tiny positive number
    (it does for the first three L: eta L = 2 - 2^-52)."""
    assert bounds.steps_to_stationary_bound(1e-3, L, 2 / L, 1.0) == np.inf


def test_steps_bound_value():
    # L (f0 - f*) / (eps^2 omega) with omega(1/L) = 1/2
    assert bounds.steps_to_stationary_bound(0.1, 2.0, 0.5, 3.0, f_star=1.0) == pytest.approx(2.0 * 2.0 / (0.01 * 0.5))
    assert bounds.steps_to_stationary_bound(0.1, 2.0, 0.5, 1.0, f_star=1.0) == 0.0


@SETTINGS
@given(p=st.integers(1, 6), seed=SEEDS, frac=st.floats(0.05, 1.95))
def test_descent_lemma_on_random_quadratics(p, seed, frac):
    """f(x - eta g) <= f(x) - (omega(eta) / L) |g|^2 for L-smooth f, at random points and eta = frac / L."""
    rng = np.random.default_rng(seed)
    loss_grad, L, _ = _random_quadratic(rng, p)
    eta = frac / L
    om = bounds.descent_omega(eta, L)
    for _ in range(5):
        x = 3 * rng.normal(size=p)
        f, g = loss_grad(x)
        f_next, _ = loss_grad(x - eta * g)
        assert f_next <= f - om / L * (g @ g) + 1e-12 * (1 + abs(f)), (f_next, f, om, g @ g)


def test_descent_lemma_is_tight_on_the_top_eigenvector():
    """For f = L x^2 / 2 the lemma holds with equality, so the constant cannot be improved."""
    L, eta, x = 3.0, 0.4, 1.7
    f = lambda v: 0.5 * L * v * v  # noqa: E731
    g = L * x
    assert f(x - eta * g) == pytest.approx(f(x) - bounds.descent_omega(eta, L) / L * g * g, rel=1e-14)


@SETTINGS
@given(p=st.integers(1, 5), seed=SEEDS, frac=st.floats(0.1, 1.9), c=st.floats(0.02, 0.9))
def test_steps_bound_holds_for_gd(p, seed, frac, c, grad_report):
    """The first k with |grad f(x_k)| <= eps is at most T_eps (GD on a random quadratic with f* known).

    eps = c |grad f(x_0)| keeps T_eps in a range where the runs are short; runs are capped at CAP steps, and an
    instance with T_eps > CAP only checks that any hit it finds is <= T_eps (most instances have T_eps <= CAP).
    """
    cap = 3000
    rng = np.random.default_rng(seed)
    loss_grad, L, f_star = _random_quadratic(rng, p)
    eta = frac / L
    w0 = rng.normal(size=p)
    f0, g0 = loss_grad(w0)
    eps = c * float(np.linalg.norm(g0))
    T = bounds.steps_to_stationary_bound(eps, L, eta, f0, f_star=min(f_star, f0))
    tr = flow.gradient_descent(loss_grad, w0, eta, int(min(np.ceil(T), cap)) + 1)
    assert not tr.diverged
    hit = np.nonzero(tr.grad_norm <= eps)[0]
    if T <= cap:
        assert hit.size, f"no eps-stationary point within T_eps = {T:.1f} steps"
    if hit.size:
        assert tr.k[hit[0]] <= T, f"first eps-stationary step {tr.k[hit[0]]} > T_eps = {T:.1f}"
        grad_report("bounds: (first eps-stationary step) / T_eps (must be <= 1)", tr.k[hit[0]] / T)
    # f decreases monotonically for eta < 2 / L
    assert np.all(np.diff(tr.loss) <= 1e-12 * (1 + np.abs(tr.loss[:-1])))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: bounds.descent_omega(0.0, 1.0), "eta"),
        (lambda: bounds.descent_omega(-1.0, 1.0), "eta"),
        (lambda: bounds.descent_omega(0.1, 0.0), "L"),
        (lambda: bounds.descent_omega(0.1, np.inf), "L"),
        (lambda: bounds.steps_to_stationary_bound(0.0, 1.0, 0.1, 1.0), "eps"),
        (lambda: bounds.steps_to_stationary_bound(0.1, -1.0, 0.1, 1.0), "L"),
        (lambda: bounds.steps_to_stationary_bound(0.1, 1.0, 0.1, np.nan), "f0"),
        (lambda: bounds.steps_to_stationary_bound(0.1, 1.0, 0.1, 1.0, f_star=2.0), "f_star"),
        (lambda: bounds.steps_to_stationary_bound(0.1, 1.0, True, 1.0), "eta"),
    ],
)
def test_bad_inputs(call, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        call()
