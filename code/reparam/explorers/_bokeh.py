"""The Bokeh side of every explorer: embedding, sliders, readouts, figure defaults.

Each explorer's ``bokeh_explorer()`` builds its layout from these, so that every
explorer on the website looks and behaves alike: sliders stretch to the text column
and carry a title that names them for screen readers, the readout is a ``Div`` a test
can read, and the whole layout is at most 640 px wide, so it fits a 390 px phone. The
histograms' bars count values as ``numpy.histogram`` does, on the page too
(``bar_edges``, ``JS_HISTOGRAM``).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np

__all__ = [
    "JS_HISTOGRAM",
    "bar_edges",
    "bokeh_figure",
    "bokeh_html",
    "explorer_column",
    "js_fixed",
    "readout_div",
    "slider",
]

MAX_WIDTH = "640px"
# The page's histograms, as Python's: bar_edges, and the bar of a value as
# numpy.histogram counts it (edges[i] <= v < edges[i + 1], the last bar closed; -1 or
# less below the first edge, B or more above the last). Dividing by the width alone
# can be one bar off for a value on an edge (round-off): the comparisons put it right.
JS_HISTOGRAM = """const barEdges = (low, high, B) => {
  const edges = Array.from({length: B + 1}, (_, i) => low + (high - low) * i / B);
  edges[B] = high;
  return edges;
};
const barIndex = (v, edges) => {
  const B = edges.length - 1;
  let i = Math.floor((v - edges[0]) / (edges[1] - edges[0]));
  if (i >= -1 && i < B && v >= edges[i + 1]) { i += 1; }
  else if (i >= 0 && i <= B && v < edges[i]) { i -= 1; }
  return v === edges[B] ? B - 1 : i;
};
"""


def bar_edges(low: float, high: float, bars: int) -> np.ndarray:
    """The edges of ``bars`` equal bars from ``low`` to exactly ``high`` (low + (high -
    low) i / bars alone can end a hair off ``high``), as the page's barEdges writes
    them."""
    edges = low + (high - low) * np.arange(bars + 1) / bars
    edges[-1] = high
    return edges


def bokeh_html(layout) -> str:
    """The ``<script>`` + ``<div>`` that embed ``layout``, without BokehJS itself.

    BokehJS is loaded once per page from the site's ``_static`` folder (never a CDN,
    never inlined): see ``code/book_ext.py``.
    """
    from bokeh.embed import components

    script, div = components(layout)
    return script + "\n" + div


def slider(name: str, title: str, start: float, end: float, value: float,
           step: float):
    """A slider that stretches to the column; ``title`` names it ("μ, the mean")."""
    from bokeh.models import Slider

    return Slider(start=start, end=end, value=value, step=step, title=title,
                  name=name, sizing_mode="stretch_width")


def readout_div(text: str, name: str):
    """The line of text under the sliders that states the figure's numbers."""
    from bokeh.models import Div

    return Div(text=text, name=name, sizing_mode="stretch_width")


def bokeh_figure(title: str, height: int = 340, sizing_mode: str = "stretch_width",
           **kwargs):
    """A Bokeh figure with the book's defaults (stretches to the column)."""
    from bokeh.plotting import figure

    return figure(title=title, height=height, sizing_mode=sizing_mode, **kwargs)


def explorer_column(*children):
    """The explorer's outer layout: one column, at most 640 px wide."""
    from bokeh.layouts import column

    return column(*children, sizing_mode="stretch_width",
                  styles={"max-width": MAX_WIDTH})


def js_fixed(value: float, digits: int) -> str:
    """``value`` with ``digits`` decimals, rounded as JavaScript's ``toFixed`` rounds.

    Both round the exact binary value, but on an exact tie they part: to two decimals,
    Python's ``format`` writes -2.125 as "-2.12" (half to even) and ``toFixed`` as
    "-2.13" (half away from zero). Readouts that the page writes with ``toFixed`` are
    written in Python with this, so that both front ends print the same text.
    """
    exact = Decimal(float(value) + 0.0)  # + 0.0: -0.0 becomes 0.0, as in toFixed
    return str(exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))
