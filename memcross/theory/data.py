r"""The isotropic Gaussian mixture and the excess losses of Theorems 3.1 and 3.2.

:math:`\pi^* = \sum_k \pi_k \mathcal N(\mu_k, s_2 I_d)`. The generalizer is the posterior mean
of :math:`\pi^*`; its excess over the memorizer is the Gaussian-component MMSE
:math:`d s_2/(1 + \psi_t s_2)` (Theorem 3.1). The partial memorizer of size :math:`M` has excess
:math:`C (1 - M/N) d s_2`, constant in time (Theorem 3.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from memcross.theory.symbols import C, M, N, alpha, d, psi, s2, sigma

#: Symbols for one component's mean (per coordinate) and its posterior weight.
mu = sp.Symbol("mu", real=True)
x = sp.Symbol("x", real=True)


def generalizer_component_mean(a=alpha, s=sigma, variance=s2, mean=mu, point=x) -> sp.Expr:
    r"""Posterior mean of :math:`x_0 \sim \mathcal N(\mu, s_2)` given :math:`x_t = x`:
    :math:`\mu + \frac{\alpha s_2}{v_t}(x - \alpha\mu)`, :math:`v_t = \alpha^2 s_2 + \sigma^2`.

    The generalizer is :math:`\sum_k w_k(x)\,[\dots]_k` with
    :math:`w = \mathrm{softmax}_k(\log\pi_k - \|x - \alpha\mu_k\|^2/(2 v_t))`.
    """
    return mean + a * variance / (a**2 * variance + s**2) * (point - a * mean)


def generalizer_weight_logit(a=alpha, s=sigma, variance=s2, mean=mu, point=x, log_prior=0) -> sp.Expr:
    r"""Unnormalized log posterior weight of one component (per coordinate):
    :math:`\log\pi_k - (x - \alpha\mu_k)^2 / (2 v_t)`."""
    return log_prior - (point - a * mean) ** 2 / (2 * (a**2 * variance + s**2))


def gaussian_mmse(psi_t=psi, variance=s2, dim=d) -> sp.Expr:
    r"""The Gaussian-component MMSE in x0 units: :math:`d s_2 / (1 + \psi_t s_2)`.

    >>> gaussian_mmse()
    d*s2/(psi*s2 + 1)
    """
    return dim * variance / (1 + psi_t * variance)


@lru_cache(maxsize=1)
def derived_gaussian_mmse() -> tuple[sp.Expr, sp.Expr]:
    r"""Derive, rather than assume, the posterior mean and MMSE of one Gaussian coordinate.

    Write :math:`x_0 = \mu + \sqrt{s_2}\,u`, :math:`x_t = \alpha x_0 + \sigma z` with
    independent standard normals :math:`u, z`. For jointly Gaussian variables the posterior mean
    is the best affine estimator :math:`a x_t + c`; its error is affine in :math:`(u, z)`, so
    :math:`E[(e_0 + e_u u + e_z z)^2] = e_0^2 + e_u^2 + e_z^2`. Setting the gradient in
    :math:`(a, c)` to zero gives the posterior mean; the error at the optimum, per coordinate and
    written in :math:`\psi = \alpha^2/\sigma^2`, is the MMSE. Returns ``(posterior_mean, mmse)``.
    """
    u, z, a, c = sp.symbols("u z a c", real=True)
    x0 = mu + sp.sqrt(s2) * u
    xt = alpha * x0 + sigma * z
    err = sp.expand(x0 - (a * xt + c))
    poly = sp.Poly(err, u, z)
    e_u, e_z = poly.coeff_monomial(u), poly.coeff_monomial(z)
    e_0 = poly.coeff_monomial(1)
    risk = e_0**2 + e_u**2 + e_z**2
    sol = sp.solve([sp.diff(risk, a), sp.diff(risk, c)], [a, c], dict=True)[0]
    mean = sp.simplify((a * x + c).subs(sol))
    mmse = sp.simplify(risk.subs(sol))
    # rewrite in psi: sigma^2 = alpha^2 / psi
    mmse_psi = sp.simplify(mmse.subs(sigma, alpha / sp.sqrt(psi)))
    return mean, d * mmse_psi


def excess_loss_generalizer(psi_t=psi, variance=s2, dim=d) -> sp.Expr:
    r"""Theorem 3.1: :math:`E[L_t(f_{gen}) - L_t(f_{mem})] \approx d s_2/(1 + \psi_t s_2)`."""
    return gaussian_mmse(psi_t, variance, dim)


def excess_loss_partial_memorizer(coefficient=C, size=M, train=N, variance=s2, dim=d) -> sp.Expr:
    r"""Theorem 3.2: :math:`E[L_t(f_{pmem,M}) - L_t(f_{mem})] \approx C (1 - M/N) d s_2`."""
    return coefficient * (1 - size / train) * dim * variance


@dataclass(frozen=True)
class IsotropicGMM:
    r"""Isotropic homoscedastic mixture :math:`\frac1K\sum_k \mathcal N(\mu_k, s_2 I_d)`.

    Dimensions may be numbers or the symbols ``d``, ``K``; ``s2`` a positive number or symbol.
    """

    d: object = d
    K: object = sp.Symbol("K", positive=True, integer=True)
    s2: object = s2

    def __post_init__(self):
        for name in ("d", "K"):
            value = sp.sympify(getattr(self, name))
            if value.is_number and not (value.is_integer and value >= 1):
                raise ValueError(f"{name} must be a positive integer, got {value}")
        value = sp.sympify(self.s2)
        if value.is_number and not value > 0:
            raise ValueError(f"s2 must be positive, got {value}")

    def mmse(self, psi_t=psi) -> sp.Expr:
        r"""The Gaussian-component MMSE :math:`d s_2/(1 + \psi s_2)` at ``psi_t`` (x0 units)."""
        return gaussian_mmse(psi_t, sp.sympify(self.s2), sp.sympify(self.d))

    def excess_generalizer(self, psi_t=psi) -> sp.Expr:
        r"""Theorem 3.1: the generalizer's excess over the memorizer, :math:`d s_2/(1 + \psi_t s_2)`."""
        return excess_loss_generalizer(psi_t, sp.sympify(self.s2), sp.sympify(self.d))

    def excess_partial_memorizer(self, coefficient=C, size=M, train=N) -> sp.Expr:
        """Theorem 3.2: the partial memorizer's excess over the memorizer, :math:`C (1 - M/N) d s_2`."""
        return excess_loss_partial_memorizer(coefficient, size, train, sp.sympify(self.s2), sp.sympify(self.d))


def low_rank_mmse(eigenvalues, psi_t=psi) -> sp.Expr:
    r"""MMSE of a Gaussian component whose covariance has nonzero eigenvalues :math:`l_j`:
    :math:`\sum_j l_j / (1 + \psi_t l_j)` (x0 units). With ``d`` eigenvalues ``s2`` it is
    :func:`gaussian_mmse`; for a rank-``r`` component the excess scales with ``r``, not with the
    ambient dimension.

    >>> low_rank_mmse([s2, s2, s2])
    3*s2/(psi*s2 + 1)
    """
    terms = [sp.sympify(v) for v in eigenvalues]
    if not terms:
        raise ValueError("eigenvalues: need at least one nonzero eigenvalue")
    for v in terms:
        if v.is_number and not v > 0:
            raise ValueError(f"eigenvalues must be positive, got {v}")
    return sp.Add(*[v / (1 + psi_t * v) for v in terms])


#: The colour variance of the coloured-template model.
sc2 = sp.Symbol("s_c2", positive=True)


@dataclass(frozen=True)
class ColoredTemplateGMM:
    r"""Coloured templates: component :math:`k` is :math:`\mathcal N(m_k \otimes u_k,\;
    s_c^2 (I_3 \otimes u_k u_k^\top))`, rank 3 with eigenvalue :math:`l_k = s_c^2\|u_k\|^2`
    (multiplicity 3); uniform priors. ``norms2`` are the squared template norms
    :math:`\|u_k\|^2`.

    >>> ColoredTemplateGMM((2, 8), 1).mmse()
    12/(8*psi + 1) + 3/(2*psi + 1)
    """

    norms2: tuple
    sc2: object = sc2

    def __post_init__(self):
        if not self.norms2:
            raise ValueError("norms2: need at least one template")
        for v in map(sp.sympify, self.norms2):
            if v.is_number and not v > 0:
                raise ValueError(f"template norms must be positive, got {v}")
        v = sp.sympify(self.sc2)
        if v.is_number and not v > 0:
            raise ValueError(f"sc2 must be positive, got {v}")

    @property
    def K(self) -> int:
        """The number of templates (components)."""
        return len(self.norms2)

    def eigenvalues(self) -> list[sp.Expr]:
        r"""Each component's nonzero covariance eigenvalue :math:`l_k = s_c^2 \|u_k\|^2` (of multiplicity 3)."""
        return [sp.sympify(self.sc2) * sp.sympify(n) for n in self.norms2]

    def mmse(self, psi_t=psi) -> sp.Expr:
        r""":math:`\frac1K\sum_k 3 l_k/(1 + \psi l_k)`: the generalizer's excess over the memorizer."""
        return sp.Add(*[low_rank_mmse([lam] * 3, psi_t) for lam in self.eigenvalues()]) / self.K

    def excess_generalizer(self, psi_t=psi) -> sp.Expr:
        """The generalizer's excess over the memorizer: :meth:`mmse`."""
        return self.mmse(psi_t)
