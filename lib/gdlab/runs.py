"""How every gradient-descent runner of gdlab reports a run (compute layer): the one result convention, written once.

The runners (:func:`gdlab.flow.gradient_descent` and :func:`gdlab.flow.gradient_flow`,
:func:`gdlab.landscapes.descent_paths`, :func:`gdlab.bounds.one_point_descent`, :func:`gdlab.ntk.lazy_training`,
:func:`gdlab.params.fit` and :func:`gdlab.params.fit_one_hidden_batch`, the escape algorithms of :mod:`gdlab.saddles`,
:func:`gdlab.chain.chain_gd` and :func:`gdlab.chain.chain_gd_plain`, :func:`gdlab.deeplinear.gradient_descent`, and
the explorers' ``experiments.chNN.run``) all follow it:

* **Divergence.** A run diverges at the first step ``k`` at which its loss ``f(w_k)`` is not finite or is above
  ``divergence_threshold(f(w_0)) = DIVERGENCE_FACTOR (1 + |f(w_0)|)`` (:func:`diverges`; a loss equal to the threshold
  has not diverged), or at which the iterate or the gradient there is not finite (on the chain of saddles: the
  iterate has left the domains where ``f`` is defined; ``f`` is NaN there). Figures say it with
  :func:`diverged_text` (where) and :func:`divergence_rule` (why, in words).
* **One field, one sentinel.** That step is the result's ``diverged_at``: an int for one run, an int array (B,) for a
  batch of B runs, :data:`NOT_DIVERGED` (-1) where the run never diverged. Result classes derive ``diverged``
  (``diverged_at >= 0``) from it; no second stored field says the same thing.
* **Nothing after it.** A single run stops at ``diverged_at``: its records end at the last step before it. A batch
  keeps stepping its other runs; the records of a diverged run hold NaN from ``diverged_at`` on. A diverged run's
  final loss (or cost), where the result has one, is NaN. Fields that hold the last iterate (``W``, ``Ws``,
  ``theta``, ``x_out``) hold the iterate at which the divergence was detected; do not read them as a trained model.
* **The flow.** :func:`gdlab.flow.gradient_flow` has no steps: its ``diverged_at`` is the index of the record at
  which divergence was detected, its last record (the point where the loss reached the threshold, located inside the
  solver's step, or where the solver failed), and ``diverged_time`` that record's time.
* **Shared names.** ``k`` (R,) the recorded step indices (chosen by :func:`record_steps` where a runner records
  ``records`` of them), ``loss`` (R,) the recorded losses, ``w`` (R, p) recorded iterates, ``diverged_at``. Chapter 5
  calls its loss the cost ``C`` (``cost``) and chapter 6 its objective ``f`` at points ``x``: those names follow
  their chapters.

The tests in ``tests/test_runners.py`` hold every runner to this convention.
"""

from __future__ import annotations

import math

import numpy as np

from ._checks import as_int

#: The sentinel of ``diverged_at``: the run did not diverge.
NOT_DIVERGED = -1

#: A run has diverged once its loss exceeds this many times ``1 + |f(w_0)|`` (:func:`divergence_threshold`).
DIVERGENCE_FACTOR = 1e6


def divergence_threshold(f0):
    """``DIVERGENCE_FACTOR (1 + |f0|)``: the loss above which a run that started at loss ``f0`` has diverged (a
    number, or an array for a batch of runs)."""
    with np.errstate(over="ignore"):
        out = DIVERGENCE_FACTOR * (1.0 + np.abs(f0))
    return float(out) if np.ndim(out) == 0 else out


def diverges(loss, threshold):
    """Whether ``loss`` marks a diverged run: not finite, or above ``threshold`` (a bool, or a bool array for arrays).
    A loss equal to the threshold has not diverged."""
    if isinstance(loss, float | int) and np.ndim(threshold) == 0:  # the per-step check of a single run: stay cheap
        return not (math.isfinite(loss) and loss <= threshold)
    loss = np.asarray(loss, dtype=float)
    with np.errstate(invalid="ignore"):
        out = ~(np.isfinite(loss) & (loss <= threshold))
    return bool(out) if out.ndim == 0 else out


def diverged_text(diverged_at) -> str:
    """``"diverged at step k"`` for a run with ``diverged_at = k >= 0``, ``""`` for one that did not diverge: the words
    every figure and status line uses."""
    k = as_int("diverged_at", diverged_at, low=NOT_DIVERGED)
    return f"diverged at step {k}" if k != NOT_DIVERGED else ""


def divergence_rule(loss: str = "f(w_k)", start: str = "f(w_0)") -> str:
    """The rule of :func:`diverges` in words, for a figure: ``"f(w_k) not finite or above 1e6 (1 + |f(w_0)|)"`` with
    the names a chapter gives its loss at step k (``loss``) and at the start (``start``); the factor is
    :data:`DIVERGENCE_FACTOR`."""
    mantissa, exponent = f"{DIVERGENCE_FACTOR:.6e}".split("e")
    factor = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"  # 1e6, 2.5e12
    return f"{loss} not finite or above {factor} (1 + |{start}|)"


def record_steps(steps: int, records: int) -> np.ndarray:
    """About ``records`` step indices from 0 to ``steps`` (both included), spaced evenly: the steps ``k`` at which a
    runner that records ``records`` of its ``steps + 1`` iterates records them (chapters 4, 5 and 7). ``steps >= 0``,
    ``records >= 1`` (one record: step 0)."""
    steps, records = as_int("steps", steps, low=0), as_int("records", records, low=1)
    return np.unique(np.linspace(0, steps, min(records, steps + 1)).round().astype(int))
