r"""Per-sample Monte Carlo estimators of
:math:`\nabla_{\mu,\sigma}\,\mathbb E_{x\sim\mathcal N(\mu,\sigma^2)}[f(x)]`.

Both estimators share one signature, ``(f, mu, sigma, n, generator)``, and return a
float64 tensor of shape ``(n, 2)``: row ``i`` is the estimate from the single draw
:math:`\varepsilon_i \sim \mathcal N(0,1)`, columns are :math:`(\partial/\partial\mu,
\partial/\partial\sigma)`. The mean of the rows is the n-sample Monte Carlo estimate.
The noise comes only from ``generator``, a ``torch.Generator`` the caller seeds: the
global random state is neither read nor changed.

Pathwise (reparameterization):

.. math::

    \nabla_\theta\,\mathbb E_\varepsilon[f(\mu + \sigma\varepsilon)]
    = \mathbb E_\varepsilon\bigl[f'(x)\,(1, \varepsilon)\bigr],
    \quad x = \mu + \sigma\varepsilon.

Score function (REINFORCE, likelihood ratio):

.. math::

    \nabla_\theta\,\mathbb E_{x\sim p_\theta}[f(x)]
    = \mathbb E_{x\sim p_\theta}\bigl[(f(x) - b)\,\nabla_\theta \log p_\theta(x)\bigr],
    \quad \nabla_{\mu,\sigma}\log\mathcal N(x\mid\mu,\sigma^2)
    = \Bigl(\frac{\varepsilon}{\sigma}, \frac{\varepsilon^2 - 1}{\sigma}\Bigr),

for any constant baseline :math:`b` (:math:`\mathbb E[\nabla\log p] = 0`), with no
derivative of :math:`f` needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._validation import (
    LEAVE_ONE_OUT,
    as_real_scalar,
    check_baseline,
    check_count,
    check_generator,
    check_scale,
)

__all__ = [
    "GradientSummary",
    "draw_standard_normal",
    "leave_one_out_baseline",
    "subtract_baseline",
    "pathwise_grad",
    "score_function_grad",
    "summarize",
]

Scalar = float | int | torch.Tensor
Cost = Callable[[torch.Tensor], torch.Tensor]
DTYPE = torch.float64


def _check_common(
    mu: Scalar, sigma: Scalar, n: int, generator
) -> tuple[float, float, int]:
    mu = as_real_scalar(mu, "mu")
    sigma = check_scale(sigma, "sigma")
    n = check_count(n, "n")
    check_generator(generator)
    return mu, sigma, n


def draw_standard_normal(n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` float64 draws of N(0, 1) from ``generator``.

    Drawn exactly as ``torch.distributions.Normal.rsample`` draws them
    (``empty(...).normal_()``), so from the same generator state both see the same eps.

    Raises:
        TypeError: ``n`` is not an integer, or ``generator`` is not a torch.Generator.
        ValueError: ``n < 1``.
    """
    n = check_count(n, "n")
    return torch.empty(n, dtype=DTYPE).normal_(generator=check_generator(generator))


def evaluate_cost(f: Cost, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``f(x)`` checked for type, shape and finiteness, and its sum (which the callers
    need).

    Raises:
        TypeError: ``f`` is not callable or does not return a torch.Tensor.
        ValueError: ``f`` does not act elementwise, or returns NaN or infinity.
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    out = f(x)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"f must return a torch.Tensor, got {type(out).__name__}")
    if out.shape != x.shape:
        raise ValueError(
            f"f must act elementwise: for input of shape {tuple(x.shape)} "
            f"it returned shape {tuple(out.shape)}"
        )
    total = out.sum()
    # One reduction instead of an elementwise isfinite pass: a finite sum means finite
    # values; only when it is not do we look closer (finite values can still overflow
    # the sum).
    if not bool(torch.isfinite(total)) and not bool(torch.isfinite(out).all()):
        raise ValueError("f returned NaN or infinite values")
    return out, total


def pathwise_grad(
    f: Cost, mu: Scalar, sigma: Scalar, n: int, generator: torch.Generator
) -> torch.Tensor:
    r"""Per-sample pathwise estimates of :math:`\nabla_{\mu,\sigma}\mathbb E[f(x)]`,
    shape ``(n, 2)``.

    Autograd differentiates :math:`f(\mu + \sigma\varepsilon_i)` for each draw: ``mu``
    and ``sigma`` are replicated once per sample, so the gradient of :math:`\sum_i
    f(x_i)` with respect to copy ``i`` is exactly the gradient of :math:`f(x_i)` alone.
    Where ``f`` is flat or not differentiable (a step), autograd's derivative is 0, and
    so is the estimate.

    Args:
        f: the cost, elementwise on a float64 tensor, differentiable by autograd.
        mu, sigma: the Gaussian's mean and standard deviation (``sigma > 0``).
        n: the number of draws.
        generator: the ``torch.Generator`` the draws come from.

    Returns:
        A float64 tensor of shape ``(n, 2)``; row ``i`` is
        :math:`f'(x_i)\,(1, \varepsilon_i)`.

    Raises:
        TypeError: a wrong type (see :func:`draw_standard_normal` and
            :func:`evaluate_cost`).
        ValueError: ``sigma <= 0``, a non-finite parameter, ``n < 1``, or a cost that
            is not elementwise or not finite.
    """
    mu, sigma, n = _check_common(mu, sigma, n, generator)
    eps = draw_standard_normal(n, generator)
    mu_copies = torch.full((n,), mu, dtype=DTYPE, requires_grad=True)
    sigma_copies = torch.full((n,), sigma, dtype=DTYPE, requires_grad=True)
    x = mu_copies + sigma_copies * eps
    out, total = evaluate_cost(f, x)
    if not out.requires_grad:
        # f cut the graph (e.g. a comparison): its derivative is zero wherever it is
        # defined.
        return torch.zeros(n, 2, dtype=DTYPE)
    grad_mu, grad_sigma = torch.autograd.grad(
        total, (mu_copies, sigma_copies), allow_unused=True, materialize_grads=True
    )
    return torch.stack((grad_mu, grad_sigma), dim=1)


def score_function_grad(
    f: Cost,
    mu: Scalar,
    sigma: Scalar,
    n: int,
    generator: torch.Generator,
    baseline: None | float | str = None,
) -> torch.Tensor:
    r"""Per-sample score-function estimates of
    :math:`\nabla_{\mu,\sigma}\mathbb E[f(x)]`, shape ``(n, 2)``.

    Row ``i`` is
    :math:`(f(x_i) - b_i)\,(\varepsilon_i/\sigma, (\varepsilon_i^2 - 1)/\sigma)`;
    ``f`` is only evaluated, never differentiated, so it may be a step or a black box.

    ``baseline``:
        ``None`` (b = 0), a finite float (a constant b), or ``"leave-one-out"``
        (:math:`b_i` = mean of f over the other n - 1 draws, independent of draw i, so
        still unbiased; needs n >= 2).

    The other arguments, the result's shape and the errors are those of
    :func:`pathwise_grad`; a bad ``baseline`` is a ``ValueError``.
    """
    mu, sigma, n = _check_common(mu, sigma, n, generator)
    baseline = check_baseline(baseline, n)
    eps = draw_standard_normal(n, generator)
    with torch.no_grad():
        values, _ = evaluate_cost(f, mu + sigma * eps)
        values = subtract_baseline(values, baseline)
        score = torch.stack((eps / sigma, (eps * eps - 1.0) / sigma), dim=1)
        return values.unsqueeze(1) * score


def leave_one_out_baseline(values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    r"""For each draw, the mean of the *other* draws along ``dim``:
    :math:`b_i = \frac{1}{n-1}\sum_{j\ne i} v_j`.

    :math:`b_i` does not depend on draw :math:`i`, so subtracting it keeps the
    score-function estimator unbiased (Kool, van Hoof & Welling 2019; Mnih & Rezende
    2016 use the same idea in VIMCO). Needs at least two draws along ``dim``.
    """
    n = values.shape[dim]
    if n < 2:
        raise ValueError(f"a leave-one-out baseline needs >= 2 draws, got {n}")
    return (values.sum(dim, keepdim=True) - values) / (n - 1)


def subtract_baseline(values: torch.Tensor, baseline: float | str | None,
                      dim: int = 0) -> torch.Tensor:
    """``values - b`` for a baseline already checked by ``check_baseline``."""
    if baseline is None:
        return values
    if baseline == LEAVE_ONE_OUT:
        return values - leave_one_out_baseline(values, dim)
    return values - baseline


@dataclass(frozen=True)
class GradientSummary:
    r"""Mean, per-sample variance, standard error of the mean, and standard error of
    the variance.

    ``variance_standard_error`` is :math:`\sqrt{\operatorname{Var}[(X-\bar X)^2]/n}`,
    the Monte Carlo error of ``variance`` itself, for comparing it with an exact
    variance. Each has shape ``(d,)``.
    """

    mean: torch.Tensor
    variance: torch.Tensor
    standard_error: torch.Tensor
    variance_standard_error: torch.Tensor
    n: int

    def within(self, exact, standard_errors: float = 4.0) -> bool:
        """True if every component of the mean is within ``standard_errors`` SEs of
        ``exact``."""
        exact = torch.as_tensor(exact, dtype=DTYPE)
        return bool(
            ((self.mean - exact).abs() <= standard_errors * self.standard_error).all()
        )


def summarize(estimates: torch.Tensor) -> GradientSummary:
    """Summarize per-sample estimates of shape ``(n, d)`` (n >= 2): mean, variance,
    standard error."""
    if not isinstance(estimates, torch.Tensor):
        raise TypeError(
            f"estimates must be a torch.Tensor, got {type(estimates).__name__}"
        )
    if estimates.ndim != 2 or estimates.shape[0] < 2:
        raise ValueError(
            "estimates must have shape (n, d) with n >= 2, "
            f"got {tuple(estimates.shape)}"
        )
    n = estimates.shape[0]
    mean = estimates.mean(dim=0)
    variance = estimates.var(dim=0, correction=1)
    squared_deviations = (estimates - mean).pow(2)
    return GradientSummary(
        mean=mean,
        variance=variance,
        standard_error=(variance / n).sqrt(),
        variance_standard_error=(
            squared_deviations.var(dim=0, correction=1) / n
        ).sqrt(),
        n=n,
    )
