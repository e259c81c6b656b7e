r"""Low-rank Gaussian mixtures, and the coloured-template model as a named special case.

Component ``k`` is :math:`\mathcal N(\mu_k, U_k U_k^\top)` in dimension ``D`` with a rank-``r``
factor :math:`U_k` (``D x r``). Under the forward process :math:`x = \alpha x_0 + \sigma z` its
covariance is :math:`\Sigma_t = \sigma^2 I + \alpha^2 U_k U_k^\top`, inverted by Woodbury with
:math:`G_k = U_k^\top U_k` (``r x r``):

.. math:: \Sigma_t^{-1} = \sigma^{-2}\big[I - U_k(\tfrac{\sigma^2}{\alpha^2} I_r + G_k)^{-1}U_k^\top\big],
   \qquad \log\det\Sigma_t = D\log\sigma^2 + \log\det(I_r + \tfrac{\alpha^2}{\sigma^2} G_k).

The second term has one factor per dimension of the component's span. For coloured templates,
:math:`G_k = s_c^2\|u_k\|^2 I_3`, so it is :math:`3\log(1 + \alpha^2 s_c^2\|u_k\|^2/\sigma^2)`.
Dropping the factor 3 biases the component weights. The posterior mean (push-through identity) is

.. math:: E[x_0 \mid x, k] = \mu_k + \alpha U_k (\sigma^2 I_r + \alpha^2 G_k)^{-1} U_k^\top (x - \alpha\mu_k).

**Coloured templates** (docs/images.md). ``K`` grayscale templates :math:`u_k` (``P``
pixels); a sample is :math:`c \otimes u_y` with :math:`c \sim \mathcal N(m_y, s_c^2 I_3)`, so
:math:`\mu_k = m_k \otimes u_k` and :math:`U_k = s_c (I_3 \otimes u_k)`, rank 3 in ``D = 3P``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from memcross.validation.data import SampledSplits
from memcross.validation.denoisers import softmax_weights


@dataclass(frozen=True)
class LowRankGMM:
    """``means`` (K, D), ``factors`` (K, D, r), ``log_priors`` (K,), float64 tensors."""

    means: torch.Tensor
    factors: torch.Tensor
    log_priors: torch.Tensor

    @property
    def K(self) -> int:
        """The number of components."""
        return self.means.shape[0]

    @property
    def D(self) -> int:
        """The ambient dimension."""
        return self.means.shape[1]

    def posterior_mean(self, x: torch.Tensor, alpha: float, sigma: float) -> torch.Tensor:
        """:math:`E[x_0 \\mid x_t = x]` for ``x`` (B, D) at one time, by Woodbury."""
        a, s2 = float(alpha), float(sigma) ** 2
        U = self.factors.to(x)
        mu = self.means.to(x)
        r = U.shape[2]
        G = U.transpose(1, 2) @ U  # (K, r, r)
        eye = torch.eye(r, dtype=x.dtype, device=x.device)
        inner = s2 * eye + a**2 * G  # sigma^2 I + alpha^2 G
        y = x.unsqueeze(0) - a * mu.unsqueeze(1)  # (K, B, D)
        proj = y @ U  # (K, B, r) = U^T y
        sol = torch.linalg.solve(inner.unsqueeze(1), proj.unsqueeze(-1)).squeeze(-1)  # (K, B, r)
        # y^T Sigma^{-1} y = (|y|^2 - a^2 proj^T inner^{-1} proj) / sigma^2
        quad = ((y * y).sum(2) - a**2 * (proj * sol).sum(2)) / s2
        logdet = self.D * math.log(s2) + torch.logdet(eye + (a**2 / s2) * G)  # (K,)
        logits = self.log_priors.to(x).unsqueeze(1) - 0.5 * quad - 0.5 * logdet.unsqueeze(1)  # (K, B)
        w = softmax_weights(logits, 0)
        cond = mu.unsqueeze(1) + a * (sol @ U.transpose(1, 2))  # (K, B, D)
        return (w.unsqueeze(2) * cond).sum(0)

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` samples and their component labels."""
        labels = torch.multinomial(self.log_priors.exp(), n, replacement=True, generator=generator)
        r = self.factors.shape[2]
        c = torch.randn(n, r, generator=generator, dtype=self.means.dtype)
        return self.means[labels] + (self.factors[labels] @ c.unsqueeze(2)).squeeze(2), labels


def colored_templates(templates, sc2: float = 1.0, colour_means=None) -> LowRankGMM:
    """The coloured-template mixture of ``templates`` (K, P) with colour variance ``sc2`` and
    colour means ``colour_means`` (K, 3; default 0), uniform priors.

    >>> gmm = colored_templates(np.eye(2, 4))
    >>> gmm.D, tuple(gmm.factors.shape)
    (12, (2, 12, 3))
    """
    from memcross.templates import check_templates

    u = torch.as_tensor(check_templates(templates), dtype=torch.float64)
    K, P = u.shape
    if not (isinstance(sc2, (int, float)) and sc2 > 0):
        raise ValueError(f"sc2 must be a positive number, got {sc2!r}")
    m = torch.zeros(K, 3, dtype=torch.float64) if colour_means is None else torch.as_tensor(colour_means,
                                                                                              dtype=torch.float64)
    if m.shape != (K, 3) or not torch.isfinite(m).all():
        raise ValueError(f"colour_means must be a finite (K, 3) = ({K}, 3) array, got shape {tuple(m.shape)}")
    eye3 = torch.eye(3, dtype=torch.float64)
    means = torch.stack([torch.kron(m[k], u[k]) for k in range(K)])  # m_k (x) u_k, channel-major
    factors = torch.stack([sc2**0.5 * torch.kron(eye3, u[k].reshape(P, 1)) for k in range(K)])  # (K, 3P, 3)
    return LowRankGMM(means, factors, torch.full((K,), -math.log(K), dtype=torch.float64))


@dataclass(frozen=True)
class ColoredData(SampledSplits):
    """A sampled coloured-template data set, with the interface of
    :class:`~memcross.validation.data.GMMData` (train / validation / evaluation splits, nested
    subset order, ground-truth denoiser, theory excess), so that exact losses and sweeps take it
    as they take the isotropic mixture."""

    data_model: ClassVar[str] = "colored-templates"

    model: LowRankGMM
    templates: np.ndarray
    sc2: float
    train: torch.Tensor
    train_labels: torch.Tensor
    validation: torch.Tensor
    order: torch.Tensor
    seed: int
    evaluation: torch.Tensor

    @property
    def d(self) -> int:
        """The data dimension (the model's ``D``)."""
        return self.model.D

    @property
    def K(self) -> int:
        """The number of templates (the model's ``K``)."""
        return self.model.K

    @property
    def s2(self) -> float:
        """The colour variance ``sc2``, in the slot of the isotropic data's ``s2``."""
        return self.sc2

    @property
    def means(self) -> torch.Tensor:
        """The component means, ``(K, D)``."""
        return self.model.means

    def generalizer(self, x: torch.Tensor, alpha, sigma) -> torch.Tensor:
        """The ground-truth denoiser: the mixture's posterior mean :math:`E[x_0 | x_t = x]`."""
        return self.model.posterior_mean(x, alpha, sigma)

    def theory_excess(self, psi) -> np.ndarray:
        r""":math:`\\frac1K\\sum_k 3 l_k/(1 + \\psi l_k)`, :math:`l_k = s_c^2\\|u_k\\|^2` (theory layer)."""
        import sympy as sp

        from memcross.theory.data import ColoredTemplateGMM
        from memcross.theory.symbols import psi as psi_symbol

        norms2 = tuple(float(n) for n in (self.templates**2).sum(1))
        expr = ColoredTemplateGMM(norms2, self.sc2).mmse(psi_symbol)
        return np.asarray(sp.lambdify(psi_symbol, expr, "numpy")(np.asarray(psi, dtype=float)), dtype=float)

    @property
    def pair_scale(self) -> float:
        """Expected squared distance from a training point to its nearest other training point
        (:func:`~memcross.numerics.coefficient.colored_nearest_distance2`). In a
        3-dimensional colour space it is far below the mean pair distance, and it is what the
        memorizer has to resolve to collapse."""
        if self.N < 2:
            return float(6 * self.sc2 * (self.templates**2).sum(1).mean())
        from memcross.numerics.coefficient import colored_nearest_distance2

        return colored_nearest_distance2(self.templates, self.sc2, self.N)


def make_colored_data(templates, N: int, sc2: float = 1.0, colour_means=None, seed: int = 0,
                      n_validation: int | None = None, n_evaluation: int | None = None) -> ColoredData:
    """Sample ``N`` training points (and held-out splits) of the coloured-template mixture.

    >>> data = make_colored_data(np.eye(2, 9), N=10, seed=0)
    >>> tuple(data.train.shape), data.d, data.K
    ((10, 27), 27, 2)
    """
    from memcross.templates import check_templates
    from memcross.validation.data import check_sizes

    u = check_templates(templates)
    model = colored_templates(u, sc2, colour_means)
    check_sizes(model.D, model.K, N)
    gen = torch.Generator().manual_seed(int(seed))
    train, labels = model.sample(N, gen)
    validation, _ = model.sample(N if n_validation is None else n_validation, gen)
    order = torch.randperm(N, generator=gen)
    evaluation, _ = model.sample(N if n_evaluation is None else n_evaluation, gen)
    return ColoredData(model, u, float(sc2), train, labels, validation, order, int(seed), evaluation)
