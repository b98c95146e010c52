"""params: the Jacobian and the loss gradient against finite differences, the column structure of D (positive
homogeneity), the range projector, the output-space flow against a gradient-flow run, the comparison model, the
stationarity report, the data generators, determinism and bad inputs (chapter 5).

Round-off bounds used below (``EPS`` = machine epsilon). A forward pass computes every output as nested sums of
products; with the "absolute network" ``a_0 = |X|``, ``a_l = |W_l| a_{l-1} + |b_l|`` (plus ``log(2) / beta`` after a
smoothed activation, since ``|softplus_beta(z)| <= |z| + log(2) / beta``), the computed output ``x_j`` is off by at
most ``c EPS a_j`` with ``c = sum_l (M_{l-1} + 4)`` (Higham's ``gamma_p`` per layer, a few ulps per activation; to
first order). A central difference with step ``h`` turns such errors into ``c EPS a / h``, and the rounding of
``theta_p +- h`` adds ``EPS (|theta_p| + h) / h`` times the derivative.

Truncation. A ReLU net is piecewise polynomial, and along one coordinate of ``theta`` it is affine inside a fixed
activation pattern (each coordinate belongs to a single layer): the central difference of the outputs is exact up to
round-off and that of the (quadratic) cost too. ReLU instances are used only if every pre-activation is at least
``KINK_MARGIN`` from the kink, and the patterns at every ``theta +- h e_p`` are checked to equal the pattern at
``theta``. For the smoothed ReLU the central difference is ``d(h) = f' + c3 h^2 + c5 h^4 + O(h^6)``: the Richardson
extrapolations ``r(h) = (4 d(h/2) - d(h)) / 3 = f' - c5 h^4 / 4 + ...`` and ``r(h/2) = f' - c5 h^4 / 64 + ...`` give
``|r(h) - f'| <= (16/15) |r(h) - r(h/2)|`` (the ``h^6`` terms are ``(beta h)^2`` smaller, covered by a factor
``1 + (beta h)^2``), plus their round-off: with ``R(h)`` the round-off bound of ``d(h)`` (``R(h/2) = 2 R(h)``),
``r(h)`` carries ``3 R``, ``r(h/2)`` ``6 R``, in all ``3 R + (16/15) 9 R < 13 R``. The exact derivative is compared
with ``r(h)``: a mistake larger than twice the ``h^4`` term plus round-off fails, whatever its sign.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from gdlab import flow, params
from gdlab.numerics import relative_error
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None)
SEEDS = st.integers(0, 2**32 - 1)
EPS = np.finfo(float).eps
H_RELU = 1e-6  # exact quotient up to round-off: the step only has to stay inside the activation pattern
H_SMOOTH = 1e-4  # truncation ~ (beta h)^2 relative, round-off ~ EPS / h: both far below the checks' resolution
KINK_MARGIN = 1e-4
BETAS = [None, 1.0, 10.0]
ARCHITECTURES = [(3, 1), (2, 3), (3, 4, 1), (2, 3, 2), (1, 5, 3), (2, 3, 3, 1), (3, 2, 4, 2), (2, 4, 3, 2, 1)]


# ---------------------------------------------------------------------------------------------------------
# Independent references
# ---------------------------------------------------------------------------------------------------------


def _reference_forward(theta, sizes, X, beta):
    """A loop over data points, written from the definitions: pre-activations ``[z_1 (N, M_1), ...]`` and the outputs
    stacked as ``x[j Q + q]``."""
    layers = params.unpack(theta, sizes)
    zs = [np.empty((X.shape[0], W.shape[0])) for W, _ in layers[:-1]]
    out = []
    for j, xj in enumerate(X):
        h = xj
        for ell, (W, b) in enumerate(layers[:-1]):
            z = W @ h + b
            zs[ell][j] = z
            h = np.maximum(z, 0.0) if beta is None else np.log1p(np.exp(beta * z)) / beta
        W, b = layers[-1]
        out.extend(W @ h + b)
    return zs, np.array(out)


def _pattern(theta, sizes, X):
    """The ReLU activation pattern: the signs of all hidden pre-activations."""
    return [z > 0 for z in _reference_forward(theta, sizes, X, None)[0]]


def _kink_distance(theta, sizes, X):
    """Distance of the closest hidden pre-activation to the kink (``inf`` without hidden layers)."""
    zs = _reference_forward(theta, sizes, X, None)[0]
    return min((float(np.min(np.abs(z))) for z in zs), default=np.inf)


def _abs_outputs(theta, sizes, X, beta):
    """The absolute network: ``a_L`` (QN,) bounds the sum of the absolute values of the terms behind each output."""
    layers = params.unpack(theta, sizes)
    a = np.abs(X)
    for W, b in layers[:-1]:
        a = a @ np.abs(W).T + np.abs(b) + (0.0 if beta is None else np.log(2.0) / beta)
    W, b = layers[-1]
    return (a @ np.abs(W).T + np.abs(b)).ravel()


def _forward_error(theta, sizes, X, beta):
    """First-order bound on the round-off of each computed output (module docstring)."""
    c = sum(sizes[:-1]) + 4 * (len(sizes) - 1)
    return c * EPS * _abs_outputs(theta, sizes, X, beta)


def _central(f, theta, h, check_pattern=None):
    """Central differences ``(f(theta + h e_p) - f(theta - h e_p)) / (2h)`` stacked along the last axis; with
    ``check_pattern`` (a callable ``theta -> pattern``), assert that no step leaves the pattern at ``theta``."""
    base = None if check_pattern is None else check_pattern(theta)
    cols = []
    for p in range(theta.size):
        e = np.zeros_like(theta)
        e[p] = h
        if check_pattern is not None:
            for t in (theta + e, theta - e):
                assert all(np.array_equal(u, v) for u, v in zip(check_pattern(t), base, strict=True))
        cols.append((np.asarray(f(theta + e)) - np.asarray(f(theta - e))) / (2 * h))
    return np.stack(cols, axis=-1)


def _fd_check(name, exact, f, theta, f_err, beta, grad_report, check_pattern=None):
    """Compare ``exact`` ((..., K): a Jacobian or a gradient) with central differences of ``f`` entry by entry, with
    the tolerance of the module docstring; ``f_err`` bounds the round-off of ``f`` (broadcast against ``exact``'s
    leading axes). Returns the worst ratio error / tolerance."""
    f_err = np.asarray(f_err, dtype=float)[..., None]
    step = EPS * (np.abs(theta) + 1.0)  # relative rounding of theta_p +- h, times h (h <= 1)
    if beta is None:
        h = H_RELU
        fd = _central(f, theta, h, check_pattern)
        tol = f_err / h + step / h * np.abs(exact)
    else:
        h = H_SMOOTH
        d1, d2, d3 = (_central(f, theta, s) for s in (h, h / 2, h / 4))
        fd, fd_half = (4 * d2 - d1) / 3, (4 * d3 - d2) / 3
        R = f_err / h + step / h * np.abs(exact)
        tol = 16 / 15 * (1 + (beta * h) ** 2) * np.abs(fd - fd_half) + 13 * R
    err = np.abs(exact - fd)
    ratio = float(np.max(err / tol)) if err.size else 0.0
    grad_report(f"{name} vs central diff (|err| / bound)", ratio)
    grad_report(f"{name} vs central diff (relative)", relative_error(exact, fd))
    assert np.all(err <= tol), f"{name}: worst |err| / tolerance = {ratio:.3g}"
    return ratio


def _relu_instance(sizes, N, seed):
    """A kink-free ReLU instance: the first seed from ``seed`` on whose pre-activations stay ``KINK_MARGIN`` away."""
    for s in range(seed, seed + 100):
        theta = params.init(sizes, s)
        X, Y = params.generic_data(N, sizes[0], sizes[-1], s + 1000)
        if _kink_distance(theta, sizes, X) > KINK_MARGIN:
            return theta, X, Y
    raise AssertionError("no kink-free instance found")


def _instance(sizes, N, seed, beta):
    """``(theta, X, Y)`` for a parametrised test: :func:`_relu_instance` for ReLU (``beta`` None), else
    ``init(sizes, seed)`` and generic data from ``seed + 1``."""
    if beta is None:
        return _relu_instance(sizes, N, seed)
    theta = params.init(sizes, seed)
    X, Y = params.generic_data(N, sizes[0], sizes[-1], seed + 1)
    return theta, X, Y


def _drawn_instance(M, hidden, Q, N, beta, seed):
    """``(sizes, theta, X, Y)`` for a property test: sizes ``(M, *hidden, Q)``, ``init(sizes, seed)`` and generic
    data from ``seed + 1``; a ReLU draw (``beta`` None) closer than ``KINK_MARGIN`` to a kink is rejected."""
    sizes = (M, *hidden, Q)
    theta = params.init(sizes, seed)
    X, Y = params.generic_data(N, M, Q, seed + 1)
    if beta is None:
        assume(_kink_distance(theta, sizes, X) > KINK_MARGIN)
    return sizes, theta, X, Y


def _check_jacobian(sizes, theta, X, beta, grad_report):
    D = params.jacobian(theta, sizes, X, beta)
    Q, N = sizes[-1], X.shape[0]
    assert D.shape == (Q * N, params.parameter_count(sizes))
    pattern = (lambda t: _pattern(t, sizes, X)) if beta is None else None
    _fd_check(f"params.jacobian (beta={beta})", D, lambda t: params.outputs(t, sizes, X, beta), theta,
              _forward_error(theta, sizes, X, beta), beta, grad_report, check_pattern=pattern)
    return D


# ---------------------------------------------------------------------------------------------------------
# The network: parameters, outputs, Jacobian
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", ARCHITECTURES)
def test_parameter_count_unpack_and_init(sizes):
    K = params.parameter_count(sizes)
    assert K == sum(sizes[i + 1] * sizes[i] + sizes[i + 1] for i in range(len(sizes) - 1))
    theta = params.init(sizes, 3)
    assert theta.shape == (K,)
    layers = params.unpack(theta, sizes)
    assert [(W.shape, b.shape) for W, b in layers] == [((m, n), (m,)) for n, m in zip(sizes[:-1], sizes[1:], strict=True)]
    # round trip: each layer's weights (row-major), then its biases
    assert np.array_equal(np.concatenate([np.concatenate([W.ravel(), b]) for W, b in layers]), theta)
    # the layout by hand for the first layer
    M, M1 = sizes[0], sizes[1]
    assert np.array_equal(layers[0][0][M1 - 1, M - 1], theta[M1 * M - 1])
    assert np.array_equal(layers[0][1], theta[M1 * M: M1 * M + M1])
    # a plain list and numpy integers are accepted as sizes
    assert params.parameter_count(list(np.array(sizes))) == K


def test_parameter_count_by_hand():
    assert params.parameter_count((3, 1)) == 4
    assert params.parameter_count((3, 5, 2)) == 3 * 5 + 5 + 5 * 2 + 2
    assert params.parameter_count((1, 1, 1, 1)) == 6


def test_init_is_deterministic_and_he_scaled():
    sizes = (50, 400, 3)
    theta = params.init(sizes, 7)
    assert np.array_equal(theta, params.init(sizes, 7))
    assert np.array_equal(theta, params.init(sizes, np.random.default_rng(7)))
    assert not np.array_equal(theta, params.init(sizes, 8))
    (W1, b1), (W2, b2) = params.unpack(theta, sizes)
    # sample variances of n normals: relative standard deviation sqrt(2 / n); 6 of them
    for W, var in ((W1, 2 / 50), (W2, 2 / 400)):
        assert abs(np.var(W) / var - 1) <= 6 * np.sqrt(2 / W.size)
    assert abs(np.mean(np.concatenate([b1, b2]) ** 2) / 0.01 - 1) <= 6 * np.sqrt(2 / 403)
    # bias_scale 0: exactly zero biases, same weights
    t0 = params.init(sizes, 7, bias_scale=0.0)
    assert not params.unpack(t0, sizes)[0][1].any() and not params.unpack(t0, sizes)[1][1].any()
    assert np.array_equal(params.unpack(t0, sizes)[0][0], W1)


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("sizes", ARCHITECTURES)
def test_outputs_match_a_loop_over_data_points(sizes, beta):
    theta = params.init(sizes, 1)
    X, _ = params.generic_data(4, sizes[0], sizes[-1], 2)
    x = params.outputs(theta, sizes, X, beta)
    ref = _reference_forward(theta, sizes, X, beta)[1]
    assert x.shape == (4 * sizes[-1],)
    # two summation orders of the same terms (and log1p(exp) against logaddexp: a few ulps, no overflow here)
    assert np.all(np.abs(x - ref) <= 2 * _forward_error(theta, sizes, X, beta))


def test_activation_and_slope():
    z = np.array([-50.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 50.0])
    assert np.array_equal(params.activation(z, None), np.maximum(z, 0))
    assert np.array_equal(params.activation_slope(z, None), [0, 0, 0, 0, 1, 1, 1])  # ReLU'(0) = 0
    for beta in (0.5, 3.0, 100.0):
        s = params.activation(z, beta)
        gap = s - np.maximum(z, 0)
        assert np.all(gap >= 0) and np.all(gap <= np.log(2) / beta * (1 + 4 * EPS))
        assert params.activation(0.0, beta) == pytest.approx(np.log(2) / beta, rel=4 * EPS)
        # the slope is the derivative: central difference, truncation (h^2 / 6) max|sigma'''| <= h^2 beta^2 / 60
        h = 1e-5
        fd = (params.activation(z + h, beta) - params.activation(z - h, beta)) / (2 * h)
        tol = (h * beta) ** 2 / 60 + 8 * EPS * (np.abs(z) + 1 / beta) / h
        assert np.all(np.abs(params.activation_slope(z, beta) - fd) <= tol)
    # stable for large |beta z|
    assert params.activation(1e3, 10.0) == 1e3 and params.activation(-1e3, 10.0) == 0.0


def test_jacobian_without_hidden_layer_is_exact():
    """x_{jQ+q} = W[q] . x_j + b[q]: the row (j, q) holds x_j at the weights of row q and 1 at bias q, zeros elsewhere."""
    sizes = (3, 2)
    theta = params.init(sizes, 0)
    X, _ = params.generic_data(4, 3, 2, 1)
    D = params.jacobian(theta, sizes, X)
    ref = np.zeros((8, 8))
    for j in range(4):
        for q in range(2):
            ref[2 * j + q, 3 * q: 3 * q + 3] = X[j]
            ref[2 * j + q, 6 + q] = 1.0
    assert np.array_equal(D, ref)
    assert np.array_equal(D, params.jacobian(theta, sizes, X, beta=2.0))  # no activation: beta plays no part


def test_jacobian_kink_convention():
    """A pre-activation exactly at 0 counts as inactive (ReLU'(0) = 0): sizes (1, 1, 1), x = 1, w = 1, b = -1."""
    sizes = (1, 1, 1)
    theta = np.array([1.0, -1.0, 2.0, 0.5])
    D = params.jacobian(theta, sizes, np.array([[1.0]]))
    assert np.array_equal(D, [[0.0, 0.0, 0.0, 1.0]])
    # just above the kink the unit is active: dx/dw = a x, dx/db = a, dx/da = relu(z)
    D = params.jacobian(theta, sizes, np.array([[1.5]]))
    assert np.array_equal(D, [[2.0 * 1.5, 2.0, 0.5, 1.0]])


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("sizes", ARCHITECTURES)
def test_jacobian_matches_finite_differences(sizes, beta, grad_report):
    theta, X, _ = _instance(sizes, 5, 10, beta)
    _check_jacobian(sizes, theta, X, beta, grad_report)


@SETTINGS
@given(M=st.integers(1, 4), hidden=st.lists(st.integers(1, 5), max_size=2), Q=st.integers(1, 3), N=st.integers(1, 6),
       beta=st.sampled_from(BETAS), seed=SEEDS)
def test_jacobian_matches_finite_differences_property(M, hidden, Q, N, beta, seed, grad_report):
    sizes, theta, X, _ = _drawn_instance(M, hidden, Q, N, beta, seed)
    D = _check_jacobian(sizes, theta, X, beta, grad_report)
    assert np.array_equal(D, params.jacobian(theta, sizes, X, beta))  # same input, same bits


def test_the_finite_difference_check_can_fail(grad_report):
    """The check is not vacuous: a relative change of 1e-6 in a single entry of D is caught, ReLU and smooth."""
    sizes = (2, 3, 2)
    for beta in (None, 10.0):
        theta, X, _ = _relu_instance(sizes, 4, 0)
        D = params.jacobian(theta, sizes, X, beta)
        bad = D.copy()
        i, p = np.unravel_index(np.argmax(np.abs(D)), D.shape)
        bad[i, p] *= 1 + 1e-6
        with pytest.raises(AssertionError):
            _fd_check("broken", bad, lambda t, beta=beta, X=X: params.outputs(t, sizes, X, beta), theta,
                      _forward_error(theta, sizes, X, beta), beta, lambda *_: None)


# ---------------------------------------------------------------------------------------------------------
# FCProblem: cost and gradient
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("sizes", ARCHITECTURES)
def test_fcproblem_cost_and_gradient(sizes, beta, grad_report):
    N = 6
    theta, X, Y = _instance(sizes, N, 20, beta)
    prob = params.FCProblem(sizes, X, Y, beta)
    assert prob.N == N and prob.K == params.parameter_count(sizes) and prob.sizes == tuple(sizes)
    assert np.array_equal(prob.y, Y.ravel())
    x = prob.outputs(theta)
    D = prob.jacobian(theta)
    assert np.array_equal(x, params.outputs(theta, sizes, X, beta))
    assert np.array_equal(D, params.jacobian(theta, sizes, X, beta))
    C, g = prob.loss_grad(theta)
    assert g.shape == (prob.K,)
    r = x - prob.y
    QN = r.size
    # the cost: two summation orders of the same squares
    assert abs(C - 0.5 * float(r @ r) / N) <= 2 * (QN + 2) * EPS * C
    # grad C = D^T (x - y) / N: the same products, summed along different routes (back-propagation through the
    # layers, data points and outputs); bounded by a gamma of their count times the sum of absolute values
    ref = D.T @ r / N
    n_terms = QN + sum(sizes) + 4 * len(sizes)
    scale = (np.abs(D).T @ (np.abs(r) + _forward_error(theta, sizes, X, beta))) / N
    assert np.all(np.abs(g - ref) <= 4 * n_terms * EPS * scale + 1e-300)
    grad_report("FCProblem grad vs D^T r / N (relative)", relative_error(g, ref))
    # against finite differences of the cost: round-off of C from those of x, the squares and the sum
    f_err = float(np.abs(r) @ _forward_error(theta, sizes, X, beta)) / N + 2 * (QN + 2) * EPS * C
    pattern = (lambda t: _pattern(t, sizes, X)) if beta is None else None
    _fd_check(f"FCProblem.loss_grad (beta={beta})", g, lambda t: prob.loss_grad(t)[0], theta, f_err, beta, grad_report,
              check_pattern=pattern)
    # same input, same bits
    C2, g2 = prob.loss_grad(theta)
    assert C2 == C and np.array_equal(g2, g)


@SETTINGS
@given(M=st.integers(1, 3), hidden=st.lists(st.integers(1, 4), max_size=2), Q=st.integers(1, 3), N=st.integers(1, 5),
       beta=st.sampled_from(BETAS), seed=SEEDS)
def test_fcproblem_gradient_property(M, hidden, Q, N, beta, seed, grad_report):
    sizes, theta, X, Y = _drawn_instance(M, hidden, Q, N, beta, seed)
    prob = params.FCProblem(sizes, X, Y, beta)
    C, g = prob.loss_grad(theta)
    r = prob.outputs(theta) - prob.y
    f_err = float(np.abs(r) @ _forward_error(theta, sizes, X, beta)) / N + 2 * (r.size + 2) * EPS * C
    pattern = (lambda t: _pattern(t, sizes, X)) if beta is None else None
    _fd_check(f"FCProblem.loss_grad (beta={beta})", g, lambda t: prob.loss_grad(t)[0], theta, f_err, beta, grad_report,
              check_pattern=pattern)


# ---------------------------------------------------------------------------------------------------------
# Column structure of D
# ---------------------------------------------------------------------------------------------------------


def _homogeneity_directions(theta, sizes):
    """For every hidden unit: ``v`` with the unit's incoming weights and bias, minus its outgoing weights (the derivative
    of ``t -> (scale incoming by e^t, outgoing by e^-t)``, which leaves a ReLU net unchanged)."""
    K = params.parameter_count(sizes)
    starts, i = [], 0
    for m_in, m_out in zip(sizes[:-1], sizes[1:], strict=True):
        starts.append(i)
        i += m_out * m_in + m_out
    vs = []
    for ell in range(1, len(sizes) - 1):
        m_prev, m, m_next = sizes[ell - 1], sizes[ell], sizes[ell + 1]
        s_in, s_out = starts[ell - 1], starts[ell]
        for u in range(m):
            v = np.zeros(K)
            v[s_in + u * m_prev: s_in + (u + 1) * m_prev] = theta[s_in + u * m_prev: s_in + (u + 1) * m_prev]
            v[s_in + m * m_prev + u] = theta[s_in + m * m_prev + u]
            out = s_out + np.arange(m_next) * m + u  # column u of W_{l+1}
            v[out] = -theta[out]
            vs.append(v)
    return np.array(vs).reshape(-1, K)


@SETTINGS
@given(M=st.integers(1, 4), hidden=st.lists(st.integers(1, 5), min_size=1, max_size=2), Q=st.integers(1, 3),
       N=st.integers(1, 12), seed=SEEDS)
def test_relu_homogeneity_gives_null_vectors_of_d(M, hidden, Q, N, seed, grad_report):
    sizes = (M, *hidden, Q)
    theta = params.init(sizes, seed)
    X, _ = params.generic_data(N, M, Q, seed + 1)
    D = params.jacobian(theta, sizes, X)
    V = _homogeneity_directions(theta, sizes)
    # D v = 0 exactly in real arithmetic; in floating point each entry of D v is a sum of K products whose entries of
    # D carry the forward round-off: gamma_K |D| |v| plus the relative error of the entries (c EPS)
    c = sum(sizes) + 4 * len(sizes)
    tol = (2 * D.shape[1] + 2 * c) * EPS * (np.abs(D) @ np.abs(V).T)
    grad_report("ReLU homogeneity |D v| / bound", float(np.max(np.abs(D @ V.T) / (tol + 1e-300))))
    assert np.all(np.abs(D @ V.T) <= tol)
    # the smoothed ReLU is not positively homogeneous: the same directions are not null (unless a unit is silent)
    Ds = params.jacobian(theta, sizes, X, beta=3.0)
    assert np.max(np.abs(Ds @ V.T)) > 1e3 * np.max(tol) + 1e-12


@SETTINGS
@given(M=st.integers(1, 4), W=st.integers(1, 6), N=st.integers(1, 60), seed=SEEDS)
def test_relu_one_hidden_layer_rank_bound(M, W, N, seed):
    sizes = (M, W, 1)
    theta = params.init(sizes, seed)
    X, _ = params.generic_data(N, M, 1, seed + 1)
    D = params.jacobian(theta, sizes, X)
    bound = W * (M + 1) + 1
    assert params.parameter_count(sizes) == bound + W
    assert params.numerical_rank(D) <= min(bound, N)
    # each unit's outgoing column is a combination of its incoming columns: a_i d/da_i = W_i . d/dW_i + b_i d/db_i
    (W1, b1), (a, _) = params.unpack(theta, sizes)
    for i in range(W):
        incoming = D[:, i * M:(i + 1) * M] @ W1[i] + D[:, W * M + i] * b1[i]
        out = a[0, i] * D[:, W * M + W + i]
        tol = (M + 4) * EPS * abs(a[0, i]) * (np.abs(X) @ np.abs(W1[i]) + abs(b1[i]))
        assert np.all(np.abs(incoming - out) <= tol)


def _spread_hidden_units(M, W, N, seed):
    """A generic one-hidden-layer instance on which ReLU attains the rank bound: N generic inputs, unit directions in
    one half-space (no two opposite hyperplanes share a boundary) and biases putting the hyperplane of unit i between
    the data points at its quantile (i + 1) / (W + 1) (distinct activation patterns, none empty or full)."""
    X, Y = params.generic_data(N, M, 1, seed + 1)
    rng = np.random.default_rng(seed)
    W1 = rng.normal(size=(W, M))
    W1 *= np.where(W1[:, :1] < 0, -1.0, 1.0)
    proj = np.sort(X @ W1.T, axis=0)
    k = [(i + 1) * N // (W + 1) for i in range(W)]
    b1 = -np.array([(proj[k[i] - 1, i] + proj[k[i], i]) / 2 for i in range(W)])
    theta = np.concatenate([W1.ravel(), b1, rng.normal(size=W), rng.normal(size=1)])
    return theta, X, Y


@SETTINGS
@given(M=st.integers(1, 4), W=st.integers(1, 6), seed=SEEDS)
def test_relu_one_hidden_layer_rank_bound_is_attained(M, W, seed):
    bound = W * (M + 1) + 1
    N = 4 * bound
    theta, X, _ = _spread_hidden_units(M, W, N, seed)
    D = params.jacobian(theta, (M, W, 1), X)
    assert params.numerical_rank(D) == bound
    # and not by a hair: the bound-th singular value is far above the rank tolerance 1e-9
    sv = np.linalg.svd(D, compute_uv=False)
    assert sv[bound - 1] > 1e-7 * sv[0]


@pytest.mark.parametrize("sizes,N", [((2, 3, 1), 5), ((2, 3, 1), 20), ((3, 4, 2), 4), ((2, 3, 3, 1), 6), ((1, 2, 1), 3),
                                     ((2, 2, 1), 30)])
def test_smoothed_rank_reaches_min_of_k_and_qn(sizes, N):
    """For the smoothed ReLU (beta = 3) the homogeneity relations are gone: generic D has full rank min(K, QN), also
    where the ReLU bound W (M + 1) + 1 is smaller (((2, 3, 1), 20): 13 > 10; ((2, 2, 1), 30): 9 > 7)."""
    theta = params.init(sizes, 0)
    X, _ = params.generic_data(N, sizes[0], sizes[-1], 1)
    D = params.jacobian(theta, sizes, X, beta=3.0)
    full = min(params.parameter_count(sizes), sizes[-1] * N)
    assert params.numerical_rank(D) == full
    if len(sizes) == 3 and sizes[-1] == 1:
        assert params.numerical_rank(params.jacobian(theta, sizes, X)) <= sizes[1] * (sizes[0] + 1) + 1


# ---------------------------------------------------------------------------------------------------------
# The range projector and the numerical rank
# ---------------------------------------------------------------------------------------------------------


def _check_projector(D, range_basis=None):
    """Every property of P = range_projector(D), with round-off bounds from the orthogonality of the SVD factors
    (LAPACK: |U^T U - I| <= p(n) EPS, here 4 n EPS) and the truncated singular values."""
    m, n = D.shape
    P = params.range_projector(D)
    r = params.numerical_rank(D)
    assert P.shape == (m, m)
    sv = np.linalg.svd(D, compute_uv=False)
    smax = sv[0] if sv.size else 0.0
    dropped = sv[r] if r < sv.size else 0.0
    orth = 4 * max(m, n) * EPS
    assert np.max(np.abs(P - P.T)) <= 2 * r * EPS
    assert np.max(np.abs(P @ P - P)) <= 2 * orth + 2 * m * EPS
    lam = np.linalg.eigvalsh((P + P.T) / 2)
    assert np.sum(lam > 0.5) == r and abs(np.trace(P) - r) <= m * orth
    assert np.all((np.abs(lam) <= orth + m * EPS) | (np.abs(lam - 1) <= orth + m * EPS))
    # P D = D up to the truncated singular values and round-off
    assert np.linalg.norm(P @ D - D, 2) <= dropped + 2 * (orth + m * EPS) * smax + 1e-300
    # a vector D v is fixed; a vector orthogonal to range(D) is mapped to 0
    rng = np.random.default_rng(m * 100 + n)
    v = rng.normal(size=n)
    Dv = D @ v
    assert np.linalg.norm(P @ Dv - Dv) <= (dropped + 2 * (orth + m * EPS) * smax) * np.linalg.norm(v) + 1e-300
    if range_basis is not None:
        Qb = np.linalg.qr(range_basis, mode="complete")[0]
        z = Qb[:, range_basis.shape[1]:] @ rng.normal(size=m - range_basis.shape[1])  # orthogonal to range(D)
        assert np.linalg.norm(P @ z) <= (2 * orth + 4 * m * EPS) * np.linalg.norm(z) * (1 + smax / max(sv[r - 1], 1e-300))
    return P, r


@SETTINGS
@given(m=st.integers(1, 9), n=st.integers(1, 9), data=st.data(), scale=st.sampled_from([1e-3, 1.0, 1e4]), seed=SEEDS)
def test_range_projector_property(m, n, data, scale, seed):
    r_true = data.draw(st.integers(1, min(m, n)), label="r")
    rng = np.random.default_rng(seed)
    A, B = rng.normal(size=(m, r_true)), rng.normal(size=(r_true, n))
    D = scale * A @ B
    # sigma_r(A B) >= sigma_r(A) sigma_r(B) and sigma_1(A B) <= sigma_1(A) sigma_1(B): with both condition numbers below
    # 3e4, the r-th singular value of D is above 1 / 9e8 > 1e-9 of the largest, the rest are round-off: rank D = r
    assume(np.linalg.cond(A) < 3e4 and np.linalg.cond(B) < 3e4)
    P, r = _check_projector(D, range_basis=A)
    assert r == r_true
    if r_true == m:  # full row rank: the identity
        assert np.max(np.abs(P - np.eye(m))) <= 8 * max(m, n) * EPS


def test_range_projector_full_row_rank_is_identity_and_zero_matrix():
    D = np.random.default_rng(0).normal(size=(4, 9))
    P, r = _check_projector(D)
    assert r == 4 and np.max(np.abs(P - np.eye(4))) <= 8 * 9 * EPS
    # a Jacobian with QN <= K (smoothed ReLU): full row rank, P = I
    sizes = (2, 5, 2)
    theta = params.init(sizes, 1)
    X, _ = params.generic_data(4, 2, 2, 2)
    Dj = params.jacobian(theta, sizes, X, beta=3.0)
    P, r = _check_projector(Dj)
    assert r == 8 and np.max(np.abs(P - np.eye(8))) <= 8 * Dj.shape[1] * EPS
    # the zero matrix: rank 0, P = 0
    assert params.numerical_rank(np.zeros((3, 2))) == 0
    assert np.array_equal(params.range_projector(np.zeros((3, 2))), np.zeros((3, 3)))


def test_numerical_rank_threshold():
    D = np.diag([1.0, 1e-3, 2e-9, 5e-10])
    assert params.numerical_rank(D) == 3
    assert params.numerical_rank(D, rtol=1e-8) == 2
    assert params.numerical_rank(D, rtol=1e-10) == 4
    # a diagonal D: P keeps the coordinates of the kept singular values (singular vectors +-e_i, to round-off)
    np.testing.assert_allclose(params.range_projector(D), np.diag([1.0, 1.0, 1.0, 0.0]), rtol=0, atol=16 * EPS)
    np.testing.assert_allclose(params.range_projector(D, rtol=1e-8), np.diag([1.0, 1.0, 0.0, 0.0]), rtol=0, atol=16 * EPS)


def test_range_projector_of_a_relu_jacobian():
    """Rank-deficient D from the homogeneity relations (QN = 24 > rank = 10 < K = 13): range(D) is spanned by the
    incoming-weight and bias columns of the hidden units and the output-bias column (the outgoing-weight columns are
    combinations of them)."""
    M, W = 2, 3
    theta, X, _ = _spread_hidden_units(M, W, 24, 5)
    D = params.jacobian(theta, (M, W, 1), X)
    basis = D[:, [*range(W * M + W), W * M + 2 * W]]
    assert np.linalg.matrix_rank(basis) == 10
    P, r = _check_projector(D, range_basis=basis)
    assert r == 10 < D.shape[0]


# ---------------------------------------------------------------------------------------------------------
# Output-space flow and the comparison model
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", BETAS)
def test_output_velocity_is_d_times_the_parameter_velocity(beta):
    sizes = (3, 4, 2)
    theta = params.init(sizes, 30)
    X, Y = params.generic_data(5, 3, 2, 31)
    prob = params.FCProblem(sizes, X, Y, beta)
    D = prob.jacobian(theta)
    x = prob.outputs(theta)
    v = params.output_velocity(D, x, prob.y, prob.N)
    r = x - prob.y
    theta_dot = -(1 / prob.N) * D.T @ r
    K, QN = D.shape[1], D.shape[0]
    bound = (np.abs(D) @ (np.abs(D).T @ np.abs(r))) / prob.N
    assert np.all(np.abs(v - D @ theta_dot) <= 2 * (K + QN + 2) * EPS * bound)
    # the Gram matrix route: -(1/N) (D D^T) (x - y)
    assert np.all(np.abs(v - (-(D @ D.T) @ r / prob.N)) <= 2 * (K + QN + 2) * EPS * bound)
    # and with the back-propagated gradient: x' = -D grad C
    g = prob.loss_grad(theta)[1]
    n_terms = QN + sum(sizes) + 4 * len(sizes)
    g_err = 4 * n_terms * EPS * (np.abs(D).T @ (np.abs(r) + _forward_error(theta, sizes, X, beta))) / prob.N
    assert np.all(np.abs(v + D @ g) <= 2 * (K + QN + 2) * EPS * bound + np.abs(D) @ g_err)
    # the velocity decreases the cost: dC/dt = r . x' / N = -|D^T r|^2 / N^2 <= 0
    assert r @ v < 0 and r @ v == pytest.approx(-np.sum((D.T @ r) ** 2) / prob.N, rel=1e-12)


def test_output_velocity_matches_the_time_derivative_along_gradient_flow(grad_report):
    """Central differences in time of x(theta(t)) along a gradient-flow run (beta = 3) against x'(t).

    The quotient is d(h) = x' + (h^2/6) x''' + (h^4/120) x^(5) + ...; as in the finite-difference checks (module
    docstring) the Richardson extrapolations r(h), r(h/2) from steps h, h/2, h/4 give |r(h) - x'| <= (16/15)
    (1 + rho) |r(h) - r(h/2)| with rho = (h lambda)^2 the relative size of the next term for the (locally linear)
    output flow x' = -(1/N) D D^T (x - y), lambda = |D|^2 / N; plus the solver's error: theta(t) within 10 (rtol |theta|
    + atol) (a few steps, each within the local tolerance, grown by at most exp(lambda t) ~ 3), which moves d(h) by at
    most n(h) = |D| 10 (rtol |theta| + atol) / h, r(h) by 3 n(h) and r(h/2) by 6 n(h): 13 n(h) in all."""
    sizes = (2, 4, 1)
    X, Y = params.generic_data(5, 2, 1, 3)
    prob = params.FCProblem(sizes, X, Y, beta=3.0)
    theta0 = params.init(sizes, 4)
    t, h = 0.1, 2e-3
    t_eval = np.array([0.0, t - h, t - h / 2, t - h / 4, t, t + h / 4, t + h / 2, t + h])
    rtol, atol = 1e-11, 1e-13
    run = flow.gradient_flow(prob.loss_grad, theta0, t + h, t_eval=t_eval, rtol=rtol, atol=atol)
    assert run.status == "completed" and np.array_equal(run.t, t_eval)
    xs = np.array([prob.outputs(w) for w in run.w])
    D = prob.jacobian(run.w[4])
    v = params.output_velocity(D, xs[4], prob.y, prob.N)
    d1, d2, d3 = ((xs[4 + k] - xs[4 - k]) / (2 * s) for k, s in ((3, h), (2, h / 2), (1, h / 4)))
    r1, r2 = (4 * d2 - d1) / 3, (4 * d3 - d2) / 3
    lam = np.linalg.norm(D, 2) ** 2 / prob.N
    rho = (h * lam) ** 2
    noise = np.linalg.norm(D, 2) * 10 * (rtol * np.max(np.abs(run.w)) + atol) / h
    tol = 16 / 15 * (1 + rho) * np.abs(r1 - r2) + 13 * noise
    err = np.abs(r1 - v)
    grad_report("output_velocity vs d/dt outputs along the flow (|err| / bound)", float(np.max(err / tol)))
    assert np.all(err <= tol)
    # the comparison has teeth: the plain quotient's error is the O(h^2) truncation (it shrinks by 4 when h halves),
    # and the tolerance is a small fraction of it
    e1, e2 = np.max(np.abs(d1 - v)), np.max(np.abs(d2 - v))
    assert abs(e1 / e2 - 4) <= 16 * rho + 0.01 and np.max(tol) < 0.05 * e1
    # the flow's velocity is the parameter velocity mapped by D
    theta_dot = -prob.loss_grad(run.w[4])[1]
    np.testing.assert_allclose(D @ theta_dot, v, rtol=0, atol=1e-12 * np.max(np.abs(v)))


@pytest.mark.parametrize("N", [1, 3, 10])
def test_comparison_model(N, grad_report):
    rng = np.random.default_rng(N)
    x0, y = rng.normal(size=4), rng.normal(size=4)
    s = np.linspace(0.0, 5.0 * N, 26)
    x = params.comparison_model(x0, y, s, N)
    assert x.shape == (26, 4)
    scale = np.max(np.abs(x0)) + np.max(np.abs(y))
    assert np.max(np.abs(x[0] - x0)) <= 2 * EPS * scale  # y + (x0 - y): two roundings
    # the ODE x' = -(x - y)/N, solved numerically
    sol = solve_ivp(lambda _, z: -(z - y) / N, (0.0, s[-1]), x0, method="DOP853", t_eval=s, rtol=1e-11, atol=1e-13)
    assert sol.success
    err = np.max(np.abs(x - sol.y.T))
    grad_report("comparison_model vs solve_ivp (rtol 1e-11)", err / scale)
    assert err <= 1e-9 * scale  # a 1e-11 local tolerance on a contracting linear system, over <= 100 steps
    # the derivative: central difference in s, truncation (h^2/6) |x'''| = (h^2/6) |x - y| / N^3, round-off 4 EPS / h
    h = 1e-3 * N
    xp, xm = params.comparison_model(x0, y, s + h, N), params.comparison_model(x0, y, s - h, N)
    fd = (xp - xm) / (2 * h)
    tol = h**2 / 6 * np.abs(x - y) * np.exp(h / N) / N**3 + 4 * EPS * scale / h
    assert np.all(np.abs(fd + (x - y) / N) <= tol)
    # |x - y| decays like exp(-s/N) and x tends to y
    np.testing.assert_allclose(np.linalg.norm(x - y, axis=1), np.exp(-s / N) * np.linalg.norm(x0 - y), rtol=1e-14,
                               atol=4 * EPS * scale)
    assert np.array_equal(params.comparison_model(x0, y, [1e3 * N], N)[0], y)


# ---------------------------------------------------------------------------------------------------------
# Stationarity report
# ---------------------------------------------------------------------------------------------------------


def _check_report(prob, theta, grad_report):
    rep = params.stationarity_report(prob, theta)
    assert isinstance(rep, params.Stationarity)
    D = prob.jacobian(theta)
    r = prob.outputs(theta) - prob.y
    N, QN, K = prob.N, D.shape[0], D.shape[1]
    C, g = prob.loss_grad(theta)
    assert abs(rep.cost - C) <= 2 * (QN + 2) * EPS * C
    P = params.range_projector(D)
    pr = P @ r
    U, sv, _ = np.linalg.svd(D, full_matrices=False)
    rank = params.numerical_rank(D)
    kappa = sv[0] / sv[rank - 1]
    # the projector is fixed by D to within EPS |D| / sigma_min^+ (a perturbation of range(D)), the products add QN EPS
    p_err = (8 * max(QN, K) * EPS * kappa + 2 * QN * EPS) * np.linalg.norm(r)
    assert abs(rep.p_residual - np.linalg.norm(pr)) <= p_err
    # Pythagoras: C = |P r|^2 / 2N + |P_perp r|^2 / 2N; the subtraction C - perp_cost loses up to EPS C
    identity = float(pr @ pr) / (2 * N)
    tol = (4 * QN * EPS + 4 * EPS) * C + 2 * p_err * np.linalg.norm(r) / (2 * N)
    grad_report("stationarity identity_residual vs |P r|^2/2N (|err| / bound)", abs(rep.identity_residual - identity) / tol)
    assert abs(rep.identity_residual - identity) <= tol
    assert abs(rep.perp_cost - float((r - pr) @ (r - pr)) / (2 * N)) <= tol
    assert rep.perp_cost >= 0 and rep.identity_residual >= -tol
    # grad_norm = |grad C| (back-propagation), to the round-off of the two routes
    n_terms = QN + sum(prob.sizes) + 4 * len(prob.sizes)
    g_err = 4 * n_terms * EPS * np.linalg.norm(np.abs(D).T @ (np.abs(r) + _forward_error(theta, prob.sizes, prob.X,
                                                                                         prob.beta))) / N
    assert abs(rep.grad_norm - np.linalg.norm(g)) <= g_err
    # |P r| <= N |grad C| / sigma_min^+ : P r lies in the span of the kept left singular vectors, on which
    # |D^T u| >= sigma_min^+ |u|, and D^T r = D^T P r (+ the dropped singular directions, which only add)
    lhs = rep.p_residual
    rhs = N * rep.grad_norm / sv[rank - 1]
    assert lhs <= rhs * (1 + 8 * max(QN, K) * EPS * kappa) + p_err
    assert params.stationarity_report(prob, theta) == rep  # same input, same bits
    return rep, rank


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("sizes,N", [((2, 3, 1), 12), ((2, 3, 1), 3), ((3, 4, 2), 5), ((2, 3, 3, 1), 20), ((1, 2), 6)])
def test_stationarity_report(sizes, N, beta, grad_report):
    theta = params.init(sizes, 40)
    X, Y = params.generic_data(N, sizes[0], sizes[-1], 41)
    prob = params.FCProblem(sizes, X, Y, beta)
    rep, rank = _check_report(prob, theta, grad_report)
    # away from stationarity the range part of the residual is a real fraction of it
    assert rep.p_residual > 1e-3 * np.sqrt(2 * N * rep.cost)
    if rank == prob.y.size:  # full row rank: P = I, all of the cost is in the range part
        assert rep.perp_cost <= 1e-20 + 64 * EPS * rep.cost


def test_stationarity_report_at_the_least_squares_minimum(grad_report):
    """No hidden layer: D = [x_j^T, 1] per output is constant, the minimiser is least squares and there P r = 0,
    grad C = 0 and the whole cost is the P_perp part."""
    M, Q, N = 3, 2, 9
    X, Y = params.generic_data(N, M, Q, 50)
    prob = params.FCProblem((M, Q), X, Y)
    A = np.hstack([X, np.ones((N, 1))])
    coef = np.linalg.lstsq(A, Y, rcond=None)[0]  # (M + 1, Q)
    theta = np.concatenate([coef[:M].T.ravel(), coef[M]])
    rep, rank = _check_report(prob, theta, grad_report)
    assert rank == Q * (M + 1)
    scale = np.linalg.cond(A) * EPS * np.linalg.norm(Y) * N
    assert rep.p_residual <= scale and rep.grad_norm <= scale
    assert rep.cost > 0.1 and abs(rep.perp_cost - rep.cost) <= 4 * N * Q * EPS * rep.cost + scale**2
    # a move along range(D) costs: the report at another point has a non-zero range part
    assert params.stationarity_report(prob, theta + 0.1).p_residual > 0.1


def test_stationarity_report_with_clustered_labels(grad_report):
    """Clustered inputs sharing labels (chapter 5, section 6), the report stays consistent."""
    sizes = (2, 6, 1)
    X, Y = params.clustered_data(12, 2, 1, 3, 0, spread=0.05)
    prob = params.FCProblem(sizes, X, Y, beta=3.0)
    _check_report(prob, params.init(sizes, 1), grad_report)


def test_stationarity_rank_is_the_rank_of_its_projector():
    """Nearly repeated inputs (spread 1e-12) give singular values of D near 1e-12 sigma_max: numerical_rank (and P)
    drop them (np.linalg.matrix_rank would keep them); the report's rank is that of the projector it reports on."""
    sizes = (2, 6, 1)
    X, Y = params.clustered_data(8, 2, 1, 2, 0, spread=1e-12)
    prob = params.FCProblem(sizes, X, Y, beta=3.0)
    theta = params.init(sizes, 1)
    D = prob.jacobian(theta)
    rep = params.stationarity_report(prob, theta)
    assert rep.rank == params.numerical_rank(D) == round(np.trace(params.range_projector(D)))


# ---------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------


def test_generic_data():
    X, Y = params.generic_data(7, 3, 2, 5)
    assert X.shape == (7, 3) and Y.shape == (7, 2)
    X2, Y2 = params.generic_data(7, 3, 2, 5)
    assert np.array_equal(X, X2) and np.array_equal(Y, Y2)
    X3, Y3 = params.generic_data(7, 3, 2, np.random.default_rng(5))
    assert np.array_equal(X, X3) and np.array_equal(Y, Y3)
    X4, _ = params.generic_data(7, 3, 2, 6)
    assert not np.array_equal(X, X4)
    # independent entries: no two inputs or targets coincide
    assert len({tuple(row) for row in X}) == 7 and len(set(Y.ravel())) == Y.size


@pytest.mark.parametrize("N,clusters", [(10, 3), (6, 6), (5, 1), (12, 4)])
def test_clustered_data(N, clusters):
    M, Q, spread = 3, 2, 0.05
    X, Y = params.clustered_data(N, M, Q, clusters, 9, spread=spread)
    assert X.shape == (N, M) and Y.shape == (N, Q)
    X2, Y2 = params.clustered_data(N, M, Q, clusters, 9, spread=spread)
    assert np.array_equal(X, X2) and np.array_equal(Y, Y2)
    # round-robin: input j and input j + clusters share the (exact) label; different clusters differ
    for j in range(N - clusters):
        assert np.array_equal(Y[j], Y[j + clusters])
    assert len({tuple(Y[j]) for j in range(min(N, clusters))}) == clusters
    # inputs of a cluster are within a few spreads of each other (|difference| ~ spread sqrt(2) N(0, 1) entrywise)
    for j in range(N - clusters):
        assert 0 < np.max(np.abs(X[j] - X[j + clusters])) <= 8 * spread * np.sqrt(2)
    # spread 0: exactly repeated inputs, as many distinct ones as clusters, labels as before
    X0, Y0 = params.clustered_data(N, M, Q, clusters, 9, spread=0.0)
    assert np.array_equal(Y0, Y)
    for j in range(N - clusters):
        assert np.array_equal(X0[j], X0[j + clusters])
    assert len({tuple(row) for row in X0}) == clusters
    # spread 0 and spread > 0 share the centres: the noisy inputs are the centres plus spread * noise
    assert np.max(np.abs(X - X0)) <= 8 * spread


# ---------------------------------------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------------------------------------

TH = params.init((2, 3, 1), 0)
X_OK, Y_OK = params.generic_data(4, 2, 1, 0)
PROB = params.FCProblem((2, 3, 1), X_OK, Y_OK)
D_OK = np.ones((3, 5))


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda: params.parameter_count((3,)), "sizes"),
        (lambda: params.parameter_count(()), "sizes"),
        (lambda: params.parameter_count((2, 0, 1)), "sizes"),
        (lambda: params.parameter_count((0, 1)), "sizes"),
        (lambda: params.parameter_count((2, 1.5)), "sizes"),
        (lambda: params.init((2,), 0), "sizes"),
        (lambda: params.init((2, 0), 0), "sizes"),
        (lambda: params.unpack(TH, (2, 3, 0)), "sizes"),
        (lambda: params.jacobian(TH, (2,), X_OK), "sizes"),
        (lambda: params.FCProblem((2, 0, 1), X_OK, Y_OK), "sizes"),
        (lambda: params.FCProblem((1,), X_OK, Y_OK), "sizes"),
        (lambda: params.unpack(TH[:-1], (2, 3, 1)), "theta"),
        (lambda: params.outputs(np.append(TH, 0.0), (2, 3, 1), X_OK), "theta"),
        (lambda: params.jacobian(TH.reshape(1, -1), (2, 3, 1), X_OK), "theta"),
        (lambda: params.jacobian(np.full_like(TH, np.nan), (2, 3, 1), X_OK), "theta"),
        (lambda: PROB.loss_grad(TH[:5]), "theta"),
        (lambda: params.stationarity_report(PROB, TH[:5]), "theta"),
        (lambda: params.outputs(TH, (2, 3, 1), np.ones((4, 3))), "X"),
        (lambda: params.jacobian(TH, (2, 3, 1), np.ones((4, 1))), "X"),
        (lambda: params.jacobian(TH, (2, 3, 1), np.ones(2)), "X"),
        (lambda: params.FCProblem((2, 3, 1), np.ones((4, 3)), Y_OK), "X"),
        (lambda: params.FCProblem((2, 3, 1), X_OK, np.ones((3, 1))), "Y"),
        (lambda: params.FCProblem((2, 3, 1), X_OK, np.ones((4, 2))), "Y"),
        (lambda: params.FCProblem((2, 3, 1), X_OK, np.ones(4)), "Y"),
        (lambda: params.FCProblem((2, 3, 1), X_OK, Y_OK, beta=0.0), "beta"),
        (lambda: params.FCProblem((2, 3, 1), X_OK, Y_OK, beta=-1.0), "beta"),
        (lambda: params.outputs(TH, (2, 3, 1), X_OK, beta=0.0), "beta"),
        (lambda: params.jacobian(TH, (2, 3, 1), X_OK, beta=-2.0), "beta"),
        (lambda: params.jacobian(TH, (2, 3, 1), X_OK, beta=np.nan), "beta"),
        (lambda: params.jacobian(TH, (2, 3, 1), X_OK, beta=np.inf), "beta"),
        (lambda: params.jacobian(TH, (2, 3, 1), X_OK, beta="3"), "beta"),
        (lambda: params.init((2, 3, 1), 0, bias_scale=-0.1), "bias_scale"),
        (lambda: params.init((2, 3, 1), -1), "seed"),
        (lambda: params.clustered_data(4, 2, 1, 5, 0), "clusters"),
        (lambda: params.clustered_data(4, 2, 1, 0, 0), "clusters"),
        (lambda: params.clustered_data(4, 2, 1, 2, 0, spread=-0.1), "spread"),
        (lambda: params.clustered_data(4, 2, 1, 2, 0, spread=np.nan), "spread"),
        (lambda: params.clustered_data(0, 2, 1, 1, 0), "N"),
        (lambda: params.clustered_data(4, 0, 1, 1, 0), "M"),
        (lambda: params.clustered_data(4, 2, 0, 1, 0), "Q"),
        (lambda: params.generic_data(0, 2, 1, 0), "N"),
        (lambda: params.generic_data(-3, 2, 1, 0), "N"),
        (lambda: params.generic_data(2.0, 2, 1, 0), "N"),
        (lambda: params.generic_data(3, 0, 1, 0), "M"),
        (lambda: params.generic_data(3, 2, 0, 0), "Q"),
        (lambda: params.generic_data(3, 2, 1, 0.5), "seed"),
        (lambda: params.output_velocity(D_OK, np.zeros(3), np.zeros(3), 0), "N"),
        (lambda: params.output_velocity(D_OK, np.zeros(3), np.zeros(3), 1.5), "N"),
        (lambda: params.output_velocity(D_OK, np.zeros(5), np.zeros(3), 2), "x"),
        (lambda: params.output_velocity(D_OK, np.zeros(3), np.zeros(4), 2), "y"),
        (lambda: params.output_velocity(np.ones(3), np.zeros(3), np.zeros(3), 2), "D"),
        (lambda: params.comparison_model(np.zeros(3), np.zeros(3), [0.0, 1.0], 0), "N"),
        (lambda: params.comparison_model(np.zeros((3, 1)), np.zeros(3), [0.0], 2), "x0"),
        (lambda: params.comparison_model(np.zeros(3), np.zeros(2), [0.0], 2), "y"),
        (lambda: params.comparison_model(np.zeros(3), np.zeros(3), 1.0, 2), "s"),
        (lambda: params.numerical_rank(np.ones(3)), "D"),
        (lambda: params.range_projector(np.full((2, 2), np.inf)), "D"),
        (lambda: params.stationarity_report("not a problem", TH), "problem"),
        (lambda: params.stationarity_report(None, TH), "problem"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{re.escape(name)}(\[\d+\])? "):
        call()


def test_empty_inputs_and_bad_rtol_are_rejected():
    sizes = (2, 3, 1)
    theta = params.init(sizes, 0)
    for call in (lambda: params.outputs(theta, sizes, np.zeros((0, 2))),
                 lambda: params.jacobian(theta, sizes, np.zeros((0, 2))),
                 lambda: params.FCProblem(sizes, np.zeros((0, 2)), np.zeros((0, 1)))):
        with pytest.raises(ValueError, match="X"):
            call()
    D = np.eye(3)
    for call in (lambda: params.numerical_rank(D, rtol=-1.0), lambda: params.range_projector(D, rtol=2.0)):
        with pytest.raises(ValueError, match="rtol"):
            call()


# --- training (fit) ----------------------------------------------------------------------------------------------


def _small_problem(W=2, beta=None, seed=100):
    X, Y = params.generic_data(6, 3, 6, seed)
    return params.FCProblem((3, W, 6), X, Y, beta=beta)


def test_fit_is_plain_gradient_descent_and_deterministic():
    prob = _small_problem()
    theta0 = params.init((3, 2, 6), 1)
    f = params.fit(prob, theta0, 200, records=5)
    theta = theta0.copy()
    for _ in range(200):
        theta = theta - f.eta * prob.loss_grad(theta)[1]
    np.testing.assert_array_equal(f.gd_theta, theta)
    assert f.k[0] == 0 and f.k[-1] == 200 and f.cost[0] == prob.loss_grad(theta0)[0]
    assert np.all(np.diff(f.cost) <= 0)  # a step below 2 / lambda_max of the Gauss-Newton matrix: monotone here
    again = params.fit(prob, theta0, 200, records=5)
    assert all(np.array_equal(a, b) for a, b in zip(f, again, strict=True))
    assert f.eta == pytest.approx(params.gd_step_size(prob, theta0))


def test_fit_reaches_a_stationary_point_in_the_underparametrized_setting():
    """N = 6 inputs, Q = 6 outputs, W = 2 ReLU units: K = 26 < QN = 36. Gradient descent converges to an interior
    stationary point, where P(x - y) = 0 and the cost is |P_perp (x - y)|^2 / (2N) > 0 (chapter 5, Theorem 1.5)."""
    prob = _small_problem()
    assert prob.K < prob.y.size
    f = params.fit(prob, params.init((3, 2, 6), 1), 20_000, records=3)
    rep = params.stationarity_report(prob, f.gd_theta)
    assert rep.grad_norm < 1e-10 and rep.p_residual < 1e-9
    assert rep.cost > 0.1 and abs(rep.identity_residual) < 1e-15
    assert rep.rank <= 9 * 2 + 6 < prob.K  # the ReLU homogeneity bound W (M + Q) + Q


def test_fit_polish_never_increases_the_cost_and_reaches_zero_when_overparametrized():
    prob = _small_problem(W=6, beta=3.0)
    f = params.fit(prob, params.init((3, 6, 6), 0), 500, polish=True)
    assert f.final_cost <= f.gd_cost and f.final_cost < 1e-20
    assert params.stationarity_report(prob, f.theta).rank == prob.y.size


def test_fit_stops_on_divergence_without_warnings():
    import warnings

    prob = _small_problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = params.fit(prob, params.init((3, 2, 6), 1), 500, eta=1e3, polish=True)
    assert f.diverged_at > 0 and f.diverged and np.all(np.isfinite(f.cost)) and f.k[-1] < f.diverged_at
    assert np.isnan(f.gd_cost) and np.isnan(f.final_cost)  # no polish after a divergence (gdlab.runs)


@pytest.mark.parametrize("call,name", [
    (lambda p: params.fit(p, np.zeros(3), 10), "theta0"),
    (lambda p: params.fit(p, params.init((3, 2, 6), 0), -1), "steps"),
    (lambda p: params.fit(p, params.init((3, 2, 6), 0), 10, eta=0.0), "eta"),
    (lambda p: params.fit(p, params.init((3, 2, 6), 0), 10, records=1), "records"),
    (lambda p: params.fit("not a problem", params.init((3, 2, 6), 0), 10), "problem"),
    (lambda p: params.gd_step_size(p, params.init((3, 2, 6), 0), scale=3.0), "scale"),
])
def test_fit_bad_arguments(call, name):
    with pytest.raises(ValueError, match=name):
        call(_small_problem())


@pytest.mark.parametrize("fn", [params.activation, params.activation_slope])
def test_activation_rejects_a_bad_sharpness(fn):
    for beta in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="beta"):
            fn(np.zeros(3), beta)


# --- many runs at once (the transition experiment) -------------------------------------------------------------


def test_fit_one_hidden_batch_is_fit_run_by_run():
    """Each run of the batch is the run of :func:`params.fit` (no polish) from the same start, up to round-off; a
    narrower network padded with zero units is not changed by the padding."""
    X, Y = params.generic_data(5, 3, 6, 11)
    widths = [1, 3, 4, 2]
    thetas = [params.init((3, w, 6), 10 + w) for w in widths]
    batch = params.fit_one_hidden_batch(X, Y, thetas, widths, 300)
    for b, w in enumerate(widths):
        prob = params.FCProblem((3, w, 6), X, Y)
        single = params.fit(prob, thetas[b], 300, records=2)
        assert batch.eta[b] == single.eta
        np.testing.assert_allclose(batch.theta[b], single.gd_theta, rtol=0, atol=1e-10)
        assert batch.cost[b] == pytest.approx(single.gd_cost, rel=1e-9, abs=1e-25)
        assert batch.grad_norm[b] == pytest.approx(np.linalg.norm(prob.loss_grad(single.gd_theta)[1]), rel=1e-6,
                                                   abs=1e-14)
    assert np.all(batch.diverged_at == -1)


def test_fit_one_hidden_batch_stops_diverging_runs_only():
    import warnings

    X, Y = params.generic_data(5, 3, 6, 11)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batch = params.fit_one_hidden_batch(X, Y, [params.init((3, 2, 6), 0)] * 2, [2, 2], 100, scale=2.0)
    assert np.all(np.isfinite(batch.cost))
    with pytest.raises(ValueError, match="widths"):
        params.fit_one_hidden_batch(X, Y, [params.init((3, 2, 6), 0)], [2, 3], 10)
    with pytest.raises(ValueError, match="steps"):
        params.fit_one_hidden_batch(X, Y, [params.init((3, 2, 6), 0)], [2], -1)


def test_wilson_interval():
    low, high = params.wilson_interval(np.array([0, 10, 20]), 20)
    np.testing.assert_allclose(low, [0.0, 0.2993, 0.8389], atol=1e-4)
    np.testing.assert_allclose(high, [0.1611, 0.7007, 1.0], atol=1e-4)
    for bad, name in ((lambda: params.wilson_interval(21, 20), "successes"),
                      (lambda: params.wilson_interval(0.5, 20), "successes"),
                      (lambda: params.wilson_interval(1, 0), "trials")):
        with pytest.raises(ValueError, match=name):
            bad()


def test_transition_verdicts_do_not_move_with_the_last_bits():
    """The chapter's robustness claim on one N: perturbing every initial weight by a relative 1e-10 moves no final
    cost across the threshold (plain GD is not chaotic here; the cost changes by far less than a decade)."""
    X, Y = params.generic_data(4, 3, 6, 204)
    widths = [w for w in (3, 4) for _ in range(20)]
    thetas = [params.init((3, w, 6), d) for w, d in zip(widths, list(range(20)) * 2, strict=True)]
    rng = np.random.default_rng(0)
    nudged = [t * (1.0 + 1e-10 * rng.normal(size=t.shape)) for t in thetas]
    a = params.fit_one_hidden_batch(X, Y, thetas, widths, 4000).cost
    b = params.fit_one_hidden_batch(X, Y, nudged, widths, 4000).cost
    big = a > 1e-20  # above round-off, the costs agree to many digits
    np.testing.assert_allclose(a[big], b[big], rtol=1e-4)
    assert np.array_equal(a < 1e-7, b < 1e-7) and np.abs(np.log10(a / 1e-7)).min() > 0.1


def test_transition_cells_count_and_the_count_can_fail():
    """Power test of the transition check: the count of zero-cost draws is 0 wherever K < QN; a wrong variant that
    counts the cost relative to the threshold the wrong way (C > tau) reports zero cost there and fails it."""
    tr = params.transition_experiment((4,), (1, 4), 5, 1000)
    cells = params.transition_cells(tr, 1e-7)
    assert cells.N.tolist() == [4, 4] and cells.W.tolist() == [1, 4] and cells.draws.tolist() == [5, 5]
    assert cells.K.tolist() == [16, 46] and cells.rank_bound.tolist() == [14, 24]
    assert cells.fitted[0] == 0  # K < QN: no draw reaches zero cost
    assert np.all(cells.low <= cells.fitted / cells.draws) and np.all(cells.fitted / cells.draws <= cells.high)
    wrong = tr._replace(cost=-tr.cost)  # every cost "below" the threshold
    assert params.transition_cells(wrong, 1e-7).fitted[0] != 0
    with pytest.raises(ValueError, match="result"):
        params.transition_cells("runs", 1e-7)
    with pytest.raises(ValueError, match="n_values"):
        params.transition_experiment((), (1,), 2, 10)


@pytest.mark.parametrize("M,W,Q,N", [(3, 4, 6, 6), (1, 4, 6, 6), (2, 3, 2, 9), (5, 6, 6, 12), (3, 2, 6, 6),
                                     (3, 8, 6, 24), (1, 6, 1, 12), (2, 6, 6, 9), (3, 1, 6, 4)])
def test_one_hidden_rank_bound_holds_and_its_overlap_term_is_needed(M, W, Q, N):
    """rank D never exceeds the bound over 30 initialisations (biases of scale 1, so that patterns vary); the wrong
    variant without the overlap of output-layer and hidden columns (the homogeneity bound alone, K - W) is too
    loose where N - W - 1 < M: the chapter's example (3, 4, 6, 6) has rank 34 < 36 = min(QN, K - W)."""
    X, Y = params.generic_data(N, M, Q, N + 10 * M)
    prob = params.FCProblem((M, W, Q), X, Y)
    ranks = [params.numerical_rank(prob.jacobian(params.init((M, W, Q), s, bias_scale=1.0))) for s in range(30)]
    bound = params.one_hidden_rank_bound(M, W, Q, N)
    assert max(ranks) <= bound <= min(Q * N, prob.K - W)
    if (M, W, Q, N) == (3, 4, 6, 6):
        assert max(ranks) == bound == 34 < min(Q * N, prob.K - W)
    with pytest.raises(ValueError, match="W"):
        params.one_hidden_rank_bound(M, 0, Q, N)
