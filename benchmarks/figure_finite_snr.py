"""Per-time excess losses: the finite-SNR model against the exact Monte Carlo of one data set.

For an isotropic setting, draws the generalizer's excess over the memorizer and the partial
memorizer's excess for several sizes at every time of the grid: the finite-SNR model
(`memcross.numerics.finite_snr`, with its Monte Carlo standard errors) as lines, the exact losses
of one sampled data set (`memcross exact`'s table, mean over the noise draws, with the spread of the
draws' means over training points) as markers. Where the memorizer has not collapsed the finite-d
coefficient no longer describes the excess; the model should still follow the markers there.

Run: python benchmarks/figure_finite_snr.py [--dim 50 --components 12 --train 200] [--output FILE]
     python benchmarks/figure_finite_snr.py --data colored-templates:templates=digits --components 6 --train 100
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="isotropic", help="data model spec (default isotropic)")
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--components", type=int, default=12)
    parser.add_argument("--train", type=int, default=200)
    parser.add_argument("--output", default=None, help="default docs/figures/finite-snr-per-time[-DATA].png")
    opts = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from memcross.numerics.finite_snr import colored_losses, isotropic_losses
    from memcross.theory import Setting
    from memcross.validation.sweep import exact_for

    K, N = opts.components, opts.train
    setting = Setting(d=opts.dim, K=K, N=N) if opts.data == "isotropic" else Setting(data=opts.data, K=K, N=N)
    d = setting.d
    start = time.perf_counter()
    ex = exact_for(setting, 0, 8)
    exact_seconds = time.perf_counter() - start
    psi = ex.table.psi
    Ms = np.array(sorted({max(1, round(f * N)) for f in (0.25, 0.5, 0.75, 0.9)} | {N}))
    start = time.perf_counter()
    if opts.data == "isotropic":
        model = isotropic_losses(d, K, N, 1.0, psi, Ms)
    else:
        dm = setting.data_model
        model = colored_losses(dm.templates, dm.params["sc2"], N, psi, Ms)
    model_seconds = time.perf_counter() - start
    t = ex.table.t
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    gen_exact = ex.gen_train - ex.mem_train
    gen_model = model.gen - model.pmem[-1]
    gen_se = np.hypot(model.gen_se, model.pmem_se[-1])
    ax.plot(t, gen_model, color="k", label="generalizer (finite-snr)")
    ax.fill_between(t, gen_model - 2 * gen_se, gen_model + 2 * gen_se, color="k", alpha=0.15)
    ax.plot(t, gen_exact, "ko", ms=4, label="generalizer (exact, one data set)")
    for m, M in enumerate(Ms[:-1]):
        color = f"C{m}"
        pm_model = model.pmem[m] - model.pmem[-1]
        se = np.hypot(model.pmem_se[m], model.pmem_se[-1])
        ax.plot(t, pm_model, color=color, label=f"partial memorizer M/N = {M / N:.2f} (finite-snr)")
        ax.fill_between(t, pm_model - 2 * se, pm_model + 2 * se, color=color, alpha=0.15)
        ax.plot(t, ex.pmem_train[M - 1] - ex.mem_train, "o", color=color, ms=4)
    collapsed = ex.collapsed()
    if (~collapsed).any():
        ax.axvspan(t[~collapsed].min(), t.max(), color="0.9", zorder=0, label="memorizer not collapsed")
    ax.set_xlabel("t (vp schedule)")
    ax.set_ylabel("excess training loss over the memorizer (x0 units)")
    what = f"(d, K, N) = ({d}, {K}, {N})" if opts.data == "isotropic" else f"{opts.data}, (K, N) = ({K}, {N})"
    ax.set_title(f"{what}: finite-snr (lines, 2 s.e.) vs exact (markers)", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    suffix = "" if opts.data == "isotropic" else "-" + opts.data.split(":")[0] + "-" + \
        setting.data_model.params.get("templates", "")
    out = Path(opts.output or ROOT / "docs" / "figures" / f"finite-snr-per-time{suffix}.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    rel = np.abs(gen_model - gen_exact) / np.maximum(np.abs(gen_exact), 1e-9)
    print(f"wrote {out}; exact {exact_seconds:.1f} s, finite-snr {model_seconds:.1f} s")
    print("generalizer excess, |model - exact| / exact per time:", np.round(rel, 3).tolist())
    for m, M in enumerate(Ms[:-1]):
        pm_exact = ex.pmem_train[M - 1] - ex.mem_train
        pm_model = model.pmem[m] - model.pmem[-1]
        print(f"M/N = {M / N:.2f}: model - exact per time:", np.round(pm_model - pm_exact, 2).tolist())


if __name__ == "__main__":
    main()
