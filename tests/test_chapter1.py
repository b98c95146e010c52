"""Tests for chapter 1: the counterexample on its whole line, the Hessian certificate of non-convexity, the
chapter's figures and what its explorer shows (gdlab.plots.ch01, gdlab.experiments.ch01), and a power test for every
check of the chapter (section "Power tests"): the check as the chapter runs it passes, and the same check on a
deliberately wrong variant fails."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from functools import cache

import matplotlib.pyplot as plt
import numpy as np
import pytest
from gdlab import plots
from gdlab.experiments import ch01
from gdlab.landscapes import (
    LANDSCAPES,
    HessianMin,
    Landscape,
    check_local_stability,
    concavity_witness,
    critical_point,
    descent_lemma_ratio,
    descent_paths,
    get_landscape,
    health_ratio,
    hessian,
    hessian_min_eig_on_box,
    inside_box,
    landscape_grid,
    lipschitz_on_box,
    local_stability,
    random_slices,
    run_outcomes,
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


# ---------------------------------------------------------------------------------------------------------
# Chapter 1 explorer (its contract with the spec, the widgets and the page: tests/test_explorers.py)
# ---------------------------------------------------------------------------------------------------------


def test_explorer_figure_at_defaults_converges_and_is_finite():
    view = plots.ch01.View()
    fig = view.update()
    assert len(fig.axes) == 2
    assert "diverged" not in _texts(fig) and "diverged" not in view.status
    assert _all_plotted_data_finite(fig)


def test_explorer_figure_reports_divergence_without_nan_curves():
    # eta = 0.6 > 2/L = 0.5 on the convex quadratic: |1 - 4 eta| > 1, the y coordinate blows up.
    view = plots.ch01.View()
    fig = view.update(landscape="convex", x0=1.0, y0=1.0, eta=0.6, n_steps=200)
    assert "diverged at step" in _texts(fig) and "diverged at step" in view.status
    assert _all_plotted_data_finite(fig)


def test_explorer_view_updates_one_figure_in_place_and_resets_the_divergence_label():
    view = plots.ch01.View()
    fig = view.update(landscape="convex", x0=1.0, y0=1.0, eta=0.6, n_steps=100)
    assert "diverged at step" in _texts(fig)
    segments_convex = len(view._contours.get_segments())
    assert view.update(landscape="trap", x0=-1.5, y0=1.0, eta=0.05, n_steps=100) is fig
    assert "diverged" not in _texts(fig)
    assert "final loss" in _texts(fig) and "trap" in _texts(fig)
    assert _all_plotted_data_finite(fig)
    assert len(view._contours.get_segments()) > 0 and segments_convex > 0


def test_explorer_title_says_global_and_local_limits():
    # the trap at eta = 0.5: above 2/L_box (0.179) and below the local limit at the star (0.909), where it converges
    view = plots.ch01.View()
    fig = view.update(landscape="trap", x0=1.5, y0=0.5, eta=0.5, n_steps=100)
    text = _texts(fig)
    assert "global limit 2/L_box = 0.179" in text and "local limit at the star 2/lambda_max = 0.909" in text
    assert "above 2/L_box, below the local limit" in text and "stability limit" not in text
    assert "global limit 2/L_box = 0.179" in view.status and "above 2/L_box, below the local limit" in view.status
    fig = view.update(landscape="trap", x0=1.5, y0=0.5, eta=0.95, n_steps=100)
    assert "above the local limit" in _texts(fig)


def test_explorer_panels_have_coordinate_and_step_ticks():
    fig = plots.ch01.View().update()
    fig.canvas.draw()
    ax_path, ax_loss = fig.axes
    for axis in (ax_path.xaxis, ax_path.yaxis, ax_loss.xaxis, ax_loss.yaxis):
        labels = [t.get_text() for t in axis.get_ticklabels() if t.get_text()]
        assert len(labels) >= 2, labels
    np.testing.assert_array_equal(ax_path.get_xticks(), [-2, -1, 0, 1, 2])  # whole numbers on the square
    assert ax_path.get_xlabel() == "x" and ax_loss.get_xlabel() == "step k"


def test_step_regime():
    assert ch01.step_regime(0.1, 0.179, 0.909) == "below both limits"
    assert ch01.step_regime(0.5, 0.179, 0.909) == "above 2/L_box, below the local limit"
    assert ch01.step_regime(1.0, 0.179, 0.909).startswith("above the local limit")


def test_explorer_run_is_descent_paths_from_the_start():
    res = ch01.run(landscape="trap", x0=-1.8, eta=0.1)
    paths = descent_paths(LANDSCAPES["trap"], np.array([[-1.8, 1.6]]), 0.1, 60)
    np.testing.assert_array_equal(res.paths.w, paths.w)
    assert res.global_limit == 2 / lipschitz_on_box(LANDSCAPES["trap"]) and res.regime == "below both limits"


# ---------------------------------------------------------------------------------------------------------
# Local stability, the descent lemma and the outcome counts (library functions of the chapter's checks)
# ---------------------------------------------------------------------------------------------------------


def test_hessian_and_local_stability_match_the_formulas():
    trap = get_landscape("trap")  # Hess = diag(3 x^2 - 0.8, 1)
    H = hessian(trap, np.array([[1.0, 0.0], [2.0, 1.0]]))
    np.testing.assert_allclose(H, [np.diag([2.2, 1.0]), np.diag([11.2, 1.0])], atol=1e-8)
    st = local_stability(trap, trap.minimiser)
    np.testing.assert_allclose(st.eigenvalues, [1.0, 2.2], atol=1e-8)
    assert st.limit == pytest.approx(2 / 2.2, rel=1e-8)
    assert st.rate(0.5) == pytest.approx(0.5) and st.rate(0.95 * st.limit) == pytest.approx(0.9, rel=1e-8)
    # a maximum or a flat point has no finite local limit
    flat = Landscape("flat", lambda w: 0.0 * w[..., 0], lambda w: 0.0 * w, (-1, 1, -1, 1), np.zeros(2), "zero")
    assert local_stability(flat, [0.0, 0.0]).limit == np.inf


def test_critical_point_polishes_the_trap_minima_and_reports_failure():
    trap = get_landscape("trap")
    w = critical_point(trap, [-0.7, 0.1])
    assert w[0] == pytest.approx((-1 - np.sqrt(0.2)) / 2, abs=1e-14) and abs(w[1]) < 1e-14
    def cone_f(w):
        return np.sqrt(1 + np.sum(w * w, axis=-1))

    bowl = Landscape("cone", cone_f, lambda w: w / cone_f(w)[..., None], (-2, 2, -2, 2), np.zeros(2),
                     "Newton overshoots far from 0")
    with pytest.raises(ValueError, match="w0"):
        critical_point(bowl, [3.0, 0.0], n_iter=3)


@pytest.mark.parametrize("call, name", [
    (lambda: hessian("trap", [0.0, 0.0]), "landscape"),
    (lambda: hessian(get_landscape("trap"), [0.0, 0.0, 0.0]), "w"),
    (lambda: hessian(get_landscape("trap"), [0.0, 0.0], h=0.5), "h"),
    (lambda: local_stability(get_landscape("trap"), [[1.0, 0.0]]), "w_star"),
    (lambda: check_local_stability(get_landscape("trap"), 0.9), "stability"),
    (lambda: check_local_stability(get_landscape("trap"), local_stability(get_landscape("trap"), [1, 0]), factors=()),
     "factors"),
    (lambda: check_local_stability(get_landscape("trap"), local_stability(get_landscape("trap"), [1, 0]),
                                   window=(1e-4, 1e-9)), "window"),
    (lambda: local_stability(get_landscape("trap"), [1, 0]).rate(-1.0), "eta"),
    (lambda: descent_lemma_ratio(get_landscape("convex"), np.zeros((2, 1, 2)), 0.1, 4.0), "paths"),
    (lambda: inside_box(get_landscape("convex"), None), "paths"),
    (lambda: run_outcomes(None, [[0.0, 0.0]]), "paths"),
    (lambda: concavity_witness([1.0, 2.0]), "values"),
    (lambda: concavity_witness([[np.nan, 1.0, 2.0]]), "values"),
    (lambda: critical_point(get_landscape("trap"), [1.0]), "w0"),
])
def test_new_chapter1_functions_reject_bad_arguments(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_descent_lemma_ratio_rejects_steps_outside_its_hypothesis():
    ls = get_landscape("convex")
    paths = descent_paths(ls, [[1.0, 1.0]], 0.1, 5)
    for eta in (0.5, 0.6):  # eta >= 2 / L: the lemma guarantees nothing
        with pytest.raises(ValueError, match="eta"):
            descent_lemma_ratio(ls, paths, eta, 4.0)
    with pytest.raises(ValueError, match="L"):
        descent_lemma_ratio(ls, paths, 0.1, 0.0)


def test_run_outcomes_counts_ends_divergence_and_rises():
    ls = get_landscape("convex")
    starts = np.array([[1.0, 1.0], [0.5, 0.0], [1.0, 0.0]])
    out = run_outcomes(descent_paths(ls, starts, 0.6, 100), [[0.0, 0.0]])  # |1 - 4 eta| > 1 in y only
    assert list(out.at_minimum) == [2] and out.diverged == 1 and out.other == 0 and out.rose == 1
    out = run_outcomes(descent_paths(ls, starts, 0.25, 3), [[0.0, 0.0]])  # x shrinks by 3/4: not there yet
    assert list(out.at_minimum) == [0] and out.diverged == 0 and out.other == 3 and out.rose == 0


# ---------------------------------------------------------------------------------------------------------
# Power tests: every check of chapter 1, right (passes) and on a deliberately wrong variant (fails)
# ---------------------------------------------------------------------------------------------------------

_S_SEGMENT = np.linspace(0.0, 1.0, 1001)  # the chapter's grid on the segment


def _segment_check(closed_form) -> bool:
    """Chapter 1, cell "points of the segment checked": max |network - formula| below 1e-12 on the segment."""
    return bool(np.max(np.abs(segment_loss(_S_SEGMENT) - closed_form(_S_SEGMENT))) < 1e-12)


@pytest.mark.parametrize("formula, right", [
    (segment_loss_closed_form, True),                                    # 2 s^2 (1 - s)^2
    (lambda s: s**2 * (1 - s) ** 2 / 2, False),                          # the article's constant: a factor 1/4
    (lambda s: 2 * (1 + 1e-10) * s**2 * (1 - s) ** 2, False),            # the constant off by a factor 1 + 1e-10
    (lambda s: 2 * s**3 * (1 - s) ** 2, False),                          # the exponent of s changed from 2 to 3
])
def test_power_segment_formula_check(formula, right):
    assert _segment_check(formula) == right


def _notebook_slices():
    """The chapter's random slices: m, k, n, p = 4, 16, 1, 5 with seeds 0, 1, 2 (12 lines through w0)."""
    x, q = mlp_data(4, 1, seed=0, p=5)
    M0, N0 = mlp_init(4, 16, 1, seed=1)
    problem = MLPProblem(x, q, 16)
    return problem, mlp_pack(M0, N0), random_slices(problem, mlp_pack(M0, N0), 12, seed=2)


def test_power_concavity_witness_certifies_the_mlp_and_never_a_convex_loss():
    """The chapter's count (11 of 12 slices with a witness above 1e-8) and the same test on convex losses along the
    same kind of lines: a convex quadratic and a linear least-squares loss (the MLP with its hidden layer removed),
    of the same size and scale. There the witness is round-off, so the check must find nothing."""
    problem, w0, slices = _notebook_slices()
    assert int(np.sum(slices.concavity > 1e-8)) == 11
    assert np.array_equal(concavity_witness(slices.loss), slices.concavity)
    rng = np.random.default_rng(3)
    B = rng.normal(size=(problem.dim, problem.dim))
    A = B @ B.T / problem.dim                                              # positive semi-definite
    X, q = rng.normal(size=(5, problem.dim)), rng.normal(size=5)
    convex_losses = (lambda w: 0.5 * w @ A @ w, lambda w: 0.5 * np.sum((X @ w - q) ** 2))
    D = rng.normal(size=(12, problem.dim))
    D *= np.linalg.norm(w0) / np.linalg.norm(D, axis=1, keepdims=True)
    for f in convex_losses:
        values = np.array([[f(w0 + s * d) for s in slices.s] for d in D])
        assert np.all(concavity_witness(values) <= 1e-8)
    # and the counterexample's line through the two minima (non-convex) does have one
    assert concavity_witness(segment_loss(np.linspace(-0.5, 1.5, 201))) > 1e-8


def _psd_on_grid(landscape) -> bool:
    """Chapter 1, cell "min eigenvalue of the Hessian on the grid": the verdict printed for each surface."""
    return hessian_min_eig_on_box(landscape, n=81).value >= 0


def _variant(name: str, f, grad) -> Landscape:
    return Landscape(name, f, grad, (-2.0, 2.0, -2.0, 2.0), np.zeros(2), name)


def test_power_hessian_verdicts_flip_on_changed_surfaces():
    """Right: convex True, bulge and trap False. Wrong variants: the quadratic with its y-curvature 4 changed by a
    factor -1 (not convex) must fail; the trap with the -1 of its double well dropped and the bulge with its bump
    height B changed by a factor 0 (both convex then) must pass, so the 'not convex' verdicts can fail."""
    assert _psd_on_grid(get_landscape("convex"))
    assert not _psd_on_grid(get_landscape("bulge")) and not _psd_on_grid(get_landscape("trap"))
    saddle = _variant("saddle", lambda w: 0.5 * (w[..., 0] ** 2 - 4 * w[..., 1] ** 2),
                      lambda w: np.stack([w[..., 0], -4 * w[..., 1]], axis=-1))
    single_well = _variant("single well",
                           lambda w: 0.25 * w[..., 0] ** 4 + 0.1 * (w[..., 0] - 1) ** 2 + 0.5 * w[..., 1] ** 2,
                           lambda w: np.stack([w[..., 0] ** 3 + 0.2 * (w[..., 0] - 1), w[..., 1]], axis=-1))
    no_bump = _variant("no bump", lambda w: 0.5 * np.sum(w * w, axis=-1), lambda w: 1.0 * w)
    assert not _psd_on_grid(saddle)
    assert _psd_on_grid(single_well) and _psd_on_grid(no_bump)


_GRID_1D = np.linspace(-1.9, 1.9, 15)
_STARTS = np.stack(np.meshgrid(_GRID_1D, _GRID_1D), axis=-1).reshape(-1, 2)  # the chapter's 225 starts


@cache
def _chapter_runs(name: str, n_steps: int = 200):
    """The chapter's runs: 225 starts, eta = 1/L with L = lipschitz_on_box."""
    ls = get_landscape(name)
    L = lipschitz_on_box(ls)
    return ls, L, descent_paths(ls, _STARTS, 1.0 / L, n_steps)


@pytest.mark.parametrize("name", list(LANDSCAPES))
def test_power_descent_lemma_check(name):
    """Right: every step lowers the loss by at least eta (1 - eta L/2) |grad f|^2 (ratio >= 1 - 1e-6), with equality
    on the quadratic. Wrong: L replaced by L/2 (the guarantee's constant 1/2 becomes 1/4) fails on every surface;
    L/1.1 fails on the quadratic and the bulge, but passes on the trap, whose smallest ratio (1.25) is the slack the
    chapter prints."""
    ls, L, paths = _chapter_runs(name)
    ratio = descent_lemma_ratio(ls, paths, 1.0 / L, L)
    assert ratio >= 1 - 1e-6
    if name == "convex":
        assert ratio == pytest.approx(1.0, abs=1e-9)
    assert descent_lemma_ratio(ls, paths, 1.0 / L, L / 2) < 1 - 1e-6
    assert (descent_lemma_ratio(ls, paths, 1.0 / L, L / 1.1) < 1 - 1e-6) == (name != "trap")


def test_power_inside_box_check():
    """Right: the chapter's runs (eta = 1/L) stay in the square. Wrong: the hypothesis eta < 2/L dropped (eta = 2.4/L
    on the quadratic): the runs leave it."""
    for name in LANDSCAPES:
        ls, _, paths = _chapter_runs(name)
        assert inside_box(ls, paths).all()
    ls = get_landscape("convex")
    assert not inside_box(ls, descent_paths(ls, _STARTS, 2.4 / lipschitz_on_box(ls), 50)).all()


def test_power_local_stability_check_on_the_trap():
    """Right: just below 2/lambda_max at the trap's global minimum GD converges, just above it does not, at rates
    within 1e-4 of max |1 - eta lambda_i|. Wrong variants, each failing: the limit from lambda_min instead of
    lambda_max; the limit 1/lambda_max (factor 2 dropped); the global 2/L_box called the stability limit (the error
    the chapter fixes); Hessian eigenvalues too large by a factor 1.01."""
    trap = get_landscape("trap")
    st = local_stability(trap, trap.minimiser)
    assert check_local_stability(trap, st).agrees(1e-4)
    wrong = {
        "lambda_min": st._replace(limit=2.0 / st.eigenvalues[0]),
        "no factor 2": st._replace(limit=1.0 / st.eigenvalues[-1]),
        "global 2/L_box": st._replace(limit=2.0 / lipschitz_on_box(trap)),
        "eigenvalues x 1.01": st._replace(eigenvalues=1.01 * st.eigenvalues, limit=st.limit / 1.01),
    }
    for name, variant in wrong.items():
        assert not check_local_stability(trap, variant).agrees(1e-4), name


@pytest.mark.parametrize("name", list(LANDSCAPES))
def test_local_stability_check_holds_at_every_minimum(name):
    ls = get_landscape(name)
    check = check_local_stability(ls, local_stability(ls, ls.minimiser), factors=(0.8, 0.95, 1.05))
    assert check.agrees(1e-4)
    np.testing.assert_array_equal(check.converged, [True, True, False])


def test_local_stability_check_at_the_trap_spurious_minimum():
    trap = get_landscape("trap")
    spurious = local_stability(trap, critical_point(trap, [-0.7, 0.0]))
    assert spurious.limit == pytest.approx(2.0, rel=1e-8)  # the y-curvature 1 is the larger one there
    assert check_local_stability(trap, spurious).agrees(1e-4)


def test_power_outcome_counts_at_steps_between_the_limits():
    """The chapter's counts on the trap (150/75/0 at eta = 0.5, 135/60/30 at eta = 0.8), and that the same counting
    reports divergence and loss increases when they happen (eta = 0.8), not only their absence."""
    trap = get_landscape("trap")
    minima = [trap.minimiser, critical_point(trap, [-0.7, 0.0])]
    out = run_outcomes(descent_paths(trap, _STARTS, 0.5, 200), minima)
    assert list(out.at_minimum) == [150, 75] and (out.diverged, out.other, out.rose) == (0, 0, 0)
    out = run_outcomes(descent_paths(trap, _STARTS, 0.8, 200), minima)
    assert list(out.at_minimum) == [135, 60] and out.diverged == 30 and out.other == 0 and out.rose == 31


def _stuck_ratio(n_steps: int) -> float:
    """Chapter 1, cell "health ratio at the spurious minimum": the largest ratio at the failed trap runs' ends."""
    ls, _, paths = _chapter_runs("trap", n_steps)
    stuck = paths.w[-1][paths.loss[-1] > 1e-6]
    return float(np.max(health_ratio(ls, stuck)))


def test_power_health_ratio_at_the_spurious_minimum():
    """Right: after the chapter's 200 steps the ratio at the failed runs' ends is below 1e-8 (the chapter prints
    9.3e-14). Wrong: the same check after 20 steps, before gradient descent has settled, fails."""
    assert _stuck_ratio(200) < 1e-8
    assert _stuck_ratio(20) > 1e-8


def test_power_grid_minimum_of_the_health_ratio_on_the_quadratic():
    """The chapter compares the convex surface's smallest ratio with ex-quadratic-health: 2 lambda_min(A) = 2 for
    A = diag(1, 4). Wrong constants (lambda_min without the 2, or 2 lambda_max) do not match."""
    value = float(np.nanmin(landscape_grid(get_landscape("convex")).ratio))
    lam = np.array([1.0, 4.0])
    assert value == pytest.approx(2 * lam[0], rel=1e-12)
    assert value != pytest.approx(lam[0], rel=1e-3) and value != pytest.approx(2 * lam[1], rel=1e-3)
