"""Speed of predictions: in-process asymptotic (dps 50), the float64 fast path over 10^5
settings, one finite-d prediction, and `memcross predict` as a whole process.

Run: python benchmarks/bench_predict.py
"""

from __future__ import annotations

import resource
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

from memcross.numerics import fast_critical_ratios, predict
from memcross.numerics.coefficient import _min_distance_table
from memcross.theory import Setting


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def main() -> None:
    setting = Setting()
    predict(setting, dps=50)  # warm caches (schedule simplification, lambdify)
    med, _ = timed(lambda: predict(setting, dps=50), 20)
    print(f"asymptotic, paper setting, dps=50, in-process: median {1000 * med:.1f} ms (20 runs)")

    schedules = ["vp", "vp-cosine", "vp-linear", "ve", "flow"]
    weightings = ["x0-uniform", "eps-uniform", "elbo", "min-snr:gamma=5"]
    s2 = np.geomspace(0.01, 100, 5000)  # 5 x 4 x 5000 = 10^5 settings
    bases = [Setting(schedule=s, weighting=w) for s in schedules for w in weightings]

    def fast():
        return [fast_critical_ratios(b, s2).value for b in bases]

    fast()
    med, runs = timed(fast, 5)
    n = len(bases) * s2.size
    print(f"fast path: {n} settings (5 schedules x 4 weightings x 5000 s2, paper grid): median {med:.3f} s (5 runs)")

    def finite():
        _min_distance_table.cache_clear()
        return predict(setting, method="finite-d")

    med, _ = timed(finite, 5)
    print(f"finite-d, (d, K, N) = (50, 12, 200), cold coefficient cache: median {med:.3f} s (5 runs)")

    exe = shutil.which("memcross")
    cmd = [exe, "predict"] if exe else [sys.executable, "-m", "memcross", "predict"]
    med, runs = timed(lambda: subprocess.run(cmd, check=True, capture_output=True), 5)
    print(f"`memcross predict` whole process: median {med:.3f} s (runs {', '.join(f'{r:.3f}' for r in runs)})")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this benchmark process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
