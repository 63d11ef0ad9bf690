r"""A small variational autoencoder for 8x8 binary digit images, trainable with either
estimator.

Model (Kingma & Welling 2013): prior :math:`p(z) = \mathcal N(0, I)`, decoder
:math:`p_\theta(x\mid z) = \prod_j \mathrm{Bernoulli}(x_j \mid \pi_j(z))` with logits
from an MLP, encoder
:math:`q_\phi(z\mid x) = \mathcal N(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x))`.
The evidence lower bound for one image,

.. math::

    \mathcal L(x) = \mathbb E_{q_\phi(z\mid x)}[\log p_\theta(x\mid z)]
                    - \mathrm{KL}\bigl(q_\phi(z\mid x)\,\|\,p(z)\bigr)
                    \le \log p_\theta(x),

has the KL term in closed form,
:math:`\mathrm{KL} = \tfrac12\sum_i(\mu_i^2 + \sigma_i^2 - 1 - \log\sigma_i^2)`, and the
first term estimated with S draws :math:`z = \mu + \sigma\odot\varepsilon`.

Encoder gradients of the first term come from one of two estimators:

- ``"pathwise"``: backpropagate through :math:`z = \mu + \sigma\odot\varepsilon`
  (the trick);
- ``"score"``: :math:`(\log p(x\mid z) - b)\,\nabla_\phi\log q_\phi(z\mid x)` with z
  held fixed and a leave-one-out baseline b over the S draws of the same image
  (unbiased, needs S >= 2).

The decoder gradient and the KL gradient are the same exact computation in both cases.
:func:`score_gradient_variance` predicts the score-function encoder gradient's variance
at any S, and :func:`fit_bernoulli_mixture` fits a yardstick with an exact likelihood
(a mixture of Bernoulli products, by EM).

Randomness comes in only through ``generator`` arguments (``torch.Generator``): the
initial parameters, the minibatch order and every draw of :math:`\varepsilon`. Nothing
here reads or changes torch's global random state: a function that draws refuses
``generator=None`` with a ``TypeError``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn

from ._validation import (
    LEAVE_ONE_OUT,
    as_real_scalar,
    check_choice,
    check_count,
    check_generator,
    check_images,
)
from .data import IMAGE_PIXELS, DigitsData, default_device
from .estimators import subtract_baseline

__all__ = [
    "ESTIMATORS",
    "VAE",
    "kl_to_standard_normal",
    "ElboTerms",
    "elbo_terms",
    "surrogate_loss",
    "TrainingHistory",
    "train",
    "encoder_gradient_samples",
    "MonteCarloEstimate",
    "elbo_estimate",
    "importance_weighted_estimate",
    "LeaveOneOutVariance",
    "score_gradient_variance",
    "BernoulliMixture",
    "fit_bernoulli_mixture",
]

ESTIMATORS = ("pathwise", "score")
LOG_SIGMA_RANGE = (-8.0, 4.0)  # the encoder's log sigma is clamped to this interval


def _check_binary_images(images, pixels: int = IMAGE_PIXELS) -> torch.Tensor:
    """A batch of images (``_validation.check_images``) with pixels in [0, 1]."""
    images = check_images(images, "images", pixels)
    if bool((images < 0).any()) or bool((images > 1).any()):
        raise ValueError("image pixels must lie in [0, 1] (Bernoulli likelihood)")
    return images


def _check_estimator(estimator) -> str:
    return check_choice(estimator, "estimator", ESTIMATORS)


def _linear(inputs: int, outputs: int, generator: torch.Generator) -> nn.Linear:
    r"""``nn.Linear(inputs, outputs)`` with torch's default initialisation, drawn from
    ``generator``.

    The layer is made without drawing anything (``skip_init``), then initialised as
    ``nn.Linear.reset_parameters`` does: the weight by ``kaiming_uniform_`` with
    :math:`a = \sqrt 5`, the bias uniform on :math:`\pm 1/\sqrt{\text{inputs}}`.
    With a generator seeded like torch's global one, the values are those of a plain
    ``nn.Linear`` (tested).
    """
    layer = nn.utils.skip_init(nn.Linear, inputs, outputs)
    bound = 1.0 / math.sqrt(inputs)
    with torch.no_grad():
        nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return layer


class VAE(nn.Module):
    """MLP encoder q(z|x) = N(mu(x), diag sigma(x)^2) and Bernoulli MLP decoder
    p(x|z).

    The initial parameters are drawn from ``generator`` (required), layer by layer:
    encoder, then decoder.
    """

    def __init__(
        self,
        latent_dim: int = 8,
        hidden: int = 128,
        pixels: int = IMAGE_PIXELS,
        *,
        generator: torch.Generator,
    ):
        super().__init__()
        latent_dim = check_count(latent_dim, "latent_dim")
        hidden = check_count(hidden, "hidden")
        pixels = check_count(pixels, "pixels")
        check_generator(generator)
        self.latent_dim = latent_dim
        self.pixels = pixels
        self.encoder = nn.Sequential(
            _linear(pixels, hidden, generator),
            nn.Tanh(),
            _linear(hidden, 2 * latent_dim, generator),
        )
        self.decoder = nn.Sequential(
            _linear(latent_dim, hidden, generator),
            nn.Tanh(),
            _linear(hidden, pixels, generator),
        )

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log_sigma) of q(z|x), each of shape (n, latent_dim)."""
        mu, log_sigma = self.encoder(images).chunk(2, dim=-1)
        # The clamp keeps sigma away from 0 and from overflow.
        return mu, log_sigma.clamp(*LOG_SIGMA_RANGE)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits of p(x|z), shape (..., pixels)."""
        return self.decoder(z)

    def log_likelihood(self, images: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) summed over pixels; z may carry leading sample dimensions."""
        logits = self.decode_logits(z)
        return -nn.functional.binary_cross_entropy_with_logits(
            logits, images.expand_as(logits), reduction="none"
        ).sum(-1)


def _check_model(model) -> VAE:
    if not isinstance(model, VAE):
        raise TypeError(f"model must be a reparam.vae.VAE, got {type(model).__name__}")
    return model


def kl_to_standard_normal(mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag sigma^2) || N(0, I)) per row, in closed form."""
    return 0.5 * (mu.pow(2) + torch.exp(2 * log_sigma) - 1.0 - 2 * log_sigma).sum(-1)


def _log_q(z: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    eps = (z - mu) / torch.exp(log_sigma)
    return (-0.5 * eps.pow(2) - log_sigma - 0.5 * math.log(2 * math.pi)).sum(-1)


def _log_prior(z: torch.Tensor) -> torch.Tensor:
    return (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(-1)


def _standard_normal(shape, like: torch.Tensor, generator: torch.Generator):
    """N(0, 1) draws of ``like``'s dtype on ``like``'s device, made on the generator's
    device: a CPU generator gives the same draws whatever device the model is on."""
    draws = torch.randn(shape, generator=generator, dtype=like.dtype,
                        device=generator.device)
    return draws.to(like.device)


class ElboTerms(NamedTuple):
    """The reparameterized draws of :func:`elbo_terms` and the terms of the ELBO."""

    z: torch.Tensor  # (samples, n, latent_dim), z = mu + sigma * eps
    log_likelihood: torch.Tensor  # (samples, n): log p(x | z_s)
    kl: torch.Tensor  # (n,): KL(q(z | x) || p(z)), exact
    mu: torch.Tensor  # (n, latent_dim)
    log_sigma: torch.Tensor  # (n, latent_dim)


def _draw_latents(
    model: VAE, images: torch.Tensor, samples: int, generator: torch.Generator
):
    """(images, z, mu, log_sigma): validated images and z = mu + sigma * eps, with
    ``eps`` of shape (samples, n, latent_dim) drawn from ``generator`` in one call."""
    model = _check_model(model)
    images = _check_binary_images(images, model.pixels)
    samples = check_count(samples, "samples")
    check_generator(generator)
    return images, *_draw(model, images, samples, generator)


def _draw(model: VAE, images: torch.Tensor, samples: int, generator):
    """(z, mu, log_sigma) for arguments already validated."""
    mu, log_sigma = model.encode(images)
    eps = _standard_normal((samples, *mu.shape), mu, generator)
    return mu + torch.exp(log_sigma) * eps, mu, log_sigma


def elbo_terms(
    model: VAE,
    images: torch.Tensor,
    samples: int = 1,
    generator: torch.Generator | None = None,
) -> ElboTerms:
    """``samples`` reparameterized draws per image and the ELBO's two terms.

    ``z = mu + sigma * eps`` keeps the graph to the encoder; ``eps`` is drawn from
    ``generator`` in one call. The ELBO estimate of image i from draw s is
    ``log_likelihood[s, i] - kl[i]``.
    """
    images, z, mu, log_sigma = _draw_latents(model, images, samples, generator)
    return ElboTerms(
        z,
        model.log_likelihood(images, z),
        kl_to_standard_normal(mu, log_sigma),
        mu,
        log_sigma,
    )


def surrogate_loss(
    model: VAE,
    images: torch.Tensor,
    estimator: str,
    samples: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""A loss whose gradient is minus the chosen ELBO gradient estimate; also returns
    the per-image ELBO estimates (detached).

    Both losses have the same value (minus the mean ELBO estimate) and draw the same
    noise from ``generator``; only their encoder gradients differ. With rewards
    :math:`r_s = \log p_\theta(x\mid z_s)` and the leave-one-out baseline :math:`b_s =
    \frac{1}{S-1}\sum_{t\ne s} r_t`, the score-function encoder gradient is

    .. math::

        \frac1S\sum_{s=1}^S (r_s - b_s)\,\nabla_\phi\log q_\phi(z_s\mid x)
        - \nabla_\phi\mathrm{KL}\bigl(q_\phi(z\mid x)\,\|\,p(z)\bigr),

    with every :math:`z_s` held fixed (detached), so no gradient reaches the encoder
    through it.
    """
    estimator = _check_estimator(estimator)
    samples = check_count(samples, "samples", 2 if estimator == "score" else 1)
    model = _check_model(model)
    images = _check_binary_images(images, model.pixels)
    check_generator(generator)
    return _surrogate_loss(model, images, estimator, samples, generator)


def _surrogate_loss(model, images, estimator, samples, generator):
    """:func:`surrogate_loss` for arguments already validated (the training loop checks
    its images once, not at every step)."""
    z, mu, log_sigma = _draw(model, images, samples, generator)
    kl = kl_to_standard_normal(mu, log_sigma)
    if estimator == "pathwise":
        elbo = model.log_likelihood(images, z).mean(0) - kl  # per image
        return -elbo.mean(), elbo.detach()
    # No path from the encoder to z: only log q carries its gradient.
    z_fixed = z.detach()
    log_likelihood = model.log_likelihood(images, z_fixed)
    advantage = subtract_baseline(log_likelihood.detach(), LEAVE_ONE_OUT)  # over S
    score_term = (advantage * _log_q(z_fixed, mu, log_sigma)).mean(0)
    elbo = log_likelihood.mean(0) - kl
    # Make the value equal the ELBO estimate without changing any gradient.
    surrogate = elbo + score_term - score_term.detach()
    return -surrogate.mean(), elbo.detach()


@dataclass(frozen=True)
class MonteCarloEstimate:
    r"""A Monte Carlo estimate of a mean over fixed images, with its standard error.

    ``standard_error`` measures only the noise of the random draws (the images are held
    fixed): :math:`\sqrt{\sum_i \hat v_i}/N` for N images whose per-image estimates have
    estimated variances :math:`\hat v_i`. ``per_image`` holds the N per-image
    estimates (``value`` is their mean), for comparisons paired image by image.
    """

    value: float
    standard_error: float
    draws_per_image: int
    per_image: torch.Tensor = field(compare=False, repr=False)


def _summarize_replicates(per_image: torch.Tensor, draws: int) -> MonteCarloEstimate:
    """``per_image`` has shape (replicates, n): independent estimates of each image's
    value."""
    replicates, n = per_image.shape
    variance_of_mean = per_image.var(0) / replicates  # per image, of its replicate mean
    return MonteCarloEstimate(
        value=float(per_image.mean()),
        standard_error=float(variance_of_mean.sum().sqrt() / n),
        draws_per_image=draws,
        per_image=per_image.mean(0).detach().cpu().double(),
    )


@torch.no_grad()
def elbo_estimate(
    model: VAE,
    images: torch.Tensor,
    samples: int = 64,
    generator: torch.Generator | None = None,
) -> MonteCarloEstimate:
    r"""The mean ELBO per image (nats) with its Monte Carlo standard error.

    Each image gets ``samples`` draws :math:`\log p(x\mid z_s) - \mathrm{KL}` (KL
    exact), whose mean is that image's estimate.
    """
    samples = check_count(samples, "samples", 2)
    terms = elbo_terms(model, images, samples, generator)
    return _summarize_replicates(terms.log_likelihood - terms.kl, samples)


@torch.no_grad()
def importance_weighted_estimate(
    model: VAE,
    images: torch.Tensor,
    samples: int = 64,
    replicates: int = 4,
    generator: torch.Generator | None = None,
) -> MonteCarloEstimate:
    r"""The K-sample importance-weighted bound per image with its Monte Carlo standard
    error.

    .. math:: \mathcal L_K(x) = \mathbb E\Bigl[\log\frac1K\sum_{k=1}^K
              \frac{p_\theta(x\mid z_k)\,p(z_k)}{q_\phi(z_k\mid x)}\Bigr],
              \quad z_k \sim q_\phi(z\mid x),

    (Burda, Grosse and Salakhutdinov 2016) with :math:`K` = ``samples``, estimated from
    ``replicates`` independent sets of K draws per image, whose spread gives the error.
    :math:`\mathcal L_1` is the ELBO, and :math:`\mathcal L_K \le \mathcal L_{K+1}
    \le \log p_\theta(x)`: in expectation, not draw by draw.
    """
    samples = check_count(samples, "samples", 1)
    replicates = check_count(replicates, "replicates", 2)
    # All replicates in one draw: row r * samples + k is draw k of replicate r.
    terms = elbo_terms(model, images, samples * replicates, generator)
    log_weights = (
        terms.log_likelihood
        + _log_prior(terms.z)
        - _log_q(terms.z, terms.mu, terms.log_sigma)
    )
    per_replicate = log_weights.reshape(replicates, samples, -1)
    return _summarize_replicates(
        torch.logsumexp(per_replicate, 1) - math.log(samples), samples
    )


@dataclass
class TrainingHistory:
    """The ELBO (nats per image) on the training and the validation images, at the
    end of every ``evaluate_every``-th epoch; ``validation_elbo`` stays empty when the
    data have no validation split."""

    estimator: str
    learning_rate: float
    epochs: list[int] = field(default_factory=list)
    train_elbo: list[float] = field(default_factory=list)
    validation_elbo: list[float] = field(default_factory=list)


EVALUATION_SAMPLES = 16  # draws per image for the learning curves


def train(
    data: DigitsData,
    estimator: str,
    *,
    latent_dim: int = 8,
    hidden: int = 128,
    epochs: int = 60,
    batch_size: int = 64,
    samples: int = 4,
    learning_rate: float = 3e-3,
    evaluate_every: int = 5,
    device: torch.device | None = None,
    progress: Callable[[str], None] | None = None,
    after_epoch: Callable[[int, VAE], None] | None = None,
    generator: torch.Generator,
) -> tuple[VAE, TrainingHistory]:
    """Train a VAE with Adam on ``data.train_images``; the encoder gradient comes from
    ``estimator``.

    Every random choice is drawn from ``generator`` (a CPU ``torch.Generator``), in
    this order: the initial parameters, the seed of the learning curves' draws, then,
    epoch by epoch, the minibatch order and each step's noise. Both estimators draw
    the same number of values per step, so one generator state gives both the same
    initialisation, minibatches and noise. The learning curves use the same draws at
    every evaluation, so that they move with the model, not with the noise.
    ``progress`` receives a line every ``max(1, epochs // 4)`` epochs (four lines when
    4 divides ``epochs``). ``after_epoch(epoch, model)`` is called at the end of every
    epoch (for example, to keep a copy of the model at an earlier epoch: the first k
    epochs of a longer run are the run of k epochs).
    """
    if not isinstance(data, DigitsData):
        raise TypeError(f"data must be a DigitsData, got {type(data).__name__}")
    estimator = _check_estimator(estimator)
    epochs = check_count(epochs, "epochs")
    batch_size = check_count(batch_size, "batch_size")
    evaluate_every = check_count(evaluate_every, "evaluate_every")
    learning_rate = as_real_scalar(learning_rate, "learning_rate")
    if learning_rate <= 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    if check_generator(generator).device.type != "cpu":
        raise ValueError(f"generator must be a CPU generator, got {generator.device}")
    device = device or default_device()
    model = VAE(latent_dim, hidden, generator=generator).to(device)
    samples = check_count(samples, "samples", 2 if estimator == "score" else 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    train_images = _check_binary_images(data.train_images).to(device)
    validation_images = data.validation_images.to(device)
    curve_seed = int(torch.randint(2**62, (1,), generator=generator))
    history = TrainingHistory(estimator, learning_rate)

    def curve_point(images: torch.Tensor) -> float:
        draws = torch.Generator().manual_seed(curve_seed)
        return elbo_estimate(model, images, EVALUATION_SAMPLES, draws).value

    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(train_images), generator=generator).to(device)
        for batch in order.split(batch_size):
            loss, _ = _surrogate_loss(
                model, train_images[batch], estimator, samples, generator
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if epoch % evaluate_every == 0 or epoch == epochs:
            history.epochs.append(epoch)
            history.train_elbo.append(curve_point(train_images))
            if len(validation_images):
                history.validation_elbo.append(curve_point(validation_images))
        if progress is not None and epoch % max(1, epochs // 4) == 0:
            progress(f"[{estimator}] epoch {epoch}/{epochs}")
        if after_epoch is not None:
            after_epoch(epoch, model)
    return model, history


def encoder_gradient_samples(
    model: VAE,
    images: torch.Tensor,
    estimator: str,
    repeats: int,
    samples: int = 4,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``repeats`` independent estimates of the encoder gradient on one fixed batch.

    Returns a (repeats, n_encoder_parameters) tensor; its per-coordinate variance is the
    gradient variance compared in the chapter.
    """
    model = _check_model(model)
    repeats = check_count(repeats, "repeats")
    parameters = list(model.encoder.parameters())
    rows = []
    for _ in range(repeats):
        loss, _ = surrogate_loss(model, images, estimator, samples, generator)
        gradients = torch.autograd.grad(loss, parameters)
        rows.append(torch.cat([g.reshape(-1) for g in gradients]))
    return torch.stack(rows)


@dataclass(frozen=True)
class LeaveOneOutVariance:
    r"""The total variance of the score-function encoder gradient (with the
    leave-one-out baseline) on fixed images, as a function of the draws per image S.

    For one image, with centred reward :math:`u = r - \mathbb E[r]` and score
    :math:`a = \nabla_\phi\log q_\phi(z\mid x)` (a vector over the encoder's
    parameters), the estimate :math:`g = \frac1S\sum_s (r_s - b_s)\,a_s` has

    .. math::

        \operatorname{tr}\operatorname{Var} g
        = \frac{\operatorname{tr}\operatorname{Cov}(u\,a)}{S}
        + \frac{\mathbb E[u^2]\,\mathbb E\|a\|^2 + \|\mathbb E[u\,a]\|^2}{S(S-1)} .

    (Write :math:`r_s - b_s = u_s - \frac{1}{S-1}\sum_{t\ne s}u_t`; the first part
    gives the first term, the baseline's own noise the second, and the two are
    uncorrelated because :math:`\mathbb E[a] = 0` and :math:`\mathbb E[u] = 0`.) With
    a fixed, exact baseline :math:`b = \mathbb E[r]` only the first term would remain:
    the leave-one-out variance falls faster than :math:`1/S`. For a minibatch of n
    images the encoder gradient is the mean of the n images' estimates, so ``single``
    and ``pair`` are the sums of the images' two numerators divided by :math:`n^2`.
    """

    single: float  # sum over images of tr Cov(u a), over n^2
    pair: float  # sum over images of E[u^2] E|a|^2 + |E[u a]|^2, over n^2

    def at(self, samples: int) -> float:
        """The predicted total variance with ``samples`` draws per image (S >= 2)."""
        samples = check_count(samples, "samples", 2)
        return self.single / samples + self.pair / (samples * (samples - 1))


def _encoder_gram(model: VAE, images: torch.Tensor) -> torch.Tensor:
    r"""Per image, the Gram matrix :math:`J J^\top` of the Jacobian J of the encoder's
    outputs (mu, log sigma after the clamp) with respect to all encoder parameters.

    For the encoder :math:`o = W_2\tanh(W_1 x + b_1) + b_2` with :math:`h = \tanh(W_1 x
    + b_1)` it is, in closed form (tested against ``torch.func.jacrev``),

    .. math:: (J J^\top)_{kl} = \delta_{kl}(\|h\|^2 + 1)
              + (\|x\|^2 + 1)\sum_j W_{2,kj} W_{2,lj} (1 - h_j^2)^2 ,

    with the rows and columns of the log sigma outputs strictly outside the clamp's
    interval set to zero (at its two ends torch's clamp still passes the gradient).
    Shape (n, 2 latent_dim, 2 latent_dim).
    """
    first, _, last = model.encoder
    with torch.no_grad():
        hidden = torch.tanh(first(images))
        outputs = last(hidden)
        slope = (1 - hidden.pow(2)).pow(2)
        gram = torch.einsum("kj,nj,lj->nkl", last.weight, slope, last.weight)
        gram = gram * (images.pow(2).sum(1) + 1)[:, None, None]
        gram = gram + torch.diag_embed(
            (hidden.pow(2).sum(1) + 1)[:, None].expand_as(outputs)
        )
        log_sigma = outputs[:, model.latent_dim:]
        low, high = LOG_SIGMA_RANGE
        free = torch.cat(
            [torch.ones_like(log_sigma), ((log_sigma >= low) & (log_sigma <= high))], 1
        ).to(gram.dtype)  # as torch's clamp: a gradient on [low, high], ends included
        return gram * free[:, :, None] * free[:, None, :]


@torch.no_grad()
def score_gradient_variance(
    model: VAE,
    images: torch.Tensor,
    draws: int = 2000,
    generator: torch.Generator | None = None,
) -> LeaveOneOutVariance:
    r"""The two constants of :class:`LeaveOneOutVariance` for the score-function
    encoder gradient of :func:`surrogate_loss` on ``images``, estimated from ``draws``
    draws of z per image.

    The score of a diagonal Gaussian in its outputs is :math:`v = (\varepsilon/\sigma,
    \varepsilon^2 - 1)` (derivatives in mu and log sigma), and :math:`a = J^\top v`,
    so every squared norm in parameter space is a quadratic form in :math:`J J^\top`
    (:func:`_encoder_gram`); :math:`\mathbb E\|a\|^2 = \operatorname{tr}(J J^\top
    \operatorname{diag}(1/\sigma^2, 2))` is exact, the other expectations are means
    over the draws, and the reward's mean is the draws' mean. The KL term's gradient
    is exact and adds no variance.
    """
    model = _check_model(model)
    images = _check_binary_images(images, model.pixels)
    draws = check_count(draws, "draws", 2)
    check_generator(generator)
    gram = _encoder_gram(model, images)
    mu, log_sigma = model.encode(images)
    sigma = torch.exp(log_sigma)
    eps = _standard_normal((draws, *mu.shape), mu, generator)
    rewards = model.log_likelihood(images, mu + sigma * eps)  # (draws, n)
    centred = rewards - rewards.mean(0)
    score = torch.cat([eps / sigma, eps.pow(2) - 1], -1)  # (draws, n, 2 latent_dim)
    weighted = centred[..., None] * score
    mean_weighted = weighted.mean(0)

    def squared_norm(vectors):  # |J^T v|^2 for each image
        return torch.einsum("...k,...kl,...l->...", vectors, gram, vectors)

    norm_of_mean = squared_norm(mean_weighted)
    single = squared_norm(weighted).mean(0) - norm_of_mean
    score_norm = torch.einsum(
        "nkk,nk->n", gram, torch.cat([sigma.pow(-2), torch.full_like(sigma, 2.0)], 1)
    )
    pair = centred.pow(2).mean(0) * score_norm + norm_of_mean
    n = len(images)
    return LeaveOneOutVariance(float(single.sum()) / n**2, float(pair.sum()) / n**2)


@dataclass(frozen=True)
class BernoulliMixture:
    r"""A mixture of K products of Bernoullis over the pixels,

    .. math:: p(x) = \sum_{k=1}^K \pi_k \prod_j \mu_{kj}^{x_j}(1 - \mu_{kj})^{1 - x_j},

    a yardstick with an exact likelihood. ``log_weights`` holds :math:`\log\pi_k`
    (shape (K,)), ``probs`` the :math:`\mu_{kj}` (shape (K, pixels)), both float64.
    """

    log_weights: torch.Tensor
    probs: torch.Tensor

    @property
    def components(self) -> int:
        return len(self.log_weights)

    def distribution(self) -> torch.distributions.MixtureSameFamily:
        """The same mixture as a ``torch.distributions`` object."""
        dist = torch.distributions
        return dist.MixtureSameFamily(
            dist.Categorical(logits=self.log_weights),
            dist.Independent(dist.Bernoulli(probs=self.probs), 1),
        )

    def log_likelihood(self, images: torch.Tensor) -> torch.Tensor:
        """The exact :math:`\\log p(x)` of each image (nats), float64, shape (n,)."""
        images = _check_binary(images, self.probs.shape[1])
        return torch.logsumexp(_component_log_likelihoods(self, images), 1)


def _check_binary(images, pixels: int = IMAGE_PIXELS) -> torch.Tensor:
    """Validated images whose pixels are all 0 or 1, as float64."""
    images = _check_binary_images(images, pixels)
    if not bool(((images == 0) | (images == 1)).all()):
        raise ValueError("images must be binary (every pixel 0 or 1)")
    return images.double()


def _component_log_likelihoods(
    mixture: BernoulliMixture, images: torch.Tensor
) -> torch.Tensor:
    """(n, K): log pi_k + log p(x_i | component k), as
    sum_j x_ij logit(mu_kj) + sum_j log(1 - mu_kj) + log pi_k (one product)."""
    log_off = torch.log1p(-mixture.probs)
    return (
        images @ (mixture.probs.log() - log_off).T
        + log_off.sum(1)
        + mixture.log_weights
    )


def fit_bernoulli_mixture(
    images: torch.Tensor,
    components: int,
    iterations: int = 50,
    generator: torch.Generator | None = None,
) -> BernoulliMixture:
    r"""A :class:`BernoulliMixture` fitted to binary ``images`` by EM (Dempster, Laird
    and Rubin 1977), started from pixel probabilities drawn uniformly on (1/4, 3/4)
    from ``generator`` and equal weights.

    Each iteration computes the responsibilities :math:`r_{ik}` (E step) and sets
    :math:`\mu_{kj} = (\sum_i r_{ik}x_{ij} + 1)/(N_k + 2)` and :math:`\pi_k = (N_k +
    1)/(n + K)`, :math:`N_k = \sum_i r_{ik}` (M step): the maximum a posteriori
    estimate under Beta(2, 2) priors on the :math:`\mu_{kj}` and a Dirichlet(2, ..., 2)
    prior on :math:`\pi`, which keeps every probability inside (0, 1). No iteration
    lowers the log-likelihood plus the log prior. With one component the fit is the
    add-one smoothed pixel frequencies: independent pixels.
    """
    images = _check_binary(images)
    components = check_count(components, "components")
    iterations = check_count(iterations, "iterations")
    check_generator(generator)
    n, pixels = images.shape
    start = torch.rand(components, pixels, generator=generator, dtype=torch.float64)
    mixture = BernoulliMixture(
        torch.full((components,), -math.log(components), dtype=torch.float64),
        0.25 + 0.5 * start,
    )
    for _ in range(iterations):
        responsibilities = torch.softmax(_component_log_likelihoods(mixture, images), 1)
        counts = responsibilities.sum(0)
        mixture = BernoulliMixture(
            torch.log((counts + 1) / (n + components)),
            (responsibilities.T @ images + 1) / (counts[:, None] + 2),
        )
    return mixture
