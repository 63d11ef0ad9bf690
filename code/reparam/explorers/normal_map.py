r"""The :math:`\mathcal N(0,1) \to \mathcal N(\mu,\sigma^2)` explorer, in two front
ends.

One figure, three panels sharing axes: the density of :math:`\varepsilon` (bottom), the
straight map :math:`x = \mu + \sigma\varepsilon` (centre), and the density of :math:`x`
turned on its side (left). Six fixed values :math:`\varepsilon_i` (quantiles of
:math:`\mathcal N(0,1)`, see ``SAMPLE_EPS``) are carried up to the map and across to
:math:`x_i`, and a shaded strip :math:`[a, b]` in :math:`\varepsilon`
and its image :math:`[\mu+\sigma a, \mu+\sigma b]` in :math:`x` carry the same
probability mass: :math:`f_X(x)\,dx = f_\varepsilon(\varepsilon)\,d\varepsilon` with
:math:`dx/d\varepsilon = \sigma`.

- :class:`NormalMapFigure` + :func:`ipywidgets_explorer`: for Jupyter (``make lab``),
  sliders update the existing artists in place.
- :func:`bokeh_explorer`: for the static website. Its sliders run a ``CustomJS``
  callback in the browser, so they redraw with no kernel and no network (BokehJS comes
  from the site's ``_static``, see ``code/book_ext.py``). ipywidgets cannot do this:
  their callbacks are Python, which a static page does not have.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from .._validation import as_real_scalar, check_scale
from ..gaussian import normal_density
from ._bokeh import bokeh_figure, explorer_column, js_fixed, readout_div, slider
from ._widgets import WidgetExplorer, live_figure

__all__ = [
    "NormalMapState",
    "normal_map_state",
    "NormalMapFigure",
    "ipywidgets_explorer",
    "bokeh_explorer",
    "readout_text",
    "SAMPLE_EPS",
    "SAMPLE_COUNT",
    "STRIP",
    "MU_RANGE",
    "SIGMA_RANGE",
]

EPS_GRID = np.linspace(-4.0, 4.0, 241)
X_LIMITS = (-8.0, 8.0)
MU_RANGE = (-3.0, 3.0)
SIGMA_RANGE = (0.3, 2.5)
# Six fixed values of eps that a reader can follow as mu and sigma move. Not random
# draws: six draws can bunch on one side (seed 7 put all six in [-0.99, 0.30]). These
# are the quantiles Phi^{-1}((i - 1/2)/6), i = 1..6, the midpoints in probability of
# the six equal-probability slices of N(0, 1): symmetric about 0, and one (0.674) lies
# in the shaded strip.
# The upper three are mirrored, so that the six are exactly symmetric in floating point.
SAMPLE_COUNT = 6
_UPPER = ndtri((np.arange(SAMPLE_COUNT // 2, SAMPLE_COUNT) + 0.5) / SAMPLE_COUNT)
SAMPLE_EPS = np.concatenate([-_UPPER[::-1], _UPPER])
STRIP = (0.5, 1.0)  # the strip a <= eps <= b whose mass is tracked


@dataclass(frozen=True)
class NormalMapState:
    """Everything the explorer draws for one (mu, sigma); both front ends use it."""

    mu: float
    sigma: float
    eps: np.ndarray
    eps_density: np.ndarray
    x: np.ndarray
    x_density: np.ndarray
    samples_eps: np.ndarray
    samples_x: np.ndarray
    strip_eps: tuple[float, float]
    strip_x: tuple[float, float]
    strip_mass_eps: float
    strip_mass_x: float


STRIP_POINTS = 2001


def _strip_mass(
    lower: float, upper: float, mu: float, sigma: float, points: int = STRIP_POINTS
) -> float:
    # Trapezoid rule on the density actually drawn, so the "equal area" claim is about
    # the figure.
    grid = np.linspace(lower, upper, points)
    density = normal_density(grid, mu, sigma)
    return float(np.sum((density[1:] + density[:-1]) * np.diff(grid)) / 2.0)


def normal_map_state(mu: float, sigma: float) -> NormalMapState:
    """Curves, samples and strip for the map :math:`x = \\mu + \\sigma\\varepsilon`."""
    mu, sigma = as_real_scalar(mu, "mu"), check_scale(sigma)
    x = mu + sigma * EPS_GRID
    strip_x = (mu + sigma * STRIP[0], mu + sigma * STRIP[1])
    return NormalMapState(
        mu=mu,
        sigma=sigma,
        eps=EPS_GRID,
        eps_density=normal_density(EPS_GRID, 0.0, 1.0),
        x=x,
        x_density=normal_density(x, mu, sigma),
        samples_eps=SAMPLE_EPS,
        samples_x=mu + sigma * SAMPLE_EPS,
        strip_eps=STRIP,
        strip_x=strip_x,
        strip_mass_eps=_strip_mass(*STRIP, 0.0, 1.0),
        strip_mass_x=_strip_mass(*strip_x, mu, sigma),
    )


def _sample_paths(state: NormalMapState) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Polylines from each eps_i on the eps axis, up to the map, across to x_i."""
    xs, ys = [], []
    for e, x in zip(state.samples_eps, state.samples_x, strict=True):
        xs.append(np.array([e, e, EPS_GRID[0]]))
        ys.append(np.array([X_LIMITS[0], x, x]))
    return xs, ys


class NormalMapFigure:
    """A matplotlib figure whose artists :meth:`update` changes in place."""

    def __init__(self, mu: float = 0.0, sigma: float = 1.0, figure=None):
        import matplotlib.pyplot as plt
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if figure is None:
            # A standalone figure (outside pyplot) that can still render, e.g. in
            # benchmarks.
            figure = Figure(figsize=(7.5, 6.0))
            FigureCanvasAgg(figure)
        self.figure = figure
        self.figure.set_layout_engine("constrained")
        grid = self.figure.add_gridspec(
            2, 2, width_ratios=(1.3, 3), height_ratios=(3, 1)
        )
        self.ax_map = self.figure.add_subplot(grid[0, 1])
        self.ax_x = self.figure.add_subplot(grid[0, 0], sharey=self.ax_map)
        self.ax_eps = self.figure.add_subplot(grid[1, 1], sharex=self.ax_map)
        state = normal_map_state(mu, sigma)
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

        self.ax_eps.plot(state.eps, state.eps_density, color=colors[0])
        self.ax_eps.fill_between(
            state.eps,
            state.eps_density,
            where=(state.eps >= STRIP[0]) & (state.eps <= STRIP[1]),
            color=colors[0],
            alpha=0.35,
        )
        self.ax_eps.set_xlabel(r"$\varepsilon$")
        self.ax_eps.set_ylabel(r"$\mathcal{N}(\varepsilon\mid 0,1)$")
        self.ax_eps.set_ylim(0, 0.45)
        self.ax_eps.plot(
            SAMPLE_EPS,
            np.zeros_like(SAMPLE_EPS),
            "o",
            color="black",
            ms=4,
            clip_on=False,
        )

        (self.map_line,) = self.ax_map.plot(state.eps, state.x, color="black", lw=1.5)
        xs, ys = _sample_paths(state)
        self.sample_lines = [
            self.ax_map.plot(a, b, color="grey", lw=0.8, ls="--")[0]
            for a, b in zip(xs, ys, strict=True)
        ]
        self.strip_band = self.ax_map.axhspan(
            *state.strip_x, color=colors[1], alpha=0.25
        )
        self.ax_map.axvspan(*STRIP, color=colors[0], alpha=0.15)
        self.ax_map.set_xlim(EPS_GRID[0], EPS_GRID[-1])
        self.ax_map.set_ylim(*X_LIMITS)
        self.ax_map.set_title(r"$x = \mu + \sigma\varepsilon$")
        self.ax_map.tick_params(labelleft=False, labelbottom=False)

        (self.x_line,) = self.ax_x.plot(state.x_density, state.x, color=colors[1])
        self.x_strip = self.ax_x.fill_betweenx(
            *self._strip_polygon_args(state), color=colors[1], alpha=0.35
        )
        (self.x_samples,) = self.ax_x.plot(
            np.zeros_like(SAMPLE_EPS),
            state.samples_x,
            "o",
            color="black",
            ms=4,
            clip_on=False,
        )
        self.ax_x.set_xlim(1.4, 0)  # density grows to the left, towards the reader
        self.ax_x.set_ylabel("$x$")
        self.ax_x.set_xlabel(r"$\mathcal{N}(x\mid\mu,\sigma^2)$")
        self.title = self.figure.suptitle("")
        self.move_artists(mu, sigma)
        # Lay the panels out once, then freeze: re-solving the layout on every slider
        # step would dominate the redraw time, and the axes never change size. Not
        # canvas.draw(): on an ipympl canvas that stores an image before the view
        # exists, which JupyterLab then fails to paint inside a widget box.
        self.figure.draw_without_rendering()
        self.figure.set_layout_engine("none")

    @staticmethod
    def _strip_polygon_args(state: NormalMapState):
        inside = np.linspace(*state.strip_x, 50)
        return inside, normal_density(inside, state.mu, state.sigma), 0.0

    def update(self, mu: float, sigma: float) -> NormalMapState:
        """The slider callback: move every artist, then ask the canvas for a redraw.

        With ipympl (``make lab``) ``draw_idle`` only schedules the render, so the
        callback returns at once; on a plain Agg canvas it renders immediately.
        """
        state = self.move_artists(mu, sigma)
        self.figure.canvas.draw_idle()
        return state

    def move_artists(self, mu: float, sigma: float) -> NormalMapState:
        """Change the existing artists' data to (mu, sigma); draws nothing."""
        state = normal_map_state(mu, sigma)
        self.map_line.set_ydata(state.x)
        paths = zip(*_sample_paths(state), strict=True)
        for line, (a, b) in zip(self.sample_lines, paths, strict=True):
            line.set_data(a, b)
        low, high = state.strip_x
        self.strip_band.set_y(
            low
        )  # axhspan is a Rectangle in axes-x, data-y coordinates
        self.strip_band.set_height(high - low)
        self.x_line.set_data(state.x_density, state.x)
        y, density, _ = self._strip_polygon_args(state)
        vertices = np.concatenate(
            [np.column_stack([density, y]), [[0.0, high], [0.0, low]]]
        )
        self.x_strip.set_verts([vertices])
        self.x_samples.set_ydata(state.samples_x)
        self.title.set_text(
            rf"$\mu={state.mu:.2f},\ \sigma={state.sigma:.2f}$: strip mass "
            rf"{state.strip_mass_eps:.4f} in $\varepsilon$ = "
            rf"{state.strip_mass_x:.4f} in $x$"
        )
        return state


def ipywidgets_explorer(mu: float = 0.0, sigma: float = 1.0) -> WidgetExplorer:
    """Sliders for mu and sigma driving a live (ipympl) :class:`NormalMapFigure`.

    Needs a Jupyter front end (``make lab``).
    """
    import ipywidgets as widgets

    figure = live_figure((7.5, 6.0))
    drawing = NormalMapFigure(mu, sigma, figure=figure)
    sliders = {
        "mu": widgets.FloatSlider(value=mu, min=MU_RANGE[0], max=MU_RANGE[1],
                                  step=0.05, description="μ"),
        "sigma": widgets.FloatSlider(value=sigma, min=SIGMA_RANGE[0],
                                     max=SIGMA_RANGE[1], step=0.05, description="σ"),
    }

    def update(mu: float, sigma: float) -> NormalMapState:
        return drawing.update(mu, sigma)

    def on_change(_change):
        update(sliders["mu"].value, sliders["sigma"].value)

    for control in sliders.values():
        control.observe(on_change, names="value")
    box = widgets.VBox([widgets.HBox(list(sliders.values())), figure.canvas])
    return WidgetExplorer(box, update, figure)


# The browser-side update mirrors normal_map_state: same grid, same samples, same strip.
_BOKEH_CALLBACK = """
const mu = mu_slider.value, sigma = sigma_slider.value;
const eps = map.data.eps;
const density = (x) =>
  Math.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * Math.sqrt(2 * Math.PI));
const x = eps.map((e) => mu + sigma * e);
map.data = {eps: eps, x: x};
x_density.data = {x: x, density: x.map(density)};
// Array.from, not .map: mapping a Float64Array to arrays would coerce them to NaN.
const sx = Array.from(samples.data.eps, (e) => mu + sigma * e);
samples.data = {eps: samples.data.eps, x: sx, zero: samples.data.zero};
paths.data = {xs: paths.data.xs, ys: sx.map((v) => [y_min, v, v])};
const lo = mu + sigma * strip_eps[0], hi = mu + sigma * strip_eps[1];
const ys = Array.from({length: 50}, (_, i) => lo + (hi - lo) * i / 49);
strip.data = {x: ys, density: ys.map(density), zero: ys.map(() => 0)};
band.bottom = lo; band.top = hi;
// The strip's mass in x, by the trapezoid rule normal_map_state uses (same points).
let mass = 0, previous = density(lo);
for (let i = 1; i < points; i++) {
  const t = lo + (hi - lo) * i / (points - 1), d = density(t);
  mass += (d + previous) * (hi - lo) / (points - 1) / 2;
  previous = d;
}
readout.text = "μ = " + mu.toFixed(2) + ", σ = " + sigma.toFixed(2) +
  ": the strip ε in [" + strip_eps[0] + ", " + strip_eps[1] + "] has mass " +
  mass_eps.toFixed(4) +
  "; its image x in [" + lo.toFixed(2) + ", " + hi.toFixed(2) + "] has mass " +
  mass.toFixed(4);
"""


def readout_text(state: NormalMapState) -> str:
    """The readout under the website's figure (the page's JavaScript writes it too)."""
    low, high = state.strip_x
    return (
        f"μ = {js_fixed(state.mu, 2)}, σ = {js_fixed(state.sigma, 2)}: the strip ε in "
        f"[{state.strip_eps[0]:g}, {state.strip_eps[1]:g}] has mass "
        f"{js_fixed(state.strip_mass_eps, 4)}; its image x in [{js_fixed(low, 2)}, "
        f"{js_fixed(high, 2)}] has mass {js_fixed(state.strip_mass_x, 4)}"
    )


def bokeh_explorer(mu: float = 0.0, sigma: float = 1.0):
    """The same three-panel explorer as a responsive Bokeh layout that works in a static
    page.

    The layout stretches to the text column (at most 640 px): on a 390-px phone the map
    and both densities stay whole. The sliders' titles name them for screen readers ("μ,
    the mean"), and a readout states the strip's mass in ε and in x, computed in the
    page the way :func:`normal_map_state` computes it (trapezoid rule, 2001 points).
    """
    from bokeh.layouts import gridplot
    from bokeh.models import BoxAnnotation, ColumnDataSource, CustomJS

    state = normal_map_state(mu, sigma)
    xs, ys = _sample_paths(state)
    map_source = ColumnDataSource({"eps": state.eps, "x": state.x}, name="map")
    eps_source = ColumnDataSource({"eps": state.eps, "density": state.eps_density})
    x_source = ColumnDataSource(
        {"x": state.x, "density": state.x_density}, name="x_density"
    )
    samples = ColumnDataSource(
        {
            "eps": state.samples_eps,
            "x": state.samples_x,
            "zero": np.zeros_like(SAMPLE_EPS),
        },
        name="samples",
    )
    paths = ColumnDataSource(
        {"xs": [list(a) for a in xs], "ys": [list(b) for b in ys]}, name="paths"
    )
    inside_eps = np.linspace(*STRIP, 50)
    eps_strip = ColumnDataSource(
        {
            "eps": inside_eps,
            "density": normal_density(inside_eps, 0, 1),
            "zero": np.zeros(50),
        }
    )
    y_strip, d_strip, _ = NormalMapFigure._strip_polygon_args(state)
    x_strip = ColumnDataSource(
        {"x": y_strip, "density": d_strip, "zero": np.zeros(50)}, name="x_strip"
    )

    tools = "pan,wheel_zoom,reset"
    p_map = bokeh_figure(
        "x = μ + σ ε",
        x_range=(EPS_GRID[0], EPS_GRID[-1]),
        y_range=X_LIMITS,
        tools=tools,
    )
    p_map.line("eps", "x", source=map_source, color="black", line_width=2)
    p_map.multi_line("xs", "ys", source=paths, color="grey", line_dash="dashed")
    band = BoxAnnotation(
        bottom=state.strip_x[0],
        top=state.strip_x[1],
        fill_alpha=0.25,
        fill_color="#ff7f0e",
        name="band",
    )
    p_map.add_layout(band)
    p_map.add_layout(
        BoxAnnotation(
            left=STRIP[0], right=STRIP[1], fill_alpha=0.15, fill_color="#1f77b4"
        )
    )

    # The side panel keeps a fixed, narrow width; the map takes the rest of the column.
    p_x = bokeh_figure(
        "density of x",
        x_range=(1.4, 0),
        y_range=p_map.y_range,
        width=110,
        tools=tools,
        sizing_mode="fixed",
    )
    p_x.line("density", "x", source=x_source, color="#ff7f0e", line_width=2)
    p_x.harea(
        y="x",
        x1="zero",
        x2="density",
        source=x_strip,
        fill_color="#ff7f0e",
        fill_alpha=0.4,
    )
    p_x.scatter("zero", "x", source=samples, color="black", size=6)
    p_x.yaxis.axis_label = "x"
    # Right-aligned, the title may run over the axis labels; left-aligned, the narrow
    # canvas cut it to "density".
    p_x.title.align = "right"
    p_x.xaxis.ticker = [0, 1]

    p_eps = bokeh_figure(
        "density of ε",
        x_range=p_map.x_range,
        y_range=(0, 0.45),
        height=170,
        tools=tools,
    )
    p_eps.line("eps", "density", source=eps_source, color="#1f77b4", line_width=2)
    p_eps.varea(
        x="eps",
        y1="zero",
        y2="density",
        source=eps_strip,
        fill_color="#1f77b4",
        fill_alpha=0.4,
    )
    p_eps.scatter("eps", "zero", source=samples, color="black", size=6)
    p_eps.xaxis.axis_label = "ε"
    for axis in (p_map.xaxis, p_eps.xaxis):
        axis.ticker = [-4, -2, 0, 2, 4]  # legible on a phone

    mu_slider = slider("mu_slider", "μ, the mean", *MU_RANGE, mu, 0.05)
    sigma_slider = slider("sigma_slider", "σ, the standard deviation", *SIGMA_RANGE,
                          sigma, 0.05)
    readout = readout_div(readout_text(state), "strip_readout")
    callback = CustomJS(
        args=dict(
            mu_slider=mu_slider,
            sigma_slider=sigma_slider,
            map=map_source,
            x_density=x_source,
            samples=samples,
            paths=paths,
            strip=x_strip,
            band=band,
            readout=readout,
            strip_eps=list(STRIP),
            y_min=X_LIMITS[0],
            mass_eps=state.strip_mass_eps,
            points=STRIP_POINTS,
        ),
        code=_BOKEH_CALLBACK,
    )
    mu_slider.js_on_change("value", callback)
    sigma_slider.js_on_change("value", callback)
    grid = gridplot([[p_x, p_map], [None, p_eps]], toolbar_location="below",
                    merge_tools=True, sizing_mode="stretch_width")
    # The side panel keeps its width, the map takes the rest.
    grid.cols = ["auto", "1fr"]
    return explorer_column(mu_slider, sigma_slider, readout, grid)
