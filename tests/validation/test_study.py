import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from memcross.validation import study as study_mod
from memcross.validation.store import Store
from memcross.validation.study import error_rows, parse_study, run_study, study_rows

TINY = {
    "study": {"name": "tiny"},
    "part": [{"methods": ["predict", "exact"], "grid": {"d": [8, 12], "K": [2], "N": [16, 24]}, "seeds": [0, 1],
              "exact_draws": 1}],
}


def test_parse_builds_cells_and_checks_everything_first():
    st = parse_study(TINY)
    assert len(st.cells) == 4 * 1 + 4 * 2  # one prediction per setting, one exact cell per seed
    bad = [
        ({"part": []}, "no \\[\\[part\\]\\] tables"),
        ({"part": [{"methods": ["train"], "grid": {"d": [8]}}]}, "methods must be"),
        ({"part": [{"methods": ["exact"], "grid": {"dim": [8]}}]}, "unknown part 1 grid field"),
        ({"part": [{"methods": ["exact"], "grid": {"K": [30], "N": [20]}}]}, "K must be <= N"),
        ({"part": [{"methods": ["validate"], "grid": {"N": [20]}, "sizes": [5, 50]}]}, "sizes must be integers"),
        ({"part": [{"methods": ["exact"], "grid": {"d": 8}}]}, "needs a non-empty list"),
        ({"extra": {}}, "unknown table"),
    ]
    for data, match in bad:
        with pytest.raises(ValueError, match=match):
            parse_study(data)


def _results(store):
    return {(c["method"], c["setting"]["d"], c["setting"]["N"], c["seed"]): r for c, r in store.records("cell")}


def test_dask_local_cluster_gives_the_in_process_results(tmp_path):
    pytest.importorskip("distributed")
    st = parse_study(TINY)
    local, dask = Store(tmp_path / "a.sqlite"), Store(tmp_path / "b.sqlite")
    assert run_study(st, local).done == len(st.cells)
    assert run_study(st, dask, dask_local=2).done == len(st.cells)
    assert _results(local) == _results(dask)
    assert run_study(st, dask).skipped == len(st.cells)  # nothing twice
    rows, failed = study_rows(st, dask)
    assert len(rows) == 4 and not failed and all(r["exact_seeds"] == 2 for r in rows)
    assert {e["predictor"] for e in error_rows(rows)} == {"predicted_c1", "predicted_finite_d"}


def test_worker_processes_give_the_same_results(tmp_path):
    st = parse_study(TINY)
    a, b = Store(tmp_path / "a.sqlite"), Store(tmp_path / "b.sqlite")
    run_study(st, a)
    run_study(st, b, workers=2)
    assert _results(a) == _results(b)


def test_a_failing_cell_is_recorded_and_the_rest_continue(tmp_path, monkeypatch):
    real = study_mod._compute

    def flaky(cell):
        if cell.method == "exact" and cell.setting["d"] == 12 and cell.seed == 1:
            raise RuntimeError("disk on fire")
        return real(cell)

    monkeypatch.setattr(study_mod, "_compute", flaky)
    st = parse_study(TINY)
    store = Store(tmp_path / "s.sqlite")
    summary = run_study(st, store)
    assert len(summary.failed) == 2 and summary.done == len(st.cells) - 2
    rows, failed = study_rows(st, store)
    assert len(failed) == 2 and all("disk on fire" in f["error"] for f in failed)
    monkeypatch.setattr(study_mod, "_compute", real)
    again = run_study(st, store)  # retries only the failed cells
    assert again.done == 2 and not again.failed and store.count("cell-failed") == 0
    assert store.count("cell") == len(st.cells)


def test_store_of_another_study_is_refused_unless_added(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    run_study(parse_study(TINY), store)
    other = parse_study({**TINY, "study": {"name": "other"}, "part": [dict(TINY["part"][0], seeds=[2])]})
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
                    'grid = { d = [20, 30], K = [3], N = [60, 80, 100] }\nseeds = [0, 1, 2]\nexact_draws = 4\n')
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
    assert 3 <= partial < 18
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{partial} already done" in done.stdout
    assert _cells(store) == 18


def test_report_takes_predictions_and_exact_from_a_trained_sweep(tmp_path, monkeypatch):
    fake = {"summary": {"observed_mid": 0.78, "predicted_c1": 0.66, "predicted_finite_d": 0.73, "exact": 0.785},
            "sizes": []}
    monkeypatch.setattr(study_mod, "_compute", lambda cell: fake)
    st = parse_study({"part": [{"methods": ["validate"], "grid": {"d": [8], "K": [2], "N": [16]}}]})
    store = Store(tmp_path / "s.sqlite")
    run_study(st, store)
    rows, failed = study_rows(st, store)
    assert not failed and rows[0]["observed_mid"] == 0.78 and rows[0]["exact"] == 0.785
    errs = {(e["predictor"], e["against"]): e["mean_abs_error"] for e in error_rows(rows)}
    assert errs[("exact", "observed_mid")] == pytest.approx(0.005)
    assert errs[("predicted_finite_d", "observed_mid")] == pytest.approx(0.05)
