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
from .flow import record_steps

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
    ``|P r|^2 / (2N)``); ``rank`` of ``D``; ``grad_norm`` ``|grad C| = |D^T (x - y)| / N``."""

    cost: float
    p_residual: float
    perp_cost: float
    identity_residual: float
    rank: int
    grad_norm: float


def stationarity_report(problem: FCProblem, theta) -> Stationarity:
    """The stationarity quantities of :class:`Stationarity` at ``theta`` (chapter 5)."""
    if not isinstance(problem, FCProblem):
        raise ValueError("problem must be an FCProblem")
    D = problem.jacobian(theta)
    r = problem.outputs(theta) - problem.y
    P = range_projector(D)
    pr = P @ r
    perp = r - pr
    cost = 0.5 * float(r @ r) / problem.N
    perp_cost = 0.5 * float(perp @ perp) / problem.N
    return Stationarity(cost=cost, p_residual=float(np.linalg.norm(pr)), perp_cost=perp_cost,
                        identity_residual=cost - perp_cost, rank=int(round(np.trace(P))),
                        grad_norm=float(np.linalg.norm(D.T @ r)) / problem.N)


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
    ``diverged_at`` the GD step at which the cost became non-finite or exceeded ``1e6 (1 + C(0))``, else -1."""

    k: np.ndarray
    cost: np.ndarray
    eta: float
    gd_theta: np.ndarray
    gd_cost: float
    theta: np.ndarray
    final_cost: float
    diverged_at: int


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
    ks, costs, diverged_at = [], [], -1
    cost, grad = problem.loss_grad(theta)
    limit = 1e6 * (1.0 + cost)
    with np.errstate(all="ignore"):
        for k in range(steps + 1):
            if not cost <= limit:
                diverged_at = k
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
