r"""Numbers from theory expressions in ``t``, with mpmath (sympy's own numerics library).

* :func:`mp_function` / :class:`Evaluator` — an expression as an mpmath function of ``t``.
  The evaluator adds digits near :math:`t = 0`, where schedules cancel
  (:math:`1 - e^{-t}` loses :math:`\log_{10}(1/t)` digits, :math:`1 - \cos t` twice that), so a
  value there is right to the caller's precision instead of rounding to ``1/0``; it refuses
  ``exp``/``sin``/... of arguments so large that computing them would never end.
* :func:`breakpoints` — the kinks of ``Min``/``Max``/``Abs`` inside an interval, located to
  working precision, so quadrature sees smooth pieces.
* :func:`integrate` — tanh-sinh quadrature split at those kinks, with mpmath's error estimate;
  deterministic (no time budget anywhere) and cached.
* :class:`TimeIntegral` — an integral that sympy did not evaluate, held as a sympy object that
  is *not a number* to sympy: sympy orders the terms of a sum, and decides signs, by evaluating
  the numbers in it, which for an integral is a quadrature (minutes, inside sympy's evaluator)
  at every print or simplification. Evaluating one on purpose (``sp.N``, ``evalf``, ``float``)
  runs :func:`integrate` at the requested precision.
"""

from __future__ import annotations

import math
from functools import lru_cache

import mpmath
import sympy as sp
from sympy.core.evalf import prec_to_dps

from memcross.theory.symbols import t

#: Digits carried beyond the requested precision inside quadrature.
GUARD_DIGITS = 10
#: ``exp``, ``sin``, ... of an argument of magnitude ``2**MAX_ARGUMENT_BITS`` or more are refused:
#: reducing such an argument needs that many bits (``exp(exp(exp(100 t)))`` would run forever).
MAX_ARGUMENT_BITS = 100_000
#: Digits that may cancel near ``t = 0`` without extra precision (the guard digits absorb them).
FREE_CANCELLATION = 6
#: :func:`evaluate` refuses a value beyond ``10**MAX_MAGNITUDE`` rather than carry it on.
MAX_MAGNITUDE = 1000


class EvaluationError(ValueError):
    """An expression cannot be evaluated at a point (an argument too large, a pole)."""


def _guarded(name: str):
    function = getattr(mpmath, name)

    def guarded(x):
        if mpmath.mag(x) > MAX_ARGUMENT_BITS:
            raise EvaluationError(
                f"{name} of a number of about 2^{mpmath.nstr(mpmath.mpf(mpmath.mag(x)), 3)} (arguments must stay "
                f"below 2^{MAX_ARGUMENT_BITS})"
            )
        return function(x)

    return guarded


GUARDED_FUNCTIONS = {name: _guarded(name) for name in ("exp", "sin", "cos", "tan", "cot", "sec", "csc",
                                              "sinh", "cosh", "tanh", "coth")}


def _lambdify(args, expr: sp.Expr):
    """``sp.lambdify`` to mpmath with :data:`GUARDED_FUNCTIONS`, printing sums in their stored
    order: the default printer orders terms by evaluating the numbers among them, which for an
    astronomically large constant never ends."""
    from sympy.printing.pycode import MpmathPrinter

    printer = MpmathPrinter({"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True,
                             "user_functions": {name: name for name in GUARDED_FUNCTIONS}, "order": "none"})
    return sp.lambdify(args, expr, modules=[GUARDED_FUNCTIONS, "mpmath"], printer=printer)


def mp_function(expr: sp.Expr, var: sp.Symbol = t):
    """``expr`` as an mpmath function of ``var`` (evaluated at the caller's working precision;
    transcendental functions of astronomically large arguments raise :class:`EvaluationError`)."""
    return _lambdify(var, expr)


def _extra_digits(x) -> int:
    """Digits to add at ``x`` for the cancellation of schedules near ``t = 0``."""
    if not x > 0:
        return 0
    digits_below_one = -int(mpmath.mag(x)) * math.log10(2)
    return max(0, math.ceil(2 * digits_below_one) - FREE_CANCELLATION)


class Evaluator:
    """``expr`` as an mpmath function of ``t`` whose values are right to the caller's precision
    near ``t = 0`` too: it evaluates with :func:`_extra_digits` more digits there, and once more
    with many more when the value still rounds to a division by zero. A ``ZeroDivisionError``
    that survives is a true pole."""

    def __init__(self, expr: sp.Expr, var: sp.Symbol = t):
        self.expr = expr
        self.f = mp_function(expr, var)

    def __call__(self, x):
        dps = mpmath.mp.dps
        extra = _extra_digits(x)
        for attempt in range(3):
            try:
                with mpmath.workdps(dps + extra):
                    value = self.f(x)
                return +value if isinstance(value, (mpmath.mpf, mpmath.mpc)) else value
            except ZeroDivisionError:
                if attempt == 2:
                    raise
                extra = 2 * extra + dps
            except OverflowError as exc:
                raise EvaluationError(f"overflow at t = {mpmath.nstr(x, 8)} ({exc})") from None
        raise AssertionError("unreachable")


def kink_arguments(expr: sp.Expr, var: sp.Symbol = t) -> list[sp.Expr]:
    """Expressions whose sign changes mark kinks of ``expr`` (Min/Max pairs, Abs and Heaviside
    arguments, the two sides of Piecewise conditions)."""
    out = []
    for node in sp.preorder_traversal(expr):
        if isinstance(node, (sp.Min, sp.Max)):
            args = node.args
            out += [args[i] - args[j] for i in range(len(args)) for j in range(i + 1, len(args))]
        elif isinstance(node, (sp.Abs, sp.Heaviside, sp.sign)):
            out.append(node.args[0])
        elif isinstance(node, sp.Piecewise):
            for _, cond in node.args:
                if isinstance(cond, sp.core.relational.Relational):
                    out.append(cond.lhs - cond.rhs)
    return [a for a in out if a.has(var)]


def _root(f, x0, x1):
    """A root of ``f`` bracketed by ``(x0, x1)`` to working precision: Anderson's method, with
    bisection when it does not converge."""
    try:
        root = mpmath.findroot(lambda x: mpmath.re(f(x)), (x0, x1), solver="anderson")
        if x0 <= root <= x1:
            return root
    except (ValueError, ZeroDivisionError):
        pass
    lo, hi = x0, x1
    f_lo = mpmath.re(f(lo))
    for _ in range(mpmath.mp.prec + 8):
        mid = (lo + hi) / 2
        f_mid = mpmath.re(f(mid))
        if f_mid == 0:
            return mid
        if (f_mid > 0) == (f_lo > 0):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
    return (lo + hi) / 2


def breakpoints(expr: sp.Expr, lower, upper, samples: int = 400) -> list[mpmath.mpf]:
    """Interior points of ``(lower, upper)`` where ``expr`` has a kink, located to working
    precision (sign changes on a sample grid, refined by root finding)."""
    points = []
    lo, hi = mpmath.mpf(lower), mpmath.mpf(upper)
    for arg in kink_arguments(expr):
        f = Evaluator(arg)
        xs = [lo + (hi - lo) * k / samples for k in range(samples + 1)]
        values = []
        for x in xs:
            try:
                values.append(mpmath.re(f(x)) if x > 0 else mpmath.re(f(x + (hi - lo) * mpmath.mpf(10) ** -12)))
            except (ZeroDivisionError, ValueError, TypeError):
                values.append(None)
        for (x0, v0), (x1, v1) in zip(zip(xs, values), zip(xs[1:], values[1:])):
            if v0 is None or v1 is None or v0 * v1 > 0 or v0 == v1:
                continue
            root = _root(f, x0, x1)
            if lo < root < hi:
                points.append(root)
    return sorted(set(points))


def integrate(expr: sp.Expr, lower, upper, dps: int = 30) -> tuple[mpmath.mpf, mpmath.mpf]:
    r""":math:`\int_{lower}^{upper} f(t)\,dt` at ``dps`` digits and mpmath's error estimate.

    Tanh-sinh at ``dps +`` :data:`GUARD_DIGITS` digits on each smooth piece (split at
    :func:`breakpoints`); the integrand through :class:`Evaluator`. Deterministic and cached.
    Raises :class:`EvaluationError` (a ``ValueError``) when the integrand cannot be evaluated.

    >>> value, error = integrate(sp.Min(t, 1 - t), 0, 1, dps=30)
    >>> mpmath.nstr(value, 25), error < 1e-30
    ('0.25', True)
    """
    lower, upper = sp.Rational(lower), sp.Rational(upper)
    return _integrate(sp.sympify(expr), lower, upper, int(dps))


@lru_cache(maxsize=512)
def _integrate(expr: sp.Expr, lower: sp.Rational, upper: sp.Rational, dps: int):
    with mpmath.workdps(dps + GUARD_DIGITS):
        lo, hi = mpmath.mpf(lower.p) / lower.q, mpmath.mpf(upper.p) / upper.q
        f = Evaluator(expr)
        pieces = [lo, *breakpoints(expr, lo, hi), hi]
        try:
            value, error = mpmath.quad(lambda x: mpmath.re(f(x)), pieces, error=True, method="tanh-sinh")
        except ZeroDivisionError:
            raise EvaluationError(f"the integrand {_short(expr)} has a pole in [{lower}, {upper}]") from None
        except EvaluationError as exc:
            raise EvaluationError(f"the integrand {_short(expr)} cannot be evaluated: {exc}") from None
        return +value, abs(error)


def _short(expr) -> str:
    text = sp.sstr(expr, order="none")
    return text if len(text) <= 80 else text[:77] + "..."


def _integral_values(expr: sp.Expr, dps: int) -> dict:
    """Numeric integrals of ``expr`` (no free symbols left): ``{integral: (value, error)}`` by
    tanh-sinh quadrature split at the kinks (:func:`memcross.theory.numeric.integrate`)."""
    out = {}
    for integral in expr.atoms(sp.Integral):
        if integral.free_symbols:
            continue
        limits = integral.limits
        if len(limits) == 1 and len(limits[0]) == 3 and limits[0][1].is_Rational and limits[0][2].is_Rational:
            var, lo, hi = limits[0]
            function = integral.function.xreplace({var: t}) if var != t else integral.function
            value, error = integrate(function, lo, hi, dps + 5)
            out[integral] = (value, error)
    return out


def _lambdified(expr: sp.Expr, names: tuple) -> tuple:
    """``expr`` as an mpmath function of ``names`` plus the long exact rationals in it (passed
    as arguments: generated code cannot spell integers of thousands of digits)."""
    long = sorted((r for r in expr.atoms(sp.Rational) if max(abs(r.p), r.q).bit_length() > 160),
                  key=lambda r: (r.q, r.p))
    constants = {r: sp.Dummy(f"c{k}") for k, r in enumerate(long)}
    body = expr.xreplace(constants)
    f = _lambdify(names + tuple(constants.values()), body)
    return f, list(constants)


def _evaluate_at(f, args: list, dps: int, tolerance):
    """``f(*args)`` at ``dps`` digits: a real mpf, or None where the value is not a finite real."""
    with mpmath.workdps(dps):
        values = [mpmath.mpf(a.p) / a.q if isinstance(a, sp.Rational) else +a for a in args]
        try:
            value = mpmath.mpmathify(f(*values))
        except ZeroDivisionError:
            return None
        except (OverflowError, ArithmeticError) as exc:  # decimal and mpmath overflows included
            raise EvaluationError(f"its value overflows ({exc})") from None
        if not mpmath.isfinite(value):
            return None
        if isinstance(value, mpmath.mpc):
            if abs(value.imag) > abs(value.real) * tolerance or value.real == 0:
                return None
            value = value.real
        if value != 0 and mpmath.mag(value) > MAX_MAGNITUDE * 3.33:
            size = mpmath.nstr(mpmath.floor(mpmath.log10(abs(value))), 3)
            raise EvaluationError(f"its value, about 10^{size}, is beyond 10^{MAX_MAGNITUDE}")
        return +value


def evaluate(expr: sp.Expr, point: dict | None = None, dps: int = 30) -> tuple[mpmath.mpf | None, mpmath.mpf]:
    """``expr`` at ``point`` (values of its free symbols): its value to ``dps`` digits (None
    where it is not a finite real number) and an error estimate.

    Integrals become quadrature values (:func:`integrate` at ``dps + 5`` digits); the rest is
    evaluated by mpmath at increasing precision until two precisions agree to ``dps + 2``
    digits (cancellation costs digits; it never goes unnoticed). The error estimate is the
    remaining disagreement plus each integral's quadrature error carried through the
    expression. Raises :class:`EvaluationError` for arguments or values too large to handle
    (``exp`` of ``exp(exp(100))``, a value beyond ``10**MAX_MAGNITUDE``).

    >>> value, error = evaluate(1 - sp.exp(-t), {t: sp.Rational(1, 10**40)}, dps=30)
    >>> mpmath.nstr(value, 20)
    '1.0e-40'
    """
    point = point or {}
    expr = sp.sympify(expr)
    if expr.has(sp.UnevaluatedExpr):
        expr = expr.replace(lambda e: isinstance(e, sp.UnevaluatedExpr), lambda e: e.args[0])
    free = sorted(expr.free_symbols, key=str)
    missing = [str(s) for s in free if s not in point]
    if missing:
        raise ValueError(f"evaluate: no value for {', '.join(missing)}")
    # integrals that depend on the point are integrated at the point
    pointed = {i: i.xreplace({s: point[s] for s in i.free_symbols if s in point})
               for i in expr.atoms(sp.Integral) if i.free_symbols}
    quad = _integral_values(expr.xreplace(pointed), dps) if expr.has(sp.Integral) else {}
    masks = {i: sp.Dummy(f"I{k}") for k, i in enumerate(quad)}
    body = expr.xreplace(pointed).xreplace(masks)
    names = tuple(free) + tuple(masks.values())
    f, constants = _lambdified(body, names)
    base = [point[s] for s in free]
    q_values = [quad[i][0] for i in masks]
    tolerance = mpmath.mpf(10) ** -(dps - 4)
    target, dps, previous = dps, dps + 10, None
    for _ in range(5):  # dps + 10 digits, then twice that, ... (16 times at most)
        value = _evaluate_at(f, base + q_values + constants, dps, tolerance)
        if value is None:
            return None, mpmath.mpf(0)
        with mpmath.workdps(dps):
            if previous is not None and abs(value - previous) <= abs(value) * mpmath.mpf(10) ** -(target + 2):
                break
        previous, dps = value, 2 * dps
    else:
        dps //= 2
    with mpmath.workdps(dps):
        error = abs(value - previous)
        for k, integral in enumerate(masks):
            err = quad[integral][1]
            if err:
                shifted = list(q_values)
                shifted[k] = q_values[k] + err
                moved = _evaluate_at(f, base + shifted + constants, dps, tolerance)
                error += abs(moved - value) if moved is not None else mpmath.inf
        return value, +error


class TimeIntegral(sp.Integral):
    r"""A definite integral over ``t`` that sympy did not evaluate, held for quadrature.

    It prints like ``Integral``. To sympy it is not a number (``is_number`` is False), so that
    printing and simplification never evaluate it; ``evalf`` (``sp.N``, ``float``) evaluates it
    with :func:`integrate` at the requested precision, and :meth:`numeric` gives the value with
    its error estimate.

    >>> from memcross.theory.symbols import t
    >>> I = TimeIntegral(sp.Min(t, 1 - t), (t, 0, 1))
    >>> print(1 - I / 2)
    1 - Integral(Min(t, 1 - t), (t, 0, 1))/2
    >>> sp.N(1 - I / 2, 20)
    0.87500000000000000000
    """

    @property
    def is_number(self) -> bool:
        """Always False, so that sympy never evaluates the integral while printing or simplifying."""
        return False

    def _numeric_limits(self):
        if len(self.limits) != 1 or len(self.limits[0]) != 3:
            return None
        var, lower, upper = self.limits[0]
        if var != t or self.function.free_symbols - {t} or not (lower.is_Rational and upper.is_Rational):
            return None
        return lower, upper

    def numeric(self, dps: int = 30) -> tuple[mpmath.mpf, mpmath.mpf]:
        """The value at ``dps`` digits and its error estimate (:func:`integrate`)."""
        limits = self._numeric_limits()
        if limits is None:
            raise ValueError(f"{self} is not a definite integral over t with numeric limits")
        return integrate(self.function, *limits, dps)

    def _eval_evalf(self, prec):
        if self._numeric_limits() is None:
            return None
        dps = prec_to_dps(prec)
        value, _ = self.numeric(dps)
        return sp.Float(value, dps)
