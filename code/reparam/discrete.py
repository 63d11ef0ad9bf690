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
  inside the simplex and is differentiable; for a cost :math:`g(y)` the estimate is
  :math:`\nabla_\theta g(s) = D_s\nabla g(s)` with the softmax Jacobian
  :math:`D_s = \partial s/\partial\theta = (\operatorname{diag}s - ss^\top)/\tau`,
  which is :math:`\tfrac1\tau\, s\odot(f - s\cdot f)` for the linear cost
  :math:`g(y) = y\cdot f`;
- straight-through (Jang et al.'s Gumbel form of Bengio et al.'s estimator): the
  forward value is the one-hot :math:`e_z`, the backward pass the relaxed one
  (``hard - soft.detach() + soft``), so the estimate is :math:`D_s\nabla g(e_z)`;
- score function: :math:`(f_z - b)\,\nabla_\theta\log p_z = (f_z - b)(e_z - p)`;
- REBAR (Tucker et al. 2017; RELAX, Grathwohl et al. 2018, with the relaxed cost as its
  control variate): the score function with a control variate built from the
  relaxation, unbiased for every temperature.

Exact values, without sampling: :func:`exact_grad`; the per-draw variance and the
n-draw mean squared error of the score function (:func:`score_function_variance`,
:func:`score_function_mse`, by enumeration); and every expectation over the relaxed
sample and the Gumbel-max category, by quadrature (:func:`relaxed_expectation`, behind
:func:`relaxed_objective`, :func:`gumbel_softmax_moments` and
:func:`straight_through_moments`). So the bias of the relaxed estimators is computed,
not estimated.

Conventions (those of the package, see :mod:`reparam`): logits and costs are 1-d, one
entry per category (no batch dimension), :math:`K \ge 2`. Logits may be
:math:`-\infty` (a masked category, probability 0, as in
``torch.distributions.Categorical``) as long as one is finite; costs are finite.
Lists are read as float64 (never through float32). A *cost* is either the ``K`` values
``f`` of the linear cost :math:`g(y) = y\cdot f` or a callable mapping an ``(n, K)``
tensor of rows :math:`y` to the ``(n,)`` costs :math:`g(y)`, differentiable by autograd.
Per-sample estimators, ``*_grad``, return ``(n, K)`` float64 rows (row ``i`` from draw
``i`` alone); ``*_grad_at`` compute the same rows for given draws. Functions are
deterministic given ``generator``; a wrong type raises ``TypeError``, a wrong value
``ValueError``, naming the argument.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch

from ._validation import (
    LEAVE_ONE_OUT,
    as_real_scalar,
    check_baseline,
    check_choice,
    check_count,
    check_generator,
)
from .estimators import subtract_baseline

__all__ = [
    "EstimatorMoments",
    "RelaxedObjective",
    "probabilities",
    "exact_grad",
    "optimal_baseline",
    "score_function_variance",
    "score_function_mse",
    "draw_gumbel",
    "gumbel_max_sample",
    "gumbel_softmax_sample",
    "straight_through_sample",
    "concrete_log_density",
    "conditional_gumbel_sample",
    "gumbel_softmax_grad",
    "gumbel_softmax_grad_at",
    "straight_through_grad",
    "score_function_grad",
    "score_function_grad_at",
    "rebar_grad",
    "best_rebar_eta",
    "RebarChoice",
    "PerDrawVariance",
    "per_draw_variance",
    "sgd_paths",
    "relaxed_expectation",
    "relaxed_objective",
    "gumbel_softmax_moments",
    "straight_through_moments",
]

DTYPE = torch.float64
MAX_QUADRATURE_NODES = 4_000_000
MAX_OUTCOMES = 2_000_000
Baseline = None | float | str
Cost = Any  # K values f (the linear cost y . f) or a callable (n, K) rows -> (n,)


class RelaxedObjective(NamedTuple):
    """:math:`J_\\tau(\\theta) = \\mathbb E[g(s)]` (0-d) and its gradient ``(K,)``."""

    value: torch.Tensor
    gradient: torch.Tensor


class RebarChoice(NamedTuple):
    """REBAR's variance-minimizing ``eta`` on given draws and the per-draw variance
    (trace of the covariance) there."""

    eta: float
    variance: float


class PerDrawVariance(NamedTuple):
    """The per-draw variance of rows (the trace of their covariance) and its standard
    error."""

    value: float
    standard_error: float


class EstimatorMoments(NamedTuple):
    """The exact mean ``(K,)`` of an estimator's rows and their per-draw variance (the
    trace of the covariance, a float)."""

    mean: torch.Tensor
    variance: float


# --- validation at the boundary -------------------------------------------------------


def _as_vector(values: Any, name: str) -> torch.Tensor:
    """A float64 1-d tensor with at least two entries (not yet checked for finiteness).

    ``TypeError`` for a string, bools, complex numbers or non-numbers; ``ValueError``
    for a wrong shape. Lists go through NumPy, which reads Python floats as float64.
    """
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be a 1-d sequence of real numbers, got a string")
    if isinstance(values, torch.Tensor):
        if values.dtype == torch.bool or values.is_complex():
            raise TypeError(f"{name} must be real, got dtype {values.dtype}")
        vector = values.detach().to(DTYPE)
    else:
        try:
            array = np.asarray(values)
        except ValueError as error:  # e.g. a ragged list
            raise ValueError(f"{name} must be 1-d ({error})") from None
        if array.dtype.kind not in "iuf":
            kind = "bools" if array.dtype.kind == "b" else f"dtype {array.dtype}"
            raise TypeError(f"{name} must hold real numbers, got {kind}")
        vector = torch.as_tensor(array, dtype=DTYPE)
    if vector.ndim != 1:
        raise ValueError(
            f"{name} must be 1-d (one entry per category; no batch dimension), got "
            f"shape {tuple(vector.shape)}"
        )
    if vector.shape[0] < 2:
        raise ValueError(
            f"{name} must have K >= 2 categories, got K = {vector.shape[0]}"
        )
    return vector


def _check_costs(f_values: Any, name: str = "f_values") -> torch.Tensor:
    f = _as_vector(f_values, name)
    if not bool(torch.isfinite(f).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return f


def _check_logits(logits: Any) -> torch.Tensor:
    """Logits: no NaN, no +inf; -inf masks a category; at least one finite."""
    theta = _as_vector(logits, "logits")
    if bool(torch.isnan(theta).any()) or bool((theta == math.inf).any()):
        raise ValueError("logits contains NaN or +inf values (-inf masks a category)")
    if not bool(torch.isfinite(theta).any()):
        raise ValueError("logits must have at least one finite entry, got all -inf")
    return theta


def _check_same_length(f: torch.Tensor, theta: torch.Tensor) -> None:
    if f.shape != theta.shape:
        raise ValueError(
            f"f_values and logits must have the same length K, got "
            f"{f.shape[0]} and {theta.shape[0]}"
        )


def _check_costs_and_logits(
    f_values: Any, logits: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    f, theta = _check_costs(f_values), _check_logits(logits)
    _check_same_length(f, theta)
    return f, theta


def _check_temperature(temperature: Any) -> float:
    """A temperature: a finite real number, at least the smallest normal float64.

    A subnormal temperature is refused: :math:`1/\\tau` overflows to infinity.
    """
    tau = as_real_scalar(temperature, "temperature")  # ValueError for NaN / infinity
    if tau <= 0.0:
        raise ValueError(f"temperature must be > 0, got {tau}")
    tiny = torch.finfo(DTYPE).tiny
    if tau < tiny:
        raise ValueError(
            f"temperature must be at least {tiny:.3g} (the smallest normal float64), "
            f"got the subnormal {tau:.3g}"
        )
    return tau


def _cost_function(cost: Cost, k: int) -> tuple[Callable, torch.Tensor | None]:
    """``(g, f)``: the cost as a callable on ``(n, K)`` rows, and ``f`` if it is
    linear."""
    if callable(cost):
        def checked(rows: torch.Tensor) -> torch.Tensor:
            values = cost(rows)
            if not isinstance(values, torch.Tensor):
                raise TypeError(
                    f"cost must return a torch.Tensor, got {type(values).__name__}"
                )
            if values.shape != rows.shape[:1]:
                raise ValueError(
                    f"cost must return one value per row, shape {tuple(rows.shape[:1])}"
                    f", got {tuple(values.shape)}"
                )
            return values

        return checked, None
    f = _check_costs(cost, "cost")
    if f.shape[0] != k:
        raise ValueError(
            f"cost and logits must have the same length K, got {f.shape[0]} and {k}"
        )
    return (lambda rows: rows @ f), f


def _check_relaxed(relaxed: Any, k: int | None = None) -> torch.Tensor:
    if not isinstance(relaxed, torch.Tensor):
        raise TypeError(f"relaxed must be a torch.Tensor, got {type(relaxed).__name__}")
    if not relaxed.is_floating_point():
        raise TypeError(f"relaxed must be a floating-point tensor, got {relaxed.dtype}")
    if relaxed.ndim != 2 or (k is not None and relaxed.shape[1] != k):
        columns = "K" if k is None else str(k)
        raise ValueError(
            f"relaxed must be an (n, {columns}) tensor, got shape "
            f"{tuple(relaxed.shape)}"
        )
    return relaxed


def _check_indices(indices: Any, k: int) -> torch.Tensor:
    if not isinstance(indices, torch.Tensor):
        raise TypeError(f"indices must be a torch.Tensor, got {type(indices).__name__}")
    if indices.dtype != torch.int64:
        raise TypeError(f"indices must have dtype int64, got {indices.dtype}")
    if indices.ndim != 1:
        raise ValueError(f"indices must be 1-d, got shape {tuple(indices.shape)}")
    if bool(((indices < 0) | (indices >= k)).any()):
        raise ValueError(f"indices must lie in [0, {k - 1}]")
    return indices


def _check_order(order: Any, k: int) -> int:
    order = check_count(order, "order", minimum=2)
    if order ** (k - 1) > MAX_QUADRATURE_NODES:
        raise ValueError(
            f"order ** (K - 1) = {order ** (k - 1)} quadrature nodes exceeds "
            f"{MAX_QUADRATURE_NODES}; lower order (K = {k})"
        )
    return order


# --- exact quantities -----------------------------------------------------------------


def probabilities(logits: Any) -> torch.Tensor:
    r""":math:`p = \operatorname{softmax}(\theta)`, float64, shape ``(K,)``."""
    return torch.softmax(_check_logits(logits), dim=0)


def exact_grad(f_values: Any, logits: Any) -> torch.Tensor:
    r""":math:`\nabla_\theta\sum_k \operatorname{softmax}(\theta)_k f_k = p\odot(f -
    p\cdot f)`.

    Shape ``(K,)``, float64: K evaluations of the cost. The entries sum to zero: adding
    a constant to every logit changes nothing.
    """
    f, theta = _check_costs_and_logits(f_values, logits)
    p = torch.softmax(theta, dim=0)
    return p * (f - torch.dot(p, f))


def _score_norms(p: torch.Tensor) -> torch.Tensor:
    r""":math:`\lVert e_k - p\rVert^2 = 1 - 2p_k + \lVert p\rVert^2` for each k."""
    return 1.0 - 2.0 * p + torch.dot(p, p)


def optimal_baseline(f_values: Any, logits: Any) -> float:
    r"""The constant :math:`b` that minimizes the per-draw variance of the score
    function: :math:`b^\star = \sum_k p_k c_k f_k / \sum_k p_k c_k` with :math:`c_k =
    \lVert e_k - p\rVert^2`.

    The second moment :math:`\sum_k p_k (f_k - b)^2 c_k` is a parabola in :math:`b`;
    its mean does not depend on :math:`b`.
    """
    f, theta = _check_costs_and_logits(f_values, logits)
    p = torch.softmax(theta, dim=0)
    weights = p * _score_norms(p)
    return float(weights @ f / weights.sum())


def score_function_variance(
    f_values: Any, logits: Any, baseline: float | None = None
) -> float:
    r"""Exact per-draw variance (trace of the covariance) of :math:`(f_z - b)(e_z - p)`
    for a constant baseline :math:`b` (``None``: 0), by summing over the K outcomes:
    :math:`\sum_k p_k (f_k - b)^2\lVert e_k - p\rVert^2 - \lVert\nabla J\rVert^2`."""
    f, theta = _check_costs_and_logits(f_values, logits)
    b = 0.0 if baseline is None else as_real_scalar(baseline, "baseline")
    p = torch.softmax(theta, dim=0)
    gradient = p * (f - torch.dot(p, f))
    second_moment = (p * (f - b) ** 2 * _score_norms(p)).sum()
    return float(second_moment - torch.dot(gradient, gradient))


def _count_vectors(n: int, k: int) -> torch.Tensor:
    """Every ``(c_1, ..., c_K)`` of non-negative integers summing to n (stars and
    bars), as an ``(m, K)`` float64 tensor."""
    rows = []
    for bars in itertools.combinations(range(n + k - 1), k - 1):
        edges = (-1, *bars, n + k - 1)
        rows.append([edges[j + 1] - edges[j] - 1 for j in range(k)])
    return torch.tensor(rows, dtype=DTYPE)


def score_function_mse(
    f_values: Any, logits: Any, n: int, baseline: Baseline = None
) -> float:
    r"""Exact :math:`\mathbb E\lVert\bar g_n - \nabla J\rVert^2` of the mean
    :math:`\bar g_n` of ``n`` score-function rows, for any ``baseline`` (``None``, a
    number, or ``"leave-one-out"``).

    The mean of the rows depends on the draws only through the counts
    :math:`c` of each category, which are Multinomial(n, p): the sum runs over the
    :math:`\binom{n + K - 1}{K - 1}` count vectors (at most ``MAX_OUTCOMES``), not over
    the :math:`K^n` sequences. For a constant baseline it equals the per-draw variance
    over n.
    """
    f, theta = _check_costs_and_logits(f_values, logits)
    n = check_count(n, "n")
    baseline = check_baseline(baseline, n)
    k = f.shape[0]
    if math.comb(n + k - 1, k - 1) > MAX_OUTCOMES:
        raise ValueError(
            f"n = {n} with K = {k} gives {math.comb(n + k - 1, k - 1)} count vectors, "
            f"more than {MAX_OUTCOMES}; lower n"
        )
    p = torch.softmax(theta, dim=0)
    counts = _count_vectors(n, k)
    log_p = torch.log(p)
    terms = torch.where(counts > 0, counts * log_p, torch.zeros((), dtype=DTYPE))
    log_probability = (
        math.lgamma(n + 1) - torch.lgamma(counts + 1.0).sum(1) + terms.sum(1)
    )
    if baseline == LEAVE_ONE_OUT:
        total = counts @ f
        b = (total.unsqueeze(1) - f) / (n - 1)  # b for a draw of category k
    else:
        b = torch.full_like(counts, 0.0 if baseline is None else baseline)
    coefficients = counts * (f - b) / n
    mean_rows = coefficients - coefficients.sum(1, keepdim=True) * p
    error = mean_rows - p * (f - torch.dot(p, f))
    return float(torch.exp(log_probability) @ (error**2).sum(1))


# --- noise and samples ----------------------------------------------------------------


def draw_gumbel(
    n: int, k: int, generator: torch.Generator
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
    return -(-_draw_uniform(n, k, generator).log()).log()


def _draw_uniform(n: int, k: int, generator: torch.Generator) -> torch.Tensor:
    eps = torch.finfo(DTYPE).eps
    return torch.rand((n, k), dtype=DTYPE, generator=generator).clamp(eps, 1.0 - eps)


def _relaxed(scores: torch.Tensor, tau: float) -> torch.Tensor:
    r""":math:`\operatorname{softmax}(x/\tau)` row by row, with the row maximum
    subtracted *before* dividing by :math:`\tau`, so that a tiny :math:`\tau` gives a
    one-hot row instead of :math:`\infty - \infty`. The maximum is a constant for
    autograd: a softmax does not change when every entry is shifted."""
    top = scores.max(dim=-1, keepdim=True).values.detach()
    return torch.softmax((scores - top) / tau, dim=-1)


def gumbel_max_sample(
    logits: Any, n: int, generator: torch.Generator
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
    logits: Any, temperature: Any, n: int, generator: torch.Generator
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
    return _relaxed(theta + gumbels, tau)


def concrete_log_density(
    relaxed: torch.Tensor, logits: Any, temperature: Any
) -> torch.Tensor:
    r"""Log-density of the Concrete (Gumbel-softmax) law at rows ``relaxed``,
    ``(n, K)``, on the open simplex: ``(n,)`` float64 (Maddison, Mnih & Teh 2017).

    With :math:`\alpha_k = e^{\theta_k}`, the density of :math:`(s_1, \dots, s_{K-1})`
    (and :math:`s_K = 1 - \sum_{k<K} s_k`) is

    .. math::

        p_\tau(s) = (K-1)!\;\tau^{K-1}\prod_{k=1}^K
        \frac{\alpha_k s_k^{-\tau-1}}{\sum_i \alpha_i s_i^{-\tau}},

    the same function as ``RelaxedOneHotCategorical(temperature,
    logits=logits).log_prob``. Rows must be positive; the logits finite.
    """
    theta = _check_logits(logits)
    if not bool(torch.isfinite(theta).all()):
        raise ValueError("logits must be finite for the Concrete density")
    tau = _check_temperature(temperature)
    relaxed = _check_relaxed(relaxed, theta.shape[0]).to(DTYPE)
    if not bool((relaxed > 0).all()):
        raise ValueError("relaxed must have positive entries (the open simplex)")
    k = theta.shape[0]
    log_s = relaxed.log()
    return (
        math.lgamma(k) + (k - 1) * math.log(tau)
        + (theta - (tau + 1.0) * log_s).sum(1)
        - k * torch.logsumexp(theta - tau * log_s, dim=1)
    )


def straight_through_sample(relaxed: torch.Tensor) -> torch.Tensor:
    r"""Rows :math:`y = e_z - \operatorname{sg}(s) + s` with :math:`z = \arg\max_k
    s_k`.

    The forward value is the one-hot vector :math:`e_z` (exactly, up to round-off of
    :math:`s - s`); the backward pass sees :math:`y = s + \text{const}`, so gradients
    flow through ``relaxed`` unchanged. ``relaxed``: an ``(n, K)`` float tensor, usually
    Gumbel-softmax rows still attached to the graph.
    """
    relaxed = _check_relaxed(relaxed)
    hard = torch.nn.functional.one_hot(relaxed.argmax(dim=1), relaxed.shape[1])
    return hard.to(relaxed.dtype) - relaxed.detach() + relaxed


def _conditional_perturbed(
    log_p: torch.Tensor, indices: torch.Tensor, uniforms: torch.Tensor
) -> torch.Tensor:
    r"""Perturbed log-probabilities :math:`\tilde x = \log p + G` drawn given that
    their argmax is ``indices``, differentiable in ``log_p`` (Tucker et al. 2017).

    The maximum of :math:`\log p_k + G_k` is Gumbel(0, 1), independent of which k
    wins: :math:`\tilde x_z = -\log(-\log v_z)` for the winner :math:`z`. Every other
    entry is Gumbel(log p_i) conditioned to lie below :math:`\tilde x_z`
    (right-truncated there); inverting its CDF :math:`\exp(-p_i e^{-x})` divided by
    its value at :math:`\tilde x_z` gives :math:`\tilde x_i = -\log(-\log v_i/p_i -
    \log v_z)`.
    """
    winner = torch.nn.functional.one_hot(indices, log_p.shape[1]).bool()
    log_v = uniforms.log()
    log_v_winner = log_v.gather(1, indices.unsqueeze(1))
    others = -torch.log(-log_v / log_p.exp() - log_v_winner)
    return torch.where(winner, -torch.log(-log_v_winner), others)


def conditional_gumbel_sample(
    logits: Any, indices: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    r"""``(n, K)`` perturbed log-probabilities :math:`\log p + G` conditioned on their
    argmax being ``indices`` (int64, ``(n,)``): the :math:`\tilde x` of REBAR.

    Same law as :math:`\log p + G` restricted to the draws whose argmax is
    ``indices[i]``. Categories with logit :math:`-\infty` get :math:`-\infty`.
    """
    theta = _check_logits(logits)
    indices = _check_indices(indices, theta.shape[0])
    check_generator(generator)
    if bool((torch.isinf(theta)[indices]).any()):
        raise ValueError("indices must not point to a masked (-inf) category")
    uniforms = _draw_uniform(indices.shape[0], theta.shape[0], generator)
    return _conditional_perturbed(
        torch.log_softmax(theta, 0).expand(indices.shape[0], -1), indices, uniforms
    )


# --- estimators -----------------------------------------------------------------------


def gumbel_softmax_grad_at(
    f_values: Any, relaxed: torch.Tensor, temperature: Any
) -> torch.Tensor:
    r"""Rows :math:`\nabla_\theta(s_i\cdot f) = \tfrac1\tau\, s_i\odot(f - s_i\cdot f)`
    for given relaxed rows ``relaxed`` (``(n, K)``) and the linear cost.

    ``relaxed`` holds rows :math:`s_i = \operatorname{softmax}((\theta + G_i)/\tau)`;
    the Jacobian of a softmax is :math:`\operatorname{diag}(s) - s s^\top`, divided by
    :math:`\tau` for the scaled argument.
    """
    f = _check_costs(f_values)
    tau = _check_temperature(temperature)
    relaxed = _check_relaxed(relaxed, f.shape[0]).to(DTYPE)
    return relaxed * (f - (relaxed @ f).unsqueeze(1)) / tau


def _relaxed_draws(cost, logits, temperature, n, generator):
    """The checked arguments of a relaxed estimator and its ``(n, K)`` Gumbel noise:
    ``(theta, g, f, tau, gumbels)``, ``f`` None unless the cost is linear."""
    theta = _check_logits(logits)
    g, f = _cost_function(cost, theta.shape[0])
    tau = _check_temperature(temperature)
    n = check_count(n, "n")
    check_generator(generator)
    return theta, g, f, tau, draw_gumbel(n, theta.shape[0], generator)


def _autograd_rows(
    cost: Callable, theta: torch.Tensor, tau: float, gumbels: torch.Tensor,
    straight_through: bool,
) -> torch.Tensor:
    # One copy of the logits per draw, so the gradient of the sum with respect to copy
    # i is draw i's alone.
    copies = theta.expand(gumbels.shape[0], -1).clone().requires_grad_(True)
    relaxed = _relaxed(copies + gumbels, tau)
    rows = straight_through_sample(relaxed) if straight_through else relaxed
    (grad,) = torch.autograd.grad(cost(rows).sum(), copies)
    return grad.detach()


def gumbel_softmax_grad(
    cost: Cost,
    logits: Any,
    temperature: Any,
    n: int,
    generator: torch.Generator,
) -> torch.Tensor:
    r"""``(n, K)`` per-sample Gumbel-softmax gradients :math:`\nabla_\theta g(s_i)`.

    Row ``i`` is an unbiased estimate of the gradient of the *relaxed* objective
    :math:`\mathbb E[g(s)]`, a biased one of :math:`\nabla J`. For the linear cost
    (``cost`` = f) it is :math:`\tfrac1\tau s_i\odot(f - s_i\cdot f)`; for a callable
    cost, autograd through the relaxed sample.
    """
    theta, g, f, tau, gumbels = _relaxed_draws(cost, logits, temperature, n, generator)
    if f is not None:
        return gumbel_softmax_grad_at(f, _relaxed(theta + gumbels, tau), tau)
    return _autograd_rows(g, theta, tau, gumbels, straight_through=False)


def straight_through_grad(
    cost: Cost,
    logits: Any,
    temperature: Any,
    n: int,
    generator: torch.Generator,
) -> torch.Tensor:
    r"""``(n, K)`` per-sample straight-through Gumbel-softmax gradients.

    :math:`y_i = e_{z_i} - \operatorname{sg}(s_i) + s_i` with :math:`z_i = \arg\max
    s_i`: the forward value is the one-hot draw (so :math:`g(y_i) = g(e_{z_i})`, an
    exact sample of the cost), the backward pass the relaxed one, so row ``i`` is
    :math:`D_{s_i}\nabla g(e_{z_i})`. For the linear cost :math:`\nabla g = f`
    everywhere and the rows equal the Gumbel-softmax rows draw for draw; for a cost not
    linear in :math:`y` they differ. Computed by autograd through the straight-through
    graph, as a network would.
    """
    theta, g, _, tau, gumbels = _relaxed_draws(cost, logits, temperature, n, generator)
    return _autograd_rows(g, theta, tau, gumbels, straight_through=True)


def score_function_grad_at(
    f_values: Any, logits: Any, indices: torch.Tensor, baseline: Baseline = None
) -> torch.Tensor:
    r"""Rows :math:`(f_{z_i} - b_i)(e_{z_i} - p)` for given draws ``indices`` (int64,
    ``(n,)``).

    :math:`\nabla_\theta\log p_z = e_z - p`. ``baseline``: ``None`` (:math:`b = 0`), a
    number (a constant :math:`b`), or ``"leave-one-out"``: :math:`b_i =
    \frac{1}{n-1}\sum_{j\ne i} f_{z_j}`, independent of draw :math:`i`, so the rows stay
    unbiased (Kool, van Hoof & Welling 2019). It is :math:`n/(n-1)` times the
    estimator with the plain sample mean as baseline, which includes draw :math:`i` and
    so shrinks the mean by :math:`(n-1)/n`.
    """
    f, theta = _check_costs_and_logits(f_values, logits)
    indices = _check_indices(indices, f.shape[0])
    n = check_count(int(indices.shape[0]), "len(indices)")
    p = torch.softmax(theta, dim=0)
    if bool((p[indices] == 0).any()):
        raise ValueError("indices must not point to a masked (-inf) category")
    baseline = check_baseline(baseline, n)
    values = subtract_baseline(f[indices], baseline)
    score = torch.nn.functional.one_hot(indices, f.shape[0]).to(DTYPE) - p
    return values.unsqueeze(1) * score


def score_function_grad(
    f_values: Any,
    logits: Any,
    n: int,
    generator: torch.Generator,
    baseline: Baseline = None,
) -> torch.Tensor:
    r"""``(n, K)`` per-sample score-function estimates of :func:`exact_grad`.

    Row ``i`` is :math:`(f_{z_i} - b_i)(e_{z_i} - p)` with :math:`z_i` drawn by
    :func:`gumbel_max_sample` from ``generator``; see :func:`score_function_grad_at`
    for ``baseline``. Unbiased for every ``baseline`` and every n (n >= 2 for
    leave-one-out).
    """
    f, theta = _check_costs_and_logits(f_values, logits)
    n = check_count(n, "n")
    check_baseline(baseline, n)
    check_generator(generator)
    indices = gumbel_max_sample(theta, n, generator)
    return score_function_grad_at(f, theta, indices, baseline)


def rebar_grad(
    cost: Cost,
    logits: Any,
    n: int,
    *,
    temperature: Any,
    eta: Any,
    generator: torch.Generator,
) -> torch.Tensor:
    r"""``(n, K)`` per-sample REBAR estimates of :math:`\nabla J` (Tucker et al. 2017).

    With :math:`x = \log p + G`, :math:`z = \arg\max_k x_k` (the category drawn),
    :math:`\tilde x` drawn given :math:`z` (:func:`conditional_gumbel_sample`,
    reparameterized in :math:`\theta`), :math:`\sigma(v) =
    \operatorname{softmax}(v/\tau)` and the control variate :math:`c(v) = \eta\,
    g(\sigma(v))`, row ``i`` is

    .. math::

        \bigl(g(e_z) - c(\tilde x)\bigr)\nabla_\theta\log p_z
        + \nabla_\theta c(x) - \nabla_\theta c(\tilde x).

    Unbiased for every :math:`\tau` and :math:`\eta`: :math:`\mathbb E[\nabla c(x)] =
    \nabla\mathbb E[c(x)] = \nabla\,\mathbb E_z\mathbb E_{\tilde x\mid z}[c(\tilde x)]
    = \mathbb E[c(\tilde x)\nabla\log p_z + \nabla c(\tilde x)]`, so the three control
    terms cancel in the mean. RELAX (Grathwohl et al. 2018) is the same estimator with
    a learned :math:`c`. ``eta = 0`` gives the score function without baseline, on the
    same Gumbel-max draws as :func:`score_function_grad` with the same generator.
    Masked (-inf) logits get zero gradient. :func:`best_rebar_eta` chooses ``eta``.
    """
    eta = as_real_scalar(eta, "eta")
    return _rebar_draws(cost, logits, n, temperature, generator)(eta)


def _rebar_draws(
    cost: Cost, logits: Any, n: int, temperature: Any,
    generator: torch.Generator,
) -> Callable[[float], torch.Tensor]:
    """Check the arguments, draw REBAR's noise once, and return ``eta -> rows`` on that
    noise. Masked (-inf) categories are left out of the computation and get zero
    columns."""
    theta = _check_logits(logits)
    k = theta.shape[0]
    g, _ = _cost_function(cost, k)
    n = check_count(n, "n")
    tau = _check_temperature(temperature)
    check_generator(generator)
    gumbels = draw_gumbel(n, k, generator)
    uniforms = _draw_uniform(n, k, generator)
    support = torch.isfinite(theta)

    def embed(rows: torch.Tensor) -> torch.Tensor:
        full = rows.new_zeros((rows.shape[0], k))
        return full.masked_scatter(support.expand(rows.shape[0], -1), rows)

    def rows_at(eta: float) -> torch.Tensor:
        return embed(_rebar_rows(
            lambda y: g(embed(y)), theta[support].expand(n, -1), gumbels[:, support],
            uniforms[:, support], tau, eta,
        ))

    return rows_at


def _rebar_rows(
    g: Callable, logit_rows: torch.Tensor, gumbels: torch.Tensor,
    uniforms: torch.Tensor, tau: float, eta: float,
) -> torch.Tensor:
    """REBAR's rows for finite logits given per draw (``(N, K)``, one row per draw)
    and the draws' noise: autograd through the surrogate whose gradient is
    :func:`rebar_grad`'s formula."""
    copies = logit_rows.detach().clone().requires_grad_(True)
    log_p = torch.log_softmax(copies, dim=1)
    x = log_p + gumbels
    winners = x.detach().argmax(dim=1)
    x_tilde = _conditional_perturbed(log_p, winners, uniforms)
    hard = torch.nn.functional.one_hot(winners, copies.shape[1]).to(DTYPE)
    control, control_tilde = (eta * g(_relaxed(v, tau)) for v in (x, x_tilde))
    log_p_winner = log_p.gather(1, winners.unsqueeze(1)).squeeze(1)
    surrogate = (
        (g(hard) - control_tilde).detach() * log_p_winner + control - control_tilde
    )
    (grad,) = torch.autograd.grad(surrogate.sum(), copies)
    return grad.detach()


def best_rebar_eta(
    cost: Cost,
    logits: Any,
    n: int,
    generator: torch.Generator,
    *,
    temperature: Any,
) -> RebarChoice:
    r"""The :math:`\eta` that minimizes REBAR's per-draw variance on ``n`` draws, and
    that variance.

    With the noise fixed, a row is :math:`a - \eta\,h`: :math:`a` the score function
    without baseline (the row at :math:`\eta = 0`) and :math:`h` the control term
    (the row at 0 minus the row at 1). The sum of squared deviations
    :math:`\sum_i\lVert (a_i - \bar a) - \eta (h_i - \bar h)\rVert^2` is a
    parabola in :math:`\eta`, least at the regression coefficient
    :math:`\eta^\star = \sum_i (a_i - \bar a)\cdot(h_i - \bar h) / \sum_i
    \lVert h_i - \bar h\rVert^2`. Tucker et al. (2017) instead follow the gradient
    of the variance during training.
    """
    n = check_count(n, "n", minimum=2)
    rows_at = _rebar_draws(cost, logits, n, temperature, generator)
    plain = rows_at(0.0)
    a = plain - plain.mean(0)
    at_one = rows_at(1.0)
    h = a - (at_one - at_one.mean(0))
    eta = float((a * h).sum() / (h * h).sum())
    return RebarChoice(eta=eta, variance=float(((a - eta * h) ** 2).sum()) / (n - 1))


# --- summaries and optimization -------------------------------------------------------


def per_draw_variance(rows: torch.Tensor) -> PerDrawVariance:
    r"""The per-draw variance of ``(n, K)`` rows, :math:`\operatorname{tr}\operatorname
    {Cov} = \frac{1}{n-1}\sum_i\lVert x_i - \bar x\rVert^2`, and its standard error.

    The error is that of a mean of the :math:`n` numbers :math:`d_i = \lVert x_i -
    \bar x\rVert^2`: their standard deviation over :math:`\sqrt n`. Adding the
    coordinates' own standard errors in quadrature would treat the coordinates as
    independent, which they are not (the rows of :func:`exact_grad`'s estimators sum
    to zero, so their coordinates are strongly correlated).
    """
    if not isinstance(rows, torch.Tensor):
        raise TypeError(f"rows must be a torch.Tensor, got {type(rows).__name__}")
    if rows.ndim != 2 or rows.shape[0] < 2:
        raise ValueError(
            f"rows must have shape (n, K) with n >= 2, got {tuple(rows.shape)}"
        )
    rows = rows.detach().to(DTYPE)
    n = rows.shape[0]
    squared = ((rows - rows.mean(0)) ** 2).sum(1)
    return PerDrawVariance(
        value=float(squared.sum()) / (n - 1),
        standard_error=float(squared.std()) / math.sqrt(n),
    )


SGD_ESTIMATORS = ("exact", "leave-one-out", "gumbel-softmax", "rebar")


def _batch_gradient(
    estimator: str, f: torch.Tensor, thetas: torch.Tensor, batch: int,
    generator: torch.Generator | None, tau: float | None, eta: float | None,
) -> torch.Tensor:
    """``(R, K)``: for each of R logit vectors, the mean of ``batch`` rows of
    ``estimator``, drawn for all R at once (run r uses draws ``r * batch`` to
    ``(r + 1) * batch - 1``; with R = 1 these are the draws of the one-run estimator
    with the same generator)."""
    runs, k = thetas.shape
    p = torch.softmax(thetas, dim=1)
    if estimator == "exact":
        return p * (f - (p @ f).unsqueeze(1))
    if estimator == "rebar":
        gumbels = draw_gumbel(runs * batch, k, generator)
        uniforms = _draw_uniform(runs * batch, k, generator)
        rows = _rebar_rows(lambda y: y @ f, thetas.repeat_interleave(batch, 0),
                           gumbels, uniforms, tau, eta)
        return rows.view(runs, batch, k).mean(1)
    gumbels = draw_gumbel(runs * batch, k, generator).view(runs, batch, k)
    scores = thetas.unsqueeze(1) + gumbels
    if estimator == "gumbel-softmax":
        relaxed = _relaxed(scores, tau)
        rows = relaxed * (f - (relaxed @ f).unsqueeze(-1)) / tau
        return rows.mean(1)
    winners = scores.argmax(dim=-1)  # leave-one-out score function
    values = subtract_baseline(f[winners], LEAVE_ONE_OUT, dim=1)
    score = torch.nn.functional.one_hot(winners, k).to(DTYPE) - p.unsqueeze(1)
    return (values.unsqueeze(-1) * score).mean(1)


def sgd_paths(
    f_values: Any,
    logits: Any,
    runs: int,
    steps: int,
    generator: torch.Generator | None,
    *,
    estimator: str,
    batch: int,
    learning_rate: Any,
    weight_decay: Any = 0.0,
    temperature: Any = None,
    eta: Any = None,
) -> torch.Tensor:
    r"""``runs`` independent SGD runs on :math:`J_\lambda(\theta) = p\cdot f +
    \tfrac\lambda2\lVert\theta\rVert^2` from ``logits``, computed side by side.

    Each step is :math:`\theta \leftarrow \theta - \alpha\,(\hat g(\theta) +
    \lambda\theta)` with :math:`\alpha` = ``learning_rate``, :math:`\lambda` =
    ``weight_decay`` (the penalty's gradient is exact) and :math:`\hat g` the mean of
    ``batch`` fresh rows of ``estimator``:

    - ``"exact"``: :func:`exact_grad` (no draws; every run is the same);
    - ``"leave-one-out"``: :func:`score_function_grad` with the leave-one-out
      baseline (``batch >= 2``);
    - ``"gumbel-softmax"``: :func:`gumbel_softmax_grad` at ``temperature``;
    - ``"rebar"``: :func:`rebar_grad` at ``temperature`` and ``eta``.

    Returns the ``(runs, steps + 1, K)`` float64 paths, starting points included. All
    runs draw from ``generator`` (required unless ``estimator="exact"``); with
    ``runs = 1`` the path is the loop over the one-run estimators with that generator.
    The logits must all be finite.
    """
    f, theta = _check_costs_and_logits(f_values, logits)
    if not bool(torch.isfinite(theta).all()):
        raise ValueError("logits must be finite for sgd_paths (no masked category)")
    runs = check_count(runs, "runs")
    steps = check_count(steps, "steps")
    check_choice(estimator, "estimator", SGD_ESTIMATORS)
    batch = check_count(
        batch, "batch", minimum=2 if estimator == "leave-one-out" else 1
    )
    learning_rate = as_real_scalar(learning_rate, "learning_rate")
    if learning_rate <= 0.0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    weight_decay = as_real_scalar(weight_decay, "weight_decay")
    if weight_decay < 0.0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    tau = eta_value = None
    if estimator in ("gumbel-softmax", "rebar"):
        if temperature is None:
            raise ValueError(f"estimator={estimator!r} needs a temperature")
        tau = _check_temperature(temperature)
    if estimator == "rebar":
        if eta is None:
            raise ValueError("estimator='rebar' needs eta")
        eta_value = as_real_scalar(eta, "eta")
    if estimator != "exact" or generator is not None:  # "exact" draws nothing
        check_generator(generator)
    thetas = theta.expand(runs, -1).clone()
    path = [thetas]
    for _ in range(steps):
        gradient = _batch_gradient(estimator, f, thetas, batch, generator, tau,
                                   eta_value)
        thetas = thetas - learning_rate * (gradient + weight_decay * thetas)
        path.append(thetas)
    return torch.stack(path, dim=1)


# --- expectations over the relaxed sample, without sampling ---------------------------


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


def relaxed_expectation(
    h: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    logits: Any,
    temperature: Any,
    order: int = 100,
) -> torch.Tensor:
    r""":math:`\mathbb E[h(s, z)]` for :math:`s = \operatorname{softmax}((\theta +
    G)/\tau)` and :math:`z = \arg\max_k(\theta_k + G_k)`, by quadrature (no sampling).

    ``h(relaxed, winners)`` takes ``(m, K)`` relaxed samples and their ``(m,)`` int64
    categories and returns ``(m, ...)`` values; the result has shape ``(...)``.

    Split by the winner. With :math:`T_k = e^{-G_k}/e^{\theta_k}`, independent
    exponentials of rates :math:`w_k = e^{\theta_k}`, the winner is the first to
    arrive (an exponential race): it is :math:`k` with probability :math:`p_k`, and the
    gaps :math:`a_j = (\theta_k + G_k) - (\theta_j + G_j) = \log(T_j/T_k)` on which
    :math:`s = \operatorname{softmax}(-a/\tau)` depends have the law of
    :math:`\log(1 + D_j/(D_0 p_j))` for :math:`D` uniform on the simplex of :math:`K`
    entries (the ratios :math:`(T_j - T_k)w_j/(T_k \sum_i w_i)` are an inverted
    Dirichlet). Each winner's term is then a smooth :math:`(K-1)`-dimensional integral
    even where ``h`` depends on the winner, done with ``order`` Gauss-Legendre nodes
    per dimension (``order ** (K - 1)`` nodes, at most ``MAX_QUADRATURE_NODES``).
    Accuracy falls as :math:`\tau` grows past 1 (:math:`s` then has an unbounded
    derivative at the faces); compare two orders to check it.
    """
    if not callable(h):
        raise TypeError(f"h must be callable, got {type(h).__name__}")
    theta = _check_logits(logits)
    tau = _check_temperature(temperature)
    k = theta.shape[0]
    order = _check_order(order, k)
    p = torch.softmax(theta, dim=0)
    nodes, weights = _uniform_simplex_rule(k, order)
    total = None
    for winner in range(k):
        if float(p[winner]) == 0.0:
            continue  # a masked category never wins
        others = [j for j in range(k) if j != winner]
        gaps = torch.zeros_like(nodes)
        # p_j = 0 gives an infinite gap: s_j = 0, as for a masked category.
        gaps[:, others] = torch.log1p(nodes[:, 1:] / (nodes[:, :1] * p[others]))
        relaxed = torch.softmax(-gaps / tau, dim=1)
        winners = torch.full((nodes.shape[0],), winner, dtype=torch.int64)
        term = p[winner] * torch.tensordot(weights, h(relaxed, winners), dims=1)
        total = term if total is None else total + term
    return total


def relaxed_objective(
    f_values: Any, logits: Any, temperature: Any, order: int = 100
) -> RelaxedObjective:
    r"""The relaxed objective :math:`J_\tau(\theta) = \mathbb E[s\cdot f]` and its
    gradient :math:`\nabla_\theta J_\tau`, by :func:`relaxed_expectation`.

    The gradient is the same integral of :math:`\tfrac1\tau s\odot(f - s\cdot f)`: each
    entry is at most :math:`(\max f - \min f)/(4\tau)` in size (since
    :math:`|f_k - s\cdot f| \le (1 - s_k)(\max f - \min f)` and :math:`s_k(1 - s_k) \le
    1/4`), so the derivative passes under the integral.
    """
    f, theta = _check_costs_and_logits(f_values, logits)
    tau = _check_temperature(temperature)

    def value_and_rows(relaxed, _winners):
        value = relaxed @ f
        rows = relaxed * (f - value.unsqueeze(1)) / tau
        return torch.cat([value.unsqueeze(1), rows], dim=1)

    both = relaxed_expectation(value_and_rows, theta, tau, order)
    return RelaxedObjective(value=both[0], gradient=both[1:])


def _relaxed_moments(
    cost: Cost, logits: Any, temperature: Any, order: int, straight_through: bool
) -> EstimatorMoments:
    theta = _check_logits(logits)
    k = theta.shape[0]
    g, f = _cost_function(cost, k)
    tau = _check_temperature(temperature)

    def row_and_square(relaxed, winners):
        if f is not None:
            upstream = f.expand(relaxed.shape[0], -1)
        else:
            points = torch.nn.functional.one_hot(winners, k).to(DTYPE) if (
                straight_through) else relaxed
            points = points.clone().requires_grad_(True)
            (upstream,) = torch.autograd.grad(g(points).sum(), points)
        # D_s u with the softmax Jacobian D_s = (diag s - s s^T) / tau (symmetric).
        rows = relaxed * (upstream - (relaxed * upstream).sum(1, keepdim=True)) / tau
        return torch.cat([rows, (rows**2).sum(1, keepdim=True)], dim=1)

    both = relaxed_expectation(row_and_square, theta, tau, order)
    mean = both[:k]
    return EstimatorMoments(mean=mean, variance=float(both[k] - torch.dot(mean, mean)))


def gumbel_softmax_moments(
    cost: Cost, logits: Any, temperature: Any, order: int = 100
) -> EstimatorMoments:
    r"""Exact mean :math:`\nabla J_\tau = \mathbb E[D_s\nabla g(s)]` and per-draw
    variance of the rows of :func:`gumbel_softmax_grad`, by quadrature."""
    return _relaxed_moments(cost, logits, temperature, order, straight_through=False)


def straight_through_moments(
    cost: Cost, logits: Any, temperature: Any, order: int = 100
) -> EstimatorMoments:
    r"""Exact mean :math:`\mathbb E[D_s\nabla g(e_z)]` and per-draw variance of the
    rows of :func:`straight_through_grad`, by quadrature: the integrand is smooth on
    each winner's region, which :func:`relaxed_expectation` integrates separately."""
    return _relaxed_moments(cost, logits, temperature, order, straight_through=True)
