import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from memcross.theory import Setting
from memcross.validation.store import Store
from memcross.validation.sweep import ValidationPlan, default_sizes, get_preset, plan_from, resolve_device, validate
from memcross.validation.train import TrainConfig


def tiny_plan(**kw):
    setting = Setting(d=8, K=2, N=20)
    train = TrainConfig(steps=kw.pop("steps", 200), draws=2)
    return ValidationPlan(setting, kw.pop("sizes", (4, 10, 16, 20)), train, n_eval=30, exact_draws=2, **kw)


def test_sweep_stores_each_unit_once_and_reruns_skip(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    logs = []
    res = validate(tiny_plan(), st, log=logs.append)
    assert [r["M"] for r in res.sizes] == [4, 10, 16, 20]
    assert st.count("size") == 4 and st.count("params") == 4 and st.count("exact") == 1 and st.count("summary") == 1
    s = res.summary
    assert s["predicted_c1"] == pytest.approx(0.66035964, abs=1e-8)
    assert 0 < s["exact"] <= 1 and 0 <= s["baseline_ratio"] <= 0.1
    assert any("trained sizes [4, 10, 16, 20]" in m for m in logs)
    logs.clear()
    again = validate(tiny_plan(), st, log=logs.append)
    assert not any("trained" in m for m in logs)
    assert again.summary == res.summary and st.count() == 10
    for row in res.sizes:
        assert 0 <= row["ratio_low"] <= row["ratio"] <= row["ratio_high"] <= 1
        assert len(row["train_loss_t"]) == 26 and row["variance"] > 0


def test_refinement_adds_sizes_between_start_and_end(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    res = validate(tiny_plan(sizes=(2, 20), refine=2), st)
    assert len(res.sizes) >= 3 and st.count("size") == len(res.sizes)


def test_presets_and_defaults():
    assert get_preset("paper") == {"steps": 50_000, "draws": 100, "n_eval": 50}
    assert get_preset("quick")["draws"] == 10
    assert default_sizes(100) == list(range(10, 101, 10))
    plan = plan_from(Setting(d=30, K=4, N=100), "quick", device="cpu")
    assert plan.train.steps == 50_000 and plan.n_eval == 200 and plan.sizes == tuple(range(10, 101, 10))
    with pytest.raises(ValueError, match="unknown preset"):
        plan_from(Setting(), "fast", device="cpu")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        plan_from(Setting(), "quick", device="cpu", steps=0)


def test_bad_plans():
    with pytest.raises(ValueError, match=r"M must be an integer in \[1, N\]"):
        tiny_plan(sizes=(4, 21))
    with pytest.raises(ValueError, match="increasing"):
        tiny_plan(sizes=(10, 4))
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_cuda_asked_where_there_is_none():
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")


def _count(path, kind):
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT COUNT(*) FROM results WHERE kind = ?", (kind,)).fetchone()[0]
    finally:
        db.close()


def _checkpoints(path):
    db = sqlite3.connect(path, timeout=30)
    try:
        return db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def test_killed_sweep_resumes_and_completes_each_result_once(tmp_path):
    store = tmp_path / "s.sqlite"
    cmd = [sys.executable, "-m", "memcross", "validate", "--dim", "8", "--components", "2", "--train", "20",
           "--sizes", "4,10,20", "--steps", "15000", "--draws", "2", "--n-eval", "20", "--exact-draws", "2",
           "--store", str(store), "--checkpoint-every", "0.2", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (store.exists() and _checkpoints(store) > 0):
        time.sleep(0.2)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _checkpoints(store) == 1 and _count(store, "size") == 0
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "resuming training of sizes [4, 10, 20] at step" in done.stdout
    for kind, n in (("size", 3), ("params", 3), ("exact", 1), ("summary", 1)):
        assert _count(store, kind) == n
    assert _checkpoints(store) == 0


def test_colored_templates_sweep_stores_and_reports(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    spec = {"data": "colored-templates", "templates": "blobs:side=5", "sc2": 1.0}
    plan = ValidationPlan(Setting(d=1, K=3, N=12), (3, 12), TrainConfig(steps=60, draws=2), n_eval=20,
                          exact_draws=2, data=spec)
    res = validate(plan, st)
    s = res.summary
    assert s["data"] == "colored-templates" and s["templates"] == "blobs:side=5" and s["d"] == 75
    assert 0 < s["exact"] <= 1 and 0 < s["predicted_finite_d"] <= 1
    for row in res.sizes:
        assert row["means_near_true"] is None and row["templates_near_true"] == row["M"]  # pmem: true templates
        assert row["means_near_train"] == row["M"] and row["variance"] > 0
    assert res.sizes[-1]["ratio"] == 1.0  # M = N with variance ~1e-6 reproduces the training set
    # the isotropic store keys are not those of the coloured run: a different data model is a different unit
    iso = tiny_plan(sizes=(4,), steps=5)
    assert iso.trained_config(4) != plan.trained_config(3)
    again = validate(plan, st)
    assert again.summary == s and st.count("params") == 2
