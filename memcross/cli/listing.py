"""``memcross list``: what the registries hold."""

from __future__ import annotations

from memcross.theory.datamodels import data_model_names


def _list_rows(what: str) -> list[dict]:
    """Rows of ``memcross list WHAT``, read from the registries."""
    if what == "schedules":
        from memcross.theory.schedules import get_schedule, schedule_names

        rows = []
        for name in schedule_names():
            s = get_schedule(name)
            rows.append({"name": name, "alpha_t": str(s.alpha), "sigma_t": str(s.sigma), "t range": f"[0, {s.t_max}]",
                         "description": s.description})
        rows.append({"name": "custom", "alpha_t": "--alpha EXPR", "sigma_t": "--sigma EXPR",
                     "t range": "[0, --t-max] (default 1)", "description": "your expressions in t, validated"})
        return rows
    if what == "weightings":
        from memcross.theory.weightings import get_weighting, weighting_names

        rows = []
        for name in weighting_names():
            kind = get_weighting(name, "x0", "1" if name == "custom" else None).kind
            params = ", ".join(f"{k}={v}" for k, v in kind.defaults) or "-"
            rows.append({"name": name, "parameters (defaults)": params, "stated on": kind.stated_on or "the target",
                         "description": kind.description})
        return rows
    if what == "targets":
        from memcross.theory.targets import get_target

        return [{"name": n, "description": get_target(n).description} for n in _target_names()]
    if what == "methods":
        from memcross.numerics.predict import METHOD_DESCRIPTIONS

        return [{"name": name, "description": text} for name, text in METHOD_DESCRIPTIONS.items()]
    if what == "data":
        from memcross.theory.datamodels import get_data_model_class

        rows = []
        for name in data_model_names():
            cls = get_data_model_class(name)
            params = [f"{k}={p.default}" for k, p in cls.parameters.items() if p.default is not None]
            params += [k for k, p in cls.parameters.items() if p.default is None]
            fields = ", ".join(f"{k}={v}" for k, v in cls.setting_defaults.items())
            rows.append({"name": name, "parameters (defaults)": ", ".join(params) or "- (the setting's d, K, s2)",
                         "setting defaults": fields or "-", "description": cls.description})
        return rows
    from memcross.validation.presets import DATA_PRESETS, FAMILY_PRESETS, PLAN_FIELDS, PRESETS

    rows = []
    families = [(f"any (--family {name})", presets) for name, presets in FAMILY_PRESETS.items()]
    for data, presets in [("isotropic", PRESETS), *DATA_PRESETS.items(), *families]:
        for n, p in presets.items():
            rest = ", ".join(f"{k}={v}" for k, v in p.items()
                             if k not in ("steps", "draws", *PLAN_FIELDS))
            refine = f"{p['refine']} ({p.get('refine_around', 'transition')})" if p.get("refine") else "-"
            rows.append({"name": n, "data": data, "steps": p["steps"], "draws": p["draws"], "n_eval": p["n_eval"],
                         "refine": refine, "training": rest or "the defaults (docs/validation.md)"})
    return rows

def _target_names() -> list[str]:
    from memcross.theory.targets import target_names

    return target_names()

LIST_KINDS = ("schedules", "weightings", "targets", "methods", "data", "presets")

def _cmd_list(args) -> int:
    import json

    from memcross.numerics.tables import render_table

    kinds = [args.what] if args.what else list(LIST_KINDS)
    out = {k: _list_rows(k) for k in kinds}
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    for k in kinds:
        print(f"{k}:")
        print(render_table(out[k], list(out[k][0]), "markdown"))
        print()
    return 0


def add_parser(sub) -> None:
    """Register ``memcross list`` with the subcommand parser ``sub``."""
    p = sub.add_parser("list", help="what the registries hold: schedules, weightings, targets, methods, data, presets")
    p.add_argument("what", nargs="?", choices=LIST_KINDS, help="one kind (default: all)")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=_cmd_list)
