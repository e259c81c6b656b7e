"""Checking a user's expression against the toolkit's own quantity (``memcross check``).

The user's text goes through the safe parser; the toolkit's quantity is built for the setting
with ``d``, ``s2``, ``C``, ``M``, ``N`` left as symbols unless values are given; the two are
compared by :func:`memcross.theory.equivalence.compare` (symbolic, else 30-digit evaluation at
random points of the valid range).
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp

from memcross.theory import symbols as S
from memcross.theory.crossover import crossover, per_time_critical_ratio
from memcross.theory.data import excess_loss_generalizer, excess_loss_partial_memorizer, gaussian_mmse
from memcross.theory.equivalence import Verdict, compare, default_ranges
from memcross.theory.measures import exact_number
from memcross.theory.parser import parse_expression
from memcross.theory.setting import Setting

_QUANTITIES: dict[str, tuple[str, Callable[[Setting, sp.Expr, sp.Expr], sp.Expr]]] = {
    "alpha": ("alpha_t of the schedule", lambda st, c, v: st.schedule_obj.alpha),
    "sigma": ("sigma_t of the schedule", lambda st, c, v: st.schedule_obj.sigma),
    "psi": ("signal-to-noise ratio alpha_t^2 / sigma_t^2", lambda st, c, v: st.schedule_obj.psi),
    "loss-factor": ("the target's loss factor c_f(t) relative to x0",
                    lambda st, c, v: st.target_obj.loss_factor(st.schedule_obj)),
    "weight": ("the weighting in x0 units, lambda(t)", lambda st, c, v: st.weighting_obj.x0_weight(st.schedule_obj)),
    "target-weight": ("the weighting restated on the setting's target",
                      lambda st, c, v: st.weighting_obj.on_target(st.target, st.schedule_obj)),
    "gaussian-mmse": ("d s2 / (1 + psi s2) (psi as a symbol)", lambda st, c, v: gaussian_mmse(S.psi, v, S.d)),
    "excess-generalizer": ("Theorem 3.1 excess d s2 / (1 + psi_t s2) for the schedule",
                           lambda st, c, v: excess_loss_generalizer(st.schedule_obj.psi, v, S.d)),
    "excess-partial-memorizer": ("Theorem 3.2 excess C (1 - M/N) d s2",
                                 lambda st, c, v: excess_loss_partial_memorizer(c, S.M, S.N, v, S.d)),
    "per-time-crossover": ("1 - 1/(C (1 + psi_t s2))",
                           lambda st, c, v: per_time_critical_ratio(st.schedule_obj.psi, v, c)),
    "critical-ratio": ("M*/N for the setting's time measure and weighting",
                       lambda st, c, v: crossover(st, c, v).ratio),
}


def quantity_names() -> list[str]:
    """Names accepted by :func:`toolkit_quantity`."""
    return list(_QUANTITIES)


def toolkit_quantity(name: str, setting: Setting, C=S.C, s2=S.s2) -> sp.Expr:
    """The toolkit's expression for ``name`` in ``setting``; ``C``, ``s2`` symbolic by default."""
    if name not in _QUANTITIES:
        raise ValueError(f"unknown quantity {name!r}; known quantities: {', '.join(_QUANTITIES)}")
    return sp.sympify(_QUANTITIES[name][1](setting, C, s2))


def check_expression(text: str, against: str, setting: Setting | None = None, values: dict | None = None) -> Verdict:
    """Does the user's ``text`` equal the toolkit's quantity ``against``?

    ``values`` fixes symbols (``{"s2": 1, "C": 1}``); others stay free and are sampled at
    random points. ``s2`` is the setting's value unless the expression uses ``s2`` (then it stays
    free) or a value is given.

    >>> check_expression("1 - t**2", "per-time-crossover", values={"s2": 1, "C": 1}).equal
    True
    >>> check_expression("d*t**2", "excess-generalizer", values={"s2": 1}).equal
    True
    """
    setting = setting or Setting()
    values = dict(values or {})
    allowed = {"d", "K", "N", "M", "C", "s2"}
    bad = sorted(set(values) - allowed)
    if bad:
        raise ValueError(f"cannot fix {', '.join(bad)}; fixable symbols: {', '.join(sorted(allowed))}")
    names = dict(S.USER_SYMBOLS)
    theirs = parse_expression(text, names)
    if "s2" not in values and S.s2 not in theirs.free_symbols:
        values["s2"] = setting.s2_exact
    fixed = {S.USER_SYMBOLS[k]: exact_number(v, k) for k, v in values.items()}
    for sym, value in fixed.items():
        if not value > 0:
            raise ValueError(f"{sym} must be positive, got {value}")
    ours = toolkit_quantity(against, setting, fixed.get(S.C, S.C), fixed.get(S.s2, S.s2)).subs(fixed)
    theirs = theirs.subs(fixed)
    if against != "gaussian-mmse":  # there psi stays a free symbol on both sides
        theirs = theirs.subs({S.psi: setting.schedule_obj.psi, S.alpha: setting.schedule_obj.alpha,
                              S.sigma: setting.schedule_obj.sigma})
    lo, hi = setting.measure.bounds
    try:
        return compare(theirs, ours, default_ranges((max(lo, sp.Rational(1, 10**6)), hi)),
                       labels=(f"expression {text.strip()!r}", f"the toolkit's {against}"))
    except ArithmeticError as exc:  # OverflowError, decimal.InvalidOperation from huge numbers
        raise ValueError(f"expression {text!r} cannot be evaluated: its values are too large to represent "
                         f"({type(exc).__name__})") from None
