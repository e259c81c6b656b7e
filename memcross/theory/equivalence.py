"""Deciding whether two expressions are equal: symbolically when sympy can, else by evaluation.

Used by :meth:`Derivation.verify` and by ``memcross check``. Symbolic first (``simplify`` of the
difference is zero); when that does not decide, both sides are evaluated at 30 digits at random
points of the valid range of every free symbol. A difference beyond the tolerance at any point
is a mismatch, reported with the point and both values.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import mpmath
import sympy as sp

from memcross.theory import symbols as S
from memcross.theory.measures import TimeLimitReached, time_limit

DIGITS = 30
TOLERANCE = sp.Float("1e-20", DIGITS)


@dataclass(frozen=True)
class Verdict:
    """The outcome of a comparison: ``equal``; how it was decided; on a mismatch, where."""

    equal: bool
    method: str  # "symbolic" | "numeric" | "given"
    point: dict = field(default_factory=dict)
    left: object = None
    right: object = None
    detail: str = ""

    def __bool__(self) -> bool:
        return self.equal

    def describe(self) -> str:
        if self.equal:
            how = {"symbolic": "symbolically", "given": "given"}.get(self.method, f"numerically at {DIGITS} digits")
            return f"equal ({how}{'; ' + self.detail if self.detail else ''})"
        # str(), not format(): format() goes through decimal, which refuses huge exponents
        where = ", ".join(f"{k} = {str(sp.N(v, 8))}" for k, v in self.point.items()) or "(no free symbols)"
        return f"not equal: at {where}: {str(sp.N(self.left, 12))} vs {str(sp.N(self.right, 12))}"


def default_ranges(t_range=(sp.Rational(1, 1000), sp.Rational(999, 1000))) -> dict:
    """Sampling range of each known symbol: ``(low, high, integer)``."""
    return {
        S.t: (t_range[0], t_range[1], False),
        S.s2: (sp.Rational(1, 10), sp.Integer(10), False),
        S.C: (sp.Integer(1), sp.Integer(2), False),
        S.d: (1, 100, True),
        S.K: (1, 20, True),
        S.N: (20, 1000, True),
        S.M: (1, 20, True),
        S.psi: (sp.Rational(1, 100), sp.Integer(100), False),
        S.alpha: (sp.Rational(1, 100), sp.Integer(1), False),
        S.sigma: (sp.Rational(1, 100), sp.Integer(1), False),
        S.gamma: (sp.Rational(1, 10), sp.Integer(10), False),
        S.sd: (sp.Rational(1, 10), sp.Integer(2), False),
        S.b: (sp.Integer(-3), sp.Integer(3), False),
    }


def _draw(rng: random.Random, low, high, integer: bool):
    if integer:
        return sp.Integer(rng.randint(int(low), int(high)))
    u = sp.Rational(rng.randint(1, 10**6 - 1), 10**6)
    return low + (high - low) * u


def _quad(integral: sp.Integral) -> sp.Float:
    """A definite integral in one variable by mpmath's tanh-sinh rule (sympy's evalf of an
    integral with ``Min`` or ``exp`` inside can take minutes)."""
    (var, lo, hi), = integral.limits
    f = sp.lambdify(var, integral.function, modules="mpmath")
    with mpmath.workdps(DIGITS + 5):
        value = mpmath.quad(lambda x: mpmath.re(f(x)), [mpmath.mpf(sp.N(lo, DIGITS + 5)), mpmath.mpf(sp.N(hi, DIGITS + 5))])
    return sp.Float(value, DIGITS)


def _value(expr: sp.Expr, point: dict):
    value = sp.sympify(expr).subs(point)
    if value.has(sp.UnevaluatedExpr):
        value = value.replace(lambda e: isinstance(e, sp.UnevaluatedExpr), lambda e: e.args[0])
    if value.has(sp.Integral):
        value = value.replace(lambda e: isinstance(e, sp.Integral) and not e.free_symbols, _quad)
    return value.evalf(DIGITS)


def _finite(value) -> bool:
    if not isinstance(value, (sp.Float, sp.Integer, sp.Rational, sp.core.numbers.Number)):
        return False
    return value.is_number and value.is_finite is not False and not value.has(sp.nan, sp.zoo, sp.oo, -sp.oo)


#: Larger differences are not handed to ``simplify`` (it can take minutes); they are evaluated.
MAX_SYMBOLIC_OPS = 150
SYMBOLIC_SECONDS = 1.0


def _symbolic_zero(diff: sp.Expr) -> bool:
    if diff == 0:
        return True
    if diff.has(sp.Integral, sp.Sum) or sp.count_ops(diff) > MAX_SYMBOLIC_OPS:
        return False
    try:
        with time_limit(SYMBOLIC_SECONDS):
            cheap = sp.cancel(sp.together(diff))
            if cheap == 0 or (cheap.has(sp.sin, sp.cos, sp.tan, sp.cot) and sp.trigsimp(cheap) == 0):
                return True
            return sp.simplify(cheap) == 0
    except (TimeLimitReached, TypeError, ValueError, NotImplementedError, RecursionError):
        return False


def compare(left, right, ranges: dict | None = None, points: int = 12, seed: int = 0, symbolic: bool = True) -> Verdict:
    """Are ``left`` and ``right`` equal for every value of their free symbols in ``ranges``?

    >>> from memcross.theory.symbols import t
    >>> compare(1 / (1 + (1 - t**2) / t**2), t**2).describe()
    'equal (symbolically)'
    >>> compare(t**2, t**3).equal
    False
    """
    left, right = sp.sympify(left), sp.sympify(right)
    if symbolic and _symbolic_zero(left - right):
        return Verdict(True, "symbolic")
    ranges = dict(default_ranges() if ranges is None else ranges)
    free = sorted((left.free_symbols | right.free_symbols), key=str)
    unknown = [s for s in free if s not in ranges]
    for s in unknown:
        ranges[s] = (sp.Rational(1, 10), sp.Integer(2), False)
    rng = random.Random(seed)
    checked = 0
    with mpmath.workdps(DIGITS + 5):
        for _ in range(points * 5):
            if checked >= points:
                break
            point = {s: _draw(rng, *ranges[s]) for s in free}
            if S.M in point and S.N in point and point[S.M] > point[S.N]:
                point[S.M] = point[S.N]
            a, b = _value(left, point), _value(right, point)
            if not (_finite(a) and _finite(b)):
                if _finite(a) != _finite(b):
                    return Verdict(False, "numeric", point, a, b, "one side is not finite")
                continue
            checked += 1
            scale = max(sp.Integer(1), abs(a), abs(b))
            if abs(a - b) > TOLERANCE * scale:
                return Verdict(False, "numeric", point, a, b)
            if not free:
                break
    if checked == 0:
        return Verdict(False, "numeric", {}, left, right, "could not evaluate either side at any sample point")
    return Verdict(True, "numeric", detail=f"{checked} point{'s' if checked > 1 else ''}")
