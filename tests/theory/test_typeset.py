"""LaTeX of derivations that fits the page: the layout, and pdflatex's verdict where it is installed."""

import re

import pytest
import sympy as sp

from memcross.theory.derivation import derive, latex_document
from memcross.theory.setting import Setting
from memcross.theory.typeset import align_block, breakable_text, math_width, rhs_lines, split_pieces

t, x = sp.symbols("t x", positive=True)

# Every `derive --latex` the docs show or name (docs/theory.md, docs/cli.md), and the vp-cosine
# derivation whose old block was taller than a page.
DOC_SETTINGS = [
    Setting(),
    Setting(time="interval:0,1"),
    Setting(weighting="eps-uniform"),
    Setting(schedule="vp-cosine"),
]


@pytest.fixture(scope="module")
def doc_derivations():
    return [derive(s) for s in DOC_SETTINGS]


def _wide(dv):
    """``dv`` with right-hand sides far wider than a line: a long sum, a fraction of integrals,
    a tuple of long items (as a custom schedule or an unevaluated integral can give). The free
    ``x`` keeps sympy from evaluating the integrals to order the terms (slow)."""
    integrand = (x + sp.cos(sp.pi * t)) ** 2 * sp.exp(-199 * t**2 / 20 - t / 10) / (1 - sp.exp(-t**2) + t**3)
    big = sp.Integral(integrand * (t**5 + 3 * t**4 - 7 * t**3 + t**2 / 9 - t / 11 + 13), (t, sp.Rational(1, 1000), 1))
    long_sum = sum(sp.Rational(k, 1000 + k) * t**k for k in range(1, 25))
    return (dv.altered("A", 500 * big / 499).altered("B", long_sum)
              .altered("result", 1 - big / sp.Integral(integrand, (t, sp.Rational(1, 1000), 1)))
              .altered("schedule", sp.Tuple(long_sum, integrand)))


def test_reasons_are_intertext_and_rows_align(doc_derivations):
    dv = doc_derivations[0]
    latex = dv.latex()
    assert latex.startswith("\\begin{align}") and latex.endswith("\\end{align}")
    assert "\\text{" not in latex  # no reason set as an unbreakable box on the equation's line
    assert latex.count("\\intertext{") == len(dv.steps)
    assert "\\intertext{\\raggedright \\textit{generalizer excess}: Theorem 3.1" in latex
    assert "M^*/N &= \\frac{16508991}{25000000} \\\\\n&\\approx 0.660359640000000\n\\end{align}" in latex
    assert latex_document([dv]).startswith("\\documentclass{article}\n\\usepackage{amsmath}\n")
    assert dv.latex_document() == latex_document([dv])


def test_width_estimates_are_close():
    # widths pdflatex gives (pt at 10 pt, display style)
    for latex, actual in [(r"\frac{d s_{2}}{\psi s_{2} + 1}", 35.7),
                          (r"d \left(- A + B \left(- \frac{M}{N} + 1\right)\right)", 111.8),
                          (r"E_t[\lambda_t(\Delta_{\mathrm{pmem}} - \Delta_{\mathrm{gen}}(t))]", 107.9),
                          (r"\left( \cos{\left(\frac{\pi t}{2} \right)}, \  \sin{\left(\frac{\pi t}{2} \right)}\right)", 105.1)]:
        assert 0.9 * actual <= math_width(latex) <= 1.15 * actual, latex
    assert math_width(r"\frac{a}{b}", "T") < math_width(r"\frac{a}{b}")  # text style is narrower


def test_wide_right_hand_sides_break_into_pieces_that_fit():
    long_sum = sum(sp.Rational(k, 1000 + k) * t**k for k in range(1, 25))
    lines = rhs_lines(long_sum, sp.latex, 150.0)
    assert len(lines) > 3 and all(math_width(line) <= 150.0 for line in lines)
    assert lines[1].startswith("+ ")  # continuation lines carry the sign, multline style
    pieces = split_pieces(sp.Tuple(long_sum, t), sp.latex, 150.0)
    assert pieces[0].startswith("\\biggl(") and pieces[-1].endswith("t\\biggr)")
    block = align_block([(None, "A", long_sum)], sp.latex)
    assert block.count("\\notag") == block.count("\\\\")  # one equation number, on the last line


def test_long_words_in_reasons_may_break():
    assert breakable_text("grid:0.001,0.999,26 ok") == "grid:\\allowbreak{}0.001,\\allowbreak{}0.999,\\allowbreak{}26 ok"
    assert breakable_text("x_t = a, b") == "x_t = a, b"


def test_documented_derivations_compile_within_the_margins(doc_derivations, pdflatex):
    result = pdflatex(latex_document(doc_derivations))
    assert not result.problems(), result.problems()
    # the old layout put the vp-cosine derivation on a page of its own, page 1 blank
    assert result.pages <= 2 * len(doc_derivations)


def test_wide_expressions_compile_within_the_margins(doc_derivations, pdflatex):
    dv = _wide(doc_derivations[0])
    latex = dv.latex()
    assert "\\Big/" in latex and "\\frac{500}{499}" in latex and "\\biggl(" in latex
    assert len(re.findall(r"\\notag", latex)) > 5
    result = pdflatex(dv.latex_document())
    assert not result.problems(), result.problems()
