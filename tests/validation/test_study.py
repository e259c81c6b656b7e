import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

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


# -- checks before anything is written ------------------------------------------------------------
PRED = {"methods": ["predict"], "grid": {"d": [8], "K": [2], "N": [16]}}
VAL = {"methods": ["validate"], "grid": {"d": [8], "K": [2], "N": [16]}}


@pytest.mark.parametrize("data,match", [
    ({"study": {"name": "../../x"}, "part": [PRED]}, r"\[study\] name must be a plain file name"),
    ({"study": {"name": "/tmp/x"}, "part": [PRED]}, "plain file name"),
    ({"study": {"name": ".hidden"}, "part": [PRED]}, "not starting with '.'"),
    ({"study": {"name": "a b"}, "part": [PRED]}, "plain file name"),
    ({"study": {"name": 5}, "part": [PRED]}, "plain file name"),
    ({"study": {"nmae": "x"}, "part": [PRED]}, r"\[study\]: unknown key\(s\) nmae; allowed: name"),
    ({"study": 5, "part": [PRED]}, r"\[study\] must be a table, got an integer 5"),
    ({"setting": 3, "part": [PRED]}, r"\[setting\] must be a table, got an integer 3"),
    ({"setting": {"time": [1]}, "part": [PRED]}, "field 'time' must be a string or a number"),
    ({"part": "x"}, r"part must be \[\[part\]\] tables \(an array of tables\), got a string 'x'"),
    ({"part": [5]}, "part 1 must be a table"),
    ({"part": [{"methods": "predict"}]}, "methods must be a non-empty list"),
    ({"part": [{"methods": [["exact"]]}]}, "methods must be a non-empty list"),
    ({"part": [dict(PRED, grid=[1])]}, "part 1: grid must be a table, got an array"),
    ({"part": [dict(PRED, grid={"schedule": [["vp"]]})]}, "grid field 'schedule' must be a string or a number"),
    ({"part": [dict(PRED, grid={"d": [True]})]}, "must be a string or a number, got a boolean"),
    ({"part": [dict(VAL, steps=-5)]}, r"part 1: steps must be a positive integer \(at most 100,000,000\), got -5"),
    ({"part": [dict(VAL, steps=10**9)]}, "steps must be a positive integer"),
    ({"part": [dict(VAL, draws=0)]}, "draws must be a positive integer"),
    ({"part": [dict(VAL, n_eval=True)]}, "n_eval must be a positive integer"),
    ({"part": [dict(PRED, methods=["exact"], exact_draws=-1)]}, "exact_draws must be a positive integer"),
    ({"part": [dict(PRED, threads=0)]}, "threads must be a positive integer"),
    ({"part": [dict(PRED, threads=100000)]}, "the CPUs this process may use"),
    ({"part": [dict(PRED, threads="2")]}, "threads must be a positive integer"),
    ({"part": [dict(PRED, methods=["exact"], seeds=[-1])]}, r"each seed must be an integer in \[0, 2\*\*63\)"),
    ({"part": [dict(PRED, methods=["exact"], seeds=[2**64])]}, r"each seed must be an integer in \[0, 2\*\*63\)"),
    ({"part": [dict(PRED, methods=["exact"], seeds=[True])]}, "each seed must be an integer"),
    ({"part": [dict(PRED, methods=["exact"], seeds=[1, 1])]}, "lists a seed twice"),
    ({"part": [dict(VAL, sizes=5)]}, "sizes must be a list of integers, got an integer 5"),
    ({"part": [dict(VAL, sizes=[True])]}, r"sizes must be integers in \[1, N\]"),
    ({"part": [dict(VAL, preset="fast")]}, "unknown preset 'fast'"),
    ({"part": [dict(VAL, preset=["quick"])]}, "unknown preset"),
])
def test_study_mistakes_are_one_value_error(data, match):
    with pytest.raises(ValueError, match=match):
        parse_study(data)


def test_threads_are_capped_by_the_usable_cpus():
    from memcross.validation.study import usable_cpus

    cpus = usable_cpus()
    if hasattr(os, "sched_getaffinity"):
        assert cpus == len(os.sched_getaffinity(0))
    assert parse_study({"part": [dict(PRED, threads=cpus)]}).cells[0].options["threads"] == cpus
    with pytest.raises(ValueError, match=f"at most {cpus}, the CPUs this process may use"):
        parse_study({"part": [dict(PRED, threads=cpus + 1)]})


def test_study_name_defaults_to_a_checked_file_stem(tmp_path):
    from memcross.validation.study import load_study

    ok = tmp_path / "my-study_1.toml"
    ok.write_text('[[part]]\nmethods = ["predict"]\n')
    assert load_study(ok).name == "my-study_1"
    spaced = tmp_path / "my study.toml"
    spaced.write_text('[[part]]\nmethods = ["predict"]\n')
    with pytest.raises(ValueError, match="from the file name; set \\[study\\] name"):
        load_study(spaced)


def test_unreadable_study_files_name_the_file(tmp_path):
    from memcross.validation.study import MAX_STUDY_BYTES, load_study

    folder = tmp_path / "folder.toml"
    folder.mkdir()
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\x00\xff\xfe\x93binary")
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 3000 + "]" * 3000 + "\n")
    huge = tmp_path / "huge.toml"
    huge.write_text("# padding\n" * (MAX_STUDY_BYTES // 10 + 1))
    cases = [(folder, "is a folder"), (binary, "is not a text file"), (deep, "is nested too deeply"),
             (huge, "is larger than 1024 KiB"), (tmp_path / "missing.toml", "not found")]
    for path, message in cases:
        with pytest.raises(ValueError, match=message) as err:
            load_study(path)
        assert str(err.value).startswith(f"study file {str(path)!r}")


def _main(capsys, *args):
    from memcross.cli import main

    rc = main([str(a) for a in args])
    err = capsys.readouterr().err
    return rc, err


@pytest.mark.parametrize("text,message", [
    ('[study]\nname = "../../escaped"\n[[part]]\nmethods = ["predict"]\n', "plain file name"),
    ('[study]\nname = "/tmp/absolute"\n[[part]]\nmethods = ["predict"]\n', "plain file name"),
    ('[study]\nnmae = "typo"\n[[part]]\nmethods = ["predict"]\n', "unknown key(s) nmae"),
    ('study = 5\n', "[study] must be a table"),
    ('setting = 3\n[[part]]\nmethods = ["predict"]\n', "[setting] must be a table"),
    ('part = "x"\n', "part must be [[part]] tables"),
    ('[[part]]\nmethods = ["validate"]\nsteps = -5\n', "steps must be a positive integer"),
    ('[[part]]\nmethods = ["exact"]\nexact_draws = -1\n', "exact_draws must be a positive integer"),
    ('[[part]]\nmethods = ["exact"]\nthreads = 100000\n', "the CPUs this process may use"),
    ('[[part]]\nmethods = ["exact"]\nseeds = [18446744073709551616]\n', "each seed must be an integer in [0, 2**63)"),
    ("a = " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
])
def test_cli_study_mistakes_write_nothing(tmp_path, monkeypatch, capsys, text, message):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "study.toml"
    spec.write_text(text)
    for action in ("run", "report"):
        rc, err = _main(capsys, "study", action, spec, "--no-progress" if action == "run" else "--format=csv")
        assert rc == 2 and err.count("\n") == 1 and message in err and err.startswith("memcross: error: study file")
    rc, err = _main(capsys, "study", "run", spec, "--store", tmp_path / "given.sqlite")
    assert rc == 2 and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.toml"]  # no store, no memcross-runs/
    assert not (tmp_path.parent / "escaped.sqlite").exists() and not Path("/tmp/absolute.sqlite").exists()


def test_cli_binary_and_folder_study_files(tmp_path, capsys):
    binary, folder = tmp_path / "b.toml", tmp_path / "f.toml"
    binary.write_bytes(bytes(range(256)))
    folder.mkdir()
    for path, message in ((binary, "is not a text file"), (folder, "is a folder")):
        rc, err = _main(capsys, "study", "run", path, "--store", tmp_path / "s.sqlite")
        assert rc == 2 and err.count("\n") == 1 and message in err and str(path) in err
    assert not (tmp_path / "s.sqlite").exists()


# -- executors ------------------------------------------------------------------------------------
def test_check_workers():
    from memcross.validation.study import WORKERS_PER_CPU, check_workers, max_workers, usable_cpus

    assert max_workers() == WORKERS_PER_CPU * usable_cpus()
    check_workers()
    check_workers(workers=1)
    check_workers(workers=max_workers())
    for bad in (0, -1, max_workers() + 1, 100000, True, 2.0):
        with pytest.raises(ValueError, match=f"--workers must be an integer from 1 to {max_workers()}"):
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
    from memcross.validation.study import check_workers

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
    (["--workers", "100000"], "--workers must be an integer from 1 to"),
    (["--workers", "2", "--dask-local", "2"], "choose one executor"),
    (["--dask-scheduler", "tcp://nowhere"], "expected tcp://HOST:PORT"),
])
def test_cli_bad_executor_writes_nothing(tmp_path, capsys, flags, message):
    spec = tmp_path / "s.toml"
    spec.write_text('[[part]]\nmethods = ["predict"]\ngrid = { d = [8], K = [2], N = [16] }\n')
    rc, err = _main(capsys, "study", "run", spec, "--store", tmp_path / "s.sqlite", *flags)
    assert rc == 2 and err.count("\n") == 1 and message in err
    assert not (tmp_path / "s.sqlite").exists()


# -- the report as one CSV table --------------------------------------------------------------------
def _fake_compute(cell):
    if cell.method == "predict":
        return {"predicted_c1": 0.66, "predicted_finite_d": 0.75}
    if cell.setting["N"] == 24 and cell.seed == 1:
        raise RuntimeError("disk on fire")
    return {"exact": 0.8 + 0.01 * cell.seed, "exact_M": 13}


def test_report_renders_one_csv_table(tmp_path, monkeypatch):
    import csv
    import io

    from memcross.validation.study import render_report

    monkeypatch.setattr(study_mod, "_compute", _fake_compute)
    st = parse_study(TINY)
    store = Store(tmp_path / "s.sqlite")
    run_study(st, store)
    rows, failed = study_rows(st, store)
    table = list(csv.reader(io.StringIO(render_report(st, rows, failed, "csv"))))
    header, body = table[0], table[1:]
    assert header[:8] == ["d", "K", "N", "predicted_c1", "predicted_finite_d", "exact", "exact_seeds", "observed_mid"]
    assert "predicted_c1_minus_exact" in header and header[-1] == "cells_without_result"
    assert len(body) == len(rows) == 4 and all(len(r) == len(header) for r in body)
    by_n = {(r[0], r[2]): dict(zip(header, r)) for r in body}
    assert float(by_n[("8", "16")]["predicted_c1_minus_exact"]) == pytest.approx(0.66 - 0.805)
    assert by_n[("8", "24")]["cells_without_result"] == "exact seed=1: RuntimeError: disk on fire"
    assert by_n[("8", "16")]["cells_without_result"] == ""
    md = render_report(st, rows, failed, "markdown")
    assert "errors of each predictor" in md and "cells without a result" in md and "disk on fire" in md


def test_cli_report_csv_is_one_table(tmp_path, monkeypatch, capsys):
    import csv
    import io

    from memcross.cli import main

    monkeypatch.setattr(study_mod, "_compute", _fake_compute)
    spec = tmp_path / "tiny.toml"
    spec.write_text('[[part]]\nmethods = ["predict", "exact"]\ngrid = { d = [8], K = [2], N = [16, 24] }\n'
                    "seeds = [0, 1]\nexact_draws = 1\n")
    store = tmp_path / "s.sqlite"
    run_study(study_mod.load_study(spec), Store(store))
    assert main(["study", "report", str(spec), "--store", str(store), "--format", "csv"]) == 0
    table = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert len({len(r) for r in table if r}) == 1 and len([r for r in table if r]) == 3
