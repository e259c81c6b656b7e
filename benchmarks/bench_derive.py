"""Wall time of `memcross derive` (vp / x0-uniform / paper grid) as a whole process.

Run: python benchmarks/bench_derive.py [--repeat 5]
Prints each run and the median; the figure goes to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("args", nargs="*", default=["derive"])
    opts = parser.parse_args()
    exe = shutil.which("memcross")
    cmd = [exe] if exe else [sys.executable, "-m", "memcross"]
    cmd += opts.args
    times = []
    for _ in range(opts.repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    print("command:", " ".join(["memcross", *opts.args]))
    print("runs (s):", ", ".join(f"{t:.3f}" for t in times))
    print(f"median (s): {statistics.median(times):.3f}")


if __name__ == "__main__":
    main()
