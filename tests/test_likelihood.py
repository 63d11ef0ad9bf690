"""reparam.likelihood against independent references: SciPy's normal CDF,
torch.distributions (Normal, Binomial, kl_divergence), explicit loops and Monte Carlo.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
import torch
from scipy import integrate
from torch.distributions import Binomial, Normal, kl_divergence

from reparam import diffusion as d
from reparam import likelihood as lk
from reparam.data import load_scaled_digits

SCHEDULE = d.linear_schedule(20, 5e-3, 0.4)
LEVELS = torch.arange(17, dtype=torch.float64) / 8 - 1


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_bits_per_dimension():
    assert math.isclose(lk.bits_per_dimension(64 * math.log(2)), 1.0)
    assert math.isclose(lk.bits_per_dimension(math.log(17), pixels=1), math.log2(17))
    with pytest.raises(TypeError):
        lk.bits_per_dimension(1.0, pixels=2.0)


@pytest.mark.parametrize("mean, scale", [(0.1, 0.05), (-0.93, 0.3), (5.0, 0.02)])
def test_discretized_decoder_against_scipy_and_sums_to_one(mean, scale):
    log_p = lk.discretized_gaussian_log_likelihood(
        LEVELS[:, None], torch.full((17, 1), mean), scale)[:, 0]
    edges = np.concatenate([[-np.inf], (LEVELS[:-1] + 1 / 16).numpy(), [np.inf]])
    lower, upper = edges[:-1], edges[1:]
    # SciPy's survival function keeps the right tail's digits (1 - cdf would not).
    right = st.norm.sf(lower, mean, scale) - st.norm.sf(upper, mean, scale)
    left = st.norm.cdf(upper, mean, scale) - st.norm.cdf(lower, mean, scale)
    expected = np.where(LEVELS.numpy() > mean, right, left)
    # Far in a tail the mass is tiny but its logarithm stays finite and right.
    assert bool(torch.isfinite(log_p).all())
    seen = expected > 1e-300
    np.testing.assert_allclose(log_p.numpy()[seen], np.log(expected[seen]),
                               rtol=1e-7, atol=1e-10)
    assert math.isclose(float(torch.logsumexp(log_p, 0)), 0.0, abs_tol=1e-9)


def test_discretized_decoder_refuses_other_values():
    with pytest.raises(ValueError, match="17 grey levels"):
        lk.discretized_gaussian_log_likelihood(torch.tensor([[0.05]]),
                                               torch.zeros(1, 1), 0.1)
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        lk.discretized_gaussian_log_likelihood(LEVELS[None], torch.zeros(1, 17), 0.0)


class _Exact(d.DenoiserEnsemble):
    """x0_hat = ``target`` for every input: exact for a one-image data set."""

    def __init__(self, target):
        super().__init__(SCHEDULE.T, ["x0"], 4, 1, generator=_gen())
        self.register_buffer("target", target)

    def forward(self, xt, t):
        return self.target.expand(len(self), *xt.shape[-2:])


def test_negative_elbo_of_an_exact_model_is_its_prior_and_decoder_terms():
    image = LEVELS[::4].repeat(13)[:64][None]  # one image of grey levels
    result = lk.ddpm_negative_elbo(_Exact(image.float()), image, SCHEDULE,
                                   generator=_gen(1))
    assert torch.allclose(result.diffusion, torch.zeros(1, 1, dtype=torch.float64),
                          atol=1e-9)
    # L_T against torch's KL of N(sqrt(abar_T) x0, 1 - abar_T) from N(0, 1).
    abar = SCHEDULE.alpha_bars[-1]
    prior = kl_divergence(Normal(abar.sqrt() * image, (1 - abar).sqrt()),
                          Normal(0.0, 1.0)).sum()
    assert math.isclose(float(result.prior[0]), float(prior), rel_tol=1e-10)
    # L_0: the mass of each pixel's own bin, for the decoder's standard deviation.
    scale = math.sqrt(float(SCHEDULE.posterior_variances[1]))
    mass = st.norm.cdf(1 / 16 / scale) - st.norm.cdf(-1 / 16 / scale)
    inner = int(((image > -1) & (image < 1)).sum())  # the end bins are half-lines
    edge_mass = st.norm.cdf(1 / 16 / scale)
    expected = -(inner * math.log(mass) + (64 - inner) * math.log(edge_mass))
    assert math.isclose(float(result.decoder[0, 0]), expected, rel_tol=1e-9)
    assert torch.allclose(result.total, result.prior + result.diffusion
                          + result.decoder)


def test_negative_elbo_terms_replayed_with_torch_kl_divergence():
    """Each L_{t-1} = KL(q(x_{t-1}|x_t,x0) || N(mu~(x0_hat, x_t), beta~_t)) for the
    model's clipped x0_hat, summed over t = 2..T at the same draws of x_t."""
    images = load_scaled_digits().test_images[:3].double()
    model = d.DenoiserEnsemble(SCHEDULE.T, ["epsilon", "v"], 8, 1, generator=_gen(2))
    chunk = 6  # steps 2-7, 8-13, 14-19, and T = 20 alone: no step may be left out
    result = lk.ddpm_negative_elbo(model, images, SCHEDULE, chunk=chunk,
                                   generator=_gen(3))
    replay, expected = _gen(3), torch.zeros(2, 3, dtype=torch.float64)
    per_step = torch.zeros(2, SCHEDULE.T - 1, 3, dtype=torch.float64)
    for first in range(2, SCHEDULE.T + 1, chunk):
        steps = torch.arange(first, min(first + chunk, SCHEDULE.T + 1))
        noise = torch.randn(len(steps) * 3, 64, generator=replay, dtype=torch.float64)
        for i, t in enumerate(steps.tolist()):
            xt = d.q_sample(images, noise[3 * i: 3 * i + 3], t, SCHEDULE)
            true_mean, variance = d.q_posterior(images, xt, t, SCHEDULE)
            with torch.no_grad():
                x0_hat = model.predict_x0(xt.float(), t, SCHEDULE).double()
            for k in range(2):
                model_mean, _ = d.q_posterior(x0_hat[k].clamp(-1, 1), xt, t, SCHEDULE)
                kl = kl_divergence(Normal(true_mean, variance.sqrt()),
                                   Normal(model_mean, variance.sqrt())).sum(-1)
                expected[k] += kl
                per_step[k, t - 2] = kl
    assert torch.allclose(result.diffusion, expected, rtol=1e-6)
    assert torch.allclose(result.steps, per_step, rtol=1e-6)
    assert torch.allclose(result.steps.sum(1), result.diffusion, rtol=1e-12)
    assert bool((result.decoder > 0).all())


def test_negative_elbo_of_the_linear_denoiser_replayed_by_hand():
    """With no network, x0_hat is the linear denoiser's, and each KL term is
    c0(t)^2 ||x0 - x0_hat||^2 / (2 beta~_t), c0(t) = sqrt(abar_{t-1}) beta_t / (1 -
    abar_t): the two posterior means differ only in their x0 (a formula written out
    here, not taken from q_posterior)."""
    data = load_scaled_digits()
    images, linear = data.test_images[:4], d.LinearDenoiser(data.train_images)
    result = lk.ddpm_negative_elbo(linear, images, SCHEDULE, clip=False,
                                   chunk=SCHEDULE.T, generator=_gen(3))
    assert result.steps.shape == (1, SCHEDULE.T - 1, 4)
    replay, x0 = _gen(3), images.double()
    noise = torch.randn((SCHEDULE.T - 1) * 4, 64, generator=replay, dtype=torch.float64)
    for t in range(2, SCHEDULE.T + 1):
        abar, abar_prev = (float(SCHEDULE.alpha_bars[t - 1]),
                           float(SCHEDULE.alpha_bars[t - 2]))
        beta = float(SCHEDULE.betas[t - 1])
        rows = noise[4 * (t - 2): 4 * (t - 1)]
        xt = math.sqrt(abar) * x0 + math.sqrt(1 - abar) * rows
        c0 = math.sqrt(abar_prev) * beta / (1 - abar)
        tilde = beta * (1 - abar_prev) / (1 - abar)
        kl = c0**2 * (x0 - linear(xt, abar / (1 - abar))).pow(2).sum(-1) / (2 * tilde)
        assert torch.allclose(result.steps[0, t - 2], kl, rtol=1e-9), t
    # L_0 from the next draw: x_1, the denoiser's x0_hat(x_1), and the bins' masses
    # under N(x0_hat, beta~_2) (the posterior variance at t = 2, written out here).
    abar1, abar2 = (float(a) for a in SCHEDULE.alpha_bars[:2])
    x1 = (math.sqrt(abar1) * x0
          + math.sqrt(1 - abar1) * torch.randn(4, 64, generator=replay,
                                               dtype=torch.float64))
    scale = math.sqrt(float(SCHEDULE.betas[1]) * (1 - abar1) / (1 - abar2))
    decoder = -lk.discretized_gaussian_log_likelihood(
        x0, linear(x1, abar1 / (1 - abar1)), scale).sum(-1)
    assert torch.allclose(result.decoder[0], decoder, rtol=1e-9)
    assert result.total.shape == (1, 4) and bool((result.total > 0).all())


def test_clipping_can_only_lower_the_kl_terms():
    """Clipping x0_hat to [-1, 1] moves it towards every x0 in [-1, 1], coordinate by
    coordinate, and the posterior mean is increasing in x0: each KL term can only
    fall. (Not so the decoder: the end bins are half-lines, and an x0_hat beyond -1
    puts more mass on the bin of -1 than -1 itself does.)"""
    images = load_scaled_digits().test_images[:4]
    model = d.DenoiserEnsemble(SCHEDULE.T, ["epsilon"], 8, 1, generator=_gen(5))
    clipped = lk.ddpm_negative_elbo(model, images, SCHEDULE, clip=True,
                                    generator=_gen(6))
    raw = lk.ddpm_negative_elbo(model, images, SCHEDULE, clip=False, generator=_gen(6))
    assert bool((clipped.diffusion <= raw.diffusion + 1e-9).all())
    assert bool((clipped.diffusion < raw.diffusion).any())


def test_negative_elbo_refuses_bad_input():
    model = d.DenoiserEnsemble(SCHEDULE.T, ["x0"], 4, 1, generator=_gen())
    with pytest.raises(ValueError, match="17 grey levels"):
        lk.ddpm_negative_elbo(model, torch.full((2, 64), 0.3), SCHEDULE,
                              generator=_gen())
    with pytest.raises(TypeError, match="DenoiserEnsemble"):
        lk.ddpm_negative_elbo(torch.nn.Linear(2, 2), LEVELS[None].repeat(1, 4)[:, :64],
                              SCHEDULE, generator=_gen())
    with pytest.raises(TypeError, match="clip must be a bool"):
        lk.ddpm_negative_elbo(model, torch.zeros(1, 64), SCHEDULE, clip=1,
                              generator=_gen())


def _two_pixel_levels(n, generator):
    """Correlated two-pixel images on the 17 levels."""
    base = torch.randn(n, 1, generator=generator, dtype=torch.float64)
    both = torch.cat([base, 0.6 * base + 0.8 * torch.randn(n, 1, generator=generator,
                                                            dtype=torch.float64)], 1)
    return d.quantize(0.4 * both)


def test_dequantized_gaussian_against_monte_carlo_and_the_exact_bin_mass():
    generator = _gen(7)
    train, test = _two_pixel_levels(400, generator), _two_pixel_levels(5, generator)
    bound = lk.dequantized_gaussian_nats(train, test)
    mean = train.mean(0)
    cov = torch.cov(train.T, correction=0) + torch.eye(2) / 64 / 12
    density = torch.distributions.MultivariateNormal(mean, cov)
    u = (torch.rand(200_000, 1, 2, generator=generator, dtype=torch.float64) - 0.5) / 8
    monte_carlo = -(density.log_prob(test + u).mean(0) + 2 * math.log(1 / 8))
    assert torch.allclose(bound, monte_carlo, atol=5e-3)
    # A bound: never below -log of the exact mass of the bin (SciPy's bivariate CDF).
    gaussian = st.multivariate_normal(mean.numpy(), cov.numpy())
    for x, value in zip(test.numpy(), bound.tolist(), strict=True):
        lo, hi = x - 1 / 16, x + 1 / 16
        mass = (gaussian.cdf(hi) - gaussian.cdf([lo[0], hi[1]])
                - gaussian.cdf([hi[0], lo[1]]) + gaussian.cdf(lo))
        assert value >= -math.log(mass) - 1e-6


def test_dequantized_gaussian_in_one_dimension_by_quadrature():
    # One pixel: the Gaussian fitted to the dequantized training data x + u, u uniform
    # on a bin, has the levels' mean and their variance plus Var(u); the bound is
    # -(E_u[log p(x + u)] + log w), each integral by SciPy's quad.
    train = d.quantize(torch.tensor([[-0.5], [0.0], [0.25], [0.75]]))
    test = torch.tensor([[0.125], [-1.0]])
    w = 1 / 8
    var_u = integrate.quad(lambda u: u * u / w, -w / 2, w / 2)[0]
    mean = float(train.mean())
    sd = math.sqrt(float(((train - mean) ** 2).mean()) + var_u)
    expected = [-(integrate.quad(lambda u, x=x: st.norm.logpdf(x + u, mean, sd) / w,
                                 -w / 2, w / 2)[0] + math.log(w))
                for x in test[:, 0].tolist()]
    got = lk.dequantized_gaussian_nats(train, test)
    assert got.tolist() == pytest.approx(expected, rel=1e-10)


def test_independent_pixels_by_explicit_counting():
    train = d.quantize(torch.tensor([[-1.0, 0.5], [-1.0, 0.25], [1.0, 0.5]]))
    test = torch.tensor([[-1.0, 0.5], [0.0, 1.0]])
    got = lk.independent_pixels_nats(train, test)
    # Pixel 0: level -1 twice, 1 once; pixel 1: 0.5 twice, 0.25 once; plus one count
    # for each of the 17 levels, so 20 in all per pixel.
    expected = [-math.log(3 / 20) - math.log(3 / 20), -2 * math.log(1 / 20)]
    assert torch.allclose(got, torch.tensor(expected, dtype=torch.float64))
    # Half a count per level: 3 + 17/2 = 11.5 per pixel.
    half = lk.independent_pixels_nats(train, test, pseudocount=0.5)
    expected = [-2 * math.log(2.5 / 11.5), -2 * math.log(0.5 / 11.5)]
    assert torch.allclose(half, torch.tensor(expected, dtype=torch.float64),
                          rtol=1e-12)
    with pytest.raises(ValueError, match="pseudocount must be > 0"):
        lk.independent_pixels_nats(train, test, pseudocount=0.0)


def test_binomial_decoder_against_torch_binomial():
    model = lk.BinomialVAE(latent_dim=2, hidden=8, generator=_gen(0))
    images = load_scaled_digits().test_images[:5]
    ink = (images + 1) / 2
    z = torch.randn(3, 5, 2, generator=_gen(1))
    with torch.no_grad():
        got = model.log_likelihood(ink, z)
        logits = model.decode_logits(z)
    expected = Binomial(16, logits=logits).log_prob(ink * 16).sum(-1)
    assert torch.allclose(got, expected, atol=1e-4)


def test_the_vae_bound_replayed_with_torchs_kl_divergence():
    # Minus the ELBO: the mean over 16 pathwise draws (the default) of log p(x|z),
    # less KL(N(mu, sigma^2) || N(0, I)), the latter from torch.distributions.
    images = load_scaled_digits().test_images[:5]
    model = lk.BinomialVAE(latent_dim=3, hidden=8, generator=_gen(4))
    got = lk.binomial_vae_negative_elbo(model, images, generator=_gen(5))
    ink = ((images.double() + 1) / 2).float()
    with torch.no_grad():
        mu, log_sigma = model.encode(ink)
        z = mu + log_sigma.exp() * torch.randn((16, *mu.shape), generator=_gen(5))
        kl = kl_divergence(Normal(mu, log_sigma.exp()), Normal(0.0, 1.0)).sum(-1)
        expected = -(model.log_likelihood(ink, z).mean(0) - kl)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected.double(), rtol=1e-6, atol=1e-4)


def test_vae_training_is_seeded_and_lowers_the_validation_bound():
    data = load_scaled_digits(validation_fraction=0.2)
    state = torch.get_rng_state()
    options = dict(epochs=4, checkpoints=(1, 3, 4), latent_dim=4, hidden=32,
                   batch_size=128)
    first = lk.train_binomial_vae(data.train_images, data.validation_images,
                                  generator=_gen(2), **options)
    assert torch.equal(torch.get_rng_state(), state)
    torch.randn(5)
    second = lk.train_binomial_vae(data.train_images, data.validation_images,
                                   generator=_gen(2), **options)
    assert first.validation_nats == second.validation_nats
    assert first.epochs == (1, 3, 4)
    assert len(first.models) == len(first.validation_nats) == 3  # one per checkpoint
    assert first.validation_nats[-1] < first.validation_nats[0]
    nats = lk.binomial_vae_negative_elbo(first.models[-1], data.test_images,
                                         generator=_gen(3))
    assert nats.shape == (len(data.test_images),) and bool((nats > 0).all())
    with pytest.raises(ValueError, match="checkpoints must lie in 1..4"):
        lk.train_binomial_vae(data.train_images, data.validation_images,
                              generator=_gen(2), **{**options, "checkpoints": (5,)})
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        lk.train_binomial_vae(data.train_images, data.validation_images,
                              learning_rate=0.0, generator=_gen(2), **options)
    with pytest.raises(TypeError, match="learning_rate"):
        lk.train_binomial_vae(data.train_images, data.validation_images,
                              learning_rate="fast", generator=_gen(2), **options)


def test_the_vae_beats_independent_pixels_with_two_other_seeds():
    """Chapter 9 trains its Binomial VAE with one seed (13) and finds its test bound
    below that of independent pixels. With seeds 1 and 2, the same settings and the
    same choice of epochs by the validation bound, it is below too."""
    data = load_scaled_digits(test_fraction=0.2, seed=0, validation_fraction=0.2)
    pixels = float(lk.independent_pixels_nats(data.train_images,
                                              data.test_images).mean())
    for seed in (1, 2):
        run = lk.train_binomial_vae(
            data.train_images, data.validation_images, epochs=150,
            checkpoints=(50, 100, 150), latent_dim=8, hidden=128, batch_size=128,
            learning_rate=3e-3, generator=_gen(seed))
        best = int(np.argmin(run.validation_nats))
        vae = float(lk.binomial_vae_negative_elbo(run.models[best], data.test_images,
                                                  generator=_gen(16)).mean())
        assert vae < pixels, seed
