"""Small general functions that belong to no layer: any layer may import this module.

It imports nothing from the rest of the package.
"""

from __future__ import annotations

_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#",
                  "^": r"\^{}", "$": r"\$", "{": r"\{", "}": r"\}", "~": r"\~{}",
                  "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}


def latex_text(text: str) -> str:
    """Escape plain text for LaTeX (``\\text{...}`` and table cells).

    >>> latex_text("M*/N & a_b 50%")
    'M*/N \\\\& a\\\\_b 50\\\\%'
    """
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))
