"""gdlab: the gradient-descent lab behind the book "Why gradient descent minimizes training loss".

Three layers, arrows pointing down only (tests/test_layers.py checks them):

* compute (numpy/scipy only):

  - the chapters' mathematics: :mod:`gdlab.landscapes` (chapter 1), :mod:`gdlab.nets` and :mod:`gdlab.flow`
    (chapters 1-3), :mod:`gdlab.bounds` (chapter 3), :mod:`gdlab.ntk` (chapter 4), :mod:`gdlab.params` (chapter 5),
    :mod:`gdlab.saddles` and :mod:`gdlab.chain` (chapter 6), :mod:`gdlab.deeplinear` (chapter 7), with
    :mod:`gdlab.numerics` for finite differences and fits and :mod:`gdlab.runs` for how every runner reports a run
    (``diverged_at``, the divergence threshold, the recorded steps);
  - :mod:`gdlab.spec`: the declarative controls of an explorer (:class:`gdlab.spec.Spec`);
  - :mod:`gdlab.experiments`: one module a chapter (``experiments.ch01`` .. ``ch07``) with its explorer's ``SPEC``,
    the set-up the notebook shares with it (sizes, seeds, data) and ``run(**settings)``;

* :mod:`gdlab.plots`: matplotlib figures, one module a chapter (``plots.ch01`` .. ``ch07``: the notebook's figures
  and the explorer's ``View``) and :mod:`gdlab.plots.style` (the book's style and shared helpers);
* :mod:`gdlab.widgets`: the explorers (``EXPLORERS``), their ipywidgets controls derived from the specs, and ``live``.

Compute functions are pure: arrays and a seed or ``numpy.random.Generator`` in, a small frozen result out.
"""

__version__ = "0.1.0"
