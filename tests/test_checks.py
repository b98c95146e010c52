"""The argument checks behind the bad-input policy (design.md): ValueError naming the argument and the range."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gdlab._checks import as_array, as_float, as_int, as_rng


def test_as_array_accepts_and_converts():
    arr = as_array("x", [[1, 2], [3, 4]], shape=(2, None))
    assert arr.dtype == np.float64
    assert arr.shape == (2, 2)
    assert np.array_equal(arr, [[1.0, 2.0], [3.0, 4.0]])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_as_array_rejects_non_finite(bad):
    with pytest.raises(ValueError, match=r"^x must contain only finite values"):
        as_array("x", [1.0, bad])


def test_as_array_rejects_wrong_ndim_and_shape():
    with pytest.raises(ValueError, match=r"^w0 must have 1 dimension"):
        as_array("w0", np.zeros((2, 2)), ndim=1)
    with pytest.raises(ValueError, match=r"^X must have shape \(3, any\)"):
        as_array("X", np.zeros((2, 5)), shape=(3, None))
    with pytest.raises(ValueError, match=r"^X must have shape"):
        as_array("X", np.zeros(3), shape=(3, None))
    with pytest.raises(ValueError, match=r"^s must be an array of real numbers"):
        as_array("s", "abc")
    with pytest.raises(ValueError, match=r"^s must be an array of real numbers"):
        as_array("s", [1.0, None, "x"])


@pytest.mark.parametrize("bad", [np.array([1.0 + 2.0j]), np.complex64(1.0), np.array([1.0 + 0.0j])])
def test_as_array_rejects_complex_arrays_without_a_warning(bad):
    """A complex numpy array is refused, not cast to its real part with a ComplexWarning (this test runs with
    warnings as errors, tests/conftest.py)."""
    with pytest.raises(ValueError, match=r"^z must be an array of real numbers; got complex values"):
        as_array("z", bad)


@pytest.mark.parametrize("bad", [10**400, [1.0, -(10**400)], np.array([10**400], dtype=object)])
def test_as_array_rejects_ints_beyond_the_float_range(bad):
    with pytest.raises(ValueError, match=r"^x must contain only finite values .* beyond the float range"):
        as_array("x", bad)


def test_as_int():
    assert as_int("k", 3) == 3
    assert as_int("k", np.int64(7)) == 7
    assert type(as_int("k", np.int64(7))) is int
    assert as_int("k", 0, low=0) == 0
    for bad in (0, -1, 2.0, 2.5, "3", None, True, False, np.float64(2.0)):
        with pytest.raises(ValueError, match=r"^k must be an integer in \[1, inf\]"):
            as_int("k", bad)
    with pytest.raises(ValueError, match=r"^n must be an integer in \[2, 5\]"):
        as_int("n", 6, low=2, high=5)


def test_as_float():
    assert as_float("eta", 0.5) == 0.5
    assert as_float("eta", 1) == 1.0
    assert as_float("t", 0.0, low_open=False) == 0.0
    for bad in (0.0, -1.0, np.nan, np.inf, "0.1", None, True):
        with pytest.raises(ValueError, match=r"^eta must be"):
            as_float("eta", bad)
    with pytest.raises(ValueError, match=r"^rtol must be a finite number in \(0, 1\]"):
        as_float("rtol", 2.0, high=1.0)
    with pytest.raises(ValueError, match=r"^x must be a finite number in \(0, 1\)"):
        as_float("x", 1.0, high=1.0, high_open=True)
    for huge in (10**400, -(10**400)):  # a Python int beyond the float range: a ValueError, not an OverflowError
        with pytest.raises(ValueError, match=r"^eta must be a finite number in \(0, inf\]; got an integer beyond"):
            as_float("eta", huge)


def test_bad_input_tests_run_with_warnings_as_errors():
    """tests/conftest.py marks every test that checks a bad input with filterwarnings("error"), this one included."""
    with pytest.raises(ValueError, match="^k must be"):
        as_int("k", 0)
    with pytest.raises(UserWarning, match="an error here"):
        warnings.warn("a warning is an error here", UserWarning, stacklevel=1)


def test_power_other_tests_keep_the_default_warning_filters(request):
    """A test that checks no bad input is not marked, so the conftest rule is what marks the one above."""
    assert request.node.get_closest_marker("filterwarnings") is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("only recorded", UserWarning, stacklevel=1)
    assert len(caught) == 1


def test_as_rng():
    gen = np.random.default_rng(3)
    assert as_rng(gen) is gen
    assert np.array_equal(as_rng(5).normal(size=4), np.random.default_rng(5).normal(size=4))
    assert np.array_equal(as_rng(np.int64(5)).normal(size=4), np.random.default_rng(5).normal(size=4))
    for bad in (-1, 1.5, 2.0, "0", None, True, [1, 2], np.random.RandomState(0)):
        with pytest.raises(ValueError, match=r"^seed must be a non-negative integer"):
            as_rng(bad)
