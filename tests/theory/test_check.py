import re

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


def test_numeric_verdict_states_its_tolerance_and_refuses_tiny_differences():
    same = check_expression("d*t**2*(1 + 10**-40)", "excess-generalizer")
    assert same.equal and same.method == "numeric" and same.tolerance <= 1e-25
    assert "relative tolerance of 1e-26" in same.describe()
    off = check_expression("d*t**2*(1 + 10**-22)", "excess-generalizer")
    assert not off.equal
    assert "relative difference 1.0e-22, tolerance 1.0e-26" in off.describe()


def test_critical_ratio_through_quadrature_at_a_kink():
    """min-SNR on vp-cosine: the weight has a kink; the 30-digit value is the toolkit's own."""
    setting = Setting(schedule="vp-cosine", weighting="min-snr:gamma=5", time="interval:0.01,0.99")
    assert check_expression("0.836515927190626700126770931844", "critical-ratio", setting, {"C": 1}).equal
    assert not check_expression("0.8365159271906267001267708", "critical-ratio", setting, {"C": 1}).equal


@pytest.mark.parametrize("text, message", [
    ("exp(exp(exp(t*100)))", "expression 'exp(exp(exp(t*100)))' cannot be evaluated at t = "),
    ("exp(exp(exp(1000)))", "cannot be evaluated"),
    ("exp(t*10**999)", "beyond 10^1000"),
    ("t*1e-9999999", "number 1e-9999999 at column 3 is not allowed"),
])
def test_expressions_beyond_reach_are_refused_by_name(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_expression(text, "psi")
