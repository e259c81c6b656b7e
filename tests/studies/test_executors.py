import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from memcross.store import Store
from memcross.studies import cells as cells_mod
from memcross.studies import error_rows, parse_study, run_study, study_rows

PRED = {"methods": ["predict"], "grid": {"d": [8], "K": [2], "N": [16]}}


def _results(store):
    return {(c["method"], c["setting"]["d"], c["setting"]["N"], c["seed"]): r for c, r in store.records("cell")}


def test_dask_local_cluster_gives_the_in_process_results(tmp_path, tiny_study):
    pytest.importorskip("distributed")
    st = parse_study(tiny_study)
    local, dask = Store(tmp_path / "a.sqlite"), Store(tmp_path / "b.sqlite")
    assert run_study(st, local).done == len(st.cells)
    assert run_study(st, dask, dask_local=2).done == len(st.cells)
    assert _results(local) == _results(dask)
    assert run_study(st, dask).skipped == len(st.cells)  # nothing twice
    rows, failed = study_rows(st, dask)
    assert len(rows) == 4 and not failed and all(r["exact_seeds"] == 2 for r in rows)
    assert {e["predictor"] for e in error_rows(rows)} == {"predicted_c1", "predicted_finite_d", "predicted_finite_snr"}


def test_worker_processes_give_the_same_results(tmp_path, tiny_study):
    st = parse_study(tiny_study)
    a, b = Store(tmp_path / "a.sqlite"), Store(tmp_path / "b.sqlite")
    run_study(st, a)
    run_study(st, b, workers=2)
    assert _results(a) == _results(b)


def test_a_failing_cell_is_recorded_and_the_rest_continue(tmp_path, tiny_study, monkeypatch):
    real = cells_mod._compute

    def flaky(cell):
        if cell.method == "exact" and cell.setting["d"] == 12 and cell.seed == 1:
            raise RuntimeError("disk on fire")
        return real(cell)

    monkeypatch.setattr(cells_mod, "_compute", flaky)
    st = parse_study(tiny_study)
    store = Store(tmp_path / "s.sqlite")
    summary = run_study(st, store)
    assert len(summary.failed) == 2 and summary.done == len(st.cells) - 2
    rows, failed = study_rows(st, store)
    assert len(failed) == 2 and all("disk on fire" in f["error"] for f in failed)
    monkeypatch.setattr(cells_mod, "_compute", real)
    again = run_study(st, store)  # retries only the failed cells
    assert again.done == 2 and not again.failed and store.count("cell-failed") == 0
    assert store.count("cell") == len(st.cells)


def test_store_of_another_study_is_refused_unless_added(tmp_path, tiny_study):
    store = Store(tmp_path / "s.sqlite")
    run_study(parse_study(tiny_study), store)
    other = parse_study({**tiny_study, "study": {"name": "other"}, "part": [dict(tiny_study["part"][0], seeds=[2])]})
    with pytest.raises(ValueError, match="belongs to study 'tiny'"):
        run_study(other, store)
    n = store.count("cell")
    assert run_study(other, store, add=True).done == 4
    assert store.count("cell") == n + 4


def _cells(path):
    if not path.exists():  # connecting would create an empty, foreign file
        return 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return db.execute("SELECT COUNT(*) FROM results WHERE kind = 'cell'").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:
        return 0


def test_killed_study_completes_every_cell_exactly_once(tmp_path):
    spec = tmp_path / "kill.toml"
    spec.write_text('[study]\nname = "kill"\n[[part]]\nmethods = ["exact"]\n'
                    'grid = { d = [20, 30], K = [3], N = [60, 100] }\nseeds = [0, 1]\nexact_draws = 4\n')
    store = tmp_path / "kill.sqlite"
    cmd = [sys.executable, "-m", "memcross", "study", "run", str(spec), "--store", str(store), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline and _cells(store) < 3 and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[0]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _cells(store)
    assert 3 <= partial < 8
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{partial} already done" in done.stdout
    assert _cells(store) == 8



def test_check_workers():
    from memcross.studies import WORKERS_PER_CPU, check_workers, max_workers, usable_cpus

    assert max_workers() == WORKERS_PER_CPU * usable_cpus()
    check_workers()
    check_workers(workers=1)
    check_workers(workers=max_workers())
    for bad in (0, -1, max_workers() + 1, 100000, True, 2.0):
        with pytest.raises(ValueError, match=rf"--workers must be a positive integer \(at most {max_workers():,}, "):
            check_workers(workers=bad)
    with pytest.raises(ValueError, match=r"choose one executor.*\(got --workers and --dask-local\)"):
        check_workers(workers=2, dask_local=2)
    with pytest.raises(ValueError, match="choose one executor"):
        check_workers(dask_local=2, dask_scheduler="tcp://127.0.0.1:8786", connect=False)
    for address, message in (("tcp://host", "expected tcp://HOST:PORT"), ("tcp://host:0", "port from 1 to 65535"),
                             ("inproc://x", "protocol 'inproc' is not supported"), ("", "must be an address")):
        with pytest.raises(ValueError, match=message):
            check_workers(dask_scheduler=address, connect=False)


def test_dask_scheduler_must_accept_a_connection():
    import socket

    pytest.importorskip("distributed")
    from memcross.studies import check_workers

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        check_workers(dask_scheduler=f"tcp://127.0.0.1:{port}")  # something listens: accepted
    finally:
        listener.close()
    start = time.monotonic()
    with pytest.raises(ValueError, match=rf"--dask-scheduler tcp://127.0.0.1:{port}: cannot connect \("):
        check_workers(dask_scheduler=f"tcp://127.0.0.1:{port}")
    assert time.monotonic() - start < 10


def test_run_study_refuses_executors_before_claiming_the_store(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    st = parse_study({"part": [PRED]})
    for kwargs in ({"workers": 100000}, {"workers": -1}, {"workers": 2, "dask_local": 2}):
        with pytest.raises(ValueError):
            run_study(st, store, **kwargs)
    assert store.meta("study") is None and store.count("cell") == 0


@pytest.mark.parametrize("flags,message", [
    (["--workers", "100000"], "--workers must be a positive integer (at most"),
    (["--workers", "2", "--dask-local", "2"], "choose one executor"),
    (["--dask-scheduler", "tcp://nowhere"], "expected tcp://HOST:PORT"),
])
def test_cli_bad_executor_writes_nothing(tmp_path, cli, flags, message):
    spec = tmp_path / "s.toml"
    spec.write_text('[[part]]\nmethods = ["predict"]\ngrid = { d = [8], K = [2], N = [16] }\n')
    rc, err = cli("study", "run", spec, "--store", tmp_path / "s.sqlite", *flags)
    assert rc == 2 and err.count("\n") == 1 and message in err
    assert not (tmp_path / "s.sqlite").exists()


# -- the report as one CSV table --------------------------------------------------------------------


def test_an_mlp_validate_cell_runs_in_process_and_on_workers(tmp_path):
    """A trained network sweep as a study cell (family and widths): the same stored result in-process
    and on worker processes, reported apart from the GMM transition; at d = 4 < K + 3, where finite-snr
    does not apply, the summary has no finite-snr prediction instead of failing."""
    st = parse_study({"part": [{"methods": ["validate"], "grid": {"d": [4], "K": [2], "N": [10]},
                                "family": "mlp:depth=1,embed=4", "widths": [4, 16], "steps": 30, "draws": 2,
                                "n_eval": 10, "exact_draws": 2}]})
    a, b = Store(tmp_path / "a.sqlite"), Store(tmp_path / "b.sqlite")
    assert run_study(st, a).done == 1
    assert run_study(st, b, workers=2).done == 1
    got = [s.get("cell", st.cells[0].config()) for s in (a, b)]
    assert got[0]["summary"] == got[1]["summary"]
    assert got[0]["summary"]["family"] == "mlp:depth=1,embed=4"
    assert [r["params"] for r in got[0]["sizes"]] == [4 * 8 + 4 + 4 * 4 + 4, 16 * 8 + 16 + 16 * 4 + 4]
    rows, failed = study_rows(st, a)
    assert not failed and rows[0]["observed_mid"] is None  # a network's transition is not the GMM's
