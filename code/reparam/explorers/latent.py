r"""The latent-space explorer of the VAE chapter: move a point z, see the decoded digit.

The decoder of :class:`reparam.vae.VAE` is a small MLP,

.. math::

    p(x \mid z) = \mathrm{Bernoulli}\bigl(\mathrm{sigmoid}(W_2 \tanh(W_1 z + b_1) +
    b_2)\bigr),

so the picture of :math:`\mathbb E[x \mid z]` (8 x 8 pixel probabilities) can be
computed in the browser from the trained weights, shipped in the page. The reader moves
:math:`z` with two sliders or by tapping the latent map: the encoder means of the
digits the caller passes, coloured by label, under a ``title`` that names those digits,
with each class's number at its centre (or, when two centres are close, pushed apart by
:func:`spread_labels` and joined to its centre by a line). The point is marked on the
map. The latent space must be two-dimensional.

The readout is the mean pixel probability ("ink") of the decoded image, computed the
same way in Python (:func:`latent_state`) and in JavaScript.

- :func:`ipywidgets_explorer`: for Jupyter (``make lab``), sliders move the existing
  cross and image in place.
- :func:`bokeh_explorer`: for the static website, built from :mod:`._bokeh`; its
  ``CustomJS`` runs the decoder in the browser, with no kernel and no network.

Usage in the VAE chapter, with a model trained with ``latent_dim=2``, mapping the
validation digits::

    from IPython.display import HTML
    from myst_nb import glue
    from reparam.explorers import bokeh_html
    from reparam.explorers.latent import bokeh_explorer, decoder_weights

    weights = decoder_weights(model)
    means = model.encode(data.validation_images)[0].detach().numpy()
    layout = bokeh_explorer(weights, means, data.validation_labels.numpy(),
                            title="latent space: validation digits")
    glue("ch7_latent", HTML(bokeh_html(layout)), display=False)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import as_real_array, as_real_scalar
from ..data import IMAGE_PIXELS, IMAGE_SIDE
from ._bokeh import bokeh_figure, explorer_column, js_fixed, readout_div, slider
from ._widgets import WidgetExplorer, live_figure

__all__ = [
    "DecoderWeights",
    "LatentState",
    "decoder_weights",
    "decode",
    "latent_state",
    "readout_text",
    "class_centres",
    "spread_labels",
    "ipywidgets_explorer",
    "bokeh_explorer",
    "Z_RANGE",
    "Z_STEP",
    "MAP_TITLE",
]

Z_RANGE = (-3.0, 3.0)
Z_STEP = 0.05
MAP_TITLE = "latent space"  # the default title; name the digits mapped, if any


def _check_title(title) -> str:
    if not isinstance(title, str):
        raise TypeError(f"title must be a string, got {type(title).__name__}")
    if not title.strip():
        raise ValueError("title must not be blank")
    return title


@dataclass(frozen=True)
class DecoderWeights:
    """The decoder's two linear layers as float64 arrays: hidden = tanh(w1 z + b1)."""

    w1: np.ndarray  # (hidden, 2)
    b1: np.ndarray  # (hidden,)
    w2: np.ndarray  # (pixels, hidden)
    b2: np.ndarray  # (pixels,)


def decoder_weights(model) -> DecoderWeights:
    """Copy ``model.decoder``'s weights (Linear, Tanh, Linear; a 2-D latent space)."""
    import torch.nn as nn

    layers = list(getattr(model, "decoder", []))
    kinds = [type(layer) for layer in layers]
    if kinds != [nn.Linear, nn.Tanh, nn.Linear]:
        raise TypeError(
            f"model.decoder must be Linear, Tanh, Linear; got "
            f"{[k.__name__ for k in kinds]}"
        )
    first, _, last = layers
    if first.in_features != 2:
        raise ValueError(
            f"the explorer needs a 2-D latent space, got latent_dim {first.in_features}"
        )
    if last.out_features != IMAGE_PIXELS:
        raise ValueError(
            f"the decoder must output {IMAGE_PIXELS} pixels, got {last.out_features}"
        )

    def numpy(tensor):
        return tensor.detach().cpu().double().numpy().copy()

    return DecoderWeights(
        numpy(first.weight), numpy(first.bias), numpy(last.weight), numpy(last.bias)
    )


def _check_weights(weights) -> DecoderWeights:
    if not isinstance(weights, DecoderWeights):
        raise TypeError(
            f"weights must be DecoderWeights (see decoder_weights), got "
            f"{type(weights).__name__}"
        )
    return weights


def decode(weights: DecoderWeights, z) -> np.ndarray:
    """Pixel probabilities sigmoid(w2 tanh(w1 z + b1) + b2), as an 8 x 8 array.

    The sums run in index order, the order the page's JavaScript uses.
    """
    weights = _check_weights(weights)
    z = as_real_array(z, "z")
    if z.shape != (2,):
        raise ValueError(f"z must be two finite numbers, got {z!r}")
    hidden = np.tanh(weights.b1 + weights.w1[:, 0] * z[0] + weights.w1[:, 1] * z[1])
    logits = weights.b2.copy()
    for j in range(len(hidden)):
        logits += weights.w2[:, j] * hidden[j]
    return (1.0 / (1.0 + np.exp(-logits))).reshape(IMAGE_SIDE, IMAGE_SIDE)


@dataclass(frozen=True)
class LatentState:
    """The point z, its decoded image (row 0 at the top) and the readout quantity."""

    z: tuple[float, float]
    image: np.ndarray
    mean_ink: float


def latent_state(weights: DecoderWeights, z1: float, z2: float) -> LatentState:
    """Everything the explorer draws for the point (z1, z2).

    ``mean_ink`` is the mean of the 64 pixel probabilities, summed in index order as
    the page sums them: the expected fraction of inked pixels of a digit drawn from
    :math:`p(x \\mid z)`.
    """
    z = (as_real_scalar(z1, "z1"), as_real_scalar(z2, "z2"))
    image = decode(weights, z)
    total = 0.0
    for probability in image.ravel():
        total += float(probability)
    return LatentState(z, image, total / image.size)


def readout_text(state: LatentState) -> str:
    """The readout under the figure (the page's JavaScript writes the same text)."""
    return (
        f"z = ({js_fixed(state.z[0], 2)}, {js_fixed(state.z[1], 2)}); mean pixel "
        f"probability {js_fixed(state.mean_ink, 4)}"
    )


def _check_points(points, labels) -> tuple[np.ndarray, np.ndarray]:
    if points is None:
        return np.zeros((0, 2)), np.zeros(0, dtype=int)
    points = as_real_array(points, "points")
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2), got {points.shape}")
    labels = np.zeros(len(points), dtype=int) if labels is None else np.asarray(labels)
    if labels.shape != (len(points),):
        raise ValueError(f"labels must have shape ({len(points)},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    return points, labels.astype(int)


def class_centres(points, labels) -> tuple[np.ndarray, np.ndarray]:
    """(classes, centres): each label present, in increasing order, and the mean of its
    points; both front ends write the class's number there, as a legend in place."""
    points, labels = _check_points(points, labels)
    classes = np.unique(labels)
    centres = np.array([points[labels == c].mean(0) for c in classes]).reshape(-1, 2)
    return classes, centres


LABEL_SPACING = 0.5  # latent units between class numbers: 20 px circles stay apart


def spread_labels(centres, min_distance: float = LABEL_SPACING) -> np.ndarray:
    """Where to write each class's number: at its centre, except that numbers closer
    than ``min_distance`` to each other are pushed apart, pairwise along the line
    joining them, until no two are closer (a circled number then covers no other).

    Labels with room stay exactly on their centres; the result has the shape of
    ``centres``. Deterministic: the same centres give the same positions.
    """
    positions = as_real_array(centres, "centres").reshape(-1, 2)
    min_distance = as_real_scalar(min_distance, "min_distance")
    if min_distance <= 0:
        raise ValueError(f"min_distance must be > 0, got {min_distance}")
    target = min_distance * (1 + 1e-6)  # a hair more, so that the loop ends
    for _ in range(1000):
        moved = False
        for i in range(len(positions)):
            for j in range(i + 1, len(positions)):
                delta = positions[j] - positions[i]
                distance = float(np.hypot(*delta))
                if distance >= min_distance:
                    continue
                angle = float(i + j)  # any fixed direction for coincident labels
                direction = (delta / distance if distance > 0
                             else np.array([np.cos(angle), np.sin(angle)]))
                push = (target - distance) / 2 * direction
                positions[i] -= push
                positions[j] += push
                moved = True
        if not moved:
            return positions
    raise RuntimeError("could not spread the labels apart")  # pragma: no cover


CLASS_COLOURS = (  # matplotlib's tab10 = Bokeh's Category10[10]
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)


def ipywidgets_explorer(
    weights: DecoderWeights,
    points=None,
    labels=None,
    z: tuple[float, float] = (0, 0),
    *,
    title: str = MAP_TITLE,
) -> WidgetExplorer:
    """Two sliders driving a live matplotlib figure (latent map + decoded digit).

    ``update(z1, z2)`` moves the cross and the image in place and returns the
    :class:`LatentState` drawn. ``title`` heads the map: name the digits whose encoder
    means ``points`` are. Needs ``%matplotlib widget`` (``make lab``).
    """
    import ipywidgets as widgets

    title = _check_title(title)
    points, labels = _check_points(points, labels)
    state = latent_state(weights, *z)
    figure = live_figure((4.0, 7.0))
    figure.set_layout_engine("constrained")
    ax_map, ax_digit = figure.subplots(2, 1)
    colours = [CLASS_COLOURS[label % 10] for label in labels]
    ax_map.scatter(points[:, 0], points[:, 1], c=colours, s=8)
    classes, centres = class_centres(points, labels)
    for label, centre, place in zip(classes, centres, spread_labels(centres),
                                    strict=True):
        if not np.array_equal(place, centre):  # a number moved off its centre
            ax_map.plot(*np.transpose([centre, place]), color="black", lw=0.8)
        ax_map.annotate(str(label), place, ha="center", va="center", weight="bold",
                        bbox=dict(boxstyle="circle,pad=0.2", fc="white", alpha=0.8))
    (marker,) = ax_map.plot([state.z[0]], [state.z[1]], "k+", ms=16, mew=2)
    ax_map.set_xlim(*Z_RANGE)
    ax_map.set_ylim(*Z_RANGE)
    ax_map.set_title(title)
    ax_map.set_xlabel("$z_1$")
    ax_map.set_ylabel("$z_2$")
    picture = ax_digit.imshow(state.image, cmap="gray_r", vmin=0, vmax=1)
    ax_digit.set_axis_off()
    sliders = [
        widgets.FloatSlider(value=value, min=Z_RANGE[0], max=Z_RANGE[1], step=Z_STEP,
                            description=name)
        for name, value in (("z₁", state.z[0]), ("z₂", state.z[1]))
    ]
    readout = widgets.HTML(readout_text(state))

    def update(z1: float, z2: float) -> LatentState:
        new = latent_state(weights, z1, z2)
        marker.set_data([new.z[0]], [new.z[1]])
        picture.set_data(new.image)
        readout.value = readout_text(new)
        figure.canvas.draw_idle()
        return new

    def on_change(_change):
        update(sliders[0].value, sliders[1].value)

    for control in sliders:
        control.observe(on_change, names="value")
    box = widgets.VBox([widgets.HBox(sliders), figure.canvas, readout])
    return WidgetExplorer(box, update, figure)


_JS_DECODE = """
const z1 = z1_slider.value, z2 = z2_slider.value;
const H = b1.length, P = b2.length, S = side;
// w1 (H x 2) and w2 (P x H) arrive as flat row-major typed arrays; every sum is done
// in float64 (plain Arrays), in the index order of the Python decode.
const hidden = new Array(H);
for (let j = 0; j < H; j++) {
  hidden[j] = Math.tanh(b1[j] + w1[2 * j] * z1 + w1[2 * j + 1] * z2);
}
const logits = Array.from(b2);
for (let j = 0; j < H; j++) {
  for (let p = 0; p < P; p++) { logits[p] += w2[p * H + j] * hidden[j]; }
}
const probs = logits.map((v) => 1 / (1 + Math.exp(-v)));
// Row 0 of the image is its top; Bokeh's image glyph puts row 0 at the bottom.
const flipped = [];
for (let r = S - 1; r >= 0; r--) {
  for (let c = 0; c < S; c++) { flipped.push(probs[r * S + c]); }
}
// A new 2-D array of the same kind Bokeh sent (an ndarray with a shape).
const previous = digit.data.image[0];
// The mean in index order, as latent_state sums it.
let ink = 0;
for (let p = 0; p < P; p++) { ink += probs[p]; }
ink /= P;
digit.data = {image: [new previous.constructor(flipped, [S, S])]};
point.data = {z1: [z1], z2: [z2]};
readout.text = "z = (" + z1.toFixed(2) + ", " + z2.toFixed(2) +
  "); mean pixel probability " + ink.toFixed(4);
"""

_JS_TAP = """
const clamp = (v) => Math.min(Math.max(Math.round(v / step) * step, lo), hi);
z1_slider.value = clamp(cb_obj.x);
z2_slider.value = clamp(cb_obj.y);
"""


def _page_array(values: np.ndarray) -> np.ndarray:
    """The array as shipped in the page: float32 when that loses nothing.

    A decoder trained in float32 has float32 weights, so they travel as 4 bytes each
    (Bokeh sends arrays as binary, not as decimal text) and the browser still sees
    exactly the numbers :func:`decode` uses; other weights travel as float64.
    """
    single = values.astype(np.float32)
    return single if np.array_equal(single, values) else values


def bokeh_explorer(
    weights: DecoderWeights,
    points=None,
    labels=None,
    z: tuple[float, float] = (0.0, 0.0),
    *,
    title: str = MAP_TITLE,
):
    """The explorer as a responsive Bokeh layout whose controls work offline.

    Sliders named for screen readers ("z₁, the first latent coordinate"), the readout,
    the latent map under ``title`` (tap to move the cross; each class's number at its
    centre) and the decoded image, in one column at most 640 px wide. Name in ``title``
    the digits whose encoder means ``points`` are, e.g. "latent space: validation
    digits".
    """
    from bokeh.events import Tap
    from bokeh.models import ColumnDataSource, CustomJS, LinearColorMapper
    from bokeh.palettes import Greys256

    weights = _check_weights(weights)
    title = _check_title(title)
    points, labels = _check_points(points, labels)
    state = latent_state(weights, *z)
    cloud = ColumnDataSource({
        "z1": points[:, 0],
        "z2": points[:, 1],
        "color": [CLASS_COLOURS[label % 10] for label in labels],
    })
    classes, centres = class_centres(points, labels)
    places = spread_labels(centres)
    centre_source = ColumnDataSource({
        "z1": places[:, 0],
        "z2": places[:, 1],
        "centre_z1": centres[:, 0],
        "centre_z2": centres[:, 1],
        "label": [str(c) for c in classes],
        "color": [CLASS_COLOURS[c % 10] for c in classes],
    })
    point = ColumnDataSource(
        {"z1": [state.z[0]], "z2": [state.z[1]]}, name="latent_point"
    )
    digit = ColumnDataSource({"image": [state.image[::-1].copy()]}, name="latent_digit")
    latent_map = bokeh_figure(
        title, height=320, x_range=Z_RANGE, y_range=Z_RANGE,
        tools="tap,reset", x_axis_label="z₁", y_axis_label="z₂",
    )
    latent_map.scatter("z1", "z2", source=cloud, color="color", size=4, alpha=0.6)
    latent_map.segment("centre_z1", "centre_z2", "z1", "z2", source=centre_source,
                       line_color="black", line_width=1)  # a moved number to its centre
    latent_map.scatter("z1", "z2", source=centre_source, size=20, fill_color="white",
                       fill_alpha=0.85, line_color="color", line_width=2)
    latent_map.text("z1", "z2", text="label", source=centre_source,
                    text_align="center", text_baseline="middle",
                    text_font_style="bold", text_font_size="12px")
    latent_map.scatter(
        "z1", "z2", source=point, marker="cross", size=22, line_width=3, color="black"
    )
    picture = bokeh_figure(
        "decoded digit at the cross", height=260, width=260, sizing_mode="fixed",
        x_range=(0, IMAGE_SIDE), y_range=(0, IMAGE_SIDE), tools="",
        toolbar_location=None,
    )
    # Greys256 runs from black to white; reversed, ink is dark on white paper.
    ink = LinearColorMapper(palette=list(reversed(Greys256)), low=0.0, high=1.0)
    picture.image(
        image="image", source=digit, x=0, y=0, dw=IMAGE_SIDE, dh=IMAGE_SIDE,
        color_mapper=ink, level="image",
    )
    picture.axis.visible = False
    z1_slider = slider("z1_slider", "z₁, the first latent coordinate", *Z_RANGE,
                       state.z[0], Z_STEP)
    z2_slider = slider("z2_slider", "z₂, the second latent coordinate", *Z_RANGE,
                       state.z[1], Z_STEP)
    for control in (z1_slider, z2_slider):
        control.format = "0.00"
    readout = readout_div(readout_text(state), "latent_readout")
    decode_js = CustomJS(
        args=dict(
            z1_slider=z1_slider,
            z2_slider=z2_slider,
            w1=_page_array(weights.w1),
            b1=_page_array(weights.b1),
            w2=_page_array(weights.w2),
            b2=_page_array(weights.b2),
            side=IMAGE_SIDE,
            digit=digit,
            point=point,
            readout=readout,
        ),
        code=_JS_DECODE,
    )
    z1_slider.js_on_change("value", decode_js)
    z2_slider.js_on_change("value", decode_js)
    latent_map.js_on_event(
        Tap,
        CustomJS(
            args=dict(z1_slider=z1_slider, z2_slider=z2_slider, lo=Z_RANGE[0],
                      hi=Z_RANGE[1], step=Z_STEP),
            code=_JS_TAP,
        ),
    )
    return explorer_column(z1_slider, z2_slider, readout, latent_map, picture)
