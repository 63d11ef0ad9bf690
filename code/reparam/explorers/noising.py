r"""The forward-noising explorer of Chapter 9: :math:`q(x_t\mid x_0)` as t moves from 0
to T.

Two panels: a few test digits noised in one shot,
:math:`x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon`, with the
SAME fixed :math:`\varepsilon` at every t (so the reader watches one path, not fresh
noise), and the signal and noise scales :math:`\sqrt{\bar\alpha_t}` and
:math:`\sqrt{1-\bar\alpha_t}` over t with a marker at the current t. The schedule is the
chapter's (:func:`reparam.diffusion.book_schedule`).

- :func:`noising_state`: everything drawn for one t (pure, tested).
- :class:`MatplotlibNoising` + :func:`ipywidgets_explorer`: Jupyter (``make lab``).
- :func:`bokeh_explorer`: the static website; its ``CustomJS`` evaluates the same
  formula in the browser from the shipped :math:`x_0`, :math:`\varepsilon` and
  :math:`\bar\alpha_t`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._bokeh import bokeh_html

__all__ = [
    "NoisingState",
    "noising_state",
    "readout_text",
    "MatplotlibNoising",
    "ipywidgets_explorer",
    "bokeh_explorer",
    "bokeh_html",
    "DIGITS",
    "NOISE_SEED",
]

DIGITS = (0, 3, 5, 8)  # the first test image of each of these classes is shown
NOISE_SEED = 8
SIDE = 8
GUTTER = 0.15  # the tile gutters' grey level on the [0, 1] display scale


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
    readout: str


@lru_cache(maxsize=1)
def _fixed_inputs():
    """(schedule, x0 (k, 64) float64, eps (k, 64) float64): loaded once."""
    import torch

    from ..data import load_scaled_digits
    from ..diffusion import book_schedule

    data = load_scaled_digits()
    rows = [
        int(np.flatnonzero(data.test_labels.numpy() == digit)[0]) for digit in DIGITS
    ]
    x0 = data.test_images[rows].to(torch.float64).numpy()
    eps = np.random.default_rng(NOISE_SEED).standard_normal(x0.shape)
    return book_schedule(), x0, eps


def _scales(alpha_bar: float) -> tuple[float, float]:
    return math.sqrt(alpha_bar), math.sqrt(1.0 - alpha_bar)


def readout_text(t: int, signal_scale: float) -> str:
    """The numeric readout; the browser builds the same string with ``toFixed(4)``."""
    return f"t = {t}: √ᾱ_t = {signal_scale:.4f}"


def _tiles(values: np.ndarray, fill: float) -> np.ndarray:
    """(k, 64) images side by side in one (8, 9k - 1) array, gutters set to ``fill``."""
    k = values.shape[0]
    canvas = np.full((SIDE, k * (SIDE + 1) - 1), fill, dtype=float)
    for i, image in enumerate(values):
        canvas[:, i * (SIDE + 1) : i * (SIDE + 1) + SIDE] = image.reshape(SIDE, SIDE)
    return canvas


def _gutter_mask(k: int) -> np.ndarray:
    return _tiles(np.zeros((k, SIDE * SIDE)), 1.0).astype(bool)


def noising_state(t: int) -> NoisingState:
    """The noised digits and the scale curves at step t (0 = the clean digits, up to
    T)."""
    schedule, x0, eps = _fixed_inputs()
    T = schedule.T
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
        raise TypeError(f"t must be an integer, got {type(t).__name__} ({t!r})")
    if not 0 <= t <= T:
        raise ValueError(f"t must lie in 0..{T}, got {t}")
    t = int(t)
    alpha_bars = np.concatenate([[1.0], schedule.alpha_bars.numpy()])  # abar_0 = 1
    signal, noise = _scales(float(alpha_bars[t]))
    images = signal * x0 + noise * eps
    canvas = _tiles((images + 1.0) / 2.0, GUTTER)
    return NoisingState(
        t=t,
        T=T,
        signal_scale=signal,
        noise_scale=noise,
        images=images,
        canvas=canvas,
        curve_t=np.arange(T + 1),
        curve_signal=np.sqrt(alpha_bars),
        curve_noise=np.sqrt(1.0 - alpha_bars),
        readout=readout_text(t, signal),
    )


class MatplotlibNoising:
    """A matplotlib figure whose artists :meth:`update` changes in place (no new
    figure)."""

    def __init__(self, t: int = 50, figure=None):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        from ..style import MAX_WIDTH_IN

        if figure is None:
            figure = Figure(figsize=(MAX_WIDTH_IN, 4.6))
            FigureCanvasAgg(figure)
        self.figure = figure
        state = noising_state(t)
        self.ax_images, self.ax_curves = figure.subplots(
            2, 1, gridspec_kw={"height_ratios": (1.1, 2)}
        )
        self.image = self.ax_images.imshow(state.canvas, cmap="gray_r", vmin=0, vmax=1)
        self.ax_images.axis("off")
        self.ax_curves.plot(
            state.curve_t,
            state.curve_signal,
            color="C0",
            label=r"signal $\sqrt{\bar\alpha_t}$",
        )
        self.ax_curves.plot(
            state.curve_t,
            state.curve_noise,
            color="C1",
            label=r"noise $\sqrt{1-\bar\alpha_t}$",
        )
        (self.markers,) = self.ax_curves.plot(
            [t, t], [state.signal_scale, state.noise_scale], "o", color="black"
        )
        self.cursor = self.ax_curves.axvline(t, color="grey", lw=1)
        self.ax_curves.set_xlabel("t")
        self.ax_curves.set_ylabel("scale")
        self.ax_curves.legend(loc="center right")
        self.title = self.ax_images.set_title(state.readout)
        figure.tight_layout()

    def update(self, t: int) -> NoisingState:
        """The slider callback: new pixel data, markers and readout; then a redraw
        request."""
        state = noising_state(t)
        self.image.set_data(state.canvas)
        self.markers.set_data([t, t], [state.signal_scale, state.noise_scale])
        self.cursor.set_xdata([t, t])
        self.title.set_text(state.readout)
        self.figure.canvas.draw_idle()
        return state


def ipywidgets_explorer(t: int = 50):
    """An IntSlider for t driving a live (ipympl) :class:`MatplotlibNoising`.

    Needs a Jupyter front end (``make lab``); returns ``(widget, explorer)``.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from ..style import MAX_WIDTH_IN

    with plt.ioff():
        figure = plt.figure(figsize=(MAX_WIDTH_IN, 4.6))
    explorer = MatplotlibNoising(t, figure=figure)
    slider = widgets.IntSlider(
        value=t,
        min=0,
        max=explorer_T(),
        step=1,
        description="t, the step",
        continuous_update=True,
    )
    slider.observe(lambda change: explorer.update(change["new"]), names="value")
    return widgets.VBox([slider, figure.canvas]), explorer


def explorer_T() -> int:
    """T of the explorer's schedule."""
    return _fixed_inputs()[0].T


# Mirrors noising_state: same x0, eps and abar; gutters keep their grey.
_BOKEH_CALLBACK = """
const t = slider.value;
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
readout.text = `t = ${t}: √ᾱ_t = ${s.toFixed(4)}`;
"""


def bokeh_explorer(t: int = 50):
    """The explorer as a Bokeh layout whose slider works in a static page (no
    kernel)."""
    from bokeh.layouts import column
    from bokeh.models import (
        ColumnDataSource,
        CustomJS,
        Div,
        Legend,
        LinearColorMapper,
        Slider,
        Span,
    )
    from bokeh.palettes import Greys256
    from bokeh.plotting import figure

    schedule, x0, eps = _fixed_inputs()
    state = noising_state(t)
    k = x0.shape[0]
    # Bokeh draws an image's first row at the bottom: ship every canvas upside down.
    x0_canvas = np.flipud(_tiles(x0, 0.0))
    eps_canvas = np.flipud(_tiles(eps, 0.0))
    mask = np.flipud(_gutter_mask(k))
    width, height = x0_canvas.shape[1], SIDE
    images = ColumnDataSource(
        {
            "image": [np.ascontiguousarray(np.flipud(state.canvas))],
            "x": [0],
            "y": [0],
            "dw": [width],
            "dh": [height],
        },
        name="images",
    )
    mapper = LinearColorMapper(palette=list(reversed(Greys256)), low=0.0, high=1.0)
    p_images = figure(
        height=150,
        sizing_mode="stretch_width",
        x_range=(0, width),
        y_range=(0, height),
        tools="",
        toolbar_location=None,
        title="digits noised by q(x_t | x_0), same ε at every t",
    )
    p_images.image(
        image="image",
        x="x",
        y="y",
        dw="dw",
        dh="dh",
        source=images,
        color_mapper=mapper,
    )
    p_images.axis.visible = False
    p_images.grid.visible = False

    p_curves = figure(
        height=260,
        sizing_mode="stretch_width",
        x_range=(0, state.T),
        y_range=(0, 1.05),
        tools="",
        toolbar_location=None,
        title="signal and noise scales",
    )
    curves = ColumnDataSource(
        {"t": state.curve_t, "signal": state.curve_signal, "noise": state.curve_noise}
    )
    signal_line = p_curves.line(
        "t", "signal", source=curves, color="#1f77b4", line_width=2
    )
    noise_line = p_curves.line(
        "t", "noise", source=curves, color="#ff7f0e", line_width=2
    )
    markers = ColumnDataSource(
        {"t": [t, t], "y": [state.signal_scale, state.noise_scale]}, name="markers"
    )
    p_curves.scatter("t", "y", source=markers, color="black", size=9)
    cursor = Span(location=t, dimension="height", line_color="grey", name="cursor")
    p_curves.add_layout(cursor)
    p_curves.add_layout(
        Legend(
            items=[
                ("√ᾱ_t (signal)", [signal_line]),
                ("√(1−ᾱ_t) (noise)", [noise_line]),
            ],
            location="center_right",
        )
    )
    p_curves.xaxis.axis_label = "t"
    p_curves.yaxis.axis_label = "scale"

    slider = Slider(
        start=0,
        end=state.T,
        value=t,
        step=1,
        title="t, the diffusion step",
        name="t_slider",
        sizing_mode="stretch_width",
    )
    readout = Div(text=state.readout, name="readout")
    alpha_bars = [1.0] + schedule.alpha_bars.tolist()
    callback = CustomJS(
        args=dict(
            slider=slider,
            alpha_bars=alpha_bars,
            x0=x0_canvas.ravel().tolist(),
            eps=eps_canvas.ravel().tolist(),
            mask=mask.ravel().astype(int).tolist(),
            gutter=GUTTER,
            images=images,
            markers=markers,
            cursor=cursor,
            readout=readout,
            dw=width,
            dh=height,
        ),
        code=_BOKEH_CALLBACK,
    )
    slider.js_on_change("value", callback)
    return column(
        slider, readout, p_images, p_curves, sizing_mode="stretch_width", max_width=640
    )
