"""Chapter 2's explorer (normal_map): its state, its readout, its two front ends.

The page formats numbers with JavaScript's ``toFixed``, which rounds an exact tie away
from zero; Python's ``format`` rounds it to even. At mu = -1.95, sigma = 0.65 the strip
starts at exactly -1.625, which the two print as -1.63 and -1.62.

The picture is drawn to scale (the chapter's claim "the orange strip is sigma times
longer, and the two areas are equal" is about what the reader sees): the tests measure
lengths and areas in the picture's coordinates, in matplotlib's pixels, and in the
page's pixels.
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
    np.testing.assert_array_equal(state.x, mu + sigma * state.eps)
    np.testing.assert_allclose(state.eps_density, st.norm.pdf(state.eps), rtol=1e-13)
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


# --- the picture: drawn to scale ----------------------------------------------------


def _shoelace(u, v):
    """The area of the closed polygon with vertices (u, v)."""
    return 0.5 * abs(np.dot(u, np.roll(v, -1)) - np.dot(v, np.roll(u, -1)))


def _strip_polygons(shapes):
    """The blue and the orange strip as closed polygons (density edge + zero line)."""
    blue_u = np.concatenate([shapes.eps_strip_u, shapes.eps_strip_u[::-1]])
    blue_v = np.concatenate([shapes.eps_strip_v, np.full(len(shapes.eps_strip_u),
                                                         nm.BOTTOM_BASE)])
    orange_u = np.concatenate([shapes.x_strip_u, np.full(len(shapes.x_strip_v),
                                                         nm.SIDE_BASE)])
    orange_v = np.concatenate([shapes.x_strip_v, shapes.x_strip_v[::-1]])
    return (blue_u, blue_v), (orange_u, orange_v)


CORNERS = [(m, s) for m in nm.MU_RANGE for s in nm.SIGMA_RANGE]


@pytest.mark.parametrize("mu, sigma", CORNERS + [(0.5, 1.5), (1.0, 2.0)])
def test_strips_have_equal_areas_and_lengths_sigma_to_one_in_the_picture(mu, sigma):
    state = nm.normal_map_state(mu, sigma)
    shapes = nm.normal_map_shapes(state)
    blue, orange = _strip_polygons(shapes)
    exact = nm.DENSITY_SCALE * (st.norm.cdf(nm.STRIP[1]) - st.norm.cdf(nm.STRIP[0]))
    # 50 points per outline: the polygons' areas are within 1e-4 of the exact area.
    assert abs(_shoelace(*blue) - exact) < 1e-4 * exact
    assert abs(_shoelace(*orange) - exact) < 1e-4 * exact
    blue_length = shapes.eps_strip_u[-1] - shapes.eps_strip_u[0]
    orange_length = shapes.x_strip_v[-1] - shapes.x_strip_v[0]
    assert orange_length == pytest.approx(sigma * blue_length, rel=1e-12)
    # the orange strip lies along the density of x: its edge is on the drawn curve
    curve = np.interp(shapes.x_strip_v, state.x, shapes.x_curve_u)
    np.testing.assert_allclose(shapes.x_strip_u, curve, atol=1e-3)


@pytest.mark.parametrize("mu, sigma", CORNERS)
def test_slider_ranges_keep_every_part_inside_its_panel(mu, sigma):
    state = nm.normal_map_state(mu, sigma)
    low, high = nm.X_LIMITS
    assert np.all((state.samples_x > low) & (state.samples_x < high))
    assert low < state.strip_x[0] < state.strip_x[1] < high
    # the densities' peaks fit their panels, so no shaded area is cut off
    assert nm.x_density_u(state.x_density.max()) > nm.CANVAS_U[0]
    assert nm.eps_density_v(state.eps_density.max()) < nm.X_LIMITS[0]
    shapes = nm.normal_map_shapes(state)
    # upright above its base line, as the density of x lies leftward of its own
    assert np.all(shapes.eps_curve_v > nm.BOTTOM_BASE)
    assert np.all(np.isnan(shapes.x_curve_u) == ((state.x < low) | (state.x > high)))
    inside = ~np.isnan(shapes.x_curve_u)
    assert np.all(shapes.x_curve_u[inside] < nm.SIDE_BASE + 1e-12)
    # the visible piece of the line lies on x = mu + sigma eps, inside the map panel
    np.testing.assert_allclose(shapes.map_v, mu + sigma * shapes.map_u, rtol=1e-14)
    assert nm.EPS_LIMITS[0] <= shapes.map_u[0] < shapes.map_u[1] <= nm.EPS_LIMITS[1]
    assert low - 1e-12 <= shapes.map_v.min() and shapes.map_v.max() <= high + 1e-12


def test_shapes_refuse_what_is_not_a_state():
    with pytest.raises(TypeError, match="state"):
        nm.normal_map_shapes((0.0, 1.0))


def test_a_line_entirely_off_the_panel_is_not_drawn():
    shapes = nm.normal_map_shapes(nm.normal_map_state(40.0, 1.0))
    assert np.all(np.isnan(shapes.map_u)) and np.all(np.isnan(shapes.x_curve_u))
    assert shapes.map_u.shape == shapes.map_v.shape == (2,)  # two points, as drawn


@pytest.mark.parametrize("mu, sigma", [(0.5, 1.5), (-2.0, 0.5), (2.0, 2.0)])
def test_matplotlib_draws_one_unit_the_same_length_across_and_up(mu, sigma):
    from matplotlib.patches import Polygon

    figure = nm.NormalMapFigure(mu, sigma)
    figure.figure.canvas.draw()
    to_pixels = figure.axes.transData.transform
    (u0, v0), (u1, v1) = to_pixels([(0.0, 0.0), (1.0, 1.0)])
    assert u1 - u0 == pytest.approx(v1 - v0, rel=1e-9)
    # the drawn strips, in pixels: equal areas, lengths sigma to one
    orange = to_pixels(figure.x_strip.get_xy())
    blue = to_pixels(figure.eps_strip.get_paths()[0].vertices)
    assert isinstance(figure.x_strip, Polygon)
    orange_area = _shoelace(orange[:, 0], orange[:, 1])
    blue_area = _shoelace(blue[:, 0], blue[:, 1])
    assert orange_area == pytest.approx(blue_area, rel=1e-3)
    orange_length = np.ptp(orange[:, 1])
    blue_length = np.ptp(blue[:, 0])
    assert orange_length == pytest.approx(sigma * blue_length, rel=1e-9)


# --- the readout --------------------------------------------------------------------


def test_readout_states_equal_masses():
    text = nm.readout_text(nm.normal_map_state(1.0, 2.0))
    mass = f"{st.norm.cdf(1.0) - st.norm.cdf(0.5):.4f}"
    assert text == (f"μ = 1.00, σ = 2.00: the strip ε in [0.5, 1] has mass {mass}; "
                    f"its image x in [2.00, 3.00] has mass {mass}")


# --- the ipywidgets front end -------------------------------------------------------


def test_ipywidgets_sliders_redraw_the_same_artists(ipympl):
    lab = nm.ipywidgets_explorer(mu=0.5, sigma=1.5)
    mu_slider, sigma_slider = lab.widget.children[0].children
    (axes,) = lab.figure.axes
    artists_before = axes.get_children()
    figures_before = plt.get_fignums()
    mu_slider.value = -1.0  # each assignment runs the slider callback
    sigma_slider.value = 0.7
    state = nm.normal_map_state(-1.0, 0.7)
    assert axes.get_children() == artists_before
    assert plt.get_fignums() == figures_before
    # the density of x, on its side: the orange line
    (x_line,) = [line for line in axes.lines if line.get_color() == nm.ORANGE]
    np.testing.assert_array_equal(x_line.get_ydata(), state.x)
    shapes = nm.normal_map_shapes(state)
    np.testing.assert_array_equal(x_line.get_xdata(), shapes.x_curve_u)
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
    page = _open(offline_page, tmp_path, -1.95, 0.7)
    page.locator(".noUi-handle").nth(1).focus()
    page.keyboard.press("ArrowLeft")  # sigma 0.7 -> 0.65
    mu, sigma, text = page.evaluate(
        "() => { const d = Bokeh.documents[0];"
        " return [d.get_model_by_name('mu_slider').value,"
        " d.get_model_by_name('sigma_slider').value,"
        " d.get_model_by_name('strip_readout').text]; }"
    )
    assert nm.normal_map_state(mu, sigma).strip_x[0] == -1.625  # an exact tie
    assert "x in [-1.63, " in text  # format(-1.625, ".2f") is "-1.62"
    assert text == nm.readout_text(nm.normal_map_state(mu, sigma))
    assert offline_page.page_errors == []


@pytest.mark.browser
def test_readout_equals_python_over_a_grid_of_slider_settings(offline_page, tmp_path):
    # Every mu step, and sigma = 0.55, 0.75, ..., 1.95: with Python's format instead of
    # js_fixed, 34 of these 648 settings would print an endpoint differently.
    page = _open(offline_page, tmp_path, 0.5, 1.5)
    # The readout is read from the model, not the screen: the page is hidden during the
    # sweep, so that Chromium does not paint each setting's picture. Bokeh's callbacks
    # and canvas drawing run as before.
    page.locator("main").evaluate("main => { main.style.visibility = 'hidden'; }")
    mu_low, mu_high = nm.MU_RANGE
    grid = [mu_low, mu_high, 0.05, 0.55, nm.SIGMA_RANGE[1], 0.2]
    rows = page.evaluate(SWEEP_JS, grid)
    assert len(rows) == 81 * 8
    wrong = [
        (mu, sigma, text)
        for mu, sigma, text in rows
        if text != nm.readout_text(nm.normal_map_state(mu, sigma))
    ]
    assert wrong == []
    assert offline_page.page_errors == []
    assert offline_page.console_errors == []


# The plot's pixels per unit across and up, and the page's data sources, read from
# BokehJS's view of the figure.
SCALES_JS = """() => {
  const found = [];
  const walk = (view) => {
    if (view.frame && view.model.name === 'normal_map_plot') {
      const xs = view.frame.x_scale, ys = view.frame.y_scale;
      found.push([xs.compute(1) - xs.compute(0), ys.compute(0) - ys.compute(1)]);
    }
    for (const child of (view.child_views ?? [])) { walk(child); }
  };
  for (const root of Object.values(Bokeh.index)) { walk(root); }
  return found;
}"""

SOURCES_JS = """() => {
  const doc = Bokeh.documents[0];
  const data = (name) => doc.get_model_by_name(name).data;
  const plain = (column) => Array.from(column, (v) => Number.isNaN(v) ? null : v);
  return {mu: doc.get_model_by_name('mu_slider').value,
          sigma: doc.get_model_by_name('sigma_slider').value,
          curve_u: plain(data('x_density').u), curve_x: plain(data('x_density').x),
          map_u: plain(data('map').u), map_v: plain(data('map').v),
          strip_u: plain(data('x_strip').u), strip_x: plain(data('x_strip').x),
          band: [doc.get_model_by_name('band').bottom,
                 doc.get_model_by_name('band').top]};
}"""


def _as_array(values):
    return np.array([np.nan if v is None else v for v in values], dtype=float)


@pytest.mark.browser
def test_the_page_draws_one_unit_the_same_length_across_and_up(offline_page, tmp_path):
    # One unit of eps, of x and (times DENSITY_SCALE) of density: the same number of
    # pixels, on a desktop column, on a phone, and after the page is resized.
    page = open_explorer(offline_page, tmp_path, nm.bokeh_explorer(0.5, 1.5), "nm")
    for width in (1280, 390, 700):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(300)
        ((across, up),) = page.evaluate(SCALES_JS)
        assert across == pytest.approx(up, rel=1e-9), width
        assert across > 20  # a strip of 0.5 in eps is at least 10 px long
    assert_clean(offline_page)


@pytest.mark.browser
def test_sliders_move_the_drawing_as_python_draws_it(offline_page, tmp_path):
    page = open_explorer(offline_page, tmp_path, nm.bokeh_explorer(0.5, 1.5), "nm")
    press(page, 0, "ArrowLeft", 30)  # mu 0.5 -> -1.0
    press(page, 1, "ArrowLeft", 25)  # sigma 1.5 -> 0.5 (the end of its range)
    drawn = page.evaluate(SOURCES_JS)
    state = nm.normal_map_state(drawn["mu"], drawn["sigma"])
    shapes = nm.normal_map_shapes(state)
    assert (drawn["mu"], drawn["sigma"]) == pytest.approx((-1.0, 0.5))
    np.testing.assert_allclose(_as_array(drawn["curve_x"]), state.x, rtol=1e-14)
    np.testing.assert_allclose(_as_array(drawn["curve_u"]), shapes.x_curve_u,
                               rtol=1e-12)  # NaN where Python has NaN
    np.testing.assert_allclose(_as_array(drawn["map_u"]), shapes.map_u, rtol=1e-14)
    np.testing.assert_allclose(_as_array(drawn["map_v"]), shapes.map_v, rtol=1e-14)
    np.testing.assert_allclose(_as_array(drawn["strip_x"]), shapes.x_strip_v,
                               rtol=1e-13)
    np.testing.assert_allclose(_as_array(drawn["strip_u"]), shapes.x_strip_u,
                               rtol=1e-12)
    assert drawn["band"] == pytest.approx(list(state.strip_x), rel=1e-14)
    assert_clean(offline_page)


@pytest.mark.browser
def test_keyboard_moves_the_sliders_and_the_readout(offline_page, tmp_path):
    page = open_explorer(offline_page, tmp_path, nm.bokeh_explorer(0.5, 1.5), "nm")
    press(page, 0, "ArrowRight", 10)  # mu 0.5 -> 1.0
    press(page, 1, "ArrowRight", 10)  # sigma 1.5 -> 2.0
    text = page.evaluate(
        "() => Bokeh.documents[0].get_model_by_name('strip_readout').text")
    assert text == nm.readout_text(nm.normal_map_state(1.0, 2.0))
    assert_clean(offline_page)
