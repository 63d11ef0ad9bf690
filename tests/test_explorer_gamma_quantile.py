"""The Gamma quantile explorer: its pure state, both front ends, the shipped table."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import special  # noqa: E402

from reparam.explorers import gamma_quantile as gq  # noqa: E402


@pytest.mark.parametrize("alpha", [0.2, 0.7, 2.0, 15.0])
def test_state_samples_sit_at_their_fixed_uniforms(alpha):
    state = gq.explorer_state(alpha)
    # P(alpha, x_i) = u_i: each dot is the quantile of its own fixed u.
    assert np.allclose(special.gammainc(alpha, state.samples_x), gq.SAMPLE_U,
                       rtol=1e-10, atol=0)
    assert np.allclose(special.gammainc(alpha, state.quantile), gq.U_GRID,
                       rtol=1e-10, atol=0)
    assert np.all(np.diff(state.quantile) > 0)  # a quantile function increases


@pytest.mark.parametrize("alpha", [0.2, 2.0, 15.0])
def test_state_derivative_matches_central_differences_of_scipys_inverse(alpha):
    state = gq.explorer_state(alpha)
    h = 1e-5 * alpha
    difference = (special.gammaincinv(alpha + h, gq.SAMPLE_U)
                  - special.gammaincinv(alpha - h, gq.SAMPLE_U)) / (2 * h)
    assert np.allclose(state.samples_dx_dalpha, difference, rtol=1e-5, atol=1e-12)


def test_median_readout_is_the_u_half_entry():
    assert gq.U_GRID[gq.MEDIAN_INDEX] == pytest.approx(0.5, abs=1e-15)
    state = gq.explorer_state(3.0)
    assert state.median == float(special.gammaincinv(3.0, gq.U_GRID[gq.MEDIAN_INDEX]))
    assert gq.readout_text(state) == (
        f"α = 3.0: the sample at u = 0.5 is x = {state.median:.4f} "
        f"and moves at ∂x/∂α = {state.median_dx_dalpha:.4f}")


def test_vectorized_states_equal_single_states_exactly():
    table = gq.explorer_states(gq.ALPHA_GRID)
    assert len(table) == len(gq.ALPHA_GRID)
    for i in [0, 7, 50, len(gq.ALPHA_GRID) - 1]:
        single = gq.explorer_state(gq.ALPHA_GRID[i])
        assert np.array_equal(table[i].quantile, single.quantile)
        assert np.array_equal(table[i].quantile_dx_dalpha, single.quantile_dx_dalpha)
        assert np.array_equal(table[i].samples_dx_dalpha, single.samples_dx_dalpha)


def test_states_are_deterministic_with_other_draws_in_between():
    first = gq.explorer_state(1.3)
    np.random.default_rng(12).uniform(size=100)
    second = gq.explorer_state(1.3)
    assert np.array_equal(first.samples_x, second.samples_x)
    assert np.array_equal(first.samples_dx_dalpha, second.samples_dx_dalpha)
    assert np.all((gq.SAMPLE_U > 0) & (gq.SAMPLE_U < 1)) and len(gq.SAMPLE_U) == 7


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_alpha_is_refused_with_its_name(bad):
    with pytest.raises(ValueError, match="alpha"):
        gq.explorer_state(bad)


def test_bokeh_alpha_outside_the_slider_is_refused():
    with pytest.raises(ValueError, match="alpha"):
        gq.bokeh_explorer(40.0)


def test_matplotlib_update_changes_artists_in_place():
    explorer = gq.MatplotlibExplorer(2.0)
    lines_before = list(explorer.ax_x.lines)
    state = explorer.update(0.5)
    assert list(explorer.ax_x.lines) == lines_before
    assert np.array_equal(explorer.dots.get_ydata(), state.samples_x)
    assert np.array_equal(explorer.dx_dots.get_ydata(), state.samples_dx_dalpha)
    assert explorer.title.get_text() == gq.readout_text(state)


def _find(layout, name):
    return next(m for m in layout.references() if getattr(m, "name", None) == name)


def test_bokeh_table_rows_are_the_python_states():
    from bokeh.models import ColumnDataSource, CustomJS

    layout = gq.bokeh_explorer(2.0)
    slider = _find(layout, "alpha_slider")
    assert slider.title == "α, the concentration" and slider.value == 2.0
    callback = next(m for m in layout.references() if isinstance(m, CustomJS))
    table = callback.args["table"]
    assert isinstance(table, ColumnDataSource)
    m = len(gq.U_GRID)
    i = int(round((7.3 - gq.ALPHA_RANGE[0]) / gq.ALPHA_STEP))  # the JS index rule
    state = gq.explorer_state(7.3)
    assert np.array_equal(table.data["x"][i * m:(i + 1) * m], state.quantile)
    assert np.array_equal(table.data["dx"][i * m:(i + 1) * m], state.quantile_dx_dalpha)
    k = len(gq.SAMPLE_U)
    samples = callback.args["sample_table"].data
    assert np.array_equal(samples["sdx"][i * k:(i + 1) * k], state.samples_dx_dalpha)
    assert callback.args["texts"][i] == gq.readout_text(state)
    assert _find(layout, "readout").text == gq.readout_text(gq.explorer_state(2.0))


def test_bokeh_page_embeds_no_bokehjs_and_no_network():
    html = gq.bokeh_html(gq.bokeh_explorer(2.0))
    assert "cdn.bokeh.org" not in html and "http" not in html.split("<div")[0].lower()


def test_bokeh_slider_moves_the_samples_in_a_browser_with_no_kernel(
        offline_page, tmp_path):
    # A standalone page (BokehJS inlined, nothing fetched): set the slider in the
    # browser and compare what the CustomJS callback drew with the Python state at
    # that alpha.
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    page_path = tmp_path / "gamma_quantile.html"
    page_path.write_text(file_html(gq.bokeh_explorer(2.0), resources=INLINE,
                                   title="gamma quantile"), encoding="utf-8")
    page = offline_page.open(page_path)
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0")
    page.evaluate("() => { Bokeh.documents[0].get_model_by_name('alpha_slider')"
                  ".value = 7.3; }")
    expected = gq.explorer_state(7.3)
    page.wait_for_function(
        "(t) => Bokeh.documents[0].get_model_by_name('readout').text === t",
        arg=gq.readout_text(expected), timeout=10_000)
    drawn = page.evaluate("() => Array.from(Bokeh.documents[0]"
                          ".get_model_by_name('samples').data.dx)")
    assert np.array_equal(np.array(drawn), expected.samples_dx_dalpha)
    assert offline_page.external_requests == []
    assert offline_page.console_errors == [] and offline_page.page_errors == []


def test_a_larger_alpha_raises_the_curve_and_the_dots_at_every_slider_step():
    # The chapter's alt text says so; the slider's own states must show it.
    states = gq.explorer_states(gq.ALPHA_GRID)
    for name in ("quantile", "samples_x"):
        rows = np.array([getattr(state, name) for state in states])
        assert np.all(np.diff(rows, axis=0) > 0), name
