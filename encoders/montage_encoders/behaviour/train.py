"""Training (every position, causal), batched ranking, model selection on validation NDCG@10.

One epoch = every training user once, in shuffled batches that are collated on the fly (nothing
of size users x N is held). A user contributes its newest N+1 training items: inputs are items
0..N-1, targets items 1..N, so every position predicts its next item (SASRec). Ages are measured
to a reference time; the tower only reads gaps between consecutive items and, at the output,
the gap from each position to its target (at serving time: to now).

Loss: cross-entropy over the whole catalogue when it has at most cfg.full_softmax_max_items
items; otherwise a sampled softmax with cfg.negatives items drawn by popularity (shared by the
batch, accidental hits removed) and the logQ correction. Plus, for montage with w_bt > 0,
Barlow Twins between two augmented views (mask / crop / reorder) of each user's newest items.
"""
from __future__ import annotations

import copy
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import augment
from .data import Query, Seq
from .losses import barlow_twins_loss
from .model import BehaviourConfig, SequenceModel

SCORE_USERS = 256  # users per scoring batch
SCORE_ITEMS = 16384  # items per scoring chunk
HARD_CAP = 1.25  # the budget is checked after each epoch; mid-epoch only past this multiple of it


def collate(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]], n: int):
    """[(items, ages, hidden)] -> idx (B, n) left-padded with -1, age (B, n), hidden (B, n), where
    n = min(N, longest row): slots are counted from the newest item, so trimming common padding
    changes nothing but the cost."""
    b = len(rows)
    n = max(1, min(n, max((len(r[0]) for r in rows), default=1)))
    idx = torch.full((b, n), -1, dtype=torch.long)
    age = torch.zeros(b, n)
    hidden = torch.zeros(b, n, dtype=torch.bool)
    for r, (items, ages, hid) in enumerate(rows):
        k = min(len(items), n)
        if k == 0:
            continue
        idx[r, n - k:] = torch.as_tensor(items[-k:])
        age[r, n - k:] = torch.as_tensor(np.asarray(ages[-k:], np.float32))
        if hid is not None:
            hidden[r, n - k:] = torch.as_tensor(hid[-k:])
    return idx, age, hidden


def history(items: np.ndarray, ts: np.ndarray, now: int, cfg: BehaviourConfig):
    """The newest N items and their ages (in time-gap units) at time `now`."""
    items, ts = items[-cfg.max_items:], ts[-cfg.max_items:]
    return items, np.maximum(now - ts, 0) / cfg.time_gap_unit_seconds


def training_batch(seqs: list[Seq], cfg: BehaviourConfig):
    """Users -> idx, age (B, N) inputs; targets (B, N) (-1 = none); now_gap (B, N) gap to target."""
    unit = cfg.time_gap_unit_seconds
    n = max(1, min(cfg.max_items, max(len(s.items) - 1 for s in seqs)))
    b = len(seqs)
    idx = torch.full((b, n), -1, dtype=torch.long)
    tgt = torch.full((b, n), -1, dtype=torch.long)
    age = torch.zeros(b, n)
    now_gap = torch.zeros(b, n)
    for r, s in enumerate(seqs):
        items, ts = s.items[-(n + 1):], s.ts[-(n + 1):]
        k = len(items) - 1
        if k <= 0:
            continue
        idx[r, n - k:] = torch.as_tensor(items[:-1])
        tgt[r, n - k:] = torch.as_tensor(items[1:])
        age[r, n - k:] = torch.as_tensor(((ts[-1] - ts[:-1]) / unit).astype(np.float32))
        now_gap[r, n - k:] = torch.as_tensor((np.maximum(ts[1:] - ts[:-1], 0) / unit).astype(np.float32))
    return idx, age, tgt, now_gap


class Sampler:
    """Popularity negatives for the sampled softmax: log Q(i) of K draws with replacement."""

    def __init__(self, seqs: list[Seq], n_items: int, k: int, rng: np.random.Generator):
        counts = np.bincount(np.concatenate([s.items for s in seqs]), minlength=n_items).astype(np.float64)
        counts = counts ** 0.75 + 1e-3  # word2vec-style flattening; every item has some chance
        self.p = counts / counts.sum()
        self.logq = torch.as_tensor(np.log(self.p * k), dtype=torch.float32)
        self.k, self.rng = k, rng

    def draw(self) -> torch.Tensor:
        return torch.as_tensor(self.rng.choice(len(self.p), size=self.k, p=self.p))


def device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def next_item_loss(model: SequenceModel, users: torch.Tensor, targets: torch.Tensor,
                   sampler: Sampler | None) -> torch.Tensor:
    """users (P, W|D) at valid positions, targets (P,) -> mean cross-entropy."""
    if sampler is None:
        return F.cross_entropy(users @ model.item_vectors().T, targets)
    neg = sampler.draw().to(users.device)
    pos = (users * model.item_vectors(targets)).sum(-1, keepdim=True) - sampler.logq[targets][:, None]
    logits = users @ model.item_vectors(neg).T - sampler.logq[neg][None]
    logits = logits.masked_fill(neg[None, :] == targets[:, None], float("-inf"))
    logits = torch.cat([pos, logits], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(users), dtype=torch.long, device=users.device))


def bt_loss(model: SequenceModel, seqs: list[Seq], cfg: BehaviourConfig, rng: np.random.Generator):
    """Barlow Twins between two augmented views of each user's newest bt_items training items."""
    ratios = (cfg.mask_ratio, cfg.crop_ratio, cfg.reorder_ratio)
    pick = seqs if len(seqs) <= cfg.bt_batch else [seqs[i] for i in rng.choice(len(seqs), cfg.bt_batch, replace=False)]
    if len(pick) < 4:
        return torch.zeros((), device=device_of(model))
    base = [history(s.items[-cfg.bt_items:], s.ts[-cfg.bt_items:], int(s.ts[-1]), cfg) for s in pick]
    views = []
    for _ in range(2):
        v = [augment.random_view(h[0], h[1], rng, ratios) for h in base]
        vi, va, vh = (t.to(device_of(model)) for t in collate(v, cfg.bt_items))
        h = model.states(vi, va, vh)
        views.append(model.projector(model.pooled(h, va[:, -1])))
    return barlow_twins_loss(views[0], views[1], cfg.bt_lambda) * cfg.bt_scale


def auto_batch(seqs: list[Seq], cfg: BehaviourConfig, scored: int) -> int:
    """Users per step. The number of updates matters more than their size: on MovieLens-100K a
    batch of 200 users (5 steps an epoch) reached test NDCG@10 0.052 in 120 s where 32 users
    (30 steps) reached 0.082 in 100 s and stopped early. So: about steps_per_epoch steps, at most
    max_batch users, and never more positions x scored items than the logits budget (memory)."""
    if cfg.batch_size:
        return cfg.batch_size
    mean_len = float(np.mean([min(len(s.items) - 1, cfg.max_items) for s in seqs]))
    by_steps = min(cfg.max_batch, len(seqs) / cfg.steps_per_epoch)
    by_memory = cfg.logits_budget / max(1.0, mean_len * scored)
    return int(max(8, min(by_steps, by_memory)))


# ------------------------------------------------------------------ ranking
@torch.no_grad()
def user_vectors(model: SequenceModel, queries: list[Query], cfg: BehaviourConfig,
                 use_ids: bool = True, batch: int = 256) -> torch.Tensor:
    """Queries -> (Q, D|W) vectors in the scoring space, from the newest state; streamed."""
    model.eval()
    order = np.argsort([min(len(q.items), cfg.max_items) for q in queries], kind="stable")  # similar lengths together
    out = []
    for a in range(0, len(queries), batch):
        hs = [history(queries[i].items, queries[i].ts, queries[i].now, cfg) for i in order[a:a + batch]]
        idx, age, _ = (t.to(device_of(model)) for t in collate([(h[0], h[1], None) for h in hs], cfg.max_items))
        out.append(model.pooled(model.states(idx, age, use_ids=use_ids), age[:, -1]).cpu())
    if not out:
        return torch.zeros(0, model.cfg.dim)
    vecs = torch.cat(out)
    return vecs[torch.as_tensor(np.argsort(order, kind="stable"))]


def _counts(scores: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor):
    """One block: scores (b, c) float64 with excluded (rows, cols) already -inf; targets (b,)."""
    s = scores.index_put((rows, cols), torch.tensor(float("-inf"), dtype=scores.dtype))
    return (s > targets[:, None]).sum(1), (s == targets[:, None]).sum(1)


def rank_of_targets(scores: torch.Tensor, queries: list[Query], rng: np.random.Generator) -> np.ndarray:
    """Reference (unbatched): full ranking over the catalogue; the user's history and the target
    itself are excluded from the competitors; ties with the target are broken at random. From 1."""
    scores = scores.double()
    tgt_idx = torch.as_tensor([q.target for q in queries])
    tgt = scores[torch.arange(len(queries)), tgt_idx]
    rows, cols = _excluded(queries, 0, scores.shape[1])
    greater, equal = _counts(scores, tgt, rows, cols)
    return _ranks(greater.numpy(), equal.numpy(), rng)


def _excluded(queries: list[Query], a: int, b: int):
    """(row, col - a) of every history item and target in item range [a, b)."""
    rows, cols = [], []
    for r, q in enumerate(queries):
        c = np.unique(np.append(q.items, q.target))
        c = c[(c >= a) & (c < b)]
        rows.append(np.full(len(c), r))
        cols.append(c - a)
    return torch.as_tensor(np.concatenate(rows)), torch.as_tensor(np.concatenate(cols))


def _ranks(greater: np.ndarray, equal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 1 + greater + np.floor(rng.random(len(greater)) * (equal + 1)).astype(np.int64)


def rank_batched(users: torch.Tensor, items: torch.Tensor, queries: list[Query], rng: np.random.Generator,
                 user_batch: int = SCORE_USERS, item_chunk: int = SCORE_ITEMS) -> np.ndarray:
    """rank_of_targets(users @ items.T) without the users x items matrix: a batch of users
    against item chunks at a time, keeping running counts of items above / tied with the target."""
    users, items = users.to(items.device).double(), items.double()  # on the items' device (GPU preset)
    tgt_all = torch.as_tensor([q.target for q in queries], device=items.device)
    greater = np.zeros(len(queries), np.int64)
    equal = np.zeros(len(queries), np.int64)
    for u in range(0, len(queries), user_batch):
        qs = queries[u:u + user_batch]
        ub = users[u:u + user_batch]
        tgt = (ub * items[tgt_all[u:u + user_batch]]).sum(1)
        for a in range(0, len(items), item_chunk):
            b = min(a + item_chunk, len(items))
            rows, cols = (t.to(items.device) for t in _excluded(qs, a, b))
            g, e = _counts(ub @ items[a:b].T, tgt, rows, cols)
            greater[u:u + len(qs)] += g.cpu().numpy()
            equal[u:u + len(qs)] += e.cpu().numpy()
    return _ranks(greater, equal, rng)


def hr_ndcg(ranks: np.ndarray, k: int = 10) -> tuple[float, float]:
    hit = ranks <= k
    return float(hit.mean()), float(np.where(hit, 1.0 / np.log2(ranks + 1), 0.0).mean())


@torch.no_grad()
def evaluate(model: SequenceModel, queries: list[Query], cfg: BehaviourConfig, rng: np.random.Generator,
             use_ids: bool = True) -> tuple[float, float]:
    """(HR@10, NDCG@10) of a model on queries, streamed."""
    model.eval()
    users = user_vectors(model, queries, cfg, use_ids)
    return hr_ndcg(rank_batched(users, model.item_vectors(use_ids=use_ids), queries, rng))


# ------------------------------------------------------------------ training
def length_batches(seqs: list[Seq], batch: int, n: int, rng: np.random.Generator):
    """Shuffled batches of users of similar length (little padding), in shuffled order."""
    jitter = rng.random(len(seqs))
    order = np.lexsort((jitter, [min(len(s.items), n + 1) for s in seqs]))
    batches = [order[a:a + batch] for a in range(0, len(order), batch)]
    for b in rng.permutation(len(batches)):
        yield [seqs[i] for i in batches[b]]


def fit(model: SequenceModel, train: list[Seq], valid: list[Query], cfg: BehaviourConfig,
        log=print, select_use_ids: bool = True) -> dict:
    """Train every position; evaluate validation NDCG@10 after each epoch and keep the best
    weights; stop after `patience` epochs without improvement, at max_epochs, or when the time
    budget is spent. select_use_ids=False selects on the exported (content-only) path."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    dev = torch.device(cfg.device)
    model.to(dev)
    if len(valid) > cfg.valid_max_users:  # model selection on a seeded sample: 1M users x 100k items each epoch is hours
        valid = [valid[i] for i in np.sort(np.random.default_rng(cfg.seed).choice(len(valid), cfg.valid_max_users,
                                                                                  replace=False))]
    seqs = [s for s in train if len(s.items) >= 2]
    items = np.unique(np.concatenate([s.items for s in seqs]))
    model.set_known(items)
    n_items = model.n_items
    sampler = None
    if n_items > cfg.full_softmax_max_items:
        sampler = Sampler(seqs, n_items, cfg.negatives, rng)
        sampler.logq = sampler.logq.to(dev)
    batch = auto_batch(seqs, cfg, n_items if sampler is None else cfg.negatives)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    best = {"ndcg": -1.0, "epoch": 0, "state": None}
    start, losses, steps, stopped = time.time(), [], 0, "max_epochs"
    use_bt = cfg.kind == "montage" and cfg.w_bt > 0
    epoch = 0
    for epoch in range(1, cfg.max_epochs + 1):
        model.train()
        for chunk in length_batches(seqs, batch, cfg.max_items, rng):
            idx, age, tgt, now_gap = (t.to(dev) for t in training_batch(chunk, cfg))
            h = model.states(idx, age)
            valid_pos = tgt >= 0
            users = model.users(h[valid_pos], now_gap[valid_pos])
            loss = next_item_loss(model, users, tgt[valid_pos], sampler)
            if use_bt:
                loss = loss + cfg.w_bt * bt_loss(model, chunk, cfg, rng)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            losses.append(float(loss))
            steps += 1
            if time.time() - start > HARD_CAP * cfg.time_budget_s:
                break  # an epoch longer than the budget (big data on a small CPU): validate what we have
        _, ndcg = evaluate(model, valid, cfg, np.random.default_rng(cfg.seed), select_use_ids)
        if ndcg > best["ndcg"]:
            best = {"ndcg": ndcg, "epoch": epoch, "step": steps, "state": copy.deepcopy(model.state_dict())}
        if log:
            log(f"  epoch {epoch} loss {np.mean(losses[-max(1, len(seqs) // batch):]):.4f} valid ndcg@10 {ndcg:.4f}"
                f" ({time.time() - start:.0f}s)")
        if epoch - best["epoch"] >= cfg.patience:
            stopped = "early_stop"
            break
        if time.time() - start > cfg.time_budget_s:
            stopped = "time_budget" if time.time() - start <= HARD_CAP * cfg.time_budget_s else "time_budget_mid_epoch"
            break
    model.load_state_dict(best["state"])
    model.eval()
    return {"train_s": time.time() - start, "epochs": epoch, "steps": steps, "best_epoch": best["epoch"],
            "best_step": best["step"], "valid_ndcg_at_10": best["ndcg"], "stopped": stopped,
            "batch_size": batch, "loss": "sampled_softmax_logq" if sampler else "full_softmax", "losses": losses}
