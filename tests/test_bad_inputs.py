"""Property-based: every invalid argument gives a clear exception, never a NaN
result."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reparam import costs, gaussian
from reparam.estimators import pathwise_grad, score_function_grad

ESTIMATORS = [pathwise_grad, score_function_grad]
SEEDED = torch.Generator().manual_seed(0)  # never reached: the checks fail first
finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)
positive = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False)
bad_sigma = st.one_of(st.floats(max_value=0.0), st.just(math.nan), st.just(math.inf))
bad_mu = st.sampled_from([math.nan, math.inf, -math.inf])
bad_n = st.one_of(
    st.integers(max_value=0), st.floats(allow_nan=True), st.just(True), st.just("10")
)


@pytest.mark.parametrize("estimator", ESTIMATORS)
@given(mu=finite, sigma=bad_sigma)
@settings(max_examples=40, deadline=None)
def test_bad_sigma_is_named(estimator, mu, sigma):
    with pytest.raises(ValueError, match="sigma"):
        estimator(costs.square, mu, sigma, 4, SEEDED)


@pytest.mark.parametrize("estimator", ESTIMATORS)
@given(mu=bad_mu, sigma=positive)
@settings(max_examples=20, deadline=None)
def test_bad_mu_is_named(estimator, mu, sigma):
    with pytest.raises(ValueError, match="mu"):
        estimator(costs.square, mu, sigma, 4, SEEDED)


@pytest.mark.parametrize("estimator", ESTIMATORS)
@given(n=bad_n)
@settings(max_examples=40, deadline=None)
def test_bad_n_is_named(estimator, n):
    wrong_type = isinstance(n, bool) or not isinstance(n, int)
    with pytest.raises(TypeError if wrong_type else ValueError,
                       match="n must be an integer"):
        estimator(costs.square, 0.0, 1.0, n, SEEDED)


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize(
    "f, error, message",
    [
        (lambda x: x.sum(), ValueError, "elementwise"),
        (lambda x: x[:-1], ValueError, "elementwise"),
        (lambda x: x.tolist(), TypeError, "torch.Tensor"),
        (lambda x: x / 0.0 * 0.0, ValueError, "NaN"),
        (lambda x: torch.log(x - 1e9), ValueError, "NaN"),
    ],
)
def test_bad_cost_functions(estimator, f, error, message):
    with pytest.raises(error, match=message):
        estimator(f, 0.0, 1.0, 8, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_bad_types(estimator):
    with pytest.raises(TypeError, match="generator"):
        estimator(costs.square, 0.0, 1.0, 4, generator=42)
    with pytest.raises(TypeError, match="generator"):
        estimator(costs.square, 0.0, 1.0, 4, None)
    with pytest.raises(TypeError, match="bool"):
        estimator(costs.square, True, 1.0, 4, SEEDED)
    with pytest.raises(TypeError, match="mu"):
        estimator(costs.square, "0", 1.0, 4, SEEDED)
    with pytest.raises(ValueError, match="scalar"):
        estimator(costs.square, torch.zeros(2), 1.0, 4, SEEDED)
    with pytest.raises(TypeError, match="callable"):
        estimator(None, 0.0, 1.0, 4, SEEDED)


def test_bad_baselines():
    with pytest.raises(ValueError, match="baseline"):
        score_function_grad(costs.square, 0.0, 1.0, 4, SEEDED, baseline="mean")
    with pytest.raises(ValueError, match="baseline"):
        score_function_grad(costs.square, 0.0, 1.0, 4, SEEDED, baseline=math.nan)
    with pytest.raises(ValueError, match="n >= 2"):
        score_function_grad(costs.square, 0.0, 1.0, 1, SEEDED,
                            baseline="leave-one-out")


@pytest.mark.parametrize("estimator", ESTIMATORS)
@given(mu=finite, sigma=positive, seed=st.integers(0, 2**31 - 1))
@settings(max_examples=40, deadline=None)
def test_valid_inputs_never_give_nan(estimator, mu, sigma, seed):
    result = estimator(costs.cosine, mu, sigma, 16, torch.Generator().manual_seed(seed))
    assert bool(torch.isfinite(result).all())


@given(
    values=st.lists(
        st.one_of(finite, st.just(math.nan), st.just(math.inf)), min_size=1
    ),
    sigma=st.one_of(positive, bad_sigma),
)
@settings(max_examples=60, deadline=None)
def test_gaussian_helpers_raise_or_return_finite(values, sigma):
    try:
        result = gaussian.normal_density(np.array(values), 0.0, sigma)
    except ValueError as error:
        assert "sigma" in str(error) or "x contains" in str(error)
    else:
        assert np.isfinite(result).all()


# --- The validators themselves, at their boundaries -----------------------------------
from reparam import _validation  # noqa: E402


@pytest.mark.parametrize(
    "value, error, message",
    [
        (math.inf, ValueError, "finite"),
        (-math.inf, ValueError, "finite"),
        (math.nan, ValueError, "finite"),
        (True, TypeError, "bool"),
        (np.bool_(False), TypeError, "bool"),
        (1 + 2j, TypeError, "real"),
        ("1.0", TypeError, "real"),
        (np.zeros(2), ValueError, "scalar"),
        (torch.tensor([1.0, 2.0]), ValueError, "scalar"),
        (torch.tensor(True), TypeError, "real"),
        (torch.tensor(math.inf), ValueError, "finite"),
    ],
)
def test_as_real_scalar_refuses(value, error, message):
    with pytest.raises(error, match=message):
        _validation.as_real_scalar(value, "theta")
    with pytest.raises(error, match="theta"):
        _validation.as_real_scalar(value, "theta")


def test_as_real_scalar_accepts_exactly():
    assert _validation.as_real_scalar(np.float32(0.5), "a") == 0.5
    assert _validation.as_real_scalar(torch.tensor(-2.0), "a") == -2.0
    assert _validation.as_real_scalar(np.array(3), "a") == 3.0
    assert isinstance(_validation.as_real_scalar(3, "a"), float)


@pytest.mark.parametrize("sigma", [0.0, -0.0, -1e-300, math.inf, math.nan])
def test_check_scale_refuses(sigma):
    with pytest.raises(ValueError, match="scale_name"):
        _validation.check_scale(sigma, "scale_name")


def test_check_scale_accepts_tiny_positive():
    assert _validation.check_scale(1e-300) == 1e-300


@pytest.mark.parametrize("n, error", [(0, ValueError), (-1, ValueError),
                                      (10.0, TypeError), (True, TypeError),
                                      ("3", TypeError), (None, TypeError)])
def test_check_count_refuses(n, error):
    with pytest.raises(error, match="count_name"):
        _validation.check_count(n, "count_name")


def test_check_count_accepts_one_and_numpy_integers():
    assert _validation.check_count(1) == 1
    assert _validation.check_count(np.int64(7)) == 7


@pytest.mark.parametrize(
    "values",
    [
        np.array([1.0, math.inf]),
        [math.nan],
        torch.tensor([-math.inf]),
        torch.tensor([[0.0, math.nan]]),
    ],
)
def test_check_finite_array_refuses(values):
    with pytest.raises(ValueError, match="arr contains NaN or infinite"):
        _validation.check_finite_array(values, "arr")
