"""reparam.vae: shapes, the ELBO bound against exact marginalisation, learning, bad
inputs."""

from __future__ import annotations

import math

import pytest
import torch

from reparam import vae
from reparam.data import DigitsData, load_binary_digits


@pytest.fixture(scope="module")
def data():
    return load_binary_digits()


def test_shapes(data):
    model = vae.VAE(latent_dim=3, hidden=16)
    z, log_likelihood, kl, mu, log_sigma = vae.elbo_terms(
        model, data.train_images[:5], samples=7
    )
    assert z.shape == (7, 5, 3) and log_likelihood.shape == (7, 5) and kl.shape == (5,)
    assert mu.shape == log_sigma.shape == (5, 3)
    assert model.decode_logits(torch.zeros(4, 3)).shape == (4, 64)
    images_8x8 = data.train_images[:2].reshape(2, 8, 8)
    assert vae.elbo_terms(model, images_8x8)[1].shape == (1, 2)
    assert bool((kl >= 0).all()) and bool((log_likelihood <= 0).all())


def test_kl_matches_torch_distributions():
    mu, log_sigma = torch.randn(6, 3), 0.3 * torch.randn(6, 3)
    q = torch.distributions.Normal(mu, log_sigma.exp())
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    reference = torch.distributions.kl_divergence(q, p).sum(-1)
    assert torch.allclose(
        vae.kl_to_standard_normal(mu, log_sigma), reference, atol=1e-6
    )


def _exact_log_marginal(model, x, grid):
    """log p(x) = log integral p(x|z) N(z|0,1) dz on a fine 1-D grid (the tiny model has
    d = 1)."""
    log_prior = -0.5 * grid.pow(2) - 0.5 * math.log(2 * math.pi)
    log_joint = model.log_likelihood(x, grid.unsqueeze(-1)) + log_prior
    step = grid[1] - grid[0]
    return torch.logsumexp(log_joint, 0) + torch.log(step), log_joint


def test_elbo_is_below_the_exact_log_likelihood_and_the_gap_is_the_posterior_kl():
    torch.manual_seed(0)
    model = vae.VAE(latent_dim=1, hidden=8, pixels=3).double()
    grid = torch.linspace(-12, 12, 48_001, dtype=torch.float64)
    with torch.no_grad():
        for bits in range(8):
            x = torch.tensor([[(bits >> j) & 1 for j in range(3)]], dtype=torch.float64)
            log_px, log_joint = _exact_log_marginal(model, x, grid)
            mu, log_sigma = model.encode(x)
            log_q = (
                -0.5 * ((grid - mu[0, 0]) / log_sigma.exp()[0, 0]).pow(2)
                - log_sigma[0, 0]
                - 0.5 * math.log(2 * math.pi)
            )
            q = log_q.exp()
            step = grid[1] - grid[0]
            exact_elbo = float((q * (log_joint - log_q)).sum() * step)
            posterior_kl = float((q * (log_q - (log_joint - log_px))).sum() * step)
            assert exact_elbo <= float(log_px) + 1e-9
            assert posterior_kl >= 0
            assert exact_elbo == pytest.approx(float(log_px) - posterior_kl, abs=1e-8)
            # The model's Monte Carlo ELBO agrees with the exact one.
            generator = torch.Generator().manual_seed(bits)
            _, log_likelihood, kl, _, _ = vae.elbo_terms(
                model, x, samples=200_000, generator=generator
            )
            draws = log_likelihood[:, 0] - kl[0]
            assert abs(float(draws.mean()) - exact_elbo) < 4 * float(
                draws.std() / math.sqrt(len(draws))
            )


@pytest.mark.parametrize("estimator", ["pathwise", "score"])
def test_a_few_steps_lower_the_loss(data, estimator):
    torch.manual_seed(1)
    model = vae.VAE(latent_dim=4, hidden=32)
    batch = data.train_images[:128]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    before = -vae.evaluate_elbo(model, batch, samples=64)
    generator = torch.Generator().manual_seed(2)
    for _ in range(25):
        loss, _ = vae.surrogate_loss(
            model, batch, estimator, samples=4, generator=generator
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = -vae.evaluate_elbo(model, batch, samples=64)
    assert after < before - 1.0, (before, after)


def test_both_surrogates_have_the_elbo_as_value_and_the_same_decoder_gradient(data):
    model = vae.VAE(latent_dim=2, hidden=8)
    batch = data.train_images[:16]
    results = {}
    for estimator in ("pathwise", "score"):
        loss, elbo = vae.surrogate_loss(
            model, batch, estimator, 4, torch.Generator().manual_seed(3)
        )
        decoder_grads = torch.autograd.grad(loss, list(model.decoder.parameters()))
        results[estimator] = (loss, elbo, decoder_grads)
    assert torch.allclose(results["pathwise"][0], results["score"][0])
    assert torch.allclose(results["pathwise"][0], -results["pathwise"][1].mean())
    for a, b in zip(results["pathwise"][2], results["score"][2], strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_score_encoder_gradient_is_unbiased_for_the_pathwise_one(data):
    torch.manual_seed(4)
    model = vae.VAE(latent_dim=2, hidden=8)
    batch = data.train_images[:8]
    pathwise = vae.encoder_gradient_samples(model, batch, "pathwise", 400, seed=1)
    score = vae.encoder_gradient_samples(model, batch, "score", 3000, seed=2)
    difference = pathwise.mean(0) - score.mean(0)
    standard_error = (pathwise.var(0) / 400 + score.var(0) / 3000).sqrt()
    z = difference.abs() / standard_error.clamp_min(1e-8)
    assert float((z < 4).float().mean()) > 0.98  # per-coordinate 4-sigma agreement


@pytest.mark.parametrize(
    "images, error, message",
    [
        (torch.zeros(3, 63), ValueError, "shape"),
        (torch.zeros(3, 7, 7), ValueError, "shape"),
        (torch.zeros(0, 64), ValueError, "shape"),
        (torch.full((2, 64), float("nan")), ValueError, "NaN"),
        (torch.full((2, 64), 2.0), ValueError, r"\[0, 1\]"),
        (torch.zeros(2, 64, dtype=torch.long), TypeError, "floating"),
        ([[0.0] * 64], TypeError, "torch.Tensor"),
    ],
)
def test_bad_images(images, error, message):
    with pytest.raises(error, match=message):
        vae.elbo_terms(vae.VAE(), images)


def test_bad_arguments(data):
    model = vae.VAE()
    with pytest.raises(ValueError, match="estimator"):
        vae.surrogate_loss(model, data.train_images[:2], "reinforce", 4)
    with pytest.raises(ValueError, match="samples >= 2"):
        vae.surrogate_loss(model, data.train_images[:2], "score", 1)
    with pytest.raises(ValueError, match="samples"):
        vae.elbo_terms(model, data.train_images[:2], samples=0)
    with pytest.raises(ValueError, match="latent_dim"):
        vae.VAE(latent_dim=0)


def test_training_is_deterministic(data):
    small = DigitsData(
        data.train_images[:256],
        data.train_labels[:256],
        data.test_images[:64],
        data.test_labels[:64],
        data.validation_images,
        data.validation_labels,
    )
    runs = [
        vae.train(
            small,
            "pathwise",
            latent_dim=2,
            hidden=16,
            epochs=3,
            progress=None,
            device=torch.device("cpu"),
        )[1]
        for _ in range(2)
    ]
    assert runs[0].test_elbo == runs[1].test_elbo


def test_importance_sampled_bound_sits_between_the_elbo_and_the_exact_value():
    torch.manual_seed(0)
    model = vae.VAE(latent_dim=1, hidden=8, pixels=3).double()
    x = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)
    grid = torch.linspace(-12, 12, 48_001, dtype=torch.float64)
    with torch.no_grad():
        log_px, _ = _exact_log_marginal(model, x, grid)
    elbo = vae.evaluate_elbo(model, x, samples=20_000)
    bound = vae.importance_sampled_log_likelihood(model, x, samples=20_000)
    assert elbo - 1e-3 <= bound <= float(log_px) + 1e-3
    assert bound == pytest.approx(float(log_px), abs=5e-3)


# --- Exact encoder gradients, seeds, and the Monte Carlo estimates --------------------


def test_the_split_is_the_published_one(data):
    # Other chapters import this split: a change of seed semantics or order must fail
    # here.
    assert data.test_labels[:12].tolist() == [6, 5, 5, 7, 9, 9, 8, 4, 6, 8, 6, 0]
    assert data.train_labels[:12].tolist() == [7, 7, 1, 9, 8, 5, 0, 4, 5, 6, 5, 8]
    assert int(data.test_images.sum()) == 6687 and int(data.train_images.sum()) == 27000


def _reference_encoder_gradients(model, images, estimator, samples, seed):
    """The encoder gradient written out from torch.distributions, draw by draw."""
    mu, log_sigma = model.encode(images)
    sigma = log_sigma.exp()
    eps = torch.randn(
        (samples, *mu.shape),
        generator=torch.Generator().manual_seed(seed),
        dtype=mu.dtype,
    )
    q = torch.distributions.Normal(mu, sigma)
    prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    kl = torch.distributions.kl_divergence(q, prior).sum(-1)
    if estimator == "pathwise":
        z = mu + sigma * eps
        objective = model.log_likelihood(images, z).mean(0) - kl
    else:
        z = (mu + sigma * eps).detach()
        reward = model.log_likelihood(images, z).detach()
        terms = []
        # baseline: mean reward of the OTHER draws of the image
        for s in range(samples):
            others = [reward[t] for t in range(samples) if t != s]
            baseline = sum(others) / len(others)
            terms.append((reward[s] - baseline) * q.log_prob(z[s]).sum(-1))
        objective = sum(terms) / samples - kl
    return torch.autograd.grad(-objective.mean(), list(model.encoder.parameters()))


@pytest.mark.parametrize("estimator", ["pathwise", "score"])
@pytest.mark.parametrize("samples", [2, 3])
def test_encoder_gradient_equals_the_written_out_estimator(data, estimator, samples):
    # Catches a score surrogate that forgets to detach z (it would add the pathwise
    # term), a leave-one-out baseline dividing by S or including draw s, and a wrong KL
    # gradient.
    torch.manual_seed(5)
    model = vae.VAE(latent_dim=2, hidden=8).double()
    images = data.train_images[:5].double()
    loss, _ = vae.surrogate_loss(
        model, images, estimator, samples, torch.Generator().manual_seed(6)
    )
    ours = torch.autograd.grad(loss, list(model.encoder.parameters()))
    reference = _reference_encoder_gradients(model, images, estimator, samples, seed=6)
    for a, b in zip(ours, reference, strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_the_two_encoder_gradients_differ(data):
    model = vae.VAE(latent_dim=2, hidden=8)
    images = data.train_images[:5]
    grads = {}
    for estimator in ("pathwise", "score"):
        loss, _ = vae.surrogate_loss(
            model, images, estimator, 3, torch.Generator().manual_seed(1)
        )
        grads[estimator] = torch.autograd.grad(loss, list(model.encoder.parameters()))
    assert not torch.allclose(grads["pathwise"][0], grads["score"][0])


def test_evaluate_elbo_is_seeded_with_other_draws_in_between(data):
    model = vae.VAE(latent_dim=3, hidden=16)
    images = data.test_images[:20]
    first = vae.evaluate_elbo(model, images, samples=8, seed=5)
    torch.randn(1000)  # the global generator moves
    torch.randn(10, generator=torch.Generator().manual_seed(1))
    state = torch.get_rng_state()
    assert vae.evaluate_elbo(model, images, samples=8, seed=5) == first
    # and it leaves the global state alone
    assert torch.equal(torch.get_rng_state(), state)
    assert vae.evaluate_elbo(model, images, samples=8, seed=6) != first


def test_elbo_estimate_value_and_standard_error(data):
    model = vae.VAE(latent_dim=3, hidden=16)
    images = data.test_images[:30]
    estimate = vae.elbo_estimate(model, images, samples=16, seed=2)
    assert estimate.value == pytest.approx(
        vae.evaluate_elbo(model, images, 16, seed=2), rel=1e-6
    )
    _, log_likelihood, kl, _, _ = vae.elbo_terms(
        model, images, 16, torch.Generator().manual_seed(2)
    )
    draws = (log_likelihood - kl).detach()
    expected_se = math.sqrt(float((draws.var(0) / 16).sum())) / 30
    assert estimate.standard_error == pytest.approx(expected_se, rel=1e-5)
    assert estimate.draws_per_image == 16


def test_importance_weighted_estimate_is_seeded_and_tighter_in_expectation():
    torch.manual_seed(0)
    model = vae.VAE(latent_dim=1, hidden=8, pixels=3).double()
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    grid = torch.linspace(-12, 12, 48_001, dtype=torch.float64)
    with torch.no_grad():
        log_px = (
            float(sum(_exact_log_marginal(model, row[None], grid)[0] for row in x)) / 2
        )
    one = vae.importance_weighted_estimate(
        model, x, samples=1, replicates=20_000, seed=3
    )
    many = vae.importance_weighted_estimate(
        model, x, samples=32, replicates=2_000, seed=4
    )
    elbo = vae.elbo_estimate(model, x, samples=20_000, seed=5)
    # L_1 is the ELBO (within Monte Carlo error); L_32 is above it and below log p(x).
    assert abs(one.value - elbo.value) < 4 * math.hypot(
        one.standard_error, elbo.standard_error
    )
    assert many.value - one.value > 4 * math.hypot(
        many.standard_error, one.standard_error
    )
    assert many.value < log_px + 4 * many.standard_error
    again = vae.importance_weighted_estimate(
        model, x, samples=32, replicates=2_000, seed=4
    )
    assert again == many


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"samples": 0}, "samples"),
        ({"replicates": 1}, "replicates"),
        ({"samples": 2.0}, "samples"),
    ],
)
def test_importance_weighted_estimate_bad_arguments(data, kwargs, message):
    wrong_type = any(isinstance(v, float) for v in kwargs.values())
    with pytest.raises(TypeError if wrong_type else ValueError, match=message):
        vae.importance_weighted_estimate(vae.VAE(), data.test_images[:2], **kwargs)
