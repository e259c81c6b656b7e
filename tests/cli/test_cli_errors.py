"""Bad input through the CLI, in-process: one line on stderr, exit 2, no traceback, nothing written."""

import json
import os
import subprocess
import sys

import pytest

from memcross.cli import main


def fails(capsys, args, message):
    """``main(args)`` exits 2 with one stderr line containing ``message``."""
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert message in lines[0], lines[0]
    return lines[0]


def test_misspelt_command_and_option_get_a_suggestion(capsys):
    fails(capsys, ["predit"], "did you mean 'predict'?")
    # no abbreviations: --schedul is not --schedule
    fails(capsys, ["predict", "--schedul", "vp"], "did you mean '--schedule'?")
    fails(capsys, ["lst"], "did you mean 'list'?")
    # and a misspelt registry name
    fails(capsys, ["predict", "--schedule", "vpp"], "did you mean 'vp'?")
    fails(capsys, ["predict", "--weighting", "min-snrr"], "did you mean 'min-snr'?")
    fails(capsys, ["predict", "--target", "epss"], "did you mean 'eps'?")


@pytest.mark.parametrize("what", ["config", "records"])
def test_unreadable_input_files(tmp_path, capsys, what):
    folder = tmp_path / "folder"
    folder.mkdir()
    binary = tmp_path / "binary"
    binary.write_bytes(b"\x00\x01\xff\xfe")
    deep = tmp_path / "deep"
    deep.write_text(("a = " if what == "config" else "") + "[" * 3000 + "]" * 3000 + "\n")
    args = (lambda p: ["predict", "--config", str(p)]) if what == "config" else (lambda p: ["table", str(p)])
    fails(capsys, args(folder), "is a folder")
    fails(capsys, args(binary), "not a text file")
    fails(capsys, args(deep), "nested too deeply")


def test_records_must_be_objects(tmp_path, capsys):
    path = tmp_path / "r.json"
    path.write_text("[1, 2]")
    fails(capsys, ["table", str(path)], "expected prediction records")


def test_config_setting_must_be_a_table(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text("setting = 3\n")
    fails(capsys, ["predict", "--config", str(path)], "[setting] must be a table")


def test_unwritable_outputs(tmp_path, capsys):
    fails(capsys, ["derive", "--output", str(tmp_path)], "is a folder")
    if os.path.exists("/dev/full"):
        fails(capsys, ["derive", "--output", "/dev/full"], "cannot write")
    fails(capsys, ["plot", "phase", "--output", str(tmp_path / "missing" / "f.png")], "does not exist")


def test_options_that_do_nothing_are_refused(tmp_path, capsys):
    fails(capsys, ["predict", "--fast"], "--fast only applies to --grid")
    fails(capsys, ["plot", "coefficient", "--dims", "0,-5", "--output", str(tmp_path / "c.png")], "--dims '0,-5'")
    assert not (tmp_path / "c.png").exists()


def test_custom_schedule_t_max_is_blamed_on_itself(capsys):
    fails(capsys, ["predict", "--t-max", "-1", "--alpha", "1-t", "--sigma", "t"], "t_max")


def test_time_grid_has_a_cap(capsys):
    fails(capsys, ["predict", "--time", "grid:0.001,0.999,100000000"], "at most 2000 grid points")


def test_list_reads_the_registries(capsys):
    assert main(["list", "weightings"]) == 0
    out = capsys.readouterr().out
    assert "min-snr" in out and "gamma=5" in out and "sigmoid" in out
    pytest.importorskip("torch")  # the presets listed come from the validation modules
    assert main(["list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"schedules", "weightings", "targets", "methods", "data", "presets"} <= set(data)
    assert any(row["name"] == "vp-cosine" for row in data["schedules"])
    refine = {(row["name"], row["data"]): row["refine"] for row in data["presets"]}
    assert refine[("quick", "colored-templates")] == "3 (mid)" and refine[("quick", "isotropic")] == "-"
    assert all("refine" not in row["training"] for row in data["presets"])


def test_thread_count_is_checked(capsys):
    pytest.importorskip("torch")
    fails(capsys, ["exact", "--threads", "0", "--no-store"], "--threads must be a positive integer (at most ")


def test_missing_extra_is_named(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ModuleNotFoundError
    fails(capsys, ["exact", "--no-store", "--dim", "3", "--components", "2", "--train", "10"],
          "pip install 'memcross[validation]'")


def test_table_reads_a_study_store(tmp_path, capsys, stored):
    from memcross.store import Store

    path = tmp_path / "study.sqlite"
    store = Store(path)
    summary = stored.summary()
    sizes = [stored.size(50, ratio=0.1, per_time=False), stored.size(100, ratio=1.0, per_time=False)]
    store.put("cell", {"method": "validate", "setting": {"d": 30}, "seed": 0, "options": {}},
              {"label": "validate", "summary": summary, "sizes": sizes})
    store.close()
    assert main(["table", "--store", str(path), "--format", "csv", "--columns", "d,K,N,exact,observed_mid"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "30,4,100,0.79,0.78"
    assert main(["table", "--store", str(path), "--kind", "sizes", "--format", "csv", "--columns", "M,ratio"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["50,0.1", "100,1.0"]


def test_csv_digits(tmp_path, capsys):
    path = tmp_path / "r.json"
    assert main(["predict", "--method", "asymptotic", "--json"]) == 0
    path.write_text(capsys.readouterr().out)
    assert main(["table", str(path), "--format", "csv", "--columns", "value"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "0.66035964"
    assert main(["table", str(path), "--format", "csv", "--columns", "value", "--digits", "3"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "0.66"


def test_broken_pipe_is_quiet(tmp_path, capsys):
    # a table far longer than a pipe's buffer, read by `head -1`
    assert main(["predict", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    path = tmp_path / "many.json"
    path.write_text(json.dumps([record] * 5000))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(f"{sys.executable} -m memcross table {path} --format csv | head -1", shell=True,
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.stdout.startswith("schedule,")
    assert proc.stderr == ""


@pytest.mark.parametrize("args, message", [
    (["--variance-param", "log-var"], "--variance-param applies to the coloured-template family"),
    (["--clip", "-1"], "--clip must be a finite positive number"),
    (["--lr-factors", "variance=0"], "--lr-factors must map parameter groups to finite positive multiples"),
    (["--lr-factors", "variance=inf"], "--lr-factors must map parameter groups to finite positive multiples"),
    (["--lr-factors", "variance"], "--lr-factors: must be GROUP=FACTOR pairs, e.g. colours=10,variance=10"),
    (["--lr-factors", "colours=2"], "--lr-factors: the family of data 'isotropic' has no parameter group 'colours'"),
    (["--family", "mlp", "--lr-factors", "variance=2"], "--lr-factors applies to the GMM families' parameter groups"),
    (["--betas", "0.9"], "--betas: must be two numbers B1,B2 in [0, 1)"),
    (["--betas", "0.9,x"], "--betas: must be two numbers B1,B2 in [0, 1)"),
    (["--betas", "0.9,1.5"], "--betas must be two numbers in [0, 1)"),
    (["--dtype", "float16"], "--dtype: invalid choice: 'float16' (choose from"),
    (["--time-sampling", "sobol"], "--time-sampling: invalid choice: 'sobol' (choose from"),
])
def test_validate_training_options_refused_before_any_work(tmp_path, capsys, args, message):
    store = tmp_path / "s.sqlite"
    assert main(["validate", "--dim", "3", "--components", "2", "--train", "10", "--store", str(store), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not store.exists()


def test_validate_time_sampling_is_logged_and_stored(tmp_path, capsys):
    """``--time-sampling stratified`` reaches the training config: the run says so and its stored
    configs carry it; ``iid`` (the isotropic default) leaves the key out."""
    pytest.importorskip("torch")
    from memcross.store import Store

    tiny = ["validate", "--dim", "4", "--components", "2", "--train", "8", "--sizes", "4,8", "--steps", "5",
            "--draws", "2", "--n-eval", "4", "--exact-draws", "1", "--device", "cpu", "--preset", "quick",
            "--no-progress", "--no-figure"]
    store = tmp_path / "s.sqlite"
    assert main([*tiny, "--time-sampling", "stratified", "--store", str(store)]) == 0
    assert "R = 2, stratified times," in capsys.readouterr().out
    trains = [cfg["train"] for cfg, _ in Store(store).records("params")]
    assert len(trains) == 2 and all(t["time_sampling"] == "stratified" for t in trains)
    store = tmp_path / "iid.sqlite"
    assert main([*tiny, "--time-sampling", "iid", "--store", str(store)]) == 0
    assert "stratified" not in capsys.readouterr().out
    assert all("time_sampling" not in cfg["train"] for cfg, _ in Store(store).records("params"))
