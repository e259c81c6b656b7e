r"""Studies: a declared grid of cells (predict / exact / validate), run resumably on an executor.

A study file (TOML) names the study, fixed setting fields, and one or more parts, each a grid of
setting fields crossed with seeds and methods::

    [study]
    name = "paper-gmm"

    [setting]              # fields every cell shares
    schedule = "vp"

    [[part]]
    methods = ["predict", "exact"]
    grid = { d = [30, 40], K = [3, 6], N = [50, 100] }
    seeds = [0]
    exact_draws = 8

    [[part]]
    methods = ["validate"]
    grid = { d = [30], K = [4], N = [100] }
    preset = "quick"
    steps = 12500

Every cell is a unit of work keyed by its full configuration in the study's store
(:class:`~memcross.validation.store.Store`). Finished cells are skipped, so a killed study loses at
most the cells in flight. Cells run in-process, in local processes, or on a Dask cluster; results
travel back to the one process that writes the store. A failing cell is recorded with its error,
and the rest continue.
"""

from __future__ import annotations

import itertools
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from memcross.validation.store import Store, canonical, config_key

METHODS = ("predict", "exact", "validate")
#: Fields of each method's stored cell result that a report reads (see ``check_record``).
CELL_FIELDS = {
    "predict": {"predicted_c1": (float, None), "predicted_finite_d": (float, None)},
    "exact": {"exact": float},
    "validate": {"summary": {"observed_mid": (float, None), "exact": (float, None), "predicted_c1": (float, None),
                             "predicted_finite_d": (float, None)}},
}
_PART_KEYS = {"methods", "grid", "seeds", "exact_draws", "preset", "steps", "draws", "n_eval", "sizes", "threads"}


@dataclass(frozen=True)
class Cell:
    """One unit of work: a method on one setting and seed, with its options."""

    method: str
    setting: dict
    seed: int
    options: dict = field(default_factory=dict)

    def config(self) -> dict:
        return {"method": self.method, "setting": self.setting, "seed": self.seed, "options": self.options}

    def key(self) -> str:
        return config_key("cell", self.config())

    def label(self) -> str:
        s = self.setting
        return f"{self.method} d={s.get('d')} K={s.get('K')} N={s.get('N')} seed={self.seed}"


@dataclass(frozen=True)
class Study:
    """A parsed study file."""

    name: str
    config: dict
    cells: tuple[Cell, ...]

    @property
    def fingerprint(self) -> str:
        return config_key("study", self.config)


def load_study(path: str | Path) -> Study:
    """Parse and check a study file; every cell's setting is validated before anything runs."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"study file {str(path)!r} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"study file {str(path)!r} is not valid TOML ({exc})") from None
    return parse_study(data, default_name=path.stem)


def parse_study(data: dict, default_name: str = "study") -> Study:
    from memcross.theory.setting import Setting, check_fields

    unknown = set(data) - {"study", "setting", "part"}
    if unknown:
        raise ValueError(f"study: unknown table(s) {', '.join(sorted(unknown))}; allowed: study, setting, part")
    name = str(data.get("study", {}).get("name", default_name))
    base = check_fields(Setting, data.get("setting", {}), "setting")
    parts = data.get("part", [])
    if not parts:
        raise ValueError("study: no [[part]] tables; each part names methods and a grid")
    cells = []
    for i, part in enumerate(parts):
        where = f"part {i + 1}"
        bad = set(part) - _PART_KEYS
        if bad:
            raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(bad))}; allowed: {', '.join(sorted(_PART_KEYS))}")
        methods = part.get("methods", [])
        if not methods or any(m not in METHODS for m in methods):
            raise ValueError(f"{where}: methods must be a non-empty list of {', '.join(METHODS)}, got {methods!r}")
        grid = part.get("grid", {})
        check_fields(Setting, grid, f"{where} grid")
        for k, v in grid.items():
            if not isinstance(v, list) or not v:
                raise ValueError(f"{where}: grid field {k!r} needs a non-empty list of values")
        seeds = part.get("seeds", [0])
        if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
            raise ValueError(f"{where}: seeds must be a non-empty list of integers, got {seeds!r}")
        fields = list(grid)
        for combo in itertools.product(*(grid[f] for f in fields)):
            setting = dict(base, **dict(zip(fields, combo)))
            checked = Setting.from_dict(setting)  # validate now, not in a worker
            bad_sizes = [M for M in part.get("sizes", []) if not (isinstance(M, int) and 1 <= M <= checked.N)]
            if "validate" in methods and bad_sizes:
                raise ValueError(f"{where}: sizes must be integers in [1, N] = [1, {checked.N}], got {bad_sizes}")
            for method in methods:
                # a prediction does not depend on the data seed: one cell per setting
                for seed in ([0] if method == "predict" else seeds):
                    cells.append(Cell(method, setting, int(seed), _options(method, part)))
    keys = [c.key() for c in cells]
    if len(set(keys)) != len(keys):
        raise ValueError("study: some cells are declared twice (same method, setting, seed and options)")
    config = {"name": name, "setting": base, "part": parts}
    return Study(name, config, tuple(cells))


def _options(method: str, part: dict) -> dict:
    threads = int(part.get("threads", 1))
    if method == "predict":
        return {"threads": threads}
    if method == "exact":
        return {"draws": int(part.get("exact_draws", 8)), "threads": threads}
    opts = {k: part[k] for k in ("preset", "steps", "draws", "n_eval", "sizes") if k in part}
    opts.setdefault("preset", "quick")
    opts["exact_draws"] = int(part.get("exact_draws", 8))
    opts["threads"] = threads
    return opts


def run_cell(cell: Cell) -> dict:
    """Compute one cell (in whatever process runs it). Returns ``{"result": ...}`` or
    ``{"error": ...}``: a failure is data, not a crash of the study."""
    try:
        import torch

        torch.set_num_threads(int(cell.options.get("threads", 1)))
        return {"result": _compute(cell)}
    except Exception as exc:  # noqa: BLE001 - recorded in the store with its traceback
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=5)}


def _compute(cell: Cell) -> dict:
    from memcross.numerics.predict import predict
    from memcross.theory.setting import Setting

    setting = Setting.from_dict(cell.setting)
    if cell.method == "predict":
        base = setting.replace(C=1)
        return {"predicted_c1": predict(base, "asymptotic").value, "predicted_finite_d": predict(base, "finite-d").value}
    if cell.method == "exact":
        from memcross.validation.sweep import exact_for

        ex = exact_for(setting, cell.seed, cell.options["draws"])
        ratio, m_star = ex.crossover()
        return {"exact": float(ratio), "exact_M": int(m_star)}
    import tempfile

    from memcross.validation.sweep import plan_from, validate

    opts = dict(cell.options)
    plan = plan_from(setting, opts.get("preset"), opts.get("sizes"), "auto", cell.seed,
                     exact_draws=opts.get("exact_draws", 8), n_eval=opts.get("n_eval"), steps=opts.get("steps"),
                     draws=opts.get("draws"))
    with tempfile.TemporaryDirectory(prefix="memcross-cell-") as tmp:
        store = Store(Path(tmp) / "cell.sqlite")
        try:
            res = validate(plan, store)
        finally:
            store.close()
    return {"summary": res.summary, "sizes": [{k: v for k, v in r.items() if not k.endswith("_t")} for r in res.sizes]}


# -- executors ----------------------------------------------------------------------------------
def _in_process(cells) -> Iterator[tuple[Cell, dict]]:
    for cell in cells:
        yield cell, run_cell(cell)


def _processes(cells, workers: int) -> Iterator[tuple[Cell, dict]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(run_cell, c): c for c in cells}
        for fut in as_completed(futures):
            yield futures[fut], _outcome(fut)


def _dask(cells, scheduler: str | None, local: int | None) -> Iterator[tuple[Cell, dict]]:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:  # pragma: no cover - depends on the environment
        raise ValueError("the Dask executor needs dask.distributed: pip install 'memcross[scale]'") from None
    import dask

    cluster = None
    if local:
        # Dask sets MALLOC_TRIM_THRESHOLD_ for its workers; any explicit value switches off glibc's
        # adaptive mmap threshold, so every large temporary is mmap'ed and faulted in afresh: the
        # exact losses ran 5x slower. Workers of this LocalCluster keep the default allocator.
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
            cluster = LocalCluster(n_workers=local, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout=30)
        except OSError as exc:
            raise ValueError(f"--dask-scheduler {scheduler!r}: cannot connect ({exc})") from None
    try:
        futures = {client.submit(run_cell, c, pure=False): c for c in cells}
        for fut in as_completed(futures):
            yield futures[fut], _outcome(fut)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _outcome(fut) -> dict:
    try:
        return fut.result()
    except Exception as exc:  # noqa: BLE001 - a worker died: record it, go on
        return {"error": f"worker failure: {type(exc).__name__}: {exc}"}


@dataclass
class RunSummary:
    done: int = 0
    skipped: int = 0
    failed: list = field(default_factory=list)


def run_study(study: Study, store: Store, workers: int = 0, dask_scheduler: str | None = None,
              dask_local: int | None = None, add: bool = False, log=lambda msg: None, progress: bool = False) -> RunSummary:
    """Run every cell of ``study`` that ``store`` does not hold yet; write each result at once."""
    if sum(bool(x) for x in (workers, dask_scheduler, dask_local)) > 1:
        raise ValueError("choose one executor: --workers, --dask-scheduler or --dask-local")
    for name, value in (("workers", workers), ("dask_local", dask_local)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    claim_store(store, study, add)
    todo = [c for c in study.cells if not store.has("cell", c.config())]
    summary = RunSummary(skipped=len(study.cells) - len(todo))
    log(f"study {study.name!r}: {len(study.cells)} cells, {summary.skipped} already done, {len(todo)} to run")
    if not todo:
        return summary
    if dask_scheduler or dask_local:
        stream = _dask(todo, dask_scheduler, dask_local)
    elif workers and workers > 1:
        stream = _processes(todo, workers)
    else:
        stream = _in_process(todo)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="cells", unit="cell")
    try:
        for cell, outcome in stream:
            if "result" in outcome:
                store.put("cell", cell.config(), {"label": cell.label(), **outcome["result"]})
                store.replace("cell-failed", cell.config(), None)
                summary.done += 1
            else:
                store.replace("cell-failed", cell.config(), {"label": cell.label(), "error": outcome["error"],
                                                              "traceback": outcome.get("traceback", "")})
                summary.failed.append((cell.label(), outcome["error"]))
                log(f"cell failed: {cell.label()}: {outcome['error']}")
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return summary


def claim_store(store: Store, study: Study, add: bool) -> None:
    """Mark ``store`` as this study's; refuse a store of another study unless ``add``."""
    owner = store.meta("study")
    if owner is None:
        store.set_meta("study", canonical({"name": study.name, "fingerprint": study.fingerprint}))
        return
    info = store.meta_record("study", {"name": str, "fingerprint": str})
    if info["fingerprint"] != study.fingerprint and not add:
        raise ValueError(f"store {str(store.path)!r} belongs to study {info['name']!r} with another configuration; "
                         "use another --store, or --add to add this study's cells to it")


# -- report -------------------------------------------------------------------------------------
def study_rows(study: Study, store: Store) -> tuple[list[dict], list[dict]]:
    """Per ``(d, K, N)`` rows (seeds averaged) and the failed cells."""
    import numpy as np

    groups: dict[tuple, dict] = {}
    failed = []
    for cell in study.cells:
        s = cell.setting
        key = (s.get("d", 50), s.get("K", 12), s.get("N", 200))
        row = groups.setdefault(key, {"d": key[0], "K": key[1], "N": key[2], "_exact": [], "_mid": [],
                                      "predicted_c1": None, "predicted_finite_d": None})
        res = store.get("cell", cell.config(), CELL_FIELDS[cell.method])
        if res is None:
            fail = store.get("cell-failed", cell.config(), {"error": str})
            failed.append({"cell": cell.label(), "error": fail["error"] if fail else "not run yet"})
            continue
        if cell.method == "predict":
            row["predicted_c1"], row["predicted_finite_d"] = res["predicted_c1"], res["predicted_finite_d"]
        elif cell.method == "exact":
            row["_exact"].append(res["exact"])
        else:
            summ = res["summary"]
            if summ.get("observed_mid") is not None:
                row["_mid"].append(summ["observed_mid"])
            # a trained sweep carries its own predictions and exact crossover: use them where the
            # study has no predict / exact cell for this setting
            row.setdefault("_sweep_exact", []).append(summ.get("exact"))
            for key in ("predicted_c1", "predicted_finite_d"):
                if row[key] is None:
                    row[key] = summ.get(key)
    rows = []
    for key in sorted(groups):
        row = groups[key]
        ex, mid = row.pop("_exact"), row.pop("_mid")
        sweep_exact = [v for v in row.pop("_sweep_exact", []) if v is not None]
        ex = ex or sweep_exact
        row["exact"] = float(np.mean(ex)) if ex else None
        row["exact_seeds"] = len(ex)
        row["observed_mid"] = float(np.mean(mid)) if mid else None
        rows.append(row)
    return rows, failed


def error_rows(rows: list[dict]) -> list[dict]:
    """Mean absolute and worst error of each predictor against exact and observed ``M*/N``."""
    import numpy as np

    out = []
    for pred in ("predicted_c1", "predicted_finite_d", "exact"):
        for ref in ("exact", "observed_mid"):
            if pred == ref:
                continue
            diffs = [r[pred] - r[ref] for r in rows if r.get(pred) is not None and r.get(ref) is not None]
            if diffs:
                worst = max(diffs, key=abs)
                out.append({"predictor": pred, "against": ref, "cells": len(diffs),
                            "mean_abs_error": float(np.mean(np.abs(diffs))), "worst_error": float(worst)})
    return out


def default_study_store(study: Study) -> Path:
    return Path("memcross-runs") / f"{study.name}.sqlite"


def cpu_count() -> int:
    return os.cpu_count() or 1
