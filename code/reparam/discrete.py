r"""Gradients of an expectation over a categorical choice, exact and estimated.

The objective: :math:`K` costs :math:`f = (f_1,\dots,f_K)`, logits :math:`\theta`,
:math:`p = \operatorname{softmax}(\theta)`, and

.. math::

    J(\theta) = \mathbb E_{z\sim\operatorname{Cat}(p)}[f_z] = p\cdot f,
    \qquad
    \nabla_\theta J = p\odot(f - p\cdot f),

since :math:`\partial p_j/\partial\theta_k = p_j(\delta_{jk} - p_k)`.

Every sampler here starts from the same noise, drawn exactly as
``torch.distributions.ExpRelaxedCategorical.rsample`` draws it: uniforms :math:`U`
clamped to :math:`[\epsilon, 1-\epsilon]` and Gumbel(0, 1) variables :math:`G =
-\log(-\log U)`. Then

- Gumbel-max: :math:`z = \arg\max_k(\theta_k + G_k)` is an exact draw of
  :math:`\operatorname{Cat}(p)`, but a piecewise-constant function of :math:`\theta`;
- Gumbel-softmax / Concrete: :math:`s = \operatorname{softmax}((\theta + G)/\tau)` lies
  inside the simplex and is differentiable, with :math:`\nabla_\theta(s\cdot f) =
  \tfrac1\tau\, s\odot(f - s\cdot f)`;
- straight-through: the forward value is the one-hot :math:`e_z`, the backward pass is
  the relaxed one (``hard - soft.detach() + soft``);
- score function: :math:`(f_z - b)\,\nabla_\theta\log p_z = (f_z - b)(e_z - p)`.

All functions return float64 tensors, are deterministic given ``generator``, and raise a
``ValueError`` naming the problem for bad input.
"""

from __future__ import annotations

import numbers
from typing import Any

import torch

from ._validation import as_real_scalar, check_sample_count

__all__ = [
    "probabilities",
    "exact_grad",
    "draw_gumbel",
    "gumbel_max_sample",
    "gumbel_softmax_sample",
    "relaxed_grad_at",
    "score_function_rows",
    "score_function_grad",
    "gumbel_softmax_grad",
]

DTYPE = torch.float64
Baseline = None | float | str


# --- validation at the boundary -------------------------------------------------------


def _as_vector(values: Any, name: str) -> torch.Tensor:
    """A finite float64 1-d tensor with at least two entries, or a ValueError naming
    ``name``."""
    if isinstance(values, (str, bytes)):
        raise ValueError(f"{name} must be a 1-d sequence of real numbers, got a string")
    try:
        if isinstance(values, torch.Tensor):
            if values.dtype == torch.bool or values.is_complex():
                raise ValueError(f"{name} must be real, got dtype {values.dtype}")
            vector = values.detach().to(DTYPE)
        else:
            vector = torch.as_tensor(values)
            if vector.dtype == torch.bool or vector.is_complex():
                raise ValueError(f"{name} must be real, got dtype {vector.dtype}")
            vector = vector.to(DTYPE)
    except (TypeError, RuntimeError) as error:
        raise ValueError(
            f"{name} must be a 1-d sequence of real numbers ({error})"
        ) from None
    if vector.ndim != 1:
        raise ValueError(
            f"{name} must be 1-d (one entry per category), got shape "
            f"{tuple(vector.shape)}"
        )
    if vector.shape[0] < 2:
        raise ValueError(
            f"{name} must have K >= 2 categories, got K = {vector.shape[0]}"
        )
    if not bool(torch.isfinite(vector).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return vector


def _check_logits(logits: Any) -> torch.Tensor:
    return _as_vector(logits, "logits")


def _check_costs_and_logits(
    f_values: Any, logits: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    f = _as_vector(f_values, "f_values")
    theta = _check_logits(logits)
    if f.shape != theta.shape:
        raise ValueError(
            f"f_values and logits must have the same length K, got "
            f"{f.shape[0]} and {theta.shape[0]}"
        )
    return f, theta


def _check_temperature(temperature: Any) -> float:
    tau = as_real_scalar(temperature, "temperature")  # ValueError for NaN / infinity
    if tau <= 0.0:
        raise ValueError(f"temperature must be > 0, got {tau}")
    return tau


def _check_generator(generator: Any) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got "
            f"{type(generator).__name__}"
        )


def _check_baseline(baseline: Any, n: int) -> Baseline:
    if baseline is None:
        return None
    if isinstance(baseline, str):
        if baseline != "leave-one-out":
            raise ValueError(
                f"baseline must be None, a number or 'leave-one-out', got {baseline!r}"
            )
        if n < 2:
            raise ValueError("baseline='leave-one-out' needs n >= 2 draws")
        return baseline
    if not isinstance(baseline, numbers.Real) and not isinstance(
        baseline, torch.Tensor
    ):
        raise ValueError(
            f"baseline must be None, a number or 'leave-one-out', got "
            f"{type(baseline).__name__}"
        )
    return as_real_scalar(baseline, "baseline")


# --- exact quantities -----------------------------------------------------------------


def probabilities(logits: Any) -> torch.Tensor:
    r""":math:`p = \operatorname{softmax}(\theta)`, float64, shape ``(K,)``."""
    return torch.softmax(_check_logits(logits), dim=0)


def exact_grad(f_values: Any, logits: Any) -> torch.Tensor:
    r""":math:`\nabla_\theta\sum_k \operatorname{softmax}(\theta)_k f_k = p\odot(f -
    p\cdot f)`.

    Shape ``(K,)``, float64. The entries sum to zero: adding a constant to every logit
    changes nothing.
    """
    f, theta = _check_costs_and_logits(f_values, logits)
    p = torch.softmax(theta, dim=0)
    return p * (f - torch.dot(p, f))


# --- noise and samples ----------------------------------------------------------------


def draw_gumbel(
    n: int, k: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``(n, k)`` float64 Gumbel(0, 1) draws, drawn as torch's relaxed categoricals draw
    them.

    ``torch.distributions.ExpRelaxedCategorical.rsample`` does ``torch.rand`` (float64
    here), clamps to ``[eps, 1 - eps]`` (``clamp_probs``, so the logs stay finite) and
    returns ``-log(-log U)``; with the same generator state both see the same G.
    """
    n = check_sample_count(n, "n")
    k = check_sample_count(k, "k")
    _check_generator(generator)
    eps = torch.finfo(DTYPE).eps
    uniforms = torch.rand((n, k), dtype=DTYPE, generator=generator).clamp(
        eps, 1.0 - eps
    )
    return -(-uniforms.log()).log()


def gumbel_max_sample(
    logits: Any, n: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""``n`` int64 category indices :math:`z_i = \arg\max_k(\theta_k + G_{ik})`.

    Exactly distributed as :math:`\operatorname{Cat}(\operatorname{softmax}\theta)`.
    """
    theta = _check_logits(logits)
    n = check_sample_count(n, "n")
    _check_generator(generator)
    gumbels = draw_gumbel(n, theta.shape[0], generator)
    return torch.argmax(theta + gumbels, dim=1)


def gumbel_softmax_sample(
    logits: Any, temperature: Any, n: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""``(n, K)`` relaxed one-hot rows :math:`s_i = \operatorname{softmax}((\theta +
    G_i)/\tau)`.

    Same law as ``torch.distributions.RelaxedOneHotCategorical(temperature,
    logits=logits)`` (and the same values for the same generator state).
    """
    theta = _check_logits(logits)
    tau = _check_temperature(temperature)
    n = check_sample_count(n, "n")
    _check_generator(generator)
    gumbels = draw_gumbel(n, theta.shape[0], generator)
    return torch.softmax((theta + gumbels) / tau, dim=1)


# --- estimators -----------------------------------------------------------------------


def relaxed_grad_at(
    f_values: Any, relaxed: torch.Tensor, temperature: Any
) -> torch.Tensor:
    r"""Rows :math:`\nabla_\theta(s_i\cdot f) = \tfrac1\tau\, s_i\odot(f - s_i\cdot f)`.

    ``relaxed`` holds rows :math:`s_i = \operatorname{softmax}((\theta + G_i)/\tau)`;
    the Jacobian of a softmax is :math:`\operatorname{diag}(s) - s s^\top`, divided by
    :math:`\tau` for the scaled argument.
    """
    f = _as_vector(f_values, "f_values")
    tau = _check_temperature(temperature)
    if (
        not isinstance(relaxed, torch.Tensor)
        or relaxed.ndim != 2
        or relaxed.shape[1] != f.shape[0]
    ):
        raise ValueError(f"relaxed must be an (n, {f.shape[0]}) tensor")
    relaxed = relaxed.to(DTYPE)
    return relaxed * (f - (relaxed @ f).unsqueeze(1)) / tau


def gumbel_softmax_grad(
    f_values: Any,
    logits: Any,
    temperature: Any,
    n: int,
    generator: torch.Generator | None = None,
    straight_through: bool = False,
) -> torch.Tensor:
    r"""``(n, K)`` per-sample gradients :math:`\nabla_\theta(y_i\cdot f)` through a
    relaxed draw.

    ``straight_through=False``: :math:`y_i = s_i`, the Gumbel-softmax sample; row ``i``
    is :math:`\tfrac1\tau s_i\odot(f - s_i\cdot f)`, an unbiased estimate of the
    gradient of the *relaxed* objective :math:`\mathbb E[s\cdot f]`, a biased one of
    :math:`\nabla J`.

    ``straight_through=True``: :math:`y_i = e_{z_i} - \operatorname{sg}(s_i) + s_i` with
    :math:`z_i = \arg\max s_i`: the forward value is the one-hot draw (so
    :math:`y_i\cdot f = f_{z_i}`, an exact sample of the cost), the backward pass is the
    relaxed one. For this objective, linear in :math:`y`, the upstream gradient
    :math:`\partial(y\cdot f)/\partial y = f` does not depend on where it is evaluated,
    so the rows equal the relaxed rows draw for draw; computed here by autograd through
    the straight-through graph, as a network would.
    """
    f, theta = _check_costs_and_logits(f_values, logits)
    tau = _check_temperature(temperature)
    n = check_sample_count(n, "n")
    if not isinstance(straight_through, bool):
        raise ValueError(
            f"straight_through must be a bool, got {type(straight_through).__name__}"
        )
    _check_generator(generator)
    gumbels = draw_gumbel(n, theta.shape[0], generator)
    if not straight_through:
        relaxed = torch.softmax((theta + gumbels) / tau, dim=1)
        return relaxed_grad_at(f, relaxed, tau)
    # One copy of the logits per draw, so the gradient of the sum w.r.t. copy i is draw
    # i's.
    copies = theta.expand(n, -1).clone().requires_grad_(True)
    soft = torch.softmax((copies + gumbels) / tau, dim=1)
    hard = torch.nn.functional.one_hot(soft.argmax(dim=1), theta.shape[0]).to(DTYPE)
    forward = hard - soft.detach() + soft
    (grad,) = torch.autograd.grad((forward @ f).sum(), copies)
    return grad


def score_function_rows(
    f_values: Any, logits: Any, indices: torch.Tensor, baseline: Baseline = None
) -> torch.Tensor:
    r"""Rows :math:`(f_{z_i} - b_i)(e_{z_i} - p)` for given draws ``indices`` (int64,
    ``(n,)``).

    :math:`\nabla_\theta\log p_z = e_z - p`. ``baseline``: ``None`` (:math:`b = 0`), a
    number (a constant :math:`b`), or ``"leave-one-out"``: :math:`b_i =
    \frac{1}{n-1}\sum_{j\ne i} f_{z_j}`, independent of draw :math:`i`, so the rows stay
    unbiased.
    """
    f, theta = _check_costs_and_logits(f_values, logits)
    if (
        not isinstance(indices, torch.Tensor)
        or indices.ndim != 1
        or indices.dtype != torch.int64
    ):
        raise ValueError("indices must be a 1-d int64 tensor of category indices")
    n = check_sample_count(int(indices.shape[0]), "len(indices)")
    if bool(((indices < 0) | (indices >= f.shape[0])).any()):
        raise ValueError(f"indices must lie in [0, {f.shape[0] - 1}]")
    baseline = _check_baseline(baseline, n)
    p = torch.softmax(theta, dim=0)
    values = f[indices]
    if baseline == "leave-one-out":
        values = values - (values.sum() - values) / (n - 1)
    elif baseline is not None:
        values = values - baseline
    score = torch.nn.functional.one_hot(indices, f.shape[0]).to(DTYPE) - p
    return values.unsqueeze(1) * score


def score_function_grad(
    f_values: Any,
    logits: Any,
    n: int,
    generator: torch.Generator | None = None,
    baseline: Baseline = None,
) -> torch.Tensor:
    r"""``(n, K)`` per-sample score-function estimates of :func:`exact_grad`.

    Row ``i`` is :math:`(f_{z_i} - b_i)(e_{z_i} - p)` with :math:`z_i` drawn by
    :func:`gumbel_max_sample` from ``generator``; see :func:`score_function_rows` for
    ``baseline``. Unbiased for every ``baseline`` and every n (n >= 2 for
    leave-one-out).
    """
    f, theta = _check_costs_and_logits(f_values, logits)
    n = check_sample_count(n, "n")
    _check_baseline(baseline, n)
    _check_generator(generator)
    indices = gumbel_max_sample(theta, n, generator)
    return score_function_rows(f, theta, indices, baseline)
