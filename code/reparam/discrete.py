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

The relaxed objective :math:`J_\tau(\theta) = \mathbb E[s\cdot f]` and its gradient
are also available without sampling (:func:`relaxed_objective`, by quadrature), so the
bias of the relaxed gradient can be computed rather than estimated.

All functions return float64 tensors, are deterministic given ``generator``, and raise a
``ValueError`` naming the problem for bad input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._validation import as_real_scalar, check_baseline, check_count, check_generator
from .estimators import subtract_baseline

__all__ = [
    "probabilities",
    "exact_grad",
    "draw_gumbel",
    "gumbel_max_sample",
    "gumbel_softmax_sample",
    "relaxed_grad_at",
    "score_function_rows",
    "score_function_grad",
    "straight_through_rows",
    "gumbel_softmax_grad",
    "relaxed_objective",
]

DTYPE = torch.float64
MAX_QUADRATURE_NODES = 4_000_000
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
    n = check_count(n, "n")
    k = check_count(k, "k")
    check_generator(generator)
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
    n = check_count(n, "n")
    check_generator(generator)
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
    n = check_count(n, "n")
    check_generator(generator)
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


def straight_through_rows(relaxed: torch.Tensor) -> torch.Tensor:
    r"""Rows :math:`y = e_z - \operatorname{sg}(s) + s` with :math:`z = \arg\max_k
    s_k`.

    The forward value is the one-hot vector :math:`e_z` (exactly, up to round-off of
    :math:`s - s`); the backward pass sees :math:`y = s + \text{const}`, so gradients
    flow through ``relaxed`` unchanged. ``relaxed``: an ``(n, K)`` float tensor, usually
    Gumbel-softmax rows still attached to the graph.
    """
    if (
        not isinstance(relaxed, torch.Tensor)
        or relaxed.ndim != 2
        or not relaxed.is_floating_point()
    ):
        raise ValueError("relaxed must be an (n, K) floating-point tensor")
    hard = torch.nn.functional.one_hot(relaxed.argmax(dim=1), relaxed.shape[1])
    return hard.to(relaxed.dtype) - relaxed.detach() + relaxed


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
    n = check_count(n, "n")
    if not isinstance(straight_through, bool):
        raise ValueError(
            f"straight_through must be a bool, got {type(straight_through).__name__}"
        )
    check_generator(generator)
    gumbels = draw_gumbel(n, theta.shape[0], generator)
    if not straight_through:
        relaxed = torch.softmax((theta + gumbels) / tau, dim=1)
        return relaxed_grad_at(f, relaxed, tau)
    # One copy of the logits per draw, so the gradient of the sum w.r.t. copy i is draw
    # i's.
    copies = theta.expand(n, -1).clone().requires_grad_(True)
    forward = straight_through_rows(torch.softmax((copies + gumbels) / tau, dim=1))
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
    n = check_count(int(indices.shape[0]), "len(indices)")
    if bool(((indices < 0) | (indices >= f.shape[0])).any()):
        raise ValueError(f"indices must lie in [0, {f.shape[0] - 1}]")
    baseline = check_baseline(baseline, n)
    p = torch.softmax(theta, dim=0)
    values = f[indices]
    values = subtract_baseline(values, baseline)
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
    n = check_count(n, "n")
    check_baseline(baseline, n)
    check_generator(generator)
    indices = gumbel_max_sample(theta, n, generator)
    return score_function_rows(f, theta, indices, baseline)


# --- the relaxed objective without sampling -------------------------------------------


def _uniform_simplex_rule(k: int, order: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Nodes ``(m, k)`` and weights ``(m,)`` with :math:`\sum_i w_i h(d_i) \approx
    \mathbb E[h(D)]` for :math:`D` uniform on the simplex (Dirichlet(1, ..., 1)).

    Stick-breaking: :math:`D_j = B_j\prod_{i<j}(1 - B_i)` for :math:`j < k` and
    :math:`D_k = \prod_{i<k}(1 - B_i)`, with independent :math:`B_j\sim
    \operatorname{Beta}(1, k - j)`, density :math:`(k - j)(1 - b)^{k-j-1}`; a
    Gauss-Legendre rule of ``order`` nodes on [0, 1] for each :math:`B_j`.
    """
    x, w = np.polynomial.legendre.leggauss(order)
    x, w = (x + 1.0) / 2.0, w / 2.0
    grids = np.meshgrid(*([x] * (k - 1)), indexing="ij")
    weight_grids = np.meshgrid(*([w] * (k - 1)), indexing="ij")
    nodes = np.empty((x.size ** (k - 1), k))
    weights = np.ones(x.size ** (k - 1))
    remaining = np.ones(x.size ** (k - 1))
    for j in range(k - 1):
        b, wb = grids[j].ravel(), weight_grids[j].ravel()
        nodes[:, j] = remaining * b
        weights *= wb * (k - 1 - j) * (1.0 - b) ** (k - 2 - j)
        remaining = remaining * (1.0 - b)
    nodes[:, k - 1] = remaining
    return torch.from_numpy(nodes), torch.from_numpy(weights)


def relaxed_objective(
    f_values: Any, logits: Any, temperature: Any, order: int = 200
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The relaxed objective :math:`J_\tau(\theta) = \mathbb E[s\cdot f]` and its
    gradient :math:`\nabla_\theta J_\tau`, by quadrature (no sampling).

    With :math:`E_k = e^{-G_k}`, i.i.d. Exp(1), :math:`\theta_k + G_k = \theta_k - \log
    E_k`; subtracting :math:`\log\sum_j E_j` from every entry leaves the softmax
    unchanged, so :math:`s = \operatorname{softmax}((\theta - \log D)/\tau)` with
    :math:`D = E/\sum_j E_j` uniform on the simplex. That is a :math:`(K-1)`-dimensional
    integral, done with ``order`` Gauss-Legendre nodes per dimension
    (``order ** (K - 1)`` nodes, at most ``MAX_QUADRATURE_NODES``). The gradient is the
    same integral of :math:`\tfrac1\tau s\odot(f - s\cdot f)`: that integrand is
    bounded by :math:`(\max f - \min f)/\tau`, so the derivative passes under the
    integral. Accuracy falls as :math:`\tau\to 0` (the integrand steepens near the
    faces); compare two orders to check it.

    Returns ``(value, gradient)``: a 0-d and a ``(K,)`` float64 tensor.
    """
    f, theta = _check_costs_and_logits(f_values, logits)
    tau = _check_temperature(temperature)
    order = check_count(order, "order")
    if order < 2:
        raise ValueError(f"order must be >= 2, got {order}")
    k = theta.shape[0]
    if order ** (k - 1) > MAX_QUADRATURE_NODES:
        raise ValueError(
            f"order ** (K - 1) = {order ** (k - 1)} quadrature nodes exceeds "
            f"{MAX_QUADRATURE_NODES}; lower order (K = {k})"
        )
    nodes, weights = _uniform_simplex_rule(k, order)
    relaxed = torch.softmax((theta - nodes.log()) / tau, dim=1)
    value = weights @ (relaxed @ f)
    gradient = weights @ relaxed_grad_at(f, relaxed, tau)
    return value, gradient
