"""Interactive figures, one module per explorer, all with the same surface.

Each module ``<name>`` has:

- ``<name>_state(...) -> <Name>State``: a pure function that computes everything the
  figure draws for one setting of its controls (a frozen dataclass). Tested.
- ``readout_text(state) -> str``: the line of numbers printed under the figure.
- ``ipywidgets_explorer(...) -> WidgetExplorer``: the live figure for Jupyter
  (``make lab``): ``(widget, update, figure)``, where ``update(**values)`` redraws in
  place and returns the state it drew (see :mod:`._widgets`).
- ``bokeh_explorer(...)``: the same figure for the static website, as a Bokeh layout
  whose ``CustomJS`` callbacks run in the browser with no kernel and no network. It is
  built from the shared helpers in :mod:`._bokeh` (sliders named for screen readers, a
  readout, at most 640 px wide). The page's JavaScript computes the same numbers as
  ``<name>_state``; a browser test checks that both readouts agree.

A chapter embeds the Bokeh layout with :func:`bokeh_html` and glues it as a figure.
Each explorer has one test file, ``tests/test_explorer_<name>.py``.

Modules, in chapter order:

- :mod:`.pushforward` (Chapter 1): a density pushed through a map.
- :mod:`.normal_map` (Chapter 2): N(0, 1) -> N(mu, sigma^2).
- :mod:`.running_estimate` (Chapter 3): the running pathwise estimate in its
  +-2 sqrt(V/n) funnel around the exact gradient.
- :mod:`.estimator_spread` (Chapter 4): per-draw pathwise and
  score-function estimates, with their exact means and variances.
- :mod:`.gamma_quantile` (Chapter 5): fixed u's moved through the Gamma
  quantile function as alpha changes.
- :mod:`.simplex` (Chapter 6): Gumbel-softmax samples on the 2-simplex.
- :mod:`.latent` (Chapter 7): a point in the VAE's latent space, decoded.
- :mod:`.flow_layers` (Chapter 8): a trained 2-D flow applied layer by layer.
- :mod:`.noising` (Chapter 9): digits noised by q(x_t | x_0) as t moves.
"""

from ._bokeh import bokeh_html
from ._widgets import WidgetExplorer

__all__ = ["WidgetExplorer", "bokeh_html"]
