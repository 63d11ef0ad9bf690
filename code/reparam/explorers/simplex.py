r"""Gumbel-softmax samples on the 2-simplex, in two front ends (Chapter 6).

For :math:`K = 3` logits :math:`\theta` and a temperature :math:`\tau`, a fixed set of
Gumbel(0, 1) draws :math:`G_i` is pushed through
:math:`s_i = \operatorname{softmax}((\theta + G_i)/\tau)`. Each :math:`s_i` is a point
of the triangle with corners :math:`e_1, e_2, e_3` (barycentric coordinates), drawn with
the mean of the samples and the category probabilities :math:`p =
\operatorname{softmax}\theta`. Small :math:`\tau` pushes the samples to the corners
(their mean then approaches the frequencies of the Gumbel-max draws from the same noise,
an estimate of :math:`p` from 300 draws); large :math:`\tau` pulls them to the centre.

- :func:`simplex_state`: the pure function computing everything drawn (tested).
- :class:`MatplotlibSimplexExplorer` + :func:`ipywidgets_explorer`: ``make lab``.
- :func:`bokeh_explorer`: the static website; a ``CustomJS`` callback recomputes the
  same state in the browser from the same shipped noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validation import as_real_scalar

__all__ = [
    "SimplexState",
    "simplex_state",
    "to_triangle",
    "readout_text",
    "MatplotlibSimplexExplorer",
    "ipywidgets_explorer",
    "bokeh_explorer",
    "SAMPLE_GUMBELS",
    "TEMPERATURE_RANGE",
    "LOGIT_RANGE",
    "VERTICES",
]

N_SAMPLES = 300
# Fixed Gumbel(0, 1) draws, -log(-log U) (seeded), so the same points move with the
# sliders.
SAMPLE_GUMBELS = -np.log(-np.log(np.random.default_rng(6).uniform(size=(N_SAMPLES, 3))))
TEMPERATURE_RANGE = (0.05, 5.0)
LOGIT_RANGE = (-3.0, 3.0)
VERTICES = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3.0) / 2.0]])


@dataclass(frozen=True)
class SimplexState:
    """Everything the explorer draws for one setting; both front ends draw from this."""

    logits: np.ndarray
    temperature: float
    samples: np.ndarray  # (n, 3) relaxed one-hot rows
    points: np.ndarray  # (n, 2) their positions in the triangle
    mean: np.ndarray  # (3,) mean of the samples
    mean_point: np.ndarray  # (2,)
    probabilities: np.ndarray  # (3,) softmax(logits)
    probability_point: np.ndarray  # (2,)
    gap: float  # total-variation distance 0.5 * sum |mean - p|


def to_triangle(weights: np.ndarray) -> np.ndarray:
    """Barycentric weights ``(..., 3)`` to points of the triangle ``(..., 2)``."""
    return np.asarray(weights, dtype=float) @ VERTICES


def _softmax_rows(scores: np.ndarray) -> np.ndarray:
    # Subtract the row maximum first (the browser does the same), so exp never
    # overflows.
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def simplex_state(logits, temperature: float) -> SimplexState:
    r"""Relaxed samples :math:`\operatorname{softmax}((\theta + G_i)/\tau)` for the
    fixed G."""
    theta = np.asarray(logits, dtype=float)
    if theta.shape != (3,):
        raise ValueError(f"logits must have 3 entries, got shape {theta.shape}")
    if not np.isfinite(theta).all():
        raise ValueError("logits contains NaN or infinite values")
    tau = as_real_scalar(temperature, "temperature")
    if tau <= 0.0:
        raise ValueError(f"temperature must be > 0, got {tau}")
    samples = _softmax_rows((theta + SAMPLE_GUMBELS) / tau)
    mean = samples.mean(axis=0)
    p = _softmax_rows(theta)
    return SimplexState(
        logits=theta,
        temperature=tau,
        samples=samples,
        points=to_triangle(samples),
        mean=mean,
        mean_point=to_triangle(mean),
        probabilities=p,
        probability_point=to_triangle(p),
        gap=float(0.5 * np.abs(mean - p).sum()),
    )


def readout_text(state: SimplexState) -> str:
    """The numeric readout shown under the figure (the browser writes the same
    string)."""
    mean = ", ".join(f"{v:.3f}" for v in state.mean)
    p = ", ".join(f"{v:.3f}" for v in state.probabilities)
    return (
        f"τ = {state.temperature:.2f}: mean of {N_SAMPLES} relaxed samples = ({mean}); "
        f"softmax(θ) = ({p}); total-variation gap = {state.gap:.3f}"
    )


class MatplotlibSimplexExplorer:
    """A matplotlib figure whose artists :meth:`update` changes in place."""

    def __init__(self, logits=(1.0, 0.0, -1.0), temperature: float = 0.5, figure=None):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if figure is None:
            figure = Figure(figsize=(6.0, 5.6))
            FigureCanvasAgg(figure)
        self.figure = figure
        self.ax = figure.add_subplot()
        corners = np.vstack([VERTICES, VERTICES[:1]])
        self.ax.plot(corners[:, 0], corners[:, 1], color="black", lw=1)
        for k, (x, y) in enumerate(VERTICES):
            self.ax.annotate(
                f"$e_{k + 1}$",
                (x, y),
                ha="center",
                fontsize=12,
                xytext=(0, -18 if y == 0 else 8),
                textcoords="offset points",
            )
        state = simplex_state(logits, temperature)
        self.scatter = self.ax.scatter(
            *state.points.T, s=10, alpha=0.5, color="C0", label="relaxed samples"
        )
        (self.mean_marker,) = self.ax.plot(
            *state.mean_point, "o", ms=11, color="C1", label="their mean"
        )
        (self.p_marker,) = self.ax.plot(
            *state.probability_point,
            "x",
            ms=12,
            mew=3,
            color="black",
            label=r"softmax($\theta$)",
        )
        self.ax.set_xlim(-0.08, 1.08)
        self.ax.set_ylim(-0.12, 0.95)
        self.ax.set_aspect("equal")
        self.ax.axis("off")
        self.ax.legend(loc="upper left", fontsize=12, frameon=False)
        self.title = self.ax.set_title("", fontsize=12)
        self.move_artists(logits, temperature)

    def move_artists(self, logits, temperature: float) -> SimplexState:
        """Change the existing artists' data; draws nothing."""
        state = simplex_state(logits, temperature)
        self.scatter.set_offsets(state.points)
        self.mean_marker.set_data([state.mean_point[0]], [state.mean_point[1]])
        self.p_marker.set_data(
            [state.probability_point[0]], [state.probability_point[1]]
        )
        self.title.set_text(
            f"τ = {state.temperature:.2f}, total-variation gap {state.gap:.3f}"
        )
        return state

    def update(self, logits, temperature: float) -> SimplexState:
        """The slider callback: move every artist, then ask the canvas for a redraw."""
        state = self.move_artists(logits, temperature)
        self.figure.canvas.draw_idle()
        return state


def ipywidgets_explorer(logits=(1.0, 0.0, -1.0), temperature: float = 0.5):
    """Sliders for τ and the three logits driving a live (ipympl) explorer.

    Needs a Jupyter front end (``make lab``); returns ``(widget, explorer)``.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    with plt.ioff():
        figure = plt.figure(figsize=(6.0, 5.6))
    explorer = MatplotlibSimplexExplorer(logits, temperature, figure=figure)
    tau_slider = widgets.FloatLogSlider(
        value=temperature,
        base=10,
        min=math.log10(TEMPERATURE_RANGE[0]),
        max=math.log10(TEMPERATURE_RANGE[1]),
        step=0.02,
        description="τ",
    )
    logit_sliders = [
        widgets.FloatSlider(
            value=float(v),
            min=LOGIT_RANGE[0],
            max=LOGIT_RANGE[1],
            step=0.05,
            description=f"θ{k + 1}",
        )
        for k, v in enumerate(logits)
    ]

    def on_change(_change):
        explorer.update([s.value for s in logit_sliders], tau_slider.value)

    for slider in [tau_slider, *logit_sliders]:
        slider.observe(on_change, names="value")
    controls = widgets.VBox([tau_slider, *logit_sliders])
    return widgets.VBox([controls, figure.canvas]), explorer


# The browser-side update mirrors simplex_state and readout_text: same noise, same
# max-subtracted softmax, same barycentric map, same rounding.
BOKEH_CALLBACK = """
const tau = tau_slider.value;
const theta = [theta1.value, theta2.value, theta3.value];
const softmax = (v) => {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const s = e[0] + e[1] + e[2];
  return e.map((x) => x / s);
};
const toX = (w) => w[0] * vx[0] + w[1] * vx[1] + w[2] * vx[2];
const toY = (w) => w[0] * vy[0] + w[1] * vy[1] + w[2] * vy[2];
const n = g0.length;
const xs = new Array(n), ys = new Array(n);
const mean = [0, 0, 0];
for (let i = 0; i < n; i++) {
  const s = softmax([(theta[0] + g0[i]) / tau, (theta[1] + g1[i]) / tau,
                     (theta[2] + g2[i]) / tau]);
  xs[i] = toX(s); ys[i] = toY(s);
  for (let k = 0; k < 3; k++) { mean[k] += s[k]; }
}
for (let k = 0; k < 3; k++) { mean[k] /= n; }
const p = softmax(theta);
samples.data = {x: xs, y: ys};
mean_source.data = {x: [toX(mean)], y: [toY(mean)]};
p_source.data = {x: [toX(p)], y: [toY(p)]};
const gap = 0.5 * (Math.abs(mean[0] - p[0]) + Math.abs(mean[1] - p[1])
                   + Math.abs(mean[2] - p[2]));
const f3 = (v) => v.map((x) => x.toFixed(3)).join(", ");
readout.text = "τ = " + tau.toFixed(2) + ": mean of " + n + " relaxed samples = ("
  + f3(mean) + "); softmax(θ) = (" + f3(p) + "); total-variation gap = "
  + gap.toFixed(3);
"""


def bokeh_explorer(logits=(1.0, 0.0, -1.0), temperature: float = 0.5):
    """The explorer as a Bokeh layout whose sliders work in a static page (no
    kernel)."""
    from bokeh.layouts import column
    from bokeh.models import ColumnDataSource, CustomJS, Div, Slider
    from bokeh.plotting import figure

    state = simplex_state(logits, temperature)
    samples = ColumnDataSource(
        {"x": state.points[:, 0], "y": state.points[:, 1]}, name="samples"
    )
    mean_source = ColumnDataSource(
        {"x": [state.mean_point[0]], "y": [state.mean_point[1]]}, name="mean"
    )
    p_source = ColumnDataSource(
        {"x": [state.probability_point[0]], "y": [state.probability_point[1]]},
        name="probabilities",
    )
    plot = figure(
        title="Relaxed samples on the triangle of probability vectors",
        x_range=(-0.08, 1.08),
        y_range=(-0.1, 0.95),
        match_aspect=True,
        sizing_mode="stretch_width",
        max_width=640,
        height=420,
        tools="pan,wheel_zoom,reset",
    )
    plot.patch(VERTICES[:, 0], VERTICES[:, 1], fill_alpha=0.05, line_color="black")
    plot.scatter(
        "x",
        "y",
        source=samples,
        size=5,
        alpha=0.5,
        color="#1f77b4",
        legend_label="relaxed samples",
    )
    plot.scatter(
        "x",
        "y",
        source=mean_source,
        size=14,
        color="#ff7f0e",
        legend_label="their mean",
    )
    plot.scatter(
        "x",
        "y",
        source=p_source,
        size=16,
        marker="x",
        line_width=3,
        color="black",
        legend_label="softmax(θ)",
    )
    plot.text(
        VERTICES[:, 0],
        VERTICES[:, 1] + np.array([-0.07, -0.07, 0.02]),
        text=["e₁", "e₂", "e₃"],
        text_align="center",
        text_font_size="14pt",
    )
    plot.axis.visible = False
    plot.grid.visible = False
    plot.legend.location = "top_left"
    plot.legend.label_text_font_size = "12pt"

    tau_slider = Slider(
        start=TEMPERATURE_RANGE[0],
        end=TEMPERATURE_RANGE[1],
        value=state.temperature,
        step=0.05,
        title="τ, the temperature",
        name="tau_slider",
        sizing_mode="stretch_width",
    )
    logit_sliders = [
        Slider(
            start=LOGIT_RANGE[0],
            end=LOGIT_RANGE[1],
            value=float(v),
            step=0.05,
            title=f"θ{k + 1}, the logit of category {k + 1}",
            name=f"theta{k + 1}",
            sizing_mode="stretch_width",
        )
        for k, v in enumerate(state.logits)
    ]
    readout = Div(
        text=readout_text(state),
        name="readout",
        sizing_mode="stretch_width",
        styles={"font-size": "14px"},
    )
    callback = CustomJS(
        args=dict(
            tau_slider=tau_slider,
            theta1=logit_sliders[0],
            theta2=logit_sliders[1],
            theta3=logit_sliders[2],
            samples=samples,
            mean_source=mean_source,
            p_source=p_source,
            readout=readout,
            g0=list(SAMPLE_GUMBELS[:, 0]),
            g1=list(SAMPLE_GUMBELS[:, 1]),
            g2=list(SAMPLE_GUMBELS[:, 2]),
            vx=list(VERTICES[:, 0]),
            vy=list(VERTICES[:, 1]),
        ),
        code=BOKEH_CALLBACK,
    )
    for slider in [tau_slider, *logit_sliders]:
        slider.js_on_change("value", callback)
    return column(
        tau_slider,
        *logit_sliders,
        plot,
        readout,
        sizing_mode="stretch_width",
        max_width=640,
    )


def bokeh_html(layout) -> str:
    """The ``<script>`` + ``<div>`` embedding ``layout`` (BokehJS comes from the
    site)."""
    from ._bokeh import bokeh_html as embed

    return embed(layout)
