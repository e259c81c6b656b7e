"""Executors: run a study's cells that its store does not hold yet, in this process, in local
worker processes or on a Dask cluster, and write each result to the store the moment it comes back.

Results travel back to the one process that writes the store, so the store never has concurrent
writers. Finished cells are skipped, so a killed study loses at most the cells in flight; a failing
cell is recorded with its error, and the rest continue.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from memcross._checks import check_int
from memcross.store import Store, canonical
from memcross.studies.cells import run_cell
from memcross.studies.spec import Cell, Study, usable_cpus


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
    """What a study run did: cells ``done``, ``skipped`` (already stored) and ``failed`` (``(label, error)`` pairs)."""
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
        check_int(value, flag, 1, cap, why=f", {WORKERS_PER_CPU} per CPU; this process may use {usable_cpus()} CPU(s)")
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
