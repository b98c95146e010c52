"""Tests of the chapter-5 explorer and plots: registration, every corner of the controls, the verdict it shows, bad
settings, and the chapter's figures on small inputs."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from explorer_checks import check_explorer_draws, explorer_corners
from gdlab import params, plots, widgets
from matplotlib.figure import Figure

EXPLORER = "ch05 params"


def test_explorer_is_registered_and_draws_defaults():
    ex = widgets.EXPLORERS[EXPLORER]
    assert set(ex.controls()) == set(ex.defaults) == {"width", "n_points", "data", "draw"}
    fig = ex.update(**ex.defaults)
    assert isinstance(fig, Figure)
    fig.canvas.draw()
    assert "rank D" in " ".join(t.get_text() for t in fig.texts)


@pytest.mark.parametrize("settings_", explorer_corners(EXPLORER))
def test_explorer_corners_never_raise_or_warn(settings_):
    check_explorer_draws(EXPLORER, settings_)


def test_explorer_verdict_follows_the_rank():
    res = plots.ch05_run(width=8, n_points=2, data="generic", draw=0)
    assert res.K > res.QN and res.rank == res.QN
    fig = plots.params_explorer_figure(width=8, n_points=2, data="generic", draw=0)
    assert "can still go to zero" in " ".join(t.get_text() for t in fig.texts)
    res = plots.ch05_run(width=1, n_points=12, data="generic", draw=0)
    assert res.rank < res.QN and res.rank <= res.rank_bound
    fig = plots.params_explorer_figure(width=1, n_points=12, data="generic", draw=0)
    assert "out of reach" in " ".join(t.get_text() for t in fig.texts)


def test_explorer_run_is_the_library_fit():
    res = plots.ch05_run(width=3, n_points=5, data="clustered", draw=4)
    X, Y = params.clustered_data(5, plots.CH05_M, plots.CH05_Q, 2, 1004)
    problem = params.FCProblem((plots.CH05_M, 3, plots.CH05_Q), X, Y)
    fit = params.fit(problem, params.init((plots.CH05_M, 3, plots.CH05_Q), 4), plots.CH05_STEPS, records=81)
    np.testing.assert_array_equal(res.fit.cost, fit.cost)
    assert res.K == problem.K and res.QN == 5 * plots.CH05_Q


def test_explorer_rejects_bad_settings_with_a_message():
    ex = widgets.EXPLORERS[EXPLORER]
    for bad, name in (({"width": 0}, "width"), ({"n_points": 0}, "n_points"), ({"data": "other"}, "data"),
                      ({"draw": -1}, "draw")):
        message = widgets.safe_update(ex, **{**ex.defaults, **bad})
        assert isinstance(message, str) and name in message


def test_chapter_figures_draw_on_small_inputs():
    s = np.linspace(0, 5, 6)
    figs = [
        plots.output_flow_figure(s, np.logspace(0, -3, 6), np.logspace(0, -2, 6), np.logspace(0, -1, 6),
                                 np.linspace(0.1, 0.2, 6)),
        plots.transition_figure([0.5, 1.0, 1.5], [1.0, 0.1, 1e-31], np.array([False, False, True])),
    ]
    for fig in figs:
        fig.canvas.draw()
    plt.close("all")
