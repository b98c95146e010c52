"""Chapter 4 explorer: the Du et al. net on seven inputs on the circle, trained by gradient descent: its loss against
the bounds, the drift of its kernel, and its function against the kernel predictor; and the circle data, which the
chapter's notebook imports.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .. import nets, ntk
from .._checks import as_array
from ..spec import Control, Spec

#: The explorer's data: seven inputs on the unit circle at these angles (no two parallel; lambda_0 = 0.050), targets
#: :func:`targets`.
ANGLES = np.array([0.3, 1.1, 1.9, 2.6, 3.8, 4.6, 5.5])
#: The widths offered; wider nets train too slowly for the explorer's 100 ms budget.
WIDTHS = (10, 30, 100, 300, 1000, 3000)
#: The angles at which the trained net and the kernel predictor are compared (T = 121).
TEST_ANGLES = np.linspace(0.0, 2.0 * np.pi, 121)
ANGLES.flags.writeable = TEST_ANGLES.flags.writeable = False  # constants of the chapter

#: The explorer's settings. On the page: every width; a small step, the default, one just below 2 / lambda_max(H*) =
#: 1.96 and one above it (gradient descent and the kernel model diverge).
SPEC = Spec((
    Control("m", "width m", "choice", 300, options=WIDTHS, slider=True, page=WIDTHS),
    Control("eta", "step size eta", "log", 1.0, low=1e-2, high=10**0.5, step=0.05, page=(0.3, 1.0, 1.9, 2.5)),
    Control("steps", "steps", "int", 100, low=10, high=200, step=10),
    Control("draw", "draw", "int", 0, low=0, high=99, step=1),
))


def targets(theta):
    """Targets ``y = sin(theta) + cos(2 theta) / 2`` of the chapter-4 circle examples (``theta``: finite angles)."""
    theta = as_array("theta", theta)
    return np.sin(theta) + 0.5 * np.cos(2.0 * theta)


@lru_cache(maxsize=1)
def kernels() -> tuple[np.ndarray, np.ndarray, float]:
    """``H*`` (n, n) on the explorer's inputs, ``K*`` (T, n) from :data:`TEST_ANGLES` to them, and ``lambda_0``."""
    X = ntk.circle_inputs(ANGLES)
    H, K = ntk.ntk_limit(X), ntk.ntk_limit(ntk.circle_inputs(TEST_ANGLES), X)
    H.flags.writeable = K.flags.writeable = False  # shared by every call of the cache
    return H, K, ntk.lambda_0(X)


class Run(NamedTuple):
    """One setting of the chapter-4 explorer: the GD run on the circle data (:class:`gdlab.ntk.LazyRun`), the net's
    function ``f_net`` (T,) and ``f0`` (T,) on :data:`TEST_ANGLES`, the kernel predictor ``f_ker`` (T,) for the same
    training time, and ``lam0`` = ``lambda_0``."""

    settings: dict
    run: ntk.LazyRun
    f_net: np.ndarray
    f0: np.ndarray
    f_ker: np.ndarray
    lam0: float

    @property
    def diverged_at(self) -> int:
        """The step at which gradient descent diverged, -1 if it did not (:mod:`gdlab.runs`)."""
        return self.run.diverged_at


def run(**settings) -> Run:
    """Train the Du et al. net of width ``m`` (initialisation ``draw``) for ``steps`` GD steps of size ``eta`` on the
    seven circle inputs; compare its function with the kernel predictor (limit kernel, same steps) (settings of
    :data:`SPEC`)."""
    s = SPEC.bind(settings)
    eta, steps = s["eta"], s["steps"]
    X = ntk.circle_inputs(ANGLES)
    y = targets(ANGLES)
    W0, a = nets.du_init(s["m"], 2, s["draw"])
    lazy = ntk.lazy_training(X, y, W0, a, eta, steps, records=20)
    if lazy.diverged_at > 0:  # again up to the divergence, every step recorded: the loss curve is drawn up to there
        lazy = ntk.lazy_training(X, y, W0, a, eta, lazy.diverged_at, records=lazy.diverged_at + 1)
    Z = ntk.circle_inputs(TEST_ANGLES)
    H, K, lam0 = kernels()
    with ntk.one_blas_thread():
        f0 = nets.du_forward(W0, a, Z)
        f_net = nets.du_forward(lazy.W, a, Z) if lazy.diverged_at < 0 else np.full(Z.shape[0], np.nan)
    with np.errstate(over="ignore", invalid="ignore"):  # the kernel model diverges too when eta > 2 / lambda_max
        f_ker = ntk.kernel_predictor(K, H, y, u0=lazy.u[0], f0_te=f0, t=steps * eta, eta=eta)
    return Run(s, lazy, f_net, f0, f_ker, lam0)
