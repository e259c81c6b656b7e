"""Records: one JSON protocol; what a store keeps reads back into them byte for byte."""

import dataclasses
import functools
import json

import pytest

from memcross.records import (
    CELL_PAYLOADS,
    CellResult,
    ExactCrossover,
    PredictedCrossover,
    Prediction,
    SizeResult,
    SweepResult,
    SweepSummary,
)
from memcross.store import Store, StoreError


def test_prediction_round_trips_through_json():
    from memcross.numerics import predict

    p = predict()
    again = Prediction.from_dict(json.loads(p.to_json()))
    assert again == p and again.to_json() == p.to_json()
    with pytest.raises(ValueError, match="unknown prediction record field"):
        Prediction.from_dict({"nope": 1})
    with pytest.raises(ValueError, match="prediction record: field 'value' is missing"):
        Prediction.from_dict({k: v for k, v in p.to_dict().items() if k != "value"})
    with pytest.raises(ValueError, match="prediction record: field 'dps' should be an integer, found '30'"):
        Prediction.from_dict({**p.to_dict(), "dps": "30"})
    row = p.row()
    assert set(row) <= set(Prediction.columns()) and row["notes"] == "; ".join(p.notes)


@pytest.mark.parametrize("make", [
    lambda s: (SweepSummary, s.summary()),
    lambda s: (SweepSummary, s.summary(data="colored-templates", templates="digits", d=675, gen_val_loss=None,
                                       observed_mid=None, transition_note="no size tried memorizes")),
    lambda s: (SizeResult, s.size(40)),
    lambda s: (SizeResult, s.size(40, per_time=False)),
    lambda s: (SizeResult, s.size(40, means_near_true=None, templates_near_true=3, pmem_val_loss=None)),
    lambda s: (ExactCrossover, {"exact": 0.79, "exact_M": 80}),
    lambda s: (PredictedCrossover, {"predicted_c1": 0.66, "predicted_finite_d": 0.77}),
    lambda s: (SweepResult, {"summary": s.summary(), "sizes": [s.size(50, per_time=False), s.size(100, per_time=False)]}),
])
def test_stored_layout_reads_back_byte_for_byte(stored, make):
    cls, data = make(stored)
    record = cls.from_dict(json.loads(json.dumps(data)))
    assert json.dumps(record.to_dict()) == json.dumps(data)
    assert cls.from_dict(record.to_dict()) == record


def test_records_written_before_later_fields_still_read(stored):
    old = {k: v for k, v in stored.summary().items() if k not in ("data", "templates", "transition_note")}
    summary = SweepSummary.from_dict(old)
    assert summary.data is None and summary.transition_note is None and summary.exact == 0.79
    size = SizeResult.from_dict({k: v for k, v in stored.size(10).items() if not k.endswith("_t")})
    assert size.train_loss_t is None and "train_loss_t" not in size.to_dict()


def test_unknown_missing_and_mistyped_keys_name_the_record_and_field(stored):
    with pytest.raises(ValueError, match=r"unknown sweep summary field\(s\): bogus; allowed: K, N, baseline_ratio"):
        SweepSummary.from_dict(stored.summary(bogus=1))
    with pytest.raises(ValueError, match="size record: field 'ratio' is missing"):
        SizeResult.from_dict({k: v for k, v in stored.size(10).items() if k != "ratio"})
    with pytest.raises(ValueError, match=r"size record: field 'converged' should be a boolean, found 1 \(int\)"):
        SizeResult.from_dict(stored.size(10, converged=1))
    with pytest.raises(ValueError, match=r"field 'sizes\[1\].M' should be an integer"):
        SweepResult.from_dict({"summary": stored.summary(), "sizes": [stored.size(1), {**stored.size(2), "M": 2.5}]})
    with pytest.raises(ValueError, match=r"^demo: field 'summary': unknown sweep summary field\(s\): x"):
        SweepResult.from_dict({"summary": stored.summary(x=1)}, "demo")
    with pytest.raises(ValueError, match=r"unknown sweep record field\(s\): exact; allowed: sizes, summary"):
        SweepResult.from_dict({"summary": stored.summary(), "exact": 0.5})
    with pytest.raises(ValueError, match="the record should be an object, found"):
        ExactCrossover.from_dict([0.5, 3])


def test_cell_records(stored):
    config = {"method": "validate", "setting": {"d": 30, "K": 4, "N": 100}, "seed": 2, "options": {"preset": "quick"}}
    result = {"label": "validate d=30 K=4 N=100 seed=2", "summary": stored.summary(),
              "sizes": [stored.size(50, per_time=False)]}
    cell = CellResult.from_stored(config, result)
    assert cell.method == "validate" and cell.seed == 2 and cell.payload.summary.exact == 0.79
    assert cell.payload.sizes[0].M == 50 and cell.row()["observed_mid"] == 0.78
    assert {k: v for k, v in cell.to_dict().items() if k not in CellResult.CONFIG_KEYS} == result
    assert set(cell.row()) <= set(CellResult.columns())
    exact = CellResult.from_stored({**config, "method": "exact"}, {"label": "e", "exact": 0.8, "exact_M": 80})
    assert exact.payload == ExactCrossover(0.8, 80)
    with pytest.raises(ValueError, match="cell record: unknown cell method 'train'; known: predict, exact, validate"):
        CellResult.from_stored({**config, "method": "train"}, {})
    with pytest.raises(ValueError, match=r"unknown exact crossover record field\(s\): sizes, summary; allowed: exact, exact_M"):
        CellResult.from_stored({**config, "method": "exact"}, result)
    assert set(CELL_PAYLOADS) == {"predict", "exact", "validate"}


def test_a_store_of_the_stored_layout_reads_into_records(tmp_path, stored):
    """Records stored as dicts (as the sweep and the study have always written them) read back
    through the store into records, and the store's checks are the records' own."""
    path = tmp_path / "s.sqlite"
    st = Store(path)
    st.put("summary", {"k": 1}, stored.summary())
    st.put("size", {"k": 1}, stored.size(50))
    st.put("size", {"k": 2}, {**stored.size(60), "ratio": "high"})
    config = {"method": "exact", "setting": {"d": 8}, "seed": 0, "options": {}}
    st.put("cell", config, {"label": "exact d=8", "exact": 0.8, "exact_M": 13})
    st.close()
    st = Store(path, create=False)
    assert st.get_record("summary", {"k": 1}, SweepSummary.from_dict) == SweepSummary.from_dict(stored.summary())
    assert st.get_record("size", {"k": 1}, SizeResult.from_dict).ratio == 0.5
    assert st.get_record("size", {"k": 3}, SizeResult.from_dict) is None
    with pytest.raises(StoreError, match=r"store '.*s.sqlite': the stored size record: field 'ratio' should be a number"):
        st.get_record("size", {"k": 2}, SizeResult.from_dict)
    cell = st.get_record("cell", config, functools.partial(CellResult.from_stored, config))
    assert cell.payload.exact_M == 13 and cell.label == "exact d=8"
    assert SizeResult.schema()["M"] is int and SizeResult.schema()["templates_near_true?"] == (int, None)


def test_table_columns_are_record_columns():
    from memcross.cli import SIZE_COLUMNS, SUMMARY_COLUMNS
    from memcross.numerics.tables import DEFAULT_COLUMNS
    from memcross.studies import REPORT_COLUMNS

    assert set(SUMMARY_COLUMNS) <= set(SweepSummary.columns())
    assert set(SIZE_COLUMNS) <= set(SizeResult.columns())
    assert set(DEFAULT_COLUMNS) <= set(Prediction.columns())
    # a trained sweep carries the C = 1 and finite-d predictions; finite-snr comes from predict cells
    assert set(REPORT_COLUMNS) - {"exact_seeds", "predicted_finite_snr"} <= set(SweepSummary.columns())
    assert "predicted_finite_snr" in PredictedCrossover.columns()
    assert all(dataclasses.is_dataclass(c) and c.__dataclass_params__.frozen for c in CELL_PAYLOADS.values())
