import pytest
import sympy as sp

from memcross.theory.schedules import ScheduleError, custom_schedule, get_schedule, schedule_names
from memcross.theory.symbols import t


def test_vp_inverse_snr_is_t_squared():
    s = get_schedule("vp")
    assert sp.simplify(1 / (1 + s.psi * 1) - t**2) == 0


@pytest.mark.parametrize("name", ["vp", "vp-cosine", "vp-linear", "ve", "flow"])
def test_built_in_schedules_validate(name):
    s = get_schedule(name).validate()
    assert sp.simplify(s.alpha.subs(t, 0) - 1) == 0
    assert sp.simplify(s.sigma.subs(t, 0)) == 0
    assert sp.simplify(s.psi - s.alpha**2 / s.sigma**2) == 0


def test_cosine_and_linear_are_variance_preserving():
    for name in ("vp", "vp-cosine", "vp-linear"):
        s = get_schedule(name)
        assert sp.simplify(s.alpha**2 + s.sigma**2 - 1) == 0


def test_unknown_schedule_lists_known():
    with pytest.raises(ValueError, match="known schedules: vp, vp-cosine, vp-linear, ve, flow, custom"):
        get_schedule("cosine")
    assert schedule_names() == ["vp", "vp-cosine", "vp-linear", "ve", "flow"]


def test_custom_schedule_matches_built_in():
    custom = custom_schedule("sqrt(1 - t**2)", "t")
    assert sp.simplify(custom.psi - get_schedule("vp").psi) == 0


@pytest.mark.parametrize(
    "alpha, sigma, condition",
    [
        ("1 - t", "1 - t", "sigma_0 = 0"),
        ("2 - t", "t", "alpha_0 = 1"),
        ("1", "t*(t - 0.5)", "sigma > 0"),
        ("sqrt(1 - 4*t**2)", "t", "alpha must be real"),
        ("1", "t + s2", "name 's2'"),
    ],
)
def test_custom_schedule_names_the_failed_condition(alpha, sigma, condition):
    with pytest.raises((ScheduleError, ValueError), match=condition.replace("(", r"\(")):
        custom_schedule(alpha, sigma)


def test_custom_schedule_that_cannot_be_evaluated_is_refused_by_name():
    """cos of exp(exp(100 t)) would need 10^43 bits to reduce its argument: refused, not computed."""
    with pytest.raises(ScheduleError, match=r"schedule 'custom': sigma cannot be evaluated at t = .*cos of a number"):
        custom_schedule("1", "t*(2 + cos(exp(exp(100*t))))")
