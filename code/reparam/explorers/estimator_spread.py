r"""The spread of one draw of the pathwise and score-function estimators, in two front
ends.

For :math:`x = \mu + \sigma\varepsilon`, :math:`\varepsilon \sim \mathcal N(0, 1)`, one
draw of each estimator of :math:`\partial_\theta\,\mathbb E[f(x)]` is a function of
:math:`\varepsilon` (see :mod:`reparam.variance`):

.. math::

    \text{pathwise: } f'(x)\ (\theta=\mu),\ f'(x)\,\varepsilon\ (\theta=\sigma);\qquad
    \text{score: } f(x)\,\frac{\varepsilon}{\sigma}\ (\theta=\mu),\
    f(x)\,\frac{\varepsilon^2-1}{\sigma}\ (\theta=\sigma).

The figure shows histograms of both over the same fixed draws, and a readout of their
exact means and variances. "Exact" here is a fixed composite Simpson rule on
:math:`\varepsilon \in [-10, 10]` (split at the step's jump), evaluated identically in
Python (:func:`spread_state`) and in the page's JavaScript, so the two readouts agree to
the printed digits; the test suite checks the rule against
:func:`reparam.variance.exact_moments` (``scipy.integrate.quad``). The cost and its
derivative reach the page as JavaScript printed by SymPy from the cost's own expression
(:meth:`reparam.costs.GaussianCost.sympy_expr`).

Usage in a chapter (the Bokeh figure on the website; the ipywidgets twin is
:func:`ipywidgets_explorer`, for ``make lab``)::

    from IPython.display import HTML
    from myst_nb import glue
    from reparam.explorers.estimator_spread import bokeh_explorer, spread_state
    from reparam.explorers import bokeh_html

    layout = bokeh_explorer("cosine", k=1.0, mu=0.5, sigma=1.0)
    glue("ch4_spread", HTML(bokeh_html(layout)), display=False)
    state = spread_state("cosine", k=1.0, mu=0.5, sigma=1.0)   # the numbers it shows
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy as sp

from .._validation import as_real_scalar, check_scale
from ..costs import ALL_COSTS

__all__ = [
    "SpreadState",
    "spread_state",
    "cost_javascript",
    "simpson_nodes",
    "ipywidgets_explorer",
    "bokeh_explorer",
    "COST_NAMES",
    "K_RANGE",
    "MU_RANGE",
    "SIGMA_RANGE",
    "SLIDER_STEP",
    "DRAWS",
    "EPS_LIMIT",
    "SIMPSON_INTERVALS",
    "BINS",
]

# The four costs of the issue (reparam.costs may hold more).
COST_NAMES = ("square", "gaussian_bump", "cosine", "step")
COST_LABELS = {
    "square": "square (x − k)²",
    "gaussian_bump": "bump exp(−k x²)",
    "cosine": "cosine cos(k x)",
    "step": "step 1[x > k]",
}
K_RANGE = (-2.0, 3.0)
MU_RANGE = (-2.0, 2.0)
SIGMA_RANGE = (0.2, 3.0)
SLIDER_STEP = 0.05  # of every slider, in both front ends: what the arrow keys move
PARAMETERS = ("mu", "sigma")
EPS_LIMIT = 10.0  # the standard normal mass beyond |eps| = 10 is below 1e-22
SIMPSON_INTERVALS = 2000  # per piece; even
BINS = 40
NUDGE = 1e-9
# Fixed draws so the histograms move smoothly with the sliders instead of flickering.
DRAWS = np.random.default_rng(2024).standard_normal(2000)

_X = sp.Symbol("x", real=True)
_K = sp.Symbol("k", real=True)


def _cost(name: str):
    for cost in ALL_COSTS:
        if cost.name == name:
            return cost
    raise ValueError(f"cost must be one of {COST_NAMES}, got {name!r}")


@cache
def _expressions(name: str) -> tuple[sp.Expr, sp.Expr]:
    """(f, f') in the symbols x and k; f' is 0 for a cost that is not differentiable."""
    cost = _cost(name)
    # The families' SymPy builders take k as given (a number or, here, a symbol).
    f = cost._sympy(_X, _K)
    if not cost.differentiable:
        # Autograd sees a zero derivative almost everywhere: that is the pathwise draw.
        return f.rewrite(sp.Piecewise), sp.Integer(0)
    return f, sp.diff(f, _X)


@cache
def _numpy_functions(name: str):
    f, df = _expressions(name)
    return (
        sp.lambdify((_X, _K), f, modules="numpy"),
        sp.lambdify((_X, _K), df, modules="numpy"),
    )


def cost_javascript(name: str) -> tuple[str, str]:
    """JavaScript expressions in ``x`` and ``k`` for the cost and f' (SymPy)."""
    f, df = _expressions(name)
    return sp.jscode(f), sp.jscode(df)


def simpson_nodes(breakpoint: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Nodes, weights of composite Simpson on [-10, 10], split at ``breakpoint``."""
    cuts = [-EPS_LIMIT, EPS_LIMIT]
    if breakpoint is not None and -EPS_LIMIT < breakpoint < EPS_LIMIT:
        cuts = [-EPS_LIMIT, breakpoint, EPS_LIMIT]
    nodes, weights = [], []
    for lower, upper in zip(cuts[:-1], cuts[1:], strict=True):
        h = (upper - lower) / SIMPSON_INTERVALS
        piece = lower + h * np.arange(SIMPSON_INTERVALS + 1)
        # Evaluate a piece's end nodes just inside it: at a step's jump, Simpson's rule
        # needs the one-sided limits, not the value exactly at the jump.
        piece[0] += NUDGE * h
        piece[-1] -= NUDGE * h
        w = np.where(np.arange(SIMPSON_INTERVALS + 1) % 2 == 1, 4.0, 2.0)
        w[0] = w[-1] = 1.0
        nodes.append(piece)
        weights.append(w * h / 3.0)
    return np.concatenate(nodes), np.concatenate(weights)


@dataclass(frozen=True)
class SpreadState:
    """Everything the explorer draws for one setting; both front ends draw from this."""

    cost: str
    k: float
    mu: float
    sigma: float
    parameter: str
    pathwise_draws: np.ndarray
    score_draws: np.ndarray
    bin_edges: np.ndarray
    pathwise_hist: np.ndarray
    score_hist: np.ndarray
    pathwise_mean: float
    pathwise_variance: float
    score_mean: float
    score_variance: float

    @property
    def score_wins(self) -> bool:
        """True where one score-function draw has the smaller variance."""
        return self.score_variance < self.pathwise_variance


def _per_draw(name, k, mu, sigma, parameter, eps):
    f, df = _numpy_functions(name)
    x = mu + sigma * eps
    value = np.broadcast_to(np.asarray(f(x, k), dtype=float), eps.shape)
    slope = np.broadcast_to(np.asarray(df(x, k), dtype=float), eps.shape)
    if parameter == "mu":
        return slope, value * eps / sigma
    return slope * eps, value * (eps * eps - 1.0) / sigma


def _moments(
    draw: np.ndarray, nodes: np.ndarray, weights: np.ndarray
) -> tuple[float, float]:
    phi = np.exp(-0.5 * nodes * nodes) / np.sqrt(2.0 * np.pi)
    mean = float(np.sum(weights * phi * draw))
    second = float(np.sum(weights * phi * draw * draw))
    return mean, max(second - mean * mean, 0.0)


def _histogram_edges(pathwise: np.ndarray, score: np.ndarray) -> np.ndarray:
    # The central 98 % of both sets of draws, so one outlier does not squash the
    # picture.
    both = np.sort(np.concatenate([pathwise, score]))
    lower, upper = both[int(0.01 * len(both))], both[int(0.99 * len(both)) - 1]
    if not upper > lower:
        lower, upper = lower - 1.0, upper + 1.0
    return lower + (upper - lower) * np.arange(BINS + 1) / BINS


def _histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Density histogram over ``edges``, normalised by ALL draws (outside ones too)."""
    width = edges[1] - edges[0]
    index = np.floor((values - edges[0]) / width).astype(int)
    index[values == edges[-1]] = BINS - 1
    inside = (index >= 0) & (index < BINS)
    counts = np.bincount(index[inside], minlength=BINS)
    return counts / (len(values) * width)


def spread_state(
    cost: str, k: float, mu: float, sigma: float, parameter: str = "mu"
) -> SpreadState:
    """Draws, histograms and Simpson-rule moments of both estimators of d/dparameter."""
    _cost(cost)
    k, mu, sigma = as_real_scalar(k, "k"), as_real_scalar(mu, "mu"), check_scale(sigma)
    if parameter not in PARAMETERS:
        raise ValueError(f"parameter must be one of {PARAMETERS}, got {parameter!r}")
    if cost == "gaussian_bump" and k < 0:
        raise ValueError(f"k must be >= 0 for the bump exp(-k x^2), got {k}")
    jump = (k - mu) / sigma if not _cost(cost).differentiable else None
    nodes, weights = simpson_nodes(jump)
    path_nodes, score_nodes = _per_draw(cost, k, mu, sigma, parameter, nodes)
    pathwise, score = _per_draw(cost, k, mu, sigma, parameter, DRAWS)
    edges = _histogram_edges(pathwise, score)
    return SpreadState(
        cost=cost,
        k=k,
        mu=mu,
        sigma=sigma,
        parameter=parameter,
        pathwise_draws=pathwise,
        score_draws=score,
        bin_edges=edges,
        pathwise_hist=_histogram(pathwise, edges),
        score_hist=_histogram(score, edges),
        pathwise_mean=_moments(path_nodes, nodes, weights)[0],
        pathwise_variance=_moments(path_nodes, nodes, weights)[1],
        score_mean=_moments(score_nodes, nodes, weights)[0],
        score_variance=_moments(score_nodes, nodes, weights)[1],
    )


def readout_text(state: SpreadState) -> str:
    """The readout under the figure (the page's JavaScript writes the same text)."""
    winner = "score function" if state.score_wins else "pathwise"
    return (
        f"pathwise: mean {state.pathwise_mean:.4g}, "
        f"variance {state.pathwise_variance:.4g}; "
        f"score function: mean {state.score_mean:.4g}, variance "
        f"{state.score_variance:.4g}; smaller variance: {winner}"
    )


def ipywidgets_explorer(
    cost: str = "cosine", k: float = 1.0, mu: float = 0.5, sigma: float = 1.0
):
    """Controls driving a live (ipympl) figure; returns ``(widget, update)``."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    state = spread_state(cost, k, mu, sigma)
    with plt.ioff():
        figure, axes = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    centers = 0.5 * (state.bin_edges[1:] + state.bin_edges[:-1])
    width = state.bin_edges[1] - state.bin_edges[0]
    path_bars = axes.bar(
        centers, state.pathwise_hist, width=width, alpha=0.5, label="pathwise"
    )
    score_bars = axes.bar(
        centers, state.score_hist, width=width, alpha=0.5, label="score function"
    )
    axes.set_xlabel("one draw of the gradient estimate")
    axes.set_ylabel("density")
    axes.legend()
    readout = widgets.HTML(readout_text(state))
    controls = {
        "cost": widgets.Dropdown(
            options=[(COST_LABELS[c], c) for c in COST_NAMES],
            value=cost,
            description="cost",
        ),
        "k": widgets.FloatSlider(
            value=k, min=K_RANGE[0], max=K_RANGE[1], step=SLIDER_STEP, description="k"
        ),
        "mu": widgets.FloatSlider(
            value=mu,
            min=MU_RANGE[0],
            max=MU_RANGE[1],
            step=SLIDER_STEP,
            description="μ",
        ),
        "sigma": widgets.FloatSlider(
            value=sigma,
            min=SIGMA_RANGE[0],
            max=SIGMA_RANGE[1],
            step=SLIDER_STEP,
            description="σ",
        ),
        "parameter": widgets.Dropdown(
            options=[("∂/∂μ", "mu"), ("∂/∂σ", "sigma")],
            value="mu",
            description="gradient",
        ),
    }

    def update(_change=None) -> SpreadState:
        values = {name: control.value for name, control in controls.items()}
        if values["cost"] == "gaussian_bump":
            values["k"] = max(values["k"], 0.0)
        new = spread_state(**values)
        middle = 0.5 * (new.bin_edges[1:] + new.bin_edges[:-1])
        step = new.bin_edges[1] - new.bin_edges[0]
        for bars, heights in (
            (path_bars, new.pathwise_hist),
            (score_bars, new.score_hist),
        ):
            for bar, x, height in zip(bars, middle, heights, strict=True):
                bar.set_x(x - step / 2)
                bar.set_width(step)
                bar.set_height(height)
        axes.relim()
        axes.autoscale_view()
        axes.set_xlim(new.bin_edges[0], new.bin_edges[-1])
        readout.value = readout_text(new)
        figure.canvas.draw_idle()
        return new

    for control in controls.values():
        control.observe(update, names="value")
    box = widgets.VBox(
        [
            widgets.HBox(list(controls.values())[:3]),
            widgets.HBox(list(controls.values())[3:]),
            figure.canvas,
            readout,
        ]
    )
    return box, update


_JS_TEMPLATE = """
const costs = {COSTS};
const name = cost_select.value;
let k = k_slider.value;
if (name === "gaussian_bump" && k < 0) { k = 0; }
const mu = mu_slider.value, sigma = sigma_slider.value;
const by_mu = parameter_select.value === "mu";
const f = costs[name][0], df = costs[name][1];
const per_draw = (eps) => {
  const x = mu + sigma * eps;
  const value = f(x, k), slope = df(x, k);
  return by_mu ? [slope, value * eps / sigma]
               : [slope * eps, value * (eps * eps - 1) / sigma];
};
// Composite Simpson on [-L, L], split at the step's jump: the rule spread_state uses.
const cuts = [-L, L];
const jump = (k - mu) / sigma;
if (costs[name][2] && jump > -L && jump < L) { cuts.splice(1, 0, jump); }
let m = [0, 0], s = [0, 0];
for (let c = 0; c + 1 < cuts.length; c++) {
  const h = (cuts[c + 1] - cuts[c]) / N;
  for (let i = 0; i <= N; i++) {
    let e = cuts[c] + h * i;
    if (i === 0) { e += nudge * h; } else if (i === N) { e -= nudge * h; }
    const w = (i === 0 || i === N ? 1 : (i % 2 === 1 ? 4 : 2)) * h / 3;
    const phi = Math.exp(-0.5 * e * e) / Math.sqrt(2 * Math.PI);
    const d = per_draw(e);
    for (let j = 0; j < 2; j++) {
      m[j] += w * phi * d[j];
      s[j] += w * phi * d[j] * d[j];
    }
  }
}
const v = [Math.max(s[0] - m[0] * m[0], 0), Math.max(s[1] - m[1] * m[1], 0)];
const path = [], score = [];
for (const e of draws) { const d = per_draw(e); path.push(d[0]); score.push(d[1]); }
const both = path.concat(score).sort((a, b) => a - b);
let lo = both[Math.floor(0.01 * both.length)];
let hi = both[Math.floor(0.99 * both.length) - 1];
if (!(hi > lo)) { lo -= 1; hi += 1; }
const width = (hi - lo) / B;
const hist = (values) => {
  const counts = new Array(B).fill(0);
  for (const x of values) {
    let i = Math.floor((x - lo) / width);
    if (x === lo + width * B) { i = B - 1; }
    if (i >= 0 && i < B) { counts[i] += 1; }
  }
  return counts.map((c) => c / (values.length * width));
};
const left = [], right = [];
for (let i = 0; i < B; i++) {
  left.push(lo + width * i);
  right.push(lo + width * (i + 1));
}
bars.data = {left: left, right: right, pathwise: hist(path), score: hist(score),
             zero: new Array(B).fill(0)};
const g = (x) => Number(x.toPrecision(4));
const winner = v[1] < v[0] ? "score function" : "pathwise";
readout.text = "pathwise: mean " + g(m[0]) + ", variance " + g(v[0]) +
  "; score function: mean " + g(m[1]) + ", variance " + g(v[1]) +
  "; smaller variance: " + winner;
"""


def _callback_code() -> str:
    entries = []
    for name in COST_NAMES:
        f, df = cost_javascript(name)
        jump = "true" if not _cost(name).differentiable else "false"
        entries.append(f'"{name}": [(x, k) => {f}, (x, k) => {df}, {jump}]')
    return _JS_TEMPLATE.replace("{COSTS}", "{" + ", ".join(entries) + "}")


def bokeh_explorer(
    cost: str = "cosine",
    k: float = 1.0,
    mu: float = 0.5,
    sigma: float = 1.0,
    parameter: str = "mu",
):
    """The explorer as a responsive Bokeh layout whose controls work offline."""
    from bokeh.layouts import column
    from bokeh.models import ColumnDataSource, CustomJS, Div, Select, Slider
    from bokeh.plotting import figure

    state = spread_state(cost, k, mu, sigma, parameter)
    edges = state.bin_edges
    bars = ColumnDataSource(
        {
            "left": edges[:-1],
            "right": edges[1:],
            "pathwise": state.pathwise_hist,
            "score": state.score_hist,
            "zero": np.zeros(BINS),
        },
        name="spread_bars",
    )
    plot = figure(
        title="one draw of each gradient estimator",
        height=300,
        sizing_mode="stretch_width",
        tools="pan,wheel_zoom,reset",
        x_axis_label="one draw of the gradient estimate",
        y_axis_label="density",
    )
    for estimator, colour, label in (
        ("pathwise", "#1f77b4", "pathwise"),
        ("score", "#ff7f0e", "score function"),
    ):
        plot.quad(
            left="left",
            right="right",
            bottom="zero",
            top=estimator,
            source=bars,
            fill_color=colour,
            fill_alpha=0.5,
            line_color=None,
            legend_label=label,
        )
    cost_select = Select(
        title="cost f(x)",
        value=cost,
        name="cost_select",
        options=[(c, COST_LABELS[c]) for c in COST_NAMES],
    )
    k_slider = Slider(
        start=K_RANGE[0],
        end=K_RANGE[1],
        value=state.k,
        step=SLIDER_STEP,
        title="k, the cost's parameter",
        name="k_slider",
    )
    mu_slider = Slider(
        start=MU_RANGE[0],
        end=MU_RANGE[1],
        value=state.mu,
        step=SLIDER_STEP,
        title="μ, the mean",
        name="mu_slider",
    )
    sigma_slider = Slider(
        start=SIGMA_RANGE[0],
        end=SIGMA_RANGE[1],
        value=state.sigma,
        step=SLIDER_STEP,
        title="σ, the standard deviation",
        name="sigma_slider",
    )
    parameter_select = Select(
        title="gradient with respect to",
        value=parameter,
        options=[("mu", "μ"), ("sigma", "σ")],
        name="parameter_select",
    )
    readout = Div(
        text=readout_text(state), name="spread_readout", sizing_mode="stretch_width"
    )
    callback = CustomJS(
        args=dict(
            cost_select=cost_select,
            k_slider=k_slider,
            mu_slider=mu_slider,
            sigma_slider=sigma_slider,
            parameter_select=parameter_select,
            bars=bars,
            readout=readout,
            draws=DRAWS.tolist(),
            L=EPS_LIMIT,
            N=SIMPSON_INTERVALS,
            B=BINS,
            nudge=NUDGE,
        ),
        code=_callback_code(),
    )
    for control in (k_slider, mu_slider, sigma_slider):
        control.js_on_change("value", callback)
    for control in (cost_select, parameter_select):
        control.js_on_change("value", callback)
    controls = [cost_select, parameter_select, k_slider, mu_slider, sigma_slider]
    for control in controls:
        control.sizing_mode = "stretch_width"
    return column(
        *controls,
        readout,
        plot,
        sizing_mode="stretch_width",
        styles={"max-width": "640px"},
    )
