import pytest

from memcross.theory.check import check_expression, quantity_names
from memcross.theory.setting import Setting


@pytest.mark.parametrize(
    "text, quantity, values",
    [
        ("1 - t**2", "per-time-crossover", {"C": 1}),
        ("d*t**2", "excess-generalizer", {}),
        ("d*s2/(1 + psi*s2)", "gaussian-mmse", {}),
        ("C*(1 - M/N)*d*s2", "excess-partial-memorizer", {}),
        ("(1 - t**2)/t**2", "psi", {}),
        ("alpha**2/sigma**4", "loss-factor", {}),
        ("1 - 1/(3*C)", "critical-ratio", {}),
    ],
)
def test_equal_expressions(text, quantity, values):
    setting = Setting(time="interval:0,1") if quantity == "critical-ratio" else Setting(target="score")
    assert check_expression(text, quantity, setting, values).equal


def test_mismatch_reports_point_and_values():
    verdict = check_expression("1 - t**3", "per-time-crossover", values={"C": 1})
    assert not verdict.equal
    assert verdict.point and verdict.left != verdict.right
    assert "not equal: at t = " in verdict.describe()


def test_numeric_fallback_when_symbolic_is_undecided():
    # min(psi, 5) against its piecewise form: decided by evaluation
    verdict = check_expression("(psi + 5 - abs(psi - 5))/2", "weight", Setting(weighting="min-snr"))
    assert verdict.equal


def test_bad_quantity_and_values():
    with pytest.raises(ValueError, match="known quantities"):
        check_expression("t", "nope")
    with pytest.raises(ValueError, match="fixable symbols"):
        check_expression("t", "psi", values={"t": 1})
    assert "critical-ratio" in quantity_names()
