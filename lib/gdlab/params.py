"""Over- and under-parametrization: the output-space flow of a fully connected ReLU network (chapter 5; compute layer).

Notation of :cite:`chen2023nonapprox`: training inputs ``x_j`` in ``R^M`` (``j = 1..N``), hidden ReLU layers of widths
``M_1, ..., M_L``, a linear output layer in ``R^Q``; all weights and biases form ``theta`` in ``R^K`` with
``K = sum_l (M_l M_{l-1} + M_l)`` (the output layer included, ``M_{L+1} = Q``). The outputs on the training set are
stacked into ``x[theta]`` in ``R^{QN}`` (data point by data point: ``x[j Q + q]`` is output ``q`` on input ``j``), the
targets into ``y``, and the cost is ``C = |x - y|^2 / (2N)``.

* :func:`jacobian`: ``D = dx/dtheta`` (QN, K), hand-derived and vectorised over data points and outputs (checked
  against finite differences in ``tests/test_params.py``).
* Gradient flow ``theta' = -(1/N) D^T (x - y)`` moves the outputs by ``x' = -(1/N) D D^T (x - y)``
  (:func:`output_velocity`); the comparison model ``x' = -(x - y)/N`` is solved by :func:`comparison_model`.
* :func:`range_projector`: the orthogonal projector ``P`` onto ``range(D)``; at a stationary point ``P(x - y) = 0`` and
  the cost is ``|P_perp (x - y)|^2 / (2N)`` (:func:`stationarity_report`).
* Data: generic inputs (:func:`generic_data`) and clustered inputs that share labels (:func:`clustered_data`).
* Training: gradient descent with a step below the Gauss-Newton stability limit, optionally finished by a
  least-squares polish with the analytic Jacobian (:func:`fit`).

The activation is ReLU (``beta=None``) or, as in the proof of the paper's Theorem 1.6, a smoothed ReLU
``softplus_beta(z) = log(1 + exp(beta z)) / beta``, within ``log(2) / beta`` of ReLU, whose derivative is Lipschitz.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy.special import expit

from ._checks import as_array, as_float, as_int, as_rng
from .runs import NOT_DIVERGED, divergence_threshold, diverges, record_steps

# --- the network --------------------------------------------------------------------------------------------------


def check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    """Validate layer sizes ``(M, M_1, ..., M_L, Q)``: at least an input and an output size, all >= 1."""
    sizes = tuple(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least the input and output sizes (M, ..., Q); got {sizes!r}")
    return tuple(as_int(f"sizes[{i}]", s) for i, s in enumerate(sizes))


def parameter_count(sizes: Sequence[int]) -> int:
    """``K = sum_l (M_l M_{l-1} + M_l)``: weights and biases of every layer, the linear output layer included."""
    sizes = check_sizes(sizes)
    return sum(m_out * m_in + m_out for m_in, m_out in zip(sizes[:-1], sizes[1:], strict=True))


def unpack(theta, sizes: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split ``theta`` (K,) into ``[(W_1, b_1), ..., (W_{L+1}, b_{L+1})]`` with ``W_l`` (M_l, M_{l-1}), ``b_l`` (M_l,);
    each layer's weights (row-major) come before its biases."""
    sizes = check_sizes(sizes)
    theta = as_array("theta", theta, shape=(parameter_count(sizes),))
    layers, i = [], 0
    for m_in, m_out in zip(sizes[:-1], sizes[1:], strict=True):
        W = theta[i: i + m_out * m_in].reshape(m_out, m_in)
        i += m_out * m_in
        layers.append((W, theta[i: i + m_out]))
        i += m_out
    return layers


def init(sizes: Sequence[int], seed, bias_scale: float = 0.1) -> np.ndarray:
    """He-initialised ``theta`` (K,): ``W_l ~ N(0, 2 / M_{l-1})`` entrywise, biases ``N(0, bias_scale^2)`` (chapter 5)."""
    sizes = check_sizes(sizes)
    bias_scale = as_float("bias_scale", bias_scale, low=0.0, low_open=False)
    rng = as_rng(seed)
    parts = []
    for m_in, m_out in zip(sizes[:-1], sizes[1:], strict=True):
        parts.append(rng.normal(0.0, np.sqrt(2.0 / m_in), size=m_out * m_in))
        parts.append(rng.normal(0.0, bias_scale, size=m_out))
    return np.concatenate(parts)


def check_inputs(X, M: int) -> np.ndarray:
    """Inputs ``X`` (N, M) with ``N >= 1`` rows."""
    X = as_array("X", X, shape=(None, M))
    if X.shape[0] == 0:
        raise ValueError("X must contain at least one input (N >= 1 rows)")
    return X


def check_beta(beta) -> float | None:
    """``None`` (ReLU) or the sharpness ``beta > 0`` of the smoothed ReLU."""
    return None if beta is None else as_float("beta", beta)


def activation(z, beta: float | None):
    """ReLU (``beta=None``) or ``softplus_beta(z) = log(1 + exp(beta z)) / beta`` (stable for large ``|beta z|``)."""
    beta = check_beta(beta)
    return np.maximum(z, 0.0) if beta is None else np.logaddexp(0.0, beta * z) / beta


def activation_slope(z, beta: float | None):
    """The derivative of :func:`activation`: ``1{z > 0}`` (ReLU'(0) taken as 0) or ``sigmoid(beta z)``."""
    beta = check_beta(beta)
    return (z > 0.0).astype(float) if beta is None else expit(beta * z)


def _forward(layers, X, beta):
    """Pre-activations ``z_l`` (N, M_l) of the hidden layers, activations ``h_l`` (``h_0 = X``) and outputs (N, Q)."""
    hs, zs = [X], []
    for W, b in layers[:-1]:
        z = hs[-1] @ W.T + b
        zs.append(z)
        hs.append(activation(z, beta))
    W, b = layers[-1]
    return zs, hs, hs[-1] @ W.T + b


def outputs(theta, sizes: Sequence[int], X, beta: float | None = None) -> np.ndarray:
    """The stacked outputs ``x[theta]`` (QN,) on inputs ``X`` (N, M): ``x[j Q + q]`` is output ``q`` on input ``j``."""
    layers = unpack(theta, sizes)
    X = check_inputs(X, check_sizes(sizes)[0])
    return _forward(layers, X, check_beta(beta))[2].ravel()


def hidden_patterns(theta, sizes: Sequence[int], X) -> list[np.ndarray]:
    """The ReLU activation patterns ``z_l > 0`` (N, M_l) of every hidden layer on inputs ``X`` (N, M) (chapter 5)."""
    layers = unpack(theta, sizes)
    X = check_inputs(X, check_sizes(sizes)[0])
    return [z > 0.0 for z in _forward(layers, X, None)[0]]


def jacobian(theta, sizes: Sequence[int], X, beta: float | None = None) -> np.ndarray:
    """``D = dx/dtheta`` (QN, K) on inputs ``X`` (N, M), column order that of ``theta`` (chapter 5).

    Back-propagation with the QN outputs as a batch: the signal of output ``q`` at input ``j`` is ``e_q`` at the output
    layer and ``delta_l = (W_{l+1}^T delta_{l+1}) * sigma'(z_l)`` below; the row block of layer ``l`` is
    ``delta_l h_{l-1}^T`` (weights) and ``delta_l`` (biases). ReLU'(0) is taken as 0.
    """
    sizes = check_sizes(sizes)
    layers = unpack(theta, sizes)
    X = check_inputs(X, sizes[0])
    beta = check_beta(beta)
    N, Q = X.shape[0], sizes[-1]
    zs, hs, _ = _forward(layers, X, beta)
    delta = np.broadcast_to(np.eye(Q), (N, Q, Q))  # (N, Q rows, M_{L+1} = Q)
    blocks = []
    for ell in range(len(layers) - 1, -1, -1):
        h_prev = hs[ell]  # (N, M_{l-1})
        dW = delta[:, :, :, None] * h_prev[:, None, None, :]  # (N, Q, M_l, M_{l-1})
        blocks.append(np.concatenate([dW.reshape(N, Q, -1), delta], axis=2))
        if ell > 0:
            W = layers[ell][0]
            delta = (delta @ W) * activation_slope(zs[ell - 1], beta)[:, None, :]
    return np.concatenate(blocks[::-1], axis=2).reshape(N * Q, -1)


def one_hidden_rank_bound(M: int, W: int, Q: int, N: int) -> int:
    """An upper bound on ``rank D`` for a one-hidden-layer ReLU network ``(M, W, Q)`` on ``N`` inputs (chapter 5):
    ``min(QN, W (M + Q) + Q, Q min(W + 1, N) + W min(M, max(N - W - 1, 0)))``.

    The output layer's columns of ``D`` span ``R^Q (x) U``, ``U = span(1, h_1, ..., h_W)`` in ``R^N`` (the hidden
    features on the data), of dimension ``<= min(W + 1, N)``. Unit ``r``'s incoming columns span
    ``a_r (x) V_r``, ``V_r`` the restrictions of the affine functions ``w^T x + b`` to the unit's active inputs
    (dimension ``<= M + 1``); ``V_r`` contains ``h_r``, which lies in ``U``, so modulo ``R^Q (x) U`` the unit adds at
    most ``min(M, N - dim U)`` directions. The second term is the homogeneity bound ``K - W``."""
    M, W, Q, N = as_int("M", M), as_int("W", W), as_int("Q", Q), as_int("N", N)
    return min(Q * N, W * (M + Q) + Q, Q * min(W + 1, N) + W * min(M, max(N - W - 1, 0)))


class FCProblem:
    """Chapter 5's learning problem: the network ``sizes`` (activation: ReLU, or the smoothed ReLU of sharpness
    ``beta``) on inputs ``X`` (N, M) with targets ``Y`` (N, Q) and cost ``C = |x - y|^2 / (2N)``.
    ``loss_grad(theta) -> (C, grad C)`` serves :mod:`gdlab.flow` (back-propagation, ``grad C = D^T (x - y) / N``)."""

    def __init__(self, sizes: Sequence[int], X, Y, beta: float | None = None):
        self.sizes = check_sizes(sizes)
        self.beta = check_beta(beta)
        self.X = check_inputs(X, self.sizes[0])
        self.Y = as_array("Y", Y, shape=(self.X.shape[0], self.sizes[-1]))
        self.y = self.Y.ravel()
        self.K = parameter_count(self.sizes)

    @property
    def N(self) -> int:
        """Number of training inputs."""
        return self.X.shape[0]

    def loss_grad(self, theta) -> tuple[float, np.ndarray]:
        """``(C(theta), grad C(theta))`` with ``grad C`` (K,) by back-propagation."""
        layers = unpack(theta, self.sizes)
        zs, hs, out = _forward(layers, self.X, self.beta)
        r = out - self.Y  # (N, Q)
        grads, g = [], r / self.N
        for ell in range(len(layers) - 1, -1, -1):
            grads.append(g.sum(axis=0))
            grads.append((g.T @ hs[ell]).ravel())
            if ell > 0:
                g = (g @ layers[ell][0]) * activation_slope(zs[ell - 1], self.beta)
        return 0.5 * float(np.sum(r * r)) / self.N, np.concatenate(grads[::-1])

    def outputs(self, theta) -> np.ndarray:
        """``x[theta]`` (QN,)."""
        return outputs(theta, self.sizes, self.X, self.beta)

    def jacobian(self, theta) -> np.ndarray:
        """``D(theta)`` (QN, K)."""
        return jacobian(theta, self.sizes, self.X, self.beta)


# --- output space ----------------------------------------------------------------------------------------------------


def output_velocity(D, x, y, N: int) -> np.ndarray:
    """``x' = -(1/N) D D^T (x - y)`` (QN,): the velocity of the outputs under the parameter flow (chapter 5)."""
    D = as_array("D", D, ndim=2)
    x, y = as_array("x", x, shape=(D.shape[0],)), as_array("y", y, shape=(D.shape[0],))
    N = as_int("N", N)
    return -(D @ (D.T @ (x - y))) / N


def comparison_model(x0, y, s, N: int) -> np.ndarray:
    """The comparison model ``x' = -(x - y)/N``: ``x(s) = y + exp(-s/N) (x0 - y)`` for times ``s`` (T,); (T, QN)."""
    x0 = as_array("x0", x0, ndim=1)
    y = as_array("y", y, shape=x0.shape)
    s = as_array("s", s, ndim=1)
    N = as_int("N", N)
    return y + np.exp(-s / N)[:, None] * (x0 - y)


def numerical_rank(D, rtol: float = 1e-9) -> int:
    """Rank of ``D``: singular values above ``rtol`` times the largest (chapter 5)."""
    D = as_array("D", D, ndim=2)
    rtol = as_float("rtol", rtol, high=1.0, high_open=True)
    sv = np.linalg.svd(D, compute_uv=False)
    return int(np.sum(sv > rtol * sv[0])) if sv.size and sv[0] > 0 else 0


def range_projector(D, rtol: float = 1e-9) -> np.ndarray:
    """The orthogonal projector ``P`` (QN, QN) onto ``range(D)`` (numerical rank as in :func:`numerical_rank`);
    ``P = D (D^T D)^+ D^T``, computed from the left singular vectors."""
    D = as_array("D", D, ndim=2)
    rtol = as_float("rtol", rtol, high=1.0, high_open=True)
    U, sv, _ = np.linalg.svd(D, full_matrices=False)
    r = int(np.sum(sv > rtol * sv[0])) if sv.size and sv[0] > 0 else 0
    return U[:, :r] @ U[:, :r].T


class Stationarity(NamedTuple):
    """At the end of a run (chapter 5, Theorem 1.5): the cost ``C``; ``|P(x - y)|`` (zero at a stationary point);
    ``|P_perp(x - y)|^2 / (2N)``; their difference ``identity_residual = C - |P_perp r|^2 / (2N)`` (equal to
    ``|P r|^2 / (2N)``); ``rank`` of ``D``; ``grad_norm`` ``|grad C| = |D^T (x - y)| / N``; the theorem's content,
    ``target_perp_cost = |P_perp y|^2 / (2N)`` (the squared distance from ``y`` to ``range(D)``, over ``2N``) and
    ``output_perp = |P_perp x|`` (zero: a linear output layer puts ``x`` in ``range(D)``)."""

    cost: float
    p_residual: float
    perp_cost: float
    identity_residual: float
    rank: int
    grad_norm: float
    target_perp_cost: float
    output_perp: float


def stationarity_report(problem: FCProblem, theta) -> Stationarity:
    """The stationarity quantities of :class:`Stationarity` at ``theta`` (chapter 5)."""
    if not isinstance(problem, FCProblem):
        raise ValueError("problem must be an FCProblem")
    D = problem.jacobian(theta)
    x = problem.outputs(theta)
    r = x - problem.y
    P = range_projector(D)
    pr = P @ r
    perp = r - pr
    y_perp = problem.y - P @ problem.y
    cost = 0.5 * float(r @ r) / problem.N
    perp_cost = 0.5 * float(perp @ perp) / problem.N
    return Stationarity(cost=cost, p_residual=float(np.linalg.norm(pr)), perp_cost=perp_cost,
                        identity_residual=cost - perp_cost, rank=int(round(np.trace(P))),
                        grad_norm=float(np.linalg.norm(D.T @ r)) / problem.N,
                        target_perp_cost=0.5 * float(y_perp @ y_perp) / problem.N,
                        output_perp=float(np.linalg.norm(x - P @ x)))


# --- data ---------------------------------------------------------------------------------------------------------------


def generic_data(N: int, M: int, Q: int, seed) -> tuple[np.ndarray, np.ndarray]:
    """Generic training data: inputs ``X`` (N, M) and targets ``Y`` (N, Q), all independent standard normal."""
    N, M, Q = as_int("N", N), as_int("M", M), as_int("Q", Q)
    rng = as_rng(seed)
    return rng.normal(size=(N, M)), rng.normal(size=(N, Q))


def clustered_data(N: int, M: int, Q: int, clusters: int, seed, spread: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Clustered training data (chapter 5, section 6): ``clusters`` centres ``c_i ~ N(0, I_M)``, each with its own label
    ``~ N(0, I_Q)``; the ``N`` inputs are spread round-robin over the clusters, ``x = c_i + spread * N(0, I_M)``, and
    share their cluster's label. Returns ``X`` (N, M), ``Y`` (N, Q)."""
    N, M, Q = as_int("N", N), as_int("M", M), as_int("Q", Q)
    clusters = as_int("clusters", clusters, high=N)
    spread = as_float("spread", spread, low=0.0, low_open=False)
    rng = as_rng(seed)
    centres, labels = rng.normal(size=(clusters, M)), rng.normal(size=(clusters, Q))
    which = np.arange(N) % clusters
    return centres[which] + spread * rng.normal(size=(N, M)), labels[which]


# --- training ---------------------------------------------------------------------------------------------------------


class Fit(NamedTuple):
    """A training run of chapter 5 (:func:`fit`): gradient descent, optionally finished by a Levenberg-Marquardt /
    trust-region polish. ``k`` (R,) recorded GD steps and ``cost`` (R,) the cost there; ``eta`` the step used;
    ``gd_theta`` and ``gd_cost`` at the end of GD; ``theta`` and ``final_cost`` after the polish (the same if none);
    ``diverged_at`` the GD step at which the cost became non-finite or exceeded
    :func:`gdlab.runs.divergence_threshold` of ``C(0)``, else -1 (:mod:`gdlab.runs`: the records stop before it,
    ``gd_cost`` and ``final_cost`` are NaN, ``gd_theta`` and ``theta`` the iterate at which it was detected)."""

    k: np.ndarray
    cost: np.ndarray
    eta: float
    gd_theta: np.ndarray
    gd_cost: float
    theta: np.ndarray
    final_cost: float
    diverged_at: int

    @property
    def diverged(self) -> bool:
        """Whether gradient descent diverged (``diverged_at >= 0``)."""
        return self.diverged_at >= 0


def gd_step_size(problem: FCProblem, theta, scale: float = 0.5) -> float:
    """``scale / lambda_max(D^T D / N)`` at ``theta``: a step below the stability limit ``2 / lambda_max`` of the
    Gauss-Newton part of the Hessian (chapter 5)."""
    if not isinstance(problem, FCProblem):
        raise ValueError("problem must be an FCProblem")
    scale = as_float("scale", scale, high=2.0)
    sv = np.linalg.svd(problem.jacobian(theta), compute_uv=False)
    return scale * problem.N / float(sv[0] ** 2) if sv[0] > 0 else scale


def fit(problem: FCProblem, theta0, steps: int, *, eta: float | None = None, records: int = 50,
        polish: bool = False, max_nfev: int = 2000) -> Fit:
    """``steps`` steps of gradient descent on ``problem`` from ``theta0`` (step ``eta``, default
    :func:`gd_step_size` at ``theta0``), recording the cost at about ``records`` steps; with ``polish``, finish with
    ``scipy.optimize.least_squares`` on the residual ``(x - y) / sqrt(N)`` with the analytic Jacobian (trust-region
    reflective; a stationary point of the cost is a stationary point of this least-squares problem) (chapter 5)."""
    from scipy.optimize import least_squares

    if not isinstance(problem, FCProblem):
        raise ValueError("problem must be an FCProblem")
    theta = as_array("theta0", theta0, shape=(problem.K,)).copy()
    steps = as_int("steps", steps, low=0)
    records = as_int("records", records, low=2)
    eta = gd_step_size(problem, theta) if eta is None else as_float("eta", eta)
    max_nfev = as_int("max_nfev", max_nfev)
    rec = set(record_steps(steps, records).tolist())
    ks, costs, diverged_at = [], [], NOT_DIVERGED
    cost, grad = problem.loss_grad(theta)
    limit = divergence_threshold(cost)
    with np.errstate(all="ignore"):
        for k in range(steps + 1):
            if diverges(cost, limit):
                diverged_at, cost = k, np.nan
                break
            if k in rec:
                ks.append(k)
                costs.append(cost)
            if k == steps:
                break
            theta = theta - eta * grad
            cost, grad = problem.loss_grad(theta)
    gd_theta, gd_cost = theta, cost
    if polish and diverged_at < 0:
        root_n = np.sqrt(problem.N)
        res = least_squares(lambda t: (problem.outputs(t) - problem.y) / root_n, theta,
                            jac=lambda t: problem.jacobian(t) / root_n, method="trf", xtol=1e-15, ftol=1e-15,
                            gtol=1e-15, max_nfev=max_nfev)
        theta = res.x
        cost = problem.loss_grad(theta)[0]
    return Fit(k=np.array(ks, dtype=int), cost=np.array(costs), eta=float(eta), gd_theta=gd_theta,
               gd_cost=float(gd_cost), theta=theta, final_cost=float(cost), diverged_at=diverged_at)


# --- many one-hidden-layer runs at once (the transition experiment) -------------------------------------------------


class BatchFit(NamedTuple):
    """Gradient descent on ``B`` one-hidden-layer ReLU networks at once (:func:`fit_one_hidden_batch`): per run the
    step ``eta`` (B,), the cost at the start ``cost0`` (B,) and at the end ``cost`` (B,), ``grad_norm`` (B,) ``|grad C|``
    at the end, ``diverged_at`` (B,) the step at which the cost became non-finite or exceeded
    :func:`gdlab.runs.divergence_threshold` of ``C(0)`` (else -1; :mod:`gdlab.runs`: that run stops there, its
    ``cost`` and ``grad_norm`` are NaN), and the final parameter vectors ``theta`` (a list of B arrays, run ``b`` of
    length ``K_b``)."""

    eta: np.ndarray
    cost0: np.ndarray
    cost: np.ndarray
    grad_norm: np.ndarray
    diverged_at: np.ndarray
    theta: list

    @property
    def diverged(self) -> np.ndarray:
        """(B,) bool: ``diverged_at >= 0``."""
        return self.diverged_at >= 0


def fit_one_hidden_batch(X, Y, thetas: Sequence, widths: Sequence[int], steps: int, scale: float = 0.5) -> BatchFit:
    """``steps`` steps of gradient descent on the cost ``C = |x - y|^2 / (2N)`` of ``B`` one-hidden-layer ReLU networks
    ``(M, widths[b], Q)`` on the same inputs ``X`` (N, M) and targets ``Y`` (N, Q), vectorised over the runs (chapter 5,
    the transition experiment). Run ``b`` starts at ``thetas[b]`` (``K_b``,) with the step of :func:`gd_step_size`
    (``scale / lambda_max(D^T D / N)`` at its start), the same run as :func:`fit` without polish up to round-off.
    Narrower networks are padded with hidden units whose weights are all zero; such a unit has zero output and zero
    gradient (ReLU'(0) = 0), so it stays zero and changes nothing."""
    X = check_inputs(X, as_array("X", X, ndim=2).shape[1])
    N, M = X.shape
    Y = as_array("Y", Y, shape=(N, None))
    Q = Y.shape[1]
    widths = [as_int(f"widths[{b}]", w) for b, w in enumerate(widths)]
    if len(thetas) != len(widths) or not widths:
        raise ValueError(f"thetas and widths must have the same length >= 1; got {len(thetas)} and {len(widths)}")
    steps = as_int("steps", steps, low=0)
    B, Wmax = len(widths), max(widths)
    W1, b1 = np.zeros((B, Wmax, M)), np.zeros((B, Wmax))
    W2, b2 = np.zeros((B, Q, Wmax)), np.zeros((B, Q))
    eta = np.empty(B)
    for b, (theta, w) in enumerate(zip(thetas, widths, strict=True)):
        problem = FCProblem((M, w, Q), X, Y)
        (A1, c1), (A2, c2) = unpack(as_array(f"thetas[{b}]", theta, shape=(problem.K,)), problem.sizes)
        W1[b, :w], b1[b, :w], W2[b, :, :w], b2[b] = A1, c1, A2, c2
        eta[b] = gd_step_size(problem, theta, scale)

    def cost_grad():
        Z = X @ W1.transpose(0, 2, 1) + b1[:, None, :]  # (B, N, Wmax)
        H = np.maximum(Z, 0.0)
        r = H @ W2.transpose(0, 2, 1) + b2[:, None, :] - Y  # (B, N, Q)
        g = r / N
        gh = (g @ W2) * (Z > 0.0)
        grads = (gh.transpose(0, 2, 1) @ X, gh.sum(axis=1), g.transpose(0, 2, 1) @ H, g.sum(axis=1))
        return 0.5 * np.sum(r * r, axis=(1, 2)) / N, grads

    cost, grads = cost_grad()
    cost0, limit = cost.copy(), divergence_threshold(cost)
    diverged_at = np.full(B, NOT_DIVERGED)
    live = np.ones(B, dtype=bool)
    with np.errstate(all="ignore"):
        for k in range(steps + 1):
            bad = live & diverges(cost, limit)
            diverged_at[bad], live[bad] = k, False
            if k == steps or not live.any():
                break
            step = np.where(live, eta, 0.0)
            for p, g in zip((W1, b1, W2, b2), grads, strict=True):
                p -= step.reshape((B,) + (1,) * (p.ndim - 1)) * g
            cost, grads = cost_grad()
    with np.errstate(all="ignore"):
        gnorm = np.sqrt(sum(np.sum(g.reshape(B, -1) ** 2, axis=1) for g in grads))
    cost, gnorm = np.where(live, cost, np.nan), np.where(live, gnorm, np.nan)
    thetas_end = [np.concatenate([W1[b, :w].ravel(), b1[b, :w], W2[b, :, :w].ravel(), b2[b]])
                  for b, w in enumerate(widths)]
    return BatchFit(eta=eta, cost0=cost0, cost=cost, grad_norm=gnorm, diverged_at=diverged_at, theta=thetas_end)


class Transition(NamedTuple):
    """The transition experiment of chapter 5 (:func:`transition_experiment`), one entry per run (R,): the number of
    inputs ``N``, the width ``W``, the parameter count ``K``, the ``draw`` (initialisation seed), the ``cost`` after
    gradient descent, ``|grad C|`` there (``grad_norm``), both NaN for a run that diverged, and the step
    ``diverged_at`` at which it did (-1: it did not; :mod:`gdlab.runs`)."""

    N: np.ndarray
    W: np.ndarray
    K: np.ndarray
    draw: np.ndarray
    cost: np.ndarray
    grad_norm: np.ndarray
    diverged_at: np.ndarray

    @property
    def diverged(self) -> np.ndarray:
        """(R,) bool: ``diverged_at >= 0``."""
        return self.diverged_at >= 0


def transition_experiment(n_values: Sequence[int], widths: Sequence[int], draws: int, steps: int, M: int = 3,
                          Q: int = 6, data_seed: int = 200) -> Transition:
    """Chapter 5's transition experiment: for each ``N`` in ``n_values``, generic data (:func:`generic_data`, seed
    ``data_seed + N``) and, for each width in ``widths`` and draw ``0..draws-1``, a one-hidden-layer ReLU network
    ``(M, W, Q)`` He-initialised with seed ``draw`` and trained by ``steps`` steps of gradient descent
    (:func:`fit_one_hidden_batch`, all widths and draws of one ``N`` at once). ``R = len(n_values) len(widths) draws``."""
    n_values = [as_int(f"n_values[{i}]", n) for i, n in enumerate(n_values)]
    widths = [as_int(f"widths[{i}]", w) for i, w in enumerate(widths)]
    draws, steps = as_int("draws", draws), as_int("steps", steps, low=0)
    M, Q = as_int("M", M), as_int("Q", Q)
    if not n_values or not widths:
        raise ValueError("n_values and widths must each list at least one value")
    cols: dict[str, list] = {key: [] for key in Transition._fields}
    for n in n_values:
        X, Y = generic_data(n, M, Q, as_int("data_seed", data_seed, low=0) + n)
        ws = [w for w in widths for _ in range(draws)]
        ds = [d for _ in widths for d in range(draws)]
        run = fit_one_hidden_batch(X, Y, [init((M, w, Q), d) for w, d in zip(ws, ds, strict=True)], ws, steps)
        for key, values in (("N", [n] * len(ws)), ("W", ws), ("K", [parameter_count((M, w, Q)) for w in ws]),
                            ("draw", ds), ("cost", run.cost), ("grad_norm", run.grad_norm),
                            ("diverged_at", run.diverged_at)):
            cols[key].extend(values)
    return Transition(**{key: np.asarray(values) for key, values in cols.items()})


def wilson_interval(successes, trials: int, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval(s) ``(low, high)`` for a fraction ``successes / trials`` (``successes`` an int or an
    array of ints in ``[0, trials]``), from ``scipy.stats.binomtest`` (chapter 5: fractions of runs over draws)."""
    from scipy.stats import binomtest

    trials = as_int("trials", trials)
    confidence = as_float("confidence", confidence, high=1.0, high_open=True)
    k = np.asarray(successes)
    if k.dtype.kind not in "iu" or np.any(k < 0) or np.any(k > trials):
        raise ValueError(f"successes must be integers in [0, {trials}]; got {successes!r}")
    cis = [binomtest(int(v), trials).proportion_ci(confidence, method="wilson") for v in k.ravel()]
    return (np.array([c.low for c in cis]).reshape(k.shape), np.array([c.high for c in cis]).reshape(k.shape))


class TransitionCells(NamedTuple):
    """Per cell ``(N, W)`` of a :class:`Transition` (C cells, in the experiment's order): ``N``, ``W``, ``K``, the
    rank bound of :func:`one_hidden_rank_bound` (``rank_bound``), ``QN``, the number of draws, how many were ``fitted``
    (cost below the threshold), the Wilson 95% interval ``low``, ``high`` of the fitted fraction (chapter 5)."""

    N: np.ndarray
    W: np.ndarray
    K: np.ndarray
    rank_bound: np.ndarray
    QN: np.ndarray
    draws: np.ndarray
    fitted: np.ndarray
    low: np.ndarray
    high: np.ndarray


def transition_cells(result: Transition, threshold: float, M: int = 3, Q: int = 6) -> TransitionCells:
    """Group the runs of :func:`transition_experiment` by ``(N, W)`` and count those with cost below ``threshold``
    (a run that diverged counts as not fitted), with Wilson intervals (:func:`wilson_interval`) (chapter 5)."""
    if not isinstance(result, Transition):
        raise ValueError("result must be a Transition (from transition_experiment)")
    threshold = as_float("threshold", threshold)
    M, Q = as_int("M", M), as_int("Q", Q)
    keys = list(dict.fromkeys(zip(result.N.tolist(), result.W.tolist(), strict=True)))
    fitted = result.cost < threshold
    rows = []
    for n, w in keys:
        sel = (result.N == n) & (result.W == w)
        k, d = int(np.sum(fitted[sel] & ~result.diverged[sel])), int(np.sum(sel))
        low, high = wilson_interval(k, d)
        rows.append((n, w, parameter_count((M, w, Q)), one_hidden_rank_bound(M, w, Q, n), Q * n, d, k, float(low),
                     float(high)))
    return TransitionCells(*(np.array(col) for col in zip(*rows, strict=True)))


# --- the rate of the overparametrized flow, pointwise ----------------------------------------------------------------


class RateCheck(NamedTuple):
    """The pointwise rate check of chapter 5 (:func:`flow_rate_check`) at times ``s`` (T,): the cost ``cost`` (T,),
    ``slope`` (T,) the derivative of ``log C`` along the solved flow by central differences of step ``h``,
    ``exact_slope`` (T,) its value ``-|grad C|^2 / C`` from the flow's equation, ``lam_min`` (T,)
    ``lambda_min(D D^T)``, ``rank`` (T,) of ``D``, and ``thetas`` (T, K), ``status`` of the solver."""

    s: np.ndarray
    cost: np.ndarray
    slope: np.ndarray
    exact_slope: np.ndarray
    lam_min: np.ndarray
    rank: np.ndarray
    h: float
    thetas: np.ndarray
    status: str


def flow_rate_check(problem: FCProblem, theta0, t_max: float, times: int = 161, h: float = 1e-3,
                    rtol: float = 1e-10, atol: float = 1e-12) -> RateCheck:
    """Solve the parameter flow ``theta' = -grad C`` of ``problem`` from ``theta0`` (K,) on ``[0, t_max]``
    (:func:`gdlab.flow.gradient_flow`) and, at the ``times - 2`` interior points of ``linspace(0, t_max, times)``,
    measure ``d log C / ds`` by central differences of step ``h`` (from the solved costs at ``s +- h``), for the check
    ``d log C/ds <= -2 lambda_min(D D^T)(s) / N`` of chapter 5 (Theorem 1.3, pointwise). The difference quotient is off
    by ``O(h^2)`` plus the solver's error over ``h``; ``exact_slope`` is there to measure that."""
    from .flow import gradient_flow

    if not isinstance(problem, FCProblem):
        raise ValueError("problem must be an FCProblem")
    t_max = as_float("t_max", t_max)
    times = as_int("times", times, low=3)
    s = np.linspace(0.0, t_max, times)[1:-1]
    h = as_float("h", h, high=0.5 * float(s[0]), high_open=True)
    t_eval = np.concatenate([[0.0], np.stack([s - h, s, s + h], axis=1).ravel(), [t_max]])
    traj = gradient_flow(problem.loss_grad, theta0, t_max, t_eval=t_eval, rtol=rtol, atol=atol)
    if traj.w.shape[0] != t_eval.size:
        raise ValueError(f"the flow stopped early ({traj.status}); choose a smaller t_max")
    log_c = np.log(traj.loss[1:-1]).reshape(-1, 3)
    thetas = traj.w[1:-1].reshape(s.size, 3, -1)[:, 1]
    lam, rank, exact = [], [], []
    for theta in thetas:
        D = problem.jacobian(theta)
        lam.append(np.linalg.eigvalsh(D @ D.T)[0])
        rank.append(numerical_rank(D))
        cost, grad = problem.loss_grad(theta)
        exact.append(-float(grad @ grad) / cost)
    return RateCheck(s=s, cost=traj.loss[1:-1].reshape(-1, 3)[:, 1], slope=(log_c[:, 2] - log_c[:, 0]) / (2 * h),
                     exact_slope=np.array(exact), lam_min=np.array(lam), rank=np.array(rank), h=h, thetas=thetas,
                     status=traj.status)


# --- a stationary point of positive cost: is it a local minimum? ------------------------------------------------------


class LocalMinReport(NamedTuple):
    """Evidence that ``theta`` is a local minimum of a one-hidden-layer ReLU cost (chapter 5,
    :func:`local_minimum_report`): the ``cost`` and ``grad_norm``; ``active`` (W,) on how many inputs each hidden unit
    is active; ``kink_distance`` ``min |z|`` over hidden pre-activations (the cost is a polynomial in ``theta`` within
    this distance, in the sup norm of the incoming weights scaled by the inputs); ``rank`` of ``D``; ``hessian_eigs``
    (K,) the eigenvalues of the finite-difference Hessian; ``radii`` (S,) and ``min_increase`` (S,) the smallest
    ``C(theta + rho u) - C(theta)`` over random unit directions ``u`` at each radius ``rho``."""

    cost: float
    grad_norm: float
    active: np.ndarray
    kink_distance: float
    rank: int
    hessian_eigs: np.ndarray
    radii: np.ndarray
    min_increase: np.ndarray


def local_minimum_report(problem: FCProblem, theta, radii: Sequence[float] = (1e-5, 1e-4, 1e-3),
                         directions: int = 200, seed=0, h: float = 1e-7) -> LocalMinReport:
    """The quantities of :class:`LocalMinReport` at ``theta`` (K,) for a one-hidden-layer ReLU ``problem``
    (chapter 5, the spurious local minimum). The Hessian is the central difference (step ``h``) of the analytic
    gradient (:func:`gdlab.numerics.hessian_fd`), valid while ``h`` is far below ``kink_distance``."""
    from .numerics import hessian_fd

    if not isinstance(problem, FCProblem) or len(problem.sizes) != 3 or problem.beta is not None:
        raise ValueError("problem must be an FCProblem of a one-hidden-layer ReLU network (beta=None)")
    theta = as_array("theta", theta, shape=(problem.K,))
    radii = np.array([as_float(f"radii[{i}]", r) for i, r in enumerate(radii)])
    directions = as_int("directions", directions)
    h = as_float("h", h)
    cost, grad = problem.loss_grad(theta)
    (W1, b1), _ = unpack(theta, problem.sizes)
    Z = problem.X @ W1.T + b1
    u = as_rng(seed).normal(size=(directions, problem.K))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    increase = [min(problem.loss_grad(theta + rho * v)[0] for v in u) - cost for rho in radii]
    H = hessian_fd(lambda w: problem.loss_grad(w)[1], theta, h=h)
    return LocalMinReport(cost=cost, grad_norm=float(np.linalg.norm(grad)), active=(Z > 0).sum(axis=0),
                          kink_distance=float(np.abs(Z).min()), rank=numerical_rank(problem.jacobian(theta)),
                          hessian_eigs=np.linalg.eigvalsh(H), radii=radii, min_increase=np.array(increase))


def spread_sweep(spreads: Sequence[float], width: int, draws: int, steps: int, N: int = 24, clusters: int = 6,
                 M: int = 3, Q: int = 6, seed: int = 7) -> np.ndarray:
    """Costs (S, draws) after ``steps`` GD steps of the one-hidden-layer ReLU network ``(M, width, Q)`` on clustered
    data (:func:`clustered_data` with ``seed``: the same centres, labels and offset directions for every spread, the
    offsets scaled by the spread) for each of the ``S`` ``spreads``; draw ``d`` is the initialisation seed (chapter 5,
    clustered data)."""
    width, draws = as_int("width", width), as_int("draws", draws)
    steps = as_int("steps", steps, low=0)
    thetas = [init((as_int("M", M), width, as_int("Q", Q)), d) for d in range(draws)]
    costs = []
    for i, spread in enumerate(spreads):
        X, Y = clustered_data(N, M, Q, clusters, seed, spread=as_float(f"spreads[{i}]", spread, low_open=False))
        costs.append(fit_one_hidden_batch(X, Y, thetas, [width] * draws, steps).cost)
    if not costs:
        raise ValueError("spreads must list at least one spread")
    return np.array(costs)


# --- two scalings of the width: NTK (1/sqrt(m)) against mean-field (1/m) ----------------------------------------------


class ScalingRun(NamedTuple):
    """One run of :func:`scaling_run` (chapter 5, the bridge to chapter 4): the width ``m``, the output ``scaling``
    exponent ``p``, the cost ratio ``cost_ratio = C(T)/C(0)``, the relative change of the tangent kernel
    ``gram_change = |G(T) - G(0)|_F / |G(0)|_F`` (``G = D D^T``, N x N) and of the parameters
    ``weight_change = |theta(T) - theta(0)| / |theta(0)|``."""

    m: int
    p: float
    cost_ratio: float
    gram_change: float
    weight_change: float


def scaling_run(m: int, p: float, steps: int, N: int = 6, M: int = 3, seed=0, scale: float = 0.5) -> ScalingRun:
    """Gradient descent on the scalar network ``f(x) = m^(-p) sum_r a_r relu(w_r^T x)`` (``a_r ~ N(0, 1)``,
    ``w_r ~ N(0, I_M / M)``, both layers trained) on ``N`` generic data (inputs ``N(0, I_M)``, targets ``N(0, 1)``),
    ``C = |f - y|^2 / (2N)``. ``p = 1/2`` is the NTK scaling of chapter 4, ``p = 1`` the mean-field scaling. The step is
    ``scale N / lambda_max(G(0))``, so both scalings start with the same speed in output space (for ``p = 1`` it grows
    like ``m``). Vectorised over the ``m`` neurons (chapter 5)."""
    m, steps, N, M = as_int("m", m), as_int("steps", steps, low=0), as_int("N", N), as_int("M", M)
    p = as_float("p", p, high=2.0)
    scale = as_float("scale", scale, high=2.0)
    rng = as_rng(seed)
    X, y = rng.normal(size=(N, M)), rng.normal(size=N)
    a, w = rng.normal(size=m), rng.normal(size=(m, M)) / np.sqrt(M)
    c = m ** (-p)

    def gram(a, w):
        S = (X @ w.T > 0.0).astype(float)  # (N, m)
        H = S * (X @ w.T)
        return c * c * (H @ H.T + (S * a * a) @ S.T * (X @ X.T))

    G0 = gram(a, w)
    eta = scale * N / float(np.linalg.eigvalsh(G0)[-1])
    theta0 = np.concatenate([a, w.ravel()])
    r0 = r = c * np.maximum(X @ w.T, 0.0) @ a - y
    for k in range(steps + 1):
        Z = X @ w.T
        H = np.maximum(Z, 0.0)
        r = c * H @ a - y
        if k == steps:
            break
        g = (c / N) * r
        a, w = a - eta * (H.T @ g), w - eta * (a[:, None] * (((Z > 0.0) * g[:, None]).T @ X))
    G = gram(a, w)
    return ScalingRun(m=m, p=p, cost_ratio=float(r @ r / (r0 @ r0)),
                      gram_change=float(np.linalg.norm(G - G0) / np.linalg.norm(G0)),
                      weight_change=float(np.linalg.norm(np.concatenate([a, w.ravel()]) - theta0)
                                          / np.linalg.norm(theta0)))
