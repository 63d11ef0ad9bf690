"""reparam.vae: shapes, the ELBO bound against exact marginalisation, both encoder
gradients against a written-out reference, seeding through generators only, learning,
bad inputs."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from reparam import vae
from reparam.data import DigitsData, load_binary_digits


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def data():
    return load_binary_digits()


@pytest.fixture(scope="module")
def small_data(data):
    """256 training, 48 validation and 64 test images: quick to train on."""
    return DigitsData(
        data.train_images[:256], data.train_labels[:256],
        data.test_images[:64], data.test_labels[:64],
        data.train_images[256:304], data.train_labels[256:304],
    )


def _train_small(small_data, estimator="pathwise", seed=0, **options):
    settings = dict(latent_dim=2, hidden=16, epochs=3, batch_size=64,
                    evaluate_every=1, device=torch.device("cpu"))
    return vae.train(small_data, estimator, generator=seeded(seed),
                     **{**settings, **options})


# --- the model and its terms ---------------------------------------------------------


def test_shapes_and_named_terms(data):
    model = vae.VAE(latent_dim=3, hidden=16, generator=seeded(0))
    terms = vae.elbo_terms(model, data.train_images[:5], samples=7, generator=seeded(1))
    assert isinstance(terms, vae.ElboTerms)
    assert terms.z.shape == (7, 5, 3) and terms.log_likelihood.shape == (7, 5)
    assert terms.kl.shape == (5,)
    assert terms.mu.shape == terms.log_sigma.shape == (5, 3)
    assert model.decode_logits(torch.zeros(4, 3)).shape == (4, 64)
    images_8x8 = data.train_images[:2].reshape(2, 8, 8)
    terms_8x8 = vae.elbo_terms(model, images_8x8, 1, seeded(2))
    assert terms_8x8.log_likelihood.shape == (1, 2)
    assert bool((terms.kl >= 0).all()) and bool((terms.log_likelihood <= 0).all())
    # The draws are mu + sigma * eps with eps from the generator, in one call.
    again = vae.elbo_terms(model, data.train_images[:5], 7, seeded(4))
    eps = torch.randn((7, 5, 3), generator=seeded(4))
    expected = again.mu + again.log_sigma.exp() * eps
    assert torch.equal(again.z, expected)


def test_initialisation_is_torchs_default_drawn_from_the_generator():
    # torch's global generator and a Generator seeded alike give the same stream, so a
    # plain nn.Linear stack made after torch.manual_seed is the reference.
    state = torch.get_rng_state()
    torch.manual_seed(11)
    reference = [nn.Linear(64, 20), nn.Linear(20, 6), nn.Linear(3, 20),
                 nn.Linear(20, 64)]
    torch.set_rng_state(state)
    model = vae.VAE(latent_dim=3, hidden=20, generator=seeded(11))
    ours = [model.encoder[0], model.encoder[2], model.decoder[0], model.decoder[2]]
    for a, b in zip(ours, reference, strict=True):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    other = vae.VAE(latent_dim=3, hidden=20, generator=seeded(12))
    assert not torch.equal(other.encoder[0].weight, model.encoder[0].weight)


def test_nothing_reads_or_changes_the_global_random_state(small_data):
    state = torch.get_rng_state()
    model = vae.VAE(latent_dim=2, hidden=8, generator=seeded(1))
    images = small_data.test_images[:4]
    vae.elbo_estimate(model, images, 4, seeded(2))
    vae.importance_weighted_estimate(model, images, 4, 2, seeded(3))
    vae.encoder_gradient_samples(model, images, "score", 2, generator=seeded(4))
    _train_small(small_data, "score", epochs=1)
    assert torch.equal(torch.get_rng_state(), state)


def test_kl_matches_torch_distributions():
    mu = torch.randn(6, 3, generator=seeded(0))
    log_sigma = 0.3 * torch.randn(6, 3, generator=seeded(1))
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


@pytest.fixture(scope="module")
def tiny_model():
    """Three pixels and a one-dimensional latent: log p(x) by quadrature."""
    return vae.VAE(latent_dim=1, hidden=8, pixels=3, generator=seeded(0)).double()


GRID = torch.linspace(-12, 12, 48_001, dtype=torch.float64)


def test_elbo_is_below_the_exact_log_likelihood_and_the_gap_is_the_posterior_kl(
    tiny_model,
):
    model = tiny_model
    with torch.no_grad():
        for bits in range(8):
            x = torch.tensor([[(bits >> j) & 1 for j in range(3)]], dtype=torch.float64)
            log_px, log_joint = _exact_log_marginal(model, x, GRID)
            mu, log_sigma = model.encode(x)
            log_q = (
                -0.5 * ((GRID - mu[0, 0]) / log_sigma.exp()[0, 0]).pow(2)
                - log_sigma[0, 0]
                - 0.5 * math.log(2 * math.pi)
            )
            q = log_q.exp()
            step = GRID[1] - GRID[0]
            exact_elbo = float((q * (log_joint - log_q)).sum() * step)
            posterior_kl = float((q * (log_q - (log_joint - log_px))).sum() * step)
            assert exact_elbo <= float(log_px) + 1e-9
            assert posterior_kl >= 0
            assert exact_elbo == pytest.approx(float(log_px) - posterior_kl, abs=1e-8)
            # The model's Monte Carlo ELBO agrees with the exact one.
            estimate = vae.elbo_estimate(model, x, 200_000, seeded(bits))
            assert abs(estimate.value - exact_elbo) < 4 * estimate.standard_error


def test_importance_sampled_bound_sits_between_the_elbo_and_the_exact_value(
    tiny_model,
):
    x = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)
    with torch.no_grad():
        log_px, _ = _exact_log_marginal(tiny_model, x, GRID)
    elbo = vae.elbo_estimate(tiny_model, x, 20_000, seeded(0)).value
    bound = vae.importance_weighted_estimate(tiny_model, x, 20_000, 2, seeded(0)).value
    assert elbo - 1e-3 <= bound <= float(log_px) + 1e-3
    assert bound == pytest.approx(float(log_px), abs=5e-3)


# --- the two encoder gradients ------------------------------------------------------


@pytest.mark.parametrize("estimator", ["pathwise", "score"])
def test_a_few_steps_lower_the_loss(data, estimator):
    model = vae.VAE(latent_dim=4, hidden=32, generator=seeded(1))
    batch = data.train_images[:128]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    before = vae.elbo_estimate(model, batch, 64, seeded(0)).value
    generator = seeded(2)
    for _ in range(25):
        loss, _ = vae.surrogate_loss(model, batch, estimator, 4, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = vae.elbo_estimate(model, batch, 64, seeded(0)).value
    assert after > before + 1.0, (before, after)


def test_both_surrogates_have_the_elbo_as_value_and_the_same_decoder_gradient(data):
    model = vae.VAE(latent_dim=2, hidden=8, generator=seeded(0))
    batch = data.train_images[:16]
    results = {}
    for estimator in ("pathwise", "score"):
        loss, elbo = vae.surrogate_loss(model, batch, estimator, 4, seeded(3))
        decoder_grads = torch.autograd.grad(loss, list(model.decoder.parameters()))
        results[estimator] = (loss, elbo, decoder_grads)
    assert torch.equal(results["pathwise"][1], results["score"][1])
    assert torch.allclose(results["pathwise"][0], results["score"][0])
    assert torch.allclose(results["pathwise"][0], -results["pathwise"][1].mean())
    for a, b in zip(results["pathwise"][2], results["score"][2], strict=True):
        assert torch.equal(a, b)


def test_score_encoder_gradient_is_unbiased_for_the_pathwise_one(data):
    model = vae.VAE(latent_dim=2, hidden=8, generator=seeded(4))
    batch = data.train_images[:8]
    pathwise = vae.encoder_gradient_samples(model, batch, "pathwise", 400,
                                            generator=seeded(1))
    score = vae.encoder_gradient_samples(model, batch, "score", 3000,
                                         generator=seeded(2))
    difference = pathwise.mean(0) - score.mean(0)
    standard_error = (pathwise.var(0) / 400 + score.var(0) / 3000).sqrt()
    z = difference.abs() / standard_error.clamp_min(1e-8)
    assert float((z < 4).float().mean()) > 0.98  # per-coordinate 4-sigma agreement


def _reference_encoder_gradients(model, images, estimator, samples, seed):
    """The encoder gradient written out from torch.distributions, draw by draw."""
    mu, log_sigma = model.encode(images)
    sigma = log_sigma.exp()
    eps = torch.randn((samples, *mu.shape), generator=seeded(seed), dtype=mu.dtype)
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
    model = vae.VAE(latent_dim=2, hidden=8, generator=seeded(5)).double()
    images = data.train_images[:5].double()
    loss, _ = vae.surrogate_loss(model, images, estimator, samples, seeded(6))
    ours = torch.autograd.grad(loss, list(model.encoder.parameters()))
    reference = _reference_encoder_gradients(model, images, estimator, samples, seed=6)
    for a, b in zip(ours, reference, strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_the_two_encoder_gradients_differ(data):
    model = vae.VAE(latent_dim=2, hidden=8, generator=seeded(0))
    images = data.train_images[:5]
    grads = {}
    for estimator in ("pathwise", "score"):
        loss, _ = vae.surrogate_loss(model, images, estimator, 3, seeded(1))
        grads[estimator] = torch.autograd.grad(loss, list(model.encoder.parameters()))
    assert not torch.allclose(grads["pathwise"][0], grads["score"][0])


# --- training -----------------------------------------------------------------------


def test_training_is_seeded_by_its_generator_alone(small_data):
    model, history = _train_small(small_data)
    torch.randn(1000)  # the global generator moves
    torch.randn(10, generator=seeded(1))
    again_model, again = _train_small(small_data)
    assert again == history
    for a, b in zip(model.parameters(), again_model.parameters(), strict=True):
        assert torch.equal(a, b)
    _, other = _train_small(small_data, seed=1)
    assert other.train_elbo != history.train_elbo


def test_the_first_epochs_of_a_longer_run_are_the_shorter_run(small_data):
    kept = {}

    def keep(epoch, model):
        kept[epoch] = copy.deepcopy(model)

    _train_small(small_data, "score", epochs=3, after_epoch=keep)
    assert sorted(kept) == [1, 2, 3]
    shorter, _ = _train_small(small_data, "score", epochs=2)
    for a, b in zip(kept[2].parameters(), shorter.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(kept[3].encoder[0].weight, shorter.encoder[0].weight)


def test_training_records_both_curves_and_raises_the_elbo(small_data):
    _, history = _train_small(small_data, epochs=4, evaluate_every=2,
                              learning_rate=1e-2)
    assert history.epochs == [2, 4] and history.learning_rate == 1e-2
    assert len(history.train_elbo) == len(history.validation_elbo) == 2
    assert history.train_elbo[1] > history.train_elbo[0]
    no_validation = DigitsData(*[getattr(small_data, name) for name in (
        "train_images", "train_labels", "test_images", "test_labels")],
        small_data.validation_images[:0], small_data.validation_labels[:0])
    _, history = _train_small(no_validation, epochs=2)
    assert history.validation_elbo == [] and len(history.train_elbo) == 2


def test_both_estimators_share_initialisation_minibatch_and_noise(small_data):
    # One step on one minibatch of all 256 images: with the same initial parameters,
    # the same order and the same noise, the decoder gradient and hence Adam's first
    # decoder update are the same bits under both estimators; the encoder's differ.
    runs = {name: _train_small(small_data, name, epochs=1, batch_size=256)[0]
            for name in ("pathwise", "score")}
    initial = vae.VAE(latent_dim=2, hidden=16, generator=seeded(0))
    for a, b, start in zip(runs["pathwise"].decoder.parameters(),
                           runs["score"].decoder.parameters(),
                           initial.decoder.parameters(), strict=True):
        assert torch.equal(a, b) and not torch.equal(a, start)
    assert not torch.equal(runs["pathwise"].encoder[0].weight,
                           runs["score"].encoder[0].weight)


# --- Monte Carlo estimates ------------------------------------------------------------


# Two draws per image: the fewest with a spread (one is refused, in the bad inputs).
@pytest.mark.parametrize("samples", [16, 2])
def test_elbo_estimate_value_standard_error_and_per_image(data, samples):
    model = vae.VAE(latent_dim=3, hidden=16, generator=seeded(0))
    images = data.test_images[:30]
    estimate = vae.elbo_estimate(model, images, samples=samples, generator=seeded(2))
    terms = vae.elbo_terms(model, images, samples, seeded(2))
    draws = (terms.log_likelihood - terms.kl).detach()
    assert estimate.value == pytest.approx(float(draws.mean()), rel=1e-6)
    expected_se = math.sqrt(float((draws.var(0) / samples).sum())) / 30
    assert estimate.standard_error == pytest.approx(expected_se, rel=1e-5)
    assert estimate.draws_per_image == samples
    assert estimate.per_image.shape == (30,)
    assert torch.allclose(estimate.per_image, draws.mean(0).double(), atol=1e-5)
    assert float(estimate.per_image.mean()) == pytest.approx(estimate.value, rel=1e-6)
    torch.randn(100, generator=seeded(9))
    assert vae.elbo_estimate(model, images, samples, seeded(2)) == estimate
    assert vae.elbo_estimate(model, images, samples, seeded(3)) != estimate


def test_the_variance_law_accepts_two_draws_per_image(data):
    model = vae.VAE(latent_dim=2, hidden=8, generator=seeded(0)).double()
    images = data.test_images[:5].double()
    law = vae.score_gradient_variance(model, images, 2, seeded(2))
    assert law.single >= 0 and law.pair > 0  # single is a variance over the draws


def test_importance_weighted_estimate_is_seeded_and_tighter_in_expectation(tiny_model):
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    with torch.no_grad():
        log_px = float(sum(_exact_log_marginal(tiny_model, row[None], GRID)[0]
                           for row in x)) / 2
    one = vae.importance_weighted_estimate(tiny_model, x, 1, 20_000, seeded(3))
    many = vae.importance_weighted_estimate(tiny_model, x, 32, 2_000, seeded(4))
    elbo = vae.elbo_estimate(tiny_model, x, 20_000, seeded(5))
    # L_1 is the ELBO (within Monte Carlo error); L_32 is above it and below log p(x).
    assert abs(one.value - elbo.value) < 4 * math.hypot(
        one.standard_error, elbo.standard_error
    )
    assert many.value - one.value > 4 * math.hypot(
        many.standard_error, one.standard_error
    )
    assert many.value < log_px + 4 * many.standard_error
    again = vae.importance_weighted_estimate(tiny_model, x, 32, 2_000, seeded(4))
    assert again == many and torch.equal(again.per_image, many.per_image)


# --- the leave-one-out variance law ------------------------------------------------


def test_encoder_gram_is_the_jacobians_gram_from_torch_func(data):
    from torch.func import functional_call, jacrev, vmap

    model = vae.VAE(latent_dim=5, hidden=10, generator=seeded(2)).double()
    last = model.encoder[2]  # outputs 0-4: mu; 5-9: log sigma before the clamp (-8, 4)
    with torch.no_grad():
        last.bias[5] += 20.0  # above the clamp: no gradient
        last.bias[7] -= 30.0  # below it: none
        for row, end in ((6, 4.0), (8, -8.0)):  # on its ends: torch's clamp passes it
            last.weight[row], last.bias[row] = 0.0, end
    images = data.train_images[:6].double()

    def outputs(parameters, x):
        mu, log_sigma = functional_call(model.encoder, parameters, (x,)).chunk(2, -1)
        return torch.cat([mu, log_sigma.clamp(-8.0, 4.0)])  # as VAE.encode does

    parameters = {k: v.detach() for k, v in model.encoder.named_parameters()}
    jacobian = vmap(jacrev(outputs), in_dims=(None, 0))(parameters, images)
    flat = torch.cat([j.reshape(6, 10, -1) for j in jacobian.values()], -1)
    gram = vae._encoder_gram(model, images)
    assert torch.allclose(gram, flat @ flat.transpose(1, 2), rtol=1e-12, atol=1e-12)
    assert float(gram[:, 5].abs().max()) == 0.0 == float(gram[:, 7].abs().max())
    assert all(float(gram[:, k, k].min()) > 0 for k in (6, 8, 9))  # ends and inside
    log_sigma = model.encode(images)[1]
    assert bool((log_sigma[:, :2] == 4.0).all() and (log_sigma[:, 2:4] == -8.0).all())
    assert bool(((log_sigma[:, 4] > -8.0) & (log_sigma[:, 4] < 4.0)).all())


@pytest.mark.parametrize("samples", [2, 3])
def test_score_gradient_variance_predicts_the_measured_variance(data, samples):
    # The law single/S + pair/(S(S-1)) against the spread of the estimator itself. The
    # batch holds 200 copies of 3 images, so each measured gradient averages 200
    # independent estimates per image: near-Gaussian, and its variance is the law's
    # divided by 200. Without the baseline-noise term pair/(S(S-1)) the law would be
    # 31 % low at S = 2 and 18 % low at S = 3 here.
    model = vae.VAE(latent_dim=2, hidden=8, generator=seeded(4)).double()
    images = data.train_images[:3].double()
    law = vae.score_gradient_variance(model, images, 20_000, seeded(1))
    assert isinstance(law, vae.LeaveOneOutVariance) and law.pair > 0.3 * law.single
    measured = vae.encoder_gradient_samples(model, images.repeat(200, 1), "score", 400,
                                            samples=samples, generator=seeded(2))
    total = float(measured.var(0).sum()) * 200
    assert total == pytest.approx(law.at(samples), rel=0.08)
    assert law.at(samples) == pytest.approx(
        law.single / samples + law.pair / (samples * (samples - 1)))


def test_score_gradient_variance_replayed_draw_by_draw_with_autograd(data):
    # The two constants from the same draws, each score a_s = grad log q(z_s | x) (z_s
    # held fixed) taken by autograd in parameter space, and E|a|^2 from the Jacobian's
    # rows: no Gram matrix, no einsum. A slip in the |E[u a]|^2 term (subtracted from
    # single, added to pair) moves a constant far beyond rounding.
    model = vae.VAE(latent_dim=2, hidden=6, generator=seeded(5)).double()
    images, draws = data.train_images[:2].double(), 30
    law = vae.score_gradient_variance(model, images, draws, seeded(7))
    eps = torch.randn((draws, 2, 2), generator=seeded(7), dtype=torch.float64)
    parameters = list(model.encoder.parameters())

    def gradient(scalar):  # one flat vector over the encoder's parameters
        grads = torch.autograd.grad(scalar, parameters, retain_graph=True)
        return torch.cat([g.reshape(-1) for g in grads])

    single = pair = 0.0
    for i, x in enumerate(images):
        mu, log_sigma = model.encode(x[None])
        q = torch.distributions.Normal(mu[0], log_sigma[0].exp())
        z = (mu[0] + log_sigma[0].exp() * eps[:, i]).detach()  # (draws, latent)
        with torch.no_grad():
            u = model.log_likelihood(x, z)
        u = u - u.mean()
        a = torch.stack([gradient(q.log_prob(z_s).sum()) for z_s in z])
        mean_ua = (u[:, None] * a).mean(0)
        rows = [gradient(out) for out in (*mu[0], *log_sigma[0])]
        weights = [*(1 / log_sigma[0].exp() ** 2).tolist(), 2.0, 2.0]
        expected_a2 = sum(w * float(r @ r) for w, r in zip(weights, rows, strict=True))
        single += float(((u[:, None] * a) ** 2).sum(1).mean() - mean_ua @ mean_ua)
        pair += float((u**2).mean() * expected_a2 + mean_ua @ mean_ua)
    assert law.single == pytest.approx(single / 4, rel=1e-9)
    assert law.pair == pytest.approx(pair / 4, rel=1e-9)


def test_the_leave_one_out_variance_falls_faster_than_one_over_s():
    law = vae.LeaveOneOutVariance(single=3.0, pair=2.0)
    ratio = law.at(4) / law.at(16)
    assert ratio == pytest.approx((3 / 4 + 2 / 12) / (3 / 16 + 2 / 240)) and ratio > 4
    fixed_baseline = vae.LeaveOneOutVariance(3.0, 0.0)  # no baseline noise: 1/S
    assert fixed_baseline.at(4) / fixed_baseline.at(16) == pytest.approx(4)
    with pytest.raises(ValueError, match="samples"):
        law.at(1)


# --- the Bernoulli-mixture yardstick --------------------------------------------------


def _brute_force_log_likelihood(mixture, images):
    """log sum_k pi_k prod_j mu^x (1 - mu)^(1 - x), pixel by pixel."""
    out = []
    for x in images.double():
        total = 0.0
        for k in range(mixture.components):
            p = math.exp(float(mixture.log_weights[k]))
            for j in range(len(x)):
                mu = float(mixture.probs[k, j])
                p *= mu if x[j] == 1 else 1 - mu
            total += p
        out.append(math.log(total))
    return torch.tensor(out, dtype=torch.float64)


def test_bernoulli_mixture_log_likelihood_is_exact(data):
    mixture = vae.fit_bernoulli_mixture(data.train_images[:200], 3, 5, seeded(0))
    images = data.test_images[:7]
    ours = mixture.log_likelihood(images)
    assert ours.dtype == torch.float64 and ours.shape == (7,)
    assert torch.allclose(ours, _brute_force_log_likelihood(mixture, images),
                          rtol=1e-12)
    assert torch.allclose(ours, mixture.distribution().log_prob(images.double()),
                          rtol=1e-12)
    assert torch.allclose(mixture.log_weights.exp().sum(), torch.ones((),
                          dtype=torch.float64))


def test_one_component_is_independent_pixels_add_one_smoothed(data):
    images = data.train_images[:300]
    mixture = vae.fit_bernoulli_mixture(images, 1, 3, seeded(1))
    frequency = (images.double().sum(0) + 1) / (len(images) + 2)
    assert torch.allclose(mixture.probs[0], frequency, rtol=1e-14)
    assert float(mixture.log_weights[0]) == 0.0


def _log_posterior(mixture, images):
    """Log-likelihood plus the log of the Beta(2, 2) and Dirichlet(2, ..., 2) priors
    (up to constants): what each EM step must not lower."""
    probs = mixture.probs
    prior = (probs.log() + torch.log1p(-probs)).sum() + mixture.log_weights.sum()
    return float(mixture.log_likelihood(images).sum() + prior)


def test_one_em_iteration_replayed_by_hand(data):
    # The start (pixel probabilities uniform on (1/4, 3/4)), then one E step with
    # torch's Bernoulli and one M step with the add-one smoothing, by hand. (The
    # starting weights cannot matter: the softmax ignores a shift shared by all K.)
    images, components = data.train_images[:50].double(), 3
    start = 0.25 + 0.5 * torch.rand(components, 64, generator=seeded(8),
                                    dtype=torch.float64)
    bernoulli = torch.distributions.Bernoulli(probs=start[:, None])
    log_p = bernoulli.log_prob(images).sum(-1).T  # (n, K): log p(x_i | component k)
    responsibilities = torch.softmax(log_p, 1)
    counts = responsibilities.sum(0)
    fitted = vae.fit_bernoulli_mixture(images, components, 1, seeded(8))
    probs = (responsibilities.T @ images + 1) / (counts[:, None] + 2)
    assert torch.allclose(fitted.probs, probs, rtol=1e-12, atol=0)
    weights = (counts + 1) / (len(images) + components)
    assert torch.allclose(fitted.log_weights.exp(), weights, rtol=1e-12, atol=0)


def test_em_never_lowers_the_log_posterior_and_is_seeded(data):
    images = data.train_images[:400]
    values = [_log_posterior(vae.fit_bernoulli_mixture(images, 6, t, seeded(3)), images)
              for t in range(1, 12)]
    assert all(b >= a - 1e-9 for a, b in zip(values, values[1:], strict=False))
    assert values[-1] > values[0] + 1.0
    torch.randn(50)  # the global generator moves; the fit does not
    again = vae.fit_bernoulli_mixture(images, 6, 11, seeded(3))
    assert torch.equal(again.probs, vae.fit_bernoulli_mixture(images, 6, 11,
                                                              seeded(3)).probs)
    other = vae.fit_bernoulli_mixture(images, 6, 11, seeded(4))
    assert not torch.equal(again.probs, other.probs)


def test_em_recovers_a_known_two_component_mixture():
    truth = torch.tensor([[0.9] * 32 + [0.1] * 32, [0.1] * 32 + [0.8] * 32],
                         dtype=torch.float64)
    pick = torch.rand(4000, generator=seeded(5)) < 0.3  # weight 0.3 on component 0
    probs = torch.where(pick[:, None], truth[0], truth[1])
    images = torch.bernoulli(probs, generator=seeded(6)).float()
    mixture = vae.fit_bernoulli_mixture(images, 2, 60, seeded(7))
    order = mixture.probs[:, 0].argsort(descending=True)  # component 0 first
    assert torch.allclose(mixture.probs[order], truth, atol=0.04)
    assert torch.allclose(mixture.log_weights[order].exp(),
                          torch.tensor([0.3, 0.7], dtype=torch.float64), atol=0.03)


@pytest.mark.parametrize("call, error, message", [
    (lambda x: vae.fit_bernoulli_mixture(x * 0.5, 2), ValueError, "binary"),
    (lambda x: vae.fit_bernoulli_mixture(x, 0), ValueError, "components"),
    (lambda x: vae.fit_bernoulli_mixture(x, 2.0), TypeError, "components"),
    (lambda x: vae.fit_bernoulli_mixture(x, 2, 0), ValueError, "iterations"),
    (lambda x: vae.fit_bernoulli_mixture(x, 2, 3, generator=1), TypeError,
     "generator"),
    (lambda x: vae.fit_bernoulli_mixture(x, 2, generator=seeded(0)).log_likelihood(
        x[:, :10]), ValueError,
     "shape"),
    (lambda x: vae.score_gradient_variance(vae.VAE(generator=seeded(0)), x, 1),
     ValueError, "draws"),
    (lambda x: vae.score_gradient_variance("model", x), TypeError, "model"),
])
def test_bad_yardstick_and_variance_arguments(data, call, error, message):
    with pytest.raises(error, match=message):
        call(data.train_images[:20])


# --- bad input ------------------------------------------------------------------------


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
        vae.elbo_terms(vae.VAE(generator=seeded(0)), images)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda m, x: vae.surrogate_loss(m, x, "reinforce", 4, seeded(1)), ValueError,
         "estimator"),
        (lambda m, x: vae.surrogate_loss(m, x, 1, 4, seeded(1)), TypeError,
         "estimator"),
        (lambda m, x: vae.surrogate_loss(m, x, "score", 1, seeded(1)), ValueError,
         "samples"),
        (lambda m, x: vae.surrogate_loss(m, x, "pathwise", 2.0, seeded(1)), TypeError,
         "samples"),
        (lambda m, x: vae.elbo_terms(m, x, samples=0), ValueError, "samples"),
        (lambda m, x: vae.elbo_terms(m, x, 2, generator=3), TypeError, "generator"),
        (lambda m, x: vae.elbo_terms("model", x), TypeError, "model"),
        (lambda m, x: vae.elbo_estimate(m, x, samples=1), ValueError, "samples"),
        (lambda m, x: vae.importance_weighted_estimate(m, x, 0), ValueError,
         "samples"),
        (lambda m, x: vae.importance_weighted_estimate(m, x, 4, 1), ValueError,
         "replicates"),
        (lambda m, x: vae.importance_weighted_estimate(m, x, 2.0), TypeError,
         "samples"),
        (lambda m, x: vae.encoder_gradient_samples(m, x, "score", 0), ValueError,
         "repeats"),
        (lambda m, x: vae.VAE(latent_dim=0, generator=seeded(1)), ValueError,
         "latent_dim"),
        (lambda m, x: vae.VAE(latent_dim="8", generator=seeded(1)), TypeError,
         "latent_dim"),
        (lambda m, x: vae.VAE(hidden=True, generator=seeded(1)), TypeError, "hidden"),
        (lambda m, x: vae.VAE(generator=0), TypeError, "generator"),
    ],
)
def test_bad_arguments(data, call, error, message):
    model = vae.VAE(generator=seeded(0))
    with pytest.raises(error, match=message):
        call(model, data.train_images[:2])


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"estimator": "both"}, ValueError, "estimator"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate"),
        ({"learning_rate": "fast"}, TypeError, "learning_rate"),
        ({"epochs": 2.5}, TypeError, "epochs"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"generator": None}, TypeError, "generator"),
        ({"data": "digits"}, TypeError, "data"),
        # The score function's leave-one-out baseline needs a second draw per image.
        ({"estimator": "score", "samples": 1}, ValueError, "samples"),
        ({"samples": 0}, ValueError, "samples"),
    ],
)
def test_bad_training_arguments(small_data, options, error, message):
    arguments = {"data": small_data, "estimator": "pathwise", "generator": seeded(0),
                 "epochs": 1, "progress": None, **options}
    with pytest.raises(error, match=message):
        vae.train(**arguments)


@pytest.mark.parametrize("estimator, samples", [("pathwise", 1), ("score", 2)])
def test_the_fewest_draws_per_image_each_estimator_accepts(small_data, estimator,
                                                           samples):
    model, history = _train_small(small_data, estimator, epochs=1, samples=samples)
    assert isinstance(model, vae.VAE) and math.isfinite(history.train_elbo[-1])
    images = small_data.train_images[:4]
    loss, _ = vae.surrogate_loss(model, images, estimator, samples, seeded(1))
    assert math.isfinite(float(loss.detach()))
    if samples > 1:  # one draw fewer is refused
        with pytest.raises(ValueError, match="samples"):
            vae.surrogate_loss(model, images, estimator, samples - 1, seeded(1))


@pytest.mark.parametrize("epochs, reported", [
    (8, [2, 4, 6, 8]), (10, [2, 4, 6, 8, 10]), (9, [2, 4, 6, 8]),
    (6, [1, 2, 3, 4, 5, 6]), (3, [1, 2, 3])])
def test_progress_reports_every_epochs_over_4_rounded_down(small_data, epochs,
                                                           reported):
    lines = []
    _train_small(small_data, epochs=epochs, evaluate_every=epochs,
                 progress=lines.append)
    assert lines == [f"[pathwise] epoch {e}/{epochs}" for e in reported]
