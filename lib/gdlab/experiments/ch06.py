"""Chapter 6 explorer: gradient descent, noisy GD, perturbed GD or SGLD on the worked strict saddle
``f = x^2/2 + y^4/4 - y^2/2``, from ``(1.5, offset)``, a chosen offset off the saddle's stable set (the x-axis).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import saddles
from ..spec import Control, Spec

#: The escape algorithms offered.
METHODS = ("GD", "noisy GD", "PGD", "SGLD")
#: Steps of every run and the start's x coordinate.
STEPS = 300
X0 = 1.5
#: PGD: perturb when ``|grad f| <= g_thres``, then wait t_thres = ceil(PGD_WAIT / alpha) steps (the theory's t_thres
#: scales like 1/eta) and stop if f fell by less than f_thres meanwhile.
PGD = {"g_thres": 0.01, "f_thres": 1e-4}
PGD_WAIT = 6.0
#: A run "leaves the saddle" when ``|y|`` first reaches this.
ESCAPE_R = 0.5

#: The explorer's settings. On the page: every method; a tiny, the default and a large noise level; the default step
#: and a step of 1; a start 1e-16 off the stable set (GD needs longer than the run to leave) and the default 1e-12.
SPEC = Spec((
    Control("method", "method", "choice", "noisy GD", options=METHODS, page=METHODS),
    Control("noise", "noise level", "log", 0.01, low=1e-6, high=1.0, step=0.05, page=(1e-6, 0.01, 1.0)),
    Control("alpha", "step size alpha", "log", 0.1, low=1e-2, high=1.0, step=0.05, page=(0.1, 1.0)),
    Control("offset", "start offset y0", "log", 1e-12, low=1e-16, high=0.1, step=0.5, page=(1e-16, 1e-12)),
    Control("draw", "draw", "int", 0, low=0, high=99, step=1),
))


class Run(NamedTuple):
    """One setting of the chapter-6 explorer: the path ``x`` (T+1, 2), ``f`` (T+1,), ``escaped_at`` (first step with
    ``|y| >= ESCAPE_R``, -1: never), ``diverged_at`` (-1: never), and PGD's perturbation steps and return step."""

    settings: dict
    x: np.ndarray
    f: np.ndarray
    escaped_at: int
    diverged_at: int
    perturbations: np.ndarray
    returned: int


def run(**settings) -> Run:
    """Run ``method`` with step ``alpha`` and noise level ``noise`` (noisy GD's noise size, PGD's radius, SGLD's
    eps; GD ignores it) from ``(X0, offset)`` on the worked example for :data:`STEPS` steps (settings of
    :data:`SPEC`)."""
    s = SPEC.bind(settings)
    method, noise, alpha, draw = s["method"], s["noise"], s["alpha"], s["draw"]
    x0 = np.array([X0, s["offset"]])
    f, grad = saddles.example_value, saddles.example_grad
    if method == "PGD":
        prm = saddles.PGDParameters(eta=alpha, r=max(noise, 1e-300), t_thres=int(np.ceil(PGD_WAIT / alpha)), **PGD)
        pgd = saddles.perturbed_gd(f, grad, x0, prm, STEPS, seed=draw)
        x, fx, div = pgd.x, pgd.f, pgd.diverged_at
        pert, ret = np.nonzero(pgd.perturbed)[0], pgd.returned
    else:
        if method == "SGLD":
            path = saddles.sgld_path(f, grad, x0, alpha, noise, STEPS, seed=draw)
        else:
            path = saddles.noisy_gd(f, grad, x0, alpha, STEPS, seed=draw, noise=noise if method == "noisy GD" else 0.0)
        x, fx, div, pert, ret = path.x, path.f, path.diverged_at, np.zeros(0, dtype=int), -1
    far = np.nonzero(np.abs(x[:, 1]) >= ESCAPE_R)[0]
    return Run(s, x, fx, int(far[0]) if far.size else -1, div, pert, ret)
