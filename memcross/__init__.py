"""memcross: the memorization-generalization crossover in diffusion models.

Predict the critical model size at which a diffusion model starts reproducing its training data,
check the derivation behind the prediction, and verify it against exact losses and trained
models. ``import memcross`` never imports torch; the validation layer loads it when asked.
"""

from memcross.numerics.predict import METHODS, predict
from memcross.records import Prediction
from memcross.theory import (
    Derivation,
    Setting,
    check_expression,
    critical_ratio,
    crossover,
    derive,
    get_schedule,
    get_target,
    get_weighting,
    parse_expression,
    schedule_names,
    target_names,
    weighting_names,
)
from memcross.theory.datamodels import (
    DataModel,
    data_model_names,
    get_data_model,
    register_data_model,
)

__version__ = "0.1.0"

__all__ = [
    "METHODS",
    "DataModel",
    "Derivation",
    "Prediction",
    "Setting",
    "__version__",
    "check_expression",
    "critical_ratio",
    "crossover",
    "data_model_names",
    "derive",
    "get_data_model",
    "get_schedule",
    "get_target",
    "get_weighting",
    "parse_expression",
    "predict",
    "register_data_model",
    "schedule_names",
    "target_names",
    "weighting_names",
]
