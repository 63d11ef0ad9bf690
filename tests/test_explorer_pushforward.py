"""Chapter 1's explorer (pushforward): a density pushed through a map, and both
front ends."""


from __future__ import annotations

import math
import re

import numpy as np
import pytest
import scipy.stats as st
import sympy as sp
from explorer_pages import (
    assert_clean,
    model_value,
    open_explorer,
    press,
    set_model,
)

from reparam.explorers import pushforward as pf

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")



def _numbers(text: str) -> list[float]:
    return [float(x) for x in NUMBER.findall(text)]



# --- the state and the readout ----------------------------------------------------


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



# --- the ipywidgets front end -------------------------------------------------------



def test_ipywidgets_front_end_follows_its_controls(ipympl, maps):
    box, update = pf.ipywidgets_explorer(maps)
    box.children[0].children[0].value = 3
    slider = box.children[0].children[1]
    assert (slider.description, slider.value) == ("λ", maps[3].theta_default)
    slider.value = 2.0
    assert box.children[-1].value == pf.readout_text(pf.pushforward_state(maps[3], 2.0))



# --- the Bokeh front end, in the browser --------------------------------------------



@pytest.mark.browser
def test_pushforward_every_map_matches_python(offline_page, tmp_path):
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
        assert model_value(page, "theta_slider", "title").startswith(spec.theta_name)
        state = pf.pushforward_state(spec, theta)
        assert model_value(page, "pushforward_readout", "text") == pf.readout_text(
            state
        )
        curve = model_value(page, "pushforward_density", "data")
        np.testing.assert_allclose(
            np.asarray(curve["density"], dtype=float),
            state.density,
            rtol=1e-12,
            atol=1e-14,
        )
        bars = model_value(page, "pushforward_bars", "data")
        np.testing.assert_allclose(
            np.asarray(bars["top"], dtype=float), state.histogram, rtol=0, atol=1e-12
        )
    assert_clean(offline_page)
