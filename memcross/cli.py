"""The ``memcross`` command: parses arguments, calls a layer, prints. No math here.

Exit codes: 0 success; 1 ``check`` found a mismatch (or ``derive --verify`` a failing step);
2 bad input, reported on one line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from memcross import __version__


class UsageError(Exception):
    """A user mistake: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        raise UsageError(f"{self.prog}: {message}")


def _add_setting_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("setting")
    g.add_argument("--schedule", default=None, help="vp (default), vp-cosine, vp-linear, ve, flow, custom")
    g.add_argument("--alpha", default=None, help="custom schedule: alpha_t as an expression in t")
    g.add_argument("--sigma", default=None, help="custom schedule: sigma_t as an expression in t")
    g.add_argument("--t-max", default=None, help="custom schedule: end of its time range (default 1)")
    g.add_argument("--time", default=None,
                   help="grid:START,STOP,COUNT | points:T1,... | interval:T_MIN,T_MAX (default grid:0.001,0.999,26)")
    g.add_argument("--weighting", default=None,
                   help="x0-uniform (default), eps-uniform, ..., uniform, elbo, min-snr[:gamma=G], edm[:sd=S], "
                        "sigmoid[:b=B], custom")
    g.add_argument("--weight-expr", default=None, help="custom weighting: expression in t (may use psi, alpha, sigma)")
    g.add_argument("--target", default=None, help="network parameterization: x0 (default), eps, score, velocity, v")
    g.add_argument("--s2", default=None, help="per-coordinate component variance (default 1)")
    g.add_argument("--C", dest="C", default=None, help="coefficient of the partial memorizer's excess (default 1)")
    g.add_argument("--dim", dest="d", type=int, default=None, help="dimension d (default 50)")
    g.add_argument("--components", dest="K", type=int, default=None, help="mixture components K (default 12)")
    g.add_argument("--train", dest="N", type=int, default=None, help="training-set size N (default 200)")


_SETTING_FIELDS = ("schedule", "alpha", "sigma", "t_max", "time", "weighting", "weight_expr", "target",
                   "s2", "C", "d", "K", "N")


def _setting_from(args):
    return _setting_from_dict({k: getattr(args, k) for k in _SETTING_FIELDS if getattr(args, k, None) is not None})


def _write_or_print(text: str, output: str | None) -> None:
    if output is None:
        print(text)
        return
    path = Path(output)
    if not path.parent.exists():
        raise UsageError(f"--output: folder {str(path.parent)!r} does not exist")
    path.write_text(text + "\n")
    print(f"wrote {path}")


def _cmd_derive(args) -> int:
    from memcross.theory.derivation import derive

    derivation = derive(_setting_from(args))
    text = derivation.latex() if args.latex else derivation.text()
    status = 0
    if args.verify:
        report = derivation.verify()
        text += "\n\n" + (("% " + report.describe().replace("\n", "\n% ")) if args.latex else report.describe())
        status = 0 if report.ok else 1
    _write_or_print(text, args.output)
    return status


def _cmd_check(args) -> int:
    from memcross.theory.check import check_expression

    setting = _setting_from(args)
    values = {k: getattr(args, k) for k in ("s2", "C", "d", "N", "K") if getattr(args, k, None) is not None}
    if args.M is not None:
        values["M"] = args.M
    verdict = check_expression(args.expression, args.against, setting, values)
    print(f"{args.expression} vs {args.against}: {verdict.describe()}")
    return 0 if verdict.equal else 1


_INT_FIELDS = ("d", "K", "N")


def _grid_values(spec: str) -> tuple[str, list]:
    field, eq, values = spec.partition("=")
    field = field.strip().replace("-", "_")
    allowed = set(_SETTING_FIELDS) | {"method"}
    if not eq or field not in allowed:
        raise UsageError(f"--grid {spec!r}: expected FIELD=V1,V2,... with FIELD one of {', '.join(sorted(allowed))}")
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not items:
        raise UsageError(f"--grid {spec!r}: no values")
    if field in _INT_FIELDS:
        try:
            items = [int(v) for v in items]
        except ValueError:
            raise UsageError(f"--grid {spec!r}: {field} takes integers") from None
    return field, items


def _load_config(path: str) -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(f"--config: file {path!r} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--config: {path!r} is not valid TOML ({exc})") from None
    data = dict(data.get("setting", {}), **{k: v for k, v in data.items() if k != "setting"})
    return data


def _cmd_predict(args) -> int:
    import itertools
    import json

    from memcross.numerics.predict import predict, sweep
    from memcross.numerics.tables import render_table

    base = _load_config(args.config) if args.config else {}
    method = base.pop("method", args.method)
    dps = base.pop("dps", args.dps)
    if args.method_given:
        method = args.method
    if args.dps_given:
        dps = args.dps
    cli = {k: getattr(args, k) for k in _SETTING_FIELDS if getattr(args, k, None) is not None}
    base.update(cli)
    grids = [_grid_values(g) for g in args.grid or []]
    if not grids:
        setting = _setting_from_dict(base)
        record = predict(setting, method, dps)
        if args.json:
            print(record.to_json(indent=2))
            return 0
        print(_summary(setting, record))
        return 0
    combos = list(itertools.product(*[values for _, values in grids]))
    fields = [f for f, _ in grids]
    by_method: dict[str, list] = {}
    order = []
    for combo in combos:
        row = dict(base)
        row.update(dict(zip(fields, combo)))
        m = row.pop("method", method)
        by_method.setdefault(m, []).append(_setting_from_dict(row))
        order.append((m, len(by_method[m]) - 1))
    if args.fast:
        results = {m: sweep(ss, m, dps) for m, ss in by_method.items()}
    else:
        results = {m: [predict(s, m, dps) for s in ss] for m, ss in by_method.items()}
    records = [results[m][i] for m, i in order]
    if args.json:
        print(json.dumps([r.to_dict() for r in records], indent=2))
        return 0
    columns = [f.replace("-", "_") for f in fields if f != "method"] + ["method", "value", "M_star"]
    print(render_table([r.row() for r in records], columns, "markdown", digits=8))
    return 0


def _setting_from_dict(data: dict):
    from memcross.theory.setting import Setting

    data = dict(data)
    if (data.get("alpha") or data.get("sigma")) and "schedule" not in data:
        data["schedule"] = "custom"
    if data.get("weight_expr") and "weighting" not in data:
        data["weighting"] = "custom"
    return Setting.from_dict(data)


def _summary(setting, record) -> str:
    from memcross.theory.crossover import crossover
    from memcross.theory.derivation import show_text

    cross = crossover(setting)
    schedule = setting.schedule_obj
    lines = [
        f"memcross prediction: schedule={setting.schedule}, time={setting.time}, weighting={setting.weighting}, "
        f"target={setting.target}, s2={setting.s2}, C={setting.C}, (d, K, N)=({setting.d}, {setting.K}, {setting.N})",
        "",
        "derivation summary:",
        f"  psi_t    = {show_text(schedule.psi)}",
        f"  lambda_t = {show_text(cross.lam)}   (weight in x0 units)",
        "  Delta_gen(t) = d s2 / (1 + psi_t s2)   (Theorem 3.1);  Delta_pmem(M) = C (1 - M/N) d s2   (Theorem 3.2)",
        "  M*/N = 1 - E_t[lambda/(1 + psi s2)] / (C E_t[lambda])",
        f"       = {show_text(cross.ratio)}" if record.method == "asymptotic" else
        "  finite-d: C = C(d, K, N, M) from nearest-neighbour order statistics; M* solves (1 - M/N) C(M) E[lambda] = E[lambda/(1+psi s2)]",
        "",
        f"M*/N = {record.value_text}   (method {record.method}, {record.dps} digits, error estimate {record.error:.3g})",
        f"M*   = {record.M_star:.6g} for N = {setting.N}",
    ]
    if record.method == "finite-d":
        lines.append(f"C(M*) = {record.coefficient:.6g}")
    lines += [f"note: {n}" for n in record.notes]
    lines.append("(run `memcross derive` for every step, `memcross derive --verify` to prove them)")
    return "\n".join(lines)


def _cmd_table(args) -> int:
    import json

    from memcross.numerics.records import Prediction
    from memcross.numerics.tables import latex_document, render_table

    try:
        with open(args.records) as fh:
            text = fh.read()
    except FileNotFoundError:
        raise UsageError(f"records file {args.records!r} not found") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError:
            raise UsageError(f"{args.records!r} is neither JSON nor JSON lines") from None
    if isinstance(data, dict):
        data = [data]
    rows = [Prediction.from_dict(d).row() for d in data]
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    table = render_table(rows, columns, args.format, args.caption, args.label, args.digits, args.siunitx)
    if args.standalone:
        if args.format != "latex":
            raise UsageError("--standalone needs --format latex")
        table = latex_document(table, args.siunitx)
    _write_or_print(table, args.output)
    return 0


def _cmd_plot(args) -> int:
    from memcross.numerics import plots

    if args.figure == "per-time":
        path = plots.per_time_figure(_setting_from(args), args.output)
    elif args.figure == "phase":
        path = plots.phase_figure(_setting_from(args), args.output)
    else:
        dims = [int(x) for x in args.dims.split(",")] if args.dims else (10, 30, 50, 100)
        setting = _setting_from(args)
        path = plots.coefficient_figure(args.output, dims, setting.K, setting.N)
    print(f"wrote {path}")
    return 0


class _Given(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        setattr(namespace, self.dest + "_given", True)


def build_parser() -> argparse.ArgumentParser:
    from memcross.theory.check import quantity_names

    parser = _Parser(prog="memcross", description="Predict, derive and verify the memorization crossover.")
    parser.add_argument("--version", action="version", version=f"memcross {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("derive", help="print the derivation of M*/N for a setting")
    _add_setting_arguments(p)
    p.add_argument("--latex", action="store_true", help="LaTeX align block instead of plain text")
    p.add_argument("--verify", action="store_true", help="also verify every step (exit 1 if one fails)")
    p.add_argument("--output", default=None, help="write to FILE instead of printing")
    p.set_defaults(func=_cmd_derive)

    p = sub.add_parser("predict", help="predict the critical ratio M*/N (default: the paper's setting)")
    _add_setting_arguments(p)
    p.add_argument("--method", default="asymptotic", choices=["asymptotic", "finite-d"], action=_Given)
    p.add_argument("--dps", type=int, default=30, action=_Given, help="decimal digits (default 30, at least 5)")
    p.add_argument("--config", default=None, help="TOML file of setting fields (and method, dps)")
    p.add_argument("--grid", action="append", metavar="FIELD=V1,V2", help="sweep a field (repeatable)")
    p.add_argument("--json", action="store_true", help="print the record(s) as JSON")
    p.add_argument("--fast", action="store_true", help="with --grid: float64 fast path for asymptotic rows")
    p.set_defaults(func=_cmd_predict, method_given=False, dps_given=False)

    p = sub.add_parser("table", help="LaTeX / CSV / Markdown table from prediction records (JSON)")
    p.add_argument("records", help="JSON (list or one record) or JSON lines, e.g. from `predict --json`")
    p.add_argument("--format", default="latex", choices=["latex", "csv", "markdown"])
    p.add_argument("--columns", default=None, help="comma-separated column names")
    p.add_argument("--caption", default=None)
    p.add_argument("--label", default=None)
    p.add_argument("--digits", type=int, default=4)
    p.add_argument("--siunitx", action="store_true", help="align numeric columns with siunitx S columns")
    p.add_argument("--standalone", action="store_true", help="wrap in a compilable LaTeX document")
    p.add_argument("--output", default=None)
    p.set_defaults(func=_cmd_table)

    p = sub.add_parser("plot", help="figures: per-time crossover, phase diagram, coefficient C(M)")
    p.add_argument("figure", choices=["per-time", "phase", "coefficient"])
    p.add_argument("--output", required=True, help="FILE.pdf, .png or .svg")
    p.add_argument("--dims", default=None, help="coefficient figure: dimensions, e.g. 10,30,50,100")
    _add_setting_arguments(p)
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser("check", help="does an expression equal the toolkit's quantity?")
    p.add_argument("expression", help="your expression (in t, d, s2, C, M, N, psi, ...)")
    p.add_argument("--against", required=True, choices=quantity_names(), metavar="QUANTITY",
                   help="one of: " + ", ".join(quantity_names()))
    p.add_argument("--M", dest="M", type=int, default=None, help="fix the model size M")
    _add_setting_arguments(p)
    p.set_defaults(func=_cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``memcross`` console script."""
    from memcross.theory.parser import ExpressionError

    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return args.func(args)
    except UsageError as exc:
        print(f"memcross: error: {str(exc).removeprefix('memcross: ')}", file=sys.stderr)
        return 2
    except (ValueError, ExpressionError, KeyError, TypeError) as exc:
        print(f"memcross: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("memcross: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
