import pytest
import sympy as sp

from memcross.theory.data import derived_gaussian_mmse, gaussian_mmse, generalizer_component_mean
from memcross.theory.derivation import derive
from memcross.theory.schedules import schedule_names
from memcross.theory.setting import Setting
from memcross.theory.targets import target_names
from memcross.theory.weightings import weighting_names

COMBOS = [
    (s, w, tg)
    for s in schedule_names()
    for w in weighting_names()
    if w != "custom" and (w != "edm" or s == "ve")
    for tg in target_names()
]


def _cover():
    """A few combinations in which every schedule, every weighting and every target appears at least
    once; each weighting meets a different schedule, and the schedule/target pairs do not repeat."""
    schedules, targets = schedule_names(), target_names()
    weightings = [w for w in weighting_names() if w != "custom"]
    cover = []
    for i, w in enumerate(weightings):
        s = "ve" if w == "edm" else schedules[i % len(schedules)]
        cover.append((s, w, targets[(i + i // len(schedules)) % len(targets)]))
    for s in schedules:  # should the schedule or target registries outgrow the weightings
        if all(c[0] != s for c in cover):
            cover.append((s, "elbo", targets[0]))
    for tg in targets:
        if all(c[2] != tg for c in cover):
            cover.append((schedules[0], "elbo", tg))
    return cover


COVER = _cover()


def test_cover_meets_every_schedule_weighting_and_target():
    assert set(COVER) <= set(COMBOS)
    for k, names in enumerate((schedule_names(), [w for w in weighting_names() if w != "custom"],
                               target_names())):
        assert {c[k] for c in COVER} == set(names)


# The full product takes minutes; the fast suite runs the cover above and the slow suite the rest.
@pytest.mark.parametrize("schedule, weighting, target", [
    c if c in COVER else pytest.param(*c, marks=pytest.mark.slow) for c in COMBOS])
def test_every_combination_verifies(schedule, weighting, target):
    # A three-point grid keeps the exhaustive sweep fast; the symbolic steps are the same.
    setting = Setting(schedule=schedule, weighting=weighting, target=target, time="points:0.1,0.5,0.9")
    report = derive(setting).verify()
    assert report.ok, report.describe()


@pytest.mark.parametrize("schedule", schedule_names())
@pytest.mark.parametrize("time", ["grid:0.001,0.999,26", "interval:0.001,0.999"])
def test_paper_grid_and_interval_verify(schedule, time):
    weighting = "edm" if schedule == "ve" else "elbo"
    report = derive(Setting(schedule=schedule, weighting=weighting, target="eps", time=time)).verify()
    assert report.ok, report.describe()


def test_custom_weighting_and_schedule_verify():
    s = Setting(schedule="custom", alpha="1 - t", sigma="t", weighting="custom", weight_expr="min(psi, 3)",
                target="eps")
    assert derive(s).verify().ok


@pytest.mark.parametrize("step", ["snr", "loss factor", "x0 weight", "gaussian mmse", "generalizer excess",
                                  "crossover condition", "solution", "A", "B", "result"])
def test_altered_step_fails_by_name(step):
    dv = derive(Setting(weighting="elbo", target="eps"))
    bad = dv.altered(step, dv.step(step).rhs + sp.Rational(1, 10**6))
    report = bad.verify()
    assert not report.ok
    assert report.failed_step == step
    assert f"step {step!r} failed" in report.describe()


def test_gaussian_mmse_is_derived_not_assumed():
    mean, mmse = derived_gaussian_mmse()
    assert sp.simplify(mmse - gaussian_mmse()) == 0
    assert sp.simplify(mean - generalizer_component_mean()) == 0


@pytest.mark.slow
def test_gaussian_mmse_against_sympy_stats():
    from sympy.stats import E, Normal

    from memcross.theory.data import mu, x
    from memcross.theory.symbols import alpha, s2, sigma

    u, z = Normal("u", 0, 1), Normal("z", 0, 1)
    x0 = mu + sp.sqrt(s2) * u
    f = generalizer_component_mean(point=alpha * x0 + sigma * z)
    assert sp.simplify(E((x0 - f) ** 2) - s2 * sigma**2 / (alpha**2 * s2 + sigma**2)) == 0
    assert x is not None


def test_text_and_latex_renderings():
    dv = derive(Setting())
    text = dv.text()
    assert "M*/N = 16508991/25000000" in text and "0.660359640000000" in text
    latex = dv.latex()
    assert latex.startswith("\\begin{align}") and latex.endswith("\\end{align}")
    assert "\\frac{16508991}{25000000}" in latex
    assert latex.count("\\\\\n") == len(dv.steps) - 1 + 1  # one more row: the decimal value


@pytest.mark.parametrize("kwargs", [
    {"time": "interval:0,1", "weighting": "min-snr:gamma=5"},
    {"schedule": "flow", "target": "v", "weighting": "min-snr:gamma=2", "time": "interval:0,1"},
    {"schedule": "flow", "weighting": "min-snr:gamma=5", "time": "interval:0.1,0.9"},
    {"schedule": "vp-linear", "weighting": "min-snr", "time": "interval:0.001,0.999"},
])
def test_kinked_weights_verify(kwargs):
    """Quadrature split at the kink of min(psi, gamma) checks the closed forms to 30 digits."""
    report = derive(Setting(**kwargs)).verify()
    assert report.ok, report.describe()
