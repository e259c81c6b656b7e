"""``memcross table``: LaTeX / CSV / Markdown tables from prediction records or a store."""

from __future__ import annotations

from pathlib import Path

from memcross.cli.common import UsageError, _write_or_print


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

SUMMARY_COLUMNS = ["d", "K", "N", "preset", "predicted_c1", "predicted_finite_d", "predicted_finite_snr", "exact",
                   "observed_start",
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


def add_parser(sub) -> None:
    """Register ``memcross table`` with the subcommand parser ``sub``."""
    from memcross.numerics.tables import FORMATS

    p = sub.add_parser("table", help="LaTeX / CSV / Markdown table from prediction records or a study store")
    p.add_argument("records", nargs="?", default=None,
                   help="JSON (list or one record) or JSON lines, e.g. from `predict --json`")
    p.add_argument("--store", default=None, help="a study store (SQLite) written by `memcross validate`")
    p.add_argument("--kind", default="summary", choices=["summary", "sizes"],
                   help="with --store: one row per sweep (summary) or per trained size (sizes)")
    p.add_argument("--format", default="latex", choices=FORMATS)
    p.add_argument("--columns", default=None, help="comma-separated column names")
    p.add_argument("--caption", default=None)
    p.add_argument("--label", default=None)
    p.add_argument("--digits", type=int, default=None,
                   help="significant digits (default 4; CSV keeps every digit unless given)")
    p.add_argument("--siunitx", action="store_true", help="align numeric columns with siunitx S columns")
    p.add_argument("--standalone", action="store_true", help="wrap in a compilable LaTeX document")
    p.add_argument("--output", default=None)
    p.set_defaults(func=_cmd_table)
