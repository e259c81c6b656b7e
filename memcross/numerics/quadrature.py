r"""Turning theory expressions in ``t`` into numbers: mpmath at any precision, numpy for sweeps.

* :func:`mp_expectation` — :math:`E_t[f]` for a time measure at ``dps`` digits with an error
  estimate: exact summation over a grid (error 0), or tanh-sinh quadrature (mpmath) on an
  interval, split at the kinks of ``Min``/``Max``/``Abs`` so the integrand is smooth on each piece.
  Tanh-sinh copes with integrable endpoint singularities.
* :func:`nodes` — fixed float64 nodes and weights for the same measure (grid points, or
  tanh-sinh nodes on each smooth piece), so many settings sharing a schedule and weighting are
  evaluated as one matrix product.
"""

from __future__ import annotations

from functools import lru_cache

import mpmath
import numpy as np
import sympy as sp

from memcross.theory.measures import Grid, Interval
from memcross.theory.numeric import Evaluator, breakpoints, integrate, kink_arguments, mp_function
from memcross.theory.symbols import t

__all__ = ["breakpoints", "mp_expectation", "mp_function", "nodes", "np_function"]


def np_function(expr: sp.Expr):
    """``expr`` as a vectorized numpy function of ``t`` (float64); constants broadcast.

    Where float64 gives no finite value (``1 - exp(-t)`` rounds to 0 for tiny ``t``, and the
    weight to ``inf``), the point is evaluated again with mpmath at the precision it needs
    (:class:`~memcross.theory.numeric.Evaluator`); it stays non-finite only if it truly is.
    """
    f = sp.lambdify(t, expr, modules="numpy")
    exact = None

    def g(x):
        nonlocal exact
        x = np.asarray(x, dtype=float)
        with np.errstate(all="ignore"):
            out = np.array(np.broadcast_to(np.asarray(f(x), dtype=float), x.shape))
        bad = ~np.isfinite(out)
        if bad.any():
            exact = exact or Evaluator(expr)
            for idx in zip(*np.nonzero(bad)):
                out[idx] = _float_value(exact, x[idx])
        return out

    return g


def _float_value(f, x: float) -> float:
    with mpmath.workdps(30):
        try:
            value = mpmath.re(f(mpmath.mpf(x)))
        except (ZeroDivisionError, ValueError, TypeError):
            return float("nan")
    return float(value)


def _kink_arguments(expr: sp.Expr) -> list[sp.Expr]:
    """Expressions whose sign changes mark kinks of ``expr`` (Min/Max pairs, Abs arguments)."""
    return kink_arguments(expr)


def mp_expectation(expr: sp.Expr, measure, dps: int = 30) -> tuple[mpmath.mpf, mpmath.mpf]:
    r""":math:`E_t[f]` at ``dps`` digits and an error estimate (0 for exact sums).

    >>> from memcross.theory.measures import Interval
    >>> value, error = mp_expectation(t**2, Interval(0, 1), dps=30)
    >>> mpmath.nstr(value, 20)
    '0.33333333333333333333'
    """
    if isinstance(measure, Grid):
        with mpmath.workdps(dps + 10):
            f = Evaluator(expr)
            total = mpmath.fsum(mpmath.re(f(mpmath.mpf(p.p) / p.q)) for p in measure.points)
            return +total / len(measure.points), mpmath.mpf(0)
    if not isinstance(measure, Interval):
        raise TypeError(f"unknown time measure {measure!r}")
    value, error = integrate(expr, measure.t_min, measure.t_max, dps)
    with mpmath.workdps(dps + 10):
        lo, hi = (mpmath.mpf(v.p) / v.q for v in (measure.t_min, measure.t_max))
        return value / (hi - lo), error / (hi - lo)


@lru_cache(maxsize=8)
def _tanh_sinh(level: int) -> tuple[np.ndarray, np.ndarray]:
    """Tanh-sinh nodes/weights on (-1, 1), step ``2**-level``, truncated where weights vanish."""
    h = 2.0**-level
    k = np.arange(-int(4.5 / h), int(4.5 / h) + 1) * h
    u = np.pi / 2 * np.sinh(k)
    x = np.tanh(u)
    w = h * np.pi / 2 * np.cosh(k) / np.cosh(u) ** 2
    keep = (np.abs(x) < 1.0) & (w > 1e-300)
    return x[keep], w[keep]


def nodes(expr_for_kinks: sp.Expr, measure, level: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Float64 nodes and weights with :math:`E_t[f] \\approx \\sum_i w_i f(t_i)`.

    Grids: the points with weights ``1/n`` (exact). Intervals: tanh-sinh on each smooth piece
    (kinks of ``expr_for_kinks`` split the interval), normalized by the interval's length.
    """
    if isinstance(measure, Grid):
        pts = np.array([float(p) for p in measure.points])
        return pts, np.full(pts.shape, 1.0 / len(pts))
    lo, hi = float(measure.t_min), float(measure.t_max)
    with mpmath.workdps(15):  # mpmath's default, stated: never whatever the global precision is
        kinks = breakpoints(expr_for_kinks, measure.t_min, measure.t_max)
    cuts = [lo, *(float(p) for p in kinks), hi]
    xs, ws = [], []
    base_x, base_w = _tanh_sinh(level)
    for a, b in zip(cuts[:-1], cuts[1:]):
        half = (b - a) / 2
        # nodes from the ends avoid cancellation next to a and b
        xr = np.where(base_x < 0, a + half * (1 + base_x), b - half * (1 - base_x))
        xs.append(xr)
        ws.append(base_w * half / (hi - lo))
    x, w = np.concatenate(xs), np.concatenate(ws)
    inside = (x > lo) & (x < hi)
    return x[inside], w[inside]
