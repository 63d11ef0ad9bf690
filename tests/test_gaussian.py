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
    assert np.allclose(
        gaussian.normal_density(X, 0.5, 1.7), stats.norm.pdf(X, 0.5, 1.7), rtol=1e-14
    )
    tensor = torch.tensor(X)
    reference = torch.distributions.Normal(
        torch.tensor(0.5, dtype=torch.float64), torch.tensor(1.7, dtype=torch.float64)
    ).log_prob(tensor)
    assert torch.allclose(
        gaussian.normal_log_density(tensor, 0.5, 1.7), reference, rtol=1e-14
    )


def test_standardize_inverts_unstandardize_for_arrays_and_tensors():
    assert np.allclose(
        gaussian.standardize(gaussian.unstandardize(X, -1.0, 0.3), -1.0, 0.3), X
    )
    tensor = torch.tensor(X, requires_grad=True)
    out = gaussian.unstandardize(tensor, 2.0, 3.0)
    # the graph survives: this is the map the pathwise gradient flows through
    out.sum().backward()
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


# --- Infinities are refused, everywhere -----------------------------------------------
INFINITE_DATA = [
    np.array([0.0, math.inf]),
    np.array([-math.inf]),
    torch.tensor([1.0, -math.inf], dtype=torch.float64),
    torch.tensor([math.inf], dtype=torch.float32),
    math.inf,
    [0.5, -math.inf],
]


@pytest.mark.parametrize("values", INFINITE_DATA, ids=range(len(INFINITE_DATA)))
@pytest.mark.parametrize(
    "function, name",
    [
        (gaussian.standardize, "x"),
        (gaussian.normal_density, "x"),
        (gaussian.normal_log_density, "x"),
        (gaussian.unstandardize, "eps"),
    ],
)
def test_infinite_data_are_refused(values, function, name):
    # normal_density(inf) = 0 would look harmless, but an infinite draw is a bug
    # upstream.
    with pytest.raises(ValueError, match=f"{name} contains NaN or infinite"):
        function(values, 0.0, 1.0)


@pytest.mark.parametrize("sigma", [math.inf, -math.inf])
@pytest.mark.parametrize("function", [gaussian.standardize, gaussian.normal_density])
def test_infinite_sigma_and_mu_are_refused(function, sigma):
    with pytest.raises(ValueError, match="sigma"):
        function(X, 0.0, sigma)
    with pytest.raises(ValueError, match="mu must be finite"):
        function(X, sigma, 1.0)


def test_exact_values():
    assert np.array_equal(
        gaussian.standardize(np.array([3.0, -1.0]), 1.0, 2.0), [1.0, -1.0]
    )
    assert np.array_equal(
        gaussian.unstandardize(np.array([1.0, -1.0]), 1.0, 2.0), [3.0, -1.0]
    )
    assert gaussian.normal_density(1.0, 1.0, 2.0) == pytest.approx(
        1 / (2 * math.sqrt(2 * math.pi)), rel=1e-15
    )
    assert gaussian.normal_log_density(3.0, 1.0, 2.0) == pytest.approx(
        -0.5 - math.log(2.0) - 0.5 * math.log(2 * math.pi), rel=1e-15
    )
    tensor = gaussian.normal_density(torch.tensor([1.0], dtype=torch.float64), 1.0, 2.0)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float64
