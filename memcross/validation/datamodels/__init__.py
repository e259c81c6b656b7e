r"""The validation layer's side of each data model: sampling, denoisers, the trainable family.

The theory names a data model (:mod:`memcross.theory.datamodels`, a setting's ``data``); this
registry gives, for the same name, what exact losses and trained sweeps need, behind one
protocol (:class:`ValidationModel`):

* ``sample(setting, seed)``: a sampled data set (train / validation / evaluation splits, the
  nested memorized order, the ground-truth denoiser ``generalizer(x, alpha, sigma)``, the
  theory's excess ``theory_excess(psi)`` and the collapse scale ``pair_scale``; see
  :class:`~memcross.validation.data.SampledSplits`);
* ``key(setting)``: plain values that name the data set in a store (with the seed);
* ``generalizer_copies(K)``: ``(N, dim)`` arrays the generalizer holds with ``K`` components (a
  memory estimate);
* ``family``: the trainable family class (``initialize``, ``arrays(i)``, ``loss_and_grad``, ...),
  or ``None`` where the model has none (``validate`` then refuses it by name);
* ``param_shapes(M, dim)``: the arrays a trained size stores and their shapes (``None``: any);
* ``denoiser(arrays)``: the float64 x0 predictor of stored arrays;
* ``locations(arrays, data)``: where the learned components sit (columns for the size table).

Built-ins: :mod:`~memcross.validation.datamodels.isotropic`,
:mod:`~memcross.validation.datamodels.colored`. A model from outside registers an object with
these attributes under its theory name with :func:`register_validation_model`.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

#: The built-in implementations, imported when first asked for.
_BUILTIN = {"isotropic": "memcross.validation.datamodels.isotropic",
            "colored-templates": "memcross.validation.datamodels.colored"}
_REGISTRY: dict[str, Any] = {}


class ValidationModel(Protocol):
    """What the exact losses and trained sweeps need of a data model (see the module docstring)."""

    name: str
    family: Any
    location_columns: tuple[str, ...]

    def sample(self, setting, seed: int):
        """A sampled data set for ``setting`` and ``seed`` (splits, memorized order, ground-truth denoiser, theory
        excess, ``pair_scale``)."""

    def key(self, setting) -> dict:
        """Plain values that name the sampled data set in a store (with the seed)."""

    def generalizer_copies(self, K: int) -> int:
        """How many ``(N, dim)`` arrays the generalizer holds with ``K`` components (a memory estimate)."""

    def param_shapes(self, M: int, dim: int) -> dict[str, tuple | None]:
        """The arrays a trained size ``M`` stores in dimension ``dim``, and their shapes (``None``: any)."""

    def denoiser(self, arrays: dict):
        """The float64 x0 predictor ``(x, alpha, sigma) -> E[x_0 | x]`` of stored arrays."""

    def locations(self, arrays: dict, data) -> dict:
        """Where the learned components sit: values for the ``location_columns`` of the size table."""


def register_validation_model(name: str, model) -> None:
    """Register ``model`` (an object with the :class:`ValidationModel` attributes) for the theory
    data model ``name``."""
    missing = [a for a in ("sample", "key", "generalizer_copies", "denoiser", "locations", "param_shapes",
                           "family", "location_columns") if not hasattr(model, a)]
    if missing:
        raise ValueError(f"validation model for {name!r} lacks {', '.join(missing)}")
    _REGISTRY[name] = model


def unregister_validation_model(name: str) -> None:
    """Remove ``name`` (a built-in comes back when next asked for)."""
    _REGISTRY.pop(name, None)


def validation_model(setting_or_name):
    """The validation model of a setting's data model (or of a data-model name); a ValueError
    naming the data model where none is registered."""
    name = setting_or_name if isinstance(setting_or_name, str) else setting_or_name.data_model.name
    if name not in _REGISTRY and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])  # registers itself
    try:
        return _REGISTRY[name]
    except KeyError:
        known = sorted(set(_REGISTRY) | set(_BUILTIN))
        raise ValueError(f"data {name!r} has no sampler or denoisers for exact losses and training "
                         f"(known: {', '.join(known)})") from None


def trainable_family(setting_or_name):
    """The trainable family of a data model; a ValueError naming it where there is none."""
    model = validation_model(setting_or_name)
    if model.family is None:
        name = setting_or_name if isinstance(setting_or_name, str) else setting_or_name.data_model.name
        raise ValueError(f"data {name!r} has no trainable family: memcross validate cannot train it "
                         "(memcross exact works)")
    return model.family


def all_init_names() -> list[str]:
    """Every init of every trained family (the built-ins first, isotropic first; the MLP's last)."""
    from memcross.validation.mlp_model import init_names as mlp_inits

    names: list[str] = []
    for name in [*_BUILTIN, *(n for n in _REGISTRY if n not in _BUILTIN)]:
        family = validation_model(name).family
        names += family.init_names() if family is not None else []
    return list(dict.fromkeys(names + mlp_inits()))


def check_any_init(name: str) -> None:
    """A ValueError unless ``name`` is an init of some family (the data decides which one applies)."""
    if name not in all_init_names():
        raise ValueError(f"unknown init {name!r}; known inits: {', '.join(all_init_names())}")
