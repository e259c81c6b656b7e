"""The validation layer (torch): data, analytic and trained denoisers, samplers, sweeps, the store.

Two checks of a prediction against data:

* **exact** — :func:`exact_losses` / :meth:`ExactLosses.crossover`: the crossover of the analytic
  denoisers on one sampled data set, for every model size at once, no training;
* **observed** — :func:`validate`: GMM (or coloured-template) denoisers of several sizes trained together, their
  memorization ratios, and the transition (start / 50% / end) against the predictions.

Importing :mod:`memcross` never imports this package; importing this package imports torch.
"""

from memcross.store import Store
from memcross.validation.colored_model import ColoredFamily
from memcross.validation.data import GMMData, make_gmm_data
from memcross.validation.denoisers import (
    from_target,
    generalizer,
    memorizer,
    partial_memorizer,
    posterior_mean,
    to_target,
)
from memcross.validation.exact import ExactLosses, exact_losses
from memcross.validation.metrics import memorization_ratio, transition
from memcross.validation.model import GMMFamily
from memcross.validation.process import Process, TimeTable
from memcross.validation.sampler import ddim, ddpm
from memcross.validation.sweep import PRESETS, SweepResult, ValidationPlan, plan_from, validate
from memcross.validation.train import TrainConfig, Trainer

__all__ = [
    "GMMData", "make_gmm_data", "posterior_mean", "generalizer", "memorizer", "partial_memorizer", "to_target",
    "from_target", "ExactLosses", "exact_losses", "memorization_ratio", "transition", "GMMFamily", "ColoredFamily",
    "Process",
    "TimeTable", "ddim", "ddpm", "Store", "PRESETS", "SweepResult", "ValidationPlan", "plan_from", "validate",
    "Trainer", "TrainConfig",
]
