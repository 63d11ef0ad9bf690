"""reparam.costs.cantor, the Cantor function of Chapter 3, against its defining
identities and against the Cantor law it is the distribution function of."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reparam.costs import cantor
from reparam.estimators import pathwise_grad

F64 = torch.float64


def values(points, **options):
    return cantor(torch.tensor(points, dtype=F64), **options).numpy()


def test_known_values():
    # C(1/4) = 1/3, C(3/4) = 2/3, C(1/10) = 1/5 (0.0022... in base 3, 0.0011... in
    # base 2), the ends, and the flat middle third. 0.1 and 0.9 are not exact in
    # float64, and C is only Hoelder of order log 2/log 3: a 1e-17 error in x moves C
    # by up to about 1e-10.
    points = [0.0, 0.25, 0.75, 0.1, 0.9, 1.0, 0.4, 0.5, 0.6]
    expected = [0.0, 1 / 3, 2 / 3, 0.2, 0.8, 1.0, 0.5, 0.5, 0.5]
    np.testing.assert_allclose(values(points), expected, rtol=0, atol=1e-10)
    assert values([0.0, 1.0]).tolist() == [0.0, 1.0]  # exactly


def test_zero_below_and_one_above_the_unit_interval():
    np.testing.assert_array_equal(values([-3.0, -1e-9, 1 + 1e-9, 7.0]), [0, 0, 1, 1])


def test_constant_on_removed_intervals():
    # (1/9, 2/9) -> 1/4, (1/3, 2/3) -> 1/2, (7/9, 8/9) -> 3/4, (19/27, 20/27) -> 5/8
    for (a, b), level in (((1 / 9, 2 / 9), 0.25), ((1 / 3, 2 / 3), 0.5),
                          ((7 / 9, 8 / 9), 0.75), ((19 / 27, 20 / 27), 0.625)):
        inside = np.linspace(a, b, 12)[1:-1]
        np.testing.assert_allclose(values(inside), level, rtol=0, atol=1e-12)


def test_the_self_similarity_that_defines_it():
    # C(x/3) = C(x)/2, C(2/3 + x/3) = 1/2 + C(x)/2, C(1 - x) = 1 - C(x). C is Hoelder
    # of order log 2/log 3, so a rounding of 1e-16 in x moves C by up to ~1e-10.
    x = np.random.default_rng(3).uniform(0, 1, 2_000)
    c = values(x)
    np.testing.assert_allclose(values(x / 3), c / 2, rtol=0, atol=1e-9)
    np.testing.assert_allclose(values(2 / 3 + x / 3), 0.5 + c / 2, rtol=0, atol=1e-9)
    np.testing.assert_allclose(values(1 - x), 1 - c, rtol=0, atol=1e-9)


def test_nondecreasing():
    grid = np.linspace(-0.1, 1.1, 20_001)
    assert np.all(np.diff(values(grid)) >= 0)


def test_it_is_the_distribution_function_of_the_cantor_law():
    # Y = sum 2 b_i 3^-i with fair bits b_i: P(Y <= x) = C(x), within 4 binomial
    # standard errors at each point.
    bits = np.random.default_rng(11).integers(0, 2, (200_000, 40))
    y = (2 * bits) @ (3.0 ** -np.arange(1, 41))
    points = np.array([0.05, 0.2, 0.3, 0.5, 0.71, 0.8, 0.95])
    empirical = (y[:, None] <= points).mean(axis=0)
    c = values(points)
    standard_error = np.sqrt(c * (1 - c) / len(y))
    assert np.all(np.abs(empirical - c) <= 4 * standard_error + 1e-12), (empirical, c)


def test_depth_truncates_within_two_to_the_minus_depth():
    x = np.random.default_rng(5).uniform(0, 1, 500)
    full = values(x)
    for depth in (1, 3, 10):
        gap = np.abs(values(x, depth=depth) - full)
        assert gap.max() <= 2.0**-depth + 1e-15
    assert np.any(values(x, depth=3) != full)  # truncation does change values


def test_the_pathwise_gradient_through_it_is_zero():
    rows = pathwise_grad(cantor, 0.5, 0.3, 1_000, torch.Generator().manual_seed(0))
    assert torch.equal(rows, torch.zeros(1_000, 2, dtype=F64))
    x = torch.tensor([0.2, 0.5], dtype=F64, requires_grad=True)
    assert not cantor(x).requires_grad


def test_infinities_are_the_limits():
    assert values([-np.inf, np.inf]).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("bad, error", [([0.5], TypeError),
                                        (torch.tensor([1, 2]), TypeError),
                                        (torch.tensor([0.5, np.nan]), ValueError)])
def test_bad_x(bad, error):
    with pytest.raises(error, match="x"):
        cantor(bad)


@pytest.mark.parametrize("depth, error", [(0, ValueError), (True, TypeError),
                                          (2.0, TypeError)])
def test_bad_depth(depth, error):
    with pytest.raises(error, match="depth"):
        cantor(torch.tensor([0.5], dtype=F64), depth=depth)
