"""Speed of the finite-SNR predictor: one prediction at N = 10^6 (target < 1 s on 2 cores), and
how the cost grows with N, K, d and the size of the data model, every training point drawn
(N < 2000) against only the points near each query (N >= 2000).

Run: python benchmarks/bench_finite_snr.py
"""

from __future__ import annotations

import os

from bench_predict import timed  # the median-of-runs timer (this folder is on the path)

from memcross.numerics import predict
from memcross.numerics.finite_snr import POPULATION_N
from memcross.theory import Setting


def row(label: str, setting: Setting, repeat: int = 3) -> None:
    record = predict(setting, "finite-snr")  # warm the weight's lambdify
    med, runs = timed(lambda: predict(setting, "finite-snr"), repeat)
    mode = "near points" if setting.N >= POPULATION_N else "every point"
    print(f"| {label} | {mode} | {record.value:.4f} ± {record.error:.4f} | {med:.3f} s "
          f"({', '.join(f'{r:.2f}' for r in runs)}) |", flush=True)


def main() -> None:
    print(f"load average before: {os.getloadavg()}")
    print("| setting | drawn | M*/N | median time (runs) |\n|---|---|---|---|")
    row("paper, N = 10^6 (target < 1 s)", Setting(N=1_000_000), repeat=5)
    for N in (200, 1000, 1999, 2000, 10_000, 100_000, 10_000_000):
        row(f"(50, 12), N = {N:,}", Setting(N=N))
    for K in (3, 24):
        row(f"(50, {K}), N = 10^6", Setting(K=K, N=1_000_000))
    for d in (20, 200):
        row(f"({d}, 12), N = 10^6", Setting(d=d, N=1_000_000))
    row("digits K = 6, N = 10^6", Setting(data="colored-templates:templates=digits", K=6, N=1_000_000))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
