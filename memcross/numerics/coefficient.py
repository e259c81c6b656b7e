r"""The finite-dimension coefficient :math:`C(d, K, N, M)` of the partial memorizer's excess.

At high SNR the partial memorizer sends a non-memorized training point :math:`x^j` to its
nearest memorized point, so its excess is that squared distance:
:math:`C = E[\min_{i \in S}\|x^j - x^i\|^2] / (d s_2)`.

* Same component, :math:`m` memorized points there: given :math:`z_j`,
  :math:`\|z_j - z_i\|^2 \sim \chi'^2(d, \lambda = \|z_j\|^2)` independently over :math:`i`, so

  .. math:: C(d, m) = \frac1d\, E_{\lambda \sim \chi^2_d}\Big[\int_0^\infty
            \big(1 - F_{\chi'^2(d,\lambda)}(r)\big)^m\,dr\Big].

* :math:`m` is random: the :math:`M` memorized points are a uniform subset of the other
  :math:`N - 1` points, each in :math:`x^j`'s component with probability :math:`1/K`, so
  :math:`m \sim \mathrm{Binomial}(M, 1/K)`.
* :math:`m = 0`: the nearest memorized point lies in another component, at mean separation
  :math:`\|\mu_k - \mu_l\|^2 = \delta^2` (:math:`2d` for means uniform on the sphere of radius
  :math:`\sqrt d`), so the distances are :math:`s_2\,\chi'^2(d, \lambda + \delta^2/s_2)` and the
  minimum runs over all :math:`M` memorized points. (The separation is taken equal for every
  pair of components: its spread is :math:`O(\sqrt d)` against a mean of :math:`2d`.)

Quadrature: :math:`\lambda` at Gauss-Legendre nodes in probability space (``chi2.ppf``);
:math:`r` on a Gauss-Legendre rule over the bulk of each noncentral law; the survival function
is computed once per ``(d, lambda)`` and raised to every power :math:`m` needed (through its log;
for large ``N`` at 129 nodes of the binomial's window, interpolated).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from memcross._checks import check_int


def _scipy():
    """scipy's special and stats modules, imported on first use: importing scipy.stats takes a
    second or more, and predictions by the asymptotic method never need it."""
    from scipy import special, stats

    return special, stats

LAMBDA_NODES = 64
R_NODES = 256
#: The largest dimension of the finite-d coefficient (d = 10^6 takes about 5 s; beyond it C is 2
#: to many digits for any practical M).
MAX_DIM = 1_000_000
#: Relative accuracy of :func:`coefficient` (float64 quadrature on the nodes above: ``C(50, 1)``
#: comes out 1.999992 against the exact 2); predictions built on it state this error.
COEFFICIENT_RELATIVE_ERROR = 1e-5


def _check_dims(d, K=None, N=None, M=None):
    for name, value in (("d", d), ("K", K), ("N", N), ("M", M)):
        if value is None:
            continue
        check_int(value, name, None, accept_numpy=True)
    if not 1 <= d <= MAX_DIM:
        raise ValueError(f"d must be in 1..{MAX_DIM} for the finite-d coefficient, got {d}")
    if K is not None and K < 1:
        raise ValueError(f"K must be >= 1, got {K}")
    if N is not None and K is not None and K > N:
        raise ValueError(f"K must be <= N, got K={K}, N={N}")
    if M is not None and N is not None and not 1 <= M <= N:
        raise ValueError(f"M must be in 1..N (N={N}), got M={M}")


@lru_cache(maxsize=64)
def _distance_nodes(d: int, shift: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""The quadrature of :math:`E[\min_{i \le m} R_i]`, :math:`R_i \sim \chi'^2(d, \lambda +
    \text{shift})` given :math:`\lambda \sim \chi^2_d`: ``(lo, wr, log_surv, wu)`` with the
    ``r`` rule over each law's bulk starting at ``lo`` (weights ``wr``, ``(L, R)``), the log of the
    survival function there and the ``lambda`` weights ``wu``."""
    special, stats = _scipy()
    u, wu = special.roots_legendre(LAMBDA_NODES)
    u, wu = (u + 1) / 2, wu / 2
    lam = stats.chi2.ppf(u, d) + shift  # (L,)
    # r range covering each law's bulk: below lo the survival is 1 to 1e-16, above hi it is 0
    lo = np.maximum(stats.ncx2.ppf(1e-16, d, lam), 0.0)
    hi = stats.ncx2.isf(1e-18, d, lam)
    x, wx = special.roots_legendre(R_NODES)
    r = lo[:, None] + (hi - lo)[:, None] * (x[None, :] + 1) / 2  # (L, R)
    wr = (hi - lo)[:, None] * wx[None, :] / 2
    with np.errstate(divide="ignore"):
        log_surv = np.log1p(-stats.ncx2.cdf(r, d, lam[:, None]))  # (L, R)
    return lo, wr, log_surv, wu


@lru_cache(maxsize=64)
def _min_distance_table(d: int, shift: float, m_max: int) -> np.ndarray:
    r""":math:`E[\min_{i \le m} R_i] / d` for :math:`m = 0..m_{max}` (entry 0 unused, NaN), with
    :math:`R_i \sim \chi'^2(d, \lambda + \text{shift})` given :math:`\lambda \sim \chi^2_d`."""
    return np.concatenate([[np.nan], _min_distance(d, shift, np.arange(1, m_max + 1))])


def _min_distance(d: int, shift: float, ms: np.ndarray) -> np.ndarray:
    """:math:`E[\\min_{i \\le m} R_i] / d` for the given ``ms`` (each :math:`\\ge 1`), in blocks."""
    lo, wr, log_surv, wu = _distance_nodes(int(d), float(shift))
    out = np.empty(len(ms))
    for start in range(0, len(ms), 256):
        block = np.asarray(ms[start:start + 256], dtype=float)
        inner = lo + np.einsum("lr,mlr->ml", wr, np.exp(block[:, None, None] * log_surv))  # int of surv^m
        out[start:start + 256] = inner @ wu / d
    return out


#: Beyond this many same-component counts in a binomial's window, :math:`C_m` is taken at 129
#: nodes of the window and interpolated (it is smooth in ``m``: 7e-8 relative at d = 20, N = 20000).
WINDOW_NODES = 129


def _window_average(d: int, M: int, p: float) -> float:
    """:math:`\\sum_{m \\ge 1} \\mathrm{Bin}(m; M, p)\\, C(d, m)` over the binomial's window
    (12 standard deviations each side)."""
    _, stats = _scipy()
    spread = 12 * np.sqrt(M * p * (1 - p) + 1) + 5
    m_lo, m_hi = max(1, int(np.floor(M * p - spread))), int(min(M, np.ceil(M * p + spread)))
    ms = np.arange(m_lo, m_hi + 1)
    pmf = stats.binom.pmf(ms, M, p)
    if m_hi <= 4096:  # every count, from a table cached at the next power of two
        return float(pmf @ _min_distance_table(int(d), 0.0, 1 << max(6, int(m_hi - 1).bit_length()))[ms])
    nodes = np.unique(np.round(np.linspace(m_lo, m_hi, WINDOW_NODES)).astype(int))
    return float(pmf @ np.interp(ms, nodes, _min_distance(d, 0.0, nodes)))


def coefficient_same_component(d: int, m: int) -> float:
    r""":math:`C(d, m)`: expected squared distance, over :math:`d`, from a point to the nearest of
    :math:`m` other points of its Gaussian component (unit variance).

    >>> round(coefficient_same_component(50, 1), 4)  # E||z_j - z_i||^2 / d = 2
    2.0
    """
    _check_dims(d, M=m)
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    return float(_min_distance_table(int(d), 0.0, int(m))[m])


def coefficient(d: int, K: int, N: int, M: int, s2: float = 1.0, separation: float | None = None) -> float:
    r"""The finite-dimension coefficient :math:`C(d, K, N, M)`.

    :math:`C = \sum_{m} \mathrm{Bin}(m; M, 1/K)\, C_m`, with :math:`C_m = C(d, m)` for
    :math:`m \ge 1` and the cross-component term for :math:`m = 0` (mean squared separation
    ``separation``, default :math:`2d`), in units of :math:`d s_2`.

    >>> round(coefficient(50, 12, 200, 200), 2)
    1.43
    """
    _check_dims(d, K, N, M)
    if not s2 > 0:
        raise ValueError(f"s2 must be positive, got {s2}")
    return float(coefficients(d, K, N, np.array([M]), s2, separation)[0])


def coefficients(d: int, K: int, N: int, Ms, s2: float = 1.0, separation: float | None = None) -> np.ndarray:
    """:func:`coefficient` for many model sizes ``Ms`` at once (one quadrature table)."""
    _check_dims(d, K, N)
    _, stats = _scipy()
    Ms = np.asarray(Ms, dtype=int)
    if Ms.size and (Ms.min() < 1 or Ms.max() > N):
        raise ValueError(f"M must be in 1..N (N={N}), got {Ms.min()}..{Ms.max()}")
    sep = 2.0 * d if separation is None else float(separation)
    p = 1.0 / K
    out = np.empty(Ms.shape, dtype=float)
    for idx, M in np.ndenumerate(Ms):
        value = _window_average(int(d), int(M), p)
        if K > 1:
            empty = stats.binom.pmf(0, M, p)  # no memorized point in x_j's component
            if empty > 0:
                value += empty * _min_distance(int(d), sep / s2, np.array([M]))[0]
        out[idx] = value
    return out


#: Nodes of the radius grid (log-spaced) for the coloured-template excess.
COLOR_R_NODES = 1500
COLOR_LAMBDA_NODES = 40
#: Relative accuracy of :func:`colored_excess` on the nodes above (at most 4e-7 against a rule with
#: 3x the colour nodes and 4x the radius nodes, digits and blobs, K = 6, N = 100, M = 1 ... 99);
#: coloured predictions built on it state this error.
COLORED_EXCESS_RELATIVE_ERROR = 1e-6


def colored_nearest_distance2(templates, sc2: float, N: int) -> float:
    """Expected squared distance from a coloured-template training point to its nearest other one
    among ``N`` (:func:`colored_excess` with ``M = N - 1``, times ``N``); cached per template set."""
    u = np.ascontiguousarray(templates, dtype=float)
    return _nearest_cached(u.tobytes(), u.shape, float(sc2), int(N))


@lru_cache(maxsize=32)
def _nearest_cached(raw: bytes, shape: tuple, sc2: float, N: int) -> float:
    templates = np.frombuffer(raw, dtype=float).reshape(shape)
    if N < 2:
        return float(6 * sc2 * (templates**2).sum(1).mean())
    return float(colored_excess(templates, sc2, N, [N - 1])[0] * N)


def colored_excess(templates, sc2: float, N: int, Ms) -> np.ndarray:
    r"""Excess training loss of the partial memorizer over the memorizer, coloured templates
    (zero colour means, uniform priors), for each model size in ``Ms``.

    At high SNR a non-memorized point :math:`x_j = c_j \otimes u_k` goes to its nearest memorized
    point. Write :math:`c = \sqrt{s_c^2}\,z` with 3-dimensional :math:`z` (the colour space),
    :math:`n_l = \|u_l\|^2` and :math:`g_{kl} = u_k\cdot u_l`. For a memorized point on template
    :math:`l`,

    .. math:: \|c_j\otimes u_k - c_i\otimes u_l\|^2 = s_c^2\big[n_l\,\|z_i - a\|^2 + b\big],
       \quad a = \tfrac{g_{kl}}{n_l} z_j,\quad b = \|z_j\|^2\big(n_k - \tfrac{g_{kl}^2}{n_l}\big):

    a scaled, shifted noncentral :math:`\chi^2_3` with noncentrality :math:`(g_{kl}/n_l)^2
    \|z_j\|^2`. For :math:`l = k` it is :math:`s_c^2 n_k\|z_i - z_j\|^2`: the nearest colour
    among the memorized points of the same template (order statistics in 3 dimensions, scaled by
    :math:`\|u_k\|^2`). The ``M`` memorized points are other training points, whose templates are
    i.i.d. uniform, so the survival of the minimum is :math:`(\frac1K\sum_l S_{kl}(r))^M` and

    .. math:: \Delta_{pmem}(M) = \Big(1 - \frac MN\Big)\frac1K\sum_k
              E_{\|z_j\|^2\sim\chi^2_3}\int_0^\infty\Big(\frac1K\sum_l S_{kl}(r)\Big)^M dr .

    Templates that overlap (large :math:`g_{kl}`) offer near neighbours on other templates;
    with orthogonal templates only the same template counts. Because the expected minimum of
    :math:`m` distances in 3 dimensions falls like :math:`m^{-2/3}`, the excess is **not** linear
    in :math:`1 - M/N`.

    >>> u = np.eye(2, 4)  # two orthogonal one-pixel templates
    >>> float(colored_excess(u, 1.0, 10, [10])[0])  # M = N: nothing left to miss
    0.0
    >>> round(float(colored_excess(u, 1.0, 2, [1])[0]) / (0.5 * 6), 2)  # one memorized point, same template half the time
    1.0
    """
    special, stats = _scipy()
    from memcross.templates import check_templates

    u = check_templates(templates)
    K = u.shape[0]
    Ms = np.asarray(Ms, dtype=int)
    _check_dims(3, K, N)
    if Ms.size and (Ms.min() < 1 or Ms.max() > N):
        raise ValueError(f"M must be in 1..N (N={N}), got {Ms.min()}..{Ms.max()}")
    if not sc2 > 0:
        raise ValueError(f"sc2 must be positive, got {sc2}")
    n = (u**2).sum(1)
    g = u @ u.T
    # ||z_j||^2 ~ chi^2_3, density x^(1/2) e^(-x/2) / (2^(3/2) Gamma(3/2)): generalized Gauss-Laguerre
    x, wq = special.roots_genlaguerre(COLOR_LAMBDA_NODES, 0.5)
    lam, wq = 2 * x, wq / special.gamma(1.5)
    out = np.zeros(Ms.shape, dtype=float)
    for k in range(K):
        scale = n.max()
        # radius grid (units of s_c^2), log-spaced over the bulk of every law
        r = np.geomspace(1e-7 * n.min(), stats.ncx2.isf(1e-18, 3, lam.max()) * scale + lam.max() * n[k], COLOR_R_NODES)
        surv = np.zeros((len(lam), len(r)))
        for j in range(K):  # memorized points on template j
            a2 = (g[k, j] / n[j]) ** 2 * lam  # noncentrality
            b = lam * max(n[k] - g[k, j] ** 2 / n[j], 0.0)
            x = (r[None, :] - b[:, None]) / n[j]
            surv += np.where(x > 0, stats.ncx2.sf(np.maximum(x, 0), 3, a2[:, None]), 1.0)
        surv /= K
        log_surv = np.log(np.clip(surv, 1e-300, 1.0))
        for idx, M in np.ndenumerate(Ms):
            f = np.exp(M * log_surv) * r[None, :]  # integrate in log r
            inner = r[0] + np.trapezoid(f, np.log(r), axis=1)  # survival ~ 1 below the grid
            out[idx] += np.dot(wq, inner) / K
    return sc2 * (1 - Ms / N) * out
