r"""Fitting LaTeX output to the page: width estimates and a derivation layout that breaks.

LaTeX cannot break a display line or a table row by itself, so the widths are estimated here,
from the font metrics of Computer Modern at 10 pt (the ``article`` default), and the output is laid
out to fit a text width of :data:`TEXT_WIDTH` (345 pt, ``article`` at 10 pt on A4 or letter):

- :func:`math_width` estimates the width of a math formula as sympy prints it (fractions stack,
  scripts shrink, operators get their spacing). It errs on the wide side.
- :func:`align_block` lays out ``lhs = rhs`` rows with a short text before each one as
  ``\intertext`` (so the block breaks across pages between rows and the text wraps inside the
  margin), splits a right-hand side that is too wide at its top-level terms (continuation lines
  indented, numbered on the last line), and shows a piece that is still too wide in text style
  (smaller fractions and limits).
- :func:`text_width` estimates the width of plain text (table cells, headers).
"""

from __future__ import annotations

import re

import sympy as sp

#: ``\textwidth`` of the ``article`` class at 10 pt (A4 and letter paper): what the output fits.
TEXT_WIDTH = 345.0
#: Room kept for an equation number on both sides of a centred display (``(99)`` is 20 pt wide).
TAG_ROOM = 25.0
#: Indent of a continuation line (``\quad``).
QUAD = 10.0
#: The estimates are within about 6% of pdflatex's widths; the layout keeps 10% in hand.
SAFETY = 1.1

# Widths (pt) of Computer Modern glyphs at 10 pt, measured with pdflatex: roman (text) and math italic.
_TEXT_GROUPS = {
    2.78: "ijl.,:;!'`[]", 3.06: "fj", 3.33: "- ", 3.61: "I", 3.89: "t()", 3.92: "r", 3.94: "s",
    4.44: "cez", 4.72: "?", 5.0: "aog0123456789/*\"", 5.14: "J", 5.28: "kqvxy", 5.56: "bdhnpuS",
    6.11: "Z", 6.25: "L", 6.53: "F", 6.81: "EP", 7.08: "B", 7.22: "wCT", 7.36: "R",
    7.5: "AHNUVXY", 7.64: "D", 7.78: "GKOQ+=&", 8.33: "m", 9.17: "M", 10.28: "W",
}
_TEXT = {ch: w for w, chars in _TEXT_GROUPS.items() for ch in chars}
_TEXT_DEFAULT = 5.6

_MATH_GROUPS = {
    2.78: ".,;:!|[]'", 3.18: "l", 3.45: "i", 3.61: "t", 3.89: "()", 4.29: "b", 4.33: "c",
    4.69: "sj", 4.85: "oq", 5.0: "0123456789/*", 5.03: "p", 5.09: "z", 5.13: "g", 5.2: "d",
    5.21: "v", 5.26: "y", 5.29: "a", 5.52: "k", 5.72: "ux", 5.76: "h", 5.97: "f", 6.0: "n",
    4.66: "e", 4.79: "r", 5.18: "I", 6.51: "J", 6.71: "S", 6.81: "L", 7.23: "T", 7.5: "A",
    7.54: "Z", 7.67: "R", 7.81: "P", 7.82: "F", 7.86: "CG", 7.91: "OQ", 7.92: "U", 7.96: "E",
    8.03: "Y", 8.06: "V", 8.09: "B", 8.56: "D", 8.78: "m", 9.07: "X", 9.12: "HN", 9.21: "K",
    10.79: "M", 10.83: "W", 7.43: "w",
}
_MATH = {ch: w for w, chars in _MATH_GROUPS.items() for ch in chars}
_MATH_DEFAULT = 6.0
_BIN_OPS = "+-*"
_REL_OPS = "=<>"
_BIN_SPACE = 4.44   # \medmuskip on both sides
_REL_SPACE = 5.56   # \thickmuskip on both sides
_OPERATOR = 7.78    # + - = < > \times

# Commands of fixed width (pt at 10 pt, before the style's scale).
_FIXED = {
    ",": 1.67, ":": 2.22, ";": 2.78, " ": 3.33, "!": -1.67, "quad": 10.0, "qquad": 20.0,
    "{": 5.0, "}": 5.0, "|": 5.0, "%": 8.33, "$": 5.0, "#": 8.33, "&": 7.78, "_": 3.6,
    "ldots": 13.4, "cdots": 13.4, "dots": 13.4, "infty": 10.0, "partial": 5.7, "nabla": 8.4,
    "prime": 2.8, "ell": 4.2, "hbar": 5.3, "emptyset": 5.0, "circ": 5.0,
}
_BINARY = {"cdot": 2.78, "times": _OPERATOR, "pm": _OPERATOR, "mp": _OPERATOR, "div": _OPERATOR}
_RELATION = {"approx": _OPERATOR, "leq": _OPERATOR, "geq": _OPERATOR, "neq": _OPERATOR, "le": _OPERATOR,
             "ge": _OPERATOR, "ne": _OPERATOR, "equiv": _OPERATOR, "sim": _OPERATOR, "mid": 2.78,
             "to": 10.0, "rightarrow": 10.0, "mapsto": 10.0, "in": 6.7}
_NAMED = {"sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "min", "max", "sinh", "cosh",
          "tanh", "coth", "arcsin", "arccos", "arctan", "det", "lim", "sup", "inf", "arg", "gcd", "Re", "Im"}
_TEXT_ARG = {"mathrm", "text", "textrm", "textit", "mathit", "mathbf", "mathsf", "mathtt", "operatorname",
             "textbf", "mathcal", "mathbb", "boldsymbol"}
_BIG_OPERATORS = {"int": (11.1, 8.3), "iint": (20.0, 14.0), "oint": (11.1, 8.3), "sum": (14.4, 10.6),
                  "prod": (12.8, 9.5)}
_NO_WIDTH = {"limits", "nolimits", "displaystyle", "textstyle", "scriptstyle", "scriptscriptstyle",
             "notag", "nonumber", "relax", "left", "right", "bigl", "bigr", "Bigl", "Bigr", "biggl",
             "biggr", "middle", "allowbreak", "big", "Big", "bigg"}

_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|[{}^_]|\s+|.", re.S)
_SCALE = {"D": 1.0, "T": 1.0, "S": 0.82, "SS": 0.68}  # cmr7, cmr5 are wider than scaled cmr10
_NUMERATOR = {"D": "T", "T": "S", "S": "SS", "SS": "SS"}
_SCRIPT = {"D": "S", "T": "S", "S": "SS", "SS": "SS"}


def text_width(text: str, size: float = 1.0) -> float:
    """Estimated width (pt) of plain ``text`` in Computer Modern roman at ``10 * size`` pt."""
    return size * sum(_TEXT.get(ch, _TEXT_DEFAULT) for ch in str(text))


def math_width(latex: str, style: str = "D") -> float:
    """Estimated width (pt) of the math formula ``latex`` at 10 pt in ``style``: ``"D"`` (display),
    ``"T"`` (text), ``"S"`` (script), ``"SS"``. Meant for sympy's LaTeX; within about 6% of
    pdflatex's widths on the derivations' formulas.

    >>> round(math_width(r"\\frac{d s_{2}}{\\psi s_{2} + 1}"))  # pdflatex: 35.7 pt
    35
    """
    tokens = [t for t in _TOKEN.findall(latex) if not t.isspace()]
    width, _ = _measure(tokens, 0, style, stop=None)
    return width


def _measure(tokens: list[str], i: int, style: str, stop: str | None) -> tuple[float, int]:
    """Width of ``tokens[i:]`` up to ``stop`` (``"}"`` or None for the end); returns (width, next index)."""
    total = 0.0
    scale = _SCALE[style]
    spaced = style in ("D", "T")
    last = None  # the previous atom's kind, to tell a unary minus from a binary one
    while i < len(tokens):
        tok = tokens[i]
        if tok == stop:
            return total, i + 1
        if tok == "{":
            w, i = _measure(tokens, i + 1, style, "}")
            total += w
            last = "ord"
            continue
        if tok in ("^", "_"):
            w, i = _argument(tokens, i + 1, _SCRIPT[style])
            # a sub- and superscript pair stacks: count the wider one
            if i < len(tokens) and tokens[i] in ("^", "_") and tokens[i] != tok:
                w2, i = _argument(tokens, i + 1, _SCRIPT[style])
                w = max(w, w2)
            total += w + 0.5 * scale
            continue
        i += 1
        if tok.startswith("\\"):
            name = tok[1:]
            if name in ("frac", "dfrac", "tfrac", "binom"):
                inner = {"dfrac": "T", "tfrac": _NUMERATOR["T"]}.get(name, _NUMERATOR[style])
                num, i = _argument(tokens, i, inner)
                den, i = _argument(tokens, i, inner)
                total += max(num, den) + 2.4 * scale + (8.0 * scale if name == "binom" else 0.0)
                last = "ord"
            elif name == "sqrt":
                if i < len(tokens) and tokens[i] == "[" and "]" in tokens[i:]:  # \sqrt[n]{..}
                    i = tokens.index("]", i) + 1
                    total += 5.0 * scale
                w, i = _argument(tokens, i, style)
                total += w + 8.4 * scale
                last = "ord"
            elif name in ("left", "right", "bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr", "middle"):
                if i < len(tokens):
                    delim = tokens[i]
                    i += 1
                    total += 1.2 * scale if delim == "." else 6.5 * scale
                last = "open" if name in ("left", "bigl", "Bigl", "biggl") else "ord"
            elif name in _BIG_OPERATORS:
                big, small = _BIG_OPERATORS[name]
                glyph = (big if style == "D" else small) * scale
                limits = style == "D" or (i < len(tokens) and tokens[i] == "\\limits")
                while i < len(tokens) and tokens[i] in ("\\limits", "\\nolimits"):
                    i += 1
                scripts = 0.0
                while i < len(tokens) and tokens[i] in ("^", "_"):
                    w, i = _argument(tokens, i + 1, _SCRIPT[style])
                    scripts = max(scripts, w)
                total += (max(glyph, scripts) if limits else glyph + scripts) + 1.67 * scale
                last = "op"
            elif name in _TEXT_ARG:
                text, i = _raw_argument(tokens, i)
                total += text_width(text, scale) * (1.1 if name in ("mathit", "mathcal", "mathbb") else 1.0)
                last = "ord"
            elif name in _NAMED:
                total += text_width(name, scale) + 1.67 * scale
                last = "op"
            elif name in _BINARY:
                total += _BINARY[name] * scale + (_BIN_SPACE if spaced else 0.0)
                last = "bin"
            elif name in _RELATION:
                total += _RELATION[name] * scale + (_REL_SPACE if spaced else 0.0)
                last = "rel"
            elif name in _FIXED:
                total += _FIXED[name] * scale
            elif name in _NO_WIDTH:
                continue
            else:  # Greek letters and anything else: about one wide letter
                total += 6.2 * scale
                last = "ord"
        elif tok in _BIN_OPS:
            unary = last in (None, "open", "bin", "rel", "op")
            total += _OPERATOR * scale + (0.0 if unary or not spaced else _BIN_SPACE)
            last = "bin"
        elif tok in _REL_OPS:
            total += _OPERATOR * scale + (_REL_SPACE if spaced else 0.0)
            last = "rel"
        elif tok == ",":
            total += (2.78 + 1.67) * scale
            last = "punct"
        elif tok in "([":
            total += _MATH.get(tok, 3.89) * scale
            last = "open"
        elif tok == "&":
            continue
        else:
            total += _MATH.get(tok, _MATH_DEFAULT) * scale
            last = "ord"
    return total, i


def _argument(tokens: list[str], i: int, style: str) -> tuple[float, int]:
    """Width of one argument (a group or a single token) starting at ``tokens[i]``."""
    if i >= len(tokens):
        return 0.0, i
    if tokens[i] == "{":
        return _measure(tokens, i + 1, style, "}")
    return _measure([tokens[i]], 0, style, None)[0], i + 1


def _raw_argument(tokens: list[str], i: int) -> tuple[str, int]:
    """The plain text of one argument (for ``\\mathrm{..}``, ``\\text{..}``)."""
    if i >= len(tokens):
        return "", i
    if tokens[i] != "{":
        return tokens[i].lstrip("\\"), i + 1
    depth, parts = 0, []
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if tok == "{":
            depth += 1
            if depth == 1:
                continue
        elif tok == "}":
            depth -= 1
            if depth == 0:
                break
        parts.append(tok.lstrip("\\") if tok.startswith("\\") and len(tok) == 2 else tok)
    return "".join(parts), i


def breakable_text(escaped: str) -> str:
    r"""Escaped text with ``\allowbreak`` after ``, ; : / = +`` inside words longer than 15
    characters (such as ``grid:0.001,0.999,26``), so that a paragraph never runs into the margin."""
    def split(match: re.Match) -> str:
        return re.sub(r"([,;:/=+])(?=\S)", r"\1\\allowbreak{}", match.group(0))
    return re.sub(r"\S{16,}", split, escaped)


_PAREN = 8.0  # width of a \biggl( or \left( around a tall formula


def _wrap(pieces: list[str]) -> list[str]:
    r"""``pieces`` in parentheses that may break between lines (fixed-size ``\biggl( \biggr)``)."""
    if len(pieces) == 1:
        return [r"\left(" + pieces[0] + r"\right)"]
    return [r"\biggl(" + pieces[0], *pieces[1:-1], pieces[-1] + r"\biggr)"]


def _signed(pieces: list[str], first: bool) -> list[str]:
    """``pieces`` of a term of a sum: with its sign in front unless it is the first term."""
    head = pieces[0]
    if not first:
        head = "- " + head[1:].lstrip() if head.startswith("-") else "+ " + head
    return [head, *pieces[1:]]


def split_pieces(expr, render, budget: float) -> list[str]:
    r"""``expr`` as LaTeX pieces between which a line may break, each estimated to fit ``budget``
    where the expression allows: a sum at its terms (each with its sign), a product at its factors
    (a long fraction as ``\frac{1}{q}`` times its numerator, or ``p \Big/ (q)``), a power, an
    integral and a tuple inside breakable parentheses. A piece that cannot break stays whole."""
    text = render(expr)
    if math_width(text) <= budget:
        return [text]
    sub = lambda e: split_pieces(e, render, budget)
    inner = lambda e: _wrap(split_pieces(e, render, budget - 2 * _PAREN))  # in parentheses
    if isinstance(expr, sp.Tuple) and len(expr) > 1:
        items = [sub(e) for e in expr]
        flat = [p for k, item in enumerate(items) for p in (item[:-1] + [item[-1] + ("," if k < len(items) - 1 else "")])]
        return _wrap(flat) if len(flat) > 1 else [text]
    if isinstance(expr, sp.Add):
        return [p for k, term in enumerate(expr.as_ordered_terms()) for p in _signed(sub(term), k == 0)]
    if isinstance(expr, sp.Mul) or (isinstance(expr, sp.Pow) and expr.exp.is_Rational and expr.exp < 0):
        if expr.could_extract_minus_sign():
            rest = sub(-expr)
            return ["- " + rest[0], *rest[1:]]
        coeff, rest = expr.as_coeff_Mul()
        if coeff != 1 and coeff.is_Rational:
            return [render(coeff), *sub(rest)]
        num, den = sp.fraction(expr, exact=True)
        if den != 1:
            num_pieces = sub(num) if num != 1 else ["1"]
            if math_width(render(den)) <= budget / 2:
                return [r"\frac{1}{" + render(den) + "}", *num_pieces]
            return [*num_pieces, r"\Big/", *inner(den)]
        out = []
        for factor in expr.as_ordered_factors():
            out += inner(factor) if factor.is_Add else sub(factor)
        return out
    if isinstance(expr, sp.Pow) and expr.exp.is_Rational and expr.exp > 0 and not expr.base.is_Atom:
        base = inner(expr.base)
        return [*base[:-1], base[-1] + "^{" + render(expr.exp) + "}"]
    if isinstance(expr, sp.Integral) and len(expr.limits) == 1 and len(expr.limits[0]) == 3:
        var, lo, hi = expr.limits[0]
        head = r"\int\limits_{" + render(lo) + "}^{" + render(hi) + "}"
        room = budget - math_width(head) - math_width(r"\, d" + render(var))
        body = split_pieces(expr.function, render, room - (2 * _PAREN if expr.function.is_Add else 0.0))
        if expr.function.is_Add:
            body = _wrap(body)
        return [head + " " + body[0], *body[1:-1], body[-1] + r"\, d" + render(var)] if len(body) > 1 \
            else [head + " " + body[0] + r"\, d" + render(var)]
    return [text]


def _fit(latex: str, budget: float) -> str:
    """``latex`` as it is if it fits ``budget``, else in text style (smaller fractions and limits),
    else in script style."""
    if math_width(latex) <= budget:
        return latex
    if math_width(latex, "T") <= budget:
        return r"{\textstyle " + latex + "}"
    return r"{\scriptstyle " + latex + "}"


def rhs_lines(expr, render, budget: float) -> list[str]:
    """``expr`` as one or more lines, each estimated to fit ``budget`` pt (continuation lines are
    indented by a quad): broken at the pieces of :func:`split_pieces` when it is too wide; a piece
    still too wide is set in text style."""
    pieces = split_pieces(expr, render, budget - QUAD)
    lines: list[str] = []
    current = ""
    for piece in pieces:
        room = budget - (QUAD if lines else 0.0)
        candidate = f"{current} {piece}".strip()
        if current and math_width(candidate) > room:
            lines.append(current)
            current = piece
        else:
            current = candidate
    lines.append(current)
    return [_fit(line, budget - (QUAD if k else 0.0)) for k, line in enumerate(lines)]


def align_block(rows, render, width: float = TEXT_WIDTH, extra: str | None = None) -> str:
    r"""An ``align`` block of ``(intro, lhs, rhs)`` rows: ``intro`` (LaTeX text, or None) as
    ``\intertext`` before ``lhs &= rhs``; ``rhs`` a sympy expression rendered by ``render`` and
    broken to fit ``width`` minus room for the equation numbers. ``extra`` is a last row
    (e.g. ``&\approx 0.66``)."""
    lhs_width = max([math_width(lhs) for _, lhs, _ in rows] + [0.0])
    budget = max((width - 2 * TAG_ROOM) / SAFETY - lhs_width - (_OPERATOR + _REL_SPACE), 100.0)
    out = []
    for intro, lhs, rhs in rows:
        if intro:
            out.append(f"\\intertext{{{intro}}}")
        lines = rhs_lines(rhs, render, budget)
        row = [f"{lhs} &= {lines[0]}"] + [f"&\\quad {line}" for line in lines[1:]]
        out.append(" \\notag \\\\\n".join(row) + " \\\\")
    if extra:
        out.append(extra + " \\\\")
    out[-1] = out[-1][: -len(" \\\\")]
    return "\\begin{align}\n" + "\n".join(out) + "\n\\end{align}"


def document(body: str, packages=("amsmath",)) -> str:
    """A minimal ``article`` around ``body`` that loads ``packages``."""
    uses = "\n".join(f"\\usepackage{{{p}}}" for p in packages)
    return f"\\documentclass{{article}}\n{uses}\n\\begin{{document}}\n{body}\n\\end{{document}}\n"
