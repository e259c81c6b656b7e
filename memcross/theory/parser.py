"""A safe parser for user expressions: Python's ``ast`` with an allow-list, built into sympy.

User text (custom schedules, custom weights, ``memcross check``) is never handed to ``eval``,
``sympify`` or ``parse_expr``. Only numbers, declared names, ``+ - * / **`` (unary ``+``/``-``
too) and calls of a fixed set of functions are accepted; anything else is refused with an error
that says what was refused and at which column.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from fractions import Fraction

import sympy as sp

from memcross.theory.symbols import USER_SYMBOLS

MAX_LENGTH = 2000
MAX_DEPTH = 60
MAX_EXPONENT = 1000
MAX_DIGITS = 10_000


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
            if not math.isfinite(value):
                raise self.refuse(f"non-finite number {text}", node)
            frac = Fraction(text.replace("_", ""))
            return sp.Rational(frac.numerator, frac.denominator)
        return sp.Integer(value)

    def check_power(self, base: sp.Expr, exponent: sp.Expr, node: ast.AST) -> None:
        if exponent.is_number and exponent.is_real:
            if abs(exponent) > MAX_EXPONENT:
                raise self.refuse(f"exponent {exponent} (|exponent| <= {MAX_EXPONENT})", node)
            if base.is_number and base.is_real and base != 0:
                digits = float(abs(exponent)) * abs(math.log10(abs(float(base))))
                if digits > MAX_DIGITS:
                    raise self.refuse(f"power with about {digits:.0f} digits", node)

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
