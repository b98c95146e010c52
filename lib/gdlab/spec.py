"""Declarative explorer specs: each control of an explorer written once (compute side; no figures, no widgets).

A :class:`Spec` is the one home of an explorer's settings. Each :class:`Control` declares a setting's name, its label,
its default, its range (or choices), whether a slider for it moves on a log scale, and the handful of values the
reader can pick on the web page (``page``). Everything else is derived from it:

* the defaults (:attr:`Spec.defaults`) and the argument checks of the experiment's run (:meth:`Spec.bind`, which
  raises ``ValueError`` naming the setting and its range);
* the ipywidgets controls (:func:`gdlab.widgets.control_widget`);
* the states drawn at build time for the web page (:meth:`Spec.page_states`: every combination of the page values),
  and through the widgets the benchmarks' random walks over the whole ranges.

Kinds of control: ``"int"`` (an integer slider, ``low..high`` by ``step``), ``"float"`` (a linear slider), ``"log"``
(a base-10 logarithmic slider between ``low`` and ``high``; ``step`` is in decades), ``"choice"`` (a drop-down, or a
selection slider when ``slider=True``, over ``options``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

KINDS = ("int", "float", "log", "choice")
#: Relative rounding of a log slider's ends that :meth:`Control.check` takes as the end itself.
LOG_SLACK = 1e-12


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Control:
    """One setting of an explorer (see the module docstring for the kinds).

    ``page`` lists the values offered on the web page, in order (the default among them); empty means the page shows
    no control for this setting and draws it at its default.
    """

    name: str
    label: str
    kind: str
    default: Any
    low: float | None = None
    high: float | None = None
    step: float | None = None
    options: tuple = ()
    page: tuple = ()
    slider: bool = False
    help: str = field(default="")

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind of control {self.name!r} must be one of {KINDS}; got {self.kind!r}")
        if self.kind == "choice":
            if not self.options:
                raise ValueError(f"control {self.name!r}: a choice needs options")
        elif self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"control {self.name!r}: needs low < high; got {self.low}, {self.high}")
        if self.kind == "log" and self.low <= 0:
            raise ValueError(f"control {self.name!r}: a log control needs low > 0; got {self.low}")
        if type(self.check(self.default)) is not type(self.default):
            raise ValueError(f"control {self.name!r}: write the default as the value it stands for "
                             f"({self.check(self.default)!r}); got {self.default!r}")
        for value in self.page:
            self.check(value)
        if self.page and self.default not in self.page:
            raise ValueError(f"control {self.name!r}: the page values {self.page} must include the default "
                             f"{self.default!r}")

    @property
    def range_text(self) -> str:
        """The accepted values in words (used in error messages)."""
        if self.kind == "choice":
            return "one of " + ", ".join(repr(o) for o in self.options)
        what = "an integer" if self.kind == "int" else "a number"
        return f"{what} in [{_fmt(self.low)}, {_fmt(self.high)}]"

    def check(self, value):
        """Return ``value`` normalised (int or float; for a choice, the option equal to it), or raise ``ValueError``
        naming this control and its range.

        A log control takes the values within a relative :data:`LOG_SLACK` of its ends as the ends: a log slider
        reports ``10**log10(high)``, which can miss ``high`` by a rounding (``10**log10(0.05) < 0.05``).
        """
        bad = ValueError(f"{self.name} must be {self.range_text}; got {value!r}")
        if self.kind == "choice":
            for option in self.options:
                if isinstance(option, bool) == isinstance(value, bool) and option == value:
                    return option  # 300 for 300.0: the option as declared
            raise bad
        if isinstance(value, bool) or not isinstance(value, Real):
            raise bad
        try:  # a Python int beyond the float range: out of range too, not an OverflowError
            if self.kind == "int":
                if not (isinstance(value, Integral) or float(value).is_integer()):
                    raise bad
                value = int(value)
                if not self.low <= value <= self.high:
                    raise bad
                return value
            value = float(value)
        except OverflowError:
            raise bad from None
        if self.kind == "log":
            for end in (self.low, self.high):
                if abs(value - end) <= LOG_SLACK * end:
                    value = float(end)
        if not (math.isfinite(value) and self.low <= value <= self.high):
            raise bad
        return value



@dataclass(frozen=True)
class Spec:
    """The controls of one explorer, in the order they are shown."""

    controls: tuple[Control, ...]

    def __post_init__(self):
        names = [c.name for c in self.controls]
        if len(set(names)) != len(names):
            raise ValueError(f"control names must be unique; got {names}")

    def __getitem__(self, name: str) -> Control:
        for control in self.controls:
            if control.name == name:
                return control
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        """The controls' names, in order."""
        return tuple(c.name for c in self.controls)

    @property
    def defaults(self) -> dict:
        """``{name: default}`` (a new dict on every call)."""
        return {c.name: c.default for c in self.controls}

    def bind(self, settings: Mapping[str, Any] | None = None, /, **kwargs) -> dict:
        """Every setting checked and normalised, the missing ones at their defaults.

        Raises ``ValueError`` for an unknown name or a value outside a control's range (naming both).
        """
        given = {**(settings or {}), **kwargs}
        unknown = sorted(set(given) - set(self.names))
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; the settings are {list(self.names)}")
        return {c.name: c.check(given[c.name]) if c.name in given else c.default for c in self.controls}

    @property
    def page_controls(self) -> tuple[Control, ...]:
        """The controls shown on the web page (those with page values)."""
        return tuple(c for c in self.controls if c.page)

    def page_states(self) -> Iterator[dict]:
        """Every combination of the page values (the other settings at their defaults), in a fixed order."""
        shown = self.page_controls
        for combo in itertools.product(*(c.page for c in shown)):
            yield self.bind(dict(zip((c.name for c in shown), combo, strict=True)))

    @property
    def n_page_states(self) -> int:
        """How many states the web page offers (the number of :meth:`page_states`)."""
        return math.prod(len(c.page) for c in self.page_controls)
