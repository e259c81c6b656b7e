r"""Noise schedules: :math:`x_t = \alpha_t x_0 + \sigma_t z`, with :math:`\psi_t = \alpha_t^2/\sigma_t^2`.

Each schedule is one registry entry: a name, :math:`\alpha_t`, :math:`\sigma_t` as sympy
expressions in :data:`memcross.theory.symbols.t`, and the time range ``[0, t_max]`` on which it is
defined. Custom schedules come from user text through the safe parser.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import mpmath
import sympy as sp

from memcross.theory.measures import TimeLimitReached, exact_number, time_limit
from memcross.theory.numeric import EvaluationError, mp_function
from memcross.theory.parser import parse_expression
from memcross.theory.symbols import t

#: Seconds the conditions of a custom schedule may take to check (a guard against expressions
#: that sympy cannot take a limit of, or evaluate, in reasonable time).
VALIDATE_SECONDS = 10.0


class ScheduleError(ValueError):
    """A schedule fails one of its defining conditions."""


def simplest(expr: sp.Expr) -> sp.Expr:
    """The shortest (by operation count) of a few cheap rewritings of ``expr``.

    Full ``sp.simplify`` runs only on expressions without transcendental functions, where it is
    fast; with ``exp`` or trigonometric functions only targeted rewrites are tried, so that no
    step of a derivation can stall on simplification.
    """
    return _simplest(sp.sympify(expr))


@lru_cache(maxsize=2048)
def _simplest(expr: sp.Expr) -> sp.Expr:
    """:func:`simplest`, cached: the same weights and schedules are rewritten many times over
    (trigsimp alone takes a good part of a second)."""
    if not expr.free_symbols:
        return expr  # exact numbers stay as they are: rewriting long exact sums only costs time
    held = expr.atoms(sp.Integral, sp.Sum)
    if held:
        # Rewrite around integrals and sums, never into them: to sympy a plain numeric integral
        # or sum is a number, and simplification orders and compares numbers by evaluating them.
        masks = {h: sp.Dummy(f"held{i}") for i, h in enumerate(sorted(held, key=lambda h: sp.sstr(h, order="none")))}
        return _simplest(expr.xreplace(masks)).xreplace({m: h for h, m in masks.items()})
    candidates = [expr, sp.cancel(sp.together(expr))]
    if expr.has(sp.sin, sp.cos, sp.tan, sp.cot):
        candidates.append(sp.trigsimp(expr))
    elif not expr.has(sp.exp, sp.log, sp.Min, sp.Max, sp.sinh, sp.cosh, sp.tanh):
        candidates += [sp.simplify(expr), sp.factor(candidates[1])]
    else:
        candidates.append(sp.powsimp(candidates[1]))
    return min(candidates, key=sp.count_ops)


@dataclass(frozen=True)
class Schedule:
    r"""A forward process :math:`x_t = \alpha_t x_0 + \sigma_t z` on :math:`0 \le t \le t_{max}`.

    >>> s = get_schedule("vp")
    >>> s.alpha, s.sigma
    (sqrt(1 - t**2), t)
    >>> s.psi
    -1 + t**(-2)
    """

    name: str
    alpha: sp.Expr
    sigma: sp.Expr
    t_max: sp.Rational = sp.Integer(1)
    description: str = field(default="", compare=False)

    @cached_property
    def dalpha(self) -> sp.Expr:
        r""":math:`\alpha'_t`."""
        return sp.diff(self.alpha, t)

    @cached_property
    def dsigma(self) -> sp.Expr:
        r""":math:`\sigma'_t`."""
        return sp.diff(self.sigma, t)

    @cached_property
    def psi(self) -> sp.Expr:
        r"""Signal-to-noise ratio :math:`\psi_t = \alpha_t^2 / \sigma_t^2`."""
        return simplest(self.alpha**2 / self.sigma**2)

    def validate(self) -> Schedule:
        """Check :math:`\\alpha_0 = 1`, :math:`\\sigma_0 = 0` and :math:`\\sigma_t > 0` on
        ``(0, t_max]``; raise :class:`ScheduleError` naming the condition that fails."""
        if self.t_max.is_number is not True or not self.t_max > 0:
            raise ScheduleError(f"schedule {self.name!r}: t_max must be a positive number")
        free = (self.alpha.free_symbols | self.sigma.free_symbols) - {t}
        if free:
            names = ", ".join(sorted(str(s) for s in free))
            raise ScheduleError(f"schedule {self.name!r}: alpha and sigma may use only t (found {names})")
        a0 = sp.limit(self.alpha, t, 0, "+")
        if sp.simplify(a0 - 1) != 0:
            raise ScheduleError(f"schedule {self.name!r}: alpha_0 = 1 fails (alpha_0 = {a0})")
        s0 = sp.limit(self.sigma, t, 0, "+")
        if sp.simplify(s0) != 0:
            raise ScheduleError(f"schedule {self.name!r}: sigma_0 = 0 fails (sigma_0 = {s0})")
        where = _first_nonpositive(self.sigma, self.t_max, name=f"schedule {self.name!r}: sigma")
        if where is not None:
            raise ScheduleError(
                f"schedule {self.name!r}: sigma > 0 on (0, {self.t_max}] fails "
                f"(sigma({where}) = {sp.N(self.sigma.subs(t, where), 6)})"
            )
        where = _first_nonpositive(self.alpha, self.t_max, strict=False, real_only=True,
                                   name=f"schedule {self.name!r}: alpha")
        if where is not None:
            raise ScheduleError(
                f"schedule {self.name!r}: alpha must be real on [0, {self.t_max}] "
                f"(alpha({where}) = {sp.N(self.alpha.subs(t, where), 6)})"
            )
        return self


def _first_nonpositive(expr, t_max, strict=True, real_only=False, points=200, name="expression"):
    """A time in ``(0, t_max]`` where ``expr`` is not positive (or not real), else ``None``.

    Symbolic when sympy can decide the sign for every positive ``t``; otherwise by evaluation at
    30 digits on a grid plus random points. An expression that cannot be evaluated at all (an
    argument too large for ``exp``) raises :class:`ScheduleError` starting with ``name``.
    """
    if expr.is_positive and not real_only:
        return None
    f = mp_function(expr)
    rng = random.Random(0)
    tm = sp.Rational(t_max)
    grid = [tm * sp.Rational(i, points) for i in range(1, points + 1)]
    grid += [tm * sp.Rational(rng.randint(1, 10**6), 10**6) for _ in range(50)]
    with mpmath.workdps(30):
        for point in grid:
            try:
                value = mpmath.mpmathify(f(mpmath.mpf(point.p) / point.q))
            except EvaluationError as exc:
                raise ScheduleError(f"{name} cannot be evaluated at t = {point}: {exc}") from None
            except (ValueError, ZeroDivisionError, TypeError):
                return point
            if abs(mpmath.im(value)) > mpmath.mpf(10) ** -25:
                return point
            re = mpmath.re(value)
            if real_only:
                continue
            if re < 0 or (strict and re == 0):
                return point
    return None


_REGISTRY: dict[str, Callable[[], Schedule]] = {}


def register_schedule(name: str, description: str = ""):
    """Register a schedule factory under ``name`` (a decorator)."""

    def wrap(factory: Callable[[], tuple[sp.Expr, sp.Expr, sp.Expr]]):
        def make() -> Schedule:
            alpha, sigma, t_max = factory()
            return Schedule(name, alpha, sigma, sp.Rational(t_max), description)

        _REGISTRY[name] = make
        return factory

    return wrap


@register_schedule("vp", "variance preserving, alpha = sqrt(1 - t^2), sigma = t (the paper's)")
def _vp():
    return sp.sqrt(1 - t**2), t, 1


@register_schedule("vp-cosine", "cosine, alpha = cos(pi t / 2), sigma = sin(pi t / 2)")
def _vp_cosine():
    return sp.cos(sp.pi * t / 2), sp.sin(sp.pi * t / 2), 1


@register_schedule("vp-linear", "DDPM linear beta from 0.1 to 20 (continuous time)")
def _vp_linear():
    b0, b1 = sp.Rational(1, 10), sp.Integer(20)
    alpha = sp.exp(-(t**2) * (b1 - b0) / 4 - t * b0 / 2)
    return alpha, sp.sqrt(1 - alpha**2), 1


@register_schedule("ve", "variance exploding, alpha = 1, sigma = t (EDM, t up to 80)")
def _ve():
    return sp.Integer(1), t, 80


@register_schedule("flow", "rectified flow, alpha = 1 - t, sigma = t")
def _flow():
    return 1 - t, t, 1


def schedule_names() -> list[str]:
    """The registered schedule names (``custom`` is built from expressions instead)."""
    return list(_REGISTRY)


def get_schedule(name: str) -> Schedule:
    """The registered schedule called ``name``; an unknown name lists the known ones."""
    if name not in _REGISTRY:
        known = ", ".join(schedule_names())
        raise ValueError(f"unknown schedule {name!r}; known schedules: {known}, custom")
    return _REGISTRY[name]()


def custom_schedule(alpha: str, sigma: str, t_max=1, name: str = "custom") -> Schedule:
    """A schedule from user expressions in ``t``, validated (safe parser, then the conditions).

    >>> custom_schedule("1 - t", "t").psi
    (1 - t)**2/t**2
    """
    names = {"t": t}
    schedule = Schedule(
        name,
        parse_expression(alpha, names),
        parse_expression(sigma, names),
        exact_number(t_max, "t_max"),
        f"custom: alpha = {alpha}, sigma = {sigma}",
    )
    limit = time_limit(VALIDATE_SECONDS, required=False)
    try:
        with limit:
            return schedule.validate()
    except TimeLimitReached as exc:
        if exc.limit is not limit:
            raise
        raise ScheduleError(
            f"schedule {name!r}: checking alpha = {alpha!r} and sigma = {sigma!r} took longer than "
            f"{VALIDATE_SECONDS:g} s; write them more simply"
        ) from None
