r"""Analytic denoisers and the conversion between network targets, in torch.

One closed form serves all three reference denoisers of the theory: the posterior mean of an
isotropic Gaussian mixture with means :math:`\mu_k`, per-coordinate variance :math:`v` and log
priors :math:`\log\pi_k`,

.. math:: f(t, x) = \sum_k w_k \Big[\mu_k + \frac{\alpha v}{v_t}(x - \alpha\mu_k)\Big], \quad
   v_t = \alpha^2 v + \sigma^2, \quad
   w = \mathrm{softmax}_k\Big(\log\pi_k - \frac{\|x - \alpha\mu_k\|^2}{2 v_t}\Big).

* **generalizer**: the true means and ``v = s2``;
* **memorizer**: the training points as means and ``v = 0`` (the empirical optimum);
* **partial memorizer** of size ``M``: the first ``M`` points of the nested subset, ``v = 0``.

The softmax is a log-sum-exp (``torch.softmax``), so it is stable at :math:`\sigma_t \to 0`;
weights below the square root of the dtype's smallest normal number are set to zero
(:func:`softmax_weights`).
Targets (x0, eps, score, velocity, v) use the theory's own linear relations
(:mod:`memcross.theory.targets`), applied to tensors: one conversion for every target.
"""

from __future__ import annotations

import torch

from memcross.theory.targets import get_target


def softmax_weights(logits: torch.Tensor, dim: int) -> torch.Tensor:
    r"""``torch.softmax(logits, dim)`` with every weight below :math:`\sqrt{\text{tiny}}` of its dtype
    (about 1e-19 in float32, 1e-154 in float64) set to zero.

    Such a weight changes no sum it enters beyond rounding, but left in, it and its products are
    subnormal numbers, which x86 processors handle about 100x slower than normal ones: near a
    memorizer most posterior weights underflow this way, and training ran 2x slower (measured in
    docs/benchmarks.md). Squares of the kept weights stay normal.

    >>> softmax_weights(torch.tensor([0.0, -40.0, -100.0]), 0).tolist()  # float32; exp(-100) ~ 4e-44
    [1.0, 4.24835413113866e-18, 0.0]
    """
    w = torch.softmax(logits, dim)
    return torch.nn.functional.threshold(w, float(torch.finfo(w.dtype).tiny) ** 0.5, 0.0)


def posterior_mean(x: torch.Tensor, alpha, sigma, means: torch.Tensor, variance=0.0,
                   log_priors: torch.Tensor | None = None) -> torch.Tensor:
    r"""x0 prediction of the isotropic mixture ``(means, variance, log_priors)`` at noisy ``x``.

    ``x`` is (B, d); ``alpha``, ``sigma`` scalars or (B,) tensors; ``means`` (K, d). Uniform
    priors unless ``log_priors`` (K,) is given.

    >>> means = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    >>> posterior_mean(torch.tensor([[0.9, 0.0]], dtype=torch.float64), 1.0, 1e-3, means).tolist()
    [[1.0, 0.0]]
    """
    a = torch.as_tensor(alpha, dtype=x.dtype, device=x.device).reshape(-1, 1)
    s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1, 1)
    v = torch.as_tensor(variance, dtype=x.dtype, device=x.device)
    vt = a**2 * v + s**2
    # -||x - a mu||^2 / (2 vt) without the row constant ||x||^2
    logits = (a * (x @ means.T) - 0.5 * a**2 * (means * means).sum(1)) / vt
    if log_priors is not None:
        logits = logits + log_priors
    w = softmax_weights(logits, 1)
    mean_mu = w @ means
    return mean_mu + (a * v / vt) * (x - a * mean_mu)


def generalizer(x, alpha, sigma, data) -> torch.Tensor:
    """The ground-truth posterior mean of ``data``'s distribution (whatever its data model)."""
    return data.generalizer(x, alpha, sigma)


def memorizer(x, alpha, sigma, data) -> torch.Tensor:
    """The empirical optimum: posterior mean of the training set's point masses."""
    return posterior_mean(x, alpha, sigma, data.train.to(x))


def partial_memorizer(x, alpha, sigma, data, M: int) -> torch.Tensor:
    """The memorizer of the first ``M`` points of the nested subset."""
    return posterior_mean(x, alpha, sigma, data.subset(M).to(x))


def _relation(target: str):
    return get_target(target).relation


def to_target(h, x, alpha, sigma, dalpha, dsigma, target: str):
    """The ``target`` prediction equivalent to the x0 prediction ``h`` at noisy ``x``."""
    return _relation(target)(alpha, sigma, dalpha, dsigma, x, h)


def from_target(f, x, alpha, sigma, dalpha, dsigma, target: str):
    """The x0 prediction equivalent to the ``target`` prediction ``f``: the relation is affine in
    ``h``, ``f = A + B h``, so ``h = (f - A) / B``."""
    rel = _relation(target)
    A = rel(alpha, sigma, dalpha, dsigma, x, 0 * x)
    B = rel(alpha, sigma, dalpha, dsigma, 0 * x, 1 + 0 * x) - rel(alpha, sigma, dalpha, dsigma, 0 * x, 0 * x)
    return (f - A) / B
