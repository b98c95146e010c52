"""Tests of the chapter-4 explorer and plots: registration, every corner of the controls, divergence shown as text,
the kernel predictor it draws, and the chapter's figures on small inputs."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from explorer_checks import check_explorer_draws, explorer_corners
from gdlab import nets, ntk, plots, widgets
from matplotlib.figure import Figure

EXPLORER = "ch04 ntk"


def test_explorer_is_registered_and_draws_defaults():
    ex = widgets.EXPLORERS[EXPLORER]
    assert set(ex.controls()) == set(ex.defaults) == {"m", "eta", "steps", "draw"}
    fig = ex.update(**ex.defaults)
    assert isinstance(fig, Figure)
    fig.canvas.draw()
    assert "|H(t) - H(0)|_F / |H(0)|_F" in " ".join(t.get_text() for t in fig.texts)


@pytest.mark.parametrize("settings_", explorer_corners(EXPLORER))
def test_explorer_corners_never_raise_or_warn(settings_):
    check_explorer_draws(EXPLORER, settings_)


def test_explorer_says_when_training_diverges():
    fig = plots.ntk_explorer_figure(m=10, eta=3.0, steps=100, draw=0)
    note = " ".join(t.get_text() for ax in fig.axes for t in ax.texts if t.get_visible())
    assert "diverged at step" in note and "kernel model diverges too" in note
    fig = plots.ntk_explorer_figure()
    assert not any(t.get_visible() and t.get_text() for ax in fig.axes for t in ax.texts)


def test_explorer_rejects_bad_settings_with_a_message():
    ex = widgets.EXPLORERS[EXPLORER]
    for bad, name in (({"m": 0}, "m"), ({"eta": -1.0}, "eta"), ({"steps": 0}, "steps"), ({"draw": -1}, "draw")):
        message = widgets.safe_update(ex, **{**ex.defaults, **bad})
        assert isinstance(message, str) and name in message


def test_explorer_kernel_predictor_is_the_linearised_model():
    """What the explorer draws as the kernel predictor equals gradient descent on the linearised model
    ``u <- u - eta H* (u - y)`` carried to the test inputs, iterated step by step."""
    res = plots.ch04_run(m=300, eta=0.4, steps=60, draw=2)
    H, K, _ = plots._ch04_kernels()
    y = plots.ch04_targets(plots.CH04_ANGLES)
    u, f = res.run.u[0].copy(), res.f0.copy()
    for _ in range(60):
        f -= 0.4 * K @ (u - y)
        u -= 0.4 * H @ (u - y)
    np.testing.assert_allclose(res.f_ker, f, rtol=1e-10, atol=1e-12)


def test_explorer_run_matches_the_library_training():
    res = plots.ch04_run(m=100, eta=0.5, steps=40, draw=5)
    W0, a = nets.du_init(100, 2, 5)
    X = ntk.circle_inputs(plots.CH04_ANGLES)
    run = ntk.lazy_training(X, plots.ch04_targets(plots.CH04_ANGLES), W0, a, 0.5, 40, records=25)
    np.testing.assert_array_equal(res.run.W, run.W)
    np.testing.assert_allclose(res.f_net, nets.du_forward(run.W, a, ntk.circle_inputs(plots._CH04_TEST)), rtol=1e-13)


def test_chapter_figures_draw_on_small_inputs():
    ms = np.array([10, 100, 1000])
    figs = [
        plots.step_residual_figure([1e-4, 1e-2, 1.0], [1e-12, 1e-4, 1e-2], [0, 3, 40]),
        plots.kernel_regression_figure(np.linspace(0, 1, 5), np.ones((5, 2)), np.linspace(0, 1, 3), np.ones((3, 2)),
                                       [0.5, 1.0]),
        plots.gram_error_figure(ms, np.array([[1.0, 0.9], [0.3, 0.35], [0.1, 0.09]]), np.array([3.0, 1.0, 0.3])),
        plots.lambda0_figure([1e-3, 1e-2, 1e-1], [1e-4, 1e-3, 1e-2], [1e-4, 1e-3, 5e-3]),
        plots.lazy_figure(ms, [1.0, 0.3, 0.1], [0.2, 0.07, 0.02], [0.5, 0.1, 0.03]),
        plots.ntk_convergence_figure({"m = 10": (np.linspace(0, 5, 6), np.logspace(0, -3, 6), 0.1)}, 0.2),
        plots.kernel_predictor_figure(np.linspace(0, 6, 7), np.zeros(7), np.zeros(7), [1.0], [0.0], ms,
                                      {"a": [0.1, 0.03, 0.01]}),
    ]
    for fig in figs:
        fig.canvas.draw()
    plt.close("all")
