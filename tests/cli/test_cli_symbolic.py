"""The text commands on settings whose averages are unevaluated integrals, non-smooth weights
and out-of-range input, in-process: exit code and one stderr line, or the right value."""

import pytest

from memcross.cli import main


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


VP_LINEAR_MIN_SNR = ["--schedule", "vp-linear", "--weighting", "min-snr", "--time", "interval:0.001,0.999"]


def test_predict_prints_an_integral_ratio_and_its_value(capsys):
    code, out, err = run(capsys, "predict", *VP_LINEAR_MIN_SNR, "--dps", "40", "--method", "asymptotic")
    assert code == 0, err
    assert "= -Integral((exp(199*t**2/20 + t/10) - 1)" in out
    assert "M*/N = 0.8162463947577005066801571231509438732315   (method asymptotic, 40 digits" in out


@pytest.mark.parametrize("extra", [[], ["--latex"], ["--verify"]])
def test_derive_on_an_integral_ratio(capsys, extra):
    code, out, err = run(capsys, "derive", *VP_LINEAR_MIN_SNR, *extra)
    assert code == 0, err
    assert ("\\int" if extra == ["--latex"] else "Integral(") in out
    if extra == ["--verify"]:
        assert "all steps verified" in out


def test_check_against_critical_ratio_with_a_kink(capsys):
    args = ["--against", "critical-ratio", "--schedule", "vp-cosine", "--weighting", "min-snr:gamma=5",
            "--time", "interval:0.01,0.99", "--C", "1"]
    code, out, err = run(capsys, "check", "0.836515927190626700126770931844", *args)
    assert code == 0, out + err
    assert "equal (numerically at 30 digits, to a relative tolerance of 1e-26; 1 point)" in out
    code, out, _ = run(capsys, "check", "0.83651592719062670012677", *args)
    assert code == 1 and "relative difference" in out


def test_check_refuses_what_differs_beyond_the_precision(capsys):
    code, out, _ = run(capsys, "check", "d*t**2*(1+10**-22)", "--against", "excess-generalizer")
    assert code == 1
    assert "not equal: at " in out and "relative difference 1.0e-22, tolerance 1.0e-26" in out


@pytest.mark.parametrize("args", [
    ["--time", "interval:0,1", "--weighting", "min-snr:gamma=5"],
    ["--schedule", "flow", "--target", "v", "--weighting", "min-snr:gamma=2", "--time", "interval:0,1"],
    ["--schedule", "flow", "--weighting", "min-snr:gamma=5", "--time", "interval:0.1,0.9"],
])
def test_derive_verify_on_kinked_weights(capsys, args):
    code, out, err = run(capsys, "derive", "--verify", *args)
    assert code == 0, out + err
    assert "all steps verified" in out


def test_predict_cosine_min_snr_whole_interval(capsys):
    code, out, err = run(capsys, "predict", "--schedule", "vp-cosine", "--weighting", "min-snr:gamma=5",
                         "--time", "interval:0,1")
    assert code == 0, err
    assert "M*/N = 0.84054056542099267734" in out  # the paper's formula, beside the finite-snr value


@pytest.mark.parametrize("weighting", ["min-snr:gamma=5", "sigmoid"])
def test_predict_bounded_weight_whole_interval(capsys, weighting):
    code, out, err = run(capsys, "predict", "--schedule", "vp-linear", "--weighting", weighting, "--time", "interval:0,1")
    assert code == 0, err
    assert "M*/N = 0." in out


def test_finite_d_summary_states_its_precision(capsys):
    code, out, err = run(capsys, "predict", "--method", "finite-d")
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if ln.startswith("M*/N = "))
    assert line.startswith("M*/N = 0.76909   (method finite-d, 5 digits, error estimate ")
    assert "error estimate 0)" not in line


@pytest.mark.parametrize("args, message", [
    (["check", "exp(exp(exp(t*100)))", "--against", "psi"],
     "expression 'exp(exp(exp(t*100)))' cannot be evaluated at t = "),
    (["predict", "--alpha", "1-t", "--sigma", "t*exp(exp(exp(100*t)))"],
     "schedule 'custom' (alpha = '1-t', sigma = 't*exp(exp(exp(100*t)))') cannot be evaluated at t = "),
    (["check", "exp(exp(exp(1000)))", "--against", "psi"], "expression 'exp(exp(exp(1000)))' cannot be evaluated"),
    (["check", "exp(t*10**999)", "--against", "psi"], "expression 'exp(t*10**999)' cannot be evaluated"),
    (["check", "t*1e-9999999", "--against", "psi"], "number 1e-9999999 at column 3 is not allowed"),
    (["predict", "--s2", "1e-9999999"], "s2: '1e-9999999' is out of range"),
    (["predict", "--weighting", "min-snr:gamma=1e99999"], "parameter 'gamma': '1e99999' is out of range"),
])
def test_out_of_reach_input_is_one_line_exit_2(capsys, args, message):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert message in one_error_line(err)


def test_huge_variance_does_not_leak_integer_printing_limits(capsys):
    code, out, err = run(capsys, "predict", "--s2", "1e308")
    assert "integer string conversion" not in out + err
    assert code == 0, err
    assert "(exact: rational, over 4300 digits)" in out
