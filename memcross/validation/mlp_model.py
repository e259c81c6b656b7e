r"""The trained neural family: time-conditioned MLP denoisers of several widths, trained together.

A network of width ``w`` and depth ``L`` (hidden layers) maps the scaled input and a time
embedding to a ``d``-vector :math:`F`, and the x0 prediction is the EDM preconditioning of it
(Karras et al., 2022) on the variance-exploding view :math:`\tilde x = x_t/\alpha = x_0 + s z`,
:math:`s = \sigma/\alpha`:

.. math:: \hat x_0 = c_\mathrm{skip}\,\tilde x + c_\mathrm{out}\,F\big(c_\mathrm{in}\tilde x,\ e(c_\mathrm{noise})\big),
   \quad c_\mathrm{skip} = \frac{\sigma_d^2}{s^2+\sigma_d^2},\ c_\mathrm{out} = \frac{s\,\sigma_d}{\sqrt{s^2+\sigma_d^2}},\
   c_\mathrm{in} = \frac{1}{\sqrt{s^2+\sigma_d^2}},\ c_\mathrm{noise} = \tfrac14 \log s,

with :math:`\sigma_d^2` the training data's mean squared coordinate and :math:`e` ``embed``
Fourier features of :math:`c_\mathrm{noise}`. Every other target (eps, v, score) follows from
:math:`\hat x_0` by the target relations, so the loss of any target and weighting is the x0-unit
loss with its weight, as for the GMM family. SiLU activations; PyTorch's default (Kaiming-uniform)
initialization, seeded.

The size of a network is its parameter count, :func:`parameter_count`. The family's sizes are the
widths; gradients come from autograd.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

#: Hidden layers of a network unless the family spec says otherwise (``mlp:depth=3``).
DEFAULT_DEPTH = 2
#: Fourier features of the time embedding unless the family spec says otherwise (``mlp:embed=16``).
DEFAULT_EMBED = 16
#: The widest network a sweep may ask for.
MAX_WIDTH = 65536
#: The family's initializations (PyTorch's default layer init, seeded).
INIT_NAMES = ("default",)
#: Options of the ``mlp`` family spec and their allowed ranges.
OPTIONS = {"depth": (1, 16), "embed": (2, 256)}


def parse_family(spec) -> dict:
    """The options of a family spec ``mlp`` or ``mlp:depth=3,embed=16``: ``{"depth", "embed"}``;
    a ValueError naming ``--family`` and what is allowed otherwise."""
    if not isinstance(spec, str):
        raise ValueError(f"--family must be a name (gmm, mlp or mlp:depth=D,embed=E), got {spec!r}")
    name, _, rest = spec.partition(":")
    if name.strip() != "mlp":
        raise ValueError(f"--family must be gmm, mlp or mlp:depth=D,embed=E, got {spec!r}")
    out = {"depth": DEFAULT_DEPTH, "embed": DEFAULT_EMBED}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        key = key.strip()
        if key not in OPTIONS or not eq:
            raise ValueError(f"--family {spec!r}: unknown option {part!r}; allowed: depth=D, embed=E")
        lo, hi = OPTIONS[key]
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or not lo <= number <= hi or (key == "embed" and number % 2):
            even = " and even" if key == "embed" else ""
            raise ValueError(f"--family {spec!r}: {key} must be an integer in [{lo}, {hi}]{even}, got {value.strip()!r}")
        out[key] = number
    return out


def layer_shapes(width: int, d: int, depth: int, embed: int) -> list[tuple[int, int]]:
    """``(out, in)`` of each linear layer: input ``d + embed``, ``depth`` hidden layers of ``width``, output ``d``."""
    dims = [d + embed] + [width] * depth + [d]
    return [(dims[j + 1], dims[j]) for j in range(len(dims) - 1)]


def parameter_count(width: int, d: int, depth: int = DEFAULT_DEPTH, embed: int = DEFAULT_EMBED) -> int:
    """Weights and biases of one network."""
    return sum(o * i + o for o, i in layer_shapes(width, d, depth, embed))


def _embedding(c: torch.Tensor, embed: int) -> torch.Tensor:
    """``embed`` Fourier features of ``c`` ``(B,)``: ``sin`` and ``cos`` at frequencies ``pi/2 * 1..embed/2``."""
    freqs = (math.pi / 2) * torch.arange(1, embed // 2 + 1, dtype=c.dtype, device=c.device)
    arg = c.reshape(-1, 1) * freqs
    return torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)


def precondition(alpha: torch.Tensor, sigma: torch.Tensor, sigma_data: float):
    """``(s, c_skip, c_out, c_in, c_noise)`` per row (shapes ``(B, 1)``) for ``x_t = alpha x0 + sigma z``."""
    s = (sigma / alpha).reshape(-1, 1)
    sd2 = sigma_data**2
    r = s * s + sd2
    return s, sd2 / r, s * sigma_data / r.sqrt(), 1 / r.sqrt(), 0.25 * torch.log(s)


def network(layers: list[tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor, alpha, sigma, sigma_data: float,
            embed: int) -> torch.Tensor:
    r""":math:`\hat x_0` of one network (``layers``: its ``(W, b)`` pairs) for inputs ``x`` ``(B, d)``
    at per-row ``alpha``, ``sigma``."""
    _, c_skip, c_out, c_in, c_noise = precondition(alpha, sigma, sigma_data)
    xt = x / alpha.reshape(-1, 1)
    return c_skip * xt + c_out * _features(layers, c_in * xt, c_noise, embed)


def _features(layers, h: torch.Tensor, c_noise: torch.Tensor, embed: int) -> torch.Tensor:
    h = torch.cat([h, _embedding(c_noise, embed)], dim=1)
    for j, (W, b) in enumerate(layers):
        h = torch.addmm(b, h, W.T)
        if j < len(layers) - 1:
            h = torch.nn.functional.silu(h)
    return h


def init_names() -> list[str]:
    """The names of the neural family's initializations."""
    return list(INIT_NAMES)


def check_init(name: str) -> None:
    """Raise ValueError unless ``name`` is an initialization of the neural family."""
    if name not in INIT_NAMES:
        raise ValueError(f"init {name!r} is not available for MLP denoisers; known inits: {', '.join(INIT_NAMES)}")


class MLPFamily:
    """``len(widths)`` MLP denoisers on one data set, trained together (each its own parameters;
    the summed loss gives each its own gradient).

    >>> from memcross.validation.data import make_gmm_data
    >>> fam = MLPFamily.initialize(make_gmm_data(4, 2, 10, seed=0), [8, 16])
    >>> fam.sizes, fam.parameter_counts()
    ([8, 16], [276, 676])
    """

    init_names = staticmethod(init_names)
    check_init = staticmethod(check_init)
    #: Sizes are widths, not component counts (they may pass ``N``).
    sizes_are_widths = True

    def __init__(self, sizes, layers: list[list[tuple[torch.Tensor, torch.Tensor]]], sigma_data: float,
                 depth: int = DEFAULT_DEPTH, embed: int = DEFAULT_EMBED):
        self.sizes = [int(w) for w in sizes]
        self.layers = layers
        self.sigma_data = float(sigma_data)
        self.depth, self.embed = int(depth), int(embed)

    @classmethod
    def initialize(cls, data, sizes, init: str = "default", seed: int = 0, variance: float | None = None,
                   dtype=torch.float32, device="cpu", depth: int = DEFAULT_DEPTH,
                   embed: int = DEFAULT_EMBED) -> MLPFamily:
        """Networks of the given widths for ``data``, PyTorch's default init from generator ``seed``
        (``variance`` does not apply and is refused)."""
        check_init(init)
        if variance is not None:
            raise ValueError("--init-variance does not apply to MLP denoisers (they have no variance)")
        gen = torch.Generator().manual_seed(int(seed))
        layers = []
        for w in sizes:
            net = []
            for out, inp in layer_shapes(int(w), data.d, depth, embed):
                bound = 1 / math.sqrt(inp)  # nn.Linear's default: U(-1/sqrt(in), 1/sqrt(in)) for both
                W = (2 * torch.rand(out, inp, generator=gen, dtype=torch.float64) - 1) * bound
                b = (2 * torch.rand(out, generator=gen, dtype=torch.float64) - 1) * bound
                net.append((W.to(dtype=dtype, device=device), b.to(dtype=dtype, device=device)))
            layers.append(net)
        sigma_data = float(data.train.double().pow(2).mean().sqrt())
        return cls(sizes, layers, sigma_data, depth, embed)

    def parameters(self) -> list[torch.Tensor]:
        """Every weight and bias, network by network, layer by layer."""
        return [t for net in self.layers for pair in net for t in pair]

    def param_rows(self) -> list[torch.Tensor]:
        """For each tensor of :meth:`parameters`, the network each of its rows belongs to (for per-model clipping)."""
        return [torch.full((t.shape[0],), i, dtype=torch.long, device=t.device)
                for i, net in enumerate(self.layers) for pair in net for t in pair]

    def parameter_counts(self) -> list[int]:
        """Each network's number of parameters."""
        return [sum(t.numel() for pair in net for t in pair) for net in self.layers]

    def variance(self) -> torch.Tensor:
        """Networks have no variance parameter: zeros ``(S,)`` (what the history logs)."""
        return torch.zeros(len(self.sizes), dtype=torch.float64)

    def arrays(self, i: int) -> dict[str, np.ndarray]:
        """Network ``i`` as float64 arrays: ``w0, b0, w1, b1, ...``, ``sigma_data`` and ``variance`` (0)."""
        out = {}
        for j, (W, b) in enumerate(self.layers[i]):
            out[f"w{j}"] = W.detach().double().cpu().numpy()
            out[f"b{j}"] = b.detach().double().cpu().numpy()
        out["sigma_data"] = np.float64(self.sigma_data)
        out["variance"] = np.float64(0.0)
        return out

    def x0_error(self, x0: torch.Tensor, z: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        r"""The scaled x0 error :math:`e = (\hat x_0 - x_0)/\sigma`, ``(B, S, d)``, differentiable.

        Formed without cancellation: with :math:`\tilde x = x_0 + s z`,
        :math:`\hat x_0 - x_0 = -\frac{s^2}{s^2+\sigma_d^2} x_0 + c_\mathrm{skip} s z + c_\mathrm{out} F`."""
        s, c_skip, c_out, c_in, c_noise = precondition(alpha, sigma, self.sigma_data)
        xt = x0 + s * z
        base = -(s * s / (s * s + self.sigma_data**2)) * x0 + c_skip * s * z
        sig = sigma.reshape(-1, 1)
        return torch.stack([(base + c_out * _features(net, c_in * xt, c_noise, self.embed)) / sig
                            for net in self.layers], dim=1)

    def loss_and_grad(self, x0, z, alpha, sigma, kappa) -> tuple[torch.Tensor, list[torch.Tensor]]:
        r"""Per-network loss :math:`\frac1B\sum_b\kappa_b\|e_{bs}\|^2` and its gradient (autograd)."""
        params = self.parameters()
        with torch.enable_grad():
            for p in params:
                p.requires_grad_(True)
            e = self.x0_error(x0, z, alpha, sigma)
            loss = (kappa.reshape(-1, 1) * (e * e).sum(2)).mean(0)
            grads = torch.autograd.grad(loss.sum(), params)
        return loss.detach(), list(grads)

    @staticmethod
    def training_memory(d: int, N: int, draws: int, sizes, itemsize: int = 4, depth: int = DEFAULT_DEPTH,
                        embed: int = DEFAULT_EMBED) -> int:
        """Bytes one step holds at its peak, about: activations kept for the backward pass (about 4
        per hidden unit and row) and the input, for every network, plus the parameters and Adam's
        moments."""
        B = N * draws
        acts = sum(B * (4 * depth * int(w) + 3 * (d + embed) + 4 * d) for w in sizes)
        params = sum(parameter_count(int(w), d, depth, embed) for w in sizes)
        return int(itemsize * (acts + 5 * params))

    def state(self) -> dict:
        """A checkpointable state: widths and detached CPU copies of every tensor."""
        return {"sizes": self.sizes, "params": [t.detach().cpu() for t in self.parameters()]}


def mlp_denoiser(arrays: dict) -> Callable:
    """The float64 x0 predictor ``(x, alpha, sigma) -> x0_hat`` of a stored network (:meth:`MLPFamily.arrays`)."""
    n = sum(1 for k in arrays if k.startswith("w"))
    layers = [(torch.as_tensor(arrays[f"w{j}"], dtype=torch.float64), torch.as_tensor(arrays[f"b{j}"], dtype=torch.float64))
              for j in range(n)]
    d = layers[-1][0].shape[0]
    embed = layers[0][0].shape[1] - d
    sd = float(arrays["sigma_data"])

    def denoise(x, a, s):
        B = x.shape[0]
        alpha = torch.full((B,), float(a), dtype=x.dtype, device=x.device)
        sigma = torch.full((B,), float(s), dtype=x.dtype, device=x.device)
        return network(layers, x, alpha, sigma, sd, embed)

    return denoise


class MLPModel:
    """What a sweep needs of the neural family on any data model: the family (with its options),
    the stored arrays' layout, the denoiser of stored arrays and (no) component locations."""

    name = "mlp"
    location_columns = ()

    def __init__(self, spec: str):
        self.spec = spec
        self.options = parse_family(spec)
        self.family = MLPFamily

    def param_shapes(self, M: int, dim: int) -> dict:
        """``w_j``, ``b_j`` of every layer, ``sigma_data`` and ``variance`` (scalars)."""
        out = {}
        for j, (o, i) in enumerate(layer_shapes(M, dim, self.options["depth"], self.options["embed"])):
            out[f"w{j}"], out[f"b{j}"] = (o, i), (o,)
        return {**out, "sigma_data": (), "variance": ()}

    def denoiser(self, arrays: dict):
        """:func:`mlp_denoiser`."""
        return mlp_denoiser(arrays)

    def locations(self, arrays: dict, data) -> dict:
        """Networks have no components: the location columns are empty."""
        return {"means_near_train": None, "means_near_true": None}

    def parameter_count(self, width: int, d: int) -> int:
        """:func:`parameter_count` with this spec's depth and embedding."""
        return parameter_count(width, d, self.options["depth"], self.options["embed"])


def effective_size(loss: float, pmem_losses, tol: float = 0.0) -> float:
    r"""``M_eff``: the (linearly interpolated) ``M`` at which the exact partial memorizer's loss
    ``pmem_losses[M - 1]`` (``M = 1..N``, falling towards the memorizer's) equals ``loss``.

    Clamped to ``[1, N]``: a loss above the 1-point memorizer's gives 1, one below the memorizer's
    gives ``N``.

    >>> effective_size(2.5, [4.0, 3.0, 2.0, 1.0])
    2.5
    """
    from memcross.validation.metrics import crossing

    L = np.asarray(pmem_losses, dtype=float)
    if L.ndim != 1 or L.size == 0 or not np.all(np.isfinite(L)) or not math.isfinite(loss):
        raise ValueError("effective_size needs a finite loss and a non-empty finite list of partial-memorizer losses")
    # the first M whose loss is at or below ``loss``, interpolated from M - 1: the crossing of -L at -loss
    m = crossing(np.arange(1, L.size + 1), -L, -loss)
    return float(L.size) if m is None else m
