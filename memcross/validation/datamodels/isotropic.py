"""The isotropic Gaussian mixture in the validation layer: sampled data, the GMM family, its denoisers."""

from __future__ import annotations

import torch

from memcross.validation.data import make_gmm_data
from memcross.validation.datamodels import register_validation_model
from memcross.validation.denoisers import posterior_mean
from memcross.validation.metrics import mean_locations
from memcross.validation.model import GMMFamily


class IsotropicValidation:
    """:func:`~memcross.validation.data.make_gmm_data` (means on the sphere of radius sqrt(d)),
    :class:`~memcross.validation.model.GMMFamily`, posterior-mean denoisers."""

    name = "isotropic"
    family = GMMFamily
    location_columns = ("means_near_train", "means_near_true")

    def sample(self, setting, seed: int):
        return make_gmm_data(setting.d, setting.K, setting.N, float(setting.s2_exact), seed=seed)

    def key(self, setting) -> dict:
        return {"data": "isotropic-gmm", "means": "sphere", "d": setting.d, "K": setting.K, "N": setting.N,
                "s2": float(setting.s2_exact)}

    def generalizer_copies(self, K: int) -> int:
        return 4

    def param_shapes(self, M: int, dim: int) -> dict:
        return {"means": (M, dim), "variance": ()}

    def denoiser(self, arrays: dict):
        means = torch.as_tensor(arrays["means"], dtype=torch.float64)
        var = float(arrays["variance"])
        return lambda x, a, s: posterior_mean(x, a, s, means, var)

    def locations(self, arrays: dict, data) -> dict:
        return mean_locations(torch.as_tensor(arrays["means"], dtype=torch.float64), data.train, data.means)


register_validation_model("isotropic", IsotropicValidation())
