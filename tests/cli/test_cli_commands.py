"""Commands in-process through ``main([...])``: JSON output of derive, check and study report."""

import json

import pytest

from memcross.cli import main


def test_derive_json_with_verification(capsys):
    assert main(["derive", "--json", "--verify", "--time", "interval:0,1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["result"] == "2/3" and abs(data["value"] - 2 / 3) < 1e-15
    assert [s["name"] for s in data["steps"]][:2] == ["schedule", "snr"]
    assert data["verification"]["ok"] and all(s["equal"] for s in data["verification"]["steps"])


def test_check_json(capsys):
    assert main(["check", "1 - t**3", "--against", "per-time-crossover", "--C", "1", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["equal"] is False and data["method"] == "numeric" and "t" in data["point"]
    assert main(["check", "1 - t**2", "--against", "per-time-crossover", "--C", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["equal"] is True


@pytest.mark.needs_torch
def test_study_report_json_and_csv_files(tmp_path, capsys):
    study = tmp_path / "s.toml"
    study.write_text('[study]\nname = "tiny"\n\n[[part]]\nmethods = ["predict"]\ngrid = { d = [30], K = [3], N = [50] }\n')
    store = tmp_path / "s.sqlite"
    assert main(["study", "run", str(study), "--store", str(store), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["study", "report", str(study), "--store", str(store), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["study"] == "tiny" and data["rows"][0]["d"] == 30
    assert abs(data["rows"][0]["predicted_c1"] - 0.66035964) < 1e-12
    out = tmp_path / "report.csv"
    assert main(["study", "report", str(study), "--store", str(store), "--format", "csv", "--output", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("d,K,N,predicted_c1,predicted_finite_d,exact,exact_seeds,observed_mid,")
    assert len(lines) == 2  # one table
    # a bad figure name is refused before anything is written
    rc = main(["study", "report", str(study), "--store", str(store), "--output", str(tmp_path / "a.md"),
               "--figure", str(tmp_path / "f.txt")])
    assert rc == 2 and not (tmp_path / "a.md").exists()
