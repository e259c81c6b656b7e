"""Speed and memory of the validation layer, each case in its own process (for its peak memory):

* training throughput at d = 30, N = 100, R = 100, M = 50, eps target, paper grid (target 100 steps/s);
* a batched sweep of 10 sizes M = 10..100 at the same setting with R = 10 (target 150 steps/s),
  and with R = 100 (the ``paper`` preset's work per step, for its CPU cost);
* the exact-loss crossover at (50, 12, 200) with 8 noise draws (target 10 s), training losses only
  and with validation losses too;
* the exact-loss crossover of the paper's coloured setting (K = 6, 15x15 templates, N = 100,
  8 draws; digits and procedural blobs) and its finite-d prediction;
* training throughput of the coloured-template family, 10 sizes M = 10..100 batched, R = 10
  (target 150 steps/s), and at R = 5 with stratified times (the coloured quick preset's step);
  and the ceiling that the colour-space step's matrix products alone put on it: the five
  ``3B x M x M`` products per model timed on their own, and at this machine's rate on one large
  float32 product;
* training throughput of the MLP family, 8 widths 8..1024 batched at (30, 4, 100), R = 10 (the
  network sweep of docs/neural.md);
* (long, only on request) the whole quick sweep of the paper's coloured setting with digits
  templates: ``--case sweep-colored-quick --store FILE`` (about 17 minutes on 2 cores).

Run: python benchmarks/bench_validation.py [--threads 2] [--case C ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

STEPS = 2000
WARMUP = 100


def _train_case(sizes, draws, steps=STEPS, **config):
    from memcross.theory import Setting
    from memcross.validation.data import make_gmm_data
    from memcross.validation.process import Process
    from memcross.validation.train import TrainConfig, Trainer

    data = make_gmm_data(30, 4, 100, seed=0)
    tr = Trainer(data, Process(Setting(d=30, K=4, N=100)), sizes,
                 TrainConfig(steps=WARMUP + 3 * steps, draws=draws, **config))
    tr.run(until=WARMUP)
    rates = []
    for k in range(3):
        start = time.perf_counter()
        tr.run(until=WARMUP + (k + 1) * steps)
        rates.append(steps / (time.perf_counter() - start))
    return {"steps_per_second": statistics.median(rates), "runs": rates}


def _exact_case(validation):
    from memcross.theory import Setting
    from memcross.validation.data import make_gmm_data
    from memcross.validation.exact import exact_losses
    from memcross.validation.process import Process

    runs, ratio = [], None
    for seed in range(3):
        start = time.perf_counter()
        data = make_gmm_data(50, 12, 200, seed=seed)
        ex = exact_losses(data, Process(Setting()).quadrature(), draws=8, seed=seed + 1, validation=validation)
        ratio = ex.crossover()[0]
        runs.append(time.perf_counter() - start)
    return {"seconds": statistics.median(runs), "runs": runs, "last_ratio": ratio}


def _exact_colored_case(templates):
    from memcross.numerics.predict import predict
    from memcross.templates import load_templates
    from memcross.theory import Setting
    from memcross.validation.exact import exact_losses
    from memcross.validation.lowrank import make_colored_data
    from memcross.validation.process import Process

    setting = Setting(K=6, N=100, d=675)
    runs, ratio = [], None
    for seed in range(3):
        start = time.perf_counter()
        data = make_colored_data(load_templates(templates, 6), 100, 1.0, seed=seed)
        ex = exact_losses(data, Process(setting).quadrature(), draws=8, seed=seed + 1, validation=False)
        ratio = ex.crossover()[0]
        runs.append(time.perf_counter() - start)
    start = time.perf_counter()
    pred = predict(Setting(data=f"colored-templates:templates={templates}", K=6, N=100), "finite-d").value
    return {"seconds": statistics.median(runs), "runs": runs, "last_ratio": ratio,
            "predict_seconds": time.perf_counter() - start, "predicted": pred}


def _train_colored_case(sizes, draws, steps=300, colour_space=True, **config):
    from memcross.templates import load_templates
    from memcross.theory import Setting
    from memcross.validation.lowrank import make_colored_data
    from memcross.validation.process import Process
    from memcross.validation.train import TrainConfig, Trainer

    data = make_colored_data(load_templates("digits", 6), 100, 1.0, seed=0)
    tr = Trainer(data, Process(Setting(d=1, K=6, N=100)), sizes,
                 TrainConfig(steps=20 + 3 * steps, draws=draws, **config))
    if not colour_space:  # the pixel-space path (the only one before the colour-space products)
        tr._factors = None
    tr.run(until=20)
    rates = []
    for k in range(3):
        start = time.perf_counter()
        tr.run(until=20 + (k + 1) * steps)
        rates.append(steps / (time.perf_counter() - start))
    return {"steps_per_second": statistics.median(rates), "runs": rates}


def _colored_products_case(sizes, draws, N=100, repeats=50):
    """The colour-space step's five ``3B x M x M`` products per model (``zeta R``, ``W_c R^T``,
    ``E R``, ``W_c^T E``, ``G_p^T zeta``; ``B = N R``), timed alone on random float32 arrays of the
    step's shapes: no step of that algorithm can run faster than this. Also the rate of one large
    product (2048^3), the best these threads reach, and the ceiling at that rate."""
    import torch

    gen = torch.Generator().manual_seed(0)
    rows = 3 * N * draws
    arrays = [(torch.randn(rows, M, generator=gen), torch.randn(M, M, generator=gen).triu(),
               torch.rand(rows, M, generator=gen)) for M in sizes]
    flop = sum(5 * 2 * rows * M * M for M in sizes)

    def products():
        for zeta, R, W in arrays:
            p = zeta @ R
            E = W @ R.T
            E @ R
            W.T @ E
            p.T @ zeta

    for _ in range(5):
        products()
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            products()
        runs.append(repeats / (time.perf_counter() - start))
    a, b = torch.randn(2048, 2048, generator=gen), torch.randn(2048, 2048, generator=gen)
    for _ in range(2):
        a @ b
    start = time.perf_counter()
    for _ in range(5):
        a @ b
    peak = 5 * 2 * 2048**3 / (time.perf_counter() - start)
    return {"steps_per_second": statistics.median(runs), "runs": runs, "gflop": flop / 1e9,
            "products_gflop_per_s": statistics.median(runs) * flop / 1e9, "peak_gflop_per_s": peak / 1e9,
            "ceiling_at_peak": peak / flop}


def _sweep_colored_case(store_path):
    """The coloured quick preset's sweep (10 sizes and the 3 around the 50% point, R = 5; steps and
    DDIM samples as the preset sets them) for the paper's coloured setting with digits templates, into ``store_path`` (what `memcross validate --data
    colored-templates --templates digits --store FILE` runs)."""
    from memcross.store import Store
    from memcross.theory import Setting
    from memcross.validation.sweep import plan_from, validate

    plan = plan_from(Setting(data="colored-templates:templates=digits", K=6, N=100), "quick", None, "cpu", 0)
    start = time.perf_counter()
    res = validate(plan, Store(store_path), log=lambda m: print(m, file=sys.stderr, flush=True))
    s = res.summary
    return {"seconds": time.perf_counter() - start, "runs": [], "last_ratio": s.exact,
            "observed_mid": s.observed_mid, "ratios": {r.M: r.ratio for r in res.sizes}}


#: The widths of the MLP sweep in docs/neural.md (``--family mlp``, depth 2) at (30, 4, 100), R = 10.
MLP_WIDTHS = (8, 16, 32, 64, 128, 256, 512, 1024)

#: Cases left out of the default run (too long); run them with ``--case``.
LONG = {"sweep-colored-quick"}

CASES = {
    "train-single": lambda: _train_case([50], 100),
    "train-batched": lambda: _train_case(list(range(10, 101, 10)), 10),
    "train-batched-R100": lambda: _train_case(list(range(10, 101, 10)), 100, steps=300),
    "exact": lambda: _exact_case(False),
    "exact+validation": lambda: _exact_case(True),
    "exact-colored-digits": lambda: _exact_colored_case("digits"),
    "exact-colored-blobs": lambda: _exact_colored_case("blobs"),
    "train-colored-batched-pixel": lambda: _train_colored_case(list(range(10, 101, 10)), 10, colour_space=False),
    "train-colored-batched": lambda: _train_colored_case(list(range(10, 101, 10)), 10),
    "train-colored-products": lambda: _colored_products_case(list(range(10, 101, 10)), 10),
    "train-colored-batched-R5": lambda: _train_colored_case(list(range(10, 101, 10)), 5, time_sampling="stratified"),
    "sweep-colored-quick": lambda: _sweep_colored_case(ARGS.store),
    "train-mlp-widths": lambda: _train_case(list(MLP_WIDTHS), 10, steps=100, family="mlp", init="default"),
    "train-mlp-widths-depth3": lambda: _train_case(list(MLP_WIDTHS), 10, steps=100, family="mlp:depth=3",
                                                   init="default"),
}
ARGS = argparse.Namespace(store=None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", choices=list(CASES), action="append",
                    help="a case to run (repeat for several, side by side in one run); one case alone "
                         "prints its JSON; default: every case but the long ones")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--store", default="bench-colored-quick.sqlite", help="store of the sweep-colored-quick case")
    args = ap.parse_args()
    ARGS.store = args.store
    if args.case and len(args.case) == 1:
        import torch

        torch.set_num_threads(args.threads)
        out = CASES[args.case[0]]()
        out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(out))
        return
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
          f"{args.threads}, Python {platform.python_version()}, load average {_load()} before")
    for case in args.case or [c for c in CASES if c not in LONG]:
        res = subprocess.run([sys.executable, __file__, "--case", case, "--threads", str(args.threads),
                              "--store", args.store], capture_output=True, text=True)
        if res.returncode:
            sys.exit(f"{case} failed:\n{res.stderr.strip()}")
        r = json.loads(res.stdout.strip().splitlines()[-1])
        if "steps_per_second" in r:
            runs = ", ".join(f"{x:.1f}" for x in r["runs"])
            extra = (f"; {r['gflop']:.2f} GFlop a step at {r['products_gflop_per_s']:.0f} GFlop/s, and "
                     f"{r['ceiling_at_peak']:.0f} steps/s at this machine's large-product rate "
                     f"({r['peak_gflop_per_s']:.0f} GFlop/s)" if "gflop" in r else "")
            print(f"{case}: {r['steps_per_second']:.1f} steps/s (median of {runs}{extra}); "
                  f"peak {r['peak_rss_mib']:.0f} MiB")
        else:
            runs = ", ".join(f"{x:.2f}" for x in r["runs"])
            extra = (f"; finite-d prediction {r['predicted']:.4f} in {r['predict_seconds']:.2f} s"
                     if "predicted" in r else "")
            print(f"{case}: {r['seconds']:.2f} s (median of {runs}; M*/N of the last data set "
                  f"{r['last_ratio']:.4f}{extra}); peak {r['peak_rss_mib']:.0f} MiB")
    print(f"load average {_load()} after")


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
