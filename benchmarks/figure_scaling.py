"""M*/N against N at fixed (d, K): the exact crossover of one data set (seed 0, 8 noise draws) from
N = 50 to 5000, and the three predictions (C = 1, finite-d, finite-snr) from N = 50 to 10^6.

The exact crossovers take long at large N (about 25 min at N = 5000, d = 20, on one core), so they
are kept in docs/figures/scaling-exact.json; `--run-exact` recomputes the missing ones (all with
`--force`) and adds them there. The predictions are computed every run (about a minute).

Run: python benchmarks/figure_scaling.py [--run-exact [--force]] [--output docs/figures/scaling.png]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXACT_FILE = ROOT / "docs" / "figures" / "scaling-exact.json"
SETTINGS = [(20, 3), (50, 12)]
EXACT_N = [50, 100, 200, 500, 1000, 2000, 5000]
PREDICTED_N = [50, 100, 200, 500, 1000, 2000, 5000, 10_000, 100_000, 1_000_000]
METHODS = [("asymptotic", "C = 1"), ("finite-d", "finite-d"), ("finite-snr", "finite-snr")]


def load_exact() -> list[dict]:
    return json.loads(EXACT_FILE.read_text()) if EXACT_FILE.exists() else []


def run_exact(force: bool) -> None:
    from memcross.theory import Setting
    from memcross.validation.sweep import build_data, exact_for

    rows = load_exact()
    have = {(r["d"], r["K"], r["N"]) for r in rows}
    for d, K in SETTINGS:
        for N in EXACT_N:
            if (d, K, N) in have and not force:
                continue
            setting = Setting(d=d, K=K, N=N)
            start = time.perf_counter()
            ex = exact_for(setting, 0, 8, None, build_data(setting, 0))
            ratio, m_star = ex.crossover()
            rows = [r for r in rows if (r["d"], r["K"], r["N"]) != (d, K, N)]
            rows.append({"d": d, "K": K, "N": N, "seed": 0, "draws": 8, "exact": float(ratio), "M_star": int(m_star),
                         "seconds": round(time.perf_counter() - start, 1)})
            rows.sort(key=lambda r: (r["d"], r["K"], r["N"]))
            EXACT_FILE.write_text(json.dumps(rows, indent=1) + "\n")
            print(f"exact (d, K, N) = ({d}, {K}, {N}): {ratio:.4f}", flush=True)


def predictions() -> dict:
    from memcross.numerics import predict
    from memcross.theory import Setting

    out = {}
    for d, K in SETTINGS:
        for N in PREDICTED_N:
            for method, _ in METHODS:
                start = time.perf_counter()
                record = predict(Setting(d=d, K=K, N=N), method)
                out[(d, K, N, method)] = (record.value, record.error, time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-exact", action="store_true", help="compute the missing exact crossovers")
    parser.add_argument("--force", action="store_true", help="with --run-exact: recompute them all")
    parser.add_argument("--output", default=str(ROOT / "docs" / "figures" / "scaling.png"))
    opts = parser.parse_args()
    if opts.run_exact:
        run_exact(opts.force)
    exact = load_exact()
    pred = predictions()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(SETTINGS), figsize=(11, 4.2), sharey=True)
    for ax, (d, K) in zip(axes, SETTINGS):
        rows = [r for r in exact if (r["d"], r["K"]) == (d, K)]
        ax.plot([r["N"] for r in rows], [r["exact"] for r in rows], "ko", label="exact (seed 0, 8 draws)")
        for (method, label), style in zip(METHODS, ["C2--", "C1-.", "C0-"]):
            vals = [pred[(d, K, N, method)] for N in PREDICTED_N]
            ax.errorbar(PREDICTED_N, [v[0] for v in vals], yerr=[v[1] for v in vals], fmt=style[2:],
                        color=style[:2], marker=".", label=label, capsize=2)
        ax.axhline(0.8, color="0.7", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("N (training points)")
        ax.set_title(f"d = {d}, K = {K} (vp, paper grid, x0-uniform)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("M*/N")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(opts.output, dpi=120)
    print(f"wrote {opts.output}")

    print("\n| (d, K) | N | exact | C = 1 | finite-d | finite-snr | finite-snr time |")
    print("|---|---|---|---|---|---|---|")
    for d, K in SETTINGS:
        by_n = {r["N"]: r["exact"] for r in exact if (r["d"], r["K"]) == (d, K)}
        for N in PREDICTED_N:
            cells = [f"{pred[(d, K, N, m)][0]:.4f}" for m, _ in METHODS[:2]]
            v, e, t = pred[(d, K, N, "finite-snr")]
            ex = f"{by_n[N]:.4f}" if N in by_n else "-"
            print(f"| ({d}, {K}) | {N:,} | {ex} | {' | '.join(cells)} | {v:.4f} ± {e:.4f} | {t:.2f} s |")
    print(f"\npeak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
