"""Presets of a trained sweep (``memcross validate --preset``). Plain values: importing this
module imports no torch, so study files and ``memcross list`` read them without the validation extra."""

from __future__ import annotations

#: Presets: the paper's protocol (docs/validation.md, "Training") and a CPU-sized one. Both use the paper's
#: optimizer and learning-rate schedule; ``quick`` trades noise draws for evaluation samples.
PRESETS: dict[str, dict] = {
    "paper": {"steps": 50_000, "draws": 100, "n_eval": 50},
    "quick": {"steps": 50_000, "draws": 10, "n_eval": 200},
}

#: Presets of the other data models' families, where their protocol differs. Coloured templates: the
#: authors' protocol for the image-like experiment (100,000 steps, warm-up over 5,000 steps to 1e-4,
#: then linear to 1e-8, each model's gradient clipped at norm 1e3, the colour standard deviation
#: starting at 1e-6, i.e. variance 1e-12), and a CPU-sized one: the authors' peak learning rate over
#: 15,000 steps of R = 5 stratified draws (each point's five times one per fifth of the grid), with
#: Adam's second moment averaged over 100 steps instead of 1,000, the colour means' and standard
#: deviation's learning rates 10x the peak (at 1x they move at Adam's top speed all run and end short
#: of their optimum) and the templates' 0.1x (they start on the samples' templates, and at 1x the
#: gradient noise keeps them jittering: every size ends at a higher loss; docs/reproduction.md). The
#: quick preset then trains three more sizes between the two whose ratios bracket 0.5 (``refine`` and
#: ``refine_around``, plan fields, not training ones): on the ten sizes M = 10 ... 100 the 50% point
#: is a straight line across a 10-sample gap, and it read 0.04-0.05 below the exact crossover.
DATA_PRESETS: dict[str, dict[str, dict]] = {
    "colored-templates": {
        "paper": {"steps": 100_000, "draws": 100, "n_eval": 50, "lr": 1e-4, "final_lr": 1e-8, "warmup": 0.05,
                  "clip": 1e3, "init_variance": 1e-12, "variance_param": "std"},
        "quick": {"steps": 15_000, "draws": 5, "n_eval": 100, "refine": 3, "refine_around": "mid",
                  "lr": 1e-4, "final_lr": 1e-6, "warmup": 0.05, "betas": (0.9, 0.99), "clip": 1e3,
                  "init_variance": 1e-12, "variance_param": "std",
                  "lr_factors": {"templates": 0.1, "colours": 10.0, "variance": 10.0},
                  "time_sampling": "stratified"},
    },
}


#: Presets of the MLP family (``--family mlp``), whatever the data: Adam with the GMM family's schedule,
#: more steps than the GMM quick preset (a network has to fit the score at every noise level).
FAMILY_PRESETS: dict[str, dict[str, dict]] = {
    "mlp": {
        "paper": {"steps": 50_000, "draws": 100, "n_eval": 50, "init": "default"},
        "quick": {"steps": 8_000, "draws": 10, "n_eval": 200, "init": "default", "lr": 3e-3, "final_lr": 3e-6},
    },
}


#: How many times a preset's content has changed since studies first keyed their cells by its name
#: (1 where it never has): a study's ``validate`` cell carries its preset's revision where it is
#: above 1 (:func:`preset_revision`), so a study store filled under an earlier content does not
#: answer for the new one, and the cells of unchanged presets keep their keys. Bump it with every
#: change of a preset's content (the tests pin each content to its revision).
REVISIONS: dict[tuple[str, str], int] = {
    ("colored-templates", "quick"): 2,  # 15,000 steps, then 3 sizes around the 50% point (2026-12-02)
}


def _table(data: str, family: str | None) -> str:
    """Which preset table :func:`get_preset` reads for ``data`` and ``family``: ``family:NAME``,
    the data model's name, or ``isotropic`` (the general presets)."""
    base = None if family is None else family.partition(":")[0].strip()
    if base in FAMILY_PRESETS:
        return f"family:{base}"
    return data if data in DATA_PRESETS else "isotropic"


def preset_revision(name: str, data: str = "isotropic", family: str | None = None) -> int:
    """The revision of the preset that :func:`get_preset` returns for these arguments (see
    :data:`REVISIONS`)."""
    return REVISIONS.get((_table(data, family), name), 1)


#: A preset's keys that belong to the sweep's plan, not to its training configuration.
PLAN_FIELDS = ("n_eval", "refine", "refine_around")


def preset_names() -> list[str]:
    """The names of the validation presets."""
    return list(PRESETS)


def get_preset(name: str, data: str = "isotropic", family: str | None = None) -> dict:
    """A copy of preset ``name``'s options for data model ``data`` (its own where it has one), or
    for the trained family ``family`` (``mlp...``) where one is named; ValueError for an unknown name."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    table = _table(data, family)
    if table.startswith("family:"):
        return dict(FAMILY_PRESETS[table.partition(":")[2]][name])
    return dict(DATA_PRESETS.get(table, {}).get(name, PRESETS[name]))
