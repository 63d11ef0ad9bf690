r"""Gumbel-softmax samples on the 2-simplex, in two front ends (Chapter 6).

For :math:`K = 3` logits :math:`\theta` and a temperature :math:`\tau`, a fixed set of
Gumbel(0, 1) draws :math:`G_i` is pushed through
:math:`s_i = \operatorname{softmax}((\theta + G_i)/\tau)`. Each :math:`s_i` is a point
of the triangle with corners :math:`e_1, e_2, e_3` (barycentric coordinates), drawn with
the mean of the samples, the exact mean :math:`\mathbb E[s]` (by quadrature,
:func:`reparam.discrete.relaxed_expectation`) and the category probabilities
:math:`p = \operatorname{softmax}\theta`.

The exact mean shows the relaxation's bias: its distance from :math:`p` falls as
:math:`\tau` falls. The mean of the :data:`N_SAMPLES` dots carries a Monte Carlo error
of a few hundredths on top of it: as :math:`\tau \to 0` it tends to the frequencies of
the Gumbel-max categories of the same draws, not to :math:`p`.

- :func:`simplex_state`: the pure function computing everything drawn (tested).
- :class:`SimplexFigure` + :func:`ipywidgets_explorer`: ``make lab``.
- :func:`bokeh_explorer`: the static website; a ``CustomJS`` callback recomputes the
  same state in the browser from the same shipped noise and quadrature rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .._validation import as_real_array, as_real_scalar
from ..discrete import relaxed_expectation
from ._bokeh import bokeh_figure, explorer_column, js_fixed, readout_div, slider
from ._widgets import WidgetExplorer, live_figure

__all__ = [
    "SimplexState",
    "simplex_state",
    "to_triangle",
    "readout_text",
    "SimplexFigure",
    "ipywidgets_explorer",
    "bokeh_explorer",
    "SAMPLE_GUMBELS",
    "N_SAMPLES",
    "EXACT_ORDER",
    "TEMPERATURE_RANGE",
    "TEMPERATURE_STEP",
    "LOG_TEMPERATURE_STEP",
    "LOGIT_RANGE",
    "VERTICES",
]

N_SAMPLES = 300
# Fixed Gumbel(0, 1) draws, -log(-log U) (seeded), so the same points move with the
# sliders.
SAMPLE_GUMBELS = -np.log(-np.log(np.random.default_rng(6).uniform(size=(N_SAMPLES, 3))))
# Gauss-Legendre nodes per dimension of the quadrature of E[s]: within about 1e-4 of a
# 400-node rule over the sliders' range (tests/test_explorer_simplex.py).
EXACT_ORDER = 40
TEMPERATURE_RANGE = (0.05, 5.0)
# The website's temperature slider moves tau in steps of TEMPERATURE_STEP; the
# notebook's (an ipywidgets FloatLogSlider) moves log10(tau) in LOG_TEMPERATURE_STEP.
TEMPERATURE_STEP = 0.05
LOG_TEMPERATURE_STEP = 0.02
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
    exact_mean: np.ndarray  # (3,) E[s], by quadrature
    exact_mean_point: np.ndarray  # (2,)
    probabilities: np.ndarray  # (3,) softmax(logits)
    probability_point: np.ndarray  # (2,)
    gap: float  # total-variation distance 0.5 * sum |mean - p| (Monte Carlo)
    exact_gap: float  # total-variation distance 0.5 * sum |E[s] - p|


def to_triangle(weights: np.ndarray) -> np.ndarray:
    """Barycentric weights ``(..., 3)`` to points of the triangle ``(..., 2)``."""
    return np.asarray(weights, dtype=float) @ VERTICES


def _softmax_rows(scores: np.ndarray) -> np.ndarray:
    # Subtract the row maximum first (the browser does the same), so exp never
    # overflows.
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _check_setting(logits, temperature) -> tuple[np.ndarray, float]:
    theta = as_real_array(logits, "logits")
    if theta.shape != (3,):
        raise ValueError(f"logits must have 3 entries, got shape {theta.shape}")
    tau = as_real_scalar(temperature, "temperature")
    if tau <= 0.0:
        raise ValueError(f"temperature must be > 0, got {tau}")
    return theta, tau


def simplex_state(logits, temperature: float) -> SimplexState:
    r"""Relaxed samples :math:`\operatorname{softmax}((\theta + G_i)/\tau)` for the
    fixed G, their mean, the exact mean and the probabilities."""
    theta, tau = _check_setting(logits, temperature)
    samples = _softmax_rows((theta + SAMPLE_GUMBELS) / tau)
    mean = samples.mean(axis=0)
    exact_mean = relaxed_expectation(
        lambda relaxed, _winners: relaxed, torch.from_numpy(theta), tau, EXACT_ORDER
    ).numpy()
    p = _softmax_rows(theta)
    return SimplexState(
        logits=theta,
        temperature=tau,
        samples=samples,
        points=to_triangle(samples),
        mean=mean,
        mean_point=to_triangle(mean),
        exact_mean=exact_mean,
        exact_mean_point=to_triangle(exact_mean),
        probabilities=p,
        probability_point=to_triangle(p),
        gap=float(0.5 * np.abs(mean - p).sum()),
        exact_gap=float(0.5 * np.abs(exact_mean - p).sum()),
    )


def readout_text(state: SimplexState) -> str:
    """The numeric readout shown under the figure (the browser writes the same
    string)."""

    def triple(values):
        return ", ".join(js_fixed(v, 3) for v in values)

    return (
        f"τ = {js_fixed(state.temperature, 2)}: exact E[s] = "
        f"({triple(state.exact_mean)}); mean of the {N_SAMPLES} dots = "
        f"({triple(state.mean)}); softmax(θ) = ({triple(state.probabilities)}). "
        f"Total-variation distance to softmax(θ): exact {js_fixed(state.exact_gap, 4)}"
        f", from the dots {js_fixed(state.gap, 4)}"
    )


class SimplexFigure:
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
            self.ax.annotate(f"$e_{k + 1}$", (x, y), ha="center", fontsize=12,
                             xytext=(0, -18 if y == 0 else 8),
                             textcoords="offset points")
        state = simplex_state(logits, temperature)
        self.scatter = self.ax.scatter(*state.points.T, s=10, alpha=0.5, color="C0",
                                       label="relaxed samples")
        (self.mean_marker,) = self.ax.plot(*state.mean_point, "o", ms=11, color="C1",
                                           label="their mean")
        (self.exact_marker,) = self.ax.plot(
            *state.exact_mean_point, "D", ms=11, mfc="none", mew=2, color="C2",
            label=r"exact $\mathbb{E}[s]$")
        (self.p_marker,) = self.ax.plot(*state.probability_point, "x", ms=12, mew=3,
                                        color="black", label=r"softmax($\theta$)")
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
        for marker, point in ((self.mean_marker, state.mean_point),
                              (self.exact_marker, state.exact_mean_point),
                              (self.p_marker, state.probability_point)):
            marker.set_data([point[0]], [point[1]])
        self.title.set_text(
            f"τ = {state.temperature:.2f}: distance to softmax(θ) "
            f"{state.exact_gap:.3f} exact, {state.gap:.3f} from the dots"
        )
        return state

    def update(self, logits, temperature: float) -> SimplexState:
        """The slider callback: move every artist, then ask the canvas for a redraw."""
        state = self.move_artists(logits, temperature)
        self.figure.canvas.draw_idle()
        return state


def ipywidgets_explorer(logits=(1.0, 0.0, -1.0), temperature: float = 0.5
                        ) -> WidgetExplorer:
    """Sliders for τ and the three logits driving a live (ipympl)
    :class:`SimplexFigure`.

    Needs a Jupyter front end (``make lab``).
    """
    import ipywidgets as widgets

    figure = live_figure((6.0, 5.6))
    drawing = SimplexFigure(logits, temperature, figure=figure)
    tau_slider = widgets.FloatLogSlider(
        value=temperature, base=10, min=math.log10(TEMPERATURE_RANGE[0]),
        max=math.log10(TEMPERATURE_RANGE[1]), step=LOG_TEMPERATURE_STEP,
        description="τ")
    logit_sliders = [
        widgets.FloatSlider(value=float(v), min=LOGIT_RANGE[0], max=LOGIT_RANGE[1],
                            step=0.05, description=f"θ{k + 1}")
        for k, v in enumerate(logits)
    ]

    def update(logits, temperature: float) -> SimplexState:
        return drawing.update(logits, temperature)

    def on_change(_change):
        update([s.value for s in logit_sliders], tau_slider.value)

    for control in [tau_slider, *logit_sliders]:
        control.observe(on_change, names="value")
    box = widgets.VBox([widgets.VBox([tau_slider, *logit_sliders]), figure.canvas])
    return WidgetExplorer(box, update, figure)


# The browser-side update mirrors simplex_state and readout_text: same noise, same
# max-subtracted softmax, same barycentric map, the same quadrature rule for E[s]
# (relaxed_expectation: split by the winner, stick-breaking Gauss-Legendre nodes).
_BOKEH_CALLBACK = """
const tau = tau_slider.value;
const theta = [theta1.value, theta2.value, theta3.value];
const softmax = (v) => {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
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
// E[s]: for each winner k, gaps a_j = log1p(D_j / (D_0 p_j)) with D uniform on the
// simplex, D_0 = b0, D_1 = (1 - b0) b1, D_2 = (1 - b0)(1 - b1), weight 2 (1 - b0).
const exact = [0, 0, 0];
for (let k = 0; k < 3; k++) {
  const others = [0, 1, 2].filter((j) => j !== k);
  for (let a = 0; a < qx.length; a++) {
    const b0 = qx[a];
    for (let b = 0; b < qx.length; b++) {
      const b1 = qx[b];
      const d = [b0, (1 - b0) * b1, (1 - b0) * (1 - b1)];
      const weight = qw[a] * qw[b] * 2 * (1 - b0);
      const e = [0, 0, 0];
      e[k] = 1;
      e[others[0]] = Math.exp(-Math.log1p(d[1] / (d[0] * p[others[0]])) / tau);
      e[others[1]] = Math.exp(-Math.log1p(d[2] / (d[0] * p[others[1]])) / tau);
      const total = e[0] + e[1] + e[2];
      for (let j = 0; j < 3; j++) { exact[j] += p[k] * weight * e[j] / total; }
    }
  }
}
samples.data = {x: xs, y: ys};
mean_source.data = {x: [toX(mean)], y: [toY(mean)]};
exact_source.data = {x: [toX(exact)], y: [toY(exact)]};
p_source.data = {x: [toX(p)], y: [toY(p)]};
const tv = (a) => 0.5 * (Math.abs(a[0] - p[0]) + Math.abs(a[1] - p[1])
                         + Math.abs(a[2] - p[2]));
const f3 = (v) => v.map((x) => x.toFixed(3)).join(", ");
readout.text = "τ = " + tau.toFixed(2) + ": exact E[s] = (" + f3(exact)
  + "); mean of the " + n + " dots = (" + f3(mean) + "); softmax(θ) = (" + f3(p)
  + "). Total-variation distance to softmax(θ): exact " + tv(exact).toFixed(4)
  + ", from the dots " + tv(mean).toFixed(4);
"""


def bokeh_explorer(logits=(1.0, 0.0, -1.0), temperature: float = 0.5):
    """The explorer as a Bokeh layout whose sliders work in a static page (no kernel).

    Slider titles name the quantity for screen readers; the readout states the exact
    mean, the mean of the dots, the probabilities and both distances, computed in the
    page as :func:`simplex_state` computes them.
    """
    from bokeh.models import ColumnDataSource, CustomJS, Legend, LegendItem

    state = simplex_state(logits, temperature)

    def point_source(point, name):
        return ColumnDataSource({"x": [point[0]], "y": [point[1]]}, name=name)

    samples = ColumnDataSource({"x": state.points[:, 0], "y": state.points[:, 1]},
                               name="samples")
    mean_source = point_source(state.mean_point, "mean")
    exact_source = point_source(state.exact_mean_point, "exact_mean")
    p_source = point_source(state.probability_point, "probabilities")
    # scale_width keeps the aspect ratio, so the triangle stays equilateral; the legend
    # sits below the plot, in two columns, so that it covers nothing on a 390 px phone.
    plot = bokeh_figure("Relaxed samples on the triangle of probability vectors",
                        width=600, height=500, sizing_mode="scale_width",
                        x_range=(-0.08, 1.08), y_range=(-0.1, 0.97),
                        tools="pan,wheel_zoom,reset")
    plot.patch(VERTICES[:, 0], VERTICES[:, 1], fill_alpha=0.05, line_color="black")
    renderers = {
        "relaxed samples": plot.scatter("x", "y", source=samples, size=5, alpha=0.5,
                                        color="#1f77b4"),
        "their mean": plot.scatter("x", "y", source=mean_source, size=14,
                                   color="#ff7f0e"),
        "exact E[s]": plot.scatter("x", "y", source=exact_source, size=16,
                                   marker="diamond", fill_alpha=0, line_width=3,
                                   color="#2ca02c"),
        "softmax(θ)": plot.scatter("x", "y", source=p_source, size=16, marker="x",
                                   line_width=3, color="black"),
    }
    plot.add_layout(Legend(items=[LegendItem(label=label, renderers=[renderer])
                                  for label, renderer in renderers.items()],
                           ncols=2, location="center", label_text_font_size="11pt"),
                    "below")
    plot.text(VERTICES[:, 0], VERTICES[:, 1] + np.array([-0.07, -0.07, 0.02]),
              text=["e₁", "e₂", "e₃"], text_align="center", text_font_size="14pt")
    plot.axis.visible = False
    plot.grid.visible = False

    tau_slider = slider("tau_slider", "τ, the temperature", *TEMPERATURE_RANGE,
                        state.temperature, TEMPERATURE_STEP)
    logit_sliders = [
        slider(f"theta{k + 1}", f"θ{k + 1}, the logit of category {k + 1}",
               *LOGIT_RANGE, float(v), 0.05)
        for k, v in enumerate(state.logits)
    ]
    readout = readout_div(readout_text(state), "simplex_readout")
    nodes, weights = np.polynomial.legendre.leggauss(EXACT_ORDER)
    callback = CustomJS(
        args=dict(
            tau_slider=tau_slider, theta1=logit_sliders[0], theta2=logit_sliders[1],
            theta3=logit_sliders[2], samples=samples, mean_source=mean_source,
            exact_source=exact_source, p_source=p_source, readout=readout,
            g0=list(SAMPLE_GUMBELS[:, 0]), g1=list(SAMPLE_GUMBELS[:, 1]),
            g2=list(SAMPLE_GUMBELS[:, 2]), vx=list(VERTICES[:, 0]),
            vy=list(VERTICES[:, 1]), qx=list((nodes + 1.0) / 2.0),
            qw=list(weights / 2.0),
        ),
        code=_BOKEH_CALLBACK,
    )
    for control in [tau_slider, *logit_sliders]:
        control.js_on_change("value", callback)
    return explorer_column(tau_slider, *logit_sliders, readout, plot)
