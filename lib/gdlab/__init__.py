"""gdlab: the gradient-descent lab behind the book "Why gradient descent minimizes training loss".

Three layers, arrows pointing down only:

* compute modules (numpy/scipy only): :mod:`gdlab.nets`, :mod:`gdlab.flow`, :mod:`gdlab.landscapes`,
  :mod:`gdlab.bounds`, :mod:`gdlab.numerics`, :mod:`gdlab.ntk`, :mod:`gdlab.params`, :mod:`gdlab.saddles`,
  :mod:`gdlab.deeplinear`;
* :mod:`gdlab.plots`: matplotlib figures drawn from the compute modules' result objects;
* :mod:`gdlab.widgets`: ipywidgets explorers that call the plot functions.

Compute functions are pure: arrays and a seed or ``numpy.random.Generator`` in, a small frozen result out.
"""

__version__ = "0.1.0"
