"""The explorers' contract, written once and run over every explorer of ``gdlab.widgets.EXPLORERS``.

* one home for every setting: the widgets, the validation of the run and the page states are all derived from the
  chapter's ``SPEC`` and agree with it (ends accepted, values just outside rejected, page values reachable), and
  neither the run nor the view has defaults of its own;
* every page state and every corner of the controls draws without a warning;
* ``update`` returns the same Figure on every call, bad settings raise before the figure is touched (and
  ``safe_update`` turns them into a message); ``frame`` is deterministic; the status line and alt text say what
  the figure shows and change with the state;
* ``live``: controls, an image and a status line in a kernel; the marked-up default frame in the book build.

Chapter-specific checks of what an explorer shows (the chapter's content) stay in tests/test_chapterN.py.
"""

from __future__ import annotations

import base64
import html
import inspect

import ipywidgets
import matplotlib.pyplot as plt
import pytest
from explorer_checks import control_ends, corners, draws_cleanly, just_outside, widget_ends
from gdlab import experiments, plots, widgets
from gdlab.plots.style import ExplorerView
from gdlab.spec import Spec
from matplotlib.figure import Figure

EXPLORERS = widgets.EXPLORERS
NAMES = list(EXPLORERS)
#: The registry: name -> chapter. The names are what the notebooks, the benchmarks and the book build use.
REGISTRY = {"ch01 landscape": "1", "ch02 gd vs flow": "2", "ch03 health": "3", "ch04 ntk": "4", "ch05 params": "5",
            "ch06 saddles": "6", "ch07 deep linear": "7"}
WIDGET_CLASS = {"int": ipywidgets.IntSlider, "float": ipywidgets.FloatSlider, "log": ipywidgets.FloatLogSlider}


def _experiment(name: str):
    return getattr(experiments, f"ch{int(EXPLORERS[name].chapter):02d}")


def _other_state(spec: Spec) -> dict:
    """A page state other than the defaults (the last one)."""
    states = [s for s in spec.page_states() if s != spec.defaults]
    return states[-1]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_registry_names_chapters_specs_and_views():
    assert {name: ex.chapter for name, ex in EXPLORERS.items()} == REGISTRY
    for name, ex in EXPLORERS.items():
        module = _experiment(name)
        assert ex.spec is module.SPEC
        assert isinstance(ex.view, getattr(plots, f"ch{int(ex.chapter):02d}").View)
        assert ex.view.run is module.run
        assert ex.description


# --- one home for every setting: widgets, validation and page states from the spec ---------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_controls_are_the_spec(name):
    """One widget per control, in the spec's order, at the default, over the control's range, labelled by it."""
    ex = EXPLORERS[name]
    controls = ex.controls()
    assert list(controls) == list(ex.spec.names)
    for control in ex.spec.controls:
        widget = controls[control.name]
        assert widget.description == control.label and widget.value == control.default
        if control.kind == "choice":
            cls = ipywidgets.SelectionSlider if control.slider else ipywidgets.Dropdown
            assert isinstance(widget, cls) and tuple(widget.options) == control.options
        else:
            assert isinstance(widget, WIDGET_CLASS[control.kind]) and not widget.continuous_update
            assert widget_ends(widget) == pytest.approx(control_ends(control), rel=1e-12)
            assert widget.step == pytest.approx(control.step)


@pytest.mark.parametrize("name", NAMES)
def test_validation_accepts_the_widget_ends_and_rejects_values_just_outside(name):
    """Every value a control offers is accepted by the run's validation (the spec), every value just outside its
    range is rejected by the run with a message naming the setting; the defaults are the spec's."""
    ex, run = EXPLORERS[name], _experiment(name).run
    assert ex.defaults == ex.spec.defaults and ex.defaults is not ex.defaults  # a copy each time
    for control, widget in zip(ex.spec.controls, ex.controls().values(), strict=True):
        for end, exact in zip(widget_ends(widget), control_ends(control), strict=True):
            assert ex.spec.bind({control.name: end})[control.name] == exact
        for bad in just_outside(control):
            with pytest.raises(ValueError, match=control.name):
                ex.spec.bind({control.name: bad})
            with pytest.raises(ValueError, match=control.name):
                run(**{control.name: bad})
    assert run().settings == ex.spec.defaults


@pytest.mark.parametrize("name", NAMES)
def test_page_states_come_from_the_spec(name):
    """The page shows 2-6 values of each shown control, inside what the widget offers (on an int slider's grid),
    the default among them; 24 to 72 states in all, every one valid, the defaults among them."""
    ex = EXPLORERS[name]
    spec, controls = ex.spec, ex.controls()
    assert spec.page_controls
    for control in spec.page_controls:
        assert 2 <= len(control.page) <= 6 and len(set(control.page)) == len(control.page)
        assert control.default in control.page
        low, high = widget_ends(controls[control.name])
        for value in control.page:
            if control.kind == "choice":
                assert value in controls[control.name].options
            else:
                assert low * (1 - 1e-12) <= value <= high * (1 + 1e-12)
            if control.kind == "int":
                assert (value - control.low) % control.step == 0
    states = list(spec.page_states())
    assert len(states) == spec.n_page_states and 24 <= len(states) <= 72
    assert all(spec.bind(state) == state for state in states)
    assert spec.defaults in states


@pytest.mark.parametrize("name", NAMES)
def test_run_and_view_take_their_settings_from_the_spec_only(name):
    """``run(**settings)`` and ``View.update(**settings)`` have no parameters (so no defaults) of their own."""
    ex = EXPLORERS[name]
    for fn in (_experiment(name).run, type(ex.view).update, ExplorerView.update):
        params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
        assert [p.kind for p in params] == [inspect.Parameter.VAR_KEYWORD], fn
    assert type(ex.view).update is ExplorerView.update  # one update for every chapter


# --- every state draws -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_page_state_draws_without_warnings(name):
    ex = EXPLORERS[name]
    for state in ex.spec.page_states():
        frame = draws_cleanly(ex, state)
        assert frame.png.startswith(b"\x89PNG") and frame.status and frame.alt


def distinct_figures(frames: dict) -> list[tuple]:
    """The pairs of states (keys of ``frames``, state -> Frame) whose figures are the same PNG."""
    seen, same = {}, []
    for key, frame in frames.items():
        if frame.png in seen:
            same.append((seen[frame.png], key))
        seen.setdefault(frame.png, key)
    return same


@pytest.mark.parametrize("name", NAMES)
def test_every_page_state_draws_a_different_figure(name):
    """On the web page every move of a control must change the figure, not only the status line (a start offset far
    below chapter 6's noise changes nothing in the run: its figure prints the settings)."""
    ex = EXPLORERS[name]
    frames = {tuple(state.items()): ex.frame(**state) for state in ex.spec.page_states()}
    assert not distinct_figures(frames), f"{name}: states with the same figure: {distinct_figures(frames)[:3]}"


def test_power_same_figure_for_two_states_is_found():
    a, b = widgets.Frame(b"png1", "a", "s1"), widgets.Frame(b"png2", "b", "s2")
    assert distinct_figures({1: a, 2: b}) == []
    assert distinct_figures({1: a, 2: b, 3: widgets.Frame(b"png1", "c", "s3")}) == [(1, 3)]


@pytest.mark.parametrize(("name", "settings"), [(name, corner) for name in NAMES
                                                for corner in corners(EXPLORERS[name].spec)],
                         ids=lambda v: v if isinstance(v, str) else "-".join(f"{x:g}" if isinstance(x, float) else
                                                                             str(x) for x in v.values()))
def test_every_corner_of_the_controls_draws_without_warnings(name, settings):
    frame = draws_cleanly(EXPLORERS[name], settings)
    assert frame.status


# --- the view: one figure, words, determinism -------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_update_returns_one_figure_not_managed_by_pyplot(name):
    ex = EXPLORERS[name]
    fig = ex.update()
    assert isinstance(fig, Figure)
    assert ex.update(**_other_state(ex.spec)) is fig and ex.update(**ex.defaults) is fig
    assert all(plt.figure(num) is not fig for num in plt.get_fignums())


@pytest.mark.parametrize("name", NAMES)
def test_bad_settings_raise_before_the_figure_is_touched(name):
    ex = EXPLORERS[name]
    before = ex.frame()
    control = ex.spec.controls[0]
    bad = {control.name: just_outside(control)[0]}
    with pytest.raises(ValueError, match=control.name):
        ex.update(**bad)
    with pytest.raises(ValueError, match="unknown setting"):
        ex.update(colour="red")
    assert (ex.view.status, ex.view.alt) == (before.status, before.alt)
    assert ex.frame() == before
    for safe in (widgets.safe_update, widgets.safe_frame):
        message = safe(ex, **bad)
        assert isinstance(message, str) and control.name in message


@pytest.mark.parametrize("name", NAMES)
def test_frame_is_deterministic(name):
    """The same state gives the same PNG bytes: twice in a row, after another state, and from a new view (the page's
    states are drawn in separate interpreters, in any order)."""
    ex = EXPLORERS[name]
    first = ex.frame()
    assert ex.frame() == first
    ex.frame(**_other_state(ex.spec))
    assert ex.frame() == first
    fresh = widgets.Explorer(name, ex.chapter, ex.spec, type(ex.view))
    assert fresh.frame() == first


@pytest.mark.parametrize("name", NAMES)
def test_status_and_alt_say_what_the_figure_shows(name):
    ex = EXPLORERS[name]
    default, other = ex.frame(), ex.frame(**_other_state(ex.spec))
    for frame in (default, other):
        assert frame.status and "\n" not in frame.status and "nan" not in frame.status
        assert frame.alt.startswith(type(ex.view).DESCRIPTION) and frame.alt.endswith(frame.status)
    assert other.status != default.status and other.alt != default.alt


# --- live: in a kernel, and in the book build ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_live_shows_controls_an_image_and_a_status_line(name, monkeypatch):
    monkeypatch.delenv(widgets.STATIC_ENV, raising=False)
    ex = EXPLORERS[name]
    box = widgets.live(ex)
    row, image, status = box.children
    controls = dict(zip(ex.spec.names, row.children, strict=True))
    assert isinstance(image, ipywidgets.Image) and image.format == "png"
    default = ex.frame()
    assert image.value == default.png and status.value.startswith(html.escape(default.status))
    assert html.escape(default.alt) in status.value  # the description, folded under the status line
    control = ex.spec.page_controls[0]
    new = next(v for v in control.page if v != control.default)
    controls[control.name].value = new
    moved = ex.frame(**{control.name: new})
    assert image.value == moved.png and status.value.startswith(html.escape(moved.status))
    assert html.escape(moved.alt) in status.value and not image.tooltip  # an Image's tooltip breaks ipywidgets 8.1

    def refuse(**settings):
        raise ValueError("no such state <here>")

    monkeypatch.setattr(ex, "frame", refuse)  # bad settings: the message in the status line, the image kept
    controls[control.name].value = control.default
    assert image.value == moved.png and "no such state &lt;here&gt;" in status.value


@pytest.mark.parametrize("name", NAMES)
def test_live_in_the_book_build_shows_the_marked_default_frame(name, monkeypatch):
    monkeypatch.setenv(widgets.STATIC_ENV, "1")
    ex = EXPLORERS[name]
    shown = widgets.live(ex)
    assert isinstance(shown, widgets.StaticExplorer)
    bundle = shown._repr_mimebundle_()
    default = ex.frame()
    assert base64.b64decode(bundle["image/png"]) == default.png and bundle["text/plain"] == default.alt
    data = base64.b64encode(default.png).decode("ascii")
    assert bundle["text/html"] == (
        f'<div class="gdlab-page-explorer" data-explorer="{html.escape(name)}"><img alt="{html.escape(default.alt)}" '
        f'src="data:image/png;base64,{data}"><p class="gdlab-explorer-status">{html.escape(default.status)}</p></div>')


def test_static_explorer_escapes_its_texts(monkeypatch):
    ex = EXPLORERS[NAMES[0]]
    monkeypatch.setattr(ex, "frame", lambda **settings: widgets.Frame(b"\x89PNG", 'a "<b>" & c', "x < 1 & y > 2"))
    page = widgets.StaticExplorer(ex).html()
    assert 'alt="a &quot;&lt;b&gt;&quot; &amp; c"' in page and ">x &lt; 1 &amp; y &gt; 2</p>" in page
