r"""Likelihoods of the 17-grey-level digits, in bits per dimension, for Chapter 9.

The digits' pixels take 17 values (ink 0..16, scaled to :math:`p/8 - 1` on [-1, 1]), so
a model must give them probabilities, not densities. Three ways are used here, each an
upper bound on the model's code length :math:`-\log_2 P(x)` per pixel:

- the DDPM's negative ELBO with Ho et al.'s discretized decoder :math:`L_0`
  (:func:`ddpm_negative_elbo`): the bound is a code length of discrete data;
- a Gaussian density made discrete by uniform dequantization (Theis, van den Oord and
  Bethge 2016): :math:`\log P(x) \ge \mathbb E_u[\log p(x+u)] + d\log w` for
  :math:`u` uniform on the bin of width :math:`w` around :math:`x`
  (:func:`dequantized_gaussian_nats`);
- a VAE with a Binomial decoder, :math:`p(k\mid z) = \mathrm{Bin}(16, \pi(z))` per
  pixel: the digits' ink levels count the inked cells of a 4 x 4 block of a 32 x 32
  bitmap, so this is Chapter 7's Bernoulli decoder applied to the 16 cells of each
  block (:class:`BinomialVAE`, :func:`train_binomial_vae`).

:func:`independent_pixels_nats` (one categorical distribution per pixel) and the
uniform distribution over the 17 levels are the trivial yardsticks. Every function
returns nats per image; :func:`bits_per_dimension` converts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import diffusion
from ._validation import as_real_scalar, check_count, check_generator, check_images
from .data import GREY_LEVELS, IMAGE_PIXELS
from .vae import VAE

__all__ = [
    "BIN_WIDTH",
    "bits_per_dimension",
    "discretized_gaussian_log_likelihood",
    "NegativeElbo",
    "ddpm_negative_elbo",
    "dequantized_gaussian_nats",
    "independent_pixels_nats",
    "BinomialVAE",
    "binomial_vae_negative_elbo",
    "train_binomial_vae",
]

BIN_WIDTH = 2.0 / (GREY_LEVELS - 1)  # 1/8: neighbouring grey levels on [-1, 1]


def bits_per_dimension(nats_per_image, pixels: int = IMAGE_PIXELS):
    """Nats per image to bits per pixel: divide by ``pixels * ln 2``."""
    return nats_per_image / (check_count(pixels, "pixels") * math.log(2.0))


def _levels(images: torch.Tensor, name: str = "images") -> torch.Tensor:
    """Check that ``images`` hold only the 17 grey levels p/8 - 1; return float64."""
    images = check_images(images, name, None).double()
    if not torch.equal(diffusion.quantize(images).double(), images):
        raise ValueError(f"{name} must hold the 17 grey levels p/8 - 1 of the digits")
    return images


def _log_normal_mass(lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """log(Phi(upper) - Phi(lower)) for standardised limits, stable in both tails."""
    flip = (lower + upper) > 0  # in the right tail, use the mirror image
    low = torch.where(flip, -upper, lower)
    high = torch.where(flip, -lower, upper)
    log_high, log_low = torch.special.log_ndtr(high), torch.special.log_ndtr(low)
    return log_high + torch.log1p(-torch.exp(log_low - log_high))


def discretized_gaussian_log_likelihood(
    images: torch.Tensor, mean: torch.Tensor, scale
) -> torch.Tensor:
    r"""Ho et al.'s decoder :math:`p(x_0\mid x_1)` for the 17 grey levels, per pixel.

    The probability of a level is the mass of :math:`\mathcal N(\text{mean},
    \text{scale}^2)` on its bin, :math:`[x - w/2, x + w/2]` with :math:`w = 1/8`; the
    bins of -1 and 1 extend to :math:`-\infty` and :math:`+\infty`, so the 17
    probabilities sum to 1. Returns log probabilities with ``mean``'s shape (float64).
    """
    images = _levels(images)
    if not isinstance(mean, torch.Tensor):
        raise TypeError(f"mean must be a torch.Tensor, got {type(mean).__name__}")
    mean = mean.double()
    scale = torch.as_tensor(scale, dtype=torch.float64)
    if not bool((scale > 0).all()) or not bool(torch.isfinite(scale).all()):
        raise ValueError("scale must be finite and > 0")
    upper = torch.where(images >= 1.0, torch.inf, images + BIN_WIDTH / 2)
    lower = torch.where(images <= -1.0, -torch.inf, images - BIN_WIDTH / 2)
    return _log_normal_mass((lower - mean) / scale, (upper - mean) / scale)


@dataclass(frozen=True)
class NegativeElbo:
    r"""The DDPM's negative ELBO per image (nats), by term:
    :math:`L = L_T + \sum_{t=2}^T L_{t-1} + L_0`.

    ``prior`` (n,) is :math:`L_T = \mathrm{KL}(q(x_T\mid x_0)\,\|\,\mathcal N(0, I))`,
    the same for every model; ``steps`` (K, T - 1, n) holds the KL terms
    :math:`L_{t-1}` for t = 2..T, each estimated from one draw of :math:`x_t`, and
    ``diffusion`` (K, n) their sum; ``decoder`` (K, n) is :math:`L_0 = -\log
    p_\theta(x_0\mid x_1)` at one draw of :math:`x_1`.
    """

    prior: torch.Tensor
    diffusion: torch.Tensor
    decoder: torch.Tensor
    steps: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        """:math:`L` per model and image, shape (K, n)."""
        return self.prior + self.diffusion + self.decoder


@torch.no_grad()
def ddpm_negative_elbo(
    model: diffusion.DenoiserEnsemble,
    images: torch.Tensor,
    schedule: diffusion.Schedule,
    *,
    clip: bool = True,
    chunk: int = 20,
    generator: torch.Generator,
) -> NegativeElbo:
    r"""The negative ELBO of every member's reverse process on 17-level ``images``.

    ``model`` is a :class:`~reparam.diffusion.DenoiserEnsemble` or a
    :class:`~reparam.diffusion.LinearDenoiser` (a DDPM with no network). The reverse
    model is the one :func:`reparam.diffusion.sample` draws from:
    :math:`p_\theta(x_{t-1}\mid x_t) = \mathcal N(\tilde\mu_t(\hat x_0, x_t),
    \tilde\beta_t I)`, with :math:`\hat x_0` clipped to [-1, 1] when ``clip`` is true.
    With :math:`\sigma_t^2 = \tilde\beta_t`, :math:`L_{t-1} = \lVert\tilde\mu_t(x_0,
    x_t) - \tilde\mu_t(\hat x_0, x_t)\rVert^2/(2\tilde\beta_t)` exactly (no constant
    :math:`C_t`), summed over all t = 2..T with one :math:`x_t` per image and t (an
    unbiased estimate of the sum). The decoder at t = 1 is
    :func:`discretized_gaussian_log_likelihood` centred at :math:`\hat x_0(x_1)`, with
    the standard deviation :math:`\sqrt{\tilde\beta_2}` (Ho et al.'s released code: the
    posterior variance at t = 1 is 0, so its first nonzero value is used). ``chunk``
    steps are evaluated per network call.
    """
    schedule = diffusion._check_schedule(schedule)
    model = diffusion._check_reverse_model(model)
    images = _levels(images)
    chunk = check_count(chunk, "chunk")
    if not isinstance(clip, bool):
        raise TypeError(f"clip must be a bool, got {type(clip).__name__}")
    check_generator(generator)
    n, T = len(images), schedule.T
    alpha_bar_T = float(schedule.alpha_bars[-1])
    prior = 0.5 * (alpha_bar_T * images.pow(2) - alpha_bar_T
                   - math.log(1.0 - alpha_bar_T)).sum(-1)

    def estimate_x0(xt, t):  # a network computes in its own precision
        x0_hat = model.predict_x0(xt, t, schedule).double()
        return x0_hat.clamp(-1.0, 1.0) if clip else x0_hat

    terms = torch.zeros(len(model), n, dtype=torch.float64)
    per_step = []
    for first in range(2, T + 1, chunk):
        steps = torch.arange(first, min(first + chunk, T + 1))
        t = steps.repeat_interleave(n)
        x0 = images.repeat(len(steps), 1)
        noise = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
        xt = diffusion.q_sample(x0, noise, t, schedule)
        true_mean, variance = diffusion.q_posterior(x0, xt, t, schedule)
        x0_hat = estimate_x0(xt, t)
        model_mean = torch.stack([diffusion.q_posterior(x, xt, t, schedule)[0]
                                  for x in x0_hat])
        kl = (true_mean - model_mean).pow(2).sum(-1) / (2 * variance[:, 0])
        per_step.append(kl.reshape(len(model), len(steps), n))
        terms += per_step[-1].sum(1)
    noise = torch.randn(images.shape, generator=generator, dtype=torch.float64)
    x1 = diffusion.q_sample(images, noise, 1, schedule)
    scale = math.sqrt(float(schedule.posterior_variances[1]))
    decoder = -discretized_gaussian_log_likelihood(
        images, estimate_x0(x1, 1), scale).sum(-1)
    return NegativeElbo(prior=prior, diffusion=terms, decoder=decoder,
                        steps=torch.cat(per_step, dim=1))


def dequantized_gaussian_nats(
    train_images: torch.Tensor, test_images: torch.Tensor
) -> torch.Tensor:
    r"""An upper bound on :math:`-\log P(x)` (nats per test image) for a Gaussian
    fitted to uniformly dequantized training images.

    With :math:`u` uniform on :math:`[-w/2, w/2]^d` (:math:`w = 1/8`, one grey level),
    the maximum-likelihood Gaussian of :math:`x + u` has the training mean :math:`m`
    and covariance :math:`S = \Sigma + (w^2/12) I`, and
    :math:`\mathbb E_u[\log\mathcal N(x+u; m, S)] = \log\mathcal N(x; m, S) -
    \tfrac{w^2}{24}\operatorname{tr}S^{-1}`. The probability of the level :math:`x`
    is the mass of the bin, :math:`P(x) = w^d\,\mathbb E_u[p(x+u)] \ge
    w^d\exp\mathbb E_u[\log p(x+u)]` (Jensen); this returns minus the right side's
    logarithm.
    """
    train = _levels(train_images, "train_images")
    test = _levels(test_images, "test_images")
    d = train.shape[1]
    if test.shape[1] != d:
        raise ValueError("train_images and test_images must have the same width")
    mean = train.mean(0)
    centred = train - mean
    covariance = centred.T @ centred / len(train)
    covariance = covariance + BIN_WIDTH**2 / 12 * torch.eye(d, dtype=torch.float64)
    density = torch.distributions.MultivariateNormal(mean, covariance_matrix=covariance)
    trace = torch.linalg.inv(covariance).diagonal().sum()
    expected_log_density = density.log_prob(test) - BIN_WIDTH**2 / 24 * trace
    return -(expected_log_density + d * math.log(BIN_WIDTH))


def independent_pixels_nats(
    train_images: torch.Tensor, test_images: torch.Tensor, pseudocount: float = 1.0
) -> torch.Tensor:
    """-log P(x) per test image (nats) when each pixel is an independent categorical
    over the 17 levels, fitted to the training counts plus ``pseudocount`` per level
    (add-one smoothing by default, so no level has probability 0)."""
    train = _levels(train_images, "train_images")
    test = _levels(test_images, "test_images")
    pseudocount = as_real_scalar(pseudocount, "pseudocount")
    if pseudocount <= 0:
        raise ValueError(f"pseudocount must be > 0, got {pseudocount}")
    steps = (GREY_LEVELS - 1) // 2
    train_levels = torch.round((train + 1) * steps).long()
    test_levels = torch.round((test + 1) * steps).long()
    counts = torch.nn.functional.one_hot(train_levels, GREY_LEVELS).sum(0).double()
    log_p = torch.log(counts + pseudocount) - torch.log(
        (counts + pseudocount).sum(-1, keepdim=True))
    picked = log_p.gather(1, test_levels.T).T  # (n, d)
    return -picked.sum(-1)


# --------------------------------------------------------------------


class BinomialVAE(VAE):
    r"""Chapter 7's VAE with a Binomial decoder for ink levels 0..16.

    Images are given as ink / 16 in [0, 1] (:math:`(x + 1)/2` for the scaled digits);
    :math:`\log p(k\mid z) = \log\binom{16}{k} + k\log\pi + (16 - k)\log(1-\pi)` per
    pixel, with :math:`\pi = \mathrm{sigmoid}` of the decoder's logits.
    """

    trials = GREY_LEVELS - 1

    def log_likelihood(self, images: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        logits = self.decode_logits(z)
        k = images.expand_as(logits) * self.trials
        n = float(self.trials)
        log_choose = (math.lgamma(n + 1) - torch.lgamma(k + 1)
                      - torch.lgamma(n - k + 1))
        log_p = (log_choose + k * torch.nn.functional.logsigmoid(logits)
                 + (n - k) * torch.nn.functional.logsigmoid(-logits))
        return log_p.sum(-1)


def _ink(images: torch.Tensor, name: str) -> torch.Tensor:
    """The scaled digits (17 levels on [-1, 1]) as ink / 16 on [0, 1], float32."""
    return ((_levels(images, name) + 1.0) / 2.0).float()


def _vae_elbo(model: BinomialVAE, ink: torch.Tensor, samples: int,
              generator: torch.Generator) -> torch.Tensor:
    """Per-image ELBO (nats), estimated with ``samples`` reparameterized draws; the
    KL term to N(0, I) in closed form."""
    mu, log_sigma = model.encode(ink)
    noise = torch.randn((samples, *mu.shape), generator=generator)
    z = mu + log_sigma.exp() * noise  # the pathwise draw: the encoder's gradient
    kl = 0.5 * (mu.pow(2) + torch.exp(2 * log_sigma) - 1 - 2 * log_sigma).sum(-1)
    return model.log_likelihood(ink, z).mean(0) - kl


@torch.no_grad()
def binomial_vae_negative_elbo(
    model: BinomialVAE, images: torch.Tensor, *, samples: int = 16,
    generator: torch.Generator,
) -> torch.Tensor:
    """Minus the ELBO per image (nats) of 17-level ``images`` (scaled to [-1, 1])."""
    if not isinstance(model, BinomialVAE):
        raise TypeError(f"model must be a BinomialVAE, got {type(model).__name__}")
    samples = check_count(samples, "samples")
    check_generator(generator)
    return -_vae_elbo(model, _ink(images, "images"), samples, generator).double()


@dataclass(frozen=True)
class VAERun:
    """:func:`train_binomial_vae`'s result: the model after each epoch in
    ``epochs`` and the validation negative ELBO (nats per image) of each."""

    epochs: tuple[int, ...]
    models: tuple[BinomialVAE, ...]
    validation_nats: tuple[float, ...]


def train_binomial_vae(
    train_images: torch.Tensor,
    validation_images: torch.Tensor,
    *,
    epochs: int,
    checkpoints: tuple[int, ...],
    latent_dim: int = 8,
    hidden: int = 128,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    generator: torch.Generator,
) -> VAERun:
    """Train a :class:`BinomialVAE` with Adam and the pathwise (reparameterization)
    gradient, one draw of z per image; keep a copy at each epoch in ``checkpoints``
    with its validation negative ELBO (16 draws per image).

    Every random draw (the initial weights, the minibatch order, the noise) comes from
    ``generator``.
    """
    import copy

    train = _ink(train_images, "train_images")
    validation = _ink(validation_images, "validation_images")
    epochs = check_count(epochs, "epochs")
    checkpoints = tuple(sorted({check_count(c, "checkpoints") for c in checkpoints}))
    if not checkpoints or checkpoints[-1] > epochs:
        raise ValueError(f"checkpoints must lie in 1..{epochs}, got {checkpoints}")
    learning_rate = as_real_scalar(learning_rate, "learning_rate")
    if learning_rate <= 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    check_generator(generator)
    # Built from a throwaway generator: every parameter is drawn again just below.
    model = BinomialVAE(latent_dim, hidden, generator=torch.Generator())
    with torch.no_grad():  # PyTorch's default initialisation, from ``generator``
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                bound = 1.0 / math.sqrt(module.in_features)
                for parameter in (module.weight, module.bias):
                    parameter.uniform_(-bound, bound, generator=generator)
    # The package's Adam (tested against torch.optim.Adam): torch.optim imports
    # torch._dynamo at its first use, about a second of CPU in a chapter's run.
    parameters = list(model.parameters())
    optimizer = diffusion._StackedAdam(parameters, torch.tensor([learning_rate]))
    kept, nats = [], []
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(train), generator=generator)
        for rows in order.split(batch_size):
            loss = -_vae_elbo(model, train[rows], 1, generator).mean()
            for parameter in parameters:
                parameter.grad = None
            loss.backward()
            optimizer.step()
        if epoch in checkpoints:
            kept.append(copy.deepcopy(model).eval())
            with torch.no_grad():
                value = -_vae_elbo(model, validation, 16, generator).mean()
            nats.append(float(value))
    return VAERun(checkpoints, tuple(kept), tuple(nats))
