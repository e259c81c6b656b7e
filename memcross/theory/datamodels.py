r"""Data models: what the training data is, as the theory sees it (a registry).

A data model is named in a setting by a spec string, like a weighting: ``isotropic`` (the default;
its dimension, components and variance are the setting's ``d``, ``K`` and ``s2``) or
``colored-templates:templates=digits,sc2=1``. Each gives the two quantities the crossover needs:

* the generalizer's excess over the memorizer at signal-to-noise ratio :math:`\psi`,
  :math:`\Delta_{gen}(\psi)` — the MMSE of one mixture component, averaged over components
  (:math:`d s_2/(1 + \psi s_2)` for the isotropic mixture, Theorem 3.1);
* the per-point cost of a point the partial memorizer does not hold, once the memorizer has
  collapsed onto the nearest training point: :math:`\Delta_{pmem}(M) \approx C (1 - M/N)\,c`
  (Theorem 3.2's form) with :math:`c` = :meth:`DataModel.point_cost`, the mean total variance of a
  component (:math:`d s_2`).

Their ratio :math:`g(\psi) = \Delta_{gen}(\psi)/c` is all the asymptotic crossover uses:
:math:`M^*/N = 1 - E_t[\lambda g(\psi_t)]/(C E_t[\lambda])`.

The memorizer has collapsed at time :math:`t` when :math:`\psi_t D^2 \ge` :data:`COLLAPSE_FACTOR`
:math:`\log N`, with :math:`D^2` the squared distance from a training point to the nearest other
one (:meth:`DataModel.collapse_distance2`; :math:`2 d s_2` for the isotropic mixture).

A data model from outside the package registers itself with :func:`register_data_model`::

    class TwoPoints(DataModel):
        name = "two-points"
        description = "..."
        parameters = {"r2": Parameter(1, "number", "squared distance")}
        def generalizer_excess(self, psi_t): ...
        def point_cost(self): ...
    register_data_model(TwoPoints)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import sympy as sp

from memcross._checks import split_spec
from memcross.theory.data import ColoredTemplateGMM, IsotropicGMM
from memcross.theory.schedules import simplest
from memcross.theory.symbols import psi

#: The memorizer counts as collapsed at t when psi_t x (nearest-neighbour distance)^2 >= COLLAPSE_FACTOR log N.
COLLAPSE_FACTOR = 10.0
DEFAULT_DATA = "isotropic"


@dataclass(frozen=True)
class Parameter:
    """A data-model parameter: its default, its kind (``"number"``: a positive number;
    ``"text"``; ``"integer"``: a non-negative integer) and what it means."""

    default: object
    kind: str
    description: str

    def convert(self, text: str, key: str, spec: str):
        """The parameter's value from its text in ``spec``; a ValueError naming ``key`` otherwise."""
        if self.kind == "text":
            if not text:
                raise ValueError(f"data {spec!r}: {key} must not be empty")
            return text
        try:
            value = int(text) if self.kind == "integer" else float(text)
        except ValueError:
            what = "an integer" if self.kind == "integer" else "a number"
            raise ValueError(f"data {spec!r}: {key} must be {what}, got {text!r}") from None
        if self.kind == "number" and not 0 < value < float("inf"):
            raise ValueError(f"data {spec!r}: {key} must be a positive number, got {text!r}")
        if self.kind == "integer" and value < 0:
            raise ValueError(f"data {spec!r}: {key} must be a non-negative integer, got {text!r}")
        return value


class DataModel:
    """A data model bound to a setting's ``d``, ``K``, ``N``, ``s2`` and its own parameters.

    Subclasses set :attr:`name`, :attr:`description`, :attr:`parameters` and define
    :meth:`generalizer_excess` and :meth:`point_cost`; :meth:`check` refuses what the model
    cannot describe, and :meth:`dimension` is the data's dimension when the model fixes it.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Parameter]] = {}
    #: Whether the model's statistics are exact numbers (predictions may then claim any precision);
    #: False where they come from float64 data (templates), which caps a prediction at what the
    #: float64 inputs carry.
    exact_statistics: ClassVar[bool] = True
    #: Setting fields this model defaults differently when a command line leaves them out.
    setting_defaults: ClassVar[dict] = {}
    #: The prediction method a command line uses when none is named.
    #: The method ``memcross predict`` uses when none is named: the most accurate one there is.
    default_method: ClassVar[str] = "finite-snr"
    #: Plain-text formulas for summaries: ``generalizer`` (Delta_gen) and ``point cost`` (c).
    formulas: ClassVar[dict[str, str]] = {"generalizer": "the generalizer's MMSE", "point cost": "its total variance",
                                          "short": "Delta_gen theory", "theorem": "theory"}

    def __init__(self, d: int, K: int, N: int, s2, params: dict | None = None):
        self.d, self.K, self.N, self.s2 = d, K, N, s2
        self.params = {k: p.default for k, p in self.parameters.items()}
        self.params.update(params or {})
        self.check()

    def check(self) -> None:
        """Refuse, with a ValueError that names the parameter, what this model cannot describe."""

    @property
    def spec(self) -> str:
        """The spec string that rebuilds this model (parameters at their defaults left out)."""
        given = [f"{k}={_text(v)}" for k, v in self.params.items() if v != self.parameters[k].default]
        return self.name + (":" + ",".join(given) if given else "")

    def dimension(self) -> int | None:
        """The data's dimension when the model fixes it (``None``: the setting's ``d``)."""
        return None

    def generalizer_excess(self, psi_t=psi) -> sp.Expr:
        r""":math:`\Delta_{gen}(\psi)`: the generalizer's excess over the memorizer (x0 units)."""
        raise NotImplementedError

    def point_cost(self) -> sp.Expr:
        r"""The collapsed per-point cost :math:`c`: :math:`\Delta_{pmem}(M) \approx C(1 - M/N)c`."""
        raise NotImplementedError

    def normalized_generalizer_excess(self, psi_t=psi, variance=None) -> sp.Expr:
        r""":math:`g(\psi) = \Delta_{gen}(\psi)/c` (``variance`` is the isotropic model's, kept symbolic
        when given as a symbol)."""
        return self.generalizer_excess(psi_t) / self.point_cost()

    def per_time_ratio(self, psi_t=psi, coefficient=1, variance=None) -> sp.Expr:
        r"""The per-time crossover :math:`1 - g(\psi_t)/C`."""
        ratio = 1 - self.normalized_generalizer_excess(psi_t, variance) / coefficient
        return simplest(ratio) if self.exact_statistics else ratio

    def collapse_distance2(self) -> float:
        """Squared distance from a training point to its nearest other one (the scale of the
        collapse criterion); by default a pair of independent points of one component."""
        return 2 * float(self.point_cost())

    def describe(self) -> str:
        """One line for headers and notes."""
        return self.spec

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r}, K={self.K}, N={self.N})"


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class Isotropic(DataModel):
    r""":math:`\frac1K\sum_k \mathcal N(\mu_k, s_2 I_d)` (the setting's ``d``, ``K``, ``s2``):
    :math:`\Delta_{gen} = d s_2/(1 + \psi s_2)`, :math:`c = d s_2`, :math:`D^2 = 2 d s_2`."""

    name = "isotropic"
    formulas = {"generalizer": "d s2 / (1 + psi_t s2)   (Theorem 3.1)", "point cost": "d s2   (Theorem 3.2)",
                "short": "d s2/(1+psi s2)", "theorem": "Theorem 3.1"}
    description = "isotropic Gaussian mixture: K components N(mu_k, s2 I_d), means on a sphere"

    @cached_property
    def gmm(self) -> IsotropicGMM:
        """The :class:`IsotropicGMM` of this model's ``d``, ``K`` and ``s2``."""
        return IsotropicGMM(self.d, self.K, self.s2)

    def generalizer_excess(self, psi_t=psi) -> sp.Expr:
        r""":math:`\Delta_{gen}(\psi) = d s_2/(1 + \psi s_2)` (Theorem 3.1, x0 units)."""
        return self.gmm.excess_generalizer(psi_t)

    def point_cost(self) -> sp.Expr:
        """The per-point cost :math:`c = d s_2`."""
        return sp.sympify(self.d) * sp.sympify(self.s2)

    def normalized_generalizer_excess(self, psi_t=psi, variance=None) -> sp.Expr:
        r""":math:`g(\psi) = 1/(1 + \psi s_2)`; ``variance`` replaces :math:`s_2` when given (e.g. as a symbol)."""
        return 1 / (1 + psi_t * (self.s2 if variance is None else variance))

    def per_time_ratio(self, psi_t=psi, coefficient=1, variance=None) -> sp.Expr:
        r"""The per-time crossover :math:`1 - 1/(C (1 + \psi_t s_2))`, simplified; ``variance`` replaces :math:`s_2`
        when given."""
        return simplest(1 - 1 / (coefficient * (1 + psi_t * (self.s2 if variance is None else variance))))

    def describe(self) -> str:
        """One line: ``isotropic (d, K, s2) = (...)``."""
        return f"isotropic (d, K, s2) = ({self.d}, {self.K}, {self.s2})"


class ColoredTemplates(DataModel):
    r"""Coloured templates: component :math:`k` is :math:`\mathcal N(0, s_c^2 (I_3 \otimes u_k
    u_k^\top))` on :math:`3P` coordinates (a random colour times a grayscale template); uniform
    priors. :math:`\Delta_{gen} = \frac1K\sum_k 3 l_k/(1 + \psi l_k)` with :math:`l_k = s_c^2
    \|u_k\|^2`, :math:`c = \frac1K\sum_k 3 l_k`. The template source's own parameters (``side``,
    ``sparsity``, ``seed``, ``bumps``) follow ``templates`` in the spec:
    ``colored-templates:templates=blobs,side=15,seed=3``; a file is ``templates=file:PATH.npy``.
    """

    name = "colored-templates"
    exact_statistics = False
    setting_defaults = {"K": 6, "N": 100}  # the paper's image experiment
    formulas = {"generalizer": "(1/K) sum_k 3 l_k / (1 + psi_t l_k),  l_k = sc2 ||u_k||^2   (rank-3 MMSE per template)",
                "point cost": "(1/K) sum_k 3 l_k   (mean colour variance)", "short": "(1/K) sum 3l/(1+psi l)",
                "theorem": "the rank-3 MMSE"}
    description = "coloured templates: a random colour (3 channels) times one of K grayscale templates"
    parameters = {
        "templates": Parameter("blobs", "text", "template source: blobs, digits or file:PATH.npy"),
        "sc2": Parameter(1.0, "number", "colour variance s_c^2"),
        "side": Parameter(None, "integer", "template side in pixels (blobs, digits)"),
        "sparsity": Parameter(None, "number", "share of nonzero pixels (blobs)"),
        "seed": Parameter(None, "integer", "random seed of the procedural templates (blobs)"),
        "bumps": Parameter(None, "integer", "Gaussian bumps per template (blobs)"),
    }

    @property
    def template_spec(self) -> str:
        """The spec :func:`~memcross.templates.load_templates` reads."""
        extra = [f"{k}={_text(self.params[k])}" for k in ("side", "sparsity", "seed", "bumps")
                 if self.params[k] is not None]
        return self.params["templates"] + (":" + ",".join(extra) if extra else "")

    @cached_property
    def templates(self):
        """The ``(K, P)`` float64 template array."""
        from memcross.templates import load_templates

        return load_templates(self.template_spec, self.K)

    def check(self) -> None:
        """Check the parameters and load the templates now; ``side``, ``sparsity``, ``seed`` and ``bumps`` are refused
        with a template file (ValueError)."""
        source = self.params["templates"]
        if source.startswith("file:") and any(self.params[k] is not None for k in ("side", "sparsity", "seed", "bumps")):
            raise ValueError("data 'colored-templates': side, sparsity, seed and bumps are for blobs or digits, "
                             "not for a template file")
        self.templates  # noqa: B018 - load (and check) the templates now

    @cached_property
    def gmm(self) -> ColoredTemplateGMM:
        """The :class:`ColoredTemplateGMM` of the templates' squared norms and ``sc2``."""
        return ColoredTemplateGMM(tuple(float(v) for v in (self.templates**2).sum(1)), self.params["sc2"])

    def dimension(self) -> int:
        """The data dimension :math:`3P`: three colour channels of ``P`` template pixels."""
        return 3 * self.templates.shape[1]

    def generalizer_excess(self, psi_t=psi) -> sp.Expr:
        r""":math:`\Delta_{gen}(\psi) = \frac1K\sum_k 3 l_k/(1 + \psi l_k)` (x0 units)."""
        return self.gmm.mmse(psi_t)

    def point_cost(self) -> sp.Expr:
        r"""The per-point cost :math:`c = \frac3K\sum_k l_k`, :math:`l_k = s_c^2\|u_k\|^2`."""
        return 3 * sp.Add(*self.gmm.eigenvalues()) / self.K

    def describe(self) -> str:
        """One line: the template spec, ``K``, ``P`` and ``sc2``."""
        return (f"coloured templates {self.template_spec!r} (K = {self.K}, P = {self.templates.shape[1]}, "
                f"sc2 = {self.params['sc2']:g})")


_REGISTRY: dict[str, type[DataModel]] = {}


def register_data_model(cls: type[DataModel]) -> type[DataModel]:
    """Add a :class:`DataModel` subclass to the registry under ``cls.name`` (usable as a decorator).
    A name already taken by another class is refused."""
    if not (isinstance(cls, type) and issubclass(cls, DataModel)) or not cls.name:
        raise ValueError(f"a data model must be a DataModel subclass with a name, got {cls!r}")
    if ":" in cls.name or "," in cls.name or cls.name != cls.name.strip():
        raise ValueError(f"data model name {cls.name!r} must not contain ':' or ',' or spaces")
    if _REGISTRY.get(cls.name, cls) is not cls:
        raise ValueError(f"data model {cls.name!r} is registered already")
    _REGISTRY[cls.name] = cls
    return cls


def unregister_data_model(name: str) -> None:
    """Remove ``name`` from the registry (the built-in models stay)."""
    if name in (Isotropic.name, ColoredTemplates.name):
        raise ValueError(f"data model {name!r} is built in and cannot be removed")
    _REGISTRY.pop(name, None)


def data_model_names() -> list[str]:
    """The registered data models' names."""
    return list(_REGISTRY)


def get_data_model_class(name: str) -> type[DataModel]:
    """The registered class of data model ``name``."""
    name, _ = split_spec(name, "data model", {k: [] for k in _REGISTRY})
    return _REGISTRY[name]


def parse_data_spec(spec: str) -> tuple[type[DataModel], dict]:
    """The class and parameters of ``name[:key=value,...]``, every value checked.

    >>> parse_data_spec("colored-templates:templates=digits,sc2=2")[1]
    {'templates': 'digits', 'sc2': 2.0}
    """
    name, given = split_spec(spec, "data model", {k: list(c.parameters) for k, c in _REGISTRY.items()})
    cls = _REGISTRY[name]
    return cls, {k: cls.parameters[k].convert(v, k, spec) for k, v in given.items()}


def get_data_model(spec: str = DEFAULT_DATA, d: int = 50, K: int = 12, N: int = 200, s2=1) -> DataModel:
    """The data model of ``spec`` bound to ``d``, ``K``, ``N``, ``s2`` (a setting does this for
    itself: :attr:`~memcross.theory.setting.Setting.data_model`)."""
    cls, params = parse_data_spec(spec)
    return cls(d, K, N, s2, params)


register_data_model(Isotropic)
register_data_model(ColoredTemplates)
