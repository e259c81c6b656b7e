"""A data model defined in this file alone — one Gaussian, N(0, v I_D) — registered from outside the
package, runs through predict, the CLI, exact losses and a study cell without touching any module
of memcross."""

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import sympy as sp

from memcross.numerics.predict import predict
from memcross.records import Prediction
from memcross.theory import Setting
from memcross.theory.datamodels import DataModel, Parameter, register_data_model, unregister_data_model

torch = pytest.importorskip("torch")

from memcross.validation.data import SampledSplits  # noqa: E402
from memcross.validation.datamodels import (  # noqa: E402
    register_validation_model,
    unregister_validation_model,
)


class OneGaussian(DataModel):
    r"""One component :math:`\mathcal N(0, v I_D)`: :math:`\Delta_{gen} = D v/(1 + \psi v)`,
    :math:`c = D v`."""

    name = "one-gaussian"
    description = "a single Gaussian N(0, v I_D)"
    parameters = {"v": Parameter(1.0, "number", "variance"), "dim": Parameter(10, "integer", "dimension D")}

    def check(self):
        if self.K != 1:
            raise ValueError(f"one-gaussian has one component: K must be 1, got {self.K}")

    def dimension(self):
        return int(self.params["dim"])

    def generalizer_excess(self, psi_t):
        v = sp.nsimplify(self.params["v"])
        return self.params["dim"] * v / (1 + psi_t * v)

    def point_cost(self):
        return self.params["dim"] * sp.nsimplify(self.params["v"])


@dataclass(frozen=True)
class OneGaussianData(SampledSplits):
    data_model: ClassVar[str] = "one-gaussian"

    v: float
    train: torch.Tensor
    validation: torch.Tensor
    order: torch.Tensor
    evaluation: torch.Tensor

    @property
    def d(self):
        return self.train.shape[1]

    K = 1
    s2 = property(lambda self: self.v)
    pair_scale = property(lambda self: 2 * self.d * self.v)

    def generalizer(self, x, alpha, sigma):
        return alpha * self.v / (alpha**2 * self.v + sigma**2) * x  # the posterior mean of N(0, v I)

    def theory_excess(self, psi):
        return self.d * self.v / (1 + np.asarray(psi, dtype=float) * self.v)


class OneGaussianValidation:
    name = "one-gaussian"
    family = None  # nothing to train: exact losses only
    location_columns = ()

    def sample(self, setting, seed):
        model = setting.data_model
        gen = torch.Generator().manual_seed(seed)
        v, D, N = model.params["v"], model.dimension(), setting.N
        draw = lambda n: v**0.5 * torch.randn(n, D, generator=gen, dtype=torch.float64)
        train, validation = draw(N), draw(N)
        return OneGaussianData(v, train, validation, torch.randperm(N, generator=gen), draw(N))

    def key(self, setting):
        return {"data": setting.data, "N": setting.N}

    def generalizer_copies(self, K):
        return 4

    def param_shapes(self, M, dim):
        return {}

    def denoiser(self, arrays):
        raise NotImplementedError

    def locations(self, arrays, data):
        return {}


@pytest.fixture(scope="module")
def one_gaussian():
    register_data_model(OneGaussian)
    register_validation_model("one-gaussian", OneGaussianValidation())
    yield Setting(data="one-gaussian:v=2,dim=12", K=1, N=40)
    unregister_validation_model("one-gaussian")
    unregister_data_model("one-gaussian")


def test_predict_uses_the_model_alone(one_gaussian):
    setting = one_gaussian
    assert setting.d == 12 and setting.to_dict()["data"] == "one-gaussian:v=2,dim=12"
    # one Gaussian of variance v is the isotropic mixture with s2 = v: the same closed form
    same = predict(Setting(s2=2, d=12, K=1, N=40))
    record = predict(setting)
    assert record.value == pytest.approx(same.value, rel=1e-25) and record.dps == 30
    assert record.setting == setting and Prediction.from_dict(record.to_dict()) == record  # JSON round trip
    with pytest.raises(ValueError, match="'finite-d' is not available for data 'one-gaussian'"):
        predict(setting, "finite-d")
    with pytest.raises(ValueError, match="K must be 1"):
        Setting(data="one-gaussian", K=2, N=40)
    with pytest.raises(ValueError, match=r"unknown parameter 'w' \(parameters of 'one-gaussian': v, dim\)"):
        Setting(data="one-gaussian:w=1", K=1)


def test_cli_predict_and_list(one_gaussian, capsys):
    from memcross.cli import main

    assert main(["predict", "--data", "one-gaussian:v=2", "--components", "1", "--train", "40", "--json"]) == 0
    assert '"data": "one-gaussian:v=2"' in capsys.readouterr().out
    assert main(["list", "data"]) == 0
    assert "one-gaussian" in capsys.readouterr().out


def test_exact_losses_and_a_study_cell(one_gaussian, tmp_path):
    from memcross.store import Store
    from memcross.studies import parse_study, run_study, study_rows
    from memcross.validation.sweep import exact_for

    ex = exact_for(one_gaussian, 0, 2)
    ratio, m_star = ex.crossover()
    assert 0 < ratio <= 1 and ex.N == 40
    # measured excess of the generalizer against the theory's D v/(1 + psi v) where the memorizer
    # has collapsed (psi_t 2 D v >= 10 log N)
    measured, theory, collapsed = ex.excess_generalizer(), ex.theory_excess_generalizer(), ex.collapsed()
    assert collapsed.sum() >= 10 and np.all(np.abs(measured / theory - 1)[collapsed] < 0.2)
    study = parse_study({"study": {"name": "toy"}, "setting": {"data": "one-gaussian:v=2,dim=12", "K": 1},
                         "part": [{"methods": ["predict", "exact"], "grid": {"N": [40]}, "exact_draws": 2}]})
    store = Store(tmp_path / "toy.sqlite")
    summary = run_study(study, store)
    assert summary.done == 2 and not summary.failed
    rows, failed = study_rows(study, store)
    assert not failed and rows[0]["exact"] == pytest.approx(ratio)
    store.close()
