"""Chapter 5 explorer: a one-hidden-layer ReLU net with ``Q = 6`` outputs on inputs in ``R^3``, trained by gradient
descent: its width and number of inputs set ``K`` parameters against ``QN`` outputs, on generic or clustered data.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import params
from .._checks import as_int
from ..runs import diverged_text
from ..spec import Control, Spec

#: Input dimension and number of outputs of the explorer's net.
M, Q = 3, 6
#: Gradient-descent steps of every run.
STEPS = 250

#: The explorer's settings. On the page: widths and numbers of inputs that put K = 10 W + 6 below, near and above
#: QN = 6 N; generic and clustered data.
SPEC = Spec((
    Control("width", "width W", "int", 2, low=1, high=8, step=1, page=(1, 2, 4, 8)),
    Control("n_points", "inputs N", "int", 6, low=2, high=12, step=1, page=(2, 6, 12)),
    Control("data", "data", "choice", "generic", options=("generic", "clustered"), page=("generic", "clustered")),
    Control("draw", "draw", "int", 0, low=0, high=99, step=1),
))


class Run(NamedTuple):
    """One setting of the chapter-5 explorer: the GD run (:class:`gdlab.params.Fit`), ``K``, ``QN``, the rank of ``D``
    and ``lambda_min(D D^T)`` at the end, the rank bound of :func:`gdlab.params.one_hidden_rank_bound` (for every
    ``theta``) and ``lam_max`` = ``lambda_max(D D^T)`` at the end."""

    settings: dict
    fit: params.Fit
    K: int
    QN: int
    rank: int
    lam_min: float
    rank_bound: int
    lam_max: float

    @property
    def diverged_at(self) -> int:
        """The step at which gradient descent diverged, -1 if it did not (:mod:`gdlab.runs`)."""
        return self.fit.diverged_at


def data(n_points: int, kind: str, draw: int) -> tuple[np.ndarray, np.ndarray]:
    """The explorer's inputs ``X`` (n_points, M) and targets ``Y`` (n_points, Q): ``kind`` "generic", or "clustered"
    in 2 clusters; draw ``draw`` >= 0 (seed ``1000 + draw``)."""
    n_points, draw = as_int("n_points", n_points), as_int("draw", draw, low=0)
    if kind not in ("generic", "clustered"):
        raise ValueError(f"kind must be 'generic' or 'clustered'; got {kind!r}")
    if kind == "generic":
        return params.generic_data(n_points, M, Q, 1000 + draw)
    return params.clustered_data(n_points, M, Q, min(2, n_points), 1000 + draw)


def run(**settings) -> Run:
    """Train the explorer's network of ``width`` hidden units on ``n_points`` inputs (``data``: "generic" or
    "clustered") for :data:`STEPS` GD steps (settings of :data:`SPEC`)."""
    s = SPEC.bind(settings)
    width, n_points, draw = s["width"], s["n_points"], s["draw"]
    sizes = (M, width, Q)
    problem = params.FCProblem(sizes, *data(n_points, s["data"], draw))
    fit = params.fit(problem, params.init(sizes, draw), STEPS, records=81)
    D = problem.jacobian(fit.gd_theta)
    sv = np.linalg.svd(D, compute_uv=False)
    QN = D.shape[0]
    lam = float(sv[QN - 1] ** 2) if sv.size >= QN else 0.0
    return Run(s, fit, problem.K, QN, params.numerical_rank(D), lam,
               params.one_hidden_rank_bound(M, width, Q, n_points), float(sv[0] ** 2))


def verdict(run: Run) -> tuple[str, str]:
    """The explorer's status line and verdict for a :class:`Run`. ``lambda_min(D D^T)`` is shown as a value only where
    ``rank D = QN``; below, it is round-off and shown as a bound. A rank deficit at the end of the run is a verdict on
    zero cost only where the rank bound holds at every ``theta`` and the targets are generic."""
    if run.rank >= run.QN:
        lam = f"lambda_min(D D^T) = {run.lam_min:.2g}"
    else:
        lam = "lambda_min(D D^T) < 1e-18 lambda_max (round-off)"
    status = f"K = {run.K} parameters, QN = {run.QN} outputs; rank D = {run.rank} (bound {run.rank_bound}); {lam}"
    if run.diverged_at >= 0:
        return status, f"GD {diverged_text(run.diverged_at)}"
    if run.rank_bound < run.QN and run.settings["data"] == "generic":
        return status, "rank D <= bound < QN at every theta: zero cost is out of reach for generic targets"
    if run.rank_bound < run.QN:
        return status, "rank bound < QN, but clustered targets are not generic: zero cost may still be reachable"
    if run.rank < run.QN:
        return status, f"rank D < QN after {STEPS} steps, but the bound allows QN: no verdict on zero cost"
    return status, "rank D = QN: the cost can still go to zero"
