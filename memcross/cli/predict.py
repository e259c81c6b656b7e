"""``memcross predict``: M*/N for a setting (or a grid of settings), with its derivation summary."""

from __future__ import annotations

from memcross.cli.common import (
    _INT_FIELDS,
    _SETTING_FIELDS,
    UsageError,
    _add_data_arguments,
    _add_setting_arguments,
    _Given,
    _load_config,
    _setting_fields,
    _setting_from_dict,
    _with_data_defaults,
)
from memcross.theory.datamodels import DEFAULT_DATA, parse_data_spec


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

def _cmd_predict(args) -> int:
    import itertools
    import json
    from dataclasses import replace

    from memcross.numerics.predict import predict, sweep
    from memcross.numerics.tables import render_table

    base = _load_config(args.config) if args.config else {}
    method = base.pop("method", None)
    dps = base.pop("dps", args.dps)
    if args.dps_given:
        dps = args.dps
    base = _with_data_defaults({**base, **_setting_fields(args)})
    if args.method_given or method is None:  # the data model's default method unless one is named
        method = args.method if args.method_given else parse_data_spec(base.get("data", DEFAULT_DATA))[0].default_method
        if args.fast and not args.method_given:
            method = "asymptotic"  # the float64 fast path is the paper's formula's
    grids = [_grid_values(g) for g in args.grid or []]
    if args.fast and not grids:
        raise UsageError("--fast only applies to --grid sweeps (a single prediction is exact already)")
    if not grids:
        setting = _setting_from_dict(base)
        try:
            record = predict(setting, method, dps)
        except ValueError as err:
            if args.method_given or method == "asymptotic":
                raise
            # the default method cannot take this setting: the paper's formula, saying why
            record = predict(setting, "asymptotic", dps)
            record = replace(record, notes=(*record.notes, f"{method} (the default) not used: {err}"))
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
    from tqdm import tqdm

    # a progress bar on a terminal only (tqdm's disable=None), on stderr
    with tqdm(total=len(combos), desc="predict", unit="setting", disable=None, leave=False) as bar:
        results = {}
        for m, ss in by_method.items():
            if args.fast:
                results[m] = sweep(ss, m, dps)
                bar.update(len(ss))
                continue
            results[m] = []
            for s in ss:
                results[m].append(predict(s, m, dps))
                bar.update(1)
    records = [results[m][i] for m, i in order]
    if args.json:
        print(json.dumps([r.to_dict() for r in records], indent=2))
        return 0
    columns = [f.replace("-", "_") for f in fields if f != "method"] + ["method", "value", "M_star"]
    print(render_table([r.row() for r in records], columns, "markdown", digits=8))
    return 0

def _summary(setting, record) -> str:
    from memcross.theory.crossover import crossover
    from memcross.theory.derivation import show_text

    model = setting.data_model
    if model.name != DEFAULT_DATA:
        return _data_model_summary(setting, record)
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
        f"       = {show_text(cross.ratio)}   (the paper's formula)",
        *_method_lines(record.method, "E[lambda/(1+psi s2)]"),
        "",
    ]
    return "\n".join(lines + _result_lines(setting, record))


def _method_lines(method: str, generalizer: str) -> list[str]:
    """How a method other than the paper's formula finds M* (nothing for the formula itself)."""
    if method == "finite-d":
        return ["  finite-d: C = C(M) from the nearest memorized point's order statistics; "
                f"M* solves (1 - M/N) C(M) E[lambda] = {generalizer}"]
    if method == "finite-snr":
        return ["  finite-snr: the expected training losses of the partial memorizer (M points) and of the "
                "generalizer at every time, from the data model (no collapse); M* is where their weighted "
                "averages cross"]
    return []

def _data_model_summary(setting, record) -> str:
    """The summary of a prediction for a data model other than the isotropic mixture."""
    model = setting.data_model
    lines = [
        f"memcross prediction: data {model.describe()}, N = {setting.N}, schedule={setting.schedule}, "
        f"time={setting.time}, weighting={setting.weighting}, target={setting.target}, C={setting.C}",
        "",
        "derivation summary:",
        f"  Delta_gen(t) = {model.formulas['generalizer']}",
        f"  Delta_pmem(M) = C (1 - M/N) c,  c = {model.formulas['point cost']}",
        "  M*/N = 1 - E_t[lambda Delta_gen / c] / (C E_t[lambda])   (the paper's formula)",
        *_method_lines(record.method, "E[lambda Delta_gen / c]"),
        "",
    ]
    return "\n".join(lines + _result_lines(setting, record))

def _result_lines(setting, record) -> list[str]:
    value = record.value_text
    if record.method == "finite-snr" and record.error > 0:  # a Monte Carlo number: to the error's first digit
        import math

        decimals = max(0, -math.floor(math.log10(record.error)))
        value = f"{record.value:.{decimals}f} ± {record.error:.1g}"
    lines = [
        f"M*/N = {value}   (method {record.method}, {record.dps} digits, error estimate {record.error:.3g})",
        f"M*   = {record.M_star:.6g} for N = {setting.N}",
    ]
    if record.method == "finite-d":
        lines.append(f"C(M*) = {record.coefficient:.6g}")
    if record.method != "asymptotic":
        from memcross.numerics.predict import predict

        paper = predict(setting.replace(C=1), "asymptotic")
        lines.append(f"paper's formula (C = 1, the memorizer collapsed at every time): M*/N = {paper.value_text}")
    lines += [f"note: {n}" for n in record.notes]
    lines.append("(run `memcross derive` for every step, `memcross derive --verify` to prove them)"
                 if setting.data_model.name == DEFAULT_DATA else
                 "(`memcross exact` with the same options measures the crossover on a sampled data set)")
    return lines


def add_parser(sub) -> None:
    """Register ``memcross predict`` with the subcommand parser ``sub``."""
    from memcross.numerics.predict import METHODS

    p = sub.add_parser("predict", help="predict the critical ratio M*/N (default: the paper's setting)")
    _add_setting_arguments(p)
    p.add_argument("--method", default="asymptotic", choices=METHODS, action=_Given)
    p.add_argument("--dps", type=int, default=30, action=_Given, help="decimal digits (default 30, at least 5)")
    p.add_argument("--config", default=None, help="TOML file of setting fields (and method, dps)")
    p.add_argument("--grid", action="append", metavar="FIELD=V1,V2", help="sweep a field (repeatable)")
    p.add_argument("--json", action="store_true", help="print the record(s) as JSON")
    p.add_argument("--fast", action="store_true", help="with --grid: float64 fast path for asymptotic rows")
    _add_data_arguments(p)
    p.set_defaults(func=_cmd_predict, method_given=False, dps_given=False)
