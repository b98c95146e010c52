"""Tests of the chapter-4 explorer and plots: divergence shown as text, the kernel predictor it draws, and the
chapter's figures on small inputs (the explorer's contract with its spec: tests/test_explorers.py)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from gdlab import nets, ntk, plots
from gdlab.experiments import ch04


def test_explorer_says_when_training_diverges():
    view = plots.ch04.View()
    fig = view.update(m=10, eta=3.0, steps=100, draw=0)
    note = " ".join(t.get_text() for ax in fig.axes for t in ax.texts if t.get_visible())
    assert "diverged at step" in note and "kernel model diverges too" in note
    assert "diverged at step" in view.status and "kernel model diverges too" in view.status
    fig = view.update()
    assert not any(t.get_visible() and t.get_text() for ax in fig.axes for t in ax.texts)
    assert "|H(t) - H(0)|_F / |H(0)|_F" in " ".join(t.get_text() for t in fig.texts)


def test_explorer_kernel_predictor_is_the_linearised_model():
    """What the explorer draws as the kernel predictor equals gradient descent on the linearised model
    ``u <- u - eta H* (u - y)`` carried to the test inputs, iterated step by step."""
    res = ch04.run(m=300, eta=0.4, steps=60, draw=2)
    H, K, _ = ch04.kernels()
    y = ch04.targets(ch04.ANGLES)
    u, f = res.run.u[0].copy(), res.f0.copy()
    for _ in range(60):
        f -= 0.4 * K @ (u - y)
        u -= 0.4 * H @ (u - y)
    np.testing.assert_allclose(res.f_ker, f, rtol=1e-10, atol=1e-12)


def test_explorer_run_matches_the_library_training():
    res = ch04.run(m=100, eta=0.5, steps=40, draw=5)
    W0, a = nets.du_init(100, 2, 5)
    X = ntk.circle_inputs(ch04.ANGLES)
    run = ntk.lazy_training(X, ch04.targets(ch04.ANGLES), W0, a, 0.5, 40, records=25)
    np.testing.assert_array_equal(res.run.W, run.W)
    np.testing.assert_allclose(res.f_net, nets.du_forward(run.W, a, ntk.circle_inputs(ch04.TEST_ANGLES)), rtol=1e-13)


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


def test_explorer_status_says_where_training_diverged_never_nan():
    """At the largest step size of the explorer (10^0.5) GD diverges: the status line names the step, prints no
    ``nan``, and the loss curve is drawn up to the divergence (every step recorded)."""
    view = plots.ch04.View()
    fig = view.update(m=300, eta=10**0.5, steps=100, draw=0)
    status = " ".join(t.get_text() for t in fig.texts)
    assert "diverged at step" in status and "nan" not in status and "nan" not in view.status
    res = ch04.run(m=300, eta=10**0.5, steps=100, draw=0)
    assert res.run.k.size == res.run.diverged_at and np.all(np.isfinite(res.run.loss))
    assert len(view._loss.get_xdata()) == res.run.diverged_at
    # the loss panel: the steps before the divergence (a dot each, the time axis ends just after them) and why
    ax_l = fig.axes[0]
    assert view._loss.get_marker() == "o" and ax_l.get_xlim()[1] == pytest.approx(1.05 * res.run.diverged_at * 10**0.5)
    said = [t.get_text() for t in ax_l.texts if t.get_visible()]
    assert said == [f"GD diverged at step {res.run.diverged_at}:\nL(t) not finite or\nabove 1e6 (1 + |L(0)|)"]
    view.update()
    assert view._loss.get_marker() == "None" and not any(t.get_visible() for t in ax_l.texts)


# --- power tests: every check of the chapter, run on a deliberately wrong variant, fails ----------------------
# Each test runs the chapter's check (on its data or a smaller instance of it) on the right ingredients, where it
# passes, and on a wrong one, where it must fail: a check that cannot fail checks nothing.


def _wrong_kernel(X, Z=None):
    """The limit kernel with 1/pi instead of 1/(2 pi): twice H*."""
    return 2.0 * ntk.ntk_limit(X, Z)


def _chapter_inputs():
    X = ntk.sphere_inputs(10, 5, seed=0)
    y = np.random.default_rng(1).choice([-1.0, 1.0], size=10)
    return X, y


def test_power_one_step_identity_fails_with_a_wrong_gram_matrix():
    """Check of section 1: without flips, du = -eta H (u - y) to round-off. With H / 2, or without the factor
    x_i^T x_j, the same steps miss by far more than the check's 1e-8."""
    X, y = _chapter_inputs()
    W, a = nets.du_init(1000, 5, seed=2)
    pre, r, _ = nets.du_parts(W, a, X, y)
    S = pre >= 0.0
    variants = {"right": ntk.gram_from_patterns(S, X), "half": ntk.gram_from_patterns(S, X) / 2,
                "no x_i^T x_j": (S.astype(float) @ S.T.astype(float)) / 1000}
    for eta in (1e-5, 1e-4):
        c = ntk.prediction_step(W, a, X, y, eta)
        assert c.flipped == 0
        rel = {k: np.linalg.norm(c.du + eta * H @ r) / np.linalg.norm(c.du) for k, H in variants.items()}
        assert rel["right"] < 1e-8
        assert rel["half"] > 0.1 and rel["no x_i^T x_j"] > 0.1


def test_power_kernel_flow_fails_with_a_wrong_rate():
    """Check of section 2: the exact solution (eq-kernel-flow) against the parameter flow. With exp(-Lambda t / 2)
    in place of exp(-Lambda t) (H / 2) the distance is of order one, not 1e-12."""
    from gdlab import flow

    rng = np.random.default_rng(3)
    Phi = rng.normal(size=(6, 40)) / np.sqrt(40)
    y = rng.normal(size=6)
    problem = ntk.KernelRegressionProblem(Phi, y)
    theta0 = rng.normal(size=40)
    t = np.linspace(0.0, 8.0, 41)
    traj = flow.gradient_flow(problem.loss_grad, theta0, 8.0, t_eval=t, rtol=1e-11, atol=1e-13)
    u_flow = traj.w @ Phi.T
    right = np.abs(u_flow - ntk.kernel_dynamics(problem.H, Phi @ theta0, y, t)).max()
    wrong = np.abs(u_flow - ntk.kernel_dynamics(problem.H / 2, Phi @ theta0, y, t)).max()
    assert right < 1e-9 and wrong > 0.1


def test_power_hoeffding_check_fails_with_the_kernel_over_pi():
    """Check of section 3: the median |H(0) - H*|_F falls with slope -1/2 and every draw is inside the Hoeffding
    band. Against the kernel with 1/pi instead of 1/(2 pi) the error stops falling and no draw is inside."""
    X, _ = _chapter_inputs()
    ms = np.array([10, 100, 1000, 10_000])
    band = np.array([ntk.hoeffding_radius(m, 10, 0.05) for m in ms]) * np.linalg.norm(X @ X.T)
    grams = [[ntk.gram(nets.du_init(m, 5, seed=1000 * j + i)[0], X) for j in range(5)] for i, m in enumerate(ms)]
    for kernel, passes in ((ntk.ntk_limit(X), True), (_wrong_kernel(X), False)):
        errors = np.array([[np.linalg.norm(G - kernel) for G in row] for row in grams])
        slope = np.polyfit(np.log(ms), np.log(np.median(errors, axis=1)), 1)[0]
        inside = np.mean(errors <= band[:, None])
        assert (abs(slope + 0.5) < 0.1 and inside == 1.0) == passes, (slope, inside)


def test_power_lambda0_slope_and_antipodal_singularity_fail_for_wrong_kernels():
    """Check of section 3: lambda_0 / delta -> 1 / (2 pi) for two inputs at angle delta, and |lambda_0| < 1e-12 for
    three antipodal pairs on the circle. With 1/pi the first gives 1/pi; the second fails for d = 2 pairs only (no
    linear relation among two independent x_k) and for the pairs turned by 0.3."""
    delta = 1e-4
    pair = ntk.circle_inputs([0.0, delta])
    assert abs(ntk.lambda_0(pair) / delta - 1 / (2 * np.pi)) < 1e-4
    assert abs(np.linalg.eigvalsh(_wrong_kernel(pair))[0] / delta - 1 / (2 * np.pi)) > 1e-2
    half = ntk.circle_inputs([0.3, 1.2, 2.0])
    X = np.vstack([half, -half])
    assert abs(ntk.lambda_0(X)) < 1e-12
    assert ntk.lambda_0(np.vstack([half[:2], -half[:2]])) > 1e-3
    assert ntk.lambda_0(np.vstack([half, -ntk.circle_inputs([0.6, 1.5, 2.3])])) > 1e-3


def _antipodal_data():
    half = ntk.circle_inputs([0.3, 1.2, 2.0])
    theta = np.array([0.3, 1.2, 2.0, 0.3 + np.pi, 1.2 + np.pi, 2.0 + np.pi])
    return half, theta, np.sin(3 * theta)


def test_power_antipodal_floor_check():
    """Check of section 3: training on the antipodal pairs never goes below the floor (and reaches it); the same
    check fails with the floor's 1/4 replaced by 1/2, and on the pairs turned by 0.3 (which satisfy Du et al.'s
    hypothesis), where the loss goes below the floor."""
    half, theta, y = _antipodal_data()
    W, a = nets.du_init(1000, 2, seed=3)
    floor = ntk.antipodal_floor(half, y)
    run = ntk.lazy_training(np.vstack([half, -half]), y, W, a, 0.5, 400, records=5)
    assert not np.any(run.loss < floor - 1e-9) and run.loss[-1] == pytest.approx(floor, rel=1e-6)
    assert np.any(run.loss < 2 * floor - 1e-9)  # the wrong floor (1/2 for 1/4) is broken by the same run
    turned = ntk.lazy_training(ntk.circle_inputs(theta + np.repeat([0.0, 0.3], 3)), y, W, a, 0.5, 400, records=5)
    assert np.any(turned.loss < floor - 1e-9)


def _notebook_function(name: str):
    """The function ``name`` defined in a code cell of the chapter (an exercise's checker), with its globals."""
    from pathlib import Path

    import nbformat

    nb = nbformat.read(Path(__file__).resolve().parents[1] / "book" / "04_ntk.ipynb", as_version=4)
    source = next(c.source for c in nb.cells if c.cell_type == "code" and f"def {name}(" in c.source
                  and "print(" in c.source and "TODO" not in c.source and "Solution" not in c.source)
    namespace = {"np": np, "ntk": ntk, "nets": nets}
    exec(source.split("\n\nprint(")[0], namespace)
    return namespace[name]


def test_power_antipodal_exercise_checker():
    """The checker of ex-antipodal accepts the null vector (c, -c) / |.| and rejects wrong answers: (c, c), a random
    unit vector, an unnormalised one, the wrong length, None, and code that raises."""
    check = _notebook_function("check_antipodal")

    def right(X_half):
        c = np.linalg.svd(X_half.T)[2][-1]
        return np.concatenate([c, -c]) / np.linalg.norm(np.concatenate([c, -c]))

    assert check(right) == "correct"
    assert check(lambda X_half: None) == "not answered yet"
    wrong = {
        "(c, c)": lambda X_half: np.abs(right(X_half)),
        "random": lambda X_half: (lambda v: v / np.linalg.norm(v))(np.random.default_rng(0).normal(size=8)),
        "not unit": lambda X_half: 2 * right(X_half),
        "half": lambda X_half: right(X_half)[:4],
        "raises": lambda X_half: 1 / 0,
    }
    for name, fn in wrong.items():
        assert check(fn).startswith("not quite"), name


def test_power_overlap_exercise_checker():
    """The checker of ex-arccos rejects (pi - phi) / pi, the overlap with 1/pi instead of 1/(2 pi)."""
    check = _notebook_function("check_overlap")
    assert check(lambda x, z, samples, seed: (np.pi - 2.0) / (2 * np.pi)) == "correct"
    assert check(lambda x, z, samples, seed: (np.pi - 2.0) / np.pi).startswith("not quite")


def _lazy_slopes(scale_a: float, eta_scale: bool):
    """Drift and flip fraction at T = 40 against the width (one draw per width), in the chapter's NTK scaling or, with
    ``a_r = +-m^(-1/2)`` and ``eta m``, the mean-field scaling ``u = m^(-1) sum a_r relu(w_r^T x)``."""
    X, y = _chapter_inputs()
    ms = np.array([10, 100, 1000, 10_000])
    drift, flips = [], []
    for m in ms:
        W0, a = nets.du_init(int(m), 5, seed=7)
        a = a * (m ** -0.5 if scale_a else 1.0)
        run = ntk.lazy_training(X, y, W0, a, 0.5 * (m if eta_scale else 1), 80, records=2)
        drift.append(run.drift[-1])
        flips.append(run.flips[-1])
    return [np.polyfit(np.log(ms), np.log(v), 1)[0] for v in (drift, flips)]


def test_power_lazy_slopes_fail_in_the_mean_field_scaling():
    """Check of section 4: drift and flipped fraction fall like m^(-1/2). In the mean-field scaling (1/m instead of
    1/sqrt(m), trained on its own time scale) the neurons move a distance of order one at every width: slope near 0."""
    assert all(abs(s + 0.5) < 0.15 for s in _lazy_slopes(False, False))
    assert all(abs(s + 0.5) > 0.3 for s in _lazy_slopes(True, True))


def test_power_flip_bound_without_its_factor_fails():
    """Check of section 4: |dH|_F <= 2 sqrt(n) |f|_2. The example of the chapter (one neuron, ten close inputs, one
    flip) breaks the old count n * (fraction flipped) and the bound without its factor 2 sqrt(n), and the entrywise
    bound with f_i alone (no f_j); the right bounds hold."""
    X = ntk.circle_inputs(0.5 + 1e-3 * np.arange(10))
    turn = [[np.cos(a), np.sin(a)] for a in (0.5 + 9e-3 - np.pi / 2 + s * 5e-4 for s in (1, -1))]
    b = ntk.gram_change_bound(turn[:1], turn[1:], X)
    dH = np.linalg.norm(b.change)
    assert b.f.sum() == 1.0  # exactly one flip
    assert dH <= b.frobenius_bound
    assert dH > 10 * b.f.mean()  # n * fraction flipped
    assert dH > np.linalg.norm(b.f)  # without the factor 2 sqrt(n)
    assert np.all(np.abs(b.change) <= b.entry_bound)
    assert np.any(np.abs(b.change) > np.abs(X @ X.T) * b.f[:, None])


def test_power_convergence_margin_fails_with_twice_the_rate():
    """Check of section 5: L(t) / L(0) <= exp(-2 lambda_low t) at every record. With twice the rate the same runs
    break the bound (from width 100 on, where the loss at T is near exp(-2 lambda_low T))."""
    X, y = _chapter_inputs()
    for m in (100, 1000):
        W0, a = nets.du_init(m, 5, seed=7)
        r = ntk.lazy_training(X, y, W0, a, 0.5, 80, records=41, track_lambda=True)
        ratio = r.loss[1:] / r.loss[0]
        assert np.all(ratio <= np.exp(-2 * r.min_lambda_min * r.t[1:]))
        assert np.any(ratio > np.exp(-4 * r.min_lambda_min * r.t[1:]))


def test_power_radius_check_fails_with_1_over_m():
    """Check of section 5 (the proof's numbers): every neuron stays within R = sqrt(n)|u(0) - y| / (sqrt(m) lambda_low).
    With 1/m in place of 1/sqrt(m) the radius falls below the measured movement at large width."""
    X, y = _chapter_inputs()
    for m, wrong_fails in ((100, False), (10_000, True)):
        W0, a = nets.du_init(m, 5, seed=7)
        r = ntk.lazy_training(X, y, W0, a, 0.5, 80, records=2, track_lambda=True)
        R = ntk.lazy_radius(10, np.sqrt(2 * r.loss[0]), m, r.min_lambda_min)
        assert r.drift[-1] <= R
        assert (r.drift[-1] > R / np.sqrt(m)) == wrong_fails


def test_power_kernel_predictor_check():
    """Check of section 6: the distance to the corrected predictor (a) falls with the width, and per draw the plain
    distance (b) differs from its predicted plateau sup|f_0 - K* H*^{-1} u_0| by at most (a) plus the finite-time
    term. With the kernel without its factor x^T z (the degree-0 arc-cosine kernel alone), (a) no longer falls (the
    kernel over pi would not do: 2 K* (2 H*)^{-1} = K* H*^{-1}, and after 200 steps the predictor is near that limit);
    with the plateau taken as sup|f_0| (no kernel correction), the per-draw relation breaks."""

    def degree0(A, B):
        return (np.pi - np.arccos(np.clip(A @ B.T, -1, 1))) / (2 * np.pi)

    X = ntk.circle_inputs(ch04.ANGLES)
    y = ch04.targets(ch04.ANGLES)
    Z = ntk.circle_inputs(np.linspace(0, 2 * np.pi, 91))
    right, wrong, broken = {}, {}, []
    for m in (100, 3000):
        right[m], wrong[m] = [], []
        for seed in range(6):
            g = ntk.predictor_gaps(X, y, Z, m, 0.5, 200, seed)
            right[m].append(g.corrected)
            W, a = nets.du_init(m, 2, seed)
            run = ntk.lazy_training(X, y, W, a, 0.5, 200, records=2)
            f0, f_net = nets.du_forward(W, a, Z), nets.du_forward(run.W, a, Z)
            H, K = degree0(X, X), degree0(Z, X)
            f_bad = ntk.kernel_predictor(K, H, y, u0=run.u[0], f0_te=f0, t=100.0, eta=0.5)
            wrong[m].append(np.abs(f_net - f_bad).max())
            if m == 3000:
                finite = np.abs(ntk.kernel_predictor(ntk.ntk_limit(Z, X), ntk.ntk_limit(X), y, u0=run.u[0], t=100.0,
                                                     eta=0.5) - ntk.kernel_predictor(ntk.ntk_limit(Z, X),
                                                                                     ntk.ntk_limit(X), y,
                                                                                     u0=run.u[0])).max()
                assert abs(g.plain - g.plateau) <= g.corrected + finite + 1e-12
                broken.append(abs(g.plain - np.abs(f0).max()) > g.corrected + finite)
    assert np.mean(broken) >= 0.5, broken
    assert np.median(right[3000]) < 0.5 * np.median(right[100])
    assert np.median(wrong[3000]) > 0.5 * np.median(wrong[100])


def test_power_explorer_predictor_is_not_the_linearised_model_with_twice_the_kernel():
    """Check of the explorer: its kernel predictor is GD on the linearised model; iterating with 2 H* instead
    (the kernel over pi) misses it by far more than the check's tolerance."""
    res = ch04.run(m=300, eta=0.4, steps=60, draw=2)
    H, K, _ = ch04.kernels()
    y = ch04.targets(ch04.ANGLES)
    u, f = res.run.u[0].copy(), res.f0.copy()
    for _ in range(60):
        f -= 0.4 * 2 * K @ (u - y)
        u -= 0.4 * 2 * H @ (u - y)
    assert np.abs(res.f_ker - f).max() > 1e-3
