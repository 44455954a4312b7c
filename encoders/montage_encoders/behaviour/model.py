"""Sequence encoder (user tower), behaviour tower and the Barlow Twins projector.

UserTower and BehaviourTower are exactly the exported graphs (user.onnx, behaviour.onnx): they
read content vectors only. BehaviourModel wraps them for training: it looks up each item's
content vector, adds an item-id embedding for items with history (dropped out per token so the
content path alone stays strong; the export has no id path, which equals "all ids dropped"),
and owns the learned mask token used by the masking augmentation.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn

from ..towers import Block, l2norm  # the text tower's block: one Transformer block for the project


@dataclass
class BehaviourConfig:
    dim: int = 256  # joint space D
    width: int = 64  # Transformer width inside the user tower
    layers: int = 2
    heads: int = 2
    ffn: int = 128
    max_items: int = 32  # N: most recent items the user tower reads
    dropout: float = 0.2
    age_freqs: int = 8  # Fourier features of log1p(age)
    time_gap_unit_seconds: float = 3600.0
    behaviour_hidden: int = 512
    proj_dim: int = 1024  # Barlow Twins projector width (2048 in the paper; 1024 keeps CPU steps cheap)
    use_ids: bool = True  # id embedding beside the content path
    id_dropout: float = 0.5
    id_only: bool = False  # dual-encoder baseline: content vector = free item embedding, no text
    # training
    steps: int = 1200
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.01
    temperature: float = 0.07
    negatives: int = 2048  # sampled softmax size (>= catalogue means full softmax)
    w_next: float = 1.0
    w_bt: float = 0.0  # 0 = next item only
    bt_lambda: float = 5e-3
    bt_scale: float = 1.0 / 256  # BT sums over proj_dim terms; this brings it near the softmax's scale
    mask_ratio: float = 0.3
    crop_ratio: float = 0.6
    reorder_ratio: float = 0.3
    bt_batch: int = 64  # users per Barlow Twins batch (small batches are fine for BT)
    eval_every: int = 100
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class UserTower(nn.Module):
    """items (B, N, D) content vectors, oldest first, left-padded; mask (B, N); age (B, N) in
    time_gap units -> embedding (B, D), unit norm. Also returns the pre-norm vector (projector input).
    """

    def __init__(self, cfg: BehaviourConfig):
        super().__init__()
        w = cfg.width
        self.inp = nn.Linear(cfg.dim, w)
        self.pos = nn.Parameter(torch.randn(1, cfg.max_items, w) * 0.02)  # by recency slot
        self.register_buffer("freqs", torch.logspace(-1.5, 1.0, cfg.age_freqs))
        self.age = nn.Linear(2 * cfg.age_freqs, w)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(w, cfg.heads, cfg.ffn, cfg.dropout) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(2 * w)
        self.proj = nn.Linear(2 * w, cfg.dim)

    def age_features(self, age: torch.Tensor) -> torch.Tensor:
        # log scale: a minute and an hour differ as much as a day and a month
        phase = torch.log1p(age.clamp(min=0.0))[..., None] * self.freqs  # (B, N, F)
        return self.age(torch.cat([torch.sin(phase), torch.cos(phase)], dim=-1))

    def forward(self, items: torch.Tensor, mask: torch.Tensor, age: torch.Tensor) -> torch.Tensor:
        """The exported graph: embedding only."""
        return self.tokens(self.inp(items), mask, age)[0]

    def tokens(self, x: torch.Tensor, mask: torch.Tensor, age: torch.Tensor,
               extra: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, N, W) projected items -> (embedding, pre-norm vector for the projector)."""
        n = x.shape[1]
        if extra is not None:  # training-only additive token inputs (id embeddings, mask token)
            x = x + extra
        x = self.drop(x + self.pos[:, -n:] + self.age_features(age))
        bias = (1.0 - mask)[:, None, None, :] * -1e4  # padded keys get no attention
        for block in self.blocks:
            x = block(x, bias)
        mean = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
        pre = self.proj(self.norm(torch.cat([x[:, -1], mean], dim=-1)))  # last slot = newest item
        return l2norm(pre), pre


class BehaviourTower(nn.Module):
    """content (B, D) -> the item's vector in the behaviour space (B, D), unit norm."""

    def __init__(self, cfg: BehaviourConfig):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cfg.dim, cfg.behaviour_hidden), nn.GELU(),
                                 nn.Linear(cfg.behaviour_hidden, cfg.dim))
        self.skip = nn.Linear(cfg.dim, cfg.dim, bias=False)

    def forward(self, content: torch.Tensor) -> torch.Tensor:
        return l2norm(self.pre(content))

    def pre(self, content: torch.Tensor) -> torch.Tensor:
        return self.skip(content) + self.net(content)


class BehaviourModel(nn.Module):
    """Training wrapper: item indices -> content vectors (+ ids) -> towers; BT projector."""

    def __init__(self, cfg: BehaviourConfig, content: np.ndarray | None, n_items: int):
        super().__init__()
        self.cfg, self.n_items = cfg, n_items
        if cfg.id_only or content is None:
            self.item_emb = nn.Embedding(n_items, cfg.dim)
            nn.init.normal_(self.item_emb.weight, std=cfg.dim ** -0.5)
            self.register_buffer("content", torch.zeros(0, cfg.dim))
        else:
            self.item_emb = None
            self.register_buffer("content", torch.as_tensor(content, dtype=torch.float32))
        use_ids = cfg.use_ids and not cfg.id_only and content is not None
        # row n_items = "no id" (padding, cold item or dropped): always zero
        self.ids = nn.Embedding(n_items + 1, cfg.width, padding_idx=n_items) if use_ids else None
        # the same on the item side: a residual in the behaviour space for items with history
        self.out_ids = nn.Embedding(n_items + 1, cfg.dim, padding_idx=n_items) if use_ids else None
        if use_ids:
            nn.init.zeros_(self.out_ids.weight)
        self.register_buffer("known", torch.zeros(n_items + 1, dtype=torch.bool))
        self.mask_token = nn.Parameter(torch.zeros(cfg.width))
        self.user = UserTower(cfg)
        self.behaviour = BehaviourTower(cfg)
        p = cfg.proj_dim
        self.projector = nn.Sequential(nn.Linear(cfg.dim, p), nn.BatchNorm1d(p), nn.ReLU(), nn.Linear(p, p))

    def set_known(self, items: np.ndarray) -> None:
        """Items that have training history: only these get an id embedding."""
        self.known.zero_()
        self.known[torch.as_tensor(items, dtype=torch.long)] = True

    def item_content(self, idx: torch.Tensor) -> torch.Tensor:
        if self.item_emb is not None:
            return l2norm(self.item_emb(idx))
        return self.content[idx]

    def item_vectors(self, idx: torch.Tensor | None = None, use_ids: bool = True) -> torch.Tensor:
        """Items in the behaviour space; idx None = the catalogue. use_ids=False is the exported
        path (content only); with ids, items with history add their id residual (dropped out
        per item in training, like the input side)."""
        if idx is None:
            idx = torch.arange(self.n_items, device=self.known.device)
        pre = self.behaviour.pre(self.item_content(idx))
        if self.out_ids is not None and use_ids:
            keep = self.known[idx]
            if self.training:
                keep &= torch.rand(idx.shape, device=idx.device) >= self.cfg.id_dropout
            pre = pre + self.out_ids(torch.where(keep, idx, torch.full_like(idx, self.n_items)))
        return l2norm(pre)

    def encode(self, idx: torch.Tensor, age: torch.Tensor, hidden: torch.Tensor | None = None,
               use_ids: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """idx (B, N) item indices, -1 = padding; age (B, N); hidden (B, N) masked-out positions.

        Same maths as UserTower.forward on content vectors (a missing item is a zero content
        vector, i.e. the input projection's bias), but the input projection runs once over the
        catalogue and is gathered, which is most of a CPU step saved.
        """
        mask = (idx >= 0).float()
        safe = idx.clamp(min=0)
        table = self.user.inp(self.item_content(torch.arange(self.n_items, device=idx.device)))  # (V, W)
        empty = idx < 0 if hidden is None else (idx < 0) | hidden
        x = torch.where(empty[..., None], self.user.inp.bias.expand_as(table[:1]), table[safe])
        extra = None
        if self.ids is not None and use_ids:
            keep = ~empty & self.known[safe]
            if self.training:
                keep &= torch.rand(idx.shape, device=idx.device) >= self.cfg.id_dropout
            extra = self.ids(torch.where(keep, safe, torch.full_like(safe, self.n_items)))
        if hidden is not None:
            token = hidden[..., None].float() * self.mask_token
            extra = token if extra is None else extra + token
        return self.user.tokens(x, mask, age, extra)
