"""``memcross exact``: the exact finite-sample crossover of the analytic denoisers (no training)."""

from __future__ import annotations

from memcross.cli.common import (
    _add_data_arguments,
    _add_setting_arguments,
    _add_store_arguments,
    _add_threads_argument,
    _open_store,
    _set_threads,
    _setting_from,
)
from memcross.theory.datamodels import DEFAULT_DATA


def _cmd_exact(args) -> int:
    import json

    import numpy as np

    from memcross.numerics.excess import finite_size
    from memcross.numerics.predict import predict
    from memcross.numerics.tables import render_table
    from memcross.validation.exact import check_exact_inputs
    from memcross.validation.sweep import build_data, exact_for

    setting = _setting_from(args)
    model = setting.data_model
    check_exact_inputs(setting, args.draws, args.seed)  # draws, seed, memory: before any work
    _set_threads(args)
    data = build_data(setting, args.seed)  # checks the data before the store is touched
    store = _open_store(args)
    ex = exact_for(setting, args.seed, args.draws, store, data)
    ratio, m_star = ex.crossover()
    base = setting.replace(C=1)
    fractions = [f for f in (0.1, 0.25, 0.5, 0.8, 0.95) if 1 <= round(f * setting.N) < setting.N]
    Ms = [int(round(f * setting.N)) for f in fractions]
    asym = predict(base, "asymptotic").value
    try:
        entry = finite_size(model)
    except ValueError:
        entry = None
    fin = predict(base, "finite-d").value if entry is not None else None
    theory_c = entry.coefficients(model, np.array(Ms)) if entry is not None and Ms else [None] * len(Ms)
    c_rows = [{"M/N": M / setting.N, "M": M, "C(M) measured": ex.coefficient(M), "C(M) finite-d theory": th}
              for M, th in zip(Ms, theory_c)]
    what = model.describe() if model.name != DEFAULT_DATA else \
        f"(d, K, N) = ({setting.d}, {setting.K}, {setting.N}), s2 = {setting.s2}"
    if model.name != DEFAULT_DATA:
        what += f", N = {setting.N}"
    if args.json:
        print(json.dumps({"setting": setting.to_dict(), "data": model.spec, "seed": args.seed, "draws": args.draws,
                          "exact": ratio, "M_star": m_star, "predicted_c1": asym, "predicted_finite_d": fin,
                          "t": ex.table.t.tolist(), "excess_generalizer": ex.excess_generalizer().tolist(),
                          "theory_excess_generalizer": ex.theory_excess_generalizer().tolist(),
                          "partial_memorizer": c_rows}, indent=2))
        return 0
    measured, theory, collapsed = ex.excess_generalizer(), ex.theory_excess_generalizer(), ex.collapsed()
    t_rows = [{"t": float(t), "psi": float(p), "L_gen - L_mem": float(m), model.formulas["short"]: float(th),
               "measured/theory": float(m / th), "collapsed": "yes" if c else "no"}
              for t, p, m, th, c in zip(ex.table.t, ex.table.psi, measured, theory, collapsed)]
    print(f"memcross exact: {what}, schedule {setting.schedule}, time {setting.time}, "
          f"weighting {setting.weighting}; {args.draws} noise draws, data seed {args.seed}")
    print()
    print(f"exact M*/N = {ratio:.4f}   (smallest M with weighted L_pmem,M <= L_gen: M* = {m_star})")
    print(f"predicted:  asymptotic (C = 1) {asym:.4f}" + (f",  finite-d {fin:.4f}" if fin is not None else ""))
    print()
    print(f"per-time excess of the generalizer over the memorizer (x0 units), measured vs {model.formulas['theorem']}:")
    print(render_table(t_rows, list(t_rows[0]), "markdown", digits=4))
    print()
    print(f"measured C(M) (mean over the {int(collapsed.sum())} collapsed times) vs the finite-d theory:")
    print(render_table(c_rows, list(c_rows[0]), "markdown", digits=4) if c_rows else "(N too small)")
    if np.any(~collapsed):
        print(f"note: {int((~collapsed).sum())} time(s) where the memorizer has not collapsed; "
              "the theory's excess is not expected to hold there")
    if store is not None:
        print(f"stored in {store.path}")
    return 0


def add_parser(sub) -> None:
    """Register ``memcross exact`` with the subcommand parser ``sub``."""
    p = sub.add_parser("exact", help="exact finite-sample crossover of the analytic denoisers (no training)")
    _add_setting_arguments(p)
    p.add_argument("--draws", type=int, default=8, help="noise draws per point and time (default 8)")
    p.add_argument("--seed", type=int, default=0, help="data-set seed (default 0)")
    _add_data_arguments(p)
    _add_store_arguments(p)
    _add_threads_argument(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cmd_exact)
