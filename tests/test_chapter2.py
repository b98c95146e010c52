"""Tests of the chapter-2 additions: the quadratic problem, trajectory helpers, and the chapter's plots and explorer."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from gdlab import bounds, flow, numerics, plots, widgets
from matplotlib.figure import Figure


@pytest.fixture(scope="module")
def quad():
    return flow.quadratic_problem([0.1, 0.5, 1.0, 2.0], seed=1)


# --- quadratic_problem ---------------------------------------------------------------------------------------


def test_quadratic_spectrum_and_gradient(quad):
    assert quad.L == 2.0 and quad.mu == 0.1 and quad.dim == 4
    np.testing.assert_allclose(np.linalg.eigvalsh(quad.H), [0.1, 0.5, 1.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(quad.Q.T @ quad.Q, np.eye(4), atol=1e-12)
    w = np.random.default_rng(0).normal(size=4)
    f, g = quad.loss_grad(w)
    assert numerics.relative_error(g, numerics.fd_grad(lambda v: quad.loss_grad(v)[0], w)) < 1e-7
    assert f == pytest.approx(0.5 * w @ quad.H @ w)


def test_quadratic_same_seed_same_bits():
    a = flow.quadratic_problem([1.0, 3.0, 2.0], seed=5)
    b = flow.quadratic_problem([1.0, 3.0, 2.0], seed=5)
    assert np.array_equal(a.H, b.H) and np.array_equal(a.eigenvalues, [1.0, 2.0, 3.0])
    assert flow.quadratic_problem([2.0], seed=0).L == 2.0


@pytest.mark.parametrize("bad", [[], [1.0, 0.0], [1.0, -2.0], [1.0, np.nan], [[1.0, 2.0]]])
def test_quadratic_rejects_bad_eigenvalues(bad):
    with pytest.raises(ValueError, match="eigenvalues"):
        flow.quadratic_problem(bad, seed=0)


def test_quadratic_closed_forms_match_the_integrators(quad):
    w0 = np.array([1.0, -2.0, 0.5, 1.5])
    t = np.linspace(0.0, 3.0, 31)
    traj = flow.gradient_flow(quad.loss_grad, w0, 3.0, t_eval=t, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(quad.flow(w0, t), traj.w, atol=1e-9)
    gd = flow.gradient_descent(quad.loss_grad, w0, 0.3, 20)
    np.testing.assert_allclose(quad.descent_loss(w0, 0.3, 20), gd.loss, rtol=1e-10)


def test_quadratic_diverges_above_two_over_L_at_the_predicted_step(quad):
    w0 = np.ones(4)
    eta = 1.1 * 2 / quad.L
    run = flow.gradient_descent(quad.loss_grad, w0, eta, 500)
    closed = quad.descent_loss(w0, eta, 500)
    assert run.diverged and run.diverged_at == int(np.flatnonzero(closed > 1e6 * (1 + closed[0]))[0])
    below = flow.gradient_descent(quad.loss_grad, w0, 0.99 * 2 / quad.L, 500)
    assert not below.diverged and flow.loss_increases(below).size == 0


# --- the descent guarantee -----------------------------------------------------------------------------------


@pytest.mark.parametrize("eta_L", [0.3, 1.0, 1.9])
def test_steps_to_stationary_within_the_bound(quad, eta_L):
    w0 = np.array([3.0, -1.0, 2.0, 1.0])
    run = flow.gradient_descent(quad.loss_grad, w0, eta_L / quad.L, 3000)
    f0 = quad.loss_grad(w0)[0]
    for eps in (1.0, 1e-1, 1e-3):
        k = flow.steps_to_stationary(run, eps)
        assert k is not None and k <= bounds.steps_to_stationary_bound(eps, quad.L, eta_L / quad.L, f0)
        assert run.grad_norm[k] <= eps and (k == 0 or run.grad_norm[k - 1] > eps)


def test_steps_to_stationary_none_and_bad_input(quad):
    run = flow.gradient_descent(quad.loss_grad, np.ones(4), 0.1, 3)
    assert flow.steps_to_stationary(run, 1e-12) is None
    with pytest.raises(ValueError, match="eps"):
        flow.steps_to_stationary(run, -1.0)
    flow_run = flow.gradient_flow(quad.loss_grad, np.ones(4), 1.0, n_eval=5)
    with pytest.raises(ValueError, match="traj"):
        flow.steps_to_stationary(flow_run, 0.1)


def test_loss_increases_ignores_round_off_floor():
    traj = flow.gradient_descent(lambda w: (float(w @ w), 2 * w), np.ones(2), 0.6, 6)  # |1 - 1.2| < 1: decreasing
    assert flow.loss_increases(traj).size == 0
    up = flow.gradient_descent(lambda w: (float(w @ w), 2 * w), np.ones(2), 1.2, 4)  # factor -1.4: increasing
    assert flow.loss_increases(up).tolist() == [1, 2, 3, 4]
    assert flow.loss_increases(up, floor=1e9).size == 0
    with pytest.raises(ValueError, match="floor"):
        flow.loss_increases(up, floor=-1.0)


# --- trajectory helpers --------------------------------------------------------------------------------------


def test_thin_trajectory_keeps_every_kth_record(quad):
    traj = flow.gradient_flow(quad.loss_grad, np.ones(4), 1.0, n_eval=9)
    thin = flow.thin_trajectory(traj, 4)
    assert np.array_equal(thin.t, traj.t[::4]) and np.array_equal(thin.w, traj.w[::4])
    assert thin.method == "flow" and thin.message == traj.message
    with pytest.raises(ValueError, match="every"):
        flow.thin_trajectory(traj, 0)


def test_switch_mask_flags_the_stencil_of_a_change(quad):
    traj = flow.gradient_flow(quad.loss_grad, np.ones(4), 1.0, n_eval=11)
    mask = flow.switch_mask(traj, lambda w: np.array([0.45 < traj.t[np.argmin(np.abs(traj.w - w).sum(1))]]))
    # pattern changes between records 4 (t = 0.4) and 5 (t = 0.5): records 4 and 5 use both in their stencil
    assert mask.tolist() == [False] * 4 + [True, True] + [False] * 5
    assert not flow.switch_mask(traj, lambda w: np.zeros(3, bool)).any()
    with pytest.raises(ValueError, match="pattern"):
        flow.switch_mask(traj, "not callable")


def test_rate_residual_shrinks_like_h_squared_on_a_smooth_flow(quad):
    traj = flow.gradient_flow(quad.loss_grad, np.ones(4), 2.0, n_eval=161, rtol=1e-12, atol=1e-14)
    meds = [np.median(np.abs(flow.flow_identities(flow.thin_trajectory(traj, e)).rate_residual)) for e in (8, 4, 2)]
    assert numerics.loglog_slope([8.0, 4.0, 2.0], meds).slope == pytest.approx(2.0, abs=0.2)


def test_flow_interpolant_matches_a_direct_solution():
    problem, w0 = plots.ch02_mlp()  # crosses ReLU kinks on [0, 1] but never slides along one
    traj = flow.gradient_flow(problem.loss_grad, w0, 1.0, n_eval=401, rtol=1e-11, atol=1e-13)
    at = flow.flow_interpolant(traj, problem.loss_grad)
    t = np.array([0.0, 0.0137, 0.311, 0.777])
    direct = flow.gradient_flow(problem.loss_grad, w0, 1.0, t_eval=t, rtol=1e-11, atol=1e-13)
    assert np.max(np.linalg.norm(at(t) - direct.w, axis=1)) < 1e-5
    np.testing.assert_allclose(at(np.array([5.0]))[0], traj.w[-1], rtol=0, atol=1e-12)  # held beyond the end
    with pytest.raises(ValueError, match="times"):
        at(np.array([-1.0]))
    with pytest.raises(ValueError, match="traj"):
        flow.flow_interpolant(flow.gradient_descent(problem.loss_grad, w0, 0.01, 3), problem.loss_grad)


# --- plots and explorer --------------------------------------------------------------------------------------


@pytest.mark.parametrize("step, steps", [(0.05, 300), (0.3, 40), (2.0, 10), (8.0, 300)])
def test_explorer_flow_curve_ends_at_the_flows_loss(step, steps):
    """The green curve's last point is the flow's loss at t_end = steps * eta, not the cached run's final loss at
    t = 4 (for eta * lambda = 0.05 and 300 steps the old curve dropped from 0.17 to 2e-19 at its last point)."""
    setup, eta, _, _, tf, lf, _ = plots._ch02_run("MLP", step, steps)
    t_end = min(steps * eta, plots._CH02_FLOW_T)
    direct = flow.gradient_flow(setup.loss_grad, setup.w0, t_end, t_eval=np.array([0.0, t_end]), rtol=1e-10,
                                atol=1e-12)
    assert tf[-1] == pytest.approx(steps * eta, rel=1e-12)
    assert lf[-1] == pytest.approx(direct.loss[-1], rel=1e-3, abs=1e-14)
    assert np.all(np.diff(lf) <= 1e-12 * lf[:-1] + 1e-15)  # never increases (Result 1.2), up to the round-off floor


def test_chapter2_problems_match_the_notebook_set_up():
    problem, w0 = plots.ch02_mlp()
    assert problem.shapes == (4, 32, 2) and problem.x.shape[1] == 3 and w0.size == problem.dim
    quad, w0q = plots.ch02_quadratic()
    assert quad.L == 1.0 and w0q.shape == (6,)


def test_explorer_default_update_returns_a_figure():
    explorer = widgets.EXPLORERS["ch02 gd vs flow"]
    fig = explorer.update(**explorer.defaults)
    assert isinstance(fig, Figure)
    fig.canvas.draw()
    plt.close(fig)


@pytest.mark.parametrize("problem", ["quadratic", "MLP"])
@pytest.mark.parametrize("step", [plots.CH02_STEP_RANGE[0], 1.0, 1.999, 2.001, plots.CH02_STEP_RANGE[1]])
@pytest.mark.parametrize("steps", [plots.CH02_STEPS_RANGE[0], plots.CH02_STEPS_RANGE[1]])
def test_explorer_extreme_controls_never_raise(problem, step, steps):
    fig = plots.gd_flow_explorer_figure(problem=problem, step=step, steps=steps)
    fig.canvas.draw()
    plt.close(fig)


def _texts(fig):
    return [t.get_text() for t in fig.texts if t.get_visible()] + [
        t.get_text() for ax in fig.axes for t in ax.texts if t.get_visible()]


def test_explorer_reports_divergence():
    fig = plots.gd_flow_figure(problem="quadratic", step=8.0, steps=100)
    assert any(t.startswith("diverged at step") for t in _texts(fig))
    fig = plots.gd_flow_figure(problem="MLP", step=8.0, steps=100)
    assert any(t.startswith("diverged at step") for t in _texts(fig))
    fig = plots.gd_flow_explorer_figure(problem="quadratic", step=0.5, steps=50)  # the shared view clears it again
    assert not any(t.startswith("diverged") for t in _texts(fig))


@pytest.mark.parametrize("settings", [{"step": 0.0}, {"step": 9.0}, {"steps": 5}, {"steps": 2.5}, {"problem": "cubic"}])
def test_explorer_bad_settings_raise_value_error_and_safe_update_reports_them(settings):
    with pytest.raises(ValueError):
        plots.gd_flow_explorer_figure(**settings)
    explorer = widgets.EXPLORERS["ch02 gd vs flow"]
    assert isinstance(widgets.safe_update(explorer, **{**explorer.defaults, **settings}), str)


def test_explorer_controls_cover_the_ranges():
    controls = widgets.EXPLORERS["ch02 gd vs flow"].controls()
    assert set(controls) == set(widgets.CH02_DEFAULTS)
    assert controls["step"].value == widgets.CH02_DEFAULTS["step"]
    assert 10 ** controls["step"].max >= plots.CH02_STEP_RANGE[1] * 0.999
    assert 10 ** controls["step"].min <= plots.CH02_STEP_RANGE[0] * 1.001


def test_notebook_figures_draw(quad):
    problem, w0 = plots.ch02_mlp()
    traj = flow.gradient_flow(problem.loss_grad, w0, 0.3, n_eval=65, rtol=1e-8, atol=1e-10)
    pattern = lambda w: problem.unpack(w)[0] @ problem.x > 0  # noqa: E731
    runs = [flow.gradient_descent(quad.loss_grad, np.ones(4), c / quad.L, 60) for c in (0.5, 1.5, 2.5)]
    gap = flow.gd_flow_gap(quad.loss_grad, np.ones(4), [0.1, 0.05, 0.025], 1.0)
    figs = [
        plots.rate_residual_figure(traj, [4, 2, 1], pattern),
        plots.flow_chain_figure(traj, [1e-6, 1e-8], [1e-5, 1e-7]),
        plots.flow_gap_figure(gap, fit_last=2),
        plots.quadratic_regimes_figure(quad, runs),
        plots.step_scan_figure([0.5, 1.5, 2.5], runs, show=(0.5, 2.5)),
        plots.steps_bound_figure([0.1, 0.01], [[3, 9]], [[30.0, 3000.0]], ["quadratic"]),
    ]
    for fig in figs:
        assert isinstance(fig, Figure)
        fig.canvas.draw()
        plt.close(fig)
