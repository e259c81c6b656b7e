r"""Loss weightings, each stated on a target and converted to x0 units.

A weighting :math:`w_f(t)` stated on target :math:`f` is the x0 weight
:math:`\lambda(t) = c_f(t)\, w_f(t)` (:math:`c_f` the target's derived loss factor). Registry
entries: ``<target>-uniform`` for every target, ``uniform`` (on the setting's target), ``elbo``,
``min-snr`` (``gamma``), ``edm`` (``sd``, VE only), ``sigmoid`` (``b``) and ``custom``.
Parameters are given as ``name:key=value,...``, e.g. ``min-snr:gamma=5``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from memcross._checks import split_spec
from memcross.theory.parser import NumberRangeError, decimal_fraction, parse_expression
from memcross.theory.schedules import Schedule, simplest
from memcross.theory.symbols import alpha, psi, sigma, t
from memcross.theory.targets import get_target, target_names


@dataclass(frozen=True)
class WeightingKind:
    """A registered weighting: the target it is stated on and its formula there."""

    name: str
    stated_on: str | None  # None: on the setting's target
    formula: Callable[[Schedule, dict], sp.Expr]
    defaults: tuple[tuple[str, object], ...]
    description: str


@dataclass(frozen=True)
class Weighting:
    r"""A weighting with its parameters, stated on target ``stated_on``.

    >>> from memcross.theory.schedules import get_schedule
    >>> get_weighting("elbo").on_stated_target(get_schedule("vp"))
    -1/(t**3 - t)
    >>> get_weighting("eps-uniform").x0_weight(get_schedule("vp"))
    -1 + t**(-2)
    """

    kind: WeightingKind
    stated_on: str
    params: tuple[tuple[str, object], ...] = ()
    expression: str | None = None

    @property
    def name(self) -> str:
        """The name of the weighting's kind."""
        return self.kind.name

    @property
    def label(self) -> str:
        """The spec that rebuilds this weighting (``min-snr:gamma=5``)."""
        extra = [f"{k}={v}" for k, v in self.params]
        if self.kind.name == "uniform":
            return f"{self.stated_on}-uniform"
        return self.kind.name + (":" + ",".join(extra) if extra else "")

    def on_stated_target(self, schedule: Schedule) -> sp.Expr:
        """The weight :math:`w_f(t)` on the target it is stated on."""
        return self.kind.formula(schedule, dict(self.params), self)

    def x0_weight(self, schedule: Schedule) -> sp.Expr:
        r"""The weight in x0 units, :math:`\lambda = c_f w_f`."""
        factor = get_target(self.stated_on).loss_factor(schedule)
        return simplest(factor * self.on_stated_target(schedule))

    def on_target(self, target: str, schedule: Schedule) -> sp.Expr:
        r"""The same weighting stated on another target: :math:`w_g = \lambda / c_g`."""
        return convert_weight(self.on_stated_target(schedule), self.stated_on, target, schedule)


def convert_weight(weight: sp.Expr, from_target: str, to_target: str, schedule: Schedule) -> sp.Expr:
    r"""Restate a weight on ``from_target`` as one on ``to_target``: :math:`w_g = c_f w_f / c_g`."""
    cf = get_target(from_target).loss_factor(schedule)
    cg = get_target(to_target).loss_factor(schedule)
    return simplest(cf * weight / cg)


_REGISTRY: dict[str, WeightingKind] = {}


def register_weighting(name, stated_on, description, **defaults):
    """Register a weighting formula ``(schedule, params, weighting) -> weight on stated_on``."""

    def wrap(formula):
        _REGISTRY[name] = WeightingKind(name, stated_on, formula, tuple(defaults.items()), description)
        return formula

    return wrap


for _target in target_names():
    register_weighting(f"{_target}-uniform", _target, f"uniform on {_target}")(lambda s, p, w: sp.Integer(1))

register_weighting("uniform", None, "uniform on the setting's target")(lambda s, p, w: sp.Integer(1))


@register_weighting("elbo", "eps", "ELBO (Kingma et al. 2021): on eps, -1/2 d/dt log psi")
def _elbo(schedule, params, w):
    return simplest(-sp.diff(sp.log(schedule.psi), t) / 2)


@register_weighting("min-snr", "x0", "min-SNR-gamma: x0 weight min(psi, gamma)", gamma=5)
def _min_snr(schedule, params, w):
    return sp.Min(schedule.psi, params["gamma"])


@register_weighting("edm", "x0", "EDM (VE only): x0 weight (sigma^2 + sd^2)/(sigma sd)^2", sd=sp.Rational(1, 2))
def _edm(schedule, params, w):
    if sp.simplify(schedule.alpha - 1) != 0:
        raise ValueError(f"weighting 'edm' needs a variance-exploding schedule (alpha = 1); got {schedule.name!r}")
    s, sdv = schedule.sigma, params["sd"]
    return (s**2 + sdv**2) / (s * sdv) ** 2


@register_weighting("sigmoid", "eps", "sigmoid: eps weight 1/(1 + exp(log psi - b))", b=0)
def _sigmoid(schedule, params, w):
    return simplest(1 / (1 + schedule.psi * sp.exp(-params["b"])))


@register_weighting("custom", None, "a user expression in t (may use psi, alpha, sigma)")
def _custom(schedule, params, w):
    if not w.expression:
        raise ValueError("weighting 'custom' needs an expression (e.g. --weight-expr 'min(psi, 5)')")
    expr = parse_expression(w.expression, {"t": t, "psi": psi, "alpha": alpha, "sigma": sigma})
    return expr.subs({psi: schedule.psi, alpha: schedule.alpha, sigma: schedule.sigma})


def weighting_names() -> list[str]:
    """The registered weighting names."""
    return list(_REGISTRY)


def _number(text: str, key: str, spec: str):
    try:
        frac = decimal_fraction(text.strip(), f"weighting {spec!r}: parameter {key!r}")
    except NumberRangeError:
        raise
    except ValueError:
        raise ValueError(f"weighting {spec!r}: parameter {key!r} must be a number, got {text!r}") from None
    return sp.Rational(frac.numerator, frac.denominator)


def get_weighting(spec: str, target: str = "x0", expression: str | None = None) -> Weighting:
    """Build a weighting from ``name[:key=value,...]``; ``target`` is the setting's target
    (used by ``uniform`` and ``custom``); ``expression`` is the custom weight's text."""
    name, given = split_spec(spec, "weighting", {k: [p for p, _ in v.defaults] for k, v in _REGISTRY.items()})
    kind = _REGISTRY[name]
    get_target(target)
    params = dict(kind.defaults)
    params.update({key: _number(value, key, spec) for key, value in given.items()})
    if name == "min-snr" and not params["gamma"] > 0:
        raise ValueError(f"weighting {spec!r}: gamma must be positive")
    if name == "edm" and not params["sd"] > 0:
        raise ValueError(f"weighting {spec!r}: sd must be positive")
    if name == "custom" and not expression:
        raise ValueError("weighting 'custom' needs an expression (e.g. --weight-expr 'min(psi, 5)')")
    if name != "custom" and expression:
        raise ValueError(f"a weight expression is only used with weighting 'custom', not {name!r}")
    stated_on = kind.stated_on or target
    ordered = tuple((k, params[k]) for k, _ in kind.defaults)
    return Weighting(kind, stated_on, ordered, expression if name == "custom" else None)
