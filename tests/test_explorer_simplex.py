"""The simplex explorer of Chapter 6: its pure state, both front ends, and the browser
code."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import torch
from torch.distributions import RelaxedOneHotCategorical

from reparam.explorers import simplex
from reparam.explorers.simplex import (
    BOKEH_CALLBACK,
    SAMPLE_GUMBELS,
    VERTICES,
    readout_text,
    simplex_state,
    to_triangle,
)

SETTINGS = [
    ((1.0, 0.0, -1.0), 0.5),
    ((0.0, 0.0, 0.0), 5.0),
    ((-3.0, 2.5, 0.3), 0.05),
    ((3.0, 3.0, -3.0), 1.3),
]


def test_corners_and_centre_map_to_the_triangle_exactly():
    assert np.array_equal(to_triangle(np.eye(3)), VERTICES)
    centre = to_triangle(np.full(3, 1 / 3))
    assert np.allclose(centre, [0.5, np.sqrt(3) / 6], atol=1e-15)


@pytest.mark.parametrize("logits, temperature", SETTINGS)
def test_state_is_the_softmax_of_the_fixed_noise(logits, temperature):
    state = simplex_state(logits, temperature)
    theta = torch.tensor(logits, dtype=torch.float64)
    reference = torch.softmax(
        (theta + torch.from_numpy(SAMPLE_GUMBELS)) / temperature, 1
    )
    assert np.allclose(state.samples, reference.numpy(), rtol=1e-12, atol=1e-15)
    assert np.allclose(state.samples.sum(1), 1.0, atol=1e-12)
    assert np.allclose(state.mean, state.samples.mean(0), atol=1e-15)
    assert np.allclose(state.probabilities, torch.softmax(theta, 0).numpy(), atol=1e-15)
    assert np.allclose(state.points, state.samples @ VERTICES, atol=1e-15)
    assert np.isclose(state.gap, 0.5 * np.abs(state.mean - state.probabilities).sum())


def test_state_samples_follow_torch_relaxed_one_hot_categorical_law():
    # The fixed noise is a real Gumbel sample, so the 300 relaxed samples it gives
    # follow torch's law: two-sample KS test of the first coordinate at level 1e-3.
    torch.manual_seed(0)
    theirs = RelaxedOneHotCategorical(
        torch.tensor(0.7, dtype=torch.float64),
        logits=torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64),
    ).sample((20_000,))
    ours = simplex_state((1.0, 0.0, -1.0), 0.7).samples
    from scipy import stats

    assert stats.ks_2samp(ours[:, 0], theirs[:, 0].numpy()).pvalue > 1e-3


def test_fixed_noise_is_a_gumbel_sample():
    # All 900 fixed draws against the Gumbel(0, 1) CDF, Kolmogorov-Smirnov at level
    # 1e-3 (seeded, so never flaky); exponential noise, -log U, fails by far.
    from scipy import stats

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


def test_low_temperature_mean_approaches_softmax_high_temperature_approaches_centre():
    cold = simplex_state((1.0, 0.0, -1.0), 0.05)
    hot = simplex_state((1.0, 0.0, -1.0), 50.0)
    # Cold: the samples sit at corners, so their mean is the Gumbel-max frequencies of
    # the fixed noise (a sample of size 300 of Cat(p)): within 4 standard errors of p.
    counts = np.bincount(
        np.argmax(np.array([1.0, 0.0, -1.0]) + SAMPLE_GUMBELS, 1), minlength=3
    )
    # (a few near-ties are not yet at a corner at tau = 0.05)
    assert np.allclose(cold.mean, counts / len(SAMPLE_GUMBELS), atol=0.01)
    se = np.sqrt(cold.probabilities * (1 - cold.probabilities) / len(SAMPLE_GUMBELS))
    assert np.all(np.abs(cold.mean - cold.probabilities) < 4 * se)
    assert np.allclose(hot.mean, 1 / 3, atol=0.02)
    assert hot.gap > 0.2 > cold.gap


@pytest.mark.parametrize(
    "logits, temperature",
    [
        ((1.0, 0.0), 1.0),
        ((0.0, np.nan, 0.0), 1.0),
        ((0.0, 0.0, 0.0), 0.0),
        ((0.0, 0.0, 0.0), -1.0),
        ((0.0, 0.0, 0.0), np.inf),
    ],
)
def test_bad_settings_raise(logits, temperature):
    with pytest.raises(ValueError):
        simplex_state(logits, temperature)


def test_matplotlib_update_changes_the_same_artists():
    explorer = simplex.MatplotlibSimplexExplorer((1.0, 0.0, -1.0), 0.5)
    scatter, lines = explorer.scatter, list(explorer.ax.lines)
    state = explorer.update((0.0, 2.0, -1.0), 2.0)
    assert explorer.scatter is scatter and list(explorer.ax.lines) == lines
    assert np.allclose(explorer.scatter.get_offsets(), state.points)
    assert np.allclose(np.ravel(explorer.mean_marker.get_data()), state.mean_point)
    assert np.allclose(np.ravel(explorer.p_marker.get_data()), state.probability_point)


def test_ipywidgets_explorer_sliders_drive_the_figure():
    import matplotlib.pyplot as plt

    previous = plt.get_backend()
    plt.switch_backend("module://ipympl.backend_nbagg")  # the canvas is then a widget
    try:
        widget, explorer = simplex.ipywidgets_explorer((1.0, 0.0, -1.0), 0.5)
        controls = widget.children[0].children
        controls[2].value = 1.5  # theta2
        expected = simplex_state((1.0, 1.5, -1.0), 0.5)
        assert np.allclose(explorer.scatter.get_offsets(), expected.points)
        controls[0].value = 2.0  # tau
        expected = simplex_state((1.0, 1.5, -1.0), 2.0)
        assert np.allclose(
            np.ravel(explorer.mean_marker.get_data()), expected.mean_point
        )
        plt.close(explorer.figure)
    finally:
        plt.switch_backend(previous)


def test_bokeh_layout_has_titled_sliders_and_the_python_readout():
    from bokeh.models import Div, Slider

    layout = simplex.bokeh_explorer((1.0, 0.0, -1.0), 0.5)
    sliders = list(layout.select({"type": Slider}))
    assert len(sliders) == 4 and all(len(s.title) > 10 for s in sliders)
    (div,) = layout.select({"type": Div})
    assert div.text == readout_text(simplex_state((1.0, 0.0, -1.0), 0.5))
    html = simplex.bokeh_html(layout)
    assert "data-root-id" in html and "cdn.bokeh.org" not in html


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
@pytest.mark.parametrize("logits, temperature", SETTINGS)
def test_browser_callback_computes_the_python_state(logits, temperature):
    # Run the CustomJS code in node with stand-ins for the Bokeh models.
    args = {
        "g0": list(SAMPLE_GUMBELS[:, 0]),
        "g1": list(SAMPLE_GUMBELS[:, 1]),
        "g2": list(SAMPLE_GUMBELS[:, 2]),
        "vx": list(VERTICES[:, 0]),
        "vy": list(VERTICES[:, 1]),
    }
    script = f"""
const a = {json.dumps(args)};
const m = {{tau_slider: {{value: {temperature}}}, theta1: {{value: {logits[0]}}},
  theta2: {{value: {logits[1]}}}, theta3: {{value: {logits[2]}}},
  samples: {{data: {{}}}}, mean_source: {{data: {{}}}}, p_source: {{data: {{}}}},
  readout: {{text: ""}}}};
const names = Object.keys(m).concat(Object.keys(a));
const f = new Function(...names, {json.dumps(BOKEH_CALLBACK)});
f(...Object.values(m), ...Object.values(a));
console.log(JSON.stringify({{samples: m.samples.data, mean: m.mean_source.data,
  p: m.p_source.data, readout: m.readout.text}}));
"""
    result = json.loads(
        subprocess.run(
            [NODE, "-e", script], capture_output=True, text=True, check=True, timeout=60
        ).stdout
    )
    state = simplex_state(logits, temperature)
    assert np.allclose(result["samples"]["x"], state.points[:, 0], rtol=0, atol=1e-12)
    assert np.allclose(result["samples"]["y"], state.points[:, 1], rtol=0, atol=1e-12)
    assert np.allclose(
        [result["mean"]["x"][0], result["mean"]["y"][0]], state.mean_point, atol=1e-12
    )
    assert np.allclose(
        [result["p"]["x"][0], result["p"]["y"][0]], state.probability_point, atol=1e-12
    )
    assert result["readout"] == readout_text(state)
