"""Tables from records: LaTeX (booktabs, optional siunitx columns), CSV and Markdown.

A table never recomputes anything: it formats the fields of the records it is given. Columns are
any field of :meth:`Prediction.row` (setting fields such as ``schedule``, ``weighting``, ``s2``
next to ``value``, ``M_star``, ``method``, ``error``, ...).
"""

from __future__ import annotations

import csv
import io
import math
import re

from memcross.theory.derivation import latex_text

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
    if digits is not None and (isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 30):
        raise ValueError(f"digits must be an integer from 1 to 30, got {digits!r}")
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
    spec = "".join(("S" if siunitx else "r") if n else "l" for n in numeric)
    header = " & ".join(("{" + latex_text(c) + "}") if (siunitx and n) else latex_text(c) for c, n in zip(columns, numeric))
    lines = ["\\begin{table}[ht]", "\\centering"]
    if caption:
        lines.append(f"\\caption{{{latex_text(caption)}}}")
    if label:
        if not re.fullmatch(r"[A-Za-z0-9:_.\-]+", label):
            raise ValueError(f"label {label!r} may use only letters, digits and : _ . -")
        lines.append(f"\\label{{{label}}}")
    lines += [f"\\begin{{tabular}}{{{spec}}}", "\\toprule", header + " \\\\", "\\midrule"]
    for row in body:
        cells = [v if (n and siunitx) else latex_text(v) for v, n in zip(row, numeric)]
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines)


def latex_document(table: str, siunitx: bool = False) -> str:
    """A minimal standalone document around ``table`` (for checking that it compiles)."""
    packages = ["booktabs"] + (["siunitx"] if siunitx else [])
    uses = "\n".join(f"\\usepackage{{{p}}}" for p in packages)
    return f"\\documentclass{{article}}\n{uses}\n\\begin{{document}}\n{table}\n\\end{{document}}\n"
