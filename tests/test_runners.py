"""Every runner honours the one result convention of :mod:`gdlab.runs`.

Each runner (gradient descent and the flow of :mod:`gdlab.flow`, :func:`gdlab.landscapes.descent_paths`,
:func:`gdlab.bounds.one_point_descent`, :func:`gdlab.ntk.lazy_training`, :func:`gdlab.params.fit` and
:func:`gdlab.params.fit_one_hidden_batch`, the escape algorithms of :mod:`gdlab.saddles`, the chain runners of
:mod:`gdlab.chain`, :func:`gdlab.deeplinear.gradient_descent` and the explorers' ``experiments.chNN.run``) is run under
warnings as errors on a configuration that diverges (a large step) and on one that converges, and
:func:`check_convention` compares what it reports with the same iteration written out here, with no threshold:

* ``diverged_at`` is an int for one run and an int array (B,) for a batch; it is the first step at which the
  recomputed loss is not finite or above ``runs.divergence_threshold(f(w_0))``, and -1 if there is none;
* every record before that step is finite, at most the threshold and the recomputed loss; every record at or after it
  is NaN (a batch) or absent (a single run stops);
* a ``diverged`` property, where the result has one, says ``diverged_at >= 0``.

The threshold is the shared one: with ``runs.DIVERGENCE_FACTOR`` set so that the threshold lies just above (1e-9
relative) the largest loss a run reaches before it diverges, the run is not flagged at that step; just below it, it
is flagged exactly there. The gradient flow, whose divergence is found in time, has tests of its own at the end, and
:func:`test_power_the_shared_check_catches_a_runner_that_breaks_the_convention` shows that the check fails for fake
runners that break the convention one way or another.

``experiments.ch03.run`` and ``experiments.ch05.run`` cannot diverge on their controls' ranges (the step of chapter 3
is at most 10^-0.5 on one data point, chapter 5's is half the stability limit at the start); they are checked on the
converging side only.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import gdlab
import numpy as np
import pytest
from gdlab import bounds, chain, deeplinear, flow, landscapes, nets, ntk, params, runs, saddles
from gdlab.experiments import ch01, ch02, ch03, ch04, ch05, ch06, ch07

#: Records that are not the runner's own arithmetic (the recomputations below) agree with it to this relative error.
RTOL = 1e-6


class Report(NamedTuple):
    """What :func:`check_convention` reads off a result: the result itself (for its ``diverged`` property), its
    ``diverged_at``, the recorded steps ``k`` (R,), the recorded losses (R,) or (R, B) and the start losses ``f0``."""

    result: object
    diverged_at: object
    k: np.ndarray
    loss: np.ndarray
    f0: object


def check_convention(rep: Report, reference: np.ndarray, rtol: float = RTOL) -> None:
    """Assert that ``rep`` follows :mod:`gdlab.runs`, given the losses ``reference`` (steps + 1,) or (steps + 1, B) of
    the same iteration recomputed with no threshold (non-finite from where it could not go on)."""
    d = rep.diverged_at
    if np.ndim(d) == 0:
        assert isinstance(d, int | np.integer) and not isinstance(d, bool), f"diverged_at is not an int: {d!r}"
    else:
        assert isinstance(d, np.ndarray) and d.ndim == 1 and d.dtype.kind == "i", f"diverged_at is not ints: {d!r}"
    d = np.atleast_1d(d)
    ref = np.asarray(reference, dtype=float).reshape(len(reference), -1)
    loss = np.asarray(rep.loss, dtype=float).reshape(len(rep.k), -1)
    f0 = np.atleast_1d(np.asarray(rep.f0, dtype=float))
    assert d.size == ref.shape[1] == loss.shape[1] == f0.size
    np.testing.assert_allclose(f0, ref[0], rtol=rtol)
    limit = np.atleast_1d(runs.divergence_threshold(f0))
    k = np.asarray(rep.k)
    assert np.all(np.diff(k) > 0) and (k.size == 0 or (k[0] >= 0 and k[-1] < len(ref)))
    for b in range(d.size):
        crossed = np.flatnonzero(runs.diverges(ref[:, b], limit[b]))
        expected = int(crossed[0]) if crossed.size else runs.NOT_DIVERGED
        assert d[b] == expected, f"run {b}: diverged_at = {d[b]}, the recomputation crosses the threshold at {expected}"
        before = k < d[b] if d[b] >= 0 else np.ones(k.size, dtype=bool)
        assert np.all(np.isfinite(loss[before, b])) and np.all(loss[before, b] <= limit[b])
        np.testing.assert_allclose(loss[before, b], ref[k[before], b], rtol=rtol, atol=1e-12 * (1 + abs(f0[b])))
        assert np.all(np.isnan(loss[~before, b])), f"run {b}: a number recorded at or after diverged_at = {d[b]}"
    if hasattr(rep.result, "diverged"):
        assert np.array_equal(rep.result.diverged, np.asarray(rep.diverged_at) >= 0)


def _quiet(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with every warning turned into an error: no RuntimeWarning may escape a runner."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


def _iterate(loss, step, state, steps: int) -> np.ndarray:
    """The losses ``loss(state_k)``, k = 0..steps, of ``state_{k+1} = step(state_k, k)``, written out with no threshold:
    inf from the first state whose loss or step is not finite (the iteration cannot go on from there)."""
    out = np.full(steps + 1, np.inf)
    with np.errstate(all="ignore"):
        for k in range(steps + 1):
            if not all(np.all(np.isfinite(s)) for s in (state if isinstance(state, list) else [state])):
                break
            out[k] = loss(state)
            if not np.isfinite(out[k]) or k == steps:
                break
            state = step(state, k)
    return out


def _gd(loss_grad, w0, eta, steps: int) -> np.ndarray:
    """Plain gradient descent ``w <- w - eta grad f(w)`` on ``loss_grad``: the losses (steps + 1,) as in :func:`_iterate`
    (a non-finite gradient ends the iteration too)."""

    def loss(w):
        f, g = loss_grad(w)
        return f if np.all(np.isfinite(g)) else np.inf

    return _iterate(loss, lambda w, _k: w - eta * loss_grad(w)[1], np.asarray(w0, dtype=float), steps)


def _columns(*refs) -> np.ndarray:
    return np.stack(refs, axis=1)


# --- the runners, each on a diverging and a converging configuration (and one whose loss rises) ------------------------


class Case(NamedTuple):
    """A runner on its configurations: ``run(kind) -> Report`` and ``reference(kind) -> losses`` for the kinds
    "diverges", "converges" and (for the threshold test) "rises" (default: the diverging one); ``run_steps(kind, s)``
    for a runner that records no step but the last (its own losses step by step, for the threshold test)."""

    run: Callable[[str], Report]
    reference: Callable[[str], np.ndarray]
    batch_index: int = 0
    run_steps: Callable[[str, int], Report] | None = None


def _trajectory(tr) -> Report:
    return Report(tr, tr.diverged_at, tr.k, tr.loss, tr.loss[0])


QUAD_H = np.diag([1.0, 4.0])


def _quad(w):
    g = QUAD_H @ w
    return 0.5 * float(w @ g), g


def _flow_gd() -> Case:
    eta = {"diverges": 0.6, "converges": 0.1}  # |1 - 4 eta| = 1.4: the loss grows by about 2 per step

    def run(kind):
        return _trajectory(_quiet(flow.gradient_descent, _quad, [1.0, 1.0], eta.get(kind, 0.6), 60))

    return Case(run, lambda kind: _gd(_quad, [1.0, 1.0], eta.get(kind, 0.6), 60))


LAND_STARTS = np.array([[1.0, 1.0], [1.0, 0.0], [-2.0, 0.5]])  # y0 = 0 stays on the stable line of eta = 0.6


def _landscapes() -> Case:
    land = landscapes.get_landscape("convex")
    eta = {"diverges": 0.6, "converges": 0.1}

    def run(kind):
        p = _quiet(landscapes.descent_paths, land, LAND_STARTS, eta.get(kind, 0.6), 60)
        return Report(p, p.diverged_at, np.arange(61), p.loss, p.loss[0])

    def reference(kind):
        def lg(w):
            return float(land.f(w)), land.grad(w)

        return _columns(*(_gd(lg, w0, eta.get(kind, 0.6), 60) for w0 in LAND_STARTS))

    return Case(run, reference)


def _one_point(draws: int) -> Case:
    """GD on the one-data-point net: a huge step blows the loss up at step 1; eta = 2 raises it at step 1 and then
    kills every unit (the loss stalls): the run whose loss rises without diverging."""
    one = bounds.one_point_flows(2, 8, 3, draws, 5, 1.0)
    eta = {"diverges": 40.0, "converges": 0.02, "rises": 2.0}

    def run(kind):
        gd = _quiet(bounds.one_point_descent, one, eta[kind], 40)
        return Report(gd, gd.diverged_at, np.arange(41), gd.loss, one.l0)

    def reference(kind):
        return _columns(*(_gd(nets.MLPProblem(one.x[b], one.q[b], 8).loss_grad, one.w(0)[b], eta[kind], 40)
                          for b in range(draws)))

    return Case(run, reference)


def _ntk() -> Case:
    W0, a = nets.du_init(40, 3, 23)
    X, y = ntk.sphere_inputs(4, 3, 24), np.random.default_rng(25).normal(size=4)
    lam = np.linalg.eigvalsh(ntk.gram(W0, X))[-1]
    eta = {"diverges": 3.0 / lam, "converges": 0.5 / lam}  # 3 / lambda_max: the loss grows for ~30 steps

    def run(kind):
        lazy = _quiet(ntk.lazy_training, X, y, W0, a, eta.get(kind, 3.0 / lam), 60, records=61)
        return Report(lazy, lazy.diverged_at, lazy.k, lazy.loss, lazy.loss[0])

    def reference(kind):
        return _iterate(lambda W: nets.du_loss(W, a, X, y),
                        lambda W, _k: W - eta.get(kind, 3.0 / lam) * nets.du_parts(W, a, X, y)[2], W0, 60)

    return Case(run, reference)


def _fit() -> Case:
    X, Y = params.generic_data(4, 3, 6, 1)
    problem = params.FCProblem((3, 6, 6), X, Y)
    theta0 = params.init((3, 6, 6), 1)
    base = params.gd_step_size(problem, theta0, 1.0)
    eta = {"diverges": 50 * base, "converges": 0.5 * base}

    def run(kind):
        fit = _quiet(params.fit, problem, theta0, 30, eta=eta.get(kind, 50 * base), records=31)
        return Report(fit, fit.diverged_at, fit.k, fit.cost, fit.cost[0])

    return Case(run, lambda kind: _gd(problem.loss_grad, theta0, eta.get(kind, 50 * base), 30))


def _batch_fit() -> Case:
    """Two one-hidden-layer nets on targets 10 x generic ones at the batch runner's largest step (2 / lambda_max of the
    Gauss-Newton part at the start): the first diverges at step 3, the second converges."""
    X, Y = params.generic_data(6, 3, 6, 0)
    targets = {"diverges": 10.0 * Y, "converges": Y}
    widths = [4, 2]
    thetas = [params.init((3, 4, 6), 0), params.init((3, 2, 6), 1)]

    def run_steps(kind, steps):
        fit = _quiet(params.fit_one_hidden_batch, X, targets.get(kind, 10.0 * Y), thetas, widths, steps, scale=2.0)
        return Report(fit, fit.diverged_at, np.array([steps]), fit.cost[None, :], fit.cost0)

    def reference(kind):
        refs = []
        for theta, w in zip(thetas, widths, strict=True):
            problem = params.FCProblem((3, w, 6), X, targets.get(kind, 10.0 * Y))
            refs.append(_gd(problem.loss_grad, theta, params.gd_step_size(problem, theta, 2.0), 12))
        return _columns(*refs)

    return Case(lambda kind: run_steps(kind, 12), reference, run_steps=run_steps)


def _example_gd(x0, eta, steps, noise=None):
    """GD on the worked example from ``x0``, plus ``eta * noise[k]`` at step k (noisy GD) if given."""
    def step(x, k):
        return x - eta * (saddles.example_grad(x) + (0.0 if noise is None else noise[k]))

    return _iterate(lambda x: float(saddles.example_f(x)), step, np.asarray(x0, dtype=float), steps)


def _noisy_gd() -> Case:
    """Step 2.5 on the example from (1.5, 0): x grows by 1.5 per step (f by 2.25), y stays on the stable line."""
    alpha = {"diverges": 2.5, "converges": 0.1}
    noise = 0.01 * saddles.unit_sphere(60, 2, 3)

    def run(kind):
        r = _quiet(saddles.noisy_gd, saddles.example_value, saddles.example_grad, [1.5, 0.0], alpha.get(kind, 2.5),
                   60, 3, noise=0.01)
        return Report(r, r.diverged_at, np.arange(len(r.f)), r.f, r.f[0])

    return Case(run, lambda kind: _example_gd([1.5, 0.0], alpha.get(kind, 2.5), 60, noise))


def _pgd() -> Case:
    """Perturbed GD that never perturbs (g_thres = 0): plain GD, held to the same convention."""
    alpha = {"diverges": 2.5, "converges": 0.1}

    def run(kind):
        prm = saddles.PGDParameters(eta=alpha.get(kind, 2.5), r=1e-3, g_thres=0.0, f_thres=None, t_thres=5)
        r = _quiet(saddles.perturbed_gd, saddles.example_value, saddles.example_grad, [1.5, 0.0], prm, 60, 0)
        assert not r.perturbed.any()
        return Report(r, r.diverged_at, np.arange(len(r.f)), r.f, r.f[0])

    return Case(run, lambda kind: _example_gd([1.5, 0.0], alpha.get(kind, 2.5), 60))


def _sgd() -> Case:
    fs = saddles.finite_sum_saddle(4, 5, 0)
    eta = {"diverges": 1.0, "converges": 0.05}
    w0 = np.full(4, 0.5)

    def run(kind):
        r = _quiet(saddles.sgd, fs, w0, eta.get(kind, 1.0), 40, 0)
        return Report(r, r.diverged_at, np.arange(len(r.f)), r.f, r.f[0])

    def reference(kind):
        idx = np.random.default_rng(0).integers(5, size=40)
        e = eta.get(kind, 1.0)
        return _iterate(fs.f, lambda w, k: w - e * (fs.A[idx[k]] @ w + (w @ w) * w), w0, 40)

    return Case(run, reference)


def _sgld_path() -> Case:
    a = {"diverges": 2.5, "converges": 0.1}

    def run(kind):
        r = _quiet(saddles.sgld_path, saddles.example_value, saddles.example_grad, [1.5, 0.0], a.get(kind, 2.5), 0.01,
                   60, 4)
        return Report(r, r.diverged_at, np.arange(len(r.f)), r.f, r.f[0])

    def reference(kind):
        W, ak = np.random.default_rng(4).standard_normal((60, 2)), a.get(kind, 2.5)
        return _iterate(lambda x: float(saddles.example_f(x)),
                        lambda x, k: x - ak * saddles.example_grad(x) + 0.01 * np.sqrt(ak) * W[k], np.array([1.5, 0.0]),
                        60)

    return Case(run, reference)


def _chain(runner) -> Case:
    """The chain with a weak negative curvature (gamma = 0.01): with alpha = 1.5 the trailing coordinates double (in
    size) every step, f rises by 4x, and the run leaves the domains, where f is not defined, at step 2."""
    ch = chain.chain(4, L=1.0, gamma=0.01)
    x0 = chain.chain_init(ch, 0)
    alpha = {"diverges": 1.5, "converges": ch.step}

    def run(kind):
        if runner == "chain_gd":
            r = _quiet(chain.chain_gd, ch, x0, 40, alpha=alpha.get(kind, 1.5), jump=False)
        else:
            r = _quiet(chain.chain_gd_plain, ch, x0, 40, alpha=alpha.get(kind, 1.5))
        return Report(r, r.diverged_at, r.k, r.f, r.f[0])

    def reference(kind):
        return _gd(lambda x: (float(chain.chain_f(ch, x)), chain.chain_grad(ch, x)), x0, alpha.get(kind, 1.5), 40)

    return Case(run, reference)


def _dl_reference(Ws0, X, Y, eta, steps):
    return _iterate(lambda Ws: nets.deep_linear_grad(Ws, X, Y)[0],
                    lambda Ws, _k: [W - eta * G for W, G in zip(Ws, nets.deep_linear_grad(Ws, X, Y)[1], strict=True)],
                    [W.copy() for W in Ws0], steps)


def _deeplinear() -> Case:
    X, Y, _ = deeplinear.whitened_data(3, 6, [2.0, 1.5, 1.0], 0)
    Ws0 = deeplinear.balanced_init([3, 3, 3], 1.0, 1)
    s = deeplinear.sharpness(Ws0, X, Y)
    eta = {"diverges": 4.0 / s, "converges": 0.5 / s}

    def run(kind):
        r = _quiet(deeplinear.gradient_descent, Ws0, X, Y, eta.get(kind, 4.0 / s), 40, records=41)
        return Report(r, r.diverged_at, r.k, r.loss, r.loss[0])

    return Case(run, lambda kind: _dl_reference(Ws0, X, Y, eta.get(kind, 4.0 / s), 40))


# --- the explorers' runs ---------------------------------------------------------------------------------------------


def _experiment(module, settings: dict, report: Callable, reference: Callable) -> Case:
    """An explorer's ``module.run`` with ``settings`` per kind (the diverging ones for "rises"): ``report(res)`` reads
    its :class:`Report`, ``reference(s)`` recomputes its losses from the bound settings ``s``."""

    def bound(kind):
        return settings.get(kind, settings.get("diverges"))

    return Case(lambda kind: report(_quiet(module.run, **bound(kind))),
                lambda kind: reference(module.SPEC.bind(bound(kind))))


def _records(res, of) -> Report:
    """The :class:`Report` of an explorer's run ``res`` whose records ``of.k``, ``of.loss`` are every step it took."""
    return Report(res, res.diverged_at, of.k, of.loss, of.loss[0])


def _ch01_reference(s):
    land = landscapes.get_landscape(s["landscape"])
    return _gd(lambda w: (float(land.f(w)), land.grad(w)), [s["x0"], s["y0"]], s["eta"], s["n_steps"])


def _ch02_reference(s):
    quad, w0 = ch02.quadratic()
    return _gd(quad.loss_grad, w0, s["step"] / quad.L, s["steps"])


def _ch03_reference(s):
    one = bounds.one_point_flows(s["m"], s["k"], s["n"], 1, s["draw"], 1.0)
    return _gd(nets.MLPProblem(one.x[0], one.q[0], s["k"]).loss_grad, one.w(0)[0], s["eta"], s["steps"])


def _ch04_reference(s):
    X, y = ntk.circle_inputs(ch04.ANGLES), ch04.targets(ch04.ANGLES)
    W0, a = nets.du_init(s["m"], 2, s["draw"])
    return _iterate(lambda W: nets.du_loss(W, a, X, y), lambda W, _k: W - s["eta"] * nets.du_parts(W, a, X, y)[2], W0,
                    s["steps"])


def _ch05_reference(s):
    sizes = (ch05.M, s["width"], ch05.Q)
    problem = params.FCProblem(sizes, *ch05.data(s["n_points"], s["data"], s["draw"]))
    theta0 = params.init(sizes, s["draw"])
    return _gd(problem.loss_grad, theta0, params.gd_step_size(problem, theta0), ch05.STEPS)


def _ch06_reference(s):
    alpha, noise, x0 = s["alpha"], s["noise"], np.array([ch06.X0, s["offset"]])
    if s["method"] == "SGLD":
        W = np.random.default_rng(s["draw"]).standard_normal((ch06.STEPS, 2))
        return _iterate(lambda x: float(saddles.example_f(x)),
                        lambda x, k: x - alpha * saddles.example_grad(x) + noise * np.sqrt(alpha) * W[k], x0, ch06.STEPS)
    assert s["method"] == "noisy GD"
    return _example_gd(x0, alpha, ch06.STEPS, noise * saddles.unit_sphere(ch06.STEPS, 2, s["draw"]))


def _ch07_reference(s):
    init = deeplinear.balanced_init if s["init"] == "balanced" else nets.deep_linear_init
    X, Y, _ = ch07.data()
    return _dl_reference(init((ch07.D,) * (s["depth"] + 1), s["scale"], s["draw"]), X, Y, s["eta"], ch07.STEPS)


def _ch06_report(res) -> Report:
    return Report(res, res.diverged_at, np.arange(res.f.size), res.f, res.f[0])


EXPERIMENTS = {
    # the convex landscape at eta = 0.6: y grows by 1.4 per step
    "experiments.ch01.run": lambda: _experiment(
        ch01, {"diverges": {"landscape": "convex", "eta": 0.6, "x0": 1.0, "y0": 1.0}, "converges": {}},
        lambda res: Report(res, res.diverged_at, np.arange(res.paths.loss.shape[0]), res.paths.loss[:, 0],
                           res.paths.loss[0, 0]), _ch01_reference),
    "experiments.ch02.run": lambda: _experiment(ch02, {"diverges": {"step": 2.5, "steps": 60}, "converges": {}},
                                                lambda res: _records(res, res.gd), _ch02_reference),
    "experiments.ch03.run": lambda: _experiment(
        ch03, {"converges": {"m": 16, "k": 256, "n": 8, "eta": 10**-0.5, "steps": 100}},
        lambda res: Report(res, res.diverged_at, np.arange(res.gd_loss.size), res.gd_loss, res.l0), _ch03_reference),
    "experiments.ch04.run": lambda: _experiment(ch04, {"diverges": {"m": 10, "eta": 2.5}, "converges": {}},
                                                lambda res: _records(res, res.run), _ch04_reference),
    "experiments.ch05.run": lambda: _experiment(
        ch05, {"converges": {"width": 8, "n_points": 2}},
        lambda res: Report(res, res.diverged_at, res.fit.k, res.fit.cost, res.fit.cost[0]), _ch05_reference),
    # SGLD with noise level 1 and step 1 blows up (draw 0 at step 6, after f rose to 3 at step 4); the default noisy
    # GD escapes the saddle and converges
    "experiments.ch06.run": lambda: _experiment(
        ch06, {"diverges": {"method": "SGLD", "noise": 1.0, "alpha": 1.0, "offset": 0.1, "draw": 0}, "converges": {}},
        _ch06_report, _ch06_reference),
    "experiments.ch07.run": lambda: _experiment(ch07, {"diverges": {"depth": 2, "eta": 0.6}, "converges": {}},
                                                lambda res: _records(res, res.run), _ch07_reference),
}


CASES = {
    "flow.gradient_descent": _flow_gd,
    "landscapes.descent_paths": _landscapes,
    "bounds.one_point_descent (batch)": lambda: _one_point(2),
    "bounds.one_point_descent (one draw)": lambda: _one_point(1),
    "ntk.lazy_training": _ntk,
    "params.fit": _fit,
    "params.fit_one_hidden_batch": _batch_fit,
    "saddles.noisy_gd": _noisy_gd,
    "saddles.perturbed_gd": _pgd,
    "saddles.sgd": _sgd,
    "saddles.sgld_path": _sgld_path,
    "chain.chain_gd": lambda: _chain("chain_gd"),
    "chain.chain_gd_plain": lambda: _chain("chain_gd_plain"),
    "deeplinear.gradient_descent": _deeplinear,
    **EXPERIMENTS,
}
#: The runs that cannot diverge on their controls' ranges (see the module's docstring).
CANNOT_DIVERGE = {"experiments.ch03.run", "experiments.ch05.run"}
DIVERGING = [name for name in CASES if name not in CANNOT_DIVERGE]


@pytest.mark.parametrize("name", DIVERGING)
def test_a_diverging_run_reports_the_step_where_the_threshold_was_crossed(name):
    case = CASES[name]()
    rep, ref = case.run("diverges"), case.reference("diverges")
    check_convention(rep, ref)
    assert np.any(np.atleast_1d(rep.diverged_at) >= 0), "the diverging configuration did not diverge"


@pytest.mark.parametrize("name", list(CASES))
def test_a_converging_run_reports_no_divergence(name):
    case = CASES[name]()
    rep = case.run("converges")
    check_convention(rep, case.reference("converges"))
    assert np.all(np.atleast_1d(rep.diverged_at) == runs.NOT_DIVERGED)


def _own_losses(case: Case, rep: Report, steps: int) -> np.ndarray:
    """The runner's own losses at steps 0..steps of run ``rep`` ("rises"), NaN from its divergence on: from its
    records where it records every step, else from runs stopped after each step."""
    if case.run_steps is None:
        assert np.array_equal(rep.k, np.arange(rep.k.size)), "the threshold test needs every step recorded"
        out = np.full((steps + 1, np.size(rep.f0)), np.nan)
        out[: rep.k.size] = np.asarray(rep.loss, dtype=float).reshape(rep.k.size, -1)
        return out
    return np.concatenate([case.run_steps("rises", s).loss for s in range(steps + 1)])


@pytest.mark.parametrize("side", ["just below", "just above"])
@pytest.mark.parametrize("name", DIVERGING)
def test_the_threshold_is_divergence_threshold_of_the_start_loss(name, side, monkeypatch):
    """Threshold set 1e-9 (relative) above the largest loss a run reaches before it diverges (or, for a run that does
    not, at all), at step m >= 1: the run is not flagged at m. Set 1e-9 below: it is flagged exactly at m."""
    case = CASES[name]()
    rep = case.run("rises")
    b = case.batch_index
    steps = max(int(np.max(rep.k)), int(np.max(np.atleast_1d(rep.diverged_at))))
    own = _own_losses(case, rep, steps)
    ell = own[:, b]
    stop = np.flatnonzero(~np.isfinite(ell))
    end = int(stop[0]) if stop.size else ell.size
    m = 1 + int(np.argmax(ell[1:end]))
    assert ell[m] > 0 and ell[m] > np.max(ell[:m]) * (1 + 1e-6), f"no clean rise to test on: {ell[: m + 1]}"
    f0 = float(np.atleast_1d(rep.f0)[b])
    eps = 1e-9 if side == "just below" else -1e-9
    monkeypatch.setattr(runs, "DIVERGENCE_FACTOR", ell[m] * (1 + eps) / (1 + abs(f0)))
    patched = case.run("rises")
    check_convention(patched, np.where(np.isnan(own), np.inf, own), rtol=1e-12)
    d = int(np.atleast_1d(patched.diverged_at)[b])
    if side == "just below":
        assert d == runs.NOT_DIVERGED or d > m, f"flagged at step {d} with the loss {ell[m]:.6g} below the threshold"
    else:
        assert d == m


# --- the gradient flow: divergence found in time -----------------------------------------------------------------------


def _growing(w):
    """A (deliberately inconsistent) ``loss_grad`` whose flow ``w' = w`` makes ``f = |w|^2 = e^(2t)`` from w0 = 1."""
    return float(w @ w), -w


def _check_flow(tr, f0: float) -> None:
    """The flow's form of the convention: ``diverged_at`` is -1 or the index of its last record, where the loss
    reached the threshold (up to the root finder) or is not finite; every record before it is finite and below."""
    limit = runs.divergence_threshold(f0)
    assert isinstance(tr.diverged_at, int) and tr.diverged == (tr.diverged_at >= 0)
    assert (tr.status == "diverged") == tr.diverged and (tr.diverged_time is not None) == tr.diverged
    before = tr.loss if not tr.diverged else tr.loss[:-1]
    assert np.all(np.isfinite(before)) and np.all(before <= limit)
    if tr.diverged:
        assert tr.diverged_at == tr.t.size - 1 and tr.diverged_time == tr.t[-1]
        assert not np.isfinite(tr.loss[-1]) or tr.loss[-1] >= limit * (1 - 1e-9)


def test_the_flow_reports_divergence_at_its_last_record():
    tr = _quiet(flow.gradient_flow, _growing, np.array([1.0]), 50.0)
    _check_flow(tr, 1.0)
    assert tr.diverged and tr.diverged_time == pytest.approx(0.5 * np.log(runs.divergence_threshold(1.0)), rel=1e-8)
    ok = _quiet(flow.gradient_flow, _quad, np.array([1.0, 1.0]), 5.0)
    _check_flow(ok, 2.5)
    assert ok.diverged_at == runs.NOT_DIVERGED and ok.diverged_time is None


@pytest.mark.parametrize("side", ["just below", "just above"])
def test_the_flow_threshold_is_divergence_threshold_of_the_start_loss(side, monkeypatch):
    """The loss at t = 3 is e^6 (as solved): a threshold 1e-9 above it leaves the run complete; 1e-9 below it stops
    the run inside its last solver step."""
    end = _quiet(flow.gradient_flow, _growing, np.array([1.0]), 3.0).loss[-1]
    assert end == pytest.approx(np.exp(6.0), rel=1e-8)
    monkeypatch.setattr(runs, "DIVERGENCE_FACTOR", end * (1 + (1e-9 if side == "just below" else -1e-9)) / 2.0)
    tr = _quiet(flow.gradient_flow, _growing, np.array([1.0]), 3.0)
    _check_flow(tr, 1.0)
    assert tr.diverged == (side == "just above")
    if tr.diverged:
        assert 2.99 < tr.diverged_time < 3.0


def test_a_thinned_diverged_flow_keeps_the_record_its_diverged_at_names():
    tr = _quiet(flow.gradient_flow, _growing, np.array([1.0]), 50.0)
    assert tr.diverged and tr.t.size % 7 != 1  # the last record is not one of every 7th
    thin = flow.thin_trajectory(tr, 7)
    _check_flow(thin, 1.0)
    assert thin.t.size == tr.t.size // 7 + 2 and thin.t[-1] == tr.t[-1] and thin.loss[-1] == tr.loss[-1]


# --- the convention itself ---------------------------------------------------------------------------------------------


def test_threshold_and_the_divergence_test():
    assert runs.divergence_threshold(0.0) == runs.DIVERGENCE_FACTOR == 1e6
    assert runs.divergence_threshold(-3.0) == runs.divergence_threshold(3.0) == 4e6
    np.testing.assert_array_equal(runs.divergence_threshold(np.array([0.0, 1.0])), [1e6, 2e6])
    limit = 2e6
    assert not runs.diverges(limit, limit) and runs.diverges(np.nextafter(limit, np.inf), limit)
    for bad in (np.nan, np.inf, -np.inf):
        assert runs.diverges(bad, limit)
    assert not runs.diverges(-1e300, limit)
    np.testing.assert_array_equal(runs.diverges(np.array([1.0, 3e6, np.nan]), limit), [False, True, True])
    np.testing.assert_array_equal(runs.diverges(np.array([1.0, 3.0]), np.array([2.0, 2.0])), [False, True])
    assert runs.diverged_text(4) == "diverged at step 4" and runs.diverged_text(runs.NOT_DIVERGED) == ""


def test_the_rule_in_words_is_the_threshold_of_diverges(monkeypatch):
    """:func:`gdlab.runs.divergence_rule`, what the explorers print for why a run diverged, reads the one factor."""
    assert runs.divergence_rule() == "f(w_k) not finite or above 1e6 (1 + |f(w_0)|)"
    assert runs.divergence_rule("L(t)", "L(0)") == "L(t) not finite or above 1e6 (1 + |L(0)|)"
    monkeypatch.setattr(runs, "DIVERGENCE_FACTOR", 1e3)
    assert runs.divergence_rule("loss", "L(0)") == "loss not finite or above 1e3 (1 + |L(0)|)"
    monkeypatch.setattr(runs, "DIVERGENCE_FACTOR", 2.5e12)
    assert "above 2.5e12 (1 + " in runs.divergence_rule()


def test_record_steps():
    for steps, records in [(0, 2), (1, 50), (10, 3), (100, 50), (7, 7), (7, 8), (1000, 2)]:
        k = runs.record_steps(steps, records)
        assert k[0] == 0 and k[-1] == steps
        assert np.all(np.diff(k) > 0) and k.size <= records
        assert k.size == min(records, steps + 1)


def test_the_threshold_and_record_steps_are_written_once():
    """No module but :mod:`gdlab.runs` writes a divergence factor or defines ``record_steps`` (power: the factors
    the runners had, ``1e6 * (1.0 + ...)`` and ``1e10 * (1.0 + loss0)``, match the pattern)."""
    pattern = re.compile(r"1e(6|10)\s*\*\s*\(\s*1(\.0)?\s*\+|def record_steps|np\.unique\(np\.linspace\(0, ")
    assert pattern.search("limit = 1e6 * (1.0 + cost)") and pattern.search("loss > 1e10 * (1.0 + loss0)")
    lib = Path(gdlab.__file__).parent
    offenders = [p.name for p in lib.rglob("*.py") if p.name != "runs.py" and pattern.search(p.read_text())]
    assert offenders == []


# --- power: the shared check catches a runner that breaks the convention ---------------------------------------------


def _fake_gd(eta: float, steps: int, *, late: int = 0, keep_going: bool = False, factor: float | None = None,
             nan_pad: bool = False) -> Report:
    """Gradient descent on :data:`QUAD_H` reporting by the convention, or breaking it as asked: flag divergence
    ``late`` steps late, go on recording after it (``keep_going``), use its own ``factor``, or pad the records with NaN
    instead of stopping (allowed: NaN is not progress)."""
    w, f0 = np.array([1.0, 1.0]), _quad(np.array([1.0, 1.0]))[0]
    limit = (runs.DIVERGENCE_FACTOR if factor is None else factor) * (1 + abs(f0))
    ks, losses, d, seen = [], [], runs.NOT_DIVERGED, None
    with np.errstate(all="ignore"):
        for k in range(steps + 1):
            f, g = _quad(w)
            if seen is None and runs.diverges(f, limit):
                seen = k
            if seen is not None and k >= seen + late and d == runs.NOT_DIVERGED:
                d = k
                if not keep_going:
                    break
            ks.append(k)
            losses.append(f)
            w = w - eta * g
    ks, losses = np.array(ks), np.array(losses)
    if nan_pad and d >= 0:
        ks, losses = np.arange(steps + 1), np.concatenate([losses, np.full(steps + 1 - losses.size, np.nan)])
    return Report(None, d, ks, losses, f0)


def test_power_the_shared_check_catches_a_runner_that_breaks_the_convention():
    ref = _gd(_quad, [1.0, 1.0], 0.6, 60)
    check_convention(_fake_gd(0.6, 60), ref)  # the faithful fake passes
    check_convention(_fake_gd(0.6, 60, nan_pad=True), ref)  # so does one that pads with NaN
    for broken in (_fake_gd(0.6, 60, late=1),  # flags the step after the crossing (and records the crossing)
                   _fake_gd(0.6, 60, keep_going=True),  # goes on recording after it
                   _fake_gd(0.6, 60, factor=1e10),  # the old threshold of deeplinear
                   _fake_gd(0.6, 60, factor=1e5),
                   _fake_gd(0.6, 60)._replace(diverged_at=None),  # None instead of the step
                   _fake_gd(0.6, 60)._replace(diverged_at=True)):  # a flag instead of the step
        with pytest.raises(AssertionError):
            check_convention(broken, ref)
    converging = _fake_gd(0.1, 60)
    check_convention(converging, _gd(_quad, [1.0, 1.0], 0.1, 60))
    with pytest.raises(AssertionError):  # a sentinel other than -1
        check_convention(converging._replace(diverged_at=61), _gd(_quad, [1.0, 1.0], 0.1, 60))

    class Disagrees(NamedTuple):
        diverged_at: int
        diverged: bool

    rep = _fake_gd(0.6, 60)
    with pytest.raises(AssertionError):  # a stored flag that contradicts diverged_at
        check_convention(rep._replace(result=Disagrees(rep.diverged_at, False)), ref)
    batch = Report(None, np.array([3, -1]), np.arange(5), np.array([[1, 1], [2, 1], [3, 1], [np.nan, 1], [4.0, 1]]),
                   np.array([1.0, 1.0]))
    with pytest.raises(AssertionError):  # a batch whose diverged run shows a number after its divergence
        check_convention(batch, np.array([[1, 1], [2, 1], [3, 1], [np.inf, 1], [np.inf, 1.0]]))
