"""Chapter 1 explorer: gradient descent on the 2-D landscapes ("convex", "bulge", "trap") from a start point chosen
by the reader, and where its step size lies with respect to the global and the local step-size limits.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .._checks import as_float
from ..landscapes import LANDSCAPES, Paths, descent_paths, get_landscape, lipschitz_on_box, local_stability
from ..spec import Control, Spec

#: The square that holds every landscape's box: ``(x_min, x_max, y_min, y_max)`` (the range of the start point).
BOX = (
    min(ls.box[0] for ls in LANDSCAPES.values()),
    max(ls.box[1] for ls in LANDSCAPES.values()),
    min(ls.box[2] for ls in LANDSCAPES.values()),
    max(ls.box[3] for ls in LANDSCAPES.values()),
)

#: The explorer's settings. On the page: the three surfaces, a start on either side of the trap's saddle, and steps
#: below both limits, between them, and just below / above 2/L = 0.5 of the convex surface.
SPEC = Spec((
    Control("landscape", "landscape", "choice", "bulge", options=tuple(LANDSCAPES), page=tuple(LANDSCAPES)),
    Control("x0", "start x0", "float", 1.8, low=BOX[0], high=BOX[1], step=0.05, page=(-1.8, 1.8)),
    Control("y0", "start y0", "float", 1.6, low=BOX[2], high=BOX[3], step=0.05),
    Control("eta", "step size eta", "log", 0.3, low=1e-3, high=10**0.5, step=0.05, page=(0.1, 0.3, 0.45, 0.55, 1.0)),
    Control("n_steps", "steps", "int", 60, low=1, high=500, step=1),
))


@lru_cache(maxsize=16)
def lipschitz(name: str) -> float:
    """``L_box``: :func:`gdlab.landscapes.lipschitz_on_box` for a registered landscape, computed once per name."""
    return lipschitz_on_box(get_landscape(name))


@lru_cache(maxsize=16)
def local_limit(name: str) -> float:
    """The local stability limit ``2 / lambda_max(Hess f)`` at a registered landscape's global minimiser (cached)."""
    ls = get_landscape(name)
    return local_stability(ls, ls.minimiser).limit


def step_regime(eta: float, global_limit: float, local_limit: float) -> str:
    """Where ``eta`` lies with respect to the global limit ``2 / L_box`` and the local one ``2 / lambda_max``.

    Below the global limit every step from anywhere in the box decreases the loss (sufficient); below the local
    limit the minimum attracts the starts near it (what decides convergence there); above it the minimum is unstable.
    All three are positive numbers.
    """
    eta, global_limit, local_limit = (as_float(name, value) for name, value in
                                      (("eta", eta), ("global_limit", global_limit), ("local_limit", local_limit)))
    if eta < min(global_limit, local_limit):
        return "below both limits"
    if eta < local_limit:
        return "above 2/L_box, below the local limit"
    return "above the local limit: the star is unstable"


class Run(NamedTuple):
    """One setting of the chapter-1 explorer: the gradient-descent path (:class:`gdlab.landscapes.Paths` from one
    start: ``w`` (n_steps+1, 1, 2), ``loss`` (n_steps+1, 1), ``diverged_at`` (1,)), the landscape's ``L_box`` and
    its local limit ``2 / lambda_max`` at the global minimiser."""

    settings: dict
    paths: Paths
    L_box: float
    local_limit: float

    @property
    def diverged_at(self) -> int:
        """The step at which the run diverged, -1 if it did not (:mod:`gdlab.runs`)."""
        return int(self.paths.diverged_at[0])

    @property
    def global_limit(self) -> float:
        """``2 / L_box``: below it every step from anywhere in the square decreases the loss."""
        return 2 / self.L_box

    @property
    def regime(self) -> str:
        """:func:`step_regime` of this run's step size."""
        return step_regime(self.settings["eta"], self.global_limit, self.local_limit)


def run(**settings) -> Run:
    """Gradient descent with step ``eta`` from ``(x0, y0)`` for ``n_steps`` steps on ``landscape`` (settings of
    :data:`SPEC`)."""
    s = SPEC.bind(settings)
    name = s["landscape"]
    paths = descent_paths(get_landscape(name), np.array([[s["x0"], s["y0"]]]), s["eta"], s["n_steps"])
    return Run(s, paths, lipschitz(name), local_limit(name))
