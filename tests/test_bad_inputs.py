"""Bad inputs of the public functions that no other test gave one (issue 20, item 4): each call raises ``ValueError``
naming the argument, before any computation, so without a warning (tests/conftest.py runs every bad-input test with
warnings as errors). The other public functions' bad inputs are tested in their modules' test files.

Left unchecked on purpose, because they run at every step of a runner (or inside a function) that checked its
arguments once: ``nets.du_parts``, ``nets.du_workspace``, ``nets.deep_linear_grad_unchecked`` and
``ntk.gram_from_patterns`` (their docstrings or names say so), ``runs.diverges`` (the per-step test), the chain's
pieces ``chain.chain_g1`` .. ``chain_g2_prime`` (inside ``chain_f`` / ``chain_grad``), and the ``loss_grad`` / ``f`` /
``grad`` / ``grads`` methods of ``flow.QuadraticProblem``, ``ntk.KernelRegressionProblem`` and
``saddles.FiniteSumSaddle``. ``runs.divergence_threshold`` takes a non-finite start on purpose (a run that starts at a
non-finite loss diverges at step 0). The figure functions of ``gdlab.plots`` draw what the compute functions return
and check nothing; the explorers' settings are fuzzed in tests/test_explorer_fuzz.py.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from gdlab import bounds, deeplinear, flow, landscapes, nets, params, runs, saddles
from gdlab.experiments import ch01, ch04, ch05


def _one_point_runs():
    return bounds.one_point_flows(2, 4, 1, 1, 0, 0.1, t_eval=[0.0, 0.05, 0.1])


def _arora():
    X, Y, Phi = deeplinear.whitened_data(2, 4, (1.0, 0.5), seed=0)
    return deeplinear.arora_conditions(deeplinear.balanced_init((2, 2, 2), 1.0, seed=0), Phi)


def _quadratic():
    return flow.quadratic_problem(np.array([0.5, 1.0]), seed=0)


def _stability_check():
    ls = landscapes.get_landscape("convex")
    return landscapes.check_local_stability(ls, landscapes.local_stability(ls, ls.minimiser))


def _fc():
    X, Y = params.generic_data(3, 2, 2, seed=0)
    return params.FCProblem((2, 3, 2), X, Y)


def _mlp():
    x, q = nets.mlp_data(2, 1, seed=0, p=2)
    return nets.MLPProblem(x, q, 3)


def _du():
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    return nets.DuProblem(X, np.array([0.5, -0.5]), np.array([1.0, -1.0, 1.0]))


def _deep_linear():
    X, Y, _ = deeplinear.whitened_data(2, 4, (1.0, 0.5), seed=0)
    return nets.DeepLinearProblem(X, Y, (2, 2, 2))


_M0 = np.array([[1.0, 0.5], [-1.0, 0.2], [0.3, -0.4]])  # (k, m) = (3, 2), active on x = (1, 1)
_LOSS = np.array([[1.0], [0.5], [0.2]])  # (K + 1, B) = (3, 1)

#: (call, the argument its message must name).
BAD_CALLS = [
    # bounds
    (lambda: bounds.b0_lower_tail_bound(-1.0, 0.5), "k"),
    (lambda: bounds.b0_lower_tail_bound(16, 1.0), "delta"),
    (lambda: bounds.b0_lower_tail_bound(16, 0.5, c=0.0), "c"),
    (lambda: bounds.high_probability_bound(0.0, 16, 2, 0.5), "l0"),
    (lambda: bounds.high_probability_bound(1.0, np.nan, 2, 0.5), "k"),
    (lambda: bounds.high_probability_bound(1.0, 16, -2, 0.5), "m"),
    (lambda: bounds.high_probability_bound(1.0, 16, 2, 0.0), "delta"),
    (lambda: bounds.net_health_sides(np.ones((2, 2)), _M0, np.ones((1, 3)), [1.0, 1.0], [0.0]), "M0"),
    (lambda: bounds.net_health_sides(_M0, _M0, np.ones((1, 3)), [1.0, 1.0], [0.0], N0=np.ones((1, 2))), "N0"),
    (lambda: bounds.net_health_sides(_M0, _M0, np.ones((1, 3)), [1.0, 1.0, 1.0], [0.0]), "x"),
    (lambda: bounds.net_health_tight_point(_M0, [1.0, 1.0], -0.1), "eps"),
    (lambda: bounds.net_health_tight_point(_M0, [1.0], 0.1), "x"),
    (lambda: bounds.net_health_tight_point(-np.abs(_M0), [1.0, 1.0], 0.1), "M0"),
    (lambda: bounds.net_health_tight_point(_M0, [np.inf, 1.0], 0.1), "x"),
    (lambda: bounds.one_point_balance("runs"), "runs"),
    (lambda: bounds.relaxed_descent_check(_LOSS[:, 0], _LOSS, _LOSS, 0.1, 1.0, 1.0), "loss"),
    (lambda: bounds.relaxed_descent_check(_LOSS, _LOSS, _LOSS, 0.0, 1.0, 1.0), "eta"),
    (lambda: bounds.relaxed_descent_check(_LOSS, _LOSS, _LOSS, 0.1, -1.0, 1.0), "alpha"),
    (lambda: bounds.relaxed_descent_check(_LOSS, _LOSS, _LOSS, 0.1, 1.0, np.nan), "beta"),
    (lambda: bounds.relaxed_descent_check(_LOSS, _LOSS, _LOSS, 0.1, 1.0, 1.0, rho=np.inf), "rho"),
    (lambda: bounds.relaxed_descent_check(_LOSS, _LOSS, _LOSS, 0.1, 1.0, 1.0, floor=2.0), "floor"),
    (lambda: bounds.rigorous_health_constants(-1.0, 2.0), "b0_sq"),
    (lambda: bounds.rigorous_health_constants(1.0, 0.0), "x_sq"),
    (lambda: bounds.sufficient_decrease_ratio(_LOSS[:1], _LOSS[:1], 0.1), "loss"),
    (lambda: bounds.sufficient_decrease_ratio(_LOSS, _LOSS[:2], 0.1), "grad_sq"),
    (lambda: bounds.sufficient_decrease_ratio(_LOSS, _LOSS, -0.1), "eta"),
    (lambda: bounds.sufficient_decrease_ratio(_LOSS, _LOSS, 0.1, floor=-1.0), "floor"),
    (lambda: bounds.sufficient_decrease_ratio(_LOSS, _LOSS, 0.1, resolution=2.0), "resolution"),
    (lambda: _one_point_runs().M(3), "i"),
    (lambda: _one_point_runs().M(-4), "i"),
    (lambda: _one_point_runs().w(1.0), "i"),
    # deeplinear
    (lambda: _arora().hold("0.1"), "eta"),
    (lambda: _arora().hold(True), "eta"),
    (lambda: deeplinear.product_path([np.eye(2)]), "flow_"),
    # flow
    (lambda: _quadratic().coordinates([1.0, 2.0, 3.0]), "w"),
    (lambda: _quadratic().coordinates([np.nan, 2.0]), "w"),
    (lambda: _quadratic().coordinates(1.0), "w"),
    (lambda: _quadratic().descent_loss([1.0, 1.0], 0.0, 5), "eta"),
    (lambda: _quadratic().descent_loss([1.0, 1.0], 0.1, -1), "n_steps"),
    (lambda: _quadratic().descent_loss([1.0], 0.1, 5), "w0"),
    (lambda: _quadratic().flow([1.0, 1.0], [[0.0, 1.0]]), "t"),
    (lambda: _quadratic().flow([1.0, 1.0], [0.0, np.inf]), "t"),
    # landscapes
    (lambda: _stability_check().agrees(0.0), "tol"),
    (lambda: _stability_check().agrees(np.nan), "tol"),
    (lambda: landscapes.segment_loss_closed_form([0.5, np.nan]), "s"),
    (lambda: landscapes.segment_loss_closed_form("s"), "s"),
    # nets
    (lambda: nets.du_forward(np.ones(3), np.ones(3), np.ones((2, 2))), "W"),
    (lambda: nets.du_forward(np.ones((3, 2)), np.ones(3), np.ones((2, 3))), "X"),
    (lambda: nets.mlp_pack(np.ones(3), np.ones((1, 3))), "M"),
    (lambda: nets.mlp_pack(np.ones((3, 2)), np.ones((1, 2))), "N"),
    (lambda: nets.mlp_pack(np.ones((3, 2)), np.full((1, 3), np.nan)), "N"),
    (lambda: _mlp().loss(np.ones(5)), "w"),
    (lambda: _du().loss_grad(np.ones(5)), "w"),
    (lambda: _du().unpack(np.ones(5)), "w"),
    (lambda: _deep_linear().loss_grad(np.ones(5)), "w"),
    (lambda: _deep_linear().unpack(np.ones(5)), "w"),
    # params
    (lambda: _fc().outputs(np.ones(3)), "theta"),
    (lambda: params.hidden_patterns(np.ones(3), (2, 3, 2), np.ones((3, 2))), "theta"),
    (lambda: params.hidden_patterns(params.init((2, 3, 2), 0), (2, 3, 2), np.ones((3, 3))), "X"),
    (lambda: params.hidden_patterns(params.init((2, 3, 2), 0), (2, 0, 2), np.ones((3, 2))), "sizes"),
    (lambda: params.flow_rate_check("problem", np.ones(3), 1.0), "problem"),
    (lambda: params.flow_rate_check(_fc(), params.init((2, 3, 2), 0), 0.0), "t_max"),
    (lambda: params.flow_rate_check(_fc(), params.init((2, 3, 2), 0), 1.0, times=2), "times"),
    (lambda: params.flow_rate_check(_fc(), params.init((2, 3, 2), 0), 1.0, times=11, h=0.1), "h"),
    (lambda: params.spread_sweep([], 2, 1, 5), "spreads"),
    (lambda: params.spread_sweep([-0.1], 2, 1, 5), "spreads[0]"),
    (lambda: params.spread_sweep([0.1], 0, 1, 5), "width"),
    (lambda: params.spread_sweep([0.1], 2, 1, -1), "steps"),
    # runs
    (lambda: runs.record_steps(-1, 5), "steps"),
    (lambda: runs.record_steps(10, 0), "records"),
    (lambda: runs.record_steps(10.0, 5), "steps"),
    (lambda: runs.diverged_text(-2), "diverged_at"),
    (lambda: runs.diverged_text(1.5), "diverged_at"),
    # saddles
    (lambda: saddles.escape_law_deficit(1.5, 0.5), "alpha"),
    (lambda: saddles.escape_law_deficit(0.1, 1.0), "r"),
    (lambda: saddles.relu_unit_grad(np.ones((2, 3)), 0.1), "W"),
    (lambda: saddles.relu_unit_grad(np.ones((2, 2)), -0.1), "lam"),
    (lambda: saddles.relu_unit_hessian([[np.nan, 1.0]], 0.1), "W"),
    (lambda: saddles.relu_unit_hessian(np.ones((2, 2)), np.inf), "lam"),
    # the explorers' set-ups
    (lambda: ch01.step_regime(-0.1, 1.0, 1.0), "eta"),
    (lambda: ch01.step_regime(0.1, np.nan, 1.0), "global_limit"),
    (lambda: ch01.step_regime(0.1, 1.0, 0.0), "local_limit"),
    (lambda: ch04.targets([0.0, np.nan]), "theta"),
    (lambda: ch05.data(0, "generic", 0), "n_points"),
    (lambda: ch05.data(6, "random", 0), "kind"),
    (lambda: ch05.data(6, "generic", -1), "draw"),
]


@pytest.mark.parametrize(("call", "name"), BAD_CALLS)
def test_bad_inputs_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"(?<!\w){re.escape(name)}(?!\w)"):  # the name as a word
        call()


def test_the_checked_calls_work_with_good_inputs():
    """The same calls with good arguments return (the checks reject only the bad ones)."""
    one = _one_point_runs()
    assert one.M(2).shape == one.M(-1).shape == (1, 4, 2) and one.w(0).shape == (1, 4 * 2 + 1 * 4)
    assert _arora().hold(0.1) in (True, False) and _arora().hold(float("nan")) is False
    quad = _quadratic()
    assert quad.coordinates(np.ones((3, 2))).shape == (3, 2)
    assert nets.mlp_pack(np.ones((3, 2)), np.ones((1, 3))).shape == (9,)
    assert list(runs.record_steps(10, 1)) == [0] and list(runs.record_steps(0, 5)) == [0]
    assert runs.diverged_text(np.int64(3)) == "diverged at step 3" and runs.diverged_text(-1) == ""
    assert ch01.step_regime(0.1, 1.0, 2.0) == "below both limits"
    assert ch04.targets(0.0) == pytest.approx(0.5)
    assert ch05.data(6, "clustered", 0)[0].shape == (6, ch05.M)
