"""Chapter 5's explorer (gamma_quantile): its state, its readout, its two front ends.

The state is checked against SciPy (the Gamma CDF at each sample, central differences
of SciPy's inverse for the speeds), not against reparam. The page ships one state per
slider position (the Gamma quantile has no closed form a browser could evaluate), so
the browser tests check that what the page draws is the Python state of the slider's
grid position.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from explorer_pages import assert_clean, model_value, open_explorer, press, set_model
from scipy import special

from reparam.explorers import bokeh_html
from reparam.explorers import gamma_quantile as gq

# --- the state ----------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.2, 0.7, 2.0, 15.0])
def test_state_samples_sit_at_their_fixed_uniforms(alpha):
    state = gq.gamma_quantile_state(alpha)
    # P(alpha, x_i) = u_i: each dot is the quantile of its own fixed u.
    np.testing.assert_allclose(special.gammainc(alpha, state.samples_x), gq.SAMPLE_U,
                               rtol=1e-10, atol=0)
    np.testing.assert_allclose(special.gammainc(alpha, state.quantile), gq.U_GRID,
                               rtol=1e-10, atol=0)
    assert np.all(np.diff(state.quantile) > 0)  # a quantile function increases


@pytest.mark.parametrize("alpha", [0.2, 2.0, 15.0])
def test_state_speeds_match_central_differences_of_scipys_inverse(alpha):
    state = gq.gamma_quantile_state(alpha)
    h = 1e-5 * alpha
    difference = (special.gammaincinv(alpha + h, gq.SAMPLE_U)
                  - special.gammaincinv(alpha - h, gq.SAMPLE_U)) / (2 * h)
    np.testing.assert_allclose(state.samples_dx_dalpha, difference, rtol=1e-5,
                               atol=1e-12)


def test_the_median_entry_is_u_one_half():
    assert gq.U_GRID[gq.MEDIAN_INDEX] == pytest.approx(0.5, abs=1e-15)
    state = gq.gamma_quantile_state(3.0)
    assert state.median == float(special.gammaincinv(3.0, 0.5))
    assert state.median_dx_dalpha == state.quantile_dx_dalpha[gq.MEDIAN_INDEX]


def test_the_vectorized_states_equal_single_states_exactly():
    table = gq.gamma_quantile_states(gq.ALPHA_GRID)
    assert len(table) == len(gq.ALPHA_GRID) == 149
    for i in [0, 7, 50, len(gq.ALPHA_GRID) - 1]:
        single = gq.gamma_quantile_state(gq.ALPHA_GRID[i])
        np.testing.assert_array_equal(table[i].quantile, single.quantile)
        np.testing.assert_array_equal(table[i].quantile_dx_dalpha,
                                      single.quantile_dx_dalpha)
        np.testing.assert_array_equal(table[i].samples_dx_dalpha,
                                      single.samples_dx_dalpha)


def test_states_are_deterministic_with_other_draws_in_between():
    first = gq.gamma_quantile_state(1.3)
    np.random.default_rng(12).uniform(size=100)
    np.random.seed(3)  # noqa: NPY002 (the legacy global state must not matter either)
    np.random.uniform(size=10)  # noqa: NPY002
    second = gq.gamma_quantile_state(1.3)
    np.testing.assert_array_equal(first.samples_x, second.samples_x)
    np.testing.assert_array_equal(first.samples_dx_dalpha, second.samples_dx_dalpha)
    assert np.all((gq.SAMPLE_U > 0) & (gq.SAMPLE_U < 1)) and len(gq.SAMPLE_U) == 7


def test_a_larger_alpha_raises_the_curve_and_the_dots_at_every_slider_step():
    # The chapter's alt text says so; the slider's own states must show it.
    states = gq.gamma_quantile_states(gq.ALPHA_GRID)
    for name in ("quantile", "samples_x"):
        rows = np.array([getattr(state, name) for state in states])
        assert np.all(np.diff(rows, axis=0) > 0), name


def test_the_fixed_axes_hold_every_curve_and_dot_at_every_slider_position():
    # "A moving dot means a moving sample": the axes never move, so they must hold
    # what every position of the slider draws, with a margin.
    x_max, (dx_low, dx_high) = gq._axis_limits()
    states = gq.gamma_quantile_states(gq.ALPHA_GRID)
    xs = np.concatenate([np.r_[s.quantile, s.samples_x] for s in states])
    dxs = np.concatenate([np.r_[s.quantile_dx_dalpha, s.samples_dx_dalpha]
                          for s in states])
    assert xs.min() > 0 and xs.max() * 1.04 < x_max
    assert dx_low <= 0 < dxs.min() and dxs.max() * 1.04 < dx_high


@pytest.mark.parametrize("alpha, error", [
    (0.0, ValueError), (-1.0, ValueError), (float("nan"), ValueError),
    (float("inf"), ValueError), ("2", TypeError), (True, TypeError),
])
def test_state_refuses_bad_input(alpha, error):
    with pytest.raises(error, match="alpha"):
        gq.gamma_quantile_state(alpha)


def test_the_grid_index_is_the_javascript_rule_and_refuses_outside_the_slider():
    assert gq.grid_index(0.2) == 0 and gq.grid_index(15.0) == 148
    assert gq.grid_index(3.0000000000000004) == 28 and gq.ALPHA_GRID[28] == 3.0
    for alpha in (0.1, 15.2, 40.0):
        with pytest.raises(ValueError, match="alpha"):
            gq.grid_index(alpha)
    with pytest.raises(ValueError, match="alpha"):
        gq.bokeh_explorer(40.0)


# --- the readout --------------------------------------------------------------------


def test_readout_states_the_median_sample_and_its_speed():
    state = gq.gamma_quantile_state(3.0)
    expected_x = special.gammaincinv(3.0, 0.5)
    h = 1e-5
    expected_speed = (special.gammaincinv(3.0 + h, 0.5)
                      - special.gammaincinv(3.0 - h, 0.5)) / (2 * h)
    assert gq.readout_text(state) == (
        f"α = 3.0: the sample at u = 0.5 is x = {expected_x:.4f} "
        f"and moves at ∂x/∂α = {expected_speed:.4f}")


# --- the ipywidgets front end -------------------------------------------------------


def test_ipywidgets_slider_redraws_the_same_artists(ipympl):
    lab = gq.ipywidgets_explorer(alpha=2.0)
    control = lab.widget.children[0]
    assert control.description == "α, the concentration"
    artists_before = [ax.get_children() for ax in lab.figure.axes]
    figures_before = plt.get_fignums()
    control.value = 0.5  # runs the slider callback
    state = gq.gamma_quantile_state(0.5)
    assert [ax.get_children() for ax in lab.figure.axes] == artists_before
    assert plt.get_fignums() == figures_before
    top, bottom = lab.figure.axes
    np.testing.assert_array_equal(top.lines[1].get_ydata(), state.samples_x)
    np.testing.assert_array_equal(bottom.lines[1].get_ydata(),
                                  state.samples_dx_dalpha)
    drawn = lab.update(alpha=7.3)
    assert drawn.alpha == 7.3
    np.testing.assert_array_equal(top.lines[0].get_ydata(), drawn.quantile)
    assert top.get_title() == gq.readout_text(drawn)


def test_the_figure_alone_updates_in_place_on_a_plain_canvas():
    drawing = gq.GammaQuantileFigure(2.0)
    lines_before = list(drawing.ax_x.lines)
    state = drawing.update(0.5)
    assert list(drawing.ax_x.lines) == lines_before
    np.testing.assert_array_equal(drawing.dots.get_ydata(), state.samples_x)
    np.testing.assert_array_equal(drawing.dx_dots.get_ydata(), state.samples_dx_dalpha)


# --- the Bokeh front end ------------------------------------------------------------


def _find(layout, name):
    return next(m for m in layout.references() if getattr(m, "name", None) == name)


def test_the_shipped_table_rows_are_the_python_states():
    from bokeh.models import ColumnDataSource, CustomJS

    layout = gq.bokeh_explorer(2.0)
    control = _find(layout, "alpha_slider")
    assert control.title == "α, the concentration" and control.value == 2.0
    assert control.step == gq.ALPHA_STEP
    callback = next(m for m in layout.references() if isinstance(m, CustomJS))
    table = callback.args["table"]
    assert isinstance(table, ColumnDataSource)
    m, k = len(gq.U_GRID), len(gq.SAMPLE_U)
    i = gq.grid_index(7.3)
    state = gq.gamma_quantile_state(7.3)
    np.testing.assert_array_equal(table.data["x"][i * m:(i + 1) * m], state.quantile)
    np.testing.assert_array_equal(table.data["dx"][i * m:(i + 1) * m],
                                  state.quantile_dx_dalpha)
    samples = callback.args["sample_table"].data
    np.testing.assert_array_equal(samples["sdx"][i * k:(i + 1) * k],
                                  state.samples_dx_dalpha)
    assert callback.args["texts"][i] == gq.readout_text(state)
    assert _find(layout, "quantile_readout").text == gq.readout_text(
        gq.gamma_quantile_state(2.0))


def test_the_embedding_carries_no_bokehjs_and_no_address():
    html = bokeh_html(gq.bokeh_explorer(2.0))
    assert "cdn.bokeh.org" not in html and "http" not in html.split("<div")[0].lower()


@pytest.mark.browser
def test_keyboard_moves_the_slider_and_the_page_draws_the_python_state(
        offline_page, tmp_path):
    page = open_explorer(offline_page, tmp_path, gq.bokeh_explorer(2.0), "gq")
    press(page, 0, "ArrowRight", 10)  # alpha 2.0 -> 3.0, one step per press
    value = model_value(page, "alpha_slider", "value")
    state = gq.gamma_quantile_state(gq.ALPHA_GRID[gq.grid_index(value)])
    assert state.alpha == 3.0
    page.wait_for_function(
        "(t) => Bokeh.documents[0].get_model_by_name('quantile_readout').text === t",
        arg=gq.readout_text(state), timeout=10_000)
    drawn = page.evaluate("() => Array.from(Bokeh.documents[0]"
                          ".get_model_by_name('samples').data.dx)")
    np.testing.assert_array_equal(np.array(drawn), state.samples_dx_dalpha)
    assert_clean(offline_page)


@pytest.mark.browser
def test_every_slider_position_shows_its_own_readout(offline_page, tmp_path):
    page = open_explorer(offline_page, tmp_path, gq.bokeh_explorer(2.0), "gq_all")
    wrong = []
    for i in range(0, len(gq.ALPHA_GRID), 7):
        set_model(page, "alpha_slider", "value", float(gq.ALPHA_GRID[i]))
        state = gq.gamma_quantile_state(gq.ALPHA_GRID[i])
        expected = gq.readout_text(state)
        page.wait_for_function(
            "(t) => Bokeh.documents[0].get_model_by_name('quantile_readout').text"
            " === t", arg=expected, timeout=10_000)
        drawn = page.evaluate("() => Array.from(Bokeh.documents[0]"
                              ".get_model_by_name('curve').data.x)")
        if not np.array_equal(drawn, state.quantile):
            wrong.append(i)
    assert wrong == []
    assert_clean(offline_page)
