r"""The trained coloured-template family: ``M`` rank-3 components per model, several sizes in one batch.

A model of size ``M`` has trainable templates :math:`u_k` (``(M, P)``), colour means :math:`m_k`
(``(M, 3)``) and **one colour standard deviation** :math:`\sqrt v` (``variance_param="std"``, the
default: it reaches a variance of 1e-12 and back within a training budget, as the authors' model
does) or, as an option, one log-variance :math:`\log v` (``"log-var"``); component ``k`` is
:math:`\mathcal N(m_k \otimes u_k,\ v\,(I_3 \otimes u_k u_k^\top))`, uniform priors — the model
class of the data (:func:`~memcross.validation.lowrank.colored_templates`), so the generalizer
(the true templates, colour means and :math:`v = s_c^2`) and every partial memorizer (one
component per memorized sample, :math:`v \to 0`) are members.

A sample is handled as a ``3 x P`` matrix :math:`X` (channel-major, ``x = vec`` of its rows). With
:math:`x_t = \alpha x_0 + \sigma z`, per component
:math:`p_k = X_t u_k \in \mathbb R^3`, :math:`n_k = \|u_k\|^2`, :math:`s_k = \sigma^2 + \alpha^2 v n_k`,
:math:`q_k = p_k - \alpha n_k m_k`; the Woodbury algebra of
:class:`~memcross.validation.lowrank.LowRankGMM` reduces to

.. math:: \ell_k = \frac{\alpha\, m_k\cdot p_k - \tfrac12\alpha^2 n_k\|m_k\|^2}{\sigma^2}
          + \frac{\alpha^2 v\,\|q_k\|^2}{2\sigma^2 s_k} - \tfrac32\log s_k,
   \qquad E[X_0 \mid X_t] = \sum_k w_k\,\bar c_k u_k^\top,\quad \bar c_k = m_k + \frac{\alpha v}{s_k} q_k,

with :math:`w = \mathrm{softmax}(\ell)` (the :math:`\tfrac32\log s_k` is the rank-3 log-determinant).
Only ``3 x P`` by ``P x M`` products touch the pixels, so a step costs a few GEMMs.

Inits: ``pmem`` (default) — each of the first ``M`` training points of the nested order, split
by its rank-1 SVD :math:`X_i = \sigma_1 a b^\top` into a template :math:`b/\max|b|` (peak 1, like
the data's min-max templates) and a colour, with variance ``1e-6``: it uses the samples only.
``oracle`` — the authors' init: the sample's *true* template and its exact colour
:math:`X_i u/\|u\|^2`; it needs the labels and templates of the data. ``random`` — uniform
``[0, 1)`` pixels, standard normal colours, variance 1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from memcross.validation.inits import InitRegistry

INITS = InitRegistry("coloured templates")


def split_rank_one(samples: torch.Tensor, P: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Templates ``(M, P)`` with peak ``|u| = 1`` and colours ``(M, 3)`` with ``m (x) u = x`` for
    rank-1 samples ``x = vec(c u^T)`` (the best rank-1 fit otherwise)."""
    X = samples.reshape(-1, 3, P)
    a, sv, bh = torch.linalg.svd(X, full_matrices=False)
    b = bh[:, 0, :]  # (M, P)
    peak = b.gather(1, b.abs().argmax(1, keepdim=True))  # signed largest entry
    return b / peak, sv[:, :1] * a[:, :, 0] * peak


@INITS.register("pmem", 1e-6)
def _pmem(data, M: int, gen: torch.Generator):
    return split_rank_one(data.subset(M), data.templates.shape[1])


@INITS.register("oracle", 1e-6)
def _oracle(data, M: int, gen: torch.Generator):
    idx = data.order[:M]
    u = torch.as_tensor(data.templates, dtype=torch.float64)[data.train_labels[idx]]
    X = data.train[idx].reshape(M, 3, -1)
    return u, (X @ u.unsqueeze(2)).squeeze(2) / (u * u).sum(1, keepdim=True)


@INITS.register("random", 1.0)
def _random(data, M: int, gen: torch.Generator):
    P = data.templates.shape[1]
    return (torch.rand(M, P, generator=gen, dtype=torch.float64),
            torch.randn(M, 3, generator=gen, dtype=torch.float64))


def init_names() -> list[str]:
    """The names of the coloured family's initializations."""
    return INITS.names()


def check_init(name: str) -> None:
    """Raise ValueError unless ``name`` is an initialization of the coloured family."""
    INITS.check(name)


def _terms(X: torch.Tensor, u: torch.Tensor, m: torch.Tensor, v, a: torch.Tensor, s2: torch.Tensor):
    """Per-component quantities for points ``X`` (B, 3, P): ``p, n, s, q, logits, cbar``."""
    p = torch.einsum("bcp,kp->bck", X, u)  # (B, 3, M)
    n = (u * u).sum(1)  # (M,)
    a3, s23 = a.reshape(-1, 1, 1), s2.reshape(-1, 1, 1)
    s = s2.reshape(-1, 1) + a.reshape(-1, 1) ** 2 * v * n  # (B, M)
    q = p - a3 * n * m.T  # (B, 3, M)
    mm = (m * m).sum(1)
    logits = ((a3 * m.T * p).sum(1) - 0.5 * a.reshape(-1, 1) ** 2 * n * mm) / s2.reshape(-1, 1) \
        + (a3**2 * v * q * q).sum(1) / (2 * s23.squeeze(2) * s) - 1.5 * torch.log(s)
    cbar = m.T + a3 * v * q / s.unsqueeze(1)
    return p, n, s, q, logits, cbar


def colored_posterior_mean(x: torch.Tensor, alpha, sigma, templates: torch.Tensor, colours: torch.Tensor,
                           variance) -> torch.Tensor:
    """:math:`E[x_0 \\mid x_t = x]` of one coloured-template model with uniform priors, ``x``
    ``(B, 3P)``: the same numbers as :meth:`LowRankGMM.posterior_mean` without ``(K, B, D)``
    temporaries."""
    B, D = x.shape
    P = templates.shape[1]
    u, m = templates.to(x), colours.to(x)
    a = torch.full((B,), float(alpha), dtype=x.dtype, device=x.device)
    s2 = torch.full((B,), float(sigma) ** 2, dtype=x.dtype, device=x.device)
    _, _, _, _, logits, cbar = _terms(x.reshape(B, 3, P), u, m, float(variance), a, s2)
    w = torch.softmax(logits, dim=1)
    return ((w.unsqueeze(1) * cbar) @ u).reshape(B, D)


def _basis(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The reduced QR ``U^T = Q R`` of templates ``u`` ``(M, P)``, in float64 whatever ``u``'s dtype
    (so a float32 step's basis is the float64 one rounded once)."""
    return torch.linalg.qr(u.double().T)


def _zeta(z: torch.Tensor, r: int) -> torch.Tensor:
    """The colour-space noise of a model with ``r = min(P, M)``: ``(3B, r)``, rows ``(b, channel)``,
    the first ``r`` rows of the buffer ``z`` ``(B, 3 min(P, N))`` read as ``(min(P, N), B, 3)``."""
    return z.reshape(-1, 3 * z.shape[0])[:r].T


#: The parameterizations of the colour variance: its standard deviation or its log.
VARIANCE_PARAMS = ("std", "log-var")


def check_variance_param(name) -> None:
    """Raise ValueError unless ``name`` is one of :data:`VARIANCE_PARAMS`."""
    if name not in VARIANCE_PARAMS:
        raise ValueError(f"--variance-param must be one of {', '.join(VARIANCE_PARAMS)}, got {name!r}")


class ColoredFamily:
    """Parameters of ``len(sizes)`` coloured-template models, concatenated without padding:
    ``templates`` ``(sum(sizes), P)``, ``colours`` ``(sum(sizes), 3)`` and ``scale`` ``(S,)``, each
    model's colour standard deviation (``variance_param="std"``) or log-variance (``"log-var"``).

    >>> from memcross.validation.lowrank import make_colored_data
    >>> data = make_colored_data(np.eye(2, 4) + 0.5, N=6, seed=0)
    >>> fam = ColoredFamily.initialize(data, [2, 6], "pmem", dtype=torch.float64)
    >>> x = data.subset(2)
    >>> bool(torch.allclose(fam.component_means(0), x))  # pmem components sit on the samples
    True
    """

    init_names = staticmethod(init_names)
    check_init = staticmethod(check_init)
    variance_params = VARIANCE_PARAMS

    def __init__(self, sizes, templates: torch.Tensor, colours: torch.Tensor, scale: torch.Tensor,
                 variance_param: str = "std"):
        check_variance_param(variance_param)
        self.sizes = [int(m) for m in sizes]
        self.offsets = [0]
        for m in self.sizes[:-1]:
            self.offsets.append(self.offsets[-1] + m)
        self.templates, self.colours, self.scale = templates, colours, scale
        self.variance_param = variance_param

    def _variance_of(self, scale: torch.Tensor) -> torch.Tensor:
        return scale**2 if self.variance_param == "std" else scale.exp()

    @classmethod
    def initialize(cls, data, sizes, init: str = "pmem", seed: int = 0, variance: float | None = None,
                   dtype=torch.float32, device="cpu", variance_param: str = "std") -> ColoredFamily:
        """A family of ``len(sizes)`` models on ``data``, each initialized by ``init`` from generator seed ``seed``;
        ``variance`` overrides the init's starting variance (kept as its root or its log, by
        ``variance_param``)."""
        check_variance_param(variance_param)
        fn, v = INITS.resolve(init, variance)
        gen = torch.Generator().manual_seed(int(seed))
        parts = [fn(data, M, gen) for M in sizes]
        u = torch.cat([p[0] for p in parts])
        m = torch.cat([p[1] for p in parts])
        start = float(np.sqrt(v)) if variance_param == "std" else float(np.log(v))
        scale = torch.full((len(sizes),), start, dtype=torch.float64)
        return cls(sizes, *(t.to(dtype=dtype, device=device) for t in (u, m, scale)), variance_param=variance_param)

    def parameters(self) -> list[torch.Tensor]:
        """The trainable tensors: ``[templates, colours, scale]``."""
        return [self.templates, self.colours, self.scale]

    def variance(self) -> torch.Tensor:
        """Each model's colour variance (``std ** 2`` or ``exp(log_var)``), shape ``(S,)``, detached."""
        return self._variance_of(self.scale.detach())

    def _slices(self):
        return [slice(o, o + m) for o, m in zip(self.offsets, self.sizes)]

    def arrays(self, i: int) -> dict[str, np.ndarray]:
        """Model ``i``'s parameters as float64 arrays (what a sweep stores)."""
        sl = self._slices()[i]
        return {"templates": self.templates.detach()[sl].double().cpu().numpy(),
                "colours": self.colours.detach()[sl].double().cpu().numpy(),
                "variance": np.float64(self.variance()[i].double().cpu())}

    def component_means(self, i: int) -> torch.Tensor:
        """Model ``i``'s component means :math:`m_k \\otimes u_k`, ``(M, 3P)``."""
        sl = self._slices()[i]
        u, m = self.templates.detach()[sl], self.colours.detach()[sl]
        return (m.unsqueeze(2) * u.unsqueeze(1)).reshape(u.shape[0], -1)

    def x0_error(self, x0: torch.Tensor, z: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The scaled x0 error :math:`e = (f(x_t) - x_0)/\\sigma`, shape (B, S, D); differentiable
        (the autograd reference for :meth:`loss_and_grad`)."""
        B, D = x0.shape
        P = D // 3
        X = (alpha.reshape(-1, 1) * x0 + sigma.reshape(-1, 1) * z).reshape(B, 3, P)
        out = []
        for i, sl in enumerate(self._slices()):
            u, m = self.templates[sl], self.colours[sl]
            *_, logits, cbar = _terms(X, u, m, self._variance_of(self.scale[i]), alpha, sigma**2)
            f = (torch.softmax(logits, 1).unsqueeze(1) * cbar) @ u
            out.append((f.reshape(B, D) - x0) / sigma.reshape(-1, 1))
        return torch.stack(out, dim=1)

    @staticmethod
    def factors(data, draws: int, dtype=torch.float32, device="cpu") -> dict | None:
        """The training rows as ``colour (x) template`` for :meth:`loss_and_grad`'s colour-space
        path: ``{"colours": (N R, 3), "labels": (N R,), "templates": (K, P), "noise_dim": 3 r}``, where
        that path's noise has ``r = min(P, N)`` columns per channel (as many as the largest model can
        use, whatever sizes are in the batch); None where the data are not exactly of that form (then
        the pixel-space path runs)."""
        labels = getattr(data, "train_labels", None)
        templates = getattr(data, "templates", None)
        if labels is None or templates is None:
            return None
        u = torch.as_tensor(np.asarray(templates), dtype=torch.float64)
        X = data.train.to(torch.float64).reshape(data.train.shape[0], 3, -1)
        ut = u[labels]
        c = (X @ ut.unsqueeze(2)).squeeze(2) / (ut * ut).sum(1, keepdim=True)
        if (c.unsqueeze(2) * ut.unsqueeze(1) - X).abs().max() > 1e-9 * max(float(X.abs().max()), 1e-300):
            return None
        return {"colours": c.repeat(draws, 1).to(dtype=dtype, device=device),
                "labels": labels.repeat(draws).to(device), "templates": u.to(dtype=dtype, device=device),
                "noise_dim": 3 * min(u.shape[1], data.N)}

    def pixel_noise(self, z: torch.Tensor, i: int) -> torch.Tensor:
        r"""The pixel-space noise ``(B, 3P)`` that the colour-space noise ``z`` ``(B, 3 r)`` stands
        for in model ``i``: :math:`Z = \zeta Q^\top` with :math:`U^\top = QR` (reduced QR of the
        model's templates) and :math:`\zeta` the first ``min(P, M)`` columns of each channel of
        ``z``. Model ``i``'s loss and gradient on ``z`` (:meth:`loss_and_grad` with factors) are
        the pixel path's on this ``Z``."""
        Q, _ = _basis(self.templates.detach()[self._slices()[i]])
        return (_zeta(z, Q.shape[1]).to(Q) @ Q.T).reshape(z.shape[0], -1)

    def loss_and_grad(self, x0: torch.Tensor, z: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor,
                      kappa: torch.Tensor, factors: dict | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        r"""Per-size loss :math:`\frac1B\sum_b\kappa_b\|e_{bs}\|^2` and its gradient with respect to
        ``(templates, colours, scale)``, by hand (tested against autograd on :meth:`x0_error`).

        **Pixel path** (``factors`` None, ``z`` the ``(B, 3P)`` noise): the pixel work is
        :math:`p = X_t U^\top` and the template gradient :math:`G_p^\top X_t` over all models'
        templates at once, and per model :math:`f = W_c U` and :math:`G_f U^\top`; the rest lives
        in the ``3 x M`` colour space.

        **Colour-space path** (``factors`` from :meth:`factors`: every training row is
        :math:`c_b \otimes u^*_{k_b}`; ``z`` is ``(B, 3r)``). Nothing of size ``B x P`` is formed:

        - A model's loss depends on the noise only through :math:`Z U^\top`. With the reduced QR
          :math:`U^\top = QR`, :math:`Z U^\top = \zeta R` where :math:`\zeta = ZQ` has i.i.d.
          standard normal entries, so ``z`` supplies :math:`\zeta` directly (each model takes its
          first ``min(P, M)`` columns per channel, :func:`_zeta`: the models are trained
          independently, so they may share them). Then :math:`p = \alpha\, c_b \otimes (U u^*_{k_b}) + \sigma \zeta R`.
        - :math:`\|W_c U - X_0\|^2 = \mathrm{tr}(W_c G W_c^\top) - 2\,\mathrm{tr}(W_c p_0^\top)
          + \|X_0\|^2` with the Gram matrix :math:`G = U U^\top` and :math:`p_0 = X_0 U^\top`.
        - The template gradient's noise term :math:`\sigma G_p^\top Z` is replaced by its
          conditional expectation given :math:`\zeta`, :math:`\sigma G_p^\top \zeta Q^\top`
          (:math:`E[Z \mid \zeta] = \zeta Q^\top`, and :math:`G_p` depends on :math:`Z` only
          through :math:`\zeta`): the same expected gradient with less variance. On the pixel
          noise :math:`Z = \zeta Q^\top` (:meth:`pixel_noise`) both paths give the same numbers.

        A step then costs :math:`O(B M^2)` per model instead of :math:`O(B M P)`."""
        B, D = x0.shape
        P = D // 3
        U = self.templates.detach()
        Mc = self.colours.detach()
        scale = self.scale.detach()
        v_all = self._variance_of(scale)
        a = alpha.reshape(B)
        s2 = sigma.reshape(B) ** 2
        a1, s21 = a.reshape(B, 1), s2.reshape(B, 1)
        a3, sig3 = a.reshape(B, 1, 1), sigma.reshape(B, 1, 1)
        n_all = (U * U).sum(1)
        if factors is None:
            X0 = x0.reshape(B, 3, P)
            Xf = (a3 * X0 + sig3 * z.reshape(B, 3, P)).reshape(3 * B, P)
            p_all = (Xf @ U.T).reshape(B, 3, -1)  # one GEMM for every model
            g_p_all = torch.empty_like(p_all)
        else:
            c0, lab, Ustar = factors["colours"], factors["labels"], factors["templates"]
            T_all = (Ustar @ U.T)[lab]  # (B, M_total): u*_{k_b} . u_k
            x0_norm2 = (c0 * c0).sum(1) * (Ustar * Ustar).sum(1)[lab]  # ||X0_b||^2
            onehot = torch.nn.functional.one_hot(lab, Ustar.shape[0]).to(U.dtype)  # (B, K)
            wgt = ((2.0 / B) * kappa.reshape(B) / s2).reshape(B, 1, 1)  # d loss / d ||f - X0||^2 per row
        S = len(self.sizes)
        loss = x0.new_empty(S)
        g_U = torch.zeros_like(U)
        g_M = torch.empty_like(Mc)
        g_lv = x0.new_empty(S)
        kap = kappa.reshape(B, 1, 1)
        for i, sl in enumerate(self._slices()):
            u, m, v = U[sl], Mc[sl], v_all[i]
            M, n = u.shape[0], n_all[sl]
            if factors is None:
                p = p_all[:, :, sl]
            else:
                Q, R = (t.to(u.dtype) for t in _basis(u))
                zr = _zeta(z, R.shape[0])
                p0 = c0.unsqueeze(2) * T_all[:, sl].unsqueeze(1)  # (B, 3, M) = X0 u^T
                p = a3 * p0 + sig3 * (zr @ R).reshape(B, 3, M)
            s = s21 + a1**2 * v * n  # (B, M)
            q = p - a3 * n * m.T  # (B, 3, M)
            mm = (m * m).sum(1)
            qq = (q * q).sum(1)
            logits = ((a3 * m.T * p).sum(1) - 0.5 * a1**2 * n * mm) / s21 + a1**2 * v * qq / (2 * s21 * s) \
                - 1.5 * torch.log(s)
            w = torch.softmax(logits, 1)  # (B, M)
            k_q = a3 * v / s.unsqueeze(1)  # alpha v / s, (B, 1, M)
            cbar = m.T + k_q * q
            Wc = w.unsqueeze(1) * cbar  # (B, 3, M)
            if factors is None:
                f = Wc.reshape(3 * B, -1) @ u  # (3B, P)
                e = (f.reshape(B, 3, P) - X0) / sig3
                loss[i] = (kap * e * e).sum() / B
                g_f = ((2.0 / B) * kap / sig3 * e).reshape(3 * B, P)
                g_Wc = (g_f @ u.T).reshape(B, 3, -1)
                g_U[sl] += Wc.reshape(3 * B, -1).T @ g_f
            else:  # the same in colour space: G = u u^T
                WG = (Wc.reshape(3 * B, -1) @ (u @ u.T)).reshape(B, 3, -1)
                err2 = (WG * Wc).sum((1, 2)) - 2 * (Wc * p0).sum((1, 2)) + x0_norm2  # ||f - X0||^2
                loss[i] = (kappa.reshape(B) / s2 * err2).sum() / B
                g_Wc = wgt * (WG - p0)
                Wr = (wgt * Wc).reshape(3 * B, -1)
                g_U[sl] += (Wr.T @ Wc.reshape(3 * B, -1)) @ u
                h = -(Wr.reshape(B, 3, -1) * c0.unsqueeze(2)).sum(1)  # (B, M): the -2 tr(W_c p0^T) term
            g_w = (g_Wc * cbar).sum(1)
            g_cbar = g_Wc * w.unsqueeze(1)
            g_L = w * (g_w - (w * g_w).sum(1, keepdim=True))  # softmax backward, (B, M)
            # cbar = m + k_q q
            g_m = g_cbar.sum(0).T  # (M, 3)
            g_q = g_cbar * k_q
            gcq = (g_cbar * q).sum(1)  # (B, M)
            g_s = -gcq * a1 * v / s**2
            g_v = (gcq * a1 / s).sum()
            # logits
            L2 = g_L / s21  # (B, M)
            g_p = (L2 * a1).unsqueeze(1) * m.T
            g_m = g_m + ((L2 * a1).unsqueeze(1) * p).sum(0).T - m * (L2 * a1**2 * n).sum(0).unsqueeze(1)
            g_n = -(L2 * a1**2).sum(0) * 0.5 * mm
            c = g_L * a1**2 / (2 * s21 * s)  # coefficient of v ||q||^2
            g_q = g_q + (2 * v) * c.unsqueeze(1) * q
            g_v = g_v + (c * qq).sum()
            g_s = g_s - c * v * qq / s - 1.5 * g_L / s
            # q = p - alpha n m
            g_p = g_p + g_q
            aq = (a3 * g_q).sum(0)  # (3, M) = sum_b alpha g_q
            g_n = g_n - (aq * m.T).sum(0)
            g_m = g_m - (aq * n).T
            # s = sigma^2 + alpha^2 v n
            g_v = g_v + (g_s * a1**2 * n).sum()
            g_n = g_n + v * (g_s * a1**2).sum(0)
            g_U[sl] += 2 * g_n.unsqueeze(1) * u
            if factors is None:
                g_p_all[:, :, sl] = g_p
            else:  # p = X_t u^T with X_t = alpha X0 + sigma zeta Q^T: G_p^T X_t by the factors
                h = h + (a3 * g_p * c0.unsqueeze(2)).sum(1)
                g_U[sl] += (onehot.T @ h).T @ Ustar + ((sig3 * g_p).reshape(3 * B, -1).T @ zr) @ Q.T
            g_M[sl] = g_m
            g_lv[i] = (2 * scale[i] if self.variance_param == "std" else v) * g_v  # dv/dscale
        if factors is None:
            g_U += g_p_all.reshape(3 * B, -1).T @ Xf
        return loss, [g_U, g_M, g_lv]

    @staticmethod
    def training_memory(d: int, N: int, draws: int, sizes, itemsize: int = 4) -> int:
        """Bytes one training step of ``sizes`` holds at its peak, about (measured within 1.5x on
        CPU): the family works size by size, about 18 ``(B, 3P)`` arrays and ``(3B, M)``
        colour-space arrays, ``B = N R``."""
        sizes = [int(M) for M in sizes]
        B, total = N * draws, sum(sizes)
        return int(itemsize * (18 * B * d + 3 * B * (2 * total + 20 * max(sizes))))

    def state(self) -> dict:
        """A checkpointable state: ``sizes`` and detached CPU copies of the three parameter tensors
        (the third named ``std`` or ``log_var``)."""
        names = ("templates", "colours", "std" if self.variance_param == "std" else "log_var")
        return {"sizes": self.sizes, **{k: t.detach().cpu() for k, t in zip(names, self.parameters())}}


def colored_denoiser(arrays: dict) -> Callable:
    """The x0 predictor ``(x, alpha, sigma) -> E[x_0 | x]`` of stored model arrays, float64."""
    u = torch.as_tensor(arrays["templates"], dtype=torch.float64)
    m = torch.as_tensor(arrays["colours"], dtype=torch.float64)
    v = float(arrays["variance"])
    return lambda x, a, s: colored_posterior_mean(x, a, s, u, m, v)
