"""Chapter 3's explorer (running_estimate): its state, its readout, its two front ends.

The state is checked against references written here, not in the module: the exact
gradient and the variance V of one draw by SymPy (Gaussian expectations in closed
form) and by SciPy quadrature, and the running means by a plain Python loop with
``math.sin``.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import sympy as sp
from explorer_pages import assert_clean, model_value, open_explorer, press
from scipy import integrate

from reparam.explorers import running_estimate as rs

# --- independent references ----------------------------------------------------------


def _sympy_gradient_and_variance():
    """(g, V) as functions of (k, mu, sigma), from SymPy's integrals over eps."""
    eps, mu, k = sp.symbols("varepsilon mu k", real=True)
    sigma = sp.Symbol("sigma", positive=True)
    phi = sp.exp(-eps**2 / 2) / sp.sqrt(2 * sp.pi)

    def expect(expression):
        integrand = sp.expand(sp.expand_trig(expression.rewrite(sp.exp))) * phi
        value = sp.integrate(integrand, (eps, -sp.oo, sp.oo), conds="none")
        return sp.simplify(sp.expand_complex(value))

    x = mu + sigma * eps
    draw = sp.diff(sp.cos(k * x), mu)  # the pathwise draw of d/dmu: -k sin(kx)
    mean = expect(draw)
    variance = expect(draw**2) - mean**2
    return (sp.lambdify((k, mu, sigma), mean, "mpmath"),
            sp.lambdify((k, mu, sigma), variance, "mpmath"))


SYMPY_G, SYMPY_V = _sympy_gradient_and_variance()


def _quadrature(function) -> float:
    weight = lambda e: function(e) * math.exp(-e * e / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    return integrate.quad(weight, -12, 12, limit=400, epsabs=1e-13, epsrel=1e-12)[0]


SETTINGS = [(1.5, 0.3, 0.8), (0.25, -2.0, 0.8), (4.0, 1.35, 0.8), (2.2, 0.0, 1.7),
            (0.9, -0.65, 0.3)]


# --- the state ----------------------------------------------------------------------


@pytest.mark.parametrize("k, mu, sigma", SETTINGS)
def test_exact_gradient_and_variance_match_sympy_and_quadrature(k, mu, sigma):
    draw = lambda e: -k * math.sin(k * (mu + sigma * e))  # noqa: E731
    quad_mean = _quadrature(draw)
    quad_variance = _quadrature(lambda e: draw(e) ** 2) - quad_mean**2
    state = rs.running_estimate_state(k, mu, sigma, 10)
    assert state.exact == pytest.approx(float(SYMPY_G(k, mu, sigma)), rel=1e-12,
                                        abs=1e-15)
    assert state.variance == pytest.approx(float(SYMPY_V(k, mu, sigma)), rel=1e-12)
    assert state.exact == pytest.approx(quad_mean, rel=1e-9, abs=1e-12)
    assert state.variance == pytest.approx(quad_variance, rel=1e-9)


def test_the_chapters_setting_gives_the_reviewed_numbers():
    # An independent reading found g = -0.31758 and V = 0.98489 (k = 1.5, mu = 0.3,
    # sigma = 0.8): by hand, V = 2.25 (0.48255 - 0.04483).
    state = rs.running_estimate_state(1.5, 0.3, 0.8, 100)
    assert round(state.exact, 5) == -0.31758
    assert round(state.variance, 5) == 0.98489


@pytest.mark.parametrize("n", [1, 2, 7, 100, rs.N_MAX])
def test_running_means_and_the_funnel_match_a_plain_loop(n):
    k, mu, sigma = 2.2, -0.4, 0.8
    state = rs.running_estimate_state(k, mu, sigma, n)
    g, v = float(SYMPY_G(k, mu, sigma)), float(SYMPY_V(k, mu, sigma))
    inside_points, runs_inside = 0, 0
    assert state.running.shape == (rs.RUNS, n)
    for run in range(rs.RUNS):
        total = 0.0
        for m in range(1, n + 1):
            total += -k * math.sin(k * (mu + sigma * float(rs.DRAWS[run, m - 1])))
            assert state.running[run, m - 1] == pytest.approx(total / m, abs=1e-12)
            inside_points += abs(total / m - g) <= 2 * math.sqrt(v / m)
        runs_inside += abs(total / n - g) <= 2 * math.sqrt(v / n)
        z = (total / n - g) / math.sqrt(v / n)
        assert state.z[run] == pytest.approx(z, abs=1e-9)
    assert state.runs_inside == runs_inside
    assert state.share_inside == inside_points / (rs.RUNS * n)
    np.testing.assert_allclose(state.estimates, state.running[:, -1], rtol=0)
    m = np.arange(1, rs.N_MAX + 1)
    np.testing.assert_allclose(state.funnel_high, g + 2 * np.sqrt(v / m), rtol=1e-12)
    np.testing.assert_allclose(state.funnel_low, g - 2 * np.sqrt(v / m), rtol=1e-12,
                               atol=1e-15)
    assert state.half_width == pytest.approx(2 * math.sqrt(v / n), rel=1e-12)


def test_the_funnel_is_centred_on_the_exact_value_not_on_a_run():
    # The band of the old figure was centred on the run; this one must not move when
    # the draws do.
    state = rs.running_estimate_state(1.5, 0.3, 0.8, 50)
    centre = (state.funnel_low + state.funnel_high) / 2
    np.testing.assert_allclose(centre, state.exact, rtol=1e-12)


def test_about_95_percent_of_runs_end_inside_the_funnel_over_many_settings():
    # Unbiasedness and the sqrt(V/n) scale together: at n = 1000, |z| <= 2 for about
    # 95.4 % of the runs. 8 runs x 60 settings (the runs share draws across settings,
    # so the count is not binomial; the band is wide).
    inside = [rs.running_estimate_state(k, mu, 0.8, rs.N_MAX).runs_inside
              for k in np.linspace(0.5, 3.5, 6) for mu in np.linspace(-1.5, 1.5, 10)]
    share = sum(inside) / (rs.RUNS * len(inside))
    assert 0.85 < share <= 1.0, share


def test_draws_are_fixed_and_standard_normal():
    again = np.random.default_rng(rs.SEED).standard_normal((rs.RUNS, rs.N_MAX))
    np.testing.assert_array_equal(rs.DRAWS, again)
    assert abs(rs.DRAWS.mean()) < 4 / math.sqrt(rs.DRAWS.size)
    assert abs(rs.DRAWS.var() - 1) < 4 * math.sqrt(2 / rs.DRAWS.size)


@pytest.mark.parametrize("log_n, n", [(0.0, 1), (1.0, 10), (1.5, 32), (2.0, 100),
                                      (2.7, 501), (3.0, 1000), (0.1, 1), (0.2, 2)])
def test_the_slider_value_is_log10_of_n(log_n, n):
    assert rs.n_from_slider(log_n) == n


@pytest.mark.parametrize("kwargs, error", [
    ({"k": "1"}, TypeError), ({"k": 0.0}, ValueError), ({"k": -1.0}, ValueError),
    ({"mu": float("nan")}, ValueError), ({"sigma": 0.0}, ValueError),
    ({"n": 10.0}, TypeError), ({"n": 0}, ValueError), ({"n": rs.N_MAX + 1}, ValueError),
    ({"n": True}, TypeError),
])
def test_state_refuses_bad_input(kwargs, error):
    values = {"k": 1.5, "mu": 0.3, "sigma": 0.8, "n": 10} | kwargs
    with pytest.raises(error):
        rs.running_estimate_state(**values)


def test_the_variance_has_no_cancellation_for_small_k():
    # V = k^2 Var[sin kx] ~ k^4 sigma^2 cos^2(k mu) for small k (sin kx ~ kx); the naive
    # form 1 - cos(2 k mu) e^(-2 k^2 sigma^2) loses every digit by k = 1e-8.
    for k in (1e-3, 1e-5, 1e-8):
        variance = rs.pathwise_variance(k, 0.3, 0.8)
        assert variance == pytest.approx(k**4 * 0.8**2 * math.cos(k * 0.3) ** 2,
                                         rel=1e-5)


def test_the_helpers_refuse_bad_input():
    with pytest.raises(ValueError, match="draws"):
        rs.running_mean(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="draws"):
        rs.running_mean(np.array([]))
    with pytest.raises(ValueError, match="variance"):
        rs.inside_funnel(np.zeros(3), 0.0, -1.0)
    with pytest.raises(TypeError, match="exact"):
        rs.inside_funnel(np.zeros(3), "0", 1.0)
    with pytest.raises(ValueError, match="width"):
        rs.inside_funnel(np.zeros(3), 0.0, 1.0, width=0.0)
    with pytest.raises(ValueError, match="too small"):
        rs.running_estimate_state(1e-170, 0.3, 0.8, 10)


def test_inside_funnel_counts_m_from_one_along_the_last_axis():
    running = np.array([[0.0, 1.5, 1.0], [3.0, 0.0, -1.2]])
    # half-widths 2 sqrt(1/m): 2, 1.414, 1.155
    np.testing.assert_array_equal(rs.inside_funnel(running, 0.0, 1.0),
                                  [[True, False, True], [False, True, False]])
    np.testing.assert_allclose(rs.running_mean([[1.0, 3.0, 5.0]]), [[1.0, 2.0, 3.0]])


def test_the_helpers_work_along_the_last_axis_of_one_run_or_many():
    one_run = [1.0, 3.0, 5.0]
    np.testing.assert_allclose(rs.running_mean(one_run), [1.0, 2.0, 3.0])
    stacked = np.array([[one_run, [2.0, 2.0, 8.0]]] * 2)  # shape (2, 2, 3)
    np.testing.assert_allclose(rs.running_mean(stacked)[1, 1], [2.0, 2.0, 4.0])
    # The funnel is closed: a mean on its edge, 2 sqrt(1/m) from 0, is inside.
    np.testing.assert_array_equal(rs.inside_funnel([2.0, 1.5, 1.2], 0.0, 1.0),
                                  [True, False, False])
    # m counts along the last axis: at m = 4 the edge is 2 sqrt(1/4) = 1.
    assert rs.inside_funnel(np.full((2, 2, 4), 1.0), 0.0, 1.0).all()
    assert not rs.inside_funnel(np.full((2, 2, 5), 1.0), 0.0, 1.0)[..., 4].any()
    # A variance of 0 (a constant draw): only the exact value is inside.
    np.testing.assert_array_equal(rs.inside_funnel([0.0, 1e-12], 0.0, 0.0),
                                  [True, False])
    with pytest.raises(ValueError, match="draws"):
        rs.running_mean(3.0)
    with pytest.raises(ValueError, match="running"):
        rs.inside_funnel(3.0, 0.0, 1.0)


def test_the_bokeh_explorer_refuses_an_n_the_slider_cannot_reach():
    with pytest.raises(ValueError, match="n must be"):
        rs.bokeh_explorer(n=99)


# --- the readout --------------------------------------------------------------------


def test_readout_states_the_exact_value_the_funnel_and_the_counts():
    state = rs.running_estimate_state(1.5, 0.3, 0.8, 100)
    text = rs.readout_text(state)
    assert text.startswith("k = 1.50, μ = 0.30, n = 100: exact gradient -0.3176, ")
    assert "V = 0.9849" in text
    assert f"± {2 * math.sqrt(0.98489 / 100):.4f}" in text
    assert f"{state.runs_inside} of {rs.RUNS} runs inside it at n" in text
    assert f"largest |z| {np.abs(state.z).max():.2f}" in text


# --- the ipywidgets front end -------------------------------------------------------


def test_ipywidgets_sliders_redraw_the_same_artists(ipympl):
    lab = rs.ipywidgets_explorer(k=1.5, mu=0.3, n=100)
    k_slider, mu_slider, n_slider = lab.widget.children[0].children
    artists_before = [ax.get_children() for ax in lab.figure.axes]
    figures_before = plt.get_fignums()
    k_slider.value = 2.0  # each assignment runs the slider callback
    mu_slider.value = -0.5
    n_slider.value = 2.5
    state = rs.running_estimate_state(2.0, -0.5, 0.8, 316)
    assert [ax.get_children() for ax in lab.figure.axes] == artists_before
    assert plt.get_fignums() == figures_before
    axes = lab.figure.axes[0]
    run_lines = [line for line in axes.lines if len(line.get_xdata()) > 2]
    assert len(run_lines) == rs.RUNS
    np.testing.assert_array_equal(run_lines[0].get_ydata(), state.running[0])
    # Every draw -k sin(kx), so every running mean, lies in [-k, k]: inside the axes.
    low, high = axes.get_ylim()
    assert low == -high and low < state.running.min() and state.running.max() < high
    assert high == pytest.approx(1.05 * 2.0)
    assert axes.get_title() == rs.readout_text(state)
    drawn = lab.update(k=1.0, mu=0.2, n=40)
    assert (drawn.k, drawn.mu, drawn.n) == (1.0, 0.2, 40)
    np.testing.assert_array_equal(run_lines[-1].get_ydata(), drawn.running[-1])


# --- the Bokeh front end, in the browser --------------------------------------------


READ_JS = """() => {
  const d = Bokeh.documents[0];
  return [d.get_model_by_name('k_slider').value, d.get_model_by_name('mu_slider').value,
          d.get_model_by_name('n_slider').value,
          d.get_model_by_name('running_readout').text];
}"""


def _python_readout(k, mu, log_n):
    state = rs.running_estimate_state(k, mu, 0.8, rs.n_from_slider(log_n))
    return rs.readout_text(state)


@pytest.mark.browser
def test_keyboard_moves_the_sliders_and_the_readout(offline_page, tmp_path):
    page = open_explorer(offline_page, tmp_path, rs.bokeh_explorer(), "running")
    press(page, 0, "ArrowRight", 10)  # k 1.5 -> 2.0
    press(page, 1, "ArrowLeft", 6)  # mu 0.3 -> 0.0
    press(page, 2, "ArrowRight", 7)  # log10 n 2.0 -> 2.7: n = 501
    k, mu, log_n, text = page.evaluate(READ_JS)
    assert (round(k, 2), round(mu, 2), rs.n_from_slider(log_n)) == (2.0, 0.0, 501)
    assert text == _python_readout(k, mu, log_n)
    xs = model_value(page, "runs", "data")["xs"]
    assert len(xs) == rs.RUNS
    press(page, 2, "ArrowLeft", 27)  # down to n = 1
    k, mu, log_n, text = page.evaluate(READ_JS)
    assert rs.n_from_slider(log_n) == 1
    assert text == _python_readout(k, mu, log_n)
    assert_clean(offline_page)


SWEEP_JS = """async (settings) => {
  const doc = Bokeh.documents[0];
  const names = ['k_slider', 'mu_slider', 'n_slider'];
  const sliders = names.map((name) => doc.get_model_by_name(name));
  const readout = doc.get_model_by_name('running_readout');
  const rows = [];
  for (const values of settings) {
    for (let i = 0; i < 3; i++) {
      if (sliders[i].value === values[i]) { continue; }
      const before = readout.text;
      sliders[i].value = values[i];
      for (let t = 0; t < 1000 && readout.text === before; t++) {
        await (t < 100 ? Promise.resolve() : new Promise((r) => setTimeout(r, 0)));
      }
    }
    rows.push([sliders[0].value, sliders[1].value, sliders[2].value, readout.text]);
  }
  return rows;
}"""


@pytest.mark.browser
def test_readout_equals_python_over_a_grid_of_slider_settings(offline_page, tmp_path):
    page = open_explorer(offline_page, tmp_path, rs.bokeh_explorer(), "running_grid")
    page.locator("main").evaluate("main => { main.style.visibility = 'hidden'; }")
    ks = [round(k, 2) for k in np.arange(0.25, 4.0001, 0.55)]
    mus = [round(m, 2) for m in np.arange(-2.0, 2.0001, 0.65)]
    log_ns = [0.0, 0.7, 1.3, 2.1, 2.6, 3.0]
    settings = [[k, mu, log_n] for k in ks for mu in mus for log_n in log_ns]
    rows = page.evaluate(SWEEP_JS, settings)
    assert len(rows) == len(ks) * len(mus) * len(log_ns)
    wrong = [(k, mu, log_n, text) for k, mu, log_n, text in rows
             if text != _python_readout(k, mu, log_n)]
    assert wrong == []
    assert_clean(offline_page)


@pytest.mark.browser
def test_the_explorer_fits_a_phone(browser, tmp_path):
    from explorer_pages import standalone_page, wait_for_bokeh

    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(standalone_page(rs.bokeh_explorer(), tmp_path / "phone.html")
                  .as_uri())
        wait_for_bokeh(page)
        page.wait_for_timeout(300)
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], widths
        box = page.locator(".bk-Column").first.bounding_box()
        assert box["width"] <= 390
    finally:
        context.close()
