r"""The change-of-variables formula, done by SymPy.

If X has density :math:`f_X` on its support :math:`S` and :math:`h` is strictly monotone
and
differentiable on :math:`S`, then :math:`Y = h(X)` has density

.. math::

    f_Y(y) = f_X\bigl(g(y)\bigr)\,\lvert g'(y)\rvert, \qquad g = h^{-1},

on the image :math:`h(S)` and zero outside it. The absolute value covers both
directions: for increasing :math:`h`, :math:`F_Y(y) = F_X(g(y))`; for decreasing
:math:`h`, :math:`F_Y(y) = 1 - F_X(g(y))`, and differentiating either gives the formula
above.

The multivariate linear case :math:`z = \mu + L\varepsilon` (``L`` invertible) is

.. math::

    q(z) = p\bigl(L^{-1}(z - \mu)\bigr)\,\lvert\det L\rvert^{-1},
    \qquad \log q(z) = \log p(\varepsilon)
    - \log\lvert\det \partial z / \partial \varepsilon\rvert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
        :math:`\\lvert g'(y)\\rvert` (equal to :math:`g'` or :math:`-g'` by the
        direction).
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
    """The support a symbol's assumptions give: positive -> (0, oo), real -> the real
    line, ..."""
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
        f"declare it with sympy.Symbol({str(x)!r}, real=True) (or positive=True), "
        "or pass support="
    )


def _check_inputs(f_x, x, h, y, support):
    for name, value in (("x", x), ("y", y)):
        if not isinstance(value, sp.Symbol):
            raise TypeError(
                f"{name} must be a sympy.Symbol, got {type(value).__name__}"
            )
    if x == y:
        raise ValueError("x and y must be different symbols")
    if not y.is_real:
        # A complex y would make |g'(y)| of a real odd root sign(y)|y|**(1/q) complex.
        raise ValueError(
            f"y must be a real symbol: declare it with sympy.Symbol({str(y)!r}, "
            "real=True) (or positive=True)"
        )
    expressions = []
    for name, value in (("f_x", f_x), ("h", h)):
        # Strings are refused: sympify("f") would silently make a new symbol.
        try:
            converted = (
                None if isinstance(value, str) else sp.sympify(value, strict=True)
            )
        except sp.SympifyError:
            converted = None
        if not isinstance(converted, sp.Expr):
            raise TypeError(
                f"{name} must be a SymPy expression, got {type(value).__name__}"
            )
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

    SymPy's monotonicity and equation solvers reason from assumptions, not from
    intervals, so a real ``u`` restricted to (0, 1) must become a positive symbol before
    ``log(u)`` behaves.
    """
    if support.is_subset(sp.Interval.open(0, sp.oo)):
        return sp.Dummy("t", positive=True)
    if support.is_subset(sp.Interval.open(-sp.oo, 0)):
        return sp.Dummy("t", negative=True)
    return sp.Dummy("t", real=True)


def _is_countable(points: sp.Set) -> bool:
    """True when SymPy's answer is a set of isolated points (finite, or a lattice like
    2πn)."""
    if points is sp.S.EmptySet or isinstance(points, sp.FiniteSet):
        return True
    if points in (sp.S.Integers, sp.S.Naturals, sp.S.Naturals0):
        return True
    if isinstance(points, sp.ImageSet):
        return all(_is_countable(base) for base in points.base_sets)
    if isinstance(points, sp.Union):
        return all(_is_countable(part) for part in points.args)
    if isinstance(points, sp.Intersection):
        return any(_is_countable(part) for part in points.args)
    if isinstance(points, sp.Complement):
        return _is_countable(points.args[0])
    return False  # an interval, or a ConditionSet SymPy could not solve


def _direction(h: sp.Expr, x: sp.Symbol, support: sp.Set) -> str:
    """``"increasing"`` or ``"decreasing"``; raises unless h is strictly monotone on the
    support.

    A differentiable h is strictly increasing on an interval if and only if h' >= 0
    there and h' vanishes on no sub-interval. So h' may vanish at isolated points: x +
    sin x (at x = π + 2πn) and x**5 (at 0) are strictly increasing although SymPy's own
    ``is_strictly_increasing`` (which asks for h' > 0) cannot say so.
    """
    if x not in h.free_symbols:
        raise ValueError(
            f"h = {h} is constant in {x}: it is not strictly monotone, "
            "so Y = h(X) has no density"
        )
    t = _dummy_on(support)
    h_t = h.subs(x, t)
    if sp.is_strictly_increasing(h_t, support, t):
        return "increasing"
    if sp.is_strictly_decreasing(h_t, support, t):
        return "decreasing"
    if sp.is_increasing(h_t, support, t):
        direction = "increasing"
    elif sp.is_decreasing(h_t, support, t):
        direction = "decreasing"
    else:
        direction = None
    if direction is not None:
        flat_points = sp.solveset(sp.Eq(sp.diff(h_t, t), 0), t, support)
        if _is_countable(flat_points):
            return direction
    raise ValueError(
        f"h = {h} is not strictly monotone on the support {support} of {x} "
        "(or SymPy cannot prove that it is): the change-of-variables formula "
        "f_Y(y) = f_X(g(y))|g'(y)| needs a one-to-one map; "
        "split the support into pieces where h is monotone"
    )


def _image(h: sp.Expr, x: sp.Symbol, support: sp.Set, direction: str) -> sp.Set:
    """h(support). For a continuous strictly monotone h on an interval, the image is the
    interval between the limits at the ends; that fallback covers maps such as
    x + sin x, for which SymPy's ``function_range`` gives up (infinitely many critical
    points)."""
    t = _dummy_on(support)
    h_t = h.subs(x, t)
    try:
        return function_range(h_t, t, support)
    except NotImplementedError:
        pass
    if support == sp.S.Reals:
        support = sp.Interval(-sp.oo, sp.oo)
    if not isinstance(support, sp.Interval):
        raise ValueError(f"cannot find the image of {support} under h = {h}")
    low = (
        sp.limit(h_t, t, support.inf, "+")
        if support.left_open
        else h_t.subs(t, support.inf)
    )
    high = (
        sp.limit(h_t, t, support.sup, "-")
        if support.right_open
        else h_t.subs(t, support.sup)
    )
    if direction == "decreasing":
        return sp.Interval(high, low, support.right_open, support.left_open)
    return sp.Interval(low, high, support.left_open, support.right_open)


def _real_odd_roots(expression: sp.Expr) -> sp.Expr:
    """Replace principal odd roots b**(p/q), q odd, by real roots: SymPy's y**(1/5) is
    complex for y < 0, while the inverse of x**5 is the real fifth root
    sign(y) |y|**(1/5)."""

    def is_odd_root(e):
        return (
            e.is_Pow and e.exp.is_Rational and not e.exp.is_integer and e.exp.q % 2 == 1
        )

    def real_root(e):
        magnitude = sp.Abs(e.base) ** e.exp
        return sp.sign(e.base) * magnitude if e.exp.p % 2 else magnitude

    return expression.replace(is_odd_root, real_root)


def _parameter_values(expressions) -> dict:
    """Numbers for the parameters (symbols other than x, y), respecting their
    assumptions."""
    values = {}
    symbols = sorted(set().union(*(e.free_symbols for e in expressions)), key=str)
    for index, symbol in enumerate(symbols):
        magnitude = sp.Rational(13, 10) + sp.Rational(index, 5)
        if symbol.is_positive or symbol.is_nonnegative:
            values[symbol] = magnitude
        elif symbol.is_negative or symbol.is_nonpositive:
            values[symbol] = -magnitude
        else:
            values[symbol] = sp.Rational(7, 20) + sp.Rational(index, 5)
    return values


def _probe_points(image: sp.Set) -> list[sp.Expr]:
    """A few points inside the image h(support), where an inverse branch is checked."""
    if image == sp.S.Reals:
        return [
            sp.Rational(-23, 10),
            sp.Rational(-3, 5),
            sp.Rational(9, 20),
            sp.Rational(17, 10),
        ]
    if isinstance(image, sp.Interval):
        low, high = image.inf, image.sup
        steps = [sp.Rational(3, 10), sp.Rational(11, 10), sp.Rational(37, 10)]
        if low.is_finite and high.is_finite:
            return [
                low + (high - low) * f
                for f in (sp.Rational(13, 100), sp.Rational(1, 2), sp.Rational(87, 100))
            ]
        if low.is_finite:
            return [low + step for step in steps]
        if high.is_finite:
            return [high - step for step in steps]
    return []


def _is_inverse_on(candidate, h, x, y, support, image, parameters) -> bool:
    """True if ``candidate`` is real, lands in the support and satisfies h(g(y)) = y at
    the probes."""
    probes = _probe_points(image.subs(parameters))
    if not probes:
        return not candidate.has(sp.I)
    support = support.subs(parameters)
    for point in probes:
        value = complex(sp.N(candidate.subs(parameters).subs(y, point), 30))
        if abs(value.imag) > 1e-12 * (1.0 + abs(value.real)):
            return False  # complex at a point of the image: not a real branch
        if support.contains(sp.Float(value.real, 30)) != sp.true:
            return False
        back = complex(sp.N(h.subs(parameters).subs(x, sp.Float(value.real, 30)), 30))
        if abs(back - float(point)) > 1e-9 * (1.0 + abs(float(point))):
            return False
    return True


def _on_the_image(expression: sp.Expr, y: sp.Symbol, image: sp.Set):
    """``expression`` simplified with y = a + t or y = b - t from each finite end a or
    b of the image, and y = (a + bt)/(1 + t) when both are finite, t a positive symbol;
    each with the substitution that writes t back in y. An identity SymPy proves for
    every t > 0 holds on the image, and t > 0 tells it the sign of y - a, b - y or
    both (the cube root of y - 2 on (-oo, 2), of y^2 - 1 on (0, 1))."""
    t = sp.Dummy("t", positive=True)
    a, b = image.inf, image.sup
    ways = []
    if a.is_finite:
        ways.append((a + t, y - a))
    if b.is_finite:
        ways.append((b - t, b - y))
    if a.is_finite and b.is_finite:
        ways.append(((a + b * t) / (1 + t), (y - a) / (b - y)))
    for y_of_t, t_of_y in ways:
        yield sp.simplify(sp.expand_complex(expression.subs(y, y_of_t))), {t: t_of_y}


def _same_on(first: sp.Expr, second: sp.Expr, y: sp.Symbol, image: sp.Set) -> bool:
    """True when two formulas give the same function of y on the image: on y < 0,
    -y**(1/3)/2 + i sqrt(3) y**(1/3)/2 is the real cube root, not on y > 0."""
    difference = first - second
    if sp.simplify(difference) == 0:
        return True
    return any(written == 0 for written, _ in _on_the_image(difference, y, image))


def _inverse(
    h: sp.Expr, x: sp.Symbol, y: sp.Symbol, support: sp.Set, image: sp.Set
) -> sp.Expr:
    """The one branch of h^{-1} that is real-valued on the image and maps it into the
    support."""
    # Solve for a dummy that carries the assumptions of x, so SymPy drops branches
    # outside them.
    t = _dummy_on(support)
    try:
        solutions = sp.solve(sp.Eq(h.subs(x, t), y), t)
    except NotImplementedError:
        raise ValueError(
            f"h = {h} is strictly monotone on {support}, "
            "but it has no closed-form inverse: "
            f"SymPy cannot solve h({x}) = {y} for {x}, "
            "so f_Y(y) = f_X(g(y))|g'(y)| cannot be written down "
            "(evaluate it numerically, solving h(x) = y by root finding)"
        ) from None
    parameters = _parameter_values([h, image])
    parameters.pop(y, None)
    parameters.pop(x, None)
    branches = []
    for solution in solutions:
        for candidate in (solution, _real_odd_roots(solution)):
            if _is_inverse_on(candidate, h, x, y, support, image, parameters):
                branches.append(candidate)
                break
    # Two formulas for the same function on the image count once.
    distinct = []
    for branch in branches:
        if not any(_same_on(branch, other, y, image) for other in distinct):
            distinct.append(branch)
    if len(distinct) != 1:
        found = "no" if not distinct else f"{len(distinct)}"
        raise ValueError(
            f"cannot invert h = {h} in closed form on {support}: "
            f"SymPy found {found} real inverse branch(es) {distinct} "
            f"among its solutions {solutions}; without a closed-form "
            "inverse g = h^(-1), f_Y(y) = f_X(g(y))|g'(y)| cannot be written down"
        )
    return _real_form(distinct[0], y, image)


def _real_form(branch: sp.Expr, y: sp.Symbol, image: sp.Set) -> sp.Expr:
    """The branch written without i, where SymPy finds such a formula on the image:
    on y < 0, -y**(1/3)/2 + i sqrt(3) y**(1/3)/2 is -(-y)**(1/3)."""
    if not branch.has(sp.I):
        return branch
    for written, back in _on_the_image(branch, y, image):
        if not written.has(sp.I):
            return written.subs(back)
    return branch


def _check_density(density: sp.Expr, y: sp.Symbol, image: sp.Set, f_x, h) -> None:
    """Refuse to return a density that is complex or negative somewhere on the image."""
    parameters = _parameter_values([density, image])
    parameters.pop(y, None)
    for point in _probe_points(image.subs(parameters)):
        value = complex(sp.N(density.subs(parameters).subs(y, point), 30))
        if abs(value.imag) > 1e-12 * (1.0 + abs(value.real)) or value.real < 0:
            raise ValueError(
                f"the derived density {density} of h(X) for h = {h}, f_X = {f_x} "
                f"is not a real, non-negative function at y = {point}: "
                "refusing to return it"
            )


def derive_pushforward(
    f_x, x: sp.Symbol, h, y: sp.Symbol, support: sp.Set | None = None
) -> PushforwardDerivation:
    r"""Derive the density of :math:`Y = h(X)` step by step.

    Parameters
    ----------
    f_x:
        The density of X, a SymPy expression in ``x``.
    x:
        The symbol of X. Its assumptions (``real=True``, ``positive=True``) give the
        support unless ``support`` is passed.
    h:
        The map, a SymPy expression in ``x``; must be strictly monotone on the support.
    y:
        The symbol for Y, declared real (``sympy.Symbol("y", real=True)``).
    support:
        Optional explicit support of X (e.g. ``sympy.Interval.open(0, 1)`` for a
        uniform).

    Raises
    ------
    ValueError
        If ``y`` is not declared real; if h is constant, not strictly monotone on the
        support (e.g. :math:`x^2` on the real line), or has no closed-form inverse
        that is real on the image (e.g. :math:`x + \sin x`, strictly increasing but
        with no inverse SymPy can write down). Maps whose derivative vanishes only at
        isolated points (:math:`x^5`) are accepted. Of the branches SymPy's ``solve``
        returns, only one that is real-valued on the image, lands in the support and
        satisfies :math:`h(g(y)) = y` there (checked at a few points) is used: for
        ``sinh``, :math:`\log(y - \sqrt{y^2+1})` is dropped; formulas that agree on
        the image count once (on :math:`y < 0`, the real cube root and one of SymPy's
        roots written with :math:`i`).
    TypeError
        If an argument is not a SymPy object of the right kind.
    """
    f_x, h, support = _check_inputs(f_x, x, h, y, support)
    direction = _direction(h, x, support)
    support_y = _image(h, x, support, direction)
    inverse = _inverse(h, x, y, support, support_y)
    # A real odd root sign(y)|y|**(1/q) differentiates to a DiracDelta(y) term times
    # |y|**(1/q), which is zero: drop it (a density is defined up to a null set).
    inverse_derivative = sp.diff(inverse, y).replace(
        sp.DiracDelta, lambda *args: sp.S.Zero
    )
    # g' has the sign of h' (inverse function theorem), so |g'| follows from the
    # direction.
    abs_inverse_derivative = (
        inverse_derivative if direction == "increasing" else -inverse_derivative
    )
    substituted = f_x.subs(x, inverse)
    unsimplified = sp.Mul(substituted, abs_inverse_derivative, evaluate=False)
    density = sp.simplify(substituted * abs_inverse_derivative)
    _check_density(density, y, support_y, f_x, h)
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


def pushforward_density(
    f_x, x: sp.Symbol, h, y: sp.Symbol, support: sp.Set | None = None
) -> sp.Expr:
    r"""The density :math:`f_Y(y) = f_X(h^{-1}(y))\,\lvert d h^{-1}(y)/dy\rvert` of
    :math:`Y = h(X)`.

    Outside the image :math:`h(\mathrm{supp}\,X)` the density is zero; when the
    assumptions on ``y`` do not already confine it to the image, the result is a
    ``Piecewise`` that says so (e.g. ``exp`` maps the real line onto :math:`(0,
    \infty)`). See :func:`derive_pushforward` for the arguments and errors.
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
        raise ValueError(
            f"eps and z must have the same non-zero length, got {len(eps)} and {len(z)}"
        )
    mu = _as_column(mu, "mu")
    L = sp.Matrix(L)
    if mu.shape != (d, 1):
        raise ValueError(f"mu must have {d} entries to match eps, got shape {mu.shape}")
    if L.shape != (d, d):
        raise ValueError(f"L must be {d}x{d} to match eps, got shape {L.shape}")
    det = sp.simplify(L.det())
    if det.is_zero:
        raise ValueError(
            f"L is singular (det L = {det}): z = mu + L eps has no density in R^{d}"
        )
    return eps, mu, L, z, det


def linear_pushforward_density(
    p_eps, eps: Sequence[sp.Symbol], mu, L, z: Sequence[sp.Symbol]
) -> sp.Expr:
    r"""Density of :math:`z = \mu + L\varepsilon` for invertible ``L``.

    .. math:: q(z) = p\bigl(L^{-1}(z - \mu)\bigr) / \lvert\det L\rvert

    ``p_eps`` is a SymPy expression in the symbols ``eps``; ``mu`` a length-d vector;
    ``L`` a d x d matrix; ``z`` the d symbols of the result. Raises ``ValueError`` for
    mismatched shapes or a singular ``L``.
    """
    eps, mu, L, z, det = _check_linear(eps, mu, L, z)
    eps_of_z = L.inv() * (sp.Matrix(z) - mu)
    substituted = sp.sympify(p_eps).subs(
        dict(zip(eps, eps_of_z, strict=True)), simultaneous=True
    )
    return sp.simplify(substituted / sp.Abs(det))


def linear_log_density(
    log_p_eps, eps: Sequence[sp.Symbol], mu, L, z: Sequence[sp.Symbol]
) -> sp.Expr:
    r"""Log density of :math:`z = \mu + L\varepsilon`, in the form VAE papers use.

    .. math:: \log q(z) = \log p(\varepsilon)
              - \log\lvert\det \partial z/\partial\varepsilon\rvert,
              \quad \varepsilon = L^{-1}(z - \mu),\ \partial z/\partial\varepsilon = L.
    """
    eps, mu, L, z, det = _check_linear(eps, mu, L, z)
    jacobian = sp.Matrix(mu + L * sp.Matrix(eps)).jacobian(eps)
    eps_of_z = L.inv() * (sp.Matrix(z) - mu)
    log_p = sp.sympify(log_p_eps).subs(
        dict(zip(eps, eps_of_z, strict=True)), simultaneous=True
    )
    return log_p - sp.log(sp.Abs(sp.simplify(jacobian.det())))
