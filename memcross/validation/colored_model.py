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

with :math:`w = \mathrm{softmax}(\ell)` (:func:`~memcross.validation.denoisers.softmax_weights`; the :math:`\tfrac32\log s_k` is the rank-3 log-determinant).
Only ``3 x P`` by ``P x M`` products touch the pixels, so a step costs a few GEMMs.

Inits: ``pmem`` (default) — each of the first ``M`` training points of the nested order, split
by its rank-1 SVD :math:`X_i = \sigma_1 a b^\top` into a template :math:`b/\max|b|` (peak 1, like
the data's min-max templates) and a colour, with variance ``1e-6``: it uses the samples only.
``oracle`` — the authors' init: the sample's *true* template and its exact colour
:math:`X_i u/\|u\|^2`; it needs the labels and templates of the data. ``random`` — uniform
``[0, 1)`` pixels, standard normal colours, variance 1.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch

from memcross.validation.denoisers import softmax_weights
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


def colored_posterior_mean(x: torch.Tensor, alpha, sigma, templates: torch.Tensor, colours: torch.Tensor,
                           variance) -> torch.Tensor:
    """:math:`E[x_0 \\mid x_t = x]` of one coloured-template model with uniform priors, ``x``
    ``(B, 3P)``: the same numbers as :meth:`LowRankGMM.posterior_mean` without ``(K, B, D)``
    temporaries."""
    B, D = x.shape
    P = templates.shape[1]
    u, m = templates.to(x), colours.to(x)
    a = torch.full((B, 1), float(alpha), dtype=x.dtype, device=x.device)
    s2 = torch.full((B, 1), float(sigma) ** 2, dtype=x.dtype, device=x.device)
    p = x.reshape(B, 3, P) @ u.T
    Wc = _forward(p, m, (u * u).sum(1), float(variance), a, a**2, s2)["Wc"]
    return (Wc @ u).reshape(B, D)


@contextlib.contextmanager
def _one_thread(device: torch.device):
    """Run the block on one torch thread where ``device`` is the CPU (the thread count restored
    after)."""
    threads = torch.get_num_threads() if device.type == "cpu" else 1
    if threads > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if threads > 1:
            torch.set_num_threads(threads)


def _basis(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The reduced QR ``U^T = Q R`` of templates ``u`` ``(M, P)``, in float64 whatever ``u``'s dtype
    (so a float32 step's basis is the float64 one rounded once), on one thread on the CPU: at
    these sizes (``P = 225``, ``M <= 100``) LAPACK's threads cost more than they save (a step's ten
    factorizations took 9-11 ms on 2 threads, 5 ms on one), and the basis is then the same
    whatever the thread count."""
    with _one_thread(u.device):
        return torch.linalg.qr(u.double().T)


def _zeta(z: torch.Tensor, r: int) -> torch.Tensor:
    """The colour-space noise of a model with ``r = min(P, M)``: ``(3B, r)``, rows ``(b, channel)``,
    the first ``r`` rows of the buffer ``z`` ``(B, 3 min(P, N))`` read as ``(min(P, N), B, 3)``."""
    return z.reshape(-1, 3 * z.shape[0])[:r].T


def _csum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """:math:`\\sum_c a_{\\cdot c \\cdot} b_{\\cdot c \\cdot}` over the channel axis (-2, length 3) of
    broadcastable ``a`` and ``b``: three fused multiply-adds (about 3x faster on CPU than ``(a * b).sum(1)``,
    a reduction over a short middle axis)."""
    (a0, a1, a2), (b0, b1, b2) = a.unbind(-2), b.unbind(-2)
    return torch.addcmul(torch.addcmul(a0 * b0, a1, b1), a2, b2)


def _segment_sum(x: torch.Tensor, seg: torch.Tensor | None) -> torch.Tensor:
    """Sums of ``x`` ``(..., M_total)`` over each model's columns: ``(..., S)`` by the indicator
    ``seg`` ``(M_total, S)``, or the whole last axis ``(..., 1)`` for one model (``seg`` None)."""
    return x.sum(-1, keepdim=True) if seg is None else x @ seg


def _spread(x: torch.Tensor, seg: torch.Tensor | None) -> torch.Tensor:
    """Per-model values ``(..., S)`` repeated over each model's columns ``(..., M_total)``."""
    return x if seg is None else x @ seg.T


def _forward(p, m, n, v, a1, asq, s21, segments=None) -> dict:
    r"""The colour-space forward pass from :math:`p = X_t U^\top` ``(B, 3, M)`` (the module
    docstring's :math:`s, q, \ell, w, \bar c`): ``mT, s, q, qq, w, kq, ias, cbar, Wc`` with
    :math:`W_c = w \bar c`, so that :math:`E[X_0 \mid X_t] = W_c U`, ``kq`` :math:`= \alpha v/s`
    and ``ias`` :math:`= \alpha/s`. ``a1``, ``asq``, ``s21``: :math:`\alpha, \alpha^2, \sigma^2`
    as ``(B, 1)``. One model, or several side by side: then ``M`` is their total, ``v`` holds each
    column's variance ``(M,)`` and ``segments`` lists each model's column slice (the softmax is
    taken per model)."""
    mT = m.T.contiguous()  # (3, M); a transposed view would make the (B, 3, M) results non-contiguous
    s = torch.addcmul(s21, asq, v * n)  # sigma^2 + alpha^2 v n, (B, M)
    q = torch.addcmul(p, a1.unsqueeze(2), n * mT, value=-1)  # p - alpha n m
    qq = _csum(q, q)
    ias = a1 / s
    kq = ias * v  # alpha v / s
    # alpha m.p - alpha^2 n |m|^2 / 2 = alpha m.q + alpha^2 n |m|^2 / 2, over sigma^2; then
    # alpha^2 v |q|^2 / (2 sigma^2 s) = (alpha / (2 sigma^2)) kq |q|^2 and the log-determinant
    logits = torch.addcmul((0.5 * asq / s21) * (n * (m * m).sum(1)), a1 / s21, _csum(q, mT))
    logits.addcmul_(kq * qq, a1 / (2 * s21))
    logits.add_(torch.log(s), alpha=-1.5)
    if segments is None:
        w = softmax_weights(logits, 1)
    else:
        w = torch.empty_like(logits)
        for sl in segments:
            w[:, sl] = softmax_weights(logits[:, sl], 1)
    cbar = torch.addcmul(mT, kq.unsqueeze(1), q)
    return {"mT": mT, "s": s, "q": q, "qq": qq, "w": w, "kq": kq, "ias": ias, "cbar": cbar,
            "Wc": w.unsqueeze(1) * cbar}


def _backward(g_Wc, fwd: dict, p, m, n, v, a1, asq, s21, seg=None):
    """The gradients ``(g_p, g_m, g_n, g_v)`` of a loss with gradient ``g_Wc`` with respect to
    :func:`_forward`'s ``Wc``: with respect to ``p``, the colour means ``m``, the squared template
    norms ``n`` and the variance ``v`` (``(1,)``, or ``(S,)`` for models side by side, ``seg`` then
    their ``(M, S)`` column indicator)."""
    mT, s, q, qq, w, kq, ias, cbar = (fwd[k] for k in ("mT", "s", "q", "qq", "w", "kq", "ias", "cbar"))
    B = p.shape[0]
    g_w = _csum(g_Wc, cbar)
    g_L = w * (g_w - _spread(_segment_sum(w * g_w, seg), seg))  # softmax backward, (B, M)
    gcq = w * _csum(g_Wc, q)  # (g_cbar . q) with g_cbar = w g_Wc, (B, M)
    c = g_L * (a1 / (2 * s21)) * ias  # the coefficient of v ||q||^2 in the logits
    cqq = c * qq
    # cbar = m + kq q, and the logits' v ||q||^2 term
    g_q = torch.addcmul(g_Wc * (w * kq).unsqueeze(1), (2 * v) * c.unsqueeze(1), q)
    L2a = g_L * (a1 / s21)
    g_p = torch.addcmul(g_q, L2a.unsqueeze(1), mT)  # q = p - alpha n m, and the logits' alpha m.p
    a_row = a1.reshape(1, B)
    aq = (a_row @ g_q.reshape(B, -1)).reshape(3, -1)  # sum_b alpha g_q, (3, M)
    # d/ds of (kq = alpha v / s, v ||q||^2 alpha^2 / (2 sigma^2 s), -1.5 log s)
    g_s = torch.addcmul(gcq * kq + 1.5 * g_L, v, cqq).div_(s).neg_()
    g_sa = (asq.reshape(1, B) @ g_s).reshape(-1)
    g_v = _segment_sum((gcq * ias + cqq).sum(0) + g_sa * n, seg)
    aL = (a_row @ L2a).reshape(-1)  # sum_b alpha L2a, (M,)
    # sum_b (g_cbar + L2a p) - (sum_b alpha L2a) n m = sum_b (g_cbar + L2a q), with g_cbar = w g_Wc:
    # through q, without the cancellation of p's alpha n m part
    g_m = ((g_Wc * w.unsqueeze(1)).addcmul_(L2a.unsqueeze(1), q).sum(0) - aq * n).T
    g_n = -aL * 0.5 * (m * m).sum(1) - (aq * mT).sum(0) + v * g_sa
    return g_p, g_m, g_n, g_v


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
    #: The names of :meth:`parameters`' tensors for per-group learning rates (``--lr-factors``;
    #: ``variance``: the standard deviation or log-variance, whichever is trained).
    lr_groups = ("templates", "colours", "variance")

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
            a1 = alpha.reshape(B, 1)
            f = _forward(X @ u.T, m, (u * u).sum(1), self._variance_of(self.scale[i]), a1, a1**2,
                         sigma.reshape(B, 1) ** 2)["Wc"] @ u
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
        - The error :math:`f - X_0 = W_c U - c\,u^{*\top}` is formed in the same basis:
          :math:`u^* = QV + u^*_\perp` with :math:`V = Q^\top u^*`, so
          :math:`f - X_0 = E Q^\top - c\, u^{*\top}_\perp` with :math:`E = W_c R^\top - c V^\top`
          (``3 x r`` per row), :math:`\|f - X_0\|^2 = \|E\|^2 + \|c\|^2 \|u^*_\perp\|^2` and
          :math:`(f - X_0) U^\top = E R`. Entry by entry, so nothing cancels: the expansion
          :math:`\|f\|^2 - 2 f\cdot X_0 + \|X_0\|^2` by the Gram matrix loses the loss to float32
          rounding where :math:`\sigma` is small (a memorizer's came out 2.2-2.5 times too large at ``t = 0.001``).
        - The template gradient's noise term :math:`\sigma G_p^\top Z` is replaced by its
          conditional expectation given :math:`\zeta`, :math:`\sigma G_p^\top \zeta Q^\top`
          (:math:`E[Z \mid \zeta] = \zeta Q^\top`, and :math:`G_p` depends on :math:`Z` only
          through :math:`\zeta`): the same expected gradient with less variance. On the pixel
          noise :math:`Z = \zeta Q^\top` (:meth:`pixel_noise`) both paths give the same numbers.

        A step then costs :math:`O(B M^2)` per model instead of :math:`O(B M P)`. The colour-space
        path also works on all models' columns side by side (one ``(B, 3, sum M)`` array per
        quantity, a softmax per model): only the QR factors and the ``M x M`` products go model by
        model."""
        if factors is not None:
            return self._factored_loss_and_grad(x0, z, alpha, sigma, kappa, factors)
        B, D = x0.shape
        P = D // 3
        U, Mc, scale = self.templates.detach(), self.colours.detach(), self.scale.detach()
        v_all = self._variance_of(scale)
        a1, s21 = alpha.reshape(B, 1), sigma.reshape(B, 1) ** 2
        asq = a1**2
        n_all = (U * U).sum(1)
        X0 = x0.reshape(B, 3, P)
        Xf = (a1.unsqueeze(2) * X0 + sigma.reshape(B, 1, 1) * z.reshape(B, 3, P)).reshape(3 * B, P)
        p_all = (Xf @ U.T).reshape(B, 3, -1)  # one GEMM for every model
        g_p_all = torch.empty_like(p_all)
        S = len(self.sizes)
        loss = x0.new_empty(S)
        g_U = torch.zeros_like(U)
        g_M = torch.empty_like(Mc)
        g_v = x0.new_empty(S)
        for i, sl in enumerate(self._slices()):
            u, m, v, n, p = U[sl], Mc[sl], v_all[i], n_all[sl], p_all[:, :, sl]
            fwd = _forward(p, m, n, v, a1, asq, s21)
            Wc = fwd["Wc"].reshape(3 * B, -1)
            e = ((Wc @ u).reshape(B, 3, P) - X0) / sigma.reshape(B, 1, 1)
            ke = kappa.reshape(B, 1, 1) * e
            loss[i] = (ke * e).sum() / B
            g_f = ((2.0 / B) / sigma.reshape(B, 1, 1) * ke).reshape(3 * B, P)
            g_U[sl] += Wc.T @ g_f
            g_p_all[:, :, sl], g_M[sl], g_n, g_v[i:i + 1] = _backward(
                (g_f @ u.T).reshape(B, 3, -1), fwd, p, m, n, v, a1, asq, s21)
            g_U[sl] += 2 * g_n.unsqueeze(1) * u
        g_U += g_p_all.reshape(3 * B, -1).T @ Xf
        return loss, [g_U, g_M, self._dv_dscale(scale, v_all) * g_v]

    def _dv_dscale(self, scale: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return 2 * scale if self.variance_param == "std" else v

    def _segments(self, dtype, device) -> torch.Tensor:
        """The ``(sum M, S)`` indicator of each model's columns."""
        key = (dtype, device)
        if getattr(self, "_seg_cache", (None,))[0] != key:
            seg = torch.zeros(sum(self.sizes), len(self.sizes), dtype=dtype, device=device)
            for i, sl in enumerate(self._slices()):
                seg[sl, i] = 1
            self._seg_cache = (key, seg)
        return self._seg_cache[1]

    def _factored_loss_and_grad(self, x0, z, alpha, sigma, kappa, factors):
        """:meth:`loss_and_grad`'s colour-space path, all models' columns side by side."""
        B = x0.shape[0]
        U, Mc, scale = self.templates.detach(), self.colours.detach(), self.scale.detach()
        v_all = self._variance_of(scale)
        a1, s21 = alpha.reshape(B, 1), sigma.reshape(B, 1) ** 2
        asq = a1**2
        n = (U * U).sum(1)
        slices = self._slices()
        seg = self._segments(U.dtype, U.device)
        v = seg @ v_all  # each column's variance
        c0, lab, Ustar = factors["colours"], factors["labels"], factors["templates"]
        K = Ustar.shape[0]
        onehot = torch.nn.functional.one_hot(lab, K).to(U.dtype)  # (B, K)
        # the training colours by template, rows (b, c): c0_bc [k_b = k], (3B, K); products with it
        # gather per-template sums and spread per-template rows without indexing
        ck = (c0.unsqueeze(2) * onehot.unsqueeze(1)).reshape(3 * B, K)
        wgt = (2.0 / B) * kappa.reshape(B, 1) / s21  # d loss / d ||f - X0||^2 per row
        wgt3 = wgt.repeat_interleave(3, 0)  # per row (b, c)
        ack = alpha.reshape(B, 1).repeat_interleave(3, 0) * ck  # alpha c0_bc [k_b = k]
        zs = _zeta(z, z.shape[1] // 3) * sigma.repeat_interleave(3).reshape(3 * B, 1)  # sigma zeta, rows (b, c)
        # each model's template basis U^T = Q R (float64), the training templates in it, V = Q^T u*,
        # and the part outside it, u*_perp = u* - Q V (float64, formed as a residual)
        bases64 = [_basis(U[sl]) for sl in slices]
        bases = [tuple(t.to(U.dtype) for t in b) for b in bases64]
        Ustar64 = Ustar.double().T  # (P, K)
        inside = [Q.T @ Ustar64 for Q, _ in bases64]  # (r, K) per model
        perp = [Ustar64 - Q @ V for (Q, _), V in zip(bases64, inside)]  # (P, K) per model
        outside = torch.stack([(u * u).sum(0) for u in perp], 1).to(U.dtype)  # ||u*_perp||^2, (K, S)
        # p = sigma zeta R + alpha c0 (x) (U u*_{k_b}), each model's noise from its first min(P, M)
        # columns: one product [sigma zeta | alpha c0 [k_b = k]] [R side by side; u* U^T]
        Rcat = U.new_zeros(zs.shape[1] + K, U.shape[0])
        for (_, R), sl in zip(bases, slices):
            Rcat[:R.shape[0], sl] = R
        Rcat[zs.shape[1]:] = Ustar @ U.T
        p = (torch.cat([zs, ack], 1) @ Rcat).reshape(B, 3, -1)
        fwd = _forward(p, Mc, n, v, a1, asq, s21, slices)
        Wc = fwd["Wc"]
        W2 = Wc.reshape(3 * B, -1)
        # f - X0 = W_c U - c0 u*^T = E Q^T - c0 u*_perp^T with E = W_c R^T - c0 V^T (3 x r per row):
        # ||f - X0||^2 = ||E||^2 + |c0|^2 ||u*_perp||^2 and (f - X0) U^T = E R. Formed entry by
        # entry, not as ||f||^2 - 2 f.x0 + ||x0||^2, whose terms cancel to float32 rounding where
        # sigma is small (a memorizer's loss came out 2.2-2.5x too large at t = 0.001)
        g_Wc = torch.empty_like(W2)  # wgt (f - X0) U^T
        WE = []  # sum_b wgt_b W_b^T E_b, (M, r) per model: the template gradient's f - X0 term in the basis
        err2 = (c0 * c0).sum(1, keepdim=True) * outside[lab]  # (B, S)
        for i, ((_, R), sl, V) in enumerate(zip(bases, slices, inside)):
            E = torch.addmm(ck @ V.T.to(U.dtype), W2[:, sl], R.T, beta=-1)
            err2[:, i] += torch.bmm(E.view(B, 1, -1), E.view(B, -1, 1)).reshape(B)
            E.mul_(wgt3)
            g_Wc[:, sl] = E @ R
            WE.append(W2[:, sl].T @ E)
        loss = ((kappa.reshape(B, 1) / s21) * err2).sum(0) / B
        g_p, g_M, g_n, g_v = _backward(g_Wc.reshape(B, 3, -1), fwd, p, Mc, n, v, a1, asq, s21, seg)
        g_p2 = g_p.reshape(3 * B, -1)
        # the templates' gradient: sum_b wgt_b W_b^T (f_b - X0_b) through f = W_c U, and G_p^T X_t
        # through p = X_t U^T with X_t = alpha X0 + sigma zeta Q^T, both by the factors
        onto = ack.T @ g_p2  # (K, M): alpha (g_p . c0), gathered per template
        away = (wgt3 * ck).T @ W2  # (K, M): wgt (W_c . c0), for the u*_perp term
        g_U = onto.T @ Ustar + 2 * g_n.unsqueeze(1) * U
        for (Q, _), sl, we, u_perp in zip(bases, slices, WE, perp):
            gz = g_p2[:, sl].T @ zs[:, :Q.shape[1]]  # sum_b G_p^T sigma zeta, (M, r)
            g_U[sl] += (we + gz) @ Q.T - away[:, sl].T @ u_perp.T.to(U.dtype)
        return loss, [g_U, g_M, self._dv_dscale(scale, v_all) * g_v]

    @staticmethod
    def training_memory(d: int, N: int, draws: int, sizes, itemsize: int = 4) -> int:
        """Bytes one training step of ``sizes`` holds at its peak, about (measured within 1.5x on
        CPU): about 18 ``(B, 3P)`` arrays on the pixel path, and about 24 colour-space arrays
        ``(B, 3, sum M)`` (all models side by side), ``B = N R``."""
        sizes = [int(M) for M in sizes]
        B, total = N * draws, sum(sizes)
        return int(itemsize * (18 * B * d + 3 * B * 24 * total))

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
