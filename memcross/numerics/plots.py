"""Figures (matplotlib, headless Agg): per-time crossover, phase diagram, coefficient curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from memcross.numerics.coefficient import coefficients  # noqa: E402
from memcross.numerics.predict import fast_critical_ratios, per_time_curve, predict  # noqa: E402
from memcross.theory.measures import Grid  # noqa: E402
from memcross.theory.setting import Setting  # noqa: E402

FIGURES = ("per-time", "phase", "coefficient")


def _save(fig, path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in (".pdf", ".png", ".svg"):
        raise ValueError(f"figure file must end in .pdf, .png or .svg, got {str(path)!r}")
    if not path.parent.exists():
        raise ValueError(f"folder {str(path.parent)!r} does not exist")
    fig.savefig(path, bbox_inches="tight", dpi=150)
    plt.close(fig)
    return path


def per_time_figure(setting: Setting, path) -> Path:
    """The per-time crossover :math:`M^*_t/N` with the x0 weight overlaid and :math:`M^*/N` marked."""
    lo, hi = (float(b) for b in setting.measure.bounds)
    ts = np.linspace(lo, hi, 400)
    curve, weight = per_time_curve(setting, ts)
    value = predict(setting).value
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(ts, curve, color="C0", label=r"per-time $M^*_t/N$")
    ax.axhline(value, color="C3", ls="--", label=f"$M^*/N$ = {value:.4f}")
    ax.set_xlabel("$t$")
    ax.set_ylabel("$M^*/N$")
    ax.set_ylim(0, 1.02)
    ax2 = ax.twinx()
    if isinstance(setting.measure, Grid):
        pts = np.array([float(p) for p in setting.measure.points])
        _, w = per_time_curve(setting, pts)
        ax2.bar(pts, w / w.sum(), width=(hi - lo) / (3 * len(pts)), color="C1", alpha=0.5, label="weight share")
        ax2.set_ylabel("weight share")
    else:
        ax2.plot(ts, weight / np.trapezoid(weight, ts), color="C1", alpha=0.6, label="weight density")
        ax2.set_ylabel("weight density")
    ax.set_title(f"{setting.schedule}, {setting.weighting}, s2={setting.s2}")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="lower left", fontsize=8)
    return _save(fig, path)


def phase_figure(setting: Setting, path, schedules=("vp", "vp-cosine", "vp-linear", "ve", "flow"),
                 s2_range=(0.05, 20.0)) -> Path:
    """:math:`M^*/N` against :math:`s_2` (log scale) for several schedules (fast path)."""
    s2 = np.geomspace(*s2_range, 200)
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for name in schedules:
        st = setting.replace(schedule=name)
        ax.plot(s2, fast_critical_ratios(st, s2, float(st.C_exact)).value, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("$s_2$")
    ax.set_ylabel("$M^*/N$")
    ax.set_title(f"{setting.weighting}, {setting.time}, C={setting.C}")
    ax.legend(fontsize=8)
    return _save(fig, path)


def coefficient_figure(path, dims=(10, 30, 50, 100), K: int = 12, N: int = 200) -> Path:
    """The finite-dimension coefficient :math:`C(M)` against :math:`M/N` for a few ``d``."""
    Ms = np.arange(1, N + 1)
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for d in dims:
        ax.plot(Ms / N, coefficients(int(d), K, N, Ms), label=f"d = {d}")
    ax.axhline(1, color="gray", ls=":", lw=1)
    ax.axhline(2, color="gray", ls=":", lw=1)
    ax.set_xlabel("$M/N$")
    ax.set_ylabel("$C(d, K, N, M)$")
    ax.set_title(f"K = {K}, N = {N}")
    ax.legend(fontsize=8)
    return _save(fig, path)
