"""The book's one data set: scikit-learn's bundled 8x8 handwritten digits.

Chapters 7 and 9 (and their explorers) read the digits from here, in one of two
representations of the same images:

- :func:`load_binary_digits`: ink levels 0..16 scaled to [0, 1] and thresholded, for a
  Bernoulli likelihood (the VAE);
- :func:`load_scaled_digits`: the 17 grey levels mapped to [-1, 1] by ``p / 8 - 1`` (the
  diffusion model).

Both split the images with the same seeded permutation, so for the same fractions and
seed the two representations hold out the same images. The test images come first in
the permutation, then the validation images (none unless asked for), then the training
images: asking for a validation split leaves the test split unchanged.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ._validation import as_real_array, as_real_scalar, check_count

__all__ = [
    "IMAGE_SIDE",
    "IMAGE_PIXELS",
    "GREY_LEVELS",
    "DigitsData",
    "bundled_digits",
    "load_binary_digits",
    "load_scaled_digits",
    "image_grid",
    "default_device",
]

IMAGE_SIDE = 8
IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE
GREY_LEVELS = 17  # ink 0..16 in scikit-learn's file


def default_device() -> torch.device:
    """CUDA when available, otherwise the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass(frozen=True)
class DigitsData:
    """Images (float tensors, one row of 64 pixels each) and labels, split three ways.

    The validation tensors have zero rows unless a validation fraction was asked for.
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    validation_images: torch.Tensor
    validation_labels: torch.Tensor


def bundled_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits: ink levels 0..16 (1,797 x 64) and labels.

    The same arrays as ``sklearn.datasets.load_digits()`` (tested), read from the file
    scikit-learn ships, without importing scikit-learn: its import costs about 1 s of
    every chapter execution that loads the digits.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise ImportError("scikit-learn (which ships the digits data) is not installed")
    table = np.loadtxt(
        Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz", delimiter=","
    )
    return table[:, :-1], table[:, -1].astype(np.int64)


def _fraction(value, name: str) -> float:
    value = as_real_scalar(value, name)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {value}")
    return value


def _split(images: torch.Tensor, labels: torch.Tensor, test_fraction: float,
           validation_fraction: float, seed: int) -> DigitsData:
    test_fraction = _fraction(test_fraction, "test_fraction")
    validation_fraction = _fraction(validation_fraction, "validation_fraction")
    seed = check_count(seed, "seed", minimum=0)
    if test_fraction == 0.0:
        raise ValueError("test_fraction must be > 0: every chapter holds images out")
    if test_fraction + validation_fraction >= 1.0:
        raise ValueError(
            "test_fraction + validation_fraction must be < 1 (some images must be "
            f"left to train on), got {test_fraction} + {validation_fraction}"
        )
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(test_fraction * len(images)))
    n_validation = int(round(validation_fraction * len(images)))
    test = order[:n_test]
    validation = order[n_test : n_test + n_validation]
    train = order[n_test + n_validation :]
    return DigitsData(images[train], labels[train], images[test], labels[test],
                      images[validation], labels[validation])


def load_binary_digits(test_fraction: float = 0.2, seed: int = 0,
                       threshold: float = 0.5,
                       validation_fraction: float = 0.0) -> DigitsData:
    """The digits with ink scaled to [0, 1] and thresholded at ``threshold``.

    Binary pixels make the Bernoulli likelihood a true probability of the data, and
    hence the ELBO a true bound on it.
    """
    threshold = as_real_scalar(threshold, "threshold")
    if not 0.0 <= threshold < 1.0:  # the ink is scaled to [0, 1]
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    levels, digit_labels = bundled_digits()
    images = torch.tensor(levels / 16.0 > threshold, dtype=torch.float32)
    return _split(images, torch.tensor(digit_labels), test_fraction,
                  validation_fraction, seed)


def load_scaled_digits(test_fraction: float = 0.2, seed: int = 0,
                       validation_fraction: float = 0.0) -> DigitsData:
    """The digits' 17 grey levels mapped to [-1, 1] by ``p / 8 - 1``, not binarized."""
    levels, digit_labels = bundled_digits()
    images = torch.tensor(levels / 8.0 - 1.0, dtype=torch.float32)
    return _split(images, torch.tensor(digit_labels), test_fraction,
                  validation_fraction, seed)


def image_grid(images, rows: int, gutter: float = 0.15) -> np.ndarray:
    """Tile (n, 64) images into one 2-D array of ``rows`` rows, for plotting.

    Tiles are separated by one-pixel gutters of value ``gutter`` (light grey on a
    white-is-zero colour map); a last row that is not full is filled with gutter.
    """
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    images = as_real_array(images, "images").reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
    rows = check_count(rows, "rows")
    columns = math.ceil(len(images) / rows)
    step = IMAGE_SIDE + 1
    canvas = np.full((rows * step - 1, columns * step - 1), gutter)
    for index, image in enumerate(images):
        r, c = divmod(index, columns)
        top, left = r * step, c * step
        canvas[top : top + IMAGE_SIDE, left : left + IMAGE_SIDE] = image
    return canvas
