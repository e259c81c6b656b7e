"""A safe parser for user expressions: Python's ``ast`` with an allow-list, built into sympy.

User text (custom schedules, custom weights, ``memcross check``) is never handed to ``eval``,
``sympify`` or ``parse_expr``. Only numbers, declared names, ``+ - * / **`` (unary ``+``/``-``
too) and calls of a fixed set of functions are accepted; anything else is refused with an error
that says what was refused and at which column.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping
from fractions import Fraction

import mpmath
import sympy as sp

from memcross.theory.symbols import USER_SYMBOLS

MAX_LENGTH = 2000
MAX_DEPTH = 60
MAX_EXPONENT = 1000
MAX_DIGITS = 10_000


class NumberRangeError(ValueError):
    """A number too large (or too finely resolved) to be handled as an exact rational."""


_DECIMAL = re.compile(r"\s*[+-]?(?P<int>[0-9_]*)(?:\.(?P<frac>[0-9_]*))?(?:[eE](?P<exp>[+-]?[0-9_]+))?\s*")


def decimal_fraction(text: str, what: str) -> Fraction:
    """``text`` (``3``, ``-0.25``, ``1e-3``, ``1/3``) as an exact fraction, refusing numbers too
    large to handle exactly: a decimal exponent beyond +-``MAX_EXPONENT`` or more than
    ``MAX_DIGITS`` digits (``1e-9999999`` would otherwise build a ten-million-digit integer).
    Raises ``ValueError`` naming ``what``."""
    text = str(text)
    parts = text.split("/")
    if len(parts) > 2 or not text.strip():
        raise ValueError(f"{what} must be a number, got {text!r}")
    for part in parts:
        m = _DECIMAL.fullmatch(part)
        if m is None or not (m["int"] or m["frac"]):
            raise ValueError(f"{what} must be a number, got {text!r}")
        exponent = int(m["exp"].replace("_", "")) if m["exp"] else 0
        digits = len((m["int"] or "") + (m["frac"] or ""))
        if abs(exponent) > MAX_EXPONENT or digits > MAX_DIGITS:
            raise NumberRangeError(
                f"{what}: {text!r} is out of range (at most {MAX_DIGITS} digits and a decimal exponent "
                f"within +-{MAX_EXPONENT})"
            )
    try:
        return Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{what} must be a number, got {text!r}") from None


def _short(expr: sp.Expr) -> str:
    text = sp.sstr(expr) if not (expr.is_Integer and abs(expr) > 10**50) else f"~10^{len(str(abs(expr.p))) - 1}"
    return text if len(text) <= 40 else text[:37] + "..."


def _log10_abs(x: sp.Expr) -> float | None:
    """log10 of |x| for a nonzero real number (big exact integers and rationals included); None
    when it cannot be told quickly (an overflowing value, say)."""
    try:
        if x.is_Rational:
            return math.log10(abs(x.p)) - math.log10(x.q)
        value = sp.N(x, 15)
        if not value.is_Float or not value.is_finite:
            return None
        return float(mpmath.log10(abs(value._to_mpmath(53))))
    except (ArithmeticError, ValueError, TypeError):
        return None


def _sigmoid(x):
    return 1 / (1 + sp.exp(-x))


#: The functions a user expression may call, with their arity (``None``: two or more).
FUNCTIONS: dict[str, tuple[object, int | None]] = {
    "sqrt": (sp.sqrt, 1),
    "exp": (sp.exp, 1),
    "log": (sp.log, 1),
    "sin": (sp.sin, 1),
    "cos": (sp.cos, 1),
    "tan": (sp.tan, 1),
    "atan": (sp.atan, 1),
    "tanh": (sp.tanh, 1),
    "sigmoid": (_sigmoid, 1),
    "abs": (sp.Abs, 1),
    "min": (sp.Min, None),
    "max": (sp.Max, None),
}
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "e": sp.E, "E": sp.E}

_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}


class ExpressionError(ValueError):
    """A user expression was refused; the message says what and where."""


def _where(node: ast.AST) -> str:
    col = getattr(node, "col_offset", None)
    return f" at column {col + 1}" if col is not None else ""


class _Builder:
    def __init__(self, text: str, names: Mapping[str, sp.Expr]):
        self.text = text
        self.names = names

    def refuse(self, what: str, node: ast.AST) -> ExpressionError:
        return ExpressionError(f"expression {self.text!r}: {what}{_where(node)} is not allowed")

    def build(self, node: ast.AST, depth: int = 0) -> sp.Expr:
        if depth > MAX_DEPTH:
            raise self.refuse(f"nesting deeper than {MAX_DEPTH}", node)
        if isinstance(node, ast.Constant):
            return self.number(node)
        if isinstance(node, ast.Name):
            if node.id in self.names:
                return self.names[node.id]
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            allowed = ", ".join(sorted(set(self.names) | set(CONSTANTS)))
            raise ExpressionError(
                f"expression {self.text!r}: name {node.id!r}{_where(node)} is not allowed "
                f"(allowed names: {allowed})"
            )
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self.build(node.operand, depth + 1)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            left = self.build(node.left, depth + 1)
            right = self.build(node.right, depth + 1)
            if isinstance(node.op, ast.Pow):
                self.check_power(left, right, node)
            if isinstance(node.op, ast.Div) and right == 0:
                raise ExpressionError(f"expression {self.text!r}: division by zero{_where(node)}")
            return _BINOPS[type(node.op)](left, right)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
            raise self.refuse("operator '^' (write powers as '**')", node)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        raise self.refuse(f"{type(node).__name__.lower()} syntax", node)

    def number(self, node: ast.Constant) -> sp.Expr:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.refuse(f"constant {value!r}", node)
        text = ast.get_source_segment(self.text, node) or repr(value)
        if isinstance(value, float):
            try:
                frac = decimal_fraction(text, "number")
            except ValueError:
                raise ExpressionError(
                    f"expression {self.text!r}: number {text}{_where(node)} is not allowed (at most {MAX_DIGITS} "
                    f"digits and a decimal exponent within +-{MAX_EXPONENT})"
                ) from None
            return sp.Rational(frac.numerator, frac.denominator)
        return sp.Integer(value)

    def check_power(self, base: sp.Expr, exponent: sp.Expr, node: ast.AST) -> None:
        if not (exponent.is_number and exponent.is_real):
            return
        size = _log10_abs(exponent)
        if size is None or size > math.log10(MAX_EXPONENT):
            raise self.refuse(f"exponent {_short(exponent)} (|exponent| <= {MAX_EXPONENT})", node)
        if base.is_number and base.is_real and base != 0:
            base_size = _log10_abs(base)
            digits = None if base_size is None else 10**size * abs(base_size)
            if digits is None or digits > MAX_DIGITS:
                about = "too many" if digits is None else f"about {digits:.0f}"
                raise self.refuse(f"power with {about} digits (at most {MAX_DIGITS})", node)

    def call(self, node: ast.Call, depth: int) -> sp.Expr:
        if not isinstance(node.func, ast.Name):
            raise self.refuse("calling something other than a plain function name", node)
        name = node.func.id
        if name not in FUNCTIONS:
            allowed = ", ".join(FUNCTIONS)
            raise ExpressionError(
                f"expression {self.text!r}: function {name!r}{_where(node)} is not allowed "
                f"(allowed functions: {allowed})"
            )
        if node.keywords:
            raise self.refuse("keyword arguments", node)
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.refuse("starred arguments", node)
        func, arity = FUNCTIONS[name]
        args = [self.build(a, depth + 1) for a in node.args]
        if arity is None and len(args) < 2:
            raise self.refuse(f"{name}() with fewer than 2 arguments", node)
        if arity is not None and len(args) != arity:
            raise self.refuse(f"{name}() with {len(args)} arguments (it takes {arity})", node)
        return func(*args)


def parse_expression(text: str, names: Mapping[str, sp.Expr] | None = None) -> sp.Expr:
    r"""Parse user text into a sympy expression, allowing only safe, known constructs.

    ``names`` maps the names the text may use to expressions (default: the project's symbols,
    ``t``, ``s2``, ``d``, ``K``, ``N``, ``M``, ``C``, ``psi``, ``alpha``, ``sigma``, ...).
    Decimal numbers become exact rationals (``0.001`` is :math:`1/1000`).

    >>> parse_expression("sqrt(1 - t**2)")
    sqrt(1 - t**2)
    >>> parse_expression("0.5*t")
    t/2
    >>> parse_expression("t.__class__")
    Traceback (most recent call last):
    ...
    memcross.theory.parser.ExpressionError: expression 't.__class__': attribute syntax at column 1 is not allowed
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expression must be a string, got {type(text).__name__}")
    if not text.strip():
        raise ExpressionError("expression is empty")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is {len(text)} characters long (at most {MAX_LENGTH})")
    text = text.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        col = f" at column {exc.offset}" if exc.offset else ""
        raise ExpressionError(f"expression {text!r} is not valid syntax{col}") from None
    allowed = dict(USER_SYMBOLS if names is None else names)
    return _Builder(text, allowed).build(tree.body)
