"""The causal user tower: every-position training learns a deterministic next item, the batched
ranking equals the dense reference, the sampled-softmax path (big catalogues) learns, and a
configuration's result does not depend on what ran before it."""
import numpy as np
import torch

from montage_encoders.behaviour import data, train
from montage_encoders.behaviour.evaluate import fit_row
from montage_encoders.behaviour.model import BehaviourConfig, SequenceModel


def _cycle_split(n_users=60, n_items=30, seed=0):
    """Each user walks the cycle 0 -> 1 -> ... -> n_items-1 -> 0 from a random start: the next item
    is always determined by the last one (and never in the user's history)."""
    rng = np.random.default_rng(seed)
    seqs = []
    for u in range(n_users):
        length = int(rng.integers(8, 14))
        items = (int(rng.integers(n_items)) + np.arange(length)) % n_items
        seqs.append(data.Seq(u, items.astype(np.int64), 1_600_000_000 + 60 * np.arange(length, dtype=np.int64)))
    return data.leave_one_out(seqs)


def _tiny(**kw):
    base = dict(dim=32, width=32, heads=2, ffn=64, max_items=16, proj_dim=64, behaviour_hidden=32, dropout=0.1,
                batch_size=16, lr=5e-3, max_epochs=40, patience=40, time_budget_s=60)
    return BehaviourConfig(**{**base, **kw})


def _hr_at_1(model, split, cfg):
    users = train.user_vectors(model, split.test, cfg)
    ranks = train.rank_batched(users, model.item_vectors(), split.test, np.random.default_rng(0))
    return float((ranks == 1).mean())


def test_every_position_training_learns_a_deterministic_next_item():
    torch.set_num_threads(1)
    split = _cycle_split()
    for kind in ("sasrec", "montage"):
        cfg = _tiny(kind=kind)
        content = None
        if kind == "montage":
            rng = np.random.default_rng(1)
            content = rng.standard_normal((30, cfg.dim)).astype(np.float32)
            content /= np.linalg.norm(content, axis=1, keepdims=True)
        model, info = fit_row(cfg, content, 30, split, log=None)
        assert info["steps"] == info["epochs"] * 4  # 60 users, batches of 16: every user every epoch
        assert _hr_at_1(model, split, cfg) >= 0.9, kind


def test_batched_ranking_equals_the_dense_computation():
    rng = np.random.default_rng(3)
    n_items, n_users = 53, 23
    # small integers: exact scores, many exact ties (the random tie-break must agree too)
    users = torch.as_tensor(rng.integers(-2, 3, (n_users, 4)), dtype=torch.float64)
    items = torch.as_tensor(rng.integers(-2, 3, (n_items, 4)), dtype=torch.float64)
    queries = []
    for u in range(n_users):
        hist = rng.choice(n_items, size=int(rng.integers(1, 10)), replace=False)
        queries.append(data.Query(u, hist[:-1], np.zeros(len(hist) - 1, np.int64), int(hist[-1]), 0))
    queries[0] = data.Query(0, np.array([5, 7, 5]), np.zeros(3, np.int64), 5, 0)  # target in its own history
    dense = train.rank_of_targets(users @ items.T, queries, np.random.default_rng(9))
    batched = train.rank_batched(users, items, queries, np.random.default_rng(9), user_batch=5, item_chunk=7)
    assert np.array_equal(dense, batched)
    # by hand for one user: 1 + items strictly above + a uniform share of the ties
    s = (users[1] @ items.T).numpy()
    out = np.zeros(n_items, bool)
    out[np.append(queries[1].items, queries[1].target)] = True
    t = s[queries[1].target]
    assert 1 + (s[~out] > t).sum() <= dense[1] <= 1 + (s[~out] >= t).sum()


def test_sampled_softmax_with_logq_learns_when_the_catalogue_is_big():
    torch.set_num_threads(1)
    split = _cycle_split(n_items=40, seed=2)
    cfg = _tiny(kind="sasrec", full_softmax_max_items=10, negatives=16)
    model, info = fit_row(cfg, None, 40, split, log=None)
    assert info["loss"] == "sampled_softmax_logq"
    assert _hr_at_1(model, split, cfg) >= 0.6


def test_same_configuration_same_result_whatever_ran_before():
    torch.set_num_threads(1)
    split = _cycle_split(n_users=30)
    cfg = _tiny(kind="montage", max_epochs=2, w_bt=0.1, bt_batch=8)
    _, first = fit_row(cfg, None, 30, split, log=None)
    torch.randn(1000)  # disturb the global generator
    SequenceModel(cfg, None, 30)
    _, second = fit_row(cfg, None, 30, split, log=None)
    assert first["losses"] == second["losses"] and first["valid_ndcg_at_10"] == second["valid_ndcg_at_10"]


def test_time_budget_stops_inside_an_epoch_that_is_too_long():
    split = _cycle_split(n_users=64)
    cfg = _tiny(kind="sasrec", batch_size=4, time_budget_s=1e-6, max_epochs=5)
    _, info = fit_row(cfg, None, 30, split, log=None)
    assert info["epochs"] == 1 and info["steps"] < 16 and info["stopped"] == "time_budget_mid_epoch"
    assert info["best_epoch"] == 1  # what was trained is still validated and kept


def test_automatic_batch_gives_many_steps_an_epoch_within_the_logits_budget():
    rng = np.random.default_rng(0)
    seqs = [data.Seq(u, rng.integers(0, 500, 100), np.arange(100)) for u in range(943)]
    cfg = BehaviourConfig(max_items=200)
    assert train.auto_batch(seqs, cfg, 1682) == 31  # ~30 steps an epoch, not 5 big ones
    many = seqs * 20
    assert train.auto_batch(many, cfg, 1682) == cfg.max_batch
    # memory wins over steps: 99 positions x 1M scored items leaves room for few users
    assert train.auto_batch(many, cfg, 1_000_000) == max(8, int(cfg.logits_budget / (99 * 1_000_000)))
    assert train.auto_batch(seqs, BehaviourConfig(batch_size=7), 1682) == 7


def test_the_budget_decides_how_many_seeds_run():
    from montage_encoders.behaviour.evaluate import CONVERGE_EPOCHS, affordable_seeds

    per_seed = 7 * CONVERGE_EPOCHS * 5.0 / 2  # 7 fits of 5-second epochs on 2 processes
    assert affordable_seeds(3, 7, 2, 3000.0, 5.0) == min(3, int(3000 // per_seed))
    assert affordable_seeds(3, 7, 2, 1e6, 5.0) == 3  # never more than asked
    assert affordable_seeds(3, 7, 2, 3000.0, 60.0) == 1  # MovieLens-1M-sized epochs: one seed, not none
