"""Argument checks shared by every public function (the book's bad-input policy, design.md).

Each check raises :class:`ValueError` with a message that names the argument and the accepted range.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np


def as_array(name: str, value, shape: Sequence[int | None] | None = None, ndim: int | None = None) -> np.ndarray:
    """Return ``value`` as a finite float64 array, checking its number of dimensions and shape.

    ``shape`` may contain ``None`` for a free axis. Raises ``ValueError`` naming ``name``.
    """
    dtype = getattr(value, "dtype", None)
    if dtype is not None and np.issubdtype(dtype, np.complexfloating):  # not a silent cast (a ComplexWarning)
        raise ValueError(f"{name} must be an array of real numbers; got complex values ({dtype})")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of real numbers; got {type(value).__name__}") from exc
    except OverflowError as exc:  # a Python int beyond the float range
        raise ValueError(f"{name} must contain only finite values (no NaN or inf); got a number beyond the float "
                         "range") from exc
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s); got shape {arr.shape}")
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape, strict=True)):
            want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name} must have shape {want}; got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values (no NaN or inf)")
    return arr


def as_int(name: str, value, low: int = 1, high: int | None = None) -> int:
    """Return ``value`` as an int in ``[low, high]`` (``high=None``: no upper limit)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer in [{low}, {high if high is not None else 'inf'}]; got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer in [{low}, {high if high is not None else 'inf'}]; got {value}")
    return value


def as_float(name: str, value, low: float = 0.0, high: float = np.inf, *, low_open: bool = True,
             high_open: bool = False) -> float:
    """Return ``value`` as a finite float in the interval ``(low, high]`` (openness set by the flags)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a real number; got {value!r}")
    try:
        value = float(value)
    except OverflowError:  # a Python int beyond the float range
        got = "an integer beyond the float range"
    else:
        lo_ok = value > low if low_open else value >= low
        hi_ok = value < high if high_open else value <= high
        if np.isfinite(value) and lo_ok and hi_ok:
            return value
        got = repr(value)
    interval = ("(" if low_open else "[") + f"{low:g}, {high:g}" + (")" if high_open else "]")
    raise ValueError(f"{name} must be a finite number in {interval}; got {got}")


def as_rng(seed) -> np.random.Generator:
    """Return a ``numpy.random.Generator`` from a seed (non-negative int) or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, Integral) and not isinstance(seed, bool) and seed >= 0:
        return np.random.default_rng(int(seed))
    raise ValueError(f"seed must be a non-negative integer or a numpy.random.Generator; got {seed!r}")
