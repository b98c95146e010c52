"""landscapes: the chapter-1 counterexample, the 2-D surfaces and their gradients, health ratios, descent paths,
random slices."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gdlab import flow, landscapes, nets
from gdlab.numerics import fd_grad, relative_error
from hypothesis import given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=50, deadline=None, derandomize=True, database=None)
NAMES = ["convex", "bulge", "trap"]
TRAP_LOCAL_MIN = np.array([(-1.0 - np.sqrt(0.2)) / 2.0, 0.0])  # root of x^2 + x + 0.2 (grad_x = (x - 1)(x^2 + x + 0.2))


def _fd_hessian(land, w, h=1e-5):
    cols = [(land.grad(w + h * e) - land.grad(w - h * e)) / (2 * h) for e in np.eye(2)]
    H = np.stack(cols, axis=-1)
    return 0.5 * (H + np.swapaxes(H, -1, -2))


# ---------------------------------------------------------------------------------------------------------
# The counterexample
# ---------------------------------------------------------------------------------------------------------


def test_segment_loss_matches_closed_form():
    s = np.linspace(0.0, 1.0, 1001)
    net = landscapes.segment_loss(s)
    closed = landscapes.segment_loss_closed_form(s)
    assert np.max(np.abs(net - closed)) <= 1e-14
    assert np.allclose(closed, 2 * s**2 * (1 - s) ** 2, rtol=1e-15, atol=0)
    inner = (s > 0) & (s < 1)
    assert np.all(net[inner] > 0), "positive inside the segment"
    # the article's s^2 (1 - s)^2 / 2 is a factor 4 smaller
    assert np.allclose(net[inner] / (s[inner] ** 2 * (1 - s[inner]) ** 2 / 2), 4.0, rtol=1e-12, atol=0)
    # the shape keeps the shape of s
    assert landscapes.segment_loss(np.zeros((2, 3))).shape == (2, 3)


def test_counterexample_endpoints_are_global_minima_and_loss_is_not_convex():
    c = landscapes.counterexample()
    assert nets.mlp_loss(c.M, c.N, c.x, c.q) == 0.0
    assert nets.mlp_loss(c.M_prime, c.N_prime, c.x, c.q) == 0.0
    assert np.array_equal(landscapes.segment_loss([0.0, 1.0]), [0.0, 0.0])
    # convexity would force f(u(1/2)) <= (f(w) + f(w')) / 2 = 0
    assert landscapes.segment_loss([0.5])[0] == pytest.approx(2 * 0.25**2, rel=1e-15) and 0.125 > 0


def test_segment_loss_piecewise_off_the_segment():
    piecewise = getattr(landscapes, "segment_loss_piecewise", None)
    if piecewise is None:
        pytest.skip("segment_loss_piecewise not in this version of gdlab")
    s = np.linspace(-2.0, 3.0, 501)
    assert np.max(np.abs(piecewise(s) - landscapes.segment_loss(s))) <= 1e-13


# ---------------------------------------------------------------------------------------------------------
# The 2-D landscapes
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_landscape_grad_matches_finite_differences(name, seed, grad_report):
    land = landscapes.get_landscape(name)
    rng = np.random.default_rng(seed)
    x0, x1, y0, y1 = land.box
    w = rng.uniform([x0, y0], [x1, y1])

    def f(v):
        return float(land.f(v))

    g = land.grad(w)
    assert g.shape == (2,)
    err = relative_error(g, fd_grad(f, w, h=1e-6))
    grad_report(f"landscape '{name}' grad vs numerics.fd_grad", err)
    assert err < 1e-6, f"{name}: relative error {err:.2e} at {w}"
    # vectorised over leading axes: a stack of points gives the stack of gradients
    W = rng.uniform([x0, y0], [x1, y1], size=(3, 4, 2))
    G = land.grad(W)
    assert G.shape == (3, 4, 2) and land.f(W).shape == (3, 4)
    assert np.allclose(G[1, 2], land.grad(W[1, 2]), rtol=1e-15, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_minimiser_is_global_minimum_with_zero_loss(name):
    land = landscapes.get_landscape(name)
    assert land.f(land.minimiser) == 0.0
    assert np.array_equal(land.grad(land.minimiser), [0.0, 0.0])
    grid = landscapes.landscape_grid(land, n=101)
    assert grid.f.shape == (101, 101) and np.min(grid.f) >= 0.0
    assert landscapes.get_landscape(name) is landscapes.LANDSCAPES[name]


def test_health_ratio_convex_and_bulge():
    for name, floor in (("convex", 2.0 - 1e-9), ("bulge", 0.1)):
        land = landscapes.get_landscape(name)
        grid = landscapes.landscape_grid(land, n=201)
        nan = np.isnan(grid.ratio)
        # NaN exactly at the minimiser (0, 0), which the odd grid contains
        assert nan.sum() == 1 and grid.xs[np.nonzero(nan)[1][0]] == 0.0 and grid.ys[np.nonzero(nan)[0][0]] == 0.0
        r = grid.ratio[~nan]
        assert np.all(r > 0)
        assert np.min(r) > floor, f"{name}: min health ratio {np.min(r)}"
    # for the quadratic (x^2 + 4 y^2)/2 the ratio is 2 (x^2 + 16 y^2) / (x^2 + 4 y^2), in [2, 8]
    conv = landscapes.landscape_grid(landscapes.get_landscape("convex"), n=201)
    r = conv.ratio[~np.isnan(conv.ratio)]
    assert np.min(r) == pytest.approx(2.0, rel=1e-12) and np.max(r) == pytest.approx(8.0, rel=1e-12)


def test_health_ratio_values_and_bad_inputs():
    land = landscapes.get_landscape("convex")
    assert landscapes.health_ratio(land, [1.0, 0.0]) == pytest.approx(2.0)
    assert landscapes.health_ratio(land, [0.0, 1.0]) == pytest.approx(8.0)
    assert np.isnan(landscapes.health_ratio(land, [0.0, 0.0]))
    with pytest.raises(ValueError, match="w must"):
        landscapes.health_ratio(land, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="w must"):
        landscapes.health_ratio(land, [np.nan, 2.0])


def test_trap_has_a_spurious_local_minimum():
    land = landscapes.get_landscape("trap")
    assert TRAP_LOCAL_MIN[0] == pytest.approx(-0.7236, abs=1e-4)
    assert np.max(np.abs(land.grad(TRAP_LOCAL_MIN))) < 1e-15
    f = float(land.f(TRAP_LOCAL_MIN))
    assert f > 0.1, f"the local minimum is not global: f = {f}"
    assert landscapes.health_ratio(land, TRAP_LOCAL_MIN) < 1e-28
    assert np.all(np.linalg.eigvalsh(_fd_hessian(land, TRAP_LOCAL_MIN)) > 0.5), "a strict local minimum"
    # gradient descent started nearby stays in the trap
    paths = landscapes.descent_paths(land, [[-1.2, 0.5]], 0.1, 500)
    assert np.allclose(paths.w[-1, 0], TRAP_LOCAL_MIN, atol=1e-8)
    # on a grid the ratio gets close to 0 away from the global minimum
    grid = landscapes.landscape_grid(land, n=201)
    assert np.nanmin(grid.ratio) < 1e-3


def test_bulge_is_not_convex_and_convex_is():
    bulge = landscapes.get_landscape("bulge")
    xs = np.linspace(-2, 2, 81)
    W = np.stack(np.meshgrid(xs, xs), axis=-1)
    assert np.min(np.linalg.eigvalsh(_fd_hessian(bulge, W))[..., 0]) < -0.1
    conv = landscapes.get_landscape("convex")
    assert np.allclose(np.linalg.eigvalsh(_fd_hessian(conv, W)), [1.0, 4.0], atol=1e-9)


def test_lipschitz_on_box_convex():
    assert landscapes.lipschitz_on_box(landscapes.get_landscape("convex")) == pytest.approx(4.0, abs=1e-6)
    # the trap's Hessian diag(3 x^2 - 0.8, 1) is largest at x = +-2: 11.2
    assert landscapes.lipschitz_on_box(landscapes.get_landscape("trap")) == pytest.approx(11.2, abs=1e-5)


def test_get_landscape_unknown_name():
    with pytest.raises(ValueError, match="name must be one of"):
        landscapes.get_landscape("saddle")


# ---------------------------------------------------------------------------------------------------------
# Descent paths
# ---------------------------------------------------------------------------------------------------------


def test_descent_paths_match_gradient_descent():
    land = landscapes.get_landscape("bulge")
    starts = np.array([[1.5, 1.8], [-1.0, 0.3], [0.2, -1.9]])
    paths = landscapes.descent_paths(land, starts, 0.1, 60)
    assert paths.w.shape == (61, 3, 2) and paths.loss.shape == (61, 3)
    assert np.array_equal(paths.diverged_at, [-1, -1, -1])
    for i, w0 in enumerate(starts):
        tr = flow.gradient_descent(lambda w: (float(land.f(w)), land.grad(w)), w0, 0.1, 60)
        assert np.allclose(paths.w[:, i], tr.w, rtol=1e-13, atol=1e-15)
        assert np.allclose(paths.loss[:, i], tr.loss, rtol=1e-13, atol=1e-15)


def test_descent_paths_divergence_marked_and_frozen():
    """convex: (x^2 + 4 y^2)/2 with eta = 0.6: x_k = 0.4^k x0 converges, y_k = (-1.4)^k y0 diverges unless y0 = 0."""
    land = landscapes.get_landscape("convex")
    starts = np.array([[1.0, 1.0], [1.0, 0.0], [-2.0, 0.5]])
    eta, max_loss = 0.6, 1e6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = landscapes.descent_paths(land, starts, eta, 100, max_loss=max_loss)
    k = np.arange(101)
    for i, (x0, y0) in enumerate(starts):
        f = 0.5 * ((0.4**k * x0) ** 2 + 4 * ((-1.4) ** k * y0) ** 2)
        over = np.nonzero(f > max_loss)[0]
        expected = int(over[0]) if over.size else -1
        assert paths.diverged_at[i] == expected
        if expected > 0:
            assert np.all(np.isfinite(paths.loss[:expected, i]))
            assert np.all(np.isnan(paths.loss[expected:, i]))
            assert np.all(paths.w[expected:, i] == paths.w[expected - 1, i]), "frozen at the last good point"
            assert np.allclose(paths.loss[:expected, i], f[:expected], rtol=1e-12)
    assert paths.diverged_at[1] == -1 and np.all(np.isfinite(paths.loss[:, 1]))


def test_descent_paths_non_finite_divergence_without_warnings():
    land = landscapes.get_landscape("trap")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = landscapes.descent_paths(land, [[2.0, 0.0], [1.0, 0.0]], 50.0, 40, max_loss=1e300)
    assert paths.diverged_at[0] > 0 and paths.diverged_at[1] == -1
    assert np.all(np.isfinite(paths.w))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda L: landscapes.descent_paths(L, [[1.0, 1.0, 1.0]], 0.1, 10), "starts"),
        (lambda L: landscapes.descent_paths(L, [[np.nan, 1.0]], 0.1, 10), "starts"),
        (lambda L: landscapes.descent_paths(L, [[1.0, 1.0]], 0.0, 10), "eta"),
        (lambda L: landscapes.descent_paths(L, [[1.0, 1.0]], -0.1, 10), "eta"),
        (lambda L: landscapes.descent_paths(L, [[1.0, 1.0]], 0.1, 0), "n_steps"),
        (lambda L: landscapes.descent_paths(L, [[1.0, 1.0]], 0.1, 10, max_loss=-1.0), "max_loss"),
        (lambda L: landscapes.landscape_grid(L, n=1), "n"),
        (lambda L: landscapes.lipschitz_on_box(L, n=True), "n"),
        (lambda L: landscapes.segment_loss([0.5, np.inf]), "s"),
    ],
)
def test_bad_inputs(call, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        call(landscapes.get_landscape("convex"))


# ---------------------------------------------------------------------------------------------------------
# Random slices through an MLP loss
# ---------------------------------------------------------------------------------------------------------


def _slice_problem():
    x, q = nets.mlp_data(3, 2, 0)
    M, N = nets.mlp_init(3, 8, 2, 1)
    return nets.MLPProblem(x, q, 8), nets.mlp_pack(M, N)


def test_random_slices_deterministic_and_consistent():
    prob, w0 = _slice_problem()
    a = landscapes.random_slices(prob, w0, 4, seed=3)
    b = landscapes.random_slices(prob, w0, 4, seed=3)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert a.loss.shape == (4, 201) and a.concavity.shape == (4,)
    # s = 0 is w0 itself
    assert np.all(a.loss[:, 100] == prob.loss(w0))
    other = landscapes.random_slices(prob, w0, 4, seed=4)
    assert not np.array_equal(a.loss, other.loss)
    f = a.loss
    assert np.array_equal(a.concavity, np.max(f[:, 1:-1] - 0.5 * (f[:, :-2] + f[:, 2:]), axis=1))


def test_random_slices_bad_inputs():
    prob, w0 = _slice_problem()
    with pytest.raises(ValueError, match="^w0 "):
        landscapes.random_slices(prob, w0[:-1], 2, 0)
    with pytest.raises(ValueError, match="^n_slices "):
        landscapes.random_slices(prob, w0, 0, 0)
    with pytest.raises(ValueError, match="^seed "):
        landscapes.random_slices(prob, w0, 2, -1)
    with pytest.raises(ValueError, match="^s "):
        landscapes.random_slices(prob, w0, 2, 0, s=[0.0, 1.0])
