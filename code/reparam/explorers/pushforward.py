r"""The pushforward explorer: samples pushed through a map against the derived density.

The reader picks a map :math:`y = h_\theta(u)` and moves its parameter :math:`\theta`. A
fixed set of base draws :math:`u_i` (standard normal or uniform on (0, 1)) is pushed
through the map; the figure shows their histogram against the density :math:`f_Y` that
the change-of-variables formula gives. The map and the density are SymPy expressions
passed in by the caller (the chapter's own derivation); the page's JavaScript is printed
from them by SymPy's JavaScript code printer (:func:`sympy.printing.jscode`), so the
website runs the derivation's result, not a hand copy.

The readout is one exact quantity computed the same way in Python
(:func:`pushforward_state`) and in the page: the mass of the derived density inside the
plotted window (midpoint rule on a fine grid) next to the share of pushed samples in
that window.

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

__all__ = [
    "PushforwardMap",
    "PushforwardState",
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
N_DRAWS = 4000
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
    """Everything the explorer draws for one map and parameter."""

    label: str
    theta: float
    y_grid: np.ndarray
    density: np.ndarray
    samples: np.ndarray
    bin_edges: np.ndarray
    histogram: np.ndarray
    window_mass: float
    window_share: float


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
    grid = low + (high - low) * np.arange(GRID_POINTS) / (GRID_POINTS - 1)
    density = _evaluate(f, grid, theta)
    samples = np.asarray(h(BASE_DRAWS[spec.base], theta), dtype=float)
    edges = low + (high - low) * np.arange(BINS + 1) / BINS
    width = edges[1] - edges[0]
    index = np.floor((samples - low) / width).astype(int)
    index[samples == high] = BINS - 1
    inside = (index >= 0) & (index < BINS)
    histogram = np.bincount(index[inside], minlength=BINS) / (len(samples) * width)
    cell = (high - low) / MASS_CELLS
    midpoints = low + cell * (np.arange(MASS_CELLS) + 0.5)
    mass = float(np.sum(_evaluate(f, midpoints, theta)) * cell)
    return PushforwardState(
        spec.label,
        theta,
        grid,
        density,
        samples,
        edges,
        histogram,
        mass,
        float(np.mean(inside)),
    )


def readout_text(state: PushforwardState) -> str:
    """The readout the page shows (the page's JavaScript writes the same text)."""
    return (
        f"mass of the derived density in the window: {state.window_mass:.3f}; "
        f"share of the pushed samples in it: {state.window_share:.3f}"
    )


def ipywidgets_explorer(maps: list[PushforwardMap] | None = None, index: int = 0):
    """A map menu and a parameter slider driving a live matplotlib figure.

    Returns ``(widget, update)``; needs ``%matplotlib widget`` (``make lab``).
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    maps = maps or default_maps()
    state = pushforward_state(maps[index], maps[index].theta_default)
    with plt.ioff():
        figure, axes = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    width = state.bin_edges[1] - state.bin_edges[0]
    bars = axes.bar(
        state.bin_edges[:-1],
        state.histogram,
        width=width,
        align="edge",
        alpha=0.5,
        label="pushed samples",
    )
    (curve,) = axes.plot(
        state.y_grid, state.density, color="black", label="derived density"
    )
    axes.set_xlabel("y")
    axes.set_ylabel("density")
    axes.legend()
    menu = widgets.Dropdown(
        options=[(m.label, i) for i, m in enumerate(maps)],
        value=index,
        description="map",
    )
    slider = widgets.FloatSlider(
        value=maps[index].theta_default,
        min=maps[index].theta_range[0],
        max=maps[index].theta_range[1],
        step=0.05,
        description="θ",
    )
    readout = widgets.HTML(readout_text(state))

    def update(_change=None) -> PushforwardState:
        new = pushforward_state(maps[menu.value], slider.value)
        step = new.bin_edges[1] - new.bin_edges[0]
        for bar, left, height in zip(bars, new.bin_edges[:-1], new.histogram,
                                     strict=True):
            bar.set_x(left)
            bar.set_width(step)
            bar.set_height(height)
        curve.set_data(new.y_grid, new.density)
        axes.set_xlim(new.bin_edges[0], new.bin_edges[-1])
        top = max(new.histogram.max(), np.nanmax(new.density[np.isfinite(new.density)]))
        axes.set_ylim(0, 1.1 * top)
        readout.value = readout_text(new)
        figure.canvas.draw_idle()
        return new

    def on_map(_change):
        spec = maps[menu.value]
        with slider.hold_trait_notifications():
            slider.min, slider.max = -1e9, 1e9
            slider.value = spec.theta_default
            slider.min, slider.max = spec.theta_range
            slider.description = spec.theta_name
        update()

    menu.observe(on_map, names="value")
    slider.observe(update, names="value")
    return widgets.VBox([widgets.HBox([menu, slider]), figure.canvas, readout]), update


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
const counts = new Array(B).fill(0);
let inside = 0;
for (const u of draws) {
  const v = m.h(u, t);
  let b = Math.floor((v - low) / width);
  if (v === high) { b = B - 1; }
  if (b >= 0 && b < B) { counts[b] += 1; inside += 1; }
}
const left = [], right = [];
for (let b = 0; b < B; b++) {
  left.push(low + width * b);
  right.push(low + width * (b + 1));
}
bars.data = {left: left, right: right,
             top: counts.map((c) => c / (draws.length * width)),
             zero: new Array(B).fill(0)};
curve.data = {y: y, density: dens};
const cell = (high - low) / C;
let mass = 0;
for (let j = 0; j < C; j++) { mass += m.f(low + cell * (j + 0.5), t); }
mass *= cell;
x_range.start = low; x_range.end = high;
readout.text = "mass of the derived density in the window: " + mass.toFixed(3) +
  "; share of the pushed samples in it: " + (inside / draws.length).toFixed(3);
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
    return _JS_TEMPLATE.replace("{MAPS}", ",\n".join(entries))


def bokeh_explorer(maps: list[PushforwardMap] | None = None, index: int = 0):
    """The explorer as a responsive Bokeh layout whose controls work offline."""
    from bokeh.layouts import column
    from bokeh.models import ColumnDataSource, CustomJS, Div, Range1d, Select, Slider
    from bokeh.plotting import figure

    maps = maps or default_maps()
    spec = maps[index]
    state = pushforward_state(spec, spec.theta_default)
    edges = state.bin_edges
    bars = ColumnDataSource(
        {
            "left": edges[:-1],
            "right": edges[1:],
            "top": state.histogram,
            "zero": np.zeros(BINS),
        },
        name="pushforward_bars",
    )
    curve = ColumnDataSource(
        {"y": state.y_grid, "density": state.density}, name="pushforward_density"
    )
    x_range = Range1d(*spec.window)
    plot = figure(
        title="pushed samples and the derived density",
        height=300,
        sizing_mode="stretch_width",
        x_range=x_range,
        tools="pan,wheel_zoom,reset",
        x_axis_label="y",
        y_axis_label="density",
    )
    plot.quad(
        left="left",
        right="right",
        bottom="zero",
        top="top",
        source=bars,
        fill_color="#1f77b4",
        fill_alpha=0.5,
        line_color=None,
        legend_label="pushed samples",
    )
    plot.line(
        "y",
        "density",
        source=curve,
        color="black",
        line_width=2,
        legend_label="derived density",
    )
    menu = Select(
        title="the map",
        value=str(index),
        name="map_select",
        options=[(str(i), m.label) for i, m in enumerate(maps)],
    )
    slider = Slider(
        start=spec.theta_range[0],
        end=spec.theta_range[1],
        value=spec.theta_default,
        step=0.05,
        title=f"{spec.theta_name}, the map's parameter",
        name="theta_slider",
    )
    readout = Div(
        text=readout_text(state),
        name="pushforward_readout",
        sizing_mode="stretch_width",
    )
    callback = CustomJS(
        args=dict(
            menu=menu,
            slider=slider,
            bars=bars,
            curve=curve,
            readout=readout,
            x_range=x_range,
            normal=BASE_DRAWS["normal"].tolist(),
            uniform=BASE_DRAWS["uniform"].tolist(),
            G=GRID_POINTS,
            B=BINS,
            C=MASS_CELLS,
        ),
        code=_callback_code(maps),
    )
    menu.js_on_change("value", callback)
    slider.js_on_change("value", callback)
    for control in (menu, slider):
        control.sizing_mode = "stretch_width"
    return column(
        menu,
        slider,
        readout,
        plot,
        sizing_mode="stretch_width",
        styles={"max-width": "640px"},
    )
