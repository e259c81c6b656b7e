"""The symbols every theory expression is written in (notation of the project's theory notes).

All are created once, here, with the assumptions the derivations rely on, so that expressions
built in different modules (or parsed from user text) compare equal.
"""

from __future__ import annotations

import sympy as sp

#: Diffusion time. Positive: every schedule is evaluated on ``0 < t <= t_max``.
t = sp.Symbol("t", positive=True)
#: Per-coordinate variance of each mixture component.
s2 = sp.Symbol("s2", positive=True)
#: Ambient dimension, number of components, training-set size, model size.
d = sp.Symbol("d", positive=True, integer=True)
K = sp.Symbol("K", positive=True, integer=True)
N = sp.Symbol("N", positive=True, integer=True)
M = sp.Symbol("M", positive=True, integer=True)
#: Coefficient of the partial memorizer's excess loss (Theorem 3.2 brackets it in [1, 2]).
C = sp.Symbol("C", positive=True)
#: Generic schedule functions, used where a derivation holds for every schedule.
alpha = sp.Symbol("alpha", positive=True)
sigma = sp.Symbol("sigma", positive=True)
psi = sp.Symbol("psi", nonnegative=True)
#: Weighting parameters.
gamma = sp.Symbol("gamma", positive=True)
sd = sp.Symbol("sd", positive=True)
b = sp.Symbol("b", real=True)

#: Names a user expression may use, mapped to the canonical symbols.
USER_SYMBOLS: dict[str, sp.Symbol] = {
    "t": t,
    "s2": s2,
    "d": d,
    "K": K,
    "N": N,
    "M": M,
    "C": C,
    "psi": psi,
    "alpha": alpha,
    "sigma": sigma,
    "gamma": gamma,
    "sd": sd,
    "b": b,
}
