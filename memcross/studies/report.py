"""Reports: a study's stored cells as rows per ``(d, K, N)`` (seeds averaged), the errors of each
predictor against the exact and observed crossovers, and the cells without a result."""

from __future__ import annotations

import functools

from memcross.records import CellResult
from memcross.store import Store
from memcross.studies.spec import Study


def study_rows(study: Study, store: Store) -> tuple[list[dict], list[dict]]:
    """Per ``(data, d, K, N)`` rows (seeds averaged) and the failed cells."""
    import numpy as np

    from memcross.theory.setting import Setting

    groups: dict[tuple, dict] = {}
    failed = []
    for cell in study.cells:
        setting = Setting.from_dict(cell.setting)  # d, K, N as the data model fixes them
        key = (setting.data, setting.d, setting.K, setting.N)
        row = groups.setdefault(key, {"data": key[0], "d": key[1], "K": key[2], "N": key[3], "_exact": [],
                                      "_mid": [], **dict.fromkeys(PREDICTORS)})
        key = key[1:]
        res = store.get_record("cell", cell.config(), functools.partial(CellResult.from_stored, cell.config()))
        if res is None:
            fail = store.get("cell-failed", cell.config(), {"error": str})
            failed.append({"cell": cell.label(), "error": fail["error"] if fail else "not run yet",
                           "method": cell.method, "seed": cell.seed, "d": key[0], "K": key[1], "N": key[2]})
            continue
        got = res.payload
        if cell.method == "predict":
            for key in PREDICTORS:
                row[key] = getattr(got, key)
        elif cell.method == "exact":
            row["_exact"].append(got.exact)
        else:
            summ = got.summary
            if summ.family is not None:  # networks: their transition on M_eff/N and in parameters, apart
                for name, value in (("_mid_net", summ.observed_mid), ("_mid_params", summ.observed_mid_params)):
                    if value is not None:
                        row.setdefault(name, []).append(value)
            elif summ.observed_mid is not None:
                row["_mid"].append(summ.observed_mid)
            # a trained sweep carries its own predictions and exact crossover: use them where the
            # study has no predict / exact cell for this setting
            row.setdefault("_sweep_exact", []).append(summ.exact)
            if row["predicted_c1"] is None:
                row["predicted_c1"] = summ.predicted_c1
            if row["predicted_finite_d"] is None:
                row["predicted_finite_d"] = summ.predicted_finite_d
            if row["predicted_finite_snr"] is None:
                row["predicted_finite_snr"] = summ.predicted_finite_snr
    rows = []
    for key in sorted(groups):
        row = groups[key]
        ex, mid = row.pop("_exact"), row.pop("_mid")
        sweep_exact = [v for v in row.pop("_sweep_exact", []) if v is not None]
        ex = ex or sweep_exact
        row["exact"] = float(np.mean(ex)) if ex else None
        row["exact_seeds"] = len(ex)
        row["observed_mid"] = float(np.mean(mid)) if mid else None
        for name, column in (("_mid_net", "observed_mid_mlp"), ("_mid_params", "observed_mid_params")):
            values = row.pop(name, None)
            if values is not None:
                row[column] = float(np.mean(values))
        rows.append(row)
    return rows, failed


def error_rows(rows: list[dict]) -> list[dict]:
    """Mean absolute and worst error of each predictor against exact and observed ``M*/N``."""
    import numpy as np

    out = []
    for pred in (*PREDICTORS, "exact"):
        for ref in ("exact", "observed_mid"):
            if pred == ref:
                continue
            diffs = [r[pred] - r[ref] for r in rows if r.get(pred) is not None and r.get(ref) is not None]
            if diffs:
                worst = max(diffs, key=abs)
                out.append({"predictor": pred, "against": ref, "cells": len(diffs),
                            "mean_abs_error": float(np.mean(np.abs(diffs))), "worst_error": float(worst)})
    return out


#: The predictions a report compares (a study's predict cells; a trained sweep gives the first two).
PREDICTORS = ("predicted_c1", "predicted_finite_d", "predicted_finite_snr")
REPORT_COLUMNS = ["d", "K", "N", "predicted_c1", "predicted_finite_d", "exact", "exact_seeds", "observed_mid",
                  "predicted_finite_snr"]


def _columns(rows: list[dict]) -> list[str]:
    """:data:`REPORT_COLUMNS`, led by ``data`` where a row is not the isotropic mixture."""
    other = any(r.get("data", "isotropic") != "isotropic" for r in rows)
    nets = [c for c in ("observed_mid_mlp", "observed_mid_params") if any(c in r for r in rows)]
    return (["data"] if other else []) + REPORT_COLUMNS + nets


def render_report(study: Study, rows: list[dict], failed: list[dict], fmt: str = "markdown", digits: int = 4) -> str:
    """The report of :func:`study_rows` as text.

    Markdown and LaTeX: three tables one after another — per setting, the errors of each
    predictor (:func:`error_rows`), and the cells without a result. CSV: **one** table, so that
    the output loads as one table: per setting, the main columns, then each predictor's signed
    error against each reference (``predicted_c1_minus_exact``, ..., the numbers :func:`error_rows`
    averages) and ``cells_without_result`` (each missing cell's method, seed and error, joined
    with ``"; "``)."""
    from memcross.numerics.tables import render_table

    if fmt != "csv":
        text = render_table(rows, _columns(rows), fmt, caption=f"study {study.name}", digits=digits)
        errors = error_rows(rows)
        if errors:
            text += "\n\n" + render_table(errors, list(errors[0]), fmt, caption="errors of each predictor",
                                           digits=digits)
        if failed:
            text += "\n\n" + render_table(failed, ["cell", "error"], fmt, caption="cells without a result")
        return text
    pairs = [(p, r) for p in (*PREDICTORS, "exact") for r in ("exact", "observed_mid")
             if p != r]
    missing: dict[tuple, list[str]] = {}
    for f in failed:
        missing.setdefault((f.get("d"), f.get("K"), f.get("N")), []).append(
            f"{f.get('method')} seed={f.get('seed')}: {f['error']}")
    out = []
    for row in rows:
        full = dict(row)
        for p, r in pairs:
            have = row.get(p) is not None and row.get(r) is not None
            full[f"{p}_minus_{r}"] = row[p] - row[r] if have else None
        full["cells_without_result"] = "; ".join(missing.get((row["d"], row["K"], row["N"]), []))
        out.append(full)
    columns = _columns(rows) + [f"{p}_minus_{r}" for p, r in pairs] + ["cells_without_result"]
    return render_table(out, columns, "csv", digits=digits)
