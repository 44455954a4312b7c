"""Sequence encoder (user tower), behaviour tower and the Barlow Twins projector.

The user tower is a causal Transformer over the user's items (SASRec-style): position t attends
to positions <= t only, so one pass over a sequence gives a prediction at every position, and
training uses all of them. UserTower and BehaviourTower are exactly the exported graphs
(user.onnx, behaviour.onnx): they read content vectors only. SequenceModel wraps them for
training: it looks up each item's content vector, adds an item-id embedding for items with
history (dropped out per token so the content path alone stays strong; the export has no id
path, which equals "all ids dropped"), and owns the learned mask token of the masking view.

Three kinds share the training loop and the evaluation code:
- "montage": content projection + id embedding in, unit item vectors from the behaviour tower
  (+ id residual) out; Barlow Twins optional. Without item content the "content" vector is a free
  embedding per item (id-only, same architecture).
- "sasrec": the published recipe, ids only: shared item embedding in and out, learned positions,
  causal pre-LN blocks, dot-product logits, no time features.
- "dual": ID-only dual encoder: the user is the (causal, running) mean of its items' embeddings,
  no attention, no order; the same loss.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn

from ..towers import Block, l2norm  # the text tower's block: one Transformer block for the project


@dataclass
class BehaviourConfig:
    kind: str = "montage"  # montage | sasrec | dual
    dim: int = 256  # joint space D
    width: int = 64  # Transformer width inside the user tower
    layers: int = 2
    heads: int = 2
    ffn: int = 256
    max_items: int = 200  # N: most recent items the user tower reads
    dropout: float = 0.2
    age_freqs: int = 8  # Fourier features of log1p(time gap)
    time_gap_unit_seconds: float = 3600.0
    behaviour_hidden: int = 512
    proj_dim: int = 512  # Barlow Twins projector width (2048 in the paper; smaller keeps CPU steps cheap)
    use_ids: bool = True  # id embedding beside the content path
    id_dropout: float = 0.1  # 0.3 on ML-100K: valid NDCG@10 0.103, test 0.077; 0.1: 0.111, 0.083 (one seed)
    # training
    max_epochs: int = 200
    patience: int = 8  # validations without improvement before stopping
    valid_max_users: int = 20_000  # validation NDCG@10 (model selection) on at most this many users, seeded
    time_budget_s: float = 600.0  # wall-clock cap of one fit (an epoch in progress finishes)
    batch_size: int = 0  # 0 = automatic: about steps_per_epoch steps an epoch, capped by the logits budget
    steps_per_epoch: int = 30  # small data needs many small steps (943 users: batch 31, not 200)
    max_batch: int = 128  # users per step at most (SASRec's batch)
    logits_budget: int = 30_000_000  # positions x scored items per batch
    full_softmax_max_items: int = 16_384  # above this the loss is a sampled softmax with logQ correction
    negatives: int = 4096  # sampled softmax size (23.6k items: 1/6 of the full softmax's cost per epoch)
    lr: float = 2e-3
    weight_decay: float = 0.0
    w_bt: float = 0.0  # 0 = next item only
    bt_lambda: float = 5e-3
    bt_scale: float = 1.0 / 128  # BT sums over proj_dim terms; this brings it near the softmax's scale
    bt_batch: int = 64  # users per Barlow Twins batch
    bt_items: int = 50  # newest items of each user the two views are cut from
    mask_ratio: float = 0.3
    crop_ratio: float = 0.6
    reorder_ratio: float = 0.3
    seed: int = 0
    device: str = "cpu"  # "cuda" = the GPU preset (evaluate --device); tests and the default run on CPU

    def to_dict(self) -> dict:
        return asdict(self)


def _time_features(lin: nn.Linear, freqs: torch.Tensor, gap: torch.Tensor) -> torch.Tensor:
    # log scale: a minute and an hour differ as much as a day and a month
    phase = torch.log1p(gap.clamp(min=0.0))[..., None] * freqs
    return lin(torch.cat([torch.sin(phase), torch.cos(phase)], dim=-1))


class UserTower(nn.Module):
    """items (B, N, D) content vectors, oldest first, left-padded; mask (B, N); age (B, N) in
    time_gap units (now - event time) -> embedding (B, D), unit norm: the output at the newest slot.

    Time enters twice, both ways valid at every position of a causal pass: each token gets the gap
    to the item before it, and the output gets how long ago the newest item was (at training time
    the gap to the target; at serving time, to now).
    """

    def __init__(self, cfg: BehaviourConfig):
        super().__init__()
        w, n = cfg.width, cfg.max_items
        self.inp = nn.Linear(cfg.dim, w)
        self.pos = nn.Parameter(torch.randn(1, n, w) * 0.02)  # by slot; the newest item is always slot N-1
        self.register_buffer("freqs", torch.logspace(-1.5, 1.0, cfg.age_freqs))
        self.gap = nn.Linear(2 * cfg.age_freqs, w)
        self.now = nn.Linear(2 * cfg.age_freqs, w)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(w, cfg.heads, cfg.ffn, cfg.dropout) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(w)
        self.proj = nn.Linear(w, cfg.dim)
        self.register_buffer("causal", torch.triu(torch.full((n, n), -1e4), diagonal=1))
        # scales at init: a unit content vector projects to ~unit coordinates (like SASRec's
        # sqrt(width)-scaled embeddings); time features start small beside it
        nn.init.normal_(self.inp.weight, std=1.0)
        nn.init.zeros_(self.inp.bias)
        for lin in (self.gap, self.now):
            nn.init.normal_(lin.weight, std=0.02)
            nn.init.zeros_(lin.bias)

    def forward(self, items: torch.Tensor, mask: torch.Tensor, age: torch.Tensor) -> torch.Tensor:
        """The exported graph: embedding only."""
        h = self.hidden(self.inp(items), mask, age)
        return l2norm(self.head(h[:, -1], age[:, -1]))

    def hidden(self, x: torch.Tensor, mask: torch.Tensor, age: torch.Tensor,
               extra: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, N, W) projected items -> (B, N, W) causal states (state t has seen items <= t)."""
        n = x.shape[1]
        if extra is not None:  # training-only additive token inputs (id embeddings, mask token)
            x = x + extra
        prev = torch.cat([age[:, :1], age[:, :-1]], dim=1)
        gap = (prev - age) * mask  # 0 for the first item and padding
        x = self.drop(x + self.pos[:, -n:] + _time_features(self.gap, self.freqs, gap))
        bias = self.causal[-n:, -n:][None, None] + ((1.0 - mask) * -1e4)[:, None, None, :]
        for block in self.blocks:
            x = block(x, bias)
        return self.norm(x)

    def head(self, h: torch.Tensor, age_now: torch.Tensor) -> torch.Tensor:
        """States (..., W) + time since the newest item (...) -> user vectors (..., D), not normalised."""
        return self.proj(h + _time_features(self.now, self.freqs, age_now))


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


class SequenceModel(nn.Module):
    """Training wrapper: item indices -> (content vectors + ids) -> causal states -> logits."""

    def __init__(self, cfg: BehaviourConfig, content: np.ndarray | None, n_items: int):
        super().__init__()
        self.cfg, self.n_items = cfg, n_items
        w = cfg.width
        if cfg.kind != "montage":
            # ids only: one shared table in and out (row n_items = padding, always zero)
            self.emb = nn.Embedding(n_items + 1, w, padding_idx=n_items)
            nn.init.normal_(self.emb.weight, std=w ** -0.5)
            with torch.no_grad():
                self.emb.weight[n_items].zero_()
            self.pos = nn.Parameter(torch.randn(1, cfg.max_items, w) * 0.02)
            self.drop = nn.Dropout(cfg.dropout)
            self.blocks = nn.ModuleList(Block(w, cfg.heads, cfg.ffn, cfg.dropout) for _ in range(cfg.layers))
            self.norm = nn.LayerNorm(w)
            self.register_buffer("causal", torch.triu(torch.full((cfg.max_items,) * 2, -1e4), diagonal=1))
            self.register_buffer("known", torch.zeros(n_items + 1, dtype=torch.bool))
            return
        if content is None:  # no item text: the content vector is a free embedding (id-only)
            self.item_emb = nn.Embedding(n_items, cfg.dim)
            nn.init.normal_(self.item_emb.weight, std=cfg.dim ** -0.5)
            self.register_buffer("content", torch.zeros(0, cfg.dim))
        else:
            self.item_emb = None
            self.register_buffer("content", torch.as_tensor(content, dtype=torch.float32))
        use_ids = cfg.use_ids and content is not None
        # row n_items = "no id" (padding, cold item or dropped): always zero
        self.ids = nn.Embedding(n_items + 1, w, padding_idx=n_items) if use_ids else None
        self.out_ids = nn.Embedding(n_items + 1, cfg.dim, padding_idx=n_items) if use_ids else None
        if use_ids:
            nn.init.normal_(self.ids.weight, std=0.5)
            nn.init.zeros_(self.out_ids.weight)
            with torch.no_grad():
                self.ids.weight[n_items].zero_()
        self.register_buffer("known", torch.zeros(n_items + 1, dtype=torch.bool))
        self.mask_token = nn.Parameter(torch.zeros(w))
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
        """Items in the scoring space; idx None = the catalogue. For montage without ids (the
        exported path) unit vectors; with ids free vectors; for sasrec/dual the id embeddings."""
        if idx is None:
            idx = torch.arange(self.n_items, device=self.known.device)
        if self.cfg.kind != "montage":
            return self.emb(idx)
        pre = self.behaviour.pre(self.item_content(idx))
        if self.out_ids is None or not use_ids:
            return l2norm(pre)  # exactly behaviour.onnx
        # with ids (evaluation only): free norms, like SASRec's item embeddings (a norm acts as a prior)
        keep = self.known[idx]
        if self.training:
            keep &= torch.rand(idx.shape, device=idx.device) >= self.cfg.id_dropout
        return pre + self.out_ids(torch.where(keep, idx, torch.full_like(idx, self.n_items)))

    def states(self, idx: torch.Tensor, age: torch.Tensor, hidden: torch.Tensor | None = None,
               use_ids: bool = True) -> torch.Tensor:
        """idx (B, N) item indices, -1 = padding; age (B, N); hidden (B, N) masked-out positions
        -> (B, N, W) causal states."""
        mask = (idx >= 0).float()
        safe = idx.clamp(min=0)
        empty = idx < 0 if hidden is None else (idx < 0) | hidden
        n = idx.shape[1]
        if self.cfg.kind != "montage":
            x = self.emb(torch.where(empty, torch.full_like(safe, self.n_items), safe))
            if hidden is not None:
                x = x + hidden[..., None].float() * self.mask_token_ids()
            if self.cfg.kind == "dual":  # running mean over the window: no order, no attention
                m = mask[..., None]
                return torch.cumsum(x * m, 1) / torch.cumsum(m, 1).clamp(min=1.0)
            x = self.drop(x * self.cfg.width ** 0.5 + self.pos[:, -n:])
            bias = self.causal[-n:, -n:][None, None] + ((1.0 - mask) * -1e4)[:, None, None, :]
            for block in self.blocks:
                x = block(x, bias)
            return self.norm(x)
        # montage: the input projection runs once per distinct item and is gathered
        uniq, inv = torch.unique(safe, return_inverse=True)
        table = self.user.inp(self.item_content(uniq))
        x = torch.where(empty[..., None], self.user.inp.bias.expand(1, -1), table[inv])
        extra = None
        if self.ids is not None and use_ids:
            keep = ~empty & self.known[safe]
            if self.training:
                keep &= torch.rand(idx.shape, device=idx.device) >= self.cfg.id_dropout
            extra = self.ids(torch.where(keep, safe, torch.full_like(safe, self.n_items)))
        if hidden is not None:
            token = hidden[..., None].float() * self.mask_token
            extra = token if extra is None else extra + token
        return self.user.hidden(x, mask, age, extra)

    def mask_token_ids(self) -> torch.Tensor:
        return torch.zeros(self.cfg.width, device=self.known.device)

    def users(self, h: torch.Tensor, age_now: torch.Tensor) -> torch.Tensor:
        """States -> user vectors in the scoring space (montage: before normalisation; the scale
        acts as a per-user temperature and does not change a user's ranking)."""
        if self.cfg.kind != "montage":
            return h
        return self.user.head(h, age_now)

    def pooled(self, h: torch.Tensor, age_now: torch.Tensor) -> torch.Tensor:
        """Newest state -> the vector the Barlow Twins projector and the probes read."""
        return self.users(h[:, -1], age_now)
