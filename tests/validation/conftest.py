"""Shared checks of the validation tests."""

import numpy as np
import pytest

# the package's validation modules need torch: without it, every test in this folder is skipped
torch = pytest.importorskip("torch")


def _hand_gradient_matches_autograd(trainer) -> None:
    """A trainer's family: the hand-written loss and gradient equal autograd on ``x0_error`` (float64)."""
    batch = trainer.batch()
    auto = trainer.loss(batch)
    g_auto = torch.autograd.grad(auto.sum(), trainer.family.parameters())
    paths = [{}] + ([{"factors": trainer._factors}] if trainer._factors is not None else [])
    for extra in paths:  # the pixel-space path, and the colour-space one where the data allow it
        hand, g_hand = trainer.family.loss_and_grad(trainer.x0, batch[3], batch[0], batch[1], batch[2], **extra)
        assert torch.allclose(auto, hand, rtol=1e-10, atol=0), extra.keys()
        for a, b in zip(g_auto, g_hand):
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-11 * float(a.abs().max())), extra.keys()


@pytest.fixture
def hand_gradient_matches_autograd():
    return _hand_gradient_matches_autograd


def _float32_gradient_errors(trainer, t: float | None = None) -> list[float]:
    """Norm-wise relative error of a float32 trainer's hand-written gradient, per parameter tensor:
    ``||g32 - g64|| / ||g64||`` where ``g64`` is float64 autograd on ``x0_error`` at the same
    float32 parameters, noise and times (so only the arithmetic differs). ``t`` fixes every row's
    time (default: the times of a fresh batch)."""
    assert trainer.dtype == torch.float32
    fam = trainer.family
    alpha, sigma, kappa, z = trainer.batch()
    if t is not None:
        table = trainer.loss_process.table(np.array([t]), np.array([1.0]))
        alpha, sigma, kappa = (torch.full_like(alpha, float(c[0])) for c in
                               (table.alpha, table.sigma, table.lam * table.sigma**2))
    extra = {} if trainer._factors is None else {"factors": trainer._factors}
    _, g32 = fam.loss_and_grad(trainer.x0, z, alpha, sigma, kappa, **extra)  # the path training takes
    params = [p.detach().double().requires_grad_(True) for p in fam.parameters()]
    x0, z, alpha, sigma, kappa = (v.double() for v in (trainer.x0, z, alpha, sigma, kappa))
    options = {"variance_param": fam.variance_param} if hasattr(fam, "variance_param") else {}
    e = type(fam)(fam.sizes, *params, **options).x0_error(x0, z, alpha, sigma)
    g64 = torch.autograd.grad((kappa.unsqueeze(1) * (e * e).sum(2)).mean(0).sum(), params)
    return [float((a.double() - b).norm() / b.norm()) for a, b in zip(g32, g64)]


@pytest.fixture
def float32_gradient_errors():
    return _float32_gradient_errors
