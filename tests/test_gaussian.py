"""Gaussian helpers against torch.distributions and scipy.stats."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from reparam import gaussian

X = np.linspace(-4.0, 5.0, 37)


def test_density_matches_scipy_and_torch():
    assert np.allclose(gaussian.normal_density(X, 0.5, 1.7), stats.norm.pdf(X, 0.5, 1.7), rtol=1e-14)
    tensor = torch.tensor(X)
    reference = torch.distributions.Normal(torch.tensor(0.5, dtype=torch.float64),
                                           torch.tensor(1.7, dtype=torch.float64)).log_prob(tensor)
    assert torch.allclose(gaussian.normal_log_density(tensor, 0.5, 1.7), reference, rtol=1e-14)


def test_standardize_inverts_unstandardize_for_arrays_and_tensors():
    assert np.allclose(gaussian.standardize(gaussian.unstandardize(X, -1.0, 0.3), -1.0, 0.3), X)
    tensor = torch.tensor(X, requires_grad=True)
    out = gaussian.unstandardize(tensor, 2.0, 3.0)
    out.sum().backward()  # the graph survives: this is the map the pathwise gradient flows through
    assert torch.all(tensor.grad == 3.0)


@pytest.mark.parametrize("sigma", [0.0, -1.0, math.nan, math.inf])
def test_bad_sigma(sigma):
    with pytest.raises(ValueError, match="sigma"):
        gaussian.normal_density(X, 0.0, sigma)


def test_bad_data_and_types():
    with pytest.raises(ValueError, match="x contains NaN"):
        gaussian.standardize(np.array([0.0, np.nan]), 0.0, 1.0)
    with pytest.raises(ValueError, match="mu must be finite"):
        gaussian.unstandardize(X, math.inf, 1.0)
    with pytest.raises(TypeError, match="bool"):
        gaussian.unstandardize(X, 0.0, True)
    with pytest.raises(TypeError):
        gaussian.standardize("abc", 0.0, 1.0)
    with pytest.raises(TypeError, match="floating-point"):
        gaussian.standardize(torch.tensor([1, 2]), 0.0, 1.0)
    with pytest.raises(ValueError, match="scalar"):
        gaussian.standardize(X, np.array([0.0, 1.0]), 1.0)
