"""Chapter 1's explorer (pushforward): its state, its readout, its two front ends.

The state is compared with references nobody here wrote: SciPy's densities and
distribution functions, and NumPy's histogram of the same pushed draws.
"""

from __future__ import annotations

import dataclasses
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import scipy.stats as st
import sympy as sp
from explorer_pages import assert_clean, model_value, open_explorer, press, set_model

from reparam.explorers import WidgetExplorer
from reparam.explorers import pushforward as pf
from reparam.explorers._bokeh import JS_HISTOGRAM, bar_edges

# scipy's laws of the default maps at parameter t
REFERENCES = {
    0: lambda t: st.norm(1, t),
    1: lambda t: st.norm(1, t),
    2: lambda t: st.lognorm(s=t),
    3: lambda t: st.expon(scale=1 / t),
    4: lambda t: st.uniform(0, t),
}


@pytest.fixture(scope="module")
def maps():
    return pf.default_maps()


# --- the state ----------------------------------------------------------------------


@pytest.mark.parametrize("index", range(5))
def test_density_is_scipys(maps, index):
    spec = maps[index]
    for theta in (spec.theta_range[0], spec.theta_default, spec.theta_range[1]):
        state = pf.pushforward_state(spec, theta)
        off_jumps = (state.y_grid > 1e-9) & (np.abs(state.y_grid - theta) > 1e-9)
        points = state.y_grid[off_jumps]
        expected = REFERENCES[index](theta).pdf(points)
        np.testing.assert_allclose(state.density[off_jumps], expected, rtol=1e-9,
                                   atol=1e-12)


@pytest.mark.parametrize("index", range(5))
def test_the_density_grid_spans_the_window_evenly(maps, index):
    state = pf.pushforward_state(maps[index], maps[index].theta_default)
    low, high = maps[index].window
    assert len(state.y_grid) == pf.GRID_POINTS
    assert (state.y_grid[0], state.y_grid[-1]) == (low, high)
    step = (high - low) / (pf.GRID_POINTS - 1)
    np.testing.assert_allclose(np.diff(state.y_grid), step)


@pytest.mark.parametrize("low, high", [(0.0, 0.5), (-1.0, 0.13)])
def test_draws_at_the_windows_right_end_count_in_the_last_bar(low, high):
    # y = min(u, theta) at theta = high, u uniform: the draws above theta land on the
    # window's closed right end. For (-1, 0.13), low + (high - low) i / 40 alone would
    # end at 0.1299999999999999, below 0.13: the last edge is pinned to high.
    u, y, t = sp.symbols("u y t")
    spec = pf.PushforwardMap("clipped", "uniform", u, t, y, sp.Min(u, t), y, (0.1, 1),
                             high, (low, high))
    state = pf.pushforward_state(spec, high)
    assert state.bin_edges[-1] == high
    assert 0.3 < np.mean(state.samples == high) and state.window_share == 1.0
    counts, _ = np.histogram(state.samples, bins=state.bin_edges)
    assert counts.sum() == len(state.samples)
    np.testing.assert_allclose(
        state.histogram, counts / (len(state.samples) * (high - low) / pf.BINS),
        rtol=1e-12)
    # (The density y is a stand-in: only the bars are checked.)


@pytest.mark.parametrize("index", range(5))
@pytest.mark.parametrize("where", ["low", "default", "high"])
def test_window_mass_is_scipys_and_share_and_bars_count_the_draws(maps, index, where):
    spec = maps[index]
    theta = {"low": spec.theta_range[0], "default": spec.theta_default,
             "high": spec.theta_range[1]}[where]
    state = pf.pushforward_state(spec, theta)
    low, high = spec.window
    law = REFERENCES[index](theta)
    # the midpoint rule's error on MASS_CELLS cells (a jump costs at most one cell)
    assert abs(state.window_mass - (law.cdf(high) - law.cdf(low))) < 1e-3
    inside = (state.samples >= low) & (state.samples <= high)
    assert state.window_share == np.mean(inside)
    counts, edges = np.histogram(state.samples, bins=pf.BINS, range=spec.window)
    np.testing.assert_allclose(state.bin_edges, edges, rtol=0, atol=1e-14)
    width = (high - low) / pf.BINS
    np.testing.assert_allclose(state.histogram * len(state.samples) * width, counts,
                               rtol=0, atol=1e-9)


@pytest.mark.parametrize("index", range(5))
def test_samples_are_the_fixed_draws_pushed_through_the_map(maps, index):
    spec = maps[index]
    theta = spec.theta_default
    base = pf.BASE_DRAWS[spec.base]
    maps_by_hand = [
        lambda u: 1 + theta * u, lambda u: 1 - theta * u, lambda u: np.exp(theta * u),
        lambda u: -np.log(u) / theta, lambda u: theta * u,
    ]
    pushed = maps_by_hand[index](base)
    state = pf.pushforward_state(spec, theta)
    np.testing.assert_allclose(state.samples, pushed, rtol=1e-15)
    # the same draws at every call, whatever else drew random numbers in between
    np.random.default_rng().standard_normal(10)
    again = pf.pushforward_state(spec, theta)
    np.testing.assert_array_equal(again.samples, state.samples)


@pytest.mark.parametrize("index", range(5))
def test_samples_follow_the_density(maps, index):
    spec = maps[index]
    state = pf.pushforward_state(spec, spec.theta_default)
    n = len(state.samples)
    law = REFERENCES[index](spec.theta_default)
    # Each bar's share against the law's mass over the bar, in standard errors.
    for left, right, height in zip(state.bin_edges[:-1], state.bin_edges[1:],
                                   state.histogram, strict=True):
        p = law.cdf(right) - law.cdf(left)
        observed = height * (right - left)
        assert abs(observed - p) < 5 * math.sqrt(max(p * (1 - p), 1e-4) / n)


@pytest.mark.parametrize("index", range(5))
def test_band_is_two_standard_errors_of_a_bar_around_scipys_bin_mass(maps, index):
    spec = maps[index]
    for theta in (spec.theta_range[0], spec.theta_default, spec.theta_range[1]):
        state = pf.pushforward_state(spec, theta)
        law = REFERENCES[index](theta)
        p = np.diff(law.cdf(state.bin_edges))
        assert np.all(np.abs(state.bin_mass - p) < 1e-6)
        assert state.bin_mass.sum() == pytest.approx(state.window_mass, abs=1e-12)
        n, width = len(state.samples), state.bin_edges[1] - state.bin_edges[0]
        se = np.sqrt(p * (1 - p) / n) / width  # a bar's height: a count / (n width)
        np.testing.assert_allclose(state.band_high, p / width + 2 * se, atol=1e-5)
        np.testing.assert_allclose(state.band_low, np.maximum(p / width - 2 * se, 0),
                                   atol=1e-5)


def test_about_one_bar_in_twenty_strays_outside_the_band(maps):
    # Over every map at three settings, bars with a bin mass above 1e-3: a band of +-1
    # standard error would hold about 68 % of them, one of +-3 about 99.7 %.
    inside = total = 0
    for spec in maps:
        for theta in (spec.theta_range[0], spec.theta_default, spec.theta_range[1]):
            state = pf.pushforward_state(spec, theta)
            counted = state.bin_mass > 1e-3
            held = (state.histogram >= state.band_low) & (
                state.histogram <= state.band_high)
            inside += held[counted].sum()
            total += counted.sum()
    assert total > 300
    assert 0.88 < inside / total < 0.99


def test_javascript_is_printed_from_the_expressions(maps):
    h, f = pf.map_javascript(maps[3])
    assert h == "-Math.log(u)/t"
    assert "Math.exp(-t*y)" in f and "y > 0" in f


def test_support_changes_with_theta(maps):
    spec = maps[4]
    for theta in (0.5, 2.0):
        state = pf.pushforward_state(spec, theta)
        assert state.samples.max() <= theta
        assert np.all(state.density[state.y_grid > theta + 1e-9] == 0)
        inside = (state.y_grid > 1e-9) & (state.y_grid < theta - 1e-9)
        np.testing.assert_allclose(state.density[inside], 1 / theta, rtol=1e-14)


def test_state_refuses_bad_input(maps):
    with pytest.raises(ValueError, match="theta"):
        pf.pushforward_state(maps[0], 10.0)
    with pytest.raises(ValueError, match="theta"):
        pf.pushforward_state(maps[0], float("nan"))
    with pytest.raises(TypeError, match="theta"):
        pf.pushforward_state(maps[0], "1.0")
    with pytest.raises(TypeError, match="spec"):
        pf.pushforward_state("affine", 1.0)
    u, y, t = sp.symbols("u y t")
    with pytest.raises(ValueError, match="base"):
        pf.PushforwardMap("x", "gamma", u, t, y, u * t, y, (0, 1), 0.5, (0, 1))
    with pytest.raises(ValueError, match="h may use"):
        pf.PushforwardMap("x", "normal", u, t, y, u * y, y, (0, 1), 0.5, (0, 1))
    with pytest.raises(ValueError, match="h must depend on u"):
        pf.PushforwardMap("x", "normal", u, t, y, t, y, (0, 1), 0.5, (0, 1))
    with pytest.raises(ValueError, match="theta_default"):
        pf.PushforwardMap("x", "normal", u, t, y, u * t, y, (0, 1), 2.0, (0, 1))
    with pytest.raises(ValueError, match="window"):
        pf.PushforwardMap("x", "normal", u, t, y, u * t, y, (0, 1), 0.5, (1, 0))


def test_a_map_takes_a_default_at_either_end_of_its_range_and_no_empty_window():
    u, y, t = sp.symbols("u y t")

    def spec(default, window=(0, 1)):
        return pf.PushforwardMap("x", "normal", u, t, y, u * t, y, (0, 1), default,
                                 window)

    assert [spec(end).theta_default for end in (0, 1)] == [0, 1]
    with pytest.raises(ValueError, match="theta_default"):
        spec(-0.1)
    with pytest.raises(ValueError, match="window"):
        spec(0.5, (1, 1))


# --- the readout --------------------------------------------------------------------


def test_readout_names_the_parameter_the_window_and_both_numbers(maps):
    state = pf.pushforward_state(maps[3], 0.5)
    exact = 1 - math.exp(-5 * 0.5)
    assert pf.readout_text(state) == (
        f"λ = 0.50: in the window from 0 to 5, the derived density has mass "
        f"{exact:.3f} and the pushed samples a share of {state.window_share:.3f}"
    )
    shifted = pf.readout_text(pf.pushforward_state(maps[4], 1.0))
    assert shifted.startswith("θ = 1.00: in the window from -0.5 to 3.5,")


def test_readout_rounds_a_tie_as_the_page_does(maps):
    # 250 of the 4000 draws is 0.0625 exactly: toFixed(3) writes 0.063, format 0.062.
    state = dataclasses.replace(pf.pushforward_state(maps[3], 1.0),
                                window_share=250 / 4000, theta=1.125)
    text = pf.readout_text(state)
    assert text.startswith("λ = 1.13: ")
    assert text.endswith("a share of 0.063")


# --- the ipywidgets front end -------------------------------------------------------


def test_ipywidgets_controls_redraw_the_same_artists(ipympl, maps):
    lab = pf.ipywidgets_explorer(maps, index=0)
    assert isinstance(lab, WidgetExplorer)
    menu, slider = lab.widget.children[0].children
    readout = lab.widget.children[1]
    axes = lab.figure.axes[0]
    artists_before = axes.get_children()
    figures_before = plt.get_fignums()
    menu.value = 3  # each assignment runs the control's callback
    assert (slider.description, slider.value) == ("λ", maps[3].theta_default)
    assert (slider.min, slider.max) == maps[3].theta_range
    slider.value = 2.0
    state = pf.pushforward_state(maps[3], 2.0)
    assert readout.value == pf.readout_text(state)
    assert axes.get_children() == artists_before
    assert plt.get_fignums() == figures_before
    curve = axes.lines[0]
    np.testing.assert_array_equal(curve.get_ydata(), state.density)
    heights = [bar.get_height() for bar in axes.patches[: pf.BINS]]
    np.testing.assert_array_equal(heights, state.histogram)
    band = axes.patches[pf.BINS: 2 * pf.BINS]  # the grey band, behind the bars
    np.testing.assert_array_equal([b.get_y() for b in band], state.band_low)
    np.testing.assert_allclose([b.get_y() + b.get_height() for b in band],
                               state.band_high, rtol=1e-14)
    assert axes.get_xlim() == state.window
    drawn = lab.update(index=4, theta=1.5)
    assert (drawn.label, drawn.theta) == (maps[4].label, 1.5)
    np.testing.assert_array_equal(curve.get_xdata(), drawn.y_grid)
    assert readout.value == pf.readout_text(drawn)


def test_a_new_map_with_the_old_parameter_value_still_redraws(ipympl, maps):
    # maps 0 and 3 both start at 1.0: the slider's value does not change, so the menu's
    # own callback must redraw.
    lab = pf.ipywidgets_explorer(maps, index=0)
    menu = lab.widget.children[0].children[0]
    menu.value = 3
    state = pf.pushforward_state(maps[3], 1.0)
    np.testing.assert_array_equal(lab.figure.axes[0].lines[0].get_ydata(),
                                  state.density)


# --- the Bokeh front end, in the browser --------------------------------------------


@pytest.mark.browser
def test_every_map_matches_python_after_the_keyboard_moves_its_slider(offline_page,
                                                                      tmp_path):
    maps = pf.default_maps()
    page = open_explorer(offline_page, tmp_path, pf.bokeh_explorer(maps), "pushforward")
    for index, spec in enumerate(maps):
        set_model(page, "map_select", "value", str(index))
        page.wait_for_function(
            "v => Bokeh.documents[0].get_model_by_name('theta_slider').value === v",
            arg=spec.theta_default,
        )
        press(page, 0, "ArrowRight", 6)
        theta = model_value(page, "theta_slider", "value")
        assert theta == pytest.approx(
            min(spec.theta_default + 0.3, spec.theta_range[1])
        )
        assert model_value(page, "theta_slider", "title") == (
            f"{spec.theta_name}, the map's parameter"
        )
        state = pf.pushforward_state(spec, theta)
        assert model_value(page, "pushforward_readout", "text") == pf.readout_text(
            state
        )
        curve = model_value(page, "pushforward_density", "data")
        np.testing.assert_allclose(
            np.asarray(curve["density"], dtype=float), state.density, rtol=1e-12,
            atol=1e-14,
        )
        bars = model_value(page, "pushforward_bars", "data")
        np.testing.assert_allclose(
            np.asarray(bars["top"], dtype=float), state.histogram, rtol=0, atol=1e-12
        )
        band = model_value(page, "pushforward_band", "data")
        for side, expected in (("bottom", state.band_low), ("top", state.band_high)):
            np.testing.assert_allclose(np.asarray(band[side], dtype=float), expected,
                                       rtol=1e-9, atol=1e-12)
    assert_clean(offline_page)


@pytest.mark.browser
def test_the_pages_bars_are_numpys(offline_page, tmp_path):
    # JS_HISTOGRAM in Chromium against bar_edges and numpy.histogram, on every edge,
    # its two neighbouring floats and a value outside on each side.
    page = open_explorer(offline_page, tmp_path, pf.bokeh_explorer(), "bars")
    call = ("([code, low, high, B, vs]) => new Function('low', 'high', 'B', 'vs', code"
            " + 'const e = barEdges(low, high, B); return [e, vs.map((v) =>"
            " barIndex(v, e))];')(low, high, B, vs)")
    for low, high in [(-1.0, 0.13), (0.0, 0.5), (-6.0, 8.0), (0.3, 2.5)]:
        edges = bar_edges(low, high, pf.BINS)
        values = np.concatenate([edges, np.nextafter(edges, -np.inf),
                                 np.nextafter(edges, np.inf), [low - 1, high + 1]])
        js_edges, js_bars = page.evaluate(
            call, [JS_HISTOGRAM, low, high, pf.BINS, values.tolist()])
        np.testing.assert_array_equal(js_edges, edges)
        for value, bar in zip(values, js_bars, strict=True):
            counts, _ = np.histogram([value], bins=edges)
            expected = int(counts.argmax()) if counts.sum() else None
            assert (bar if 0 <= bar < pf.BINS else None) == expected, (low, high, value)
    assert_clean(offline_page)


# The maps' JavaScript, printed by SymPy, gives Python's numbers in the page.
@pytest.mark.browser
def test_pushforward_javascript_evaluates_to_the_python_numbers(offline_page, tmp_path):
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
