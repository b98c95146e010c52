"""Bad input and divergence everywhere a reader can reach (issue 20, item 4): every explorer of
``gdlab.widgets.EXPLORERS`` is driven over every corner of its controls and along a seeded random walk of its ipywidgets
controls, and each drawn state is read as a reader sees it:

* no visible text of the figure (figure texts, axes titles, axis labels, texts, legends, tick labels), no status line
  and no alt text prints a non-finite number (``nan``, ``inf``, ``-inf``, ``NaN`` as words);
* no panel is empty without saying why: every visible axes draws data inside its limits or carries a message;
* when the run diverged by the library's own record (its result's ``diverged_at``, :mod:`gdlab.runs`), the figure,
  the status line and the alt text say so in words;
* every state draws without a warning (warnings are errors while it draws);
* a setting the spec rejects (just outside a range, NaN, inf, a huge int, a string, None, a bool) raises
  ``ValueError`` naming the setting, so ``safe_frame`` turns it into a message, and the figure is not touched.

The checks are functions that return the problems they find (tests/explorer_checks.py); the power tests at the end show
each of them finding the problem in a deliberately broken figure or view. The walk moves what a reader can move: one
control at a time, one step of its widget (a log slider one step of its exponent) or another option, from a random
state of the controls; the corners come from the spec (tests/explorer_checks.py: ``corners``).
"""

from __future__ import annotations

import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
from explorer_checks import (
    corners,
    divergence_problems,
    draws_cleanly,
    empty_axes_problems,
    just_outside,
    nonfinite_problems,
    random_walk,
    widget_ends,
)
from gdlab import widgets
from gdlab.plots.style import agg_figure
from matplotlib.ticker import FixedFormatter, FixedLocator

EXPLORERS = widgets.EXPLORERS
NAMES = list(EXPLORERS)
#: Seed of the walks (explorer i walks with seed SEED + i) and their length: a random start and WALK_STEPS moves.
SEED = 20
WALK_STEPS = 50
#: Values no control accepts, whatever its kind (besides those just outside its range, :func:`just_outside`).
BAD_VALUES = (math.nan, math.inf, -math.inf, 10**400, -(10**400), None, "1", True, 1 + 2j)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def recording(view_class: type) -> type:
    """A subclass of an explorer's view that keeps the result it drew last (``result``): the run's own divergence
    record, read by :func:`divergence_problems`. It draws exactly what the view draws."""

    class Recording(view_class):
        def _draw(self, res):
            self.result = res
            return super()._draw(res)

    Recording.__name__ = f"Recording{view_class.__name__}"
    return Recording


_RECORDING: dict[str, widgets.Explorer] = {}


def recording_explorer(name: str) -> widgets.Explorer:
    """The registered explorer ``name`` with a :func:`recording` view (one per explorer: the view is reused)."""
    if name not in _RECORDING:
        ex = EXPLORERS[name]
        _RECORDING[name] = widgets.Explorer(ex.name, ex.chapter, ex.spec, recording(type(ex.view)), ex.description)
    return _RECORDING[name]


def state_problems(explorer: widgets.Explorer, settings: dict) -> list[str]:
    """Draw ``settings`` (no warning allowed: :func:`draws_cleanly`) and read the figure, the status line and the alt
    text as a reader does: the problems found, each prefixed with the settings."""
    frame = draws_cleanly(explorer, settings)
    fig = explorer.view.fig
    found = (nonfinite_problems(fig, frame.alt, frame.status) + empty_axes_problems(fig)
             + divergence_problems(explorer.view.result, fig, frame.alt, frame.status))
    return [f"{settings}: {problem}" for problem in found]


def rejection_problems(explorer: widgets.Explorer, name: str, bad) -> list[str]:
    """Set ``name`` to ``bad`` (warnings are errors): the problems if it is not refused by a ``ValueError`` naming the
    setting (``safe_frame`` returns that message) or if the figure's status changed."""
    before = explorer.view.status
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            message = widgets.safe_frame(explorer, **{name: bad})
    except Exception as exc:  # noqa: BLE001 - any other exception (or warning) is the problem reported
        return [f"{name}={bad!r}: raised {type(exc).__name__}: {exc}"]
    if not isinstance(message, str):
        return [f"{name}={bad!r}: accepted (status {message.status!r})"]
    problems = [] if name in message else [f"{name}={bad!r}: the message does not name the setting: {message!r}"]
    if explorer.view.status != before:
        problems.append(f"{name}={bad!r}: the figure was redrawn")
    return problems


# --- every corner, a random walk, every rejected value ----------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_corner_reads_cleanly(name):
    ex = recording_explorer(name)
    problems = [p for settings in corners(ex.spec) for p in state_problems(ex, settings)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", NAMES)
def test_a_random_walk_over_the_controls_reads_cleanly(name):
    ex = recording_explorer(name)
    states = random_walk(ex, SEED + NAMES.index(name), WALK_STEPS)
    problems = [p for settings in states for p in state_problems(ex, settings)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", NAMES)
def test_rejected_settings_raise_naming_the_setting(name):
    ex = recording_explorer(name)
    ex.frame()
    problems = [p for control in ex.spec.controls for bad in (*just_outside(control), *BAD_VALUES)
                for p in rejection_problems(ex, control.name, bad)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", NAMES)
def test_the_walk_moves_every_control_within_what_the_widgets_offer(name):
    """The walk is what a reader can set: every state is accepted by the spec, each control takes several values,
    slider values stay within the widget's ends; the same seed gives the same walk."""
    ex = EXPLORERS[name]
    states = random_walk(ex, SEED + NAMES.index(name), WALK_STEPS)
    assert len(states) == WALK_STEPS + 1 and states == random_walk(ex, SEED + NAMES.index(name), WALK_STEPS)
    for state in states:  # the spec accepts it (a log slider's end may be a rounding off the spec's end)
        bound = ex.spec.bind(state)
        assert all(bound[k] == (v if isinstance(v, str) else pytest.approx(v, rel=1e-12)) for k, v in state.items())
    controls = ex.controls()
    for control in ex.spec.controls:
        values = [state[control.name] for state in states]
        assert len(set(values)) >= 2 or len(control.options) == 1, control.name
        if control.kind != "choice":
            low, high = widget_ends(controls[control.name])
            assert all(low * (1 - 1e-12) <= v <= high * (1 + 1e-12) for v in values)


# --- power: each check finds what it is for --------------------------------------------------------------------------


def _figure():
    """A small two-panel figure on its own canvas, both panels with a line inside their limits (not drawn yet)."""
    fig = agg_figure(4, 2)
    for i in range(2):
        ax = fig.add_axes((0.1 + 0.45 * i, 0.2, 0.35, 0.6))
        ax.plot([0, 1], [1, 2])
        ax.set(xlim=(0, 1), ylim=(0, 3))
    return fig


@pytest.mark.parametrize("place", ["figure text", "title", "left title", "x label", "y label", "axes text",
                                   "legend", "tick label", "alt", "status"])
@pytest.mark.parametrize("word", ["nan", "NaN", "inf", "-inf", "+Inf", "l(inf) = inf"])
def test_power_a_non_finite_number_anywhere_is_found(place, word):
    fig = _figure()
    ax = fig.axes[0]
    text = f"final loss {word}"
    alt = status = "final loss 0.1"
    if place == "figure text":
        fig.text(0.5, 0.9, text)
    elif place == "title":
        ax.set_title(text)
    elif place == "left title":
        ax.set_title(text, loc="left")
    elif place == "x label":
        ax.set_xlabel(text)
    elif place == "y label":
        ax.set_ylabel(text)
    elif place == "axes text":
        ax.text(0.5, 0.5, text)
    elif place == "legend":
        ax.lines[0].set_label(text)
        ax.legend()
    elif place == "tick label":
        ax.xaxis.set_major_locator(FixedLocator([0.0, 1.0]))
        ax.xaxis.set_major_formatter(FixedFormatter(["0", word]))
    elif place == "alt":
        alt = text
    else:
        status = text
    fig.canvas.draw()
    assert nonfinite_problems(fig, alt, status)


def test_power_words_and_notation_are_not_numbers():
    fig = _figure()
    fig.text(0.5, 0.9, "bounds on l(inf): infinity, information, lambda_inf, finance, nanometre, Inference")
    fig.canvas.draw()
    fig.axes[0].text(0.5, 0.5, "tick")
    fig.axes[1].text(0.5, 0.5, "nan", visible=False)  # hidden: the reader does not see it
    assert nonfinite_problems(fig, "alt 1e-3", "status 0.5") == []


@pytest.mark.parametrize("emptying", ["no data", "all NaN", "one point without markers", "outside the limits",
                                      "non-positive on a log axis", "hidden line", "invisible message",
                                      "empty message"])
def test_power_an_empty_panel_without_a_message_is_found(emptying):
    fig = _figure()
    ax = fig.axes[1]
    line = ax.lines[0]
    data = {"no data": ([], []), "all NaN": ([0, 1], [np.nan, np.nan]), "one point without markers": ([0.5], [1]),
            "outside the limits": ([2, 3], [5, 6]), "non-positive on a log axis": ([0, 1], [-1, 0])}
    line.set_data(*data.get(emptying, ([], [])))
    if emptying == "non-positive on a log axis":
        ax.set_yscale("log")
        ax.set_ylim(1e-3, 1.0)
    if emptying == "hidden line":
        line.set_data([0, 1], [1, 2])
        line.set_visible(False)
    if emptying == "invisible message":
        ax.text(0.5, 0.5, "diverged at step 3", visible=False)
    if emptying == "empty message":
        ax.text(0.5, 0.5, " ")
    problems = empty_axes_problems(fig)
    assert len(problems) == 1 and problems[0].startswith("axes 1")
    ax.text(0.5, 0.5, "diverged at step 3")  # a message on the empty panel: says why
    assert empty_axes_problems(fig) == []


def test_power_a_single_point_with_a_marker_and_other_artists_are_data():
    fig = _figure()
    fig.axes[0].lines[0].set(data=([0.5], [1.0]), marker="o")
    fig.axes[1].lines[0].remove()
    fig.axes[1].scatter([0.5], [1.0])
    assert empty_axes_problems(fig) == []


class _Result:
    def __init__(self, diverged_at):
        self.diverged_at = diverged_at


def test_power_a_divergence_not_said_is_found():
    fig = _figure()
    fig.text(0.5, 0.9, "GD diverged at step 3")
    said = "eta = 3: diverged at step 3"
    assert divergence_problems(_Result(3), fig, f"Explorer. Shown: {said}", said) == []
    assert divergence_problems(_Result(-1), fig, "no word", "no word") == []  # did not diverge: nothing to say
    problems = divergence_problems(_Result(3), fig, "Explorer. Shown: eta = 3: loss 1e300", "eta = 3: loss 1e300")
    assert sorted(p.split(" does not")[0].rsplit(" ", 1)[-1] for p in problems) == ["alt", "status"]
    fig.texts[0].set_text("GD stopped at step 3")
    assert len(divergence_problems(_Result(3), fig, said, said)) == 1


#: Deliberately broken variants of real views: (explorer, settings that show the breakage, breakage). Each breakage
#: edits the figure after the view drew it, and returns the status line to show.
def _nan_title(view, res, status):
    view.fig.axes[0].set_title("max |net - predictor| = nan")
    return status


def _old_ch04_status(view, res, status):
    """The chapter-4 bug before issue 16: a diverged run printed the comparison with the (missing) trained net."""
    return "t = 22: max |net - predictor| = nan"


def _emptied_axes(view, res, status):
    ax = view.fig.axes[0]
    for line in ax.lines:
        line.set_data([], [])
    for text in ax.texts:
        text.set_visible(False)
    return status


def _silent_divergence(view, res, status):
    for text in view.fig.texts + [t for ax in view.fig.axes for t in ax.texts]:
        text.set_text(text.get_text().replace("diverged", "stopped"))
    return status.replace("diverged", "stopped")


BROKEN = {
    "nan title": ("ch04 ntk", {}, _nan_title),
    "ch04's old status": ("ch04 ntk", {"eta": 10**0.5}, _old_ch04_status),
    "emptied axes": ("ch07 deep linear", {}, _emptied_axes),
    "divergence not said": ("ch07 deep linear", {"depth": 6, "eta": 1.0, "scale": 10**0.3, "draw": 0},
                            _silent_divergence),
}


@pytest.mark.parametrize("variant", list(BROKEN))
def test_power_the_checks_fail_on_a_broken_view(variant):
    name, settings, breakage = BROKEN[variant]
    good = recording_explorer(name)
    assert state_problems(good, settings) == []  # the real view passes on this state

    class Broken(recording(type(good.view))):
        def _draw(self, res):
            return breakage(self, res, super()._draw(res))

    broken = widgets.Explorer(good.name, good.chapter, good.spec, Broken)
    assert state_problems(broken, settings)


def test_power_a_rejection_that_does_not_name_the_setting_is_found(monkeypatch):
    ex = recording_explorer(NAMES[0])
    ex.frame()
    name = ex.spec.controls[0].name
    assert rejection_problems(ex, name, math.nan) == []

    def vague(**settings):
        raise ValueError("bad settings")

    monkeypatch.setattr(ex, "frame", vague)
    assert rejection_problems(ex, name, math.nan) == [f"{name}=nan: the message does not name the setting: "
                                                      "'Cannot draw these settings: bad settings'"]

    def overflow(**settings):
        raise OverflowError("int too large to convert to float")

    monkeypatch.setattr(ex, "frame", overflow)
    assert rejection_problems(ex, name, 10**400)[0].startswith(f"{name}=1000")
