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
from memcross.theory.symbols import t


def mp_function(expr: sp.Expr):
    """``expr`` as an mpmath function of ``t`` (evaluated at the caller's working precision)."""
    return sp.lambdify(t, expr, modules="mpmath")


def np_function(expr: sp.Expr):
    """``expr`` as a vectorized numpy function of ``t`` (float64); constants broadcast."""
    f = sp.lambdify(t, expr, modules="numpy")

    def g(x):
        x = np.asarray(x, dtype=float)
        with np.errstate(all="ignore"):
            return np.broadcast_to(np.asarray(f(x), dtype=float), x.shape)

    return g


def _kink_arguments(expr: sp.Expr) -> list[sp.Expr]:
    """Expressions whose sign changes mark kinks of ``expr`` (Min/Max pairs, Abs arguments)."""
    out = []
    for node in sp.preorder_traversal(expr):
        if isinstance(node, (sp.Min, sp.Max)):
            args = node.args
            out += [args[i] - args[j] for i in range(len(args)) for j in range(i + 1, len(args))]
        elif isinstance(node, sp.Abs):
            out.append(node.args[0])
        elif isinstance(node, sp.Heaviside):
            out.append(node.args[0])
    return [a for a in out if a.has(t)]


def breakpoints(expr: sp.Expr, lower, upper, samples: int = 400) -> list[mpmath.mpf]:
    """Interior points of ``(lower, upper)`` where ``expr`` has a kink, located to working
    precision (sign changes on a sample grid, refined by bisection-type root finding)."""
    points = []
    lo, hi = mpmath.mpf(lower), mpmath.mpf(upper)
    for arg in _kink_arguments(expr):
        f = mp_function(arg)
        xs = [lo + (hi - lo) * k / samples for k in range(samples + 1)]
        values = []
        for x in xs:
            try:
                values.append(mpmath.re(f(x)) if x > 0 else mpmath.re(f(x + (hi - lo) * mpmath.mpf(10) ** -12)))
            except (ZeroDivisionError, ValueError):
                values.append(None)
        for (x0, v0), (x1, v1) in zip(zip(xs, values), zip(xs[1:], values[1:])):
            if v0 is None or v1 is None or v0 * v1 > 0 or v0 == v1:
                continue
            root = mpmath.findroot(lambda x, f=f: mpmath.re(f(x)), (x0, x1), solver="anderson")
            if lo < root < hi:
                points.append(root)
    return sorted(set(points))


def mp_expectation(expr: sp.Expr, measure, dps: int = 30) -> tuple[mpmath.mpf, mpmath.mpf]:
    r""":math:`E_t[f]` at ``dps`` digits and an error estimate (0 for exact sums).

    >>> from memcross.theory.measures import Interval
    >>> value, error = mp_expectation(t**2, Interval(0, 1), dps=30)
    >>> mpmath.nstr(value, 20)
    '0.33333333333333333333'
    """
    with mpmath.workdps(dps + 10):
        if isinstance(measure, Grid):
            f = mp_function(expr)
            total = mpmath.fsum(mpmath.re(f(mpmath.mpf(p.p) / p.q)) for p in measure.points)
            return +total / len(measure.points), mpmath.mpf(0)
        if not isinstance(measure, Interval):
            raise TypeError(f"unknown time measure {measure!r}")
        lo = mpmath.mpf(measure.t_min.p) / measure.t_min.q
        hi = mpmath.mpf(measure.t_max.p) / measure.t_max.q
        f = mp_function(expr)
        pieces = [lo, *breakpoints(expr, lo, hi), hi]
        value, error = mpmath.quad(lambda x: mpmath.re(f(x)), pieces, error=True, method="tanh-sinh")
        return value / (hi - lo), abs(error) / (hi - lo)


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
    cuts = [lo, *(float(p) for p in breakpoints(expr_for_kinks, measure.t_min, measure.t_max)), hi]
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
