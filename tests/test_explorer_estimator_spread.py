"""Chapter 4's explorer (estimator_spread): per-draw estimates, their exact moments,
and both front ends."""


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
    set_model,
)

from reparam import costs
from reparam.explorers import estimator_spread as es
from reparam.explorers import pushforward as pf
from reparam.variance import exact_moments

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")



def _numbers(text: str) -> list[float]:
    return [float(x) for x in NUMBER.findall(text)]



# --- the state and the readout ----------------------------------------------------


SETTINGS = [(0.7, 0.3, 1.3), (0.0, 0.0, 1.0), (2.5, -1.0, 0.3), (-1.5, 1.7, 2.9)]



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



# --- the ipywidgets front end -------------------------------------------------------



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



def test_ipywidgets_front_end_follows_its_controls(ipympl):
    box, update = es.ipywidgets_explorer("cosine", 1.0, 0.5, 1.0)
    box.children[0].children[0].value = "step"
    assert box.children[-1].value == es.readout_text(
        es.spread_state("step", 1.0, 0.5, 1.0)
    )



# --- the Bokeh front end, in the browser --------------------------------------------



@pytest.mark.browser
def test_estimator_spread_moves_and_matches_python(offline_page, tmp_path):
    page = open_explorer(
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
        press(page, 0, "ArrowRight" if k_steps > 0 else "ArrowLeft", abs(k_steps))
        press(
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
    assert_clean(offline_page)



@pytest.mark.browser
def test_sympy_javascript_evaluates_to_the_python_numbers(offline_page, tmp_path):
    page = open_explorer(offline_page, tmp_path, pf.bokeh_explorer(), "printer")
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
