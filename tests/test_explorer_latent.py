"""Chapter 7's explorer (latent): a point of the VAE's latent space decoded, and both
front ends."""


from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from explorer_pages import (
    assert_clean,
    model_value,
    open_explorer,
    press,
)

from reparam.explorers import latent as lt

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")



def _numbers(text: str) -> list[float]:
    return [float(x) for x in NUMBER.findall(text)]



# --- the state and the readout ----------------------------------------------------



@pytest.fixture(scope="module")
def model():
    from reparam.vae import VAE

    torch.manual_seed(3)
    return VAE(latent_dim=2, hidden=24)



@pytest.mark.parametrize("z", [(0.0, 0.0), (1.3, -2.2), (-3.0, 3.0)])
def test_latent_decode_equals_the_torch_decoder(model, z):
    weights = lt.decoder_weights(model)
    image = lt.decode(weights, z)
    double = model.double()
    with torch.no_grad():
        expected = torch.sigmoid(
            double.decode_logits(torch.tensor(z, dtype=torch.float64))
        )
    model.float()
    np.testing.assert_allclose(image.ravel(), expected.numpy(), rtol=0, atol=1e-13)
    state = lt.latent_state(weights, *z)
    assert state.mean_ink == pytest.approx(float(expected.mean()), abs=1e-13)



def test_latent_rejects_bad_input(model):
    from reparam.vae import VAE

    with pytest.raises(ValueError, match="2-D latent"):
        lt.decoder_weights(VAE(latent_dim=8, hidden=8))
    with pytest.raises(TypeError, match="Linear, Tanh, Linear"):
        lt.decoder_weights(torch.nn.Linear(2, 2))
    weights = lt.decoder_weights(model)
    with pytest.raises(ValueError, match="z must be"):
        lt.decode(weights, (0.0, float("inf")))
    with pytest.raises(ValueError, match="z must be"):
        lt.decode(weights, (0.0, 1.0, 2.0))
    with pytest.raises(ValueError, match="points"):
        lt.bokeh_explorer(weights, np.zeros((3, 3)))



# --- the ipywidgets front end -------------------------------------------------------



def test_ipywidgets_front_end_follows_its_controls(ipympl, model):
    box, update = lt.ipywidgets_explorer(lt.decoder_weights(model))
    box.children[0].children[1].value = -1.5
    weights = lt.decoder_weights(model)
    assert box.children[-1].value == lt.readout_text(
        lt.latent_state(weights, 0.0, -1.5)
    )



# --- the Bokeh front end, in the browser --------------------------------------------



@pytest.fixture(scope="module")
def vae_model():
    from reparam.vae import VAE

    torch.manual_seed(5)
    return VAE(latent_dim=2, hidden=64)  # the VAE chapter's decoder shape



def _off_float32(weights: lt.DecoderWeights) -> lt.DecoderWeights:
    """Weights that float32 cannot hold, so the page must carry them as float64."""
    rng = np.random.default_rng(1)
    nudged = {
        name: value + 1e-9 * rng.standard_normal(value.shape)
        for name, value in vars(weights).items()
    }
    return lt.DecoderWeights(**nudged)



@pytest.mark.browser
@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_latent_decode_in_the_browser_equals_python(
    offline_page, tmp_path, vae_model, precision
):
    weights = lt.decoder_weights(vae_model)
    if precision == "float64":
        weights = _off_float32(weights)
        assert not np.array_equal(weights.w2.astype(np.float32), weights.w2)
    points = np.random.default_rng(0).normal(size=(40, 2))
    layout = lt.bokeh_explorer(weights, points, np.arange(40) % 10)
    page = open_explorer(offline_page, tmp_path, layout, "latent")
    before = model_value(page, "latent_digit", "data")
    press(page, 0, "ArrowRight", 17)  # z1 -> 0.85
    press(page, 1, "ArrowLeft", 31)  # z2 -> -1.55
    z1 = model_value(page, "z1_slider", "value")
    z2 = model_value(page, "z2_slider", "value")
    assert (z1, z2) == (pytest.approx(0.85), pytest.approx(-1.55))
    state = lt.latent_state(weights, z1, z2)
    assert model_value(page, "latent_readout", "text") == lt.readout_text(state)
    image = page.evaluate(
        "() => { const im = Bokeh.documents[0].get_model_by_name('latent_digit')"
        ".data.image[0]; return [Array.from(im), Array.from(im.shape)]; }"
    )
    pixels = np.asarray(image[0]).reshape(image[1])
    # Bokeh draws row 0 at the bottom: the page holds the image upside down.
    np.testing.assert_allclose(pixels[::-1], state.image, rtol=0, atol=1e-12)
    assert model_value(page, "latent_point", "data")["z1"] == [z1]
    assert before != model_value(page, "latent_digit", "data")
    assert_clean(offline_page)



@pytest.mark.browser
def test_latent_tap_moves_the_point(offline_page, tmp_path, vae_model):
    weights = lt.decoder_weights(vae_model)
    layout = lt.bokeh_explorer(weights)
    page = open_explorer(offline_page, tmp_path, layout, "latent_tap")
    page.evaluate("""() => {
      const doc = Bokeh.documents[0];
      const plot = doc.all_models && [...doc.all_models].find(
        m => m.title && m.title.text && m.title.text.startsWith('latent space'));
      const {Tap} = Bokeh.require('core/bokeh_events');
      // PointEvent(sx, sy, x, y, modifiers): a tap at data point (1.02, -0.51).
      plot.trigger_event(new Tap(0, 0, 1.02, -0.51, {}));
    }""")
    z1 = model_value(page, "z1_slider", "value")
    z2 = model_value(page, "z2_slider", "value")
    assert (z1, z2) == (pytest.approx(1.0), pytest.approx(-0.5))
    assert math.isclose(model_value(page, "latent_point", "data")["z2"][0], -0.5)
