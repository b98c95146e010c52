"""Tests of the chapter-6 explorer and plots: every method at the extremes of noise and step, what the status line
says, the explorer's runs against the library, and the chapter's figures on small inputs (the explorer's contract
with its spec: tests/test_explorers.py)."""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pytest
from explorer_checks import draws_cleanly
from gdlab import chain, plots, saddles, widgets
from gdlab.experiments import ch06


def _status(fig) -> str:
    return " ".join(t.get_text() for t in fig.texts)


@pytest.mark.parametrize(("method", "noise", "alpha"),
                         list(itertools.product(ch06.METHODS, (1e-6, 1.0), (0.01, 1.0))))
def test_every_method_at_the_extremes_never_raises_or_warns(method, noise, alpha):
    draws_cleanly(widgets.EXPLORERS["ch06 saddles"], {"method": method, "noise": noise, "alpha": alpha})


def test_gd_follows_the_escape_law_and_stays_when_too_close():
    # From offset 1e-12 the law predicts ~283 steps (< 300): GD leaves; from 1e-16 it needs ~380: it stays.
    res = ch06.run(method="GD", alpha=0.1, offset=1e-12)
    law = saddles.escape_law([1e-12], 0.1, 1.0, ch06.ESCAPE_R)[0]
    assert res.escaped_at >= 0 and abs(res.escaped_at - law) < 5
    assert ch06.run(method="GD", noise=1.0, offset=1e-12).x.tolist() == res.x.tolist()  # GD has no noise
    view = plots.ch06.View()
    fig = view.update(method="GD", alpha=0.1, offset=1e-16)
    assert "stayed near the saddle" in _status(fig) and "stayed near the saddle" in view.status


def test_noise_escapes_sooner_than_gd():
    gd = ch06.run(method="GD", offset=1e-12)
    for method in ("noisy GD", "SGLD"):
        res = ch06.run(method=method, noise=0.01, offset=1e-12)
        assert 0 <= res.escaped_at < gd.escaped_at


def test_pgd_perturbs_and_stops_and_says_so():
    res = ch06.run(method="PGD", noise=0.01, offset=1e-16)
    assert res.perturbations.size >= 1 and res.returned >= 0 and res.escaped_at >= 0
    view = plots.ch06.View()
    fig = view.update(method="PGD", noise=0.01, offset=1e-16)
    assert "perturbation" in _status(fig) and "stopped at step" in _status(fig)
    assert "perturbation" in view.status and "stopped at step" in view.status


def test_explorer_run_is_the_library_run():
    res = ch06.run(method="noisy GD", noise=0.05, alpha=0.2, offset=1e-6, draw=7)
    run = saddles.noisy_gd(saddles.example_value, saddles.example_grad, [ch06.X0, 1e-6], 0.2,
                           ch06.STEPS, seed=7, noise=0.05)
    np.testing.assert_array_equal(res.x, run.x)


def test_diverged_run_is_reported():
    # SGLD with noise level 1 and step 1 takes steps of size ~1 with a cubic drift: it blows up.
    fig = plots.ch06.View().update(method="SGLD", noise=1.0, alpha=1.0, offset=0.1, draw=0)
    res = ch06.run(method="SGLD", noise=1.0, alpha=1.0, offset=0.1, draw=0)
    if res.diverged_at >= 0:
        assert f"diverged at step {res.diverged_at}" in _status(fig)
    else:  # if this draw happens not to blow up, some draw does
        assert any(ch06.run(method="SGLD", noise=1.0, alpha=1.0, offset=0.1, draw=d).diverged_at >= 0 for d in range(20))


def test_chapter_figures_draw_on_small_inputs():
    xs, ys = np.linspace(-2, 2, 5), np.linspace(-1.5, 1.5, 4)
    labels = np.array([[-1, -1, 0, 1, 1], [2, 3, 0, 1, 1], [-1, 0, 0, 1, 1], [-1, -1, 0, 1, 1]])
    ch = chain.chain(3)
    run = chain.chain_gd(ch, chain.chain_init(ch, 0))
    figs = [
        plots.basins_figure(xs, ys, labels, 0.1, {"a path": np.array([[1.0, 0.1], [0.5, 0.2]])}),
        plots.escape_figure(np.array([1e-6, 1e-3]), np.array([139, 67]), np.array([137.7, 65.2]), 0.1),
        plots.fold_figure([0.1, 1 / 3], 2.5, xs, ys, labels, 1 / 3, (-2.0, 2.0, -1.5, 1.5)),
        plots.chain_figure({3: [(1.0, run, run, ch.nu)]}),
        plots.sgd_spectrum_figure(np.array([3.0, 1.0, 0.0]), 3),
        plots.sgld_figure(np.array([-1.0, 1.0, 0.5]), np.linspace(-2, 2, 5), np.linspace(-2, 2, 9), np.ones(9) / 4,
                          0.7, np.array([100, 200]), {"B/A = 0.3": np.array([0.0, 0.5])}, {"B/A = 0.3": 0.9}),
        plots.depth_figure({3: (np.array([0.2, 0.1]), np.array([43, 94]), np.array([50.0, 100.0]))}),
    ]
    for fig in figs:
        fig.canvas.draw()
    plt.close("all")


# --- power tests of the chapter's checks (issue 17): each check fails on a deliberately wrong variant -------------


def _chapter_cell(cell_id, **extra):
    """Execute one code cell of the chapter (an exercise's checker) and return its namespace."""
    import pathlib

    import nbformat

    nb = nbformat.read(pathlib.Path(__file__).parents[1] / "book" / "06_saddles.ipynb", as_version=4)
    source = next(c.source for c in nb.cells if c.get("id") == cell_id)
    namespace = {"np": np, "saddles": saddles, "print": lambda *a, **k: None, **extra}
    exec(compile(source, cell_id, "exec"), namespace)  # noqa: S102 (the chapter's own checker cell)
    return namespace


def test_power_law_deficit_checker():
    """ex-escape's checker: the right answer is "correct"; the backwards answer (the law overestimates: -Delta), the
    law's own count (0) and Delta off by 10 % are "not quite"; None is "not answered yet"; errors are reported."""
    check = _chapter_cell("9b3cb238", law_deficit=lambda a, r: None)["check_law_deficit"]
    assert check(saddles.escape_law_deficit) == "correct"
    assert check(lambda a, r: None) == "not answered yet"
    for wrong in (lambda a, r: -saddles.escape_law_deficit(a, r), lambda a, r: 0.0,
                  lambda a, r: 1.1 * saddles.escape_law_deficit(a, r), lambda a, r: "two"):
        assert check(wrong).startswith("not quite")
    assert check(lambda a, r: 1 / 0).startswith("not quite: calling your function raised ZeroDivisionError")


def test_law_deficit_explains_measured_minus_law():
    """The chapter's claim: measured - law = Delta + a rounding up in [0, 1), up to the error of treating log y as
    continuous (below 0.5 at these steps)."""
    eps = np.logspace(-14, -2, 13)
    for alpha, r in ((0.1, 0.5), (0.05, 0.5), (0.2, 0.7)):
        offsets = np.column_stack([np.zeros_like(eps), eps])
        measured = saddles.escape_steps(saddles.example_grad, saddles.EXAMPLE_SADDLE, offsets, alpha, r)
        rest = measured - saddles.escape_law(eps, alpha, 1.0, r) - saddles.escape_law_deficit(alpha, r)
        assert rest.min() > -0.5 and rest.max() < 1.0
        assert (measured - saddles.escape_law(eps, alpha, 1.0, r)).min() > 0, "the law undercounts"


def test_power_converges_to_origin_checker():
    """ex-strict-saddle-limit's checker: the strip 0 <= y0 <= 1/alpha is "correct"; the open strip, the half-line
    y0 >= 0 and "never" (what the strict-saddle theorem would say) are "not quite"."""
    check = _chapter_cell("4bffcf08", converges_to_origin=lambda y0, a: None)["check_converges_to_origin"]
    assert check(lambda y0, a: bool(0.0 <= y0 <= 1 / a)) == "correct"
    assert check(lambda y0, a: None) == "not answered yet"
    for wrong in (lambda y0, a: bool(0.0 < y0 < 1 / a), lambda y0, a: bool(y0 >= 0), lambda y0, a: False,
                  lambda y0, a: 1.0):
        assert check(wrong).startswith("not quite")
    assert check(lambda y0, a: [][0]).startswith("not quite: calling your function raised IndexError")
    # the rule is what gradient descent does
    for a in (0.1, 0.5):
        for y0 in (-0.5, 0.0, 0.7, 1 / a - 1e-6, 1 / a + 0.1):
            y = y0
            with np.errstate(over="ignore", invalid="ignore"):
                for _ in range(5000):
                    y = y - a * y * y
            assert (abs(y) < 1e-2) == (0.0 <= y0 <= 1 / a)
