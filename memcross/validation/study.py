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
(:class:`~memcross.store.Store`). Finished cells are skipped, so a killed study loses at
most the cells in flight. Cells run in-process, in local processes, or on a Dask cluster; results
travel back to the one process that writes the store. A failing cell is recorded with its error,
and the rest continue.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from memcross._checks import available_cpus, parse_toml, read_text
from memcross.records import CELL_PAYLOADS, CellResult, ExactCrossover, PredictedCrossover
from memcross.store import Store, canonical, config_key

METHODS = tuple(CELL_PAYLOADS)
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


#: Largest study file read (a study is a few lines of TOML).
MAX_STUDY_BYTES = 1 << 20
#: Keys of the ``[study]`` table.
_STUDY_KEYS = {"name"}
#: A study's name names its store file: letters, digits, ``-``, ``_`` and ``.``, not starting with ``.``.
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
#: Integer options of a part: the most each may be (``threads``: the CPUs this process may use).
_PART_LIMITS = {"steps": 100_000_000, "draws": 10_000, "exact_draws": 10_000, "n_eval": 1_000_000}


def load_study(path: str | Path) -> Study:
    """Parse and check a study file; every cell's setting is validated before anything runs.

    Whatever is wrong with the file — missing, a directory, unreadable, larger than
    :data:`MAX_STUDY_BYTES`, not UTF-8, not TOML, nested too deeply, or a study that does not
    check — is one ValueError that names the file."""
    path = Path(path)
    where = f"study file {str(path)!r}"
    data = parse_toml(read_text(path, where, MAX_STUDY_BYTES), where)
    try:
        return parse_study(data, default_name=path.stem)
    except RecursionError:
        raise ValueError(f"{where} is nested too deeply (arrays or tables inside one another)") from None
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def check_study_name(name, where: str = "study name") -> str:
    """``name`` if it is a plain file name (it names the store ``memcross-runs/NAME.sqlite``):
    1 to 100 letters, digits, ``-``, ``_`` or ``.``, not starting with ``.``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{where} must be a plain file name (1-100 letters, digits, '-', '_' or '.', not starting "
                         f"with '.'; it names the store file), got {name!r}")
    return name


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one, else ``os.cpu_count()``."""
    return available_cpus()


def _table(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a table, got {_kind(value)} {_show(value)}")
    return value


def _kind(value) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__)


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _scalar_fields(fields: dict, what: str) -> None:
    """Setting values are strings or numbers (never arrays, tables or booleans)."""
    for k, v in fields.items():
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise ValueError(f"{what} field {k!r} must be a string or a number, got {_kind(v)} {_show(v)}")


def _positive(part: dict, key: str, where: str, high: int, why: str = "") -> None:
    if key in part:
        v = part[key]
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= high:
            raise ValueError(f"{where}: {key} must be a positive integer (at most {high:,}{why}), got {_show(v)}")


def parse_study(data: dict, default_name: str = "study") -> Study:
    """Check a parsed study (a dict, as from TOML) and build its cells. Every mistake is a
    ValueError naming the table and key: unknown tables or keys, values of the wrong type, names
    that are not plain file names, integer options out of range (``threads`` at most
    :func:`usable_cpus`), seeds outside ``[0, 2**63)``, settings that do not check, and, for
    ``validate`` cells, anything :func:`~memcross.validation.sweep.plan_from` refuses."""
    from memcross._checks import check_seed
    from memcross.theory.setting import Setting, check_fields

    _table(data, "study")
    unknown = set(data) - {"study", "setting", "part"}
    if unknown:
        raise ValueError(f"study: unknown table(s) {', '.join(sorted(unknown))}; allowed: study, setting, part")
    head = _table(data.get("study", {}), "[study]")
    bad = set(head) - _STUDY_KEYS
    if bad:
        raise ValueError(f"[study]: unknown key(s) {', '.join(sorted(map(str, bad)))}; allowed: "
                         f"{', '.join(sorted(_STUDY_KEYS))}")
    if "name" in head:
        name = check_study_name(head["name"], "[study] name")
    else:
        name = check_study_name(default_name, f"study name {default_name!r} (from the file name; set [study] name)")
    base = check_fields(Setting, _table(data.get("setting", {}), "[setting]"), "setting")
    _scalar_fields(base, "[setting]")
    parts = data.get("part", [])
    if not isinstance(parts, list):
        raise ValueError(f"part must be [[part]] tables (an array of tables), got {_kind(parts)} {_show(parts)}")
    if not parts:
        raise ValueError("study: no [[part]] tables; each part names methods and a grid")
    cpus = usable_cpus()
    cells = []
    for i, part in enumerate(parts):
        where = f"part {i + 1}"
        _table(part, where)
        bad = set(part) - _PART_KEYS
        if bad:
            raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(map(str, bad)))}; "
                             f"allowed: {', '.join(sorted(_PART_KEYS))}")
        methods = part.get("methods", [])
        if (not isinstance(methods, list) or not methods
                or any(not isinstance(m, str) or m not in METHODS for m in methods)):
            raise ValueError(f"{where}: methods must be a non-empty list of {', '.join(METHODS)}, got {_show(methods)}")
        if len(set(methods)) != len(methods):
            raise ValueError(f"{where}: methods lists a method twice: {methods!r}")
        grid = _table(part.get("grid", {}), f"{where}: grid")
        check_fields(Setting, grid, f"{where} grid")
        for k, v in grid.items():
            if not isinstance(v, list) or not v:
                raise ValueError(f"{where}: grid field {k!r} needs a non-empty list of values")
            for x in v:
                _scalar_fields({k: x}, f"{where}: grid")
        seeds = part.get("seeds", [0])
        if not isinstance(seeds, list) or not seeds:
            raise ValueError(f"{where}: seeds must be a non-empty list of integers, got {_show(seeds)}")
        for seed in seeds:
            check_seed(seed, f"{where}: each seed")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{where}: seeds lists a seed twice: {seeds!r}")
        for key, high in _PART_LIMITS.items():
            _positive(part, key, where, high)
        _positive(part, "threads", where, cpus, ", the CPUs this process may use")
        if "preset" in part:
            from memcross.validation.sweep import PRESETS

            if not isinstance(part["preset"], str) or part["preset"] not in PRESETS:
                raise ValueError(f"{where}: unknown preset {_show(part['preset'])}; known presets: {', '.join(PRESETS)}")
        sizes = part.get("sizes", [])
        if not isinstance(sizes, list):
            raise ValueError(f"{where}: sizes must be a list of integers, got {_kind(sizes)} {_show(sizes)}")
        fields = list(grid)
        for combo in itertools.product(*(grid[f] for f in fields)):
            setting = dict(base, **dict(zip(fields, combo)))
            try:
                checked = Setting.from_dict(setting)  # validate now, not in a worker
            except (TypeError, AttributeError) as exc:  # a value of a type the field cannot take
                raise ValueError(f"{where}: setting {setting} does not check ({exc})") from None
            bad_sizes = [M for M in sizes if isinstance(M, bool) or not (isinstance(M, int) and 1 <= M <= checked.N)]
            if "validate" in methods and bad_sizes:
                raise ValueError(f"{where}: sizes must be integers in [1, N] = [1, {checked.N}], got {bad_sizes}")
            for method in methods:
                # a prediction does not depend on the data seed: one cell per setting
                for seed in ([0] if method == "predict" else seeds):
                    cell = Cell(method, setting, int(seed), _options(method, part))
                    if method == "validate":
                        _check_validate(cell, checked, where)
                    cells.append(cell)
    keys = [c.key() for c in cells]
    if len(set(keys)) != len(keys):
        raise ValueError("study: some cells are declared twice (same method, setting, seed and options)")
    config = {"name": name, "setting": base, "part": parts}
    return Study(name, config, tuple(cells))


def _check_validate(cell: Cell, setting, where: str) -> None:
    """Build the cell's validation plan (as :func:`run_cell` will) so that whatever it refuses is
    refused now. Memory is not checked here: the cell may run on another machine."""
    from memcross.validation.sweep import plan_from

    opts = cell.options
    try:
        plan_from(setting, opts.get("preset"), opts.get("sizes"), "cpu", cell.seed,
                  exact_draws=opts.get("exact_draws", 8), n_eval=opts.get("n_eval"), steps=opts.get("steps"),
                  draws=opts.get("draws"), check_memory=False)
    except ValueError as exc:
        msg = str(exc)
        for flag, key in _FLAG_KEYS.items():
            msg = msg.replace(flag, key)
        raise ValueError(f"{where}: {cell.label()}: {msg}") from None


#: ``memcross validate`` flags in plan messages, and the study keys that set them.
_FLAG_KEYS = {"--steps": "steps", "--draws": "draws", "--n-eval": "n_eval", "--exact-draws": "exact_draws",
              "--seed": "seed", "--sizes": "sizes"}


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
        return PredictedCrossover(predict(base, "asymptotic").value, predict(base, "finite-d").value).to_dict()
    if cell.method == "exact":
        from memcross.validation.sweep import exact_for

        ex = exact_for(setting, cell.seed, cell.options["draws"])
        ratio, m_star = ex.crossover()
        return ExactCrossover(float(ratio), int(m_star)).to_dict()
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
    # a cell keeps each size's weighted losses, not the per-time ones
    sizes = [dataclasses.replace(r, train_loss_t=None, val_loss_t=None) for r in res.sizes]
    return dataclasses.replace(res, sizes=sizes).to_dict()


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
        except Exception as exc:  # noqa: BLE001 - whatever answers there is not a Dask scheduler we can use
            raise ValueError(f"--dask-scheduler {scheduler}: cannot connect ({type(exc).__name__}: {exc})") from None
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


#: Most local worker processes (``--workers``, ``--dask-local``) per usable CPU. Cells are
#: CPU-bound, so more workers than CPUs only queue; a few per CPU are allowed, not thousands (each
#: worker is a Python process with torch loaded, a few hundred MiB).
WORKERS_PER_CPU = 4
#: Seconds to wait for a TCP connection to a Dask scheduler before refusing it.
CONNECT_TIMEOUT = 5.0


def max_workers() -> int:
    """The most local workers: :data:`WORKERS_PER_CPU` x :func:`usable_cpus`."""
    return WORKERS_PER_CPU * usable_cpus()


def check_workers(workers: int | None = None, dask_local: int | None = None, dask_scheduler: str | None = None,
                  connect: bool = True) -> None:
    """Check the executor options of ``memcross study run`` before any store exists: at most one
    of ``--workers``, ``--dask-local`` and ``--dask-scheduler``; worker counts from 1 to
    :func:`max_workers`; the Dask executors need ``dask.distributed``; and, with ``connect``, the
    scheduler's address must accept a TCP connection within :data:`CONNECT_TIMEOUT` seconds."""
    given = [flag for flag, value in (("--workers", workers), ("--dask-local", dask_local),
                                      ("--dask-scheduler", dask_scheduler)) if value is not None]
    if len(given) > 1:
        raise ValueError(f"choose one executor: --workers, --dask-scheduler or --dask-local (got {' and '.join(given)})")
    cap = max_workers()
    for flag, value in (("--workers", workers), ("--dask-local", dask_local)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= cap:
            raise ValueError(f"{flag} must be an integer from 1 to {cap} ({WORKERS_PER_CPU} per CPU; this "
                             f"process may use {usable_cpus()} CPU(s)), got {value!r}")
    if dask_local is not None or dask_scheduler is not None:
        import importlib.util

        if importlib.util.find_spec("distributed") is None:
            raise ValueError("the Dask executor needs dask.distributed: pip install 'memcross[scale]'")
    if dask_scheduler is not None:
        host, port = _scheduler_address(dask_scheduler)
        if connect:
            import socket

            try:
                socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
            except OSError as exc:
                reason = "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc))
                raise ValueError(f"--dask-scheduler {dask_scheduler}: cannot connect ({reason})") from None


def _scheduler_address(address) -> tuple[str, int]:
    """``(host, port)`` of ``tcp://HOST:PORT`` (or ``tls://``, ``ws://``, ``wss://``, or no scheme)."""
    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"--dask-scheduler must be an address tcp://HOST:PORT, got {address!r}")
    scheme, sep, rest = address.strip().partition("://")
    if not sep:
        scheme, rest = "tcp", address.strip()
    if scheme not in ("tcp", "tls", "ws", "wss"):
        raise ValueError(f"--dask-scheduler {address}: protocol {scheme!r} is not supported; use tcp://HOST:PORT "
                         "(or tls://, ws://, wss://)")
    host, colon, port = rest.rstrip("/").rpartition(":")
    host = host.strip("[]")  # [IPv6]:port
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"--dask-scheduler {address}: expected {scheme}://HOST:PORT with a port from 1 to 65535")
    return host, int(port)


def run_study(study: Study, store: Store, workers: int = 0, dask_scheduler: str | None = None,
              dask_local: int | None = None, add: bool = False, log=lambda msg: None, progress: bool = False) -> RunSummary:
    """Run every cell of ``study`` that ``store`` does not hold yet; write each result at once.

    ``workers`` 0 (or None) runs the cells in this process, as do ``dask_local`` 0 and an empty
    ``dask_scheduler``; the executor options are checked (:func:`check_workers`, without
    connecting) before the store is claimed."""
    check_workers(workers or None, dask_local or None, dask_scheduler or None, connect=False)
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
        res = store.get_record("cell", cell.config(), functools.partial(CellResult.from_stored, cell.config()))
        if res is None:
            fail = store.get("cell-failed", cell.config(), {"error": str})
            failed.append({"cell": cell.label(), "error": fail["error"] if fail else "not run yet",
                           "method": cell.method, "seed": cell.seed, "d": key[0], "K": key[1], "N": key[2]})
            continue
        got = res.payload
        if cell.method == "predict":
            row["predicted_c1"], row["predicted_finite_d"] = got.predicted_c1, got.predicted_finite_d
        elif cell.method == "exact":
            row["_exact"].append(got.exact)
        else:
            summ = got.summary
            if summ.observed_mid is not None:
                row["_mid"].append(summ.observed_mid)
            # a trained sweep carries its own predictions and exact crossover: use them where the
            # study has no predict / exact cell for this setting
            row.setdefault("_sweep_exact", []).append(summ.exact)
            if row["predicted_c1"] is None:
                row["predicted_c1"] = summ.predicted_c1
            if row["predicted_finite_d"] is None:
                row["predicted_finite_d"] = summ.predicted_finite_d
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


REPORT_COLUMNS = ["d", "K", "N", "predicted_c1", "predicted_finite_d", "exact", "exact_seeds", "observed_mid"]


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
        text = render_table(rows, REPORT_COLUMNS, fmt, caption=f"study {study.name}", digits=digits)
        errors = error_rows(rows)
        if errors:
            text += "\n\n" + render_table(errors, list(errors[0]), fmt, caption="errors of each predictor",
                                           digits=digits)
        if failed:
            text += "\n\n" + render_table(failed, ["cell", "error"], fmt, caption="cells without a result")
        return text
    pairs = [(p, r) for p in ("predicted_c1", "predicted_finite_d", "exact") for r in ("exact", "observed_mid")
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
    columns = REPORT_COLUMNS + [f"{p}_minus_{r}" for p, r in pairs] + ["cells_without_result"]
    return render_table(out, columns, "csv", digits=digits)


def default_study_store(study: Study) -> Path:
    return Path("memcross-runs") / f"{study.name}.sqlite"


def cpu_count() -> int:
    """The CPUs this process may use (:func:`usable_cpus`)."""
    return usable_cpus()
