"""The noising explorer's pure state function against reparam.diffusion, and its front
ends."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch

from reparam import diffusion as d
from reparam.data import image_grid, load_scaled_digits
from reparam.explorers import noising

matplotlib.use("Agg")


def _inputs():
    data = load_scaled_digits()
    labels = data.test_labels.tolist()
    rows = [labels.index(digit) for digit in noising.DIGITS]
    x0 = data.test_images[rows].double()
    eps = torch.tensor(
        np.random.default_rng(noising.NOISE_SEED).standard_normal((4, 64))
    )
    return x0, eps


@pytest.mark.parametrize("t", [1, 2, 37, 100, 200])
def test_state_images_are_q_sample_with_the_fixed_noise(t):
    x0, eps = _inputs()
    state = noising.noising_state(t)
    expected = d.q_sample(x0, t, d.book_schedule(), eps)
    assert np.allclose(state.images, expected.numpy(), atol=1e-12)
    abar = float(d.book_schedule().alpha_bars[t - 1])
    assert state.signal_scale == pytest.approx(math.sqrt(abar), rel=1e-14)
    assert state.noise_scale == pytest.approx(math.sqrt(1 - abar), rel=1e-14)
    assert state.readout == f"t = {t}: √ᾱ_t = {math.sqrt(abar):.4f}"


def test_state_at_zero_is_the_clean_digits_and_the_canvas_is_their_grid():
    x0, _ = _inputs()
    state = noising.noising_state(0)
    assert np.array_equal(state.images, x0.numpy())
    assert (state.signal_scale, state.noise_scale) == (1.0, 0.0)
    # Same tiles as reparam.vae's grid helper (one row, same gutter grey).
    assert np.allclose(state.canvas, image_grid((x0 + 1) / 2, rows=1), atol=1e-12)
    assert state.readout == "t = 0: √ᾱ_t = 1.0000"


def test_state_curves_and_the_same_noise_at_every_t():
    a, b = noising.noising_state(10), noising.noising_state(150)
    assert a.curve_t[0] == 0 and a.curve_t[-1] == 200 and len(a.curve_t) == 201
    assert np.allclose(a.curve_signal**2 + a.curve_noise**2, 1.0)
    assert np.all(np.diff(a.curve_signal) < 0)
    assert a.curve_signal[10] == a.signal_scale
    # The noise is fixed: x_t - sqrt(abar) x0 is the same eps, scaled, at both t.
    x0, eps = _inputs()
    for state in (a, b):
        recovered = (state.images - state.signal_scale * x0.numpy()) / state.noise_scale
        assert np.allclose(recovered, eps.numpy(), atol=1e-10)


@pytest.mark.parametrize("t", [-1, 201])
def test_state_rejects_t_outside_range(t):
    with pytest.raises(ValueError, match="t must lie in 0..200"):
        noising.noising_state(t)


@pytest.mark.parametrize("t", [1.5, True, "3"])
def test_state_rejects_non_integer_t(t):
    with pytest.raises(TypeError, match="t must be an integer"):
        noising.noising_state(t)


def test_matplotlib_update_changes_artists_in_place():
    explorer = noising.MatplotlibNoising(t=20)
    image, markers = explorer.image, explorer.markers
    state = explorer.update(120)
    assert explorer.image is image and explorer.markers is markers
    assert np.allclose(explorer.image.get_array(), state.canvas)
    assert np.allclose(markers.get_ydata(), [state.signal_scale, state.noise_scale])
    assert explorer.title.get_text() == state.readout


def test_bokeh_layout_has_slider_readout_and_callback():
    from bokeh.models import CustomJS, Div, Slider

    layout = noising.bokeh_explorer(t=30)
    slider = layout.select_one({"type": Slider})
    readout = layout.select_one({"type": Div})
    assert (slider.start, slider.end, slider.value) == (0, 200, 30)
    assert "diffusion step" in slider.title
    assert readout.text == noising.noising_state(30).readout
    callback = slider.js_property_callbacks["change:value"][0]
    assert isinstance(callback, CustomJS)
    assert (
        callback.args["alpha_bars"][0] == 1.0
        and len(callback.args["alpha_bars"]) == 201
    )
    # The shipped (flipped) image is the state's canvas.
    shipped = np.array(layout.select_one({"name": "images"}).data["image"][0])
    assert np.allclose(np.flipud(shipped), noising.noising_state(30).canvas)
    html = noising.bokeh_html(layout)
    assert "<script" in html and "toFixed(4)" in html


@pytest.mark.browser
def test_bokeh_slider_redraws_in_the_browser(offline_page, tmp_path):
    """Move the static page's slider by keyboard: the readout and every pixel follow
    noising_state (the CustomJS mirrors it), with no JavaScript error."""
    from pathlib import Path

    from bokeh.util.paths import bokehjs_path

    js = Path(bokehjs_path()) / "js"
    scripts = "".join(
        f'<script src="{(js / name).as_uri()}"></script>'
        for name in ("bokeh.min.js", "bokeh-widgets.min.js")
    )
    page_file = tmp_path / "noising.html"
    body = noising.bokeh_html(noising.bokeh_explorer(t=40))
    page_file.write_text(f"<html><head>{scripts}</head><body>{body}</body></html>")
    page = offline_page.open(page_file)
    page.wait_for_selector(".noUi-handle", timeout=20_000)
    page.locator(".noUi-handle").first.focus()
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    shown = page.evaluate(
        """() => {const d = Bokeh.documents[0];
        return {t: d.get_model_by_name('t_slider').value,
                text: d.get_model_by_name('readout').text,
                image: Array.from(d.get_model_by_name('images').data.image[0])}}"""
    )
    assert shown["t"] == 50
    state = noising.noising_state(50)
    assert shown["text"] == state.readout
    image = np.flipud(np.array(shown["image"]).reshape(state.canvas.shape))
    assert np.allclose(image, state.canvas, atol=1e-12)
    assert offline_page.console_errors == [] and offline_page.page_errors == []
    assert offline_page.external_requests == []
