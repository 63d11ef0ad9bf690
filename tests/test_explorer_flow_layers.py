"""The flows chapter's explorer (flow_layers): a 2-D flow applied layer by layer.

The state is checked against an independent reference, a PyTorch flow whose layers are
applied at a strength alpha by a wrapper written here; the readout; the ipywidgets front
end; and the Bokeh front end in headless Chromium, whose JavaScript must print the
readout Python prints at every position of the slider.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import scipy.stats as st
import torch
from explorer_pages import assert_clean, model_value, open_explorer, press, set_model

from reparam import flows
from reparam.explorers import flow_layers as fl

F64 = torch.float64


@pytest.fixture(scope="module")
def flow():
    """A 2-D flow of four coupling layers with visibly non-trivial layers, in float32
    (as the chapter's flow is trained)."""
    flow = flows.coupling_flow(2, 4, hidden=8,
                               generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        for layer in flow.layers:
            layer.net[4].weight.mul_(2.0)
    return flow


@pytest.fixture(scope="module")
def weights(flow):
    return fl.coupling_weights(flow)


class Partial(torch.nn.Module):
    """An AffineCoupling at strength alpha: s and t multiplied by alpha."""

    def __init__(self, layer, alpha):
        super().__init__()
        self.layer, self.alpha, self.dim = layer, alpha, layer.dim

    def _map(self, value, sign):
        kept = value[:, self.layer.kept]
        scale, shift = self.layer.scale_and_shift(kept)
        scale, shift = self.alpha * scale, self.alpha * shift
        moved = value[:, self.layer.moved]
        new = moved * torch.exp(scale) + shift if sign > 0 else (
            (moved - shift) * torch.exp(-scale))
        out = value.clone()
        out[:, self.layer.moved] = new
        return out, sign * scale.sum(-1)

    def forward(self, x):
        return self._map(x, +1)

    def inverse(self, y):
        return self._map(y, -1)


def _reference_flow(flow, t):
    layers = list(copy.deepcopy(flow).double().layers)
    full = int(math.floor(t))
    partial = layers[:full]
    if full < len(layers) and t - full > 0:
        partial.append(Partial(layers[full], t - full))
    return flows.Flow(partial, 2).double()


def _cells():
    axis = fl.grid_axis()
    return np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)


def test_the_grid_is_the_centres_of_equal_cells_over_the_window():
    axis = fl.grid_axis()
    width = (fl.WINDOW[1] - fl.WINDOW[0]) / fl.GRID_POINTS
    assert len(axis) == fl.GRID_POINTS
    np.testing.assert_allclose(np.diff(axis), width, rtol=1e-12)
    assert axis[0] == pytest.approx(fl.WINDOW[0] + width / 2, rel=1e-12)
    assert axis[-1] == pytest.approx(fl.WINDOW[1] - width / 2, rel=1e-12)


# --- the state ----------------------------------------------------------------------


@pytest.mark.parametrize("t", [0.0, 0.3, 1.0, 2.5, 3.7, 4.0])
def test_state_is_the_partial_flows_density_and_samples(flow, weights, t):
    state = fl.flow_layers_state(weights, t)
    reference = _reference_flow(flow, t)
    with torch.no_grad():
        density = reference.log_prob(torch.tensor(_cells())).exp().numpy()
        samples, log_det = reference(torch.tensor(fl.SAMPLE_EPS))
        log_density = reference.base_log_prob(torch.tensor(fl.SAMPLE_EPS)) - log_det
    np.testing.assert_allclose(state.density.ravel(), density, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(state.samples, samples.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(state.sample_log_density, log_density.numpy(), rtol=0,
                               atol=1e-12)
    cell = ((fl.WINDOW[1] - fl.WINDOW[0]) / fl.GRID_POINTS) ** 2
    assert state.window_mass == pytest.approx(density.sum() * cell, rel=1e-12)
    assert state.mean_sample_log_density == pytest.approx(float(log_density.mean()),
                                                          abs=1e-12)


def test_state_at_zero_is_the_base_distribution(weights):
    state = fl.flow_layers_state(weights, 0.0)
    np.testing.assert_array_equal(state.samples, fl.SAMPLE_EPS)
    exact = (2 * st.norm.cdf(3.0) - 1) ** 2
    assert abs(state.window_mass - exact) < 1e-3  # the midpoint rule's error
    expected = st.multivariate_normal(np.zeros(2)).logpdf(fl.SAMPLE_EPS)
    np.testing.assert_allclose(state.sample_log_density, expected, rtol=1e-13)


def test_the_interpolation_is_continuous_in_t(weights):
    # At t = k + alpha the layer k + 1 acts at strength alpha: nearly the identity just
    # after k and nearly the full layer just before k + 1.
    for k in range(len(weights)):
        before, after = fl.flow_layers_state(weights, k), fl.flow_layers_state(
            weights, k + 1e-9)
        np.testing.assert_allclose(after.samples, before.samples, atol=1e-7)
        end, almost = fl.flow_layers_state(weights, k + 1), fl.flow_layers_state(
            weights, k + 1 - 1e-9)
        np.testing.assert_allclose(almost.samples, end.samples, atol=1e-7)


@pytest.mark.parametrize("t, error", [(-0.1, ValueError), (4.01, ValueError),
                                      (float("nan"), ValueError), ("1", TypeError)])
def test_state_refuses_bad_input(weights, t, error):
    with pytest.raises(error):
        fl.flow_layers_state(weights, t)


def test_weights_refuse_what_the_explorer_cannot_draw(flow):
    with pytest.raises(TypeError, match="Flow"):
        fl.coupling_weights(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="2-D"):
        three_d = flows.coupling_flow(3, 2, 4, torch.Generator().manual_seed(0))
        fl.coupling_weights(three_d)
    with pytest.raises(TypeError, match="CouplingWeights"):
        fl.flow_layers_state([], 0.0)


# --- the readout --------------------------------------------------------------------


def test_readout_names_t_the_mass_and_the_samples_mean_log_density(weights):
    state = fl.flow_layers_state(weights, 2.5)
    text = fl.readout_text(state)
    assert text.startswith("t = 2.5 of 4 layers: ")
    assert f"mass in the window is {state.window_mass:.3f}" in text
    assert f"the 200 samples' mean log-density is {state.mean_sample_log_density:.3f}" \
        in text


# --- the ipywidgets front end -------------------------------------------------------


def test_ipywidgets_slider_redraws_the_same_artists(ipympl, weights):
    lab = fl.ipywidgets_explorer(weights)
    control, readout, _ = lab.widget.children
    axes = lab.figure.axes[0]
    artists_before = axes.get_children()
    control.value = 1.5
    state = fl.flow_layers_state(weights, 1.5)
    assert axes.get_children() == artists_before
    assert readout.value == fl.readout_text(state)
    np.testing.assert_array_equal(axes.images[0].get_array(), state.density)
    np.testing.assert_array_equal(axes.lines[0].get_xdata(), state.samples[:, 0])
    drawn = lab.update(t=3.0)
    assert drawn.t == 3.0 and readout.value == fl.readout_text(drawn)
    # The colour scale follows the density's peak, and a colour bar shows it.
    assert axes.images[0].get_clim() == (0.0, float(drawn.density.max()))
    assert len(lab.figure.axes) == 2
    assert lab.figure.axes[1].get_xlabel() == fl.COLOUR_BAR_TITLE


# --- the Bokeh front end, in the browser --------------------------------------------

SWEEP_JS = """async (count) => {
  const doc = Bokeh.documents[0];
  const t = doc.get_model_by_name('flow_t_slider');
  const readout = doc.get_model_by_name('flow_readout');
  const rows = [];
  for (let i = 0; i <= count; i++) {
    const value = i / 10;
    if (t.value !== value) {
      const before = readout.text;
      t.value = value;
      for (let k = 0; k < 1000 && readout.text === before; k++) {
        await (k < 100 ? Promise.resolve() : new Promise((r) => setTimeout(r, 0)));
      }
    }
    rows.push([t.value, readout.text]);
  }
  return rows;
}"""


@pytest.mark.browser
def test_keyboard_moves_the_slider_and_the_readout(offline_page, tmp_path, weights):
    page = open_explorer(offline_page, tmp_path, fl.bokeh_explorer(weights), "flow")
    press(page, 0, "ArrowRight", 7)
    t = model_value(page, "flow_t_slider", "value")
    assert t == pytest.approx(0.7)
    text = model_value(page, "flow_readout", "text")
    assert text == fl.readout_text(fl.flow_layers_state(weights, t))
    assert_clean(offline_page)


@pytest.mark.browser
def test_the_colour_scale_follows_the_peak_at_every_t(offline_page, tmp_path, weights):
    page = open_explorer(offline_page, tmp_path, fl.bokeh_explorer(weights), "flow")
    peaks = {}
    for t in (0.0, 1.5, 4.0):
        set_model(page, "flow_t_slider", "value", t)
        page.wait_for_function(
            "t => Bokeh.documents[0].get_model_by_name('flow_readout').text"
            ".startsWith('t = ' + t.toFixed(1))", arg=t)
        peaks[t] = model_value(page, "flow_mapper", "high")
        assert peaks[t] == pytest.approx(
            float(fl.flow_layers_state(weights, t).density.max()), rel=1e-12)
    assert len(set(peaks.values())) == 3  # the scale really moves
    assert model_value(page, "flow_colour_bar", "title") == fl.COLOUR_BAR_TITLE
    assert_clean(offline_page)


@pytest.mark.browser
@pytest.mark.parametrize("width", [390, 1100])
def test_the_square_window_is_drawn_square_and_fits_the_page(browser, tmp_path,
                                                              weights, width):
    # The window is (-3, 3) in both coordinates: its frame must be square, or N(0, I)
    # looks oval; and on a 390 px phone nothing may stick out of the page.
    from explorer_pages import standalone_page, wait_for_bokeh

    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        page.goto(standalone_page(fl.bokeh_explorer(weights), tmp_path / "square.html")
                  .as_uri())
        wait_for_bokeh(page)
        page.wait_for_timeout(300)
        frame = [model_value(page, "flow_plot", side)
                 for side in ("inner_width", "inner_height")]
        assert frame[0] > 200 and abs(frame[0] - frame[1]) <= 0.02 * frame[0], frame
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], widths
    finally:
        context.close()


@pytest.mark.browser
def test_readout_and_picture_equal_python_at_every_slider_position(offline_page,
                                                                   tmp_path, weights):
    page = open_explorer(offline_page, tmp_path, fl.bokeh_explorer(weights), "flow")
    page.locator("main").evaluate("main => { main.style.visibility = 'hidden'; }")
    rows = page.evaluate(SWEEP_JS, 10 * len(weights))
    assert len(rows) == 10 * len(weights) + 1
    wrong = [(t, text) for t, text in rows
             if text != fl.readout_text(fl.flow_layers_state(weights, t))]
    assert wrong == []
    # The picture the page drew last, against Python's density at the same t:
    set_model(page, "flow_t_slider", "value", 2.3)
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('flow_readout').text"
        ".startsWith('t = 2.3')")
    image = page.evaluate(
        "() => Array.from(Bokeh.documents[0].get_model_by_name('flow_density')"
        ".data.image[0])")
    expected = fl.flow_layers_state(weights, 2.3).density.ravel()
    np.testing.assert_allclose(np.array(image), expected, rtol=1e-6, atol=1e-9)
    assert_clean(offline_page)
