"""Cross-modal contrastive loss: symmetric InfoNCE per modality pair, one learnable temperature.

A sample whose modality is missing (a silent clip has no audio) is masked out of that pair:
its row and column are removed, so it is neither a positive nor a negative. Filling it with
zeros instead would turn it into a negative that every query is pushed away from.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

PAIRS = (("video", "audio"), ("video", "text"), ("audio", "text"))


def info_nce(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor,
             valid: torch.Tensor | None = None) -> torch.Tensor | None:
    """Symmetric InfoNCE of unit vectors a, b (N, D); row i of a matches row i of b.

    valid (N,) bool keeps only samples that have both modalities. Returns None when fewer than
    two samples remain (no negatives, nothing to learn).
    """
    if valid is not None:
        a, b = a[valid], b[valid]
    if a.shape[0] < 2:
        return None
    logits = scale * a @ b.t()  # (N, N)
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


class ContrastiveLoss(nn.Module):
    """Weighted sum over pairs; `weights` maps "video-audio" style keys to weights."""

    def __init__(self, weights: dict[str, float], init_temperature: float = 0.07, max_scale: float = 100.0):
        super().__init__()
        self.weights = dict(weights)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))
        self.max_log_scale = math.log(max_scale)

    def scale(self) -> torch.Tensor:
        return self.log_scale.clamp(max=self.max_log_scale).exp()

    def forward(self, emb: dict[str, torch.Tensor], present: dict[str, torch.Tensor] | None = None):
        """emb: modality -> (N, D) unit vectors; present: modality -> (N,) bool (default all).

        Returns (total, {pair: loss value}); pairs with < 2 valid samples are skipped.
        """
        present = present or {}
        scale = self.scale()
        total = scale.new_zeros(())
        parts: dict[str, float] = {}
        for m1, m2 in PAIRS:
            key = f"{m1}-{m2}"
            if key not in self.weights or m1 not in emb or m2 not in emb:
                continue
            valid = _both(present.get(m1), present.get(m2))
            loss = info_nce(emb[m1], emb[m2], scale, valid)
            if loss is None:
                continue
            total = total + self.weights[key] * loss
            parts[key] = float(loss.detach())
        return total, parts


def _both(p1: torch.Tensor | None, p2: torch.Tensor | None) -> torch.Tensor | None:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    return p1 & p2


def weights_from_config(cfg) -> dict[str, float]:
    return {"video-audio": cfg.w_video_audio, "video-text": cfg.w_video_text, "audio-text": cfg.w_audio_text}
