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
The second form is reparameterized,
:math:`x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon`
(:func:`q_sample`): any :math:`x_t` in one draw. The posterior of one step back is

.. math::

    q(x_{t-1}\mid x_t, x_0) = \mathcal N(\tilde\mu_t, \tilde\beta_t I),\quad
    \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\beta_t}{1-\bar\alpha_t}x_0
                + \frac{\sqrt{\alpha_t}(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}x_t,\quad
    \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\beta_t

(:func:`q_posterior`), and in terms of the noise,
:math:`\tilde\mu_t = (x_t - \beta_t\varepsilon/\sqrt{1-\bar\alpha_t})/\sqrt{\alpha_t}`
(:func:`posterior_mean_from_noise`). The reverse model
:math:`p_\theta(x_{t-1}\mid x_t) = \mathcal N(\mu_\theta(x_t, t), \tilde\beta_t I)`
uses that form with a network :math:`\varepsilon_\theta` (:class:`NoisePredictor`) in
place of :math:`\varepsilon`; it is trained on Ho et al.'s :math:`L_\text{simple}`
(:func:`simple_loss`, :func:`train`) and sampled by ancestral sampling (:func:`sample`).
The network may instead output :math:`\hat x_0` (``prediction="x0"``); the implied noise
is then :math:`\varepsilon_\theta = (x_t-\sqrt{\bar\alpha_t}\hat x_0)/
\sqrt{1-\bar\alpha_t}` and the same regression is reweighted over t
(:func:`simple_loss`).

Time steps ``t`` are 1-based, as in the papers: ``schedule.alpha_bars[t - 1]`` is
:math:`\bar\alpha_t`, and :math:`\bar\alpha_0 = 1`.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .data import IMAGE_PIXELS, default_device

__all__ = [
    "Schedule",
    "linear_schedule",
    "book_schedule",
    "BOOK_T",
    "BOOK_BETAS",
    "check_pixels",
    "q_sample",
    "q_posterior",
    "posterior_mean_from_noise",
    "elbo_weights",
    "timestep_embedding",
    "PREDICTIONS",
    "NoisePredictor",
    "predicted_x0",
    "simple_loss",
    "TrainingHistory",
    "train",
    "sample",
    "gaussian_baseline",
    "median_bandwidth",
    "mmd_squared",
    "nearest_distances",
]


# --------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """A variance schedule: ``betas[t-1]`` is :math:`\\beta_t`, for t = 1..T
    (float64)."""

    betas: torch.Tensor

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
    if isinstance(T, bool) or not isinstance(T, numbers.Integral):
        raise TypeError(f"T must be an integer, got {type(T).__name__} ({T!r})")
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    for name, value in (("beta_start", beta_start), ("beta_end", beta_end)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
        if not 0.0 < value < 1.0:
            raise ValueError(
                f"{name} must lie in the open interval (0, 1), got {value}"
            )
    betas = torch.linspace(
        float(beta_start), float(beta_end), int(T), dtype=torch.float64
    )
    return Schedule(betas)


# --------------------------------------------------------------------


def check_pixels(
    images, name: str = "x0", pixels: int | None = IMAGE_PIXELS
) -> torch.Tensor:
    """A floating tensor of shape (n, pixels) (or (n, 8, 8)), finite; flattened if
    8x8."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if not images.dtype.is_floating_point:
        raise TypeError(f"{name} must be floating point, got dtype {images.dtype}")
    if pixels == IMAGE_PIXELS and images.ndim == 3 and images.shape[1:] == (8, 8):
        images = images.reshape(images.shape[0], IMAGE_PIXELS)
    if (
        images.ndim != 2
        or images.shape[0] == 0
        or (pixels is not None and images.shape[1] != pixels)
    ):
        wanted = f"(n, {pixels})" if pixels is not None else "(n, d)"
        raise ValueError(
            f"{name} must have shape {wanted} with n >= 1, got {tuple(images.shape)}"
        )
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return images


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
    x0: torch.Tensor, t, schedule: Schedule, noise: torch.Tensor
) -> torch.Tensor:
    r"""A draw of :math:`q(x_t\mid x_0)`: :math:`\sqrt{\bar\alpha_t}x_0 +
    \sqrt{1-\bar\alpha_t}\,\varepsilon`.

    ``x0`` has shape (batch, d) (any d); ``t`` is an int in 1..T or an integer tensor of
    shape (batch,); ``noise`` (the :math:`\varepsilon`) has x0's shape.
    """
    schedule = _check_schedule(schedule)
    x0 = check_pixels(x0, "x0", pixels=None)
    if not isinstance(noise, torch.Tensor):
        raise TypeError(f"noise must be a torch.Tensor, got {type(noise).__name__}")
    if noise.shape != x0.shape:
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
    x0 = check_pixels(x0, "x0", pixels=None)
    xt = check_pixels(xt, "xt", pixels=None)
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
    xt = check_pixels(xt, "xt", pixels=None)
    if not isinstance(noise, torch.Tensor) or noise.shape != xt.shape:
        raise ValueError(f"noise must be a tensor of xt's shape {tuple(xt.shape)}")
    t = _check_t(t, schedule, xt.shape[0])
    beta = _at(schedule.betas, t, xt)
    alpha_bar = _at(schedule.alpha_bars, t, xt)
    return (xt - beta / (1 - alpha_bar).sqrt() * noise) / (1 - beta).sqrt()


def elbo_weights(schedule: Schedule) -> torch.Tensor:
    r"""The weights :math:`c_t` of :math:`L_{t-1} =
    c_t\lVert\varepsilon-\varepsilon_\theta\rVert^2`.

    For a reverse variance :math:`\sigma_t^2 = \tilde\beta_t`,
    :math:`c_t = \beta_t^2 / (2\sigma_t^2\alpha_t(1-\bar\alpha_t))
    = \beta_t / (2\alpha_t(1-\bar\alpha_{t-1}))`. Returned for t = 2..T (shape (T-1,),
    float64); at t = 1 the posterior variance is 0 and the term is a decoder likelihood
    instead.
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
    """Sinusoidal features of t (shape (batch, dim)), as in transformers and DDPMs.

    Frequencies run geometrically from 1 to 1/T radians per step, so the fastest feature
    still changes by at most one radian from one t to the next (no aliasing).
    """
    if dim < 2 or dim % 2:
        raise ValueError(f"dim must be an even integer >= 2, got {dim}")
    frequencies = torch.exp(
        -torch.linspace(0.0, math.log(max(T, 2)), dim // 2, device=t.device)
    )
    angles = t.to(torch.float32)[:, None] * frequencies[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


PREDICTIONS = ("epsilon", "x0")


def _check_prediction(prediction) -> str:
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    return prediction


class NoisePredictor(nn.Module):
    r""":math:`\varepsilon_\theta(x_t, t)`: an MLP on the pixels and a time embedding.

    The time embedding enters the first layer (concatenated with the pixels) and is
    added, through its own linear map, to every hidden layer, so each layer knows the
    noise level. With ``prediction="x0"`` the same network outputs :math:`\hat x_0`
    instead, from which the noise estimate follows (:func:`predicted_x0` converts).
    """

    def __init__(
        self,
        T: int,
        hidden: int = 256,
        layers: int = 3,
        time_dim: int = 32,
        pixels: int = IMAGE_PIXELS,
        prediction: str = "epsilon",
    ):
        super().__init__()
        self.prediction = _check_prediction(prediction)
        for name, value in (
            ("T", T),
            ("hidden", hidden),
            ("layers", layers),
            ("time_dim", time_dim),
            ("pixels", pixels),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.T, self.time_dim, self.pixels = T, time_dim, pixels
        widths = [pixels + time_dim] + [hidden] * layers
        self.linears = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=False)
        )
        self.time_maps = nn.ModuleList(
            nn.Linear(time_dim, hidden) for _ in range(layers)
        )
        self.out = nn.Linear(hidden, pixels)

    def forward(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        embedding = timestep_embedding(t, self.time_dim, self.T)
        h = torch.cat([xt, embedding], dim=1)
        for linear, time_map in zip(self.linears, self.time_maps, strict=False):
            h = nn.functional.silu(linear(h) + time_map(embedding))
        return self.out(h)


def predicted_x0(
    output: torch.Tensor, xt: torch.Tensor, t, schedule: Schedule, prediction: str
) -> torch.Tensor:
    r"""The network's estimate of :math:`x_0` from its ``output`` at :math:`(x_t, t)`.

    For ``prediction="epsilon"`` it inverts :func:`q_sample`,
    :math:`\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\varepsilon_\theta)/
    \sqrt{\bar\alpha_t}`; for ``"x0"`` the output is :math:`\hat x_0` itself.
    """
    schedule = _check_schedule(schedule)
    prediction = _check_prediction(prediction)
    xt = check_pixels(xt, "xt", pixels=None)
    if not isinstance(output, torch.Tensor) or output.shape != xt.shape:
        raise ValueError(f"output must be a tensor of xt's shape {tuple(xt.shape)}")
    t = _check_t(t, schedule, xt.shape[0])
    if prediction == "x0":
        return output
    alpha_bar = _at(schedule.alpha_bars, t, xt)
    return (xt - (1 - alpha_bar).sqrt() * output) / alpha_bar.sqrt()


def _draw_t(batch: int, T: int, generator: torch.Generator, device) -> torch.Tensor:
    return torch.randint(1, T + 1, (batch,), generator=generator, device=device)


def simple_loss(
    model: NoisePredictor,
    x0: torch.Tensor,
    schedule: Schedule,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Ho et al.'s :math:`L_\text{simple}`: mean of
    :math:`\lVert\varepsilon-\varepsilon_\theta(x_t,t)\rVert^2/d`.

    One t uniform on 1..T and one :math:`\varepsilon\sim\mathcal N(0,I)` per image;
    :math:`x_t` comes from :func:`q_sample`, so no gradient flows through it. For a
    model with ``prediction="x0"`` the loss is the mean of
    :math:`\lVert x_0-\hat x_0\rVert^2/d
    = \frac{1-\bar\alpha_t}{\bar\alpha_t}\lVert\varepsilon-\varepsilon_\theta\rVert^2/d`
    with the implied :math:`\varepsilon_\theta`: the same regression on the noise,
    weighted over t by the inverse signal-to-noise ratio.
    """
    x0 = check_pixels(x0, "x0", model.pixels)
    if schedule.T != model.T:
        raise ValueError(
            f"schedule has T = {schedule.T} but the model was built for T = {model.T}"
        )
    t = _draw_t(x0.shape[0], schedule.T, generator, x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    xt = q_sample(x0, t, schedule, noise)
    target = x0 if getattr(model, "prediction", "epsilon") == "x0" else noise
    return (model(xt, t) - target).pow(2).mean()


@dataclass
class TrainingHistory:
    """The loss of every Adam step and the wall time of training."""

    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def train(
    images: torch.Tensor,
    schedule: Schedule,
    *,
    steps: int = 3000,
    batch_size: int = 128,
    learning_rate: float = 2e-3,
    hidden: int = 256,
    layers: int = 3,
    seed: int = 0,
    device: torch.device | None = None,
    progress: Callable[[str], None] | None = print,
    progress_every: int = 500,
    ema_decay: float = 0.995,
    prediction: str = "epsilon",
) -> tuple[NoisePredictor, TrainingHistory]:
    """Train a :class:`NoisePredictor` with Adam on :func:`simple_loss`.

    Seeded: the same arguments give the same model on the same device. ``progress``
    (default ``print``, i.e. stdout) receives a line every ``progress_every`` steps;
    pass ``None`` for silence. The learning rate decays linearly to a tenth over the
    run. The returned model holds an exponential moving average of the weights (decay
    ``ema_decay`` per step); the recorded losses are those of the trained weights at
    each step. ``prediction`` ("epsilon" or "x0") is what the network outputs (see
    :func:`simple_loss`).
    """
    prediction = _check_prediction(prediction)
    images = check_pixels(images, "images")
    if bool((images < -1).any()) or bool((images > 1).any()):
        raise ValueError("images must be scaled to [-1, 1] (see load_scaled_digits)")
    for name, value in (
        ("steps", steps),
        ("batch_size", batch_size),
        ("progress_every", progress_every),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must lie in [0, 1), got {ema_decay}")
    device = device or default_device()
    torch.manual_seed(seed)  # parameter initialisation
    model = NoisePredictor(schedule.T, hidden, layers, prediction=prediction).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    decay = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 1.0 - 0.9 * step / steps
    )
    images = images.to(device)
    generator = torch.Generator(device=device).manual_seed(seed + 1)
    batch_generator = torch.Generator().manual_seed(seed + 2)
    # An exponential moving average of the weights is the model returned: it averages
    # out the last steps' gradient noise (Ho et al. do the same).
    average = torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(ema_decay)
    )
    history = TrainingHistory()
    start = time.perf_counter()
    for step in range(1, steps + 1):
        batch = torch.randint(0, len(images), (batch_size,), generator=batch_generator)
        loss = simple_loss(model, images[batch.to(device)], schedule, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        decay.step()
        average.update_parameters(model)
        history.losses.append(loss.item())
        if progress is not None and (step % progress_every == 0 or step == steps):
            recent = np.mean(history.losses[-progress_every:])
            progress(
                f"step {step}/{steps}: mean loss {recent:.4f} "
                f"({time.perf_counter() - start:.1f} s)"
            )
    history.seconds = time.perf_counter() - start
    return average.module.eval(), history


def _mean_from_x0(xt: torch.Tensor, x0: torch.Tensor, t: int, schedule: Schedule):
    """The posterior mean of q(x_{t-1} | x_t, x0) at an estimate of x0."""
    if t == 1:
        return x0  # abar_0 = 1: the posterior mean at t = 1 is x0 itself
    return q_posterior(x0, xt, t, schedule)[0]


@torch.no_grad()
def sample(
    model: NoisePredictor,
    schedule: Schedule,
    n: int,
    seed: int = 0,
    keep: Sequence[int] = (),
    clip_denoised: bool = True,
) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    r"""Ancestral sampling: :math:`x_T\sim\mathcal N(0,I)`, then
    :math:`x_{t-1} = \mu_\theta(x_t,t) + \sqrt{\tilde\beta_t}\,z` for t = T..1 (no
    noise at t = 1).

    With ``clip_denoised`` (the default, as in Ho et al.'s released code) the mean is
    :math:`\tilde\mu_t(\hat x_0, x_t)` of :func:`q_posterior` at the network's estimate
    :math:`\hat x_0` (:func:`predicted_x0`) clipped to [-1, 1]; for an
    :math:`\varepsilon`-predicting model without clipping it is exactly the
    :math:`\varepsilon`-form :func:`posterior_mean_from_noise`. The model's
    ``prediction`` attribute (default "epsilon") says what its output is.

    Deterministic given ``seed``: it draws only from its own generator. Returns ``x_0``
    (shape (n, 64), not clipped) and ``{t: x_t}`` for every t in ``keep`` (0..T).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if schedule.T != model.T:
        raise ValueError(
            f"schedule has T = {schedule.T} but the model was built for T = {model.T}"
        )
    keep = set(keep)
    if any(
        isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= schedule.T
        for k in keep
    ):
        raise ValueError(
            f"keep must hold integers in 0..{schedule.T}, got {sorted(keep)}"
        )
    prediction = _check_prediction(getattr(model, "prediction", "epsilon"))
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn((n, model.pixels), generator=generator, device=device)
    kept = {schedule.T: x.clone()} if schedule.T in keep else {}
    sigmas = schedule.posterior_variances.sqrt()
    for t in range(schedule.T, 0, -1):
        steps = torch.full((n,), t, device=device, dtype=torch.long)
        output = model(x, steps)
        if prediction == "epsilon" and not clip_denoised:
            mean = posterior_mean_from_noise(x, output, t, schedule)
        else:
            x0 = predicted_x0(output, x, t, schedule, prediction)
            if clip_denoised:
                x0 = x0.clamp(-1.0, 1.0)
            mean = _mean_from_x0(x, x0, t, schedule)
        if t > 1:
            z = torch.randn(x.shape, generator=generator, device=device)
            x = mean + float(sigmas[t - 1]) * z
        else:
            x = mean
        if t - 1 in keep:
            kept[t - 1] = x.clone()
    return x, kept


# --------------------------------------------------------------------


def gaussian_baseline(
    train_images: torch.Tensor, n: int, seed: int = 0
) -> torch.Tensor:
    """n draws of N(mean, covariance) fitted to ``train_images`` (the baseline).

    The pixel covariance is singular (border pixels that never carry ink), so the draw
    uses an eigendecomposition, which handles a positive semi-definite covariance.
    """
    images = (
        check_pixels(train_images, "train_images", pixels=None).double().cpu().numpy()
    )
    mean, covariance = images.mean(0), np.cov(images, rowvar=False)
    draws = np.random.default_rng(seed).multivariate_normal(
        mean, covariance, size=n, method="eigh"
    )
    return torch.tensor(draws, dtype=torch.float32)


def _squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.cdist(x.double(), y.double()).pow(2)


def median_bandwidth(reference: torch.Tensor) -> float:
    """The median pairwise Euclidean distance in ``reference`` (median heuristic)."""
    reference = check_pixels(reference, "reference", pixels=None)
    if reference.shape[0] < 2:
        raise ValueError("reference needs at least 2 rows")
    distances = torch.cdist(reference.double(), reference.double())
    upper = torch.triu_indices(len(reference), len(reference), offset=1)
    # np.median averages the two middle values; torch.median would return the lower one.
    return float(np.median(distances[upper[0], upper[1]].cpu().numpy()))


def mmd_squared(x: torch.Tensor, y: torch.Tensor, bandwidth: float) -> float:
    r"""Unbiased estimate of the squared MMD with the kernel :math:`\exp(-\lVert
    a-b\rVert^2/(2h^2))`.

    Gretton et al. (2012), eq. (3): the means of k(x, x') and k(y, y') over distinct
    pairs minus twice the mean of k(x, y). Zero in expectation when x and y share a
    distribution.
    """
    x = check_pixels(x, "x", pixels=None)
    y = check_pixels(y, "y", pixels=None)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"x and y must have the same width, got {x.shape[1]} and {y.shape[1]}"
        )
    if len(x) < 2 or len(y) < 2:
        raise ValueError("x and y need at least 2 rows each")
    if not (
        isinstance(bandwidth, numbers.Real)
        and math.isfinite(bandwidth)
        and bandwidth > 0
    ):
        raise ValueError(f"bandwidth must be a finite number > 0, got {bandwidth!r}")

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


def nearest_distances(queries: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """Euclidean distance from each query row to its nearest reference row (n,)."""
    queries = check_pixels(queries, "queries", pixels=None)
    references = check_pixels(references, "references", pixels=None)
    return torch.cdist(queries.double(), references.double()).min(1).values
