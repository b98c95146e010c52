"""Tests of the chapter-5 explorer and plots: the verdict it shows, its run against the library, and the chapter's
figures on small inputs (the explorer's contract with its spec: tests/test_explorers.py)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from gdlab import params, plots
from gdlab.experiments import ch05


def test_explorer_verdict_follows_the_rank():
    res = ch05.run(width=8, n_points=2, data="generic", draw=0)
    assert res.K > res.QN and res.rank == res.QN
    view = plots.ch05.View()
    fig = view.update(width=8, n_points=2, data="generic", draw=0)
    assert "can still go to zero" in " ".join(t.get_text() for t in fig.texts) and "can still go to zero" in view.status
    res = ch05.run(width=1, n_points=12, data="generic", draw=0)
    assert res.rank < res.QN and res.rank <= res.rank_bound
    fig = view.update(width=1, n_points=12, data="generic", draw=0)
    assert "out of reach" in " ".join(t.get_text() for t in fig.texts) and "out of reach" in view.status
    assert "rank D" in " ".join(t.get_text() for t in fig.texts)


def test_explorer_verdict_is_not_fooled_by_a_rank_deficit_at_the_end():
    """W = 8, N = 12 clustered: K = 86 >= QN = 72 and the rank bound is QN, so a rank deficit after 250 steps is no
    verdict (training on lowers the cost further); the round-off lambda_min is shown as a bound, never as a value.
    Wrong variant (the old verdict "rank D < QN: out of reach") would say "out of reach" here: this test fails on it."""
    res = ch05.run(width=8, n_points=12, data="clustered", draw=0)
    assert res.K >= res.QN and res.rank_bound == res.QN and res.rank < res.QN
    status, verdict = ch05.verdict(res)
    assert "out of reach" not in verdict and "no verdict" in verdict
    assert status.endswith("lambda_min(D D^T) < 1e-18 lambda_max (round-off)")
    longer = params.fit(params.FCProblem((ch05.M, 8, ch05.Q),
                                         *params.clustered_data(12, ch05.M, ch05.Q, 2, 1000)),
                        res.fit.gd_theta, 3000)
    D = params.jacobian(longer.gd_theta, (ch05.M, 8, ch05.Q),
                        params.clustered_data(12, ch05.M, ch05.Q, 2, 1000)[0])
    assert params.numerical_rank(D) <= res.QN and longer.gd_cost < 0.9 * res.fit.cost[-1]  # training on: still falls
    generic = ch05.verdict(ch05.run(width=2, n_points=6, data="clustered", draw=0))[1]
    assert "not generic" in generic and "out of reach" not in generic


def test_explorer_run_is_the_library_fit():
    res = ch05.run(width=3, n_points=5, data="clustered", draw=4)
    X, Y = params.clustered_data(5, ch05.M, ch05.Q, 2, 1004)
    problem = params.FCProblem((ch05.M, 3, ch05.Q), X, Y)
    fit = params.fit(problem, params.init((ch05.M, 3, ch05.Q), 4), ch05.STEPS, records=81)
    np.testing.assert_array_equal(res.fit.cost, fit.cost)
    assert res.K == problem.K and res.QN == 5 * ch05.Q


def test_chapter_figures_draw_on_small_inputs():
    s = np.linspace(0, 5, 6)
    figs = [
        plots.output_flow_figure(s, np.logspace(0, -3, 6), np.logspace(0, -2, 6), np.linspace(0.3, 0.2, 6),
                                 np.linspace(0.1, 0.2, 6)),
        plots.transition_figure([0.5, 1.0, 1.5, 0.7], [0.0, 0.5, 1.0, 0.0], [0.0, 0.3, 0.8, 0.0], [0.2, 0.7, 1.0, 0.2],
                                [4, 4, 4, 6]),
    ]
    for fig in figs:
        fig.canvas.draw()
    plt.close("all")


# --- power tests: every check of chapter 5 fails on a deliberately wrong variant -----------------------------------

M5, Q5 = 3, 6


def _chapter_cell(cell_id):
    """Execute one code cell of the chapter (a checker of an exercise) and return its namespace."""
    import pathlib

    import nbformat

    nb = nbformat.read(pathlib.Path(__file__).parents[1] / "book" / "05_parametrization.ipynb", as_version=4)
    source = next(c.source for c in nb.cells if c.get("id") == cell_id)
    namespace = {"np": np, "params": params, "print": lambda *a, **k: None,  # the cell's own call, unanswered:
                 "projector_onto_range": lambda D: None, "stationary_cost": lambda D, y, N: None}
    exec(compile(source, cell_id, "exec"), namespace)  # noqa: S102 (the chapter's own checker cell)
    return namespace


def test_power_rank_bounds():
    """Check: rank D <= the overlap bound Q (W + 1) + W min(M, N - W - 1) (34 in the chapter). Wrong variant: the
    output layer's share Q (W + 1) alone (30) is exceeded by the measured rank."""
    X, Y = params.generic_data(6, M5, Q5, 100)
    prob = params.FCProblem((M5, 4, Q5), X, Y)
    rank = params.numerical_rank(prob.jacobian(params.init((M5, 4, Q5), 1)))
    assert rank <= params.one_hidden_rank_bound(M5, 4, Q5, 6)
    assert not rank <= Q5 * (4 + 1)


def test_power_output_flow_and_pointwise_rate():
    """Checks: the output flow x' = -(1/N) D D^T (x - y) against the time difference of a solved flow (relative
    residual < 1e-3), and d log C/ds <= -2 lambda_min(s)/N at every time. Wrong variants: the flow without its 1/N
    (residual ~ N - 1), and the rate bound without its 1/N, or with lambda_max instead of lambda_min."""
    from gdlab import flow

    X, Y = params.generic_data(6, M5, Q5, 100)
    wide = params.FCProblem((M5, 6, Q5), X, Y, beta=10.0)
    theta = params.init((M5, 6, Q5), 3)
    s = np.linspace(0.0, 0.05, 51)
    traj = flow.gradient_flow(wide.loss_grad, theta, 0.05, t_eval=s, rtol=1e-12, atol=1e-14)
    xs = np.array([wide.outputs(w) for w in traj.w])
    dx = (xs[2:] - xs[:-2]) / (s[2] - s[0])
    v = np.array([params.output_velocity(wide.jacobian(w), x, wide.y, 6) for w, x in zip(traj.w, xs, strict=True)])
    v_wrong = v * 6  # the flow without its 1/N

    def residual(vel):
        return (np.linalg.norm(dx - vel[1:-1], axis=1) / np.linalg.norm(vel[1:-1], axis=1)).max()

    assert residual(v) < 1e-3 and not residual(v_wrong) < 1e-3
    rate = params.flow_rate_check(wide, theta, 40.0, times=41)
    assert rate.status == "completed" and np.abs(rate.slope - rate.exact_slope).max() < 1e-3
    assert np.all(rate.slope + 2 * rate.lam_min / 6 < 0)
    assert not np.all(rate.slope + 2 * rate.lam_min < 0)  # without the 1/N
    lam_max = np.array([np.linalg.eigvalsh(wide.jacobian(t) @ wide.jacobian(t).T)[-1] for t in rate.thetas])
    assert not np.all(rate.slope + 2 * lam_max / 6 < 0)  # lambda_max in place of lambda_min


def test_power_stationary_cost():
    """Check: at the stationary point of the underparametrized run, C = |P_perp y|^2 / (2N) to 1e-12 and
    |P_perp x*| / |x*| < 1e-12. Wrong variants: P in place of P_perp; the projector of D at the initial point; the
    projector onto the columns of the hidden layer only (x* is not in their range)."""
    X, Y = params.generic_data(6, M5, Q5, 100)
    narrow = params.FCProblem((M5, 2, Q5), X, Y)
    theta0 = params.init((M5, 2, Q5), 1)
    theta = params.fit(narrow, theta0, 20_000, records=2).gd_theta
    rep = params.stationarity_report(narrow, theta)
    y, x = narrow.y, narrow.outputs(theta)
    assert rep.grad_norm < 1e-12 and abs(rep.cost - rep.target_perp_cost) < 1e-12
    assert rep.output_perp / np.linalg.norm(x) < 1e-12
    P = params.range_projector(narrow.jacobian(theta))
    assert not abs(rep.cost - np.sum((P @ y) ** 2) / 12) < 1e-12
    P0 = params.range_projector(narrow.jacobian(theta0))
    assert not abs(rep.cost - np.sum((y - P0 @ y) ** 2) / 12) < 1e-12
    P_hidden = params.range_projector(narrow.jacobian(theta)[:, : 2 * (M5 + 1)])
    assert not np.linalg.norm(x - P_hidden @ x) / np.linalg.norm(x) < 1e-12


def test_power_transition_threshold_gap():
    """Check: no final cost of the transition lies within 0.1 decade of the threshold tau. Wrong variant: a threshold
    placed at a measured cost (as a careless choice could be) fails the check."""
    tr = params.transition_experiment((4,), (3, 4), 10, 2000)
    costs = np.sort(tr.cost)
    gaps = np.abs(np.log10(costs[:-1] / costs[1:]))
    tau = np.sqrt(costs[:-1] * costs[1:])[np.argmax(gaps)]  # the middle of the widest gap passes
    assert np.abs(np.log10(tr.cost / tau)).min() > 0.1
    tau_wrong = costs[len(costs) // 2]
    assert not np.abs(np.log10(tr.cost / tau_wrong)).min() > 0.1


def test_power_spurious_local_minimum():
    """Check (N = 6, W = 6, draw 0): zero gradient, no dead unit, away from the kinks, no negative Hessian eigenvalue,
    the cost rises along random directions. Wrong variant: the same report at the initial point, or at the minimum
    displaced by 1e-3, fails the gradient check, and at the initial point the cost falls along some direction."""
    X, Y = params.generic_data(6, M5, Q5, 206)
    prob = params.FCProblem((M5, 6, Q5), X, Y)
    theta0 = params.init((M5, 6, Q5), 0)
    theta = params.fit(prob, theta0, 20_000, records=2).gd_theta
    rep = params.local_minimum_report(prob, theta, directions=50)
    assert rep.grad_norm < 1e-12 and rep.active.min() > 0 and rep.kink_distance > 1e-5
    assert rep.hessian_eigs.min() > -1e-8 and np.all(rep.min_increase > 0) and rep.cost > 1e-2
    assert np.sum(np.abs(rep.hessian_eigs) < 1e-8) == prob.K - rep.rank
    for wrong in (theta0, theta + 1e-3 * np.random.default_rng(0).normal(size=theta.size)):
        bad = params.local_minimum_report(prob, wrong, directions=50)
        assert not bad.grad_norm < 1e-12
    assert not np.all(params.local_minimum_report(prob, theta0, directions=50).min_increase > 0)
    with pytest.raises(ValueError, match="problem"):
        params.local_minimum_report(params.FCProblem((M5, 2, 2, Q5), X, Y), params.init((M5, 2, 2, Q5), 0))


def test_power_ntk_against_mean_field():
    """Check: under the NTK scaling the kernel's relative change falls with the width (slope <= -0.3 in log-log).
    Wrong variant: the same check on the mean-field scaling (p = 1) fails."""

    def slope(p):
        widths = (100, 1000)
        med = [np.median([params.scaling_run(m, p, 200, seed=d).gram_change for d in range(3)]) for m in widths]
        return np.polyfit(np.log10(widths), np.log10(med), 1)[0]

    assert slope(0.5) <= -0.3
    assert not slope(1.0) <= -0.3
    with pytest.raises(ValueError, match="p"):
        params.scaling_run(10, 0.0, 10)


def test_power_clustered_sweep():
    """Check: the cost after training falls with the spread (local slope near 2 at small spread) and is below 1e-6
    at spread 0. Wrong variant: inputs that collapse to six points but keep one label per input (not shared) cannot
    be fitted at spread 0."""
    costs = params.spread_sweep((0.0125, 0.00625, 0.0), 8, 3, 3000)
    med = np.median(costs, axis=1)
    assert 1.5 < np.log2(med[0] / med[1]) < 2.5 and np.all(costs[-1] < 1e-6)
    X, _ = params.clustered_data(24, M5, Q5, 6, 7, spread=0.0)
    Y_wrong = np.random.default_rng(0).normal(size=(24, Q5))
    wrong = params.fit_one_hidden_batch(X, Y_wrong, [params.init((M5, 8, Q5), d) for d in range(3)], [8] * 3, 3000)
    assert not np.all(wrong.cost < 1e-6)


def test_power_exercise_checkers():
    """The checkers of the chapter's code exercises accept the right answer and reject wrong ones."""
    ns = _chapter_cell("3d8c1043")

    def right(D):
        U, sv, _ = np.linalg.svd(D, full_matrices=False)
        r = int(np.sum(sv > 1e-9 * sv[0]))
        return U[:, :r] @ U[:, :r].T

    assert ns["check_projector"](right) == "correct"
    assert ns["check_projector"](lambda D: D @ np.linalg.pinv(D.T @ D + np.eye(D.shape[1])) @ D.T).startswith("not")
    assert ns["check_projector"](lambda D: None) == "not answered yet"
    ns = _chapter_cell("ex-stationary-check")
    check = ns["check_stationary_cost"]

    def cost(D, y, N, wrong=None):
        P = right(D)
        part = P @ y if wrong == "P" else y - P @ y
        return float(part @ part) / (N if wrong == "N" else 2 * N)

    assert check(cost) == "correct"
    assert "|P y|" in check(lambda D, y, N: cost(D, y, N, "P"))
    assert "1 / (2N)" in check(lambda D, y, N: cost(D, y, N, "N"))
    assert check(lambda D, y, N: 1 / 0).startswith("not quite: calling")
