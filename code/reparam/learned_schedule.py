r"""A learned noise schedule: where the reparameterization trick acts in a diffusion
model (Kingma, Salimans, Poole and Ho 2021, *Variational Diffusion Models*).

In continuous time the forward process is
:math:`z_t = \alpha_t x + \sigma_t\varepsilon` with :math:`\alpha_t^2 =
\mathrm{sigmoid}(-\gamma(t))`, :math:`\sigma_t^2 = \mathrm{sigmoid}(\gamma(t))`, so the
signal-to-noise ratio is :math:`\mathrm{SNR}(t) = \alpha_t^2/\sigma_t^2 =
e^{-\gamma(t)}`, and the diffusion part of the negative ELBO is

.. math::

    L_\infty = \tfrac12\,\mathbb E_{x,\ \varepsilon,\ t\sim U(0,1)}\bigl[\gamma'(t)\,
    e^{-\gamma(t)}\,\lVert x - \hat x(z_t;\ \mathrm{SNR}(t))\rVert^2\bigr].

When the denoiser sees t only through :math:`\mathrm{SNR}(t)`, the change of variables
:math:`v = \mathrm{SNR}(t)` shows that :math:`L_\infty` depends on the schedule only
through its end points, not on its shape. The shape does change the *variance* of the
one-sample estimate of :math:`L_\infty`, and Kingma et al. learn it to make that
variance small. Its parameters :math:`\eta` enter the estimate through
:math:`z_t = \alpha_t(\eta)\,x + \sigma_t(\eta)\,\varepsilon` with :math:`x`,
:math:`\varepsilon` and :math:`t` drawn from fixed distributions, the pathwise
gradient of the reparameterization trick, and also directly, through the integrand's
weight :math:`\gamma'(t)e^{-\gamma(t)}` and the denoiser's input
:math:`\mathrm{SNR}(t)` (:func:`diffusion_loss` can hold :math:`z_t` fixed to
separate the two).

Here :math:`\gamma_\eta` is piecewise linear with fixed end points
(:class:`PiecewiseLinearSchedule`) and the denoiser is the best linear one
(:class:`reparam.diffusion.LinearDenoiser`), for which :math:`L_\infty` has the closed
form :func:`exact_diffusion_loss`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import diffusion
from ._validation import (
    as_real_scalar,
    check_count,
    check_generator,
    check_images,
    check_tensor,
)

__all__ = [
    "PiecewiseLinearSchedule",
    "diffusion_loss",
    "exact_diffusion_loss",
    "ScheduleFit",
    "fit_schedule",
]


class PiecewiseLinearSchedule(nn.Module):
    r""":math:`\gamma_\eta(t)` on [0, 1]: increasing and linear on each of ``bins``
    equal pieces, from :math:`\gamma(0) = \gamma_\min` to :math:`\gamma(1) =
    \gamma_\max` (fixed).

    The learnable :math:`\eta` (``logits``) set the share of
    :math:`\gamma_\max - \gamma_\min` that each piece climbs,
    :math:`\mathrm{softmax}(\eta)`, so every :math:`\eta` gives an increasing
    schedule with the same end points. float64.
    """

    def __init__(self, knots: torch.Tensor):
        super().__init__()
        if not check_tensor(knots, "knots").dtype.is_floating_point:
            raise TypeError(f"knots must be floating point, got dtype {knots.dtype}")
        if knots.ndim != 1 or len(knots) < 2:
            raise ValueError("knots must be a 1-D tensor of at least 2 values of gamma")
        knots = knots.detach().double()
        if not bool(torch.isfinite(knots).all()) or not bool((knots.diff() > 0).all()):
            raise ValueError("knots must be finite and strictly increasing")
        self.register_buffer("gamma_min", knots[0].clone())
        self.register_buffer("gamma_max", knots[-1].clone())
        self.logits = nn.Parameter(torch.log(knots.diff()))

    @classmethod
    def from_schedule(cls, schedule: diffusion.Schedule, bins: int):
        r"""The discrete schedule's :math:`\gamma = \log((1-\bar\alpha_s)/\bar\alpha_s)`
        at the steps :math:`s = \max(1, kT/\text{bins})`, k = 0..bins, as knots."""
        bins = check_count(bins, "bins")
        schedule = diffusion._check_schedule(schedule)
        if schedule.T % bins:
            raise ValueError(f"bins must divide T = {schedule.T}, got {bins}")
        steps = torch.clamp(torch.arange(bins + 1) * (schedule.T // bins), min=1)
        alpha_bars = schedule.alpha_bars[steps - 1]
        return cls(torch.log((1 - alpha_bars) / alpha_bars))

    def increments(self) -> torch.Tensor:
        """How much gamma climbs on each piece (they sum to gamma_max - gamma_min)."""
        return torch.softmax(self.logits, 0) * (self.gamma_max - self.gamma_min)

    def forward(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r""":math:`(\gamma(t), \gamma'(t))` for times ``t`` in [0, 1]."""
        increments = self.increments()
        bins = len(increments)
        position = t.double() * bins
        piece = position.floor().clamp(0, bins - 1).long()
        start = torch.cat([increments.new_zeros(1), increments.cumsum(0)])[piece]
        gamma = self.gamma_min + start + (position - piece) * increments[piece]
        return gamma, increments[piece] * bins


def _check_schedule_and_denoiser(schedule, denoiser) -> None:
    if not isinstance(schedule, PiecewiseLinearSchedule):
        raise TypeError("schedule must be a PiecewiseLinearSchedule, got "
                        f"{type(schedule).__name__}")
    _check_denoiser(denoiser)


def _check_denoiser(denoiser) -> None:
    if not isinstance(denoiser, diffusion.LinearDenoiser):
        raise TypeError("denoiser must be a diffusion.LinearDenoiser, got "
                        f"{type(denoiser).__name__}")


def diffusion_loss(
    schedule: PiecewiseLinearSchedule,
    denoiser: diffusion.LinearDenoiser,
    x: torch.Tensor,
    noise: torch.Tensor,
    t: torch.Tensor,
    *,
    through_z: bool = True,
) -> torch.Tensor:
    r"""One-sample estimates :math:`\tfrac12\gamma'(t)e^{-\gamma(t)}\lVert x -
    \hat x(z_t; \mathrm{SNR}(t))\rVert^2`, one per row, for the draws ``x`` (n, d),
    ``noise`` (n, d) and ``t`` (n,).

    The schedule's parameters enter three times: through
    :math:`z_t = \alpha_t x + \sigma_t\varepsilon` (the reparameterized sample),
    through the weight :math:`\gamma'(t)e^{-\gamma(t)}` and through the denoiser's
    input :math:`\mathrm{SNR}(t)`. Autograd differentiates through all three; with
    ``through_z=False`` the coefficients of :math:`z_t` are detached, so a gradient
    holds only the last two parts (the value is the same).
    """
    _check_schedule_and_denoiser(schedule, denoiser)
    x = check_images(x, "x", None)
    if check_images(noise, "noise", None).shape != x.shape:
        raise ValueError(f"noise must have x's shape {tuple(x.shape)}")
    if check_tensor(t, "t").shape != (len(x),) or not bool(((t >= 0) & (t <= 1)).all()):
        raise ValueError(f"t must hold {len(x)} times in [0, 1], one per row of x")
    if not isinstance(through_z, bool):
        raise TypeError(f"through_z must be a bool, got {type(through_z).__name__}")
    gamma, slope = schedule(t)
    alpha = torch.sigmoid(-gamma).sqrt()[:, None]
    sigma = torch.sigmoid(gamma).sqrt()[:, None]
    if not through_z:
        alpha, sigma = alpha.detach(), sigma.detach()
    z = alpha * x.double() + sigma * noise.double()
    snr = torch.exp(-gamma)
    estimate = denoiser(z, snr[:, None])
    return 0.5 * slope * snr * (x.double() - estimate).pow(2).sum(-1)


def exact_diffusion_loss(
    denoiser: diffusion.LinearDenoiser, gamma_min: float, gamma_max: float
) -> float:
    r""":math:`L_\infty` for the linear denoiser on its own images:
    :math:`\tfrac12\sum_i\log\frac{1+\mathrm{SNR}_\max\lambda_i}{1+
    \mathrm{SNR}_\min\lambda_i}`, whatever the schedule's shape.

    From :math:`L_\infty = \tfrac12\int_{\mathrm{SNR}_\min}^{\mathrm{SNR}_\max}
    \mathbb E\lVert x-\hat x\rVert^2\,dv` and :meth:`LinearDenoiser.expected_error`
    :math:`=\sum_i\lambda_i/(1+v\lambda_i)`.
    """
    _check_denoiser(denoiser)
    gamma_min = as_real_scalar(gamma_min, "gamma_min")
    gamma_max = as_real_scalar(gamma_max, "gamma_max")
    if not gamma_min < gamma_max:
        raise ValueError("gamma_min must be below gamma_max")
    high, low = torch.exp(torch.tensor(-gamma_min)), torch.exp(torch.tensor(-gamma_max))
    values = denoiser.eigenvalues
    return float(0.5 * torch.log((1 + high * values) / (1 + low * values)).sum())


@dataclass(frozen=True)
class ScheduleFit:
    """The mean of the squared one-sample loss at each step of :func:`fit_schedule`."""

    mean_squares: tuple[float, ...]


def fit_schedule(
    schedule: PiecewiseLinearSchedule,
    denoiser: diffusion.LinearDenoiser,
    images: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 1024,
    learning_rate: float = 0.05,
    generator: torch.Generator,
) -> ScheduleFit:
    r"""Adam on the schedule's :math:`\eta` to minimise the variance of
    :func:`diffusion_loss`.

    The mean does not depend on :math:`\eta`, so the variance's gradient is that of
    the mean square, estimated on each step's fresh draws of images, noise and t (from
    ``generator``) by differentiating through :math:`z_t`. Changes ``schedule`` in
    place.
    """
    _check_schedule_and_denoiser(schedule, denoiser)
    images = check_images(images, "images", None)
    steps = check_count(steps, "steps")
    batch_size = check_count(batch_size, "batch_size")
    learning_rate = as_real_scalar(learning_rate, "learning_rate")
    if learning_rate <= 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    check_generator(generator)
    # The package's Adam (tested against torch.optim.Adam): torch.optim imports
    # torch._dynamo at its first use, about a second of CPU in a chapter's run.
    parameters = list(schedule.parameters())
    optimizer = diffusion._StackedAdam(parameters, torch.tensor([learning_rate]))
    history = []
    for _ in range(steps):
        rows = torch.randint(0, len(images), (batch_size,), generator=generator)
        noise = torch.randn((batch_size, images.shape[1]), generator=generator,
                            dtype=torch.float64)
        t = torch.rand(batch_size, generator=generator, dtype=torch.float64)
        mean_square = diffusion_loss(schedule, denoiser, images[rows], noise,
                                     t).pow(2).mean()
        for parameter in parameters:
            parameter.grad = None
        mean_square.backward()
        optimizer.step()
        history.append(float(mean_square.detach()))
    return ScheduleFit(tuple(history))
