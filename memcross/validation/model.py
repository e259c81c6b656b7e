r"""The trained family: ``M``-component isotropic GMM denoisers, several sizes in one batch.

A model of size ``M`` has trainable means :math:`(M, d)` and one shared standard deviation
:math:`s` (variance :math:`v = s^2`; the paper's parameterization), fixed uniform priors, and
outputs the closed-form posterior mean of :mod:`memcross.validation.denoisers`. ``S`` sizes are
stored padded to the largest, ``means`` of shape ``(S, M_max, d)`` with a mask, so one batched
computation evaluates (and trains) them all; padded components get logit :math:`-\infty`.

Inits (a registry): ``pmem`` (the first ``M`` training points of the nested order, variance
``1e-6``; the default), ``gaussian`` (Gaussian with the training set's mean and per-coordinate
spread), ``sphere`` (uniform on the sphere of radius :math:`\sqrt d`), ``prior`` (fresh samples of
the true mixture).
"""

from __future__ import annotations

import torch

from memcross.validation.data import GMMData, sample_mixture, sphere_means
from memcross.validation.denoisers import softmax_weights
from memcross.validation.inits import InitRegistry

INITS = InitRegistry("the isotropic GMM")
register_init = INITS.register


@register_init("pmem", 1e-6)
def _pmem(data: GMMData, M: int, gen: torch.Generator) -> torch.Tensor:
    return data.subset(M).clone()


@register_init("gaussian", 1.0)
def _gaussian(data: GMMData, M: int, gen: torch.Generator) -> torch.Tensor:
    center, spread = data.train.mean(0), data.train.std(0)
    return center + spread * torch.randn(M, data.d, generator=gen, dtype=torch.float64)


@register_init("sphere", 1.0)
def _sphere(data: GMMData, M: int, gen: torch.Generator) -> torch.Tensor:
    return sphere_means(M, data.d, gen)


@register_init("prior", 1.0)
def _prior(data: GMMData, M: int, gen: torch.Generator) -> torch.Tensor:
    return sample_mixture(data.means, data.s2, M, gen)[0]


def init_names() -> list[str]:
    """The names of the GMM family's initializations."""
    return INITS.names()


def check_init(name: str) -> None:
    """Raise ValueError unless ``name`` is an initialization of the GMM family."""
    INITS.check(name)


class GMMFamily:
    """Parameters of ``len(sizes)`` GMM denoisers, concatenated into one batch.

    ``means`` is ``(sum(sizes), d)``: model ``i`` owns rows ``offsets[i] : offsets[i] + sizes[i]``;
    ``std`` is ``(S,)``. No padding, so the batch costs what its models cost.

    >>> from memcross.validation.data import make_gmm_data
    >>> fam = GMMFamily.initialize(make_gmm_data(4, 2, 10, seed=0), [2, 5], "pmem", seed=0)
    >>> tuple(fam.means.shape), fam.offsets, [round(v, 9) for v in fam.variance().tolist()]
    ((7, 4), [0, 2], [1e-06, 1e-06])
    """

    init_names = staticmethod(init_names)
    #: The names of :meth:`parameters`' tensors for per-group learning rates (``--lr-factors``).
    lr_groups = ("means", "variance")
    check_init = staticmethod(check_init)

    def __init__(self, sizes, means: torch.Tensor, std: torch.Tensor):
        self.sizes = [int(m) for m in sizes]
        self.offsets = [0]
        for m in self.sizes[:-1]:
            self.offsets.append(self.offsets[-1] + m)
        self.means = means
        self.std = std
        self.segment = torch.repeat_interleave(torch.arange(len(self.sizes)), torch.tensor(self.sizes)).to(means.device)

    @classmethod
    def initialize(cls, data: GMMData, sizes, init: str = "pmem", seed: int = 0, variance: float | None = None,
                   dtype=torch.float32, device="cpu") -> GMMFamily:
        """A family of ``len(sizes)`` models on ``data``: means initialized by ``init`` from generator seed ``seed``,
        std the root of the starting variance (``variance`` overrides the init's)."""
        fn, v = INITS.resolve(init, variance)
        gen = torch.Generator().manual_seed(int(seed))
        means = torch.cat([fn(data, M, gen) for M in sizes])
        std = torch.full((len(sizes),), v**0.5, dtype=torch.float64)
        return cls(sizes, means.to(dtype=dtype, device=device), std.to(dtype=dtype, device=device))

    def variance(self) -> torch.Tensor:
        """Each model's variance ``std ** 2``, shape ``(S,)``, detached."""
        return self.std.detach() ** 2

    def parameters(self) -> list[torch.Tensor]:
        """The trainable tensors: ``[means, std]``."""
        return [self.means, self.std]

    def _slices(self):
        return [slice(o, o + m) for o, m in zip(self.offsets, self.sizes)]

    def model_means(self, i: int) -> torch.Tensor:
        """The ``sizes[i]`` means of model ``i``."""
        return self.means.detach()[self._slices()[i]]

    def component_means(self, i: int) -> torch.Tensor:
        """The component means of model ``i`` (:meth:`model_means`)."""
        return self.model_means(i)

    def arrays(self, i: int) -> dict:
        """Model ``i``'s parameters as float64 arrays (what a sweep stores)."""
        import numpy as np

        return {"means": self.model_means(i).double().cpu().numpy(),
                "variance": np.float64(self.variance()[i].double().cpu())}

    def x0_error(self, x0: torch.Tensor, z: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        r"""The scaled x0 error :math:`e` with :math:`f(x_t) - x_0 = \sigma e`, shape (B, S, d);
        differentiable (the autograd reference for :meth:`loss_and_grad`).

        With :math:`x_t = \alpha x_0 + \sigma z` and :math:`\bar\mu = \sum_k w_k\mu_k`, the closed form
        gives :math:`f - x_0 = \sigma(\alpha v z + \sigma(\bar\mu - x_0))/v_t`: no cancellation
        at small :math:`\sigma`, which matters for eps-type weights :math:`\propto \psi`."""
        a = alpha.reshape(-1, 1)
        s = sigma.reshape(-1, 1)
        x = a * x0 + s * z
        out = []
        for i, sl in enumerate(self._slices()):
            mu, v = self.means[sl], self.std[i] ** 2
            vt = a**2 * v + s**2
            w = softmax_weights((a * (x @ mu.T) - 0.5 * a**2 * (mu * mu).sum(1)) / vt, 1)
            out.append((a * v * z + s * (w @ mu - x0)) / vt)
        return torch.stack(out, dim=1)

    def loss_and_grad(self, x0: torch.Tensor, z: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor,
                      kappa: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        r"""Per-size loss :math:`\frac1B\sum_b \kappa_b \|e_{bs}\|^2` and its gradient with respect to
        ``(means, std)``, by hand: the same numbers as autograd on :meth:`x0_error` at a fraction of
        the cost (one GEMM over all models' means, no broadcast temporaries kept for a backward).

        With :math:`c_1 = \alpha/v_t`, :math:`c_2 = \alpha^2/(2 v_t)`, logits
        :math:`\ell = c_1 x\cdot\mu - c_2\|\mu\|^2`, :math:`w = \mathrm{softmax}(\ell)` per model,
        :math:`g_{\bar\mu} = 2\kappa\sigma e/(B v_t)`, :math:`G = g_{\bar\mu}\cdot\mu/v_t` and
        :math:`P = w \odot (G - \sum_j w_j G_j)` (from the one :math:`G`, not :math:`g_{\bar\mu}\cdot\bar\mu`
        separately: at the memorizer :math:`|G|` is ~1e10 while :math:`P` is ~1e-5):
        :math:`\nabla_{\mu} = w^\top g_{\bar\mu} + P^\top(\alpha x) - \mu\,(P^\top\alpha^2)` and
        :math:`\partial_v = \sum g_e\cdot(\alpha z - \alpha^2 e)/v_t - \sum_b \alpha^2 \sum_m P\ell`."""
        B = x0.shape[0]
        means = self.means.detach()
        std = self.std.detach()
        v = std**2  # (S,)
        a = alpha.reshape(B, 1)
        s = sigma.reshape(B, 1)
        vt = a**2 * v + s**2  # (B, S)
        x = a * x0 + s * z  # (B, d)
        c1 = a / vt  # (B, S)
        c2 = 0.5 * a**2 / vt
        sq = (means * means).sum(1)
        raw = x @ means.T  # (B, Mtot): one GEMM for all models; scaled per model below
        w = torch.empty_like(raw)
        S = len(self.sizes)
        mean_mu = x0.new_empty(S, B, x0.shape[1])
        slices = self._slices()
        for i, sl in enumerate(slices):
            r = raw[:, sl]
            r.mul_(c1[:, i : i + 1]).addr_(c2[:, i], sq[sl], alpha=-1)  # logits of model i
            w[:, sl] = softmax_weights(r, 1)
            torch.mm(w[:, sl], means[sl], out=mean_mu[i])
        at, st = alpha.reshape(1, B, 1), sigma.reshape(1, B, 1)
        vt3 = vt.T.unsqueeze(2)  # (S, B, 1)
        e = (at * v.reshape(-1, 1, 1) * z + st * (mean_mu - x0)) / vt3  # (S, B, d)
        kap = kappa.reshape(1, B, 1)
        loss = (kap * e * e).sum((1, 2)) / B
        g_e = (2.0 / B) * kap * e
        g_v = (g_e * (at * z - at**2 * e) / vt3).sum((1, 2))
        g_mu = g_e * (st / vt3)  # gradient w.r.t. mean_mu
        g_mu_vt = g_mu / vt3
        a2 = alpha**2
        P = torch.empty_like(raw)
        g_means = torch.empty_like(means)
        for i, sl in enumerate(slices):
            p, wi = P[:, sl], w[:, sl]
            torch.mm(g_mu_vt[i], means[sl].T, out=p)  # G = g . mu / v_t
            # softmax backward from this same G: g . mu_bar taken as a separate product is rounded
            # differently, and near the memorizer (|G| ~ 1e10, P ~ 1e-5) that difference is all noise
            p.sub_((wi * p).sum(1, keepdim=True)).mul_(wi)
            g_v[i] -= (p * raw[:, sl]).sum(1).dot(a2)
            torch.mm(w[:, sl].T, g_mu[i], out=g_means[sl])
        g_means += P.T @ (alpha.reshape(B, 1) * x)
        g_means -= means * (P.T @ a2).unsqueeze(1)
        return loss, [g_means, 2 * std * g_v]

    def posterior_mean(self, i: int, x: torch.Tensor, alpha, sigma) -> torch.Tensor:
        """x0 prediction of model ``i`` at noisy ``x`` (B, d)."""
        from memcross.validation.denoisers import posterior_mean

        return posterior_mean(x, alpha, sigma, self.model_means(i).to(x), self.variance()[i].to(x))

    @staticmethod
    def training_memory(d: int, N: int, draws: int, sizes, itemsize: int = 4) -> int:
        """Bytes one training step of ``sizes`` holds at its peak, about (measured within 1.5x on
        CPU): with ``B = N R`` noisy points, a few ``(B, d)`` arrays, ``(B, sum M)`` logits, weights
        and their gradient, and about 7 ``(S, B, d)`` per-size errors and gradients."""
        sizes = [int(M) for M in sizes]
        B, total, S = N * draws, sum(sizes), len(sizes)
        return int(itemsize * (4 * B * d + 4 * B * total + 7 * S * B * d))

    def state(self) -> dict:
        """A checkpointable state: ``sizes`` and detached CPU copies of ``means`` and ``std``."""
        return {"sizes": self.sizes, "means": self.means.detach().cpu(), "std": self.std.detach().cpu()}
