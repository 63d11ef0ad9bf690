"""The explorers' Bokeh front ends in headless Chromium, from standalone offline pages.

Each test moves a control as a reader would (keyboard on a slider handle, or the
model's value for a menu), checks that the figure's data changed, and that the readout
equals the Python state function's value to the printed precision. No built book is
needed.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from explorer_pages import model_value, set_model, standalone_page, wait_for_bokeh

from reparam.explorers import estimator_spread as es
from reparam.explorers import latent as lt
from reparam.explorers import pushforward as pf

pytestmark = pytest.mark.browser

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _numbers(text: str) -> list[float]:
    return [float(x) for x in NUMBER.findall(text)]


def _open(offline_page, tmp_path, layout, name):
    page = offline_page.open(standalone_page(layout, tmp_path / f"{name}.html"))
    wait_for_bokeh(page)
    return page


def _press(page, handle_index: int, key: str, times: int):
    page.locator(".noUi-handle").nth(handle_index).focus()
    for _ in range(times):
        page.keyboard.press(key)


def _clean(offline_page):
    assert offline_page.page_errors == []
    assert offline_page.console_errors == []
    assert offline_page.external_requests == []


def test_estimator_spread_moves_and_matches_python(offline_page, tmp_path):
    page = _open(
        offline_page, tmp_path, es.bokeh_explorer("cosine", 1.0, 0.5, 1.0), "spread"
    )
    before = model_value(page, "spread_bars", "data")["score"]
    settings = [
        ("square", 10, 0, "mu"),
        ("gaussian_bump", -4, 6, "sigma"),
        ("step", 6, -8, "mu"),
        ("cosine", 20, 3, "sigma"),
    ]
    for cost, k_steps, sigma_steps, parameter in settings:
        set_model(page, "cost_select", "value", cost)
        set_model(page, "parameter_select", "value", parameter)
        k = model_value(page, "k_slider", "value")
        _press(page, 0, "ArrowRight" if k_steps > 0 else "ArrowLeft", abs(k_steps))
        _press(
            page, 2, "ArrowRight" if sigma_steps > 0 else "ArrowLeft", abs(sigma_steps)
        )
        k = model_value(page, "k_slider", "value")
        mu = model_value(page, "mu_slider", "value")
        sigma = model_value(page, "sigma_slider", "value")
        state = es.spread_state(cost, k, mu, sigma, parameter)
        shown = model_value(page, "spread_readout", "text")
        # Printed to 4 significant digits: the JS rule equals Python's to ~1e-12.
        expected = [
            state.pathwise_mean,
            state.pathwise_variance,
            state.score_mean,
            state.score_variance,
        ]
        assert _numbers(shown) == [float(f"{v:.4g}") for v in expected], (cost, shown)
        assert shown.endswith("score function" if state.score_wins else "pathwise")
    after = model_value(page, "spread_bars", "data")["score"]
    assert not np.allclose(np.asarray(after), np.asarray(before))
    _clean(offline_page)


def test_pushforward_every_map_matches_python(offline_page, tmp_path):
    maps = pf.default_maps()
    page = _open(offline_page, tmp_path, pf.bokeh_explorer(maps), "pushforward")
    for index, spec in enumerate(maps):
        set_model(page, "map_select", "value", str(index))
        page.wait_for_function(
            "v => Bokeh.documents[0].get_model_by_name('theta_slider').value === v",
            arg=spec.theta_default,
        )
        _press(page, 0, "ArrowRight", 6)
        theta = model_value(page, "theta_slider", "value")
        assert theta == pytest.approx(
            min(spec.theta_default + 0.3, spec.theta_range[1])
        )
        assert model_value(page, "theta_slider", "title").startswith(spec.theta_name)
        state = pf.pushforward_state(spec, theta)
        assert model_value(page, "pushforward_readout", "text") == pf.readout_text(
            state
        )
        curve = model_value(page, "pushforward_density", "data")
        np.testing.assert_allclose(
            np.asarray(curve["density"], dtype=float),
            state.density,
            rtol=1e-12,
            atol=1e-14,
        )
        bars = model_value(page, "pushforward_bars", "data")
        np.testing.assert_allclose(
            np.asarray(bars["top"], dtype=float), state.histogram, rtol=0, atol=1e-12
        )
    _clean(offline_page)


def test_sympy_javascript_evaluates_to_the_python_numbers(offline_page, tmp_path):
    page = _open(offline_page, tmp_path, pf.bokeh_explorer(), "printer")
    for spec in pf.default_maps():
        h_js, f_js = pf.map_javascript(spec)
        h_py, f_py = pf._numpy(spec)
        u = pf.BASE_DRAWS[spec.base][:50]
        y = np.linspace(*spec.window, 37)
        t = 0.5 * (spec.theta_range[0] + spec.theta_range[1])
        got_h = page.evaluate(f"([us, t]) => us.map(u => {h_js})", [u.tolist(), t])
        got_f = page.evaluate(f"([ys, t]) => ys.map(y => {f_js})", [y.tolist(), t])
        np.testing.assert_allclose(got_h, h_py(u, t), rtol=1e-14)
        np.testing.assert_allclose(
            got_f, pf._evaluate(f_py, y, t), rtol=1e-13, atol=1e-300
        )
    for name in es.COST_NAMES:
        f_js, df_js = es.cost_javascript(name)
        f_py, df_py = es._numpy_functions(name)
        x = np.linspace(-3, 3, 41) + 0.013  # off the step's jump
        for js, py in ((f_js, f_py), (df_js, df_py)):
            got = page.evaluate(f"([xs, k]) => xs.map(x => {js})", [x.tolist(), 0.7])
            want = np.broadcast_to(py(x, 0.7), x.shape)
            np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-15)


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
    page = _open(offline_page, tmp_path, layout, "latent")
    before = model_value(page, "latent_digit", "data")
    _press(page, 0, "ArrowRight", 17)  # z1 -> 0.85
    _press(page, 1, "ArrowLeft", 31)  # z2 -> -1.55
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
    _clean(offline_page)


def test_latent_tap_moves_the_point(offline_page, tmp_path, vae_model):
    weights = lt.decoder_weights(vae_model)
    page = _open(offline_page, tmp_path, lt.bokeh_explorer(weights), "latent_tap")
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
