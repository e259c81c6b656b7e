import pytest

from memcross.store import Store
from memcross.studies import cells as cells_mod
from memcross.studies import error_rows, load_study, parse_study, run_study, study_rows


def test_report_takes_predictions_and_exact_from_a_trained_sweep(tmp_path, monkeypatch, stored):
    fake = {"summary": stored.summary(observed_mid=0.78, predicted_c1=0.66, predicted_finite_d=0.73, exact=0.785),
            "sizes": []}
    monkeypatch.setattr(cells_mod, "_compute", lambda cell: fake)
    st = parse_study({"part": [{"methods": ["validate"], "grid": {"d": [8], "K": [2], "N": [16]}}]})
    store = Store(tmp_path / "s.sqlite")
    run_study(st, store)
    rows, failed = study_rows(st, store)
    assert not failed and rows[0]["observed_mid"] == 0.78 and rows[0]["exact"] == 0.785
    errs = {(e["predictor"], e["against"]): e["mean_abs_error"] for e in error_rows(rows)}
    assert errs[("exact", "observed_mid")] == pytest.approx(0.005)
    assert errs[("predicted_finite_d", "observed_mid")] == pytest.approx(0.05)


# -- checks before anything is written ------------------------------------------------------------

def _fake_compute(cell):
    if cell.method == "predict":
        return {"predicted_c1": 0.66, "predicted_finite_d": 0.75}
    if cell.setting["N"] == 24 and cell.seed == 1:
        raise RuntimeError("disk on fire")
    return {"exact": 0.8 + 0.01 * cell.seed, "exact_M": 13}


def test_report_renders_one_csv_table(tmp_path, monkeypatch, tiny_study):
    import csv
    import io

    from memcross.studies import render_report

    monkeypatch.setattr(cells_mod, "_compute", _fake_compute)
    st = parse_study(tiny_study)
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

    monkeypatch.setattr(cells_mod, "_compute", _fake_compute)
    spec = tmp_path / "tiny.toml"
    spec.write_text('[[part]]\nmethods = ["predict", "exact"]\ngrid = { d = [8], K = [2], N = [16, 24] }\n'
                    "seeds = [0, 1]\nexact_draws = 1\n")
    store = tmp_path / "s.sqlite"
    run_study(load_study(spec), Store(store))
    assert main(["study", "report", str(spec), "--store", str(store), "--format", "csv"]) == 0
    table = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert len({len(r) for r in table if r}) == 1 and len([r for r in table if r]) == 3


def test_coloured_template_sets_get_a_row_each(tmp_path, monkeypatch, stored):
    """Two template sets at the same (K, N) are two rows, named by their data; a trained sweep's
    finite-snr prediction fills the row where no predict cell ran."""
    def fake(cell):
        digits = "digits" in cell.setting["data"]
        return {"summary": stored.summary(observed_mid=0.9 if digits else 0.85, predicted_c1=0.94,
                                          predicted_finite_d=0.82, predicted_finite_snr=0.93 if digits else 0.89,
                                          exact=0.93 if digits else 0.89), "sizes": []}

    monkeypatch.setattr(cells_mod, "_compute", fake)
    st = parse_study({"setting": {"K": 6, "N": 100}, "part": [{"methods": ["validate"], "grid": {"data": [
        "colored-templates:templates=digits", "colored-templates:templates=blobs"]}}]}, check_plans=False)
    store = Store(tmp_path / "s.sqlite")
    run_study(st, store)
    rows, failed = study_rows(st, store)
    assert not failed and len(rows) == 2
    by = {r["data"]: r for r in rows}
    assert by["colored-templates:templates=digits"]["predicted_finite_snr"] == 0.93
    assert by["colored-templates:templates=blobs"]["observed_mid"] == 0.85
    assert all(r["d"] == 675 for r in rows)
    from memcross.studies import render_report

    assert render_report(st, rows, failed, "csv").splitlines()[0].startswith("data,d,K,N,")
