"""Barlow Twins and the next-item softmax on tiny tensors with answers computed by hand."""
import math

import pytest
import torch

from montage_encoders.behaviour.losses import barlow_twins_loss, cross_correlation, next_item_loss


def test_identical_whitened_views_give_zero():
    # columns already zero-mean, unit-variance and uncorrelated: C = I, so the loss is ~0
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    c = cross_correlation(z, z)
    assert torch.allclose(c, torch.eye(2), atol=1e-4)
    assert float(barlow_twins_loss(z, z, lambd=0.5)) == pytest.approx(0.0, abs=1e-6)


def test_identical_correlated_views_pay_only_off_diagonal():
    # same view twice, but dim 1 = dim 0: C = [[1, 1], [1, 1]] -> on 0, off 2 -> loss = lambd * 2
    z = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [2.0, 2.0], [-2.0, -2.0]])
    assert float(barlow_twins_loss(z, z, lambd=0.25)) == pytest.approx(0.5, abs=1e-3)


def test_small_case_by_hand():
    # z1 standardised per dim: [[-1, -1], [1, 1]]; z2: [[1, -1], [-1, 1]]
    # C = z1^T z2 / 2 = [[-1, 1], [-1, 1]]: on = (1+1)^2 + 0 = 4; off = 1 + 1 = 2
    z1 = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    z2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert torch.allclose(cross_correlation(z1, z2), torch.tensor([[-1.0, 1.0], [-1.0, 1.0]]), atol=1e-4)
    assert float(barlow_twins_loss(z1, z2, lambd=0.5)) == pytest.approx(4.0 + 0.5 * 2.0, abs=1e-3)


def test_next_item_softmax_by_hand_and_accidental_hits():
    user = torch.tensor([[1.0, 0.0]])
    target = torch.tensor([[1.0, 0.0]])
    negatives = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    # the second negative IS the target (id 7): removed, so logits = [1, 0]
    loss = next_item_loss(user, target, torch.tensor([7]), negatives, torch.tensor([3, 7]), temperature=1.0)
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)
