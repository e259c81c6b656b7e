"""Tables from records: LaTeX (booktabs, optional siunitx columns), CSV and Markdown.

LaTeX tables fit the text width of an ``article`` at 10 pt (345 pt): from the widths of the cells
(Computer Modern glyph widths) a table gets ``\\small`` or ``\\footnotesize`` and a narrower
``\\tabcolsep`` when it needs them, a column of prose (such as ``notes``) wraps in a tabularx ``X``
column, column names break after underscores, a table taller than a page becomes a ``longtable``,
and one that fits no other way is scaled down (graphicx). :func:`latex_packages` names the packages
a table needs and :func:`latex_document` loads them.

A table never recomputes anything: it formats the fields of the records it is given. Columns are
any field of :meth:`Prediction.row` (setting fields such as ``schedule``, ``weighting``, ``s2``
next to ``value``, ``M_star``, ``method``, ``error``, ...).
"""

from __future__ import annotations

import csv
import io
import math
import re

from memcross._checks import check_int
from memcross._util import latex_text
from memcross.theory.typeset import TEXT_WIDTH, document, text_width

FORMATS = ("latex", "csv", "markdown")
DEFAULT_COLUMNS = ("schedule", "weighting", "target", "time", "s2", "method", "value", "M_star")


def _cell(value, digits: int) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.{digits}g}" if abs(value) >= 1e-4 or value == 0 else f"{value:.{digits}e}"
    if value is None:
        return ""
    return str(value)


def _is_numeric_column(rows, column) -> bool:
    values = [r.get(column) for r in rows]
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def render_table(rows: list[dict], columns=None, fmt: str = "latex", caption: str | None = None,
                 label: str | None = None, digits: int | None = None, siunitx: bool = False) -> str:
    """Format ``rows`` (dicts, e.g. ``Prediction.row()``) as a table.

    ``digits``: significant digits of floats (default 4); CSV keeps every digit unless
    ``digits`` is given.

    >>> print(render_table([{"schedule": "vp", "value": 0.66035964}], ["schedule", "value"], "markdown"))
    | schedule | value |
    |---|---|
    | vp | 0.6604 |
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown table format {fmt!r}; known formats: {', '.join(FORMATS)}")
    if digits is not None:
        check_int(digits, "digits", 1, 30)
    if not rows:
        raise ValueError("no records to tabulate")
    columns = list(columns or [c for c in DEFAULT_COLUMNS if any(c in r for r in rows)])
    available = sorted({k for r in rows for k in r})
    unknown = [c for c in columns if c not in available]
    if unknown:
        raise ValueError(f"unknown column(s) {', '.join(unknown)}; available: {', '.join(available)}")
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        if digits is None:
            writer.writerows([[r.get(c, "") for c in columns] for r in rows])
        else:
            writer.writerows([[_cell(r.get(c), digits) for c in columns] for r in rows])
        return buf.getvalue().rstrip("\n")
    body = [[_cell(r.get(c), 4 if digits is None else digits) for c in columns] for r in rows]
    if fmt == "markdown":
        esc = lambda s: str(s).replace("|", "\\|")
        lines = ["| " + " | ".join(esc(c) for c in columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in body]
        if caption:
            lines.append(f"\n*{caption}*")
        return "\n".join(lines)
    numeric = [_is_numeric_column(rows, c) for c in columns]
    if label and not re.fullmatch(r"[A-Za-z0-9:_.\-]+", label):
        raise ValueError(f"label {label!r} may use only letters, digits and : _ . -")
    return _latex_table(columns, numeric, body, caption, label, siunitx)


# Fitting a LaTeX table to the text width (345 pt in the article class at 10 pt): the font size
# and column separation are chosen from these, largest first; a column of prose (cells with
# spaces) may wrap in a tabularx X column; a table that fits none of them is scaled down.
_SIZES = ((None, 1.0, 6.0), (r"\small", 0.92, 6.0), (r"\small", 0.92, 4.0), (r"\footnotesize", 0.85, 3.0))
_MIN_WRAP = 80.0          # narrowest a wrapping column may get (pt at 10 pt)
_TEXT_HEIGHT = 545.0      # a table taller than this (pt) becomes a longtable that breaks across pages (page: 550 pt)
_LINE_HEIGHT = {None: 12.0, r"\small": 11.0, r"\footnotesize": 9.5}
_SAFETY = 1.01            # cell widths are sums of glyph widths: within 1% of what pdflatex sets


def _digits_width(digits: str) -> float:
    """Width (pt) of a run of digits as siunitx sets it (groups of three from five digits on)."""
    return 5.0 * len(digits) + (1.67 * ((len(digits) - 1) // 3) if len(digits) >= 5 else 0.0)


def _s_column_width(cells: list[str]) -> float:
    """Width (pt) of a siunitx ``S`` column (v3 without ``table-format``): the decimal marker is
    centred, so the column is twice its wider side (integer part with sign, or decimals with the
    exponent as ``x 10^n``) plus the marker."""
    left = right = 0.0
    for cell in cells:
        mantissa, e, _ = cell.lower().partition("e")
        whole, _, frac = mantissa.lstrip("+-").partition(".")
        if not (whole + frac).isdigit():
            continue  # nan, inf: siunitx prints them as they are
        left = max(left, _digits_width(whole) + (7.78 if mantissa.startswith("-") else 0.0))
        right = max(right, _digits_width(frac) + (33.0 if e else 0.0))
    return 2 * max(left, right) + 2.78


def _header_lines(name: str, room: float) -> list[str]:
    """A column name broken after underscores into lines no wider than ``room`` (or its longest part)."""
    parts = re.findall(r"[^_]+_?|_", name)
    room = max([room] + [text_width(p) for p in parts])
    lines = [""]
    for part in parts:
        if lines[-1] and text_width(lines[-1] + part) > room:
            lines.append(part)
        else:
            lines[-1] += part
    return lines


def _latex_table(columns, numeric, body, caption, label, siunitx) -> str:
    ncol = len(columns)
    s_cols = [n and siunitx for n in numeric]
    data_w = [_s_column_width([row[k] for row in body]) if s_cols[k] else max(text_width(row[k]) for row in body)
              for k in range(ncol)]
    # headers much wider than their column's data break after underscores
    headers = [_header_lines(c, max(w, 45.0)) for c, w in zip(columns, data_w)]
    nat_w = [max(w, max(text_width(h) for h in lines)) for w, lines in zip(data_w, headers)]
    prose = [not n and any(" " in row[k] for row in body) for k, n in enumerate(numeric)]
    wrap_w = [max(_MIN_WRAP, max(text_width(w) for row in body for w in row[k].split() or [""]) + 6.0)
              for k in range(ncol)]

    def width(scale, sep, wrap):
        return sum(wrap_w[k] if wrap[k] else nat_w[k] for k in range(ncol)) * scale + 2 * sep * ncol

    no_wrap = [False] * ncol
    for choice in _SIZES:
        size, scale, sep = choice
        wrap = no_wrap if width(scale, sep, no_wrap) <= TEXT_WIDTH / _SAFETY else prose
        if width(scale, sep, wrap) <= TEXT_WIDTH / _SAFETY:
            resize = False
            break
    else:
        resize = True  # scaled down as a whole: the last resort

    # a wrapping column gets an equal share of the width the others leave
    fixed = sum(w for w, x in zip(nat_w, wrap) if not x) * scale + 2 * sep * ncol
    x_w = max((TEXT_WIDTH - fixed) / max(1, sum(wrap)) / scale, _MIN_WRAP)
    lines_per_row = [max([1] + [math.ceil(text_width(row[k]) / (x_w - 15.0)) for k in range(ncol) if wrap[k]])
                     for row in body]  # ragged lines end, on average, half a word short
    head_height = max(len(h) for h in headers) * _LINE_HEIGHT[size] + 12.0 + (25.0 if caption else 0.0)
    long = head_height + sum(lines_per_row) * _LINE_HEIGHT[size] > _TEXT_HEIGHT

    ragged = r">{\raggedright\arraybackslash}"
    if any(wrap) and (long or resize):
        # neither a longtable nor a scaled box can hold X columns: give the wrapping columns what is left
        fixed = sum(w for w, x in zip(nat_w, wrap) if not x) * scale * _SAFETY + 2 * sep * ncol
        share = f"{1.0 / sum(wrap):.3f}" if sum(wrap) > 1 else ""
        x_spec = ragged + "p{" + share + r"\dimexpr\linewidth-" + f"{fixed:.0f}pt" + r"\relax}"
    else:
        x_spec = ragged + "X"
    spec = "".join(x_spec if x else ("S" if s else ("r" if n else "l")) for x, s, n in zip(wrap, s_cols, numeric))

    def head(lines, s, n, x):
        text = r"\\".join(latex_text(h) for h in lines)
        if len(lines) > 1:
            text = r"\begin{tabular}[b]{@{}" + ("r" if n and not x else "l") + "@{}}" + text + r"\end{tabular}"
        return "{" + text + "}" if s else text

    header = " & ".join(head(h, s, n, x) for h, s, n, x in zip(headers, s_cols, numeric, wrap)) + r" \\"
    rows = [" & ".join(v if s else latex_text(v) for v, s in zip(row, s_cols)) + r" \\" for row in body]
    setup = ([size] if size else []) + ([rf"\setlength{{\tabcolsep}}{{{sep:g}pt}}"] if sep != 6.0 else [])
    title = ([rf"\caption{{{latex_text(caption)}}}"] if caption else []) + ([rf"\label{{{label}}}"] if label else [])
    if long and not resize:  # a longtable breaks across pages and repeats the header
        lines = [r"\begingroup", *setup, rf"\begin{{longtable}}{{{spec}}}"]
        if title:
            lines.append(" ".join(title) + r" \\")
        return "\n".join(lines + [r"\toprule", header, r"\midrule", r"\endfirsthead", r"\toprule", header,
                                  r"\midrule", r"\endhead", r"\bottomrule", r"\endlastfoot", *rows,
                                  r"\end{longtable}", r"\endgroup"])
    if any(wrap) and not resize:
        begin, end = rf"\begin{{tabularx}}{{\linewidth}}{{{spec}}}", r"\end{tabularx}"
    else:
        begin, end = rf"\begin{{tabular}}{{{spec}}}", r"\end{tabular}"
    if resize:  # scaled down to the line width, never up
        begin, end = r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{" + begin, end + "}"
    # a table too long for a page and too wide to break as a longtable: one float per page-full of rows
    per_float = len(body)
    if long:
        per_float = max(1, int((_TEXT_HEIGHT - head_height) / (_LINE_HEIGHT[size] * max(lines_per_row))))
    floats = []
    for first in range(0, len(body), per_float):
        floats.append("\n".join([r"\begin{table}[htbp]", r"\centering", *setup, *(title if first == 0 else []),
                                 begin, r"\toprule", header, r"\midrule", *rows[first:first + per_float],
                                 r"\bottomrule", end, r"\end{table}"]))
    return "\n".join(floats)


_PACKAGES = (("booktabs", r"\toprule"), ("siunitx", None), ("array", r"\arraybackslash"),
             ("tabularx", r"\begin{tabularx}"), ("longtable", r"\begin{longtable}"), ("graphicx", r"\resizebox"))


def latex_packages(table: str, siunitx: bool = False) -> list[str]:
    """The packages ``table`` (from :func:`render_table`) needs: booktabs, and siunitx, array,
    tabularx, longtable, graphicx where it uses them."""
    return [name for name, marker in _PACKAGES
            if (siunitx if name == "siunitx" else marker in table)]


def latex_document(table: str, siunitx: bool = False) -> str:
    """A minimal standalone ``article`` around ``table`` that loads the packages it needs
    (:func:`latex_packages`)."""
    return document(table, latex_packages(table, siunitx))
