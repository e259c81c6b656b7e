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
from memcross.theory.numeric import EvaluationError, evaluate

DIGITS = 30
#: Relative tolerance of a numeric comparison. Each side is evaluated until two working
#: precisions agree to ``DIGITS + 2`` digits, so four digits are left for rounding; quadrature
#: error estimates are added on top.
TOLERANCE_DIGITS = DIGITS - 4
TOLERANCE = mpmath.mpf(10) ** -TOLERANCE_DIGITS
#: Seconds one side may take at one point before the comparison gives up with an error.
EVALUATE_SECONDS = 10.0


@dataclass(frozen=True)
class Verdict:
    """The outcome of a comparison: ``equal``; how it was decided; on a mismatch, where.

    ``tolerance`` is the largest relative tolerance a numeric comparison allowed (the working
    precision's, widened by the quadrature error estimates of integrals in either side).
    """

    equal: bool
    method: str  # "symbolic" | "numeric" | "given"
    point: dict = field(default_factory=dict)
    left: object = None
    right: object = None
    detail: str = ""
    tolerance: float | None = None

    def __bool__(self) -> bool:
        return self.equal

    def describe(self) -> str:
        """One line: how the sides were found equal (symbolically, numerically with its tolerance, given), or the point
        where they differ with both values."""
        if self.equal:
            if self.method == "numeric":
                how = f"numerically at {DIGITS} digits, to a relative tolerance of {self.tolerance:.1g}"
            else:
                how = {"symbolic": "symbolically", "given": "given"}.get(self.method, self.method)
            return f"equal ({how}{'; ' + self.detail if self.detail else ''})"
        where = ", ".join(f"{k} = {sp.N(v, 8)}" for k, v in self.point.items()) or "(no free symbols)"
        extra = f" ({self.detail})" if self.detail else ""
        return f"not equal: at {where}: {_show(self.left)} vs {_show(self.right)}{extra}"


def _show(value) -> str:
    if isinstance(value, (mpmath.mpf, mpmath.mpc)):
        return mpmath.nstr(value, 12)
    if isinstance(value, sp.Basic) and value.is_number and not value.has(sp.Integral, sp.Sum):
        return str(sp.N(value, 12))
    text = sp.sstr(value, order="none")
    return text if len(text) <= 80 else text[:77] + "..."


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


def _evaluate(expr: sp.Expr, point: dict) -> tuple[mpmath.mpf | None, mpmath.mpf]:
    """:func:`memcross.theory.numeric.evaluate` at :data:`DIGITS` digits."""
    return evaluate(expr, point, DIGITS)


def _value(expr: sp.Expr, point: dict):
    """``expr`` at ``point`` as a sympy Float of :data:`DIGITS` digits (``nan`` where it is not
    a finite real number)."""
    value, _ = _evaluate(expr, point)
    return sp.nan if value is None else sp.Float(value, DIGITS)


#: Larger differences are not handed to ``simplify`` (it can take minutes); they are evaluated.
MAX_SYMBOLIC_OPS = 150
SYMBOLIC_SECONDS = 1.0


def _symbolic_zero(diff: sp.Expr) -> bool:
    if diff == 0:
        return True
    if diff.has(sp.Integral, sp.Sum) or sp.count_ops(diff) > MAX_SYMBOLIC_OPS:
        return False
    limit = time_limit(SYMBOLIC_SECONDS)
    try:
        with limit:
            cheap = sp.cancel(sp.together(diff))
            if cheap == 0 or (cheap.has(sp.sin, sp.cos, sp.tan, sp.cot) and sp.trigsimp(cheap) == 0):
                return True
            return sp.simplify(cheap) == 0
    except TimeLimitReached as exc:
        if exc.limit not in (limit, None):
            raise  # an enclosing limit ran out
        return False
    except (TypeError, ValueError, NotImplementedError, RecursionError, ArithmeticError):
        return False


def compare(left, right, ranges: dict | None = None, points: int = 12, seed: int = 0, symbolic: bool = True,
            labels: tuple[str, str] = ("the left side", "the right side")) -> Verdict:
    """Are ``left`` and ``right`` equal for every value of their free symbols in ``ranges``?

    Raises :class:`~memcross.theory.numeric.EvaluationError` (a ``ValueError``) naming the side
    (``labels``) when one cannot be evaluated at a sample point: an argument or value too large,
    or more than :data:`EVALUATE_SECONDS` at one point.

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
    checked, widest = 0, mpmath.mpf(0)
    for _ in range(points * 5):
        if checked >= points:
            break
        point = {s: _draw(rng, *ranges[s]) for s in free}
        if S.M in point and S.N in point and point[S.M] > point[S.N]:
            point[S.M] = point[S.N]
        (a, a_err), (b, b_err) = _side(left, point, labels[0]), _side(right, point, labels[1])
        if a is None or b is None:
            if (a is None) != (b is None):
                return Verdict(False, "numeric", point, a if a is not None else "not finite",
                               b if b is not None else "not finite", "one side is not finite")
            continue
        checked += 1
        scale = max(abs(a), abs(b))
        tolerance = TOLERANCE * scale + a_err + b_err
        if abs(a - b) > tolerance:
            relative = abs(a - b) / scale
            allowed = tolerance / scale
            return Verdict(False, "numeric", point, a, b,
                           f"relative difference {mpmath.nstr(relative, 2)}, tolerance {mpmath.nstr(allowed, 2)}",
                           float(allowed))
        if scale:
            widest = max(widest, tolerance / scale)
        if not free:
            break
    if checked == 0:
        return Verdict(False, "numeric", {}, left, right, "could not evaluate either side at any sample point")
    return Verdict(True, "numeric", detail=f"{checked} point{'s' if checked > 1 else ''}",
                   tolerance=float(max(widest, TOLERANCE)))


def _side(expr: sp.Expr, point: dict, which: str):
    """:func:`_evaluate` with a time limit; any failure becomes an :class:`EvaluationError`
    that names the side and the point."""
    where = ", ".join(f"{k} = {sp.N(v, 8)}" for k, v in point.items()) or "its only value"
    limit = time_limit(EVALUATE_SECONDS, required=False)
    try:
        with limit:
            return _evaluate(expr, point)
    except TimeLimitReached as exc:
        if exc.limit is not limit:
            raise
        raise EvaluationError(f"{which} took longer than {EVALUATE_SECONDS:g} s to evaluate at {where}") from None
    except EvaluationError as exc:
        raise EvaluationError(f"{which} cannot be evaluated at {where}: {exc}") from None
    except RecursionError:
        raise EvaluationError(f"{which} is nested too deeply to evaluate at {where}") from None
