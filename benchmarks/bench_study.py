"""The paper's 64-cell predict + exact study (the first part of studies/paper-gmm.toml) on each
executor: in-process, --workers 2, --dask-local 2. Each run is a fresh `memcross study run` process
with a fresh store; wall time and peak memory (the main process, and the largest child) are printed.

Run: python benchmarks/bench_study.py ["in-process" "--workers 2" "--dask-local 2"]  (default: all three)
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STUDY = Path(__file__).resolve().parent.parent / "studies" / "paper-gmm.toml"


def predict_exact_only(tmp: Path) -> Path:
    text = STUDY.read_text()
    head = text.split('[[part]]\nmethods = ["validate"]')[0]
    path = tmp / "paper-gmm-predict-exact.toml"
    path.write_text(head)
    return path


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        study = predict_exact_only(Path(tmp))
        cases = (("in-process", []), ("--workers 2", ["--workers", "2"]), ("--dask-local 2", ["--dask-local", "2"]))
        only = sys.argv[1:]
        for name, extra in [c for c in cases if not only or c[0] in only]:
            store = Path(tmp) / f"{name.strip('-').replace(' ', '-')}.sqlite"
            cmd = [sys.executable, "-m", "memcross", "study", "run", str(study), "--store", str(store),
                   "--no-progress", *extra]
            code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
                    "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
                    "print(round(time.perf_counter() - t, 2), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
                    "r.returncode, r.stdout.strip().splitlines()[-1])")
            out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True, check=True)
            seconds, rss, rc, last = out.stdout.split(" ", 3)
            print(f"{name}: {seconds} s wall, peak {int(rss) / 1024:.0f} MiB (largest process), exit {rc}: {last.strip()}")
    print(f"(peak memory of this script itself: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
          f"{time.strftime('%Y-%m-%d')})")


if __name__ == "__main__":
    main()
