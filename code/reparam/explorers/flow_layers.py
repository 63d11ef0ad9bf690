r"""The flow-layers explorer of the flows chapter: a 2-D flow applied layer by layer.

A slider sets :math:`t \in [0, K]`, how much of a trained flow of :math:`K` affine
coupling layers (:mod:`reparam.flows`) is applied. At :math:`t = k + \alpha` the first
:math:`k` layers act in full and layer :math:`k + 1` acts with its log-scale and shift
multiplied by :math:`\alpha`,

.. math::

    y_a = x_a\, e^{\alpha s(x_b)} + \alpha\, t(x_b), \qquad y_b = x_b ,

which is the identity at :math:`\alpha = 0`, the trained layer at :math:`\alpha = 1`
and invertible in between.
The figure shows, for that map :math:`f_t`, the density of :math:`f_t(\varepsilon)` on
a grid (by the change of variables, through :math:`f_t^{-1}` and its log-determinant)
and a fixed set of base draws :math:`\varepsilon_i` pushed through :math:`f_t`: the
density and the samples warp together. The readout gives the density's mass in the
window (midpoint rule on the grid) and the mean log-density of the fixed samples. The
colour scale runs from 0 to the density's largest value on the grid at each ``t``
(a colour bar shows it).

The page ships the layers' weights (float32 when the flow was trained in float32,
as binary) and applies the layers in JavaScript in the same order of operations as
:func:`flow_layers_state`; the browser test checks that the readouts agree.

Usage in the chapter, with a trained 2-D :class:`reparam.flows.Flow` ``flow``::

    from reparam.explorers import bokeh_html
    from reparam.explorers.flow_layers import bokeh_explorer, coupling_weights
    layout = bokeh_explorer(coupling_weights(flow))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validation import as_real_scalar
from ._bokeh import bokeh_figure, explorer_column, js_fixed, readout_div, slider
from ._widgets import WidgetExplorer, live_figure

__all__ = [
    "COLOUR_BAR_TITLE",
    "CouplingWeights",
    "FlowLayersState",
    "GRID_POINTS",
    "SAMPLE_EPS",
    "T_STEP",
    "WINDOW",
    "bokeh_explorer",
    "coupling_weights",
    "flow_layers_state",
    "ipywidgets_explorer",
    "readout_text",
]

WINDOW = (-3.0, 3.0)  # the square window drawn, in both coordinates
GRID_POINTS = 80  # density evaluated at the centres of 80 x 80 cells
T_STEP = 0.1  # the slider's step
COLOUR_BAR_TITLE = "density (scaled to its peak at each t)"
# Fixed base draws (numpy's seeded generator), followed through the layers.
SAMPLE_EPS = np.random.default_rng(8).standard_normal((200, 2))


@dataclass(frozen=True)
class CouplingWeights:
    """One 2-D affine coupling layer as float64 arrays.

    ``kept`` is the coordinate that passes through and conditions, ``moved`` the other;
    the conditioner is ``h1 = tanh(w1 x_kept + b1)``, ``h2 = tanh(w2 h1 + b2)``,
    ``(raw_s, shift) = w3 h2 + b3``, ``s = bound tanh(raw_s)``.
    """

    kept: int
    moved: int
    w1: np.ndarray  # (hidden, 1)
    b1: np.ndarray  # (hidden,)
    w2: np.ndarray  # (hidden, hidden)
    b2: np.ndarray  # (hidden,)
    w3: np.ndarray  # (2, hidden)
    b3: np.ndarray  # (2,)
    bound: float


def coupling_weights(flow) -> tuple[CouplingWeights, ...]:
    """Copy the layers of a 2-D :class:`reparam.flows.Flow` of affine couplings."""
    from ..flows import SCALE_BOUND, AffineCoupling, Flow

    if not isinstance(flow, Flow):
        raise TypeError(f"flow must be a reparam.flows.Flow, got {type(flow).__name__}")
    if flow.dim != 2:
        raise ValueError(f"the explorer draws 2-D flows, got dim = {flow.dim}")
    weights = []
    for index, layer in enumerate(flow.layers):
        if not isinstance(layer, AffineCoupling):
            raise TypeError(
                f"layer {index} must be an AffineCoupling, got {type(layer).__name__}"
            )
        first, _, second, _, last = layer.net

        def numpy(tensor):
            return tensor.detach().cpu().double().numpy().copy()

        weights.append(CouplingWeights(
            int(layer.kept[0]), int(layer.moved[0]),
            numpy(first.weight), numpy(first.bias), numpy(second.weight),
            numpy(second.bias), numpy(last.weight), numpy(last.bias), SCALE_BOUND,
        ))
    return tuple(weights)


def _scale_and_shift(layer: CouplingWeights, kept: np.ndarray):
    """s and t at the points ``kept`` (shape (n,)); every sum in index order, the
    order the page's JavaScript uses."""
    hidden = len(layer.b1)
    h1 = [np.tanh(layer.w1[j, 0] * kept + layer.b1[j]) for j in range(hidden)]
    h2 = []
    for i in range(hidden):
        total = np.full_like(kept, layer.b2[i])
        for j in range(hidden):
            total = total + layer.w2[i, j] * h1[j]
        h2.append(np.tanh(total))
    raw, shift = np.full_like(kept, layer.b3[0]), np.full_like(kept, layer.b3[1])
    for j in range(hidden):
        raw = raw + layer.w3[0, j] * h2[j]
        shift = shift + layer.w3[1, j] * h2[j]
    return layer.bound * np.tanh(raw), shift


def _apply(layer: CouplingWeights, points: np.ndarray, alpha: float, inverse: bool):
    """The layer at strength ``alpha`` (or its inverse) on (n, 2) points, and its
    log|det| per point."""
    scale, shift = _scale_and_shift(layer, points[:, layer.kept])
    scale, shift = alpha * scale, alpha * shift
    out = points.copy()
    moved = points[:, layer.moved]
    if inverse:
        out[:, layer.moved] = (moved - shift) * np.exp(-scale)
        return out, -scale
    out[:, layer.moved] = moved * np.exp(scale) + shift
    return out, scale


def _log_normal(points: np.ndarray) -> np.ndarray:
    return -0.5 * (points[:, 0] ** 2 + points[:, 1] ** 2) - math.log(2 * math.pi)


def _stages(n_layers: int, t: float) -> list[tuple[int, float]]:
    """(layer index, strength) of the layers that act at ``t``, in sampling order."""
    full = min(int(math.floor(t)), n_layers)
    stages = [(k, 1.0) for k in range(full)]
    if full < n_layers and t - full > 0:
        stages.append((full, t - full))
    return stages


def grid_axis() -> np.ndarray:
    """The centres of the grid's cells along one axis."""
    width = (WINDOW[1] - WINDOW[0]) / GRID_POINTS
    return WINDOW[0] + width * (np.arange(GRID_POINTS) + 0.5)


@dataclass(frozen=True)
class FlowLayersState:
    """Everything the explorer draws at one slider position ``t``."""

    t: float
    n_layers: int
    axis: np.ndarray  # cell centres, the same in both coordinates
    density: np.ndarray  # (GRID_POINTS, GRID_POINTS), row i is x2 = axis[i]
    samples: np.ndarray  # SAMPLE_EPS pushed through f_t, (200, 2)
    sample_log_density: np.ndarray  # log q_t at each sample, exact
    window_mass: float
    mean_sample_log_density: float


def flow_layers_state(weights, t: float) -> FlowLayersState:
    """The density of :math:`f_t(\\varepsilon)` on the grid and the fixed samples
    pushed through :math:`f_t`, for ``t`` in ``[0, len(weights)]``."""
    weights = tuple(weights)
    if not weights or not all(isinstance(w, CouplingWeights) for w in weights):
        raise TypeError("weights must be a non-empty sequence of CouplingWeights")
    t = as_real_scalar(t, "t")
    if not 0.0 <= t <= len(weights):
        raise ValueError(f"t must lie in [0, {len(weights)}], got {t}")
    stages = _stages(len(weights), t)
    samples, log_det = SAMPLE_EPS.copy(), np.zeros(len(SAMPLE_EPS))
    for index, alpha in stages:
        samples, layer_log_det = _apply(weights[index], samples, alpha, inverse=False)
        log_det = log_det + layer_log_det
    sample_log_density = _log_normal(SAMPLE_EPS) - log_det
    axis = grid_axis()
    x1, x2 = np.meshgrid(axis, axis)  # row i: x2 = axis[i]
    points = np.column_stack([x1.ravel(), x2.ravel()])
    inverse_log_det = np.zeros(len(points))
    for index, alpha in reversed(stages):
        points, layer_log_det = _apply(weights[index], points, alpha, inverse=True)
        inverse_log_det = inverse_log_det + layer_log_det
    density = np.exp(_log_normal(points) + inverse_log_det)
    cell = ((WINDOW[1] - WINDOW[0]) / GRID_POINTS) ** 2
    return FlowLayersState(
        t=t,
        n_layers=len(weights),
        axis=axis,
        density=density.reshape(GRID_POINTS, GRID_POINTS),
        samples=samples,
        sample_log_density=sample_log_density,
        window_mass=float(density.sum() * cell),
        mean_sample_log_density=float(sample_log_density.mean()),
    )


def readout_text(state: FlowLayersState) -> str:
    """The readout under the figure (the page's JavaScript writes the same text)."""
    return (
        f"t = {js_fixed(state.t, 1)} of {state.n_layers} layers: the density's mass in "
        f"the window is {js_fixed(state.window_mass, 3)}; the {len(SAMPLE_EPS)} "
        f"samples' mean log-density is {js_fixed(state.mean_sample_log_density, 3)}"
    )


# --- Jupyter (make lab) -------------------------------------------------------------


def ipywidgets_explorer(weights, t: float = 0.0) -> WidgetExplorer:
    """A slider for ``t`` driving a live (ipympl) matplotlib figure; needs ``make lab``.

    ``update(t=...)`` changes the image and the samples in place and returns the
    :class:`FlowLayersState` it drew.
    """
    import ipywidgets as widgets

    weights = tuple(weights)
    state = flow_layers_state(weights, t)
    figure = live_figure((5.0, 6.0))
    ax = figure.add_subplot()
    picture = ax.imshow(state.density, origin="lower", extent=(*WINDOW, *WINDOW),
                        cmap="viridis", vmin=0.0, vmax=float(state.density.max()))
    figure.colorbar(picture, ax=ax, orientation="horizontal", label=COLOUR_BAR_TITLE,
                    shrink=0.8)
    (dots,) = ax.plot(state.samples[:, 0], state.samples[:, 1], "o", ms=2.5,
                      color="white", markeredgecolor="black", markeredgewidth=0.3)
    ax.set_xlim(*WINDOW)
    ax.set_ylim(*WINDOW)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    control = widgets.FloatSlider(value=state.t, min=0.0, max=float(len(weights)),
                                  step=T_STEP, description="t, layers applied")
    readout = widgets.HTML(readout_text(state))

    def update(t: float) -> FlowLayersState:
        new = flow_layers_state(weights, t)
        picture.set_data(new.density)
        picture.set_clim(0.0, float(new.density.max()))
        dots.set_data(new.samples[:, 0], new.samples[:, 1])
        readout.value = readout_text(new)
        figure.canvas.draw_idle()
        return new

    control.observe(lambda change: update(change["new"]), names="value")
    box = widgets.VBox([control, readout, figure.canvas])
    return WidgetExplorer(box, update, figure)


# --- the website (Bokeh) ------------------------------------------------------------

# The browser-side update mirrors flow_layers_state operation by operation.
_BOKEH_CALLBACK = """
const t = t_slider.value, K = layers.length;
const full = Math.min(Math.floor(t), K);
const stages = [];
for (let k = 0; k < full; k++) { stages.push([k, 1.0]); }
if (full < K && t - full > 0) { stages.push([full, t - full]); }
// s and t of one layer at the points `kept`, sums in index order as in Python.
function scaleShift(layer, kept) {
  const H = layer.b1.length, n = kept.length;
  const h1 = [], h2 = [];
  for (let j = 0; j < H; j++) {
    const row = new Float64Array(n);
    for (let p = 0; p < n; p++) {
      row[p] = Math.tanh(layer.w1[j] * kept[p] + layer.b1[j]);
    }
    h1.push(row);
  }
  for (let i = 0; i < H; i++) {
    const total = new Float64Array(n).fill(layer.b2[i]);
    for (let j = 0; j < H; j++) {
      const w = layer.w2[i * H + j], hj = h1[j];
      for (let p = 0; p < n; p++) { total[p] = total[p] + w * hj[p]; }
    }
    for (let p = 0; p < n; p++) { total[p] = Math.tanh(total[p]); }
    h2.push(total);
  }
  const raw = new Float64Array(n).fill(layer.b3[0]);
  const shift = new Float64Array(n).fill(layer.b3[1]);
  for (let j = 0; j < H; j++) {
    const a = layer.w3[j], b = layer.w3[H + j], hj = h2[j];
    for (let p = 0; p < n; p++) {
      raw[p] = raw[p] + a * hj[p];
      shift[p] = shift[p] + b * hj[p];
    }
  }
  const scale = raw.map((r) => layer.bound * Math.tanh(r));
  return [scale, shift];
}
// The layer at strength alpha (or its inverse) on points [x1s, x2s], in place.
function apply(layer, pts, alpha, inverse, logDet) {
  const kept = pts[layer.kept], moved = pts[layer.moved];
  const [scale, shift] = scaleShift(layer, kept);
  for (let p = 0; p < kept.length; p++) {
    const s = alpha * scale[p], b = alpha * shift[p];
    if (inverse) {
      moved[p] = (moved[p] - b) * Math.exp(-s);
      logDet[p] = logDet[p] + -s;
    } else {
      moved[p] = moved[p] * Math.exp(s) + b;
      logDet[p] = logDet[p] + s;
    }
  }
}
const logNormal = (a, b) => -0.5 * (a ** 2 + b ** 2) - Math.log(2 * Math.PI);
const e1 = Array.from(eps1), e2 = Array.from(eps2);
const samples = [Float64Array.from(e1), Float64Array.from(e2)];
const sampleLogDet = new Float64Array(e1.length);
for (const [k, alpha] of stages) {
  apply(layers[k], samples, alpha, false, sampleLogDet);
}
let meanLog = 0;
for (let p = 0; p < e1.length; p++) {
  meanLog += logNormal(e1[p], e2[p]) - sampleLogDet[p];
}
meanLog /= e1.length;
const G = axis.length, N = G * G;
const grid = [new Float64Array(N), new Float64Array(N)];
for (let i = 0; i < G; i++) {
  for (let j = 0; j < G; j++) {
    grid[0][i * G + j] = axis[j];
    grid[1][i * G + j] = axis[i];
  }
}
const gridLogDet = new Float64Array(N);
for (const [k, alpha] of stages.slice().reverse()) {
  apply(layers[k], grid, alpha, true, gridLogDet);
}
const density = new Float64Array(N);
let total = 0, top = 0;
for (let p = 0; p < N; p++) {
  density[p] = Math.exp(logNormal(grid[0][p], grid[1][p]) + gridLogDet[p]);
  total += density[p];
  top = Math.max(top, density[p]);
}
const mass = total * cell;
const previous = picture.data.image[0];
picture.data = {image: [new previous.constructor(Array.from(density), [G, G])]};
mapper.high = top;
dots.data = {x1: Array.from(samples[0]), x2: Array.from(samples[1])};
readout.text = "t = " + t.toFixed(1) + " of " + K + " layers: the density's mass in " +
  "the window is " + mass.toFixed(3) + "; the " + e1.length +
  " samples' mean log-density is " + meanLog.toFixed(3);
"""


def _page_array(values: np.ndarray) -> np.ndarray:
    """The array as shipped in the page, flattened row-major: float32 when that loses
    nothing (a flow trained in float32), so that it travels as 4 bytes per number and
    the browser still sees exactly the numbers :func:`flow_layers_state` uses."""
    flat = np.ascontiguousarray(values).ravel()
    single = flat.astype(np.float32)
    return single if np.array_equal(single, flat) else flat


def _page_layer(layer: CouplingWeights) -> dict:
    return {"kept": layer.kept, "moved": layer.moved, "bound": layer.bound,
            **{name: _page_array(getattr(layer, name))
               for name in ("w1", "b1", "w2", "b2", "w3", "b3")}}


def bokeh_explorer(weights, t: float = 0.0):
    """The explorer as a Bokeh layout whose slider works offline, in the browser.

    One slider ("t, the layers applied"), a readout, and a square figure with the
    density as an image, the fixed samples as dots and a colour bar; the colour scale
    runs from 0 to the density's largest value on the grid at each ``t``.
    """
    from bokeh.models import ColorBar, ColumnDataSource, CustomJS, LinearColorMapper
    from bokeh.palettes import Viridis256

    weights = tuple(weights)
    state = flow_layers_state(weights, t)
    # The picture travels as float32 (half the bytes); the readout's numbers do not
    # depend on it.
    picture = ColumnDataSource({"image": [state.density.astype(np.float32)]},
                               name="flow_density")
    dots = ColumnDataSource({"x1": state.samples[:, 0], "x2": state.samples[:, 1]},
                            name="flow_samples")
    mapper = LinearColorMapper(palette=Viridis256, low=0.0,
                               high=float(state.density.max()), name="flow_mapper")
    # A square window drawn as a square at every width: the canvas scales with the
    # column (width = height) and the borders are as wide as they are tall (the
    # colour bar's strip below balances the y-axis and toolbar strips at the sides),
    # so the frame stays square. (match_aspect does nothing with fixed ranges.)
    plot = bokeh_figure("density and samples after t layers", height=580, width=580,
                        sizing_mode="scale_width", x_range=WINDOW, y_range=WINDOW,
                        tools="pan,wheel_zoom,reset", name="flow_plot",
                        min_border_left=71, min_border_right=52, min_border_top=10,
                        min_border_bottom=50)
    side = WINDOW[1] - WINDOW[0]
    plot.image(image="image", source=picture, x=WINDOW[0], y=WINDOW[0], dw=side,
               dh=side, color_mapper=mapper, level="image")
    plot.scatter("x1", "x2", source=dots, size=4, fill_color="white",
                 line_color="black", line_width=0.5)
    # The colour scale runs from 0 to the largest density on the grid at each t (the
    # page's script sets mapper.high); the bar shows the current scale.
    plot.add_layout(ColorBar(color_mapper=mapper, orientation="horizontal",
                             title=COLOUR_BAR_TITLE, name="flow_colour_bar",
                             height=10, padding=4, title_standoff=4), "below")
    plot.xaxis.axis_label = "x₁"
    plot.yaxis.axis_label = "x₂"
    t_slider = slider("flow_t_slider", "t, the layers applied", 0.0,
                      float(len(weights)), state.t, T_STEP)
    readout = readout_div(readout_text(state), "flow_readout")
    callback = CustomJS(
        args=dict(
            t_slider=t_slider, layers=[_page_layer(w) for w in weights],
            axis=state.axis, picture=picture, mapper=mapper,
            dots=dots, readout=readout, eps1=SAMPLE_EPS[:, 0].copy(),
            eps2=SAMPLE_EPS[:, 1].copy(),
            cell=((WINDOW[1] - WINDOW[0]) / GRID_POINTS) ** 2,
        ),
        code=_BOKEH_CALLBACK,
    )
    t_slider.js_on_change("value", callback)
    return explorer_column(t_slider, readout, plot)
