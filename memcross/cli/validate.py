"""``memcross validate``: trained denoisers of several sizes; observed against predicted transition."""

from __future__ import annotations

import argparse
from pathlib import Path

from memcross.cli.common import (
    UsageError,
    _add_data_arguments,
    _add_setting_arguments,
    _add_store_arguments,
    _add_threads_argument,
    _open_store,
    _parse_sizes,
    _set_threads,
    _setting_from,
)
from memcross.cli.table import SIZE_COLUMNS, SUMMARY_COLUMNS
from memcross.theory.datamodels import DEFAULT_DATA


def _betas(text: str) -> tuple[float, float]:
    """``--betas B1,B2``: two numbers (their range is checked with the training options)."""
    try:
        b1, b2 = (float(part) for part in text.split(","))
        return b1, b2
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be two numbers B1,B2 in [0, 1), e.g. 0.9,0.99; got {text!r}") from None


def _lr_factors(text: str) -> dict[str, float]:
    """``--lr-factors GROUP=F,...``: parameter groups and numbers (checked with the training options)."""
    try:
        pairs = [part.split("=") for part in text.split(",")]
        return {name.strip(): float(value) for name, value in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be GROUP=FACTOR pairs, e.g. colours=10,variance=10; got {text!r}") from None


def _refinement(plan) -> str:
    """The header's words for ``--refine``: empty when it adds no sizes."""
    if not plan.refine:
        return ""
    from memcross.validation.metrics import REFINE_WHERE

    return f" + {plan.refine} {REFINE_WHERE[plan.refine_around]}"


def _cmd_validate(args) -> int:
    import json

    from memcross.numerics.tables import render_table
    from memcross.validation.sweep import build_data, family_model, plan_from, validate
    from memcross.validation.train import family_for

    setting = _setting_from(args)
    model = setting.data_model
    network = args.family not in (None, "gmm")
    if args.widths is not None and not network:
        raise UsageError("--widths applies to --family mlp; give --sizes for the GMM family")
    if network and args.sizes is not None:
        raise UsageError("--family mlp takes --widths (network widths), not --sizes")
    sizes = _parse_sizes(args.widths, setting.N, "--widths") if network else _parse_sizes(args.sizes, setting.N)
    plan = plan_from(setting, args.preset, sizes, args.device, args.seed,
                     args.refine, args.sampler, args.exact_draws, args.n_eval, steps=args.steps,
                     draws=args.draws, lr=args.lr, init=args.init, init_variance=args.init_variance,
                     update_ema=args.update_ema, target=args.train_target, weighting=args.train_weighting,
                     seed=args.train_seed, clip=args.clip, variance_param=args.variance_param,
                     lr_factors=args.lr_factors, family=args.family, refine_around=args.refine_around,
                     betas=args.betas, dtype=args.dtype, time_sampling=args.time_sampling)
    _set_threads(args)
    build_data(setting, args.seed)  # checks the data before any work
    family_for(plan.train, model.name).check_init(plan.train.init)
    figure = None
    if not args.no_figure and (args.figure or not args.no_store):
        store_dir = Path(args.store).parent if args.store else Path("memcross-runs")
        s = plan.setting
        what = f"d{s.d}" if model.name == DEFAULT_DATA else \
            f"{model.name.replace('-templates', '')}-{model.params['templates'].split(':')[0]}" if "templates" in model.params \
            else model.name
        if network:
            what += "-" + plan.train.family.replace(":", "-").replace(",", "-").replace("=", "")
        figure = Path(args.figure) if args.figure else store_dir / (
            f"transition-{what}-K{s.K}-N{s.N}-seed{plan.data_seed}-{plan.preset}-{plan.train.steps}steps.png")
        if figure.suffix.lower() not in (".pdf", ".png", ".svg"):  # checked before any work
            raise UsageError(f"--figure must end in .pdf, .png or .svg, got {str(figure)!r}")
        if args.figure and not figure.parent.exists():
            raise UsageError(f"--figure: folder {str(figure.parent)!r} does not exist")
    if not args.checkpoint_every > 0:
        raise UsageError(f"--checkpoint-every must be a positive number of seconds, got {args.checkpoint_every}")
    store = _open_store(args, required=True)
    log = (lambda msg: None) if args.json else (lambda msg: print(msg, flush=True))
    stratified = ", stratified times" if plan.train.time_sampling == "stratified" else ""
    log(f"memcross validate: preset {plan.preset}, {plan.train.steps} steps, R = {plan.train.draws}{stratified}, "
        f"{plan.n_eval} evaluation samples, sizes {list(plan.sizes)}{_refinement(plan)}, device {plan.device}, "
        f"store {store.path}")
    result = validate(plan, store, progress=not args.no_progress and not args.json, log=log,
                      checkpoint_seconds=args.checkpoint_every)
    if figure is not None:
        from memcross.numerics.plots import transition_figure

        s = result.summary
        marks = {"asymptotic C=1": s.predicted_c1, "finite-d": s.predicted_finite_d,
                 "finite-snr": s.predicted_finite_snr, "exact": s.exact, "observed 50%": s.observed_mid}
        base = {"generalizer (train)": s.gen_train_loss, "generalizer (validation)": s.gen_val_loss}
        figure.parent.mkdir(parents=True, exist_ok=True)
        log(f"wrote {transition_figure(result.sizes, marks, figure, base)}")
        if model.name == "colored-templates" and not network:  # images: a few samples per size beside their nearest training image
            from memcross.numerics.plots import sample_grid_figure
            from memcross.validation.sweep import sample_pairs

            grid = figure.with_name(f"samples-{figure.stem.removeprefix('transition-')}{figure.suffix}")
            log(f"wrote {sample_grid_figure(sample_pairs(plan, store), grid)}")
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print()
    locations = family_model(plan).location_columns
    columns = [c for c in SIZE_COLUMNS if c not in ("means_near_train", "means_near_true")]
    columns[columns.index("variance") + 1:columns.index("variance") + 1] = list(locations)
    summary_columns = SUMMARY_COLUMNS[3:]
    if network:  # widths: parameter counts and effective sizes instead of variance and the memorizer's loss
        columns = ["M", "params", "M_eff", "M_over_N", *[c for c in columns if c not in
                                                          ("M", "M_over_N", "variance", "pmem_train_loss")]]
        summary_columns = [*summary_columns, "observed_mid_params"]
    print(render_table([r.row() for r in result.sizes], columns, "markdown", digits=4))
    print()
    print(render_table([result.summary.row()], summary_columns, "markdown", digits=4))
    if result.summary.transition_note:
        print(f"note: {result.summary.transition_note}")
    if result.summary.unconverged != "none":
        print(f"note: sizes {result.summary.unconverged} had not converged (loss or variance still moving "
              "over the last 10% of steps); more steps may move the transition")
    return 0


def add_parser(sub) -> None:
    """Register ``memcross validate`` with the subcommand parser ``sub``."""
    p = sub.add_parser("validate", help="train GMM denoisers of several sizes; observed vs predicted transition")
    _add_setting_arguments(p)
    g = p.add_argument_group("sweep")
    g.add_argument("--preset", default=None, help="quick (default on CPU) or paper (default on CUDA)")
    g.add_argument("--sizes", default=None, help="model sizes M1,M2,... or START:STOP:STEP (default N/10..N)")
    g.add_argument("--family", default=None,
                   help="trained family: gmm (default: the data model's own) or mlp[:depth=D,embed=E] "
                        "(time-conditioned MLP denoisers; docs/neural.md)")
    g.add_argument("--widths", default=None,
                   help="--family mlp: network widths W1,W2,... or START:STOP:STEP (default 8,16,...,1024)")
    g.add_argument("--seed", type=int, default=0, help="data-set seed (default 0)")
    g.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    g.add_argument("--refine", type=int, default=None,
                   help="extra sizes between the transition's start and end (or see --refine-around); "
                   "default the preset's (0, or 3 for the coloured quick preset)")
    g.add_argument("--refine-around", default=None, choices=["transition", "mid"],
                   help="where --refine puts its sizes: across the transition or between the two sizes "
                   "whose ratios bracket 0.5, for a sharper 50%% point (default the preset's: transition, "
                   "or mid for the coloured quick preset)")
    g.add_argument("--exact-draws", type=int, default=8, help="noise draws of the exact losses (default 8)")
    g.add_argument("--n-eval", type=int, default=None, help="generated samples per size (preset's default)")
    g.add_argument("--sampler", default="ddim", choices=["ddim", "ddpm"])
    g.add_argument("--figure", default=None,
                   help="transition figure FILE (.pdf/.png/.svg; default: a .png beside the store)")
    g.add_argument("--no-figure", action="store_true", help="do not draw the transition figure")
    g.add_argument("--checkpoint-every", type=float, default=30.0, metavar="SECONDS",
                   help="seconds between training checkpoints in the store (default 30)")
    g = p.add_argument_group("training (defaults from the preset)")
    g.add_argument("--steps", type=int, default=None, help="optimizer steps")
    g.add_argument("--draws", type=int, default=None, help="noise draws R per training point and step")
    g.add_argument("--lr", type=float, default=None, help="peak learning rate (default 1e-3)")
    g.add_argument("--init", default=None, help="pmem (default), gaussian, sphere, prior; coloured templates: "
                   "pmem (default, from the samples), oracle (true templates), random")
    g.add_argument("--init-variance", type=float, default=None, help="initial variance (pmem: 1e-6, others: 1)")
    g.add_argument("--update-ema", type=float, default=None, help="smooth Adam's updates (e.g. 0.99)")
    g.add_argument("--betas", type=_betas, default=None, metavar="B1,B2",
                   help="Adam's moment decays (default: the preset's, 0.9,0.999; the coloured quick preset's 0.9,0.99)")
    g.add_argument("--dtype", default=None, choices=["float32", "float64"],
                   help="training arithmetic (default float32; float64 keeps the coloured posterior weights exact "
                   "at the smallest times, about 1.7x the time: docs/images.md)")
    g.add_argument("--clip", type=float, default=None,
                   help="clip each model's gradient at this norm (coloured presets: 1e3; default: none)")
    g.add_argument("--variance-param", default=None, choices=["std", "log-var"],
                   help="coloured templates: train the colour standard deviation (default) or its log-variance")
    g.add_argument("--lr-factors", type=_lr_factors, default=None, metavar="GROUP=F,...",
                   help="learning rates of parameter groups as multiples of --lr: means, variance (isotropic); "
                   "templates, colours, variance (coloured; the quick preset's templates=0.1,colours=10,variance=10)")
    g.add_argument("--time-sampling", default=None, choices=["iid", "stratified"],
                   help="a step's times: independent per row (default) or stratified, each point's R draws "
                   "one per 1/R of the range (the coloured quick preset's)")
    g.add_argument("--train-target", default=None, help="target the loss is stated on (default eps)")
    g.add_argument("--train-weighting", default=None, help="loss weighting (default eps-uniform)")
    g.add_argument("--train-seed", type=int, default=None, help="seed of inits and training noise (default 0)")
    _add_data_arguments(p)
    _add_store_arguments(p)
    _add_threads_argument(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary and per-size rows as JSON")
    p.set_defaults(func=_cmd_validate)
