r"""The crossover: the model size at which the partial memorizer's weighted training loss falls
below the generalizer's.

With :math:`A = E_t[\lambda_t / (1 + \psi_t s_2)]` and :math:`B = E_t[\lambda_t]`, equating the
weighted excesses :math:`E_t[\lambda_t\,(C(1 - M/N) d s_2 - d s_2/(1+\psi_t s_2))] = 0` gives

.. math:: M^*/N = 1 - \frac{A}{C\,B}.

:math:`d`, :math:`K` and :math:`N` cancel. The per-time crossover is
:math:`1 - 1/(C(1 + \psi_t s_2))`.
"""

from __future__ import annotations

from dataclasses import dataclass

import mpmath
import sympy as sp

from memcross.theory.data import excess_loss_generalizer, excess_loss_partial_memorizer
from memcross.theory.measures import Grid, decimal_text
from memcross.theory.numeric import EvaluationError, Evaluator
from memcross.theory.schedules import simplest
from memcross.theory.setting import Setting
from memcross.theory.symbols import C, M, N, d, s2

#: Names for the two weighted time averages.
A = sp.Symbol("A", positive=True)
B = sp.Symbol("B", positive=True)


def per_time_critical_ratio(psi_t, variance=s2, coefficient=C) -> sp.Expr:
    r"""Per-time crossover :math:`1 - 1/(C (1 + \psi_t s_2))`.

    >>> from memcross.theory.schedules import get_schedule
    >>> per_time_critical_ratio(get_schedule("vp").psi, 1, 1)
    1 - t**2
    """
    return simplest(1 - 1 / (coefficient * (1 + psi_t * variance)))


def weighted_excess_difference(lam, psi_t, measure, variance=s2, coefficient=C) -> sp.Expr:
    r""":math:`E_t[\lambda_t\,(\Delta_{pmem}(M) - \Delta_{gen}(t))]` for the measure (symbolic in
    :math:`M, N, d`)."""
    integrand = lam * (
        excess_loss_partial_memorizer(coefficient, M, N, variance, d)
        - excess_loss_generalizer(psi_t, variance, d)
    )
    return measure.expectation(sp.expand(integrand))


def solve_crossover(a=A, b=B, coefficient=C) -> sp.Expr:
    r"""Solve :math:`d s_2 (C (1 - M/N) B - A) = 0` for :math:`M/N`: :math:`1 - A/(C B)`."""
    condition = d * s2 * (coefficient * (1 - M / N) * b - a)
    (m_star,) = sp.solve(condition, M)
    return sp.simplify(m_star / N)


@dataclass(frozen=True)
class Crossover:
    """The crossover of a setting: weight, the two averages (symbolic and evaluated), ``M*/N``."""

    setting: Setting
    lam: sp.Expr
    inverse_snr: sp.Expr  # g(psi) = Delta_gen / c: 1 / (1 + psi s2) for the isotropic mixture
    A_symbolic: sp.Expr
    B_symbolic: sp.Expr
    A: sp.Expr
    B: sp.Expr
    ratio: sp.Expr
    per_time: sp.Expr

    @property
    def evaluated(self) -> bool:
        """Whether ``ratio`` is free of unevaluated integrals (numerics evaluates those)."""
        return not self.ratio.has(sp.Integral, sp.Sum)


def _check_finite(value: sp.Expr, what: str, setting: Setting) -> None:
    if value.has(sp.oo, -sp.oo, sp.zoo, sp.nan):
        raise ValueError(
            f"{what} is not finite for weighting {setting.weighting!r} on time {setting.time!r}: "
            "the weight is not integrable there (use an interval with t_min > 0 or a grid)"
        )


def _probe_points(measure) -> list[sp.Rational]:
    if isinstance(measure, Grid):
        return list(measure.points)
    lo, hi = measure.bounds
    return [p for p in (lo + (hi - lo) * sp.Rational(k, 16) for k in range(17)) if p > 0]


def _check_evaluable(setting: Setting, lam: sp.Expr) -> None:
    """Refuse, by name, a schedule or weight that cannot be evaluated on the time measure (``exp``
    of an astronomically large argument): sympy would otherwise try to compute such numbers, in
    sums over a grid or in closed forms, and never finish."""
    st = setting
    schedule = f"schedule {st.schedule!r}" + (f" (alpha = {st.alpha!r}, sigma = {st.sigma!r})" if st.schedule == "custom" else "")
    weighting = f"weighting {st.weighting!r}" + (f" ({st.weight_expr!r})" if st.weight_expr else "")
    points = _probe_points(st.measure)
    with mpmath.workdps(30):
        for what, expr in ((schedule, st.schedule_obj.psi), (weighting, lam)):
            f = Evaluator(expr)
            for p in points:
                try:
                    f(mpmath.mpf(p.p) / p.q)
                except EvaluationError as exc:
                    raise ValueError(f"{what} cannot be evaluated at t = {decimal_text(p)}: {exc}") from None
                except (ZeroDivisionError, ValueError, TypeError):
                    pass  # poles and complex values are judged where the averages are taken


def crossover(setting: Setting, coefficient=None, variance=None) -> Crossover:
    r"""The crossover of ``setting`` with :math:`C` and :math:`s_2` from the setting (pass
    ``coefficient=C`` / ``variance=s2`` symbols to keep them symbolic).

    >>> crossover(Setting(time="interval:0,1"), coefficient=C).ratio
    1 - 1/(3*C)
    """
    coefficient = setting.C_exact if coefficient is None else coefficient
    variance = setting.s2_exact if variance is None else variance
    schedule = setting.schedule_obj
    lam = setting.weighting_obj.x0_weight(schedule)
    _check_evaluable(setting, lam)
    model = setting.data_model
    measure = setting.measure
    if model.exact_statistics:
        inverse = simplest(model.normalized_generalizer_excess(schedule.psi, variance))
        a_sym = measure.symbolic(lam * inverse)
        a_val = simplest(measure.expectation(simplest(lam * inverse)))
    else:  # float64 statistics (templates): A is left to quadrature, not to sympy's exact arithmetic
        inverse = model.normalized_generalizer_excess(schedule.psi, variance)
        a_sym = a_val = measure.symbolic(lam * inverse)
    b_sym = measure.symbolic(lam)
    b_val = simplest(measure.expectation(lam))
    _check_finite(a_val, "E_t[lam / (1 + psi s2)]" if model.name == "isotropic" else "E_t[lam Delta_gen / c]", setting)
    _check_finite(b_val, "E_t[lam]", setting)
    if b_val.is_number and b_val.is_zero:
        raise ValueError(f"weighting {setting.weighting!r} has zero total weight on time {setting.time!r}")
    ratio = simplest(solve_crossover().subs({A: a_val, B: b_val, C: coefficient}))
    return Crossover(
        setting, lam, inverse, a_sym, b_sym, a_val, b_val, ratio,
        model.per_time_ratio(schedule.psi, coefficient, variance),
    )


def critical_ratio(setting: Setting, coefficient=None, variance=None) -> sp.Expr:
    r""":math:`M^*/N = 1 - E_t[\lambda/(1+\psi s_2)] / (C E_t[\lambda])` for ``setting``.

    >>> critical_ratio(Setting())
    16508991/25000000
    """
    return crossover(setting, coefficient, variance).ratio
