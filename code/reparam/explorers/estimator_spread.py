r"""The spread of one draw of the pathwise and score-function estimators, in two front
ends.

For :math:`x = \mu + \sigma\varepsilon`, :math:`\varepsilon \sim \mathcal N(0, 1)`, one
draw of each estimator of :math:`\partial_\theta\,\mathbb E[f(x)]` is a function of
:math:`\varepsilon` (see :mod:`reparam.variance`):

.. math::

    \text{pathwise: } f'(x)\ (\theta=\mu),\ f'(x)\,\varepsilon\ (\theta=\sigma);\qquad
    \text{score: } f(x)\,\frac{\varepsilon}{\sigma}\ (\theta=\mu),\
    f(x)\,\frac{\varepsilon^2-1}{\sigma}\ (\theta=\sigma).

The figure shows histograms of both over the same fixed values of
:math:`\varepsilon` (the quantiles of N(0, 1) at probabilities :math:`(i - 1/2)/n`, so
nothing is drawn at random), and a readout of their exact means and variances. "Exact"
here is a fixed composite Simpson rule on :math:`\varepsilon \in [-10, 10]` (split at
the step's jump), evaluated identically in Python (:func:`estimator_spread_state`) and
in the page's JavaScript, and printed by both with JavaScript's ``toPrecision(4)``
(:func:`js_precision`), so the two readouts are the same text; the test suite checks the
rule against :func:`reparam.variance.exact_moments` (``scipy.integrate.quad``). The cost
and its derivative reach the page as JavaScript printed by SymPy from the cost's own
expression (:meth:`reparam.costs.GaussianCost.sympy_expr`).

Usage in a chapter (the Bokeh figure on the website; the ipywidgets twin is
:func:`ipywidgets_explorer`, for ``make lab``)::

    from IPython.display import HTML
    from myst_nb import glue
    from reparam.explorers import bokeh_html
    from reparam.explorers.estimator_spread import (bokeh_explorer,
                                                    estimator_spread_state)

    layout = bokeh_explorer("cosine", k=1.0, mu=0.5, sigma=1.0)
    glue("ch4_spread", HTML(bokeh_html(layout)), display=False)
    state = estimator_spread_state("cosine", 1.0, 0.5, 1.0)  # the numbers it shows
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

import numpy as np
import sympy as sp
from scipy.special import ndtri

from .._validation import as_real_scalar, check_choice, check_scale
from ..costs import ALL_COSTS
from ._bokeh import (
    JS_HISTOGRAM,
    bar_edges,
    bokeh_figure,
    explorer_column,
    readout_div,
    slider,
)
from ._widgets import WidgetExplorer, live_figure

__all__ = [
    "EstimatorSpreadState",
    "estimator_spread_state",
    "readout_text",
    "js_precision",
    "slider_values",
    "slider_values_around",
    "cost_javascript",
    "simpson_nodes",
    "ipywidgets_explorer",
    "bokeh_explorer",
    "COST_NAMES",
    "K_RANGE",
    "MU_RANGE",
    "SIGMA_RANGE",
    "SLIDER_STEP",
    "EPS_POINTS",
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
ROUND_OFF = 1e-10  # relative size below which a moment is round-off (see _moments)
READOUT_DIGITS = 4  # significant digits of the readout's numbers
# The values of eps behind the histograms: the quantiles of N(0, 1) at (i - 1/2)/n,
# fixed so that the bars move smoothly with the sliders instead of flickering, and
# spread evenly in probability, so that the histograms show the estimators'
# distributions without sampling noise. Nothing here is random.
POINTS = 2000
EPS_POINTS = ndtri((np.arange(POINTS) + 0.5) / POINTS)

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
    f = cost.sympy_expr(_X, _K)
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
class EstimatorSpreadState:
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
    """Mean and variance by the Simpson rule; round-off is printed as 0.

    The page sums in another order and with its own ``exp`` and ``cos``, so the two
    agree to about 1e-13 of the estimator's root-mean-square, not to the bit. A mean
    (or variance) below ``ROUND_OFF`` times the root-mean-square (or the second
    moment) is that disagreement, not a value, and both front ends set it to 0 (the
    bump at k = 0, a constant, has a score-function mean of exactly 0).
    """
    phi = np.exp(-0.5 * nodes * nodes) / np.sqrt(2.0 * np.pi)
    mean = float(np.sum(weights * phi * draw))
    second = float(np.sum(weights * phi * draw * draw))
    if abs(mean) < ROUND_OFF * np.sqrt(second):
        mean = 0.0
    variance = second - mean * mean
    return mean, variance if variance >= ROUND_OFF * second else 0.0


def _histogram_edges(pathwise: np.ndarray, score: np.ndarray) -> np.ndarray:
    # The central 98 % of both sets of draws, so one outlier does not squash the
    # picture.
    both = np.sort(np.concatenate([pathwise, score]))
    lower, upper = both[int(0.01 * len(both))], both[int(0.99 * len(both)) - 1]
    if not upper > lower:
        lower, upper = lower - 1.0, upper + 1.0
    return bar_edges(lower, upper, BINS)


def _histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Density histogram over ``edges``, normalised by ALL draws (outside ones too);
    the page counts the bars alike (``JS_HISTOGRAM``)."""
    counts, _ = np.histogram(values, bins=edges)
    return counts / (len(values) * (edges[1] - edges[0]))


def estimator_spread_state(
    cost: str, k: float, mu: float, sigma: float, parameter: str = "mu"
) -> EstimatorSpreadState:
    """Per-draw values, histograms and Simpson-rule moments of both estimators of
    d/d``parameter`` of E[f(x)], x ~ N(mu, sigma^2), for the cost ``cost`` with
    parameter ``k``.

    Raises:
        TypeError: ``k``, ``mu`` or ``sigma`` is not a real number.
        ValueError: an unknown cost or parameter, ``sigma <= 0``, a non-finite value,
            or ``k < 0`` for the bump (whose expectation is then infinite).
    """
    _cost(cost)
    k, mu, sigma = as_real_scalar(k, "k"), as_real_scalar(mu, "mu"), check_scale(sigma)
    check_choice(parameter, "parameter", PARAMETERS)
    if cost == "gaussian_bump" and k < 0:
        raise ValueError(f"k must be >= 0 for the bump exp(-k x^2), got {k}")
    jump = (k - mu) / sigma if not _cost(cost).differentiable else None
    nodes, weights = simpson_nodes(jump)
    path_nodes, score_nodes = _per_draw(cost, k, mu, sigma, parameter, nodes)
    pathwise_mean, pathwise_variance = _moments(path_nodes, nodes, weights)
    score_mean, score_variance = _moments(score_nodes, nodes, weights)
    pathwise, score = _per_draw(cost, k, mu, sigma, parameter, EPS_POINTS)
    edges = _histogram_edges(pathwise, score)
    return EstimatorSpreadState(
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
        pathwise_mean=pathwise_mean,
        pathwise_variance=pathwise_variance,
        score_mean=score_mean,
        score_variance=score_variance,
    )


def js_precision(value: float, digits: int) -> str:
    """``value`` as JavaScript's ``value.toPrecision(digits)`` writes it.

    ECMAScript's rule: round the exact binary value to ``digits`` significant digits,
    an exact tie to the larger magnitude; write it in exponential notation
    (``1.234e+5``, ``1.234e-7``) when the decimal exponent is below -6 or at least
    ``digits``, and in fixed notation otherwise (``0.002677``, ``12.34``, ``1234``).
    The readout is written with it in Python and with ``toPrecision`` in the page, so
    that both are the same text.
    """
    value = float(value) + 0.0  # -0.0 prints as 0, as in JavaScript
    if not np.isfinite(value):
        raise ValueError(f"value must be finite, got {value}")
    if digits < 1:
        raise ValueError(f"digits must be >= 1, got {digits}")
    sign = "-" if value < 0 else ""
    if value == 0:
        mantissa, exponent = "0" * digits, 0
    else:
        exact = Decimal(abs(value))
        exponent = exact.adjusted()
        scaled = exact.scaleb(digits - 1 - exponent).quantize(
            Decimal(1), rounding=ROUND_HALF_UP
        )
        if scaled >= Decimal(10) ** digits:  # 9.9996 -> 10.00: one more digit
            exponent += 1
            scaled = exact.scaleb(digits - 1 - exponent).quantize(
                Decimal(1), rounding=ROUND_HALF_UP
            )
        mantissa = str(int(scaled))
    if exponent < -6 or exponent >= digits:
        point = "." + mantissa[1:] if digits > 1 else ""
        exponent_sign = "+" if exponent > 0 else "-"
        return f"{sign}{mantissa[0]}{point}e{exponent_sign}{abs(exponent)}"
    if exponent == digits - 1:
        return sign + mantissa
    if exponent >= 0:
        return f"{sign}{mantissa[: exponent + 1]}.{mantissa[exponent + 1 :]}"
    return f"{sign}0.{'0' * (-exponent - 1)}{mantissa}"


def readout_text(state: EstimatorSpreadState) -> str:
    """The readout above the histograms (the page's JavaScript writes the same text)."""
    winner = "score function" if state.score_wins else "pathwise"

    def number(value: float) -> str:
        return js_precision(value, READOUT_DIGITS)

    return (
        f"pathwise: mean {number(state.pathwise_mean)}, "
        f"variance {number(state.pathwise_variance)}; "
        f"score function: mean {number(state.score_mean)}, "
        f"variance {number(state.score_variance)}; smaller variance: {winner}"
    )


def slider_values(bounds: tuple[float, float]) -> np.ndarray:
    """The values a slider with these bounds takes: its start plus whole steps of
    :data:`SLIDER_STEP`, rounded as the sliders show them."""
    start, end = (as_real_scalar(b, "bounds") for b in bounds)
    if not start < end:
        raise ValueError(f"bounds must be (start, end) with start < end, got {bounds}")
    count = round((end - start) / SLIDER_STEP)
    return np.round(start + SLIDER_STEP * np.arange(count + 1), 10)


def slider_values_around(
    value: float, bounds: tuple[float, float]
) -> tuple[float, float]:
    """The two neighbouring slider values with ``value`` strictly between them."""
    value = as_real_scalar(value, "value")
    values = slider_values(bounds)
    below, above = values[values < value], values[values > value]
    if not len(below) or not len(above):
        raise ValueError(
            f"value must lie inside the slider's range {bounds}, got {value}"
        )
    return float(below.max()), float(above.min())


def _bar_geometry(state: EstimatorSpreadState) -> tuple[np.ndarray, float]:
    edges = state.bin_edges
    return 0.5 * (edges[1:] + edges[:-1]), edges[1] - edges[0]


def ipywidgets_explorer(
    cost: str = "cosine",
    k: float = 1.0,
    mu: float = 0.5,
    sigma: float = 1.0,
    parameter: str = "mu",
) -> WidgetExplorer:
    """Controls driving a live (ipympl) figure of both histograms and the readout.

    ``update(cost=..., k=..., mu=..., sigma=..., parameter=...)`` redraws the existing
    bars in place and returns the :class:`EstimatorSpreadState` it drew; moving a
    control calls it. Needs a Jupyter front end (``make lab``).
    """
    import ipywidgets as widgets

    state = estimator_spread_state(cost, k, mu, sigma, parameter)
    figure = live_figure((6.4, 4.0))
    axes = figure.add_subplot()
    figure.set_layout_engine("constrained")
    centres, width = _bar_geometry(state)
    bars = {
        "pathwise": axes.bar(centres, state.pathwise_hist, width=width, alpha=0.5,
                             label="pathwise"),
        "score": axes.bar(centres, state.score_hist, width=width, alpha=0.5,
                          label="score function"),
    }
    axes.set_xlabel("one draw of the gradient estimate")
    axes.set_ylabel("density")
    axes.legend()
    readout = widgets.HTML(readout_text(state))
    controls = {
        "cost": widgets.Dropdown(options=[(COST_LABELS[c], c) for c in COST_NAMES],
                                 value=cost, description="cost"),
        "k": widgets.FloatSlider(value=k, min=K_RANGE[0], max=K_RANGE[1],
                                 step=SLIDER_STEP, description="k"),
        "mu": widgets.FloatSlider(value=mu, min=MU_RANGE[0], max=MU_RANGE[1],
                                  step=SLIDER_STEP, description="μ"),
        "sigma": widgets.FloatSlider(value=sigma, min=SIGMA_RANGE[0],
                                     max=SIGMA_RANGE[1], step=SLIDER_STEP,
                                     description="σ"),
        "parameter": widgets.Dropdown(options=[("∂/∂μ", "mu"), ("∂/∂σ", "sigma")],
                                      value=parameter, description="gradient"),
    }

    def update(**values) -> EstimatorSpreadState:
        settings = {name: control.value for name, control in controls.items()}
        settings |= values
        if settings["cost"] == "gaussian_bump":
            settings["k"] = max(settings["k"], 0.0)  # as the page does
        new = estimator_spread_state(**settings)
        middle, step = _bar_geometry(new)
        for name, heights in (("pathwise", new.pathwise_hist),
                              ("score", new.score_hist)):
            for bar, x, height in zip(bars[name], middle, heights, strict=True):
                bar.set_x(x - step / 2)
                bar.set_width(step)
                bar.set_height(height)
        axes.relim()
        axes.autoscale_view()
        axes.set_xlim(new.bin_edges[0], new.bin_edges[-1])
        readout.value = readout_text(new)
        figure.canvas.draw_idle()
        return new

    def on_change(_change):
        update()

    for control in controls.values():
        control.observe(on_change, names="value")
    names = list(controls.values())
    box = widgets.VBox([widgets.HBox(names[:3]), widgets.HBox(names[3:]),
                        figure.canvas, readout])
    return WidgetExplorer(box, update, figure)


# The browser-side update mirrors estimator_spread_state: the same fixed eps, the same
# Simpson rule, the same histogram bins, the same readout (toPrecision is js_precision).
_BOKEH_CALLBACK = """
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
// Composite Simpson on [-L, L], split at the step's jump.
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
// Round-off is printed as 0, as in Python's _moments.
const v = [0, 0];
for (let j = 0; j < 2; j++) {
  if (Math.abs(m[j]) < round_off * Math.sqrt(s[j])) { m[j] = 0; }
  const variance = s[j] - m[j] * m[j];
  v[j] = variance >= round_off * s[j] ? variance : 0;
}
const path = [], score = [];
for (const e of points) { const d = per_draw(e); path.push(d[0]); score.push(d[1]); }
const both = path.concat(score).sort((a, b) => a - b);
let lo = both[Math.floor(0.01 * both.length)];
let hi = both[Math.floor(0.99 * both.length) - 1];
if (!(hi > lo)) { lo -= 1; hi += 1; }
const edges = barEdges(lo, hi, B);
const width = edges[1] - edges[0];
const hist = (values) => {
  const counts = new Array(B).fill(0);
  for (const x of values) {
    const i = barIndex(x, edges);
    if (i >= 0 && i < B) { counts[i] += 1; }
  }
  return counts.map((c) => c / (values.length * width));
};
bars.data = {left: edges.slice(0, B), right: edges.slice(1), pathwise: hist(path),
             score: hist(score), zero: new Array(B).fill(0)};
const g = (x) => (x + 0).toPrecision(digits);
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
    return JS_HISTOGRAM + _BOKEH_CALLBACK.replace("{COSTS}",
                                                  "{" + ", ".join(entries) + "}")


def bokeh_explorer(
    cost: str = "cosine",
    k: float = 1.0,
    mu: float = 0.5,
    sigma: float = 1.0,
    parameter: str = "mu",
):
    """The explorer as a responsive Bokeh layout whose controls work offline.

    Two menus (the cost, the parameter of the gradient) and three sliders (k, μ, σ)
    titled for screen readers; a readout computed in the page as
    :func:`estimator_spread_state` computes it (:func:`readout_text`); the histograms.
    """
    from bokeh.models import ColumnDataSource, CustomJS, Select

    state = estimator_spread_state(cost, k, mu, sigma, parameter)
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
    plot = bokeh_figure(
        "one draw of each gradient estimator",
        height=300,
        tools="pan,wheel_zoom,reset",
        x_axis_label="one draw of the gradient estimate",
        y_axis_label="density",
    )
    for estimator, colour, label in (
        ("pathwise", "#1f77b4", "pathwise"),
        ("score", "#ff7f0e", "score function"),
    ):
        plot.quad(left="left", right="right", bottom="zero", top=estimator,
                  source=bars, fill_color=colour, fill_alpha=0.5, line_color=None,
                  legend_label=label)
    cost_select = Select(title="cost f(x)", value=cost, name="cost_select",
                         options=[(c, COST_LABELS[c]) for c in COST_NAMES],
                         sizing_mode="stretch_width")
    parameter_select = Select(title="gradient with respect to", value=parameter,
                              options=[("mu", "μ"), ("sigma", "σ")],
                              name="parameter_select", sizing_mode="stretch_width")
    k_slider = slider("k_slider", "k, the cost's parameter", *K_RANGE, state.k,
                      SLIDER_STEP)
    mu_slider = slider("mu_slider", "μ, the mean", *MU_RANGE, state.mu, SLIDER_STEP)
    sigma_slider = slider("sigma_slider", "σ, the standard deviation", *SIGMA_RANGE,
                          state.sigma, SLIDER_STEP)
    readout = readout_div(readout_text(state), "spread_readout")
    callback = CustomJS(
        args=dict(
            cost_select=cost_select,
            k_slider=k_slider,
            mu_slider=mu_slider,
            sigma_slider=sigma_slider,
            parameter_select=parameter_select,
            bars=bars,
            readout=readout,
            points=EPS_POINTS.tolist(),
            L=EPS_LIMIT,
            N=SIMPSON_INTERVALS,
            B=BINS,
            nudge=NUDGE,
            round_off=ROUND_OFF,
            digits=READOUT_DIGITS,
        ),
        code=_callback_code(),
    )
    for control in (cost_select, parameter_select, k_slider, mu_slider, sigma_slider):
        control.js_on_change("value", callback)
    return explorer_column(cost_select, parameter_select, k_slider, mu_slider,
                           sigma_slider, readout, plot)
