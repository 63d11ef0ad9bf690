r"""The :math:`\mathcal N(0,1) \to \mathcal N(\mu,\sigma^2)` explorer, in two front
ends.

One picture in one coordinate system: the straight map
:math:`x = \mu + \sigma\varepsilon` (the centre panel, :math:`\varepsilon` across,
:math:`x` up), the density of :math:`\varepsilon` below it, and the density of
:math:`x` to its left, turned on its side. Six fixed values :math:`\varepsilon_i`
(quantiles of :math:`\mathcal N(0,1)`, see ``SAMPLE_EPS``) are carried up to the map
and across to :math:`x_i`, and a shaded strip :math:`[a, b]` in :math:`\varepsilon` and
its image :math:`[\mu+\sigma a, \mu+\sigma b]` in :math:`x` carry the same probability
mass: :math:`f_X(x)\,dx = f_\varepsilon(\varepsilon)\,d\varepsilon` with
:math:`dx/d\varepsilon = \sigma`.

**The picture is drawn to scale**, so that the two facts can be seen, not only read: one
unit of :math:`\varepsilon` and one unit of :math:`x` have the same length on the screen
(the orange strip is visibly :math:`\sigma` times the blue one), and one unit of density
has the same length, :data:`DENSITY_SCALE` units, in both density panels (the two shaded
areas are visibly equal). Both front ends draw everything on one set of axes with equal
aspect (matplotlib's ``set_aspect("equal")``, Bokeh's ``match_aspect``), and
:func:`normal_map_shapes` gives both the same coordinates.

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
    "NormalMapShapes",
    "normal_map_state",
    "normal_map_shapes",
    "NormalMapFigure",
    "ipywidgets_explorer",
    "bokeh_explorer",
    "readout_text",
    "SAMPLE_EPS",
    "SAMPLE_COUNT",
    "STRIP",
    "STRIP_POINTS",
    "MU_RANGE",
    "SIGMA_RANGE",
    "EPS_LIMITS",
    "X_LIMITS",
    "DENSITY_SCALE",
    "CANVAS_U",
    "CANVAS_V",
]

EPS_GRID = np.linspace(-4.0, 4.0, 241)
MU_RANGE = (-2.0, 2.0)
SIGMA_RANGE = (0.5, 2.0)
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
STRIP_POINTS = 2001  # the trapezoid rule's points for a strip's mass
STRIP_DRAW_POINTS = 50  # the points that outline a shaded strip

# The drawing, in one coordinate system (u across, v up). The map panel is u = eps in
# EPS_LIMITS, v = x in X_LIMITS: a unit of eps and a unit of x have the same length. The
# slider ranges keep every x_i, the strip's image and the density of x's peak inside
# their panels (tests/test_explorer_normal_map.py checks the corners).
EPS_LIMITS = (-4.0, 4.0)
X_LIMITS = (-5.0, 5.0)
# One unit of density is DENSITY_SCALE units long in both density panels, so that
# (length) x (density) is the same area in both. The panels reach the densities'
# largest values: phi(0) = 0.399 below, 1/(0.5 sqrt(2 pi)) = 0.798 on the side.
DENSITY_SCALE = 4.0
EPS_DENSITY_SPAN, X_DENSITY_SPAN = 0.45, 0.85
GAP = 0.3  # between the map panel and each density panel
SIDE_BASE = EPS_LIMITS[0] - GAP  # u where the density of x is zero; it grows leftward
BOTTOM_BASE = X_LIMITS[0] - GAP - DENSITY_SCALE * EPS_DENSITY_SPAN  # v of zero density
MARGIN = 0.15  # room for the density scales at the right and top edges
CANVAS_U = (SIDE_BASE - DENSITY_SCALE * X_DENSITY_SPAN, EPS_LIMITS[1] + MARGIN)
CANVAS_V = (BOTTOM_BASE, X_LIMITS[1] + MARGIN)
# The marks of the density scales: (density value, label) on each panel.
EPS_DENSITY_TICKS = (0.2, 0.4)
X_DENSITY_TICKS = (0.4, 0.8)
AXIS_TICKS = (-4, -2, 0, 2, 4)  # eps across and x up, legible on a phone
FIGSIZE = (6.4, 6.8)  # the matplotlib figure of make lab, about the canvas's shape
BLUE, ORANGE = "#1f77b4", "#ff7f0e"


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


def _strip_mass(
    lower: float, upper: float, mu: float, sigma: float, points: int = STRIP_POINTS
) -> float:
    # The trapezoid rule on the density the figure draws. For the image of the strip
    # the points are mu + sigma * (the eps points), so each term equals the eps strip's
    # term (sigma from dx cancels 1/sigma): the two masses agree by construction, up to
    # rounding; the rule's own error is about 3e-10 against Phi(b) - Phi(a).
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


@dataclass(frozen=True)
class NormalMapShapes:
    """Where the parts of one state are drawn, in the picture's coordinates (u, v).

    ``map_u, map_v``: the visible piece of the line (two points, NaN if none shows).
    ``eps_curve_v``: the density of eps above ``BOTTOM_BASE`` at u = ``state.eps``.
    ``x_curve_u``: the density of x left of ``SIDE_BASE`` at v = ``state.x`` (NaN where
    x leaves ``X_LIMITS``). ``eps_strip_*`` and ``x_strip_*``: the outer edges of the
    two shaded strips (their other edge is the panel's zero line). ``paths_u``,
    ``paths_v``: each eps_i's dashed path, up from the eps axis and across to x_i.
    """

    map_u: np.ndarray
    map_v: np.ndarray
    eps_curve_v: np.ndarray
    x_curve_u: np.ndarray
    eps_strip_u: np.ndarray
    eps_strip_v: np.ndarray
    x_strip_v: np.ndarray
    x_strip_u: np.ndarray
    paths_u: np.ndarray
    paths_v: np.ndarray


def eps_density_v(density):
    """Height in the picture of a density of eps (upright, above ``BOTTOM_BASE``)."""
    return BOTTOM_BASE + DENSITY_SCALE * np.asarray(density, dtype=float)


def x_density_u(density):
    """Across-position of a density of x (on its side, leftward of ``SIDE_BASE``)."""
    return SIDE_BASE - DENSITY_SCALE * np.asarray(density, dtype=float)


def normal_map_shapes(state: NormalMapState) -> NormalMapShapes:
    """The picture's coordinates of ``state``; both front ends draw exactly these."""
    if not isinstance(state, NormalMapState):
        raise TypeError(f"state must be a NormalMapState, got {type(state).__name__}")
    mu, sigma = state.mu, state.sigma
    low = max(EPS_LIMITS[0], (X_LIMITS[0] - mu) / sigma)
    high = min(EPS_LIMITS[1], (X_LIMITS[1] - mu) / sigma)
    map_u = np.array([low, high]) if low <= high else np.full(2, np.nan)
    inside_x = (state.x >= X_LIMITS[0]) & (state.x <= X_LIMITS[1])
    eps_strip = np.linspace(*STRIP, STRIP_DRAW_POINTS)
    x_strip = np.linspace(*state.strip_x, STRIP_DRAW_POINTS)
    count = len(state.samples_eps)
    paths_u = np.column_stack([state.samples_eps, state.samples_eps,
                               np.full(count, SIDE_BASE)])
    paths_v = np.column_stack([np.full(count, BOTTOM_BASE), state.samples_x,
                               state.samples_x])
    return NormalMapShapes(
        map_u=map_u,
        map_v=mu + sigma * map_u,
        eps_curve_v=eps_density_v(state.eps_density),
        x_curve_u=np.where(inside_x, x_density_u(state.x_density), np.nan),
        eps_strip_u=eps_strip,
        eps_strip_v=eps_density_v(normal_density(eps_strip, 0.0, 1.0)),
        x_strip_v=x_strip,
        x_strip_u=x_density_u(normal_density(x_strip, mu, sigma)),
        paths_u=paths_u,
        paths_v=paths_v,
    )


def _scale_marks():
    """The two density scales: (segments, labels), in picture coordinates.

    The density of eps gets a vertical scale at the right end of its panel, the density
    of x a horizontal one along the top of its panel; each tick is labelled with its
    density, and both scales use the same DENSITY_SCALE.
    """
    tick = 0.15
    right, top = EPS_LIMITS[1], X_LIMITS[1]
    eps_top = float(eps_density_v(max(EPS_DENSITY_TICKS)))
    x_end = float(x_density_u(max(X_DENSITY_TICKS)))
    segments = [((right, right), (BOTTOM_BASE, eps_top)),
                ((SIDE_BASE, x_end), (top, top))]
    labels = []
    for value in EPS_DENSITY_TICKS:
        v = float(eps_density_v(value))
        segments.append(((right - tick, right), (v, v)))
        labels.append((right - 1.6 * tick, v, f"{value:g}", "right", "middle"))
    for value in X_DENSITY_TICKS:
        u = float(x_density_u(value))
        segments.append(((u, u), (top - tick, top)))
        labels.append((u, top - 1.6 * tick, f"{value:g}", "center", "top"))
    return segments, labels


# Names of the panels, placed where no curve reaches over the slider ranges.
_PANEL_LABELS = (
    (EPS_LIMITS[0] + 0.1, float(eps_density_v(0.38)), "density of ε", "left"),
    (CANVAS_U[0] + 0.1, X_LIMITS[0] + 0.15, "density of x", "left"),
    (EPS_LIMITS[0] + 0.1, X_LIMITS[1] - 0.5, "x = μ + σε", "left"),
)


def readout_text(state: NormalMapState) -> str:
    """The readout under the website's figure (the page's JavaScript writes it too)."""
    low, high = state.strip_x
    return (
        f"μ = {js_fixed(state.mu, 2)}, σ = {js_fixed(state.sigma, 2)}: the strip ε in "
        f"[{state.strip_eps[0]:g}, {state.strip_eps[1]:g}] has mass "
        f"{js_fixed(state.strip_mass_eps, 4)}; its image x in [{js_fixed(low, 2)}, "
        f"{js_fixed(high, 2)}] has mass {js_fixed(state.strip_mass_x, 4)}"
    )


class NormalMapFigure:
    """A matplotlib figure whose artists :meth:`update` changes in place.

    One axes with equal aspect holds the three panels (see the module's docstring).
    """

    def __init__(self, mu: float = 0.0, sigma: float = 1.0, figure=None):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Polygon, Rectangle

        if figure is None:
            # A standalone figure (outside pyplot) that can still render, e.g. in
            # benchmarks.
            figure = Figure(figsize=FIGSIZE)
            FigureCanvasAgg(figure)
        self.figure = figure
        self.figure.set_layout_engine("constrained")
        ax = self.axes = self.figure.add_subplot()
        state = normal_map_state(mu, sigma)
        shapes = normal_map_shapes(state)
        quiet = {"color": "grey", "lw": 0.8}

        # The map panel: its frame, the two bands, the line and the dashed paths.
        ax.add_patch(Rectangle((EPS_LIMITS[0], X_LIMITS[0]), np.ptp(EPS_LIMITS),
                               np.ptp(X_LIMITS), fill=False, **quiet))
        ax.add_patch(Rectangle((STRIP[0], X_LIMITS[0]), STRIP[1] - STRIP[0],
                               np.ptp(X_LIMITS), color=BLUE, alpha=0.15, lw=0))
        self.band = ax.add_patch(Rectangle((EPS_LIMITS[0], state.strip_x[0]),
                                           np.ptp(EPS_LIMITS), np.ptp(state.strip_x),
                                           color=ORANGE, alpha=0.25, lw=0))
        (self.map_line,) = ax.plot(shapes.map_u, shapes.map_v, color="black", lw=1.5)
        self.sample_lines = [
            ax.plot(a, b, color="grey", lw=0.8, ls="--")[0]
            for a, b in zip(shapes.paths_u, shapes.paths_v, strict=True)
        ]

        # Below: the density of eps, upright; it never moves.
        ax.plot(EPS_LIMITS, (BOTTOM_BASE, BOTTOM_BASE), **quiet)
        ax.plot(state.eps, shapes.eps_curve_v, color=BLUE)
        self.eps_strip = ax.fill_between(shapes.eps_strip_u, BOTTOM_BASE,
                                         shapes.eps_strip_v, color=BLUE, alpha=0.4,
                                         lw=0)
        ax.plot(SAMPLE_EPS, np.full(SAMPLE_COUNT, BOTTOM_BASE), "o", color="black",
                ms=4, clip_on=False)

        # Left: the density of x, on its side, growing leftward from its zero line.
        ax.plot((SIDE_BASE, SIDE_BASE), X_LIMITS, **quiet)
        (self.x_line,) = ax.plot(shapes.x_curve_u, state.x, color=ORANGE)
        self.x_strip = ax.add_patch(Polygon(self._strip_outline(shapes), closed=True,
                                            color=ORANGE, alpha=0.4, lw=0))
        (self.x_samples,) = ax.plot(np.full(SAMPLE_COUNT, SIDE_BASE), state.samples_x,
                                    "o", color="black", ms=4)

        segments, labels = _scale_marks()
        for us, vs in segments:
            ax.plot(us, vs, color="black", lw=0.8)
        small = 0.75 * float(self._font_size())
        for u, v, text, ha, va in labels:
            ax.text(u, v, text, ha=ha, va=va.replace("middle", "center"),
                    fontsize=small)
        for u, v, text, ha in _PANEL_LABELS:
            ax.text(u, v, text, ha=ha, va="center", fontsize=small)

        ax.set_aspect("equal")  # a unit across is as long as a unit up
        ax.set_xlim(*CANVAS_U)
        ax.set_ylim(*CANVAS_V)
        ax.set_xticks(AXIS_TICKS)
        ax.set_yticks(AXIS_TICKS)
        ax.set_xlabel(r"$\varepsilon$")
        ax.set_ylabel("$x$")
        ax.spines[["top", "right"]].set_visible(False)
        self.title = ax.set_title("")
        self.move_artists(mu, sigma)
        # Lay the panels out once, then freeze: re-solving the layout on every slider
        # step would dominate the redraw time, and the axes never change size. Not
        # canvas.draw(): on an ipympl canvas that stores an image before the view
        # exists, which JupyterLab then fails to paint inside a widget box.
        self.figure.draw_without_rendering()
        self.figure.set_layout_engine("none")

    @staticmethod
    def _font_size():
        import matplotlib as mpl

        return mpl.rcParams["font.size"]

    @staticmethod
    def _strip_outline(shapes: NormalMapShapes) -> np.ndarray:
        """The orange strip as a closed polygon: density edge, then zero line."""
        low, high = shapes.x_strip_v[0], shapes.x_strip_v[-1]
        edge = np.column_stack([shapes.x_strip_u, shapes.x_strip_v])
        return np.concatenate([edge, [[SIDE_BASE, high], [SIDE_BASE, low]]])

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
        shapes = normal_map_shapes(state)
        self.map_line.set_data(shapes.map_u, shapes.map_v)
        for line, a, b in zip(self.sample_lines, shapes.paths_u, shapes.paths_v,
                              strict=True):
            line.set_data(a, b)
        low, high = state.strip_x
        self.band.set_y(low)
        self.band.set_height(high - low)
        self.x_line.set_data(shapes.x_curve_u, state.x)
        self.x_strip.set_xy(self._strip_outline(shapes))
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

    figure = live_figure(FIGSIZE)
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


# The browser-side update mirrors normal_map_state and normal_map_shapes: same grid,
# same samples, same strip, same picture coordinates.
_BOKEH_CALLBACK = """
const mu = mu_slider.value, sigma = sigma_slider.value;
const density = (x) =>
  Math.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * Math.sqrt(2 * Math.PI));
const side_u = (d) => side_base - scale * d;  // x_density_u
const eps = x_density.data.eps;
const x = Array.from(eps, (e) => mu + sigma * e);
const dens = x.map(density);
const u = x.map((v, i) => v >= x_lim[0] && v <= x_lim[1] ? side_u(dens[i]) : NaN);
x_density.data = {eps: eps, x: x, density: dens, u: u};
// The visible piece of the line: eps in eps_lim with x in x_lim.
const low = Math.max(eps_lim[0], (x_lim[0] - mu) / sigma);
const high = Math.min(eps_lim[1], (x_lim[1] - mu) / sigma);
const ends = low <= high ? [low, high] : [NaN, NaN];
map.data = {u: ends, v: ends.map((e) => mu + sigma * e)};
// Array.from, not .map: mapping a Float64Array to arrays would coerce them to NaN.
const sx = Array.from(samples.data.eps, (e) => mu + sigma * e);
samples.data = {eps: samples.data.eps, x: sx, bottom: samples.data.bottom,
                side: samples.data.side};
paths.data = {xs: paths.data.xs, ys: sx.map((v) => [bottom_base, v, v])};
const lo = mu + sigma * strip_eps[0], hi = mu + sigma * strip_eps[1];
const n = draw_points;
const ys = Array.from({length: n}, (_, i) => lo + (hi - lo) * i / (n - 1));
strip.data = {x: ys, u: ys.map((v) => side_u(density(v))),
              base: ys.map(() => side_base)};
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


def _bokeh_picture(state: NormalMapState):
    """The Bokeh figure (one set of axes, equal aspect) and its changing parts."""
    from bokeh.models import (
        BoxAnnotation,
        ColumnDataSource,
        DataRange1d,
        FixedTicker,
        Label,
    )

    shapes = normal_map_shapes(state)
    # The ranges fit the canvas; match_aspect then pads one of them so that a unit
    # across and a unit up have the same length in pixels, at every width.
    corners = ColumnDataSource({"u": list(CANVAS_U), "v": list(CANVAS_V)})
    x_range, y_range = DataRange1d(range_padding=0), DataRange1d(range_padding=0)
    plot = bokeh_figure(
        "the map x = μ + σε and the two densities",
        width=600,
        height=660,
        sizing_mode="scale_width",
        match_aspect=True,
        x_range=x_range,
        y_range=y_range,
        tools="pan,wheel_zoom,reset",
        toolbar_location="below",
        name="normal_map_plot",
    )
    frame = plot.scatter("u", "v", source=corners, alpha=0)
    x_range.renderers = y_range.renderers = [frame]
    plot.xgrid.visible = plot.ygrid.visible = False
    plot.xaxis.ticker = FixedTicker(ticks=list(AXIS_TICKS), minor_ticks=[])
    plot.yaxis.ticker = FixedTicker(ticks=list(AXIS_TICKS), minor_ticks=[])
    plot.xaxis.axis_label, plot.yaxis.axis_label = "ε", "x"

    quiet = {"line_color": "grey", "line_width": 1}
    plot.rect(x=float(np.mean(EPS_LIMITS)), y=float(np.mean(X_LIMITS)),
              width=float(np.ptp(EPS_LIMITS)), height=float(np.ptp(X_LIMITS)),
              fill_alpha=0, **quiet)
    plot.add_layout(BoxAnnotation(left=STRIP[0], right=STRIP[1], bottom=X_LIMITS[0],
                                  top=X_LIMITS[1], fill_alpha=0.15, fill_color=BLUE,
                                  line_alpha=0))
    band = BoxAnnotation(left=EPS_LIMITS[0], right=EPS_LIMITS[1],
                         bottom=state.strip_x[0], top=state.strip_x[1],
                         fill_alpha=0.25, fill_color=ORANGE, line_alpha=0, name="band")
    plot.add_layout(band)
    sources = {
        "map": ColumnDataSource({"u": shapes.map_u, "v": shapes.map_v}, name="map"),
        "paths": ColumnDataSource({"xs": [list(a) for a in shapes.paths_u],
                                   "ys": [list(b) for b in shapes.paths_v]},
                                  name="paths"),
        "x_density": ColumnDataSource({"eps": state.eps, "x": state.x,
                                       "density": state.x_density,
                                       "u": shapes.x_curve_u}, name="x_density"),
        "strip": ColumnDataSource({"x": shapes.x_strip_v, "u": shapes.x_strip_u,
                                   "base": np.full(STRIP_DRAW_POINTS, SIDE_BASE)},
                                  name="x_strip"),
        "samples": ColumnDataSource({"eps": SAMPLE_EPS, "x": state.samples_x,
                                     "bottom": np.full(SAMPLE_COUNT, BOTTOM_BASE),
                                     "side": np.full(SAMPLE_COUNT, SIDE_BASE)},
                                    name="samples"),
    }
    plot.line("u", "v", source=sources["map"], color="black", line_width=2)
    plot.multi_line("xs", "ys", source=sources["paths"], color="grey",
                    line_dash="dashed")

    plot.line(list(EPS_LIMITS), [BOTTOM_BASE] * 2, **quiet)
    plot.line(state.eps, shapes.eps_curve_v, color=BLUE, line_width=2)
    plot.varea(x=shapes.eps_strip_u, y1=np.full(STRIP_DRAW_POINTS, BOTTOM_BASE),
               y2=shapes.eps_strip_v, fill_color=BLUE, fill_alpha=0.4)
    plot.scatter("eps", "bottom", source=sources["samples"], color="black", size=6)

    plot.line([SIDE_BASE] * 2, list(X_LIMITS), **quiet)
    plot.line("u", "x", source=sources["x_density"], color=ORANGE, line_width=2)
    plot.harea(y="x", x1="base", x2="u", source=sources["strip"], fill_color=ORANGE,
               fill_alpha=0.4)
    plot.scatter("side", "x", source=sources["samples"], color="black", size=6)

    segments, labels = _scale_marks()
    plot.multi_line([list(us) for us, _ in segments], [list(vs) for _, vs in segments],
                    color="black", line_width=1)
    align = {"top": "top", "middle": "middle"}
    for u, v, text, ha, va in labels:
        plot.add_layout(Label(x=u, y=v, text=text, text_align=ha,
                              text_baseline=align[va], text_font_size="11px"))
    for u, v, text, ha in _PANEL_LABELS:
        plot.add_layout(Label(x=u, y=v, text=text, text_align=ha,
                              text_baseline="middle", text_font_size="12px"))
    return plot, band, sources


def bokeh_explorer(mu: float = 0.0, sigma: float = 1.0):
    """The same explorer as a responsive Bokeh layout that works in a static page.

    The picture scales with the text column (at most 640 px) and keeps its shape, so on
    a 390-px phone it stays whole and still to scale. The sliders' titles name them for
    screen readers ("μ, the mean"), and a readout states the strip's mass in ε and in
    x, computed in the page the way :func:`normal_map_state` computes it (trapezoid
    rule, 2001 points).
    """
    from bokeh.models import CustomJS

    state = normal_map_state(mu, sigma)
    plot, band, sources = _bokeh_picture(state)
    mu_slider = slider("mu_slider", "μ, the mean", *MU_RANGE, mu, 0.05)
    sigma_slider = slider("sigma_slider", "σ, the standard deviation", *SIGMA_RANGE,
                          sigma, 0.05)
    readout = readout_div(readout_text(state), "strip_readout")
    callback = CustomJS(
        args=dict(
            mu_slider=mu_slider,
            sigma_slider=sigma_slider,
            map=sources["map"],
            x_density=sources["x_density"],
            samples=sources["samples"],
            paths=sources["paths"],
            strip=sources["strip"],
            band=band,
            readout=readout,
            strip_eps=list(STRIP),
            eps_lim=list(EPS_LIMITS),
            x_lim=list(X_LIMITS),
            side_base=SIDE_BASE,
            bottom_base=BOTTOM_BASE,
            scale=DENSITY_SCALE,
            draw_points=STRIP_DRAW_POINTS,
            mass_eps=state.strip_mass_eps,
            points=STRIP_POINTS,
        ),
        code=_BOKEH_CALLBACK,
    )
    mu_slider.js_on_change("value", callback)
    sigma_slider.js_on_change("value", callback)
    return explorer_column(mu_slider, sigma_slider, readout, plot)
