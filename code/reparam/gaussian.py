r"""The Gaussian location-scale map, for NumPy arrays and PyTorch tensors alike.

.. math::

    \varepsilon = \frac{x - \mu}{\sigma}
    \quad\Longleftrightarrow\quad x = \mu + \sigma\varepsilon,
    \qquad \mathcal N(x \mid \mu, \sigma^2) = \frac{1}{\sigma\sqrt{2\pi}}
    \exp\Bigl(-\frac{(x-\mu)^2}{2\sigma^2}\Bigr).

``mu`` and ``sigma`` are scalars (validated: finite, ``sigma > 0``); the data keep their
type, so a tensor that requires grad keeps its graph.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._validation import (
    _is_torch_tensor,
    as_real_array,
    as_real_scalar,
    check_finite_array,
    check_scale,
)

__all__ = ["standardize", "unstandardize", "normal_density", "normal_log_density"]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _check_data(values: Any, name: str):
    if _is_torch_tensor(values):
        if not values.dtype.is_floating_point:
            raise TypeError(
                f"{name} must be a floating-point tensor, got dtype {values.dtype}"
            )
        check_finite_array(values, name)
        return values
    return as_real_array(values, name)


def standardize(x: Any, mu: Any, sigma: Any):
    r"""Map a draw of :math:`\mathcal N(\mu, \sigma^2)` to :math:`\mathcal N(0, 1)`:
    :math:`(x-\mu)/\sigma`."""
    x = _check_data(x, "x")
    mu, sigma = as_real_scalar(mu, "mu"), check_scale(sigma)
    return (x - mu) / sigma


def unstandardize(eps: Any, mu: Any, sigma: Any):
    r"""Map a draw of :math:`\mathcal N(0, 1)` to :math:`\mathcal N(\mu, \sigma^2)`:
    :math:`\mu + \sigma\varepsilon`."""
    eps = _check_data(eps, "eps")
    mu, sigma = as_real_scalar(mu, "mu"), check_scale(sigma)
    return mu + sigma * eps


def normal_log_density(x: Any, mu: Any, sigma: Any):
    r""":math:`\log\mathcal N(x\mid\mu,\sigma^2)
    = -\tfrac12\varepsilon^2 - \log\sigma - \tfrac12\log 2\pi`."""
    eps = standardize(x, mu, sigma)
    return -0.5 * eps**2 - (math.log(float(sigma)) + _LOG_SQRT_2PI)


def normal_density(x: Any, mu: Any, sigma: Any):
    r""":math:`\mathcal N(x\mid\mu,\sigma^2)`, the density of
    :math:`\mu + \sigma\varepsilon` at ``x``."""
    log_density = normal_log_density(x, mu, sigma)
    if _is_torch_tensor(log_density):
        return log_density.exp()
    return np.exp(log_density)
