r"""The boundary term: what the pathwise estimator misses when the cost jumps.

Let :math:`f = f_c + \Delta\,\mathbb 1[x > k]` with a jump of size :math:`\Delta` at
:math:`k`, where :math:`f_c` meets the conditions under which the pathwise estimator is
unbiased (Lipschitz with an integrable constant, say; mere continuity is not enough),
and :math:`x = \mu + \sigma\varepsilon`. The draw crosses the jump at
:math:`\varepsilon^\star = (k - \mu)/\sigma`, so

.. math::

    \mathbb E[\Delta\,\mathbb 1[x > k]] = \Delta\,(1 - \Phi(\varepsilon^\star)),\qquad
    \nabla_{\mu,\sigma} = \Delta\,\frac{\varphi(\varepsilon^\star)}{\sigma}\,
    (1,\ \varepsilon^\star).

That is the probability mass that crosses :math:`k` per unit change of :math:`\theta`,
times the jump. Autograd's derivative of the step is zero almost everywhere, so the
pathwise estimator sees only :math:`f_c`; adding this *boundary term* gives the exact
gradient:

.. math::

    \nabla_\theta\,\mathbb E[f(x)]
    = \mathbb E_\varepsilon\bigl[\nabla_\theta f_c(g_\theta(\varepsilon))\bigr]
    + \Delta\,\frac{\varphi(\varepsilon^\star)}{\sigma}\,(1,\ \varepsilon^\star).

This is the one-dimensional case of Lee, Yu & Yang (2018), "Reparameterization gradient
for non-differentiable models": in :math:`d` dimensions the second term becomes a
surface integral, over the set of :math:`\varepsilon` where :math:`f(g_\theta(
\varepsilon))` jumps, of the jump times the density of :math:`\varepsilon` times the
speed at which that set moves along its normal as :math:`\theta` changes (here the
point :math:`\varepsilon^\star` moves at :math:`\partial\varepsilon^\star/\partial
\theta = -(1, \varepsilon^\star)/\sigma`).
"""

from __future__ import annotations

import math

from ._validation import as_real_scalar, check_scale

__all__ = ["boundary_term"]


def boundary_term(k, mu, sigma, jump=1.0) -> tuple[float, float]:
    r"""(d/dmu, d/dsigma) of :math:`\mathbb E[\Delta\,\mathbb 1[x > k]]`.

    Here :math:`x\sim\mathcal N(\mu,\sigma^2)` and ``jump`` is
    :math:`\Delta = f(k^+) - f(k^-)`; negative for a downward jump.
    """
    k = as_real_scalar(k, "k")
    mu = as_real_scalar(mu, "mu")
    sigma = check_scale(sigma)
    jump = as_real_scalar(jump, "jump")
    crossing = (k - mu) / sigma
    density = math.exp(-0.5 * crossing * crossing) / math.sqrt(2.0 * math.pi)
    rate = jump * density / sigma
    return rate, rate * crossing
