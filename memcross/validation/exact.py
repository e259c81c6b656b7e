r"""Exact finite-sample losses of the analytic denoisers, and the exact crossover (no training).

For one sampled data set, at each time :math:`t` of the measure's quadrature, Monte-Carlo (over
``draws`` noise draws per point) training and validation losses, in x0 units,

.. math:: L_t(f) = \frac1N \sum_i E_z \|f(t, \alpha_t x^i + \sigma_t z) - x^i\|^2 ,

of the generalizer and of the partial memorizer for **every** size ``M = 1..N`` (``M = N`` is
the memorizer). The subsets are nested (the first ``M`` points of one seeded permutation) and every
model sees the same noise (common random numbers), so all sizes come from one pass over the
permuted points: an online log-sum-exp keeps, for each noisy query, the running maximum logit,
the normalizer and the weighted sum of the points seen so far; after point ``M`` these give the
partial memorizer of size ``M`` exactly.

The exact crossover for an x0-unit weight :math:`\lambda` is the smallest ``M`` with
:math:`\sum_t w_t \lambda_t [L_t(f_{pmem,M}) - L_t(f_{gen})] \le 0` (interpolated linearly
between ``M - 1`` and ``M`` for the reported ratio). The measured coefficient is
:math:`C(M) = [L_t(f_{pmem,M}) - L_t(f_{mem})] / ((1 - M/N) d s_2)`, averaged over the times
where the memorizer has collapsed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from memcross._checks import check_int, check_seed
from memcross.theory.datamodels import COLLAPSE_FACTOR
from memcross.validation.data import check_memory
from memcross.validation.denoisers import generalizer
from memcross.validation.process import INTERVAL_NODES, TimeTable

#: Queries per chunk of the online pass: at most QUERY_CHUNK, and fewer where the chunk's logits
#: (``4 q N`` floats) would pass CHUNK_BYTES, so that large N runs in bounded memory.
QUERY_CHUNK = 16384
CHUNK_BYTES = 256 * 2**20


def query_chunk(N: int, d: int, itemsize: int = 8) -> int:
    """Queries per chunk of the online pass for ``N`` points in dimension ``d``."""
    return max(1, min(QUERY_CHUNK, CHUNK_BYTES // (itemsize * (4 * N + 6 * d))))


def exact_memory(d: int, N: int, draws: int, n_times: int, generalizer_copies: int = 4,
                 itemsize: int = 8) -> int:
    """Bytes the exact losses of :func:`exact_losses` hold at their peak, about.

    Per time, the noise of every query (``draws * N * d`` float64 numbers, drawn one time at a
    time), and the queries and the generalizer ``(4 + generalizer_copies) * draws * N * d`` more (the
    isotropic posterior mean about 4 copies, the coloured Woodbury one about ``5 K``); per chunk of
    ``q = min(query_chunk(N, d), draws N)`` queries, the prefix pass holds ``4 q N + 6 q d`` (logits
    with their temporaries, the per-size losses); the data
    set itself ``4 N d``.
    """
    queries = draws * N
    q = min(query_chunk(N, d, itemsize), queries)
    noise = 8 * queries * d + (itemsize * queries * d if itemsize != 8 else 0)
    per_time = itemsize * (4 + generalizer_copies) * queries * d
    chunk = itemsize * (4 * q * N + 6 * q * d)
    return int(noise + per_time + chunk + 8 * 4 * N * d)


def check_exact_memory(d: int, N: int, draws: int, n_times: int, generalizer_copies: int = 4,
                       itemsize: int = 8) -> None:
    """Refuse exact losses whose :func:`exact_memory` exceeds what this machine has free."""
    need = exact_memory(d, N, draws, n_times, generalizer_copies, itemsize)
    check_memory(need, f"exact: (d, N) = ({d}, {N}) with {draws} noise draws at {n_times} times",
                 "--dim/--train/--draws")


def check_exact_inputs(setting, draws, seed) -> None:
    """Everything ``memcross exact`` can refuse before it draws data or opens a store: ``--draws``
    (a positive integer), ``--seed`` (:func:`~memcross._checks.check_seed`), a data model
    without a sampler, and the memory of the exact losses (:func:`check_exact_memory`; the
    dimension is the setting's, ``3 P`` for coloured templates)."""
    from memcross.validation.datamodels import validation_model

    check_int(draws, "--draws")
    check_seed(seed, "--seed")
    copies = validation_model(setting).generalizer_copies(setting.K)
    measure = setting.measure
    n_times = len(measure.points) if hasattr(measure, "points") else INTERVAL_NODES
    check_exact_memory(setting.d, setting.N, draws, n_times, generalizer_copies=copies)


@dataclass(frozen=True)
class ExactLosses:
    """Per-time losses (x0 units) of the analytic denoisers on one data set.

    ``pmem_train[M - 1, i]`` is the training loss of the partial memorizer of size ``M`` at time
    ``table.t[i]``; ``pmem_train[N - 1]`` is the memorizer's. ``*_val`` are the same on held-out
    points (``None`` when not computed).
    """

    table: TimeTable
    d: int
    K: int
    N: int
    s2: float
    draws: int
    gen_train: np.ndarray
    pmem_train: np.ndarray
    gen_val: np.ndarray | None = None
    pmem_val: np.ndarray | None = None
    theory_gen: np.ndarray | None = None
    pair_scale: float | None = None

    @property
    def mem_train(self) -> np.ndarray:
        """The memorizer's per-time training loss: ``pmem_train[N - 1]``."""
        return self.pmem_train[-1]

    def excess_generalizer(self) -> np.ndarray:
        """Measured :math:`L_t(f_{gen}) - L_t(f_{mem})` per time."""
        return self.gen_train - self.mem_train

    def theory_excess_generalizer(self) -> np.ndarray:
        r"""The theory's excess at the same times: the data model's within-component MMSE
        (Theorem 3.1, :math:`d s_2 / (1 + \psi_t s_2)`, for the isotropic mixture)."""
        if self.theory_gen is not None:
            return self.theory_gen
        return self.d * self.s2 / (1 + self.table.psi * self.s2)

    def collapsed(self) -> np.ndarray:
        """Times where the memorizer has collapsed: ``psi_t * pair_scale >= c log N`` (``pair_scale =
        2 d s2`` for the isotropic mixture)."""
        scale = 2 * self.d * self.s2 if self.pair_scale is None else self.pair_scale
        return scale * self.table.psi >= COLLAPSE_FACTOR * math.log(self.N)

    def excess_partial_memorizer(self) -> np.ndarray:
        """Measured :math:`L_t(f_{pmem,M}) - L_t(f_{mem})` averaged over collapsed times, ``M = 1..N``."""
        mask = self.collapsed()
        if not mask.any():
            raise ValueError("no time of the measure has a collapsed memorizer")
        return (self.pmem_train - self.mem_train)[:, mask].mean(axis=1)

    def coefficient(self, M: int | None = None) -> np.ndarray | float:
        """Measured :math:`C(M)` averaged over collapsed times (all ``M < N`` when ``M`` is None)."""
        sizes = np.arange(1, self.N)
        mask = self.collapsed()
        if not mask.any():
            raise ValueError("no time of the measure has a collapsed memorizer; C(M) is undefined there")
        excess = (self.pmem_train[:-1, :] - self.mem_train)[:, mask].mean(axis=1)
        c = excess / ((1 - sizes / self.N) * self.d * self.s2)
        if M is None:
            return c
        if not 1 <= M < self.N:
            raise ValueError(f"M must be in [1, N - 1] = [1, {self.N - 1}] for C(M), got {M}")
        return float(c[M - 1])

    def weighted_gap(self, lam: np.ndarray | None = None) -> np.ndarray:
        r""":math:`g(M) = \sum_t w_t\lambda_t [L_t(f_{pmem,M}) - L_t(f_{gen})]` for ``M = 1..N``."""
        lam = self.table.lam if lam is None else np.asarray(lam, dtype=float)
        ww = self.table.w * lam
        return (self.pmem_train - self.gen_train) @ ww

    def crossover(self, lam: np.ndarray | None = None) -> tuple[float, int]:
        """``(M*/N interpolated, smallest integer M*)`` for the x0 weight ``lam`` at the table's
        times (default: the setting's weighting). ``M* = N`` when no smaller size crosses."""
        g = self.weighted_gap(lam)
        below = np.flatnonzero(g <= 0)
        if below.size == 0:
            return 1.0, self.N  # pragma: no cover - the memorizer always has the lowest loss
        m = int(below[0]) + 1
        if m == 1:
            return 1 / self.N, 1
        g0, g1 = g[m - 2], g[m - 1]
        frac = g0 / (g0 - g1) if g0 != g1 else 1.0
        return (m - 1 + frac) / self.N, m

    def to_dict(self) -> dict:
        """A JSON-ready dict: the sizes, the time table as ``table_*`` lists, the loss arrays as lists (None kept) and
        ``pair_scale``."""
        out = {k: getattr(self, k) for k in ("d", "K", "N", "s2", "draws")}
        for k in ("t", "w", "alpha", "sigma", "lam"):
            out["table_" + k] = getattr(self.table, k).tolist()
        for k in ("gen_train", "pmem_train", "gen_val", "pmem_val", "theory_gen"):
            v = getattr(self, k)
            out[k] = None if v is None else np.asarray(v).tolist()
        out["pair_scale"] = self.pair_scale
        return out

    @classmethod
    def from_dict(cls, data: dict) -> ExactLosses:
        """Rebuild the losses from :meth:`to_dict` output."""
        table = TimeTable(*(np.asarray(data["table_" + k], dtype=float) for k in ("t", "w", "alpha", "sigma", "lam")))
        arrays = {k: None if data.get(k) is None else np.asarray(data[k], dtype=float)
                  for k in ("gen_train", "pmem_train", "gen_val", "pmem_val", "theory_gen")}
        return cls(table, int(data["d"]), int(data["K"]), int(data["N"]), float(data["s2"]), int(data["draws"]),
                   pair_scale=data.get("pair_scale"), **arrays)


def _prefix_losses(points: torch.Tensor, x0: torch.Tensor, x: torch.Tensor, a: torch.Tensor,
                   s: torch.Tensor) -> torch.Tensor:
    """``out[M - 1, q] = ||f_M(x_q) - x0_q||^2`` for the memorizers of the first ``M`` points.

    Online log-sum-exp over the points in order: after point ``j`` the running (max, normalizer,
    weighted sum) are exactly those of the softmax over points ``0..j``.
    """
    n, q = points.shape[0], x.shape[0]
    a, s = a.reshape(-1, 1), s.reshape(-1, 1)
    logits = (a * (x @ points.T) - 0.5 * a**2 * (points * points).sum(1)) / s**2  # (q, n)
    out = torch.empty(n, q, dtype=x.dtype, device=x.device)
    m = torch.full((q,), -math.inf, dtype=x.dtype, device=x.device)
    norm = torch.zeros(q, dtype=x.dtype, device=x.device)
    acc = torch.zeros_like(x)
    x0_sq = (x0 * x0).sum(1)
    for j in range(n):
        lj = logits[:, j]
        m_new = torch.maximum(m, lj)
        scale = torch.exp(m - m_new)
        e = torch.exp(lj - m_new)
        norm = norm * scale + e
        acc.mul_(scale.unsqueeze(1)).addr_(e, points[j])
        h = acc / norm.unsqueeze(1)
        # ||h - x0||^2, clamped at 0 against rounding
        out[j] = ((h * h).sum(1) - 2 * (h * x0).sum(1) + x0_sq).clamp_min_(0)
        m = m_new
    return out


def _losses(points, clean, table: TimeTable, draws: int, gen: torch.Generator, data, dtype, device):
    """(generalizer (T,), prefix memorizers (N, T)) for queries built from ``clean`` points."""
    T, n_clean, d = len(table.t), clean.shape[0], clean.shape[1]
    alpha = torch.as_tensor(table.alpha, dtype=dtype, device=device)
    sigma = torch.as_tensor(table.sigma, dtype=dtype, device=device)
    # queries ordered (time, draw, point); the same noise for every model, drawn one time at a time
    # (what a whole (T, draws, N, d) draw gives when draws N d is a multiple of 16, without holding it)
    x0 = clean.to(dtype=dtype, device=device)
    gen_loss = torch.zeros(T, dtype=torch.float64)
    pmem = torch.zeros(points.shape[0], T, dtype=torch.float64)
    pts = points.to(dtype=dtype, device=device)
    per_time = draws * n_clean
    from tqdm import tqdm

    # a progress bar on a terminal only (disable=None), on stderr
    for ti in tqdm(range(T), desc="exact losses", unit="time", disable=None, leave=False):
        a, s = alpha[ti], sigma[ti]
        xq0 = x0.repeat(draws, 1)
        z = torch.randn(draws, n_clean, d, generator=gen, dtype=torch.float64).to(dtype=dtype, device=device)
        xq = a * xq0 + s * z.reshape(-1, d)
        h = generalizer(xq, a, s, data)
        gen_loss[ti] = ((h - xq0) ** 2).sum(1).mean().double().cpu()
        total = torch.zeros(points.shape[0], dtype=torch.float64)
        chunk = query_chunk(points.shape[0], d, torch.finfo(dtype).bits // 8)
        for start in range(0, per_time, chunk):
            sl = slice(start, start + chunk)
            av = a.expand(xq[sl].shape[0])
            sv = s.expand(xq[sl].shape[0])
            total += _prefix_losses(pts, xq0[sl], xq[sl], av, sv).sum(1).double().cpu()
        pmem[:, ti] = total / per_time
    return gen_loss.numpy(), pmem.numpy()


def exact_losses(data, table: TimeTable, draws: int = 8, seed: int = 0, validation: bool = True,
                 dtype=torch.float64, device: str | torch.device = "cpu") -> ExactLosses:
    """Per-time losses of the generalizer and of every partial memorizer on ``data`` (any data
    model with ``train``, ``validation``, ``order``, ``generalizer``, ``theory_excess`` and
    ``pair_scale``: :class:`~memcross.validation.data.GMMData` or
    :class:`~memcross.validation.lowrank.ColoredData`).

    >>> from memcross.theory import Setting
    >>> from memcross.validation.data import make_gmm_data
    >>> from memcross.validation.process import Process
    >>> data = make_gmm_data(d=10, K=2, N=20, seed=0)
    >>> ex = exact_losses(data, Process(Setting(d=10, K=2, N=20)).quadrature(), draws=2, validation=False)
    >>> ex.pmem_train.shape, bool(ex.mem_train[0] < ex.gen_train[0])
    ((20, 26), True)
    """
    check_int(draws, "draws")
    seed = check_seed(seed)
    dtype = torch.float64 if dtype is None else dtype
    from memcross.validation.datamodels import validation_model

    copies = validation_model(data.data_model).generalizer_copies(data.K)
    check_exact_memory(data.d, data.N, draws, len(table.t), copies, torch.finfo(dtype).bits // 8)
    gen = torch.Generator().manual_seed(seed)
    points = data.train[data.order]
    gen_train, pmem_train = _losses(points, data.train, table, draws, gen, data, dtype, device)
    gen_val = pmem_val = None
    if validation:
        gen_val, pmem_val = _losses(points, data.validation, table, draws, gen, data, dtype, device)
    return ExactLosses(table, data.d, data.K, data.N, data.s2, draws, gen_train, pmem_train, gen_val, pmem_val,
                       np.asarray(data.theory_excess(table.psi), dtype=float), float(data.pair_scale))
