r"""The pushforward explorer: samples pushed through a map against the derived density.

The reader picks a map :math:`y = h_\theta(u)` and moves its parameter :math:`\theta`. A
fixed set of base draws :math:`u_i` (standard normal or uniform on (0, 1)) is pushed
through the map; the figure shows their histogram against the density :math:`f_Y` that
the change-of-variables formula gives. The map and the density are SymPy expressions
passed in by the caller (the chapter's own derivation); the page's JavaScript is printed
from them by SymPy's JavaScript code printer (:func:`sympy.printing.jscode`), so the
website runs the derivation's result, not a hand copy.

The readout states the parameter and two numbers computed the same way in Python
(:func:`pushforward_state`) and in the page: the mass of the derived density inside the
plotted window (midpoint rule on a fine grid) and the share of the pushed samples that
land in that window.

A grey band behind the bars shows how far a bar may stray by chance: for each bin, the
height the derived density predicts, :math:`p_b/w`, plus and minus two standard errors
of a bar's height, :math:`2\sqrt{p_b(1-p_b)/n}/w`, where :math:`p_b` is the bin's mass
under the derived density, :math:`w` the bin width and :math:`n` the number of draws.

- :class:`PushforwardFigure` + :func:`ipywidgets_explorer`: for Jupyter (``make lab``);
  the menu and slider move the existing bars and curve.
- :func:`bokeh_explorer`: for the static website; a ``CustomJS`` callback recomputes the
  state in the browser, with no kernel and no network.

Usage in a chapter (:func:`default_maps` derives the five maps with
:func:`reparam.change_of_variables.pushforward_density`; a chapter may build its own
:class:`PushforwardMap` list from the expressions it derived)::

    from IPython.display import HTML
    from myst_nb import glue
    from reparam.explorers import bokeh_html
    from reparam.explorers.pushforward import bokeh_explorer, default_maps

    maps = default_maps()
    glue("ch1_pushforward", HTML(bokeh_html(bokeh_explorer(maps))), display=False)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from .._validation import as_real_scalar
from ._bokeh import (
    JS_HISTOGRAM,
    bar_edges,
    bokeh_figure,
    explorer_column,
    js_fixed,
    readout_div,
    slider,
)
from ._widgets import WidgetExplorer, live_figure

__all__ = [
    "PushforwardMap",
    "PushforwardState",
    "PushforwardFigure",
    "default_maps",
    "pushforward_state",
    "map_javascript",
    "readout_text",
    "ipywidgets_explorer",
    "bokeh_explorer",
    "BASE_DRAWS",
    "GRID_POINTS",
    "BINS",
]

GRID_POINTS = 401
BINS = 40
# The window mass uses the midpoint rule on a finer grid: it never evaluates a density
# exactly at a jump (an edge of the support), so its error stays below 1e-3 for these
# densities.
MASS_CELLS = 20000
CELLS_PER_BIN = MASS_CELLS // BINS  # the same cells give each bin's mass
N_DRAWS = 4000
BAND_SE = 2.0  # the band's half-width, in standard errors of a bar's height
BAND_LABEL = "±2 standard errors of a bar"
FIGSIZE = (6.4, 4.0)  # the matplotlib figure of make lab
# Fixed base draws (seeded), so the histogram moves with the slider instead of
# re-sampling.
BASE_DRAWS = {
    "normal": np.random.default_rng(11).standard_normal(N_DRAWS),
    "uniform": np.random.default_rng(12).uniform(0.0, 1.0, N_DRAWS),
}

# Plain symbols the JavaScript functions take as arguments.
_U, _T, _Y = sp.symbols("u t y")


@dataclass(frozen=True)
class PushforwardMap:
    """One map of the explorer, as SymPy expressions.

    ``h`` is the map in the symbols ``u`` (the base variable) and ``theta``; ``density``
    is the density of :math:`y = h(u)` in ``y`` and ``theta`` (zero outside the image).
    """

    label: str
    base: str
    u: sp.Symbol
    theta: sp.Symbol
    y: sp.Symbol
    h: sp.Expr
    density: sp.Expr
    theta_range: tuple[float, float]
    theta_default: float
    window: tuple[float, float]
    theta_name: str = "θ"

    def __post_init__(self):
        if self.base not in BASE_DRAWS:
            raise ValueError(
                f"base must be one of {tuple(BASE_DRAWS)}, got {self.base!r}"
            )
        lower, upper = self.theta_range
        if not lower <= self.theta_default <= upper:
            raise ValueError(
                f"theta_default {self.theta_default} is outside theta_range "
                f"{self.theta_range}"
            )
        if not self.window[0] < self.window[1]:
            raise ValueError(
                f"window must be (lower, upper) with lower < upper, got {self.window}"
            )
        allowed = {self.u, self.theta}
        if not self.h.free_symbols <= allowed:
            raise ValueError(f"h may use only {allowed}, got {self.h.free_symbols}")
        if self.u not in self.h.free_symbols:
            raise ValueError(f"h must depend on {self.u}: a constant has no density")
        if not self.density.free_symbols <= {self.y, self.theta}:
            raise ValueError(
                f"density may use only y and theta, got {self.density.free_symbols}"
            )

    def plain(self) -> tuple[sp.Expr, sp.Expr]:
        """(h(u, t), f(y, t)) in the plain symbols u, t, y the JavaScript uses."""
        h = self.h.xreplace({self.u: _U, self.theta: _T})
        density = self.density.xreplace({self.y: _Y, self.theta: _T})
        return h, density


def default_maps() -> list[PushforwardMap]:
    """The five maps of Chapter 1, densities derived by the change of variables."""
    from ..change_of_variables import pushforward_density

    u, y = sp.Symbol("u", real=True), sp.Symbol("y", real=True)
    theta, lam = sp.Symbol("theta", positive=True), sp.Symbol("lambda", positive=True)
    normal = sp.exp(-(u**2) / 2) / sp.sqrt(2 * sp.pi)
    unit = sp.Interval.open(0, 1)
    specs = [
        (
            "increasing affine, y = 1 + θu",
            "normal",
            theta,
            1 + theta * u,
            (0.3, 2.5),
            1.0,
            (-6.0, 8.0),
            "θ",
            None,
        ),
        (
            "decreasing affine, y = 1 − θu",
            "normal",
            theta,
            1 - theta * u,
            (0.3, 2.5),
            1.0,
            (-6.0, 8.0),
            "θ",
            None,
        ),
        (
            "exponential, y = exp(θu)",
            "normal",
            theta,
            sp.exp(theta * u),
            (0.2, 1.5),
            0.5,
            (0.0, 6.0),
            "θ",
            None,
        ),
        (
            "y = −log(u)/λ, u uniform",
            "uniform",
            lam,
            -sp.log(u) / lam,
            (0.5, 3.0),
            1.0,
            (0.0, 5.0),
            "λ",
            unit,
        ),
        (
            "support-changing, y = θu, u uniform",
            "uniform",
            theta,
            theta * u,
            (0.5, 3.0),
            1.0,
            (-0.5, 3.5),
            "θ",
            unit,
        ),
    ]
    maps = []
    for label, base, parameter, h, theta_range, default, window, name, support in specs:
        f_u = normal if base == "normal" else sp.Integer(1)
        density = pushforward_density(f_u, u, h, y, support)
        maps.append(
            PushforwardMap(
                label,
                base,
                u,
                parameter,
                y,
                h,
                density,
                theta_range,
                default,
                window,
                name,
            )
        )
    return maps


def map_javascript(spec: PushforwardMap) -> tuple[str, str]:
    """JavaScript for h(u, t) and f(y, t), printed by SymPy from the spec."""
    h, density = spec.plain()
    return sp.jscode(h), sp.jscode(density)


def _numpy(spec: PushforwardMap):
    h, density = spec.plain()
    return sp.lambdify((_U, _T), h, "numpy"), sp.lambdify((_Y, _T), density, "numpy")


@dataclass(frozen=True)
class PushforwardState:
    """Everything the explorer draws for one map and parameter; both front ends use it.

    ``window_mass`` is the derived density's mass in ``window`` (midpoint rule on
    ``MASS_CELLS`` cells); ``window_share`` is the share of the pushed samples that
    land in it; ``histogram`` is their density histogram on ``BINS`` equal bins.
    ``bin_mass`` is each bin's mass under the derived density (the same midpoint
    cells, ``CELLS_PER_BIN`` to a bin); ``band_low`` and ``band_high`` are the height
    it predicts for each bar, minus and plus ``BAND_SE`` standard errors of that
    height (the lower end cut at zero).
    """

    label: str
    theta_name: str
    theta: float
    window: tuple[float, float]
    y_grid: np.ndarray
    density: np.ndarray
    samples: np.ndarray
    bin_edges: np.ndarray
    histogram: np.ndarray
    window_mass: float
    window_share: float
    bin_mass: np.ndarray
    band_low: np.ndarray
    band_high: np.ndarray


def _evaluate(f, points: np.ndarray, theta: float) -> np.ndarray:
    # numpy evaluates every branch of a Piecewise (log(0) outside the support): silence
    # it, the selected branch is finite.
    with np.errstate(all="ignore"):
        values = np.asarray(f(points, theta), dtype=float)
    return np.broadcast_to(values, points.shape).copy()


def pushforward_state(spec: PushforwardMap, theta: float) -> PushforwardState:
    """Pushed samples, their histogram and the derived density on the map's window."""
    if not isinstance(spec, PushforwardMap):
        raise TypeError(f"spec must be a PushforwardMap, got {type(spec).__name__}")
    theta = as_real_scalar(theta, "theta")
    lower, upper = spec.theta_range
    if not lower <= theta <= upper:
        raise ValueError(
            f"theta must lie in {spec.theta_range} for {spec.label!r}, got {theta}"
        )
    h, f = _numpy(spec)
    low, high = spec.window
    # The grids are written as the page's JavaScript writes them (low + step * j), so
    # that both front ends evaluate the density at the same floating-point points.
    grid = low + (high - low) * np.arange(GRID_POINTS) / (GRID_POINTS - 1)
    density = _evaluate(f, grid, theta)
    samples = np.asarray(h(BASE_DRAWS[spec.base], theta), dtype=float)
    edges = bar_edges(low, high, BINS)
    width = (high - low) / BINS
    counts, _ = np.histogram(samples, bins=edges)  # the page: JS_HISTOGRAM
    histogram = counts / (len(samples) * width)
    inside = (samples >= low) & (samples <= high)  # the window is closed
    cell = (high - low) / MASS_CELLS
    midpoints = low + cell * (np.arange(MASS_CELLS) + 0.5)
    at_midpoints = _evaluate(f, midpoints, theta)
    mass = float(np.sum(at_midpoints) * cell)
    bin_mass = at_midpoints.reshape(BINS, CELLS_PER_BIN).sum(axis=1) * cell
    expected = bin_mass / width
    se = np.sqrt(np.clip(bin_mass * (1 - bin_mass), 0, None) / len(samples)) / width
    return PushforwardState(
        label=spec.label,
        theta_name=spec.theta_name,
        theta=theta,
        window=(float(low), float(high)),
        y_grid=grid,
        density=density,
        samples=samples,
        bin_edges=edges,
        histogram=histogram,
        window_mass=mass,
        window_share=float(np.mean(inside)),
        bin_mass=bin_mass,
        band_low=np.maximum(expected - BAND_SE * se, 0.0),
        band_high=expected + BAND_SE * se,
    )


def readout_parameter(state: PushforwardState) -> str:
    """The parameter as the readout names it, e.g. ``λ = 1.00``."""
    return f"{state.theta_name} = {js_fixed(state.theta, 2)}"


def readout_text(state: PushforwardState) -> str:
    """The readout under the sliders (the page's JavaScript writes the same text).

    Numbers are rounded as JavaScript's ``toFixed`` rounds (:func:`._bokeh.js_fixed`): a
    share of the 4000 draws can be an exact tie, such as 250/4000 = 0.0625.
    """
    low, high = state.window
    return (
        f"{readout_parameter(state)}: in the window from {low:g} "
        f"to {high:g}, the derived density has mass {js_fixed(state.window_mass, 3)} "
        f"and the pushed samples a share of {js_fixed(state.window_share, 3)}"
    )


class PushforwardFigure:
    """A matplotlib histogram and density curve whose artists :meth:`update` changes
    in place (one bar per bin; the bars move and resize with the window)."""

    def __init__(self, maps: list[PushforwardMap], index: int = 0, figure=None):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if figure is None:  # a standalone figure that can still render
            figure = Figure(figsize=FIGSIZE)
            FigureCanvasAgg(figure)
        self.maps = maps
        self.figure = figure
        self.figure.set_layout_engine("constrained")
        self.axes = self.figure.add_subplot()
        state = pushforward_state(maps[index], maps[index].theta_default)
        self.bars = self.axes.bar(
            state.bin_edges[:-1], state.histogram,
            width=state.bin_edges[1] - state.bin_edges[0], align="edge", alpha=0.5,
            label="pushed samples",
        )
        width = state.bin_edges[1] - state.bin_edges[0]
        self.band = self.axes.bar(
            state.bin_edges[:-1], state.band_high - state.band_low,
            bottom=state.band_low, width=width, align="edge", color="grey",
            alpha=0.3, lw=0, label=BAND_LABEL, zorder=0.5,  # behind the bars
        )
        (self.curve,) = self.axes.plot(
            state.y_grid, state.density, color="black", label="derived density"
        )
        self.axes.set_xlabel("y")
        self.axes.set_ylabel("density")
        self.axes.legend(loc="upper right")
        self.move_artists(index, state.theta)

    def update(self, index: int, theta: float) -> PushforwardState:
        """Move every artist to map ``index`` at ``theta``, then ask for a redraw."""
        state = self.move_artists(index, theta)
        self.figure.canvas.draw_idle()
        return state

    def move_artists(self, index: int, theta: float) -> PushforwardState:
        """Change the existing artists' data; draws nothing."""
        state = pushforward_state(self.maps[index], theta)
        width = state.bin_edges[1] - state.bin_edges[0]
        for bar, left, height in zip(self.bars, state.bin_edges[:-1], state.histogram,
                                     strict=True):
            bar.set_x(left)
            bar.set_width(width)
            bar.set_height(height)
        for band, left, low, high in zip(self.band, state.bin_edges[:-1],
                                         state.band_low, state.band_high, strict=True):
            band.set_x(left)
            band.set_width(width)
            band.set_y(low)
            band.set_height(high - low)
        self.curve.set_data(state.y_grid, state.density)
        self.axes.set_xlim(*state.window)
        finite = state.density[np.isfinite(state.density)]
        top = max(state.histogram.max(), finite.max(), state.band_high.max())
        self.axes.set_ylim(0, 1.1 * top)
        self.axes.set_title(f"{state.label}, {readout_parameter(state)}")
        return state


def ipywidgets_explorer(
    maps: list[PushforwardMap] | None = None, index: int = 0
) -> WidgetExplorer:
    """A map menu and a parameter slider driving a live (ipympl) figure.

    Returns a :class:`~reparam.explorers.WidgetExplorer` whose ``update(index, theta)``
    redraws map ``index`` at ``theta``. Needs a Jupyter front end (``make lab``).
    """
    import ipywidgets as widgets

    maps = maps or default_maps()
    figure = live_figure(FIGSIZE)
    drawing = PushforwardFigure(maps, index, figure=figure)
    spec = maps[index]
    menu = widgets.Dropdown(
        options=[(m.label, i) for i, m in enumerate(maps)], value=index,
        description="map",
    )
    slider = widgets.FloatSlider(
        value=spec.theta_default, min=spec.theta_range[0], max=spec.theta_range[1],
        step=0.05, description=spec.theta_name,
    )
    readout = widgets.HTML(readout_text(pushforward_state(spec, spec.theta_default)))

    def update(index: int, theta: float) -> PushforwardState:
        state = drawing.update(index, theta)
        readout.value = readout_text(state)
        return state

    def on_theta(_change):
        update(menu.value, slider.value)

    def on_map(_change):
        spec = maps[menu.value]
        with slider.hold_trait_notifications():
            # Widen first: the new default may lie outside the old map's range.
            slider.min, slider.max = -1e9, 1e9
            slider.value = spec.theta_default
            slider.min, slider.max = spec.theta_range
            slider.description = spec.theta_name
        update(menu.value, slider.value)

    menu.observe(on_map, names="value")
    slider.observe(on_theta, names="value")
    box = widgets.VBox([widgets.HBox([menu, slider]), readout, figure.canvas])
    return WidgetExplorer(box, update, figure)


# The browser-side update mirrors pushforward_state: same grids, same draws, same bins.
_JS_TEMPLATE = """
const maps = [{MAPS}];
const i = Number(menu.value), m = maps[i];
if (cb_obj === menu) {
  // A new map: its own parameter range and default (setting the value re-runs this
  // callback).
  slider.title = m.name + ", the map's parameter";
  slider.start = m.range[0]; slider.end = m.range[1];
  if (slider.value !== m.theta) { slider.value = m.theta; return; }
}
const t = slider.value;
const low = m.window[0], high = m.window[1];
const y = [], dens = [];
for (let j = 0; j < G; j++) {
  y.push(low + (high - low) * j / (G - 1));
  dens.push(m.f(y[j], t));
}
const draws = m.base === "normal" ? normal : uniform;
const width = (high - low) / B;
const edges = barEdges(low, high, B);
const counts = new Array(B).fill(0);
let inside = 0;
for (const u of draws) {
  const b = barIndex(m.h(u, t), edges);
  if (b >= 0 && b < B) { counts[b] += 1; inside += 1; }
}
bars.data = {left: edges.slice(0, B), right: edges.slice(1),
             top: counts.map((c) => c / (draws.length * width)),
             zero: new Array(B).fill(0)};
curve.data = {y: y, density: dens};
const cell = (high - low) / C;
let mass = 0;
const binMass = new Array(B).fill(0);
for (let j = 0; j < C; j++) {
  const value = m.f(low + cell * (j + 0.5), t);
  mass += value;
  binMass[Math.floor(j / (C / B))] += value;
}
mass *= cell;
// The band: the height the derived density predicts for each bar, +-k standard errors.
const expected = binMass.map((p) => p * cell / width);
const se = binMass.map((p) => Math.sqrt(Math.max(p * cell * (1 - p * cell), 0) /
                                          draws.length) / width);
band.data = {left: edges.slice(0, B), right: edges.slice(1),
             bottom: expected.map((e, b) => Math.max(e - k * se[b], 0)),
             top: expected.map((e, b) => e + k * se[b])};
x_range.start = low; x_range.end = high;
readout.text = m.name + " = " + t.toFixed(2) + ": in the window from " + low + " to " +
  high + ", the derived density has mass " + mass.toFixed(3) +
  " and the pushed samples a share of " + (inside / draws.length).toFixed(3);
"""


def _callback_code(maps: list[PushforwardMap]) -> str:
    entries = []
    for spec in maps:
        h, f = map_javascript(spec)
        entries.append(
            f'{{h: (u, t) => {h}, f: (y, t) => {f}, base: "{spec.base}", '
            f"range: [{spec.theta_range[0]}, {spec.theta_range[1]}], "
            f"theta: {spec.theta_default}, "
            f"window: [{spec.window[0]}, {spec.window[1]}], "
            f'name: "{spec.theta_name}"}}'
        )
    return JS_HISTOGRAM + _JS_TEMPLATE.replace("{MAPS}", ",\n".join(entries))


def bokeh_explorer(maps: list[PushforwardMap] | None = None, index: int = 0):
    """The explorer as a responsive Bokeh layout whose controls work offline.

    A menu picks the map, a slider titled for screen readers ("λ, the map's
    parameter") sets its parameter, and the readout states the derived density's mass
    in the window and the share of the pushed samples there, computed in the page the
    way :func:`pushforward_state` computes them.
    """
    from bokeh.models import ColumnDataSource, CustomJS, Range1d, Select

    maps = maps or default_maps()
    spec = maps[index]
    state = pushforward_state(spec, spec.theta_default)
    edges = state.bin_edges
    bars = ColumnDataSource(
        {"left": edges[:-1], "right": edges[1:], "top": state.histogram,
         "zero": np.zeros(BINS)},
        name="pushforward_bars",
    )
    curve = ColumnDataSource(
        {"y": state.y_grid, "density": state.density}, name="pushforward_density"
    )
    band = ColumnDataSource(
        {"left": edges[:-1], "right": edges[1:], "bottom": state.band_low,
         "top": state.band_high},
        name="pushforward_band",
    )
    x_range = Range1d(*spec.window)
    plot = bokeh_figure(
        "pushed samples and the derived density", height=300, x_range=x_range,
        tools="pan,wheel_zoom,reset", x_axis_label="y", y_axis_label="density",
    )
    plot.quad(
        left="left", right="right", bottom="bottom", top="top", source=band,
        fill_color="grey", fill_alpha=0.3, line_color=None, legend_label=BAND_LABEL,
    )
    plot.quad(
        left="left", right="right", bottom="zero", top="top", source=bars,
        fill_color="#1f77b4", fill_alpha=0.5, line_color=None,
        legend_label="pushed samples",
    )
    plot.line("y", "density", source=curve, color="black", line_width=2,
              legend_label="derived density")
    menu = Select(
        title="the map", value=str(index), name="map_select",
        options=[(str(i), m.label) for i, m in enumerate(maps)],
        sizing_mode="stretch_width",
    )
    theta_slider = slider(
        "theta_slider", f"{spec.theta_name}, the map's parameter", *spec.theta_range,
        spec.theta_default, 0.05,
    )
    readout = readout_div(readout_text(state), "pushforward_readout")
    callback = CustomJS(
        args=dict(
            menu=menu, slider=theta_slider, bars=bars, curve=curve, band=band,
            readout=readout, k=BAND_SE,
            x_range=x_range, normal=BASE_DRAWS["normal"].tolist(),
            uniform=BASE_DRAWS["uniform"].tolist(), G=GRID_POINTS, B=BINS,
            C=MASS_CELLS,
        ),
        code=_callback_code(maps),
    )
    menu.js_on_change("value", callback)
    theta_slider.js_on_change("value", callback)
    return explorer_column(menu, theta_slider, readout, plot)
