"""Cell methods: a registry of name -> the function that computes one cell of a study.

A cell function takes a :class:`~memcross.studies.spec.Cell` and returns its result as plain JSON
values (the ``to_dict`` of the method's record, :data:`memcross.records.CELL_PAYLOADS`), so that
a result travels back from any worker process unchanged. ``predict`` cells use the numerics layer
only; ``exact`` and ``validate`` cells import the validation layer (torch) when they run.
"""

from __future__ import annotations

import dataclasses
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from memcross.records import ExactCrossover, PredictedCrossover
from memcross.studies.spec import Cell
from memcross.theory.setting import Setting

#: The cell methods: name -> function computing a cell's result.
CELL_METHODS: dict[str, Callable[[Cell], dict]] = {}
#: The methods whose cells need torch (the validation extra).
TORCH_METHODS: set[str] = set()


def cell_method(name: str, torch: bool = False):
    """Register the decorated function as the cell method ``name`` (``torch``: it needs torch)."""
    def register(compute: Callable[[Cell], dict]) -> Callable[[Cell], dict]:
        CELL_METHODS[name] = compute
        if torch:
            TORCH_METHODS.add(name)
        return compute

    return register


def run_cell(cell: Cell) -> dict:
    """Compute one cell (in whatever process runs it). Returns ``{"result": ...}`` or
    ``{"error": ...}``: a failure is data, not a crash of the study."""
    try:
        _set_threads(cell)
        return {"result": _compute(cell)}
    except Exception as exc:  # noqa: BLE001 - recorded in the store with its traceback
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=5)}


def _set_threads(cell: Cell) -> None:
    """The cell's ``threads`` for torch, where the cell needs torch or this process has loaded it
    already; a ``predict`` cell alone never imports torch."""
    if cell.method in TORCH_METHODS or sys.modules.get("torch") is not None:
        import torch

        torch.set_num_threads(int(cell.options.get("threads", 1)))


def _compute(cell: Cell) -> dict:
    return CELL_METHODS[cell.method](cell)


@cell_method("predict")
def predict_cell(cell: Cell) -> dict:
    """``M*/N`` of the asymptotic formula with ``C = 1``, of finite-d and of finite-snr."""
    from memcross.numerics.excess import has_finite_size
    from memcross.numerics.finite_snr import has_finite_snr
    from memcross.numerics.predict import predict

    base = Setting.from_dict(cell.setting).replace(C=1)
    finite = predict(base, "finite-d").value if has_finite_size(base.data_model) else None
    snr = predict(base, "finite-snr").value if has_finite_snr(base.data_model) else None
    return PredictedCrossover(predict(base, "asymptotic").value, finite, snr).to_dict()


@cell_method("exact", torch=True)
def exact_cell(cell: Cell) -> dict:
    """The exact crossover of the data set drawn with the cell's seed."""
    from memcross.validation.sweep import exact_for

    ex = exact_for(Setting.from_dict(cell.setting), cell.seed, cell.options["draws"])
    ratio, m_star = ex.crossover()
    return ExactCrossover(float(ratio), int(m_star)).to_dict()


@cell_method("validate", torch=True)
def validate_cell(cell: Cell) -> dict:
    """A trained sweep in a store of its own (a temporary one): its summary and sizes."""
    import tempfile

    from memcross.store import Store
    from memcross.validation.sweep import plan_from, validate

    opts = dict(cell.options)
    plan = plan_from(Setting.from_dict(cell.setting), opts.get("preset"), opts.get("widths", opts.get("sizes")),
                     "auto", cell.seed, exact_draws=opts.get("exact_draws", 8), n_eval=opts.get("n_eval"),
                     steps=opts.get("steps"), draws=opts.get("draws"), family=opts.get("family"))
    with tempfile.TemporaryDirectory(prefix="memcross-cell-") as tmp:
        store = Store(Path(tmp) / "cell.sqlite")
        try:
            res = validate(plan, store)
        finally:
            store.close()
    # a cell keeps each size's weighted losses, not the per-time ones
    sizes = [dataclasses.replace(r, train_loss_t=None, val_loss_t=None) for r in res.sizes]
    return dataclasses.replace(res, sizes=sizes).to_dict()
