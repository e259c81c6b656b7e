r"""Network parameterizations (targets) and their loss factors relative to x0 prediction.

Each target is one registry entry: its *linear relation* to the x0 prediction ``h`` at the noisy
point ``x_t``. The loss factor :math:`c_f(t)` is **derived** from that relation: the target is
affine in ``h`` with slope :math:`\partial f / \partial h`, so

.. math:: \|f(\hat h) - f(h)\|^2 = (\partial f/\partial h)^2 \, \|\hat h - h\|^2,
   \qquad c_f = (\partial f / \partial h)^2 .
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from memcross._checks import did_you_mean
from memcross.theory.schedules import Schedule, simplest
from memcross.theory.symbols import alpha, sigma, t

#: The noisy point, the x0 prediction, and generic schedule derivatives.
x_t = sp.Symbol("x_t", real=True)
x0 = sp.Symbol("x_0", real=True)
dalpha = sp.Symbol("alpha'", real=True)
dsigma = sp.Symbol("sigma'", real=True)


@dataclass(frozen=True)
class Target:
    """A parameterization ``f(t, x_t)`` of the denoiser, given by its linear relation to x0."""

    name: str
    relation: Callable[[sp.Expr, sp.Expr, sp.Expr, sp.Expr, sp.Expr, sp.Expr], sp.Expr]
    description: str

    def from_x0(self, h: sp.Expr = x0, xt: sp.Expr = x_t, schedule: Schedule | None = None) -> sp.Expr:
        """The target's value when the x0 prediction is ``h`` (generic schedule by default)."""
        a, s, da, ds = _schedule_terms(schedule)
        return self.relation(a, s, da, ds, xt, h)

    def to_x0(self, value: sp.Expr, xt: sp.Expr = x_t, schedule: Schedule | None = None) -> sp.Expr:
        """The x0 prediction that gives the target ``value`` (solves the linear relation)."""
        h = sp.Dummy("h")
        (solution,) = sp.solve(sp.Eq(self.from_x0(h, xt, schedule), value), h)
        return solution

    def loss_factor(self, schedule: Schedule | None = None) -> sp.Expr:
        r"""Derived factor :math:`c_f(t)` with :math:`\|f - \hat f\|^2 = c_f \|x_0 - \hat x_0\|^2`.

        >>> from memcross.theory.schedules import get_schedule
        >>> get_target("eps").loss_factor(get_schedule("vp"))
        -1 + t**(-2)
        """
        h = sp.Dummy("h")
        slope = sp.diff(self.from_x0(h, x_t, schedule), h)
        if slope.has(h) or slope.has(x_t):
            raise ValueError(f"target {self.name!r} is not affine in the x0 prediction")
        return simplest(slope**2)


def _schedule_terms(schedule: Schedule | None):
    if schedule is None:
        return alpha, sigma, dalpha, dsigma
    return schedule.alpha, schedule.sigma, schedule.dalpha, schedule.dsigma


_REGISTRY: dict[str, Target] = {}


def register_target(name: str, description: str):
    """Register a target by its relation ``(alpha, sigma, alpha', sigma', x_t, x0) -> f``."""

    def wrap(relation):
        _REGISTRY[name] = Target(name, relation, description)
        return relation

    return wrap


@register_target("x0", "the clean sample x0")
def _x0(a, s, da, ds, xt, h):
    return h


@register_target("eps", "the noise, eps = (x_t - alpha x0) / sigma")
def _eps(a, s, da, ds, xt, h):
    return (xt - a * h) / s


@register_target("score", "the score, (alpha x0 - x_t) / sigma^2")
def _score(a, s, da, ds, xt, h):
    return (a * h - xt) / s**2


@register_target("velocity", "the probability-flow velocity dx_t/dt = alpha' x0 + sigma' eps")
def _velocity(a, s, da, ds, xt, h):
    return da * h + ds * (xt - a * h) / s


@register_target("v", "Salimans-Ho v = alpha eps - sigma x0")
def _v(a, s, da, ds, xt, h):
    return a * (xt - a * h) / s - s * h


def target_names() -> list[str]:
    """The registered target names."""
    return list(_REGISTRY)


def get_target(name: str) -> Target:
    """The target called ``name``; an unknown name lists the known ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown target {name!r}; known targets: {', '.join(_REGISTRY)}{did_you_mean(name, _REGISTRY)}")
    return _REGISTRY[name]


__all__ = ["Target", "get_target", "target_names", "register_target", "x_t", "x0", "t"]
