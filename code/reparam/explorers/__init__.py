"""Interactive figures, one module per explorer.

Each module has the same three parts:

- one pure function that computes everything the figure draws for one setting (tested);
- an ipywidgets front end for Jupyter (``make lab``), drawing from that function;
- a Bokeh front end for the static website, whose ``CustomJS`` callbacks run in the
  browser with no kernel and no network, drawing the same state.

Modules, in chapter order:

- :mod:`.pushforward` (Chapter 1): a density pushed through a map.
- :mod:`.normal_map` (Chapter 2): N(0, 1) -> N(mu, sigma^2).
- :mod:`.estimator_spread` (Chapter 4): per-draw pathwise and
  score-function estimates, with their exact means and variances.
- :mod:`.gamma_quantile` (Chapter 5): fixed u's moved through the Gamma
  quantile function as alpha changes.
- :mod:`.simplex` (Chapter 6): Gumbel-softmax samples on the 2-simplex.
- :mod:`.latent` (Chapter 7): a point in the VAE's latent space, decoded.
- :mod:`.noising` (Chapter 9): digits noised by q(x_t | x_0) as t moves.
"""
