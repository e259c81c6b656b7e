import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from memcross.theory.schedules import get_schedule, schedule_names
from memcross.theory.symbols import t
from memcross.theory.targets import get_target, target_names, x0, x_t
from memcross.theory.weightings import convert_weight, get_weighting, weighting_names

SCHEDULES = schedule_names()


def expected_factors(s):
    a, sg, da, ds = s.alpha, s.sigma, s.dalpha, s.dsigma
    return {
        "x0": sp.Integer(1),
        "eps": s.psi,
        "score": a**2 / sg**4,
        "velocity": a**2 * (ds / sg - da / a) ** 2,
        "v": (a**2 + sg**2) ** 2 / sg**2,
    }


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("target", ["x0", "eps", "score", "velocity", "v"])
def test_loss_factors_match_the_table(schedule, target):
    s = get_schedule(schedule)
    derived = get_target(target).loss_factor(s)
    expected = expected_factors(s)[target]
    diff = sp.simplify(derived - expected)
    if diff != 0:  # exp-heavy schedules: fall back to exact evaluation at rational points
        for point in (sp.Rational(1, 7), sp.Rational(1, 2), sp.Rational(9, 10)):
            assert abs(sp.N(diff.subs(t, point), 40)) < 1e-35
    assert True


@pytest.mark.parametrize("target", target_names())
def test_target_relation_round_trips(target):
    tg = get_target(target)
    assert sp.simplify(tg.to_x0(tg.from_x0()) - x0) == 0
    value = sp.Symbol("f", real=True)
    assert sp.simplify(tg.from_x0(tg.to_x0(value)) - value) == 0
    assert not tg.loss_factor().has(x_t)


def test_elbo_on_eps_for_vp():
    s = get_schedule("vp")
    w = get_weighting("elbo").on_stated_target(s)
    assert sp.simplify(w - 1 / (t * (1 - t**2))) == 0
    assert sp.simplify(w - (-sp.diff(sp.log(s.psi), t) / 2)) == 0


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_elbo_is_minus_half_derivative_of_log_snr(schedule):
    s = get_schedule(schedule)
    w = get_weighting("elbo").on_stated_target(s)
    expected = s.dsigma / s.sigma - s.dalpha / s.alpha
    for point in (sp.Rational(1, 5), sp.Rational(1, 2), sp.Rational(4, 5)):
        assert abs(sp.N((w - expected).subs(t, point), 40)) < 1e-30


def test_training_weighting_is_psi():
    s = get_schedule("vp")
    assert sp.simplify(get_weighting("eps-uniform").x0_weight(s) - s.psi) == 0
    assert sp.simplify(get_weighting("uniform", target="eps").x0_weight(s) - s.psi) == 0


def test_named_weightings_in_x0_units():
    vp, ve = get_schedule("vp"), get_schedule("ve")
    assert get_weighting("min-snr:gamma=5").x0_weight(vp) == sp.Min(vp.psi, 5)
    sd = sp.Rational(1, 2)
    assert sp.simplify(get_weighting("edm").x0_weight(ve) - (t**2 + sd**2) / (t * sd) ** 2) == 0
    sig = get_weighting("sigmoid:b=0").x0_weight(vp)
    assert sp.simplify(sig - vp.psi / (1 + vp.psi)) == 0
    custom = get_weighting("custom", target="eps", expression="1/psi").x0_weight(vp)
    assert custom == 1


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(SCHEDULES), st.sampled_from(target_names()), st.sampled_from(target_names()))
def test_weight_conversion_round_trips(schedule, f, g):
    s = get_schedule(schedule)
    w = sp.Function("w")(t)
    back = convert_weight(convert_weight(w, f, g, s), g, f, s)
    assert sp.simplify(back - w) == 0


def test_bad_weighting_input():
    with pytest.raises(ValueError, match="known weightings: x0-uniform"):
        get_weighting("snr")
    with pytest.raises(ValueError, match="unknown parameter 'beta'"):
        get_weighting("min-snr:beta=2")
    with pytest.raises(ValueError, match="gamma must be positive"):
        get_weighting("min-snr:gamma=-1")
    with pytest.raises(ValueError, match="needs a variance-exploding schedule"):
        get_weighting("edm").x0_weight(get_schedule("vp"))
    with pytest.raises(ValueError, match="known targets"):
        get_target("noise")
    assert "custom" in weighting_names()
