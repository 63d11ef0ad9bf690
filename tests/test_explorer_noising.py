"""Chapter 9's explorer (noising): its state, its readout, its two front ends.

The state is checked against reparam.diffusion.q_sample with the explorer's fixed noise
(an independent route to x_t), the readout against the state, the ipywidgets front end
for redrawing in place, and the Bokeh front end in headless Chromium: after moving the
slider with the keyboard, the page's readout and every pixel equal Python's.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from explorer_pages import assert_clean, model_value, open_explorer, press

from reparam import diffusion
from reparam.data import image_grid, load_scaled_digits
from reparam.explorers import bokeh_html
from reparam.explorers import noising as nz

SCHEDULE = diffusion.book_schedule()


def _inputs():
    """The shown digits and the fixed noise, found independently of the module."""
    data = load_scaled_digits()
    labels = data.test_labels.tolist()
    rows = [labels.index(digit) for digit in nz.DIGITS]
    x0 = data.test_images[rows].double()
    eps = torch.tensor(np.random.default_rng(nz.NOISE_SEED).standard_normal((4, 64)))
    return x0, eps


# --- the state ----------------------------------------------------------------------


@pytest.mark.parametrize("t", [1, 2, 37, 100, 200])
def test_state_images_are_q_sample_with_the_fixed_noise(t):
    x0, eps = _inputs()
    state = nz.noising_state(t)
    expected = diffusion.q_sample(x0, eps, t, SCHEDULE)
    np.testing.assert_allclose(state.images, expected.numpy(), rtol=0, atol=1e-12)
    abar = float(SCHEDULE.alpha_bars[t - 1])
    assert state.signal_scale == pytest.approx(math.sqrt(abar), rel=1e-14)
    assert state.noise_scale == pytest.approx(math.sqrt(1 - abar), rel=1e-14)
    assert (state.t, state.T) == (t, 200)


def test_state_at_zero_is_the_clean_digits_and_the_canvas_is_their_grid():
    x0, _ = _inputs()
    state = nz.noising_state(0)
    np.testing.assert_array_equal(state.images, x0.numpy())
    assert (state.signal_scale, state.noise_scale) == (1.0, 0.0)
    np.testing.assert_allclose(state.canvas, image_grid((x0 + 1) / 2, rows=1),
                               atol=1e-12)
    assert state.canvas.shape == (8, 4 * 9 - 1)


def test_state_curves_and_the_same_noise_at_every_t():
    a, b = nz.noising_state(10), nz.noising_state(150)
    assert a.curve_t[0] == 0 and a.curve_t[-1] == 200 and len(a.curve_t) == 201
    np.testing.assert_allclose(a.curve_signal**2 + a.curve_noise**2, 1.0)
    assert np.all(np.diff(a.curve_signal) < 0)
    assert a.curve_signal[10] == a.signal_scale
    x0, eps = _inputs()  # x_t - sqrt(abar) x0 is the same eps, scaled, at both t
    for state in (a, b):
        recovered = (state.images - state.signal_scale * x0.numpy()) / state.noise_scale
        np.testing.assert_allclose(recovered, eps.numpy(), atol=1e-10)


@pytest.mark.parametrize("t, error", [
    (-1, ValueError), (201, ValueError), (1.5, TypeError), (True, TypeError),
    ("3", TypeError), (np.int64(3), None),
])
def test_state_refuses_bad_input(t, error):
    if error is None:
        assert nz.noising_state(t).t == 3
        return
    with pytest.raises(error, match="t must"):
        nz.noising_state(t)


# --- the readout --------------------------------------------------------------------


def test_readout_states_both_scales():
    state = nz.noising_state(52)
    abar = float(SCHEDULE.alpha_bars[51])
    assert nz.readout_text(state) == (
        f"t = 52: signal scale √ᾱₜ = {math.sqrt(abar):.4f}, "
        f"noise scale √(1−ᾱₜ) = {math.sqrt(1 - abar):.4f}"
    )
    assert nz.readout_text(nz.noising_state(0)).startswith(
        "t = 0: signal scale √ᾱₜ = 1.0000, noise scale √(1−ᾱₜ) = 0.0000")


# --- the ipywidgets front end -------------------------------------------------------


def test_ipywidgets_slider_redraws_the_same_artists(ipympl):
    lab = nz.ipywidgets_explorer(t=20)
    control = lab.widget.children[0]
    artists_before = [ax.get_children() for ax in lab.figure.axes]
    image_before = lab.figure.axes[0].images[0]
    figures_before = plt.get_fignums()
    control.value = 120  # runs the slider callback
    state = nz.noising_state(120)
    assert [ax.get_children() for ax in lab.figure.axes] == artists_before
    assert lab.figure.axes[0].images[0] is image_before
    assert plt.get_fignums() == figures_before
    np.testing.assert_allclose(image_before.get_array(), state.canvas)
    assert lab.figure.axes[0].get_title() == nz.readout_text(state)
    drawn = lab.update(t=7)
    assert drawn.t == 7
    np.testing.assert_allclose(image_before.get_array(), drawn.canvas)


def test_the_standalone_figure_moves_its_markers():
    drawing = nz.NoisingFigure(t=20)
    markers = drawing.markers
    state = drawing.update(120)
    assert drawing.markers is markers
    np.testing.assert_allclose(markers.get_ydata(),
                               [state.signal_scale, state.noise_scale])


# --- the Bokeh front end, in the browser --------------------------------------------


def test_bokeh_layout_ships_the_state():
    from bokeh.models import CustomJS, Slider

    layout = nz.bokeh_explorer(t=30)
    control = layout.select_one({"type": Slider})
    assert (control.start, control.end, control.value) == (0, 200, 30)
    assert control.title == "t, the diffusion step"
    readout = layout.select_one({"name": "readout"})
    assert readout.text == nz.readout_text(nz.noising_state(30))
    callback = control.js_property_callbacks["change:value"][0]
    assert isinstance(callback, CustomJS)
    assert callback.args["alpha_bars"][0] == 1.0
    assert len(callback.args["alpha_bars"]) == 201
    shipped = np.array(layout.select_one({"name": "images"}).data["image"][0])
    np.testing.assert_allclose(np.flipud(shipped), nz.noising_state(30).canvas)
    assert "<script" in bokeh_html(layout)


@pytest.mark.browser
def test_keyboard_moves_the_slider_the_readout_and_every_pixel(offline_page, tmp_path):
    page = open_explorer(offline_page, tmp_path, nz.bokeh_explorer(t=40), "noising")
    press(page, 0, "ArrowRight", 12)  # t 40 -> 52, where the two scales cross
    assert model_value(page, "t_slider", "value") == 52
    state = nz.noising_state(52)
    assert model_value(page, "readout", "text") == nz.readout_text(state)
    image = page.evaluate(
        "() => Array.from(Bokeh.documents[0].get_model_by_name('images')"
        ".data.image[0])")
    image = np.flipud(np.array(image).reshape(state.canvas.shape))
    np.testing.assert_allclose(image, state.canvas, atol=1e-12)
    press(page, 0, "ArrowLeft", 52)  # down to t = 0: the clean digits
    assert model_value(page, "readout", "text") == nz.readout_text(
        nz.noising_state(0))
    assert_clean(offline_page)
