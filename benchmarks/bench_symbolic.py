"""Wall time of the text commands over every built-in schedule x weighting x time measure.

Each run is its own process (``python -m memcross ...`` from this checkout, interpreter start-up
included, nothing cached between runs), killed after ``--timeout`` seconds. Commands:
``predict``, ``derive``, ``derive --latex`` and ``derive --verify``, at the default precision.

Run: python benchmarks/bench_symbolic.py [--jobs 2] [--timeout 60] [--slowest 10] [--json FILE]
Prints the slowest runs, every run over the budget, every run that failed (a traceback, a
timeout, a ``derive --verify`` step that failed, or a refusal other than a non-integrable weight)
and the load average; the figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEDULES = ["vp", "vp-cosine", "vp-linear", "ve", "flow"]
WEIGHTINGS = ["x0-uniform", "eps-uniform", "score-uniform", "velocity-uniform", "v-uniform", "uniform", "elbo",
              "min-snr", "min-snr:gamma=2", "sigmoid", "sigmoid:b=-2", "edm", "edm:sd=1"]
TIMES = ["grid:0.001,0.999,26", "interval:0,1", "interval:0.001,0.999"]
COMMANDS = {"predict": ["predict"], "derive": ["derive"], "derive --latex": ["derive", "--latex"],
            "derive --verify": ["derive", "--verify"]}
BUDGET = 15.0
#: Refusals that are the right answer: the weight is not integrable on the interval.
EXPECTED_REFUSAL = "not integrable"


def combinations(schedules, weightings, times, commands):
    for schedule, weighting, time_spec, command in itertools.product(schedules, weightings, times, commands):
        if weighting.startswith("edm") and schedule != "ve":
            continue  # EDM is defined for the variance-exploding schedule only
        yield schedule, weighting, time_spec, command


def run_one(case, timeout: float) -> dict:
    schedule, weighting, time_spec, command = case
    args = [*COMMANDS[command], "--schedule", schedule, "--weighting", weighting, "--time", time_spec]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, "-m", "memcross", *args], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=timeout)
        rc, stderr, stdout = out.returncode, out.stderr, out.stdout
    except subprocess.TimeoutExpired:
        rc, stderr, stdout = None, "", ""
    seconds = time.perf_counter() - start
    problem = None
    if rc is None:
        problem = f"timeout after {timeout:g} s"
    elif "Traceback" in stderr:
        problem = "traceback: " + stderr.strip().splitlines()[-1]
    elif rc == 1:
        problem = "verification failed: " + next((ln for ln in stdout.splitlines() if "failed" in ln), "")
    elif rc == 2 and EXPECTED_REFUSAL not in stderr:
        problem = "refused: " + stderr.strip()
    elif rc not in (0, 2):
        problem = f"exit code {rc}"
    return {"schedule": schedule, "weighting": weighting, "time": time_spec, "command": command, "rc": rc,
            "seconds": round(seconds, 3), "problem": problem,
            "refusal": stderr.strip() if rc == 2 and problem is None else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a run is killed (default 60)")
    parser.add_argument("--slowest", type=int, default=10, help="how many of the slowest runs to list")
    parser.add_argument("--schedules", default=",".join(SCHEDULES))
    parser.add_argument("--weightings", default=",".join(WEIGHTINGS), help="comma-separated (parameters with ':')")
    parser.add_argument("--times", default=";".join(TIMES), help="semicolon-separated time measures")
    parser.add_argument("--commands", default=",".join(COMMANDS), help="comma-separated: " + ", ".join(COMMANDS))
    parser.add_argument("--json", default=None, help="write every run to FILE")
    opts = parser.parse_args()
    cases = list(combinations(opts.schedules.split(","), opts.weightings.split(","), opts.times.split(";"),
                              opts.commands.split(",")))
    load_before = os.getloadavg()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=opts.jobs) as pool:
        results = list(pool.map(lambda c: run_one(c, opts.timeout), cases))
    wall = time.perf_counter() - started
    load_after = os.getloadavg()

    print(f"machine: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"runs: {len(results)} ({opts.jobs} at a time), wall time {wall:.0f} s")
    print("load average (1, 5, 15 min) before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}".format(
        *load_before, *load_after))
    ranked = sorted(results, key=lambda r: -r["seconds"])
    print(f"\nslowest {opts.slowest}:")
    for r in ranked[:opts.slowest]:
        print(f"  {r['seconds']:7.2f} s  rc={r['rc']}  memcross {r['command']} --schedule {r['schedule']} "
              f"--weighting {r['weighting']} --time {r['time']}")
    over = [r for r in results if r["seconds"] > BUDGET]
    print(f"\nover {BUDGET:g} s: {len(over)}")
    for r in over:
        print(f"  {r['seconds']:7.2f} s  memcross {r['command']} --schedule {r['schedule']} --weighting {r['weighting']} "
              f"--time {r['time']}")
    problems = [r for r in results if r["problem"]]
    print(f"\nproblems: {len(problems)}")
    for r in problems:
        print(f"  memcross {r['command']} --schedule {r['schedule']} --weighting {r['weighting']} --time {r['time']}: "
              f"{r['problem']}")
    refusals = sorted({(r["schedule"], r["weighting"], r["time"]) for r in results if r["refusal"]})
    print(f"\nsettings refused as not integrable (exit 2, one line): {len(refusals)}")
    for schedule, weighting, time_spec in refusals:
        print(f"  --schedule {schedule} --weighting {weighting} --time {time_spec}")
    if opts.json:
        Path(opts.json).write_text(json.dumps({"load_before": load_before, "load_after": load_after, "wall": wall,
                                               "runs": results}, indent=1))


if __name__ == "__main__":
    main()
