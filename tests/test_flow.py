"""flow: gradient flow and gradient descent, the gradient-flow identities (Results 1.2-1.5 of Gelada & Buckman),
divergence handling without warnings, determinism and bad inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gdlab import flow, nets, runs
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import cumulative_trapezoid
from scipy.linalg import expm

FLOW_SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None)
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None)
SEEDS = st.integers(0, 2**32 - 1)
RTOL, ATOL = 1e-10, 1e-12  # gradient_flow's defaults

# Energy identity tolerance |en - (l0 - l(t))| <= C_EN * rtol * (1 + l0). DOP853 controls the *local* error of each
# step to about rtol * |z| + atol; the global error of the integrated energy and of w(t) (hence of l(t)) is a sum of
# these local errors over the few hundred steps of a run. Measured on 100 random one-point MLP problems (m <= 4,
# k <= 6, n <= 3, t_max = 2) the worst ratio |residual| / (rtol (1 + l0)) was 5.5; C_EN = 50 leaves a factor ~10 of
# headroom for instances hypothesis may find, while still failing if energy or loss were wrong at the 1e-8 level.
C_EN = 50.0


def _quadratic(A, w_star=None):
    w_star = np.zeros(len(A)) if w_star is None else w_star

    def loss_grad(w):
        d = w - w_star
        g = A @ d
        return 0.5 * float(d @ g), g

    return loss_grad


def _spd(rng, p, lo=0.2, hi=3.0):
    Q, _ = np.linalg.qr(rng.normal(size=(p, p)))
    lam = rng.uniform(lo, hi, size=p)
    return (Q * lam) @ Q.T, lam


def _mlp_problem(m, k, n, seed):
    """The one-data-point MLP of chapter 3 (p = 1; see test_mlp_flow_identities for why p = 1)."""
    x, q = nets.mlp_data(m, n, seed)
    M, N = nets.mlp_init(m, k, n, seed + 1)
    return nets.MLPProblem(x, q, k), nets.mlp_pack(M, N)


# ---------------------------------------------------------------------------------------------------------
# Gradient flow: Results 1.2-1.5
# ---------------------------------------------------------------------------------------------------------


@FLOW_SETTINGS
@given(m=st.integers(1, 4), k=st.integers(1, 6), n=st.integers(1, 3), seed=SEEDS)
def test_mlp_flow_identities(m, k, n, seed, grad_report):
    """Results 1.3, 1.4, 1.5, monotone loss and Result 1.2 in integrated form, on the one-data-point MLP.

    Only p = 1 (the chapter-3 problem): with several data points a hidden unit can sit on a ReLU kink in a sliding
    mode, where an adaptive explicit solver chatters with tiny steps (see the report); with one data point a unit
    that reaches its kink is switched off for good, so the right-hand side is smooth again after each crossing.
    """
    prob, w0 = _mlp_problem(m, k, n, seed)
    tr = flow.gradient_flow(prob.loss_grad, w0, 1.0, n_eval=201)
    assert not tr.diverged, tr.message
    assert tr.t[0] == 0.0 and tr.t[-1] == 1.0 and np.array_equal(tr.w[0], w0)
    fi = flow.flow_identities(tr)
    l0 = tr.loss[0]
    scale = RTOL * (1.0 + l0)

    # Result 1.3: en(gamma|[0,t]) = l(0) - l(t)
    en = np.max(np.abs(fi.energy_residual)) / scale
    grad_report("flow: energy residual / (rtol (1 + l0)), MLP", en)
    assert en <= C_EN, f"energy identity residual {en:.2f} rtol (1 + l0) > {C_EN}"

    # the loss is non-increasing (up to the solver's accuracy)
    rise = np.max(np.diff(tr.loss), initial=0.0)
    assert rise <= C_EN * scale, f"loss rose by {rise:.3e} along the flow"

    # Result 1.4: len^2 <= t en (Cauchy-Schwarz); len and en carry relative errors ~ rtol and absolute ~ atol
    tol = C_EN * (RTOL * tr.t * tr.energy + ATOL * (1.0 + tr.length))
    assert np.all(fi.length_gap >= -tol), f"length gap {np.min(fi.length_gap + tol):.3e} below tolerance"
    # Result 1.5: |gamma(t) - w0| <= sqrt(t l(0))
    assert np.all(fi.distance_gap >= -C_EN * RTOL * (1.0 + tr.dist)), f"distance gap {np.min(fi.distance_gap):.3e}"
    # and the chain behind it: |gamma(t) - w0| <= len(t)
    assert np.all(tr.dist <= tr.length * (1 + C_EN * RTOL) + C_EN * ATOL)

    # Result 1.2 in integrated form, l(0) - l(t) = int_0^t |grad f|^2, from the recorded samples only. |grad f|^2
    # jumps where a unit switches off, so the trapezoid rule is only first order; but for any integrand of bounded
    # variation V its error on an interval of length h is at most h V / 2 (|g(s) - (g(a) + g(b)) / 2| <= V / 2).
    g2 = tr.grad_norm**2
    coarse = slice(None, None, 8)
    h = tr.t[8] - tr.t[0]
    err = np.max(np.abs(cumulative_trapezoid(g2[coarse], tr.t[coarse], initial=0.0) - (l0 - tr.loss[coarse])))
    tv = np.sum(np.abs(np.diff(g2)))  # variation measured on the 8x finer grid (a lower bound of the true one)
    assert err <= h * tv / 2 + C_EN * scale, f"integrated Result 1.2: error {err:.3e} > h V / 2 = {h * tv / 2:.3e}"


@FLOW_SETTINGS
@given(dims=st.lists(st.integers(1, 3), min_size=2, max_size=4), p=st.integers(1, 4), seed=SEEDS)
def test_deep_linear_flow_identities(dims, p, seed, grad_report):
    """The same identities on a smooth problem (deep linear net), plus the conserved balancedness of chapter 7."""
    rng = np.random.default_rng(seed)
    X, Y = rng.normal(size=(dims[0], p)), rng.normal(size=(dims[-1], p))
    prob = nets.DeepLinearProblem(X, Y, tuple(dims))
    w0 = nets.pack(nets.deep_linear_init(dims, 1.0, seed))
    tr = flow.gradient_flow(prob.loss_grad, w0, 0.5, n_eval=41)
    assert not tr.diverged, tr.message
    fi = flow.flow_identities(tr)
    l0 = tr.loss[0]
    en = np.max(np.abs(fi.energy_residual)) / (RTOL * (1 + l0))
    grad_report("flow: energy residual / (rtol (1 + l0)), deep linear", en)
    assert en <= C_EN
    assert np.all(np.diff(tr.loss) <= C_EN * RTOL * (1 + l0))
    assert np.all(fi.length_gap >= -C_EN * (RTOL * tr.t * tr.energy + ATOL * (1 + tr.length)))
    assert np.all(fi.distance_gap >= -C_EN * RTOL * (1 + tr.dist))
    # Delta_j = W_{j+1}^T W_{j+1} - W_j W_j^T is conserved by the flow
    first, last = prob.unpack(tr.w[0]), prob.unpack(tr.w[-1])
    for j in range(len(first) - 1):
        d0 = first[j + 1].T @ first[j + 1] - first[j] @ first[j].T
        d1 = last[j + 1].T @ last[j + 1] - last[j] @ last[j].T
        assert np.max(np.abs(d1 - d0)) <= 1e-6 * (1 + np.max(np.abs(d0))), "balancedness not conserved"


def test_rate_identity_converges_at_second_order():
    """Result 1.2, l'(t) = -|grad f|^2, on a smooth problem: flow_identities estimates l' by second-order finite
    differences, so halving the record spacing must divide the residual by about 4 (it would be 2 for first order,
    and it would not shrink at all if the identity failed)."""
    rng = np.random.default_rng(0)
    dims = (3, 4, 2)
    prob = nets.DeepLinearProblem(rng.normal(size=(3, 5)), rng.normal(size=(2, 5)), dims)
    w0 = nets.pack(nets.deep_linear_init(dims, 1.0, 1))
    res = []
    for n_eval in (81, 161, 321):
        tr = flow.gradient_flow(prob.loss_grad, w0, 0.5, n_eval=n_eval, rtol=1e-12, atol=1e-14)
        res.append(np.max(np.abs(flow.flow_identities(tr).rate_residual)))
    ratios = [res[0] / res[1], res[1] / res[2]]
    assert all(3.5 < r < 4.5 for r in ratios), f"residuals {res}, ratios {ratios}"
    assert res[-1] < 1e-3 * tr.loss[0]


def test_rate_identity_exact_on_quadratic():
    """On a quadratic the whole curve is known: w(t) = expm(-A t) w0, l'(t) = -|A w(t)|^2."""
    rng = np.random.default_rng(3)
    A, lam = _spd(rng, 4)
    w0 = rng.normal(size=4)
    tr = flow.gradient_flow(_quadratic(A), w0, 2.0, n_eval=21)
    exact = np.array([expm(-A * t) @ w0 for t in tr.t])
    assert np.max(np.abs(tr.w - exact)) < 1e-8
    # Result 2.1 (learning health): |grad f|^2 >= 2 lambda_min f, hence l(t) <= l(0) exp(-2 lambda_min t)
    mu = lam.min()
    assert np.all(tr.loss <= tr.loss[0] * np.exp(-2 * mu * tr.t) * (1 + 1e-8))
    assert np.all(tr.grad_norm**2 >= 2 * mu * tr.loss * (1 - 1e-10))


@SETTINGS
@given(p=st.integers(1, 5), seed=SEEDS)
def test_health_bound_on_random_quadratics(p, seed):
    """Result 2.1 on f(w) = (w - w*)^T A (w - w*) / 2 with min eigenvalue mu: l(t) <= l(0) exp(-2 mu t)."""
    rng = np.random.default_rng(seed)
    A, lam = _spd(rng, p, lo=0.1, hi=2.0)
    w_star, w0 = rng.normal(size=p), rng.normal(size=p)
    tr = flow.gradient_flow(_quadratic(A, w_star), w0, 3.0, n_eval=31)
    bound = tr.loss[0] * np.exp(-2 * lam.min() * tr.t)
    assert np.all(tr.loss <= bound * (1 + 1e-7) + 1e-14)


def test_flow_min_loss_stops_early():
    A = np.diag([1.0, 2.0])
    tr = flow.gradient_flow(_quadratic(A), np.ones(2), 50.0, min_loss=1e-3)
    assert not tr.diverged
    assert tr.t[-1] < 50.0 and tr.loss[-1] == pytest.approx(1e-3, rel=1e-6)
    assert "min_loss" in tr.message


def test_flow_identities_bad_inputs():
    gd = flow.gradient_descent(_quadratic(np.eye(2)), np.ones(2), 0.1, 5)
    with pytest.raises(ValueError, match="traj"):
        flow.flow_identities(gd)
    with pytest.raises(ValueError, match="traj"):
        flow.flow_identities("not a trajectory")
    short = flow.gradient_flow(_quadratic(np.eye(2)), np.ones(2), 1.0, n_eval=2)
    with pytest.raises(ValueError, match="traj"):
        flow.flow_identities(short)


# ---------------------------------------------------------------------------------------------------------
# Gradient descent
# ---------------------------------------------------------------------------------------------------------


def test_gd_quadratic_closed_form_exact():
    """f = sum a_i w_i^2 / 2 with eta a_i in {1/2, 3/2, 1/4}: every factor (1 - eta a_i) is a power of 2 (up to sign), so
    w_k = (1 - eta a)^k w0 holds bit for bit."""
    a = np.array([2.0, 6.0, 1.0])
    eta = 0.25
    w0 = np.array([1.0, -3.0, 0.5])
    tr = flow.gradient_descent(lambda w: (0.5 * float(w @ (a * w)), a * w), w0, eta, 30)
    k = np.arange(31)[:, None]
    assert np.array_equal(tr.w, (1 - eta * a) ** k * w0)
    assert np.array_equal(tr.k, np.arange(31)) and np.allclose(tr.t, eta * np.arange(31), rtol=0, atol=1e-15)


@SETTINGS
@given(p=st.integers(1, 5), seed=SEEDS, n_steps=st.integers(1, 60))
def test_gd_quadratic_closed_form(p, seed, n_steps):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.1, 3.0, size=p)
    eta = rng.uniform(0.01, 1.9) / a.max()
    w0 = rng.normal(size=p)
    tr = flow.gradient_descent(lambda w: (0.5 * float(w @ (a * w)), a * w), w0, eta, n_steps)
    k = np.arange(n_steps + 1)[:, None]
    assert np.allclose(tr.w, (1 - eta * a) ** k * w0, rtol=1e-12 * n_steps, atol=1e-300)
    # bookkeeping: time, length and energy are the discrete counterparts of the flow's quantities
    g = a * tr.w
    gn = np.linalg.norm(g, axis=1)
    assert np.allclose(tr.grad_norm, gn, rtol=1e-14, atol=0)
    assert np.allclose(tr.length, np.concatenate([[0.0], np.cumsum(eta * gn[:-1])]), rtol=1e-12, atol=0)
    assert np.allclose(tr.energy, np.concatenate([[0.0], np.cumsum(eta * gn[:-1] ** 2)]), rtol=1e-12, atol=0)
    steps = np.diff(tr.w, axis=0)
    assert np.allclose(tr.energy[-1], np.sum(steps**2) / eta, rtol=1e-12, atol=0)
    assert np.allclose(tr.dist, np.linalg.norm(tr.w - w0, axis=1), rtol=1e-15, atol=0)
    # below 2/L the loss decreases monotonically
    assert np.all(np.diff(tr.loss) <= 0)


def test_gd_schedule_and_record_every():
    a = np.array([1.0, 3.0])
    lg = lambda w: (0.5 * float(w @ (a * w)), a * w)  # noqa: E731
    etas = 0.5 / (1.0 + np.arange(10)) ** 0.5
    tr = flow.gradient_descent(lg, np.ones(2), etas, 10)
    w = np.ones(2)
    for e in etas:
        w = w - e * (a * w)
    assert np.array_equal(tr.w[-1], w)
    assert tr.t[-1] == pytest.approx(etas.sum(), rel=1e-15)
    tr3 = flow.gradient_descent(lg, np.ones(2), etas, 10, record_every=3)
    assert np.array_equal(tr3.k, [0, 3, 6, 9, 10])
    assert np.array_equal(tr3.w, tr.w[[0, 3, 6, 9, 10]])
    with pytest.raises(ValueError, match="eta"):
        flow.gradient_descent(lg, np.ones(2), etas[:9], 10)
    with pytest.raises(ValueError, match="eta"):
        flow.gradient_descent(lg, np.ones(2), np.append(etas, 0.1), 10)
    with pytest.raises(ValueError, match="eta"):
        flow.gradient_descent(lg, np.ones(2), np.where(np.arange(10) == 4, 0.0, etas), 10)
    with pytest.raises(ValueError, match="eta"):
        flow.gradient_descent(lg, np.ones(2), -etas, 10)


# ---------------------------------------------------------------------------------------------------------
# Divergence: reported in the result, and no floating-point warning escapes
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("eta", [2.5, 10.0, 1e3, 1e100, 1e200, 1e300])
def test_gd_divergence_absurd_step(eta):
    lg = _quadratic(np.eye(3))
    w0 = np.ones(3)
    f0 = 1.5
    max_loss = runs.divergence_threshold(f0)
    # closed form: w_k = (1 - eta)^k w0, f_k = f0 (1 - eta)^(2k) (in logs, so nothing overflows here)
    logf = np.log(f0) + 2 * np.arange(1, 200) * np.log(abs(1 - eta))
    expected = 1 + int(np.argmax(logf > np.log(max_loss)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tr = flow.gradient_descent(lg, w0, eta, 500)
    assert tr.diverged and tr.diverged_at == expected, (tr.diverged_at, expected, tr.message)
    assert f"diverged at step {expected}" in tr.message
    assert tr.diverged_time == pytest.approx(expected * eta)
    # the records stop before the divergent point and are all finite
    assert tr.k[-1] == expected - 1 and np.all(np.isfinite(tr.loss)) and np.all(np.isfinite(tr.w))


def test_gd_divergence_nan_loss():
    """f(w) = sqrt(w) steps past 0 and becomes NaN at step 2 (w: 1 -> 0.5 -> 0.5 - 0.707 < 0)."""

    def lg(w):
        return float(np.sqrt(w[0])), np.array([0.5 / np.sqrt(w[0])])

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tr = flow.gradient_descent(lg, np.array([1.0]), 1.0, 10)
    assert tr.diverged and tr.diverged_at == 2
    assert "not finite" in tr.message


def test_gd_divergence_explicit_max_loss():
    lg = _quadratic(np.eye(1))
    tr = flow.gradient_descent(lg, np.array([1.0]), 3.0, 50, max_loss=100.0)
    # f_k = 0.5 * 4^k: 0.5, 2, 8, 32, 128 -> exceeds 100 at step 4
    assert tr.diverged and tr.diverged_at == 4
    ok = flow.gradient_descent(lg, np.array([1.0]), 0.5, 50)
    assert not ok.diverged and ok.diverged_at == runs.NOT_DIVERGED and ok.diverged_time is None


def test_gd_huge_finite_gradient_no_warning():
    """A finite loss whose finite gradient has an overflowing squared norm: no warning or OverflowError may escape.

    The loss stays 0 and w stays finite, so the run is not diverged; its energy sum eta |g|^2 is honestly inf.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tr = flow.gradient_descent(lambda w: (0.0, np.full_like(w, 1e160)), np.array([1.0, 2.0]), 1.0, 2)
    assert not tr.diverged
    assert np.array_equal(tr.w[-1], [1.0 - 2e160, 2.0 - 2e160])
    assert tr.energy[-1] == np.inf and tr.length[-1] == np.inf  # np.linalg.norm itself overflows to inf here


def test_flow_divergence_finite_time_blow_up():
    """f(w) = -w^3 / 3: the flow w' = w^2 from w0 = 1 is w = 1 / (1 - t), which blows up at t = 1."""

    def lg(w):
        return float(-np.sum(w**3) / 3), -(w**2)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tr = flow.gradient_flow(lg, np.array([1.0]), 2.0)
    assert tr.diverged and tr.diverged_time == pytest.approx(1.0, abs=1e-3) and tr.diverged_at == tr.t.size - 1
    assert tr.message.startswith("diverged at t = ")
    assert tr.t[-1] <= 1.0 + 1e-9
    keep = tr.t < 0.99
    assert np.allclose(tr.w[keep, 0], 1.0 / (1.0 - tr.t[keep]), rtol=1e-7)


def test_flow_divergence_loss_exceeds_max_loss():
    """A (deliberately inconsistent) loss_grad whose flow w' = w makes f = w^2 grow past max_loss = 2e6 at
    t = log(sqrt(2e6))."""

    def lg(w):
        return float(w @ w), -w

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tr = flow.gradient_flow(lg, np.array([1.0]), 50.0)
    assert tr.diverged and tr.diverged_at == tr.t.size - 1  # the flow's divergence: at its last record
    assert tr.diverged_time == pytest.approx(0.5 * np.log(2e6), rel=1e-6)
    assert tr.message.startswith("diverged at t = ") and "loss exceeded" in tr.message
    assert tr.loss[-1] == pytest.approx(2e6, rel=1e-6)


# ---------------------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------------------


def test_flow_and_descent_are_deterministic():
    prob, w0 = _mlp_problem(3, 5, 2, 11)
    a = flow.gradient_flow(prob.loss_grad, w0, 0.5, n_eval=11)
    b = flow.gradient_flow(prob.loss_grad, w0, 0.5, n_eval=11)
    c = flow.gradient_descent(prob.loss_grad, w0, 0.05, 40, record_every=7)
    d = flow.gradient_descent(prob.loss_grad, w0, 0.05, 40, record_every=7)
    for u, v in ((a, b), (c, d)):
        for field in ("t", "k", "w", "loss", "grad_norm", "dist", "length", "energy"):
            assert np.array_equal(getattr(u, field), getattr(v, field)), field
        assert u.message == v.message


def test_gd_flow_gap_is_first_order():
    """Euler's global error is O(eta): the GD-flow gap scales like eta."""
    A = np.diag([1.0, 3.0])
    etas = np.array([0.05, 0.025, 0.0125, 0.00625])
    res = flow.gd_flow_gap(_quadratic(A), np.array([1.0, 1.0]), etas, 2.0)
    slopes = np.diff(np.log(res.gap)) / np.diff(np.log(etas))
    assert np.all((0.9 < slopes) & (slopes < 1.1)), slopes


# ---------------------------------------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------------------------------------

LG = _quadratic(np.eye(2))
W0 = np.ones(2)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: flow.gradient_flow(LG, np.ones((2, 1)), 1.0), "w0"),
        (lambda: flow.gradient_flow(LG, np.array([1.0, np.nan]), 1.0), "w0"),
        (lambda: flow.gradient_flow(LG, np.array([np.inf, 1.0]), 1.0), "w0"),
        (lambda: flow.gradient_flow(LG, np.zeros(0), 1.0), "w0"),
        (lambda: flow.gradient_flow(lambda w: (float(np.sqrt(-1.0 - w @ w)), w), W0, 1.0), "w0"),
        (lambda: flow.gradient_flow(lambda w: (0.0, np.zeros(3)), W0, 1.0), "loss_grad"),
        (lambda: flow.gradient_flow("f", W0, 1.0), "loss_grad"),
        (lambda: flow.gradient_flow(LG, W0, -1.0), "t_max"),
        (lambda: flow.gradient_flow(LG, W0, 0.0), "t_max"),
        (lambda: flow.gradient_flow(LG, W0, np.inf), "t_max"),
        (lambda: flow.gradient_flow(LG, W0, 1.0, t_eval=[0.0, 0.5, 0.4, 1.0]), "t_eval"),
        (lambda: flow.gradient_flow(LG, W0, 1.0, t_eval=[0.0, 0.5, 0.5, 1.0]), "t_eval"),
        (lambda: flow.gradient_flow(LG, W0, 1.0, t_eval=[0.1, 0.5]), "t_eval"),
        (lambda: flow.gradient_flow(LG, W0, 1.0, t_eval=[0.0, 2.0]), "t_eval"),
        (lambda: flow.gradient_flow(LG, W0, 1.0, t_eval=[[0.0, 1.0]]), "t_eval"),
        (lambda: flow.gradient_flow(LG, W0, 1.0, n_eval=1), "n_eval"),
        (lambda: flow.gradient_flow(LG, W0, 1.0, rtol=0.0), "rtol"),
        (lambda: flow.gradient_flow(LG, W0, 1.0, atol=-1.0), "atol"),
        (lambda: flow.gradient_flow(LG, W0, 1.0, max_loss=-1.0), "max_loss"),
        (lambda: flow.gradient_flow(LG, W0, 1.0, min_loss=-1.0), "min_loss"),
        (lambda: flow.gradient_descent(LG, W0, 0.0, 10), "eta"),
        (lambda: flow.gradient_descent(LG, W0, -0.1, 10), "eta"),
        (lambda: flow.gradient_descent(LG, W0, np.nan, 10), "eta"),
        (lambda: flow.gradient_descent(LG, W0, True, 10), "eta"),
        (lambda: flow.gradient_descent(LG, W0, 0.1, 0), "n_steps"),
        (lambda: flow.gradient_descent(LG, W0, 0.1, -3), "n_steps"),
        (lambda: flow.gradient_descent(LG, W0, 0.1, 10.0), "n_steps"),
        (lambda: flow.gradient_descent(LG, W0, 0.1, True), "n_steps"),
        (lambda: flow.gradient_descent(LG, W0, 0.1, 10, record_every=0), "record_every"),
        (lambda: flow.gradient_descent(LG, W0, 0.1, 10, record_every=-1), "record_every"),
        (lambda: flow.gradient_descent(LG, np.ones((1, 2)), 0.1, 10), "w0"),
        (lambda: flow.gradient_descent(LG, [1.0, np.nan], 0.1, 10), "w0"),
        (lambda: flow.gd_flow_gap(LG, W0, [0.1, -0.1], 1.0), "etas"),
        (lambda: flow.gd_flow_gap(LG, W0, [], 1.0), "etas"),
        (lambda: flow.gd_flow_gap(LG, W0, [0.1], -1.0), "t_max"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        call()


def test_flow_stops_at_evaluation_budget_without_diverging():
    """A stiff or sliding flow stops at max_evals with status "max_evals" and a message; it is not "diverged"."""
    A = np.diag([1.0, 2.0])
    tr = flow.gradient_flow(_quadratic(A), np.ones(2), 1e4, max_evals=100)
    assert tr.status == "max_evals" and not tr.diverged
    assert "max_evals" in tr.message and tr.t[-1] < 1e4
    assert np.all(np.diff(tr.t) > 0)


def test_flow_on_mlp_with_several_points_terminates():
    """Several data points can make a ReLU unit slide along its kink; the run must still end within the budget."""
    x, q = nets.mlp_data(3, 2, seed=0, p=4)
    M, N = nets.mlp_init(3, 8, 2, seed=1)
    prob = nets.MLPProblem(x, q, 8)
    tr = flow.gradient_flow(prob.loss_grad, nets.mlp_pack(M, N), 20.0, max_evals=20_000)
    assert tr.status in ("completed", "max_evals") and not tr.diverged
    assert np.all(np.diff(tr.loss) <= 1e-9 * (1 + tr.loss[0]))


def test_flow_rejects_unknown_method_and_bad_budget():
    A = np.diag([1.0, 2.0])
    with pytest.raises(ValueError, match="method"):
        flow.gradient_flow(_quadratic(A), np.ones(2), 1.0, method="Euler")
    with pytest.raises(ValueError, match="max_evals"):
        flow.gradient_flow(_quadratic(A), np.ones(2), 1.0, max_evals=0)


def test_descent_reports_an_overflowing_iterate_as_divergence():
    """A step so large that the iterate itself overflows to inf is divergence, not a ValueError from the net's checks."""
    x, q = nets.mlp_data(3, 2, seed=0)
    M, N = nets.mlp_init(3, 8, 2, seed=1)
    prob = nets.MLPProblem(x, q, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gd = flow.gradient_descent(prob.loss_grad, nets.mlp_pack(M, N), 1e308, 5)
    assert gd.diverged and gd.diverged_at == 1 and "not finite" in gd.message
