"""``memcross plot``: per-time crossover, phase diagram, coefficient figures."""

from __future__ import annotations

from memcross.cli.common import FIGURE_SUFFIXES, UsageError, _add_setting_arguments, _setting_from, output_path

MAX_FIGURE_DIM = 10_000

def _parse_dims(text: str | None) -> list[int]:
    if text is None:
        return [10, 30, 50, 100]
    try:
        dims = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        dims = []
    if not dims or any(not 1 <= d <= MAX_FIGURE_DIM for d in dims):
        raise UsageError(f"--dims {text!r}: expected comma-separated integers in [1, {MAX_FIGURE_DIM}]")
    return dims

def _cmd_plot(args) -> int:
    from memcross.numerics import plots

    output = output_path(args.output, "--output", FIGURE_SUFFIXES)
    setting = _setting_from(args)
    if args.figure == "per-time":
        path = plots.per_time_figure(setting, output)
    elif args.figure == "phase":
        path = plots.phase_figure(setting, output)
    else:
        path = plots.coefficient_figure(output, _parse_dims(args.dims), setting.K, setting.N)
    print(f"wrote {path}")
    return 0


def add_parser(sub) -> None:
    """Register ``memcross plot`` with the subcommand parser ``sub``."""
    p = sub.add_parser("plot", help="figures: per-time crossover, phase diagram, coefficient C(M)")
    p.add_argument("figure", choices=["per-time", "phase", "coefficient"])
    p.add_argument("--output", required=True, help="FILE.pdf, .png or .svg")
    p.add_argument("--dims", default=None, help="coefficient figure: dimensions, e.g. 10,30,50,100")
    _add_setting_arguments(p)
    p.set_defaults(func=_cmd_plot)
