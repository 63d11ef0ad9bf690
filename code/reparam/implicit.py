r"""Reparameterization without a location-scale formula: implicit gradients, Gamma.

If :math:`u = F_\theta(x)` with :math:`u \sim \mathcal U(0, 1)` held fixed,
differentiating both sides in :math:`\theta` (implicit function theorem) gives the
derivative of the sample,

.. math::

    \frac{\partial x}{\partial\theta}
    = -\frac{\partial F_\theta(x)/\partial\theta}{\partial F_\theta(x)/\partial x}
    = -\frac{\partial F_\theta(x)/\partial\theta}{p_\theta(x)},

which needs the CDF and its derivatives at :math:`x`, never the inverse CDF
(Knowles, 2015, for the Gamma; Figurnov, Mohamed & Mnih, 2018, in general). It is valid
where :math:`F` is continuously differentiable in :math:`(x, \theta)` near the sample
and :math:`p_\theta(x) > 0` there, and whatever algorithm drew :math:`x`:
:math:`F_\theta(x)` is exactly uniform, so :math:`x = F_\theta^{-1}(u)`.

For :math:`x \sim \mathrm{Gamma}(\alpha, \text{rate } \beta)`, :math:`x = z/\beta`
with :math:`z \sim \mathrm{Gamma}(\alpha, 1)`, so
:math:`\partial x/\partial\beta = -x/\beta` and
:math:`\partial x/\partial\alpha = (\partial z/\partial\alpha)/\beta`, where
:math:`z` solves :math:`P(\alpha, z) = u` for the regularized lower incomplete gamma
function :math:`P`.

How :math:`\partial z/\partial\alpha` is computed (float64, no cancellation):

- for :math:`z \le e^{\psi(\alpha+1)}` (about :math:`\alpha + 1/2`), the series
  :math:`P = \frac{z^\alpha e^{-z}}{\Gamma(\alpha+1)} S`,
  :math:`S = \sum_{k\ge0} T_k`,
  :math:`T_k = \frac{z^k}{(\alpha+1)\cdots(\alpha+k)}`, gives

  .. math::

      \frac{\partial z}{\partial\alpha} = -\frac{z}{\alpha}
      \Bigl[S\,(\log z - \psi(\alpha+1)) + S'\Bigr],\quad
      S' = -\sum_k T_k \sum_{j=1}^k \frac{1}{\alpha+j};

  both terms in the bracket are :math:`\le 0` there, so nothing cancels;
- above it, Legendre's continued fraction
  :math:`Q = 1 - P = \frac{z^\alpha e^{-z}}{\Gamma(\alpha)} C`,
  :math:`C = 1/(z+1-\alpha-\frac{1(1-\alpha)}{z+3-\alpha-\cdots})`, is evaluated by
  the modified Lentz algorithm carrying the derivative :math:`C'` along (forward
  mode), and

  .. math::

      \frac{\partial z}{\partial\alpha}
      = z\Bigl[C\,(\log z - \psi(\alpha)) + C'\Bigr],

  with both terms :math:`\ge 0` there.

Dividing by the density analytically (the ratios are :math:`z/\alpha` and :math:`z`)
means no exponential is ever formed, so nothing under- or overflows. Both expansions
need a number of terms that grows like :math:`\sqrt\alpha`; with at most 100,000 terms
the functions here support :math:`0 < \alpha \le 10^8` (:data:`MAX_GRAD_CONCENTRATION`)
and raise ``ValueError`` above. The tests compare the result with mpmath at 30 digits,
with central differences of SciPy's inverse ``gammaincinv``, and with PyTorch's own
``_standard_gamma_grad``.

Marsaglia and Tsang's sampler, which ``torch._standard_gamma`` runs (for
:math:`\alpha < 1` on :math:`\alpha + 1`, times :math:`U^{1/\alpha}`), proposes
:math:`h(\varepsilon, \alpha) = (\alpha - 1/3)(1 + \varepsilon/\sqrt{9\alpha - 3})^3`
for a standard Normal :math:`\varepsilon` and accepts some proposals. :math:`h` is
differentiable, but the law of the *accepted* :math:`\varepsilon` depends on
:math:`\alpha`, so :math:`f'(h)\,\partial h/\partial\alpha` alone is a biased gradient;
:func:`rejection_gradient_terms` computes it and the score-function correction of
Naesseth, Ruiz, Linderman & Blei (2017) by quadrature.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
from scipy import special

from ._validation import (
    as_real_scalar,
    check_baseline,
    check_choice,
    check_count,
    check_generator,
)
from .estimators import evaluate_cost, subtract_baseline

__all__ = [
    "MAX_GRAD_CONCENTRATION",
    "EstimatorMoments",
    "RejectionGradient",
    "implicit_sample_grad",
    "standard_gamma_grad",
    "regularized_gamma_grad",
    "gamma_cdf",
    "draw_standard_gamma",
    "gamma_pathwise_grad",
    "gamma_score_function_grad",
    "gamma_estimator_moments",
    "marsaglia_tsang_proposal",
    "marsaglia_tsang_accepted_density",
    "marsaglia_tsang_noise",
    "naive_rejection_grad",
    "rejection_gradient_terms",
    "standard_gamma_rsample",
    "beta_from_gammas",
    "beta_composition_mean_speed",
    "dirichlet_from_gammas",
]

Scalar = float | int | torch.Tensor
NumpyCost = Callable[[np.ndarray], np.ndarray]
DTYPE = torch.float64
_MAX_TERMS = 100_000
_TOLERANCE = 1e-17
# The series and the continued fraction need about sqrt(alpha) terms; 1e8 is the largest
# power of ten at which both converge within _MAX_TERMS everywhere (checked in tests).
MAX_GRAD_CONCENTRATION = 1e8
TINY = torch.finfo(DTYPE).tiny  # the smallest positive normal float64, 2.2e-308
# The quadrature rule of gamma_estimator_moments: how far into each tail it reaches,
# and the most nodes it may use (memory and time stay bounded).
_TAIL_MASS = 1e-17
_MAX_NODES = 2_000_000


# --- the general rule


def implicit_sample_grad(
    cdf: Callable[..., torch.Tensor], x: torch.Tensor, params: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    r"""Sample derivatives :math:`\partial x/\partial\theta_j`.

    :math:`\partial x/\partial\theta_j
    = -(\partial F/\partial\theta_j)/(\partial F/\partial x)`.

    ``cdf(x, *params)`` is a torch function differentiable in ``x`` and in every
    parameter; ``x`` holds samples; ``params`` is a sequence of 0-d tensors. Returns one
    tensor of ``x``'s shape per parameter: how each sample moves when that parameter
    moves with its uniform ``u = F(x)`` held fixed.

    The implicit function theorem needs :math:`F` continuously differentiable in
    :math:`(x, \theta)` near the sample and :math:`\partial F/\partial x > 0` there.
    This function can only see what autograd returns: it raises ``ValueError`` where
    :math:`\partial F/\partial x` is not positive and finite, since the rule divides by
    it. Autograd differentiates the branch a ``torch.where`` selects, so at a jump of a
    CDF written that way it reports 0, not the jump: a refusal here says the rule cannot
    be applied, not that the density is zero.
    """
    if not callable(cdf):
        raise TypeError(f"cdf must be callable, got {type(cdf).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if isinstance(params, torch.Tensor) or not isinstance(params, Sequence):
        raise TypeError("params must be a sequence (list or tuple) of 0-d tensors")
    if len(params) == 0:
        raise ValueError("params must hold at least one parameter")
    for j, theta in enumerate(params):
        if not isinstance(theta, torch.Tensor) or theta.ndim != 0:
            raise TypeError(f"params[{j}] must be a 0-d torch.Tensor, got {theta!r}")
    x_leaf = x.detach().clone().requires_grad_(True)
    # Replicate each parameter once per sample: the gradient of sum_i F(x_i; copy i of
    # theta) with respect to copy i is then the partial derivative at sample i alone.
    copies = [
        theta.detach().expand(x.shape).clone().requires_grad_(True) for theta in params
    ]
    values = cdf(x_leaf, *copies)
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"cdf must return a torch.Tensor, got {type(values).__name__}")
    if values.shape != x.shape:
        raise ValueError(f"cdf must return a tensor of x's shape {tuple(x.shape)}, "
                         f"got {tuple(values.shape)}")
    grads = torch.autograd.grad(
        values.sum(), [x_leaf, *copies], allow_unused=True, materialize_grads=True
    )
    density, param_grads = grads[0], grads[1:]
    bad = ~(torch.isfinite(density) & (density > 0))
    if bool(bad.any()):
        where = int(bad.reshape(-1).nonzero()[0, 0])  # a flat index, any shape
        raise ValueError(
            f"dF/dx (the density) must be positive and finite at every sample; it is "
            f"{density.reshape(-1)[where].item()!r} at sample {where} "
            f"(x = {x.reshape(-1)[where].item()!r}), so the implicit function theorem "
            "does not apply there"
        )
    return [-g / density for g in param_grads]


# --- the regularized incomplete gamma in a


def _as_float64_array(value, name: str) -> np.ndarray:
    """A real number, NumPy array or tensor as a float64 array; TypeError otherwise."""
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bool or value.is_complex():
            raise TypeError(f"{name} must be real, got dtype {value.dtype}")
        return value.detach().to("cpu", DTYPE).numpy()
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "fiu":
            raise TypeError(f"{name} must be real, got dtype {value.dtype}")
        return value.astype(np.float64)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a real number, a NumPy array or a torch.Tensor, got "
            f"{type(value).__name__} ({value!r})"
        )
    return np.asarray(float(value))


def _check_grad_concentration(concentration: np.ndarray) -> None:
    if not np.all(np.isfinite(concentration) & (concentration > 0)):
        raise ValueError("concentration must be finite and > 0")
    if np.any(concentration > MAX_GRAD_CONCENTRATION):
        raise ValueError(
            f"concentration must be <= {MAX_GRAD_CONCENTRATION:g} for dz/dalpha (the "
            "series and continued fraction need about sqrt(concentration) terms), got "
            f"{float(np.max(concentration)):g}"
        )


def _lower_series(a: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """S and dS/da for P = z^a e^-z S / Gamma(a+1); all terms of S' have one sign."""
    total = np.ones_like(z)
    total_da = np.zeros_like(z)
    term = np.ones_like(z)
    harmonic = np.zeros_like(z)
    active = np.ones(z.shape, dtype=bool)
    for k in range(1, _MAX_TERMS):
        idx = np.nonzero(active)[0]
        if idx.size == 0:
            return total, total_da
        ak = a[idx] + k
        term[idx] *= z[idx] / ak
        harmonic[idx] += 1.0 / ak
        total[idx] += term[idx]
        total_da[idx] -= term[idx] * harmonic[idx]
        # The ratio z/(a+k) < 1 from here on, so the remaining terms shrink
        # geometrically.
        done = (term[idx] <= _TOLERANCE * total[idx]) & (
            term[idx] * harmonic[idx] <= _TOLERANCE * np.abs(total_da[idx])
        )
        active[idx[done]] = False
    raise RuntimeError("incomplete gamma series did not converge")


def _upper_fraction(a: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """C and dC/da for Q = z^a e^-z C / Gamma(a), by Lentz's method in forward mode.

    C = 1/g, g = b_1 + a_2/(b_2 + a_3/(b_3 + ...)), b_n = z + 2n - 1 - a,
    a_n = -(n - 1)(n - 1 - a); so db_n/da = -1 and da_n/da = n - 1.
    """
    tiny = 1e-300
    f = z + 1.0 - a
    df = -np.ones_like(z)
    c, dc = f.copy(), df.copy()
    d, dd = np.zeros_like(z), np.zeros_like(z)
    active = np.ones(z.shape, dtype=bool)
    for n in range(2, _MAX_TERMS):
        idx = np.nonzero(active)[0]
        if idx.size == 0:
            return 1.0 / f, -df / (f * f)
        an = -(n - 1.0) * (n - 1.0 - a[idx])
        dan = n - 1.0
        bn = z[idx] + 2.0 * n - 1.0 - a[idx]
        d_den = bn + an * d[idx]
        dd_den = -1.0 + dan * d[idx] + an * dd[idx]
        d_den = np.where(np.abs(d_den) < tiny, tiny, d_den)
        d_new, dd_new = 1.0 / d_den, -dd_den / (d_den * d_den)
        c_old, dc_old = c[idx], dc[idx]
        c_new = bn + an / c_old
        dc_new = -1.0 + dan / c_old - an * dc_old / (c_old * c_old)
        c_new = np.where(np.abs(c_new) < tiny, tiny, c_new)
        delta, d_delta = c_new * d_new, dc_new * d_new + c_new * dd_new
        f_old = f[idx]
        f[idx] = f_old * delta
        df[idx] = df[idx] * delta + f_old * d_delta
        c[idx], dc[idx], d[idx], dd[idx] = c_new, dc_new, d_new, dd_new
        done = (np.abs(delta - 1.0) <= _TOLERANCE) & (
            np.abs(f_old * d_delta) <= _TOLERANCE * np.abs(df[idx])
        )
        active[idx[done]] = False
    raise RuntimeError("incomplete gamma continued fraction did not converge")


def _split(a: np.ndarray, z: np.ndarray) -> np.ndarray:
    # Below e^{psi(a+1)} the series has no cancellation; above, the continued fraction
    # has none.
    return z <= np.exp(special.digamma(a + 1.0))


def _standard_gamma_grad_numpy(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    out = np.zeros_like(z)
    positive = z > 0  # at z = 0 the sample cannot move: the limit of z log z is 0
    lower = positive & _split(a, z)
    upper = positive & ~lower
    if lower.any():
        zl, al = z[lower], a[lower]
        s, ds = _lower_series(al, zl)
        out[lower] = -(zl / al) * (s * (np.log(zl) - special.digamma(al + 1.0)) + ds)
    if upper.any():
        zu, au = z[upper], a[upper]
        c, dc = _upper_fraction(au, zu)
        out[upper] = zu * (c * (np.log(zu) - special.digamma(au)) + dc)
    return out


def _samples_and_concentrations(
    z, concentration, name: str = "z"
) -> tuple[np.ndarray, np.ndarray, tuple]:
    z = _as_float64_array(z, name)
    a = _as_float64_array(concentration, "concentration")
    shape = np.broadcast_shapes(z.shape, a.shape)
    z, a = (
        np.broadcast_to(z, shape).ravel().copy(),
        np.broadcast_to(a, shape).ravel().copy(),
    )
    if not np.all(np.isfinite(z) & (z >= 0)):
        raise ValueError(f"{name} must be finite and >= 0")
    _check_grad_concentration(a)
    return z, a, shape


def standard_gamma_grad(z, concentration) -> torch.Tensor:
    r""":math:`\partial z/\partial\alpha` at fixed :math:`u = P(\alpha, z)`, for
    :math:`z \sim \mathrm{Gamma}(\alpha, 1)`.

    ``z`` (samples, >= 0) and ``concentration`` (:math:`0 < \alpha \le 10^8`) are real
    numbers, NumPy arrays or tensors that broadcast; returns float64 of their shape.
    Series below :math:`e^{\psi(\alpha+1)}`, continued fraction above (see the module
    docstring).
    """
    z, a, shape = _samples_and_concentrations(z, concentration)
    return torch.from_numpy(_standard_gamma_grad_numpy(z, a).reshape(shape))


def regularized_gamma_grad(z, concentration) -> torch.Tensor:
    r""":math:`\partial P(\alpha, z)/\partial\alpha`, the derivative of the regularized
    lower incomplete gamma in its first argument, at the points ``z``.

    Arguments as :func:`standard_gamma_grad` (points first, then the concentration).
    It is minus the density times :math:`\partial z/\partial\alpha` (the implicit
    function theorem read backwards), the density being
    :math:`z^{\alpha-1}e^{-z}/\Gamma(\alpha)`.
    """
    z_arr, a, shape = _samples_and_concentrations(z, concentration)
    out = np.zeros_like(z_arr)  # P(alpha, 0) = 0 for every alpha
    # Below 1e-300 the series' first term is exact to float64 accuracy, P = z^alpha /
    # Gamma(alpha + 1), so dP/dalpha = P (log z - psi(alpha + 1)); the density alone
    # would overflow there for a small alpha.
    tiny = (z_arr > 0) & (z_arr < 1e-300)
    log_z, at = np.log(z_arr[tiny]), a[tiny]
    out[tiny] = (np.exp(at * log_z - special.gammaln(at + 1.0))
                 * (log_z - special.digamma(at + 1.0)))
    # Elsewhere minus the density times dz/dalpha. (Not at z = 0, where the density is
    # NaN or infinite for alpha <= 1: it would warn, and the suite's warnings are
    # errors.)
    normal = z_arr >= 1e-300
    zp, ap = z_arr[normal], a[normal]
    density = np.exp((ap - 1.0) * np.log(zp) - zp - special.gammaln(ap))
    out[normal] = -density * _standard_gamma_grad_numpy(zp, ap)
    return torch.from_numpy(out.reshape(shape))


class _RegularizedGammaP(torch.autograd.Function):
    """P(a, z) with gradients in both arguments (gammainc has none in a)."""

    @staticmethod
    def forward(ctx, a, z):
        ctx.save_for_backward(a, z)
        return torch.special.gammainc(a, z)

    @staticmethod
    def backward(ctx, grad_output):
        a, z = ctx.saved_tensors
        density = torch.exp((a - 1) * torch.log(z) - z - torch.lgamma(a))
        grad_a = regularized_gamma_grad(z, a).to(grad_output.dtype)
        return grad_output * grad_a, grad_output * density


def gamma_cdf(
    x: torch.Tensor, concentration: torch.Tensor, rate: torch.Tensor
) -> torch.Tensor:
    r"""The Gamma(α, rate β) CDF :math:`P(\alpha, \beta x)`, differentiable in all.

    Written for :func:`implicit_sample_grad`; the α-derivative is
    :func:`regularized_gamma_grad`.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    concentration, rate = torch.as_tensor(concentration), torch.as_tensor(rate)
    shape = torch.broadcast_shapes(x.shape, concentration.shape, rate.shape)
    return _RegularizedGammaP.apply(
        concentration.expand(shape), (rate * x).expand(shape)
    )


# --- the Gamma estimators


def _check_gamma(concentration: Scalar, rate: Scalar) -> tuple[float, float]:
    """(alpha, beta), each a positive real number."""
    alpha = as_real_scalar(concentration, "concentration")
    if alpha <= 0:
        raise ValueError(f"concentration must be > 0, got {alpha}")
    beta = as_real_scalar(rate, "rate")
    if beta <= 0:
        raise ValueError(f"rate must be > 0, got {beta}")
    return alpha, beta


def _check_gamma_draws(
    concentration: Scalar, rate: Scalar, n, generator
) -> tuple[float, float, int]:
    """(alpha, beta, n) for a function that draws ``n`` values from ``generator``."""
    alpha, beta = _check_gamma(concentration, rate)
    n = check_count(n, "n")
    check_generator(generator)
    return alpha, beta, n


def draw_standard_gamma(
    concentration: float, n: int, generator: torch.Generator
) -> torch.Tensor:
    """``n`` float64 draws of Gamma(α, 1), drawn exactly as
    ``torch.distributions.Gamma`` draws.

    ``Gamma.rsample`` calls ``torch._standard_gamma`` on the global generator; with
    the same generator state both see the same z (the tests replay it bit for bit).
    Like PyTorch, it returns the smallest normal float64, 2.2e-308, for a draw below it
    (a fraction :math:`\\approx (2.2\\times10^{-308})^\\alpha/\\Gamma(\\alpha+1)` of
    the draws, which matters for :math:`\\alpha \\lesssim 0.02`).
    """
    alpha, _, n = _check_gamma_draws(concentration, 1.0, n, generator)
    return torch._standard_gamma(
        torch.full((n,), alpha, dtype=DTYPE), generator=generator
    )


class _GammaDraws(NamedTuple):
    log_z: torch.Tensor  # log of the standard draw, exact even below 2.2e-308
    z: torch.Tensor  # the standard draw as a float64 (0 or subnormal if it underflows)
    x: torch.Tensor  # the sample z / rate, clamped at 2.2e-308 as torch clamps it
    x_clamped: torch.Tensor  # True where the sample lies below 2.2e-308


def _gamma_draws(alpha: float, beta: float, n: int, generator) -> _GammaDraws:
    z = draw_standard_gamma(alpha, n, generator)
    below = z <= TINY  # torch returned 2.2e-308 for a draw below it
    log_z = torch.log(z)
    if bool(below.any()):
        # For t = 2.2e-308, P(z < s) = s^alpha / Gamma(alpha + 1) for s <= t to float64
        # accuracy, so given z < t, z = t V^(1/alpha) with V uniform: draw log z so.
        v = torch.rand(int(below.sum()), dtype=DTYPE, generator=generator)
        log_z[below] = math.log(TINY) + torch.log1p(-v) / alpha
    z = torch.where(below, torch.exp(log_z), z)
    log_x = log_z - math.log(beta)
    x = torch.where(below, torch.exp(log_x), z / beta).clamp(min=TINY)
    return _GammaDraws(log_z, z, x, log_x < math.log(TINY))


def _check_cost_near_zero(f, alpha: float, slope: bool) -> None:
    """For samples below 2.2e-308 the cost sees 2.2e-308: demand that this is harmless.

    ``f`` (or its derivative, if ``slope``) must be finite and equal at 0 and at
    2.2e-308 (to 1e-12 relative, 1e-300 absolute); otherwise the estimate would be
    wrong, and a ``ValueError`` says so.
    """
    name = "f'" if slope else "f"
    probe = torch.tensor([0.0, TINY], dtype=DTYPE, requires_grad=slope)
    with torch.enable_grad():
        out = f(probe)
        if slope and isinstance(out, torch.Tensor) and out.requires_grad:
            (out,) = torch.autograd.grad(
                out.sum(), probe, allow_unused=True, materialize_grads=True
            )
        elif slope:
            out = torch.zeros_like(probe)
    at_zero, at_tiny = (float(v) for v in out.detach())
    gap = abs(at_zero - at_tiny)
    if not (math.isfinite(gap) and gap <= 1e-12 * abs(at_tiny) + 1e-300):
        raise ValueError(
            f"at concentration {alpha:g} some samples lie below the smallest normal "
            f"float64, 2.2e-308, and are evaluated there (as torch.distributions.Gamma "
            f"does); {name} must then take the same finite value at 0 and at 2.2e-308, "
            f"but {name}(0) = {at_zero!r} and {name}(2.2e-308) = {at_tiny!r}"
        )


def gamma_pathwise_grad(
    f: Callable[[torch.Tensor], torch.Tensor],
    concentration: Scalar,
    rate: Scalar,
    n: int,
    generator: torch.Generator,
) -> torch.Tensor:
    r"""Per-sample pathwise estimates of
    :math:`\nabla_{\alpha,\beta}\mathbb E_{x\sim\mathrm{Gamma}(\alpha,\beta)}[f(x)]`.

    Row ``i`` is :math:`f'(x_i)\,(\partial x_i/\partial\alpha, -x_i/\beta)` with
    :math:`\partial x/\partial\alpha = (\partial z/\partial\alpha)/\beta` from
    :func:`standard_gamma_grad` (so :math:`\alpha \le 10^8`); shape ``(n, 2)``, float64.
    :math:`f'` comes from autograd (zero where ``f`` is flat or cuts the graph, as in
    :func:`reparam.estimators.pathwise_grad`). Samples below 2.2e-308 (a concern for
    :math:`\alpha \lesssim 0.02`) are evaluated at 2.2e-308, as PyTorch does; then
    ``ValueError`` unless :math:`f'` is finite and the same at 0 and at 2.2e-308.
    """
    alpha, beta, n = _check_gamma_draws(concentration, rate, n, generator)
    _check_grad_concentration(np.asarray(alpha))
    draws = _gamma_draws(alpha, beta, n, generator)
    x_leaf = draws.x.clone().requires_grad_(True)
    out, total = evaluate_cost(f, x_leaf)
    if out.requires_grad:
        (slope,) = torch.autograd.grad(
            total, x_leaf, allow_unused=True, materialize_grads=True
        )
    else:
        slope = torch.zeros_like(draws.x)
    if bool(draws.x_clamped.any()):
        _check_cost_near_zero(f, alpha, slope=True)
    dx_dalpha = standard_gamma_grad(draws.z, alpha) / beta
    return torch.stack((slope * dx_dalpha, slope * (-draws.x / beta)), dim=1)


def gamma_score_function_grad(
    f: Callable[[torch.Tensor], torch.Tensor],
    concentration: Scalar,
    rate: Scalar,
    n: int,
    generator: torch.Generator,
    baseline: None | float | str = None,
) -> torch.Tensor:
    r"""Per-sample score-function estimates for the Gamma, shape ``(n, 2)``, float64.

    Row ``i`` is
    :math:`(f(x_i) - b_i)\,(\log\beta + \log x_i - \psi(\alpha),\ \alpha/\beta - x_i)`,
    the score :math:`\nabla_{\alpha,\beta}\log p(x_i)` times the cost less a baseline;
    ``f`` is only evaluated. ``baseline`` as in
    :func:`reparam.estimators.score_function_grad`: ``None`` (b = 0), a number, or
    ``"leave-one-out"``.

    :math:`\log x_i` is exact for every draw, including those PyTorch returns as
    2.2e-308 because they lie below it (12 % of the draws at :math:`\alpha = 0.003`):
    for those, :math:`\log z` is drawn from the Gamma's law below 2.2e-308 (see
    ``_gamma_draws``). ``f`` sees such a sample as 2.2e-308, as in PyTorch, so then
    ``f`` must be finite and the same at 0 and at 2.2e-308, or ``ValueError``.
    """
    alpha, beta, n = _check_gamma_draws(concentration, rate, n, generator)
    baseline = check_baseline(baseline, n)
    draws = _gamma_draws(alpha, beta, n, generator)
    with torch.no_grad():
        values, _ = evaluate_cost(f, draws.x)
        if bool(draws.x_clamped.any()):
            _check_cost_near_zero(f, alpha, slope=False)
        values = subtract_baseline(values, baseline)
        # log(beta) + log(x) - psi(alpha) = log(z) - psi(alpha)
        score = torch.stack(
            (draws.log_z - special.digamma(alpha), alpha / beta - draws.x), dim=1
        )
        return values.unsqueeze(1) * score


# --- exact moments by quadrature


class EstimatorMoments(NamedTuple):
    """Exact mean and variance of one draw of an estimator, per parameter (α, β)."""

    mean: np.ndarray
    variance: np.ndarray


def _gauss_legendre_panels(edges: np.ndarray, order: int = 16):
    nodes, weights = np.polynomial.legendre.leggauss(order)
    half = np.diff(edges)[:, None] / 2.0
    points = (edges[:-1, None] + half + half * nodes[None, :]).ravel()
    return points, (half * weights[None, :]).ravel()


def _log_lower_quantile(alpha: float, level: float) -> float:
    """log of the Gamma(alpha, 1) quantile at a tiny ``level``, even if it underflows.

    Below the quantile P(alpha, z) = z^alpha / Gamma(alpha + 1) (1 + O(z)), so where
    SciPy's quantile is not a normal float its logarithm is
    (log level + lgamma(alpha + 1)) / alpha.
    """
    z = float(special.gammaincinv(alpha, level))
    if z > 1e-300:
        return math.log(z)
    return (math.log(level) + float(special.gammaln(alpha + 1.0))) / alpha


def _lower_edges(s_low: float) -> np.ndarray:
    """Panel edges in s = log z from ``s_low`` up to -8, each panel 1.2 times wider
    than the one above it, starting at 0.1: narrow where z e^{alpha s} still varies,
    wide only far out, where z is negligible and e^{alpha s} changes by a small factor
    per panel (about 100 panels even at alpha = 1e-6)."""
    edges, width = [-8.0], 0.1
    while edges[-1] > s_low:
        edges.append(max(edges[-1] - width, s_low))
        width *= 1.2
    return np.array(edges[::-1])


def _gamma_rule(alpha: float, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes s = log z and weights w with sum(w h(z)) = E[h(z)], z ~ Gamma(alpha, 1).

    Below z = 1 the rule lives in s = log z, where density(z) dz/ds =
    exp(alpha s - z) / Gamma(alpha) is smooth even for alpha < 1 (panels of width 0.1
    in s from z = 1 down to z = e^-8, geometrically wider below, see
    ``_lower_edges``); above z = 1 it is linear in z, with panels 0.25 min(1, beta)
    wide so that a cost oscillating in x = z / beta is resolved. Both ends reach 1e-17
    of the mass. The nodes are logarithms, so they hold the draws far below the
    smallest float64 that matter when alpha is small (at alpha = 0.01 a tenth of a
    percent of the mass lies below 2.2e-308).
    """
    s_low = min(_log_lower_quantile(alpha, _TAIL_MASS) - 1.0, -9.0)
    z_low = max(float(special.gammaincinv(alpha, _TAIL_MASS)) - 1.0, 1.0)
    z_high = max(float(special.gammainccinv(alpha, _TAIL_MASS)) + 1.0, z_low + 1.0)
    width = 0.25 * min(1.0, beta)
    panels = int(math.ceil((z_high - z_low) / width))
    lower_edges = np.concatenate([_lower_edges(s_low)[:-1], np.linspace(-8.0, 0.0, 81)])
    nodes = 16 * (len(lower_edges) - 1 + panels)
    if nodes > _MAX_NODES:
        raise ValueError(
            f"the quadrature for concentration {alpha:g} and rate {beta:g} would need "
            f"{nodes} nodes (at most {_MAX_NODES}): use a larger rate or a smaller "
            "concentration"
        )
    s1, w1 = _gauss_legendre_panels(lower_edges)
    w1 = w1 * np.exp(alpha * s1 - np.exp(s1) - special.gammaln(alpha))
    z2, w2 = _gauss_legendre_panels(np.linspace(z_low, z_high, panels + 1))
    w2 = w2 * np.exp((alpha - 1.0) * np.log(z2) - z2 - special.gammaln(alpha))
    return np.concatenate([s1, np.log(z2)]), np.concatenate([w1, w2])


def gamma_estimator_moments(
    f: NumpyCost,
    df: NumpyCost,
    concentration: float,
    rate: float,
    estimator: str,
    baseline: float | None = None,
) -> EstimatorMoments:
    r"""Exact mean and variance of one draw of an estimator, per parameter (α, β), by
    quadrature.

    ``f`` and its derivative ``df`` are vectorized NumPy functions of x;
    ``estimator`` is ``"pathwise"`` or ``"score"``; ``baseline`` is a constant b
    subtracted from f in the score-function estimator (``None``: b = 0). The
    expectation over :math:`x = z/\beta` is an integral over :math:`s = \log z`, where
    the Gamma density times :math:`dz/ds` is smooth even for α < 1 (its singularity at
    0 becomes a slow :math:`e^{\alpha s}` tail), joined at z = 1 to a rule linear in z:
    composite 16-point Gauss-Legendre (see ``_gamma_rule``). The score uses
    :math:`\log x = s - \log\beta` directly, so samples below the smallest float64 are
    handled exactly. ``ValueError`` if ``f`` or ``df`` is not finite at a node (for
    instance log x where x underflows to 0) or if the rule would need more than two
    million nodes. The tests check it against ``scipy.integrate.quad`` and closed forms.
    """
    estimator = check_choice(estimator, "estimator", ("pathwise", "score"))
    for function, name in ((f, "f"), (df, "df")):
        if not callable(function):
            raise TypeError(f"{name} must be callable, got {type(function).__name__}")
    alpha, beta = _check_gamma(concentration, rate)
    b = 0.0 if baseline is None else as_real_scalar(baseline, "baseline")
    if estimator == "pathwise":
        _check_grad_concentration(np.asarray(alpha))
    s, w = _gamma_rule(alpha, beta)
    with np.errstate(under="ignore"):
        z = np.exp(s)  # 0 below e^-745: only the score's log z needs those exactly
    x = z / beta
    # A cost that is infinite at a node (log x at x = 0) is reported below, not warned.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if estimator == "pathwise":
            slope = np.asarray(df(x), dtype=np.float64)
            speed = _standard_gamma_grad_numpy(z, np.full_like(z, alpha))
            draws = np.stack([slope * speed / beta, slope * (-x / beta)])
        else:
            value = np.asarray(f(x), dtype=np.float64) - b
            draws = np.stack(
                [value * (s - special.digamma(alpha)), value * (alpha / beta - x)]
            )
    if not np.all(np.isfinite(draws)):
        raise ValueError(
            f"{'df' if estimator == 'pathwise' else 'f'} is not finite at every "
            "quadrature node (x from 0 to the far upper tail)"
        )
    mean = draws @ w
    variance = (draws**2) @ w - mean**2
    return EstimatorMoments(mean, np.maximum(variance, 0.0))


# --- Marsaglia and Tsang's rejection sampler, differentiated naively


def _check_rejection_concentration(concentration) -> float:
    alpha = as_real_scalar(concentration, "concentration")
    if alpha < 1.0:
        raise ValueError(
            "concentration must be >= 1 for Marsaglia and Tsang's proposal (below 1 "
            f"the sampler boosts alpha by 1), got {alpha}"
        )
    return alpha


def marsaglia_tsang_proposal(
    eps: torch.Tensor, concentration: torch.Tensor
) -> torch.Tensor:
    r"""The proposal :math:`h(\varepsilon, \alpha) = (\alpha - \tfrac13)
    (1 + \varepsilon/\sqrt{9\alpha - 3})^3` of Marsaglia and Tsang (2000).

    A differentiable torch function of both arguments (they broadcast).
    """
    if not isinstance(eps, torch.Tensor) or not isinstance(concentration, torch.Tensor):
        raise TypeError("eps and concentration must be torch.Tensors")
    d = concentration - 1.0 / 3.0
    return d * (1.0 + eps / torch.sqrt(9.0 * d)) ** 3


def _marsaglia_tsang_log_density(
    eps: torch.Tensor, concentration: torch.Tensor
) -> torch.Tensor:
    """log pi(eps; alpha), -inf outside the support; finite (and differentiable)
    inside it even where pi itself underflows."""
    d = concentration - 1.0 / 3.0
    w = 1.0 + eps / torch.sqrt(9.0 * d)
    inside = w > 0
    w_safe = torch.where(inside, w, torch.ones_like(w))
    h = d * w_safe**3
    log_pi = (
        (concentration - 1.0) * torch.log(h)
        - h
        - torch.lgamma(concentration)
        + 0.5 * torch.log(d)
        + 2.0 * torch.log(w_safe)
    )
    return torch.where(inside, log_pi, torch.full_like(log_pi, -math.inf))


def marsaglia_tsang_accepted_density(
    eps: torch.Tensor, concentration: torch.Tensor
) -> torch.Tensor:
    r"""The density :math:`\pi(\varepsilon; \alpha)` of the *accepted* noise.

    A proposal is accepted with probability proportional to
    :math:`p_\alpha(h)\,|\partial h/\partial\varepsilon| / \varphi(\varepsilon)`, so
    the accepted :math:`\varepsilon` has density
    :math:`\pi = p_\alpha(h(\varepsilon, \alpha))\,\partial h/\partial\varepsilon
    = \mathrm{Gamma}(h; \alpha, 1)\,\sqrt{\alpha - 1/3}\,(1 + \varepsilon/
    \sqrt{9\alpha-3})^2` for :math:`\varepsilon > -\sqrt{9\alpha-3}`, and 0 below: it
    depends on :math:`\alpha`. Differentiable in both arguments where positive.
    """
    if not isinstance(eps, torch.Tensor) or not isinstance(concentration, torch.Tensor):
        raise TypeError("eps and concentration must be torch.Tensors")
    return torch.exp(_marsaglia_tsang_log_density(eps, concentration))


def marsaglia_tsang_noise(
    concentration: float, n: int, generator: torch.Generator
) -> torch.Tensor:
    r"""``n`` accepted noises :math:`\varepsilon` of Marsaglia and Tsang's sampler.

    Proposals :math:`\varepsilon \sim \mathcal N(0, 1)` with :math:`U \sim
    \mathcal U(0, 1)` are accepted when :math:`1 + c\varepsilon > 0` and
    :math:`\log U < \varepsilon^2/2 + d - dv + d\log v`, :math:`d = \alpha - 1/3`,
    :math:`c = 1/\sqrt{9d}`, :math:`v = (1 + c\varepsilon)^3` (the paper's squeeze only
    saves a logarithm and is left out). Then :math:`h(\varepsilon, \alpha) \sim
    \mathrm{Gamma}(\alpha, 1)`. Needs :math:`\alpha \ge 1`; float64.
    """
    alpha = _check_rejection_concentration(concentration)
    n = check_count(n, "n")
    check_generator(generator)
    d = alpha - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    accepted, count = [], 0
    while count < n:
        batch = max(64, int(1.1 * (n - count)) + 16)
        eps = torch.randn(batch, dtype=DTYPE, generator=generator)
        u = torch.rand(batch, dtype=DTYPE, generator=generator)
        y = 1.0 + c * eps
        v = y.clamp(min=TINY) ** 3
        keep = (y > 0) & (
            torch.log1p(-u) < 0.5 * eps**2 + d - d * v + d * torch.log(v)
        )
        accepted.append(eps[keep])
        count += int(keep.sum())
    return torch.cat(accepted)[:n]


def naive_rejection_grad(
    f: Callable[[torch.Tensor], torch.Tensor],
    concentration: float,
    n: int,
    generator: torch.Generator,
) -> torch.Tensor:
    r"""Per-sample *naive* gradients :math:`f'(h)\,\partial h/\partial\alpha` of
    :math:`\mathbb E[f(x)]`, :math:`x \sim \mathrm{Gamma}(\alpha, 1)`, at the accepted
    noises of :func:`marsaglia_tsang_noise`; shape ``(n, 1)``, float64.

    Autograd differentiates the accepted proposal, holding its :math:`\varepsilon`
    fixed. The mean is biased: it leaves out how the accepted noise's law moves with
    :math:`\alpha` (see :func:`rejection_gradient_terms`).
    """
    alpha = _check_rejection_concentration(concentration)
    eps = marsaglia_tsang_noise(alpha, n, generator)
    copies = torch.full_like(eps, alpha).requires_grad_(True)
    out, total = evaluate_cost(f, marsaglia_tsang_proposal(eps, copies))
    if not out.requires_grad:
        return torch.zeros(len(eps), 1, dtype=DTYPE)
    (grad,) = torch.autograd.grad(total, copies, allow_unused=True,
                                  materialize_grads=True)
    return grad.unsqueeze(1)


class RejectionGradient(NamedTuple):
    r""":math:`\partial_\alpha\mathbb E[f] = ` ``naive + correction``.

    ``naive``: :math:`\mathbb E_\pi[f'(h)\,\partial h/\partial\alpha]`, the mean of
    :func:`naive_rejection_grad`; ``correction``:
    :math:`\mathbb E_\pi[f(h)\,\partial_\alpha\log\pi]`, the score-function term of
    Naesseth et al. (2017) for the accepted noise's law.
    """

    naive: float
    correction: float


def rejection_gradient_terms(
    f: NumpyCost, df: NumpyCost, concentration: float
) -> RejectionGradient:
    r"""Both terms of the gradient through Marsaglia and Tsang's sampler, by
    quadrature over the accepted noise's density :math:`\pi(\varepsilon;\alpha)`.

    ``f``, ``df``: vectorized NumPy functions of x and their derivative. Composite
    16-point Gauss-Legendre on panels of width 0.05 from
    :math:`-\sqrt{9\alpha-3}` (where :math:`\pi` vanishes) to where the proposal reaches
    the Gamma's upper :math:`10^{-17}` tail; :math:`\partial h/\partial\alpha` and
    :math:`\partial_\alpha\log\pi` by autograd at each node. Needs
    :math:`1 \le \alpha \le 10^4`.
    """
    for function, name in ((f, "f"), (df, "df")):
        if not callable(function):
            raise TypeError(f"{name} must be callable, got {type(function).__name__}")
    alpha = _check_rejection_concentration(concentration)
    if alpha > 1e4:
        raise ValueError(f"concentration must be <= 1e4 here, got {alpha:g}")
    d = alpha - 1.0 / 3.0
    root = math.sqrt(9.0 * d)
    z_high = float(special.gammainccinv(alpha, _TAIL_MASS))
    eps_high = root * ((z_high / d) ** (1.0 / 3.0) - 1.0)
    edges = np.linspace(-root, eps_high, int(math.ceil((eps_high + root) / 0.05)) + 1)
    nodes, weights = _gauss_legendre_panels(edges)
    eps = torch.from_numpy(nodes)
    copies = torch.full_like(eps, alpha).requires_grad_(True)
    h = marsaglia_tsang_proposal(eps, copies)
    log_pi = _marsaglia_tsang_log_density(eps, copies)  # finite at every node
    (dh,) = torch.autograd.grad(h.sum(), copies)
    (dlog_pi,) = torch.autograd.grad(log_pi.sum(), copies)
    pi, x = torch.exp(log_pi).detach().numpy(), h.detach().numpy()
    naive = float(np.sum(weights * pi * df(x) * dh.numpy()))
    correction = float(np.sum(weights * pi * f(x) * dlog_pi.numpy()))
    return RejectionGradient(naive, correction)


# --- composition


class _StandardGammaSample(torch.autograd.Function):
    """z ~ Gamma(α, 1) drawn by torch, differentiated in α by
    :func:`standard_gamma_grad`."""

    @staticmethod
    def forward(ctx, concentration, generator):
        z = torch._standard_gamma(concentration, generator=generator)
        ctx.save_for_backward(z, concentration)
        return z

    @staticmethod
    def backward(ctx, grad_output):
        z, concentration = ctx.saved_tensors
        grad = standard_gamma_grad(z, concentration).to(grad_output.dtype)
        return grad_output * grad, None


def standard_gamma_rsample(
    concentration: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    r"""A differentiable draw of Gamma(α, 1) for each entry of ``concentration``.

    The draw is ``torch._standard_gamma`` (the one ``torch.distributions`` uses); its
    backward pass is this module's :math:`\partial z/\partial\alpha`, not PyTorch's
    (so :math:`0 < \alpha \le 10^8`).
    """
    if not isinstance(concentration, torch.Tensor):
        raise TypeError("concentration must be a torch.Tensor")
    if concentration.dtype == torch.bool or concentration.is_complex():
        raise TypeError(f"concentration must be real, got dtype {concentration.dtype}")
    _check_grad_concentration(concentration.detach().to("cpu", DTYPE).numpy())
    check_generator(generator)
    return _StandardGammaSample.apply(concentration, generator)


def beta_from_gammas(g1: torch.Tensor, g2: torch.Tensor) -> torch.Tensor:
    r"""Beta(α₁, α₂) from independent Gamma(α₁, 1), Gamma(α₂, 1):
    :math:`G_1/(G_1+G_2)`."""
    if not isinstance(g1, torch.Tensor) or not isinstance(g2, torch.Tensor):
        raise TypeError("g1 and g2 must be torch.Tensors")
    return g1 / (g1 + g2)


def beta_composition_mean_speed(
    x, concentration1: float, concentration0: float
) -> torch.Tensor:
    r"""The composition's sample derivatives averaged at fixed x, by quadrature.

    For :math:`x = G_1/(G_1+G_2)`, :math:`G_1 \sim \mathrm{Gamma}(a, 1)`,
    :math:`G_2 \sim \mathrm{Gamma}(b, 1)` (:func:`beta_from_gammas` on
    :func:`standard_gamma_rsample` draws; ``concentration1`` is :math:`a`,
    ``concentration0`` is :math:`b`, as in ``torch.distributions.Beta``), the sample
    moves with :math:`a` and :math:`b` as

    .. math::

        \frac{\partial x}{\partial a} = \frac{(1-x)\,\gamma_a(xS)}{S},\qquad
        \frac{\partial x}{\partial b} = -\frac{x\,\gamma_b((1-x)S)}{S},

    with :math:`S = G_1 + G_2`, :math:`G_1 = xS`, :math:`G_2 = (1-x)S` and
    :math:`\gamma_\alpha(z) = \partial z/\partial\alpha` of
    :func:`standard_gamma_grad`. These depend on :math:`S` as well as on :math:`x`;
    :math:`S \sim \mathrm{Gamma}(a+b, 1)` is independent of :math:`x` (Lukacs), so
    their mean given :math:`x` is an integral over the law of :math:`S`, computed with
    the rule of :func:`gamma_estimator_moments`. ``x`` holds points in (0, 1) (a
    number, NumPy array or tensor); returns an ``(len(x), 2)`` float64 tensor whose row
    ``i`` holds the two conditional means at ``x[i]``. In one dimension they equal the
    implicit derivatives of the Beta CDF (Chapter 5 explains why; the tests compare
    with mpmath).
    """
    points = _as_float64_array(x, "x").reshape(-1)
    if not np.all(np.isfinite(points) & (points > 0) & (points < 1)):
        raise ValueError("x must hold points strictly between 0 and 1")
    a = as_real_scalar(concentration1, "concentration1")
    b = as_real_scalar(concentration0, "concentration0")
    for value, name in ((a, "concentration1"), (b, "concentration0")):
        if value <= 0:
            raise ValueError(f"{name} must be > 0, got {value}")
    _check_grad_concentration(np.array([a, b]))
    log_s, weights = _gamma_rule(a + b, 1.0)
    rows = np.empty((points.size, 2))
    for i, point in enumerate(points):
        # (1 - x) gamma_a(xS) / S = x (1 - x) gamma_a(z) / z with z = xS, and
        # likewise for b: both are x (1 - x) times a speed per unit of the Gamma draw.
        per_unit_1 = _speed_per_unit(math.log(point) + log_s, a)
        per_unit_0 = _speed_per_unit(math.log1p(-point) + log_s, b)
        rows[i] = point * (1.0 - point) * np.array(
            [per_unit_1 @ weights, -(per_unit_0 @ weights)]
        )
    return torch.from_numpy(rows)


def _speed_per_unit(log_z: np.ndarray, alpha: float) -> np.ndarray:
    r""":math:`\gamma_\alpha(z)/z` at :math:`z = e^{\log z}`, even where z underflows.

    Below :math:`10^{-300}` the series' first term is exact to float64 accuracy:
    :math:`\gamma_\alpha(z)/z = (\psi(\alpha+1) - \log z)/\alpha`.
    """
    out = (special.digamma(alpha + 1.0) - log_z) / alpha
    normal = log_z > math.log(1e-300)
    z = np.exp(log_z[normal])
    out[normal] = _standard_gamma_grad_numpy(z, np.full_like(z, alpha)) / z
    return out


def dirichlet_from_gammas(gammas: torch.Tensor) -> torch.Tensor:
    r"""Dirichlet(α) from independent Gamma(α_k, 1) along the last axis:
    :math:`G_k/\sum_j G_j`."""
    if not isinstance(gammas, torch.Tensor):
        raise TypeError("gammas must be a torch.Tensor")
    return gammas / gammas.sum(dim=-1, keepdim=True)
