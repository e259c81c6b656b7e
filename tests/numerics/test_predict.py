import subprocess
import sys

import mpmath
import numpy as np
import pytest

from memcross.numerics import coefficient, coefficient_same_component, fast_critical_ratios, predict, sweep
from memcross.theory import Setting, critical_ratio


def test_paper_grid_uniform_x0():
    p = predict()
    assert p.value_text.startswith("0.66035964")
    assert abs(p.value - 0.660359640) < 1e-12
    assert p.error == 0.0
    exact = critical_ratio(Setting())
    with mpmath.workdps(40):
        assert abs(mpmath.mpf(p.value_text) - mpmath.mpf(exact.p) / exact.q) < mpmath.mpf(10) ** -28


def test_paper_grid_uniform_eps_and_dominance_warning():
    p = predict(Setting(weighting="eps-uniform"))
    assert p.value_text.startswith("0.99998284")  # 0.99998285 to 8 digits
    assert round(p.value, 8) == 0.99998285
    assert p.max_point_weight > 0.99
    assert any("one time point" in n for n in p.notes)


def test_one_minus_one_third_c_to_40_digits():
    for c in ("1", "3/2", "2"):
        p = predict(Setting(time="interval:0,1", C=c), dps=50)
        with mpmath.workdps(60):
            expected = 1 - 1 / (3 * mpmath.mpf(mpmath.fraction(*map(int, (c + "/1").split("/")[:2]))))
            assert abs(mpmath.mpf(p.value_text) - expected) < mpmath.mpf(10) ** -40


def test_quadrature_path_agrees_across_precisions():
    setting = Setting(schedule="vp-linear", weighting="min-snr", time="interval:0.001,0.999")
    values = {dps: predict(setting, dps=dps) for dps in (30, 50, 100)}
    assert "Integral" not in values[30].value_text
    with mpmath.workdps(110):
        a, b, c = (mpmath.mpf(values[k].value_text) for k in (30, 50, 100))
        assert abs(a - c) < mpmath.mpf(10) ** -28
        assert abs(b - c) < mpmath.mpf(10) ** -48
    assert values[30].error < 1e-25


FAST_S2 = ("0.25", "1", "4")
FAST_SCHEDULES = ("vp", "flow", "vp-cosine", "ve")
FAST_WEIGHTINGS = ("x0-uniform", "elbo", "min-snr")
FAST_TIMES = ("grid:0.001,0.999,26", "interval:0.001,0.999")


def _fast_path_agrees(settings):
    fast = sweep(settings)
    for s, f in zip(settings, fast):
        exact = predict(s)
        assert abs(f.value - exact.value) <= 1e-12 * abs(exact.value), (s, f.value, exact.value)


def test_fast_path_agrees_with_mpmath():
    # every schedule x weighting x time once; the spreads s2 take turns, so that each meets every
    # schedule and every weighting
    _fast_path_agrees([Setting(s2=FAST_S2[(a + b + c) % len(FAST_S2)], schedule=sch, weighting=w, time=tm)
                       for a, sch in enumerate(FAST_SCHEDULES)
                       for b, w in enumerate(FAST_WEIGHTINGS)
                       for c, tm in enumerate(FAST_TIMES)])


@pytest.mark.slow
def test_fast_path_agrees_with_mpmath_at_every_spread():
    # the full product, three times the settings of the test above
    _fast_path_agrees([Setting(s2=s2, schedule=sch, weighting=w, time=tm)
                       for s2 in FAST_S2 for sch in FAST_SCHEDULES for w in FAST_WEIGHTINGS for tm in FAST_TIMES])


def test_fast_ratios_vectorized():
    s2 = np.geomspace(0.1, 10, 50)
    out = fast_critical_ratios(Setting(), s2)
    assert out.value.shape == (50,)
    assert np.all(np.diff(out.value) > 0)  # more spread per component, later memorization


def test_interval_needs_t_min_for_divergent_weights():
    with pytest.raises(ValueError, match="t_min > 0"):
        predict(Setting(weighting="eps-uniform", time="interval:0,1"))


def test_negative_weight_refused():
    with pytest.raises(ValueError, match="negative"):
        predict(Setting(weighting="custom", weight_expr="t - 0.5"))


@pytest.mark.parametrize("kwargs, message", [({"dps": 3}, "dps must be"), ({"method": "exact"}, "known methods")])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        predict(Setting(), **kwargs)


def _nearest_of_m(d, m, draws, rng):
    z = rng.standard_normal((draws, 1, d))
    others = rng.standard_normal((draws, m, d))
    return (((z - others) ** 2).sum(axis=2).min(axis=1) / d).mean()


@pytest.mark.parametrize("d", [30, 50, 100])
@pytest.mark.parametrize("m", [1, 2, 5, 13])
def test_coefficient_matches_monte_carlo(d, m):
    rng = np.random.default_rng(1000 * d + m)
    mc = _nearest_of_m(d, m, 20000, rng)
    assert abs(coefficient_same_component(d, m) - mc) / mc < 0.03


def test_coefficient_tends_to_two():
    values = [coefficient_same_component(d, 5) for d in (10, 100, 1000, 10000)]
    assert all(a < b for a, b in zip(values, values[1:]))
    assert 1.95 < values[-1] < 2.0


def test_coefficient_falls_with_m_and_bad_input():
    assert coefficient_same_component(50, 1) > coefficient_same_component(50, 2) > coefficient_same_component(50, 13)
    with pytest.raises(ValueError, match="M must be in 1..N"):
        coefficient(50, 12, 200, 201)
    with pytest.raises(ValueError, match="K must be <= N"):
        coefficient(50, 300, 200, 100)
    with pytest.raises(ValueError, match="s2 must be positive"):
        coefficient(50, 12, 200, 100, s2=-1)


def test_finite_d_prediction_near_exact_crossover():
    p = predict(Setting(d=50, K=12, N=200), method="finite-d")
    assert abs(p.value - 0.80) < 0.05
    assert 1.3 < p.coefficient < 1.6


def test_import_does_not_load_torch():
    code = "import sys, memcross, memcross.numerics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cosine_min_snr_on_the_whole_interval():
    """(1 + cos pi t)/(1 - cos pi t) rounds to 1/0 at tiny t unless evaluated with more digits."""
    p = predict(Setting(schedule="vp-cosine", weighting="min-snr:gamma=5", time="interval:0,1"))
    assert p.value_text.startswith("0.84054056542099267734")
    assert p.error < 1e-30


@pytest.mark.parametrize("weighting", ["min-snr:gamma=5", "sigmoid"])
def test_bounded_weights_on_the_whole_interval_are_not_refused(weighting):
    """1 - exp(-tiny) cancels in float64; the weight itself is finite at t -> 0."""
    p = predict(Setting(schedule="vp-linear", weighting=weighting, time="interval:0,1"))
    assert 0 < p.value < 1 and p.error < 1e-25
    fast = fast_critical_ratios(Setting(schedule="vp-linear", weighting=weighting, time="interval:0,1"), [1.0])
    assert abs(fast.value[0] - p.value) < 1e-10


def test_finite_d_record_states_its_real_precision():
    p = predict(Setting(), method="finite-d", dps=30)
    assert 1e-7 < p.error < 1e-4
    assert p.dps == len(p.value_text.replace("0.", "", 1)) <= 6
    assert abs(float(p.value_text) - p.value) <= 10 * p.error


def test_closed_forms_with_absurd_constants_are_refused_by_name():
    with pytest.raises(ValueError, match=r"schedule 'custom' \(alpha = '1-t', sigma = 't\*exp\(exp\(exp\(100\*t\)\)\)'\)"):
        predict(Setting(schedule="custom", alpha="1-t", sigma="t*exp(exp(exp(100*t)))"))


def test_fast_path_does_not_depend_on_mpmath_global_precision():
    setting = Setting(schedule="flow", weighting="min-snr", time="interval:0.001,0.999", s2="0.25")
    reference = fast_critical_ratios(setting, [0.25]).value[0]
    saved = mpmath.mp.prec
    try:
        mpmath.mp.prec = 12
        lowered = fast_critical_ratios(setting, [0.25]).value[0]
    finally:
        mpmath.mp.prec = saved
    assert lowered == reference
    assert abs(reference - predict(setting).value) < 1e-12


def test_a_logarithmic_divergence_is_refused_not_integrated():
    """vp-linear's ELBO weight grows like 1/t at t = 0: quadrature returned a finite number and
    M*/N = 1.0 to "30 digits"; it is refused as not integrable, and the same weight on an interval
    that stops short of 0 is predicted."""
    with pytest.raises(ValueError, match=r"'elbo' is not integrable on 'interval:0,1' .* at t = 0"):
        predict(Setting(schedule="vp-linear", weighting="elbo", time="interval:0,1"))
    assert 0.99 < predict(Setting(schedule="vp-linear", weighting="elbo", time="interval:0.001,1")).value < 1


def test_float64_roundoff_is_not_a_negative_weight():
    """The ELBO weight of vp-linear is 1e-15-negative in float64 near t = 0 (cancellation); only a
    weight negative at 60 digits is refused."""
    with pytest.raises(ValueError, match="negative at t = 0.001"):
        predict(Setting(weighting="custom", weight_expr="t - 0.5"))
    with pytest.raises(ValueError, match="not integrable"):  # not "negative"
        predict(Setting(schedule="vp-linear", weighting="elbo", time="interval:0,1"))


def test_finite_d_bisection_finds_the_same_root_as_every_size(monkeypatch):
    """Past ALL_SIZES_N the finite-d root bisects; on a setting both can take, they agree."""
    predict_module = sys.modules["memcross.numerics.predict"]
    setting = Setting(N=3000)
    every = predict_module.predict(setting, "finite-d")
    monkeypatch.setattr(predict_module, "ALL_SIZES_N", 100)
    bisected = predict_module.predict(setting, "finite-d")
    assert bisected.value == every.value and bisected.coefficient == every.coefficient
    assert abs(bisected.error - every.error) < 1e-9


def test_finite_d_reaches_a_million_points():
    record = predict(Setting(N=1_000_000), "finite-d")
    assert 0.5 < record.value < 0.7 and record.error < 1e-4
