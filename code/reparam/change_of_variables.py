r"""The change-of-variables formula, done by SymPy.

If X has density :math:`f_X` on its support :math:`S` and :math:`h` is strictly monotone and
differentiable on :math:`S`, then :math:`Y = h(X)` has density

.. math::

    f_Y(y) = f_X\bigl(g(y)\bigr)\,\lvert g'(y)\rvert, \qquad g = h^{-1},

on the image :math:`h(S)` and zero outside it. The absolute value covers both directions:
for increasing :math:`h`, :math:`F_Y(y) = F_X(g(y))`; for decreasing :math:`h`,
:math:`F_Y(y) = 1 - F_X(g(y))`, and differentiating either gives the formula above.

The multivariate linear case :math:`z = \mu + L\varepsilon` (``L`` invertible) is

.. math::

    q(z) = p\bigl(L^{-1}(z - \mu)\bigr)\,\lvert\det L\rvert^{-1},
    \qquad \log q(z) = \log p(\varepsilon) - \log\lvert\det \partial z / \partial \varepsilon\rvert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import sympy as sp
from sympy.calculus.util import function_range

__all__ = [
    "PushforwardDerivation",
    "derive_pushforward",
    "pushforward_density",
    "support_of",
    "linear_pushforward_density",
    "linear_log_density",
]


@dataclass(frozen=True)
class PushforwardDerivation:
    """Every intermediate step of :func:`derive_pushforward`, for display in a chapter.

    Attributes
    ----------
    support_x, support_y:
        The support of X and its image under h (where :math:`f_Y` may be non-zero).
    direction:
        ``"increasing"`` or ``"decreasing"``.
    inverse:
        :math:`g(y) = h^{-1}(y)`.
    inverse_derivative:
        :math:`g'(y)`; negative for a decreasing map.
    abs_inverse_derivative:
        :math:`\\lvert g'(y)\\rvert` (equal to :math:`g'` or :math:`-g'` by the direction).
    substituted:
        :math:`f_X(g(y))`, before multiplying by the Jacobian factor.
    unsimplified:
        :math:`f_X(g(y))\\,\\lvert g'(y)\\rvert` as written.
    density:
        The simplified density on ``support_y``.
    """

    support_x: sp.Set
    support_y: sp.Set
    direction: str
    inverse: sp.Expr
    inverse_derivative: sp.Expr
    abs_inverse_derivative: sp.Expr
    substituted: sp.Expr
    unsimplified: sp.Expr
    density: sp.Expr


def support_of(x: sp.Symbol) -> sp.Set:
    """The support a symbol's assumptions give: positive -> (0, oo), real -> the real line, ..."""
    if x.is_positive:
        return sp.Interval.open(0, sp.oo)
    if x.is_nonnegative:
        return sp.Interval(0, sp.oo)
    if x.is_negative:
        return sp.Interval.open(-sp.oo, 0)
    if x.is_nonpositive:
        return sp.Interval(-sp.oo, 0)
    if x.is_real:
        return sp.S.Reals
    raise ValueError(
        f"the symbol {x} carries no real-valued assumption, so its support is unknown: "
        f"declare it with sympy.Symbol({str(x)!r}, real=True) (or positive=True), or pass support="
    )


def _check_inputs(f_x, x, h, y, support):
    for name, value in (("x", x), ("y", y)):
        if not isinstance(value, sp.Symbol):
            raise TypeError(f"{name} must be a sympy.Symbol, got {type(value).__name__}")
    if x == y:
        raise ValueError("x and y must be different symbols")
    expressions = []
    for name, value in (("f_x", f_x), ("h", h)):
        # Strings are refused: sympify("f") would silently make a new symbol.
        try:
            converted = None if isinstance(value, str) else sp.sympify(value, strict=True)
        except sp.SympifyError:
            converted = None
        if not isinstance(converted, sp.Expr):
            raise TypeError(f"{name} must be a SymPy expression, got {type(value).__name__}")
        expressions.append(converted)
    f_x, h = expressions
    if y in h.free_symbols or y in f_x.free_symbols:
        raise ValueError(f"f_x and h must be written in {x}, not in {y}")
    if support is None:
        support = support_of(x)
    elif not isinstance(support, sp.Set) or not support.is_subset(sp.S.Reals):
        raise TypeError(f"support must be a SymPy subset of the reals, got {support!r}")
    return f_x, h, support


def _dummy_on(support: sp.Set) -> sp.Dummy:
    """A fresh symbol whose assumptions say as much about its sign as ``support`` does.

    SymPy's monotonicity and equation solvers reason from assumptions, not from intervals, so a
    real ``u`` restricted to (0, 1) must become a positive symbol before ``log(u)`` behaves.
    """
    if support.is_subset(sp.Interval.open(0, sp.oo)):
        return sp.Dummy("t", positive=True)
    if support.is_subset(sp.Interval.open(-sp.oo, 0)):
        return sp.Dummy("t", negative=True)
    return sp.Dummy("t", real=True)


def _direction(h: sp.Expr, x: sp.Symbol, support: sp.Set) -> str:
    if x not in h.free_symbols:
        raise ValueError(
            f"h = {h} is constant in {x}: it is not strictly monotone, so Y = h(X) has no density"
        )
    t = _dummy_on(support)
    if sp.is_strictly_increasing(h.subs(x, t), support, t):
        return "increasing"
    if sp.is_strictly_decreasing(h.subs(x, t), support, t):
        return "decreasing"
    raise ValueError(
        f"h = {h} is not strictly monotone on the support {support} of {x} (or SymPy cannot prove "
        f"that it is): the change-of-variables formula f_Y(y) = f_X(g(y))|g'(y)| needs a "
        f"one-to-one map; split the support into pieces where h is monotone"
    )


def _inverse(h: sp.Expr, x: sp.Symbol, y: sp.Symbol, support: sp.Set) -> sp.Expr:
    # Solve for a dummy that carries the assumptions of x, so SymPy drops branches outside them.
    t = _dummy_on(support)
    candidates = [s for s in sp.solve(sp.Eq(h.subs(x, t), y), t) if not s.has(sp.I)]
    if len(candidates) != 1:
        raise ValueError(
            f"cannot invert h = {h} uniquely on {support}: SymPy found {len(candidates)} real "
            f"branch(es) {candidates}"
        )
    return candidates[0]


def derive_pushforward(f_x, x: sp.Symbol, h, y: sp.Symbol, support: sp.Set | None = None
                       ) -> PushforwardDerivation:
    r"""Derive the density of :math:`Y = h(X)` step by step.

    Parameters
    ----------
    f_x:
        The density of X, a SymPy expression in ``x``.
    x:
        The symbol of X. Its assumptions (``real=True``, ``positive=True``) give the support
        unless ``support`` is passed.
    h:
        The map, a SymPy expression in ``x``; must be strictly monotone on the support.
    y:
        The symbol for Y.
    support:
        Optional explicit support of X (e.g. ``sympy.Interval.open(0, 1)`` for a uniform).

    Raises
    ------
    ValueError
        If h is constant, not strictly monotone on the support (e.g. :math:`x^2` on the real
        line), or cannot be inverted to a single real branch.
    TypeError
        If an argument is not a SymPy object of the right kind.
    """
    f_x, h, support = _check_inputs(f_x, x, h, y, support)
    direction = _direction(h, x, support)
    inverse = _inverse(h, x, y, support)
    inverse_derivative = sp.diff(inverse, y)
    # g' has the sign of h' (inverse function theorem), so |g'| follows from the direction.
    abs_inverse_derivative = inverse_derivative if direction == "increasing" else -inverse_derivative
    substituted = f_x.subs(x, inverse)
    unsimplified = sp.Mul(substituted, abs_inverse_derivative, evaluate=False)
    density = sp.simplify(substituted * abs_inverse_derivative)
    t = _dummy_on(support)
    support_y = function_range(h.subs(x, t), t, support)
    return PushforwardDerivation(
        support_x=support,
        support_y=support_y,
        direction=direction,
        inverse=inverse,
        inverse_derivative=inverse_derivative,
        abs_inverse_derivative=abs_inverse_derivative,
        substituted=substituted,
        unsimplified=unsimplified,
        density=density,
    )


def pushforward_density(f_x, x: sp.Symbol, h, y: sp.Symbol, support: sp.Set | None = None
                        ) -> sp.Expr:
    r"""The density :math:`f_Y(y) = f_X(h^{-1}(y))\,\lvert d h^{-1}(y)/dy\rvert` of :math:`Y = h(X)`.

    Outside the image :math:`h(\mathrm{supp}\,X)` the density is zero; when the assumptions on
    ``y`` do not already confine it to the image, the result is a ``Piecewise`` that says so
    (e.g. ``exp`` maps the real line onto :math:`(0, \infty)`). See :func:`derive_pushforward`
    for the arguments and errors.
    """
    steps = derive_pushforward(f_x, x, h, y, support)
    if steps.support_y == sp.S.Reals:
        return steps.density
    inside = steps.support_y.contains(y)
    if inside == sp.true:
        return steps.density
    return sp.Piecewise((steps.density, inside), (0, True))


def _as_column(values, name: str) -> sp.Matrix:
    matrix = sp.Matrix(values)
    if matrix.shape[1] != 1:
        matrix = matrix.reshape(len(matrix), 1)
    if any(not isinstance(v, sp.Expr) for v in matrix):
        raise TypeError(f"{name} must hold SymPy expressions")
    return matrix


def _check_linear(eps: Sequence[sp.Symbol], mu, L, z: Sequence[sp.Symbol]):
    eps = list(eps)
    z = list(z)
    if not all(isinstance(s, sp.Symbol) for s in eps + z):
        raise TypeError("eps and z must be sequences of sympy.Symbol")
    d = len(eps)
    if d == 0 or len(z) != d:
        raise ValueError(f"eps and z must have the same non-zero length, got {len(eps)} and {len(z)}")
    mu = _as_column(mu, "mu")
    L = sp.Matrix(L)
    if mu.shape != (d, 1):
        raise ValueError(f"mu must have {d} entries to match eps, got shape {mu.shape}")
    if L.shape != (d, d):
        raise ValueError(f"L must be {d}x{d} to match eps, got shape {L.shape}")
    det = sp.simplify(L.det())
    if det.is_zero:
        raise ValueError(f"L is singular (det L = {det}): z = mu + L eps has no density in R^{d}")
    return eps, mu, L, z, det


def linear_pushforward_density(p_eps, eps: Sequence[sp.Symbol], mu, L,
                               z: Sequence[sp.Symbol]) -> sp.Expr:
    r"""Density of :math:`z = \mu + L\varepsilon` for invertible ``L``.

    .. math:: q(z) = p\bigl(L^{-1}(z - \mu)\bigr) / \lvert\det L\rvert

    ``p_eps`` is a SymPy expression in the symbols ``eps``; ``mu`` a length-d vector; ``L`` a
    d x d matrix; ``z`` the d symbols of the result. Raises ``ValueError`` for mismatched shapes
    or a singular ``L``.
    """
    eps, mu, L, z, det = _check_linear(eps, mu, L, z)
    eps_of_z = L.inv() * (sp.Matrix(z) - mu)
    substituted = sp.sympify(p_eps).subs(dict(zip(eps, eps_of_z)), simultaneous=True)
    return sp.simplify(substituted / sp.Abs(det))


def linear_log_density(log_p_eps, eps: Sequence[sp.Symbol], mu, L,
                       z: Sequence[sp.Symbol]) -> sp.Expr:
    r"""Log density of :math:`z = \mu + L\varepsilon`, in the form VAE papers use.

    .. math:: \log q(z) = \log p(\varepsilon) - \log\lvert\det \partial z/\partial\varepsilon\rvert,
              \quad \varepsilon = L^{-1}(z - \mu),\ \partial z/\partial\varepsilon = L.
    """
    eps, mu, L, z, det = _check_linear(eps, mu, L, z)
    jacobian = sp.Matrix(mu + L * sp.Matrix(eps)).jacobian(eps)
    eps_of_z = L.inv() * (sp.Matrix(z) - mu)
    log_p = sp.sympify(log_p_eps).subs(dict(zip(eps, eps_of_z)), simultaneous=True)
    return log_p - sp.log(sp.Abs(sp.simplify(jacobian.det())))
