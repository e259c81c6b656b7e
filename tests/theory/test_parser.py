import re
from fractions import Fraction

import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

from memcross.theory.parser import ExpressionError, parse_expression
from memcross.theory.symbols import psi, t

REFUSED = [
    "__import__('os').system('true')",
    "t.__class__",
    "(lambda: 1)()",
    "open('x')",
    "[t]*10**9",
    "'a'",
    "t if t else 1",
    "eval('1')",
    "exec('x=1')",
    "t[0]",
    "{t}",
    "t == 1",
    "True",
    "10**9**9",
    "t^2",
    "sqrt(t, 2)",
    "min(t)",
    "sqrt(x=t)",
    "foo",
    "",
    "a" * 3000,
]


@pytest.mark.parametrize("text", REFUSED)
def test_refuses_unsafe_or_unknown_constructs(text):
    with pytest.raises(ExpressionError):
        parse_expression(text)


def test_error_names_what_and_where():
    with pytest.raises(ExpressionError, match=r"attribute syntax at column 1"):
        parse_expression("t.__class__")
    with pytest.raises(ExpressionError, match=r"function 'open' at column 1 is not allowed"):
        parse_expression("open('x')")
    with pytest.raises(ExpressionError, match=r"name 'x' at column 5 is not allowed \(allowed names:"):
        parse_expression("t + x")


# Every built-in formula of the theory written as text, with the expression it must give.
BUILT_IN = {
    "sqrt(1 - t**2)": sp.sqrt(1 - t**2),
    "cos(pi*t/2)": sp.cos(sp.pi * t / 2),
    "sin(pi*t/2)": sp.sin(sp.pi * t / 2),
    "exp(-t**2*(20 - 0.1)/4 - t*0.1/2)": sp.exp(-(t**2) * sp.Rational(199, 40) - t / 20),
    "sqrt(1 - exp(-t**2*(20 - 0.1)/4 - t*0.1/2)**2)": sp.sqrt(1 - sp.exp(-(t**2) * sp.Rational(199, 40) - t / 20) ** 2),
    "1 - t": 1 - t,
    "min(psi, 5)": sp.Min(psi, 5),
    "1/(1 + exp(log(psi) - 1))": 1 / (1 + sp.exp(sp.log(psi) - 1)),
    "sigmoid(-log(psi))": 1 / (1 + sp.exp(sp.log(psi))),
    "max(abs(t - 0.5), tanh(t))": sp.Max(sp.Abs(t - sp.Rational(1, 2)), sp.tanh(t)),
    "atan(t) + tan(t)": sp.atan(t) + sp.tan(t),
    "-t**-2 + +1": 1 - t**-2,
    "1e-3": sp.Rational(1, 1000),
    "e**t": sp.exp(t),
}


@pytest.mark.parametrize("text", list(BUILT_IN))
def test_accepts_built_in_formulas(text):
    assert sp.simplify(parse_expression(text) - BUILT_IN[text]) == 0


def test_decimals_are_exact():
    assert parse_expression("0.001") == sp.Rational(1, 1000)
    assert parse_expression("0.1 + 0.2") == sp.Rational(3, 10)


@given(st.integers(-10**6, 10**6), st.integers(1, 10**6))
def test_rational_literals_round_trip(p, q):
    assert parse_expression(f"{p}/{q}") == sp.Rational(p, q)


@given(st.text(alphabet="t+-*/()0123456789. _abcxyz'[]", max_size=25))
def test_never_raises_anything_but_expression_error(text):
    try:
        parse_expression(text)
    except ExpressionError:
        pass


@pytest.mark.parametrize("text, message", [
    ("t*1e-9999999", "number 1e-9999999 at column 3 is not allowed"),
    ("2**3000", "exponent 3000"),
    ("(10**999)**20", "power with about 19980 digits"),
    ("t**exp(exp(1000))", "exponent exp(exp(1000))"),
])
def test_numbers_beyond_reach_are_refused(text, message):
    with pytest.raises(ExpressionError, match=re.escape(message)):
        parse_expression(text)


def test_decimal_fraction_bounds():
    from memcross.theory.parser import NumberRangeError, decimal_fraction

    assert decimal_fraction("1e308", "s2") == 10**308
    assert decimal_fraction("-2.5e-3", "s2") == Fraction(-1, 400)
    with pytest.raises(NumberRangeError, match="s2: '1e-9999999' is out of range"):
        decimal_fraction("1e-9999999", "s2")
    with pytest.raises(ValueError, match="s2 must be a number"):
        decimal_fraction("1e", "s2")
