"""Interactive figures, one module per explorer.

Each module has the same three parts:

- one pure function that computes everything the figure draws for one setting (tested);
- an ipywidgets front end for Jupyter (``make lab``), drawing from that function;
- a Bokeh front end for the static website, whose ``CustomJS`` callbacks run in the browser
  with no kernel and no network, drawing the same state.

Modules: :mod:`~reparam.explorers.normal_map` (Chapter 2, N(0, 1) -> N(mu, sigma^2)).
"""
