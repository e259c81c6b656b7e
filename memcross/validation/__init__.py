"""The validation layer (torch): data, analytic and trained denoisers, samplers, sweeps.

Two checks of a prediction against data:

* **exact** — :func:`exact_losses` / :meth:`ExactLosses.crossover`: the crossover of the analytic
  denoisers on one sampled data set, for every model size at once, no training;
* **observed** — :func:`validate`: GMM (or coloured-template) denoisers of several sizes trained together, their
  memorization ratios, and the transition (start / 50% / end) against the predictions.

Importing :mod:`memcross` never imports this package. Importing this package imports no torch
either: each name below is loaded from its module on first use (PEP 562), and the modules that
compute load torch. The store and the records of the results live outside this layer
(:mod:`memcross.store`, :mod:`memcross.records`), so that they are read without torch.
"""

import importlib

#: Each exported name and the module that defines it.
_EXPORTS = {
    "GMMData": "memcross.validation.data", "make_gmm_data": "memcross.validation.data",
    "posterior_mean": "memcross.validation.denoisers", "generalizer": "memcross.validation.denoisers",
    "memorizer": "memcross.validation.denoisers", "partial_memorizer": "memcross.validation.denoisers",
    "to_target": "memcross.validation.denoisers", "from_target": "memcross.validation.denoisers",
    "ExactLosses": "memcross.validation.exact", "exact_losses": "memcross.validation.exact",
    "memorization_ratio": "memcross.validation.metrics", "transition": "memcross.validation.metrics",
    "GMMFamily": "memcross.validation.model", "ColoredFamily": "memcross.validation.colored_model",
    "Process": "memcross.validation.process", "TimeTable": "memcross.validation.process",
    "ddim": "memcross.validation.sampler", "ddpm": "memcross.validation.sampler",
    "Store": "memcross.store", "PRESETS": "memcross.validation.presets", "SweepResult": "memcross.records",
    "ValidationPlan": "memcross.validation.sweep", "plan_from": "memcross.validation.sweep",
    "validate": "memcross.validation.sweep",
    "Trainer": "memcross.validation.train", "TrainConfig": "memcross.validation.train",
}

__all__ = [
    "GMMData", "make_gmm_data", "posterior_mean", "generalizer", "memorizer", "partial_memorizer", "to_target",
    "from_target", "ExactLosses", "exact_losses", "memorization_ratio", "transition", "GMMFamily", "ColoredFamily",
    "Process",
    "TimeTable", "ddim", "ddpm", "Store", "PRESETS", "SweepResult", "ValidationPlan", "plan_from", "validate",
    "Trainer", "TrainConfig",
]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # loaded once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
