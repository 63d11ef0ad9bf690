r"""The Gamma quantile explorer (Chapter 5): fixed uniforms pushed through Gamma(α, 1).

A few uniforms :math:`u_i` are drawn once. For the concentration α chosen on a slider,
each becomes the sample :math:`x_i = F_\alpha^{-1}(u_i)` of Gamma(α, rate 1) (top
panel: the quantile function and the dots on it), and the bottom panel shows how fast
each sample moves as α moves with its :math:`u_i` held fixed,
:math:`\partial x_i/\partial\alpha`, computed by
:func:`reparam.implicit.standard_gamma_grad`.

- :func:`gamma_quantile_state` -> :class:`GammaQuantileState`: the pure function
  computing everything drawn for one α (tested); :func:`gamma_quantile_states` computes
  many α's in one vectorized pass (the website's table).
- :func:`readout_text`: the line under the figure.
- :class:`GammaQuantileFigure` + :func:`ipywidgets_explorer`: for Jupyter (``make
  lab``), the slider changes the existing artists' data in place.
- :func:`bokeh_explorer`: for the static website. The Gamma quantile function has no
  closed form a browser could evaluate, so the states are computed in Python on
  :data:`ALPHA_GRID` and shipped in the page; the slider's ``CustomJS`` callback picks
  the row of the current α (and its readout, written by :func:`readout_text`), with
  no kernel and no network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from .._validation import as_real_scalar
from ..implicit import standard_gamma_grad
from ..style import MAX_WIDTH_IN
from ._bokeh import bokeh_figure, explorer_column, readout_div, slider
from ._widgets import WidgetExplorer, live_figure

__all__ = [
    "GammaQuantileState",
    "gamma_quantile_state",
    "gamma_quantile_states",
    "readout_text",
    "GammaQuantileFigure",
    "ipywidgets_explorer",
    "bokeh_explorer",
    "ALPHA_RANGE",
    "ALPHA_STEP",
    "ALPHA_GRID",
    "grid_index",
    "U_GRID",
    "SAMPLE_U",
]

ALPHA_RANGE = (0.2, 15.0)
ALPHA_STEP = 0.1  # of the slider, in both front ends: what the arrow keys move
# The slider's positions; the website carries one precomputed state per position.
ALPHA_GRID = np.round(
    np.arange(ALPHA_RANGE[0], ALPHA_RANGE[1] + ALPHA_STEP / 2, ALPHA_STEP), 10
)
U_GRID = np.linspace(0.01, 0.99, 49)  # holds u = 0.5 (the median), index 24
MEDIAN_INDEX = 24
# Fixed uniforms (numpy's seeded generator): the reader follows the same points.
SAMPLE_U = np.sort(np.random.default_rng(12).uniform(size=7))
FIGSIZE = (MAX_WIDTH_IN, 6.0)  # inches: the book's column width


@dataclass(frozen=True)
class GammaQuantileState:
    """Everything the explorer draws for one α; both front ends draw from this."""

    alpha: float
    u: np.ndarray
    quantile: np.ndarray
    quantile_dx_dalpha: np.ndarray
    samples_u: np.ndarray
    samples_x: np.ndarray
    samples_dx_dalpha: np.ndarray
    median: float
    median_dx_dalpha: float


def _check_alpha(alpha) -> float:
    alpha = as_real_scalar(alpha, "alpha")
    if alpha <= 0:
        raise ValueError(f"alpha (the concentration) must be > 0, got {alpha}")
    return alpha


def gamma_quantile_states(alphas) -> list[GammaQuantileState]:
    r"""Gamma quantiles and their α-derivatives at fixed u, for each α in ``alphas``.

    One vectorized pass. Quantiles come from SciPy's ``gammaincinv`` (an independent
    inverse), derivatives from :func:`reparam.implicit.standard_gamma_grad` at those
    quantiles (elementwise, so a row does not depend on the other α's: it equals
    :func:`gamma_quantile_state` at that α exactly).
    """
    alphas = np.array([_check_alpha(a) for a in alphas])[:, None]
    u = np.concatenate([U_GRID, SAMPLE_U])[None, :]
    x = special.gammaincinv(alphas, u)
    dx = standard_gamma_grad(x, alphas).numpy()
    m = len(U_GRID)
    return [
        GammaQuantileState(
            alpha=float(a),
            u=U_GRID,
            quantile=x[k, :m],
            quantile_dx_dalpha=dx[k, :m],
            samples_u=SAMPLE_U,
            samples_x=x[k, m:],
            samples_dx_dalpha=dx[k, m:],
            median=float(x[k, MEDIAN_INDEX]),
            median_dx_dalpha=float(dx[k, MEDIAN_INDEX]),
        )
        for k, a in enumerate(alphas[:, 0])
    ]


def gamma_quantile_state(alpha: float) -> GammaQuantileState:
    """The quantile curve, the seven samples and their speeds for one α."""
    return gamma_quantile_states([alpha])[0]


def readout_text(state: GammaQuantileState) -> str:
    """The line under the figure (the page shows the text Python wrote for its α)."""
    return (
        f"α = {state.alpha:.1f}: the sample at u = 0.5 is x = {state.median:.4f} "
        f"and moves at ∂x/∂α = {state.median_dx_dalpha:.4f}"
    )


def _axis_limits() -> tuple[float, tuple[float, float]]:
    # Fixed axes over the whole slider range, so a moving dot means a moving sample.
    low, high = ALPHA_RANGE
    low_dx = min(
        0.0, float(standard_gamma_grad(special.gammaincinv(low, U_GRID[0]), low))
    )
    x_max = float(special.gammaincinv(high, U_GRID[-1])) * 1.05
    high_dx = max(
        float(standard_gamma_grad(special.gammaincinv(a, U_GRID[-1]), a))
        for a in ALPHA_RANGE
    )
    return x_max, (low_dx, 1.05 * high_dx)


class GammaQuantileFigure:
    """Two stacked panels whose artists :meth:`update` changes in place."""

    def __init__(self, alpha: float = 2.0, figure=None):
        if figure is None:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            figure = Figure(figsize=FIGSIZE)
            FigureCanvasAgg(figure)
        self.figure = figure
        self.ax_x, self.ax_dx = figure.subplots(2, 1, sharex=True)
        state = gamma_quantile_state(alpha)
        (self.curve,) = self.ax_x.plot(state.u, state.quantile, color="black")
        (self.dots,) = self.ax_x.plot(
            state.samples_u, state.samples_x, "o", color="C1"
        )
        (self.dx_curve,) = self.ax_dx.plot(
            state.u, state.quantile_dx_dalpha, color="black"
        )
        (self.dx_dots,) = self.ax_dx.plot(
            state.samples_u, state.samples_dx_dalpha, "o", color="C1"
        )
        x_max, dx_limits = _axis_limits()
        self.ax_x.set_ylim(0, x_max)
        self.ax_dx.set_ylim(*dx_limits)
        self.ax_x.set_ylabel(r"$x = F_\alpha^{-1}(u)$")
        self.ax_dx.set_ylabel(r"$\partial x/\partial\alpha$")
        self.ax_dx.set_xlabel("$u$ (held fixed)")
        self.title = self.ax_x.set_title(readout_text(state), fontsize="small")
        # Lay the panels out once, then freeze: the axes never change size.
        figure.tight_layout()
        figure.set_layout_engine("none")

    def update(self, alpha: float) -> GammaQuantileState:
        """The slider callback: move every artist, then ask the canvas for a redraw."""
        state = gamma_quantile_state(alpha)
        self.curve.set_ydata(state.quantile)
        self.dots.set_ydata(state.samples_x)
        self.dx_curve.set_ydata(state.quantile_dx_dalpha)
        self.dx_dots.set_ydata(state.samples_dx_dalpha)
        self.title.set_text(readout_text(state))
        self.figure.canvas.draw_idle()
        return state


def ipywidgets_explorer(alpha: float = 2.0) -> WidgetExplorer:
    """An α slider driving a live (ipympl) :class:`GammaQuantileFigure`.

    Needs a Jupyter front end (``make lab``); ``update(alpha=...)`` redraws and returns
    the :class:`GammaQuantileState` it drew.
    """
    import ipywidgets as widgets

    figure = live_figure(FIGSIZE)
    drawing = GammaQuantileFigure(alpha, figure=figure)
    control = widgets.FloatSlider(
        value=alpha,
        min=ALPHA_RANGE[0],
        max=ALPHA_RANGE[1],
        step=ALPHA_STEP,
        description="α, the concentration",
        style={"description_width": "initial"},
    )

    def update(alpha: float) -> GammaQuantileState:
        return drawing.update(alpha)

    control.observe(lambda _change: update(control.value), names="value")
    return WidgetExplorer(widgets.VBox([control, figure.canvas]), update, figure)


# The browser-side update picks the precomputed row of the slider's alpha. The table is
# one flat float64 column per quantity (row-major over ALPHA_GRID), which Bokeh ships as
# binary: exactly the numbers gamma_quantile_states computed.
_BOKEH_CALLBACK = """
const i = Math.round((slider.value - alpha0) / step);
const m = curve.data.u.length, k = samples.data.u.length;
const t = table.data, ts = sample_table.data;
curve.data = {u: curve.data.u, x: t.x.slice(i * m, (i + 1) * m),
              dx: t.dx.slice(i * m, (i + 1) * m)};
samples.data = {u: samples.data.u, x: ts.sx.slice(i * k, (i + 1) * k),
                dx: ts.sdx.slice(i * k, (i + 1) * k)};
readout.text = texts[i];
"""


def grid_index(alpha: float) -> int:
    """The row of :data:`ALPHA_GRID` the page shows for a slider value (as the JS)."""
    i = int(round((_check_alpha(alpha) - ALPHA_RANGE[0]) / ALPHA_STEP))
    if not 0 <= i < len(ALPHA_GRID):
        raise ValueError(f"alpha must lie in {ALPHA_RANGE}, got {alpha}")
    return i


def _flat(rows) -> np.ndarray:
    return np.concatenate(list(rows))


def bokeh_explorer(alpha: float = 2.0):
    """The same explorer as a Bokeh layout whose slider works in a static page."""
    from bokeh.models import ColumnDataSource, CustomJS

    table = gamma_quantile_states(ALPHA_GRID)
    i = grid_index(alpha)
    state = table[i]
    curve = ColumnDataSource(
        {"u": U_GRID, "x": state.quantile, "dx": state.quantile_dx_dalpha},
        name="curve",
    )
    samples = ColumnDataSource(
        {"u": SAMPLE_U, "x": state.samples_x, "dx": state.samples_dx_dalpha},
        name="samples",
    )
    x_max, dx_limits = _axis_limits()
    tools = "pan,wheel_zoom,reset"
    p_x = bokeh_figure(
        "samples x = F⁻¹(u), Gamma(α, 1)",
        height=260,
        x_range=(0, 1),
        y_range=(0, x_max),
        tools=tools,
    )
    p_x.line("u", "x", source=curve, color="black", line_width=2)
    p_x.scatter("u", "x", source=samples, color="#ff7f0e", size=9)
    p_x.yaxis.axis_label = "x"
    p_dx = bokeh_figure(
        "speed ∂x/∂α at fixed u",
        height=260,
        x_range=p_x.x_range,
        y_range=dx_limits,
        tools=tools,
    )
    p_dx.line("u", "dx", source=curve, color="black", line_width=2)
    p_dx.scatter("u", "dx", source=samples, color="#ff7f0e", size=9)
    p_dx.xaxis.axis_label = "u (held fixed)"
    p_dx.yaxis.axis_label = "∂x/∂α"
    readout = readout_div(readout_text(state), "quantile_readout")
    control = slider("alpha_slider", "α, the concentration", *ALPHA_RANGE,
                     float(ALPHA_GRID[i]), ALPHA_STEP)
    # Two columns of each length: Bokeh's sources want equal lengths per source.
    grid_table = ColumnDataSource(
        {
            "x": _flat(s.quantile for s in table),
            "dx": _flat(s.quantile_dx_dalpha for s in table),
        }
    )
    sample_table = ColumnDataSource(
        {
            "sx": _flat(s.samples_x for s in table),
            "sdx": _flat(s.samples_dx_dalpha for s in table),
        }
    )
    callback = CustomJS(
        args=dict(
            slider=control,
            curve=curve,
            samples=samples,
            readout=readout,
            alpha0=ALPHA_RANGE[0],
            step=ALPHA_STEP,
            table=grid_table,
            sample_table=sample_table,
            texts=[readout_text(s) for s in table],
        ),
        code=_BOKEH_CALLBACK,
    )
    control.js_on_change("value", callback)
    return explorer_column(control, readout, p_x, p_dx)
