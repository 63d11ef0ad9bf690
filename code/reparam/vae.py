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
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ._validation import LEAVE_ONE_OUT, check_count
from .data import IMAGE_PIXELS, IMAGE_SIDE, DigitsData, default_device
from .estimators import subtract_baseline

__all__ = [
    "check_images",
    "VAE",
    "elbo_terms",
    "surrogate_loss",
    "TrainingHistory",
    "train",
    "evaluate_elbo",
    "encoder_gradient_samples",
    "importance_sampled_log_likelihood",
    "MonteCarloEstimate",
    "elbo_estimate",
    "importance_weighted_estimate",
]

ESTIMATORS = ("pathwise", "score")


def check_images(images, pixels: int = IMAGE_PIXELS) -> torch.Tensor:
    """Validate a batch of images: shape (n, pixels) (or (n, 8, 8) for 64), finite,
    values in [0, 1]."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if not images.dtype.is_floating_point:
        raise TypeError(f"images must be floating point, got dtype {images.dtype}")
    if (
        pixels == IMAGE_PIXELS
        and images.ndim == 3
        and images.shape[1:] == (IMAGE_SIDE, IMAGE_SIDE)
    ):
        images = images.reshape(images.shape[0], IMAGE_PIXELS)
    if images.ndim != 2 or images.shape[1] != pixels or images.shape[0] == 0:
        raise ValueError(
            f"images must have shape (n, {pixels}) "
            f"(or (n, {IMAGE_SIDE}, {IMAGE_SIDE}) for 64 pixels) "
            f"with n >= 1, got {tuple(images.shape)}"
        )
    if not bool(torch.isfinite(images).all()):
        raise ValueError("images contain NaN or infinite pixels")
    if bool((images < 0).any()) or bool((images > 1).any()):
        raise ValueError("image pixels must lie in [0, 1] (Bernoulli likelihood)")
    return images


class VAE(nn.Module):
    """MLP encoder q(z|x) = N(mu(x), diag sigma(x)^2) and Bernoulli MLP decoder
    p(x|z)."""

    def __init__(
        self, latent_dim: int = 8, hidden: int = 128, pixels: int = IMAGE_PIXELS
    ):
        super().__init__()
        for name, value in (
            ("latent_dim", latent_dim),
            ("hidden", hidden),
            ("pixels", pixels),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.latent_dim = latent_dim
        self.pixels = pixels
        self.encoder = nn.Sequential(
            nn.Linear(pixels, hidden), nn.Tanh(), nn.Linear(hidden, 2 * latent_dim)
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.Tanh(), nn.Linear(hidden, pixels)
        )

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log_sigma) of q(z|x), each of shape (n, latent_dim)."""
        mu, log_sigma = self.encoder(images).chunk(2, dim=-1)
        return mu, log_sigma.clamp(-8.0, 4.0)  # keeps sigma away from 0 and overflow

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits of p(x|z), shape (..., pixels)."""
        return self.decoder(z)

    def log_likelihood(self, images: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) summed over pixels; z may carry leading sample dimensions."""
        logits = self.decode_logits(z)
        return -nn.functional.binary_cross_entropy_with_logits(
            logits, images.expand_as(logits), reduction="none"
        ).sum(-1)


def kl_to_standard_normal(mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag sigma^2) || N(0, I)) per row, in closed form."""
    return 0.5 * (mu.pow(2) + torch.exp(2 * log_sigma) - 1.0 - 2 * log_sigma).sum(-1)


def _log_q(z: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    eps = (z - mu) / torch.exp(log_sigma)
    return (-0.5 * eps.pow(2) - log_sigma - 0.5 * math.log(2 * math.pi)).sum(-1)


def _draw_latents(
    model: VAE, images: torch.Tensor, samples: int, generator: torch.Generator | None
):
    """(images, z, mu, log_sigma): validated images and z = mu + sigma * eps.

    ``z`` has shape (samples, n, latent_dim); eps is drawn from ``generator`` in one
    call.
    """
    images = check_images(images, model.pixels)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be an integer >= 1, got {samples!r}")
    mu, log_sigma = model.encode(images)
    eps = torch.randn(
        (samples, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device
    )
    return images, mu + torch.exp(log_sigma) * eps, mu, log_sigma


def elbo_terms(
    model: VAE,
    images: torch.Tensor,
    samples: int = 1,
    generator: torch.Generator | None = None,
):
    """Reparameterized draws for a batch: returns (z, log p(x|z), kl, mu, log_sigma).

    ``z`` has shape (samples, n, latent_dim); z = mu + sigma * eps keeps the graph to
    the encoder.
    """
    images, z, mu, log_sigma = _draw_latents(model, images, samples, generator)
    return (
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
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""A loss whose gradient is minus the chosen ELBO gradient estimate; also returns
    the ELBO.

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
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if estimator == "score" and (
        isinstance(samples, int) and not isinstance(samples, bool) and samples == 1
    ):
        raise ValueError(
            "the score-function estimator with a leave-one-out baseline "
            "needs samples >= 2"
        )
    images, z, mu, log_sigma = _draw_latents(model, images, samples, generator)
    kl = kl_to_standard_normal(mu, log_sigma)
    if estimator == "pathwise":
        elbo = model.log_likelihood(images, z).mean(0) - kl  # per image
        return -elbo.mean(), elbo.detach()
    # No path from the encoder to z: only log q carries its gradient.
    z_fixed = z.detach()
    # One decoder pass: its value is the same log p(x|z) the pathwise loss uses.
    log_likelihood = model.log_likelihood(images, z_fixed)
    reward = log_likelihood.detach()
    advantage = subtract_baseline(reward, LEAVE_ONE_OUT)  # over the S draws (dim 0)
    score_term = (advantage * _log_q(z_fixed, mu, log_sigma)).mean(0)
    elbo = log_likelihood.mean(0) - kl
    # Make the value equal the ELBO estimate without changing any gradient.
    surrogate = elbo + score_term - score_term.detach()
    return -surrogate.mean(), elbo.detach()


@torch.no_grad()
def evaluate_elbo(
    model: VAE, images: torch.Tensor, samples: int = 16, seed: int = 0
) -> float:
    """Mean ELBO per image (nats), estimated with ``samples`` reparameterized draws
    each."""
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(
        seed
    )
    _, log_likelihood, kl, _, _ = elbo_terms(model, images, samples, generator)
    return float((log_likelihood.mean(0) - kl).mean())


@dataclass
class TrainingHistory:
    """Per-epoch train and test ELBO (nats per image) and the wall time of training."""

    estimator: str
    epochs: list[int] = field(default_factory=list)
    train_elbo: list[float] = field(default_factory=list)
    test_elbo: list[float] = field(default_factory=list)
    seconds: float = 0.0


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
    seed: int = 0,
    evaluate_every: int = 5,
    device: torch.device | None = None,
    progress: Callable[[str], None] | None = print,
) -> tuple[VAE, TrainingHistory]:
    """Train a VAE with Adam; the encoder gradient comes from ``estimator``.

    Seeded: the same arguments give the same model on the same device. ``progress``
    receives a line four times per run (pass ``None`` for silence).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    device = device or default_device()
    torch.manual_seed(seed)  # parameter initialisation
    model = VAE(latent_dim, hidden).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    train_images = check_images(data.train_images).to(device)
    test_images = check_images(data.test_images).to(device)
    generator = torch.Generator(device=device).manual_seed(seed + 1)
    order_generator = torch.Generator().manual_seed(seed + 2)
    history = TrainingHistory(estimator)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(train_images), generator=order_generator).to(device)
        for batch in order.split(batch_size):
            loss, _ = surrogate_loss(
                model, train_images[batch], estimator, samples, generator
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if epoch % evaluate_every == 0 or epoch == epochs:
            history.epochs.append(epoch)
            history.train_elbo.append(evaluate_elbo(model, train_images))
            history.test_elbo.append(evaluate_elbo(model, test_images))
        if progress is not None and epoch % max(1, epochs // 4) == 0:
            progress(
                f"[{estimator}] epoch {epoch}/{epochs}: "
                f"test ELBO {evaluate_elbo(model, test_images):.2f} nats"
            )
    history.seconds = time.perf_counter() - start
    return model, history


def encoder_gradient_samples(
    model: VAE,
    images: torch.Tensor,
    estimator: str,
    repeats: int,
    samples: int = 4,
    seed: int = 0,
) -> torch.Tensor:
    """``repeats`` independent estimates of the encoder gradient on one fixed batch.

    Returns a (repeats, n_encoder_parameters) tensor; its per-coordinate variance is the
    gradient variance compared in the chapter.
    """
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(
        seed
    )
    parameters = list(model.encoder.parameters())
    rows = []
    for _ in range(repeats):
        loss, _ = surrogate_loss(model, images, estimator, samples, generator)
        gradients = torch.autograd.grad(loss, parameters)
        rows.append(torch.cat([g.reshape(-1) for g in gradients]))
    return torch.stack(rows)


@torch.no_grad()
def importance_sampled_log_likelihood(
    model: VAE, images: torch.Tensor, samples: int = 256, seed: int = 0
) -> float:
    r"""Mean over images of :math:`\log\frac1K\sum_k p(x, z_k)/q(z_k\mid x)`,
    :math:`z_k\sim q`.

    A tighter lower bound on :math:`\log p(x)` than the ELBO (Burda et al.'s
    importance-weighted bound), approaching it as ``samples`` grows; used to show the
    size of the ELBO's gap.
    """
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(
        seed
    )
    z, log_likelihood, _, mu, log_sigma = elbo_terms(model, images, samples, generator)
    log_prior = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_weights = log_likelihood + log_prior - _log_q(z, mu, log_sigma)
    return float((torch.logsumexp(log_weights, 0) - math.log(samples)).mean())


@dataclass(frozen=True)
class MonteCarloEstimate:
    r"""A Monte Carlo estimate of a mean over fixed images, with its standard error.

    ``standard_error`` measures only the noise of the random draws (the images are held
    fixed): :math:`\sqrt{\sum_i \hat v_i}/N` for N images whose per-image estimates have
    estimated variances :math:`\hat v_i`.
    """

    value: float
    standard_error: float
    draws_per_image: int


def _summarize_replicates(per_image: torch.Tensor, draws: int) -> MonteCarloEstimate:
    """``per_image`` has shape (replicates, n): independent estimates of each image's
    value."""
    replicates, n = per_image.shape
    variance_of_mean = per_image.var(0) / replicates  # per image, of its replicate mean
    return MonteCarloEstimate(
        value=float(per_image.mean()),
        standard_error=float(variance_of_mean.sum().sqrt() / n),
        draws_per_image=draws,
    )


@torch.no_grad()
def elbo_estimate(
    model: VAE, images: torch.Tensor, samples: int = 64, seed: int = 0
) -> MonteCarloEstimate:
    r"""The mean ELBO per image with its Monte Carlo standard error.

    Each image gets ``samples`` draws :math:`\log p(x\mid z_s) - \mathrm{KL}` (KL
    exact); the value equals :func:`evaluate_elbo` with the same ``samples`` and
    ``seed``.
    """
    check_count(samples, "samples", 2)
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(
        seed
    )
    _, log_likelihood, kl, _, _ = elbo_terms(model, images, samples, generator)
    return _summarize_replicates(log_likelihood - kl, samples)


@torch.no_grad()
def importance_weighted_estimate(
    model: VAE,
    images: torch.Tensor,
    samples: int = 64,
    replicates: int = 4,
    seed: int = 0,
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
    check_count(samples, "samples", 1)
    check_count(replicates, "replicates", 2)
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(
        seed
    )
    # All replicates in one draw: row r * samples + k is draw k of replicate r.
    z, log_likelihood, _, mu, log_sigma = elbo_terms(
        model, images, samples * replicates, generator
    )
    log_prior = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_weights = log_likelihood + log_prior - _log_q(z, mu, log_sigma)
    per_replicate = log_weights.reshape(replicates, samples, -1)
    return _summarize_replicates(
        torch.logsumexp(per_replicate, 1) - math.log(samples), samples
    )
