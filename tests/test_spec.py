"""gdlab.spec: controls that refuse to be declared wrongly, binding of settings (defaults, normalisation, errors that
name the setting and its range), and the page states (their product and order)."""

from __future__ import annotations

import math

import pytest
from gdlab.spec import LOG_SLACK, Control, Spec


def _spec() -> Spec:
    return Spec((
        Control("kind", "kind", "choice", "b", options=("a", "b", "c"), page=("a", "b")),
        Control("n", "count n", "int", 10, low=1, high=50, step=1, page=(1, 10, 50)),
        Control("eta", "step eta", "log", 0.1, low=1e-3, high=1.0, step=0.05),
        Control("x", "start x", "float", 0.5, low=-1.0, high=1.0, step=0.1, page=(0.5, -0.5)),
    ))


# --- declaring a control ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"kind": "slider", "default": 1, "low": 0, "high": 2}, "kind of control 'c' must be one of"),
    ({"kind": "choice", "default": "a"}, "a choice needs options"),
    ({"kind": "int", "default": 1, "low": 2, "high": 2}, "needs low < high"),
    ({"kind": "float", "default": 1.0, "high": 2.0}, "needs low < high"),
    ({"kind": "log", "default": 1.0, "low": 0.0, "high": 2.0}, "log control needs low > 0"),
    ({"kind": "int", "default": 5, "low": 0, "high": 3}, r"c must be an integer in \[0, 3\]; got 5"),
    ({"kind": "float", "default": -0.5, "low": 0.0, "high": 1.0}, r"c must be a number in \[0, 1\]; got -0.5"),
    ({"kind": "choice", "default": "z", "options": ("a", "b")}, "c must be one of 'a', 'b'; got 'z'"),
    ({"kind": "float", "default": 1, "low": 0.0, "high": 2.0}, r"write the default as the value it stands for \(1.0\)"),
    ({"kind": "int", "default": 1, "low": 0, "high": 3, "page": (0, 4)}, "got 4"),
    ({"kind": "int", "default": 1, "low": 0, "high": 3, "page": (0, 2)}, "must include the default 1"),
])
def test_a_wrongly_declared_control_is_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        Control("c", "c", **kwargs)


def test_control_names_must_be_unique():
    control = Control("c", "c", "int", 1, low=0, high=3)
    with pytest.raises(ValueError, match="unique"):
        Spec((control, control))


# --- binding settings ------------------------------------------------------------------------------------------------


def test_bind_fills_in_the_defaults_in_the_spec_order():
    spec = _spec()
    assert spec.names == ("kind", "n", "eta", "x")
    assert spec.bind() == spec.defaults == {"kind": "b", "n": 10, "eta": 0.1, "x": 0.5}
    assert list(spec.bind(x=0.25, kind="c")) == list(spec.names)
    assert spec.bind({"n": 3}, n=4)["n"] == 4  # keywords over the mapping
    spec.defaults["n"] = 99
    assert spec.defaults["n"] == 10  # a new dict each time


def test_bind_normalises_values():
    spec = _spec()
    bound = spec.bind(n=7.0, eta=1, x=0)
    assert bound["n"] == 7 and type(bound["n"]) is int
    assert type(bound["eta"]) is float and type(bound["x"]) is float
    choice = Spec((Control("m", "m", "choice", 300, options=(10, 300)),))
    assert type(choice.bind(m=300.0)["m"]) is int  # the option as declared


def test_log_control_takes_a_rounded_end_as_the_end():
    eta = _spec()["eta"]
    assert eta.check(10 ** math.log10(1e-3)) == 1e-3
    assert eta.check(1.0 * (1 + LOG_SLACK / 2)) == 1.0 and eta.check(1e-3 * (1 - LOG_SLACK / 2)) == 1e-3
    assert eta.check(0.5) == 0.5
    with pytest.raises(ValueError, match="eta"):
        eta.check(1.0 * (1 + 1e-9))


@pytest.mark.parametrize(("settings", "words"), [
    ({"n": 0}, r"n must be an integer in \[1, 50\]; got 0"),
    ({"n": 51}, r"n must be an integer in \[1, 50\]; got 51"),
    ({"n": 2.5}, r"n must be an integer in \[1, 50\]; got 2.5"),
    ({"n": True}, "n must be an integer"),
    ({"n": "3"}, "n must be an integer"),
    ({"eta": 2.0}, r"eta must be a number in \[0.001, 1\]; got 2.0"),
    ({"eta": 0.0}, "eta must be a number"),
    ({"x": float("nan")}, r"x must be a number in \[-1, 1\]; got nan"),
    ({"x": float("inf")}, "x must be a number"),
    ({"kind": "d"}, "kind must be one of 'a', 'b', 'c'; got 'd'"),
    ({"n": 10**400}, r"n must be an integer in \[1, 50\]; got 1000"),  # beyond the float range: no OverflowError
    ({"n": -(10**400)}, r"n must be an integer in \[1, 50\]; got -1000"),
    ({"eta": 10**400}, r"eta must be a number in \[0.001, 1\]; got 1000"),
    ({"x": -(10**400)}, r"x must be a number in \[-1, 1\]; got -1000"),
    ({"size": 3}, r"unknown setting\(s\) \['size'\]; the settings are \['kind', 'n', 'eta', 'x'\]"),
])
def test_bind_errors_name_the_control_and_its_range(settings, words):
    with pytest.raises(ValueError, match=words):
        _spec().bind(settings)


def test_getitem_and_ranges_in_words():
    spec = _spec()
    assert spec["n"].range_text == "an integer in [1, 50]" and spec["kind"].range_text == "one of 'a', 'b', 'c'"
    with pytest.raises(KeyError):
        spec["size"]


# --- page states -----------------------------------------------------------------------------------------------------


def test_page_states_are_the_product_of_the_page_values_in_order():
    spec = _spec()
    assert [c.name for c in spec.page_controls] == ["kind", "n", "x"]
    states = list(spec.page_states())
    assert spec.n_page_states == len(states) == 2 * 3 * 2
    # the first page control varies slowest, in the order of its page values; the others sit at their defaults
    assert [(s["kind"], s["n"], s["x"]) for s in states[:6]] == [
        ("a", 1, 0.5), ("a", 1, -0.5), ("a", 10, 0.5), ("a", 10, -0.5), ("a", 50, 0.5), ("a", 50, -0.5)]
    assert {s["kind"] for s in states[6:]} == {"b"}
    assert all(s["eta"] == 0.1 and list(s) == list(spec.names) for s in states)
    assert spec.defaults in states


def test_no_page_controls_is_one_state():
    spec = Spec((Control("n", "n", "int", 1, low=0, high=3),))
    assert list(spec.page_states()) == [{"n": 1}] and spec.n_page_states == 1
