r"""Training the GMM family on the denoising score-matching loss, all sizes together.

Loss (docs/validation.md, "Training"), for a network predicting target ``f`` with weight ``w`` stated on
``f`` — equivalently the x0-unit weight :math:`\lambda = c_f w`:

.. math:: L = \frac{1}{N R}\sum_{i, r} \lambda(t_{ir}) \|f_\theta(t_{ir}, x_{ir}) - x^i\|^2,
   \qquad x_{ir} = \alpha x^i + \sigma z_{ir},

``R`` fresh noise draws per training point each step, each draw's time from the measure (uniform
on a grid's points, or uniform on an interval), full batch: independently (``time_sampling``
``iid``, the default) or stratified (``stratified``: each point's ``R`` times one per ``1/R`` of
the range, the batch evenly spread; the same marginal, less variance). The x0 error is computed in the
factored form of :meth:`GMMFamily.x0_error`, so the loss equals the target-space squared error
exactly and stays accurate where :math:`\lambda \propto \psi \sim 10^6`.

Optimizer: Adam (0.9, 0.999, 1e-8), learning rate linear from 0 to ``lr`` over the first
``warmup`` fraction of steps, then linear to ``final_lr``. ``update_ema`` (e.g. 0.99) smooths
Adam's *updates* with a debiased exponential moving average, as the authors' code does.
The sizes share the noise (common random numbers) but not parameters; the summed loss gives each
size its own gradient, so a size trains the same whichever other sizes are in the batch.
"""

from __future__ import annotations

import ctypes
import dataclasses
import math
import platform
import sys
from dataclasses import dataclass, field

import numpy as np
import torch

from memcross._checks import check_int, check_seed
from memcross.validation.data import GMMData
from memcross.validation.datamodels import check_any_init, trainable_family
from memcross.validation.process import Process

#: Points of the loss / variance history kept per size.
HISTORY_POINTS = 200
#: Most optimizer steps of one training run (2,000 x the presets' 50,000 would take weeks on CPU).
MAX_STEPS = 100_000_000
#: Most noise draws ``R`` per training point and step.
MAX_DRAWS = 10_000
#: How a training step draws its times (``--time-sampling``).
TIME_SAMPLING = ("iid", "stratified")


def heap_for_large_arrays() -> bool:
    """Have glibc's ``malloc`` serve arrays up to 32 MiB from its heap and keep up to 256 MiB of
    freed memory, instead of mapping fresh pages for every array above its threshold and returning
    them on free; True where that took effect (Linux with glibc), False elsewhere.

    A training step allocates and frees tens of megabyte-sized temporaries; with fresh pages each
    costs a page fault per 4 KiB on first touch, several times the arithmetic (docs/benchmarks.md).
    The price is a process that keeps its peak heap instead of giving it back between steps.
    """
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(libc.mallopt(m_trim_threshold, 256 << 20))


def check_loss_weights(setting, config: TrainConfig) -> None:
    """Refuse a training loss (``config.target``, ``config.weighting``) whose x0-unit weight
    ``lambda sigma^2`` is not finite on the setting's time measure (what :class:`Trainer` would
    refuse), before anything runs."""
    train_setting = setting.replace(target=config.target, weighting=config.weighting, weight_expr=None)
    process = Process(train_setting)
    with np.errstate(all="ignore"):
        if process.is_grid:
            table = process.quadrature()
            kappa = table.lam * table.sigma**2
        else:
            lo, hi = process.bounds
            t = np.linspace(lo, hi, 257)[1:-1]
            kappa = process.lam(t) * process.sigma(t) ** 2
    if not np.all(np.isfinite(np.asarray(kappa, dtype=float))):
        raise ValueError(f"--train-weighting {config.weighting!r} is not finite on the time measure "
                         f"{setting.time!r}; choose another weighting or time measure")


class TrainingDiverged(ValueError):
    """The loss or the parameters became NaN or infinite: the learning rate is too high for the
    problem (or the weighting too steep)."""


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class TrainConfig:
    """How the family is trained. ``target`` and ``weighting`` name the loss (default: the paper's
    uniform eps loss); the schedule and time measure come from the setting."""

    steps: int = 50_000
    draws: int = 10
    lr: float = 1e-3
    final_lr: float = 1e-6
    warmup: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    update_ema: float | None = None
    init: str = "pmem"
    init_variance: float | None = None
    target: str = "eps"
    weighting: str = "eps-uniform"
    seed: int = 0
    dtype: str = "float32"
    #: Clip each model's gradient to this norm (the authors clip at 1e3); None: no clipping.
    clip: float | None = None
    #: The coloured family's variance parameter (``std``, its default, or ``log-var``); None: the family's.
    variance_param: str | None = None
    #: Learning rates of named parameter groups as multiples of ``lr``, e.g. ``{"colours": 10,
    #: "variance": 10}`` (the family's :attr:`lr_groups`; kept as sorted pairs); None: 1 for all.
    lr_factors: tuple[tuple[str, float], ...] | None = None
    #: The trained family: None (or ``gmm``) for the data model's own, ``mlp[:depth=D,embed=E]`` for MLP denoisers.
    family: str | None = None
    #: How a step draws its times (:data:`TIME_SAMPLING`): None or ``iid``, each row's time
    #: independently uniform; ``stratified``, each training point's ``R`` times one per ``1/R`` of
    #: the time range and the whole batch spread evenly (the same marginal, less variance).
    time_sampling: str | None = None

    def __post_init__(self):
        """Every field is checked here, before any data or store exists; the messages name the
        ``memcross validate`` flag of the field (``--lr``, ``--train-target``, ...)."""
        check_int(self.steps, "--steps", 1, MAX_STEPS)
        check_int(self.draws, "--draws", 1, MAX_DRAWS)
        if not (_finite_number(self.lr) and self.lr > 0):
            raise ValueError(f"--lr must be a finite positive number, got {self.lr!r}")
        if not (_finite_number(self.final_lr) and 0 <= self.final_lr <= self.lr):
            raise ValueError(f"final_lr must be a number in [0, lr] = [0, {self.lr}], got {self.final_lr!r}")
        if not (_finite_number(self.warmup) and 0 <= self.warmup < 1):
            raise ValueError(f"warmup must be a fraction in [0, 1), got {self.warmup!r}")
        betas = self.betas
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2
                and all(_finite_number(b) and 0 <= b < 1 for b in betas)):
            raise ValueError(f"--betas must be two numbers in [0, 1), got {betas!r}")
        if not (_finite_number(self.eps) and self.eps > 0):
            raise ValueError(f"eps must be a finite positive number, got {self.eps!r}")
        if self.update_ema is not None and not (_finite_number(self.update_ema) and 0 < self.update_ema < 1):
            raise ValueError(f"--update-ema must be a number in (0, 1) or unset, got {self.update_ema!r}")
        if self.init_variance is not None and not (_finite_number(self.init_variance) and self.init_variance > 0):
            raise ValueError(f"--init-variance must be a finite positive number, got {self.init_variance!r}")
        if self.clip is not None and not (_finite_number(self.clip) and self.clip > 0):
            raise ValueError(f"--clip must be a finite positive number or unset, got {self.clip!r}")
        if self.lr_factors is not None:
            object.__setattr__(self, "lr_factors", _lr_factor_pairs(self.lr_factors))
        if self.variance_param is not None:
            from memcross.validation.colored_model import check_variance_param

            check_variance_param(self.variance_param)
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.time_sampling == "iid":
            object.__setattr__(self, "time_sampling", None)
        if self.time_sampling is not None and self.time_sampling not in TIME_SAMPLING:
            raise ValueError(f"--time-sampling must be one of {', '.join(TIME_SAMPLING)}, got {self.time_sampling!r}")
        if self.family == "gmm":
            object.__setattr__(self, "family", None)
        if self.family is not None:
            from memcross.validation.mlp_model import parse_family

            parse_family(self.family)
        check_any_init(self.init)
        check_seed(self.seed, "--train-seed")
        from memcross.theory.targets import get_target
        from memcross.theory.weightings import get_weighting

        if not isinstance(self.target, str):
            raise ValueError(f"--train-target must be a target name, got {self.target!r}")
        try:
            get_target(self.target)
        except ValueError as exc:
            raise ValueError(f"--train-target {self.target!r}: {exc}") from None
        if not isinstance(self.weighting, str):
            raise ValueError(f"--train-weighting must be a weighting name, got {self.weighting!r}")
        if self.weighting.partition(":")[0].strip() == "custom":
            raise ValueError("--train-weighting 'custom' is not available: the training loss takes a named "
                             "weighting (e.g. eps-uniform, x0-uniform, min-snr, edm)")
        try:
            get_weighting(self.weighting, self.target)
        except ValueError as exc:
            raise ValueError(f"--train-weighting {self.weighting!r}: {exc}") from None

    def to_dict(self) -> dict:
        """The options as a plain dict (``betas`` as a list)."""
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        for name in ("clip", "variance_param", "lr_factors", "family", "time_sampling"):  # left out unset, so runs stored before they existed keep their keys
            if out[name] is None:
                del out[name]
        if "lr_factors" in out:
            out["lr_factors"] = dict(self.lr_factors)
        return out

    def learning_rate(self, step: int) -> float:
        """Linear warm-up from 0 to ``lr`` over ``warmup * steps``, then linear to ``final_lr``."""
        n_warm = int(round(self.warmup * self.steps))
        if step < n_warm:
            return self.lr * (step + 1) / n_warm
        span = max(self.steps - n_warm - 1, 1)
        return self.lr + (self.final_lr - self.lr) * (step - n_warm) / span


def _lr_factor_pairs(value) -> tuple[tuple[str, float], ...]:
    """``lr_factors`` as sorted ``(name, factor)`` pairs from a mapping or pairs; a ValueError naming
    ``--lr-factors`` unless every name is a string and every factor a finite positive number."""
    try:
        pairs = sorted(dict(value).items())
    except (TypeError, ValueError):
        pairs = None
    if not pairs or not all(isinstance(k, str) and k and _finite_number(f) and f > 0 for k, f in pairs):
        raise ValueError(f"--lr-factors must map parameter groups to finite positive multiples of --lr "
                         f"(e.g. colours=10,variance=10), got {value!r}")
    return tuple((k, float(f)) for k, f in pairs)


def family_for(config: TrainConfig, data_model: str):
    """The trained family class of ``config`` on data model ``data_model``: the data model's own
    (:func:`~memcross.validation.datamodels.trainable_family`) unless ``config.family`` names another."""
    if config.family is None:
        return trainable_family(data_model)
    from memcross.validation.mlp_model import MLPFamily

    return MLPFamily


def family_options(family, config: TrainConfig, data_model: str) -> dict:
    """The options of ``config`` that ``family.initialize`` takes beyond the common ones; a
    ValueError where ``config`` asks for one the family does not have."""
    if config.family is not None:
        from memcross.validation.mlp_model import parse_family

        if config.variance_param is not None:
            raise ValueError("--variance-param applies to the coloured-template family, not to MLP denoisers")
        if config.lr_factors is not None:
            raise ValueError("--lr-factors applies to the GMM families' parameter groups, not to MLP denoisers")
        if config.init_variance is not None:
            raise ValueError("--init-variance does not apply to MLP denoisers (they have no variance)")
        return parse_family(config.family)
    if config.lr_factors is not None:
        groups = getattr(family, "lr_groups", ())
        for name, _ in config.lr_factors:
            if name not in groups:
                raise ValueError(f"--lr-factors: the family of data {data_model!r} has no parameter group "
                                 f"{name!r}; its groups are {', '.join(groups) or 'none'}")
    if config.variance_param is None:
        return {}
    if not hasattr(family, "variance_params"):
        raise ValueError(f"--variance-param applies to the coloured-template family, not to data {data_model!r}")
    return {"variance_param": config.variance_param}


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype named ``float32`` or ``float64`` (KeyError otherwise)."""
    return {"float32": torch.float32, "float64": torch.float64}[name]


@dataclass
class History:
    """Loss and variance per size at evenly spaced steps (means over each logging window)."""

    steps: list[int] = field(default_factory=list)
    loss: list[list[float]] = field(default_factory=list)
    variance: list[list[float]] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The history as a plain dict of its fields."""
        return dataclasses.asdict(self)


class Trainer:
    """Trains the family of ``data`` (:func:`~memcross.validation.datamodels.trainable_family`) on it; :meth:`run` can stop and resume via :meth:`state_dict`.

    >>> from memcross.theory import Setting
    >>> from memcross.validation.data import make_gmm_data
    >>> data = make_gmm_data(4, 2, 8, seed=0)
    >>> tr = Trainer(data, Process(Setting(d=4, K=2, N=8)), [2, 8], TrainConfig(steps=20, draws=2))
    >>> tr.run().steps[-1]
    20
    """

    def __init__(self, data: GMMData, process: Process, sizes, config: TrainConfig, device="cpu"):
        family = family_for(config, data.data_model)
        if getattr(family, "sizes_are_widths", False):
            from memcross.validation.mlp_model import MAX_WIDTH

            name, high, high_name = "width", MAX_WIDTH, ""
        else:
            name, high, high_name = "model size M", data.N, "N"
        for M in sizes:
            check_int(M, name, 1, high, high_name=high_name)
        self.data, self.process, self.config = data, process, config
        self.sizes = list(sizes)
        self.device = torch.device(device)
        if self.device.type == "cpu":
            heap_for_large_arrays()
        dtype = torch_dtype(config.dtype)
        self.dtype = dtype
        train_setting = process.setting.replace(target=config.target, weighting=config.weighting, weight_expr=None)
        self.loss_process = Process(train_setting)
        family.check_init(config.init)
        self.family = family.initialize(data, self.sizes, config.init, config.seed, config.init_variance, dtype,
                                        self.device, **family_options(family, config, data.data_model))
        factors = getattr(self.family, "factors", None)
        self._factors = factors(data, config.draws, dtype, self.device) if factors else None
        total = sum(self.sizes)
        self._rows = torch.repeat_interleave(torch.arange(len(self.sizes)), torch.tensor(self.sizes)).to(self.device)
        rows = getattr(self.family, "param_rows", None)
        self._row_of = rows() if rows is not None else [
            self._rows if p.shape[0] == total else torch.arange(len(self.sizes), device=self.device)
            for p in self.family.parameters()]
        for p in self.family.parameters():
            p.requires_grad_(True)
        self.gen = torch.Generator().manual_seed(int(config.seed) + 1)
        self.step = 0
        # each parameter's learning rate as a multiple of the schedule's (config.lr_factors, by group)
        factors = dict(config.lr_factors or ())
        self._lr_factors = [factors.get(name, 1.0) for name in getattr(self.family, "lr_groups", ())] \
            or [1.0] * len(self.family.parameters())
        self.adam_m = [torch.zeros_like(p) for p in self.family.parameters()]
        self.adam_v = [torch.zeros_like(p) for p in self.family.parameters()]
        self.ema = [torch.zeros_like(p) for p in self.family.parameters()] if config.update_ema else None
        self.history = History()
        self._window = torch.zeros(len(self.sizes), dtype=torch.float64)
        self._window_n = 0
        self.x0 = data.train.to(dtype=dtype, device=self.device).repeat(config.draws, 1)
        if process.is_grid:
            table = self.loss_process.quadrature()
            self._alpha = torch.as_tensor(table.alpha, dtype=dtype, device=self.device)
            self._sigma = torch.as_tensor(table.sigma, dtype=dtype, device=self.device)
            # loss = lam ||f - x0||^2 = lam sigma^2 ||e||^2
            self._kappa = torch.as_tensor(table.lam * table.sigma**2, dtype=dtype, device=self.device)
        if not np.all(np.isfinite(self._kappa_check())):
            raise ValueError(f"training weighting {config.weighting!r} is not finite on {process.setting.time!r}")

    def _kappa_check(self) -> np.ndarray:
        if self.process.is_grid:
            return self._kappa.cpu().numpy()
        lo, hi = self.process.bounds
        t = np.linspace(lo, hi, 257)[1:-1]
        return self.loss_process.lam(t) * self.loss_process.sigma(t) ** 2

    def _stratified(self, n: int) -> torch.Tensor:
        r"""``n = N R`` uniform numbers in ``[0, 1)``, row ``r N + i`` (draw ``r`` of training point
        ``i``): the fractional part of :math:`u_0 + r/R + \pi_i/(NR)`, with one uniform :math:`u_0` and a random
        permutation :math:`\pi` of the points per step. Each row is uniform, each point's ``R``
        draws fall one in each ``1/R`` of the range, and the batch sits on an evenly spaced grid of
        ``n`` points, so the step's loss and gradient are unbiased with less variance than
        independent draws give (the low-discrepancy sampler of variational diffusion models)."""
        R = self.config.draws
        N = n // R
        u0 = torch.rand(1, generator=self.gen, dtype=torch.float64)
        perm = torch.randperm(N, generator=self.gen).to(torch.float64)
        draw = torch.arange(R, dtype=torch.float64).repeat_interleave(N)
        return torch.frac(u0 + draw / R + perm.repeat(R) / n)

    def _times(self, n: int):
        u = self._stratified(n) if self.config.time_sampling == "stratified" else None
        if self.process.is_grid:
            G = len(self._alpha)
            idx = torch.randint(G, (n,), generator=self.gen) if u is None else (u * G).long().clamp_(max=G - 1)
            idx = idx.to(self.device)
            return self._alpha[idx], self._sigma[idx], self._kappa[idx]
        lo, hi = self.process.bounds
        if u is None:
            u = torch.rand(n, generator=self.gen, dtype=torch.float64)
        t = (lo + (hi - lo) * u).numpy()
        lp = self.loss_process
        cols = (lp.alpha(t), lp.sigma(t), lp.lam(t) * lp.sigma(t) ** 2)
        return tuple(torch.as_tensor(np.array(c), dtype=self.dtype, device=self.device) for c in cols)

    def batch(self, pixel: bool = False):
        """One step's fresh batch: times (alpha, sigma, kappa = lam sigma^2) and noise ``z``, in the
        space the family's training path takes (``pixel``: in data space, for :meth:`loss`)."""
        n = self.x0.shape[0]
        a, s, kappa = self._times(n)
        # the family's fast path may take its noise in a space of its own (e.g. colour space)
        dim = self.data.d if pixel or self._factors is None else self._factors.get("noise_dim", self.data.d)
        z = torch.randn(n, dim, generator=self.gen, dtype=self.dtype).to(self.device)
        return a, s, kappa, z

    def loss(self, batch=None) -> torch.Tensor:
        """Per-size loss on a batch with data-space noise (default: a fresh one), shape (S,),
        differentiable (autograd)."""
        a, s, kappa, z = self.batch(pixel=True) if batch is None else batch
        e = self.family.x0_error(self.x0, z, a, s)
        return (kappa.unsqueeze(1) * (e * e).sum(2)).mean(0)

    @torch.no_grad()
    def _clipped(self, grads) -> list[torch.Tensor]:
        """Each model's gradient scaled down to norm at most ``clip`` (the models are independent)."""
        sq = torch.zeros(len(self.sizes), dtype=torch.float64, device=self.device)
        for g, rows in zip(grads, self._row_of):
            sq.index_add_(0, rows, (g.double() ** 2).reshape(g.shape[0], -1).sum(1))
        factor = (self.config.clip / sq.sqrt().clamp_min(1e-300)).clamp(max=1.0)
        return [g * factor[rows].to(g.dtype).reshape(-1, *([1] * (g.dim() - 1))) for g, rows in zip(grads, self._row_of)]

    @torch.no_grad()
    def _adam(self, grads, lr: float) -> None:
        b1, b2 = self.config.betas
        k = self.step + 1
        c1, c2 = 1 - b1**k, 1 - b2**k
        for i, (p, g) in enumerate(zip(self.family.parameters(), grads)):
            m, v = self.adam_m[i], self.adam_v[i]
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            update = (m / c1) / ((v / c2).sqrt_().add_(self.config.eps))
            if self.ema is not None:
                beta = self.config.update_ema
                self.ema[i].mul_(beta).add_(update, alpha=1 - beta)
                update = self.ema[i] / (1 - beta**k)
            p.sub_(update, alpha=lr * self._lr_factors[i])

    def run(self, until: int | None = None, callback=None, every: int = 0, progress=None) -> History:
        """Train to step ``until`` (default: all steps). ``callback(trainer)`` runs every ``every``
        steps (for checkpoints); ``progress`` is a tqdm-like object updated per step."""
        stop = self.config.steps if until is None else min(until, self.config.steps)
        log_every = max(1, self.config.steps // HISTORY_POINTS)
        while self.step < stop:
            a, s, kappa, z = self.batch()
            extra = {} if self._factors is None else {"factors": self._factors}
            per_size, grads = self.family.loss_and_grad(self.x0, z, a, s, kappa, **extra)
            loss = per_size.detach().double().cpu()
            if not bool(torch.isfinite(loss).all()):
                self._diverged(loss.tolist(), "the loss", self.step + 1)
            if self.config.clip is not None:
                grads = self._clipped(grads)
            self._adam(grads, self.config.learning_rate(self.step))
            self.step += 1
            self._window += loss
            self._window_n += 1
            if self.step % log_every == 0 or self.step == self.config.steps:
                self.history.steps.append(self.step)
                self.history.loss.append((self._window / self._window_n).tolist())
                self.history.variance.append(self.family.variance().double().cpu().tolist())
                self._window.zero_()
                self._window_n = 0
            if progress is not None:
                progress.update(1)
            if callback is not None and every and self.step % every == 0 and self.step < self.config.steps:
                self.check_finite()  # never checkpoint NaN parameters
                callback(self)
        self.check_finite()
        return self.history

    def _diverged(self, values: list[float], what: str, step: int) -> None:
        bad = [M for M, v in zip(self.sizes, values) if not math.isfinite(v)]
        value = next(v for v in values if not math.isfinite(v))
        raise TrainingDiverged(f"training diverged at step {step}: {what} is {value} for size(s) M = "
                               f"{', '.join(map(str, bad))} (lr {self.config.lr:g}); lower --lr")

    def check_finite(self) -> None:
        """Raise :class:`TrainingDiverged` if some size's parameters are NaN or infinite."""
        if all(bool(torch.isfinite(p).all()) for p in self.family.parameters()):
            return
        values = []
        for i in range(len(self.sizes)):
            flat = np.concatenate([np.ravel(v) for v in self.family.arrays(i).values()])
            values.append(float(flat[~np.isfinite(flat)][0]) if not np.all(np.isfinite(flat)) else 0.0)
        self._diverged(values, "a parameter", self.step)

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue bit-for-bit: parameters, Adam moments, RNG, history."""
        return {
            "step": self.step,
            "params": [p.detach().cpu().clone() for p in self.family.parameters()],
            "adam_m": [t.cpu().clone() for t in self.adam_m],
            "adam_v": [t.cpu().clone() for t in self.adam_v],
            "ema": None if self.ema is None else [t.cpu().clone() for t in self.ema],
            "generator": self.gen.get_state(),
            "history": self.history.to_dict(),
            "window": self._window.clone(),
            "window_n": self._window_n,
        }

    def check_state(self, state) -> None:
        """``ValueError`` unless ``state`` is a :meth:`state_dict` of this trainer: its keys, the
        tensors' shapes and dtypes, the generator state, the history's layout."""
        keys = {"step", "params", "adam_m", "adam_v", "ema", "generator", "history", "window", "window_n"}
        if not isinstance(state, dict) or set(state) != keys:
            found = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"keys {found}, expected {sorted(keys)}")

        def like(name, value, ref):
            if not (isinstance(value, torch.Tensor) and value.shape == ref.shape and value.dtype == ref.dtype):
                shown = (tuple(value.shape), value.dtype) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"{name} is {shown}, expected {(tuple(ref.shape), ref.dtype)}")

        def tensors(name, refs):
            if not isinstance(state[name], list) or len(state[name]) != len(refs):
                raise ValueError(f"{name} is not a list of {len(refs)} tensors")
            for i, (v, ref) in enumerate(zip(state[name], refs)):
                like(f"{name}[{i}]", v, ref)

        check_int(state["step"], "step", 0, self.config.steps)
        check_int(state["window_n"], "window_n", 0, self.config.steps)
        params = self.family.parameters()
        for name in ("params", "adam_m", "adam_v"):
            tensors(name, params)
        if (state["ema"] is None) != (self.ema is None):
            raise ValueError("update-EMA state present where the configuration has none, or missing")
        if self.ema is not None:
            tensors("ema", params)
        like("generator", state["generator"], self.gen.get_state())
        try:
            torch.Generator().set_state(state["generator"])
        except RuntimeError as exc:
            raise ValueError(f"generator state refused ({exc})") from None
        like("window", state["window"], self._window)
        hist, S = state["history"], len(self.sizes)
        if not isinstance(hist, dict) or set(hist) != {"steps", "loss", "variance"}:
            raise ValueError("history is not {steps, loss, variance}")
        steps = hist["steps"]
        if not isinstance(steps, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in steps):
            raise ValueError("history steps are not a list of integers")
        for name in ("loss", "variance"):
            rows = hist[name]
            if not (isinstance(rows, list) and len(rows) == len(steps) and all(
                    isinstance(r, list) and len(r) == S
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r) for r in rows)):
                raise ValueError(f"history {name} is not {len(steps)} rows of {S} numbers")

    def load_state_dict(self, state: dict) -> None:
        """Continue from a :meth:`state_dict` (checked first with :meth:`check_state`)."""
        self.check_state(state)
        with torch.no_grad():
            for p, v in zip(self.family.parameters(), state["params"]):
                p.copy_(v.to(p))
        self.adam_m = [t.to(self.device) for t in state["adam_m"]]
        self.adam_v = [t.to(self.device) for t in state["adam_v"]]
        self.ema = None if state["ema"] is None else [t.to(self.device) for t in state["ema"]]
        self.gen.set_state(state["generator"])
        self.history = History(**state["history"])
        self._window = state["window"].clone()
        self._window_n = state["window_n"]
        self.step = state["step"]


def convergence(history: History, index: int, tail: float = 0.1) -> dict:
    """Did size ``index`` still improve over the last ``tail`` of training?

    Compares the mean logged loss over the last ``tail`` of the steps with the window just before
    it: ``loss_fell`` when the drop exceeds twice its standard error and 0.5% of the loss;
    ``variance_moved`` when the learned variance changed by more than 5% over the tail.
    """
    steps = np.asarray(history.steps)
    loss = np.asarray(history.loss)[:, index]
    var = np.asarray(history.variance)[:, index]
    last = steps[-1]
    late = steps > last * (1 - tail)
    before = (steps > last * (1 - 2 * tail)) & ~late
    out = {"final_loss": float(loss[-1]), "final_variance": float(var[-1])}
    if not (np.all(np.isfinite(loss)) and np.all(np.isfinite(var))):
        # a NaN / inf loss or variance: never "converged"
        out.update(loss_fell=False, variance_moved=False, converged=False, finite=False)
        return out
    if late.sum() < 2 or before.sum() < 2:
        out.update(loss_fell=False, variance_moved=False, converged=True)
        return out
    a, b = loss[before], loss[late]
    drop = a.mean() - b.mean()
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    fell = bool(drop > 2 * se and drop > 0.005 * abs(b.mean()))
    v0 = var[before][-1]
    moved = bool(abs(var[-1] - v0) > 0.05 * max(abs(v0), 1e-12))
    out.update(loss_fell=fell, variance_moved=moved, converged=not (fell or moved))
    return out
