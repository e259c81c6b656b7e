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
        """An isotropic mixture sample: ``K`` means on the sphere in dimension ``d``, ``N`` training points, variance
        ``s2``."""
        return make_gmm_data(setting.d, setting.K, setting.N, float(setting.s2_exact), seed=seed)

    def key(self, setting) -> dict:
        """The data set's name in a store: sphere means, ``d``, ``K``, ``N`` and ``s2``."""
        return {"data": "isotropic-gmm", "means": "sphere", "d": setting.d, "K": setting.K, "N": setting.N,
                "s2": float(setting.s2_exact)}

    def generalizer_copies(self, K: int) -> int:
        """Memory estimate: 4 arrays of size ``(N, dim)``, whatever ``K``."""
        return 4

    def param_shapes(self, M: int, dim: int) -> dict:
        """``means`` ``(M, dim)`` and a scalar ``variance``."""
        return {"means": (M, dim), "variance": ()}

    def denoiser(self, arrays: dict):
        """The float64 posterior mean ``(x, alpha, sigma) -> E[x_0 | x]`` of the stored ``means`` and ``variance``."""
        means = torch.as_tensor(arrays["means"], dtype=torch.float64)
        var = float(arrays["variance"])
        return lambda x, a, s: posterior_mean(x, a, s, means, var)

    def locations(self, arrays: dict, data) -> dict:
        """Where the stored means sit relative to the training points and the true means (:func:`mean_locations`)."""
        return mean_locations(torch.as_tensor(arrays["means"], dtype=torch.float64), data.train, data.means)


register_validation_model("isotropic", IsotropicValidation())
