r"""The partial memorizer's excess at finite size, per data model (a registry beside the theory's).

The asymptotic crossover uses the collapsed form :math:`\Delta_{pmem}(M) = C(1 - M/N)\,c` with a
constant :math:`C`. At finite dimension the cost of a point the partial memorizer does not hold is
the expected squared distance to the **nearest** memorized point, which depends on :math:`M`; the
``finite-d`` method writes it as a coefficient :math:`C(M)` in units of the data model's
:math:`c` (:meth:`~memcross.theory.datamodels.DataModel.point_cost`):

.. math:: \Delta_{pmem}(M) = (1 - M/N)\, C(M)\, c .

Entries:

* ``isotropic`` — :func:`~memcross.numerics.coefficient.coefficients`: order statistics of
  noncentral chi-square distances in :math:`d` dimensions (relative accuracy
  :data:`~memcross.numerics.coefficient.COEFFICIENT_RELATIVE_ERROR`);
* ``colored-templates`` — :func:`~memcross.numerics.coefficient.colored_excess`: order statistics
  in the 3-dimensional colour space, across templates (relative accuracy
  :data:`~memcross.numerics.coefficient.COLORED_EXCESS_RELATIVE_ERROR`).

A data model registered from outside may add its own with :func:`register_finite_size`; without
one, ``finite-d`` predictions for it are refused by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from memcross.numerics.coefficient import (
    COEFFICIENT_RELATIVE_ERROR,
    COLORED_EXCESS_RELATIVE_ERROR,
    coefficients,
    colored_excess,
    colored_nearest_distance2,
)
from memcross.theory.datamodels import DataModel


@dataclass(frozen=True)
class FiniteSize:
    """How a data model's finite-size coefficient is computed.

    ``coefficients(model, Ms)`` returns :math:`C(M)` for the sizes ``Ms`` (an array, in units of
    the model's point cost); ``relative_error`` is its stated accuracy; ``nearest_distance2(model)``,
    when given, is the expected squared distance from a training point to its nearest other one
    (the collapse criterion's scale), else the model's own
    :meth:`~memcross.theory.datamodels.DataModel.collapse_distance2`.
    """

    coefficients: Callable[[DataModel, np.ndarray], np.ndarray]
    relative_error: float
    nearest_distance2: Callable[[DataModel], float] | None = None
    description: str = ""


def _isotropic(model: DataModel, Ms: np.ndarray) -> np.ndarray:
    return coefficients(model.d, model.K, model.N, Ms, float(model.s2))


def _colored(model: DataModel, Ms: np.ndarray) -> np.ndarray:
    Ms = np.asarray(Ms, dtype=int)
    excess = colored_excess(model.templates, model.params["sc2"], model.N, Ms)
    share = 1 - Ms / model.N
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(share > 0, excess / (share * float(model.point_cost())), 0.0)


def _colored_nearest(model: DataModel) -> float:
    return colored_nearest_distance2(model.templates, model.params["sc2"], model.N)


_REGISTRY: dict[str, FiniteSize] = {
    "isotropic": FiniteSize(_isotropic, COEFFICIENT_RELATIVE_ERROR, None,
                            "C(d, K, N, M) from order statistics of noncentral chi-square distances"),
    "colored-templates": FiniteSize(_colored, COLORED_EXCESS_RELATIVE_ERROR, _colored_nearest,
                                    "order statistics of the nearest memorized point in the 3-dimensional colour "
                                    "space, across templates"),
}


def register_finite_size(name: str, entry: FiniteSize) -> None:
    """Give data model ``name`` a finite-size coefficient (for ``--method finite-d``)."""
    if not isinstance(entry, FiniteSize):
        raise ValueError(f"finite-size entry for {name!r} must be a FiniteSize, got {entry!r}")
    _REGISTRY[name] = entry


def finite_size(model: DataModel) -> FiniteSize:
    """The finite-size entry of ``model``'s data model; a ValueError naming it when there is none."""
    try:
        return _REGISTRY[model.name]
    except KeyError:
        raise ValueError(f"method 'finite-d' is not available for data {model.name!r} (no finite-size "
                         f"coefficient registered; known for: {', '.join(_REGISTRY)}); use --method asymptotic") from None


def has_finite_size(model: DataModel) -> bool:
    """Whether ``model``'s data model has a finite-size coefficient (``--method finite-d``)."""
    return model.name in _REGISTRY


def nearest_distance2(model: DataModel) -> float:
    """The collapse criterion's squared distance for ``model``."""
    entry = _REGISTRY.get(model.name)
    if entry is not None and entry.nearest_distance2 is not None:
        return entry.nearest_distance2(model)
    return model.collapse_distance2()
