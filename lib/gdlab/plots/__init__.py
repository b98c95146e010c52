"""Matplotlib figures drawn from the compute modules' results (plot layer; imports compute only), one module a chapter.

* :mod:`gdlab.plots.style`: the book-wide figure style (applied on import: an opaque white background, black text,
  moderate font sizes, the colours :data:`~gdlab.plots.style.COLORS`), the shared helpers, and
  :func:`~gdlab.plots.style.png_bytes`, the one way an explorer's figure becomes a PNG;
* :mod:`gdlab.plots.ch01` .. :mod:`gdlab.plots.ch07`: each chapter's figures (functions that take result objects,
  or the arguments to compute them, and return a ``matplotlib.figure.Figure``) and its explorer's ``View``, the
  figure of ``gdlab.experiments.chNN.run`` updated in place.

None of them computes anything a notebook could not get from the compute layer. A diverged run is drawn up to its
last finite point and labelled "diverged at step k" instead of a broken curve. The chapters' figure functions are
re-exported here, so that a notebook writes ``plots.width_figure(...)``.
"""

from . import ch01, ch02, ch03, ch04, ch05, ch06, ch07, style
from .ch01 import descent_paths_figure, health_maps_figure, segment_figure, slices_figure
from .ch02 import (
    flow_chain_figure,
    flow_gap_figure,
    quadratic_regimes_figure,
    rate_residual_figure,
    step_scan_figure,
    steps_bound_figure,
)
from .ch03 import concentration_figure, health_trajectory_figure, width_figure
from .ch04 import (
    gram_error_figure,
    kernel_predictor_figure,
    kernel_regression_figure,
    lambda0_figure,
    lazy_figure,
    ntk_convergence_figure,
    step_residual_figure,
)
from .ch05 import output_flow_figure, transition_figure
from .ch06 import (
    basins_figure,
    chain_figure,
    depth_figure,
    escape_figure,
    fold_figure,
    sgd_spectrum_figure,
    sgld_figure,
)
from .ch07 import balance_drift_figure, decaying_steps_figure, sharpness_path_figure, step_scan_depths_figure
from .style import COLORS, STYLE, PixelCachedLegend, diverged_label, finite_part, new_figure, png_bytes

__all__ = [
    "COLORS", "STYLE", "PixelCachedLegend", "diverged_label", "finite_part", "new_figure", "png_bytes",
    "ch01", "ch02", "ch03", "ch04", "ch05", "ch06", "ch07", "style",
    "descent_paths_figure", "health_maps_figure", "segment_figure", "slices_figure",
    "flow_chain_figure", "flow_gap_figure", "quadratic_regimes_figure", "rate_residual_figure", "step_scan_figure",
    "steps_bound_figure",
    "concentration_figure", "health_trajectory_figure", "width_figure",
    "gram_error_figure", "kernel_predictor_figure", "kernel_regression_figure", "lambda0_figure", "lazy_figure",
    "ntk_convergence_figure", "step_residual_figure",
    "output_flow_figure", "transition_figure",
    "basins_figure", "chain_figure", "depth_figure", "escape_figure", "fold_figure", "sgd_spectrum_figure",
    "sgld_figure",
    "balance_drift_figure", "decaying_steps_figure", "sharpness_path_figure", "step_scan_depths_figure",
]
