"""The setting of a prediction: data, schedule, time measure, weighting, target.

A :class:`Setting` is a small frozen dataclass of plain values (strings and numbers), so that it
serializes to JSON/TOML and keys a store. Its parts are validated when it is built; the theory
objects (schedule, weighting, ...) are built from it on demand.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property

import sympy as sp

from memcross._checks import check_int, did_you_mean
from memcross.theory.datamodels import DEFAULT_DATA, DataModel, parse_data_spec
from memcross.theory.measures import PAPER_GRID, Grid, Interval, exact_number, parse_time_measure
from memcross.theory.parser import NumberRangeError
from memcross.theory.schedules import Schedule, custom_schedule, get_schedule, schedule_names
from memcross.theory.targets import Target, get_target
from memcross.theory.weightings import Weighting, get_weighting


def check_fields(cls, data: dict, what: str) -> dict:
    """``data`` as a dict if every key is a field of dataclass ``cls``, else a ValueError that
    names the unknown keys and the allowed ones."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {what} field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(names))}")
    return dict(data)


def _positive_int(value, name: str) -> int:
    return check_int(value, name)


#: The default dimension; a data model that fixes the dimension replaces it.
DEFAULT_D = 50


@dataclass(frozen=True)
class Setting:
    """Everything a prediction depends on.

    >>> Setting().critical_inputs()
    ('vp', 'grid:0.001,0.999,26', 'x0-uniform', 'x0')
    >>> Setting(s2=-1)
    Traceback (most recent call last):
    ...
    ValueError: s2 must be positive, got -1
    """

    schedule: str = "vp"
    time: str = PAPER_GRID
    weighting: str = "x0-uniform"
    target: str = "x0"
    s2: float | int | str = 1
    C: float | int | str = 1
    d: int = DEFAULT_D
    K: int = 12
    N: int = 200
    alpha: str | None = None
    sigma: str | None = None
    t_max: float | int | str | None = None
    weight_expr: str | None = field(default=None)
    data: str = DEFAULT_DATA

    def __post_init__(self):
        for name in ("s2", "C"):
            value = getattr(self, name)
            try:
                exact = exact_number(value, name)
            except NumberRangeError:
                raise
            except ValueError:
                raise ValueError(f"{name} must be a positive number, got {value!r}") from None
            if not exact > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        for name in ("d", "K", "N"):
            _positive_int(getattr(self, name), name)
        if self.K > self.N:
            raise ValueError(f"K must be <= N (each component needs a training point), got K={self.K}, N={self.N}")
        if self.schedule == "custom":
            if not self.alpha or not self.sigma:
                raise ValueError("schedule 'custom' needs both alpha and sigma expressions in t")
        elif self.alpha or self.sigma:
            raise ValueError(f"alpha/sigma expressions are only used with schedule 'custom', not {self.schedule!r}")
        elif self.schedule not in schedule_names():
            raise ValueError(f"unknown schedule {self.schedule!r}; known schedules: {', '.join(schedule_names())}, custom"
                             f"{did_you_mean(self.schedule, [*schedule_names(), 'custom'])}")
        if self.t_max is not None:
            try:
                t_max = exact_number(self.t_max, "t_max")
            except ValueError:
                raise ValueError(f"t_max must be a positive number, got {self.t_max!r}") from None
            if not t_max > 0:
                raise ValueError(f"t_max (the end of the custom schedule's time range) must be positive, "
                                 f"got {self.t_max!r}")
        get_target(self.target)
        get_weighting(self.weighting, self.target, self.weight_expr)
        dim = self.data_model.dimension()
        if dim is not None and self.d != dim:
            if self.d != DEFAULT_D:
                raise ValueError(f"d = {self.d} does not fit data {self.data!r}, whose dimension is {dim}; leave d out")
            object.__setattr__(self, "d", dim)
            self.data_model.d = dim
        measure = parse_time_measure(self.time)
        lo, hi = measure.bounds
        if hi > self.schedule_max:
            raise ValueError(f"time {self.time!r} reaches t = {hi}, beyond schedule {self.schedule!r}'s range [0, {self.schedule_max}]")

    # -- theory objects ---------------------------------------------------------------------
    @cached_property
    def data_model(self) -> DataModel:
        """The data model of :attr:`data`, bound to this setting's ``d``, ``K``, ``N``, ``s2``."""
        cls, params = parse_data_spec(self.data)
        return cls(self.d, self.K, self.N, self.s2_exact, params)

    @property
    def schedule_max(self) -> sp.Rational:
        """The schedule's last time :math:`t_{max}`, exact: ``t_max`` (default 1) for a custom schedule, else the named
        schedule's."""
        if self.schedule == "custom":
            return exact_number(self.t_max if self.t_max is not None else 1, "t_max")
        return get_schedule(self.schedule).t_max

    @cached_property
    def schedule_obj(self) -> Schedule:
        """The :class:`Schedule`: built from ``alpha`` and ``sigma`` for ``custom``, else the named one."""
        if self.schedule == "custom":
            return custom_schedule(self.alpha, self.sigma, self.schedule_max)
        return get_schedule(self.schedule)

    @cached_property
    def measure(self) -> Grid | Interval:
        """The time measure parsed from ``time``: a :class:`Grid` or an :class:`Interval`."""
        return parse_time_measure(self.time)

    @cached_property
    def weighting_obj(self) -> Weighting:
        """The :class:`Weighting` of ``weighting``, ``target`` and ``weight_expr``."""
        return get_weighting(self.weighting, self.target, self.weight_expr)

    @property
    def target_obj(self) -> Target:
        """The :class:`Target` named by ``target``."""
        return get_target(self.target)

    @property
    def s2_exact(self) -> sp.Rational:
        """``s2`` as an exact rational."""
        return exact_number(self.s2, "s2")

    @property
    def C_exact(self) -> sp.Rational:
        """``C`` as an exact rational."""
        return exact_number(self.C, "C")

    # -- plumbing ---------------------------------------------------------------------------
    def critical_inputs(self) -> tuple[str, str, str, str]:
        """The parts that ``M*/N`` depends on besides ``s2`` and ``C``."""
        return (self.schedule, self.time, self.weighting, self.target)

    def replace(self, **changes) -> Setting:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain values, without unset optional fields (nor the default data model)."""
        return {k: v for k, v in dataclasses.asdict(self).items()
                if v is not None and not (k == "data" and v == DEFAULT_DATA)}

    @classmethod
    def from_dict(cls, data: dict) -> Setting:
        """Build from a mapping (a TOML table, JSON); unknown keys are refused by name."""
        return cls(**check_fields(cls, data, "setting"))
