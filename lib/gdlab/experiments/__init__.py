"""The chapters' explorer experiments (compute layer: numpy/scipy only), one module a chapter.

Each module ``chNN`` holds its chapter's explorer experiment, the one home of its settings and set-up:

* ``SPEC`` (:class:`gdlab.spec.Spec`): every control of the explorer, written once (name, label, default, range or
  choices, log or linear, the values offered on the web page); widgets, validation, defaults, benchmarks and the
  web page's states are derived from it;
* the set-up constants and cached problems that the chapter's notebook shares with the explorer (sizes, seeds,
  data), so that the notebook imports them instead of retyping them;
* ``run(**settings) -> Run``: the explorer's computation, its settings bound (checked, defaults filled in) by
  ``SPEC.bind``; ``Run`` is a NamedTuple whose first field ``settings`` holds the bound settings;
* the words about a run that are not drawing (``ch01.step_regime``, ``ch03.notes``, ``ch05.verdict``).

The figures of a run are drawn by the ``View`` of the same chapter in :mod:`gdlab.plots`.
"""

from . import ch01, ch02, ch03, ch04, ch05, ch06, ch07

__all__ = ["ch01", "ch02", "ch03", "ch04", "ch05", "ch06", "ch07"]
