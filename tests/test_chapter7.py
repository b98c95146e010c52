"""Tests of the chapter-7 explorer and plots: what the status line says, the explorer's run against the library, and
the chapter's figures on small inputs (the explorer's contract with its spec: tests/test_explorers.py)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from gdlab import deeplinear, nets, plots
from gdlab.experiments import ch07


def _status(fig) -> str:
    return " ".join(t.get_text() for t in fig.texts)


def test_explorer_run_is_the_library_run():
    res = ch07.run(depth=2, eta=0.05, scale=0.7, init="random", draw=3)
    X, Y, _ = deeplinear.whitened_data(ch07.D, ch07.M, ch07.SINGULAR_VALUES, seed=ch07.DATA_SEED)
    np.testing.assert_array_equal(ch07.data()[0], X)
    Ws0 = nets.deep_linear_init((ch07.D,) * 3, 0.7, 3)
    run = deeplinear.gradient_descent(Ws0, X, Y, 0.05, ch07.STEPS, records=41)
    np.testing.assert_array_equal(res.run.loss, run.loss)
    assert res.sharp_start == pytest.approx(deeplinear.sharpness(Ws0, X, Y), rel=1e-12)


def test_balanced_default_converges_below_the_stability_limit():
    res = ch07.run()
    assert res.run.diverged_at < 0 and res.run.loss[-1] < 1e-20
    assert res.settings["eta"] * res.sharp_end < 2.0
    assert res.run.delta[0] < 1e-12 < res.run.delta[-1]  # balanced at the start, not exactly after GD steps


def test_divergence_is_reported():
    view = plots.ch07.View()
    fig = view.update(depth=5, eta=1.0, scale=1.5, init="balanced", draw=0)
    res = ch07.run(depth=5, eta=1.0, scale=1.5, init="balanced", draw=0)
    assert res.run.diverged_at >= 0 and f"diverged at step {res.run.diverged_at}" in _status(fig)
    assert f"diverged at step {res.run.diverged_at}" in view.status
    fig = view.update()
    assert "2 / lambda_max at the start" in _status(fig) and "eta lambda_max" in _status(fig)


def test_a_divergence_at_step_1_is_a_dot_and_a_message_on_each_panel():
    """Found by tests/test_explorer_fuzz.py: a run that diverges at step 1 records one point, which a line without
    markers does not draw, so both panels were empty and said nothing. Now each panel shows the point (inside the
    view) and says where the run diverged; the loss panel also says why."""
    view = plots.ch07.View()
    settings = {"depth": 6, "eta": 1.0, "scale": 10**0.3, "init": "balanced", "draw": 0}
    fig = view.update(**settings)
    assert ch07.run(**settings).run.diverged_at == 1
    for ax in fig.axes:
        (line,) = ax.lines
        assert line.get_marker() == "o" and len(line.get_xdata()) == 1
        assert ax.get_xlim()[0] < 0.0 < ax.get_xlim()[1]
        said = [t.get_text() for t in ax.texts if t.get_visible()]
        assert len(said) == 1 and said[0].startswith("diverged at step 1")
    assert "not finite or" in fig.axes[0].texts[0].get_text()
    fig = view.update()
    assert all(line.get_marker() == "None" for ax in fig.axes for line in ax.lines)
    assert not any(t.get_visible() for ax in fig.axes for t in ax.texts)
    assert fig.axes[0].get_xlim() == (0.0, ch07.STEPS)


def test_chapter_figures_draw_on_small_inputs():
    X, Y, _ = deeplinear.whitened_data(2, 4, (1.0, 0.5), seed=0)
    W0 = deeplinear.balanced_init((2, 2, 2), 1.0, seed=0)
    scan = deeplinear.step_scan(W0, X, Y, [0.1, 1.0, 5.0], steps=50)
    run = deeplinear.gradient_descent(W0, X, Y, 0.1, 20, records=5)
    sharp = deeplinear.gradient_descent(W0, X, Y, 0.1, 20, records=5, sharpness_records=5)
    figs = [
        plots.sharpness_path_figure({0.1: sharp, 0.2: run}),  # a run without sharpness records draws nothing
        plots.balance_drift_figure(np.array([1e-3, 1e-2]), np.array([1e-8, 1e-6]), 2.0),
        plots.step_scan_depths_figure({2: scan}, {2: 0.5}),
        plots.decaying_steps_figure({"gamma = 0": run}),
    ]
    for fig in figs:
        fig.canvas.draw()
    plt.close("all")


def _exact_zero_frame(monkeypatch):
    """The chapter-7 explorer at N = 1, eta = 1, a balanced start of scale 2 (eta lambda = 1: the minimum in one
    step), with the run's loss exactly 0 after the start, as one numpy build computes it (another leaves 1e-33)."""
    from gdlab import widgets

    explorer = widgets.EXPLORERS["ch07 deep linear"]
    view = explorer.view
    real = ch07.run

    def exact_zero(**settings):
        res = real(**settings)
        loss = res.run.loss.copy()
        loss[1:] = 0.0
        return res._replace(run=res.run._replace(loss=loss))

    monkeypatch.setattr(type(view), "run", staticmethod(exact_zero))
    settings = {"depth": 1, "eta": 1.0, "scale": ch07.SPEC["scale"].high, "init": "balanced", "draw": 0}
    fig = explorer.update(**settings)
    return fig, view.status


def test_explorer_draws_an_exact_zero_loss_at_the_floor(monkeypatch):
    """A loss of exactly 0 is drawn at the axis floor (the whole curve, 41 records), not dropped from the log axis
    (which left one point and an empty panel, found by the explorer fuzz on numpy 2.5), and the status prints it
    as round-off, whatever digits the numpy build leaves."""
    from explorer_checks import empty_axes_problems

    fig, status = _exact_zero_frame(monkeypatch)
    assert empty_axes_problems(fig) == []
    assert fig.axes[0].lines[0].get_xdata().size == ch07.run(**ch07.SPEC.defaults).run.k.size
    assert "at the end loss < 1e-20 (round-off)" in status


def test_power_dropping_exact_zeros_leaves_an_empty_panel(monkeypatch):
    """Power test: with no floor (exact zeros dropped from the log axis, as before) the check above finds the
    empty loss panel."""
    from explorer_checks import empty_axes_problems

    monkeypatch.setattr(plots.ch07, "LOSS_FLOOR", 0.0)
    fig, _ = _exact_zero_frame(monkeypatch)
    assert empty_axes_problems(fig)
