r"""The forward-noising explorer of Chapter 9: :math:`q(x_t\mid x_0)` as t moves from 0
to T.

Two panels: a few test digits noised in one shot,
:math:`x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon`, with the
same fixed :math:`\varepsilon` at every t (so the reader watches one path, not fresh
noise), and the signal and noise scales :math:`\sqrt{\bar\alpha_t}` and
:math:`\sqrt{1-\bar\alpha_t}` over t with markers at the current t. The schedule is the
chapter's (:func:`reparam.diffusion.book_schedule`).

- :func:`noising_state` -> :class:`NoisingState`: everything drawn for one t (pure).
- :func:`readout_text`: the line of numbers printed with the figure.
- :class:`NoisingFigure` + :func:`ipywidgets_explorer`: Jupyter (``make lab``).
- :func:`bokeh_explorer`: the static website; its ``CustomJS`` evaluates the same
  formula in the browser from the shipped :math:`x_0`, :math:`\varepsilon` and
  :math:`\bar\alpha_t`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..data import image_grid
from ._bokeh import bokeh_figure, explorer_column, js_fixed, readout_div, slider
from ._widgets import WidgetExplorer, live_figure

__all__ = [
    "NoisingState",
    "noising_state",
    "readout_text",
    "NoisingFigure",
    "ipywidgets_explorer",
    "bokeh_explorer",
    "DIGITS",
    "NOISE_SEED",
    "GUTTER",
]

DIGITS = (0, 3, 5, 8)  # the first test image of each of these classes is shown
NOISE_SEED = 8
GUTTER = 0.15  # the tiles' gutter grey on the [0, 1] display scale (image_grid's)
FIGURE_SIZE = (6.4, 4.6)


@dataclass(frozen=True)
class NoisingState:
    """Everything the explorer draws for one t; both front ends draw from this."""

    t: int
    T: int
    signal_scale: float  # sqrt(abar_t)
    noise_scale: float  # sqrt(1 - abar_t)
    images: np.ndarray  # (k, 64) noised digits, pixel scale [-1, 1] (not clipped)
    canvas: np.ndarray  # the tiles side by side on the display scale (x + 1) / 2
    curve_t: np.ndarray  # 0..T
    curve_signal: np.ndarray
    curve_noise: np.ndarray


@lru_cache(maxsize=1)
def _fixed_inputs():
    """(alpha_bars with abar_0 = 1 prepended, x0 (k, 64), eps (k, 64)), float64."""
    from ..data import load_scaled_digits
    from ..diffusion import book_schedule

    data = load_scaled_digits()
    labels = data.test_labels.numpy()
    rows = [int(np.flatnonzero(labels == digit)[0]) for digit in DIGITS]
    x0 = data.test_images[rows].double().numpy()
    eps = np.random.default_rng(NOISE_SEED).standard_normal(x0.shape)
    alpha_bars = np.concatenate([[1.0], book_schedule().alpha_bars.numpy()])
    return alpha_bars, x0, eps


def noising_state(t: int) -> NoisingState:
    """The noised digits and the scale curves at step t (0 = the clean digits, up to
    T)."""
    alpha_bars, x0, eps = _fixed_inputs()
    T = len(alpha_bars) - 1
    if isinstance(t, bool) or not isinstance(t, numbers.Integral):
        raise TypeError(f"t must be an integer, got {type(t).__name__} ({t!r})")
    if not 0 <= t <= T:
        raise ValueError(f"t must lie in 0..{T}, got {t}")
    t = int(t)
    signal, noise = math.sqrt(alpha_bars[t]), math.sqrt(1.0 - alpha_bars[t])
    images = signal * x0 + noise * eps
    return NoisingState(
        t=t,
        T=T,
        signal_scale=signal,
        noise_scale=noise,
        images=images,
        canvas=image_grid((images + 1.0) / 2.0, rows=1, gutter=GUTTER),
        curve_t=np.arange(T + 1),
        curve_signal=np.sqrt(alpha_bars),
        curve_noise=np.sqrt(1.0 - alpha_bars),
    )


def readout_text(state: NoisingState) -> str:
    """The readout under the website's slider (the page's JavaScript writes it too)."""
    return (
        f"t = {state.t}: signal scale √ᾱₜ = {js_fixed(state.signal_scale, 4)}, "
        f"noise scale √(1−ᾱₜ) = {js_fixed(state.noise_scale, 4)}"
    )


class NoisingFigure:
    """A matplotlib figure whose artists :meth:`update` changes in place."""

    def __init__(self, t: int = 50, figure=None):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if figure is None:
            figure = Figure(figsize=FIGURE_SIZE)
            FigureCanvasAgg(figure)
        self.figure = figure
        state = noising_state(t)
        self.ax_images, self.ax_curves = figure.subplots(
            2, 1, gridspec_kw={"height_ratios": (1.1, 2)}
        )
        self.image = self.ax_images.imshow(state.canvas, cmap="gray_r", vmin=0, vmax=1)
        self.ax_images.axis("off")
        self.ax_curves.plot(state.curve_t, state.curve_signal, color="C0",
                            label=r"signal $\sqrt{\bar\alpha_t}$")
        self.ax_curves.plot(state.curve_t, state.curve_noise, color="C1",
                            label=r"noise $\sqrt{1-\bar\alpha_t}$")
        (self.markers,) = self.ax_curves.plot(
            [t, t], [state.signal_scale, state.noise_scale], "o", color="black"
        )
        self.cursor = self.ax_curves.axvline(t, color="grey", lw=1)
        self.ax_curves.set_xlabel("t")
        self.ax_curves.set_ylabel("scale")
        self.ax_curves.legend(loc="center right")
        self.title = self.ax_images.set_title(readout_text(state), fontsize="small")
        figure.tight_layout()

    def update(self, t: int) -> NoisingState:
        """The slider callback: move every artist, then ask the canvas for a redraw."""
        state = self.move_artists(t)
        self.figure.canvas.draw_idle()
        return state

    def move_artists(self, t: int) -> NoisingState:
        """Change the existing artists' data to step t; draws nothing."""
        state = noising_state(t)
        self.image.set_data(state.canvas)
        self.markers.set_data([state.t, state.t],
                              [state.signal_scale, state.noise_scale])
        self.cursor.set_xdata([state.t, state.t])
        self.title.set_text(readout_text(state))
        return state


def ipywidgets_explorer(t: int = 50) -> WidgetExplorer:
    """An IntSlider for t driving a live (ipympl) :class:`NoisingFigure`.

    Needs a Jupyter front end (``make lab``).
    """
    import ipywidgets as widgets

    figure = live_figure(FIGURE_SIZE)
    drawing = NoisingFigure(t, figure=figure)
    control = widgets.IntSlider(value=t, min=0, max=noising_state(0).T, step=1,
                                description="t, the step")

    def update(t: int) -> NoisingState:
        return drawing.update(t)

    control.observe(lambda change: update(change["new"]), names="value")
    return WidgetExplorer(widgets.VBox([control, figure.canvas]), update, figure)


# Mirrors noising_state and readout_text: same x0, eps and abar; gutters keep their
# grey.
_BOKEH_CALLBACK = """
const t = t_slider.value;
const ab = alpha_bars[t];
const s = Math.sqrt(ab), n = Math.sqrt(1 - ab);
// Rewrite the shipped image (flat, row-major, already upside down) in place.
const img = images.data.image[0];
for (let k = 0; k < img.length; k++) {
  img[k] = mask[k] ? gutter : (s * x0[k] + n * eps[k] + 1) / 2;
}
images.change.emit();
markers.data = {t: [t, t], y: [s, n]};
cursor.location = t;
readout.text = "t = " + t + ": signal scale √ᾱₜ = " + s.toFixed(4) +
  ", noise scale √(1−ᾱₜ) = " + n.toFixed(4);
"""


def bokeh_explorer(t: int = 50):
    """The explorer as a Bokeh layout whose slider works in a static page (no
    kernel), built from the shared helpers of :mod:`._bokeh`."""
    from bokeh.models import ColumnDataSource, CustomJS, Legend, LinearColorMapper, Span
    from bokeh.palettes import Greys256

    alpha_bars, x0, eps = _fixed_inputs()
    state = noising_state(t)
    # Bokeh draws an image's first row at the bottom: ship every canvas upside down.
    x0_canvas = np.flipud(image_grid(x0, rows=1, gutter=0.0))
    eps_canvas = np.flipud(image_grid(eps, rows=1, gutter=0.0))
    mask = np.flipud(image_grid(np.zeros_like(x0), rows=1, gutter=1.0)).astype(bool)
    height, width = x0_canvas.shape
    images = ColumnDataSource(
        {"image": [np.ascontiguousarray(np.flipud(state.canvas))], "x": [0], "y": [0],
         "dw": [width], "dh": [height]},
        name="images",
    )
    p_images = bokeh_figure("digits noised by q(xₜ | x₀), the same ε at every t",
                            height=150, x_range=(0, width), y_range=(0, height),
                            tools="", toolbar_location=None)
    mapper = LinearColorMapper(palette=list(reversed(Greys256)), low=0.0, high=1.0)
    p_images.image(image="image", x="x", y="y", dw="dw", dh="dh", source=images,
                   color_mapper=mapper)
    p_images.axis.visible = False
    p_images.grid.visible = False

    p_curves = bokeh_figure("signal and noise scales", height=260,
                            x_range=(0, state.T), y_range=(0, 1.05), tools="",
                            toolbar_location=None)
    curves = ColumnDataSource(
        {"t": state.curve_t, "signal": state.curve_signal, "noise": state.curve_noise}
    )
    signal_line = p_curves.line("t", "signal", source=curves, color="#1f77b4",
                                line_width=2)
    noise_line = p_curves.line("t", "noise", source=curves, color="#ff7f0e",
                               line_width=2)
    markers = ColumnDataSource(
        {"t": [state.t, state.t], "y": [state.signal_scale, state.noise_scale]},
        name="markers",
    )
    p_curves.scatter("t", "y", source=markers, color="black", size=9)
    cursor = Span(location=state.t, dimension="height", line_color="grey",
                  name="cursor")
    p_curves.add_layout(cursor)
    p_curves.add_layout(Legend(items=[("√ᾱₜ (signal)", [signal_line]),
                                      ("√(1−ᾱₜ) (noise)", [noise_line])],
                               location="center_right"))
    p_curves.xaxis.axis_label = "t"
    p_curves.yaxis.axis_label = "scale"

    t_slider = slider("t_slider", "t, the diffusion step", 0, state.T, state.t, 1)
    readout = readout_div(readout_text(state), "readout")
    callback = CustomJS(
        args=dict(
            t_slider=t_slider,
            alpha_bars=alpha_bars.tolist(),
            x0=x0_canvas.ravel().tolist(),
            eps=eps_canvas.ravel().tolist(),
            mask=mask.ravel().astype(int).tolist(),
            gutter=GUTTER,
            images=images,
            markers=markers,
            cursor=cursor,
            readout=readout,
        ),
        code=_BOKEH_CALLBACK,
    )
    t_slider.js_on_change("value", callback)
    return explorer_column(t_slider, readout, p_images, p_curves)
