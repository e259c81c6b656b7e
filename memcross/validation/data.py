r"""Data: an isotropic Gaussian mixture and seeded train / validation / evaluation splits.

:math:`\pi^* = \frac1K \sum_k \mathcal N(\mu_k, s_2 I_d)`; by default the means are uniform on
the sphere of radius :math:`\sqrt d` (:math:`\mu_k = \sqrt d\, g_k/\|g_k\|`, :math:`g_k \sim
\mathcal N(0, I_d)`), as in the paper. Everything is drawn from one ``torch.Generator`` seeded by
``seed``, so the same seed gives the same data set on the same device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from memcross._checks import check_int, check_seed

#: Share of the machine's available memory a computation may plan to use.
MEMORY_FRACTION = 0.8


def available_memory() -> int | None:
    """Bytes of memory available to new allocations: ``MemAvailable`` of ``/proc/meminfo`` (Linux),
    else free physical pages from ``os.sysconf``; None when neither is known."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(need: float, what: str, lower: str) -> None:
    """Refuse a computation that needs ``need`` bytes when more than ``MEMORY_FRACTION`` of the
    available memory: ``"{what} needs about X GiB, more than the Y GiB available; lower {lower}"``.
    Nothing is refused where the available memory is unknown."""
    avail = available_memory()
    if avail is None:
        return
    allowed = MEMORY_FRACTION * avail
    if need > allowed:
        raise ValueError(f"{what} needs about {_gib(need)} GiB, more than the {_gib(allowed)} GiB available "
                         f"({MEMORY_FRACTION:.0%} of this machine's free memory); lower {lower}")


def _gib(n: float) -> str:
    g = n / 2**30
    return f"{g:.3g}" if g < 1000 else f"{g:,.0f}"


def check_sizes(d: int, K: int, N: int, M: int | None = None) -> None:
    """Refuse sizes that make no data set: ``d >= 1``, ``1 <= K <= N``, ``1 <= M <= N``."""
    for name, value in (("d", d), ("K", K), ("N", N)):
        check_int(value, name)
    if K > N:
        raise ValueError(f"K must be <= N (each component needs a training point), got K={K}, N={N}")
    if M is not None:
        check_int(M, "M", 1, N, high_name="N")


class SampledSplits:
    """What every sampled data set shares: ``N`` and the nested memorized subsets (it needs
    ``train``, ``order``, ``d`` and ``K``)."""

    @property
    def N(self) -> int:
        """The number of training samples."""
        return self.train.shape[0]

    def subset(self, M: int) -> torch.Tensor:
        """The first ``M`` training points of the nested order (the memorized subset)."""
        check_sizes(self.d, self.K, self.N, M)
        return self.train[self.order[:M]]


@dataclass(frozen=True)
class GMMData(SampledSplits):
    """A sampled isotropic GMM data set (float64 tensors on CPU).

    ``means`` (K, d), ``train`` (N, d) with component labels ``train_labels``, ``validation``
    (held-out samples for validation losses), ``evaluation`` (further held-out samples: fresh
    draws of the true distribution, the reference a generator is compared with), and ``order``:
    a seeded permutation of the training indices whose first ``M`` entries are the partial
    memorizer's (and the pmem init's) subset, so subsets are nested in ``M``.
    """

    #: The theory's name of this data model (:mod:`memcross.validation.datamodels`).
    data_model: ClassVar[str] = "isotropic"

    means: torch.Tensor
    s2: float
    train: torch.Tensor
    train_labels: torch.Tensor
    validation: torch.Tensor
    order: torch.Tensor
    seed: int
    evaluation: torch.Tensor

    @property
    def d(self) -> int:
        """The data dimension."""
        return self.means.shape[1]

    @property
    def K(self) -> int:
        """The number of mixture components."""
        return self.means.shape[0]

    def generalizer(self, x: torch.Tensor, alpha, sigma) -> torch.Tensor:
        """The ground-truth posterior mean (true means, variance ``s2``)."""
        from memcross.validation.denoisers import posterior_mean

        return posterior_mean(x, alpha, sigma, self.means.to(x), self.s2)

    def theory_excess(self, psi) -> np.ndarray:
        r"""Theorem 3.1 at SNR ``psi``: :math:`d s_2/(1 + \psi s_2)`."""
        return self.d * self.s2 / (1 + np.asarray(psi, dtype=float) * self.s2)

    @property
    def pair_scale(self) -> float:
        """Mean squared distance between two points of one component, ``2 d s2``: the memorizer has
        collapsed at SNR ``psi`` once ``psi * pair_scale >= c log N``."""
        return 2.0 * self.d * self.s2


def sphere_means(K: int, d: int, generator: torch.Generator, radius: float | None = None) -> torch.Tensor:
    r"""``K`` points uniform on the sphere of radius ``radius`` (default :math:`\sqrt d`)."""
    g = torch.randn(K, d, generator=generator, dtype=torch.float64)
    r = d**0.5 if radius is None else radius
    return r * g / g.norm(dim=1, keepdim=True)


def sample_mixture(means: torch.Tensor, s2: float, n: int, generator: torch.Generator):
    """``n`` samples of the uniform-prior isotropic mixture and their component labels."""
    K, d = means.shape
    labels = torch.randint(K, (n,), generator=generator)
    x = means[labels] + s2**0.5 * torch.randn(n, d, generator=generator, dtype=torch.float64)
    return x, labels


def make_gmm_data(d: int, K: int, N: int, s2: float = 1.0, seed: int = 0, means=None,
                  n_validation: int | None = None, n_evaluation: int | None = None) -> GMMData:
    """Sample a data set: means (unless given), ``N`` training points, ``n_validation`` and
    ``n_evaluation`` (default ``N`` each) held-out points, and the nested subset order.

    >>> data = make_gmm_data(d=5, K=2, N=10, seed=1)
    >>> tuple(data.train.shape), tuple(data.subset(3).shape), torch.allclose(data.means.norm(dim=1), torch.tensor(5**0.5, dtype=torch.float64))
    ((10, 5), (3, 5), True)
    """
    check_sizes(d, K, N)
    if not (isinstance(s2, (int, float)) and s2 > 0):
        raise ValueError(f"s2 must be a positive number, got {s2!r}")
    seed = check_seed(seed)
    n_val = N if n_validation is None else n_validation
    n_ev = N if n_evaluation is None else n_evaluation
    # means, three splits, and the sampling temporaries of the largest split (float64)
    check_memory(8 * d * (K + N + n_val + n_ev + 2 * max(N, n_val, n_ev)), f"data: (d, N) = ({d}, {N})",
                 "--dim/--train")
    gen = torch.Generator().manual_seed(seed)
    if means is None:
        mu = sphere_means(K, d, gen)
    else:
        mu = torch.as_tensor(means, dtype=torch.float64)
        if mu.shape != (K, d) or not torch.isfinite(mu).all():
            raise ValueError(f"means must be a finite array of shape (K, d) = ({K}, {d}), got {tuple(mu.shape)}")
    train, labels = sample_mixture(mu, s2, N, gen)
    validation, _ = sample_mixture(mu, s2, n_val, gen)
    order = torch.randperm(N, generator=gen)
    evaluation, _ = sample_mixture(mu, s2, n_ev, gen)
    return GMMData(mu, float(s2), train, labels, validation, order, seed, evaluation)
