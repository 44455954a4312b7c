"""Training loops: next item (+ Barlow Twins), with model selection on the validation targets.

One training example = one user and a random cut point t in their training history: the items
before t (at most N) are the input, item t the next-item target, and ages are measured to the
target's time (at serving time "now" is the moment the vector is computed).
"""
from __future__ import annotations

import copy
import time

import numpy as np
import torch

from . import augment
from .data import Query, Seq
from .losses import barlow_twins_loss, next_item_loss
from .model import BehaviourConfig, BehaviourModel


def collate(histories: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]], n: int):
    """[(items, ages, hidden)] -> idx (B, N) left-padded with -1, age (B, N), hidden (B, N)."""
    b = len(histories)
    idx = torch.full((b, n), -1, dtype=torch.long)
    age = torch.zeros(b, n)
    hidden = torch.zeros(b, n, dtype=torch.bool)
    for r, (items, ages, hid) in enumerate(histories):
        k = min(len(items), n)
        if k == 0:
            continue
        idx[r, n - k:] = torch.as_tensor(items[-k:])
        age[r, n - k:] = torch.as_tensor(ages[-k:], dtype=torch.float32)
        if hid is not None:
            hidden[r, n - k:] = torch.as_tensor(hid[-k:])
    return idx, age, hidden


def history(items: np.ndarray, ts: np.ndarray, now: int, cfg: BehaviourConfig):
    """The newest N items and their ages (in time-gap units) at time `now`."""
    items, ts = items[-cfg.max_items:], ts[-cfg.max_items:]
    return items, np.maximum(now - ts, 0) / cfg.time_gap_unit_seconds


def sample_batch(seqs: list[Seq], cfg: BehaviourConfig, rng: np.random.Generator):
    """Random users, a random cut each: (histories, targets)."""
    pick = rng.choice(len(seqs), size=min(cfg.batch_size, len(seqs)), replace=False)
    hists, targets = [], []
    for i in pick:
        s = seqs[i]
        t = int(rng.integers(1, len(s.items)))
        hists.append(history(s.items[:t], s.ts[:t], int(s.ts[t]), cfg))
        targets.append(int(s.items[t]))
    return hists, torch.as_tensor(targets)


def step_loss(model: BehaviourModel, hists, targets, cfg: BehaviourConfig, rng, negatives):
    """w_next * sampled softmax + w_bt * Barlow Twins on two augmented views. Returns (loss, parts)."""
    idx, age, _ = collate([(h[0], h[1], None) for h in hists], cfg.max_items)
    user, _ = model.encode(idx, age)
    neg_vecs = model.item_vectors(negatives)
    tgt_vecs = model.item_vectors(targets)
    parts = {"next": next_item_loss(user, tgt_vecs, targets, neg_vecs, negatives, cfg.temperature)}
    loss = cfg.w_next * parts["next"]
    if cfg.w_bt > 0:
        ratios = (cfg.mask_ratio, cfg.crop_ratio, cfg.reorder_ratio)
        views = []
        for _ in range(2):
            v = [augment.random_view(h[0], h[1], rng, ratios) for h in hists[:cfg.bt_batch]]
            vi, va, vh = collate(v, cfg.max_items)
            views.append(model.projector(model.encode(vi, va, vh)[1]))
        parts["bt"] = barlow_twins_loss(views[0], views[1], cfg.bt_lambda) * cfg.bt_scale
        loss = loss + cfg.w_bt * parts["bt"]
    return loss, {k: float(v) for k, v in parts.items()}


@torch.no_grad()
def user_vectors(model: BehaviourModel, queries: list[Query], cfg: BehaviourConfig,
                 use_ids: bool = True) -> torch.Tensor:
    model.eval()
    out = []
    for a in range(0, len(queries), 512):
        hs = [history(q.items, q.ts, q.now, cfg) for q in queries[a:a + 512]]
        idx, age, _ = collate([(h[0], h[1], None) for h in hs], cfg.max_items)
        out.append(model.encode(idx, age, use_ids=use_ids)[0])
    return torch.cat(out)


def rank_of_targets(scores: torch.Tensor, queries: list[Query], rng: np.random.Generator) -> np.ndarray:
    """Full ranking with the user's history removed; ties broken at random. Ranks from 1."""
    scores = scores.clone().double()
    scores += torch.from_numpy(rng.random(scores.shape)) * 1e-9 * (scores.abs().max() + 1)
    for r, q in enumerate(queries):
        scores[r, torch.as_tensor(q.items)] = float("-inf")
    tgt = scores[torch.arange(len(queries)), torch.as_tensor([q.target for q in queries])]
    return (scores > tgt[:, None]).sum(1).numpy() + 1


def hr_ndcg(ranks: np.ndarray, k: int = 10) -> tuple[float, float]:
    hit = ranks <= k
    return float(hit.mean()), float(np.where(hit, 1.0 / np.log2(ranks + 1), 0.0).mean())


def model_scores(model: BehaviourModel, queries: list[Query], cfg: BehaviourConfig,
                 use_ids: bool = True) -> torch.Tensor:
    with torch.no_grad():
        model.eval()
        return user_vectors(model, queries, cfg, use_ids) @ model.item_vectors(use_ids=use_ids).T


def fit(model: BehaviourModel, train: list[Seq], valid: list[Query], cfg: BehaviourConfig,
        log=print) -> dict:
    """Train; keep the weights with the best validation NDCG@10 (checked every eval_every steps)."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    seqs = [s for s in train if len(s.items) >= 2]
    items = np.unique(np.concatenate([s.items for s in seqs]))
    model.set_known(items)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    best = {"ndcg": -1.0, "step": 0, "state": None}
    start, history_ = time.time(), []
    for step in range(1, cfg.steps + 1):
        model.train()
        hists, targets = sample_batch(seqs, cfg, rng)
        k = min(cfg.negatives, len(items))
        negatives = torch.as_tensor(rng.choice(items, size=k, replace=False))
        loss, parts = step_loss(model, hists, targets, cfg, rng, negatives)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        history_.append(float(loss))
        if step % cfg.eval_every == 0 or step == cfg.steps:
            _, ndcg = hr_ndcg(rank_of_targets(model_scores(model, valid, cfg), valid, rng))
            if ndcg > best["ndcg"]:
                best = {"ndcg": ndcg, "step": step, "state": copy.deepcopy(model.state_dict())}
            if log:
                log(f"  step {step} loss {np.mean(history_[-cfg.eval_every:]):.4f} {parts} valid ndcg@10 {ndcg:.4f}")
    model.load_state_dict(best["state"])
    model.eval()
    return {"train_s": time.time() - start, "best_step": best["step"], "valid_ndcg_at_10": best["ndcg"],
            "losses": history_}


def fit_classifier(model: BehaviourModel, queries: list[Query], labels: np.ndarray, classes: int,
                   cfg: BehaviourConfig, steps: int = 150, lr: float = 1e-3) -> torch.nn.Module:
    """From-scratch baseline: the same encoder + a linear head, end to end on the labelled users."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    head = torch.nn.Linear(cfg.dim, classes)
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    hs = [history(q.items, q.ts, q.now, cfg) for q in queries]
    y = torch.as_tensor(labels)
    for _ in range(steps):
        model.train()
        pick = rng.choice(len(hs), size=min(64, len(hs)), replace=False)
        idx, age, _ = collate([(hs[i][0], hs[i][1], None) for i in pick], cfg.max_items)
        loss = torch.nn.functional.cross_entropy(head(model.encode(idx, age)[1]), y[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return head
