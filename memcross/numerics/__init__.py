"""memcross.numerics: theory made into numbers (mpmath, numpy, scipy; never torch).

High-precision predictions with error estimates and validity notes, the finite-dimension
coefficient, a vectorized float64 fast path for sweeps, tables and figures.
"""

from memcross.numerics.coefficient import coefficient, coefficient_same_component, coefficients
from memcross.numerics.predict import METHODS, fast_critical_ratios, predict, sweep
from memcross.numerics.tables import render_table
from memcross.records import Prediction

__all__ = [
    "METHODS", "Prediction", "coefficient", "coefficient_same_component", "coefficients",
    "fast_critical_ratios", "predict", "render_table", "sweep",
]
