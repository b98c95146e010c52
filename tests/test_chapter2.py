"""Tests of the chapter-2 additions: the quadratic problem, trajectory helpers, and the chapter's plots and explorer."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from gdlab import bounds, flow, nets, numerics, plots, runs
from gdlab.experiments import ch02
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
    assert run.diverged and run.diverged_at == int(np.flatnonzero(closed > runs.divergence_threshold(closed[0]))[0])
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
    problem, w0 = ch02.mlp()  # crosses ReLU kinks on [0, 1] but never slides along one
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
    run = ch02.run(problem="MLP", step=step, steps=steps)
    t_end = min(steps * run.eta, ch02.FLOW_T)
    direct = flow.gradient_flow(run.setup.loss_grad, run.setup.w0, t_end, t_eval=np.array([0.0, t_end]), rtol=1e-10,
                                atol=1e-12)
    tf, lf = run.flow_t, run.flow_loss
    assert tf[-1] == pytest.approx(steps * run.eta, rel=1e-12)
    assert lf[-1] == pytest.approx(direct.loss[-1], rel=1e-3, abs=1e-14)
    assert np.all(np.diff(lf) <= 1e-12 * lf[:-1] + 1e-15)  # never increases (Result 1.2), up to the round-off floor


def test_chapter2_problems_match_the_notebook_set_up():
    problem, w0 = ch02.mlp()
    assert problem.shapes == (4, 32, 2) and problem.x.shape[1] == 3 and w0.size == problem.dim
    assert ch02.MLP == (4, 32, 2, 3, 0, 100)  # m, k, n, p, data seed, init seed (the notebook unpacks them)
    quad, w0q = ch02.quadratic()
    assert quad.L == 1.0 and w0q.shape == (6,)


@pytest.mark.parametrize("problem", ["quadratic", "MLP"])
@pytest.mark.parametrize("step", [1.0, 1.999, 2.001])
@pytest.mark.parametrize("steps", [10, 300])
def test_explorer_draws_steps_at_the_threshold(problem, step, steps):
    fig = plots.ch02.View().update(problem=problem, step=step, steps=steps)
    fig.canvas.draw()


def _texts(fig):
    return [t.get_text() for t in fig.texts if t.get_visible()] + [
        t.get_text() for ax in fig.axes for t in ax.texts if t.get_visible()]


def test_explorer_reports_divergence():
    view = plots.ch02.View()
    fig = view.update(problem="quadratic", step=8.0, steps=100)
    assert any(t.startswith("diverged at step") for t in _texts(fig)) and "diverged at step" in view.status
    fig = plots.ch02.View().update(problem="MLP", step=8.0, steps=100)
    assert any(t.startswith("diverged at step") for t in _texts(fig))
    fig = view.update(problem="quadratic", step=0.5, steps=50)  # the same view clears it again
    assert not any(t.startswith("diverged") for t in _texts(fig)) and "diverged" not in view.status


def test_notebook_figures_draw(quad):
    problem, w0 = ch02.mlp()
    traj = flow.gradient_flow(problem.loss_grad, w0, 0.3, n_eval=65, rtol=1e-8, atol=1e-10)
    pattern = lambda w: problem.unpack(w)[0] @ problem.x > 0  # noqa: E731
    runs = [flow.gradient_descent(quad.loss_grad, np.ones(4), c / quad.L, 60) for c in (0.5, 1.5, 2.5)]
    gap = flow.gd_flow_gap(quad.loss_grad, np.ones(4), [0.1, 0.05, 0.025], 1.0)
    figs = [
        plots.rate_residual_figure(flow.rate_residuals(traj, [4, 2, 1], pattern)),
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


# --- library additions of the rigour pass (issue 15) -----------------------------------------------------------


def test_gd_flow_gap_keeps_runs_and_distances(quad):
    gap = flow.gd_flow_gap(quad.loss_grad, np.ones(4), [0.1, 0.05], 1.0)
    for eta, g, run, dist in zip(gap.eta, gap.gap, gap.runs, gap.distances, strict=True):
        assert run.method == "descent" and dist.shape == run.t.shape and dist[0] == 0.0 and g == dist.max()
        np.testing.assert_allclose(dist, np.linalg.norm(run.w - quad.flow(np.ones(4), run.t), axis=1), atol=1e-9)
        assert run.t[-1] == pytest.approx(1.0) and run.t[1] == pytest.approx(eta)


def test_mlp_piece_hessian_is_the_hessian_away_from_kinks_and_one_sided_at_one():
    problem, w0 = ch02.mlp()
    grad = lambda w: problem.loss_grad(w)[1]  # noqa: E731
    H = nets.mlp_piece_hessian(problem, w0)  # w0 is 8e-3 away from the nearest kink: differences of grad are fine
    assert numerics.relative_error(H, numerics.hessian_fd(grad, w0, h=1e-6)) < 1e-6
    assert np.linalg.eigvalsh(H)[-1] == pytest.approx(numerics.sharpness(grad, w0), rel=1e-6)
    # a unit 1e-9 below its kink: differences of the true gradient straddle it and see the jump, the piece does not
    M, N = problem.unpack(w0)
    M = M.copy()
    M[0] -= (M[0] @ problem.x[:, 0] + 1e-9) * problem.x[:, 0] / (problem.x[:, 0] @ problem.x[:, 0])
    w = nets.mlp_pack(M, N)
    piece, naive = nets.mlp_piece_hessian(problem, w), numerics.hessian_fd(grad, w, h=1e-4)
    assert np.abs(np.linalg.eigvalsh(piece)).max() < 200 < np.abs(np.linalg.eigvalsh(naive)).max()
    with pytest.raises(ValueError, match="problem"):
        nets.mlp_piece_hessian("mlp", w0)
    with pytest.raises(ValueError, match="w"):
        nets.mlp_piece_hessian(problem, w0[:-1])


def test_rate_residuals_bad_input(quad):
    traj = flow.gradient_flow(quad.loss_grad, np.ones(4), 1.0, n_eval=33)
    rates = flow.rate_residuals(traj, [4, 1, 2], lambda w: np.zeros(1, bool))
    assert np.all(np.diff(rates.spacing) < 0) and np.all(rates.n_flagged == 0) and np.all(np.isnan(rates.kink_max))
    with pytest.raises(ValueError, match="everies"):
        flow.rate_residuals(traj, [0], lambda w: np.zeros(1, bool))
    with pytest.raises(ValueError, match="everies"):
        flow.rate_residuals(traj, [], lambda w: np.zeros(1, bool))


def test_euler_bounds_values_and_bad_input():
    assert bounds.euler_bound(0.1, 0.0, 3.0, 2.0) == 0.0
    assert bounds.euler_bound(0.1, 1.0, 3.0, 2.0) == pytest.approx(3.0 * 0.1 / 4.0 * np.expm1(2.0))
    # one-sided, by hand: k = 2, mu = 1, eta = 0.5: (Lam eta^2 / 2) e^{mu eta} (e^{mu eta} g_0 + g_1)
    b = bounds.euler_one_sided_bound(0.5, [2.0, 1.0, 7.0], 4.0, 1.0)
    assert b[0] == 0.0 and b[2] == pytest.approx(0.5 * np.exp(0.5) * (np.exp(0.5) * 2.0 + 1.0))
    b_neg = bounds.euler_one_sided_bound(0.5, [2.0, 1.0, 7.0], 4.0, -1.0)  # mu < 0: no e^{mu eta} in front
    assert b_neg[2] == pytest.approx(0.5 * (np.exp(-0.5) * 2.0 + 1.0))
    for call, name in [(lambda: bounds.euler_bound(-0.1, 1.0, 1.0, 1.0), "eta"),
                       (lambda: bounds.euler_bound(0.1, -1.0, 1.0, 1.0), "t"),
                       (lambda: bounds.euler_bound(0.1, 1.0, 1.0, 0.0), "L"),
                       (lambda: bounds.euler_one_sided_bound(0.1, [], 1.0, 0.0), "grad_norms"),
                       (lambda: bounds.euler_one_sided_bound(0.1, [-1.0], 1.0, 0.0), "grad_norms"),
                       (lambda: bounds.euler_one_sided_bound(0.1, [1.0], -1.0, 0.0), "Lam"),
                       (lambda: bounds.euler_one_sided_bound(0.1, [1.0], 1.0, np.nan), "mu")]:
        with pytest.raises(ValueError, match=name):
            call()


def test_descent_lemma_ratio_bad_input(quad):
    with pytest.raises(ValueError, match="eta"):
        bounds.descent_lemma_ratio(quad.loss_grad, np.ones(4), 2.0 / quad.L, quad.L)
    with pytest.raises(ValueError, match="critical"):
        bounds.descent_lemma_ratio(quad.loss_grad, np.zeros(4), 0.1, quad.L)
    with pytest.raises(ValueError, match="loss_grad"):
        bounds.descent_lemma_ratio(None, np.ones(4), 0.1, quad.L)


# --- power tests: every check of chapter 2 fails on a deliberately wrong variant -----------------------------------
# Each test runs the verdict of a checked cell (tagged `nbval-check-output`) of book/02_gradient_flow.ipynb on the
# chapter's own numbers (it passes) and on a wrong variant, a constant or exponent changed by a stated factor or a
# hypothesis dropped (it fails). The chapter's text quotes the slack these tests pin down.


@pytest.fixture(scope="module")
def mlp():
    problem, w0 = ch02.mlp()
    traj = flow.gradient_flow(problem.loss_grad, w0, 1.0, n_eval=1601, rtol=1e-10, atol=1e-12)
    return problem, w0, traj


def _pattern(problem):
    return lambda w: problem.unpack(w)[0] @ problem.x > 0


def test_power_hand_gradient_check_notices_a_wrong_backward_rule(mlp):
    """Cell "hand-derived gradient agrees with finite differences to 1e-6": dropping relu' (a^ = N^T y^) fails."""
    problem, w0, _ = mlp
    M, N = problem.unpack(w0)
    x, q = problem.x, problem.q
    a = M @ x
    y_hat = N @ np.maximum(a, 0.0) - q
    g_fd = numerics.fd_grad(problem.loss, w0)
    right = nets.mlp_pack(((a > 0) * (N.T @ y_hat)) @ x.T, y_hat @ np.maximum(a, 0.0).T)
    wrong = nets.mlp_pack((N.T @ y_hat) @ x.T, y_hat @ np.maximum(a, 0.0).T)
    assert numerics.relative_error(right, g_fd) < 1e-6
    assert numerics.relative_error(wrong, g_fd) > 1e-2


def test_power_rate_slope_check_notices_a_gradient_off_by_ten_percent(mlp):
    """Result 1.2 check (median residual falls like h^2, slope within 0.1 of 2): with |grad f| 10% too large the
    relative residual |l' + (1.1 |grad f|)^2| / (1.1 |grad f|)^2 stays at 0.21 / 1.21 = 0.17 at every spacing, and
    the slope is ~0."""
    from dataclasses import replace

    problem, _, traj = mlp
    everies = [16, 8, 4, 2, 1]
    right = flow.rate_residuals(traj, everies, _pattern(problem))
    assert abs(numerics.loglog_slope(right.spacing, right.median).slope - 2.0) < 0.1
    wrong = flow.rate_residuals(replace(traj, grad_norm=1.1 * traj.grad_norm), everies, _pattern(problem))
    assert abs(numerics.loglog_slope(wrong.spacing, wrong.median).slope - 2.0) > 1.5


def test_power_energy_check_notices_a_constant_off_by_one_in_a_thousand(mlp):
    """Result 1.3 check (energy residual below 30 rtol l(0), below 1e-8 for the main run): comparing the energy with
    1.001 (l(0) - l(t)) instead gives a residual ~1e-3 l(0), which fails both verdicts."""
    _, _, traj = mlp
    f0 = traj.loss[0]
    right = np.max(np.abs(traj.energy - (f0 - traj.loss)))
    wrong = np.max(np.abs(traj.energy - 1.001 * (f0 - traj.loss)))
    assert right < 1e-8 and right < 30 * 1e-10 * f0
    assert wrong > 1e-8 and wrong > 30 * 1e-10 * f0  # 1.5e-2: fails the main-run verdict and the rtol = 1e-10 leg


def test_power_length_energy_check_is_nearly_an_equality_at_the_start(mlp):
    """Result 1.4 (a check of the integration): t en - len^2 >= 0 holds, but 0.99 t en - len^2 >= 0 fails near t = 0,
    where the speed is almost constant (len^2 / (t en) reaches 1.000 there)."""
    _, _, traj = mlp
    assert np.all(traj.t * traj.energy - traj.length**2 >= 0)
    assert np.any(0.99 * traj.t * traj.energy - traj.length**2 < 0)


def test_power_distance_check_has_the_slack_the_text_states(mlp):
    """Result 1.5: |gamma(t) - w0| <= sqrt(t l(0)) holds; with l(0) replaced by 0.6 l(0) (a bound 0.77 times as large;
    the largest measured ratio is 0.81) it fails."""
    _, _, traj = mlp
    f0 = traj.loss[0]
    assert np.all(np.sqrt(traj.t * f0) - traj.dist >= 0)
    assert np.any(np.sqrt(0.6 * traj.t * f0) - traj.dist < 0)


def test_power_euler_slope_check_notices_a_wrong_time(mlp):
    """GD-vs-flow slope check (slope within 0.1 of 1 on the 4 smallest steps): comparing w_k with the flow at the
    wrong time 1.1 k eta leaves a gap that does not shrink with eta (slope ~0), and the check fails."""
    problem, w0, _ = mlp
    etas = 0.016 * 2.0 ** -np.arange(2, 6)
    right = flow.gd_flow_gap(problem.loss_grad, w0, etas, t_max=0.25)
    assert abs(numerics.loglog_slope(etas, right.gap).slope - 1.0) < 0.1
    wrong_gap = []
    for run in right.runs:
        shifted = flow.gradient_flow(problem.loss_grad, w0, 1.1 * run.t[-1], t_eval=1.1 * run.t, rtol=1e-10,
                                     atol=1e-12)
        wrong_gap.append(np.max(np.linalg.norm(run.w - shifted.w, axis=1)))
    assert abs(numerics.loglog_slope(etas, wrong_gap).slope - 1.0) > 0.5


def _euler_min_ratios(gap, K, L, Lam, mu):
    """Smallest bound / gap over the steps k >= 1, per step size, for thm-euler and thm-euler-one-sided."""
    rows = [(np.min(bounds.euler_bound(eta, r.t, K, L)[1:] / d[1:]),
             np.min(bounds.euler_one_sided_bound(eta, r.grad_norm, Lam, mu)[1:] / d[1:]))
            for eta, r, d in zip(gap.eta, gap.runs, gap.distances, strict=True)]
    return np.array(rows).T


def test_power_euler_bounds_fail_with_half_the_constant():
    """Check "gap <= both bounds at every step": both bounds are nearly equalities at the first step, so the same
    bounds with their constant halved (K/2 for thm-euler, Lam/2 for thm-euler-one-sided) fail on the MLP (constants
    measured as in the chapter) and on the quadratic (exact constants)."""
    problem, w0 = ch02.mlp()
    gap = flow.gd_flow_gap(problem.loss_grad, w0, 0.016 * 2.0 ** -np.arange(6), t_max=0.25)
    path = flow.gradient_flow(problem.loss_grad, w0, 0.25, n_eval=17, rtol=1e-10, atol=1e-12).w
    samples = np.vstack([path, *(r.w[:: max(1, r.w.shape[0] // 8)] for r in gap.runs)])
    curv = numerics.curvature_along(lambda w: nets.mlp_piece_hessian(problem, w), lambda w: problem.loss_grad(w)[1],
                                    samples)
    L, mu, K = curv.norm.max(), max(0.0, -curv.lmin.min()), curv.hess_grad[: path.shape[0]].max()
    lip, one = _euler_min_ratios(gap, K, L, L, mu)
    assert np.all(lip >= 1) and np.all(one >= 1)
    lip, one = _euler_min_ratios(gap, K / 2, L, L / 2, mu)
    assert np.any(lip < 1) and np.any(one < 1)

    quad, w0q = ch02.quadratic()
    gap = flow.gd_flow_gap(quad.loss_grad, w0q, 0.1 * 2.0 ** -np.arange(5), t_max=2.0)
    K = max(np.linalg.norm(quad.H @ quad.H @ w) for w in quad.flow(w0q, np.linspace(0, 2.0, 401)))
    lip, one = _euler_min_ratios(gap, K, quad.L, quad.L, -quad.mu)
    assert np.all(lip >= 1) and np.all(one >= 1)
    lip, one = _euler_min_ratios(gap, K / 2, quad.L, quad.L / 2, -quad.mu)
    assert np.all(lip < 1) and np.all(one < 1)


def test_power_one_sided_bound_fails_with_a_claimed_convexity_it_does_not_have():
    """thm-euler-one-sided with mu = -1 (claiming lambda_min >= 1, ten times the true 0.1 of the chapter's quadratic)
    fails once the slow directions dominate the gap (horizon T = 10: the ratio drops to 0.74); on an isotropic
    quadratic, where mu = -lambda is exact, the bound is an equality as eta -> 0."""
    quad, w0q = ch02.quadratic()
    gap = flow.gd_flow_gap(quad.loss_grad, w0q, [0.05], t_max=10.0)
    run, dist = gap.runs[0], gap.distances[0]
    assert np.all(bounds.euler_one_sided_bound(0.05, run.grad_norm, quad.L, -quad.mu)[1:] >= dist[1:])
    assert np.any(bounds.euler_one_sided_bound(0.05, run.grad_norm, quad.L, -1.0)[1:] < dist[1:])
    iso = flow.quadratic_problem([1.0, 1.0], seed=0)
    gap = flow.gd_flow_gap(iso.loss_grad, np.array([1.0, -0.5]), [0.001], t_max=2.0)
    ratio = bounds.euler_one_sided_bound(0.001, gap.runs[0].grad_norm, 1.0, -1.0)[1:] / gap.distances[0][1:]
    assert np.all((ratio >= 1) & (ratio < 1.001))


def test_power_quadratic_regime_checks():
    """Step-size regimes on the quadratic: (i) the loss never goes up below 2/L, but a threshold 10% too large
    (2.2/L) would wrongly cover eta L = 2.1, where it goes up; (ii) the closed form with exponent k instead of 2k
    predicts a different divergence step than the one observed (82)."""
    quad, w0 = ch02.quadratic()
    f0 = quad.loss_grad(w0)[0]
    for eta_L in (0.5, 1.5, 1.99):
        assert flow.loss_increases(flow.gradient_descent(quad.loss_grad, w0, eta_L / quad.L, 300)).size == 0
    above = flow.gradient_descent(quad.loss_grad, w0, 2.1 / quad.L, 300)
    assert 2.1 < 2.2 and flow.loss_increases(above).size > 0
    closed = quad.descent_loss(w0, 2.1 / quad.L, 300)
    assert above.diverged_at == int(np.flatnonzero(closed > runs.divergence_threshold(f0))[0]) == 82
    c = quad.coordinates(w0)
    k = np.arange(301)[:, None]
    wrong = 0.5 * np.sum(quad.eigenvalues * c**2 * np.abs(1 - 2.1 * quad.eigenvalues) ** k, axis=1)
    assert int(np.flatnonzero(wrong > runs.divergence_threshold(f0))[0]) != above.diverged_at


@pytest.fixture(scope="module")
def scan():
    problem, w0 = ch02.mlp()
    lam0 = numerics.sharpness(lambda w: problem.loss_grad(w)[1], w0)
    runs = {r: flow.gradient_descent(problem.loss_grad, w0, r * 2 / lam0, 200) for r in (0.5, 1.1, 1.5, 2.25, 2.5)}
    return problem, lam0, runs


def test_power_stall_checks(scan):
    """Stalled run (2.5 x 2/lambda_max): "a data point with no active unit" holds there and fails on the 1.5 x run,
    which converged; "|grad f| below 1e-7 and falling" holds, while the old claim "gradient exactly zero" fails."""
    problem, _, runs = scan

    def dead_point(run):
        return bool(np.any((problem.unpack(run.w[-1])[0] @ problem.x > 0).sum(axis=0) == 0))

    assert dead_point(runs[2.5]) and not dead_point(runs[1.5])
    g = runs[2.5].grad_norm
    assert g[200] < 1e-7 and g[200] < g[150]
    assert g[200] != 0.0


def test_power_catapult_check(scan):
    """Catapult verdict (started above 2/eta, ended below it, loss up only in the first 2 steps): holds for the
    recovering runs; fails on the 0.5 x run (hypothesis eta > 2/lambda_max dropped) and on the 2.5 x run (dead units:
    the loss went up at steps 4 and 6); and the edge-of-stability reading (end within 5% of 2/eta) fails for all."""
    problem, lam0, runs = scan
    f0 = runs[0.5].loss[0]

    def verdict(r):
        run = runs[r]
        lam_end = np.linalg.eigvalsh(nets.mlp_piece_hessian(problem, run.w[-1]))[-1]
        last_up = max(flow.loss_increases(run, floor=1e-12 * f0), default=0)
        return r > 1 and lam_end < lam0 / r and last_up <= 2, lam_end * r / lam0

    for r in (1.1, 1.5, 2.25):
        ok, end_ratio = verdict(r)
        assert ok and abs(end_ratio - 1) > 0.05
    assert not verdict(0.5)[0] and not verdict(2.5)[0]


def test_power_steps_bound_table_has_slack_47():
    """T_eps check (every measured count <= its bound): with the bound divided by 50 it fails; the smallest ratio
    bound / steps in the chapter's table is 47 (quadratic, eta L = 0.5, eps = 0.1)."""
    quad, w0 = ch02.quadratic()
    f0 = quad.loss_grad(w0)[0]
    run = flow.gradient_descent(quad.loss_grad, w0, 0.5 / quad.L, 400)
    steps = flow.steps_to_stationary(run, 0.1)
    T = bounds.steps_to_stationary_bound(0.1, quad.L, 0.5 / quad.L, f0)
    assert steps <= T and T / steps == pytest.approx(47, abs=0.5)
    assert steps > T / 50


def test_power_descent_lemma_is_tight_on_the_top_eigenvector():
    """Per-step descent lemma: on the top eigenvector actual / guaranteed decrease = 1 (to 1e-9); with omega's
    eta L / 2 replaced by eta L / 4 the ratio is 0.67 at eta L = 1, and with L understated by a factor 2 (a
    hypothesis dropped) the guarantee exceeds the actual decrease: both fail."""
    quad, _ = ch02.quadratic()
    u = quad.Q[:, -1]
    for eta_L in (0.25, 0.5, 1.0, 1.5, 1.9):
        for c in (1e-3, 1.0, 1e3):
            ratio = bounds.descent_lemma_ratio(quad.loss_grad, c * u, eta_L / quad.L, quad.L)
            assert abs(ratio - 1) < 1e-9
            wrong_omega = eta_L * (1 - eta_L / 4)
            assert abs(ratio * bounds.descent_omega(eta_L / quad.L, quad.L) / wrong_omega - 1) > 0.05
            if eta_L < 1.0:  # eta must stay below 2 / (L/2)
                assert bounds.descent_lemma_ratio(quad.loss_grad, c * u, eta_L / quad.L, quad.L / 2) < 1 - 0.05
    rng = np.random.default_rng(4)
    assert all(bounds.descent_lemma_ratio(quad.loss_grad, rng.normal(size=quad.dim), 1.0 / quad.L, quad.L) >= 1 - 1e-9
               for _ in range(50))
