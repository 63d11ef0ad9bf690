"""reparam.data: the bundled digits, their two representations and the splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from reparam.data import (
    GREY_LEVELS,
    bundled_digits,
    image_grid,
    load_binary_digits,
    load_scaled_digits,
)


def test_bundled_digits_are_sklearns_load_digits():
    # Read from scikit-learn's file without importing it: the very same arrays, row by
    # row and in order (so the seeded split and the chapters' numbers are unchanged).
    levels, labels = bundled_digits()
    reference = load_digits()
    assert levels.shape == (1797, 64) and labels.dtype == np.int64
    np.testing.assert_array_equal(levels, reference.data)
    np.testing.assert_array_equal(labels, reference.target)


def test_the_split_is_the_seeded_permutation_test_first():
    reference = load_digits()
    binary = load_binary_digits(test_fraction=0.5, seed=3)
    order = torch.randperm(1797, generator=torch.Generator().manual_seed(3))
    expected = torch.tensor(reference.data / 16.0 > 0.5, dtype=torch.float32)
    # round(0.5 * 1797) = 898 (Python rounds half to even).
    assert torch.equal(binary.test_images, expected[order[:898]])
    assert torch.equal(binary.train_images, expected[order[898:]])
    assert binary.validation_images.shape == (0, 64)


def test_default_split_sizes_binary_pixels_all_classes():
    data = load_binary_digits()
    assert data.train_images.shape == (1438, 64) and data.test_images.shape == (359, 64)
    assert set(data.train_images.unique().tolist()) == {0.0, 1.0}
    assert set(data.test_labels.tolist()) == set(range(10))
    # Loading again, with other random draws in between, gives the same split.
    torch.rand(10)
    assert torch.equal(load_binary_digits().test_images, data.test_images)
    # Another seed gives another split: the seed is really used.
    assert not torch.equal(load_binary_digits(seed=1).test_labels, data.test_labels)


def test_the_threshold_runs_over_0_to_1_excluding_1():
    # Ink above the threshold, on the ink scaled to [0, 1] (levels / 16): at 0 a pixel
    # is ink wherever any ink is; at 1 every image would be blank.
    levels, _ = bundled_digits()
    for threshold in (0.0, 0.3):
        data = load_binary_digits(threshold=threshold, test_fraction=0.5, seed=3)
        ink = torch.tensor(levels > 16 * threshold, dtype=torch.float32)
        assert data.train_images.sum() + data.test_images.sum() == ink.sum()
    for threshold in (1.0, -0.1):
        with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\)"):
            load_binary_digits(threshold=threshold)


def test_a_validation_split_leaves_the_test_split_unchanged():
    plain = load_scaled_digits()
    three = load_scaled_digits(validation_fraction=0.2)
    assert torch.equal(three.test_images, plain.test_images)
    assert three.validation_images.shape == (359, 64)
    assert three.train_images.shape == (1797 - 2 * 359, 64)
    # Validation and train together are the old training set, in the same order.
    joined = torch.cat([three.validation_images, three.train_images])
    assert torch.equal(joined, plain.train_images)


def test_the_two_representations_hold_out_the_same_images():
    scaled = load_scaled_digits(validation_fraction=0.1)
    binary = load_binary_digits(validation_fraction=0.1)
    for part in ("train", "validation", "test"):
        grey = getattr(scaled, f"{part}_images")
        assert torch.equal(getattr(scaled, f"{part}_labels"),
                           getattr(binary, f"{part}_labels"))
        # Thresholding the grey levels gives the binary pixels exactly.
        assert torch.equal(((grey + 1) / 2 > 0.5).float(),
                           getattr(binary, f"{part}_images"))


def test_scaled_pixels_are_the_17_grey_levels():
    data = load_scaled_digits()
    assert float(data.train_images.min()) == -1.0
    assert float(data.train_images.max()) == 1.0
    levels = (data.train_images + 1) * 8  # back to scikit-learn's 0..16 ink levels
    assert torch.equal(levels, levels.round())
    assert len(levels.unique()) == GREY_LEVELS == 17  # the constant is the data's count
    raw = load_digits()
    rows = {tuple(r): y for r, y in zip(raw.data.astype(int), raw.target, strict=True)}
    test_levels = ((data.test_images + 1) * 8).tolist()
    for image, label in zip(test_levels, data.test_labels.tolist(), strict=True):
        assert rows[tuple(int(round(v)) for v in image)] == label


@pytest.mark.parametrize("kwargs, error, match", [
    ({"test_fraction": 1.0}, ValueError, "test_fraction"),
    ({"test_fraction": 0.0}, ValueError, "test_fraction"),
    ({"test_fraction": "0.2"}, TypeError, "test_fraction"),
    ({"validation_fraction": -0.1}, ValueError, "validation_fraction"),
    ({"validation_fraction": 1.0}, ValueError, r"validation_fraction must lie in \["),
    ({"test_fraction": 0.5, "validation_fraction": 0.5}, ValueError, "< 1"),
])
def test_bad_fractions_are_refused(kwargs, error, match):
    for load in (load_binary_digits, load_scaled_digits):
        with pytest.raises(error, match=match):
            load(**kwargs)


def test_image_grid_places_each_image_row_by_row():
    images = torch.arange(5 * 64, dtype=torch.float32).reshape(5, 64)
    grid = image_grid(images, rows=2)
    assert grid.shape == (2 * 9 - 1, 3 * 9 - 1)
    # Image 4 is in row 1, column 1; the empty last tile and the gutters are 0.15.
    np.testing.assert_array_equal(grid[9:17, 9:17], images[4].reshape(8, 8).numpy())
    np.testing.assert_array_equal(grid[9:17, 18:26], np.full((8, 8), 0.15))
    assert np.all(grid[8, :] == 0.15) and np.all(grid[:, 8] == 0.15)
    one_row = image_grid(images[:2], rows=1, gutter=1.0)
    assert one_row.shape == (8, 17) and np.all(one_row[:, 8] == 1.0)
    with pytest.raises(TypeError, match="rows"):
        image_grid(images, rows=2.0)
    with pytest.raises(ValueError, match="rows"):
        image_grid(images, rows=0)
