"""The explorers' pure state functions and their ipywidgets front ends (no browser
here).

The browser halves (Bokeh + CustomJS) are tested in tests/test_explorers_js.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
import sympy as sp
import torch

from reparam import costs
from reparam.explorers import estimator_spread as es
from reparam.explorers import latent as lt
from reparam.explorers import pushforward as pf
from reparam.variance import exact_moments

SETTINGS = [(0.7, 0.3, 1.3), (0.0, 0.0, 1.0), (2.5, -1.0, 0.3), (-1.5, 1.7, 2.9)]


# --- estimator_spread --------------------------------------------------------------


@pytest.mark.parametrize("name", es.COST_NAMES)
@pytest.mark.parametrize("parameter", ["mu", "sigma"])
@pytest.mark.parametrize("k, mu, sigma", SETTINGS)
def test_spread_moments_match_scipy_quadrature(name, parameter, k, mu, sigma):
    if name == "gaussian_bump" and k < 0:
        k = -k
    state = es.spread_state(name, k, mu, sigma, parameter)
    cost = next(c for c in costs.ALL_COSTS if c.name == name).with_k(k)
    for estimator, mean, variance in (
        ("pathwise", state.pathwise_mean, state.pathwise_variance),
        ("score", state.score_mean, state.score_variance),
    ):
        exact_mean, exact_var = exact_moments(cost, mu, sigma, estimator, parameter)
        # Simpson with 2000 intervals per piece against quad: agreement to 1e-8
        # relative.
        assert mean == pytest.approx(exact_mean, rel=1e-8, abs=1e-10)
        assert variance == pytest.approx(exact_var, rel=1e-8, abs=1e-10)


def test_spread_means_are_the_true_gradient_for_the_score_function():
    # The score function is unbiased for every cost, the step included.
    for name in es.COST_NAMES:
        cost = next(c for c in costs.ALL_COSTS if c.name == name).with_k(0.4)
        state = es.spread_state(name, 0.4, 0.2, 1.1, "mu")
        assert state.score_mean == pytest.approx(cost.gradient(0.2, 1.1)[0], abs=1e-9)


def test_spread_histograms_are_densities_of_the_drawn_estimates():
    state = es.spread_state("cosine", 1.0, 0.5, 1.0)
    width = state.bin_edges[1] - state.bin_edges[0]
    inside = (state.score_draws >= state.bin_edges[0]) & (
        state.score_draws <= state.bin_edges[-1]
    )
    assert state.score_hist.sum() * width == pytest.approx(inside.mean(), abs=1e-12)
    np.testing.assert_array_equal(
        state.pathwise_draws, -np.sin(0.5 + es.DRAWS)
    )  # f'(x) = -k sin(kx), k = 1


def test_spread_draws_are_fixed_whatever_else_is_drawn():
    first = es.spread_state("square", 1.0, 0.0, 1.0)
    np.random.default_rng(99).standard_normal(1000)
    torch.randn(10)
    second = es.spread_state("square", 1.0, 0.0, 1.0)
    np.testing.assert_array_equal(first.score_draws, second.score_draws)


def test_spread_has_a_crossover_where_the_score_function_wins():
    wins = {
        es.spread_state("cosine", k, 0.0, 1.0, "sigma").score_wins
        for k in np.linspace(0.1, 3.0, 15)
    }
    assert wins == {True, False}


def test_spread_readout_prints_the_state():
    state = es.spread_state("step", 0.0, 0.0, 1.0)
    text = es.readout_text(state)
    assert f"variance {state.score_variance:.4g}" in text
    # E[(1[eps>0] eps)^2] = 1/2 and the mean is phi(0): the variance is 1/2 - 1/(2 pi).
    assert state.score_variance == pytest.approx(0.5 - 1 / (2 * math.pi), rel=1e-9)
    assert text.endswith(
        "smaller variance: pathwise"
    )  # the pathwise draw is 0 for a step


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(cost="nope", k=1, mu=0, sigma=1), ValueError),
        (dict(cost="cosine", k=1, mu=0, sigma=0), ValueError),
        (dict(cost="cosine", k=1, mu=float("nan"), sigma=1), ValueError),
        (dict(cost="cosine", k=1, mu=0, sigma=1, parameter="k"), ValueError),
        (dict(cost="gaussian_bump", k=-1, mu=0, sigma=1), ValueError),
        (dict(cost="cosine", k="1", mu=0, sigma=1), TypeError),
    ],
)
def test_spread_rejects_bad_input(kwargs, error):
    with pytest.raises(error):
        es.spread_state(**kwargs)


def test_cost_javascript_comes_from_sympy():
    f, df = es.cost_javascript("gaussian_bump")
    assert "Math.exp" in f and "Math.exp" in df
    assert es.cost_javascript("step")[1] == "0"


# --- pushforward ---------------------------------------------------------------------

REFERENCES = {  # scipy's densities for the default maps at parameter t
    0: lambda y, t: st.norm(1, t).pdf(y),
    1: lambda y, t: st.norm(1, t).pdf(y),
    2: lambda y, t: st.lognorm(s=t).pdf(y),
    3: lambda y, t: st.expon(scale=1 / t).pdf(y),
    4: lambda y, t: st.uniform(0, t).pdf(y),
}


@pytest.fixture(scope="module")
def maps():
    return pf.default_maps()


@pytest.mark.parametrize("index", range(5))
def test_pushforward_density_is_scipys(maps, index):
    spec = maps[index]
    for theta in (spec.theta_range[0], spec.theta_default, spec.theta_range[1]):
        state = pf.pushforward_state(spec, theta)
        points = state.y_grid[
            (state.y_grid > 1e-9) & (np.abs(state.y_grid - theta) > 1e-9)
        ]  # off the jumps
        expected = REFERENCES[index](points, theta)
        got = np.interp(points, state.y_grid, state.density)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("index", range(5))
def test_pushforward_samples_follow_the_density(maps, index):
    spec = maps[index]
    state = pf.pushforward_state(spec, spec.theta_default)
    n = len(state.samples)
    # The share of samples in the window against the derived mass: within 4 standard
    # errors (plus the midpoint rule's error, below 1e-3).
    se = math.sqrt(max(state.window_mass * (1 - state.window_mass), 1e-6) / n)
    assert abs(state.window_share - state.window_mass) < 4 * se + 1e-3
    # Each histogram bar against the density's mass over the bar, in standard errors.
    width = state.bin_edges[1] - state.bin_edges[0]
    for left, height in zip(state.bin_edges[:-1], state.histogram, strict=True):
        cells = np.linspace(left, left + width, 201)
        f = pf._evaluate(
            pf._numpy(spec)[1], 0.5 * (cells[1:] + cells[:-1]), state.theta
        )
        p = float(np.sum(f) * (cells[1] - cells[0]))
        assert abs(height * width - p) < 5 * math.sqrt(max(p * (1 - p), 1e-4) / n)


def test_pushforward_javascript_is_printed_from_the_expressions(maps):
    h, f = pf.map_javascript(maps[3])
    assert h == "-Math.log(u)/t"
    assert "Math.exp(-t*y)" in f and "y > 0" in f


def test_pushforward_support_changes_with_theta(maps):
    spec = maps[4]
    for theta in (0.5, 2.0):
        state = pf.pushforward_state(spec, theta)
        assert state.samples.max() <= theta
        assert np.all(state.density[state.y_grid > theta + 1e-9] == 0)


def test_pushforward_rejects_bad_input(maps):
    with pytest.raises(ValueError, match="theta"):
        pf.pushforward_state(maps[0], 10.0)
    with pytest.raises(TypeError, match="spec"):
        pf.pushforward_state("affine", 1.0)
    u, y, t = sp.symbols("u y t")
    with pytest.raises(ValueError, match="base"):
        pf.PushforwardMap("x", "gamma", u, t, y, u * t, y, (0, 1), 0.5, (0, 1))
    with pytest.raises(ValueError, match="h may use"):
        pf.PushforwardMap("x", "normal", u, t, y, u * y, y, (0, 1), 0.5, (0, 1))
    with pytest.raises(ValueError, match="theta_default"):
        pf.PushforwardMap("x", "normal", u, t, y, u * t, y, (0, 1), 2.0, (0, 1))


# --- latent --------------------------------------------------------------------------


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


# --- ipywidgets front ends (ipympl canvas, no kernel needed) -------------------------


def test_spread_sliders_step_by_slider_step_in_both_front_ends(ipympl):
    # Chapter 4 names the slider values either side of a crossover from SLIDER_STEP and
    # the ranges: a front end with its own step would make the chapter's numbers wrong.
    from bokeh.models import Slider

    sliders = {s.name: s for s in es.bokeh_explorer().select({"type": Slider})}
    ranges = {"k_slider": es.K_RANGE, "mu_slider": es.MU_RANGE}
    ranges["sigma_slider"] = es.SIGMA_RANGE
    assert set(sliders) == set(ranges)
    for name, (start, end) in ranges.items():
        assert (sliders[name].start, sliders[name].end) == (start, end)
        assert sliders[name].step == es.SLIDER_STEP
    box, _ = es.ipywidgets_explorer()
    widgets = [*box.children[0].children[1:], box.children[1].children[0]]
    assert [(w.min, w.max, w.step) for w in widgets] == [
        (*bounds, es.SLIDER_STEP) for bounds in ranges.values()
    ]


def test_ipywidgets_front_ends_follow_their_controls(ipympl, maps, model):
    box, update = es.ipywidgets_explorer("cosine", 1.0, 0.5, 1.0)
    box.children[0].children[0].value = "step"
    assert box.children[-1].value == es.readout_text(
        es.spread_state("step", 1.0, 0.5, 1.0)
    )

    box, update = pf.ipywidgets_explorer(maps)
    box.children[0].children[0].value = 3
    slider = box.children[0].children[1]
    assert (slider.description, slider.value) == ("λ", maps[3].theta_default)
    slider.value = 2.0
    assert box.children[-1].value == pf.readout_text(pf.pushforward_state(maps[3], 2.0))

    box, update = lt.ipywidgets_explorer(lt.decoder_weights(model))
    box.children[0].children[1].value = -1.5
    weights = lt.decoder_weights(model)
    assert box.children[-1].value == lt.readout_text(
        lt.latent_state(weights, 0.0, -1.5)
    )
