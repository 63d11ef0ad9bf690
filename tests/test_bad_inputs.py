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


@pytest.mark.parametrize("generator", [None, 42, np.random.default_rng(0)])
def test_check_generator_refuses_all_but_a_torch_generator(generator):
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        _validation.check_generator(generator)


def test_check_generator_returns_the_generator_itself():
    generator = torch.Generator().manual_seed(3)
    assert _validation.check_generator(generator) is generator


def test_check_choice_separates_type_from_value():
    assert _validation.check_choice("mu", "parameter", ("mu", "sigma")) == "mu"
    with pytest.raises(TypeError, match="parameter must be a string"):
        _validation.check_choice(0, "parameter", ("mu", "sigma"))
    with pytest.raises(ValueError, match="parameter must be one of"):
        _validation.check_choice("tau", "parameter", ("mu", "sigma"))


@pytest.mark.parametrize(
    "images, pixels, error, message",
    [
        ([[0.0] * 64], 64, TypeError, "must be a torch.Tensor"),
        (torch.zeros(2, 64, dtype=torch.int64), 64, TypeError, "floating point"),
        (torch.zeros(2, 63), 64, ValueError, r"shape \(n, 64\)"),
        (torch.zeros(0, 64), 64, ValueError, "n >= 1"),
        (torch.zeros(64), None, ValueError, r"shape \(n, d\)"),
        (torch.zeros(2, 8, 8), 16, ValueError, r"shape \(n, 16\)"),  # 8x8 only for 64
        (torch.full((2, 64), math.nan), 64, ValueError, "NaN"),
    ],
)
def test_check_images_refuses(images, pixels, error, message):
    with pytest.raises(error, match=message):
        _validation.check_images(images, "x", pixels)


def test_check_images_flattens_8x8_and_keeps_any_width_without_pixels():
    square = torch.arange(128.0).reshape(2, 8, 8)
    assert torch.equal(_validation.check_images(square, "x", 64),
                       torch.arange(128.0).reshape(2, 64))
    wide = torch.zeros(3, 5)
    assert _validation.check_images(wide, "x", None) is wide


# --- Wrong types at the modules' boundaries: TypeError, not ValueError ----------------


def _boundary_cases():
    from reparam import crossover, diffusion, implicit, learned_schedule

    schedule = diffusion.linear_schedule(10, 0.01, 0.2)
    x = torch.zeros(2, 64)
    t = torch.tensor([1, 2])
    x_grid = torch.tensor([0.5, 1.0], dtype=torch.float64)
    rate = [torch.tensor(1.0, dtype=torch.float64)]
    return [
        (lambda: crossover.hermite_variance(costs.cosine, 0.0, 1.0, "pathwise", "mu",
                                            nodes=20.0), TypeError, "nodes"),
        (lambda: crossover.hermite_variance(costs.cosine, 0.0, 1.0, "pathwise", "mu",
                                            nodes=1), ValueError, "nodes"),
        (lambda: crossover.hermite_variance(costs.cosine, 0.0, 1.0, 3, "mu"),
         TypeError, "estimator"),
        (lambda: crossover.hermite_variance(costs.cosine, 0.0, 1.0, "path", "mu"),
         ValueError, "estimator"),
        (lambda: crossover.hermite_variance("cosine", 0.0, 1.0, "pathwise", "mu"),
         TypeError, "cost must be a GaussianCost"),
        (lambda: implicit.implicit_sample_grad(lambda x, r: (1 - torch.exp(-r * x))
                                               .tolist(), x_grid, rate),
         TypeError, "cdf must return a torch.Tensor"),
        (lambda: implicit.implicit_sample_grad(lambda x, r: (1 - torch.exp(-r * x))[:1],
                                               x_grid, rate),
         ValueError, "cdf must return a tensor of x's shape"),
        (lambda: learned_schedule.PiecewiseLinearSchedule([-2.0, 0.0, 2.0]),
         TypeError, "knots must be a torch.Tensor"),
        (lambda: diffusion.posterior_mean_from_noise(x, x.tolist(), t, schedule),
         TypeError, "noise must be a torch.Tensor"),
        (lambda: diffusion.prediction_target(x, x.tolist(), t, schedule, "epsilon"),
         TypeError, "noise must be a torch.Tensor"),
        (lambda: diffusion.timestep_embedding(t, "4", 10), TypeError, "dim"),
        (lambda: diffusion.timestep_embedding(t, 3, 10), ValueError, "even"),
        (lambda: diffusion.linear_schedule(10.0), TypeError, "T must be an integer"),
        (lambda: diffusion.linear_schedule(10, "0.01"), TypeError, "beta_start"),
    ]


@pytest.mark.parametrize("case", range(len(_boundary_cases())))
def test_wrong_types_at_the_boundaries_are_type_errors(case):
    call, error, message = _boundary_cases()[case]
    with pytest.raises(error, match=message):
        call()


def _draws_without_a_generator():
    from reparam import diffusion, discrete, flows, implicit, vae

    images = torch.rand(3, 64, generator=torch.Generator().manual_seed(0))
    model = vae.VAE(2, 8, generator=torch.Generator().manual_seed(0))
    return {
        "discrete.draw_gumbel": lambda: discrete.draw_gumbel(2, 3),
        "implicit.draw_standard_gamma": lambda: implicit.draw_standard_gamma(1.5, 3),
        "flows.coupling_flow": lambda: flows.coupling_flow(2, 2),
        "flows.Flow.sample": lambda: flows.coupling_flow(
            2, 2, generator=torch.Generator()).sample(3),
        "vae.VAE": lambda: vae.VAE(2, 8),
        "vae.elbo_terms": lambda: vae.elbo_terms(model, images, 2),
        "vae.fit_bernoulli_mixture": lambda: vae.fit_bernoulli_mixture(
            (images > 0.5).double(), 2),
        "diffusion.gaussian_baseline": lambda: diffusion.gaussian_baseline(
            images, 2, None),
    }


@pytest.mark.parametrize("name", sorted(_draws_without_a_generator()))
def test_every_function_that_draws_requires_its_generator(name):
    state = torch.get_rng_state()
    with pytest.raises(TypeError, match="generator must be a"):
        _draws_without_a_generator()[name]()
    assert torch.equal(torch.get_rng_state(), state)  # nothing drawn from the global
