r"""A small denoising diffusion probabilistic model (DDPM) for the 8x8 digits.

Forward process with fixed variances :math:`\beta_t`, as in Ho, Jain & Abbeel
(2020), so it has no learnable parameters (Sohl-Dickstein et al. 2015 learned the
:math:`\beta_t` of their Gaussian diffusion; here they are constants):

.. math::

    q(x_t\mid x_{t-1}) = \mathcal N\bigl(\sqrt{1-\beta_t}\,x_{t-1},\ \beta_t
    I\bigr),\qquad
    q(x_t\mid x_0) = \mathcal N\bigl(\sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t)
    I\bigr),

with :math:`\alpha_t = 1-\beta_t` and :math:`\bar\alpha_t = \prod_{s\le t}\alpha_s`.
The second form is a sampling identity,
:math:`x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon`
(:func:`q_sample`): any :math:`x_t` in one draw. The posterior of one step back is

.. math::

    q(x_{t-1}\mid x_t, x_0) = \mathcal N(\tilde\mu_t, \tilde\beta_t I),\quad
    \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\beta_t}{1-\bar\alpha_t}x_0
                + \frac{\sqrt{\alpha_t}(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}x_t,\quad
    \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\beta_t

(:func:`q_posterior`), and in terms of the noise,
:math:`\tilde\mu_t = (x_t - \beta_t\varepsilon/\sqrt{1-\bar\alpha_t})/\sqrt{\alpha_t}`
(:func:`posterior_mean_from_noise`). The minimiser of the noise regression is
:math:`\mathbb E[\varepsilon\mid x_t] = -\sqrt{1-\bar\alpha_t}\,\nabla\log q_t(x_t)`
(:func:`score_from_noise`).

The reverse model :math:`p_\theta(x_{t-1}\mid x_t) = \mathcal N(\tilde\mu_t(\hat x_0,
x_t), \tilde\beta_t I)` uses a network whose output is the noise (``"epsilon"``), the
clean image (``"x0"``) or the velocity
:math:`v = \sqrt{\bar\alpha_t}\,\varepsilon - \sqrt{1-\bar\alpha_t}\,x_0` (``"v"``,
Salimans & Ho 2022); each gives an estimate :math:`\hat x_0` (:func:`predicted_x0`).
:func:`train` fits several networks side by side (:class:`DenoiserEnsemble`: one
batched matrix product per layer for all of them), each with its own initialisation,
minibatches, steps and noise, and keeps exponential moving averages of their weights at
chosen steps; :func:`sample` runs ancestral sampling. The yardsticks of the chapter
live here too: the best linear denoiser (:class:`LinearDenoiser`), a Gaussian fitted
to the training images (:func:`gaussian_baseline`), the squared maximum mean
discrepancy (:func:`mmd_squared`) and a memorisation statistic
(:func:`memorisation_gap`). Likelihoods are in :mod:`reparam.likelihood`.

Time steps ``t`` are 1-based, as in the papers: ``schedule.alpha_bars[t - 1]`` is
:math:`\bar\alpha_t`, and :math:`\bar\alpha_0 = 1`. Randomness enters only through
explicit generators (``torch.Generator`` or ``numpy.random.Generator``).
"""

from __future__ import annotations

import copy
import math
import numbers
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ._validation import (
    as_real_scalar,
    check_choice,
    check_count,
    check_generator,
    check_images,
    check_numpy_generator,
    check_tensor,
)
from .data import GREY_LEVELS, IMAGE_PIXELS

__all__ = [
    "Schedule",
    "linear_schedule",
    "book_schedule",
    "BOOK_T",
    "BOOK_BETAS",
    "q_sample",
    "q_posterior",
    "posterior_mean_from_noise",
    "score_from_noise",
    "elbo_weights",
    "timestep_embedding",
    "PREDICTIONS",
    "predicted_x0",
    "prediction_target",
    "DenoiserEnsemble",
    "MemberSpec",
    "TrainingRun",
    "train",
    "objective_losses",
    "sample",
    "sample_from",
    "x0_errors",
    "LinearDenoiser",
    "gaussian_baseline",
    "median_bandwidth",
    "mmd_squared",
    "mmd_permutation_null",
    "nearest_distances",
    "quantize",
    "memorisation_gap",
]


# --------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """A variance schedule: ``betas[t-1]`` is :math:`\\beta_t`, for t = 1..T
    (float64)."""

    betas: torch.Tensor

    def __post_init__(self):
        betas = check_tensor(self.betas, "betas")
        if not betas.dtype.is_floating_point:
            raise TypeError(f"betas must be floating point, got dtype {betas.dtype}")
        if betas.ndim != 1 or len(betas) == 0:
            raise ValueError(f"betas must be one-dimensional and non-empty, got shape "
                             f"{tuple(betas.shape)}")
        if not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError("every beta must lie in the open interval (0, 1)")

    @property
    def T(self) -> int:  # noqa: N802 - the papers' name
        return int(self.betas.shape[0])

    @property
    def alphas(self) -> torch.Tensor:
        r""":math:`\alpha_t = 1 - \beta_t`."""
        return 1.0 - self.betas

    @property
    def alpha_bars(self) -> torch.Tensor:
        r""":math:`\bar\alpha_t = \prod_{s\le t}(1-\beta_s)`, shape (T,)."""
        return torch.cumprod(self.alphas, 0)

    @property
    def alpha_bars_prev(self) -> torch.Tensor:
        r""":math:`\bar\alpha_{t-1}` for t = 1..T, with :math:`\bar\alpha_0 = 1`."""
        return torch.cat([self.betas.new_ones(1), self.alpha_bars[:-1]])

    @property
    def posterior_variances(self) -> torch.Tensor:
        r""":math:`\tilde\beta_t = \beta_t(1-\bar\alpha_{t-1})/(1-\bar\alpha_t)`; 0 at
        t = 1."""
        return self.betas * (1.0 - self.alpha_bars_prev) / (1.0 - self.alpha_bars)


BOOK_T = 200
BOOK_BETAS = (5e-4, 0.1)  # Ho et al.'s 1e-4..0.02 for T = 1000, scaled by 1000 / 200


def book_schedule() -> Schedule:
    """The schedule of the book's chapter and explorer: T = 200, betas 5e-4 to 0.1."""
    return linear_schedule(BOOK_T, *BOOK_BETAS)


def linear_schedule(
    T: int, beta_start: float = 1e-4, beta_end: float = 0.02
) -> Schedule:
    r"""Betas running linearly from ``beta_start`` (t = 1) to ``beta_end`` (t = T).

    The defaults are Ho et al.'s values for T = 1000. For fewer steps, scale both by
    1000 / T to keep a similar :math:`\bar\alpha_T` (the chapter uses T = 200 with
    5e-4 and 0.1). With T = 1 the single beta is ``beta_start``.
    """
    T = check_count(T, "T")
    for name, value in (("beta_start", beta_start), ("beta_end", beta_end)):
        value = as_real_scalar(value, name)
        if not 0.0 < value < 1.0:
            raise ValueError(
                f"{name} must lie in the open interval (0, 1), got {value}"
            )
    betas = torch.linspace(
        float(beta_start), float(beta_end), int(T), dtype=torch.float64
    )
    return Schedule(betas)


# --------------------------------------------------------------------


def _check_schedule(schedule) -> Schedule:
    if not isinstance(schedule, Schedule):
        raise TypeError(
            f"schedule must be a Schedule (see linear_schedule), got "
            f"{type(schedule).__name__}"
        )
    return schedule


def _check_t(t, schedule: Schedule, batch: int, low: int = 1):
    """An int in low..T, or an integer tensor of shape (batch,) with entries in
    low..T."""
    T = schedule.T
    if isinstance(t, torch.Tensor):
        if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
            raise TypeError(f"t must be an integer tensor, got dtype {t.dtype}")
        if t.ndim == 0:
            t = int(t)
        elif t.shape != (batch,):
            raise ValueError(
                f"t must be an int or have shape ({batch},) (one t per row), "
                f"got shape {tuple(t.shape)}"
            )
        elif bool((t < low).any()) or bool((t > T).any()):
            raise ValueError(
                f"every t must lie in {low}..{T}, got values from "
                f"{int(t.min())} to {int(t.max())}"
            )
        else:
            return t
    if isinstance(t, bool) or not isinstance(t, numbers.Integral):
        raise TypeError(
            f"t must be an int or an integer tensor, got {type(t).__name__}"
        )
    if not low <= t <= T:
        raise ValueError(f"t must lie in {low}..{T}, got {t}")
    return int(t)


def _at(values: torch.Tensor, t, like: torch.Tensor) -> torch.Tensor:
    """``values[t-1]`` as a column (one per row of ``like``) or a scalar, in like's
    dtype."""
    if isinstance(t, int):
        return values[t - 1].to(dtype=like.dtype, device=like.device)
    picked = values.to(like.device)[t.to(like.device) - 1]
    return picked.to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


def q_sample(
    x0: torch.Tensor, noise: torch.Tensor, t, schedule: Schedule
) -> torch.Tensor:
    r""":math:`x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon` from
    ``x0`` and ``noise`` (:math:`\varepsilon`); with standard-normal noise, a draw of
    :math:`q(x_t\mid x_0)`. It draws nothing itself.

    ``x0`` has shape (batch, d) (any d); ``t`` is an int in 1..T or an integer tensor of
    shape (batch,); ``noise`` (the :math:`\varepsilon`) has x0's shape.
    """
    schedule = _check_schedule(schedule)
    x0 = check_images(x0, "x0", None)
    if check_images(noise, "noise", None).shape != x0.shape:
        raise ValueError(
            f"noise must have x0's shape {tuple(x0.shape)}, got {tuple(noise.shape)}"
        )
    t = _check_t(t, schedule, x0.shape[0])
    alpha_bar = _at(schedule.alpha_bars, t, x0)
    return alpha_bar.sqrt() * x0 + (1.0 - alpha_bar).sqrt() * noise


def q_posterior(
    x0: torch.Tensor, xt: torch.Tensor, t, schedule: Schedule
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""(mean, variance) of :math:`q(x_{t-1}\mid x_t, x_0)`, for t in 2..T.

    Both are returned with x0's shape (the variance :math:`\tilde\beta_t` is the same
    for every pixel of a row).
    """
    schedule = _check_schedule(schedule)
    x0 = check_images(x0, "x0", None)
    xt = check_images(xt, "xt", None)
    if xt.shape != x0.shape:
        raise ValueError(
            f"xt must have x0's shape {tuple(x0.shape)}, got {tuple(xt.shape)}"
        )
    t = _check_t(t, schedule, x0.shape[0], low=2)
    beta = _at(schedule.betas, t, x0)
    alpha_bar = _at(schedule.alpha_bars, t, x0)
    alpha_bar_prev = _at(schedule.alpha_bars_prev, t, x0)
    mean = (alpha_bar_prev.sqrt() * beta / (1 - alpha_bar)) * x0 + (
        (1 - beta).sqrt() * (1 - alpha_bar_prev) / (1 - alpha_bar)
    ) * xt
    variance = _at(schedule.posterior_variances, t, x0)
    return mean, variance.expand_as(x0).clone()


def posterior_mean_from_noise(
    xt: torch.Tensor, noise: torch.Tensor, t, schedule: Schedule
) -> torch.Tensor:
    r""":math:`\tilde\mu_t = (x_t -
    \beta_t\varepsilon/\sqrt{1-\bar\alpha_t})/\sqrt{\alpha_t}`.

    With the true noise this equals :func:`q_posterior`'s mean; with a prediction
    :math:`\varepsilon_\theta` it is the reverse model's mean. t in 1..T.
    """
    schedule = _check_schedule(schedule)
    xt = check_images(xt, "xt", None)
    if check_images(noise, "noise", None).shape != xt.shape:
        raise ValueError(f"noise must be a tensor of xt's shape {tuple(xt.shape)}")
    t = _check_t(t, schedule, xt.shape[0])
    beta = _at(schedule.betas, t, xt)
    alpha_bar = _at(schedule.alpha_bars, t, xt)
    return (xt - beta / (1 - alpha_bar).sqrt() * noise) / (1 - beta).sqrt()


def score_from_noise(
    noise_prediction: torch.Tensor, t, schedule: Schedule
) -> torch.Tensor:
    r"""The score :math:`\nabla_{x_t}\log q_t(x_t)` implied by a noise prediction:
    :math:`-\hat\varepsilon/\sqrt{1-\bar\alpha_t}`.

    Exact for the minimiser of the noise regression,
    :math:`\hat\varepsilon = \mathbb E[\varepsilon\mid x_t]
    = -\sqrt{1-\bar\alpha_t}\,\nabla\log q_t(x_t)` (Vincent 2011; Song & Ermon 2019).
    ``t`` follows :func:`q_sample`: an int in 1..T or an integer tensor of shape
    (batch,).
    """
    schedule = _check_schedule(schedule)
    noise_prediction = check_images(noise_prediction, "noise_prediction", None)
    t = _check_t(t, schedule, noise_prediction.shape[0])
    alpha_bar = _at(schedule.alpha_bars, t, noise_prediction)
    return -noise_prediction / (1.0 - alpha_bar).sqrt()


def elbo_weights(schedule: Schedule) -> torch.Tensor:
    r"""The weights :math:`c_t` in :math:`L_{t-1} = \mathbb E_{x_0,\varepsilon}\bigl[
    c_t\lVert\varepsilon-\varepsilon_\theta\rVert^2\bigr] + C_t`, for
    :math:`\sigma_t^2 = \tilde\beta_t`.

    :math:`L_{t-1}` is a term of the negative ELBO (Ho et al.'s eq. 8 and 12). With a
    reverse variance :math:`\sigma_t^2`,
    :math:`c_t = \beta_t^2 / (2\sigma_t^2\alpha_t(1-\bar\alpha_t))` and
    :math:`C_t = \tfrac d2(\tilde\beta_t/\sigma_t^2 - 1 - \log(\tilde\beta_t/
    \sigma_t^2))`, which vanishes exactly when :math:`\sigma_t^2 = \tilde\beta_t`; then
    :math:`c_t = \beta_t / (2\alpha_t(1-\bar\alpha_{t-1}))`. Returned for t = 2..T
    (shape (T-1,), float64); at t = 1 the posterior variance is 0 and the term is a
    decoder likelihood instead.
    """
    schedule = _check_schedule(schedule)
    if schedule.T < 2:
        raise ValueError(
            "elbo_weights needs T >= 2 (the terms L_{t-1} exist for t = 2..T)"
        )
    betas, alphas = schedule.betas[1:], schedule.alphas[1:]
    alpha_bars = schedule.alpha_bars[1:]
    sigma2 = schedule.posterior_variances[1:]
    return betas**2 / (2 * sigma2 * alphas * (1 - alpha_bars))


# --------------------------------------------------------------------


def timestep_embedding(t: torch.Tensor, dim: int, T: int) -> torch.Tensor:
    """Sinusoidal features of t (shape ``t.shape + (dim,)``), as in DDPMs.

    Frequencies run geometrically from 1 to 1/T radians per step (to 1/2 when T = 1,
    so that two features still differ), so the fastest feature still changes by at
    most one radian from one t to the next (no aliasing).
    """
    if check_count(dim, "dim", minimum=2) % 2:
        raise ValueError(f"dim must be an even integer >= 2, got {dim}")
    T = check_count(T, "T")
    frequencies = torch.exp(
        -torch.linspace(0.0, math.log(max(T, 2)), dim // 2, device=t.device)
    )
    angles = t.to(torch.float32)[..., None] * frequencies
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


PREDICTIONS = ("epsilon", "x0", "v")


def _check_prediction(prediction) -> str:
    return check_choice(prediction, "prediction", PREDICTIONS)


def _row(values: torch.Tensor, k: int) -> torch.Tensor:
    """Member k's slice of a tensor whose first dimension is K or 1 (shared)."""
    return values[k if values.shape[0] > 1 else 0]


def _output_to_x0(kinds: Sequence[int], output, xt, alpha_bar) -> torch.Tensor:
    """x0_hat per member from outputs (K, rows, d); ``xt`` and ``alpha_bar`` have a
    first dimension of K or 1 (shared by every member)."""
    signal, noise = alpha_bar.sqrt(), (1.0 - alpha_bar).sqrt()
    x0 = torch.empty_like(output)
    for k, kind in enumerate(kinds):
        x, s, n = _row(xt, k), _row(signal, k), _row(noise, k)
        if PREDICTIONS[kind] == "epsilon":
            x0[k] = (x - n * output[k]) / s
        elif PREDICTIONS[kind] == "x0":
            x0[k] = output[k]
        else:
            x0[k] = s * x - n * output[k]
    return x0


def _targets(kinds: Sequence[int], x0, noise, alpha_bar) -> torch.Tensor:
    """The regression target per member: the noise, x0 or v, shape (K, rows, d)."""
    signal, noise_scale = alpha_bar.sqrt(), (1.0 - alpha_bar).sqrt()
    K = len(kinds)
    target = torch.empty((K, *noise.shape[1:]), dtype=noise.dtype, device=noise.device)
    for k, kind in enumerate(kinds):
        eps, clean = _row(noise, k), _row(x0, k)
        if PREDICTIONS[kind] == "epsilon":
            target[k] = eps
        elif PREDICTIONS[kind] == "x0":
            target[k] = clean
        else:
            target[k] = _row(signal, k) * eps - _row(noise_scale, k) * clean
    return target


def predicted_x0(
    output: torch.Tensor, xt: torch.Tensor, t, schedule: Schedule, prediction: str
) -> torch.Tensor:
    r"""The estimate of :math:`x_0` implied by a network ``output`` at :math:`(x_t, t)`.

    ``"epsilon"`` inverts :func:`q_sample`, :math:`\hat x_0 = (x_t -
    \sqrt{1-\bar\alpha_t}\,\hat\varepsilon)/\sqrt{\bar\alpha_t}`; for ``"x0"`` the
    output is :math:`\hat x_0`; for ``"v"``, :math:`\hat x_0 = \sqrt{\bar\alpha_t}\,x_t
    - \sqrt{1-\bar\alpha_t}\,\hat v`.
    """
    xt, output, alpha_bar, kinds = _one_member(xt, "xt", output, "output", t,
                                               schedule, prediction)
    return _output_to_x0(kinds, output[None], xt[None], alpha_bar[None])[0]


def prediction_target(
    x0: torch.Tensor, noise: torch.Tensor, t, schedule: Schedule, prediction: str
) -> torch.Tensor:
    r"""What a network with output ``prediction`` is trained to output at
    :math:`x_t` = :func:`q_sample` (x0, noise, t, schedule): the noise
    :math:`\varepsilon`, :math:`x_0`, or :math:`v = \sqrt{\bar\alpha_t}\,\varepsilon -
    \sqrt{1-\bar\alpha_t}\,x_0`."""
    x0, noise, alpha_bar, kinds = _one_member(x0, "x0", noise, "noise", t, schedule,
                                              prediction)
    return _targets(kinds, x0[None], noise[None], alpha_bar[None])[0]


def _one_member(first, first_name: str, second, second_name: str, t,
                schedule: Schedule, prediction: str):
    """Checked (first, second, alpha_bar at t, [kind]) for one network's tensors."""
    schedule = _check_schedule(schedule)
    prediction = _check_prediction(prediction)
    first = check_images(first, first_name, None)
    if check_images(second, second_name, None).shape != first.shape:
        raise ValueError(f"{second_name} must be a tensor of {first_name}'s shape "
                         f"{tuple(first.shape)}")
    t = _check_t(t, schedule, first.shape[0])
    alpha_bar = _at(schedule.alpha_bars, t, first)
    return first, second, alpha_bar, [PREDICTIONS.index(prediction)]


# --------------------------------------------------------------------


def _uniform(shape, fan_in: int, generator: torch.Generator) -> nn.Parameter:
    """PyTorch's default initialisation of a linear layer's weights and biases,
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn from ``generator`` only."""
    bound = 1.0 / math.sqrt(fan_in)
    values = torch.rand(shape, generator=generator) * (2 * bound) - bound
    return nn.Parameter(values)


class DenoiserEnsemble(nn.Module):
    r"""K networks :math:`(x_t, t) \mapsto` output of one shape, evaluated together.

    Each member is an MLP on the pixels and a sinusoidal embedding of t: the embedding
    enters the first layer (concatenated with the pixels) and is added, through its own
    linear map, to every hidden layer, so each layer knows the noise level. The
    members' weights are stacked along a first dimension of size K, so one batched
    matrix product per layer (``torch.baddbmm``) evaluates all of them; they share no
    parameter. ``predictions[k]`` says what member k outputs (:data:`PREDICTIONS`).
    The weights are drawn from ``generator`` (PyTorch's default initialisation).

    ``forward(xt, t)`` takes (K, batch, pixels) and (K, batch), each member on its own
    rows, or one (batch, pixels) and (batch,) shared by every member; it returns
    (K, batch, pixels).
    """

    def __init__(
        self,
        T: int,
        predictions: Sequence[str],
        hidden: int = 128,
        layers: int = 3,
        time_dim: int = 32,
        pixels: int = IMAGE_PIXELS,
        *,
        generator: torch.Generator,
    ):
        super().__init__()
        if isinstance(predictions, str):
            raise TypeError("predictions must be a sequence of strings, not one string")
        predictions = tuple(_check_prediction(p) for p in predictions)
        if not predictions:
            raise ValueError("predictions must name at least one member")
        for name, value in (("T", T), ("hidden", hidden), ("layers", layers),
                            ("pixels", pixels)):
            check_count(value, name)
        check_count(time_dim, "time_dim", 2)
        if time_dim % 2:
            raise ValueError(f"time_dim must be even, got {time_dim}")
        check_generator(generator)
        self.T, self.time_dim, self.pixels = T, time_dim, pixels
        self.predictions = predictions
        K = len(predictions)
        widths = [pixels + time_dim] + [hidden] * layers
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        self.time_weights, self.time_biases = nn.ParameterList(), nn.ParameterList()
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            self.weights.append(_uniform((K, fan_in, fan_out), fan_in, generator))
            self.biases.append(_uniform((K, 1, fan_out), fan_in, generator))
            self.time_weights.append(_uniform((K, time_dim, fan_out), time_dim,
                                              generator))
            self.time_biases.append(_uniform((K, 1, fan_out), time_dim, generator))
        self.out_weight = _uniform((K, hidden, pixels), hidden, generator)
        self.out_bias = _uniform((K, 1, pixels), hidden, generator)

    def __len__(self) -> int:
        return len(self.predictions)

    @property
    def kinds(self) -> list[int]:
        """Each member's output as an index into :data:`PREDICTIONS`."""
        return [PREDICTIONS.index(p) for p in self.predictions]

    def subset(self, indices: Sequence[int]) -> DenoiserEnsemble:
        """A copy holding only the members at ``indices``, in that order."""
        indices = [int(i) for i in indices]
        chosen = copy.deepcopy(self)
        chosen.predictions = tuple(self.predictions[i] for i in indices)
        with torch.no_grad():
            for parameter in chosen.parameters():
                parameter.data = parameter.data[indices].clone()
        return chosen

    def forward(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        K = len(self)
        if xt.ndim == 2:
            xt, t = xt.expand(K, *xt.shape), t.expand(K, *t.shape)
        embedding = timestep_embedding(t, self.time_dim, self.T)
        h = torch.cat([xt.to(self.out_weight.dtype), embedding], dim=-1)
        for weight, bias, time_weight, time_bias in zip(
            self.weights, self.biases, self.time_weights, self.time_biases,
            strict=True,
        ):
            h = nn.functional.silu(torch.baddbmm(bias, h, weight)
                                   + torch.baddbmm(time_bias, embedding, time_weight))
        return torch.baddbmm(self.out_bias, h, self.out_weight)

    def predict_x0(self, xt: torch.Tensor, t, schedule: Schedule) -> torch.Tensor:
        r"""Every member's :math:`\hat x_0` (K, batch, pixels) at one shared ``xt``
        (batch, pixels) and ``t`` (an int or an integer tensor of shape (batch,))."""
        schedule = _check_schedule(schedule)
        xt = check_images(xt, "xt", self.pixels)
        t = _check_t(t, schedule, xt.shape[0])
        steps = torch.full((xt.shape[0],), t) if isinstance(t, int) else t
        output = self(xt, steps.to(xt.device))
        alpha_bar = _at(schedule.alpha_bars, t, output[0])
        return _output_to_x0(self.kinds, output, xt[None].to(output.dtype),
                             alpha_bar[None])


class _StackedAdam:
    """Adam (Kingma & Ba 2015) for stacked members, one learning rate per member.

    The update of torch.optim.Adam with its defaults (betas 0.9 and 0.999, eps 1e-8),
    with the learning rate a tensor over the first (member) dimension: member k moves
    exactly as torch.optim.Adam would move it alone with ``learning_rates[k]``.
    """

    def __init__(self, parameters, learning_rates: torch.Tensor,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.parameters = list(parameters)
        self.rates = learning_rates
        self.betas, self.eps, self.steps = betas, eps, 0
        self.first = [torch.zeros_like(p) for p in self.parameters]
        self.second = [torch.zeros_like(p) for p in self.parameters]

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        correction1, correction2 = 1 - beta1**self.steps, 1 - beta2**self.steps
        for p, first, second in zip(self.parameters, self.first, self.second,
                                    strict=True):
            first.lerp_(p.grad, 1 - beta1)
            second.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            denominator = second.sqrt().div_(math.sqrt(correction2)).add_(self.eps)
            rate = self.rates.reshape(-1, *([1] * (p.ndim - 1)))
            p.addcdiv_(first * rate, denominator, value=-1 / correction1)


def _check_ensemble(model) -> DenoiserEnsemble:
    if not isinstance(model, DenoiserEnsemble):
        raise TypeError(
            f"model must be a DenoiserEnsemble, got {type(model).__name__}"
        )
    return model


def _with_parameters(ensemble: DenoiserEnsemble, values) -> DenoiserEnsemble:
    """A copy of ``ensemble`` (in eval mode) holding ``values`` as its parameters."""
    twin = copy.deepcopy(ensemble).eval()
    with torch.no_grad():
        for parameter, value in zip(twin.parameters(), values, strict=True):
            parameter.copy_(value)
    return twin


# --------------------------------------------------------------------


@dataclass(frozen=True)
class MemberSpec:
    """One network of a training run: its output and its Adam learning rate.

    ``replicate`` only labels runs of the same setting (their randomness differs
    because each member draws its own initialisation, minibatches, t and noise).
    """

    prediction: str
    learning_rate: float
    replicate: int = 0


@dataclass(frozen=True)
class TrainingRun:
    """What :func:`train` returns.

    ``models[(step, decay)]`` is the ensemble of every member's exponential moving
    average of the weights with that ``decay`` after ``step`` Adam steps (decay 0 is
    the trained weights themselves); ``losses[s, k]`` is member k's training loss at
    step s + 1; ``seconds`` is the training's wall-clock time (it varies from run to
    run; the book shows none).
    """

    specs: tuple[MemberSpec, ...]
    steps: tuple[int, ...]
    ema_decays: tuple[float, ...]
    models: dict
    losses: torch.Tensor
    seconds: float

    def model(self, step: int, decay: float) -> DenoiserEnsemble:
        return self.models[(step, decay)]


def _check_specs(specs) -> tuple[MemberSpec, ...]:
    specs = tuple(specs)
    if not specs or not all(isinstance(s, MemberSpec) for s in specs):
        raise TypeError("specs must be a non-empty sequence of MemberSpec")
    for spec in specs:
        _check_prediction(spec.prediction)
        rate = as_real_scalar(spec.learning_rate, "learning_rate")
        if rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {rate}")
    return specs


def _check_images(images, name: str = "images") -> torch.Tensor:
    images = check_images(images, name, IMAGE_PIXELS)
    if bool((images < -1).any()) or bool((images > 1).any()):
        raise ValueError(f"{name} must be scaled to [-1, 1] (see load_scaled_digits)")
    return images


def train(
    images: torch.Tensor,
    schedule: Schedule,
    specs: Sequence[MemberSpec],
    *,
    steps: int,
    checkpoints: Sequence[int] | None = None,
    batch_size: int = 64,
    hidden: int = 128,
    layers: int = 3,
    ema_decays: Sequence[float] = (0.0,),
    device: torch.device | str | None = None,
    generator: torch.Generator,
) -> TrainingRun:
    r"""Train one network per spec with Adam, all side by side (one
    :class:`DenoiserEnsemble`).

    Each step draws, for every member separately, ``batch_size`` training images (with
    replacement), a step :math:`t` uniform on 1..T and noise :math:`\varepsilon` per
    image; :math:`x_t` comes from :func:`q_sample`, so no gradient flows through it.
    Member k minimises the mean squared error of its output against its target
    (:func:`prediction_target`): Ho et al.'s :math:`L_\text{simple}` for
    ``"epsilon"``. The members share no parameter and Adam treats each coordinate on
    its own, so training them together is the same as training them one by one; only
    the arithmetic is batched. The learning rate is constant. Each exponential moving
    average of the weights (one per decay d in ``ema_decays``) starts at the weights
    after the first step and then moves a fraction 1 - d of the way to the new
    weights after each step; at every step in ``checkpoints`` (default: the last) a
    copy of each is kept. Every random draw comes from ``generator``.
    """
    schedule = _check_schedule(schedule)
    images = _check_images(images)
    specs = _check_specs(specs)
    steps = check_count(steps, "steps")
    batch_size = check_count(batch_size, "batch_size")
    saved_steps = tuple(sorted({check_count(s, "checkpoints") for s in
                                (checkpoints or (steps,))}))
    if saved_steps[-1] > steps:
        raise ValueError(f"checkpoints must lie in 1..{steps}, got {saved_steps}")
    decays = tuple(as_real_scalar(d, "ema_decays") for d in ema_decays)
    if not decays or not all(0.0 <= d < 1.0 for d in decays):
        raise ValueError(f"ema_decays must lie in [0, 1), got {decays}")
    check_generator(generator)
    ensemble = DenoiserEnsemble(schedule.T, [s.prediction for s in specs], hidden,
                                layers, generator=generator).to(device)
    parameters = list(ensemble.parameters())
    optimizer = _StackedAdam(parameters, torch.tensor(
        [float(s.learning_rate) for s in specs], device=parameters[0].device))
    # Exponential moving averages of the weights, one copy per decay.
    averages = {decay: [p.detach().clone() for p in parameters] for decay in decays}
    K, n, pixels = len(specs), len(images), images.shape[1]
    kinds = ensemble.kinds
    images = images.to(device)
    losses = torch.empty(steps, K)
    models = {}
    start = time.perf_counter()
    for step in range(1, steps + 1):
        rows = torch.randint(0, n, (K * batch_size,), generator=generator)
        t = torch.randint(1, schedule.T + 1, (K * batch_size,), generator=generator)
        noise = torch.randn(K * batch_size, pixels, generator=generator)
        x0, t, noise = images[rows.to(images.device)], t.to(device), noise.to(device)
        xt = q_sample(x0, noise, t, schedule)
        alpha_bar = _at(schedule.alpha_bars, t, xt).reshape(K, batch_size, 1)
        shape = (K, batch_size, pixels)
        target = _targets(kinds, x0.reshape(shape), noise.reshape(shape), alpha_bar)
        output = ensemble(xt.reshape(shape), t.reshape(K, batch_size))
        per_member = (output - target).pow(2).mean(dim=(1, 2))
        for p in parameters:
            p.grad = None
        per_member.sum().backward()  # member k's gradient is that of its own loss
        optimizer.step()
        with torch.no_grad():  # the averages start at the weights after step 1
            for decay, average in averages.items():
                for a, p in zip(average, parameters, strict=True):
                    a.lerp_(p, 1.0 - decay if step > 1 else 1.0)
        losses[step - 1] = per_member.detach().cpu()
        if step in saved_steps:
            for decay, average in averages.items():
                models[(step, decay)] = _with_parameters(ensemble, average)
    return TrainingRun(specs, saved_steps, decays, models, losses,
                       time.perf_counter() - start)


@torch.no_grad()
def objective_losses(
    model, images: torch.Tensor, schedule: Schedule, *, draws: int = 4,
    generator: torch.Generator,
) -> torch.Tensor:
    """Each member's training objective on held-out ``images``, shape (K,).

    ``draws`` pairs (t, noise) per image, the same pairs for every member (common
    random numbers, so that members are compared on the same draws).
    """
    ensemble = _check_ensemble(model)
    schedule = _check_schedule(schedule)
    images = _check_images(images)
    draws = check_count(draws, "draws")
    check_generator(generator)
    x0 = images.repeat(draws, 1)
    t = torch.randint(1, schedule.T + 1, (len(x0),), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    device = next(ensemble.parameters()).device
    x0, t, noise = x0.to(device), t.to(device), noise.to(device)
    xt = q_sample(x0, noise, t, schedule)
    alpha_bar = _at(schedule.alpha_bars, t, xt)[None]
    target = _targets(ensemble.kinds, x0[None], noise[None], alpha_bar)
    return (ensemble(xt, t) - target).pow(2).mean(dim=(1, 2)).cpu()


def _posterior_mean_from_x0(x0, xt, t: int, schedule: Schedule) -> torch.Tensor:
    """The mean of q(x_{t-1} | x_t, x0) at an estimate of x0, any leading shape."""
    if t == 1:
        return x0  # abar_0 = 1: the posterior mean at t = 1 is x0 itself
    beta = float(schedule.betas[t - 1])
    alpha_bar, alpha_bar_prev = (float(schedule.alpha_bars[t - 1]),
                                 float(schedule.alpha_bars_prev[t - 1]))
    return (math.sqrt(alpha_bar_prev) * beta / (1 - alpha_bar) * x0
            + math.sqrt(1 - beta) * (1 - alpha_bar_prev) / (1 - alpha_bar) * xt)


def _check_reverse_model(model):
    """A DenoiserEnsemble or a LinearDenoiser (the two kinds of reverse model)."""
    if not isinstance(model, DenoiserEnsemble | LinearDenoiser):
        raise TypeError(
            f"model must be a DenoiserEnsemble or a LinearDenoiser, got "
            f"{type(model).__name__}"
        )
    return model


def _chain_x0(model, x: torch.Tensor, t: int, schedule: Schedule) -> torch.Tensor:
    """Every member's x0_hat at its own rows x (K, n, pixels), at one step t."""
    if isinstance(model, LinearDenoiser):  # one affine map, in the chain's precision
        alpha_bar = float(schedule.alpha_bars[t - 1])
        matrix, offset = model.affine(alpha_bar / (1 - alpha_bar))
        return x @ matrix.to(x.dtype) + offset.to(x.dtype)
    output = model(x, torch.full(x.shape[:2], t, device=x.device))
    alpha_bar = torch.tensor(float(schedule.alpha_bars[t - 1]))
    return _output_to_x0(model.kinds, output, x, alpha_bar[None])


@torch.no_grad()
def sample(
    model,
    schedule: Schedule,
    n: int,
    *,
    clip: bool = True,
    keep: Sequence[int] = (),
    generator: torch.Generator,
) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    r"""Ancestral sampling: :math:`x_T\sim\mathcal N(0,I)`, then
    :math:`x_{t-1} = \tilde\mu_t(\hat x_0, x_t) + \sqrt{\tilde\beta_t}\,z` for
    t = T..1, with no noise at t = 1.

    :math:`\hat x_0` is the reverse model's estimate (:func:`predicted_x0` for a
    :class:`DenoiserEnsemble`, the :class:`LinearDenoiser` itself otherwise), clipped
    to [-1, 1] when ``clip`` is true (as in Ho et al.'s released code); without
    clipping, for an epsilon network, :math:`\tilde\mu_t(\hat x_0, x_t)` equals the
    :math:`\varepsilon`-form :func:`posterior_mean_from_noise`. Every member of an
    ensemble draws its own ``n`` samples (a linear denoiser is one member). Returns
    ``x_0`` (K, n, pixels), not clipped, and ``{t: x_t}`` for every t in ``keep``
    (0..T). All draws come from ``generator``: first :math:`x_T`, then the chain of
    :func:`sample_from`.
    """
    model = _check_reverse_model(model)
    schedule = _check_schedule(schedule)
    n = check_count(n, "n")
    check_generator(generator)
    x = torch.randn((len(model), n, model.pixels), generator=generator)
    return sample_from(model, schedule, x, schedule.T, clip=clip, keep=keep,
                       generator=generator)


@torch.no_grad()
def sample_from(
    model,
    schedule: Schedule,
    xt: torch.Tensor,
    t: int,
    *,
    clip: bool = True,
    keep: Sequence[int] = (),
    generator: torch.Generator,
) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    r"""The reverse chain of :func:`sample` from a given :math:`x_t` (K, n, pixels) at
    step ``t``: the steps t, t - 1, ..., 1, member k continuing from ``xt[k]``.

    This is how one reverse model can take over from another part-way (a sample run
    with ``keep=(t,)`` returns the :math:`x_t` to continue from). Returns ``x_0`` and
    ``{s: x_s}`` for every s in ``keep`` (0..t); the noise comes from ``generator``.
    """
    model = _check_reverse_model(model)
    schedule = _check_schedule(schedule)
    if not isinstance(clip, bool):
        raise TypeError(f"clip must be a bool, got {type(clip).__name__}")
    if isinstance(model, DenoiserEnsemble) and schedule.T != model.T:
        raise ValueError(f"schedule has T = {schedule.T} but the model was built for "
                         f"T = {model.T}")
    if isinstance(t, bool) or not isinstance(t, numbers.Integral):
        raise TypeError(f"t must be an int, got {type(t).__name__}")
    if not 1 <= t <= schedule.T:
        raise ValueError(f"t must lie in 1..{schedule.T}, got {t}")
    K = len(model)
    if not isinstance(xt, torch.Tensor):
        raise TypeError(f"xt must be a torch.Tensor, got {type(xt).__name__}")
    if xt.ndim != 3 or (xt.shape[0], xt.shape[2]) != (K, model.pixels) or (
            xt.shape[1] == 0):
        raise ValueError(f"xt must be a tensor of shape ({K}, n, {model.pixels}), one "
                         f"row block per member")
    keep = {check_count(k, "each step in keep", minimum=0) for k in keep}
    if any(k > t for k in keep):
        raise ValueError(f"keep must hold integers in 0..{t}, got {keep}")
    check_generator(generator)
    x = xt.to(next(model.parameters()).device) if isinstance(
        model, DenoiserEnsemble) else xt
    kept = {t: x.clone()} if t in keep else {}
    sigmas = schedule.posterior_variances.sqrt().tolist()
    for step in range(t, 0, -1):
        x0 = _chain_x0(model, x, step, schedule)
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
        mean = _posterior_mean_from_x0(x0, x, step, schedule)
        if step > 1:
            z = torch.randn(x.shape, generator=generator).to(x.device)
            x = mean + sigmas[step - 1] * z
        else:
            x = mean
        if step - 1 in keep:
            kept[step - 1] = x.clone()
    return x, kept


@torch.no_grad()
def x0_errors(
    predict: Callable[[torch.Tensor, int], torch.Tensor],
    images: torch.Tensor,
    schedule: Schedule,
    steps: Sequence[int],
    *,
    clip: bool = True,
    generator: torch.Generator,
) -> torch.Tensor:
    r"""Mean squared error per pixel of :math:`\hat x_0` at each t in ``steps``.

    ``predict(xt, t)`` maps a batch :math:`x_t` (n, pixels) at one step t to
    :math:`\hat x_0`, of shape (n, pixels) or (K, n, pixels) (e.g.
    ``lambda xt, t: ensemble.predict_x0(xt, t, schedule)``). The noise is drawn once
    per t, so every predictor passed with the same generator seed sees the same
    :math:`x_t`. Returns shape (len(steps),) or (K, len(steps)).
    """
    schedule = _check_schedule(schedule)
    images = _check_images(images)
    check_generator(generator)
    errors = []
    for t in steps:
        t = _check_t(t, schedule, len(images))
        noise = torch.randn(images.shape, generator=generator)
        estimate = predict(q_sample(images, noise, t, schedule), t)
        if clip:
            estimate = estimate.clamp(-1.0, 1.0)
        errors.append((estimate.cpu() - images).pow(2).mean(dim=(-2, -1)))
    return torch.stack(errors, dim=-1)


class LinearDenoiser:
    r"""The best affine estimate of :math:`x_0` from
    :math:`x_t = \alpha x_0 + \sigma\varepsilon`, for data with the given images' mean
    :math:`m` and covariance :math:`\Sigma` (maximum likelihood, float64).

    :math:`\hat x_0 = m + \alpha\Sigma(\alpha^2\Sigma + \sigma^2 I)^{-1}(x_t - \alpha
    m)`, with :math:`\alpha^2 = \mathrm{SNR}/(1+\mathrm{SNR})` and :math:`\sigma^2 =
    1/(1+\mathrm{SNR})` (variance preserving; the DDPM's :math:`\mathrm{SNR} =
    \bar\alpha_t/(1-\bar\alpha_t)`). It is :math:`\mathbb E[x_0\mid x_t]` when
    :math:`x_0` is Gaussian, and its expected squared error, which depends only on the
    two moments, is :math:`\sum_i \lambda_i/(1+\mathrm{SNR}\,\lambda_i)` over the
    eigenvalues :math:`\lambda_i` of :math:`\Sigma` (:meth:`expected_error`).
    """

    def __init__(self, images: torch.Tensor):
        images = check_images(images, "images", None).double().cpu()
        if len(images) < 2:
            raise ValueError("images needs at least 2 rows")
        self.mean = images.mean(0)
        centred = images - self.mean
        covariance = centred.T @ centred / len(images)
        eigenvalues, self.eigenvectors = torch.linalg.eigh(covariance)
        self.eigenvalues = eigenvalues.clamp(min=0.0)  # rounding can leave -1e-17

    def __call__(self, xt: torch.Tensor, snr) -> torch.Tensor:
        """:math:`\\hat x_0` for rows ``xt`` at signal-to-noise ratio ``snr`` (a
        number or a tensor broadcasting against (n, 1))."""
        snr = torch.as_tensor(snr, dtype=torch.float64)
        alpha2, sigma2 = snr / (1 + snr), 1 / (1 + snr)
        alpha = alpha2.sqrt()
        coordinates = (xt.double() - alpha * self.mean) @ self.eigenvectors
        gain = alpha * self.eigenvalues / (alpha2 * self.eigenvalues + sigma2)
        return self.mean + (gain * coordinates) @ self.eigenvectors.T

    def __len__(self) -> int:
        """One reverse model (an ensemble of one, for :func:`sample`)."""
        return 1

    @property
    def pixels(self) -> int:
        return len(self.mean)

    def predict_x0(self, xt: torch.Tensor, t, schedule: Schedule) -> torch.Tensor:
        r""":math:`\hat x_0` (1, batch, pixels) at rows ``xt`` of step ``t`` (an int
        or an integer tensor of shape (batch,)), with the DDPM's
        :math:`\mathrm{SNR} = \bar\alpha_t/(1-\bar\alpha_t)`; the interface of
        :meth:`DenoiserEnsemble.predict_x0`."""
        schedule = _check_schedule(schedule)
        xt = check_images(xt, "xt", self.pixels)
        t = _check_t(t, schedule, xt.shape[0])
        alpha_bar = _at(schedule.alpha_bars, t, xt.double())
        return self(xt, alpha_bar / (1 - alpha_bar))[None]

    def affine(self, snr: float) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The map at one ``snr`` as (A, b), :math:`\hat x_0 = x_t A + b` (float64):
        :math:`A = \alpha\Sigma(\alpha^2\Sigma + \sigma^2 I)^{-1}` (symmetric) and
        :math:`b = m - \alpha\,m A`."""
        snr = as_real_scalar(snr, "snr")
        if snr < 0:
            raise ValueError(f"snr must be >= 0, got {snr}")
        alpha2, sigma2 = snr / (1 + snr), 1 / (1 + snr)
        alpha = math.sqrt(alpha2)
        gain = alpha * self.eigenvalues / (alpha2 * self.eigenvalues + sigma2)
        matrix = (self.eigenvectors * gain) @ self.eigenvectors.T
        return matrix, self.mean - alpha * self.mean @ matrix

    def expected_error(self, snr) -> torch.Tensor:
        r""":math:`\mathbb E\lVert x_0-\hat x_0\rVert^2 = \sum_i \lambda_i/(1 +
        \mathrm{SNR}\,\lambda_i)` (summed over pixels)."""
        snr = torch.as_tensor(snr, dtype=torch.float64)
        return (self.eigenvalues / (1 + snr[..., None] * self.eigenvalues)).sum(-1)


# --------------------------------------------------------------------


def gaussian_baseline(
    train_images: torch.Tensor, n: int, generator: np.random.Generator
) -> torch.Tensor:
    """n draws of N(mean, covariance) fitted to ``train_images`` (the baseline), from
    ``generator``, a NumPy one (NumPy draws them).

    The pixel covariance is singular (border pixels that never carry ink), so the draw
    uses an eigendecomposition, which handles a positive semi-definite covariance.
    """
    images = check_images(train_images, "train_images", None)
    n = check_count(n, "n")
    check_numpy_generator(generator)
    images = images.double().cpu().numpy()
    mean, covariance = images.mean(0), np.cov(images, rowvar=False)
    draws = generator.multivariate_normal(mean, covariance, size=n, method="eigh")
    return torch.tensor(draws, dtype=torch.float32)


def _squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.cdist(x.double(), y.double()).pow(2)


def median_bandwidth(reference: torch.Tensor) -> float:
    """The median pairwise Euclidean distance in ``reference`` (median heuristic)."""
    reference = check_images(reference, "reference", None)
    if reference.shape[0] < 2:
        raise ValueError("reference needs at least 2 rows")
    distances = torch.cdist(reference.double(), reference.double())
    upper = torch.triu_indices(len(reference), len(reference), offset=1)
    # np.median averages the two middle values; torch.median would return the lower one.
    return float(np.median(distances[upper[0], upper[1]].cpu().numpy()))


def _check_mmd_inputs(x, y, bandwidth) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The two samples' rows (same width, at least 2 each) and a positive bandwidth."""
    x = check_images(x, "x", None)
    y = check_images(y, "y", None)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"x and y must have the same width, got {x.shape[1]} and {y.shape[1]}"
        )
    if len(x) < 2 or len(y) < 2:
        raise ValueError("x and y need at least 2 rows each")
    bandwidth = as_real_scalar(bandwidth, "bandwidth")
    if bandwidth <= 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
    return x, y, bandwidth


def mmd_squared(x: torch.Tensor, y: torch.Tensor, bandwidth: float) -> float:
    r"""Unbiased estimate of the squared MMD with the kernel :math:`\exp(-\lVert
    a-b\rVert^2/(2h^2))`.

    Gretton et al. (2012), eq. (3): the means of k(x, x') and k(y, y') over distinct
    pairs minus twice the mean of k(x, y). Zero in expectation when x and y share a
    distribution (so an estimate can be negative).
    """
    x, y, bandwidth = _check_mmd_inputs(x, y, bandwidth)

    def kernel(a, b):
        return torch.exp(-_squared_distances(a, b) / (2 * bandwidth**2))

    def mean_off_diagonal(k):
        m = k.shape[0]
        return (k.sum() - k.diagonal().sum()) / (m * (m - 1))

    return float(
        mean_off_diagonal(kernel(x, x))
        + mean_off_diagonal(kernel(y, y))
        - 2 * kernel(x, y).mean()
    )


def mmd_permutation_null(
    x: torch.Tensor,
    y: torch.Tensor,
    bandwidth: float,
    *,
    permutations: int = 200,
    generator: torch.Generator,
) -> np.ndarray:
    r""":func:`mmd_squared` after random relabellings of the pooled rows of ``x`` and
    ``y``: its permutation null (Gretton et al. 2012).

    Each relabelling is a ``torch.randperm`` of the m + n pooled rows from
    ``generator``, whose first m rows play x. If x and y share a distribution, the
    observed statistic is one more draw from this null, so the share of null values at
    least as large, counted with the observed one, :math:`(1 + \#\{\text{null} \ge
    \text{observed}\})/(P + 1)`, is a valid p-value. The kernel matrix is computed
    once; each relabelling's three sums are quadratic forms in it.
    """
    x, y, bandwidth = _check_mmd_inputs(x, y, bandwidth)
    permutations = check_count(permutations, "permutations")
    check_generator(generator)
    pooled = torch.cat([x.double(), y.double()])
    kernel = torch.exp(-_squared_distances(pooled, pooled) / (2 * bandwidth**2))
    kernel.fill_diagonal_(0.0)  # the sums run over distinct pairs
    m, n = len(x), len(y)
    in_x = torch.zeros(permutations, m + n, dtype=torch.float64)
    for row in in_x:
        row[torch.randperm(m + n, generator=generator)[:m]] = 1.0
    # With a the indicator of the rows playing x and K the kernel (zero diagonal):
    # the x-x sum is a'Ka, the x-y sum a'K1 - a'Ka, the y-y sum 1'K1 - 2a'K1 + a'Ka.
    product = in_x @ kernel
    within_x = (product * in_x).sum(1)
    to_all = in_x @ kernel.sum(1)
    between = to_all - within_x
    within_y = kernel.sum() - 2 * to_all + within_x
    null = (within_x / (m * (m - 1)) + within_y / (n * (n - 1))
            - 2 * between / (m * n))
    return null.numpy()


def nearest_distances(queries: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """Euclidean distance from each query row to its nearest reference row (n,)."""
    queries = check_images(queries, "queries", None)
    references = check_images(references, "references", None)
    return torch.cdist(queries.double(), references.double()).min(1).values


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Round pixels on [-1, 1] to the nearest of the digits' 17 grey levels p/8 - 1
    (values outside [-1, 1] are clipped first)."""
    images = check_images(images, "images", None)
    steps = (GREY_LEVELS - 1) // 2  # 8 steps per unit: p / 8 - 1
    return torch.round((images.clamp(-1.0, 1.0) + 1.0) * steps) / steps - 1.0


def memorisation_gap(
    queries: torch.Tensor,
    train_images: torch.Tensor,
    test_images: torch.Tensor,
    *,
    generator: torch.Generator,
) -> float:
    """How much closer ``queries`` lie to the training images than to fresh ones.

    The median distance from a query to its nearest test image, minus the median
    distance to its nearest image in a random subset of the training images of the
    test set's size (averaged over the disjoint subsets of one random permutation from
    ``generator``). Equal-sized reference sets make the two medians comparable; a
    generator that had learned only the distribution would give a gap near that of
    fresh real digits used as queries.
    """
    queries = check_images(queries, "queries", None)
    train_images = check_images(train_images, "train_images", None)
    test_images = check_images(test_images, "test_images", None)
    check_generator(generator)
    size = len(test_images)
    if len(train_images) < size:
        raise ValueError("train_images must hold at least as many rows as test_images")
    order = torch.randperm(len(train_images), generator=generator)
    subsets = order[: len(order) // size * size].reshape(-1, size)
    to_train = np.mean([float(nearest_distances(queries, train_images[rows]).median())
                        for rows in subsets])
    to_test = float(nearest_distances(queries, test_images).median())
    return to_test - float(to_train)
