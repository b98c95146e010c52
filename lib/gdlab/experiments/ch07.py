"""Chapter 7 explorer: gradient descent on a deep linear network with a constant step (depth, step, initial scale,
balanced or random start); and the chapter's whitened data, which the chapter's notebook imports.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .. import deeplinear, nets
from ..spec import Control, Spec

#: The chapter's network and data: d = 4 inputs and outputs (hidden widths 4), M = 16 whitened samples of a target map
#: with these singular values, drawn with seed DATA_SEED; the explorer runs STEPS steps.
D, M, STEPS = 4, 16, 300
SINGULAR_VALUES = (2.0, 1.5, 1.0, 0.5)
DATA_SEED = 7

#: The explorer's settings. On the page: depths 2, 3 and 5; the default step and steps just below and above
#: 2 / lambda_max = 0.238 at the default start; a small and the default initial scale; balanced and random starts;
#: the default draw and draw 0 (whose det W(0) has the wrong sign: the loss stalls at the best rank-3 fit).
SPEC = Spec((
    Control("depth", "depth N", "int", 3, low=1, high=6, step=1, page=(2, 3, 5)),
    Control("eta", "step size eta", "log", 0.1, low=1e-3, high=1.0, step=0.05, page=(0.1, 0.2, 0.3)),
    Control("scale", "initial scale", "log", 1.0, low=0.1, high=10**0.3, step=0.05, page=(0.3, 1.0)),
    Control("init", "init", "choice", "balanced", options=("balanced", "random"), page=("balanced", "random")),
    Control("draw", "draw", "int", 1, low=0, high=99, step=1, page=(0, 1)),
))


@lru_cache(maxsize=1)
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The chapter's whitened data (:func:`gdlab.deeplinear.whitened_data`): ``X`` (D, M), ``Y`` (D, M) and the
    target map ``Phi`` (D, D); computed once, read-only."""
    X, Y, Phi = deeplinear.whitened_data(D, M, SINGULAR_VALUES, seed=DATA_SEED)
    for a in (X, Y, Phi):
        a.flags.writeable = False
    return X, Y, Phi


class Run(NamedTuple):
    """One setting of the chapter-7 explorer: the gradient-descent run (:class:`gdlab.deeplinear.DLRun`, 41 records;
    every step up to the divergence if it diverged) and the sharpness ``lambda_max`` at its start and end (NaN at the
    end of a diverged run)."""

    settings: dict
    run: deeplinear.DLRun
    sharp_start: float
    sharp_end: float

    @property
    def diverged_at(self) -> int:
        """The step at which gradient descent diverged, -1 if it did not (:mod:`gdlab.runs`)."""
        return self.run.diverged_at


def run(**settings) -> Run:
    """Train the explorer's deep linear network of ``depth`` layers with constant step ``eta`` from a balanced or a
    random (Gaussian, unbalanced) initialisation of size ``scale`` (settings of :data:`SPEC`)."""
    s = SPEC.bind(settings)
    dims = (D,) * (s["depth"] + 1)
    init = deeplinear.balanced_init if s["init"] == "balanced" else nets.deep_linear_init
    Ws0 = init(dims, s["scale"], s["draw"])
    X, Y, _ = data()
    dl = deeplinear.gradient_descent(Ws0, X, Y, s["eta"], STEPS, records=41)
    if dl.diverged_at > 0:  # again up to the divergence, every step recorded: the loss curve is drawn up to there
        dl = deeplinear.gradient_descent(Ws0, X, Y, s["eta"], dl.diverged_at, records=dl.diverged_at + 1)
    end = deeplinear.sharpness(dl.Ws, X, Y) if dl.diverged_at < 0 else float("nan")
    return Run(s, dl, deeplinear.sharpness(Ws0, X, Y), end)
