r"""The forward process and the time measure as float64 arrays, for the torch layer.

A :class:`Process` holds numpy functions of ``t`` built from a :class:`~memcross.theory.Setting`:
:math:`\alpha_t, \sigma_t, \alpha'_t, \sigma'_t` and the x0-unit weight :math:`\lambda_t` of the
setting's weighting (``lam = c_f w`` for a weight ``w`` stated on target ``f``). Its
:meth:`Process.quadrature` gives the times and weights that Monte-Carlo losses are evaluated at:
the grid's points (weights ``1/n``) for a grid measure, Gauss-Legendre nodes for an interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from memcross.numerics.quadrature import np_function
from memcross.theory.measures import Grid
from memcross.theory.setting import Setting

#: Gauss-Legendre nodes used for an interval measure when per-time losses are needed.
INTERVAL_NODES = 26


@dataclass(frozen=True)
class TimeTable:
    """Times ``t`` with quadrature weights ``w`` (summing to 1) and the process at them."""

    t: np.ndarray
    w: np.ndarray
    alpha: np.ndarray
    sigma: np.ndarray
    lam: np.ndarray

    @property
    def psi(self) -> np.ndarray:
        r"""The signal-to-noise ratio :math:`\psi_t = \alpha_t^2/\sigma_t^2` at each time."""
        return self.alpha**2 / self.sigma**2

    def weighted(self, per_time: np.ndarray) -> np.ndarray:
        r""":math:`\sum_t w_t \lambda_t L_t` over the last axis of ``per_time``."""
        return np.asarray(per_time) @ (self.w * self.lam)


class Process:
    """Numeric view of a setting's schedule, time measure and weighting.

    >>> p = Process(Setting())
    >>> table = p.quadrature()
    >>> len(table.t), round(float(table.t[0]), 6), round(float(table.alpha[-1] ** 2 + table.sigma[-1] ** 2), 12)
    (26, 0.001, 1.0)
    """

    def __init__(self, setting: Setting):
        self.setting = setting
        schedule = setting.schedule_obj
        self.alpha = np_function(schedule.alpha)
        self.sigma = np_function(schedule.sigma)
        self.dalpha = np_function(schedule.dalpha)
        self.dsigma = np_function(schedule.dsigma)
        self.lam = np_function(setting.weighting_obj.x0_weight(schedule))
        self.measure = setting.measure

    @property
    def is_grid(self) -> bool:
        """Whether the time measure is a grid of times rather than an interval."""
        return isinstance(self.measure, Grid)

    @cached_property
    def bounds(self) -> tuple[float, float]:
        """The measure's first and last times, as floats."""
        lo, hi = self.measure.bounds
        return float(lo), float(hi)

    def table(self, t: np.ndarray, w: np.ndarray) -> TimeTable:
        r"""The :class:`TimeTable` of times ``t`` and weights ``w``, with :math:`\alpha_t`, :math:`\sigma_t` and
        :math:`\lambda_t` evaluated there."""
        t = np.array(t, dtype=float)
        values = (np.array(f(t), dtype=float) for f in (self.alpha, self.sigma, self.lam))
        return TimeTable(t, np.array(w, dtype=float), *values)

    def quadrature(self, n_interval: int = INTERVAL_NODES) -> TimeTable:
        """Times and weights of the measure: the grid itself, or ``n_interval`` Gauss-Legendre nodes."""
        if self.is_grid:
            t = np.array([float(p) for p in self.measure.points])
            return self.table(t, np.full(t.shape, 1.0 / len(t)))
        lo, hi = self.bounds
        x, w = np.polynomial.legendre.leggauss(n_interval)
        return self.table(lo + (hi - lo) * (x + 1) / 2, w / 2)

    def sampler_grid(self, steps: int = 25) -> np.ndarray:
        """Decreasing times for a sampler: the grid reversed, or ``steps + 1`` even points."""
        if self.is_grid:
            return np.array(sorted((float(p) for p in self.measure.points), reverse=True))
        lo, hi = self.bounds
        return np.linspace(hi, lo, steps + 1)
