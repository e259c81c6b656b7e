"""The trained coloured-template transition next to the authors' curve, the exact crossover and the predictions.

Reads the stores of `memcross validate --data colored-templates --templates X` sweeps (one per
template set) and draws, per template set, the memorization ratio against M/N with its 95%
bootstrap interval, the authors' reported ratios (Fashion-MNIST templates, the same K = 6, 15x15,
N = 100 setting), and vertical lines at the exact crossover of the same data set and at the
asymptotic, finite-d and finite-snr predictions (as the sweep stored them).

Run: python benchmarks/figure_colored_reproduction.py digits=runs/digits.sqlite blobs=runs/blobs.sqlite
     [--output docs/figures/colored-reproduction.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The authors' memorization ratios at M/N = 0.1 ... 1.0 (their image-like experiment).
AUTHORS = (0.06, 0.04, 0.02, 0.06, 0.04, 0.14, 0.18, 0.26, 0.58, 1.00)

MARKS = (("exact", "exact crossover", "black", "-"), ("predicted_c1", "asymptotic C = 1", "tab:red", "--"),
         ("predicted_finite_d", "finite-d", "tab:purple", "-."), ("predicted_finite_snr", "finite-snr", "tab:brown", ":"))


def _sweep(path: str):
    """The sizes (sorted by M) and the summary of the one sweep in store ``path``."""
    from memcross.store import Store

    store = Store(path, create=False)
    summaries = store.records("summary")
    if len(summaries) != 1:
        raise SystemExit(f"{path}: expected one sweep summary, found {len(summaries)}")
    sizes = sorted((r for _, r in store.records("size")), key=lambda r: r["M"])
    return sizes, summaries[0][1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stores", nargs="+", metavar="NAME=STORE", help="a label and the store of its sweep")
    parser.add_argument("--output", default=str(ROOT / "docs" / "figures" / "colored-reproduction.png"))
    opts = parser.parse_args()
    pairs = [s.split("=", 1) for s in opts.stores]
    if any(len(p) != 2 for p in pairs):
        raise SystemExit("each store must be given as NAME=STORE")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(pairs), figsize=(5.2 * len(pairs), 3.8), squeeze=False)
    for ax, (name, path) in zip(axes[0], pairs):
        sizes, summary = _sweep(path)
        x = [r["M_over_N"] for r in sizes]
        y = [r["ratio"] for r in sizes]
        err = [[r["ratio"] - r["ratio_low"] for r in sizes], [r["ratio_high"] - r["ratio"] for r in sizes]]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=f"ours ({name}), 95% bootstrap")
        ax.plot([0.1 * (i + 1) for i in range(len(AUTHORS))], AUTHORS, marker="s", ls="--", color="tab:orange",
                label="authors (Fashion-MNIST)")
        for key, label, colour, style in MARKS:
            if summary.get(key) is not None:
                ax.axvline(summary[key], color=colour, ls=style, lw=1, label=f"{label} = {summary[key]:.3f}")
        if summary.get("observed_mid") is not None:
            ax.axvline(summary["observed_mid"], color="tab:blue", ls=(0, (1, 3)), lw=1.5,
                       label=f"ours: 50% = {summary['observed_mid']:.3f}")
        ax.set_xlabel("$M/N$")
        ax.set_ylabel("memorization ratio")
        ax.set_title(f"coloured {name}: K = {summary['K']}, N = {summary['N']}, {summary['steps']} steps")
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    out = Path(opts.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
