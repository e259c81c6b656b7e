"""Shared checks of the validation tests."""

import pytest
import torch


def _hand_gradient_matches_autograd(trainer) -> None:
    """A trainer's family: the hand-written loss and gradient equal autograd on ``x0_error`` (float64)."""
    batch = trainer.batch()
    auto = trainer.loss(batch)
    g_auto = torch.autograd.grad(auto.sum(), trainer.family.parameters())
    hand, g_hand = trainer.family.loss_and_grad(trainer.x0, batch[3], batch[0], batch[1], batch[2])
    assert torch.allclose(auto, hand, rtol=1e-12, atol=0)
    for a, b in zip(g_auto, g_hand):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12 * float(a.abs().max()))


@pytest.fixture
def hand_gradient_matches_autograd():
    return _hand_gradient_matches_autograd
