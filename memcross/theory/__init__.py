"""memcross.theory: the symbolic layer (sympy only).

Schedules, targets, weightings, the isotropic GMM's excess losses, the crossover equation and
its solution, derivations that verify themselves, and the safe parser for user expressions.
"""

from memcross.theory.check import check_expression, quantity_names, toolkit_quantity
from memcross.theory.crossover import Crossover, critical_ratio, crossover, per_time_critical_ratio
from memcross.theory.data import (
    IsotropicGMM,
    derived_gaussian_mmse,
    excess_loss_generalizer,
    excess_loss_partial_memorizer,
    gaussian_mmse,
    generalizer_component_mean,
)
from memcross.theory.derivation import Derivation, Step, VerificationReport, derive
from memcross.theory.equivalence import Verdict, compare
from memcross.theory.measures import PAPER_GRID, Grid, Interval, parse_time_measure
from memcross.theory.parser import ExpressionError, parse_expression
from memcross.theory.schedules import Schedule, ScheduleError, custom_schedule, get_schedule, schedule_names
from memcross.theory.setting import Setting
from memcross.theory.targets import Target, get_target, target_names
from memcross.theory.weightings import Weighting, convert_weight, get_weighting, weighting_names

__all__ = [
    "PAPER_GRID", "Crossover", "Derivation", "ExpressionError", "Grid", "Interval", "IsotropicGMM",
    "Schedule", "ScheduleError", "Setting", "Step", "Target", "Verdict", "VerificationReport",
    "Weighting", "check_expression", "compare", "convert_weight", "critical_ratio", "crossover",
    "custom_schedule", "derive", "derived_gaussian_mmse", "excess_loss_generalizer",
    "excess_loss_partial_memorizer", "gaussian_mmse", "generalizer_component_mean", "get_schedule",
    "get_target", "get_weighting", "parse_expression", "parse_time_measure", "per_time_critical_ratio",
    "quantity_names", "schedule_names", "target_names", "toolkit_quantity", "weighting_names",
]
