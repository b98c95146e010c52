"""Chapter 2 explorer: gradient descent against the gradient flow, on the chapter's MLP or on a quadratic with a known
smoothness constant ``L``; and the two problems themselves, which the chapter's notebook (and chapter 3's) import.

The step is set as ``eta * L`` (``L`` the quadratic's smoothness constant, or ``lambda_max(Hess f(w0))`` for the
MLP), so that the threshold ``2 / L`` sits at 2 for both problems.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .. import flow, nets, numerics
from ..flow import Trajectory
from ..spec import Control, Spec


class MLPSetUp(NamedTuple):
    """Sizes and seeds of a two-layer MLP problem: input dimension ``m``, width ``k``, outputs ``n``, data points
    ``p``, the seed of the data (:func:`gdlab.nets.mlp_data`) and of the He initialisation (:func:`gdlab.nets.mlp_init`)."""

    m: int
    k: int
    n: int
    p: int
    data_seed: int
    init_seed: int


class QuadraticSetUp(NamedTuple):
    """A quadratic problem: its eigenvalues, the seed of its eigenvectors (:func:`gdlab.flow.quadratic_problem`) and
    the seed of its start ``w0 ~ N(0, I)``."""

    eigenvalues: tuple[float, ...]
    seed: int
    w0_seed: int


#: The two-layer MLP of chapter 2 (the notebook's network and the explorer's).
MLP = MLPSetUp(m=4, k=32, n=2, p=3, data_seed=0, init_seed=100)
#: The quadratic of chapter 2: eigenvalues 0.1 .. 1 (so L = 1), seed of the eigenvectors, seed of the start.
QUADRATIC = QuadraticSetUp(eigenvalues=(0.1, 0.16, 0.25, 0.4, 0.63, 1.0), seed=2, w0_seed=3)
#: The MLP flow is solved once on [0, FLOW_T] and cached (see :func:`setup`).
FLOW_T = 4.0

#: The explorer's settings. On the page: both problems; steps well below 1, between 1 and 2 (zig-zag), just below and
#: above the threshold 2, and far above it; a short and a long run.
SPEC = Spec((
    Control("problem", "problem", "choice", "quadratic", options=("quadratic", "MLP"), page=("quadratic", "MLP")),
    Control("step", "step size eta * L", "log", 0.5, low=0.05, high=8.0, step=0.02,
            page=(0.05, 0.5, 1.5, 1.9, 2.1, 4.0)),
    Control("steps", "steps", "int", 100, low=10, high=300, step=5, page=(30, 100)),
))


def mlp() -> tuple[nets.MLPProblem, np.ndarray]:
    """The MLP problem of :data:`MLP` and its He initialisation ``w0`` (flat, of size ``k m + n k``)."""
    c = MLP
    x, q = nets.mlp_data(c.m, c.n, seed=c.data_seed, p=c.p)
    M, N = nets.mlp_init(c.m, c.k, c.n, seed=c.init_seed)
    return nets.MLPProblem(x, q, c.k), nets.mlp_pack(M, N)


def quadratic() -> tuple[flow.QuadraticProblem, np.ndarray]:
    """The quadratic of :data:`QUADRATIC` and its start ``w0`` (d,) ~ N(0, I)."""
    c = QUADRATIC
    quad = flow.quadratic_problem(np.array(c.eigenvalues), c.seed)
    return quad, np.random.default_rng(c.w0_seed).normal(size=quad.dim)


class SetUp(NamedTuple):
    """A problem of the explorer: ``loss_grad``, start ``w0`` (p,), smoothness scale ``L`` (exact for the quadratic,
    ``lambda_max(Hess f(w0))`` for the MLP) named ``L_name``, ``flow_at(times (T,)) -> (T, p)``, and a recorded flow
    loss curve ``flow_t``, ``flow_loss`` (for the quadratic: ``None``, computed in closed form by :func:`run`)."""

    name: str
    loss_grad: Callable
    w0: np.ndarray
    L: float
    L_name: str
    flow_at: Callable[[np.ndarray], np.ndarray]
    flow_t: np.ndarray | None
    flow_loss: np.ndarray | None


@lru_cache(maxsize=4)
def setup(problem: str) -> SetUp:
    """Set up ``problem`` ("MLP" or "quadratic") once: the flow does not depend on the step size, so it is cached.

    The MLP flow is solved on [0, :data:`FLOW_T`] (rtol 1e-10) and interpolated (:func:`gdlab.flow.flow_interpolant`);
    by then its loss is at round-off level, so holding the last point for later times moves nothing visible
    (Result 1.5).
    """
    if problem == "quadratic":
        quad, w0 = quadratic()
        return SetUp("quadratic", quad.loss_grad, w0, quad.L, "L (exact)", lambda t: quad.flow(w0, t), None, None)
    if problem == "MLP":
        prob, w0 = mlp()
        L = numerics.sharpness(lambda w: prob.loss_grad(w)[1], w0)
        t_eval = np.unique(np.concatenate([np.linspace(0.0, 2.0, 801), np.linspace(2.0, FLOW_T, 41)]))
        traj = flow.gradient_flow(prob.loss_grad, w0, FLOW_T, t_eval=t_eval, rtol=1e-10, atol=1e-12)
        for arr in (traj.t, traj.loss):
            arr.flags.writeable = False
        return SetUp("MLP", prob.loss_grad, w0, L, "lambda_max(Hess f(w0))",
                     flow.flow_interpolant(traj, prob.loss_grad), traj.t, traj.loss)
    raise ValueError(f"problem must be 'MLP' or 'quadratic'; got {problem!r}")


class Run(NamedTuple):
    """One setting of the chapter-2 explorer: the problem's :class:`SetUp`, the step ``eta = step / L``, the GD run
    ``gd`` (a :class:`gdlab.flow.Trajectory`, steps+1 records), ``gap`` (steps+1,) ``|w_k - gamma(k eta)|``, and the
    flow on ``[0, steps eta]``: times ``flow_t`` (T,), loss ``flow_loss`` (T,), distance from ``w0`` ``flow_dist`` (T,)."""

    settings: dict
    setup: SetUp
    eta: float
    gd: Trajectory
    gap: np.ndarray
    flow_t: np.ndarray
    flow_loss: np.ndarray
    flow_dist: np.ndarray

    @property
    def diverged_at(self) -> int:
        """The step at which gradient descent diverged, -1 if it did not (:mod:`gdlab.runs`)."""
        return self.gd.diverged_at


def run(**settings) -> Run:
    """Gradient descent with ``eta = step / L`` for ``steps`` steps on ``problem``, and the flow over the same time
    (settings of :data:`SPEC`)."""
    s = SPEC.bind(settings)
    su = setup(s["problem"])
    eta = s["step"] / su.L
    gd = flow.gradient_descent(su.loss_grad, su.w0, eta, s["steps"])
    gap = np.linalg.norm(gd.w - su.flow_at(gd.t), axis=1)
    t_end = float(s["steps"] * eta)
    if su.flow_t is None:  # quadratic: closed form on a fine grid
        tf = np.linspace(0.0, t_end, 241)
        Wf = su.flow_at(tf)
        lf = np.array([su.loss_grad(w)[0] for w in Wf])
    else:  # MLP: the cached records up to t_end, then the flow's own loss at t_end (interpolated; past the cache
        # the flow is held at its last point). Not the cache's last loss: that is the loss at t = FLOW_T.
        keep = su.flow_t <= t_end
        tf, lf = su.flow_t[keep], su.flow_loss[keep]
        if t_end > tf[-1]:
            tf = np.append(tf, t_end)
        Wf = su.flow_at(tf)
        if lf.size < tf.size:
            lf = np.append(lf, su.loss_grad(Wf[-1])[0])
    return Run(s, su, eta, gd, gap, tf, lf, np.linalg.norm(Wf - su.w0, axis=1))
