"""Records: frozen results that serialize to JSON, whichever layer made them.

Every record is a frozen dataclass built on :class:`Record`, with one protocol:

* ``to_dict()``: plain JSON values, keys in field order — what a store keeps, byte for byte;
* ``from_dict(data, what=None)``: the record back from JSON; a key it does not know, a key it needs
  that is missing and a value of the wrong type are each a ValueError that names the record (or
  ``what``, such as the store it was read from) and the field;
* ``columns()``: the flat column names of ``row()``, the mapping a table shows.

A field's annotation is its check (:func:`memcross._checks.check_record`): ``float`` takes any
number, ``X | None`` also null, ``list[X]`` a list of them, a record an object read as that record.
A field with a default may be absent: stores written before the field existed hold records
without it. A field made with :func:`omitted` is left out of ``to_dict`` while it is None (a key
that some writers never write, such as the per-time losses a study cell does not keep).

The validation layer's results live here, not beside torch, so that tables, study reports and
figures read them without the validation extra. This module imports only
:mod:`memcross._checks` and :mod:`memcross.theory.setting` from the package.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from memcross._checks import check_record, unknown_name
from memcross.theory.setting import Setting, check_fields

#: Field metadata: left out of ``to_dict`` while None.
_OMIT = "omit-when-none"
#: Field metadata: no key of its own (not stored, or merged into the record's keys).
_NO_KEY = "no-key"


def omitted():
    """A field that may be absent, and that ``to_dict`` leaves out while it is None."""
    return field(default=None, metadata={_OMIT: True})


class Record:
    """The JSON protocol of the records, read from their dataclass fields (see the module)."""

    #: What the record is called in messages.
    RECORD = "record"

    @classmethod
    def schema(cls) -> dict:
        """The fields as a :func:`~memcross._checks.check_record` schema (``name?``: may be absent)."""
        return {f.name + ("?" if f.optional else ""): f.want for f in _fields(cls)}

    @classmethod
    def columns(cls) -> list[str]:
        """The flat column names of :meth:`row`."""
        return [f.name for f in _fields(cls)]

    def to_dict(self) -> dict:
        """Plain JSON values, keys in field order."""
        out = {}
        for f in _fields(type(self)):
            value = getattr(self, f.name)
            if not (f.omit and value is None):
                out[f.name] = _plain(value)
        return out

    def row(self) -> dict:
        """A flat mapping for tables: every field, those ``to_dict`` leaves out as None (so a
        table of old and new records has the same columns)."""
        return {f.name: _plain(getattr(self, f.name)) for f in _fields(type(self))}

    @classmethod
    def from_dict(cls, data, what: str | None = None):
        """The record of ``data`` (as from :meth:`to_dict`); a ValueError naming ``what`` (default:
        the record's name) and the field for an unknown, missing or mistyped key."""
        what = what or cls.RECORD
        if isinstance(data, dict):
            try:
                check_fields(_keyed(cls), data, cls.RECORD)
            except ValueError as exc:
                raise ValueError(str(exc) if what == cls.RECORD else f"{what}: {exc}") from None
        check_record(data, cls.schema(), what)
        return cls(**{f.name: data[f.name] if f.read is None else f.read(data[f.name], what, f.name)
                      for f in _fields(cls) if f.name in data})


@dataclass(frozen=True)
class _Field:
    name: str
    want: Any          # check_record schema
    read: Any          # None, or read(value, what, path) -> the field's value
    optional: bool
    omit: bool


@functools.cache
def _fields(cls) -> tuple[_Field, ...]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.metadata.get(_NO_KEY):
            continue
        want, read = _spec(hints[f.name])
        optional = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        out.append(_Field(f.name, want, read, optional, bool(f.metadata.get(_OMIT))))
    return tuple(out)


@functools.cache
def _keyed(cls) -> type:
    """A dataclass of the keyed fields of ``cls`` only: what :func:`check_fields` allows."""
    return dataclasses.make_dataclass(cls.__name__, [f.name for f in _fields(cls)])


def _spec(tp):
    """``(schema, read)`` of an annotation: its :func:`check_record` schema, and how a checked
    JSON value becomes the field's value (None: as it is)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        parts = [_spec(a) for a in args]
        inner = [r for _, r in parts if r is not None]
        read = None if not inner else (lambda v, what, path: None if v is None else inner[0](v, what, path))
        return tuple(w for w, _ in parts), read
    if origin in (list, tuple):
        want, item = _spec(args[0])
        if item is None and origin is list:
            return [want], None
        return [want], lambda v, what, path: origin(
            x if item is None else item(x, what, f"{path}[{i}]") for i, x in enumerate(v))
    if tp is type(None):
        return None, None
    if tp is Setting:
        return dict, _read_setting
    if isinstance(tp, type) and issubclass(tp, Record):
        return tp.schema(), lambda v, what, path: tp.from_dict(v, f"{what}: field {path!r}")
    if tp in (bool, int, float, str, dict, list):
        return tp, None
    raise TypeError(f"a record field of type {tp!r} has no JSON form")


def _read_setting(value: dict, what: str, path: str) -> Setting:
    """A record's setting, rebuilt and checked (an unknown data model or field is named)."""
    try:
        return Setting.from_dict(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what}: field {path!r}: {exc}") from None


def _plain(value):
    if isinstance(value, Setting):
        return value.to_dict()
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# -- predictions --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Prediction(Record):
    """A predicted critical ratio ``M*/N`` with everything needed to trust and reproduce it.

    ``setting`` is the :class:`~memcross.theory.setting.Setting` predicted (plain values in
    JSON). ``value`` is a float; ``value_text`` the same number at ``dps`` digits. ``error`` is the
    error estimate: quadrature's, 0 for exact sums; for ``finite-d`` the coefficient's accuracy
    carried to the root, and ``dps`` the digits that leaves. ``notes`` are validity notes.
    """

    RECORD = "prediction record"

    value: float
    value_text: str
    method: str
    setting: Setting
    dps: int
    error: float
    M_star: float
    coefficient: float
    uncollapsed_weight: float
    max_point_weight: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self, **kwargs) -> str:
        """The record as JSON text: :meth:`to_dict` through :func:`json.dumps` (``kwargs`` go to it)."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def columns(cls) -> list[str]:
        """The setting's fields, then the prediction's."""
        return [f.name for f in dataclasses.fields(Setting)] + [c for c in super().columns() if c != "setting"]

    def row(self) -> dict:
        """A flat mapping for tables: setting fields next to the results."""
        flat = dict(self.setting.to_dict())
        flat.update({k: v for k, v in self.to_dict().items() if k not in ("setting",)})
        flat["notes"] = "; ".join(self.notes)
        return flat


# -- the validation layer's results -------------------------------------------------------------
@dataclass(frozen=True)
class ExactCrossover(Record):
    """The exact crossover of the analytic denoisers on one sampled data set (a study's ``exact``
    cell): ``exact`` is ``M*/N`` interpolated, ``exact_M`` the smallest integer ``M*``."""

    RECORD = "exact crossover record"

    exact: float
    exact_M: int


@dataclass(frozen=True)
class PredictedCrossover(Record):
    """A study's ``predict`` cell: ``M*/N`` of the asymptotic formula (``C = 1``), of finite-d and of
    finite-snr (absent in cells stored before that method existed; None where a data model has none)."""

    RECORD = "prediction cell record"

    predicted_c1: float | None
    predicted_finite_d: float | None
    predicted_finite_snr: float | None = omitted()


@dataclass(frozen=True, kw_only=True)
class SizeResult(Record):
    """One trained size ``M`` of a sweep: memorization ratio of its samples (with a 95% bootstrap
    interval over ``samples``), learned variance, where its components sit, weighted train /
    validation losses (and per time, ``*_t``), the partial memorizer's losses and convergence."""

    RECORD = "size record"

    M: int
    M_over_N: float
    ratio: float
    ratio_low: float
    ratio_high: float
    samples: int
    variance: float
    means_near_train: int | None  # None for networks (no components)
    means_near_true: int | None
    templates_near_true: int | None = omitted()  # coloured templates only
    train_loss: float
    val_loss: float
    train_loss_t: list[float] | None = omitted()  # not kept in a study cell
    val_loss_t: list[float] | None = omitted()
    pmem_train_loss: float | None  # None for networks (M is a width)
    pmem_val_loss: float | None
    converged: bool
    loss_fell: bool
    variance_moved: bool
    final_loss: float
    steps_per_second: float
    #: Networks (``--family mlp``): M is the width, these its parameter count and effective size
    #: (the partial memorizer with the same weighted training loss; per time in ``M_eff_t``), and
    #: M_over_N is ``M_eff / N``.
    params: int | None = omitted()
    M_eff: float | None = omitted()
    M_eff_t: list[float] | None = omitted()


@dataclass(frozen=True, kw_only=True)
class SweepSummary(Record):
    """The summary row of a sweep: its setting and plan, the predicted ``M*/N`` (asymptotic with
    ``C = 1``, finite-d, finite-snr), the exact one, the observed transition (start / 50% / end), sizes that
    had not converged, and the generalizer's and memorizer's weighted losses."""

    RECORD = "sweep summary"

    d: int
    K: int
    N: int
    schedule: str
    time: str
    weighting: str
    data: str | None = None
    templates: str | None = None
    preset: str
    steps: int
    draws: int
    seed: int
    predicted_c1: float
    predicted_finite_d: float
    predicted_finite_snr: float | None = omitted()
    exact: float
    observed_start: float | None
    observed_mid: float | None
    observed_end: float | None
    transition_note: str | None = None
    baseline_ratio: float
    unconverged: str
    sizes: str
    gen_train_loss: float
    mem_train_loss: float
    gen_val_loss: float | None
    #: The trained family where it is not the data model's own (``mlp...``); then the observed
    #: transition is read on ``M_eff/N``, and ``observed_mid_params`` is its 50% point in parameters.
    family: str | None = omitted()
    observed_mid_params: float | None = omitted()


@dataclass(frozen=True)
class SweepResult(Record):
    """What a sweep produced: the summary row, per-size rows and (not stored) the exact-loss table."""

    RECORD = "sweep record"

    summary: SweepSummary
    sizes: list[SizeResult] = field(default_factory=list)
    exact: Any = field(default=None, compare=False, repr=False, metadata={_NO_KEY: True})

    @classmethod
    def columns(cls) -> list[str]:
        """The column names of a sweep's table (those of :class:`SweepSummary`)."""
        return SweepSummary.columns()

    def row(self) -> dict:
        """The summary row."""
        return self.summary.row()


#: What each study method's cell computes.
CELL_PAYLOADS: dict[str, type[Record]] = {"predict": PredictedCrossover, "exact": ExactCrossover,
                                          "validate": SweepResult}


@dataclass(frozen=True, kw_only=True)
class CellResult(Record):
    """A study cell's result: its method, setting and data seed, and the method's payload
    (:data:`CELL_PAYLOADS`), whose keys sit next to the cell's in :meth:`to_dict`."""

    RECORD = "cell record"

    method: str
    setting: dict
    seed: int
    label: str | None = omitted()
    payload: PredictedCrossover | ExactCrossover | SweepResult = field(metadata={_NO_KEY: True})

    #: Keys of a cell's configuration that the stored result does not repeat.
    CONFIG_KEYS = ("method", "setting", "seed")

    def to_dict(self) -> dict:
        """The record as a plain dict: the cell's own fields merged with its payload's."""
        return {**super().to_dict(), **self.payload.to_dict()}

    @classmethod
    def columns(cls) -> list[str]:
        """Table columns of cell rows: method, seed, label, every :class:`Setting` field, then each registered payload's
        columns, without repeats."""
        names = ["method", "seed", "label", *(f.name for f in dataclasses.fields(Setting))]
        for payload in CELL_PAYLOADS.values():
            names += [c for c in payload.columns() if c not in names]
        return names

    def row(self) -> dict:
        """One flat table row: the setting's values, method, seed, label and the payload's row."""
        return {**self.setting, "method": self.method, "seed": self.seed, "label": self.label, **self.payload.row()}

    @classmethod
    def from_dict(cls, data, what: str | None = None) -> CellResult:
        """Rebuild a cell result from :meth:`to_dict` output, checked against the schema; the payload class is chosen by
        ``method`` (ValueError for an unknown one). ``what`` names the record in errors."""
        what = what or cls.RECORD
        check_record(data, cls.schema(), what)
        payload = CELL_PAYLOADS.get(data["method"])
        if payload is None:
            raise ValueError(f"{what}: {unknown_name('cell method', data['method'], CELL_PAYLOADS)}")
        own = {f.name for f in _fields(cls)}
        rest = {k: v for k, v in data.items() if k not in own}
        return cls(**{k: v for k, v in data.items() if k in own}, payload=payload.from_dict(rest, what))

    @classmethod
    def from_stored(cls, config: dict, result, what: str | None = None) -> CellResult:
        """The record of a cell stored under ``config`` (a cell's configuration) with ``result``."""
        head = {k: config[k] for k in cls.CONFIG_KEYS if k in config} if isinstance(config, dict) else {}
        return cls.from_dict({**result, **head} if isinstance(result, dict) else result, what)
