"""Chapter 4's explorer (estimator_spread): its state, its readout, its two front ends.

The state is checked against adaptive quadrature (``reparam.variance``), closed-form
gradients and Brent's crossover (``reparam.crossover``); the readout is written with
JavaScript's ``toPrecision`` rule in Python (``js_precision``), so the page's text and
Python's are compared as text.
"""

from __future__ import annotations

import math
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
import scipy.stats as st
from explorer_pages import (
    assert_clean,
    model_value,
    open_explorer,
    press,
    set_model,
)

from reparam import costs
from reparam.crossover import crossover
from reparam.explorers import estimator_spread as es
from reparam.variance import exact_moments


def _cost(name: str, k: float):
    return next(c for c in costs.ALL_COSTS if c.name == name).with_k(k)


def _state_at(cost: str, k: float, mu: float, sigma: float, parameter: str = "mu"):
    """The state the front ends show: they clamp the bump's k at 0."""
    if cost == "gaussian_bump":
        k = max(k, 0.0)
    return es.estimator_spread_state(cost, k, mu, sigma, parameter)


NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]\d+)?")


def _same_readout(shown: str, state) -> bool:
    """The page's readout is Python's text, except where a number sits on a rounding
    tie: the page sums the Simpson rule in another order (and with its own exp and
    cos), so at a value such as 1.8375 = 15 * 0.35**2 the last bit decides between
    1.837 and 1.838. There the two may differ by one in the last digit, and the
    exact value must lie on the midpoint, to 1e-9."""
    expected = es.readout_text(state)
    if shown == expected:
        return True
    if NUMBER.sub("#", shown) != NUMBER.sub("#", expected):
        return False  # the words differ: the verdict, or a number's layout
    values = (state.pathwise_mean, state.pathwise_variance, state.score_mean,
              state.score_variance)
    pairs = zip(NUMBER.findall(shown), NUMBER.findall(expected), values, strict=True)
    for page_text, python_text, value in pairs:
        if page_text != python_text:
            midpoint = (float(page_text) + float(python_text)) / 2
            if abs(value - midpoint) > 1e-9 * abs(value):
                return False
    return True


# --- the state ----------------------------------------------------------------------


SETTINGS = [(0.7, 0.3, 1.3), (0.0, 0.0, 1.0), (2.5, -1.0, 0.3), (-1.5, 1.7, 2.9)]


@pytest.mark.parametrize("name", es.COST_NAMES)
@pytest.mark.parametrize("parameter", ["mu", "sigma"])
@pytest.mark.parametrize("k, mu, sigma", SETTINGS)
def test_state_moments_match_scipy_quadrature(name, parameter, k, mu, sigma):
    k = abs(k) if name == "gaussian_bump" else k
    state = es.estimator_spread_state(name, k, mu, sigma, parameter)
    cost = _cost(name, k)
    for estimator, mean, variance in (
        ("pathwise", state.pathwise_mean, state.pathwise_variance),
        ("score", state.score_mean, state.score_variance),
    ):
        exact = exact_moments(cost, mu, sigma, estimator, parameter)
        # Simpson with 2000 intervals per piece against quad: 1e-8 relative.
        assert mean == pytest.approx(exact.mean, rel=1e-8, abs=1e-10)
        assert variance == pytest.approx(exact.variance, rel=1e-8, abs=1e-10)


@pytest.mark.parametrize("parameter, column", [("mu", 0), ("sigma", 1)])
def test_the_score_mean_is_the_gradient_for_every_cost_the_step_included(parameter,
                                                                         column):
    for name in es.COST_NAMES:
        state = es.estimator_spread_state(name, 0.4, 0.2, 1.1, parameter)
        exact = _cost(name, 0.4).gradient(0.2, 1.1)[column]
        assert state.score_mean == pytest.approx(exact, abs=1e-9)


def test_at_the_chapters_start_both_means_are_the_gradient_and_pathwise_wins():
    # Chapter 4 starts the explorer at cos(kx), k = mu = sigma = 1, d/dmu.
    state = es.estimator_spread_state("cosine", 1.0, 1.0, 1.0)
    exact = costs.cosine.with_k(1.0).gradient(1.0, 1.0)[0]
    assert abs(state.pathwise_mean - exact) < 1e-10
    assert abs(state.score_mean - exact) < 1e-10
    assert not state.score_wins


@pytest.mark.parametrize("breakpoint", [None, 0.37])
def test_round_off_moments_are_printed_as_zero(breakpoint):
    # Summed directly, a constant draw's variance is a round-off of either sign, and
    # on two pieces an odd draw's mean is not exactly 0: _moments sets both to 0, as
    # the page's JavaScript does (else a variance such as -3.656e-12 would be printed).
    nodes, weights = es.simpson_nodes(breakpoint)
    phi = np.exp(-0.5 * nodes**2) / np.sqrt(2 * np.pi)
    for constant in (3.0, -0.7):
        draw = np.full(nodes.shape, constant)
        assert np.sum(weights * phi * draw**2) != np.sum(weights * phi * draw) ** 2
        mean, variance = es._moments(draw, nodes, weights)
        assert mean == pytest.approx(constant, rel=1e-11) and variance == 0.0
    if breakpoint is not None:  # (on one piece the raw sum is 0.0 by symmetry)
        assert np.sum(weights * phi * nodes**3) != 0
    mean, variance = es._moments(nodes**3, nodes, weights)
    assert mean == 0.0 and variance == pytest.approx(15.0, rel=1e-9)  # E[eps^6]


def test_a_tie_at_zero_is_not_a_win_for_the_score_function():
    # The step's jump 25 standard deviations away, past the grid's |eps| <= 10: both
    # variances come out 0. The score function's true variance is positive (about
    # 5e-134), the pathwise one exactly 0: the pathwise estimator is the one with the
    # smaller variance, as the page's JavaScript says (v[1] < v[0]).
    state = es.estimator_spread_state("step", 3.0, -2.0, 0.2)
    assert state.pathwise_variance == state.score_variance == 0
    assert not state.score_wins
    assert es.readout_text(state).endswith("smaller variance: pathwise")


@pytest.mark.parametrize("k, mu, sigma", [(1.0, 1.0, 1.0), (0.2, 0.5, 0.3),
                                          (2.5, -1.0, 2.0)])
def test_for_the_step_every_pathwise_value_is_zero_in_one_bar(k, mu, sigma):
    state = es.estimator_spread_state("step", k, mu, sigma)
    assert not state.pathwise_draws.any()
    assert state.pathwise_mean == 0 and state.pathwise_variance == 0
    assert np.count_nonzero(state.pathwise_hist) == 1
    assert not state.score_wins  # a zero variance "wins", though its mean is wrong
    exact = costs.step.with_k(k).gradient(mu, sigma)[0]
    assert abs(state.score_mean - exact) < 1e-8
    assert abs(exact) > 1e-3  # so the pathwise mean 0 is wrong


def test_the_histograms_are_densities_of_the_per_draw_values():
    state = es.estimator_spread_state("cosine", 1.0, 0.5, 1.0)
    width = state.bin_edges[1] - state.bin_edges[0]
    inside = (state.score_draws >= state.bin_edges[0]) & (
        state.score_draws <= state.bin_edges[-1]
    )
    assert state.score_hist.sum() * width == pytest.approx(inside.mean(), abs=1e-12)
    # f'(x) = -k sin(kx) with k = 1, at x = 0.5 + 1.0 eps:
    np.testing.assert_array_equal(state.pathwise_draws, -np.sin(0.5 + es.EPS_POINTS))


@pytest.mark.parametrize("cost, k, mu, sigma", [
    ("gaussian_bump", 0.0, 0.0, 1.0), ("gaussian_bump", 0.0, -1.5, 2.0),
    ("square", 0.7, 0.3, 1.3), ("step", 1.0, 1.0, 1.0), ("cosine", 2.5, -1.0, 0.3)])
def test_the_bars_count_the_draws_as_numpys_histogram_does(cost, k, mu, sigma):
    # Bar i holds edges[i] <= value < edges[i + 1], the last bar closed. For the bump
    # at k = 0 every pathwise draw is 0.0, on an edge: it belongs to the bar above.
    state = es.estimator_spread_state(cost, k, mu, sigma)
    edges = state.bin_edges
    width = edges[1] - edges[0]
    for draws, heights in ((state.pathwise_draws, state.pathwise_hist),
                           (state.score_draws, state.score_hist)):
        counts, _ = np.histogram(draws, bins=edges)
        np.testing.assert_allclose(heights, counts / (len(draws) * width), rtol=1e-12)


def test_the_bars_span_the_central_98_percent_of_both_sets_of_draws():
    state = es.estimator_spread_state("cosine", 1.0, 0.5, 1.0)
    both = np.concatenate([state.pathwise_draws, state.score_draws])
    edges = state.bin_edges
    assert len(edges) == es.BINS + 1
    np.testing.assert_allclose(np.diff(edges), (edges[-1] - edges[0]) / es.BINS)
    assert len(both) == 4000
    assert ((both >= edges[0]) & (both <= edges[-1])).sum() == 3920  # 98 %
    assert (both < edges[0]).sum() == 40  # 1 % below
    # Every draw 0.0 (the step's jump out of reach): a window of width 2 around it.
    flat = es.estimator_spread_state("step", 3.0, -2.0, 0.2)
    assert (flat.bin_edges[0], flat.bin_edges[-1]) == (-1.0, 1.0)


def test_the_values_of_eps_are_the_normal_quantiles_not_random_draws():
    n = len(es.EPS_POINTS)
    np.testing.assert_allclose(
        es.EPS_POINTS, st.norm.ppf((np.arange(n) + 0.5) / n), rtol=1e-12, atol=1e-14
    )
    np.testing.assert_allclose(es.EPS_POINTS, -es.EPS_POINTS[::-1], atol=1e-12)
    assert np.all(np.diff(es.EPS_POINTS) > 0)


def test_the_readout_changes_verdict_between_the_slider_values_around_the_crossover():
    # Chapter 4 names these two slider values; Brent's root (adaptive quadrature of
    # reparam.variance) lies between them, and the Simpson rule of the explorer agrees
    # with it to within 1e-3 in k.
    root = crossover(costs.cosine, (0.5, 2.0), mu=1.0, sigma=1.0, parameter="mu")
    below, above = es.slider_values_around(root, es.K_RANGE)
    assert below < root < above and above - below == pytest.approx(es.SLIDER_STEP)
    assert not es.estimator_spread_state("cosine", below, 1.0, 1.0).score_wins
    assert es.estimator_spread_state("cosine", above, 1.0, 1.0).score_wins
    assert not es.estimator_spread_state("cosine", root - 1e-3, 1.0, 1.0).score_wins
    assert es.estimator_spread_state("cosine", root + 1e-3, 1.0, 1.0).score_wins


@pytest.mark.parametrize("parameter", ["mu", "sigma"])
def test_for_the_square_the_pathwise_estimator_wins_at_every_k_slider_value(parameter):
    assert not any(
        es.estimator_spread_state("square", k, 1.0, 1.0, parameter).score_wins
        for k in es.slider_values(es.K_RANGE)
    )


def test_the_cosine_sigma_gradient_has_a_crossover_on_the_slider():
    wins = {
        es.estimator_spread_state("cosine", k, 0.0, 1.0, "sigma").score_wins
        for k in np.linspace(0.1, 3.0, 15)
    }
    assert wins == {True, False}


def test_slider_values_are_whole_steps_from_the_start():
    values = es.slider_values(es.K_RANGE)
    assert values[0] == es.K_RANGE[0] and values[-1] == es.K_RANGE[1]
    assert len(values) == round((es.K_RANGE[1] - es.K_RANGE[0]) / es.SLIDER_STEP) + 1
    assert 1.0 in values and 1.0 in es.slider_values(es.MU_RANGE)
    assert 0.5 in es.slider_values(es.MU_RANGE) and 0.5 in es.slider_values(
        es.SIGMA_RANGE)
    assert es.slider_values_around(1.07, es.K_RANGE) == (1.05, 1.1)
    assert es.slider_values_around(1.0, es.K_RANGE) == (0.95, 1.05)  # strictly between
    with pytest.raises(ValueError, match="range"):
        es.slider_values_around(3.0, es.K_RANGE)  # the last value: nothing above
    with pytest.raises(ValueError, match="bounds"):
        es.slider_values((1.0, 1.0))


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(cost="nope", k=1, mu=0, sigma=1), ValueError),
        (dict(cost="cosine", k=1, mu=0, sigma=0), ValueError),
        (dict(cost="cosine", k=1, mu=float("nan"), sigma=1), ValueError),
        (dict(cost="cosine", k=1, mu=0, sigma=1, parameter="k"), ValueError),
        (dict(cost="gaussian_bump", k=-1, mu=0, sigma=1), ValueError),
        (dict(cost="cosine", k="1", mu=0, sigma=1), TypeError),
        (dict(cost="cosine", k=1, mu=True, sigma=1), TypeError),
    ],
)
def test_state_refuses_bad_input(kwargs, error):
    with pytest.raises(error):
        es.estimator_spread_state(**kwargs)


def test_cost_javascript_comes_from_sympy():
    f, df = es.cost_javascript("gaussian_bump")
    assert "Math.exp" in f and "Math.exp" in df
    assert es.cost_javascript("step")[1] == "0"


# --- the readout --------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, text",
    [
        (0.26771, "0.2677"),
        (-0.5, "-0.5000"),
        (0.0, "0.000"),
        (-0.0, "0.000"),
        (1234.5, "1235"),  # an exact tie: toPrecision takes the larger; format, even
        (12345.0, "1.235e+4"),  # from 10**digits on: exponential
        (9.99996, "10.00"),  # rounding adds a digit
        (99999.0, "1.000e+5"),
        (1.234e-6, "0.000001234"),  # down to 1e-6: fixed
        (1.234e-7, "1.234e-7"),
        (123.4, "123.4"),
        (1e21, "1.000e+21"),
    ],
)
def test_js_precision_writes_what_to_precision_writes(value, text):
    assert es.js_precision(value, 4) == text


def test_js_precision_at_other_digit_counts_and_bad_input():
    assert es.js_precision(2.5, 1) == "3"  # a tie, to the larger
    assert es.js_precision(25.0, 1) == "3e+1"
    assert es.js_precision(12345.0, 2) == "1.2e+4"  # exponent form: a point from 2
    assert es.js_precision(0.0, 1) == "0"
    with pytest.raises(ValueError, match="finite"):
        es.js_precision(math.inf, 4)


def test_the_readout_prints_the_state():
    state = es.estimator_spread_state("step", 0.0, 0.0, 1.0)
    # E[(1[eps>0] eps)^2] = 1/2 and the mean is phi(0): the variance is 1/2 - 1/(2 pi).
    assert state.score_variance == pytest.approx(0.5 - 1 / (2 * math.pi), rel=1e-9)
    assert es.readout_text(state) == (
        "pathwise: mean 0.000, variance 0.000; score function: mean 0.3989, "
        "variance 0.3408; smaller variance: pathwise"
    )


def test_the_browser_tests_forgive_a_rounding_tie_and_nothing_else():
    # (x + 0.5)^2 at mu = -0.5, sigma = 0.35: one score draw is sigma eps^3, whose
    # variance 15 sigma^2 = 1.8375 sits exactly between 1.837 and 1.838.
    state = es.estimator_spread_state("square", -0.5, -0.5, 0.35)
    text = es.readout_text(state)
    assert "variance 1.837;" in text or "variance 1.838;" in text
    other = "1.838" if "1.837;" in text else "1.837"
    assert _same_readout(text.replace("1.837;", other + ";").replace(
        "1.838;", other + ";"), state)
    assert not _same_readout(text.replace("0.4900", "0.4901"), state)
    assert not _same_readout(text.replace("smaller variance: pathwise",
                                          "smaller variance: score function"), state)


# --- the ipywidgets front end -------------------------------------------------------


def test_sliders_step_by_slider_step_in_both_front_ends(ipympl):
    # Chapter 4 names the slider values either side of a crossover from SLIDER_STEP
    # and the ranges: a front end with its own step would make its numbers wrong.
    from bokeh.models import Slider

    sliders = {s.name: s for s in es.bokeh_explorer().select({"type": Slider})}
    ranges = {"k_slider": es.K_RANGE, "mu_slider": es.MU_RANGE,
              "sigma_slider": es.SIGMA_RANGE}
    assert set(sliders) == set(ranges)
    for name, (start, end) in ranges.items():
        assert (sliders[name].start, sliders[name].end) == (start, end)
        assert sliders[name].step == es.SLIDER_STEP
    lab = es.ipywidgets_explorer()
    first_row, second_row = lab.widget.children[:2]
    widgets = [*first_row.children[1:], second_row.children[0]]
    assert [(w.min, w.max, w.step) for w in widgets] == [
        (*bounds, es.SLIDER_STEP) for bounds in ranges.values()
    ]


def test_ipywidgets_controls_redraw_the_same_bars(ipympl):
    lab = es.ipywidgets_explorer("cosine", k=1.0, mu=1.0, sigma=1.0)
    first_row, _, canvas, readout = lab.widget.children
    assert type(canvas).__module__.startswith("ipympl")  # the interactive backend
    bars = list(lab.figure.axes[0].patches)
    heights = [bar.get_height() for bar in bars]
    figures_before = plt.get_fignums()
    root = crossover(costs.cosine, (0.5, 2.0), mu=1.0, sigma=1.0, parameter="mu")
    _, above = es.slider_values_around(root, es.K_RANGE)
    first_row.children[1].value = above  # the k slider: its callback runs
    moved = es.estimator_spread_state("cosine", above, 1.0, 1.0)
    assert readout.value == es.readout_text(moved)
    assert readout.value.endswith("smaller variance: score function")
    assert list(lab.figure.axes[0].patches) == bars  # the same bars ...
    assert [bar.get_height() for bar in bars] != heights  # ... with new heights
    np.testing.assert_array_equal(
        [bar.get_height() for bar in bars],
        np.concatenate([moved.pathwise_hist, moved.score_hist]),
    )
    # ... each bar over its own bin of the new edges
    edges = moved.bin_edges
    np.testing.assert_allclose([bar.get_x() for bar in bars], np.tile(edges[:-1], 2),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose([bar.get_width() for bar in bars], edges[1] - edges[0],
                               rtol=1e-9)
    assert plt.get_fignums() == figures_before  # no new figure
    first_row.children[0].value = "step"
    assert readout.value == es.readout_text(
        es.estimator_spread_state("step", above, 1.0, 1.0))


def test_update_redraws_for_the_values_it_is_given(ipympl):
    lab = es.ipywidgets_explorer("cosine", 1.0, 0.5, 1.0)
    drawn = lab.update(cost="square", k=2.0, parameter="sigma")
    assert (drawn.cost, drawn.k, drawn.mu, drawn.sigma, drawn.parameter) == (
        "square", 2.0, 0.5, 1.0, "sigma")
    assert lab.widget.children[-1].value == es.readout_text(drawn)
    bump = lab.update(cost="gaussian_bump", k=-1.0)  # clamped at 0, as on the page
    assert bump.k == 0.0


# --- the Bokeh front end, in the browser --------------------------------------------


@pytest.mark.browser
def test_keyboard_moves_the_controls_and_the_readout_equals_python(
    offline_page, tmp_path
):
    page = open_explorer(
        offline_page, tmp_path, es.bokeh_explorer("cosine", 1.0, 0.5, 1.0), "spread"
    )
    before = model_value(page, "spread_bars", "data")["score"]
    # (cost, k steps, sigma steps, parameter): handle 0 is k, 1 mu, 2 sigma.
    settings = [
        ("square", 10, 0, "mu"),
        ("gaussian_bump", -4, 6, "sigma"),
        ("step", 6, -8, "mu"),
        ("cosine", 20, 3, "sigma"),
        ("gaussian_bump", -60, 0, "mu"),  # k below 0: the page clamps it, as Python
        # k still below 0 (clamped to 0) and sigma 1: every pathwise draw is 0.0,
        # which lies on a bar's edge.
        ("gaussian_bump", 0, -1, "mu"),
    ]
    for cost, k_steps, sigma_steps, parameter in settings:
        set_model(page, "cost_select", "value", cost)
        set_model(page, "parameter_select", "value", parameter)
        press(page, 0, "ArrowRight" if k_steps > 0 else "ArrowLeft", abs(k_steps))
        if sigma_steps:
            press(page, 2, "ArrowRight" if sigma_steps > 0 else "ArrowLeft",
                  abs(sigma_steps))
        k, mu, sigma = (model_value(page, name, "value")
                        for name in ("k_slider", "mu_slider", "sigma_slider"))
        state = _state_at(cost, k, mu, sigma, parameter)
        shown = model_value(page, "spread_readout", "text")
        assert _same_readout(shown, state), (cost, k, mu, sigma, parameter, shown)
        drawn = model_value(page, "spread_bars", "data")
        np.testing.assert_allclose(drawn["left"], state.bin_edges[:-1], rtol=1e-12,
                                   atol=1e-12)
        for name in ("pathwise", "score"):
            np.testing.assert_allclose(drawn[name], getattr(state, f"{name}_hist"),
                                       rtol=1e-9, atol=1e-12)
    assert model_value(page, "k_slider", "value") < 0  # the last setting's k
    after = model_value(page, "spread_bars", "data")["score"]
    assert not np.allclose(np.asarray(after), np.asarray(before))
    assert_clean(offline_page)


SWEEP_JS = """async ([settings]) => {
  const doc = Bokeh.documents[0];
  const model = (name) => doc.get_model_by_name(name);
  const readout = model('spread_readout');
  const rows = [];
  // CustomJS callbacks run asynchronously: set one control, wait for a new readout.
  const move = async (name, value) => {
    const control = model(name);
    if (control.value === value) { return; }
    const before = readout.text;
    control.value = value;
    for (let i = 0; i < 1000 && readout.text === before; i++) {
      await (i < 100 ? Promise.resolve() : new Promise((r) => setTimeout(r, 0)));
    }
  };
  for (const [cost, parameter, k, mu, sigma] of settings) {
    await move('cost_select', cost);
    await move('parameter_select', parameter);
    await move('k_slider', k);
    await move('mu_slider', mu);
    await move('sigma_slider', sigma);
    rows.push([cost, parameter, k, mu, sigma, readout.text]);
  }
  return rows;
}"""


@pytest.mark.browser
def test_readout_equals_python_over_a_sweep_of_settings(offline_page, tmp_path):
    page = open_explorer(offline_page, tmp_path, es.bokeh_explorer(), "sweep")
    page.locator("main").evaluate("main => { main.style.visibility = 'hidden'; }")
    # Every other k on the slider; not the bump's k < 0, where the page clamps k to 0
    # and nothing changes, so the sweep would wait for a new readout in vain.
    ks = es.slider_values(es.K_RANGE)[::2]
    settings = [
        [cost, parameter, float(k), mu, sigma]
        for cost in es.COST_NAMES
        for parameter in ("mu", "sigma")
        for mu, sigma in ((1.0, 1.0), (-0.5, 0.35))
        for k in ks
        if not (cost == "gaussian_bump" and k < 0)
    ]
    rows = page.evaluate(SWEEP_JS, [settings])
    assert len(rows) == len(settings) > 700
    wrong = [
        (cost, parameter, k, mu, sigma, text)
        for cost, parameter, k, mu, sigma, text in rows
        if not _same_readout(text, _state_at(cost, k, mu, sigma, parameter))
    ]
    assert wrong == []
    ties = [
        (cost, parameter, k, mu, sigma, text)
        for cost, parameter, k, mu, sigma, text in rows
        if text != es.readout_text(_state_at(cost, k, mu, sigma, parameter))
    ]
    assert len(ties) <= 4, ties  # a handful of exact decimal ties, no more
    assert_clean(offline_page)


@pytest.mark.browser
def test_js_precision_is_what_chromium_writes(offline_page, tmp_path):
    page = open_explorer(offline_page, tmp_path, es.bokeh_explorer(), "precision")
    generator = np.random.default_rng(3)
    values = np.concatenate([
        generator.standard_normal(300) * 10.0 ** generator.integers(-9, 9, 300),
        [0.0, -0.0, 1234.5, 12345.0, 9.99996, 99999.0, 0.00012345, 2.5, 0.125,
         1e-7, 1e-6, 9999.5, 0.30000000000000004],
    ])
    for digits in (1, 2, 4):
        written = page.evaluate(
            "([xs, d]) => xs.map((x) => (x + 0).toPrecision(d))",
            [values.tolist(), digits],
        )
        assert written == [es.js_precision(v, digits) for v in values]


@pytest.mark.browser
def test_the_costs_javascript_evaluates_to_the_python_numbers(offline_page, tmp_path):
    page = open_explorer(offline_page, tmp_path, es.bokeh_explorer(), "costs")
    for name in es.COST_NAMES:
        f_js, df_js = es.cost_javascript(name)
        f_py, df_py = es._numpy_functions(name)
        x = np.linspace(-3, 3, 41) + 0.013  # off the step's jump
        for js, py in ((f_js, f_py), (df_js, df_py)):
            got = page.evaluate(f"([xs, k]) => xs.map(x => {js})", [x.tolist(), 0.7])
            want = np.broadcast_to(py(x, 0.7), x.shape)
            np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-15)
