r"""The finite-SNR predictor: expected training losses at every noise level, without the collapse.

The ``asymptotic`` and ``finite-d`` methods assume the memorizer has collapsed onto the nearest
training point at every time. ``finite-snr`` models the expected per-time training losses of the
partial memorizer :math:`f_{pmem,M}` (the empirical denoiser of ``M`` memorized points) and of
the generalizer (the data model's posterior mean) directly, from the data model alone (no sampled
data set), and finds the smallest ``M`` whose weighted loss is below the generalizer's.

**Isotropic mixture, exactly in a small space.** For a training point :math:`x_j` and the noisy
point :math:`x_t = \alpha x_j + \sigma\epsilon`, the empirical denoiser's weights are
:math:`\mathrm{softmax}_i(-E_i)` over the memorized :math:`i` with

.. math:: E_i = \tfrac{\psi}{2} D_{ij} - \sqrt\psi\,\langle v_i, \epsilon\rangle,\qquad
          D_{ij} = \|x_i - x_j\|^2 = \|v_i\|^2 + s_2 q_i,

and, for weights summing to one,
:math:`\|\sum_i w_i x_i - x_j\|^2 = \|\sum_i w_i v_i\|^2 + s_2\|\sum_i w_i r_i\|^2`. Here
:math:`B` is an orthonormal basis of the span of the ``K`` means, :math:`z_j` and
:math:`\epsilon` (:math:`p = K + 2` dimensions); a memorized point is
:math:`x_i = \mu_{k_i} + \sqrt{s_2}(B b_i + r_i)`, :math:`b_i \sim N(0, I_p)`, :math:`r_i`
orthogonal to the span with :math:`q_i = \|r_i\|^2 \sim \chi^2_{d-p}`, and
:math:`v_i = \mu_{k_i} - \mu_{k_j} + \sqrt{s_2}(B b_i - z_j)`. The directions of the
:math:`r_i` are uniform and independent of everything else, so the cross terms vanish in
expectation and

.. math:: E\,\|f_{pmem,M}(x_t) - x_j\|^2 = E\Big[\|\textstyle\sum_i w_i v_i\|^2
          + s_2 \sum_i w_i^2 q_i\Big]

**exactly** (a memorized :math:`j` is its own term with :math:`v = 0`, :math:`q = 0`,
:math:`E = 0`). In the span, :math:`z_j` has coordinates :math:`(a, \rho_z, 0)` with
:math:`a \sim N(0, I_K)`, :math:`\rho_z^2 \sim \chi^2_{d-K}`, and :math:`\epsilon` has
:math:`(c, \rho_\epsilon)` with :math:`c \sim N(0, I_{K+1})`, :math:`\rho_\epsilon^2 \sim
\chi^2_{d-K-1}`; the means are a draw of ``K`` points on the sphere of radius :math:`\sqrt d`
(as :func:`~memcross.validation.data.make_gmm_data` draws them), held by their Gram matrix. A
sample costs :math:`O(N p)`, not :math:`O(N d)`. The generalizer's loss is its exact posterior
mean error in the same span, confusion between components at high noise included.

The training loss of :math:`f_{pmem,M}` averages a memorized point (weight :math:`M/N`) and a
non-memorized one (:math:`1 - M/N`). All sizes share the same samples (common random numbers), so
the weighted gap is smooth in ``M``; its root is interpolated between the sizes of a grid, and its
Monte Carlo standard error is carried to ``M*/N`` through the slope.

**Coloured templates, exactly in colour space.** A point is :math:`c_i \otimes u_{k_i}` with a
colour :math:`c_i \sim N(0, s_c^2 I_3)`. Every inner product factors into a colour inner product
times a template one (:math:`g_{kl} = \langle u_k, u_l\rangle`): :math:`D_{ij} = n_{k_i}\|c_i\|^2
+ n_{k_j}\|c_j\|^2 - 2 g_{k_i k_j} c_i\cdot c_j`, and the noise enters only through the
3-vectors :math:`e_k = E u_k` (``E`` the noise as a ``3 x P`` matrix), jointly Gaussian with
covariance :math:`g_{kl} I_3`, so :math:`\langle x_i, \epsilon\rangle = c_i\cdot e_{k_i}`. A
weighted sum of points is :math:`\sum_l C_l \otimes u_l` with :math:`C_l = \sum_{i: k_i = l}
w_i c_i`, and :math:`\|\sum_l C_l\otimes u_l - c_j\otimes u_{k_j}\|^2 = \sum_{lm} g_{lm}
C_l\cdot C_m - 2\sum_l g_{l k_j} C_l\cdot c_j + n_{k_j}\|c_j\|^2`. The generalizer is the
mixture's posterior mean through the projections :math:`p_k = Y u_k` (Sherman-Morrison per
channel). Nothing of dimension ``3P`` is formed; the result is exact in expectation.

**Large N.** Drawing every training point costs ``samples x times x sizes x N x p``: about a
second at ``N = 200``, growing like ``N^2`` (``N`` points at ``~N`` sizes). From
:data:`POPULATION_N` on, only the points near each query are drawn (about ``INSIDE`` = 64 of
``N``, exactly from the Gaussian conditioned on a ball) and the rest enter through their
closed-form expectation and variance (:mod:`memcross.numerics.population`); the sizes are then
fractions 0.1 to 1 of ``N`` and the cost ``samples x times x (INSIDE + K) x p`` does not depend on
``N`` (about half a second at any ``N`` for the paper's setting).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from memcross.numerics import population

#: Monte Carlo samples per time and mean draw, and mean draws.
SAMPLES = 64
MEAN_DRAWS = 2
#: Model sizes on the grid whose root is interpolated.
SIZE_GRID = 25
#: The largest N that drawing every point takes (its cost grows like N^2; past it, the population method).
MAX_N = 20_000


@dataclass(frozen=True)
class FiniteSNRLosses:
    """Expected per-time training losses (x0 units) at ``psi`` (``T`` values) for the sizes ``Ms``:
    ``pmem[m, t]`` of :math:`f_{pmem,M_m}` (``Ms[-1] = N``: the memorizer), ``gen[t]`` of the
    generalizer, and their Monte Carlo standard errors ``pmem_se``, ``gen_se``. ``gap_samples``
    holds the per-sample weighted gaps used for the error of the root."""

    psi: np.ndarray
    Ms: np.ndarray
    pmem: np.ndarray
    gen: np.ndarray
    pmem_se: np.ndarray
    gen_se: np.ndarray
    samples: np.ndarray  # (n, sizes, T): per-sample pmem loss minus generalizer loss

    def excess_partial_memorizer(self) -> np.ndarray:
        """:math:`E L_t(f_{pmem,M}) - E L_t(f_{mem})` per size and time."""
        return self.pmem - self.pmem[-1]

    def excess_generalizer(self) -> np.ndarray:
        """:math:`E L_t(f_{gen}) - E L_t(f_{mem})` per time."""
        return self.gen - self.pmem[-1]


def size_grid(N: int, count: int = SIZE_GRID) -> np.ndarray:
    """``count`` sizes from 1 to ``N`` (dense near ``N``, where crossovers sit), ``N`` last."""
    fractions = np.linspace(0, 1, count) ** 0.7
    return np.unique(np.clip(np.round(1 + fractions * (N - 1)).astype(int), 1, N))


def _means_coordinates(d: int, K: int, rng: np.random.Generator) -> np.ndarray:
    """``K`` points uniform on the sphere of radius sqrt(d), as coordinates ``(K, K)`` in an
    orthonormal basis of their span (Cholesky of their Gram matrix)."""
    g = rng.standard_normal((K, d))
    mu = np.sqrt(d) * g / np.linalg.norm(g, axis=1, keepdims=True)
    gram = mu @ mu.T
    w, V = np.linalg.eigh(gram)
    return V * np.sqrt(np.clip(w, 0, None))  # rows: coordinates with the same Gram matrix


def isotropic_losses(d: int, K: int, N: int, s2: float, psi, Ms=None, samples: int = SAMPLES,
                     mean_draws: int = MEAN_DRAWS, seed: int = 0) -> FiniteSNRLosses:
    """Expected per-time training losses of the partial memorizers ``Ms`` (default
    :func:`size_grid`) and of the generalizer for the isotropic mixture, at SNRs ``psi``."""
    if d < K + 3:
        raise ValueError(f"finite-snr needs d >= K + 3 (the span of the means, the point and the noise), "
                         f"got d = {d}, K = {K}")
    if N > MAX_N:
        raise ValueError(f"finite-snr drawing every point: N = {N} is beyond {MAX_N:,} (the cost grows like "
                         "N^2); the population method takes any N")
    psi = np.atleast_1d(np.asarray(psi, dtype=float))
    Ms = size_grid(N) if Ms is None else np.asarray(Ms, dtype=int)
    rng = np.random.default_rng(seed)
    p = K + 2
    rows = []  # per sample: (pmem per size and time, generalizer per time)
    sq = np.sqrt(psi)
    for _ in range(mean_draws):
        mu = np.zeros((K, p))
        mu[:, :K] = _means_coordinates(d, K, rng)
        for _ in range(samples):
            kj = rng.integers(K)
            z = np.zeros(p)
            z[:K] = rng.standard_normal(K)
            z[K] = np.sqrt(rng.chisquare(d - K))
            eps = np.zeros(p)
            eps[:K + 1] = rng.standard_normal(K + 1)
            eps[K + 1] = np.sqrt(rng.chisquare(d - K - 1))
            xj = mu[kj] + np.sqrt(s2) * z
            # the other N - 1 training points, in the nested order of memorization
            labels = rng.integers(K, size=N - 1)
            b = rng.standard_normal((N - 1, p))
            q = rng.chisquare(d - p, size=N - 1)
            v = mu[labels] + np.sqrt(s2) * b - xj  # x_i - x_j within the span
            D = (v**2).sum(1) + s2 * q
            proj = v @ eps
            energy = psi[:, None] * D[None, :] / 2 - sq[:, None] * proj[None, :]  # (T, N-1)
            pm = np.empty((len(Ms), len(psi)))
            for m, M in enumerate(Ms):
                # a memorized x_j: itself (energy 0) and M - 1 others; a non-memorized one: M others
                own = _loss(energy[:, :M - 1], v[:M - 1], q[:M - 1], s2, self_term=True)
                other = _loss(energy[:, :M], v[:M], q[:M], s2, self_term=False) if M < N else 0.0
                pm[m] = (M / N) * own + (1 - M / N) * other
            rows.append((pm, _generalizer_loss(mu, kj, z, eps, s2, psi)))
    pmem = np.stack([r[0] for r in rows])  # (n, sizes, T)
    gen = np.stack([r[1] for r in rows])  # (n, T)
    n = len(rows)
    return FiniteSNRLosses(psi, Ms, pmem.mean(0), gen.mean(0), pmem.std(0, ddof=1) / np.sqrt(n),
                           gen.std(0, ddof=1) / np.sqrt(n), pmem - gen[:, None, :])


def isotropic_losses_population(d: int, K: int, N: int, s2: float, psi, Ms=None, samples: int = SAMPLES,
                                mean_draws: int = MEAN_DRAWS, seed: int = 0,
                                inside: int = population.INSIDE) -> FiniteSNRLosses:
    """:func:`isotropic_losses` for large ``N``: the points near each query drawn, the rest in
    expectation (:mod:`memcross.numerics.population`); the cost does not grow with ``N``."""
    if d < K + 3:
        raise ValueError(f"finite-snr needs d >= K + 3 (the span of the means, the point and the noise), "
                         f"got d = {d}, K = {K}")
    psi = np.atleast_1d(np.asarray(psi, dtype=float))
    Ms = size_grid(N) if Ms is None else np.asarray(Ms, dtype=int)
    p, T = K + 2, len(psi)
    prior = np.full(K, 1 / K)
    S = samples

    def one_draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        mu = np.zeros((K, p))
        mu[:, :K] = _means_coordinates(d, K, rng)
        kj = rng.integers(K, size=S)
        z = np.zeros((S, p))
        z[:, :K] = rng.standard_normal((S, K))
        z[:, K] = np.sqrt(rng.chisquare(d - K, size=S))
        eps = np.zeros((S, p))
        eps[:, :K + 1] = rng.standard_normal((S, K + 1))
        eps[:, K + 1] = np.sqrt(rng.chisquare(d - K - 1, size=S))
        xj = mu[kj] + np.sqrt(s2) * z
        # one query per (sample, time): Q = S T rows
        psi_q = np.tile(psi, S)
        shift = (eps[:, None, :] / np.sqrt(psi)[None, :, None]).reshape(S * T, p)  # y - x_j
        a = mu[None, :, :] - (np.repeat(xj, T, 0) + shift)[:, None, :]  # (Q, K, p): mean - query
        e_self = np.repeat((eps**2).sum(1) / 2, T)
        pm = _population_pmem(a, np.full(a.shape[:2], float(s2)), d, prior, shift, e_self, psi_q, N, Ms, rng,
                              inside)
        gen = np.stack([_generalizer_loss(mu, kj[i], z[i], eps[i], s2, psi) for i in range(S)])
        return pm.reshape(S, T, len(Ms)).transpose(0, 2, 1), gen

    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(mean_draws)]
    with ThreadPoolExecutor(max_workers=min(mean_draws, os.cpu_count() or 1)) as pool:  # numpy frees the GIL
        rows = list(pool.map(one_draw, rngs))
    pmem, gen = np.concatenate([r[0] for r in rows]), np.concatenate([r[1] for r in rows])
    n = len(gen)
    return FiniteSNRLosses(psi, Ms, pmem.mean(0), gen.mean(0), pmem.std(0, ddof=1) / np.sqrt(n),
                           gen.std(0, ddof=1) / np.sqrt(n), pmem - gen[:, None, :])


def _scales(c, r, none, m, e_self, own: bool):
    """Per query and size, the common log scale of a softmax sum and each part's factor on it:
    ``(log_rest, scale, top, rest, w_self)``. ``c``: the inside points' largest log weight
    (``(Q, S)``); ``r``: the log of one outside point's expected weight (``none``: there is
    none); ``m``: the sizes' counts of other points; ``own``: the point itself (log weight
    ``-e_self``) is in the sum."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        log_rest = np.where(none[:, None], -np.inf, np.log(m) + r[:, None])
        scale = np.maximum(c, log_rest)
        if own:
            scale = np.maximum(scale, -e_self[:, None])
        top = np.where(np.isfinite(c), np.exp(c - scale), 0.0)
        rest = np.where(np.isfinite(log_rest), np.exp(r[:, None] - scale), 0.0)  # e^{r - scale}
        w_self = np.exp(-e_self[:, None] - scale) if own else np.zeros_like(top)
    return log_rest, scale, top, rest, w_self


def _rescaled(value: np.ndarray, log_scale: np.ndarray, scale: np.ndarray, log_rest: np.ndarray) -> np.ndarray:
    """``value * e^{log_scale - 2 scale}`` per query and size, formed in logs (0 where ``value`` is
    0 or there is no outside part)."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        out = np.exp(np.log(value)[:, None] + log_scale[:, None] - 2 * scale)
    return np.where(np.isfinite(log_rest) & (value[:, None] > 0), out, 0.0)


def _population_pmem(a, var, n, prior, shift, e_self, psi, N, Ms, rng, inside) -> np.ndarray:
    r"""The partial memorizers' loss per query and size, ``(Q, sizes)``, for queries whose other
    points are the mixture :math:`\sum_k \pi_k N(a_k, \sigma_k^2 I_n)` as offsets from the query
    :math:`y = x_j + \text{shift}` (``a``: ``(Q, K, span)``), energies
    :math:`\tfrac{\psi}{2}\|x_i - y\|^2` and the point itself at energy ``e_self``."""
    R2 = population.radius2((a**2).sum(-1), var, n, prior, N - 1, inside)
    pts = population.draw_inside(a, var, R2, prior, n, N - 1, rng)
    energy = psi[:, None] / 2 * ((pts.X**2).sum(-1) + pts.rest2)  # (Q, L)
    beta = psi[:, None]
    t1 = population.tilt(a, var, beta, R2, n, 1)
    t2 = population.tilt(a, var, beta, R2, n, 2)
    r = t1.log_mass(prior)  # log E[e^{-E} 1{outside}] per point
    none = ~np.isfinite(r)
    r = np.where(none, 0.0, r)
    mass = np.where(none[:, None], 0.0, prior * t1.mass(r))  # (Q, K), summing to 1 (or 0)
    B = (prior[:, None] * t1.first(r) + mass[..., None] * shift[:, None, :]).sum(1)  # (Q, span)
    B = np.where(none[:, None], 0.0, B)
    r2, S2 = population.second_moment(t2, shift, n, prior)  # e^{r2} S2 = E[e^{-2E} |x - x_j|^2 1{outside}]
    B2 = np.where(none, 0.0, (B**2).sum(-1))
    v = pts.X + shift[:, None, :]  # x_i - x_j in the span
    first = np.concatenate([np.ones_like(energy)[..., None], v], -1)
    pm = np.zeros((len(psi), len(Ms)))
    for own, others in ((True, Ms - 1), (False, Ms)):
        c, s1, s2_ = population.prefix_sums(pts, -energy, first, pts.rest2, np.minimum(others, N - 1))
        m = others[None, :].astype(float)  # (1, S)
        log_rest, scale, top, rest, w_self = _scales(c, r, none, m, e_self, own)
        Z = s1[..., 0] * top + m * rest + w_self
        V = s1[..., 1:] * top[..., None] + (m * rest)[..., None] * B[:, None, :]
        W2 = s2_ * top**2 + m * (_rescaled(S2, r2, scale, log_rest) - B2[:, None] * rest**2)  # outside variance
        loss = ((V**2).sum(-1) + np.clip(W2, 0, None)) / np.where(Z > 0, Z, 1) ** 2  # (Q, S)
        share = Ms / N if own else 1 - Ms / N
        pm += share[None, :] * np.where(others[None, :] > 0, loss, 0.0)
    return pm


def _softmax(energy: np.ndarray, self_term: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(w, w_self)`` per time: ``softmax(-energy)`` over the columns, with one more term of
    energy 0 (the memorized point itself) when ``self_term`` (else ``w_self`` is 0)."""
    low = energy.min(1, keepdims=True)
    if self_term:
        low = np.minimum(low, 0.0)
    w = np.exp(-(energy - low))
    w_self = np.exp(low[:, 0]) if self_term else np.zeros(energy.shape[0])
    total = w.sum(1) + w_self
    return w / total[:, None], w_self / total


def _loss(energy: np.ndarray, v: np.ndarray, q: np.ndarray, s2: float, self_term: bool) -> np.ndarray:
    r""":math:`\|\sum_i w_i v_i\|^2 + s_2\sum_i w_i^2 q_i` per time, ``w = softmax(-energy)`` over the
    columns (plus a term of energy 0 with :math:`v = 0`, :math:`q = 0` when ``self_term``)."""
    if energy.shape[1] == 0:
        return np.zeros(energy.shape[0])  # only the point itself: no error
    w, _ = _softmax(energy, self_term)
    mean = w @ v
    return (mean**2).sum(1) + s2 * (w**2) @ q


def _generalizer_loss(mu: np.ndarray, kj: int, z: np.ndarray, eps: np.ndarray, s2: float,
                      psi: np.ndarray) -> np.ndarray:
    r"""The generalizer's error :math:`\|E[x_0 \mid x_t] - x_j\|^2` per time (x0 units): the
    posterior over components (uniform priors) and each component's Gaussian posterior mean."""
    xj = mu[kj] + np.sqrt(s2) * z
    y = xj[None, :] + eps[None, :] / np.sqrt(psi)[:, None]  # x_t / alpha: (T, p)
    var = s2 + 1 / psi  # the variance of y given the component, per coordinate
    diff = y[:, None, :] - mu[None, :, :]  # (T, K, p)
    logits = -(diff**2).sum(2) / (2 * var[:, None])
    logits -= logits.max(1, keepdims=True)
    post = np.exp(logits)
    post /= post.sum(1, keepdims=True)
    shrink = (s2 / var)[:, None, None]
    means = mu[None, :, :] + shrink * diff  # E[x_0 | y, k]
    f = (post[:, :, None] * means).sum(1)
    return ((f - xj[None, :]) ** 2).sum(1)


def colored_losses(templates, sc2: float, N: int, psi, Ms=None, samples: int = SAMPLES * MEAN_DRAWS,
                   seed: int = 0) -> FiniteSNRLosses:
    """Expected per-time training losses of the partial memorizers ``Ms`` and of the generalizer
    for coloured templates (zero colour means, uniform priors), at SNRs ``psi``."""
    if N > MAX_N:
        raise ValueError(f"finite-snr drawing every point: N = {N} is beyond {MAX_N:,} (the cost grows like "
                         "N^2); the population method takes any N")
    u = np.asarray(templates, dtype=float)
    K = u.shape[0]
    G = u @ u.T
    n = np.diag(G).copy()
    w_, V = np.linalg.eigh(G)
    root = V * np.sqrt(np.clip(w_, 0, None))  # root @ root.T = G: e = root @ standard normals
    psi = np.atleast_1d(np.asarray(psi, dtype=float))
    sq = np.sqrt(psi)
    Ms = size_grid(N) if Ms is None else np.asarray(Ms, dtype=int)
    rng = np.random.default_rng(seed)
    sd = np.sqrt(sc2)
    rows = []
    for _ in range(samples):
        kj = rng.integers(K)
        cj = sd * rng.standard_normal(3)
        e = root @ rng.standard_normal((K, 3))  # (K, 3): E u_k
        labels = rng.integers(K, size=N - 1)
        c = sd * rng.standard_normal((N - 1, 3))
        D = n[labels] * (c**2).sum(1) + n[kj] * (cj @ cj) - 2 * G[labels, kj] * (c @ cj)
        proj = (c * e[labels]).sum(1) - cj @ e[kj]  # <x_i - x_j, eps>
        energy = psi[:, None] * D[None, :] / 2 - sq[:, None] * proj[None, :]
        onehot = np.eye(K)[labels]  # (N - 1, K)
        pm = np.empty((len(Ms), len(psi)))
        for m, M in enumerate(Ms):
            own = _colored_loss(energy[:, :M - 1], onehot[:M - 1], c[:M - 1], G, kj, cj, self_term=True)
            other = (_colored_loss(energy[:, :M], onehot[:M], c[:M], G, kj, cj, self_term=False)
                     if M < N else 0.0)
            pm[m] = (M / N) * own + (1 - M / N) * other
        rows.append((pm, _colored_generalizer_loss(G, n, kj, cj, e, sc2, psi)))
    pmem = np.stack([r[0] for r in rows])
    gen = np.stack([r[1] for r in rows])
    k = len(rows)
    return FiniteSNRLosses(psi, Ms, pmem.mean(0), gen.mean(0), pmem.std(0, ddof=1) / np.sqrt(k),
                           gen.std(0, ddof=1) / np.sqrt(k), pmem - gen[:, None, :])


def colored_losses_population(templates, sc2: float, N: int, psi, Ms=None, samples: int = SAMPLES * MEAN_DRAWS,
                              seed: int = 0, inside: int = population.INSIDE) -> FiniteSNRLosses:
    """:func:`colored_losses` for large ``N``: per template, the colours near each query drawn
    and the rest in expectation (:mod:`memcross.numerics.population`); the cost does not grow
    with ``N``. A point of template ``l`` is, in :math:`z = \\sqrt{n_l}\\,c`, Gaussian
    :math:`N(0, n_l s_c^2 I_3)` at energy :math:`\\tfrac{\\psi}{2}(\\|z - o_l\\|^2 - \\|o_l\\|^2)`
    with :math:`o_l = p_l/\\sqrt{n_l}` (the common :math:`\\|y\\|^2` dropped)."""
    u = np.asarray(templates, dtype=float)
    K = u.shape[0]
    G = u @ u.T
    n = np.diag(G).copy()
    w_, V = np.linalg.eigh(G)
    root = V * np.sqrt(np.clip(w_, 0, None))
    psi = np.atleast_1d(np.asarray(psi, dtype=float))
    Ms = size_grid(N) if Ms is None else np.asarray(Ms, dtype=int)
    T = len(psi)
    prior = np.full(K, 1 / K)
    halves = [samples // 2, samples - samples // 2]

    def one_half(args) -> tuple[np.ndarray, np.ndarray]:
        S, rng = args
        kj = rng.integers(K, size=S)
        cj = np.sqrt(sc2) * rng.standard_normal((S, 3))
        e = np.einsum("kl,slc->skc", root, rng.standard_normal((S, K, 3)))  # (S, K, 3): E u_k
        gen = np.stack([_colored_generalizer_loss(G, n, kj[i], cj[i], e[i], sc2, psi) for i in range(S)])
        # one query per (sample, time)
        psi_q = np.tile(psi, S)
        kq, cq = np.repeat(kj, T), np.repeat(cj, T, 0)
        p = G[:, kq].T[..., None] * cq[:, None, :] + np.repeat(e, T, 0) / np.sqrt(psi_q)[:, None, None]
        o = p / np.sqrt(n)[None, :, None]  # (Q, K, 3)
        o2 = (o**2).sum(-1)
        var = np.broadcast_to(n * sc2, o2.shape)
        e_self = psi_q / 2 * (n[kq] * (cq**2).sum(1) - 2 * (cq * p[np.arange(len(kq)), kq]).sum(1))
        R2 = population.radius2(o2, var, 3, prior, N - 1, inside, offset=o2)
        pts = population.draw_inside(-o, var, R2, prior, 3, N - 1, rng)
        qi = np.arange(len(psi_q))[:, None]
        o_lab = o[qi, pts.label]  # (Q, L, 3)
        energy = psi_q[:, None] / 2 * ((pts.X**2).sum(-1) - (o_lab**2).sum(-1))
        colour = (pts.X + o_lab) / np.sqrt(n[pts.label])[..., None]  # c_i
        first = np.concatenate([np.ones_like(energy)[..., None],
                                (np.eye(K)[pts.label][..., None] * colour[:, :, None, :]).reshape(*energy.shape, 3 * K)],
                               -1)
        t1, t2 = (replace(t, log_pref=t.log_pref + power * psi_q[:, None] / 2 * o2) for power, t in
                  ((1, population.tilt(-o, var, psi_q[:, None], R2, 3, 1)),
                   (2, population.tilt(-o, var, psi_q[:, None], R2, 3, 2))))
        r = t1.log_mass(prior)
        none = ~np.isfinite(r)
        r = np.where(none, 0.0, r)
        # per template: E[e^{-E} c 1{outside}] and the second moment E[e^{-2E} n_l |c|^2 1{outside}]
        B = prior[:, None] * (t1.first(r) + o * t1.mass(r)[..., None]) / np.sqrt(n)[:, None]  # (Q, K, 3)
        B = np.where(none[:, None, None], 0.0, B)
        r2, S2 = population.second_moment(t2, o, 3, prior)  # e^{r2} S2 = E[e^{-2E} n_l |c|^2 1{outside}]
        B2 = np.einsum("qlc,qmc,lm->q", B, B, G)
        A = np.where(none, 0.0, (prior * t1.mass(r)).sum(1))
        pm = np.zeros((len(psi_q), len(Ms)))
        for own, others in ((True, Ms - 1), (False, Ms)):
            c, s1, _ = population.prefix_sums(pts, -energy, first, np.zeros_like(energy), np.minimum(others, N - 1))
            m = others[None, :].astype(float)
            log_rest, scale, top, rest, w_self = _scales(c, r, none, m, e_self, own)
            Z = s1[..., 0] * top + m * rest * A[:, None] + w_self
            C = (s1[..., 1:] * top[..., None]).reshape(*top.shape, K, 3) + (m * rest)[..., None, None] * B[:, None]
            C[np.arange(len(kq)), :, kq] += w_self[..., None] * cq[:, None, :]
            Zs = np.where(Z > 0, Z, 1)
            C = C / Zs[..., None, None]
            err = (np.einsum("qslc,qsmc,lm->qs", C, C, G) - 2 * np.einsum("qslc,qc,lq->qs", C, cq, G[:, kq])
                   + (n[kq] * (cq**2).sum(1))[:, None])
            loss = err + m * np.clip(_rescaled(S2, r2, scale, log_rest) - B2[:, None] * rest**2, 0, None) / Zs**2
            share = Ms / N if own else 1 - Ms / N
            pm += share[None, :] * np.where(others[None, :] > 0, loss, 0.0)
        return pm.reshape(S, T, len(Ms)).transpose(0, 2, 1), gen

    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)]
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        rows = list(pool.map(one_half, zip(halves, rngs)))
    pmem, gen = np.concatenate([r[0] for r in rows]), np.concatenate([r[1] for r in rows])
    k = len(gen)
    return FiniteSNRLosses(psi, Ms, pmem.mean(0), gen.mean(0), pmem.std(0, ddof=1) / np.sqrt(k),
                           gen.std(0, ddof=1) / np.sqrt(k), pmem - gen[:, None, :])


def _colored_error(C: np.ndarray, G: np.ndarray, kj: int, cj: np.ndarray) -> np.ndarray:
    r""":math:`\|\sum_l C_l \otimes u_l - c_j \otimes u_{k_j}\|^2` per time, ``C`` of shape ``(T, K, 3)``."""
    cross = np.einsum("tlc,tmc,lm->t", C, C, G)
    return cross - 2 * np.einsum("tlc,c,l->t", C, cj, G[:, kj]) + G[kj, kj] * (cj @ cj)


def _colored_loss(energy, onehot, c, G, kj, cj, self_term: bool) -> np.ndarray:
    """The empirical denoiser's error per time for coloured templates (see :func:`_loss`)."""
    if energy.shape[1] == 0:
        return np.zeros(energy.shape[0])
    w, w_self = _softmax(energy, self_term)
    C = np.einsum("tm,mk,mc->tkc", w, onehot, c)
    C[:, kj, :] += w_self[:, None] * cj[None, :]
    return _colored_error(C, G, kj, cj)


def _colored_generalizer_loss(G, n, kj, cj, e, sc2, psi) -> np.ndarray:
    """The coloured mixture's posterior-mean error per time (x0 units)."""
    noise = 1 / psi  # per-coordinate noise variance of y = x_t / alpha
    p = G[kj][None, :, None] * cj[None, None, :] + e[None, :, :] / np.sqrt(psi)[:, None, None]  # (T, K, 3)
    denom = noise[:, None] + sc2 * n[None, :]  # (T, K)
    logits = sc2 * (p**2).sum(2) / (2 * noise[:, None] * denom) - 1.5 * np.log(denom)
    logits -= logits.max(1, keepdims=True)
    post = np.exp(logits)
    post /= post.sum(1, keepdims=True)
    C = (post * sc2 / denom)[:, :, None] * p  # posterior weight x E[c | y, k]
    return _colored_error(C, G, kj, cj)


#: From this ``N`` on, the isotropic losses draw only the points near each query
#: (:func:`isotropic_losses_population`); below it, all of them.
POPULATION_N = 2000
#: The population method's sizes: fractions of ``N`` (it needs ``INSIDE`` times the smallest
#: fraction of points near each query, about 13 here).
POPULATION_FRACTIONS = np.linspace(0.1, 1.0, 19)


def population_sizes(N: int) -> np.ndarray:
    """The sizes the population method evaluates: :data:`POPULATION_FRACTIONS` of ``N``."""
    return np.unique(np.round(POPULATION_FRACTIONS * N).astype(int))


#: The data models whose finite-SNR losses are modelled.
DATA_MODELS = ("isotropic", "colored-templates")


def has_finite_snr(model) -> bool:
    """Whether :func:`losses_of` models ``model``'s losses."""
    return model.name in DATA_MODELS


#: The variances the Monte Carlo takes (float64 squares of distances stay finite within it).
VARIANCE_RANGE = (1e-30, 1e30)


def losses_of(model, psi, population_method: bool | None = None) -> FiniteSNRLosses:
    """The finite-SNR losses of a data model (``isotropic`` or ``colored-templates``) at ``psi``; a
    ValueError naming the model where it has none. ``population_method`` (default: from
    :data:`POPULATION_N` on) draws only the points near each query."""
    variance = float(model.s2) if model.name == "isotropic" else float(model.params.get("sc2", 1.0))
    if not VARIANCE_RANGE[0] <= variance <= VARIANCE_RANGE[1]:
        name = "s2" if model.name == "isotropic" else "sc2"
        raise ValueError(f"method 'finite-snr' takes {name} in [{VARIANCE_RANGE[0]:g}, {VARIANCE_RANGE[1]:g}] "
                         f"(its Monte Carlo is in float64), got {variance:g}; use --method asymptotic")
    if model.name == "isotropic":
        use = model.N >= POPULATION_N if population_method is None else population_method
        if use:
            return isotropic_losses_population(model.d, model.K, model.N, float(model.s2), psi,
                                               Ms=population_sizes(model.N))
        return isotropic_losses(model.d, model.K, model.N, float(model.s2), psi)
    if model.name == "colored-templates":
        use = model.N >= POPULATION_N if population_method is None else population_method
        if use:
            return colored_losses_population(model.templates, model.params["sc2"], model.N, psi,
                                             Ms=population_sizes(model.N))
        return colored_losses(model.templates, model.params["sc2"], model.N, psi)
    raise ValueError(f"method 'finite-snr' is not available for data {model.name!r} (isotropic and "
                     "colored-templates only); use --method asymptotic")
