"""Chapter 2's explorer (normal_map): its state, its readout, its two front ends.

The page formats numbers with JavaScript's ``toFixed``, which rounds an exact tie away
from zero; Python's ``format`` rounds it to even. At mu = -2.35, sigma = 0.45 the strip
starts at exactly -2.125, and the two used to print -2.13 and -2.12.
"""

from __future__ import annotations

from statistics import NormalDist

import matplotlib.pyplot as plt
import numpy as np
import pytest
import scipy.stats as st
from explorer_pages import (
    assert_clean,
    open_explorer,
    press,
    standalone_page,
    wait_for_bokeh,
)

from reparam.explorers import normal_map as nm
from reparam.explorers._bokeh import js_fixed

# --- the state ----------------------------------------------------------------------


@pytest.mark.parametrize("mu, sigma", [(0.0, 1.0), (1.0, 2.0), (-2.35, 0.45)])
def test_state_maps_each_draw_and_keeps_the_strip_mass(mu, sigma):
    state = nm.normal_map_state(mu, sigma)
    np.testing.assert_array_equal(state.samples_x, mu + sigma * nm.SAMPLE_EPS)
    np.testing.assert_allclose(state.x_density, st.norm.pdf(state.x, mu, sigma),
                               rtol=1e-13)
    exact = st.norm.cdf(nm.STRIP[1]) - st.norm.cdf(nm.STRIP[0])
    assert abs(state.strip_mass_x - exact) < 1e-7
    assert abs(state.strip_mass_x - state.strip_mass_eps) < 1e-12


def test_the_fixed_draws_are_symmetric_quantiles_one_of_them_in_the_strip():
    # Reference: the standard library's inverse normal CDF, not scipy's ndtri.
    probabilities = (np.arange(1, nm.SAMPLE_COUNT + 1) - 0.5) / nm.SAMPLE_COUNT
    reference = [NormalDist().inv_cdf(p) for p in probabilities]
    np.testing.assert_allclose(nm.SAMPLE_EPS, reference, rtol=1e-13)
    assert len(nm.SAMPLE_EPS) == 6
    np.testing.assert_array_equal(nm.SAMPLE_EPS, -nm.SAMPLE_EPS[::-1])
    assert np.all(np.diff(nm.SAMPLE_EPS) > 0)
    low, high = nm.STRIP
    assert ((nm.SAMPLE_EPS >= low) & (nm.SAMPLE_EPS <= high)).sum() == 1


@pytest.mark.parametrize("mu, sigma, error", [
    ("0", 1.0, TypeError), (0.0, 0.0, ValueError), (float("nan"), 1.0, ValueError),
    (0.0, -1.0, ValueError),
])
def test_state_refuses_bad_input(mu, sigma, error):
    with pytest.raises(error):
        nm.normal_map_state(mu, sigma)


# --- the readout --------------------------------------------------------------------


def test_readout_states_equal_masses():
    text = nm.readout_text(nm.normal_map_state(1.0, 2.0))
    assert "x in [2.00, 3.00]" in text
    expected = st.norm.cdf(1.0) - st.norm.cdf(0.5)
    assert f"has mass {expected:.4f}" in text


# --- the ipywidgets front end -------------------------------------------------------


def test_ipywidgets_sliders_redraw_the_same_artists(ipympl):
    lab = nm.ipywidgets_explorer(mu=0.5, sigma=1.5)
    mu_slider, sigma_slider = lab.widget.children[0].children
    artists_before = [ax.get_children() for ax in lab.figure.axes]
    figures_before = plt.get_fignums()
    mu_slider.value = -1.0  # each assignment runs the slider callback
    sigma_slider.value = 0.7
    state = nm.normal_map_state(-1.0, 0.7)
    assert [ax.get_children() for ax in lab.figure.axes] == artists_before
    assert plt.get_fignums() == figures_before
    x_line = lab.figure.axes[1].lines[0]  # the density of x, on its side
    np.testing.assert_array_equal(x_line.get_ydata(), state.x)
    drawn = lab.update(mu=0.2, sigma=1.1)
    assert (drawn.mu, drawn.sigma) == (0.2, 1.1)
    np.testing.assert_array_equal(x_line.get_ydata(), drawn.x)


# --- the Bokeh front end, in the browser --------------------------------------------


SWEEP_JS = """async ([muStart, muEnd, muStep, sigmaStart, sigmaEnd, sigmaStep]) => {
  const doc = Bokeh.documents[0];
  const mu = doc.get_model_by_name('mu_slider');
  const sigma = doc.get_model_by_name('sigma_slider');
  const readout = doc.get_model_by_name('strip_readout');
  // CustomJS callbacks run asynchronously: set one slider, wait for the new readout.
  const move = async (slider, value) => {
    if (slider.value === value) { return; }
    const before = readout.text;
    slider.value = value;
    for (let k = 0; k < 1000 && readout.text === before; k++) {
      await (k < 100 ? Promise.resolve() : new Promise((r) => setTimeout(r, 0)));
    }
  };
  const rows = [];
  for (let i = 0; muStart + i * muStep <= muEnd + 1e-9; i++) {
    for (let j = 0; sigmaStart + j * sigmaStep <= sigmaEnd + 1e-9; j++) {
      await move(mu, muStart + i * muStep);
      await move(sigma, sigmaStart + j * sigmaStep);
      rows.push([mu.value, sigma.value, readout.text]);
    }
  }
  return rows;
}"""


def _open(offline_page, tmp_path, mu, sigma):
    layout = nm.bokeh_explorer(mu, sigma)
    page = offline_page.open(standalone_page(layout, tmp_path / "normal_map.html"))
    wait_for_bokeh(page)
    return page


def test_js_fixed_rounds_ties_away_from_zero_like_tofixed():
    assert js_fixed(-2.125, 2) == "-2.13"  # format(-2.125, ".2f") is "-2.12"
    assert js_fixed(0.625, 2) == "0.63"
    assert js_fixed(2.675, 2) == "2.67"  # not a tie: 2.675 is 2.67499999... in binary
    assert js_fixed(-0.0, 2) == "0.00"
    assert js_fixed(-1e-17, 2) == "-0.00"
    assert js_fixed(0.14988228, 4) == "0.1499"


@pytest.mark.browser
def test_readout_at_a_rounding_tie_set_by_keyboard(offline_page, tmp_path):
    page = _open(offline_page, tmp_path, -2.35, 0.5)
    page.locator(".noUi-handle").nth(1).focus()
    page.keyboard.press("ArrowLeft")  # sigma 0.5 -> 0.45
    mu, sigma, text = page.evaluate(
        "() => { const d = Bokeh.documents[0];"
        " return [d.get_model_by_name('mu_slider').value,"
        " d.get_model_by_name('sigma_slider').value,"
        " d.get_model_by_name('strip_readout').text]; }"
    )
    assert nm.normal_map_state(mu, sigma).strip_x[0] == -2.125  # an exact tie
    assert "x in [-2.13, " in text
    assert text == nm.readout_text(nm.normal_map_state(mu, sigma))
    assert offline_page.page_errors == []


@pytest.mark.browser
def test_readout_equals_python_over_a_grid_of_slider_settings(offline_page, tmp_path):
    # Every mu step, and sigma = 0.35, 0.55, ..., 2.35: with the old formatting 62 of
    # these 1331 settings printed an endpoint differently from the page (129 of the
    # 5445 settings the sliders can reach).
    page = _open(offline_page, tmp_path, 0.5, 1.5)
    # The readout is read from the model, not the screen: the page is hidden during the
    # sweep, so that Chromium does not paint each setting's picture (measured once
    # alone: 13 s shown, 8-9 s hidden). Bokeh's callbacks and canvas drawing run as
    # before.
    page.locator("main").evaluate("main => { main.style.visibility = 'hidden'; }")
    mu_low, mu_high = nm.MU_RANGE
    grid = [mu_low, mu_high, 0.05, 0.35, nm.SIGMA_RANGE[1], 0.2]
    rows = page.evaluate(SWEEP_JS, grid)
    assert len(rows) == 121 * 11
    wrong = [
        (mu, sigma, text)
        for mu, sigma, text in rows
        if text != nm.readout_text(nm.normal_map_state(mu, sigma))
    ]
    assert wrong == []
    assert offline_page.page_errors == []
    assert offline_page.console_errors == []


@pytest.mark.browser
def test_keyboard_moves_the_sliders_and_the_readout(offline_page, tmp_path):
    page = open_explorer(offline_page, tmp_path, nm.bokeh_explorer(0.5, 1.5), "nm")
    press(page, 0, "ArrowRight", 10)  # mu 0.5 -> 1.0
    press(page, 1, "ArrowRight", 10)  # sigma 1.5 -> 2.0
    text = page.evaluate(
        "() => Bokeh.documents[0].get_model_by_name('strip_readout').text")
    assert text == nm.readout_text(nm.normal_map_state(1.0, 2.0))
    assert_clean(offline_page)
