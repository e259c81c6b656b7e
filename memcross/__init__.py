"""memcross: the memorization-generalization crossover in diffusion models.

Predict the critical model size at which a diffusion model starts reproducing its training data,
check the derivation behind the prediction, and verify it against exact losses and trained
models. ``import memcross`` never imports torch; the validation layer loads it when asked.
"""

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
)

__version__ = "0.1.0"

__all__ = [
    "Derivation",
    "Setting",
    "__version__",
    "check_expression",
    "critical_ratio",
    "crossover",
    "derive",
    "get_schedule",
    "get_target",
    "get_weighting",
    "parse_expression",
]
