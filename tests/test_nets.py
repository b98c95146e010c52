"""nets: every hand-derived gradient against central finite differences, packing, determinism, bad inputs.

Two finite-difference references are used: an independent central difference written here (``_central_diff``)
and :func:`gdlab.numerics.fd_grad` (itself checked on known gradients in ``test_numerics.py``). ReLU losses are
only piecewise smooth: an instance is used only if every pre-activation is at least ``1e-4`` away from its kink,
far more than the ``h |x| ~ 1e-6`` a finite-difference step can move it, so the difference quotient never
straddles a kink.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from gdlab import nets
from gdlab.numerics import fd_grad, relative_error
from hypothesis import assume, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None)
SEEDS = st.integers(0, 2**32 - 1)
H = 1e-6
TOL = 1e-6
KINK_MARGIN = 1e-4


def _central_diff(f, w, h=H):
    """Independent central differences, all coordinates at once: (f(w + h e_i) - f(w - h e_i)) / (2h)."""
    E = h * np.eye(w.size)
    return np.array([(f(w + e) - f(w - e)) / (2 * h) for e in E])


def _check(name, exact, f, w, grad_report):
    """Compare ``exact`` with both finite-difference references; record and assert the relative error."""
    for ref_name, ref in (("own central diff", _central_diff(f, w)), ("numerics.fd_grad", fd_grad(f, w, h=H))):
        err = relative_error(exact, ref)
        grad_report(f"{name} vs {ref_name}", err)
        assert err < TOL, f"{name}: relative error {err:.3e} against {ref_name} (tolerance {TOL:g})"


def _mlp_instance(m, k, n, p, seed):
    x, q = nets.mlp_data(m, n, seed, p=p)
    M, N = nets.mlp_init(m, k, n, seed + 1)
    assume(np.min(np.abs(M @ x)) > KINK_MARGIN)
    return M, N, x, q


# ---------------------------------------------------------------------------------------------------------
# Two-layer MLP
# ---------------------------------------------------------------------------------------------------------


@SETTINGS
@given(m=st.integers(1, 5), k=st.integers(1, 8), n=st.integers(1, 4), p=st.integers(1, 4), seed=SEEDS)
def test_mlp_grad_matches_finite_differences(m, k, n, p, seed, grad_report):
    M, N, x, q = _mlp_instance(m, k, n, p, seed)
    g = nets.mlp_grad(M, N, x, q)
    assert g.dM.shape == (k, m) and g.dN.shape == (n, k)
    assert g.loss == pytest.approx(nets.mlp_loss(M, N, x, q), rel=1e-14)
    _check("mlp_grad M^", g.dM.ravel(), lambda v: nets.mlp_loss(v.reshape(k, m), N, x, q), M.ravel(), grad_report)
    _check("mlp_grad N^", g.dN.ravel(), lambda v: nets.mlp_loss(M, v.reshape(n, k), x, q), N.ravel(), grad_report)


@SETTINGS
@given(m=st.integers(1, 5), k=st.integers(1, 8), n=st.integers(1, 4), p=st.integers(1, 4), seed=SEEDS)
def test_mlp_problem_loss_grad_flat(m, k, n, p, seed, grad_report):
    M, N, x, q = _mlp_instance(m, k, n, p, seed)
    prob = nets.MLPProblem(x, q, k)
    assert prob.shapes == (m, k, n) and prob.dim == k * m + n * k
    w = nets.mlp_pack(M, N)
    f, g = prob.loss_grad(w)
    assert g.shape == (prob.dim,)
    assert f == prob.loss(w) == nets.mlp_loss(M, N, x, q)
    _check("MLPProblem.loss_grad", g, prob.loss, w, grad_report)


def test_mlp_hats_match_the_formulas():
    """The backward rules of chapter 3 written out for one data point: M^ = a^ x^T, N^ = y^ b^T, |y^|^2 = 2 f."""
    M, N = nets.mlp_init(3, 5, 2, 0)
    x, q = nets.mlp_data(3, 2, 1)
    fw = nets.mlp_forward(M, N, x)
    y_hat = fw.y - q
    b_hat = N.T @ y_hat
    a_hat = np.where(fw.a > 0, b_hat, 0.0)
    g = nets.mlp_grad(M, N, x, q)
    assert np.allclose(g.dM, a_hat @ x.T, rtol=1e-14, atol=0)
    assert np.allclose(g.dN, y_hat @ fw.b.T, rtol=1e-14, atol=0)
    assert np.sum(y_hat**2) == pytest.approx(2 * g.loss, rel=1e-14)
    # a 1-D x / q is the same as a single column
    assert nets.mlp_loss(M, N, x[:, 0], q[:, 0]) == g.loss


def test_mlp_dead_network_has_zero_gradient():
    """With every hidden unit switched off, y = 0, f = |q|^2 / 2 and the gradient vanishes (a bad critical point)."""
    M = -np.ones((3, 2))
    N = np.ones((1, 3))
    x, q = np.array([1.0, 1.0]), np.array([2.0])
    g = nets.mlp_grad(M, N, x, q)
    assert g.loss == 2.0
    assert not g.dM.any() and not g.dN.any()


def test_mlp_init_and_data_statistics():
    m, k, n = 4, 4000, 3
    M, N = nets.mlp_init(m, k, n, 0)
    assert M.shape == (k, m) and N.shape == (n, k)
    assert np.var(M) == pytest.approx(2 / m, rel=0.05)
    assert np.var(N) == pytest.approx(2 / k, rel=0.1)
    x, q = nets.mlp_data(m, n, 0, p=5)
    assert x.shape == (m, 5) and q.shape == (n, 5)
    assert np.allclose(np.sum(x**2, axis=0), m, rtol=1e-14)
    # He init: E|b|^2 = k for |x|^2 = m
    b = nets.mlp_forward(M, N, x).b
    assert np.mean(np.sum(b**2, axis=0)) == pytest.approx(k, rel=0.1)


# ---------------------------------------------------------------------------------------------------------
# The Du et al. net
# ---------------------------------------------------------------------------------------------------------


def _du_instance(m, d, n, seed):
    W, a = nets.du_init(m, d, seed)
    rng = np.random.default_rng(seed + 1)
    X = rng.normal(size=(n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = rng.normal(size=n)
    assume(np.min(np.abs(X @ W.T)) > KINK_MARGIN)
    return W, a, X, y


@SETTINGS
@given(m=st.integers(1, 10), d=st.integers(1, 5), n=st.integers(1, 5), seed=SEEDS)
def test_du_grad_matches_finite_differences(m, d, n, seed, grad_report):
    W, a, X, y = _du_instance(m, d, n, seed)
    loss, dW = nets.du_grad(W, a, X, y)
    assert dW.shape == (m, d)
    assert loss == pytest.approx(nets.du_loss(W, a, X, y), rel=1e-14)
    u = nets.du_forward(W, a, X)
    assert loss == pytest.approx(0.5 * np.sum((u - y) ** 2), rel=1e-14)
    _check("du_grad", dW.ravel(), lambda v: nets.du_loss(v.reshape(m, d), a, X, y), W.ravel(), grad_report)

    prob = nets.DuProblem(X, y, a)
    assert prob.dim == m * d
    f, g = prob.loss_grad(W.ravel())
    assert f == loss and np.array_equal(g, dW.ravel())
    _check("DuProblem.loss_grad", g, lambda v: prob.loss_grad(v)[0], W.ravel(), grad_report)


def test_du_forward_formula():
    """u_i = m^{-1/2} sum_r a_r relu(w_r^T x_i), written as a loop over neurons for reference."""
    W, a = nets.du_init(7, 3, 5)
    X = np.random.default_rng(0).normal(size=(4, 3))
    ref = np.array([sum(a[r] * max(W[r] @ xi, 0.0) for r in range(7)) / np.sqrt(7) for xi in X])
    assert np.allclose(nets.du_forward(W, a, X), ref, rtol=1e-13, atol=0)
    assert set(np.unique(a)) <= {-1.0, 1.0}


# ---------------------------------------------------------------------------------------------------------
# Deep linear networks
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_layers", [1, 2, 3, 5])
@SETTINGS
@given(data=st.data())
def test_deep_linear_grad_matches_finite_differences(n_layers, data, grad_report):
    dims = data.draw(st.lists(st.integers(1, 4), min_size=n_layers + 1, max_size=n_layers + 1), label="dims")
    p = data.draw(st.integers(1, 5), label="p")
    seed = data.draw(SEEDS, label="seed")
    Ws = nets.deep_linear_init(dims, 1.0, seed)
    rng = np.random.default_rng(seed + 1)
    X, Y = rng.normal(size=(dims[0], p)), rng.normal(size=(dims[-1], p))
    loss, grads = nets.deep_linear_grad(Ws, X, Y)
    assert [G.shape for G in grads] == [W.shape for W in Ws]
    assert loss == pytest.approx(nets.deep_linear_loss(Ws, X, Y), rel=1e-13)

    shapes = [W.shape for W in Ws]
    prob = nets.DeepLinearProblem(X, Y, dims)
    assert prob.shapes == shapes
    w = nets.pack(Ws)
    f, g = prob.loss_grad(w)
    assert f == loss and np.array_equal(g, nets.pack(grads))

    def f_flat(v):
        return nets.deep_linear_loss(nets.unpack(v, shapes), X, Y)

    _check(f"deep_linear_grad (N={n_layers})", g, f_flat, w, grad_report)
    _check(f"DeepLinearProblem.loss_grad (N={n_layers})", g, lambda v: prob.loss_grad(v)[0], w, grad_report)


def test_deep_linear_product_order_and_formula():
    """W = W_N ... W_1 and G_j = (W_N..W_{j+1})^T (W X - Y) X^T (W_{j-1}..W_1)^T, written out for N = 3."""
    Ws = nets.deep_linear_init([2, 3, 4, 5], 1.0, 0)
    W1, W2, W3 = Ws
    assert np.allclose(nets.deep_linear_product(Ws), W3 @ W2 @ W1, rtol=1e-14, atol=1e-15)
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(2, 6)), rng.normal(size=(5, 6))
    E = (W3 @ W2 @ W1 @ X - Y) @ X.T
    _, (G1, G2, G3) = nets.deep_linear_grad(Ws, X, Y)
    assert np.allclose(G1, (W3 @ W2).T @ E, rtol=1e-12, atol=1e-13)
    assert np.allclose(G2, W3.T @ E @ W1.T, rtol=1e-12, atol=1e-13)
    assert np.allclose(G3, E @ (W2 @ W1).T, rtol=1e-12, atol=1e-13)


def test_deep_linear_init_scale():
    Ws = nets.deep_linear_init([400, 300, 2], 0.5, 0)
    assert [W.shape for W in Ws] == [(300, 400), (2, 300)]
    assert np.std(Ws[0]) == pytest.approx(0.5 / np.sqrt(400), rel=0.02)


# ---------------------------------------------------------------------------------------------------------
# Packing
# ---------------------------------------------------------------------------------------------------------


@SETTINGS
@given(shapes=st.lists(st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple), min_size=1, max_size=4),
       seed=SEEDS)
def test_pack_unpack_round_trip(shapes, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=s) for s in shapes]
    w = nets.pack(arrays)
    assert w.ndim == 1 and w.size == sum(int(np.prod(s)) for s in shapes)
    back = nets.unpack(w, shapes)
    assert len(back) == len(arrays)
    for a, b in zip(arrays, back, strict=True):
        assert b.shape == a.shape and np.array_equal(a, b)
    assert np.array_equal(nets.pack(back), w)


@SETTINGS
@given(m=st.integers(1, 5), k=st.integers(1, 5), n=st.integers(1, 5), seed=SEEDS)
def test_mlp_pack_unpack(m, k, n, seed):
    M, N = nets.mlp_init(m, k, n, seed)
    w = nets.mlp_pack(M, N)
    assert np.array_equal(w[: k * m], M.ravel()) and np.array_equal(w[k * m:], N.ravel())
    M2, N2 = nets.mlp_unpack(w, m, k, n)
    assert np.array_equal(M, M2) and np.array_equal(N, N2)
    with pytest.raises(ValueError, match="w must"):
        nets.mlp_unpack(w[:-1], m, k, n)
    with pytest.raises(ValueError, match="w must"):
        nets.mlp_unpack(np.append(w, 0.0), m, k, n)


def test_pack_unpack_bad_inputs():
    with pytest.raises(ValueError, match="arrays"):
        nets.pack([])
    with pytest.raises(ValueError, match="w must"):
        nets.unpack(np.zeros(5), [(2, 2)])
    with pytest.raises(ValueError, match="w must"):
        nets.unpack(np.zeros((2, 2)), [(2, 2)])
    prob = nets.MLPProblem(np.ones(2), np.ones(1), 3)
    with pytest.raises(ValueError, match="w must"):
        prob.loss_grad(np.zeros(prob.dim + 1))


# ---------------------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------------------


def test_same_seed_same_bits():
    for a, b in [
        (nets.mlp_init(3, 5, 2, 7), nets.mlp_init(3, 5, 2, 7)),
        (nets.mlp_data(3, 2, 7, p=4), nets.mlp_data(3, 2, 7, p=4)),
        (nets.du_init(9, 3, 7), nets.du_init(9, 3, 7)),
        (nets.deep_linear_init([2, 3, 4], 0.7, 7), nets.deep_linear_init([2, 3, 4], 0.7, 7)),
    ]:
        assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    # a Generator is accepted, and a different seed gives different numbers
    assert np.array_equal(nets.mlp_init(3, 5, 2, np.random.default_rng(7))[0], nets.mlp_init(3, 5, 2, 7)[0])
    assert not np.array_equal(nets.mlp_init(3, 5, 2, 8)[0], nets.mlp_init(3, 5, 2, 7)[0])


# ---------------------------------------------------------------------------------------------------------
# Bad inputs: ValueError naming the argument
# ---------------------------------------------------------------------------------------------------------

M0, N0 = nets.mlp_init(3, 4, 2, 0)
X0, Q0 = nets.mlp_data(3, 2, 0, p=2)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: nets.mlp_loss(M0, N0, np.ones(4), Q0[:, 0]), "x"),  # wrong m
        (lambda: nets.mlp_loss(M0, N0, np.ones((3, 2, 1)), Q0), "x"),
        (lambda: nets.mlp_loss(M0, N0[:, :3], X0, Q0), "N"),  # N incompatible with M
        (lambda: nets.mlp_grad(M0, N0, X0, Q0[:, :1]), "q"),  # q with wrong number of columns
        (lambda: nets.mlp_grad(M0, N0, X0, np.ones((3, 2))), "q"),  # q with wrong number of rows
        (lambda: nets.mlp_grad(M0.ravel(), N0, X0, Q0), "M"),
        (lambda: nets.mlp_forward(M0, N0, np.full(3, np.nan)), "x"),
        (lambda: nets.mlp_forward(np.where(M0 > 0, np.inf, M0), N0, X0), "M"),
        (lambda: nets.mlp_grad(M0, N0, X0, np.full((2, 2), -np.inf)), "q"),
        (lambda: nets.mlp_forward(M0, N0, "abc"), "x"),
        (lambda: nets.mlp_init(0, 4, 2, 0), "m"),
        (lambda: nets.mlp_init(3, -1, 2, 0), "k"),
        (lambda: nets.mlp_init(3, 4, 0, 0), "n"),
        (lambda: nets.mlp_init(3.0, 4, 2, 0), "m"),
        (lambda: nets.mlp_init(True, 4, 2, 0), "m"),
        (lambda: nets.mlp_init(3, 4, 2, -1), "seed"),
        (lambda: nets.mlp_init(3, 4, 2, 1.5), "seed"),
        (lambda: nets.mlp_init(3, 4, 2, "0"), "seed"),
        (lambda: nets.mlp_init(3, 4, 2, True), "seed"),
        (lambda: nets.mlp_data(3, 2, 0, p=0), "p"),
        (lambda: nets.mlp_data(3, 2, -5), "seed"),
        (lambda: nets.MLPProblem(X0, Q0[:, :1], 4), "q"),
        (lambda: nets.MLPProblem(X0, Q0, 0), "k"),
        (lambda: nets.MLPProblem(np.full((3, 2), np.nan), Q0, 4), "x"),
        (lambda: nets.du_init(0, 3, 0), "m"),
        (lambda: nets.du_init(5, -3, 0), "d"),
        (lambda: nets.du_init(5, 3, -1), "seed"),
        (lambda: nets.du_loss(np.ones((5, 3)), np.ones(4), np.ones((2, 3)), np.ones(2)), "a"),
        (lambda: nets.du_loss(np.ones((5, 3)), np.ones(5), np.ones((2, 4)), np.ones(2)), "X"),
        (lambda: nets.du_grad(np.ones((5, 3)), np.ones(5), np.ones((2, 3)), np.ones(3)), "y"),
        (lambda: nets.du_grad(np.full((5, 3), np.nan), np.ones(5), np.ones((2, 3)), np.ones(2)), "W"),
        (lambda: nets.DuProblem(np.ones((2, 3)), np.ones(3), np.ones(5)), "y"),
        (lambda: nets.deep_linear_product([np.ones((3, 2)), np.ones((2, 2))]), re.escape("Ws[1]")),  # chain mismatch
        (lambda: nets.deep_linear_product([]), "Ws"),
        (lambda: nets.deep_linear_loss([np.ones((3, 2))], np.ones((3, 4)), np.ones((3, 4))), "X"),
        (lambda: nets.deep_linear_loss([np.ones((3, 2))], np.ones((2, 4)), np.ones((3, 5))), "Y"),
        (lambda: nets.deep_linear_grad([np.ones((3, 2)), np.full((1, 3), np.inf)], np.ones((2, 4)), np.ones((1, 4))),
         re.escape("Ws[1]")),
        (lambda: nets.deep_linear_init([3], 1.0, 0), "dims"),
        (lambda: nets.deep_linear_init([3, 0, 2], 1.0, 0), re.escape("dims[1]")),
        (lambda: nets.deep_linear_init([3, 2], 0.0, 0), "scale"),
        (lambda: nets.deep_linear_init([3, 2], -1.0, 0), "scale"),
        (lambda: nets.deep_linear_init([3, 2], 1.0, 2.5), "seed"),
        (lambda: nets.DeepLinearProblem(np.ones((3, 4)), np.ones((2, 4)), (2, 2)), "X"),
        (lambda: nets.DeepLinearProblem(np.ones((3, 4)), np.ones((2, 5)), (3, 2)), "Y"),
        (lambda: nets.DeepLinearProblem(np.ones((3, 4)), np.ones((2, 4)), (3, True, 2)), re.escape("dims[1]")),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        call()
