r"""The running pathwise estimate against the number of draws, inside its funnel.

For the cost :math:`f(x) = \cos kx` and :math:`x = \mu + \sigma\varepsilon`, one
pathwise draw of :math:`\partial_\mu\,\mathbb E[f(x)]` is :math:`f'(x_i) =
-k\sin(kx_i)`. Its mean and variance have closed forms (Gaussian expectations of sines
and cosines):

.. math::

    g = \partial_\mu\,\mathbb E[f] = -k\sin(k\mu)\,e^{-k^2\sigma^2/2},\qquad
    V = k^2\Bigl(\tfrac12\bigl(1 - \cos(2k\mu)\,e^{-2k^2\sigma^2}\bigr)
        - \sin^2(k\mu)\,e^{-k^2\sigma^2}\Bigr).

The running estimate after :math:`m` draws is :math:`\bar g_m = \frac1m\sum_{i\le m}
f'(x_i)`, unbiased with standard deviation :math:`\sqrt{V/m}`. The figure draws a few
independent runs of it against :math:`m` (log axis) inside the *funnel*
:math:`g \pm 2\sqrt{V/m}`, drawn around the exact value: at any one large :math:`m`,
about 95 % of independent runs lie inside it (a single run's path leaves it now and
then). The readout states, at the chosen :math:`n`, the exact value, :math:`V`, the
funnel, how many runs are inside it, the largest :math:`|z|` with
:math:`z = (\bar g_n - g)/\sqrt{V/n}`, and the share of the paths' points
:math:`(\text{run}, m \le n)` inside the funnel.

The draws :math:`\varepsilon` are fixed (:data:`DRAWS`, seeded once, the seed chosen
before any run was looked at), so a run moves smoothly as :math:`k` and :math:`\mu`
move. The page receives these draws and computes the running means, the funnel and the
readout in JavaScript, exactly as :func:`running_estimate_state` computes them.

Usage in a chapter::

    from IPython.display import HTML
    from myst_nb import glue
    from reparam.explorers import bokeh_html
    from reparam.explorers.running_estimate import bokeh_explorer

    glue("ch3_explorer", HTML(bokeh_html(bokeh_explorer())), display=False)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validation import (
    as_real_array,
    as_real_scalar,
    check_count,
    check_scale,
)
from ..costs import cosine
from ._bokeh import bokeh_figure, explorer_column, js_fixed, readout_div, slider
from ._widgets import WidgetExplorer, live_figure

__all__ = [
    "RunningEstimateState",
    "running_estimate_state",
    "exact_gradient",
    "pathwise_variance",
    "running_mean",
    "inside_funnel",
    "n_from_slider",
    "readout_text",
    "RunningEstimateFigure",
    "ipywidgets_explorer",
    "bokeh_explorer",
    "DRAWS",
    "RUNS",
    "N_MAX",
    "SEED",
    "FUNNEL_WIDTH",
    "K_RANGE",
    "MU_RANGE",
    "LOG_N_RANGE",
    "SLIDER_STEP",
    "LOG_N_STEP",
]

RUNS = 8
N_MAX = 1000
SEED = 2026  # chosen before any run was drawn or looked at; never changed since
DRAWS = np.random.default_rng(SEED).standard_normal((RUNS, N_MAX))
FUNNEL_WIDTH = 2.0  # standard errors either side of the exact value
K_RANGE = (0.25, 4.0)
MU_RANGE = (-2.0, 2.0)
LOG_N_RANGE = (0.0, 3.0)  # n from 1 to N_MAX draws, on a log scale
SLIDER_STEP = 0.05  # of the k and mu sliders: what one arrow key moves
LOG_N_STEP = 0.1  # of the log10 n slider
DEFAULTS = {"k": 1.5, "mu": 0.3, "sigma": 0.8, "n": 100}
COUNTS = np.arange(1, N_MAX + 1, dtype=float)


def exact_gradient(k, mu, sigma) -> float:
    r""":math:`\partial_\mu\,\mathbb E[\cos kx] = -k\sin(k\mu)e^{-k^2\sigma^2/2}`."""
    return cosine.with_k(k).gradient(mu, sigma)[0]


def pathwise_variance(k, mu, sigma) -> float:
    r"""The variance :math:`V` of one pathwise draw :math:`-k\sin(kx)` (module
    docstring)."""
    k, mu, sigma = as_real_scalar(k, "k"), as_real_scalar(mu, "mu"), check_scale(sigma)
    # The same V, written without cancellation for small k sigma: with b = k^2 sigma^2,
    # V = k^2 (-expm1(-2b)/2 + sin^2(k mu) e^(-b) expm1(-b)). Written in the order the
    # page's JavaScript evaluates it, operation by operation.
    b = k * k * sigma * sigma
    return k * k * (-math.expm1(-2 * b) / 2
                    + math.sin(k * mu) ** 2 * math.exp(-b) * math.expm1(-b))


def running_mean(draws: np.ndarray) -> np.ndarray:
    r"""Running means along the last axis: entry :math:`m-1` is the mean of the first
    :math:`m` values (a sequential cumulative sum, as the page computes it)."""
    draws = as_real_array(draws, "draws")
    if draws.ndim == 0 or draws.shape[-1] == 0:
        raise ValueError("draws must hold at least one value along its last axis")
    return np.cumsum(draws, axis=-1) / np.arange(1, draws.shape[-1] + 1)


def inside_funnel(running: np.ndarray, exact: float, variance: float,
                  width: float = FUNNEL_WIDTH) -> np.ndarray:
    r"""Which running means lie in :math:`g \pm` ``width`` :math:`\sqrt{V/m}`, the
    funnel around the exact value :math:`g` (``m`` counts along the last axis)."""
    running = as_real_array(running, "running")
    exact = as_real_scalar(exact, "exact")
    variance = as_real_scalar(variance, "variance")
    if variance < 0:
        raise ValueError(f"variance must be >= 0, got {variance}")
    width = check_scale(width, "width")
    if running.ndim == 0:
        raise ValueError("running must have an axis of counts m = 1, 2, ...")
    counts = np.arange(1, running.shape[-1] + 1)
    return np.abs(running - exact) <= width * np.sqrt(variance / counts)


def n_from_slider(log_n) -> int:
    """The number of draws for the slider value ``log_n`` (log10 n), rounded as the
    page's ``Math.round`` rounds a positive number."""
    log_n = as_real_scalar(log_n, "log_n")
    return int(math.floor(10.0**log_n + 0.5))


@dataclass(frozen=True)
class RunningEstimateState:
    """Everything the explorer draws for one (k, mu, sigma, n)."""

    k: float
    mu: float
    sigma: float
    n: int
    exact: float  # the exact gradient g = d/dmu E[cos kx]
    variance: float  # V, the variance of one draw
    funnel_low: np.ndarray  # g - 2 sqrt(V/m) for m = 1 .. N_MAX
    funnel_high: np.ndarray  # g + 2 sqrt(V/m)
    running: np.ndarray  # (RUNS, n): the running means of each run up to n
    estimates: np.ndarray  # (RUNS,): each run's estimate after n draws
    z: np.ndarray  # (estimates - g) / sqrt(V/n)
    runs_inside: int  # runs inside the funnel at n
    share_inside: float  # share of the points (run, m <= n) inside the funnel

    @property
    def half_width(self) -> float:
        """The funnel's half-width at n: 2 sqrt(V/n)."""
        return FUNNEL_WIDTH * math.sqrt(self.variance / self.n)


def running_estimate_state(k, mu, sigma, n) -> RunningEstimateState:
    r"""The :data:`RUNS` running pathwise estimates of :math:`\partial_\mu\mathbb
    E[\cos kx]` up to ``n`` draws, their funnel and the readout's numbers."""
    k, mu, sigma = as_real_scalar(k, "k"), as_real_scalar(mu, "mu"), check_scale(sigma)
    if k <= 0:
        raise ValueError(f"k must be > 0 (the frequency of cos kx), got {k}")
    n = check_count(n, "n")
    if n > N_MAX:
        raise ValueError(f"n must be at most {N_MAX} (the fixed draws), got {n}")
    exact = exact_gradient(k, mu, sigma)
    variance = pathwise_variance(k, mu, sigma)
    if not variance > 0:
        raise ValueError(f"k = {k} is too small: the variance V of one draw underflows")
    per_draw = -k * np.sin(k * (mu + sigma * DRAWS[:, :n]))
    running = running_mean(per_draw)
    half_widths = FUNNEL_WIDTH * np.sqrt(variance / COUNTS)
    inside = inside_funnel(running, exact, variance)
    z = (running[:, -1] - exact) / math.sqrt(variance / n)
    return RunningEstimateState(
        k=k,
        mu=mu,
        sigma=sigma,
        n=n,
        exact=exact,
        variance=variance,
        funnel_low=exact - half_widths,
        funnel_high=exact + half_widths,
        running=running,
        estimates=running[:, -1].copy(),
        z=z,
        runs_inside=int(inside[:, -1].sum()),
        share_inside=int(inside.sum()) / inside.size,
    )


def readout_text(state: RunningEstimateState) -> str:
    """The readout under the website's figure (the page's JavaScript writes it too)."""
    return (
        f"k = {js_fixed(state.k, 2)}, μ = {js_fixed(state.mu, 2)}, n = {state.n}: "
        f"exact gradient {js_fixed(state.exact, 4)}, "
        f"V = {js_fixed(state.variance, 4)}; "
        f"funnel {js_fixed(state.exact, 4)} ± {js_fixed(state.half_width, 4)}; "
        f"{state.runs_inside} of {RUNS} runs inside it at n, largest |z| "
        f"{js_fixed(float(np.abs(state.z).max()), 2)}; "
        f"{js_fixed(100 * state.share_inside, 1)} % of the paths' points inside it"
    )


def _y_limits(k: float) -> tuple[float, float]:
    # Every draw -k sin(kx) lies in [-k, k], and so does every running mean.
    return -1.05 * k, 1.05 * k


class RunningEstimateFigure:
    """A matplotlib figure whose artists :meth:`update` changes in place."""

    def __init__(self, k: float = 1.5, mu: float = 0.3, sigma: float = 0.8,
                 n: int = 100, figure=None):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if figure is None:
            figure = Figure(figsize=(7.0, 4.5))
            FigureCanvasAgg(figure)
        self.figure = figure
        self.sigma = sigma
        axes = self.axes = figure.add_subplot()
        state = running_estimate_state(k, mu, sigma, n)
        self.funnel = axes.fill_between(COUNTS, state.funnel_low, state.funnel_high,
                                        color="0.8", label="exact ± 2√(V/n)")
        self.exact_line = axes.axhline(state.exact, color="black", ls="--", lw=1,
                                       label="exact gradient")
        self.runs = [axes.plot([], [], lw=1, color="C0", alpha=0.8)[0]
                     for _ in range(RUNS)]
        self.n_line = axes.axvline(n, color="0.4", lw=0.8)
        axes.set_xscale("log")
        axes.set_xlim(1, N_MAX)
        axes.set_xlabel("number of draws $n$")
        axes.set_ylabel(r"running estimate of $\partial_\mu \mathbb{E}[\cos kx]$")
        axes.legend(loc="lower right")
        self.title = axes.set_title("", fontsize=8, wrap=True)
        figure.set_layout_engine("constrained")
        self.move_artists(k, mu, n)
        # Lay out once, then freeze (as NormalMapFigure does): the axes never resize.
        figure.draw_without_rendering()
        figure.set_layout_engine("none")

    def update(self, k: float, mu: float, n: int) -> RunningEstimateState:
        """The slider callback: move every artist, then ask the canvas for a redraw."""
        state = self.move_artists(k, mu, n)
        self.figure.canvas.draw_idle()
        return state

    def move_artists(self, k: float, mu: float, n: int) -> RunningEstimateState:
        """Change the existing artists' data to (k, mu, n); draws nothing."""
        state = running_estimate_state(k, mu, self.sigma, n)
        top = np.column_stack([COUNTS, state.funnel_high])
        bottom = np.column_stack([COUNTS, state.funnel_low])[::-1]
        self.funnel.set_verts([np.concatenate([top, bottom])])
        self.exact_line.set_ydata([state.exact, state.exact])
        for line, path in zip(self.runs, state.running, strict=True):
            line.set_data(COUNTS[: state.n], path)
        self.n_line.set_xdata([state.n, state.n])
        self.axes.set_ylim(*_y_limits(state.k))
        self.title.set_text(readout_text(state))
        return state


def ipywidgets_explorer(k: float = 1.5, mu: float = 0.3, sigma: float = 0.8,
                        n: int = 100) -> WidgetExplorer:
    """Sliders for k, mu and log10 n driving a live (ipympl) figure (``make lab``)."""
    import ipywidgets as widgets

    figure = live_figure((7.0, 4.5))
    drawing = RunningEstimateFigure(k, mu, sigma, n, figure=figure)
    sliders = {
        "k": widgets.FloatSlider(value=k, min=K_RANGE[0], max=K_RANGE[1],
                                 step=SLIDER_STEP, description="k"),
        "mu": widgets.FloatSlider(value=mu, min=MU_RANGE[0], max=MU_RANGE[1],
                                  step=SLIDER_STEP, description="μ"),
        "log_n": widgets.FloatSlider(value=round(math.log10(n), 1), min=LOG_N_RANGE[0],
                                     max=LOG_N_RANGE[1], step=LOG_N_STEP,
                                     description="log₁₀ n"),
    }

    def update(k: float, mu: float, n: int) -> RunningEstimateState:
        return drawing.update(k, mu, n)

    def on_change(_change):
        update(sliders["k"].value, sliders["mu"].value,
               n_from_slider(sliders["log_n"].value))

    for control in sliders.values():
        control.observe(on_change, names="value")
    box = widgets.VBox([widgets.HBox(list(sliders.values())), figure.canvas])
    return WidgetExplorer(box, update, figure)


# The browser-side update mirrors running_estimate_state operation by operation.
_BOKEH_CALLBACK = """
const k = k_slider.value, mu = mu_slider.value;
const n = Math.round(10 ** n_slider.value);
const exact = -k * Math.sin(k * mu) * Math.exp(-0.5 * k ** 2 * sigma ** 2);
const b = k * k * sigma * sigma;
const V = k * k * (-Math.expm1(-2 * b) / 2 +
                   Math.sin(k * mu) ** 2 * Math.exp(-b) * Math.expm1(-b));
const counts = funnel.data.n;
const low = [], high = [];
for (let m = 1; m <= N; m++) {
  const half = width * Math.sqrt(V / m);
  low.push(exact - half);
  high.push(exact + half);
}
funnel.data = {n: counts, low: low, high: high};
exact_source.data = {n: [1, N], y: [exact, exact]};
const xs = [], ys = [], endX = [], endY = [];
let insidePoints = 0, runsInside = 0, largestZ = 0;
for (let r = 0; r < R; r++) {
  const path = new Array(n);
  let sum = 0;
  for (let m = 1; m <= n; m++) {
    sum += -k * Math.sin(k * (mu + sigma * draws[r * N + m - 1]));
    path[m - 1] = sum / m;
    if (Math.abs(path[m - 1] - exact) <= width * Math.sqrt(V / m)) { insidePoints++; }
  }
  const last = path[n - 1];
  if (Math.abs(last - exact) <= width * Math.sqrt(V / n)) { runsInside++; }
  largestZ = Math.max(largestZ, Math.abs((last - exact) / Math.sqrt(V / n)));
  xs.push(Array.from(counts.slice(0, n)));
  ys.push(path);
  endX.push(n);
  endY.push(last);
}
runs.data = {xs: xs, ys: ys};
ends.data = {n: endX, y: endY};
marker.location = n;
y_range.start = -1.05 * k;
y_range.end = 1.05 * k;
const share = insidePoints / (R * n);
readout.text = "k = " + k.toFixed(2) + ", μ = " + mu.toFixed(2) + ", n = " + n +
  ": exact gradient " + exact.toFixed(4) + ", V = " + V.toFixed(4) +
  "; funnel " + exact.toFixed(4) + " ± " + (width * Math.sqrt(V / n)).toFixed(4) +
  "; " + runsInside + " of " + R + " runs inside it at n, largest |z| " +
  largestZ.toFixed(2) + "; " + (100 * share).toFixed(1) +
  " % of the paths' points inside it";
"""


def bokeh_explorer(k: float = 1.5, mu: float = 0.3, sigma: float = 0.8, n: int = 100):
    """The explorer as a responsive Bokeh layout that works in a static page.

    Three sliders (k, μ and log₁₀ n, each titled for screen readers), a readout, and
    one plot that stretches to the column (at most 640 px, whole on a 390 px phone).
    The page receives the fixed draws and recomputes everything in JavaScript.
    """
    from bokeh.models import (
        ColumnDataSource,
        CustomJS,
        CustomJSTickFormatter,
        Range1d,
        Span,
    )

    state = running_estimate_state(k, mu, sigma, n)
    # The slider's value on its own grid of steps (log10 n = 0, 0.1, ..., 3).
    log_n = round(round(math.log10(state.n) / LOG_N_STEP) * LOG_N_STEP, 10)
    if n_from_slider(log_n) != state.n:
        raise ValueError(f"n must be a value the slider reaches, got {n}")
    funnel = ColumnDataSource({"n": COUNTS, "low": state.funnel_low,
                               "high": state.funnel_high}, name="funnel")
    exact_source = ColumnDataSource({"n": [1, N_MAX], "y": [state.exact] * 2},
                                    name="exact")
    runs = ColumnDataSource({"xs": [COUNTS[: state.n]] * RUNS,
                             "ys": list(state.running)}, name="runs")
    ends = ColumnDataSource({"n": [state.n] * RUNS, "y": state.estimates},
                            name="ends")
    y_range = Range1d(*_y_limits(state.k))
    plot = bokeh_figure(f"{RUNS} runs and the funnel exact ± 2√(V/n)",
                        height=320, x_axis_type="log", x_range=(1, N_MAX),
                        y_range=y_range, tools="pan,wheel_zoom,reset",
                        x_axis_label="number of draws n",
                        y_axis_label="estimate of ∂μ E[cos kx]")
    plot.varea(x="n", y1="low", y2="high", source=funnel, fill_color="#bbbbbb",
               fill_alpha=0.6, legend_label="exact ± 2√(V/n)")
    plot.line("n", "y", source=exact_source, color="black", line_dash="dashed",
              line_width=2, legend_label="exact gradient")
    plot.multi_line("xs", "ys", source=runs, line_width=1.2,
                    color="#1f77b4", line_alpha=0.8)
    plot.scatter("n", "y", source=ends, size=5, color="#1f77b4")
    marker = Span(location=state.n, dimension="height", line_color="#666666",
                  line_width=1, name="n_marker")
    plot.add_layout(marker)
    plot.legend.location = "bottom_right"
    plot.legend.background_fill_alpha = 0.7
    plot.legend.label_text_font_size = "11px"

    k_slider = slider("k_slider", "k, the frequency of the cost cos kx", *K_RANGE,
                      state.k, SLIDER_STEP)
    mu_slider = slider("mu_slider", "μ, the mean", *MU_RANGE, state.mu, SLIDER_STEP)
    n_slider = slider("n_slider", "n, the number of draws (log scale)", *LOG_N_RANGE,
                      log_n, LOG_N_STEP)
    # The slider moves log10 n; it shows n itself.
    n_slider.format = CustomJSTickFormatter(code="return Math.round(10 ** tick);")
    readout = readout_div(readout_text(state), "running_readout")
    callback = CustomJS(
        args=dict(k_slider=k_slider, mu_slider=mu_slider, n_slider=n_slider,
                  funnel=funnel, exact_source=exact_source, runs=runs, ends=ends,
                  marker=marker, y_range=y_range, readout=readout,
                  draws=DRAWS.ravel(), sigma=state.sigma, width=FUNNEL_WIDTH,
                  R=RUNS, N=N_MAX),
        code=_BOKEH_CALLBACK,
    )
    for control in (k_slider, mu_slider, n_slider):
        control.js_on_change("value", callback)
    return explorer_column(k_slider, mu_slider, n_slider, readout, plot)
