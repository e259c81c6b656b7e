"""Shared checks of the validation tests."""

import numpy as np
import pytest

# the package's validation modules need torch: without it, every test in this folder is skipped
torch = pytest.importorskip("torch")


def _pixel_reference(trainer, params, z, alpha, sigma, kappa):
    """Per-size loss ``(S,)`` by autograd on ``x0_error`` with family parameters ``params``, for the
    noise ``z`` of the trainer's training path: on the colour-space path each model gets the pixel
    noise its ``z`` stands for (``pixel_noise``), so the sizes are evaluated one by one."""
    fam = trainer.family
    options = {"variance_param": fam.variance_param} if hasattr(fam, "variance_param") else {}
    ref = type(fam)(fam.sizes, *params, **options)
    x0 = trainer.x0.to(params[0].dtype)
    if z.shape[1] == trainer.data.d:
        e = ref.x0_error(x0, z, alpha, sigma)
        return (kappa.unsqueeze(1) * (e * e).sum(2)).mean(0)
    out = []
    for i in range(len(fam.sizes)):
        e = ref.x0_error(x0, fam.pixel_noise(z, i).to(x0), alpha, sigma)[:, i]
        out.append((kappa * (e * e).sum(1)).mean())
    return torch.stack(out)


def _hand_gradient_matches_autograd(trainer) -> None:
    """A trainer's family: the hand-written loss and gradient equal autograd on ``x0_error`` (float64),
    on the pixel-space path and, where the data allow it, on the colour-space one."""
    params = trainer.family.parameters()
    paths = [({}, trainer.batch(pixel=True))]
    if trainer._factors is not None:
        paths.append(({"factors": trainer._factors}, trainer.batch()))
    for extra, (alpha, sigma, kappa, z) in paths:
        auto = _pixel_reference(trainer, params, z, alpha, sigma, kappa)
        g_auto = torch.autograd.grad(auto.sum(), params)
        hand, g_hand = trainer.family.loss_and_grad(trainer.x0, z, alpha, sigma, kappa, **extra)
        assert torch.allclose(auto, hand, rtol=1e-10, atol=0), (extra.keys(), (auto - hand) / auto)
        # the colour-space path's template gradient still subtracts nearly equal products where
        # sigma is small: up to ~1.1e-11 of the largest entry at t = 0.001 in float64
        atol = 5e-11 if extra else 1e-11
        for a, b in zip(g_auto, g_hand):
            assert torch.allclose(a, b, rtol=1e-9, atol=atol * float(a.abs().max())), extra.keys()


@pytest.fixture
def hand_gradient_matches_autograd():
    return _hand_gradient_matches_autograd


def _batch_at(trainer, t: float | None = None):
    """A fresh batch of ``trainer``'s training path, every row at time ``t`` (default: the batch's
    own times)."""
    alpha, sigma, kappa, z = trainer.batch()
    if t is not None:
        table = trainer.loss_process.table(np.array([t]), np.array([1.0]))
        alpha, sigma, kappa = (torch.full_like(alpha, float(c[0])) for c in
                               (table.alpha, table.sigma, table.lam * table.sigma**2))
    return alpha, sigma, kappa, z


@pytest.fixture
def batch_at():
    return _batch_at


@pytest.fixture
def pixel_loss_reference():
    return _pixel_reference


def _float32_gradient_errors(trainer, t: float | None = None) -> list[float]:
    """Norm-wise relative error of a float32 trainer's hand-written gradient, per parameter tensor:
    ``||g32 - g64|| / ||g64||`` where ``g64`` is float64 autograd on ``x0_error`` at the same
    float32 parameters, noise and times (so only the arithmetic differs). ``t`` fixes every row's
    time (default: the times of a fresh batch)."""
    assert trainer.dtype == torch.float32
    fam = trainer.family
    alpha, sigma, kappa, z = _batch_at(trainer, t)
    extra = {} if trainer._factors is None else {"factors": trainer._factors}
    _, g32 = fam.loss_and_grad(trainer.x0, z, alpha, sigma, kappa, **extra)  # the path training takes
    params = [p.detach().double().requires_grad_(True) for p in fam.parameters()]
    z, alpha, sigma, kappa = (v.double() for v in (z, alpha, sigma, kappa))
    g64 = torch.autograd.grad(_pixel_reference(trainer, params, z, alpha, sigma, kappa).sum(), params)
    return [float((a.double() - b).norm() / b.norm()) for a, b in zip(g32, g64)]


@pytest.fixture
def float32_gradient_errors():
    return _float32_gradient_errors
