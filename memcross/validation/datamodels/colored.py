"""Coloured templates in the validation layer: sampled data, the coloured family, its denoisers."""

from __future__ import annotations

import torch

from memcross.validation.colored_model import ColoredFamily, colored_denoiser
from memcross.validation.datamodels import register_validation_model
from memcross.validation.lowrank import make_colored_data
from memcross.validation.metrics import near_copies


class ColoredValidation:
    """:func:`~memcross.validation.lowrank.make_colored_data` (zero colour means),
    :class:`~memcross.validation.colored_model.ColoredFamily`, its closed-form denoisers."""

    name = "colored-templates"
    family = ColoredFamily
    location_columns = ("means_near_train", "templates_near_true")

    def sample(self, setting, seed: int):
        """Coloured-template data: ``N`` training samples of the setting's templates with colour variance ``sc2``."""
        model = setting.data_model
        return make_colored_data(model.templates, setting.N, model.params["sc2"], seed=seed)

    def key(self, setting) -> dict:
        """The data set's name in a store: the templates spec, ``sc2``, ``K`` and ``N``."""
        model = setting.data_model
        return {"data": "colored-templates", "templates": model.template_spec, "sc2": float(model.params["sc2"]),
                "K": setting.K, "N": setting.N}

    def generalizer_copies(self, K: int) -> int:
        """Memory estimate: ``5 K`` arrays of size ``(N, dim)``."""
        return 5 * K

    def param_shapes(self, M: int, dim: int) -> dict:
        """``templates`` ``(M, dim // 3)``, ``colours`` ``(M, 3)`` and a scalar ``variance``."""
        return {"templates": (M, dim // 3), "colours": (M, 3), "variance": ()}

    def denoiser(self, arrays: dict):
        """The float64 x0 predictor of stored arrays (:func:`colored_denoiser`)."""
        return colored_denoiser(arrays)

    def locations(self, arrays: dict, data) -> dict:
        """Components on training points (ratio test), templates on true templates (``|cos| >= 0.95``)."""
        u = torch.as_tensor(arrays["templates"], dtype=torch.float64)
        m = torch.as_tensor(arrays["colours"], dtype=torch.float64)
        comp = (m.unsqueeze(2) * u.unsqueeze(1)).reshape(u.shape[0], -1)
        true = torch.as_tensor(data.templates, dtype=torch.float64)
        cos = (u / u.norm(dim=1, keepdim=True)) @ (true / true.norm(dim=1, keepdim=True)).T
        return {"means_near_train": int(near_copies(comp, data.train).sum()), "means_near_true": None,
                "templates_near_true": int((cos.abs().max(1).values >= 0.95).sum())}


register_validation_model("colored-templates", ColoredValidation())
