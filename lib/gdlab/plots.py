"""Matplotlib figures drawn from the compute modules' result objects (plot layer; imports compute only).

Every function takes result objects (or the arguments to compute them) and returns a
``matplotlib.figure.Figure``; none of them computes anything a notebook could not get from the compute layer.
A diverged run is drawn up to its last finite point and labelled "diverged at step k" instead of a broken curve.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .flow import Trajectory

#: Colours used consistently across the book: measured runs, bounds and the flow.
COLORS = {"run": "#1f77b4", "flow": "#2ca02c", "bound": "#d62728", "bound2": "#9467bd", "gd": "#ff7f0e"}


def new_figure(ncols: int = 1, width: float = 4.2, height: float = 3.4):
    """A figure with ``ncols`` axes side by side, sized for the book's pages; returns ``(fig, axes)``."""
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), layout="constrained", squeeze=False)
    return fig, axes[0]


def diverged_label(traj: Trajectory) -> str:
    """A short status for a run: ``"diverged at step k"``, ``"diverged at t = ..."``, or ``""``."""
    if not traj.diverged:
        return ""
    if traj.diverged_at is not None:
        return f"diverged at step {traj.diverged_at}"
    return f"diverged at t = {traj.diverged_time:.3g}"


def finite_part(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points of a curve where ``y`` is finite (and positive, for log axes)."""
    keep = np.isfinite(y) & (y > 0)
    return x[keep], y[keep]


# --- chapter 1 -------------------------------------------------------------------------------------------

# --- chapter 2 -------------------------------------------------------------------------------------------
