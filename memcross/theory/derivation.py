r"""A derivation: the ordered steps from a setting to :math:`M^*/N`, each one checkable.

Every :class:`Step` is an equation ``lhs = rhs`` with a one-line reason and an independent
``check`` expression — the same quantity computed another way (from the raw schedule, from the
target's linear relation by a difference quotient, from Gaussian algebra, by solving the
condition with sympy, by summing or integrating directly). :meth:`Derivation.verify` proves
``rhs == check`` for every step, symbolically when sympy can decide and otherwise numerically at
30 digits, and reports the first step that fails.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import sympy as sp

from memcross._util import latex_text
from memcross.theory import symbols as S
from memcross.theory.crossover import A, B, crossover, per_time_critical_ratio, solve_crossover
from memcross.theory.data import (
    derived_gaussian_mmse,
    excess_loss_generalizer,
    excess_loss_partial_memorizer,
    gaussian_mmse,
    generalizer_component_mean,
)
from memcross.theory.equivalence import Verdict, compare, default_ranges
from memcross.theory.measures import Grid
from memcross.theory.setting import Setting
from memcross.theory.targets import x_t
from memcross.theory.typeset import align_block, breakable_text, document


@dataclass(frozen=True)
class Step:
    """One equation of a derivation, its reason, and an independent computation of its rhs.

    ``given`` names values (of symbols such as ``A``, ``B``) substituted into ``rhs`` before it
    is compared with ``check``.
    """

    name: str
    lhs: sp.Expr
    rhs: sp.Expr
    reason: str
    check: sp.Expr | None = None
    given: tuple[tuple[sp.Symbol, sp.Expr], ...] = ()
    lhs_latex: str | None = None

    def verify(self, ranges: dict) -> Verdict:
        """Compare ``rhs`` (with ``given`` substituted) to ``check``; a step without a check
        is a definition or a stated theorem and passes as given."""
        if self.check is None:
            return Verdict(True, "given", detail="taken as given")
        return compare(self.rhs.subs(dict(self.given)), self.check, ranges,
                       labels=(f"step {self.name!r}", f"the check of step {self.name!r}"))

    def latex_lhs(self) -> str:
        """The LaTeX of the left-hand side: ``lhs_latex`` when set, else :func:`sympy.latex` of ``lhs``."""
        return self.lhs_latex if self.lhs_latex is not None else sp.latex(self.lhs)


@dataclass(frozen=True)
class VerificationReport:
    """Result of :meth:`Derivation.verify`: ``ok``, the failed step (if any), per-step verdicts."""

    ok: bool
    verdicts: tuple[tuple[str, Verdict], ...]
    failed_step: str | None = None

    def __bool__(self) -> bool:
        return self.ok

    def describe(self) -> str:
        """A text report: a head line (all verified, or the failed step), then one ``[ok]``/``[FAIL]`` line per step."""
        lines = [f"  [{'ok' if v.equal else 'FAIL'}] {name}: {v.describe()}" for name, v in self.verdicts]
        head = "all steps verified" if self.ok else f"step {self.failed_step!r} failed"
        return "\n".join([head, *lines])


LONG = 60


#: Exact integers beyond this many bits (about 1000 digits) are printed by their value.
HUGE_BITS = 3322


def _huge_numbers_as_values(expr):
    """``expr`` with exact rationals of more than about 1000 digits replaced by 20-digit values
    (Python refuses to print integers beyond 4300 digits, and nobody reads them)."""
    if not isinstance(expr, sp.Basic):
        return expr
    huge = {r: sp.Float(r, 20) for r in expr.atoms(sp.Rational) if max(abs(r.p), r.q).bit_length() > HUGE_BITS}
    return expr.xreplace(huge) if huge else expr


def _exact_length(expr) -> int | None:
    """Characters of ``sstr(expr)`` for an exact number, None when it is too long to print."""
    try:
        return len(sp.sstr(expr))
    except ValueError:  # an integer beyond Python's printing limit
        return None


def show_text(expr) -> str:
    """``sstr`` of ``expr``; an exact rational too long to read is shown with its value."""
    if _is_exact_number(expr):
        length = _exact_length(expr)
        if length is None or length > LONG:
            size = f"{length} characters" if length is not None else "over 4300 digits"
            return f"{sp.N(expr, 20)} (exact: {expr.__class__.__name__.lower()}, {size})"
    return sp.sstr(_huge_numbers_as_values(expr))


def show_latex(expr) -> str:
    """``latex`` of ``expr``; an exact number too long to read is shown by its value."""
    if _is_exact_number(expr) and (_exact_length(expr) or LONG + 1) > LONG:
        return f"{sp.N(expr, 20)}\\ldots"
    return sp.latex(_huge_numbers_as_values(expr))


def _is_exact_number(expr) -> bool:
    return expr is not None and expr.is_number and not expr.has(sp.Integral, sp.Sum)


@dataclass
class Derivation:
    """The steps from a setting to :math:`M^*/N`.

    >>> dv = derive(Setting(time="interval:0,1"))
    >>> dv.result
    2/3
    >>> dv.verify().ok
    True
    """

    setting: Setting
    steps: list[Step] = field(default_factory=list)
    result: sp.Expr | None = None
    ranges: dict = field(default_factory=dict)

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"no step {name!r}; steps: {', '.join(s.name for s in self.steps)}")

    def altered(self, name: str, rhs: sp.Expr) -> Derivation:
        """A copy with the rhs of step ``name`` replaced (to see :meth:`verify` catch it)."""
        self.step(name)
        steps = [dataclasses.replace(s, rhs=rhs) if s.name == name else s for s in self.steps]
        return dataclasses.replace(self, steps=steps)

    def verify(self) -> VerificationReport:
        """Check every step; stop at the first that fails and name it."""
        verdicts = []
        for s in self.steps:
            verdict = s.verify(self.ranges)
            verdicts.append((s.name, verdict))
            if not verdict.equal:
                return VerificationReport(False, tuple(verdicts), s.name)
        return VerificationReport(True, tuple(verdicts))

    def text(self) -> str:
        """Plain-text rendering: one numbered step per line with its reason."""
        st = self.setting
        lines = [
            f"Derivation of M*/N: schedule={st.schedule}, time={st.time}, weighting={st.weighting}, "
            f"target={st.target}, s2={st.s2}, C={st.C}"
        ]
        for i, s in enumerate(self.steps, 1):
            lines.append(f"{i:2d}. {s.name}: {sp.sstr(s.lhs)} = {show_text(s.rhs)}")
            lines.append(f"    ({s.reason})")
        if self.result is not None:
            lines.append(f"M*/N = {show_text(self.result)}")
            if _is_exact_number(self.result):
                lines.append(f"     = {sp.N(self.result, 15)}")
        return "\n".join(lines)

    def latex(self) -> str:
        r"""A LaTeX ``align`` block (amsmath) that fits the page: per step, its name and reason as
        ``\intertext`` (wrapped inside the margin; the block may break across pages there), then
        ``lhs &= rhs``, a right-hand side too wide for the line split at its terms
        (:func:`memcross.theory.typeset.align_block`)."""
        rows = [(f"\\raggedright \\textit{{{latex_text(s.name)}}}: {breakable_text(latex_text(s.reason))}", s.latex_lhs(), s.rhs)
                for s in self.steps]
        extra = f"&\\approx {sp.N(self.result, 15)}" if _is_exact_number(self.result) else None
        return align_block(rows, show_latex, extra=extra)

    def latex_document(self) -> str:
        """:meth:`latex` in a compilable document (``article`` with ``amsmath``)."""
        return latex_document([self])


def latex_document(derivations) -> str:
    r"""One compilable document (``article`` with ``amsmath``) holding each derivation's
    :meth:`~Derivation.latex` after a line that names its setting."""
    parts = []
    for dv in derivations:
        st = dv.setting
        fields = [("schedule", st.schedule), ("time", st.time), ("weighting", st.weighting),
                  ("target", st.target), ("s2", st.s2), ("C", st.C)]
        fields += [(name, getattr(st, name)) for name in ("alpha", "sigma", "weight_expr") if getattr(st, name)]
        named = ", ".join(f"{name}={breakable_text(latex_text(value))}" for name, value in fields)
        parts.append(f"{{\\raggedright\\noindent Derivation of $M^*/N$: {named}.\\par}}\n{dv.latex()}")
    return document("\n\n".join(parts), ("amsmath",))


def _fn(name: str) -> sp.Expr:
    return sp.Function(name)(S.t)


def _measure_reason(setting: Setting) -> str:
    if isinstance(setting.measure, Grid):
        return f"uniform on the {len(setting.measure.points)}-point grid {setting.time}, summed exactly"
    return f"uniform on {setting.time}, integrated"


def derive(setting: Setting | None = None, coefficient=None, variance=None) -> Derivation:
    """Build the derivation of :math:`M^*/N` for ``setting`` (default: the paper's).

    ``coefficient`` / ``variance`` override the setting's ``C`` / ``s2``; pass the symbols
    :data:`~memcross.theory.symbols.C` / :data:`~memcross.theory.symbols.s2` to keep them free.
    """
    setting = setting or Setting()
    coefficient = setting.C_exact if coefficient is None else coefficient
    variance = setting.s2_exact if variance is None else variance
    schedule, target, weighting = setting.schedule_obj, setting.target_obj, setting.weighting_obj
    cross = crossover(setting, coefficient, variance)
    lo, hi = setting.measure.bounds
    ranges = default_ranges((max(lo, sp.Rational(1, 10**6)), hi))

    # The loss factor, checked by a difference quotient of the target's linear relation.
    h1, h2 = sp.symbols("h_1 h_2", real=True)
    f1, f2 = target.from_x0(h1, x_t, schedule), target.from_x0(h2, x_t, schedule)
    quotient = sp.cancel(sp.expand((f1 - f2) ** 2) / (h1 - h2) ** 2)
    factor = target.loss_factor(schedule)
    w_target = weighting.on_target(setting.target, schedule)

    mean, mmse = derived_gaussian_mmse()
    delta_gen = excess_loss_generalizer(schedule.psi, variance, S.d)
    delta_pmem = excess_loss_partial_memorizer(coefficient, S.M, S.N, variance, S.d)
    # by linearity, term by term: lambda Delta_pmem (constant factor outside) and lambda Delta_gen,
    # the latter integrated in its own form, not the simplified integrand of A
    direct = setting.measure.expectation(sp.Add(cross.lam * delta_pmem, -cross.lam * delta_gen, evaluate=False))
    steps = [
        Step("schedule", sp.Tuple(_fn("alpha"), _fn("sigma")), sp.Tuple(schedule.alpha, schedule.sigma),
             f"the {schedule.name} schedule: x_t = alpha_t x0 + sigma_t z; alpha_0 = 1, sigma_0 = 0 checked"),
        Step("snr", _fn("psi"), schedule.psi, "psi_t = alpha_t^2 / sigma_t^2",
             schedule.alpha**2 / schedule.sigma**2),
        Step("loss factor", sp.Symbol(f"c_{target.name}"), factor,
             f"target {target.name} is affine in the x0 prediction: c = (d f / d x0)^2", quotient,
             lhs_latex=f"c_{{\\mathrm{{{target.name}}}}}(t)"),
        Step("target weight", sp.Symbol(f"w_{target.name}"), w_target,
             f"weighting {weighting.label} restated on target {target.name}: w = lambda / c",
             weighting.x0_weight(schedule) / factor, lhs_latex=f"w_{{\\mathrm{{{target.name}}}}}(t)"),
        Step("x0 weight", _fn("lambda"), cross.lam,
             f"weight in x0 units: lambda = c_{target.name} w_{target.name}", factor * w_target),
        Step("gaussian mmse", sp.Symbol("mmse"), gaussian_mmse(),
             "one Gaussian component: best affine estimator of x0 from x_t, times d (computed)", mmse,
             lhs_latex=r"E\,\|x_0 - E[x_0 \mid x_t]\|^2"),
        Step("posterior mean", sp.Symbol("E[x0|x_t=x]"), generalizer_component_mean(),
             "per coordinate, for N(mu, s2) (computed); the generalizer mixes these with softmax weights",
             mean, lhs_latex=r"E[x_0 \mid x_t = x]"),
        Step("generalizer excess", _fn("Delta_gen"), delta_gen,
             "Theorem 3.1: the Gaussian MMSE at this schedule's psi_t",
             mmse.subs({S.psi: schedule.alpha**2 / schedule.sigma**2, S.s2: variance})),
        Step("partial memorizer excess", sp.Symbol("Delta_pmem"), delta_pmem,
             "Theorem 3.2: constant in t, coefficient C", lhs_latex=r"\Delta_{\mathrm{pmem}}(M)"),
        Step("crossover condition", sp.Symbol("E_t[lambda*(Delta_pmem - Delta_gen)]"),
             S.d * variance * (coefficient * (1 - S.M / S.N) * B - A),
             "weighted excesses equal; by linearity, with A = E_t[lambda/(1 + psi s2)], B = E_t[lambda]",
             direct, ((A, cross.A), (B, cross.B)),
             lhs_latex=r"E_t[\lambda_t(\Delta_{\mathrm{pmem}} - \Delta_{\mathrm{gen}}(t))]"),
        Step("solution", S.M / S.N, 1 - A / (coefficient * B), "solve the condition for M",
             solve_crossover(A, B, coefficient)),
        Step("per-time crossover", sp.Symbol("(M*/N)_t"), cross.per_time, "the same with all weight at one t",
             per_time_critical_ratio(schedule.psi, variance, coefficient), lhs_latex=r"(M^*/N)_t"),
        Step("A", A, cross.A, _measure_reason(setting), cross.A_symbolic),
        Step("B", B, cross.B, _measure_reason(setting), cross.B_symbolic),
        Step("result", sp.Symbol("M*/N"), cross.ratio, "substitute A and B",
             1 - cross.A / (coefficient * cross.B), lhs_latex=r"M^*/N"),
    ]
    return Derivation(setting, steps, cross.ratio, ranges)
