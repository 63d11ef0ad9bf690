r"""SGD with one-sample pathwise gradients converges to the optimum.

The objective is a Gaussian fit by reverse KL, the shape of a VAE's ELBO:

.. math::

    J(\mu, \sigma) = \mathbb E_{x\sim\mathcal N(\mu,\sigma^2)}\bigl[(x - k)^2\bigr]
    - \log\sigma = (\mu - k)^2 + \sigma^2 - \log\sigma ,

minimized at :math:`\mu^\star = k`, :math:`\sigma^\star = 1/\sqrt 2` (up to an additive
constant it is :math:`\mathrm{KL}(\mathcal N(\mu,\sigma^2)\,\|\,\mathcal N(k, 1/2))`).
Each step draws one :math:`\varepsilon`, sets :math:`x = \mu + \sigma\varepsilon`, and
takes the one-sample pathwise gradient of :math:`(x - k)^2 - \log\sigma`,

.. math::

    \hat g = \bigl(2(x - k),\ 2(x - k)\,\varepsilon - 1/\sigma\bigr),

which is what autograd returns for that one draw (chapter 3; the tests check it) and is
an unbiased estimate of :math:`\nabla J(\mu,\sigma)`. The step size is Robbins-Monro's
:math:`a_t = a_0 / (t + t_0)`, so :math:`\sum_t a_t = \infty` and
:math:`\sum_t a_t^2 < \infty`. Each gradient is taken at the *current* iterate from
one fresh draw: no long average at a fixed point is needed, because the shrinking steps
average the noise across iterations. Bottou, Curtis & Nocedal (2018, Sec. 4, Thm. 4.7)
give the conditions: a Lipschitz gradient (constant :math:`L`), strong convexity
(:math:`c`), noise variance at most :math:`M + M_V\lVert\nabla J\rVert^2`, and
:math:`a_t = \beta/(\gamma + t)` with :math:`\beta > 1/c` and a first step at most
:math:`1/(L(M_V + 1))` (for an unbiased gradient). Here :math:`c = 2`,
:math:`M = 12`, :math:`M_V = 3`, but :math:`L = 2 + 1/\sigma^2` is unbounded as
:math:`\sigma\to 0`: the last condition can only be checked on the region the
iterates visit.

``estimator="score"`` replaces the pathwise draw of
:math:`\nabla\mathbb E[(x - k)^2]` by the score-function draw,
:math:`(x - k)^2\,(\varepsilon/\sigma, (\varepsilon^2 - 1)/\sigma)`, keeping the
exact :math:`-1/\sigma` of the entropy term: also unbiased, with a variance that grows
like the fourth power of :math:`\mu - k`. Many independent runs are vectorized (one
column each) so that their spread can be measured cheaply.

The noise comes from a ``numpy.random.Generator`` the caller passes in; the global
random state is neither read nor changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._validation import (
    as_real_scalar,
    check_choice,
    check_count,
    check_numpy_generator,
    check_scale,
)

__all__ = [
    "SGDRuns",
    "objective",
    "optimum",
    "one_sample_gradient",
    "one_sample_score_gradient",
    "fit_gaussian_sgd",
]

MIN_SIGMA = 1e-3
ESTIMATORS = ("pathwise", "score")


def objective(k, mu, sigma) -> float:
    r""":math:`J(\mu,\sigma) = (\mu - k)^2 + \sigma^2 - \log\sigma` in closed form, for
    the cost's ``k`` (first, as the package orders arguments) and the Gaussian's
    ``mu``, ``sigma``."""
    k, mu, sigma = as_real_scalar(k, "k"), as_real_scalar(mu, "mu"), check_scale(sigma)
    return (mu - k) ** 2 + sigma**2 - math.log(sigma)


def optimum(k) -> tuple[float, float]:
    r"""The minimizer :math:`(k, 1/\sqrt 2)` of :func:`objective`."""
    return as_real_scalar(k, "k"), 1.0 / math.sqrt(2.0)


def one_sample_gradient(k, eps, mu, sigma):
    r"""Pathwise gradient of :math:`(x - k)^2 - \log\sigma` for one draw
    :math:`x = \mu + \sigma\varepsilon`: the cost's ``k``, the draw ``eps``, then
    ``mu``, ``sigma`` (NumPy arrays broadcast; unchecked, for the SGD loop)."""
    x = mu + sigma * eps
    return 2.0 * (x - k), 2.0 * (x - k) * eps - 1.0 / sigma


def one_sample_score_gradient(k, eps, mu, sigma):
    r"""Score-function gradient of :math:`\mathbb E[(x - k)^2] - \log\sigma` from one
    draw: :math:`(x - k)^2\,(\varepsilon/\sigma,\ (\varepsilon^2 - 1)/\sigma)`, plus
    the exact :math:`(0, -1/\sigma)` of :math:`-\log\sigma`. Arguments as
    :func:`one_sample_gradient`'s."""
    squared = (mu + sigma * eps - k) ** 2
    return squared * eps / sigma, squared * (eps * eps - 1.0) / sigma - 1.0 / sigma


@dataclass(frozen=True)
class SGDRuns:
    """Iterates of independent runs: ``mu`` and ``sigma`` of shape (steps + 1, runs)."""

    mu: np.ndarray
    sigma: np.ndarray
    k: float
    projections: int  # how many (step, run) updates the floor MIN_SIGMA changed

    def distance_to_optimum(self) -> np.ndarray:
        """Distance of every iterate to (k, 1/sqrt 2), shape (steps + 1, runs)."""
        mu_star, sigma_star = optimum(self.k)
        return np.hypot(self.mu - mu_star, self.sigma - sigma_star)


def fit_gaussian_sgd(
    k,
    start=(0.0, 1.5),
    steps: int = 20_000,
    runs: int = 1,
    a0: float = 0.5,
    t0: float = 10.0,
    *,
    generator: np.random.Generator,
    estimator: str = "pathwise",
) -> SGDRuns:
    """Minimize :func:`objective` by SGD, one fresh draw per step and run.

    Args:
        k: the target mean.
        start: ``(mu, sigma)`` where every run starts.
        steps, runs: the number of steps of each run, and of independent runs.
        a0, t0: the step size ``a0 / (t + t0)`` at step ``t = 0, 1, ...``.
        generator: the ``numpy.random.Generator`` of the noise: one
            ``standard_normal((steps, runs))`` draw, column ``j`` for run ``j``.
        estimator: ``"pathwise"`` (:func:`one_sample_gradient`) or ``"score"``
            (:func:`one_sample_score_gradient`).

    Returns:
        :class:`SGDRuns`. ``sigma`` is kept at least ``MIN_SIGMA`` after each step (a
        projection onto sigma > 0); ``projections`` counts the updates it changed.

    Raises:
        TypeError: a count that is not an integer, a generator that is not a
            ``numpy.random.Generator``, or an ``estimator`` that is not a str.
        ValueError: a non-finite number, ``sigma <= 0``, ``a0 <= 0``, ``t0 <= 0`` or
            an unknown ``estimator``.
    """
    k = as_real_scalar(k, "k")
    steps = check_count(steps, "steps")
    runs = check_count(runs, "runs")
    a0, t0 = as_real_scalar(a0, "a0"), as_real_scalar(t0, "t0")
    if a0 <= 0 or t0 <= 0:
        raise ValueError(f"a0 and t0 must be > 0, got a0={a0}, t0={t0}")
    check_numpy_generator(generator)
    check_choice(estimator, "estimator", ESTIMATORS)
    gradient = {"pathwise": one_sample_gradient, "score": one_sample_score_gradient}[
        estimator
    ]
    mu0 = as_real_scalar(start[0], "start[0] (mu)")
    sigma0 = check_scale(start[1], "start[1] (sigma)")
    noise = generator.standard_normal((steps, runs))
    mu = np.empty((steps + 1, runs))
    sigma = np.empty((steps + 1, runs))
    mu[0], sigma[0] = mu0, sigma0
    projections = 0
    for t in range(steps):
        grad_mu, grad_sigma = gradient(k, noise[t], mu[t], sigma[t])
        step = a0 / (t + t0)
        mu[t + 1] = mu[t] - step * grad_mu
        unprojected = sigma[t] - step * grad_sigma
        projections += int(np.count_nonzero(unprojected < MIN_SIGMA))
        sigma[t + 1] = np.maximum(unprojected, MIN_SIGMA)
    return SGDRuns(mu=mu, sigma=sigma, k=k, projections=projections)
