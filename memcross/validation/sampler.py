r"""Samplers on a decreasing time grid, driven by any x0 predictor ``denoise(x, alpha, sigma)``.

* **DDIM** (deterministic): from :math:`x_t` with x0 prediction :math:`h`,
  :math:`x_{t'} = \alpha_{t'} h + \sigma_{t'} (x_t - \alpha_t h)/\sigma_t`.
* **DDPM** (stochastic, ancestral): the Gaussian posterior :math:`q(x_{t'} \mid x_t, x_0 = h)`,
  with :math:`\alpha_{t|t'} = \alpha_t/\alpha_{t'}`, :math:`\sigma^2_{t|t'} = \sigma_t^2 -
  \alpha_{t|t'}^2\sigma_{t'}^2`: mean :math:`(\alpha_{t|t'}\sigma_{t'}^2 x_t + \alpha_{t'}
  \sigma^2_{t|t'} h)/\sigma_t^2`, variance :math:`\sigma^2_{t|t'}\sigma_{t'}^2/\sigma_t^2`.

Both start from :math:`\mathcal N(0, (\alpha_T^2 + \sigma_T^2) I)` at the first time (``N(0, I)``
for variance-preserving schedules) and return the state at the last time (no final denoising
step), as in the paper's protocol.
"""

from __future__ import annotations

import numpy as np
import torch


def _start(n: int, d: int, alpha0: float, sigma0: float, generator, dtype, device) -> torch.Tensor:
    scale = float(np.sqrt(alpha0**2 + sigma0**2))
    return scale * torch.randn(n, d, generator=generator, dtype=dtype).to(device)


def ddim(denoise, times, alpha, sigma, n: int, d: int, generator: torch.Generator, dtype=torch.float64,
         device="cpu") -> torch.Tensor:
    """Deterministic DDIM from ``times[0]`` down to ``times[-1]``; ``alpha``, ``sigma`` are arrays at
    ``times``.

    >>> import numpy as np
    >>> from memcross.validation.denoisers import posterior_mean
    >>> pts = torch.tensor([[3.0, 0.0], [-3.0, 0.0]], dtype=torch.float64)
    >>> t = np.linspace(0.999, 0.001, 26)
    >>> out = ddim(lambda x, a, s: posterior_mean(x, a, s, pts), t, np.sqrt(1 - t**2), t, 4, 2,
    ...            torch.Generator().manual_seed(0))
    >>> bool(torch.cdist(out, pts).min(1).values.max() < 0.01)
    True
    """
    _check_times(times)
    x = _start(n, d, alpha[0], sigma[0], generator, dtype, device)
    for k in range(len(times) - 1):
        h = denoise(x, float(alpha[k]), float(sigma[k]))
        x = alpha[k + 1] * h + sigma[k + 1] * (x - alpha[k] * h) / sigma[k]
    return x


def ddpm(denoise, times, alpha, sigma, n: int, d: int, generator: torch.Generator, dtype=torch.float64,
         device="cpu") -> torch.Tensor:
    """Stochastic ancestral sampling (DDPM) on the same grid; ``generator`` drives all noise."""
    _check_times(times)
    x = _start(n, d, alpha[0], sigma[0], generator, dtype, device)
    for k in range(len(times) - 1):
        a_t, s_t, a_s, s_s = float(alpha[k]), float(sigma[k]), float(alpha[k + 1]), float(sigma[k + 1])
        h = denoise(x, a_t, s_t)
        a_ts = a_t / a_s
        var_ts = max(s_t**2 - a_ts**2 * s_s**2, 0.0)
        mean = (a_ts * s_s**2 * x + a_s * var_ts * h) / s_t**2
        std = (var_ts * s_s**2 / s_t**2) ** 0.5
        x = mean + std * torch.randn(n, d, generator=generator, dtype=dtype).to(device)
    return x


SAMPLERS = {"ddim": ddim, "ddpm": ddpm}


def get_sampler(name: str):
    """The sampler registered under ``name``; ValueError for an unknown name."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; known samplers: {', '.join(SAMPLERS)}")
    return SAMPLERS[name]


def _check_times(times) -> None:
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or len(times) < 2 or not np.all(np.diff(times) < 0):
        raise ValueError("sampler times must be a decreasing sequence of at least 2 points")
