
from memcross.records import CELL_PAYLOADS
from memcross.studies import CELL_METHODS, METHODS, Cell, parse_study, run_cell
from memcross.studies.cells import TORCH_METHODS


def test_each_method_has_a_cell_function_and_a_record():
    assert tuple(CELL_METHODS) == METHODS == tuple(CELL_PAYLOADS)
    assert TORCH_METHODS == {"exact", "validate"}


def test_a_predict_cell_runs_without_torch(without_torch):
    code = ("from memcross.studies import Cell, run_cell\n"
            "out = run_cell(Cell('predict', {'d': 8, 'K': 2, 'N': 16}, 0, {'threads': 1}))\n"
            "print(sorted(out['result']), [m for m in sys.modules if m.startswith('memcross.validation.')])")
    out = without_torch(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['predicted_c1', 'predicted_finite_d', 'predicted_finite_snr'] ['memcross.validation.presets']"


def test_a_failing_cell_is_data():
    out = run_cell(Cell("exact", {"d": 8, "K": 2, "N": 16}, 0, {"threads": 1}))  # no "draws" option
    assert out["error"] == "KeyError: 'draws'" and "Traceback" in out["traceback"]


def test_a_report_does_not_build_training_plans(monkeypatch):
    from memcross.studies import spec

    def refuse(cell, setting, where):
        raise ValueError(f"{where}: refused")

    monkeypatch.setattr(spec, "_check_validate", refuse)
    data = {"part": [{"methods": ["validate"], "grid": {"d": [8], "K": [2], "N": [16]}}]}
    try:
        parse_study(data)
    except ValueError as exc:
        assert str(exc) == "part 1: refused"
    else:
        raise AssertionError("the plan check did not run")
    assert [c.method for c in parse_study(data, check_plans=False).cells] == ["validate"]
