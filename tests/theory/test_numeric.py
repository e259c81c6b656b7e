"""Numbers from theory expressions: quadrature at kinks, cancellation near t = 0, held integrals
that printing never evaluates, time limits that nest and never decide a number."""

import sys
import threading
import time

import mpmath
import pytest
import sympy as sp
from sympy.core import evalf as sympy_evalf

from memcross.theory.crossover import crossover
from memcross.theory.derivation import derive, show_text
from memcross.theory.measures import TimeLimitReached, time_limit, try_integrate
from memcross.theory.numeric import EvaluationError, Evaluator, TimeIntegral, evaluate, integrate
from memcross.theory.schedules import get_schedule, simplest
from memcross.theory.setting import Setting
from memcross.theory.symbols import C, t

VP_PSI = get_schedule("vp").psi
COSINE_PSI = get_schedule("vp-cosine").psi


def test_quadrature_splits_at_kinks():
    value, error = integrate(sp.Min(t, 1 - t), 0, 1, dps=30)
    assert abs(value - mpmath.mpf(1) / 4) < mpmath.mpf(10) ** -35 and error < 1e-30
    # min(psi, 5) on the vp schedule: kink at t = 1/sqrt(6), closed form known
    value, error = integrate(sp.Min(VP_PSI, 5), sp.Rational(1, 10), 1, dps=30)
    with mpmath.workdps(40):
        k = 1 / mpmath.sqrt(6)
        exact = 5 * (k - mpmath.mpf(1) / 10) + (1 / k + k - 2)  # int (1/t^2 - 1) from k to 1
        assert abs(value - exact) < mpmath.mpf(10) ** -30


def test_closed_form_and_quadrature_give_the_same_number():
    """Whether sympy integrates within its time budget or not, the number is the same."""
    integrand = sp.Min(VP_PSI, 5) / (1 + VP_PSI)
    closed = try_integrate(integrand, 0, 1, seconds=60)
    assert not closed.has(sp.Integral)
    held = TimeIntegral(integrand, (t, 0, 1))
    with mpmath.workdps(40):
        a, _ = evaluate(closed, {}, 30)
        b, err = held.numeric(30)
        assert abs(a - b) < mpmath.mpf(10) ** -29 and err < 1e-29


def test_crossover_value_does_not_depend_on_the_run():
    setting = Setting(schedule="vp-cosine", weighting="min-snr:gamma=5", time="interval:0.01,0.99")
    values = {str(sp.N(crossover(setting).ratio, 28)) for _ in range(3)}
    assert values == {"0.8365159271906267001267709318"}


def test_evaluator_survives_cancellation_near_zero():
    f = Evaluator(COSINE_PSI)  # (1 + cos pi t)/(1 - cos pi t) once simplified: 1/0 at tiny t in plain mpmath
    with mpmath.workdps(40):
        x = mpmath.mpf(10) ** -45
        assert abs(f(x) * (mpmath.pi * x / 2) ** 2 - 1) < mpmath.mpf(10) ** -30
    g = Evaluator(1 / (1 - sp.exp(-t)))
    with mpmath.workdps(30):
        assert abs(g(mpmath.mpf(10) ** -40) * mpmath.mpf(10) ** -40 - 1) < mpmath.mpf(10) ** -25


def test_astronomical_arguments_are_refused_not_computed():
    with pytest.raises(EvaluationError, match="exp of a number of about 2"):
        evaluate(sp.exp(sp.exp(sp.exp(100 * t))), {t: sp.Rational(1, 2)})
    with pytest.raises(EvaluationError, match="beyond 10"):
        evaluate(sp.exp(t * 10**999), {t: sp.Rational(1, 2)})


def test_evaluate_reaches_the_precision_through_cancellation():
    value, error = evaluate((sp.exp(t) - 1 - t) / t**2, {t: sp.Rational(1, 10**20)}, dps=30)
    assert abs(value - mpmath.mpf(1) / 2) < mpmath.mpf(10) ** -19 and error < 1e-30


def test_held_integral_is_not_a_number_to_sympy():
    held = TimeIntegral(sp.Min(t, 1 - t), (t, 0, 1))
    assert held.is_number is False and held.is_positive is None
    assert str(held) == "Integral(Min(t, 1 - t), (t, 0, 1))"
    assert str(sp.N(1 + held, 20)) == "1.2500000000000000000"


def test_printing_and_simplifying_never_evaluate_an_integral(monkeypatch):
    """``show_text`` of a ratio of held integrals used to order its terms by evaluating them."""
    setting = Setting(schedule="vp-linear", weighting="min-snr", time="interval:0.001,0.999")
    cross = crossover(setting)
    symbolic = crossover(setting, coefficient=C)
    dv = derive(setting)
    assert cross.ratio.has(TimeIntegral)

    def refuse(*args, **kwargs):
        raise AssertionError("an integral was evaluated")

    sp.N(1)  # sympy builds its evaluation table on first use
    monkeypatch.setattr(sp.Integral, "_eval_evalf", refuse, raising=False)
    monkeypatch.setattr(TimeIntegral, "_eval_evalf", refuse)
    monkeypatch.setitem(sympy_evalf.evalf_table, sp.Integral, refuse)
    start = time.monotonic()
    assert "Integral(" in show_text(cross.ratio)
    assert "Integral(" in show_text(symbolic.ratio)
    assert simplest(symbolic.ratio * C).has(TimeIntegral)
    assert "Integral(" in dv.text()
    assert "\\int" in dv.latex()
    assert time.monotonic() - start < 9


def test_time_limits_nest():
    inner_caught = []
    start = time.monotonic()
    outer = time_limit(0.3)
    with pytest.raises(TimeLimitReached) as info:
        with outer:
            inner = time_limit(30)
            try:
                with inner:
                    while time.monotonic() - start < 5:
                        pass
            except TimeLimitReached as exc:
                inner_caught.append(exc.limit)
                raise
    assert info.value.limit is outer and inner_caught == [outer]
    assert time.monotonic() - start < 2
    # an inner limit that ends first does not cancel the outer one
    start = time.monotonic()
    with pytest.raises(TimeLimitReached):
        with time_limit(0.4):
            try:
                with time_limit(0.1):
                    while True:
                        pass
            except TimeLimitReached:
                pass
            while time.monotonic() - start < 5:
                pass
    assert time.monotonic() - start < 2


def test_time_limit_without_a_timer():
    out = {}

    def work():
        with time_limit(0.01, required=False):  # no timer in a thread: runs to the end
            time.sleep(0.05)
            out["done"] = True
        try:
            with time_limit(0.01):
                out["ran"] = True
        except TimeLimitReached as exc:
            out["refused"] = exc.limit is None

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert out == {"done": True, "refused": True}


def test_time_limit_does_not_fire_inside_garbage_collector_callbacks():
    """Raised there it would be swallowed (or break pytest's unraisable-exception hook)."""
    import gc

    finished = []

    def slow_callback(phase, info):
        if phase == "start" and not finished:
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                pass
            finished.append(True)

    gc.callbacks.append(slow_callback)
    try:
        with pytest.raises(TimeLimitReached):
            with time_limit(0.05):
                gc.collect()
                while True:
                    pass
    finally:
        gc.callbacks.remove(slow_callback)
    assert finished == [True]


def test_interrupted_code_cannot_leave_mpmath_precision_changed():
    before = mpmath.mp.prec
    with pytest.raises(TimeLimitReached):
        with time_limit(0.05):
            mpmath.mp.prec = 10  # as code interrupted between setting and restoring it would
            while True:
                pass
    assert mpmath.mp.prec == before


def test_an_alarm_while_a_limit_is_left_cannot_leave_the_timer_running(monkeypatch):
    """The alarm of an expired limit arriving inside ``__exit__`` (before the timer is stopped)
    used to raise there: the limit stayed on the stack with its repeating timer armed, and a later
    alarm killed the process (``derive`` exited by SIGALRM under load). It is ignored there now."""
    import signal

    from memcross.theory import measures

    real = signal.setitimer
    fired = []

    def alarm_first(which, seconds, interval=0.0):
        if seconds == 0 and not fired:  # __exit__ stopping the timer: the alarm comes first
            fired.append(True)
            measures.time_limit._handler(signal.SIGALRM, sys._getframe())
        return real(which, seconds, interval)

    monkeypatch.setattr(signal, "setitimer", alarm_first)
    lim = time_limit(10)
    with lim:
        lim.deadline = 0.0  # expired (as if the block had run 10 s) just as it ends
    assert fired == [True] and measures.time_limit._active == [] and not lim.armed
    assert signal.getsignal(signal.SIGALRM) is not measures.time_limit._handler  # handler restored
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # no timer left running


def test_an_alarm_inside_a_weakref_callback_is_not_raised_there():
    """Python swallows exceptions raised in weak-reference callbacks ("Exception ignored in ...
    WeakKeyDictionary ... remove"): the handler waits for the next alarm instead."""
    import _weakrefset

    from memcross.theory import measures

    lim = time_limit(0.0001)
    with pytest.raises(TimeLimitReached):
        with lim:
            time.sleep(0.001)

            code = compile("def remove(frame):\n    return handler(14, frame)\n", _weakrefset.__file__, "exec")
            scope = {"handler": measures.time_limit._handler}
            exec(code, scope)
            assert scope["remove"](sys._getframe()) is None  # not raised inside the "callback"
            while True:
                pass
