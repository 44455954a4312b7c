"""Barlow Twins (Zbontar et al. 2021; Liu et al. 2025 for user sequences) and next-item softmax."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def standardise(z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per dimension over the batch: zero mean, unit (biased) variance, like BatchNorm without affine."""
    return (z - z.mean(dim=0)) / torch.sqrt(z.var(dim=0, unbiased=False) + eps)


def cross_correlation(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """(B, P) x (B, P) -> (P, P): C_ij = mean over the batch of z1_i * z2_j, standardised."""
    return standardise(z1).T @ standardise(z2) / z1.shape[0]


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 5e-3) -> torch.Tensor:
    """sum_i (1 - C_ii)^2 + lambd * sum_{i != j} C_ij^2.

    The diagonal term makes the two views agree dimension by dimension; the off-diagonal term
    decorrelates the dimensions, which is what keeps the embedding from collapsing without any
    negatives (so small batches are fine).
    """
    c = cross_correlation(z1, z2)
    diag = torch.diagonal(c)
    on = (1.0 - diag).pow(2).sum()
    off = c.pow(2).sum() - diag.pow(2).sum()
    return on + lambd * off


def next_item_loss(user: torch.Tensor, targets: torch.Tensor, target_ids: torch.Tensor,
                   negatives: torch.Tensor, negative_ids: torch.Tensor,
                   temperature: float = 0.07) -> torch.Tensor:
    """Sampled softmax: the target against a shared set of sampled items (accidental hits removed).

    user (B, D), targets (B, D) and negatives (K, D) are unit vectors; with uniform sampling no
    log-Q correction is needed. When K covers the catalogue this is the full softmax.
    """
    pos = (user * targets).sum(-1, keepdim=True)  # (B, 1)
    neg = user @ negatives.T  # (B, K)
    neg = neg.masked_fill(negative_ids[None, :] == target_ids[:, None], float("-inf"))
    logits = torch.cat([pos, neg], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(user), dtype=torch.long, device=user.device))
