"""Chapter 7's explorer (latent): a point of the VAE's 2-D latent space, decoded; its
state, its readout, its two front ends.

The reference for the decoded image is the model's own PyTorch decoder in double
precision; the page's JavaScript must reproduce :func:`latent_state` exactly enough
that its readout prints the same text.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from explorer_pages import assert_clean, model_value, open_explorer, press

from reparam.explorers import WidgetExplorer
from reparam.explorers import latent as lt
from reparam.vae import VAE


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def model():
    return VAE(latent_dim=2, hidden=24, generator=seeded(3))


@pytest.fixture(scope="module")
def weights(model):
    return lt.decoder_weights(model)


# --- the state ----------------------------------------------------------------------


@pytest.mark.parametrize("z", [(0.0, 0.0), (1.3, -2.2), (-3.0, 3.0), (0.85, -1.55)])
def test_state_is_the_torch_decoder_in_double_precision(model, weights, z):
    double = VAE(latent_dim=2, hidden=24, generator=seeded(3)).double()
    with torch.no_grad():
        point = torch.tensor(z, dtype=torch.float64)
        expected = torch.sigmoid(double.decode_logits(point))
    state = lt.latent_state(weights, *z)
    assert state.z == z
    # Row 0 of the image is the top row of the digit: pixel p is row p // 8.
    np.testing.assert_allclose(state.image.ravel(), expected.numpy(), rtol=0,
                               atol=1e-13)
    assert state.image.shape == (8, 8)
    assert state.mean_ink == pytest.approx(float(expected.mean()), abs=1e-13)


def test_state_decodes_the_float32_model_as_trained(model, weights):
    with torch.no_grad():
        trained = torch.sigmoid(model.decode_logits(torch.tensor([0.4, -0.7])))
    image = lt.latent_state(weights, 0.4, -0.7).image.ravel()
    assert np.abs(image - trained.numpy()).max() < 1e-6


def test_class_centres_are_the_means_of_each_label():
    points = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 3.0], [-1.0, -1.0]])
    classes, centres = lt.class_centres(points, np.array([4, 4, 7, 1]))
    assert classes.tolist() == [1, 4, 7]
    np.testing.assert_array_equal(centres, [[-1.0, -1.0], [1.0, 0.0], [1.0, 3.0]])
    classes, centres = lt.class_centres(None, None)
    assert classes.size == 0 and centres.shape == (0, 2)


def _pairwise_distances(positions):
    return [float(np.hypot(*(positions[i] - positions[j])))
            for i in range(len(positions)) for j in range(i + 1, len(positions))]


def test_spread_labels_moves_only_crowded_numbers_apart():
    centres = np.array([[0.0, 0.0], [0.1, 0.0], [2.0, 2.0], [-2.0, 1.0], [0.05, 0.05]])
    places = lt.spread_labels(centres, 0.4)
    assert places.shape == centres.shape
    assert min(_pairwise_distances(places)) >= 0.4
    np.testing.assert_array_equal(places[2:4], centres[2:4])  # room enough: unmoved
    assert not np.array_equal(places[[0, 1, 4]], centres[[0, 1, 4]])
    # Each crowded number stays near its own centre, not swapped with a neighbour's.
    assert np.abs(places - centres).max() < 0.5
    np.testing.assert_array_equal(lt.spread_labels(centres, 0.4), places)
    # Two labels on one spot, and a pair just too close, are parted along one line.
    same = lt.spread_labels(np.array([[1.0, 1.0], [1.0, 1.0]]), 0.4)
    assert _pairwise_distances(same)[0] == pytest.approx(0.4, rel=1e-5)
    np.testing.assert_allclose(same.mean(0), [1.0, 1.0])
    pair = lt.spread_labels(np.array([[0.0, 0.0], [0.3, 0.0]]), 0.4)
    np.testing.assert_allclose(pair, [[-0.05, 0.0], [0.35, 0.0]], atol=1e-6)


def test_spread_labels_parts_the_ten_numbers_of_a_crowded_map():
    centres = np.random.default_rng(2).normal(scale=0.3, size=(10, 2))
    assert min(_pairwise_distances(centres)) < 0.4
    assert min(_pairwise_distances(lt.spread_labels(centres))) >= lt.LABEL_SPACING


@pytest.mark.parametrize("call, error, message", [
    (lambda w: lt.spread_labels(np.array([[0.0, np.nan]])), ValueError, "centres"),
    (lambda w: lt.spread_labels(np.zeros((2, 2)), 0.0), ValueError, "min_distance"),
    (lambda w: lt.spread_labels(np.zeros((2, 2)), "wide"), TypeError,
     "min_distance"),
    (lambda w: lt.decoder_weights(VAE(8, 8, generator=seeded(0))), ValueError,
     "2-D latent"),
    (lambda w: lt.decoder_weights(torch.nn.Linear(2, 2)), TypeError,
     "Linear, Tanh, Linear"),
    (lambda w: lt.decode(w, (0.0, float("inf"))), ValueError, "z contains NaN"),
    (lambda w: lt.decode(w, (0.0, 1.0, 2.0)), ValueError, "z must be"),
    (lambda w: lt.decode("weights", (0.0, 1.0)), TypeError, "weights"),
    (lambda w: lt.latent_state(w, "1", 0.0), TypeError, "z1"),
    (lambda w: lt.latent_state(w, 0.0, float("nan")), ValueError, "z2"),
    (lambda w: lt.bokeh_explorer(w, np.zeros((3, 3))), ValueError, "points"),
    (lambda w: lt.bokeh_explorer(w, np.zeros((3, 2)), np.zeros(2)), ValueError,
     "labels"),
    (lambda w: lt.bokeh_explorer(w, np.zeros((3, 2)), np.zeros(3)), TypeError,
     "labels"),
    (lambda w: lt.bokeh_explorer(w, title=None), TypeError, "title"),
    (lambda w: lt.bokeh_explorer(w, title="  "), ValueError, "title"),
    (lambda w: lt.ipywidgets_explorer(w, title=3), TypeError, "title"),
])
def test_state_refuses_bad_input(weights, call, error, message):
    with pytest.raises(error, match=message):
        call(weights)


# --- the readout --------------------------------------------------------------------


def test_readout_states_the_point_and_the_mean_ink(weights):
    state = lt.latent_state(weights, 0.8500000000000001, -1.55)
    text = lt.readout_text(state)
    assert text.startswith("z = (0.85, -1.55); mean pixel probability ")
    assert text.endswith(f"{state.mean_ink:.4f}")
    state = lt.LatentState((-2.125, 0.0), np.zeros((8, 8)), 0.03125)
    # toFixed rounds an exact tie away from zero, as the page does: -2.13 and 0.0313,
    # where Python's format writes -2.12 and 0.0312.
    assert lt.readout_text(state) == "z = (-2.13, 0.00); mean pixel probability 0.0313"


# --- the ipywidgets front end -------------------------------------------------------


def test_ipywidgets_sliders_move_the_same_artists(ipympl, weights):
    points = np.random.default_rng(0).normal(size=(30, 2))
    lab = lt.ipywidgets_explorer(weights, points, np.arange(30) % 10)
    assert isinstance(lab, WidgetExplorer)
    z1_slider, z2_slider = lab.widget.children[0].children
    readout = lab.widget.children[-1]
    ax_map, ax_digit = lab.figure.axes
    artists_before = [ax.get_children() for ax in lab.figure.axes]
    figures_before = plt.get_fignums()
    z1_slider.value = 1.0  # each assignment runs the slider callback
    z2_slider.value = -0.5
    state = lt.latent_state(weights, 1.0, -0.5)
    assert [ax.get_children() for ax in lab.figure.axes] == artists_before
    assert plt.get_fignums() == figures_before
    cross = next(line for line in ax_map.lines if line.get_marker() == "+")
    assert list(cross.get_xdata()) == [1.0] and list(cross.get_ydata()) == [-0.5]
    np.testing.assert_array_equal(ax_digit.images[0].get_array(), state.image)
    assert readout.value == lt.readout_text(state)
    assert len(ax_map.texts) == 10  # a number at each class's centre
    places = [text.xy for text in ax_map.texts]
    assert min(_pairwise_distances(np.array(places))) >= lt.LABEL_SPACING
    assert ax_map.get_title() == lt.MAP_TITLE
    titled = lt.ipywidgets_explorer(weights, points, np.arange(30) % 10,
                                    title="latent space: validation digits")
    assert titled.figure.axes[0].get_title() == "latent space: validation digits"
    drawn = lab.update(z1=-2.0, z2=0.25)
    assert drawn.z == (-2.0, 0.25)
    assert readout.value == lt.readout_text(drawn)
    np.testing.assert_array_equal(ax_digit.images[0].get_array(), drawn.image)


# --- the Bokeh front end, in the browser --------------------------------------------


@pytest.fixture(scope="module")
def chapter_model():
    return VAE(latent_dim=2, hidden=64, generator=seeded(5))  # the chapter's shape


def _off_float32(weights: lt.DecoderWeights) -> lt.DecoderWeights:
    """Weights that float32 cannot hold, so the page must carry them as float64."""
    rng = np.random.default_rng(1)
    nudged = {
        name: value + 1e-9 * rng.standard_normal(value.shape)
        for name, value in vars(weights).items()
    }
    return lt.DecoderWeights(**nudged)


@pytest.mark.browser
@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_keyboard_moves_the_point_and_the_page_decodes_as_python(
    offline_page, tmp_path, chapter_model, precision
):
    weights = lt.decoder_weights(chapter_model)
    if precision == "float64":
        weights = _off_float32(weights)
        assert not np.array_equal(weights.w2.astype(np.float32), weights.w2)
    points = np.random.default_rng(0).normal(size=(40, 2))
    layout = lt.bokeh_explorer(weights, points, np.arange(40) % 10)
    page = open_explorer(offline_page, tmp_path, layout, "latent")
    before = model_value(page, "latent_digit", "data")
    press(page, 0, "ArrowRight", 17)  # z1 -> 0.85
    press(page, 1, "ArrowLeft", 31)  # z2 -> -1.55
    z1 = model_value(page, "z1_slider", "value")
    z2 = model_value(page, "z2_slider", "value")
    assert (z1, z2) == (pytest.approx(0.85), pytest.approx(-1.55))
    state = lt.latent_state(weights, z1, z2)
    assert model_value(page, "latent_readout", "text") == lt.readout_text(state)
    image = page.evaluate(
        "() => { const im = Bokeh.documents[0].get_model_by_name('latent_digit')"
        ".data.image[0]; return [Array.from(im), Array.from(im.shape)]; }"
    )
    pixels = np.asarray(image[0]).reshape(image[1])
    # Bokeh draws row 0 at the bottom: the page holds the image upside down.
    np.testing.assert_allclose(pixels[::-1], state.image, rtol=0, atol=1e-12)
    assert model_value(page, "latent_point", "data")["z1"] == [z1]
    assert before != model_value(page, "latent_digit", "data")
    assert_clean(offline_page)


def test_the_map_is_titled_with_the_digits_it_shows(weights):
    from bokeh.models import Plot

    def titles(layout):
        return sorted(plot.title.text for plot in layout.select({"type": Plot}))

    assert titles(lt.bokeh_explorer(weights)) == sorted(
        [lt.MAP_TITLE, "decoded digit at the cross"])
    named = lt.bokeh_explorer(weights, np.zeros((2, 2)), np.array([0, 1]),
                              title="latent space: validation digits")
    assert "latent space: validation digits" in titles(named)
    assert not any("test" in title for title in titles(named))


@pytest.mark.browser
def test_a_tap_on_the_map_moves_the_point_to_the_sliders_grid(
    offline_page, tmp_path, chapter_model
):
    weights = lt.decoder_weights(chapter_model)
    page = open_explorer(offline_page, tmp_path, lt.bokeh_explorer(weights), "tap")
    page.evaluate("""() => {
      const doc = Bokeh.documents[0];
      const plot = [...doc.all_models].find(
        m => m.title && m.title.text && m.title.text.startsWith('latent space'));
      const {Tap} = Bokeh.require('core/bokeh_events');
      // PointEvent(sx, sy, x, y, modifiers): a tap at data point (1.02, -0.51).
      plot.trigger_event(new Tap(0, 0, 1.02, -0.51, {}));
    }""")
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('latent_point').data.z2[0] !== 0")
    z1 = model_value(page, "z1_slider", "value")
    z2 = model_value(page, "z2_slider", "value")
    assert (z1, z2) == (pytest.approx(1.0), pytest.approx(-0.5))
    state = lt.latent_state(weights, z1, z2)
    assert model_value(page, "latent_readout", "text") == lt.readout_text(state)
    assert_clean(offline_page)
