"""Chapter 6's explorer (simplex): its state, its readout, its two front ends.

The state is checked against references it does not use: the relaxed samples against
torch's softmax and RelaxedOneHotCategorical, the exact mean E[s] against a 400-node
rule and against torch's own relaxed samples. The page is checked in headless
Chromium: after the sliders move (by keyboard, and by setting the models), the page's
readout is exactly ``readout_text(simplex_state(...))``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from explorer_pages import assert_clean, model_value, open_explorer, press, set_model
from scipy import stats
from torch.distributions import RelaxedOneHotCategorical

from reparam import discrete
from reparam.explorers import simplex
from reparam.explorers.simplex import (
    SAMPLE_GUMBELS,
    VERTICES,
    readout_text,
    simplex_state,
    to_triangle,
)

F64 = torch.float64
SETTINGS = [
    ((1.0, 0.0, -1.0), 0.5),
    ((0.0, 0.0, 0.0), 5.0),
    ((-3.0, 2.5, 0.3), 0.05),
    ((3.0, 3.0, -3.0), 1.3),
    ((1.0, 0.5, -0.5), 0.1),
]

# --- the state ----------------------------------------------------------------------


def test_corners_and_centre_map_to_the_triangle_exactly():
    assert np.array_equal(to_triangle(np.eye(3)), VERTICES)
    centre = to_triangle(np.full(3, 1 / 3))
    assert np.allclose(centre, [0.5, np.sqrt(3) / 6], atol=1e-15)


@pytest.mark.parametrize("logits, temperature", SETTINGS)
def test_state_is_the_softmax_of_the_fixed_noise(logits, temperature):
    state = simplex_state(logits, temperature)
    theta = torch.tensor(logits, dtype=F64)
    reference = torch.softmax(
        (theta + torch.from_numpy(SAMPLE_GUMBELS)) / temperature, 1
    )
    assert np.allclose(state.samples, reference.numpy(), rtol=1e-12, atol=1e-15)
    assert np.allclose(state.samples.sum(1), 1.0, atol=1e-12)
    assert np.allclose(state.mean, state.samples.mean(0), atol=1e-15)
    assert np.allclose(state.probabilities, torch.softmax(theta, 0).numpy(), atol=1e-15)
    assert np.allclose(state.points, state.samples @ VERTICES, atol=1e-15)
    assert np.isclose(state.gap, 0.5 * np.abs(state.mean - state.probabilities).sum())


@pytest.mark.parametrize("logits, temperature", SETTINGS)
def test_exact_mean_agrees_with_a_finer_rule(logits, temperature):
    # EXACT_ORDER nodes per dimension against 400: within 2e-4 over the sliders' range
    # (the worst cases are the corners of the logit range), so the readout's three
    # decimals are right to about one unit.
    state = simplex_state(logits, temperature)
    finer = discrete.relaxed_expectation(
        lambda s, _z: s, torch.tensor(logits, dtype=F64), temperature, order=400
    ).numpy()
    assert np.abs(state.exact_mean - finer).max() < 2e-4
    assert abs(state.exact_gap - 0.5 * np.abs(finer - state.probabilities).sum()) < 2e-4
    assert np.allclose(state.exact_mean_point, to_triangle(state.exact_mean))


def test_exact_mean_against_torch_relaxed_samples():
    # An independent route: the mean of 400,000 of torch's own relaxed samples.
    logits, temperature, n = (1.0, 0.5, -0.5), 0.7, 400_000
    torch.manual_seed(0)
    draws = RelaxedOneHotCategorical(
        torch.tensor(temperature, dtype=F64), logits=torch.tensor(logits, dtype=F64)
    ).sample((n,))
    state = simplex_state(logits, temperature)
    standard_error = draws.std(0).numpy() / np.sqrt(n)
    assert np.all(np.abs(draws.mean(0).numpy() - state.exact_mean)
                  < 4 * standard_error)


def test_the_exact_distance_falls_with_the_temperature_and_the_dots_do_not():
    # What the explorer shows (review of 2026-12-06, finding 1): as tau falls, E[s]
    # approaches p, while the mean of the fixed 300 dots tends to their Gumbel-max
    # frequencies, whose distance from p is Monte Carlo error.
    logits = (1.0, 0.5, -0.5)
    taus = np.arange(5.0, 0.04, -0.05)
    states = [simplex_state(logits, tau) for tau in taus]
    exact = np.array([s.exact_gap for s in states])
    dots = np.array([s.gap for s in states])
    assert np.all(np.diff(exact) < 0)
    assert dots[-1] > dots.min() + 0.01  # below some tau the dots move away again
    counts = np.bincount(np.argmax(np.array(logits) + SAMPLE_GUMBELS, 1), minlength=3)
    assert np.allclose(states[-1].mean, counts / len(SAMPLE_GUMBELS), atol=0.01)
    for state in states:  # the dots' mean within 4 standard errors of E[s]
        standard_error = state.samples.std(0, ddof=1) / np.sqrt(simplex.N_SAMPLES)
        assert np.all(np.abs(state.mean - state.exact_mean) <= 4 * standard_error)


def test_state_samples_follow_torch_relaxed_one_hot_categorical_law():
    # The fixed noise is a real Gumbel sample, so the 300 relaxed samples it gives
    # follow torch's law: two-sample KS test of the first coordinate at level 1e-3.
    torch.manual_seed(0)
    theirs = RelaxedOneHotCategorical(
        torch.tensor(0.7, dtype=F64),
        logits=torch.tensor([1.0, 0.0, -1.0], dtype=F64),
    ).sample((20_000,))
    ours = simplex_state((1.0, 0.0, -1.0), 0.7).samples
    assert stats.ks_2samp(ours[:, 0], theirs[:, 0].numpy()).pvalue > 1e-3


def test_fixed_noise_is_a_gumbel_sample():
    # All 900 fixed draws against the Gumbel(0, 1) CDF, Kolmogorov-Smirnov at level
    # 1e-3 (seeded, so never flaky); exponential noise, -log U, fails by far.
    assert SAMPLE_GUMBELS.shape == (simplex.N_SAMPLES, 3)
    assert stats.kstest(SAMPLE_GUMBELS.ravel(), stats.gumbel_r.cdf).pvalue > 1e-3
    exponential = -np.log(np.random.default_rng(6).uniform(size=900))  # the power
    assert stats.kstest(exponential, stats.gumbel_r.cdf).pvalue < 1e-10


def test_state_is_finite_for_logits_far_outside_the_slider_range():
    # Without the row maximum subtracted, exp(800 / 0.5) overflows and the samples are
    # NaN; shifting every logit by a constant must change nothing.
    far = simplex_state((800.0, 799.0, -400.0), 0.5)
    near = simplex_state((1.0, 0.0, -1199.0), 0.5)
    assert np.isfinite(far.samples).all() and np.isfinite(far.probabilities).all()
    assert np.allclose(far.samples, near.samples, atol=1e-12)
    assert np.allclose(far.probabilities, near.probabilities, atol=1e-15)


def test_high_temperature_pulls_the_samples_to_the_centre():
    hot = simplex_state((1.0, 0.0, -1.0), 50.0)
    assert np.allclose(hot.mean, 1 / 3, atol=0.02)
    assert np.allclose(hot.exact_mean, 1 / 3, atol=0.02)


@pytest.mark.parametrize(
    "logits, temperature, error",
    [
        ((1.0, 0.0), 1.0, ValueError),
        ((0.0, np.nan, 0.0), 1.0, ValueError),
        ((0.0, 0.0, 0.0), 0.0, ValueError),
        ((0.0, 0.0, 0.0), -1.0, ValueError),
        ((0.0, 0.0, 0.0), np.inf, ValueError),
        ((0.0, 0.0, 0.0), "1", TypeError),
    ],
)
def test_state_refuses_bad_input(logits, temperature, error):
    with pytest.raises(error):
        simplex_state(logits, temperature)


# --- the readout --------------------------------------------------------------------


def test_readout_states_both_means_and_both_distances():
    state = simplex_state((1.0, 0.5, -0.5), 0.1)
    text = readout_text(state)
    assert text.startswith("τ = 0.10: exact E[s] = (0.54")
    assert f"mean of the {simplex.N_SAMPLES} dots = (0.587, 0.293, 0.120)" in text
    assert "softmax(θ) = (0.547, 0.331, 0.122)" in text
    assert text.endswith("exact 0.0011, from the dots 0.0408")


# --- the ipywidgets front end -------------------------------------------------------


def test_ipywidgets_sliders_redraw_the_same_artists(ipympl):
    lab = simplex.ipywidgets_explorer((1.0, 0.0, -1.0), 0.5)
    tau_slider, *logit_sliders = lab.widget.children[0].children
    artists_before = [ax.get_children() for ax in lab.figure.axes]
    figures_before = plt.get_fignums()
    logit_sliders[1].value = 1.5  # each assignment runs the slider callback
    tau_slider.value = 2.0
    expected = simplex_state((1.0, 1.5, -1.0), tau_slider.value)
    assert [ax.get_children() for ax in lab.figure.axes] == artists_before
    assert plt.get_fignums() == figures_before
    scatter = lab.figure.axes[0].collections[0]
    assert np.allclose(scatter.get_offsets(), expected.points)
    drawn = lab.update(logits=(0.0, 2.0, -1.0), temperature=0.3)
    assert drawn.temperature == 0.3
    assert np.allclose(scatter.get_offsets(), drawn.points)
    markers = {line.get_label(): np.ravel(line.get_data())
               for line in lab.figure.axes[0].lines}
    assert np.allclose(markers["their mean"], drawn.mean_point)
    assert np.allclose(markers[r"exact $\mathbb{E}[s]$"], drawn.exact_mean_point)
    assert np.allclose(markers[r"softmax($\theta$)"], drawn.probability_point)


def test_ipywidgets_temperature_slider_steps_log10_tau_as_the_chapter_assumes(ipympl):
    # Chapter 6 checks the exact mean along the values this slider can take.
    tau_slider = simplex.ipywidgets_explorer((1.0, 0.0, -1.0), 0.5).widget.children[0]
    tau_slider = tau_slider.children[0]
    assert tau_slider.step == simplex.LOG_TEMPERATURE_STEP and tau_slider.base == 10
    assert np.allclose(10 ** np.array([tau_slider.min, tau_slider.max]),
                       simplex.TEMPERATURE_RANGE)
    steps = (tau_slider.max - tau_slider.min) / tau_slider.step
    assert abs(steps - round(steps)) < 1e-9  # the grid ends at both ends of the range


# --- the Bokeh front end ------------------------------------------------------------


def test_bokeh_layout_has_titled_sliders_and_the_python_readout():
    from bokeh.models import Div, Slider

    layout = simplex.bokeh_explorer((1.0, 0.0, -1.0), 0.5)
    titles = {s.title for s in layout.select({"type": Slider})}  # a set: no order
    assert titles == {"τ, the temperature", "θ1, the logit of category 1",
                      "θ2, the logit of category 2", "θ3, the logit of category 3"}
    (div,) = layout.select({"type": Div})
    assert div.text == readout_text(simplex_state((1.0, 0.0, -1.0), 0.5))
    (tau_slider,) = layout.select({"type": Slider, "title": "τ, the temperature"})
    assert tau_slider.step == simplex.TEMPERATURE_STEP
    assert (tau_slider.start, tau_slider.end) == simplex.TEMPERATURE_RANGE


def _readout(page) -> str:
    return model_value(page, "simplex_readout", "text")


def _settings(page) -> tuple[tuple[float, float, float], float]:
    logits = tuple(model_value(page, f"theta{k}", "value") for k in (1, 2, 3))
    return logits, model_value(page, "tau_slider", "value")


@pytest.mark.browser
def test_keyboard_moves_the_sliders_and_the_readout(offline_page, tmp_path):
    page = open_explorer(offline_page, tmp_path,
                         simplex.bokeh_explorer((1.0, 0.5, -0.5), 0.5), "simplex")
    press(page, 0, "ArrowLeft", 8)  # tau 0.5 -> 0.1
    logits, tau = _settings(page)
    assert abs(tau - 0.1) < 1e-9
    assert _readout(page) == readout_text(simplex_state(logits, tau))
    press(page, 2, "ArrowRight", 10)  # theta2 0.5 -> 1.0
    press(page, 3, "ArrowLeft", 20)  # theta3 -0.5 -> -1.5
    logits, tau = _settings(page)
    assert np.allclose(logits, (1.0, 1.0, -1.5))
    assert _readout(page) == readout_text(simplex_state(logits, tau))
    assert_clean(offline_page)


@pytest.mark.browser
def test_page_draws_the_python_state_at_several_settings(offline_page, tmp_path):
    # Every drawn source, not only the readout: the dots, both means and p.
    page = open_explorer(offline_page, tmp_path,
                         simplex.bokeh_explorer((1.0, 0.5, -0.5), 0.5), "simplex")
    for logits, temperature in SETTINGS:
        before = _readout(page)
        for k, value in enumerate(logits, start=1):
            set_model(page, f"theta{k}", "value", value)
        set_model(page, "tau_slider", "value", temperature)
        page.wait_for_function(
            "(before) => Bokeh.documents[0].get_model_by_name('simplex_readout').text"
            " !== before", arg=before)
        state = simplex_state(logits, temperature)
        assert _readout(page) == readout_text(state)
        xs = model_value(page, "samples", "data")["x"]
        xs = np.array([xs[str(i)] for i in range(len(xs))] if isinstance(xs, dict)
                      else xs)
        assert np.allclose(xs, state.points[:, 0], rtol=0, atol=1e-12)
        for name, point in [("mean", state.mean_point),
                            ("exact_mean", state.exact_mean_point),
                            ("probabilities", state.probability_point)]:
            data = model_value(page, name, "data")
            assert np.allclose([data["x"][0], data["y"][0]], point, atol=1e-12), name
    assert_clean(offline_page)
