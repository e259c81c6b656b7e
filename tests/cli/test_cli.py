"""The CLI: a few smoke tests through the installed ``memcross`` script, the rest in-process."""

import shutil
import subprocess
import sys

import pytest
from cli_helpers import call

EXE = shutil.which("memcross")
BASE = [EXE] if EXE else [sys.executable, "-m", "memcross"]


def run(*args, timeout=120):
    return subprocess.run([*BASE, *args], capture_output=True, text=True, timeout=timeout)


def test_version_and_help():
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("memcross ")
    out = run("--help")
    assert out.returncode == 0 and "derive" in out.stdout and "check" in out.stdout


def test_derive_default_prints_closed_form():
    out = call("derive")
    assert out.returncode == 0, out.stderr
    assert "M*/N = 16508991/25000000" in out.stdout
    assert "0.660359640000000" in out.stdout


def test_derive_latex_to_file(tmp_path):
    target = tmp_path / "d.tex"
    out = call("derive", "--latex", "--time", "interval:0,1", "--output", str(target))
    assert out.returncode == 0, out.stderr
    text = target.read_text()
    assert "\\begin{align}" in text and "\\frac{2}{3}" in text


def test_derive_verify():
    out = call("derive", "--weighting", "elbo", "--target", "eps", "--verify")
    assert out.returncode == 0, out.stderr
    assert "all steps verified" in out.stdout


def test_check_exit_codes():
    ok = call("check", "1 - t**2", "--against", "per-time-crossover", "--C", "1")
    assert ok.returncode == 0 and "equal" in ok.stdout
    bad = call("check", "1 - t**3", "--against", "per-time-crossover", "--C", "1")
    assert bad.returncode == 1 and "not equal: at t = " in bad.stdout and " vs " in bad.stdout
    # the error exit code as the shell sees it, through the installed script
    unsafe = run("check", "__import__('os').system('true')", "--against", "psi")
    assert unsafe.returncode == 2 and unsafe.stdout == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (["derive", "--schedule", "nope"], "known schedules: vp"),
        (["derive", "--weighting", "nope"], "known weightings: x0-uniform"),
        (["derive", "--target", "nope"], "known targets: x0"),
        (["derive", "--s2", "-1"], "s2 must be positive"),
        (["derive", "--time", "interval:1,0"], "t_min must be < t_max"),
        (["derive", "--time", "grid:0.1,0.9,1"], "at least 2 points"),
        (["derive", "--C", "0"], "C must be positive"),
        (["derive", "--C", "abc"], "C must be a positive number"),
        (["derive", "--output", "/nonexistent-dir/x.txt"], "does not exist"),
        (["derive", "--bogus"], "unrecognized arguments"),
        (["check", "t", "--against", "nothing"], "invalid choice"),
        (["predict", "--dps", "3"], "dps must be an integer in [5, "),
        (["predict", "--s2", "-1"], "s2 must be positive"),
        (["predict", "--components", "300"], "K must be <= N"),
        (["predict", "--grid", "foo=1"], "--grid 'foo=1'"),
        (["predict", "--config", "/nonexistent.toml"], "not found"),
        (["predict", "--weighting", "custom", "--weight-expr", "t - 0.5"], "negative"),
        (["table", "/nonexistent.json"], "not found"),
        (["plot", "phase", "--output", "x.txt"], "must end in"),
    ],
)
def test_bad_input_one_line_exit_2(args, message):
    out = call(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert message in lines[0]
    assert "Traceback" not in out.stderr


def test_predict_default_prints_value_and_summary():
    """By default the most accurate method (finite-snr, exact crossover 0.7925 for data seed 0),
    with the paper's formula beside it and its derivation summary."""
    out = run("predict")
    assert out.returncode == 0, out.stderr
    assert "(method finite-snr" in out.stdout and "derivation summary" in out.stdout
    value = float(out.stdout.split("M*/N = ")[-2].split()[0])
    assert abs(value - 0.7925) < 0.015
    assert "paper's formula (C = 1, the memorizer collapsed at every time): M*/N = 0.66035964" in out.stdout
    assert "= 16508991/25000000   (the paper's formula)" in out.stdout
    out = run("predict", "--method", "asymptotic")
    assert "M*/N = 0.66035964" in out.stdout and "M*   = 132.072 for N = 200" in out.stdout


def test_predict_json_grid_table_and_plot(tmp_path):
    import json

    out = call("predict", "--grid", "s2=0.25,1,4", "--grid", "schedule=vp,flow", "--json")
    assert out.returncode == 0, out.stderr
    records = json.loads(out.stdout)
    assert len(records) == 6
    path = tmp_path / "p.json"
    path.write_text(out.stdout)
    table = call("table", str(path), "--format", "csv", "--columns", "s2,schedule,value")
    assert table.returncode == 0 and table.stdout.splitlines()[0] == "s2,schedule,value"
    fig = tmp_path / "f.png"
    plot = call("plot", "per-time", "--output", str(fig))
    assert plot.returncode == 0 and fig.exists()


def test_predict_config_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('schedule = "flow"\ns2 = 1\nmethod = "asymptotic"\ndps = 20\n')
    out = call("predict", "--config", str(cfg), "--json")
    assert out.returncode == 0, out.stderr
    assert '"value": 0.5' in out.stdout
