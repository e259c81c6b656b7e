"""Figures (matplotlib, headless Agg): per-time crossover, phase diagram, coefficient curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from memcross.numerics.coefficient import coefficients  # noqa: E402
from memcross.numerics.predict import fast_critical_ratios, per_time_curve, predict  # noqa: E402
from memcross.records import SizeResult  # noqa: E402
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


def transition_figure(rows: list[SizeResult], marks: dict, path, baselines: dict | None = None) -> Path:
    """Memorization ratio (with its interval) and weighted train / validation losses against
    ``M/N``, with the predicted and exact crossovers marked as vertical lines; for networks
    (rows with ``params``) against ``M_eff/N``, and a third panel of the ratio against the
    parameter count.

    ``rows``: the sweep's sizes (:class:`~memcross.records.SizeResult`: ``M_over_N``, ``ratio``,
    ``ratio_low``, ``ratio_high``, ``train_loss``, ``val_loss``, ``pmem_train_loss``); ``marks``:
    label -> ``M/N`` (``None`` values are skipped); ``baselines``: label -> a weighted loss drawn
    as a horizontal line.
    """
    if not rows:
        raise ValueError("no sizes to plot")
    x = np.array([r.M_over_N for r in rows])
    ratio = np.array([r.ratio for r in rows])
    lo = np.array([r.ratio_low for r in rows])
    hi = np.array([r.ratio_high for r in rows])
    network = all(getattr(r, "params", None) is not None for r in rows)
    fig, axes = plt.subplots(1, 3 if network else 2, figsize=(15 if network else 10, 3.6))
    ax1, ax2 = axes[:2]
    ax1.errorbar(x, ratio, yerr=[ratio - lo, hi - ratio], fmt="o-", color="C0", capsize=3,
                 label="memorization ratio (95% bootstrap)")
    if network:  # networks: the ratio against the parameter count too
        ax3 = axes[2]
        ax3.errorbar([r.params for r in rows], ratio, yerr=[ratio - lo, hi - ratio], fmt="o-", color="C0", capsize=3)
        ax3.set_xscale("log")
        ax3.set_ylim(-0.03, 1.03)
        ax3.set_xlabel("parameters")
        ax3.set_ylabel("memorization ratio")
        for r in rows:
            ax3.annotate(f"w={r.M}", (r.params, r.ratio), textcoords="offset points", xytext=(3, -10), fontsize=6)
    ax1.set_ylim(-0.03, 1.03)
    ax1.set_ylabel("memorization ratio")
    ax2.plot(x, [r.train_loss for r in rows], "o-", color="C0", label="trained: train loss")
    ax2.plot(x, [r.val_loss for r in rows], "s-", color="C1", label="trained: validation loss")
    if all(r.pmem_train_loss is not None for r in rows):
        ax2.plot(x, [r.pmem_train_loss for r in rows], ":", color="C2", label="partial memorizer: train")
    for i, (label, value) in enumerate((baselines or {}).items()):
        if value is not None:
            ax2.axhline(value, color=("0.35", "0.6", "0.8")[i % 3], ls="-.", lw=1, label=label)
    ax2.set_ylabel(r"weighted loss $E_t[\lambda L_t]$ (x0 units)")
    styles = ["--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1))]
    for i, (label, value) in enumerate((k, v) for k, v in marks.items() if v is not None):
        for ax in (ax1, ax2):
            ax.axvline(value, color=f"C{3 + i}", ls=styles[i % len(styles)], lw=1.2,
                       label=f"{label} = {value:.3f}" if ax is ax1 else None)
    for ax in (ax1, ax2):
        ax.set_xlabel(r"$M_\mathrm{eff}/N$ (effective size)" if network else "$M/N$")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def study_figure(rows: list[dict], path) -> Path:
    """Critical size ``M*`` against ``N`` for every ``(d, K, N)`` of a study: exact, finite-d,
    asymptotic (``C = 1``) and observed (where trained), with the line through the origin at the
    mean exact ratio ("double the data, double the threshold")."""
    if not rows:
        raise ValueError("no study rows to plot")
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    styles = {"exact": ("o", "C0", "exact"), "predicted_finite_d": ("s", "C1", "finite-d"),
              "predicted_c1": ("^", "C2", "asymptotic C=1"), "observed_mid": ("*", "C3", "observed 50%")}
    ns = np.array([r["N"] for r in rows], dtype=float)
    jitter = {k: (i - 1.5) * 0.006 * ns.max() for i, k in enumerate(styles)}
    for key, (marker, color, label) in styles.items():
        pts = [(r["N"] + jitter[key], r[key] * r["N"]) for r in rows if r.get(key) is not None]
        if pts:
            x, y = zip(*pts)
            ax.scatter(x, y, marker=marker, color=color, s=22 if marker != "*" else 60, alpha=0.7, label=label)
    exact = [r["exact"] for r in rows if r.get("exact") is not None]
    if exact:
        grid = np.linspace(0, ns.max() * 1.05, 10)
        ax.plot(grid, np.mean(exact) * grid, color="0.5", lw=1, ls="--", label=f"M* = {np.mean(exact):.3f} N")
    ax.set_xlabel("training set size $N$")
    ax.set_ylabel("critical model size $M^*$")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def sample_grid_figure(pairs: list[dict], path, side: int | None = None) -> Path:
    """Generated coloured images next to their nearest training image, one row per model size.

    ``pairs``: ``[{"M", "samples", "nearest", "copy"}]`` with ``(n, 3 P)`` arrays (channel-major,
    ``P = side^2``; see :func:`memcross.validation.sweep.sample_pairs`). Colours are shown as
    ``0.5 + 0.5 x / s`` with ``s`` the largest ``|x|`` of the training images shown, so a zero
    pixel is grey; a sample that counts as a copy is framed in red."""
    if not pairs:
        raise ValueError("no sizes with trained models to draw")
    n = pairs[0]["samples"].shape[0]
    P = pairs[0]["samples"].shape[1] // 3
    side = side or int(round(P ** 0.5))
    if side * side != P:
        raise ValueError(f"images of {P} pixels per channel are not square; give side")
    scale = max(float(np.abs(p["nearest"]).max()) for p in pairs) or 1.0

    def rgb(x):
        return np.clip(0.5 + 0.5 * x.reshape(3, side, side).transpose(1, 2, 0) / scale, 0, 1)

    fig, axes = plt.subplots(len(pairs), 2 * n, figsize=(1.1 * 2 * n, 1.15 * len(pairs)), squeeze=False)
    for r, p in enumerate(pairs):
        for j in range(n):
            for k, (img, title) in enumerate(((p["samples"][j], "sample"), (p["nearest"][j], "nearest"))):
                ax = axes[r, 2 * j + k]
                ax.imshow(rgb(img), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if k == 0 and bool(p["copy"][j]):
                    for spine in ax.spines.values():
                        spine.set_color("red")
                        spine.set_linewidth(2)
                if r == 0:
                    ax.set_title(title, fontsize=7)
        axes[r, 0].set_ylabel(f"M = {p['M']}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)

