r"""Time measures: uniform on an interval :math:`[t_{min}, t_{max}]` or on an explicit grid.

:math:`E_t[f] = \frac{1}{t_{max} - t_{min}}\int_{t_{min}}^{t_{max}} f(t)\,dt` or
:math:`\frac1n \sum_{i=1}^n f(t_i)`. Grid points are exact rationals (``0.001`` is
:math:`1/1000`), so sums over a grid are exact until the caller asks for digits.
"""

from __future__ import annotations

import _weakrefset
import gc
import math
import signal
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import mpmath
import sympy as sp

from memcross._checks import check_int
from memcross.theory.numeric import TimeIntegral
from memcross.theory.parser import decimal_fraction
from memcross.theory.symbols import t

#: Seconds a symbolic integration may take before it is left unevaluated (main thread only).
INTEGRATE_SECONDS = 1.0


def exact_number(value, name: str) -> sp.Rational:
    """``value`` (int, float, str or sympy number) as an exact rational; floats by their repr."""
    if isinstance(value, sp.Basic):
        if value.is_Rational:
            return value
        raise ValueError(f"{name} must be a rational number, got {value}")
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    frac = value if isinstance(value, Fraction) else decimal_fraction(str(value).strip(), name)
    return sp.Rational(frac.numerator, frac.denominator)


def decimal_text(value: sp.Rational) -> str:
    """An exact rational as a terminating decimal where it is one (``1/1000`` -> ``0.001``),
    else as ``p/q``."""
    value = sp.Rational(value)
    q = value.q
    twos = fives = 0
    while q % 2 == 0:
        q, twos = q // 2, twos + 1
    while q % 5 == 0:
        q, fives = q // 5, fives + 1
    if q != 1:
        return str(value)
    places = max(twos, fives)
    if places == 0:
        return str(value.p)
    scaled = abs(value.p) * 10**places // value.q
    digits = str(scaled).rjust(places + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}".rstrip("0").rstrip(".")


class TimeLimitReached(BaseException):
    """A symbolic computation ran past its time budget (or no timer is available here).

    A ``BaseException``, like ``KeyboardInterrupt``: sympy catches ``Exception`` in places (for
    instance while trying integration strategies), which would swallow the signal and let the
    computation run on without a limit. ``limit`` is the :class:`time_limit` that ran out (None
    when no timer was available)."""

    def __init__(self, limit: time_limit | None = None):
        super().__init__(f"time limit of {limit.seconds:g} s reached" if limit is not None else "no timer available")
        self.limit = limit


class time_limit:  # noqa: N801 - used like a function: ``with time_limit(1.0):``
    """Raise :class:`TimeLimitReached` inside the block after ``seconds`` (a SIGALRM timer).

    The timer repeats every 50 ms until the block ends, so an exception swallowed by library
    code is raised again. Limits nest: an inner block never cancels an outer one, and when the
    outer one runs out inside the inner block the exception names the outer limit (check
    ``exc.limit is lim`` before treating it as your own). In threads other than the main one, or
    without SIGALRM, there is no timer: with ``required=True`` (the default) the block raises at
    once; with ``required=False`` it runs without a limit. A limit only ever turns a computation
    that runs too long into an exception; it must not decide a number.
    """

    _active: list[time_limit] = []  # enclosing limits of the main thread, outermost first
    _saved_handler = None

    def __init__(self, seconds: float, required: bool = True):
        self.seconds = float(seconds)
        self.required = required
        self.deadline = 0.0
        self.precision = 0
        self.armed = False

    @staticmethod
    def available() -> bool:
        """Whether a timer can run here: SIGALRM interval timers exist and this is the main thread."""
        return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()

    def __enter__(self) -> time_limit:
        if not self.available():
            if self.required:
                raise TimeLimitReached(None)
            return self
        stack = time_limit._active
        if not stack:
            time_limit._saved_handler = signal.signal(signal.SIGALRM, time_limit._handler)
        self.deadline = time.monotonic() + self.seconds
        self.precision = mpmath.mp.prec
        stack.append(self)
        self.armed = True
        time_limit._arm()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if not self.armed:
            return False
        # the timer goes first; the handler never raises inside this method (see _handler), so
        # the stack and the SIGALRM handler are always restored together
        signal.setitimer(signal.ITIMER_REAL, 0)
        self.armed = False
        stack = time_limit._active
        stack.remove(self)
        if stack:
            time_limit._arm()
        else:
            signal.signal(signal.SIGALRM, time_limit._saved_handler or signal.SIG_DFL)
            time_limit._saved_handler = None
        if exc_type is TimeLimitReached:
            # interrupted code may have left mpmath's global precision changed (between setting
            # it and entering the block that restores it); later numbers must not depend on that
            mpmath.mp.prec = self.precision
        return False

    @staticmethod
    def _arm() -> None:
        first = min(lim.deadline for lim in time_limit._active)
        signal.setitimer(signal.ITIMER_REAL, max(first - time.monotonic(), 1e-4), 0.05)

    @staticmethod
    def _handler(signum, frame):
        if _in_callback(frame) or _in_exit(frame):
            # raised in a callback it would be swallowed (or break the hook); raised while a limit
            # is being left it would leave the timer running with no limit to stop it (a later
            # alarm then killed the process). The timer repeats, so nothing is lost.
            return
        now = time.monotonic()
        for lim in time_limit._active:  # outermost first: it ends everything inside it
            if lim.armed and lim.deadline <= now:
                raise TimeLimitReached(lim)


#: Files of the weak-reference callbacks Python runs between any two bytecodes.
_WEAKREF_FILES = {weakref.__file__, _weakrefset.__file__}


def _in_exit(frame) -> bool:
    """Whether ``frame`` runs inside :meth:`time_limit.__exit__` (or code it calls)."""
    code = time_limit.__exit__.__code__
    depth = 0
    while frame is not None and depth < 50:
        if frame.f_code is code:
            return True
        frame, depth = frame.f_back, depth + 1
    return False


def _in_callback(frame) -> bool:
    """Whether ``frame`` runs inside a garbage-collector callback or the unraisable-exception
    hook, where Python swallows exceptions (or the hook fails on one)."""
    codes = set()
    for callback in [*gc.callbacks, sys.unraisablehook]:
        function = getattr(callback, "func", callback)  # functools.partial
        code = getattr(function, "__code__", None)
        if code is not None:
            codes.add(code)
    depth = 0
    while frame is not None and depth < 500:
        if frame.f_code in codes or frame.f_code.co_filename in _WEAKREF_FILES:
            return True  # weakref callbacks (a WeakKeyDictionary's remove) swallow exceptions too
        frame, depth = frame.f_back, depth + 1
    return False


def try_integrate(expr: sp.Expr, lower, upper, seconds: float = INTEGRATE_SECONDS) -> sp.Expr:
    """``Integral(expr, (t, lower, upper))``, evaluated where sympy can do it quickly; the rest
    is held as :class:`~memcross.theory.numeric.TimeIntegral` (evaluated by quadrature on demand).

    By linearity each term of ``expr`` is integrated on its own, with the factors that do not
    depend on ``t`` taken outside. Rational functions of ``t`` with rational coefficients are always
    integrated (within :data:`RATIONAL_SECONDS`, a guard against pathological user input); other integrands only
    within ``seconds`` (a timer that works in the main thread; elsewhere they stay unevaluated).
    Results are cached, so the same integrand gets the same form for the rest of the process.
    Whichever form an integral takes, its value is the same to the precision asked of it.
    """
    lower, upper = sp.sympify(lower), sp.sympify(upper)
    parts: dict[sp.Expr, sp.Expr] = {}
    for term in sp.Add.make_args(sp.sympify(expr)):
        coeff, dependent = term.as_independent(t, as_Add=False)
        if dependent.free_symbols - {t}:
            # constants inside sums (d in an expanded denominator): pull them out too, so the
            # integral is one number, not one per value of d
            more, dependent = sp.factor_terms(dependent).as_independent(t, as_Add=False)
            coeff *= more
        parts[dependent] = parts.get(dependent, 0) + coeff
    return sp.Add(*[coeff * _integrate_term(dependent, lower, upper, float(seconds))
                    for dependent, coeff in parts.items()])


#: Seconds a rational integrand may take (always integrated; this only stops a pathological one).
RATIONAL_SECONDS = 30.0


def _rational_over_q(expr: sp.Expr) -> bool:
    """Whether ``expr`` is a rational function of ``t`` with rational coefficients. Those are
    always integrated (sympy's rational integration over QQ is fast and its form deterministic);
    coefficients such as ``exp(2)`` (``sigmoid:b=-2``) put sympy in its slow expression domain
    (8 s for one integral), so such integrands get the time budget of any other."""
    if not expr.is_rational_function(t):
        return False
    try:
        num, den = sp.fraction(sp.cancel(sp.together(expr)))
        return all(sp.Poly(part, t).domain.is_QQ or sp.Poly(part, t).domain.is_ZZ for part in (num, den))
    except sp.PolynomialError:
        return False


@lru_cache(maxsize=1024)
def _integrate_term(expr: sp.Expr, lower: sp.Expr, upper: sp.Expr, seconds: float) -> sp.Expr:
    held = TimeIntegral(expr, (t, lower, upper))
    if not expr.has(t):
        return expr * (upper - lower)
    rational = _rational_over_q(expr)
    limit = time_limit(RATIONAL_SECONDS if rational else seconds, required=not rational)
    try:
        with limit:
            value = sp.Integral(expr, (t, lower, upper)).doit()
    except TimeLimitReached as exc:
        if exc.limit not in (limit, None):
            raise  # an enclosing limit ran out
        return held
    if value.has(sp.Integral):
        return held
    return value


@dataclass(frozen=True)
class Interval:
    """Uniform time on ``[t_min, t_max]``."""

    t_min: sp.Rational
    t_max: sp.Rational

    def __post_init__(self):
        object.__setattr__(self, "t_min", exact_number(self.t_min, "t_min"))
        object.__setattr__(self, "t_max", exact_number(self.t_max, "t_max"))
        if self.t_min < 0:
            raise ValueError(f"time interval: t_min must be >= 0, got {self.t_min}")
        if self.t_min >= self.t_max:
            raise ValueError(f"time interval: t_min must be < t_max, got t_min={self.t_min}, t_max={self.t_max}")

    @property
    def spec(self) -> str:
        """The spec text, ``interval:t_min,t_max``, that parses back to this measure."""
        return f"interval:{decimal_text(self.t_min)},{decimal_text(self.t_max)}"

    @property
    def bounds(self) -> tuple[sp.Rational, sp.Rational]:
        """``(t_min, t_max)``, exact rationals."""
        return self.t_min, self.t_max

    def symbolic(self, expr: sp.Expr) -> sp.Expr:
        """:math:`E_t[f]` as an unevaluated integral."""
        return TimeIntegral(expr, (t, self.t_min, self.t_max)) / (self.t_max - self.t_min)

    def expectation(self, expr: sp.Expr) -> sp.Expr:
        """:math:`E_t[f]`, evaluated when sympy can (else an unevaluated ``Integral``)."""
        return try_integrate(expr, self.t_min, self.t_max) / (self.t_max - self.t_min)


@dataclass(frozen=True)
class Grid:
    """Uniform time on explicit points (``grid:start,stop,count`` is a linspace)."""

    points: tuple[sp.Rational, ...]
    linspace: tuple[sp.Rational, sp.Rational, int] | None = None

    def __post_init__(self):
        pts = tuple(exact_number(p, "grid point") for p in self.points)
        object.__setattr__(self, "points", pts)
        if len(pts) < 2:
            raise ValueError(f"time grid needs at least 2 points, got {len(pts)}")
        if any(p < 0 for p in pts):
            raise ValueError("time grid points must be >= 0")
        if len(set(pts)) != len(pts):
            raise ValueError("time grid points must be distinct")

    @classmethod
    def from_linspace(cls, start, stop, count) -> Grid:
        """``count`` equally spaced points from ``start`` to ``stop`` (both included)."""
        check_int(count, "time grid count", 2, why=" (a grid needs at least 2 points)")
        a, b = exact_number(start, "grid start"), exact_number(stop, "grid stop")
        if a >= b:
            raise ValueError(f"time grid: start must be < stop, got start={a}, stop={b}")
        step = (b - a) / (count - 1)
        return cls(tuple(a + i * step for i in range(count)), (a, b, count))

    @property
    def spec(self) -> str:
        """The spec text that parses back to this grid: ``grid:a,b,n`` for a linspace, else ``points:t1,t2,...``."""
        if self.linspace:
            a, b, n = self.linspace
            return f"grid:{decimal_text(a)},{decimal_text(b)},{n}"
        return "points:" + ",".join(decimal_text(p) for p in self.points)

    @property
    def bounds(self) -> tuple[sp.Rational, sp.Rational]:
        """The smallest and the largest grid time, exact rationals."""
        return min(self.points), max(self.points)

    def symbolic(self, expr: sp.Expr) -> sp.Expr:
        r""":math:`E_t[f]` as an unevaluated ``Sum`` (linspace grids) or ``Add`` of terms."""
        n = len(self.points)
        if self.linspace:
            a, b, _ = self.linspace
            i = sp.Symbol("i", integer=True, positive=True)
            return sp.Sum(expr.subs(t, a + (i - 1) * (b - a) / (n - 1)), (i, 1, n)) / n
        return sp.Add(*[sp.UnevaluatedExpr(expr.subs(t, p)) for p in self.points]) / n

    def expectation(self, expr: sp.Expr) -> sp.Expr:
        """:math:`E_t[f]`, exact: the sum of ``expr`` at each point, over the number of points."""
        return sp.Add(*[expr.subs(t, p) for p in self.points]) / len(self.points)


#: The most points a time grid may have: exact sums over more are slow and add nothing that an
#: ``interval`` measure (adaptive quadrature) does not give.
MAX_GRID_POINTS = 2_000

#: The paper's grid: 26 points from 0.001 to 0.999.
PAPER_GRID = "grid:0.001,0.999,26"


def parse_time_measure(spec: str):
    """Build a time measure from ``grid:START,STOP,COUNT``, ``points:T1,T2,...`` or
    ``interval:T_MIN,T_MAX``."""
    if not isinstance(spec, str):
        raise ValueError(f"time measure must be a string, got {spec!r}")
    kind, _, rest = spec.strip().partition(":")
    parts = [p.strip() for p in rest.split(",") if p.strip()]
    usage = "allowed: grid:START,STOP,COUNT | points:T1,T2,... | interval:T_MIN,T_MAX"
    if kind == "grid":
        if len(parts) != 3:
            raise ValueError(f"time measure {spec!r}: grid needs START,STOP,COUNT ({usage})")
        try:
            count = int(parts[2])
        except ValueError:
            raise ValueError(f"time measure {spec!r}: COUNT must be an integer") from None
        if count > MAX_GRID_POINTS:
            raise ValueError(f"time measure {spec!r}: at most {MAX_GRID_POINTS} grid points, got {count}")
        return Grid.from_linspace(parts[0], parts[1], count)
    if kind == "points":
        if len(parts) > MAX_GRID_POINTS:
            raise ValueError(f"time measure: at most {MAX_GRID_POINTS} points, got {len(parts)}")
        return Grid(tuple(parts))
    if kind == "interval":
        if len(parts) != 2:
            raise ValueError(f"time measure {spec!r}: interval needs T_MIN,T_MAX ({usage})")
        return Interval(parts[0], parts[1])
    raise ValueError(f"unknown time measure {spec!r}; {usage}")
