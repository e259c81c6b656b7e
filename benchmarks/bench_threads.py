"""The effect of torch's thread count on `memcross exact`, under the machine's current load.

Runs ``memcross exact --no-store --threads T`` (the paper's headline setting, 8 noise draws) for
each thread count in turn, ``--repeat`` times, each in its own process, and prints the wall time
of each run with the 1-minute load average at its start. Alternating the counts keeps a change of
load from favouring one of them. Also prints the default thread count ``memcross`` would pick now.

Run: python benchmarks/bench_threads.py [--threads 1,2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    counts = [int(x) for x in args.threads.split(",")]
    from memcross._checks import available_cpus, default_threads

    print(f"machine: {platform.processor() or platform.machine()}, {available_cpus()} CPUs available, "
          f"python {platform.python_version()}; default --threads now: {default_threads()}")
    times: dict[int, list[float]] = {c: [] for c in counts}
    for rep in range(args.repeat):
        for c in counts:
            load = os.getloadavg()[0]
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "memcross", "exact", "--no-store", "--threads", str(c)],
                           check=True, capture_output=True)
            wall = time.perf_counter() - start
            times[c].append(wall)
            print(f"run {rep + 1}: --threads {c}: {wall:6.1f} s  (load average {load:.2f} at start)", flush=True)
    base = statistics.median(times[counts[0]])
    for c in counts:
        med = statistics.median(times[c])
        print(f"--threads {c}: median {med:.1f} s, {med / base:.2f}x the time of --threads {counts[0]}")


if __name__ == "__main__":
    main()
