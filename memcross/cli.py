"""The ``memcross`` command: parses arguments, calls a layer, prints. No math here.

Exit codes: 0 success; 1 ``check`` found a mismatch (or ``derive --verify`` a failing step);
2 bad input, reported on one line.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from memcross import __version__
from memcross._checks import did_you_mean


class UsageError(Exception):
    """A user mistake: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """One-line errors with a suggestion for a misspelt command or option; no abbreviations
    (``--schedul`` is not taken as ``--schedule``)."""

    def __init__(self, *args, allow_abbrev=False, **kwargs):
        super().__init__(*args, allow_abbrev=allow_abbrev, **kwargs)

    def error(self, message):  # one line, exit 2, no usage dump
        raise UsageError(f"{self.prog}: {message}{self._suggestion(message)}")

    def _suggestion(self, message: str) -> str:
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            known = re.findall(r"'([^']*)'", choice.group(2)) or [c.strip() for c in choice.group(2).split(",")]
            return did_you_mean(choice.group(1), known)
        unknown = re.search(r"unrecognized arguments: (\S+)", message)
        if unknown and unknown.group(1).startswith("--"):
            options = [o for parser in self._all_parsers() for a in parser._actions for o in a.option_strings
                       if o.startswith("--")]
            return did_you_mean(unknown.group(1).split("=")[0], options)
        return ""

    def _all_parsers(self):
        """This parser and its subcommands' (an unknown option is reported by the top parser)."""
        yield self
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                for parser in action.choices.values():
                    yield from parser._all_parsers()


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
    path = output_path(output, "--output")
    try:
        path.write_text(text + "\n")
    except OSError as exc:
        raise UsageError(f"--output {output!r}: cannot write ({exc.strerror or exc})") from None
    print(f"wrote {path}")


def output_path(output: str, flag: str, suffixes: tuple[str, ...] | None = None) -> Path:
    """``output`` as a path to write, checked before any work: its folder exists, it is not a
    folder itself, and (for figures) it ends in one of ``suffixes``."""
    path = Path(output)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise UsageError(f"{flag} must end in {', '.join(suffixes)}, got {output!r}")
    if path.is_dir():
        raise UsageError(f"{flag} {output!r} is a folder; give a file name")
    if not path.parent.is_dir():
        raise UsageError(f"{flag}: folder {str(path.parent)!r} does not exist")
    if (path.exists() and not os.access(path, os.W_OK)) or not os.access(path.parent, os.W_OK):
        raise UsageError(f"{flag} {output!r}: not writable")
    return path


def _cmd_derive(args) -> int:
    from memcross.theory.derivation import derive

    derivation = derive(_setting_from(args))
    report = derivation.verify() if args.verify else None
    status = 0 if report is None or report.ok else 1
    if args.json:
        import json

        _write_or_print(json.dumps(_derivation_dict(derivation, report), indent=2), args.output)
        return status
    if args.standalone and not args.latex:
        raise UsageError("--standalone needs --latex")
    if args.latex:
        text = derivation.latex_document() if args.standalone else derivation.latex()
    else:
        text = derivation.text()
    if report is not None:
        text += "\n\n" + (("% " + report.describe().replace("\n", "\n% ")) if args.latex else report.describe())
    _write_or_print(text, args.output)
    return status


def _derivation_dict(derivation, report) -> dict:
    """A derivation (and its verification) as plain JSON values."""
    from memcross.theory.derivation import _is_exact_number, show_text

    result = derivation.result
    out = {
        "setting": derivation.setting.to_dict(),
        "steps": [{"name": s.name, "lhs": show_text(s.lhs), "rhs": show_text(s.rhs), "reason": s.reason}
                  for s in derivation.steps],
        "result": None if result is None else show_text(result),
        "value": float(result) if _is_exact_number(result) else None,
    }
    if report is not None:
        out["verification"] = {"ok": report.ok, "failed_step": report.failed_step,
                               "steps": [{"name": name, **_verdict_dict(v)} for name, v in report.verdicts]}
    return out


def _verdict_dict(verdict) -> dict:
    """A comparison's verdict as plain JSON values."""
    import sympy as sp

    def number(v):
        return None if v is None else str(sp.N(v, 15))

    return {"equal": verdict.equal, "method": verdict.method, "detail": verdict.detail,
            "description": verdict.describe(), "point": {str(k): number(v) for k, v in verdict.point.items()},
            "left": number(verdict.left), "right": number(verdict.right)}


def _cmd_check(args) -> int:
    from memcross.theory.check import check_expression

    setting = _setting_from(args)
    values = {k: getattr(args, k) for k in ("s2", "C", "d", "N", "K") if getattr(args, k, None) is not None}
    if args.M is not None:
        values["M"] = args.M
    verdict = check_expression(args.expression, args.against, setting, values)
    if args.json:
        import json

        print(json.dumps({"expression": args.expression, "against": args.against, **_verdict_dict(verdict)}, indent=2))
    else:
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
    from memcross._checks import parse_toml, read_text

    data = parse_toml(read_text(path, f"--config: file {path!r}"), f"--config: {path!r}")
    setting = data.get("setting", {})
    if not isinstance(setting, dict):
        raise UsageError(f"--config: {path!r}: [setting] must be a table of setting fields")
    data = dict(setting, **{k: v for k, v in data.items() if k != "setting"})
    return data


def _cmd_predict(args) -> int:
    import itertools
    import json

    from memcross.numerics.predict import predict, sweep
    from memcross.numerics.tables import render_table

    if args.data != "isotropic":
        return _predict_colored(args)
    if args.templates is not None:
        raise UsageError("--templates is only used with --data colored-templates")
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
    if args.fast and not grids:
        raise UsageError("--fast only applies to --grid sweeps (a single prediction is exact already)")
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


def _predict_colored(args) -> int:
    from memcross.numerics.predict import predict_colored
    from memcross.numerics.templates import load_templates

    if args.grid or args.config:
        raise UsageError("--grid and --config are not available with --data colored-templates yet")
    setting = _colored_setting(args)
    spec = args.templates or "blobs"
    templates = load_templates(spec, setting.K)
    method = args.method if args.method_given else "finite-d"
    record = predict_colored(setting, templates, args.sc2, method, spec)
    if args.json:
        print(record.to_json(indent=2))
        return 0
    print(f"memcross prediction: coloured templates {spec!r} (K = {setting.K}, P = {templates.shape[1]}, "
          f"sc2 = {args.sc2}), N = {setting.N}, schedule={setting.schedule}, time={setting.time}, "
          f"weighting={setting.weighting}")
    print()
    print("derivation summary:")
    print("  Delta_gen(t) = (1/K) sum_k 3 l_k / (1 + psi_t l_k),  l_k = sc2 ||u_k||^2   (rank-3 MMSE per template)")
    if method == "finite-d":
        print("  Delta_pmem(M) = (1 - M/N) (1/K) sum_k E int_0^inf ((1/K) sum_l S_kl(r))^M dr   "
              "(nearest memorized point; order statistics in colour space)")
        print("  M* solves Delta_pmem(M) E_t[lambda] = E_t[lambda Delta_gen]")
    else:
        print("  Delta_pmem(M) = C (1 - M/N) mean_k(3 l_k);  M*/N = 1 - E_t[lambda Delta_gen] / (C mean(3 l) E_t[lambda])")
    print()
    print(f"M*/N = {record.value_text}   (method {method}, {record.dps} digits, error estimate {record.error:.3g})")
    print(f"M*   = {record.M_star:.6g} for N = {setting.N}")
    for note in record.notes:
        print(f"note: {note}")
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

    from memcross.numerics.tables import latex_document, render_table
    from memcross.records import Prediction

    if (args.records is None) == (args.store is None):
        raise UsageError("table: give either a records file or --store FILE")
    if args.store is not None:
        rows, default_columns = _store_rows(args.store, args.kind)
    else:
        from memcross._checks import read_text

        text = read_text(args.records, f"records file {args.records!r}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            try:
                data = [json.loads(line) for line in text.splitlines() if line.strip()]
            except json.JSONDecodeError:
                raise UsageError(f"{args.records!r} is neither JSON nor JSON lines") from None
        except RecursionError:
            raise UsageError(f"records file {args.records!r} is nested too deeply") from None
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
            raise UsageError(f"records file {args.records!r}: expected prediction records (JSON objects)")
        rows = [Prediction.from_dict(d).row() for d in data]
        default_columns = None
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else default_columns
    table = render_table(rows, columns, args.format, args.caption, args.label, args.digits, args.siunitx)
    if args.standalone:
        if args.format != "latex":
            raise UsageError("--standalone needs --format latex")
        table = latex_document(table, args.siunitx)
    _write_or_print(table, args.output)
    return 0


SUMMARY_COLUMNS = ["d", "K", "N", "preset", "predicted_c1", "predicted_finite_d", "exact", "observed_start",
                   "observed_mid", "observed_end", "baseline_ratio", "unconverged"]
SIZE_COLUMNS = ["M", "M_over_N", "ratio", "ratio_low", "ratio_high", "variance", "means_near_train",
                "means_near_true", "train_loss", "val_loss", "pmem_train_loss", "converged"]


def _store_rows(path: str, kind: str) -> tuple[list[dict], list[str]]:
    """Rows of a store, whichever command wrote it: sweep summaries, or per-size results, from
    `memcross validate` units and from the validate cells of `memcross study run`."""
    from memcross.records import CellResult, SizeResult, SweepSummary
    from memcross.store import Store

    if not Path(path).exists():
        raise UsageError(f"--store: file {path!r} not found")
    store = Store(path, create=False)
    try:
        if kind == "summary":
            records = store.records("summary")
        else:
            records = store.records("size", config_schema={
                "K": int, "N": int, "d?": int, "templates?": str, "train": {"steps": int}})
        cells = [(c, r) for c, r in store.records("cell") if c.get("method") == "validate"]
    finally:
        store.close()
    sweeps = [CellResult.from_stored(c, r, f"store {path!r}: a stored validate cell").payload for c, r in cells]
    if kind == "summary":
        rows = [SweepSummary.from_dict(r, f"store {path!r}: a stored sweep summary").row() for _, r in records]
        rows += [sweep.summary.row() for sweep in sweeps]
        if not rows:
            raise UsageError(f"--store {path!r} holds no trained sweeps yet (from `validate` or a study's validate cell)")
        return rows, SUMMARY_COLUMNS
    rows = [{"data": _data_label(c.get("data"), c.get("templates")), "d": c.get("d"), "K": c["K"], "N": c["N"],
             "steps": c["train"]["steps"], **SizeResult.from_dict(r, f"store {path!r}: a stored size record").row()}
            for c, r in records]
    for sweep in sweeps:
        s = sweep.summary
        rows += [{"data": _data_label(s.data, s.templates), "d": s.d, "K": s.K, "N": s.N, "steps": s.steps,
                  **size.row()} for size in sweep.sizes]
    if not rows:
        raise UsageError(f"--store {path!r} holds no trained sizes yet (from `validate` or a study's validate cell)")
    columns = ["data", "d", "K", "N"] + SIZE_COLUMNS
    if any(r.get("templates_near_true") is not None for r in rows):
        columns.insert(columns.index("means_near_true") + 1, "templates_near_true")
    return sorted(rows, key=lambda r: (r["data"], r["d"] or 0, r["K"], r["N"], r["steps"], r["M"])), columns


def _data_label(data: str | None, templates: str | None) -> str:
    """``isotropic``, or ``colored-templates:SPEC`` for a coloured-template unit."""
    if data == "colored-templates":
        return f"colored-templates:{templates}"
    return "isotropic"


def _parse_sizes(text: str | None, N: int):
    """``10,20,30`` or ``START:STOP:STEP`` (inclusive); None for the default grid."""
    if text is None:
        return None
    try:
        if ":" in text:
            start, stop, step = (int(v) for v in text.split(":"))
            if step < 1:
                raise ValueError
            return list(range(start, stop + 1, step))
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--sizes {text!r}: expected M1,M2,... or START:STOP:STEP with positive integers") from None


def _open_store(args, required: bool = False):
    """The store of ``--store`` (default under ./memcross-runs/); with ``--no-store``, None, or a
    throw-away store in a temporary folder when the command needs one."""
    import tempfile

    from memcross.store import Store, default_store_path

    if getattr(args, "no_store", False):
        if args.store:
            raise UsageError("give --store FILE or --no-store, not both")
        return Store(Path(tempfile.mkdtemp(prefix="memcross-")) / "run.sqlite") if required else None
    return Store(args.store or default_store_path())


def _cmd_exact(args) -> int:
    import json

    import numpy as np

    from memcross.numerics.coefficient import coefficient, colored_excess
    from memcross.numerics.predict import predict, predict_colored
    from memcross.numerics.tables import render_table
    from memcross.validation.sweep import build_data, data_spec, exact_for

    colored = args.data == "colored-templates"
    setting = _colored_setting(args) if colored else _setting_from(args)
    spec = data_spec(args.data, args.templates, args.sc2)
    from memcross.validation.exact import check_exact_inputs

    check_exact_inputs(setting, args.draws, args.seed, spec)  # draws, seed, memory: before any work
    _set_threads(args)
    data = build_data(setting, args.seed, spec)  # checks the templates before the store is touched
    store = _open_store(args)
    ex = exact_for(setting, args.seed, args.draws, store, data, spec)
    ratio, m_star = ex.crossover()
    base = setting.replace(C=1)
    fractions = [f for f in (0.1, 0.25, 0.5, 0.8, 0.95) if 1 <= round(f * setting.N) < setting.N]
    Ms = [int(round(f * setting.N)) for f in fractions]
    if colored:
        asym = predict_colored(base, data.templates, args.sc2, "asymptotic").value
        fin = predict_colored(base, data.templates, args.sc2, "finite-d").value
        measured_pm = ex.excess_partial_memorizer()
        theory_pm = colored_excess(data.templates, args.sc2, setting.N, Ms) if Ms else []
        c_rows = [{"M/N": M / setting.N, "M": M, "excess measured": float(measured_pm[M - 1]),
                   "order statistics": float(th)} for M, th in zip(Ms, theory_pm)]
        theory_label, c_title = "(1/K) sum 3l/(1+psi l)", "partial memorizer's excess over the memorizer"
        what = (f"coloured templates {spec['templates']!r} (K = {setting.K}, D = {data.d}, sc2 = {args.sc2}), "
                f"N = {setting.N}")
    else:
        asym, fin = predict(base, "asymptotic").value, predict(base, "finite-d").value
        c_rows = [{"M/N": M / setting.N, "M": M, "C(M) measured": ex.coefficient(M),
                   "C(M) finite-d theory": coefficient(setting.d, setting.K, setting.N, M, float(setting.s2_exact))}
                  for M in Ms]
        theory_label, c_title = "d s2/(1+psi s2)", "C(M)"
        what = f"(d, K, N) = ({setting.d}, {setting.K}, {setting.N}), s2 = {setting.s2}"
    if args.json:
        print(json.dumps({"setting": setting.to_dict(), "data": spec, "seed": args.seed, "draws": args.draws,
                          "exact": ratio, "M_star": m_star, "predicted_c1": asym, "predicted_finite_d": fin,
                          "t": ex.table.t.tolist(), "excess_generalizer": ex.excess_generalizer().tolist(),
                          "theory_excess_generalizer": ex.theory_excess_generalizer().tolist(),
                          "partial_memorizer": c_rows}, indent=2))
        return 0
    measured, theory, collapsed = ex.excess_generalizer(), ex.theory_excess_generalizer(), ex.collapsed()
    t_rows = [{"t": float(t), "psi": float(p), "L_gen - L_mem": float(m), theory_label: float(th),
               "measured/theory": float(m / th), "collapsed": "yes" if c else "no"}
              for t, p, m, th, c in zip(ex.table.t, ex.table.psi, measured, theory, collapsed)]
    print(f"memcross exact: {what}, schedule {setting.schedule}, time {setting.time}, "
          f"weighting {setting.weighting}; {args.draws} noise draws, data seed {args.seed}")
    print()
    print(f"exact M*/N = {ratio:.4f}   (smallest M with weighted L_pmem,M <= L_gen: M* = {m_star})")
    print(f"predicted:  asymptotic (C = 1) {asym:.4f},  finite-d {fin:.4f}")
    print()
    print("per-time excess of the generalizer over the memorizer (x0 units), measured vs theory:")
    print(render_table(t_rows, list(t_rows[0]), "markdown", digits=4))
    print()
    print(f"measured {c_title} (mean over the {int(collapsed.sum())} collapsed times) vs the theory:")
    print(render_table(c_rows, list(c_rows[0]), "markdown", digits=4) if c_rows else "(N too small)")
    if np.any(~collapsed):
        print(f"note: {int((~collapsed).sum())} time(s) where the memorizer has not collapsed; "
              "the theory's excess is not expected to hold there")
    if store is not None:
        print(f"stored in {store.path}")
    return 0


def _cmd_validate(args) -> int:
    import json

    from memcross.numerics.tables import render_table
    from memcross.validation.sweep import build_data, data_spec, plan_from, validate

    colored = args.data == "colored-templates"
    if args.templates is not None and not colored:
        raise UsageError("--templates is only used with --data colored-templates")
    setting = _colored_setting(args) if colored else _setting_from(args)
    spec = data_spec(args.data, args.templates, args.sc2)
    plan = plan_from(setting, args.preset, _parse_sizes(args.sizes, setting.N), args.device, args.seed,
                     args.refine, args.sampler, args.exact_draws, args.n_eval, data=spec, steps=args.steps,
                     draws=args.draws, lr=args.lr, init=args.init, init_variance=args.init_variance,
                     update_ema=args.update_ema, target=args.train_target, weighting=args.train_weighting,
                     seed=args.train_seed)
    _set_threads(args)
    data = build_data(setting, args.seed, spec)  # checks the templates before any work
    from memcross.validation.model import family_class

    family_class(data).check_init(plan.train.init)
    figure = None
    if not args.no_figure and (args.figure or not args.no_store):
        store_dir = Path(args.store).parent if args.store else Path("memcross-runs")
        s = plan.setting
        what = f"colored-{spec['templates'].split(':')[0]}" if colored else f"d{s.d}"
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
    log(f"memcross validate: preset {plan.preset}, {plan.train.steps} steps, R = {plan.train.draws}, "
        f"{plan.n_eval} evaluation samples, sizes {list(plan.sizes)}, device {plan.device}, store {store.path}")
    result = validate(plan, store, progress=not args.no_progress and not args.json, log=log,
                      checkpoint_seconds=args.checkpoint_every)
    if figure is not None:
        from memcross.numerics.plots import transition_figure

        s = result.summary
        marks = {"asymptotic C=1": s.predicted_c1, "finite-d": s.predicted_finite_d, "exact": s.exact,
                 "observed 50%": s.observed_mid}
        base = {"generalizer (train)": s.gen_train_loss, "generalizer (validation)": s.gen_val_loss}
        figure.parent.mkdir(parents=True, exist_ok=True)
        log(f"wrote {transition_figure(result.sizes, marks, figure, base)}")
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print()
    columns = [c.replace("means_near_true", "templates_near_true") if colored else c for c in SIZE_COLUMNS]
    print(render_table([r.row() for r in result.sizes], columns, "markdown", digits=4))
    print()
    print(render_table([result.summary.row()], SUMMARY_COLUMNS[3:], "markdown", digits=4))
    if result.summary.transition_note:
        print(f"note: {result.summary.transition_note}")
    if result.summary.unconverged != "none":
        print(f"note: sizes {result.summary.unconverged} had not converged (loss or variance still moving "
              "over the last 10% of steps); more steps may move the transition")
    return 0


def _study_and_store(args, create: bool):
    from memcross.store import Store
    from memcross.studies import default_study_store, load_study

    study = load_study(args.study, check_plans=create)  # a report only reads the store
    path = Path(args.store) if args.store else default_study_store(study)
    if not create and not path.exists():
        raise UsageError(f"no store {str(path)!r} for study {study.name!r}: run `memcross study run` first")
    return study, Store(path, create=create)


def _cmd_study(args) -> int:
    from memcross.studies import check_workers, error_rows, render_report, run_study, study_rows

    if args.action == "run":
        check_workers(args.workers, args.dask_local, args.dask_scheduler)  # before a store exists
        study, store = _study_and_store(args, create=True)
        summary = run_study(study, store, args.workers or 0, args.dask_scheduler, args.dask_local, args.add,
                            log=lambda m: print(m, flush=True), progress=not args.no_progress)
        print(f"study {study.name!r}: {summary.done} cell(s) computed, {summary.skipped} already stored, "
              f"{len(summary.failed)} failed; store {store.path}")
        return 1 if summary.failed else 0
    figure = output_path(args.figure, "--figure", FIGURE_SUFFIXES) if args.figure else None
    if args.output:
        output_path(args.output, "--output")
    study, store = _study_and_store(args, create=False)
    rows, failed = study_rows(study, store)
    if args.json:
        import json

        report = {"study": study.name, "rows": rows, "errors": error_rows(rows), "failed": failed}
        _write_or_print(json.dumps(report, indent=2), args.output)
    else:  # CSV keeps every digit, in one table
        _write_or_print(render_report(study, rows, failed, args.format, None if args.format == "csv" else 4),
                        args.output)
    if figure is not None:
        from memcross.numerics.plots import study_figure

        print(f"wrote {study_figure(rows, figure)}")
    return 0


FIGURE_SUFFIXES = (".pdf", ".png", ".svg")
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


def _list_rows(what: str) -> list[dict]:
    """Rows of ``memcross list WHAT``, read from the registries."""
    if what == "schedules":
        from memcross.theory.schedules import get_schedule, schedule_names

        rows = []
        for name in schedule_names():
            s = get_schedule(name)
            rows.append({"name": name, "alpha_t": str(s.alpha), "sigma_t": str(s.sigma), "t range": f"[0, {s.t_max}]",
                         "description": s.description})
        rows.append({"name": "custom", "alpha_t": "--alpha EXPR", "sigma_t": "--sigma EXPR",
                     "t range": "[0, --t-max] (default 1)", "description": "your expressions in t, validated"})
        return rows
    if what == "weightings":
        from memcross.theory.weightings import get_weighting, weighting_names

        rows = []
        for name in weighting_names():
            kind = get_weighting(name, "x0", "1" if name == "custom" else None).kind
            params = ", ".join(f"{k}={v}" for k, v in kind.defaults) or "-"
            rows.append({"name": name, "parameters (defaults)": params, "stated on": kind.stated_on or "the target",
                         "description": kind.description})
        return rows
    if what == "targets":
        from memcross.theory.targets import get_target

        return [{"name": n, "description": get_target(n).description} for n in _target_names()]
    if what == "methods":
        return [{"name": "asymptotic", "description": "the paper's leading-order formula with the coefficient C "
                 "(--C, default 1)"},
                {"name": "finite-d", "description": "the finite-dimension coefficient C(d, K, N, M) from "
                 "nearest-neighbour order statistics; M* is a root"}]
    if what == "data":
        return [{"name": "isotropic", "parameters (defaults)": "--dim 50, --components 12, --train 200, --s2 1",
                 "description": "isotropic Gaussian mixture, means uniform on the sphere of radius sqrt(d)"},
                {"name": "colored-templates",
                 "parameters (defaults)": "--templates blobs[:side=15,sparsity=0.3,seed=0] | digits[:side=15] | "
                                          "file:PATH.npy, --components 6, --train 100, --sc2 1",
                 "description": "coloured grayscale templates: rank-3 components in dimension 3P"}]
    from memcross.validation.presets import PRESETS

    return [{"name": n, **p} for n, p in PRESETS.items()]


def _target_names() -> list[str]:
    from memcross.theory.targets import target_names

    return target_names()


LIST_KINDS = ("schedules", "weightings", "targets", "methods", "data", "presets")


def _cmd_list(args) -> int:
    import json

    from memcross.numerics.tables import render_table

    kinds = [args.what] if args.what else list(LIST_KINDS)
    out = {k: _list_rows(k) for k in kinds}
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    for k in kinds:
        print(f"{k}:")
        print(render_table(out[k], list(out[k][0]), "markdown"))
        print()
    return 0


def _add_data_arguments(p) -> None:
    g = p.add_argument_group("data model")
    g.add_argument("--data", default="isotropic", choices=["isotropic", "colored-templates"],
                   help="isotropic GMM (default) or coloured templates (low-rank; docs/images.md)")
    g.add_argument("--templates", default=None,
                   help="coloured templates: blobs[:side=15,sparsity=0.3,seed=0] (default), digits[:side=15] "
                        "(needs scikit-learn), file:PATH.npy")
    g.add_argument("--sc2", type=float, default=1.0, help="coloured templates: colour variance (default 1)")


def _colored_setting(args):
    """The setting for coloured templates: the paper's K = 6, N = 100 unless given."""
    data = {k: getattr(args, k) for k in _SETTING_FIELDS if getattr(args, k, None) is not None}
    data.setdefault("K", 6)
    data.setdefault("N", 100)
    data.setdefault("d", 1)  # the ambient dimension is 3P, set by the templates
    return _setting_from_dict(data)


def _add_store_arguments(p) -> None:
    p.add_argument("--store", default=None, help="study store (SQLite; default ./memcross-runs/memcross.sqlite)")
    p.add_argument("--no-store", action="store_true", help="do not read or write a store")


def _add_threads_argument(p) -> None:
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: the CPUs this process may use, less the load average; "
                        "at least 1)")


def _set_threads(args) -> int:
    """Apply ``--threads`` (checked) or the default that does not oversubscribe the machine."""
    import torch

    from memcross._checks import check_threads, default_threads

    n = default_threads() if args.threads is None else check_threads(args.threads)
    torch.set_num_threads(n)
    return n


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
    p.add_argument("--standalone", action="store_true",
                   help="with --latex: a compilable LaTeX document (article + amsmath)")
    p.add_argument("--json", action="store_true", help="the steps (and verification) as JSON")
    p.set_defaults(func=_cmd_derive)

    p = sub.add_parser("predict", help="predict the critical ratio M*/N (default: the paper's setting)")
    _add_setting_arguments(p)
    p.add_argument("--method", default="asymptotic", choices=["asymptotic", "finite-d"], action=_Given)
    p.add_argument("--dps", type=int, default=30, action=_Given, help="decimal digits (default 30, at least 5)")
    p.add_argument("--config", default=None, help="TOML file of setting fields (and method, dps)")
    p.add_argument("--grid", action="append", metavar="FIELD=V1,V2", help="sweep a field (repeatable)")
    p.add_argument("--json", action="store_true", help="print the record(s) as JSON")
    p.add_argument("--fast", action="store_true", help="with --grid: float64 fast path for asymptotic rows")
    _add_data_arguments(p)
    p.set_defaults(func=_cmd_predict, method_given=False, dps_given=False)

    p = sub.add_parser("table", help="LaTeX / CSV / Markdown table from prediction records or a study store")
    p.add_argument("records", nargs="?", default=None,
                   help="JSON (list or one record) or JSON lines, e.g. from `predict --json`")
    p.add_argument("--store", default=None, help="a study store (SQLite) written by `memcross validate`")
    p.add_argument("--kind", default="summary", choices=["summary", "sizes"],
                   help="with --store: one row per sweep (summary) or per trained size (sizes)")
    p.add_argument("--format", default="latex", choices=["latex", "csv", "markdown"])
    p.add_argument("--columns", default=None, help="comma-separated column names")
    p.add_argument("--caption", default=None)
    p.add_argument("--label", default=None)
    p.add_argument("--digits", type=int, default=None,
                   help="significant digits (default 4; CSV keeps every digit unless given)")
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

    p = sub.add_parser("exact", help="exact finite-sample crossover of the analytic denoisers (no training)")
    _add_setting_arguments(p)
    p.add_argument("--draws", type=int, default=8, help="noise draws per point and time (default 8)")
    p.add_argument("--seed", type=int, default=0, help="data-set seed (default 0)")
    _add_data_arguments(p)
    _add_store_arguments(p)
    _add_threads_argument(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cmd_exact)

    p = sub.add_parser("validate", help="train GMM denoisers of several sizes; observed vs predicted transition")
    _add_setting_arguments(p)
    g = p.add_argument_group("sweep")
    g.add_argument("--preset", default=None, help="quick (default on CPU) or paper (default on CUDA)")
    g.add_argument("--sizes", default=None, help="model sizes M1,M2,... or START:STOP:STEP (default N/10..N)")
    g.add_argument("--seed", type=int, default=0, help="data-set seed (default 0)")
    g.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    g.add_argument("--refine", type=int, default=0, help="extra sizes between the transition's start and end")
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
    g.add_argument("--train-target", default=None, help="target the loss is stated on (default eps)")
    g.add_argument("--train-weighting", default=None, help="loss weighting (default eps-uniform)")
    g.add_argument("--train-seed", type=int, default=None, help="seed of inits and training noise (default 0)")
    _add_data_arguments(p)
    _add_store_arguments(p)
    _add_threads_argument(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary and per-size rows as JSON")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("study", help="declarative studies: run a grid of cells resumably, report it")
    p.add_argument("action", choices=["run", "report"])
    p.add_argument("study", help="study file (TOML)")
    p.add_argument("--store", default=None, help="the study's store (default ./memcross-runs/NAME.sqlite)")
    p.add_argument("--workers", type=int, default=None, help="run: local worker processes")
    p.add_argument("--dask-scheduler", default=None, metavar="tcp://HOST:PORT", help="run: an existing Dask scheduler")
    p.add_argument("--dask-local", type=int, default=None, metavar="N", help="run: start a Dask LocalCluster of N workers")
    p.add_argument("--add", action="store_true", help="run: add this study's cells to a store of another study")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--format", default="markdown", choices=["latex", "csv", "markdown"], help="report: table format")
    p.add_argument("--output", default=None, help="report: write the tables to FILE")
    p.add_argument("--figure", default=None, help="report: figure of M* against N (.pdf/.png/.svg)")
    p.add_argument("--json", action="store_true", help="report: rows, errors and failed cells as JSON")
    p.set_defaults(func=_cmd_study)

    p = sub.add_parser("list", help="what the registries hold: schedules, weightings, targets, methods, data, presets")
    p.add_argument("what", nargs="?", choices=LIST_KINDS, help="one kind (default: all)")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("check", help="does an expression equal the toolkit's quantity?")
    p.add_argument("expression", help="your expression (in t, d, s2, C, M, N, psi, ...)")
    p.add_argument("--against", required=True, choices=quantity_names(), metavar="QUANTITY",
                   help="one of: " + ", ".join(quantity_names()))
    p.add_argument("--M", dest="M", type=int, default=None, help="fix the model size M")
    p.add_argument("--json", action="store_true", help="the verdict as JSON")
    _add_setting_arguments(p)
    p.set_defaults(func=_cmd_check)
    return parser


_EXTRAS = {"torch": "validation", "sklearn": "images", "dask": "scale", "distributed": "scale"}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``memcross`` console script: 0 success, 1 a failed check or verification,
    2 a user mistake (one line on stderr), 130 interrupted."""
    from memcross.theory.parser import ExpressionError

    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return args.func(args)
    except UsageError as exc:
        return _fail(str(exc).removeprefix("memcross: "))
    except (ValueError, ExpressionError, KeyError, TypeError) as exc:
        return _fail(str(exc))
    except ModuleNotFoundError as exc:
        root = (exc.name or "").split(".")[0]
        if root not in _EXTRAS:
            raise
        extra = _EXTRAS[root]
        return _fail(f"this command needs the {extra!r} extra ({root} is not installed): "
                     f"pip install 'memcross[{extra}]'")
    except BrokenPipeError:
        # the reader (e.g. `| head`) went away: stop quietly, as other command-line tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("memcross: interrupted", file=sys.stderr)
        return 130


def _fail(message: str) -> int:
    print(f"memcross: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
