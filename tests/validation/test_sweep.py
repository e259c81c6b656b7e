import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from memcross.store import Store
from memcross.theory import Setting
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
    assert [r.M for r in res.sizes] == [4, 10, 16, 20]
    assert st.count("size") == 4 and st.count("params") == 4 and st.count("exact") == 1 and st.count("summary") == 1
    s = res.summary
    assert s.predicted_c1 == pytest.approx(0.66035964, abs=1e-8)
    assert 0 < s.exact <= 1 and 0 <= s.baseline_ratio <= 0.1
    assert any("trained sizes [4, 10, 16, 20]" in m for m in logs)
    logs.clear()
    again = validate(tiny_plan(), st, log=logs.append)
    assert not any("trained" in m for m in logs)
    assert again.summary == res.summary and st.count() == 10
    for row in res.sizes:
        assert 0 <= row.ratio_low <= row.ratio <= row.ratio_high <= 1
        assert len(row.train_loss_t) == 26 and row.variance > 0


def test_refinement_adds_sizes_between_start_and_end(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    res = validate(tiny_plan(sizes=(2, 20), refine=2), st)
    assert len(res.sizes) >= 3 and st.count("size") == len(res.sizes)


def test_refinement_around_the_mid_point(tmp_path, monkeypatch):
    from memcross.validation import sweep

    # the tiny models memorize at every size in 200 steps; read their ratios as 0 then 1, so that
    # one half is bracketed by (2, 20) and the refinement's plumbing is what is tested
    real, calls = sweep.refine_sizes, []

    def bracketed(sizes, ratios, N, count, around="transition"):
        calls.append(around)
        return real(sizes, [0.0] * (len(sizes) - 1) + [1.0], N, count, around)

    monkeypatch.setattr(sweep, "refine_sizes", bracketed)
    st, logs = Store(tmp_path / "s.sqlite"), []
    validate(tiny_plan(sizes=(2, 20)), st)
    plan = tiny_plan(sizes=(2, 20), refine=2, refine_around="mid")
    res = validate(plan, st, log=logs.append)
    assert calls == ["mid"] and [r.M for r in res.sizes] == [2, 8, 14, 20]
    assert "refining around the 50% point: sizes [8, 14]" in logs
    assert any(m.startswith("trained sizes [8, 14]") for m in logs)  # the first two come from the store
    assert res.summary.sizes == "2,8,14,20"
    assert plan.summary_config()["refine_around"] == "mid"
    assert "refine_around" not in tiny_plan(sizes=(2, 20), refine=2).summary_config()  # keys stored before
    with pytest.raises(ValueError, match="--refine-around must be one of transition, mid, got 'edges'"):
        tiny_plan(refine=1, refine_around="edges")


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


def test_coloured_presets_are_the_authors_protocol():
    """The coloured paper preset: 100,000 steps, warm-up over 5,000 steps to 1e-4, then linear to
    1e-8, gradients clipped at norm 1e3, colour standard deviation from 1e-6 (variance 1e-12); the
    quick preset: the same peak over 15,000 steps of R = 5 stratified draws, with beta2 = 0.99, the
    colour means' and standard deviation's learning rates 10x the peak and the templates' 0.1x, and
    three more sizes around the 50% point."""
    setting = Setting(data="colored-templates:templates=blobs,side=8", K=6, N=100)
    plan = plan_from(setting, "paper", device="cpu", check_memory=False)
    t = plan.train
    assert (t.steps, t.lr, t.final_lr, t.clip, t.init_variance, t.variance_param, t.lr_factors) == \
        (100_000, 1e-4, 1e-8, 1e3, 1e-12, "std", None)
    assert round(t.warmup * t.steps) == 5000 and t.learning_rate(4999) == pytest.approx(1e-4)
    assert t.learning_rate(t.steps - 1) == pytest.approx(1e-8)
    quick = plan_from(setting, "quick", device="cpu", check_memory=False)
    assert (quick.refine, quick.refine_around, quick.n_eval) == (3, "mid", 100)
    assert plan.refine == 0 and plan.refine_around == "transition"
    t = quick.train
    assert (t.steps, t.draws, t.time_sampling, t.lr, t.final_lr, t.betas, t.clip, t.init_variance, t.lr_factors) == \
        (15_000, 5, "stratified", 1e-4, 1e-6, (0.9, 0.99), 1e3, 1e-12,
         (("colours", 10.0), ("templates", 0.1), ("variance", 10.0)))
    quick = plan_from(setting, "quick", device="cpu", check_memory=False, lr=5e-3, variance_param="log-var")
    assert quick.train.lr == 5e-3 and quick.train.variance_param == "log-var"  # what is given wins
    assert plan_from(Setting(), "paper", device="cpu", check_memory=False).train.clip is None
    assert plan_from(Setting(), "quick", device="cpu", check_memory=False).train.lr_factors is None
    assert plan_from(Setting(), "quick", device="cpu", check_memory=False).refine == 0
    given = plan_from(setting, "quick", device="cpu", check_memory=False, refine=0, refine_around="transition")
    assert (given.refine, given.refine_around) == (0, "transition")  # what is given wins here too
    assert plan_from(Setting(), "quick", device="cpu", check_memory=False).train.time_sampling is None
    assert plan_from(setting, "quick", device="cpu", check_memory=False, time_sampling="iid").train.time_sampling is None


def test_bad_plans():
    with pytest.raises(ValueError, match=r"M must be a positive integer \(at most N = 20\)"):
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
           "--sizes", "4,10,20", "--steps", "8000", "--draws", "2", "--n-eval", "20", "--exact-draws", "2",
           "--store", str(store), "--checkpoint-every", "0.2", "--no-progress", "--no-figure"]
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
    setting = Setting(data="colored-templates:templates=blobs,side=5", K=3, N=12)
    plan = ValidationPlan(setting, (3, 12), TrainConfig(steps=60, draws=2), n_eval=20, exact_draws=2)
    res = validate(plan, st)
    s = res.summary
    assert s.data == "colored-templates" and s.templates == "blobs:side=5" and s.d == 75
    assert 0 < s.exact <= 1 and 0 < s.predicted_finite_d <= 1
    for row in res.sizes:
        assert row.means_near_true is None and row.templates_near_true == row.M  # pmem: true templates
        assert row.means_near_train == row.M and row.variance > 0
    assert res.sizes[-1].ratio == 1.0  # M = N with variance ~1e-6 reproduces the training set
    # the isotropic store keys are not those of the coloured run: a different data model is a different unit
    iso = tiny_plan(sizes=(4,), steps=5)
    assert iso.trained_config(4) != plan.trained_config(3)
    again = validate(plan, st)
    assert again.summary == s and st.count("params") == 2


# -- `memcross validate` refuses mistakes before it writes anything -------------------------------
VALIDATE = ["validate", "--dim", "8", "--components", "2", "--train", "20", "--sizes", "4,20", "--steps", "20",
            "--draws", "2", "--n-eval", "10", "--exact-draws", "1", "--no-progress", "--no-figure"]


def _main(capsys, *args):
    from memcross.cli import main

    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("extra,message", [
    (["--init-variance", "0"], "--init-variance must be a finite positive number, got 0.0"),
    (["--init-variance", "nan"], "--init-variance must be a finite positive number, got nan"),
    (["--lr", "inf"], "--lr must be a finite positive number, got inf"),
    (["--lr", "nan"], "--lr must be a finite positive number, got nan"),
    (["--update-ema", "nan"], "--update-ema must be a number in (0, 1)"),
    (["--train-target", "x1"], "--train-target 'x1': unknown target 'x1'"),
    (["--train-weighting", "foo"], "--train-weighting 'foo': unknown weighting 'foo'"),
    (["--train-weighting", "custom"], "--train-weighting 'custom' is not available"),
    (["--time", "grid:0,0.999,11"], "--train-weighting 'eps-uniform' is not finite on the time measure"),
    (["--seed", str(2**64)], "--seed must be an integer in [0, 2**63), got 18446744073709551616"),
    (["--seed", "-1"], "--seed must be an integer in [0, 2**63)"),
    (["--train-seed", str(2**63)], "--train-seed must be an integer in [0, 2**63)"),
    (["--n-eval", "0"], "--n-eval must be a positive integer"),
    (["--exact-draws", "100000"], "--exact-draws must be a positive integer (at most 10,000)"),
    (["--refine", "-1"], "--refine must be an integer in [0, N]"),
    (["--refine", "2", "--refine-around", "edges"], "--refine-around: invalid choice: 'edges' (choose from"),
])
def test_validate_mistakes_write_nothing(tmp_path, capsys, extra, message):
    store = tmp_path / "s.sqlite"
    rc, err = _main(capsys, *VALIDATE, *extra, "--store", store)
    assert rc == 2 and err.count("\n") == 1 and message in err, err
    assert not store.exists()


class _Planned(BaseException):
    """Raised by a stand-in for ``validate`` to stop the command once it has its plan."""


@pytest.mark.parametrize("extra,refine,header", [
    ([], (3, "mid"), "sizes [10, 20, 30, 40, 50, 60, 70, 80, 90, 100] + 3 around the 50% point, device"),
    (["--refine", "0"], (0, "mid"), "sizes [10, 20, 30, 40, 50, 60, 70, 80, 90, 100], device"),
    (["--refine", "2", "--refine-around", "transition"], (2, "transition"), "+ 2 across the transition, device"),
])
def test_validate_takes_the_presets_refinement_unless_given(capsys, monkeypatch, extra, refine, header):
    """The coloured quick preset refines around the 50% point; the flags override it, and the
    command's first line says what it will train."""
    from memcross.cli import main
    from memcross.validation import sweep

    def planned(plan, store, **kw):
        raise _Planned(plan)

    monkeypatch.setattr(sweep, "validate", planned)
    with pytest.raises(_Planned) as got:
        main(["validate", "--data", "colored-templates", "--templates", "blobs", "--preset", "quick", "--device", "cpu",
              "--no-store", "--no-figure", *extra])
    plan = got.value.args[0]
    assert (plan.refine, plan.refine_around, plan.train.steps) == (*refine, 15_000)
    assert header in capsys.readouterr().out


def test_validate_refuses_what_does_not_fit_in_memory(tmp_path, capsys, monkeypatch):
    from memcross.validation import data as data_mod

    monkeypatch.setattr(data_mod, "available_memory", lambda: 2**30)
    store = tmp_path / "s.sqlite"
    rc, err = _main(capsys, *VALIDATE[:2], "1000000", *VALIDATE[3:], "--store", store)
    assert rc == 2 and err.count("\n") == 1 and not store.exists()
    assert "exact: (d, N) = (1000000, 20)" in err and "more than the 0.8 GiB available" in err
    assert "lower --dim/--train/--draws" in err
    rc, err = _main(capsys, "validate", "--dim", "1000", "--components", "2", "--train", "20", "--draws", "10000",
                    "--store", store, "--no-progress", "--no-figure")
    assert rc == 2 and err.count("\n") == 1 and not store.exists()
    assert "validate: training (d, N, R) = (1000, 20, 10000) with sizes [2, 4, ..., 20] (10 sizes)" in err
    assert "lower --dim/--train/--draws/--sizes" in err


def test_plan_memory_estimates():
    from memcross.validation.model import GMMFamily

    training_memory = GMMFamily.training_memory
    plan = tiny_plan()
    plan.check_memory()
    assert training_memory(30, 100, 10, range(10, 101, 10)) < 2**26  # the quick sweep: tens of MiB
    assert training_memory(60, 100, 10, [10]) == 2 * training_memory(30, 100, 10, [10]) - 4 * 4 * 1000 * 10


def test_diverging_training_fails_and_stores_no_size(tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    rc, err = _main(capsys, *VALIDATE, "--lr", "1e30", "--store", store)
    assert rc == 2 and err.count("\n") == 1
    assert "training diverged at step" in err and "lower --lr" in err
    st = Store(store, create=False)
    try:
        assert st.count("params") == 0 and st.count("size") == 0 and st.count("summary") == 0
    finally:
        st.close()


def test_sample_pairs_pair_each_sample_with_its_nearest_training_image(tmp_path):
    """A memorizer (M = N, pmem, colour variance 1e-12, a few steps) draws copies of training
    images; each sample comes with its nearest training image and the copy test's verdict."""
    from memcross.numerics.plots import sample_grid_figure
    from memcross.store import Store
    from memcross.validation.sweep import sample_pairs

    setting = Setting(data="colored-templates:templates=blobs,side=5", K=3, N=12)
    plan = plan_from(setting, "quick", sizes=(12,), device="cpu", steps=5, draws=2, n_eval=8)
    store = Store(tmp_path / "s.sqlite")
    try:
        validate(plan, store)
        pairs = sample_pairs(plan, store, per_size=3)
    finally:
        store.close()
    assert [p["M"] for p in pairs] == [12]
    p = pairs[0]
    assert p["samples"].shape == p["nearest"].shape == (3, 75) and p["copy"].all()
    assert np.abs(p["samples"] - p["nearest"]).max() < 0.02 * np.abs(p["nearest"]).max()
    assert sample_grid_figure(pairs, tmp_path / "grid.png").stat().st_size > 0
