r"""A large population of Gaussian points seen through a softmax: the nearest ones drawn, the rest in expectation.

The finite-SNR losses (:mod:`memcross.numerics.finite_snr`) need, for one query, sums over the
``M`` other training points of the form :math:`\sum_i e^{-E_i}\phi(x_i)` with energies
:math:`E_i = \tfrac{\beta}{2}\|X_i\|^2 + e_{k_i}`, where, given its component ``k``, the point's
offset from the query :math:`X = a_k + \sigma_k g` is Gaussian (:math:`g \sim N(0, I_n)`). Drawing
all ``M`` points costs :math:`O(M)` per query; at ``N = 10^6`` that is too much. The points are
i.i.d. given the query, so the sums split at a radius ``R`` (per query):

* the points **inside** the ball :math:`\|X\| < R` (a few hundred of ``N``, the ones that carry
  the weight at high SNR) are drawn exactly: their number is binomial, their component follows
  :math:`\pi_k P_k(\|X\| < R)`, and their offsets are drawn from the Gaussian conditioned on the
  ball (the coordinate along :math:`a_k` on a fine grid of its marginal, the orthogonal norm from
  the truncated :math:`\chi^2_{n-1}`, its direction uniform);
* the points **outside** enter through their expectation (and the variance of their sum), which
  is closed form: tilting a Gaussian by :math:`e^{-\beta\|X\|^2/2}` gives a Gaussian, and

  .. math:: E[X\,1\{\|X\|^2 > R^2\}] = m\,Q_{n+2},\qquad
            E[\|X\|^2 1\{\|X\|^2 > R^2\}] = \sigma^2 (n\,Q_{n+2} + \lambda\,Q_{n+4})

  for :math:`X \sim N(m, \sigma^2 I_n)`, :math:`\lambda = \|m\|^2/\sigma^2`, :math:`Q_\nu` the
  survival function of the noncentral :math:`\chi^2_\nu(\lambda)` at :math:`R^2/\sigma^2`.

The outside sum of ``M`` terms is replaced by its mean plus, in the squared norm, its variance
(the delta method for a ratio whose denominator is a sum of many small terms). The split is
exact in the two limits: at high SNR nothing outside the ball matters, at low SNR the law of large
numbers holds. The radius is the smallest per-component quantile at level ``L / (N pi_k)``
(Patnaik's approximation), so about ``L`` points fall inside; the result does not depend on it
beyond the size of the fluctuation the delta method drops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

#: Points expected inside the ball among ``N``.
INSIDE = 64
#: Grid points for the marginal of the coordinate along the mean direction.
GRID = 48
#: Past this noncentrality the noncentral chi-square is taken from Sankaran's normal approximation
#: (its exact series costs about sqrt(lambda); there the approximation is within 1e-7 absolute).
LARGE_NONCENTRALITY = 1e4


def ncx2_sf(x: np.ndarray, nu: float, lam: np.ndarray, lower: bool = False) -> np.ndarray:
    """Survival function (``lower``: the CDF) of the noncentral chi-square, exact up to
    :data:`LARGE_NONCENTRALITY`, Sankaran's cube-root normal approximation past it."""
    x, lam = np.broadcast_arrays(np.asarray(x, float), np.asarray(lam, float))
    out = np.empty(x.shape)
    big = lam > LARGE_NONCENTRALITY
    exact = stats.ncx2.cdf if lower else stats.ncx2.sf
    out[~big] = exact(x[~big], nu, lam[~big])
    if big.any():
        xb, lb = x[big], lam[big]
        k = nu + lb
        h = 1 - 2 / 3 * k * (nu + 3 * lb) / (nu + 2 * lb) ** 2
        p = (nu + 2 * lb) / k**2
        m = (h - 1) * (1 - 3 * h)
        z = ((np.maximum(xb, 0) / k) ** h - (1 + h * p * (h - 1 - 0.5 * (2 - h) * m * p))) / (
            h * np.sqrt(2 * p) * (1 + 0.5 * m * p))
        out[big] = special.ndtr(z if lower else -z)
    return out


@dataclass(frozen=True)
class Tilted:
    r"""The tilt :math:`E[e^{-\tau\beta\|X\|^2/2}\,\cdot\,1\{\|X\| > R\}]` of the components: the log
    prefactor ``log_pref``, the tilted mean ``m`` (``(..., K, n_span)``), the tilted variance
    ``var``, and the survival functions ``q0, q2, q4`` of dof ``n, n+2, n+4``."""

    log_pref: np.ndarray
    m: np.ndarray
    var: np.ndarray
    lam: np.ndarray
    q0: np.ndarray
    q2: np.ndarray
    q4: np.ndarray

    def part(self, q: np.ndarray, log_scale: np.ndarray) -> np.ndarray:
        """:math:`e^{\\text{log\\_pref} - \\text{log\\_scale}}\\,q`, formed in logs (the prefactor
        may overflow where ``q`` underflows)."""
        with np.errstate(divide="ignore"):
            return np.exp(self.log_pref - log_scale[..., None] + np.log(q))

    def log_mass(self, prior: np.ndarray) -> np.ndarray:
        """:math:`\\log \\sum_k \\pi_k E_k[e^{-\\ldots}1\\{\\}]` per query (``-inf`` where it underflows)."""
        with np.errstate(divide="ignore"):
            return special.logsumexp(self.log_pref + np.log(prior) + np.log(self.q0), axis=-1)

    def mass(self, log_scale: np.ndarray) -> np.ndarray:
        """:math:`E[e^{-\\ldots}1\\{\\}]` per component, over :math:`e^{\\text{log\\_scale}}`."""
        return self.part(self.q0, log_scale)

    def first(self, log_scale: np.ndarray) -> np.ndarray:
        """:math:`E[X e^{-\\ldots}1\\{\\}]` per component (``(..., K, n_span)``)."""
        return self.m * self.part(self.q2, log_scale)[..., None]

    def second(self, n: int, log_scale: np.ndarray) -> np.ndarray:
        """:math:`E[\\|X\\|^2 e^{-\\ldots}1\\{\\}]` per component."""
        return self.var * (n * self.part(self.q2, log_scale) + self.lam * self.part(self.q4, log_scale))


def tilt(a: np.ndarray, var: np.ndarray, beta: np.ndarray, R2: np.ndarray, n: int, power: int) -> Tilted:
    r"""Tilt the components :math:`X \sim N(a_k, \sigma_k^2 I_n)` by :math:`e^{-p\beta\|X\|^2/2}`
    (``p = power``) and take the part outside the ball :math:`\|X\|^2 > R^2`.

    ``a``: ``(..., K, n_span)`` (its other ``n - n_span`` coordinates are 0); ``var``:
    broadcastable to ``(..., K)``; ``beta``, ``R2``: broadcastable to ``(..., 1)``.
    """
    b = power * beta
    shrink = 1 / (1 + b * var)
    a2 = (a**2).sum(-1)
    log_pref = 0.5 * n * np.log(shrink) - 0.5 * b * a2 * shrink
    m = a * shrink[..., None]
    v = var * shrink
    lam = a2 * shrink**2 / v
    x = R2 / v
    q0, q2 = ncx2_sf(x, n, lam), ncx2_sf(x, n + 2, lam)
    q4 = ncx2_sf(x, n + 4, lam) if power > 1 else np.zeros_like(q0)  # only second moments need it
    # where the mass outside underflows, so do its moments (their ratios to it stay polynomial in x)
    q2, q4 = np.where(q0 > 0, q2, 0.0), np.where(q0 > 0, q4, 0.0)
    return Tilted(log_pref, m, v, lam, q0, q2, q4)


def second_moment(t: Tilted, shift: np.ndarray, n: int, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``(log_scale, value)`` with :math:`e^{\text{log\_scale}}\,\text{value} = \sum_k \pi_k
    E_k[e^{-\ldots}\,\|X + s_k\|^2\,1\{\|X\| > R\}]` per query, for the tilt ``t`` (its
    ``power`` 2 for the variance of a sum of weights) and shifts ``s`` (``(Q, K, span)`` or
    ``(Q, span)``): :math:`\text{pref}\,(\sigma'^2(n Q_{n+2} + \lambda' Q_{n+4}) + 2 m'\cdot s\,
    Q_{n+2} + \|s\|^2 Q_n)`. The scale is the largest term's, so nothing overflows."""
    shift = np.broadcast_to(shift if shift.ndim == t.m.ndim else shift[:, None, :], t.m.shape)
    with np.errstate(divide="ignore"):
        logs = t.log_pref + np.log(prior) + np.log(np.maximum(np.maximum(t.q0, t.q2), t.q4))
    scale = logs.max(-1)
    scale = np.where(np.isfinite(scale), scale, 0.0)
    value = (prior * (t.second(n, scale) + 2 * (t.m * shift).sum(-1) * t.part(t.q2, scale)
                      + (shift**2).sum(-1) * t.mass(scale))).sum(-1)
    return scale, value


def radius2(a2: np.ndarray, var: np.ndarray, n: int, prior: np.ndarray, others: int,
            inside: int = INSIDE, offset: np.ndarray | None = None) -> np.ndarray:
    """Squared radii per query and component (``(Q, K)``: ``u + offset``, clipped at 0) inside
    which about ``inside`` of ``others`` mixture points fall, ``a2``, ``var``: ``(Q, K)``. A
    component whose energies carry a constant ``e`` takes ``offset = -2 e / beta`` (one energy
    threshold for all). ``u`` comes from a bisection in logs on Patnaik's scaled chi-square for
    each component's noncentral one (cheap; the draws use the exact law)."""
    lam = a2 / var
    scale = var * (n + 2 * lam) / (n + lam)
    half_nu = (n + lam) ** 2 / (n + 2 * lam) / 2
    target = min(inside / others, 0.5)
    offset = np.zeros_like(a2) if offset is None else offset

    def radii(u):
        return np.clip(u[:, None] + offset, 0, None)

    def share(u):
        return (prior * special.gammainc(half_nu, radii(u) / (2 * scale))).sum(-1)

    # bracket: the nearest component alone holds the target share (high), or a K-th of it (low)
    per = 2 * scale * special.gammaincinv(half_nu, np.clip(target / prior, 1e-300, 0.5)) - offset
    hi = per.min(-1)
    lo = (2 * scale * special.gammaincinv(half_nu, np.clip(target / (prior * len(prior)), 1e-300, 0.5))
          - offset).min(-1)
    lo = np.minimum(lo, hi)
    for _ in range(20):
        mid = (lo + hi) / 2
        big = share(mid) > target
        hi, lo = np.where(big, mid, hi), np.where(big, lo, mid)
    return radii(hi)


@dataclass(frozen=True)
class Inside:
    """The points drawn inside the ball, padded to ``L`` per query: ``valid`` ``(..., L)``,
    ``label``, ``position`` (1-based among the ``N - 1`` others), the offset's span part ``X``
    ``(..., L, n_span)`` and the squared norm of the rest ``rest2`` (outside the span)."""

    valid: np.ndarray
    label: np.ndarray
    position: np.ndarray
    X: np.ndarray
    rest2: np.ndarray


def draw_inside(a: np.ndarray, var: np.ndarray, R2: np.ndarray, prior: np.ndarray, n: int, others: int,
                rng: np.random.Generator) -> Inside:
    r"""Draw the points inside the ball among ``others`` i.i.d. points of the mixture
    :math:`\sum_k \pi_k N(a_k, \sigma_k^2 I_n)` (``a``: ``(Q, K, n_span)``, ``var``: ``(Q, K)``,
    ``R2``: ``(Q, K)``, ``prior``: ``(K,)``), for ``Q`` queries at once."""
    Q, K, span = a.shape
    an = np.sqrt((a**2).sum(-1))  # (Q, K)
    sd = np.sqrt(var)
    alpha = an / sd
    r2 = R2 / var  # (Q, K): the radius in units of sigma
    p_in = ncx2_sf(r2, n, alpha**2, lower=True)  # (Q, K)
    p_tot = (prior * p_in).sum(-1)
    count = rng.binomial(others, np.clip(p_tot, 0, 1))
    L = max(int(count.max()), 1)
    valid = np.arange(L)[None, :] < count[:, None]
    share = prior * p_in / np.where(p_tot > 0, p_tot, 1)[:, None]
    cum = np.cumsum(share, -1)
    u = rng.random((Q, L))
    label = np.minimum((u[:, :, None] > cum[:, None, :]).sum(-1), K - 1)
    position = rng.integers(1, others + 1, size=(Q, L))
    # the points one by one (the valid ones), and the (query, component) pairs they fall in
    q_of = np.broadcast_to(np.arange(Q)[:, None], (Q, L))[valid]
    key = q_of * K + label[valid]
    pairs, which = np.unique(key, return_inverse=True)
    al, rr = alpha.ravel()[pairs], r2.ravel()[pairs]
    # the coordinate along a_k: its marginal inside the ball on a grid per pair, then a finer grid
    # over where the first one saw mass
    lo, hi = -al - np.sqrt(rr), -al + np.sqrt(rr)
    # where the Gaussian factor is within e^-60 of its largest value on [lo, hi]
    reach = np.sqrt(np.clip(0.0, lo, hi) ** 2 + 120)
    lo, hi = np.maximum(lo, -reach), np.minimum(hi, reach)
    t, dens = _marginal(al, rr, n, lo, hi)
    log_d = np.log(np.where(dens > 0, dens, 1e-300))
    seen = log_d > log_d.max(-1, keepdims=True) - 40
    lo = np.where(seen, t, np.inf).min(-1)
    hi = np.where(seen, t, -np.inf).max(-1)
    step = t[..., 1] - t[..., 0]
    t, dens = _marginal(al, rr, n, np.maximum(lo - step, t[..., 0]), np.minimum(hi + step, t[..., -1]))
    cdf = np.concatenate([np.zeros((len(pairs), 1)), np.cumsum((dens[..., 1:] + dens[..., :-1]) / 2, -1)], -1)
    cdf = cdf / np.where(cdf[:, -1] > 0, cdf[:, -1], 1)[:, None]
    # inverse CDF by one search in all the tables at once, each offset by 2
    flat = (cdf + 2 * np.arange(len(pairs))[:, None]).ravel()
    v = rng.random(len(key))
    base = which * GRID
    j = np.clip(np.searchsorted(flat, v + 2 * which) - base, 1, GRID - 1)
    cdf_flat, t_flat = cdf.ravel(), t.ravel()
    c0, c1 = cdf_flat[base + j - 1], cdf_flat[base + j]
    t0, t1 = t_flat[base + j - 1], t_flat[base + j]
    tt = t0 + (v - c0) / np.where(c1 > c0, c1 - c0, 1) * (t1 - t0)
    # the orthogonal norm: chi^2_{n-1} truncated to the room left
    room = np.clip(rr[which] - (al[which] + tt) ** 2, 0, None)
    if n > 1:
        top = special.gammainc((n - 1) / 2, room / 2)
        rho2 = 2 * special.gammaincinv((n - 1) / 2, rng.random(len(key)) * top)
    else:
        rho2 = np.zeros(len(key))
    # its direction: uniform orthogonal to a_k, split between the span and the rest
    a_flat, an_flat = a.reshape(Q * K, span)[key], an.ravel()[key]
    unit = a_flat / np.where(an_flat > 0, an_flat, 1)[:, None]
    h = rng.standard_normal((len(key), span))
    h -= (h * unit).sum(-1, keepdims=True) * unit
    extra = n - span
    rest = rng.chisquare(extra, size=len(key)) if extra > 0 else np.zeros(len(key))
    scale = np.sqrt(rho2 / np.maximum((h**2).sum(-1) + rest, 1e-300))
    s = sd.ravel()[key]
    X = np.zeros((Q, L, span))
    X[valid] = a_flat + (s * tt)[:, None] * unit + (s * scale)[:, None] * h
    rest2 = np.zeros((Q, L))
    rest2[valid] = (s * scale) ** 2 * rest
    return Inside(valid, label, position, X, rest2)


def _marginal(alpha, r2, n, lo, hi):
    """The density (up to a constant) of the coordinate along the mean direction inside the ball,
    on ``GRID`` points from ``lo`` to ``hi`` (one row per entry of ``alpha``)."""
    t = lo[..., None] + (hi - lo)[..., None] * np.linspace(0, 1, GRID)
    room = np.clip(r2[..., None] - (alpha[..., None] + t) ** 2, 0, None)
    inside = special.chdtr(n - 1, room) if n > 1 else (room > 0).astype(float)
    return t, np.exp(-0.5 * t**2) * inside


def prefix_sums(inside: Inside, log_w: np.ndarray, first: np.ndarray, second: np.ndarray,
                sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Softmax sums over the inside points with position at most each of ``sizes`` (``(S,)``,
    increasing), stable in logs: ``(c, sum1, sum2)`` with ``c`` ``(Q, S)`` the largest log weight
    so far, ``sum1`` :math:`= \\sum_i e^{\\log w_i - c}\\,\\text{first}_i` (``first``: ``(Q, L, F)``)
    and ``sum2`` :math:`= \\sum_i e^{2(\\log w_i - c)}\\,\\text{second}_i` (``second``: ``(Q, L)``).
    A size with no point yet has ``c = -inf`` and zero sums. The sizes are taken as segments,
    each reduced at its own largest weight and merged in order (an online softmax)."""
    Q, L = log_w.shape
    S = len(sizes)
    segment = np.searchsorted(sizes, inside.position, side="left")  # the first size that includes it
    use = inside.valid & (segment < S)
    # each (query, segment) reduced at its own largest weight, all at once over the sorted points
    key = (np.arange(Q)[:, None] * S + segment)[use]
    order = np.argsort(key, kind="stable")
    key, lw = key[order], log_w[use][order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if key.size else np.zeros(0, int)
    top_flat = np.maximum.reduceat(lw, starts) if key.size else np.zeros(0)
    e = np.exp(lw - np.repeat(top_flat, np.diff(np.r_[starts, key.size])))
    top = np.full(Q * S, -np.inf)
    seg1 = np.zeros((Q * S, first.shape[-1]))
    seg2 = np.zeros(Q * S)
    if key.size:
        where = key[starts]
        top[where] = top_flat
        seg1[where] = np.add.reduceat(e[:, None] * first[use][order], starts, axis=0)
        seg2[where] = np.add.reduceat(e**2 * second[use][order], starts)
    top, seg1, seg2 = top.reshape(Q, S), seg1.reshape(Q, S, -1), seg2.reshape(Q, S)
    # the segments merged in order, each sum at the larger of the two scales (an online softmax)
    c = np.full(Q, -np.inf)
    sum1 = np.zeros((Q, first.shape[-1]))
    sum2 = np.zeros(Q)
    out_c, out1, out2 = [], [], []
    for k in range(S):
        new = np.maximum(c, top[:, k])
        ref = np.where(np.isfinite(new), new, 0.0)
        with np.errstate(invalid="ignore"):
            keep = np.where(np.isfinite(c), np.exp(c - ref), 0.0)
            add = np.where(np.isfinite(top[:, k]), np.exp(top[:, k] - ref), 0.0)
        sum1 = sum1 * keep[:, None] + seg1[:, k] * add[:, None]
        sum2 = sum2 * keep**2 + seg2[:, k] * add**2
        c = new
        out_c.append(c)
        out1.append(sum1)
        out2.append(sum2)
    return np.stack(out_c, 1), np.stack(out1, 1), np.stack(out2, 1)
