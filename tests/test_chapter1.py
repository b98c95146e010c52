"""Tests for chapter 1: the counterexample on its whole line, the Hessian certificate of non-convexity, and the
chapter's figures and explorer (plots and widgets sections "chapter 1")."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from gdlab import plots, widgets
from gdlab.landscapes import (
    LANDSCAPES,
    HessianMin,
    descent_paths,
    get_landscape,
    hessian_min_eig_on_box,
    random_slices,
    segment_loss,
    segment_loss_closed_form,
    segment_loss_piecewise,
)
from gdlab.nets import MLPProblem, mlp_data, mlp_init, mlp_pack
from matplotlib.figure import Figure


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------------------------------------------------
# The counterexample on the whole line
# ---------------------------------------------------------------------------------------------------------


def test_piecewise_formula_matches_the_network_everywhere():
    s = np.linspace(-2.0, 3.0, 1001)
    np.testing.assert_allclose(segment_loss_piecewise(s), segment_loss(s), rtol=1e-13, atol=1e-15)


def test_piecewise_formula_is_the_closed_form_inside_and_the_article_outside():
    s = np.linspace(-2.0, 3.0, 1001)
    inside = (s >= 0) & (s <= 1)
    np.testing.assert_array_equal(segment_loss_piecewise(s[inside]), segment_loss_closed_form(s[inside]))
    np.testing.assert_allclose(segment_loss_piecewise(s[~inside]), s[~inside] ** 2 * (1 - s[~inside]) ** 2 / 2,
                               rtol=1e-15)


def test_piecewise_formula_keeps_shape_and_is_continuous_at_the_ends():
    s = np.array([[0.0, 1.0], [0.5, -1.0]])
    out = segment_loss_piecewise(s)
    assert out.shape == (2, 2)
    assert out[0, 0] == 0.0 and out[0, 1] == 0.0
    assert out[1, 0] == pytest.approx(1 / 8)
    assert out[1, 1] == pytest.approx(2.0)


def test_midpoint_violates_convexity():
    f0, f1, fmid = segment_loss(np.array([0.0, 1.0, 0.5]))
    assert f0 == 0.0 and f1 == 0.0 and fmid == pytest.approx(1 / 8) and fmid > (f0 + f1) / 2


@pytest.mark.parametrize("bad", [np.nan, [0.1, np.inf], "a"])
def test_piecewise_formula_rejects_bad_s(bad):
    with pytest.raises(ValueError, match="s"):
        segment_loss_piecewise(bad)


# ---------------------------------------------------------------------------------------------------------
# Hessian certificate of non-convexity
# ---------------------------------------------------------------------------------------------------------


def test_hessian_min_eig_convex_quadratic_is_its_smallest_curvature():
    res = hessian_min_eig_on_box(get_landscape("convex"), n=41)
    assert isinstance(res, HessianMin)
    assert res.value == pytest.approx(1.0, abs=1e-6)  # Hess = diag(1, 4) everywhere
    assert res.where.shape == (2,)


def test_hessian_min_eig_trap_matches_the_formula():
    # Hess = diag(3 x^2 - 0.8, 1): smallest at x = 0, value -0.8 (x = 0 lies on the grid for odd n).
    res = hessian_min_eig_on_box(get_landscape("trap"), n=41)
    assert res.value == pytest.approx(-0.8, abs=1e-6)
    assert res.where[0] == pytest.approx(0.0, abs=1e-12)


def test_hessian_min_eig_bulge_is_negative_and_agrees_with_a_direct_check():
    ls = get_landscape("bulge")
    res = hessian_min_eig_on_box(ls, n=81)
    assert res.value < -1.0
    # Independent check: second difference of f along the eigen-direction is negative near the reported point.
    w, h = res.where, 1e-3
    H = np.empty((2, 2))
    for i, e in enumerate(np.eye(2)):
        for j, d in enumerate(np.eye(2)):
            H[i, j] = (ls.f(w + h * e + h * d) - ls.f(w + h * e - h * d) - ls.f(w - h * e + h * d)
                       + ls.f(w - h * e - h * d)) / (4 * h * h)
    assert np.linalg.eigvalsh(H)[0] == pytest.approx(res.value, rel=1e-4)


@pytest.mark.parametrize("kwargs, name", [({"n": 1}, "n"), ({"n": 2.5}, "n"), ({"h": -1e-5}, "h"), ({"h": 1.0}, "h")])
def test_hessian_min_eig_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        hessian_min_eig_on_box(get_landscape("convex"), **kwargs)


def test_hessian_min_eig_rejects_a_name_instead_of_a_landscape():
    with pytest.raises(ValueError, match="landscape"):
        hessian_min_eig_on_box("convex")


# ---------------------------------------------------------------------------------------------------------
# Chapter 1 figures
# ---------------------------------------------------------------------------------------------------------


def _all_plotted_data_finite(fig: Figure) -> bool:
    return all(np.all(np.isfinite(np.asarray(line.get_xydata(), dtype=float))) for ax in fig.axes for line in ax.lines)


def _texts(fig: Figure) -> str:
    """All visible texts of a figure: figure texts, axes texts and axes titles."""
    texts = [*fig.texts, *(t for ax in fig.axes for t in ax.texts)]
    return " ".join([t.get_text() for t in texts if t.get_visible()] + [ax.get_title() for ax in fig.axes])


def test_segment_figure():
    fig = plots.segment_figure()
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    assert len(fig.axes[0].lines) == 4
    with pytest.raises(ValueError, match="s_max"):
        plots.segment_figure(s_min=1.0, s_max=0.0)
    with pytest.raises(ValueError, match="n"):
        plots.segment_figure(n=2)


def test_slices_figure():
    x, q = mlp_data(2, 1, seed=0, p=3)
    M, N = mlp_init(2, 4, 1, seed=1)
    sl = random_slices(MLPProblem(x, q, 4), mlp_pack(M, N), 3, seed=2, s=np.linspace(-1, 1, 21))
    fig = plots.slices_figure(sl)
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 3 + 1  # three slices and the marker of w0
    assert len(plots.slices_figure(sl, max_curves=2).axes[0].lines) == 2 + 1
    with pytest.raises(ValueError, match="slices"):
        plots.slices_figure(np.zeros((3, 3)))


def test_descent_paths_figure_and_health_maps():
    starts = np.array([[1.0, 1.0], [-1.5, 0.5]])
    paths = {name: descent_paths(get_landscape(name), starts, 0.05, 10) for name in LANDSCAPES}
    fig = plots.descent_paths_figure(paths)
    assert len(fig.axes) == len(LANDSCAPES)
    with pytest.raises(ValueError, match="paths"):
        plots.descent_paths_figure({})
    with pytest.raises(ValueError, match="paths"):
        plots.descent_paths_figure({"convex": starts})
    fig = plots.health_maps_figure(n=31)
    assert len(fig.axes) == 3 + 1  # three maps and a colour bar
    assert "min ratio" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="names"):
        plots.health_maps_figure(names=())


def test_explorer_figure_at_defaults_converges_and_is_finite():
    fig = plots.landscape_explorer_figure(**widgets.EXPLORERS["ch01 landscape"].defaults)
    assert len(fig.axes) == 2
    assert "diverged" not in _texts(fig)
    assert _all_plotted_data_finite(fig)


def test_explorer_figure_reports_divergence_without_nan_curves():
    # eta = 0.6 > 2/L = 0.5 on the convex quadratic: |1 - 4 eta| > 1, the y coordinate blows up.
    fig = plots.landscape_explorer_figure(landscape="convex", x0=1.0, y0=1.0, eta=0.6, n_steps=200)
    assert "diverged at step" in _texts(fig)
    assert _all_plotted_data_finite(fig)


def test_explorer_view_updates_one_figure_in_place_and_resets_the_divergence_label():
    view = plots.LandscapeExplorerView()
    fig = view.update(landscape="convex", x0=1.0, y0=1.0, eta=0.6, n_steps=100)
    assert "diverged at step" in _texts(fig)
    segments_convex = len(view._contours.get_segments())
    assert view.update(landscape="trap", x0=-1.5, y0=1.0, eta=0.05, n_steps=100) is fig
    assert "diverged" not in _texts(fig)
    assert "final loss" in _texts(fig) and "trap" in _texts(fig)
    assert _all_plotted_data_finite(fig)
    assert len(view._contours.get_segments()) > 0 and segments_convex > 0
    fig.canvas.draw()  # the view's own figure has an Agg canvas and is not managed by pyplot
    assert all(plt.figure(num) is not fig for num in plt.get_fignums())


def test_explorer_view_rejects_bad_settings_without_touching_its_figure():
    view = plots.LandscapeExplorerView()
    fig = view.update()
    before = _texts(fig)
    with pytest.raises(ValueError, match="eta"):
        view.update(eta=0.0)
    assert _texts(fig) == before


def test_explorer_figure_is_a_new_figure_each_time():
    a = plots.landscape_explorer_figure()
    b = plots.landscape_explorer_figure()
    assert a is not b


@pytest.mark.parametrize("kwargs, name", [
    ({"landscape": "nope"}, "name"),
    ({"eta": -0.1}, "eta"),
    ({"n_steps": 0}, "n_steps"),
    ({"x0": float("nan")}, "x0"),
])
def test_explorer_figure_rejects_bad_settings(kwargs, name):
    with pytest.raises(ValueError, match=name):
        plots.landscape_explorer_figure(**kwargs)


# ---------------------------------------------------------------------------------------------------------
# Chapter 1 explorer
# ---------------------------------------------------------------------------------------------------------


def test_explorer_is_registered_with_matching_controls():
    ex = widgets.EXPLORERS["ch01 landscape"]
    assert ex.chapter == "1"
    controls = ex.controls()
    assert set(controls) == set(ex.defaults)
    assert controls["landscape"].value == ex.defaults["landscape"]
    for name in ("x0", "y0", "eta", "n_steps"):
        assert controls[name].value == pytest.approx(ex.defaults[name])
    assert set(controls["landscape"].options) == set(LANDSCAPES)
    for name in ("x0", "y0"):
        assert controls[name].min <= ex.defaults[name] <= controls[name].max


def test_explorer_callback_never_raises():
    ex = widgets.EXPLORERS["ch01 landscape"]
    assert isinstance(widgets.safe_update(ex, **ex.defaults), Figure)
    msg = widgets.safe_update(ex, **{**ex.defaults, "eta": -1.0})
    assert isinstance(msg, str) and "eta" in msg


def test_live_builds_a_widget():
    box = widgets.live(widgets.EXPLORERS["ch01 landscape"])
    assert box.children  # controls, output area, interactive wiring
