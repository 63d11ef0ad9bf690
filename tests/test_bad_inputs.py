"""Property-based: every invalid argument gives a clear exception, never a NaN
result."""

from __future__ import annotations

import math
from fractions import Fraction

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
        (torch.Generator(), TypeError, "real"),  # arguments given in the wrong order
    ],
)
def test_as_real_scalar_refuses(value, error, message):
    with pytest.raises(error, match=message):
        _validation.as_real_scalar(value, "theta")
    with pytest.raises(error, match="theta"):
        _validation.as_real_scalar(value, "theta")


def test_as_real_array_reads_exact_numbers_and_refuses_a_string_or_bool_among_them():
    values = _validation.as_real_array([Fraction(1, 2), 2, np.float32(0.25)], "x")
    assert values.dtype == np.float64 and values.tolist() == [0.5, 2.0, 0.25]
    for odd_one in ("1", True):  # a string or a bool among exact numbers
        with pytest.raises(TypeError, match="x must be real"):
            _validation.as_real_array([Fraction(1, 2), odd_one], "x")


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
    """(what is wrong, the call, the error, a word of its message), one per case."""
    from reparam import (
        crossover,
        data,
        diffusion,
        discrete,
        implicit,
        learned_schedule,
        variance,
    )
    from reparam.explorers import latent, running_estimate, simplex

    schedule = diffusion.linear_schedule(10, 0.01, 0.2)
    x = torch.zeros(2, 64)
    t = torch.tensor([1, 2])
    x_grid = torch.tensor([0.5, 1.0], dtype=torch.float64)
    rate = [torch.tensor(1.0, dtype=torch.float64)]

    def cdf(x, r):
        return 1 - torch.exp(-r * x)

    def one_pixel_off(value):  # valid images but for one pixel
        images = torch.zeros(2, 64)
        images[1, 17] = value
        return images

    def cosine_variance(**options):
        return lambda: crossover.hermite_variance(
            **{"cost": costs.cosine, "mu": 0.0, "sigma": 1.0, "estimator": "pathwise",
               "parameter": "mu"} | options)

    return [
        ("nodes a float", cosine_variance(nodes=20.0), TypeError, "nodes"),
        ("nodes below 2", cosine_variance(nodes=1), ValueError, "nodes"),
        ("estimator a number", cosine_variance(estimator=3), TypeError, "estimator"),
        ("estimator unknown", cosine_variance(estimator="path"), ValueError,
         "estimator"),
        ("cost a string", cosine_variance(cost="cosine"), TypeError,
         "cost must be a GaussianCost"),
        ("crossover's family a string",
         lambda: crossover.crossover("cosine", (0.0, 1.0), parameter="mu"), TypeError,
         "family"),
        ("log_variance_ratio's family a string",
         lambda: crossover.log_variance_ratio("cosine", 1.0, 0.0, 1.0, "mu"),
         TypeError, "family"),
        ("bracket a number",
         lambda: crossover.crossover(costs.cosine, 5, parameter="mu"), TypeError,
         "bracket"),
        ("k_grid of strings",
         lambda: crossover.crossovers_on_grid(costs.cosine, ["a", "b"],
                                              parameter="mu"),
         TypeError, "k_grid"),
        ("variance's estimator a number",
         lambda: variance.exact_variance(costs.cosine, 0.0, 1.0, 3, "mu"),
         TypeError, "estimator"),
        ("cdf returns a list",
         lambda: implicit.implicit_sample_grad(lambda x, r: cdf(x, r).tolist(),
                                               x_grid, rate),
         TypeError, "cdf must return a torch.Tensor"),
        ("cdf returns the wrong shape",
         lambda: implicit.implicit_sample_grad(lambda x, r: cdf(x, r)[:1], x_grid,
                                               rate),
         ValueError, "cdf must return a tensor of x's shape"),
        ("the Gamma moments' estimator a number",
         lambda: implicit.gamma_estimator_moments(np.cos, np.sin, 2.0, 1.0, 3),
         TypeError, "estimator"),
        ("the Gamma moments' estimator unknown",
         lambda: implicit.gamma_estimator_moments(np.cos, np.sin, 2.0, 1.0, "path"),
         ValueError, "estimator"),
        ("the Gamma moments' rate zero",
         lambda: implicit.gamma_estimator_moments(np.cos, np.sin, 2.0, 0.0, "score"),
         ValueError, "rate must be > 0"),
        ("knots a list",
         lambda: learned_schedule.PiecewiseLinearSchedule([-2.0, 0.0, 2.0]),
         TypeError, "knots must be a torch.Tensor"),
        ("noise a list",
         lambda: diffusion.posterior_mean_from_noise(x, x.tolist(), t, schedule),
         TypeError, "noise must be a torch.Tensor"),
        ("target noise a list",
         lambda: diffusion.prediction_target(x, x.tolist(), t, schedule, "epsilon"),
         TypeError, "noise must be a torch.Tensor"),
        ("noise with NaN",
         lambda: diffusion.q_sample(x, torch.full_like(x, math.nan), t, schedule),
         ValueError, "noise contains NaN"),
        ("prediction a number",
         lambda: diffusion.prediction_target(x, x, t, schedule, 3), TypeError,
         "prediction"),
        ("dim a string", lambda: diffusion.timestep_embedding(t, "4", 10), TypeError,
         "dim"),
        ("dim odd", lambda: diffusion.timestep_embedding(t, 3, 10), ValueError, "even"),
        ("T a string", lambda: diffusion.timestep_embedding(t, 4, "10"), TypeError,
         "T must be an integer"),
        ("betas a string", lambda: diffusion.Schedule("abc"), TypeError, "betas"),
        ("betas of integers", lambda: diffusion.Schedule(torch.tensor([0, 1])),
         TypeError, "betas must be floating point"),
        ("a beta of 1", lambda: diffusion.Schedule(torch.tensor([0.5, 1.0])),
         ValueError, "open interval"),
        ("a beta of 0", lambda: diffusion.Schedule(torch.tensor([0.0, 0.5])),
         ValueError, "open interval"),
        ("one pixel below -1",
         lambda: diffusion.x0_errors(lambda xt, s: xt, one_pixel_off(-1.5), schedule,
                                     (1,), generator=torch.Generator()),
         ValueError, r"images must be scaled to \[-1, 1\]"),
        ("one pixel above 1",
         lambda: diffusion.x0_errors(lambda xt, s: xt, one_pixel_off(1.5), schedule,
                                     (1,), generator=torch.Generator()),
         ValueError, r"images must be scaled to \[-1, 1\]"),
        ("betas two-dimensional",
         lambda: diffusion.Schedule(torch.full((2, 2), 0.1, dtype=torch.float64)),
         ValueError, "betas must be one-dimensional"),
        ("betas empty", lambda: diffusion.Schedule(torch.zeros(0, dtype=torch.float64)),
         ValueError, "non-empty"),
        ("knots of bools",
         lambda: learned_schedule.PiecewiseLinearSchedule(torch.tensor([True, False])),
         TypeError, "knots must be floating point"),
        ("the loss's denoiser a string",
         lambda: learned_schedule.diffusion_loss(
             learned_schedule.PiecewiseLinearSchedule(torch.tensor([-2.0, 2.0])), "d",
             x, x, torch.rand(2)), TypeError, "denoiser"),
        ("the exact loss's denoiser a string",
         lambda: learned_schedule.exact_diffusion_loss("d", -2.0, 2.0), TypeError,
         "denoiser"),
        ("a generator given to the exact estimator",
         lambda: discrete.sgd_paths([1.0, 0.0], [0.0, 0.0], 1, 2, 3, estimator="exact",
                                    batch=1, learning_rate=0.1),
         TypeError, "generator"),
        # NumPy reads the string "1" as 1.0: each array argument must refuse it.
        ("x a string", lambda: gaussian.standardize("1", 0.0, 1.0), TypeError,
         "x must be real numbers"),
        ("x a list holding a string",
         lambda: gaussian.normal_density(["1"], 0.0, 1.0), TypeError,
         "x must be real numbers"),
        ("x of bools", lambda: gaussian.unstandardize(np.array([True]), 0.0, 1.0),
         TypeError, "eps must be real numbers"),
        ("x ragged", lambda: gaussian.standardize([[1.0], [1.0, 2.0]], 0.0, 1.0),
         ValueError, "x must be a rectangular array"),
        ("x beyond a float", lambda: gaussian.standardize([10**400], 0.0, 1.0),
         ValueError, "x must be finite"),
        ("the simplex's logits strings",
         lambda: simplex.simplex_state("abc", 1.0), TypeError,
         "logits must be real numbers"),
        ("the simplex's logits a NaN",
         lambda: simplex.simplex_state([0.0, math.nan, 0.0], 1.0), ValueError,
         "logits contains NaN"),
        ("the latent z strings",
         lambda: latent.decode(latent.DecoderWeights(
             np.zeros((1, 2)), np.zeros(1), np.zeros((64, 1)), np.zeros(64)),
             ["0", "1"]), TypeError,
         "z must be real numbers"),
        ("draws a string", lambda: running_estimate.running_mean("12"), TypeError,
         "draws must be real numbers"),
        ("running means strings",
         lambda: running_estimate.inside_funnel(["1", "2"], 0.0, 1.0), TypeError,
         "running must be real numbers"),
        ("running means with NaN",  # NaN used to count as outside the funnel
         lambda: running_estimate.inside_funnel([0.0, math.nan], 0.0, 1.0), ValueError,
         "running contains NaN"),
        ("the latent centres strings",
         lambda: latent.spread_labels([["0", "1"], ["5", "5"]]), TypeError,
         "centres must be real numbers"),
        ("the latent centres bools", lambda: latent.spread_labels([[True, False]]),
         TypeError, "centres must be real numbers"),
        ("k_grid strings",
         lambda: crossover.crossovers_on_grid(costs.cosine, ["1", "2"], parameter="mu"),
         TypeError, "k_grid must be real numbers"),
        ("the digits' seed a string",
         lambda: data.load_binary_digits(seed="0"), TypeError, "seed must be an"),
        ("the digits' seed a bool",
         lambda: data.load_binary_digits(seed=True), TypeError, "seed must be an"),
        ("the digits' seed negative",
         lambda: data.load_scaled_digits(seed=-1), ValueError, "seed must be an"),
        ("the digits' threshold a string",
         lambda: data.load_binary_digits(threshold="0.5"), TypeError, "threshold"),
        ("the digits' threshold above the ink",  # every image would be blank
         lambda: data.load_binary_digits(threshold=5.0), ValueError,
         r"threshold must be in \[0, 1\)"),
        ("images strings", lambda: data.image_grid([["a"] * 64], 1), TypeError,
         "images must be real numbers"),
    ]


CASES = {name: (call, error, message) for name, call, error, message in
         _boundary_cases()}


@pytest.mark.parametrize("name", CASES)
def test_bad_values_at_the_boundaries_are_refused(name):
    call, error, message = CASES[name]
    with pytest.raises(error, match=message):
        call()


def test_a_bad_denoiser_is_refused_before_anything_is_drawn():
    from reparam import learned_schedule

    schedule = learned_schedule.PiecewiseLinearSchedule(torch.tensor([-2.0, 2.0]))
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    with pytest.raises(TypeError, match="denoiser"):
        learned_schedule.fit_schedule(schedule, "d", torch.zeros(4, 64), steps=1,
                                      generator=generator)
    assert torch.equal(generator.get_state(), state)


def test_an_ipywidgets_explorer_without_the_widget_backend_says_what_to_run():
    import matplotlib
    import matplotlib.pyplot as plt

    from reparam.explorers import gamma_quantile

    previous, figures_before = matplotlib.get_backend(), plt.get_fignums()
    matplotlib.use("agg")
    try:
        with pytest.raises(RuntimeError, match="run `%matplotlib widget`.*'agg'"):
            gamma_quantile.ipywidgets_explorer()
        assert plt.get_fignums() == figures_before  # the figure made for it is closed
    finally:
        matplotlib.use(previous)


def test_a_tensor_subclass_is_a_tensor():
    from reparam import diffusion

    class Tagged(torch.Tensor):
        pass

    x0 = torch.zeros(2, 4).as_subclass(Tagged)
    schedule = diffusion.linear_schedule(10, 0.01, 0.2)
    assert diffusion.q_sample(x0, torch.zeros(2, 4), 3, schedule).shape == (2, 4)


def _draws_with_generator_none():
    from reparam import diffusion, discrete, flows, implicit, vae

    images = torch.rand(3, 64, generator=torch.Generator().manual_seed(0))
    model = vae.VAE(2, 8, generator=torch.Generator().manual_seed(0))
    flow = flows.coupling_flow(2, 2, 8, torch.Generator().manual_seed(0))
    return {
        "discrete.draw_gumbel": lambda: discrete.draw_gumbel(2, 3, None),
        "discrete.sgd_paths(score)": lambda: discrete.sgd_paths(
            [1.0, 0.0], [0.0, 0.0], 1, 2, None, estimator="leave-one-out", batch=2,
            learning_rate=0.1),
        "implicit.draw_standard_gamma": lambda: implicit.draw_standard_gamma(
            1.5, 3, None),
        "flows.coupling_flow": lambda: flows.coupling_flow(2, 2, 8, None),
        "flows.Flow.sample": lambda: flow.sample(3, None),
        "vae.VAE": lambda: vae.VAE(2, 8, generator=None),
        "vae.elbo_terms": lambda: vae.elbo_terms(model, images, 2),  # default None
        "vae.fit_bernoulli_mixture": lambda: vae.fit_bernoulli_mixture(
            (images > 0.5).double(), 2),  # default None
        "diffusion.gaussian_baseline": lambda: diffusion.gaussian_baseline(
            images, 2, None),
    }


@pytest.mark.parametrize("name", sorted(_draws_with_generator_none()))
def test_every_function_that_draws_refuses_generator_none(name):
    # NumPy's legacy global state is the one a stray draw would move.
    state, numpy_state = torch.get_rng_state(), np.random.get_state()[1].copy()  # noqa: NPY002
    with pytest.raises(TypeError, match="generator must be a"):
        _draws_with_generator_none()[name]()
    assert torch.equal(torch.get_rng_state(), state)  # nothing drawn from the global
    assert np.array_equal(np.random.get_state()[1], numpy_state)  # noqa: NPY002


def _public_callables():
    import importlib
    import inspect

    import reparam

    for module_name in reparam.__all__:
        module = importlib.import_module(f"reparam.{module_name}")
        for name, value in vars(module).items():
            own = getattr(value, "__module__", "") == module.__name__
            if name.startswith("_") or not own:
                continue
            if inspect.isclass(value):
                yield f"{module_name}.{name}", value.__init__
                yield from ((f"{module_name}.{name}.{m}", f)
                            for m, f in vars(value).items()
                            if inspect.isfunction(f) and not m.startswith("_"))
            elif inspect.isfunction(value):
                yield f"{module_name}.{name}", value


def test_a_generator_has_a_default_only_where_an_earlier_argument_has_one():
    # Where the signature allows, the generator is required; elsewhere its default
    # None is refused at run time (the test above). sgd_paths takes None by choice,
    # for its exact estimator, which draws nothing.
    import inspect

    offered, seen = [], 0
    for name, function in _public_callables():
        parameters = list(inspect.signature(function).parameters.values())
        names = [p.name for p in parameters]
        if "generator" not in names:
            continue
        seen += 1
        generator = parameters[names.index("generator")]
        if generator.default is inspect.Parameter.empty:
            continue
        earlier = parameters[:names.index("generator")]
        forced = any(p.default is not inspect.Parameter.empty for p in earlier
                     if p.kind is not inspect.Parameter.KEYWORD_ONLY)
        if not (forced and generator.default is None
                and generator.kind is not inspect.Parameter.KEYWORD_ONLY):
            offered.append(name)
    assert offered == []
    assert seen >= 30, seen  # (guards against finding no function at all)


# The package docstring's order: what is computed on, then the law's parameters as
# torch.distributions orders them (a relaxation's temperature after its logits), then
# sizes, then the generator. Among the positional arguments that have a rank here, the
# ranks never decrease.
ARGUMENT_RANK = {"f": 0, "cost": 0, "f_values": 0, "family": 0, "z": 0,
                 "mu": 1, "sigma": 2, "concentration": 1, "rate": 2,
                 "logits": 1, "temperature": 2, "n": 3, "generator": 4}
# There z is not samples but the SymPy symbols that name the result's variables.
SYMBOLIC_Z = {"change_of_variables.linear_pushforward_density",
              "change_of_variables.linear_log_density"}


def _callables_with_explorers():
    import importlib
    import inspect
    import pkgutil

    import reparam.explorers

    yield from _public_callables()
    for info in pkgutil.iter_modules(reparam.explorers.__path__):
        module = importlib.import_module(f"reparam.explorers.{info.name}")
        for name, value in vars(module).items():
            own = getattr(value, "__module__", "") == module.__name__
            if own and not name.startswith("_") and inspect.isfunction(value):
                yield f"explorers.{info.name}.{name}", value


def test_arguments_come_in_the_package_order():
    import inspect

    wrong, seen = [], set()
    for name, function in _callables_with_explorers():
        ranked = [p.name for p in inspect.signature(function).parameters.values()
                  if p.kind is not inspect.Parameter.KEYWORD_ONLY
                  and p.name in ARGUMENT_RANK
                  and not (p.name == "z" and name in SYMBOLIC_Z)]
        seen.update(ranked)
        ranks = [ARGUMENT_RANK[argument] for argument in ranked]
        if ranks != sorted(ranks):
            wrong.append(f"{name}{tuple(ranked)}")
    assert wrong == []
    assert seen == set(ARGUMENT_RANK)  # every rank is checked somewhere
