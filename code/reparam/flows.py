r"""Normalizing flows built from affine coupling layers, and the tanh-squashed Gaussian.

A flow draws :math:`x = f_\theta(\varepsilon)` with :math:`\varepsilon \sim \mathcal
N(0, I)` and an invertible :math:`f_\theta = f_K \circ \dots \circ f_1`. Its density is
the change-of-variables formula of Chapter 1,

.. math::

    \log q_\theta(x) = \log \mathcal N\bigl(f_\theta^{-1}(x); 0, I\bigr)
    + \log\Bigl\lvert\det \frac{\partial f_\theta^{-1}}{\partial x}\Bigr\rvert ,

so sampling needs only :math:`f_\theta`, while the density needs the inverse and the
log-determinant. An affine coupling layer (Dinh, Sohl-Dickstein and Bengio, RealNVP)
keeps the coordinates marked 1 in its mask, :math:`x_b`, and moves the others,

.. math::

    y_a = x_a \odot e^{s(x_b)} + t(x_b), \qquad y_b = x_b ,

so its Jacobian is triangular (after ordering the coordinates as :math:`(b, a)`) and its
log-determinant is the sum :math:`\sum_j s_j(x_b)`; the inverse is exact,
:math:`x_a = (y_a - t(y_b)) \odot e^{-s(y_b)}`.

Parameters are initialised from an explicit ``torch.Generator`` (``generator=`` of
:class:`AffineCoupling` and :func:`coupling_flow`), never from torch's global random
state: the generator is required, so two layers built from generators seeded alike
start alike.

:func:`squashed_gaussian_log_prob` is the log-density of :math:`a = \tanh u`,
:math:`u \sim \mathcal N(\mu, \sigma^2)`, with the correction
:math:`\log(1 - \tanh^2 u) = 2(\log 2 - u - \operatorname{softplus}(-2u))` written in
the form that stays finite in float32.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._validation import check_count, check_generator, check_scale

__all__ = [
    "AffineCoupling",
    "Flow",
    "LikelihoodHistory",
    "ReverseKLHistory",
    "SCALE_BOUND",
    "alternating_masks",
    "coupling_flow",
    "fit_by_likelihood",
    "fit_by_reverse_kl",
    "naive_tanh_log_det",
    "squashed_gaussian_log_prob",
    "tanh_log_det",
]

# The log-scale s of a coupling layer is softly bounded, s = B tanh(raw), so that one
# layer stretches or shrinks a coordinate by at most e^B; an unbounded exp(s) can
# overflow in the first steps of training. Several layers compound the range.
SCALE_BOUND = 2.0


def _check_tensor(value, name: str, dim: int | None = None) -> torch.Tensor:
    """A finite floating-point tensor of shape (batch, dim)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {value.dtype}")
    if dim is not None and (value.ndim != 2 or value.shape[1] != dim):
        raise ValueError(
            f"{name} must have shape (batch, {dim}), got {tuple(value.shape)}"
        )
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return value


def _check_dtype(value: torch.Tensor, reference: torch.Tensor, name: str) -> None:
    if value.dtype != reference.dtype:
        raise TypeError(
            f"{name} has dtype {value.dtype} but the flow's tensors are "
            f"{reference.dtype}; convert one of them (e.g. flow.double())"
        )


def _check_mask(mask, dim: int) -> torch.Tensor:
    """A 0/1 (or bool) sequence of length ``dim`` with at least one 1 and one 0."""
    if isinstance(mask, (str, bytes)) or not isinstance(
        mask, (Sequence, np.ndarray, torch.Tensor)
    ):
        raise TypeError(
            f"mask must be a sequence of 0/1 or bools, got {type(mask).__name__}"
        )
    entries = mask.tolist() if isinstance(mask, (np.ndarray, torch.Tensor)) else mask
    if isinstance(mask, (np.ndarray, torch.Tensor)) and np.ndim(entries) != 1:
        raise ValueError(f"mask must be one-dimensional, got shape {np.shape(entries)}")
    values = []
    for entry in entries:
        if isinstance(entry, (bool, np.bool_)):
            values.append(int(entry))
        elif isinstance(entry, numbers.Real) and entry in (0, 1):
            values.append(int(entry))
        elif isinstance(entry, numbers.Real):
            raise ValueError(f"mask entries must be 0 or 1, got {entry!r}")
        else:
            raise TypeError(
                f"mask entries must be 0/1 or bools, got {type(entry).__name__}"
            )
    if len(values) != dim:
        raise ValueError(f"mask must have length dim = {dim}, got {len(values)}")
    if 1 not in values:
        raise ValueError("mask needs at least one 1 (a coordinate that conditions)")
    if 0 not in values:
        raise ValueError("mask needs at least one 0 (a coordinate that is moved)")
    return torch.tensor(values, dtype=torch.long)


def _init_linear(layer: nn.Linear, generator: torch.Generator) -> None:
    # PyTorch's default for nn.Linear (uniform in +-1/sqrt(fan_in) for weights and
    # biases), drawn from the given generator instead of the global one.
    bound = 1.0 / math.sqrt(layer.in_features)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.uniform_(-bound, bound, generator=generator)


class AffineCoupling(nn.Module):
    r"""One affine coupling layer, :math:`y_a = x_a e^{s(x_b)} + t(x_b)`, :math:`y_b =
    x_b`.

    ``mask`` is a sequence of ``dim`` entries, 0/1 or bools: the entries marked 1
    (:math:`x_b`) pass through unchanged and are the input of a small network (two
    hidden tanh layers of width ``hidden``) that outputs the log-scale :math:`s` and the
    shift :math:`t` of the entries marked 0 (:math:`x_a`). The log-scale is bounded,
    :math:`s = B\tanh\tilde s` with ``B = SCALE_BOUND``.

    ``forward(x)`` returns ``(y, log_det)`` with ``log_det`` of shape ``(batch,)``,
    :math:`\log\lvert\det \partial y/\partial x\rvert = \sum_j s_j(x_b)`;
    ``inverse(y)`` returns ``(x, log_det)`` with
    :math:`\log\lvert\det \partial x/\partial y\rvert = -\sum_j s_j(y_b)`.

    The network's parameters are drawn from ``generator`` (a ``torch.Generator``,
    required), so ``AffineCoupling(2, [1, 0],
    generator=torch.Generator().manual_seed(3))`` starts from the same parameters
    every time, whatever else was drawn before.
    """

    def __init__(self, dim: int, mask, hidden: int = 64, *,
                 generator: torch.Generator):
        super().__init__()
        self.dim = check_count(dim, "dim", minimum=2)
        self.hidden = check_count(hidden, "hidden")
        mask = _check_mask(mask, self.dim)
        check_generator(generator)
        self.register_buffer("mask", mask.to(torch.get_default_dtype()))
        self.register_buffer("kept", torch.nonzero(mask == 1).flatten())
        self.register_buffer("moved", torch.nonzero(mask == 0).flatten())
        n_kept, n_moved = len(self.kept), len(self.moved)
        # skip_init: nn.Linear's own initialisation would draw from torch's global
        # generator; the parameters are drawn from ``generator`` just below instead.
        self.net = nn.Sequential(
            nn.utils.skip_init(nn.Linear, n_kept, hidden), nn.Tanh(),
            nn.utils.skip_init(nn.Linear, hidden, hidden), nn.Tanh(),
            nn.utils.skip_init(nn.Linear, hidden, 2 * n_moved),
        )
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                _init_linear(layer, generator)

    def scale_and_shift(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The log-scale ``s`` and shift ``t`` of the moved entries, given the kept."""
        first, _, second, _, last = self.net
        # F.linear rather than calling the modules: a training step of these tiny
        # networks is dominated by per-call overhead.
        hidden = torch.tanh(F.linear(kept, first.weight, first.bias))
        hidden = torch.tanh(F.linear(hidden, second.weight, second.bias))
        raw_scale, shift = F.linear(hidden, last.weight, last.bias).chunk(2, dim=-1)
        return SCALE_BOUND * torch.tanh(raw_scale), shift

    def _check(self, value: torch.Tensor, name: str) -> None:
        _check_tensor(value, name, self.dim)
        _check_dtype(value, self.mask, name)

    def couple(self, value: torch.Tensor, inverse: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward`` (or ``inverse``) without checking the input: what :class:`Flow`
        calls, once it has checked the points it was given."""
        kept = value.index_select(1, self.kept)
        moved = value.index_select(1, self.moved)
        scale, shift = self.scale_and_shift(kept)
        if inverse:
            new, log_det = (moved - shift) * torch.exp(-scale), -scale.sum(-1)
        else:
            new, log_det = moved * torch.exp(scale) + shift, scale.sum(-1)
        return value.index_copy(1, self.moved, new), log_det

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(x, "x")
        return self.couple(x)

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(y, "y")
        return self.couple(y, inverse=True)


def _through(layer: nn.Module, value: torch.Tensor, inverse: bool):
    if isinstance(layer, AffineCoupling):
        return layer.couple(value, inverse)
    return layer.inverse(value) if inverse else layer(value)


class Flow(nn.Module):
    r"""A normalizing flow: :math:`x = f_K(\dots f_1(\varepsilon))`, :math:`\varepsilon
    \sim \mathcal N(0, I_{\mathrm{dim}})`.

    ``layers`` is a sequence of modules with ``forward(x) -> (y, log_det)`` and
    ``inverse(y) -> (x, log_det)`` (e.g. :class:`AffineCoupling`), applied in order
    when sampling. The base distribution's mean and scale are buffers, so ``.double()``
    makes every computation float64.
    """

    def __init__(self, layers, dim: int):
        super().__init__()
        self.dim = check_count(dim, "dim")
        if isinstance(layers, nn.ModuleList):
            layers = list(layers)
        if isinstance(layers, nn.Module) or not isinstance(layers, Sequence):
            raise TypeError(
                "layers must be a sequence of modules, got "
                f"{type(layers).__name__}"
            )
        for index, layer in enumerate(layers):
            if not isinstance(layer, nn.Module):
                raise TypeError(
                    f"layers[{index}] must be a torch.nn.Module, got "
                    f"{type(layer).__name__}"
                )
            layer_dim = getattr(layer, "dim", self.dim)
            if layer_dim != self.dim:
                raise ValueError(
                    f"layers[{index}] acts in {layer_dim} dimensions, the flow in "
                    f"{self.dim}"
                )
        self.layers = nn.ModuleList(layers)
        self.register_buffer("base_loc", torch.zeros(self.dim))
        self.register_buffer("base_scale", torch.ones(self.dim))

    def base_log_prob(self, eps: torch.Tensor) -> torch.Tensor:
        """:math:`\\log\\mathcal N(\\varepsilon; 0, I)`, shape ``(batch,)``."""
        # torch.distributions.Normal(base_loc, base_scale).log_prob(eps).sum(-1),
        # operation for operation (so the same bits), without building and validating
        # a distribution object at every training step.
        variance = self.base_scale**2
        return (-((eps - self.base_loc) ** 2) / (2 * variance) - self.base_scale.log()
                - math.log(math.sqrt(2 * math.pi))).sum(-1)

    def _run(self, value: torch.Tensor, inverse: bool
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """The layers in order (or the inverses in reverse order) and the summed
        log-determinant, without checking ``value``: the callers have checked it, or
        drew it themselves. The training loops call this once per step."""
        log_det = torch.zeros(len(value), dtype=value.dtype, device=value.device)
        for layer in (reversed(self.layers) if inverse else self.layers):
            value, layer_log_det = _through(layer, value, inverse)
            log_det = log_det + layer_log_det
        return value, log_det

    def forward(self, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, log|det dx/deps|)`` for base points ``eps`` of shape (batch, dim)."""
        _check_tensor(eps, "eps", self.dim)
        _check_dtype(eps, self.base_loc, "eps")
        return self._run(eps, inverse=False)

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(eps, log|det deps/dx|)`` for points ``x`` of shape (batch, dim)."""
        _check_tensor(x, "x", self.dim)
        _check_dtype(x, self.base_loc, "x")
        return self._run(x, inverse=True)

    def _log_prob(self, x: torch.Tensor) -> torch.Tensor:
        eps, log_det = self._run(x, inverse=True)
        return self.base_log_prob(eps) + log_det

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\log q(x) = \log\mathcal N(f^{-1}(x)) + \log\lvert\det\partial
        f^{-1}/\partial x\rvert`, shape ``(batch,)``."""
        _check_tensor(x, "x", self.dim)
        _check_dtype(x, self.base_loc, "x")
        return self._log_prob(x)

    def sample(self, n: int, generator: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""``(x, log_prob)`` of ``n`` draws :math:`x = f(\varepsilon)`, shapes
        ``(n, dim)`` and ``(n,)``.

        The draws are reparameterized: gradients flow through ``x`` to the layers'
        parameters (the pathwise gradient). ``log_prob`` is
        :math:`\log\mathcal N(\varepsilon) - \log\lvert\det\partial x/\partial
        \varepsilon\rvert`, computed without inverting the flow.
        """
        n = check_count(n, "n")
        check_generator(generator)
        eps = torch.randn(n, self.dim, generator=generator, dtype=self.base_loc.dtype,
                          device=self.base_loc.device)
        x, log_det = self._run(eps, inverse=False)
        return x, self.base_log_prob(eps) - log_det


def alternating_masks(dim: int, n_layers: int) -> list[list[int]]:
    """Masks that keep the first half of the coordinates, then the second, and so on."""
    dim = check_count(dim, "dim", minimum=2)
    n_layers = check_count(n_layers, "n_layers")
    first = [1 if j < dim // 2 else 0 for j in range(dim)]
    second = [1 - m for m in first]
    return [first if k % 2 == 0 else second for k in range(n_layers)]


def coupling_flow(dim: int, n_layers: int, hidden: int = 64,
                  generator: torch.Generator | None = None) -> Flow:
    """A :class:`Flow` of ``n_layers`` coupling layers with alternating masks.

    The layers' parameters are drawn, one layer after the other, from ``generator``
    (required).
    """
    check_generator(generator)
    layers = [AffineCoupling(dim, mask, hidden, generator=generator)
              for mask in alternating_masks(dim, n_layers)]
    return Flow(layers, dim)


# --- training -----------------------------------------------------------------------


@dataclass(frozen=True)
class LikelihoodHistory:
    """Mean log-likelihood per point, on the training and the validation data, at
    ``steps`` (each after that many optimizer steps), and a copy of the flow's
    parameters (its ``state_dict``) at each of them: the flow trained for
    ``steps[i]`` steps is ``flow.load_state_dict(history.parameters[i])``."""

    steps: tuple[int, ...]
    train: tuple[float, ...]
    validation: tuple[float, ...]
    parameters: tuple[dict, ...]


def _check_flow(flow) -> None:
    if not isinstance(flow, Flow):
        raise TypeError(f"flow must be a reparam.flows.Flow, got {type(flow).__name__}")


def _mean_log_prob(flow: Flow, data: torch.Tensor) -> float:
    with torch.no_grad():
        return float(flow._log_prob(data).mean())  # data checked by the caller


def fit_by_likelihood(flow: Flow, data: torch.Tensor, steps: int, learning_rate: float,
                      batch_size: int = 256, validation: torch.Tensor | None = None,
                      evaluate_every: int = 100,
                      generator: torch.Generator | None = None) -> LikelihoodHistory:
    r"""Maximum likelihood: Adam on :math:`-\frac1B\sum_i \log q_\theta(x_i)` over
    minibatches of ``data`` drawn without replacement (reshuffled by ``generator`` each
    pass). This needs :math:`f^{-1}` and its log-determinant, not the sampler.

    Minimizing it minimizes the forward KL divergence
    :math:`\mathrm{KL}(p\,\|\,q_\theta)` from the distribution ``data`` came from, up
    to a constant. Trains ``flow`` in place.
    """
    _check_flow(flow)
    _check_tensor(data, "data", flow.dim)
    _check_dtype(data, flow.base_loc, "data")
    learning_rate = check_scale(learning_rate, "learning_rate")
    steps = check_count(steps, "steps")
    batch_size = check_count(batch_size, "batch_size")
    evaluate_every = check_count(evaluate_every, "evaluate_every")
    check_generator(generator)
    if validation is not None:
        _check_tensor(validation, "validation", flow.dim)
        _check_dtype(validation, flow.base_loc, "validation")
    # fused: one kernel for the whole update; with these tiny networks the optimizer
    # step is a large share of a training step.
    optimizer = torch.optim.Adam(flow.parameters(), lr=learning_rate, fused=True)
    order, position = torch.empty(0, dtype=torch.long), 0
    checkpoints, train_values, validation_values, parameters = [], [], [], []
    for step in range(1, steps + 1):
        if position + batch_size > len(order):
            order, position = torch.randperm(len(data), generator=generator), 0
        batch = data[order[position:position + batch_size]]
        position += batch_size
        loss = -flow._log_prob(batch).mean()  # rows of the checked data
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % evaluate_every == 0 or step == steps:
            checkpoints.append(step)
            parameters.append({name: value.detach().clone()
                               for name, value in flow.state_dict().items()})
            train_values.append(_mean_log_prob(flow, data))
            if validation is not None:
                validation_values.append(_mean_log_prob(flow, validation))
    return LikelihoodHistory(tuple(checkpoints), tuple(train_values),
                             tuple(validation_values), tuple(parameters))


@dataclass(frozen=True)
class ReverseKLHistory:
    """The reverse-KL loss :math:`\\mathbb E_q[\\log q - \\log\\tilde p]` of each step,
    estimated on that step's minibatch of draws."""

    loss: tuple[float, ...]


def fit_by_reverse_kl(flow: Flow, log_target: Callable[[torch.Tensor], torch.Tensor],
                      steps: int, learning_rate: float, batch_size: int = 256,
                      generator: torch.Generator | None = None) -> ReverseKLHistory:
    r"""Reverse KL: Adam on :math:`\frac1B\sum_i [\log q_\theta(x_i) - \log\tilde
    p(x_i)]` with :math:`x_i = f_\theta(\varepsilon_i)` drawn afresh each step.

    ``log_target`` is an unnormalized log-density, :math:`\log\tilde p = \log p +
    \log Z`; the constant only shifts the loss, which is
    :math:`\mathrm{KL}(q_\theta\,\|\,p) - \log Z`. The gradient is the pathwise one:
    :math:`\theta` sits in the map that draws :math:`x_i`, and backpropagation goes
    through the draws. This needs only the sampler and its log-determinant, never
    :math:`f^{-1}`. Trains ``flow`` in place.
    """
    _check_flow(flow)
    learning_rate = check_scale(learning_rate, "learning_rate")
    if not callable(log_target):
        raise TypeError(f"log_target must be callable, got {type(log_target).__name__}")
    steps = check_count(steps, "steps")
    batch_size = check_count(batch_size, "batch_size")
    check_generator(generator)
    # fused: one kernel for the whole update; with these tiny networks the optimizer
    # step is a large share of a training step.
    optimizer = torch.optim.Adam(flow.parameters(), lr=learning_rate, fused=True)
    losses = []
    for _ in range(steps):
        x, log_q = flow.sample(batch_size, generator=generator)
        loss = (log_q - log_target(x)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return ReverseKLHistory(tuple(losses))


# --- the tanh-squashed Gaussian -----------------------------------------------------


def naive_tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    r""":math:`\log(1 - \tanh^2 u)` as written: :math:`-\infty` once :math:`\tanh u`
    rounds to :math:`\pm 1`. Shown in the chapter as the form not to use."""
    return torch.log(1 - torch.tanh(u) ** 2)


def tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    r""":math:`\log\lvert da/du\rvert = \log(1 - \tanh^2 u) = 2(\log 2 - u -
    \operatorname{softplus}(-2u))`, elementwise, finite for every finite ``u``."""
    return 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))


def _as_tensor_like(value, name: str, like: torch.Tensor) -> torch.Tensor:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, torch.Tensor)):
        raise TypeError(f"{name} must be a real number or a tensor, got "
                        f"{type(value).__name__}")
    if isinstance(value, torch.Tensor) and not value.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {value.dtype}")
    tensor = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return tensor


def squashed_gaussian_log_prob(u: torch.Tensor, mean, std) -> torch.Tensor:
    r"""Log-density of :math:`a = \tanh u`, :math:`u \sim \mathcal N(\text{mean},
    \text{std}^2)` elementwise, summed over the last dimension: shape ``(batch,)``.

    .. math::

        \log p(a) = \sum_j \Bigl[\log\mathcal N(u_j; \mu_j, \sigma_j^2)
        - 2\bigl(\log 2 - u_j - \operatorname{softplus}(-2u_j)\bigr)\Bigr] .

    Takes the pre-squash ``u`` (shape ``(batch, d)``), not ``a``: recovering ``u`` as
    ``atanh(a)`` loses it near :math:`\pm 1`. ``mean`` and ``std`` broadcast against
    ``u``; ``std`` must be positive. In float32 the result is finite and accurate
    wherever the Gaussian term itself is representable, i.e. for
    :math:`\lvert u - \mu\rvert/\sigma` up to about :math:`2.6\times 10^{19}`
    (beyond that the true log-density is below float32's range).
    """
    if not isinstance(u, torch.Tensor):
        raise TypeError(f"u must be a torch.Tensor, got {type(u).__name__}")
    if not u.is_floating_point():
        raise TypeError(f"u must have a floating-point dtype, got {u.dtype}")
    if u.ndim != 2:
        raise ValueError(f"u must have shape (batch, d), got {tuple(u.shape)}")
    _check_tensor(u, "u")
    mean = _as_tensor_like(mean, "mean", u)
    std = _as_tensor_like(std, "std", u)
    if not bool((std > 0).all()):
        raise ValueError("std must be > 0 (a standard deviation)")
    try:
        shape = torch.broadcast_shapes(u.shape, mean.shape, std.shape)
    except RuntimeError as error:
        raise ValueError(
            f"mean {tuple(mean.shape)} and std {tuple(std.shape)} do not broadcast "
            f"against u {tuple(u.shape)}"
        ) from error
    if shape != u.shape:
        raise ValueError(
            f"mean and std must broadcast to u's shape {tuple(u.shape)}, got "
            f"{tuple(shape)}"
        )
    # -z^2/2 written as -(z/sqrt 2)^2, so that it overflows only where the value does.
    half_z = (u - mean) / (std * math.sqrt(2.0))
    log_normal = -half_z * half_z - torch.log(std) - 0.5 * math.log(2 * math.pi)
    # Minus the correction, -2(log 2 - |u| - softplus(-2|u|)) (it is even in u), added
    # as |u| + |u| after the Gaussian term: 2|u| alone overflows for |u| > max / 2,
    # and -inf - (-inf) would be NaN where the true value is merely below the range.
    size = u.abs()
    log_density = ((log_normal + size) + size
                   - 2.0 * math.log(2.0) + 2.0 * F.softplus(-2.0 * size))
    return log_density.sum(-1)
