"""``memcross study run|report``: declarative studies, run resumably and reported."""

from __future__ import annotations

from pathlib import Path

from memcross.cli.common import FIGURE_SUFFIXES, UsageError, _write_or_print, output_path


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


def add_parser(sub) -> None:
    """Register ``memcross study`` with the subcommand parser ``sub``."""
    from memcross.numerics.tables import FORMATS

    p = sub.add_parser("study", help="declarative studies: run a grid of cells resumably, report it")
    p.add_argument("action", choices=["run", "report"])
    p.add_argument("study", help="study file (TOML)")
    p.add_argument("--store", default=None, help="the study's store (default ./memcross-runs/NAME.sqlite)")
    p.add_argument("--workers", type=int, default=None, help="run: local worker processes")
    p.add_argument("--dask-scheduler", default=None, metavar="tcp://HOST:PORT", help="run: an existing Dask scheduler")
    p.add_argument("--dask-local", type=int, default=None, metavar="N", help="run: start a Dask LocalCluster of N workers")
    p.add_argument("--add", action="store_true", help="run: add this study's cells to a store of another study")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--format", default="markdown", choices=FORMATS, help="report: table format")
    p.add_argument("--output", default=None, help="report: write the tables to FILE")
    p.add_argument("--figure", default=None, help="report: figure of M* against N (.pdf/.png/.svg)")
    p.add_argument("--json", action="store_true", help="report: rows, errors and failed cells as JSON")
    p.set_defaults(func=_cmd_study)
