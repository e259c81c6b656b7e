r"""Validation sweeps: the exact crossover and the observed transition of trained models, stored.

:func:`validate` runs a :class:`ValidationPlan` against a :class:`~memcross.store.Store`:

1. the data set (seeded), the exact-loss table of the analytic denoisers (stored, kind ``exact``);
2. the sizes without stored parameters train **together** (one batched computation), leaving
   checkpoints as they go; their parameters and loss / variance histories are stored per size
   (kind ``params``) the moment training ends;
3. each size is evaluated — memorization ratio of DDIM (or DDPM) samples with a bootstrap
   interval, learned variance, where the means sit, per-time train / validation losses — and
   stored at once (kind ``size``);
4. optionally the size grid is refined between the transition's start and end, and steps 2-3 run
   for the new sizes;
5. a summary row — predicted ``M*/N`` (asymptotic ``C = 1``, finite-d), exact ``M*/N``, observed
   start / 50% / end, unconverged sizes — is stored (kind ``summary``).

Re-running skips whatever is stored, so an interrupted sweep completes without repeating work.
"""

from __future__ import annotations

import dataclasses
import io
import time
from dataclasses import dataclass

import numpy as np
import torch

from memcross._checks import check_int
from memcross.records import SizeResult, SweepResult, SweepSummary
from memcross.store import Store, StoreError, config_key
from memcross.theory.setting import Setting
from memcross.validation.data import GMMData, check_sizes
from memcross.validation.datamodels import validation_model
from memcross.validation.exact import ExactLosses, exact_losses
from memcross.validation.metrics import (
    REFINE_WHERE,
    check_refine_around,
    crossing,
    levels,
    memorization_ratio,
    refine_sizes,
    transition,
    transition_note,
)
from memcross.validation.presets import PLAN_FIELDS, PRESETS, get_preset
from memcross.validation.process import Process, TimeTable
from memcross.validation.sampler import get_sampler
from memcross.validation.train import History, TrainConfig, Trainer, convergence, family_for, family_options

#: Seconds between training checkpoints.
CHECKPOINT_SECONDS = 30.0
#: Widths of a network sweep unless given (``--family mlp``).
DEFAULT_WIDTHS = (8, 16, 32, 64, 128, 256, 512, 1024)
#: Most generated samples per size.
MAX_N_EVAL = 1_000_000


def _short(sizes) -> str:
    sizes = list(sizes)
    return str(sizes) if len(sizes) <= 6 else f"[{sizes[0]}, {sizes[1]}, ..., {sizes[-1]}] ({len(sizes)} sizes)"

#: Fields of the stored exact-loss tables and trained parameters that the sweep reads (types as in
#: :func:`~memcross.store.check_record`); sizes and summaries are records (:mod:`memcross.records`).
EXACT_FIELDS = {"d": int, "K": int, "N": int, "s2": float, "draws": int,
                **{f"table_{k}": [float] for k in ("t", "w", "alpha", "sigma", "lam")},
                "gen_train": [float], "pmem_train": [[float]], "gen_val?": ([float], None),
                "pmem_val?": ([[float]], None), "theory_gen?": ([float], None), "pair_scale?": (float, None)}
PARAMS_FIELDS = {"convergence": {"converged": bool, "loss_fell": bool, "variance_moved": bool, "final_loss": float},
                 "steps_per_second": float}


def resolve_device(name: str | None = "auto") -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    name = (name or "auto").strip()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r}: CUDA is not available on this machine; use --device cpu or auto")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
        return dev
    raise ValueError(f"unknown device {name!r}; allowed: auto, cpu, cuda, cuda:N")


def default_sizes(N: int, count: int = 10) -> list[int]:
    """``count`` sizes evenly spaced up to ``N``: ``N/10, 2N/10, ..., N`` for the default."""
    return sorted({max(1, round(N * k / count)) for k in range(1, count + 1)})


@dataclass(frozen=True)
class ValidationPlan:
    """Everything a sweep depends on; its parts key the stored units."""

    setting: Setting
    sizes: tuple[int, ...]
    train: TrainConfig
    data_seed: int = 0
    n_eval: int = 200
    sampler: str = "ddim"
    exact_draws: int = 8
    loss_draws: int = 4
    refine: int = 0
    device: str = "cpu"
    preset: str = "quick"
    refine_around: str = "transition"

    def __post_init__(self):
        from memcross._checks import check_seed
        from memcross.validation.train import MAX_DRAWS, check_loss_weights

        s = self.setting
        family_options(family_for(self.train, s.data_model.name), self.train, s.data_model.name)
        if not self.sizes:
            raise ValueError("sizes must name at least one model size")
        for M in self.sizes:
            if self.train.family is None:
                check_sizes(s.d, s.K, s.N, M)
            else:
                from memcross.validation.mlp_model import MAX_WIDTH

                check_sizes(s.d, s.K, s.N)
                check_int(M, "--widths", 1, MAX_WIDTH)
        if self.refine and self.train.family is not None:
            raise ValueError("--refine applies to component counts, not to network widths; give --widths instead")
        if list(self.sizes) != sorted(set(self.sizes)):
            raise ValueError(f"sizes must be increasing without repeats, got {list(self.sizes)}")
        for name, flag, high in (("n_eval", "--n-eval", MAX_N_EVAL), ("exact_draws", "--exact-draws", MAX_DRAWS),
                                 ("loss_draws", "loss_draws", MAX_DRAWS)):
            check_int(getattr(self, name), flag, 1, high)
        check_int(self.refine, "--refine", 0, s.N, high_name="N")
        check_refine_around(self.refine_around)
        check_seed(self.data_seed, "--seed")
        get_sampler(self.sampler)
        get_preset(self.preset)
        check_loss_weights(s, self.train)

    def check_memory(self) -> None:
        """Refuse a sweep whose exact losses or (on CPU) training would not fit in this machine's
        free memory, with the estimate (:func:`~memcross.validation.exact.exact_memory`,
        :meth:`~memcross.validation.model.GMMFamily.training_memory`)."""
        from memcross.validation.data import check_memory
        from memcross.validation.exact import check_exact_memory
        from memcross.validation.process import INTERVAL_NODES
        from memcross.validation.train import torch_dtype

        s = self.setting
        d = s.d
        n_times = len(s.measure.points) if hasattr(s.measure, "points") else INTERVAL_NODES
        check_exact_memory(d, s.N, self.exact_draws, n_times, validation_model(s).generalizer_copies(s.K))
        if torch.device(self.device).type == "cpu":
            itemsize = torch.finfo(torch_dtype(self.train.dtype)).bits // 8
            family = family_for(self.train, s.data_model.name)
            extra = family_options(family, self.train, s.data_model.name) if self.train.family else {}
            need = family.training_memory(d, s.N, self.train.draws, self.sizes, itemsize, **extra)
            check_memory(need, f"validate: training (d, N, R) = ({d}, {s.N}, {self.train.draws}) with sizes "
                               f"{_short(self.sizes)}", "--dim/--train/--draws/--sizes")

    # -- configurations that key stored units ------------------------------------------------
    def trained_config(self, M: int) -> dict:
        """The store config of trained size ``M``: the data config with the training options, ``M`` and the device
        type."""
        base = {k: v for k, v in exact_config(self.setting, self.data_seed, 1).items()
                if k not in ("draws", "dtype")}
        return {**base, "train": self.train.to_dict(), "M": int(M), "device": torch.device(self.device).type}

    def size_config(self, M: int) -> dict:
        """The store config of size ``M``'s losses: :meth:`trained_config` with evaluation count, sampler, loss draws,
        weighting and target."""
        return {**self.trained_config(M), "n_eval": self.n_eval, "sampler": self.sampler,
                "loss_draws": self.loss_draws, "weighting": self.setting.weighting,
                "target": self.setting.target, "weight_expr": self.setting.weight_expr}

    def summary_config(self) -> dict:
        """The store config of the sweep's summary: all sizes, refinement, exact draws, preset and ``C``."""
        out = {**self.size_config(0), "M": None, "sizes": list(self.sizes), "refine": self.refine,
               "exact_draws": self.exact_draws, "preset": self.preset, "C": str(self.setting.C)}
        if self.refine and self.refine_around != "transition":  # the default keeps the keys stored before it
            out["refine_around"] = self.refine_around
        return out


def family_model(plan: ValidationPlan):
    """What the sweep needs of the plan's trained family (stored layout, denoiser, locations): the
    data model's :func:`~memcross.validation.datamodels.validation_model`, or the MLP's
    (:class:`~memcross.validation.mlp_model.MLPModel`) for ``--family mlp``."""
    if plan.train.family is None:
        return validation_model(plan.setting)
    from memcross.validation.mlp_model import MLPModel

    return MLPModel(plan.train.family)


def _np_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def load_params(store: Store, plan: ValidationPlan, M: int, dim: int | None = None) -> dict[str, np.ndarray] | None:
    """Stored parameter arrays of the trained size ``M`` (the data model's family's layout:
    ``means`` and ``variance`` for the isotropic family; ``templates``, ``colours`` and
    ``variance`` for coloured templates), or None. Arrays of another layout or shape (``dim``: the
    data's dimension, default the setting's) are refused."""
    arrays = store.arrays("params", plan.trained_config(M), "params")
    if arrays is None:
        return None
    want = family_model(plan).param_shapes(M, plan.setting.d if dim is None else dim)
    if set(arrays) != set(want) or any(arrays[k].dtype.kind != "f" or (shape is not None and arrays[k].shape != shape)
                                       for k, shape in want.items()):
        got = ", ".join(f"{k} {v.shape}" for k, v in sorted(arrays.items()))
        raise StoreError(f"store {str(store.path)!r}: the parameters stored for size M = {M} do not fit this run "
                         f"({got}); refused; choose another --store")
    return arrays


def build_data(setting: Setting, data_seed: int = 0):
    """The sampled data set of ``setting``'s data model, drawn with ``data_seed``."""
    return validation_model(setting).sample(setting, data_seed)


def exact_config(setting: Setting, data_seed: int, draws: int) -> dict:
    """The configuration that keys an exact-loss table: data, process and noise draws (the
    weighting is not part of it: the table serves every weighting)."""
    data = {**validation_model(setting).key(setting), "seed": int(data_seed)}
    process = {k: v for k, v in (("schedule", setting.schedule), ("time", setting.time), ("alpha", setting.alpha),
                                 ("sigma", setting.sigma), ("t_max", setting.t_max)) if v is not None}
    return {**data, **process, "draws": int(draws), "dtype": "float64"}


def exact_for(setting: Setting, data_seed: int = 0, draws: int = 8, store: Store | None = None,
              data=None) -> ExactLosses:
    """The exact-loss table of the data set drawn with ``data_seed`` (from the store when there),
    with the setting's weighting attached."""
    check_int(draws, "draws")
    cfg = exact_config(setting, data_seed, draws)
    table = Process(setting).quadrature()
    if store is not None:
        found = store.get("exact", cfg, EXACT_FIELDS)
        if found is not None:
            try:
                ex = ExactLosses.from_dict(found)
                T = len(table.t)
                shapes = [len(getattr(ex.table, k)) for k in ("t", "w", "alpha", "sigma", "lam")]
                shapes += [v.shape for v in (ex.gen_train, ex.gen_val, ex.theory_gen) if v is not None]
                if ex.N != setting.N or shapes != [T] * 5 + [(T,)] * (len(shapes) - 5) or any(
                        v is not None and v.shape != (setting.N, T) for v in (ex.pmem_train, ex.pmem_val)):
                    raise ValueError(f"shapes do not fit N = {setting.N} and {T} times")
            except ValueError as exc:
                raise StoreError(f"store {str(store.path)!r}: the stored exact-loss table does not fit this run "
                                 f"({exc}); refused; choose another --store") from None
            return dataclasses.replace(ex, table=dataclasses.replace(ex.table, lam=table.lam))
    if data is None:
        data = build_data(setting, data_seed)
    ex = exact_losses(data, table, draws=draws, seed=data_seed + 1)
    if store is not None:
        store.put("exact", cfg, ex.to_dict())
    return ex


def _train(plan: ValidationPlan, data: GMMData, process: Process, sizes: list[int], store: Store,
           progress: bool, log, checkpoint_seconds: float = CHECKPOINT_SECONDS) -> None:
    """Train ``sizes`` together (resuming a checkpoint), store each size's parameters and history."""
    device = torch.device(plan.device)
    key = config_key("checkpoint", {**plan.trained_config(0), "M": None, "sizes": sizes})
    trainer = Trainer(data, process, sizes, plan.train, device)
    state = store.load_checkpoint(key)
    if state is not None:
        try:
            trainer.load_state_dict(state)
        except ValueError as exc:
            raise StoreError(f"store {str(store.path)!r}: the training checkpoint of sizes {sizes} does not fit this "
                             f"run ({exc}); refused; delete the store's checkpoints (that training restarts from "
                             "step 0) or choose another --store") from None
        log(f"resuming training of sizes {sizes} at step {trainer.step}")
    last = [time.monotonic()]

    def checkpoint(tr):
        if time.monotonic() - last[0] >= checkpoint_seconds:
            store.save_checkpoint(key, tr.step, tr.state_dict())
            last[0] = time.monotonic()

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=plan.train.steps, initial=trainer.step, desc=f"training {len(sizes)} size(s)",
                   unit="step", mininterval=1.0)
    start_step, t0 = trainer.step, time.perf_counter()
    try:
        trainer.run(callback=checkpoint, every=min(250, max(1, plan.train.steps // 20)), progress=bar)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    rate = (trainer.step - start_step) / seconds if seconds > 0 else float("nan")
    hist = trainer.history
    for i, M in enumerate(sizes):
        per = History(hist.steps, [row[i] for row in hist.loss], [row[i] for row in hist.variance])
        arrays = trainer.family.arrays(i)
        conv = convergence(History(per.steps, [[v] for v in per.loss], [[v] for v in per.variance]), 0)
        result = {"M": M, "variance": float(arrays["variance"]), "history": per.to_dict(), "convergence": conv,
                  "batch_sizes": sizes, "seconds": seconds, "steps_per_second": rate}
        store.put("params", plan.trained_config(M), result, {"params": _np_bytes(**arrays)})
    store.drop_checkpoint(key)
    log(f"trained sizes {sizes}: {trainer.step - start_step} steps in {seconds:.1f} s ({rate:.1f} steps/s)")


def _per_time_losses(denoise, points: torch.Tensor, table: TimeTable, draws: int, seed: int) -> np.ndarray:
    """Monte-Carlo ``L_t`` (x0 units) of a trained model on ``points`` at the table's times."""
    gen = torch.Generator().manual_seed(seed)
    out = np.empty(len(table.t))
    x0 = points.repeat(draws, 1)
    for i, (a, s) in enumerate(zip(table.alpha, table.sigma)):
        z = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
        h = denoise(a * x0 + s * z, float(a), float(s))
        out[i] = float(((h - x0) ** 2).sum(1).mean())
    return out


def _evaluate(plan: ValidationPlan, data: GMMData, process: Process, table: TimeTable, ex: ExactLosses,
              M: int, store: Store) -> SizeResult:
    arrays = load_params(store, plan, M, data.d)
    trained = store.get("params", plan.trained_config(M), PARAMS_FIELDS)
    model = family_model(plan)
    denoise = model.denoiser(arrays)
    times = process.sampler_grid()
    gen = torch.Generator().manual_seed(plan.data_seed + 2)
    sampler = get_sampler(plan.sampler)
    samples = sampler(denoise, times, process.alpha(times), process.sigma(times), plan.n_eval, data.d, gen)
    train_t = _per_time_losses(denoise, data.train, table, plan.loss_draws, plan.data_seed + 3)
    val_t = _per_time_losses(denoise, data.validation, table, plan.loss_draws, plan.data_seed + 4)
    train_loss = float(table.weighted(train_t))
    if plan.train.family is None:
        extra = {"M_over_N": M / data.N, "pmem_train_loss": float(table.weighted(ex.pmem_train[M - 1])),
                 "pmem_val_loss": None if ex.pmem_val is None else float(table.weighted(ex.pmem_val[M - 1]))}
    else:  # a network: its size on the toolkit's axis is the partial memorizer with the same training loss
        from memcross.validation.mlp_model import effective_size

        m_eff = effective_size(train_loss, table.weighted(ex.pmem_train))
        m_eff_t = [effective_size(float(v), ex.pmem_train[:, j]) for j, v in enumerate(train_t)]
        extra = {"M_over_N": m_eff / data.N, "pmem_train_loss": None, "pmem_val_loss": None,
                 "params": model.parameter_count(M, data.d), "M_eff": m_eff, "M_eff_t": m_eff_t}
    result = SizeResult(
        M=M, **extra, **memorization_ratio(samples, data.train, seed=plan.data_seed),
        variance=float(arrays["variance"]), **model.locations(arrays, data),
        train_loss=train_loss, val_loss=float(table.weighted(val_t)),
        train_loss_t=train_t.tolist(), val_loss_t=val_t.tolist(),
        **{k: trained["convergence"][k] for k in ("converged", "loss_fell", "variance_moved", "final_loss")},
        steps_per_second=trained["steps_per_second"])
    store.put("size", plan.size_config(M), result.to_dict())
    return result


def sample_pairs(plan: ValidationPlan, store: Store, per_size: int = 4, seed: int = 7) -> list[dict]:
    """For each trained size of ``plan`` in ``store``: ``per_size`` samples of its model (the
    plan's sampler) and, for each, its nearest training point and whether it counts as a copy
    (the memorization ratio's test). Returns ``[{"M", "samples", "nearest", "copy"}]``, float64
    numpy arrays of shape ``(per_size, d)``."""
    from memcross.validation.metrics import near_copies

    check_int(per_size, "per_size", 1, 64)
    data = build_data(plan.setting, plan.data_seed)
    process = Process(plan.setting)
    times = process.sampler_grid()
    out = []
    for M in plan.sizes:
        arrays = load_params(store, plan, M, data.d)
        if arrays is None:
            continue
        denoise = family_model(plan).denoiser(arrays)
        gen = torch.Generator().manual_seed(seed + M)
        x = get_sampler(plan.sampler)(denoise, times, process.alpha(times), process.sigma(times), per_size, data.d, gen)
        train = data.train.to(x)
        nearest = train[torch.cdist(x, train).argmin(1)]
        out.append({"M": M, "samples": x.cpu().numpy(), "nearest": nearest.cpu().numpy(),
                    "copy": near_copies(x, train)})
    return out


def _run_sizes(plan, data, process, table, ex, sizes, store, progress, log, checkpoint_seconds) -> None:
    pending = [M for M in sizes if not store.has("size", plan.size_config(M))]
    to_train = [M for M in pending if store.blob("params", plan.trained_config(M), "params") is None]
    if to_train:
        _train(plan, data, process, to_train, store, progress, log, checkpoint_seconds)
    for M in pending:
        r = _evaluate(plan, data, process, table, ex, M, store)
        flag = "" if r.converged else "  (unconverged)"
        ratio = f"memorization ratio {r.ratio:.3f} [{r.ratio_low:.3f}, {r.ratio_high:.3f}]"
        if r.M_eff is None:
            log(f"M = {M:4d} (M/N = {M / data.N:.3f}): {ratio}, variance {r.variance:.4g}{flag}")
        else:
            log(f"width {M:4d} ({r.params} parameters, M_eff/N = {r.M_over_N:.3f}): {ratio}{flag}")


def _predictions(setting: Setting) -> dict:
    from memcross.numerics.finite_snr import has_finite_snr
    from memcross.numerics.predict import predict

    base = setting.replace(C=1)
    snr = None
    if has_finite_snr(base.data_model):
        try:
            snr = predict(base, "finite-snr").value
        except ValueError:  # a setting finite-snr does not cover (e.g. d < K + 3): the summary has none
            snr = None
    return {"predicted_c1": predict(base, "asymptotic").value, "predicted_finite_d": predict(base, "finite-d").value,
            "predicted_finite_snr": snr}


def validate(plan: ValidationPlan, store: Store, progress: bool = False, log=lambda msg: None,
             checkpoint_seconds: float = CHECKPOINT_SECONDS) -> SweepResult:
    """Run (or resume) the sweep ``plan`` against ``store``; returns the summary and per-size rows.

    Training leaves a checkpoint every ``checkpoint_seconds`` of wall time."""
    if not checkpoint_seconds > 0:
        raise ValueError(f"checkpoint_seconds must be positive, got {checkpoint_seconds!r}")
    s = plan.setting
    data = build_data(s, plan.data_seed)
    process = Process(s)
    table = process.quadrature()
    ex = exact_for(s, plan.data_seed, plan.exact_draws, store, data)
    exact_ratio, exact_m = ex.crossover()
    log(f"exact crossover of this data set: M*/N = {exact_ratio:.4f} (M* = {exact_m})")
    _run_sizes(plan, data, process, table, ex, list(plan.sizes), store, progress, log, checkpoint_seconds)
    sizes = list(plan.sizes)
    rows = [store.get_record("size", plan.size_config(M), SizeResult.from_dict) for M in sizes]
    if plan.refine:
        extra = refine_sizes(sizes, [r.ratio for r in rows], s.N, plan.refine, plan.refine_around)
        if extra:
            log(f"refining {REFINE_WHERE[plan.refine_around]}: sizes {extra}")
            _run_sizes(plan, data, process, table, ex, extra, store, progress, log, checkpoint_seconds)
            sizes = sorted(set(sizes) | set(extra))
            rows = [store.get_record("size", plan.size_config(M), SizeResult.from_dict) for M in sizes]
    ratios = [r.ratio for r in rows]
    if plan.train.family is None:
        trans = transition(sizes, ratios, s.N).ratios()
        net = {}
    else:  # networks: the transition on M_eff/N (not monotone in the width), and its 50% point in parameters
        trans = levels([r.M_over_N for r in rows], ratios)
        net = {"family": plan.train.family, "observed_mid_params": crossing([r.params for r in rows], ratios)}
    model = s.data_model
    summary = SweepSummary(
        d=data.d, K=s.K, N=s.N, schedule=s.schedule, time=s.time, weighting=s.weighting,
        data=model.name, templates=getattr(model, "template_spec", None),
        preset=plan.preset, steps=plan.train.steps, draws=plan.train.draws, seed=plan.data_seed,
        **_predictions(s), exact=float(exact_ratio),
        observed_start=trans["start"], observed_mid=trans["mid"], observed_end=trans["end"],
        transition_note=transition_note(sizes, ratios, "M" if plan.train.family is None else "width"),
        baseline_ratio=memorization_ratio(data.evaluation, data.train)["ratio"],
        unconverged=",".join(str(r.M) for r in rows if not r.converged) or "none",
        sizes=",".join(str(M) for M in sizes),
        gen_train_loss=float(table.weighted(ex.gen_train)),
        mem_train_loss=float(table.weighted(ex.mem_train)),
        gen_val_loss=None if ex.gen_val is None else float(table.weighted(ex.gen_val)), **net,
    )
    store.put("summary", plan.summary_config(), summary.to_dict())
    stored = store.get_record("summary", plan.summary_config(), SweepSummary.from_dict)
    return SweepResult(stored if stored is not None else summary, rows, ex)


def plan_from(setting: Setting, preset: str | None = None, sizes=None, device: str | None = "auto",
              data_seed: int = 0, refine: int | None = None, sampler: str = "ddim", exact_draws: int = 8,
              n_eval: int | None = None, check_memory: bool = True, refine_around: str | None = None,
              **train_overrides) -> ValidationPlan:
    """A plan from a preset (default: ``paper`` on CUDA, ``quick`` on CPU) with overrides.

    ``n_eval``, ``refine`` and ``refine_around`` left at ``None`` take the preset's values (no
    refinement, across the transition, where the preset names none).

    Every field is checked (:class:`TrainConfig`, :class:`ValidationPlan`), and, unless
    ``check_memory`` is false, the memory the sweep needs against this machine's
    (:meth:`ValidationPlan.check_memory`): a mistake is refused here, before any data or store."""
    dev = resolve_device(device)
    name = preset or ("paper" if dev.type == "cuda" else "quick")
    p = get_preset(name, setting.data_model.name, train_overrides.get("family"))
    given = {k: v for k, v in train_overrides.items() if v is not None}
    train_fields = {f: p[f] for f in p if f not in PLAN_FIELDS}  # the preset's, unless given
    train = TrainConfig(**{**train_fields, **given})
    if sizes is None and train_overrides.get("family") not in (None, "gmm"):
        sizes = DEFAULT_WIDTHS
    sizes = tuple(default_sizes(setting.N) if sizes is None else sizes)
    refine = p.get("refine", 0) if refine is None else refine
    refine_around = p.get("refine_around", "transition") if refine_around is None else refine_around
    plan = ValidationPlan(setting, sizes, train, data_seed, p["n_eval"] if n_eval is None else n_eval, sampler,
                          exact_draws, refine=refine, device=str(dev), preset=name, refine_around=refine_around)
    if check_memory:
        plan.check_memory()
    return plan


__all__ = ["PRESETS", "ValidationPlan", "SweepResult", "validate", "plan_from", "resolve_device", "exact_for",
           "exact_config", "sample_pairs",
           "default_sizes", "load_params"]
