"""A synthetic behaviour log for the committed generation's user tower (and for tests).

Why synthetic: weights trained on MovieLens (and vocabularies derived from it) may not be
redistributed, so the generation committed to the repository cannot carry a MovieLens-trained
user tower. Its user/behaviour towers are trained on this log instead: items are unit content
vectors around topic prototypes in the joint space, users have a few favourite topics that drift
slowly, and they watch in sessions (seconds apart) separated by hours to days. It is a working
placeholder with the real architecture and contract; a deployment retrains on its own events
(`build --events ... --content ...`), and the MovieLens numbers come from evaluate.py, which writes
nothing but bench/results/users.json.
"""
from __future__ import annotations

import numpy as np

from .data import Catalogue, Dataset


def topic_catalogue(n_items: int, dim: int, topics: int, rng: np.random.Generator,
                    spread: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """(n_items, dim) unit content vectors and each item's topic."""
    protos = rng.standard_normal((topics, dim))
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    topic = rng.integers(0, topics, n_items)
    noise = rng.standard_normal((n_items, dim))
    vecs = protos[topic] + spread * noise / np.linalg.norm(noise, axis=1, keepdims=True)
    return (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32), topic


def synthetic_log(n_users: int = 400, n_items: int = 600, dim: int = 256, topics: int = 12,
                  seed: int = 0, mean_events: int = 40) -> tuple[Dataset, np.ndarray]:
    """Dataset (events only, no text) + (n_items, dim) content vectors."""
    rng = np.random.default_rng(seed)
    content, topic = topic_catalogue(n_items, dim, topics, rng)
    by_topic = [np.flatnonzero(topic == t) for t in range(topics)]
    users, items, stamps = [], [], []
    for u in range(n_users):
        likes = list(rng.choice(topics, size=int(rng.integers(1, 4)), replace=False))
        t = 1_600_000_000 + int(rng.integers(0, 86400 * 30))
        for _ in range(max(5, int(rng.poisson(mean_events)))):
            if rng.random() < 0.05:  # tastes drift: a new favourite replaces an old one
                likes[int(rng.integers(len(likes)))] = int(rng.integers(topics))
            pool = by_topic[likes[int(rng.integers(len(likes)))]] if rng.random() < 0.85 else np.arange(n_items)
            users.append(u)
            items.append(int(rng.choice(pool)))
            t += int(rng.integers(30, 600)) if rng.random() < 0.8 else int(rng.integers(3600, 86400 * 3))
            stamps.append(t)
    cat = Catalogue(ids=[f"synthetic-{i}" for i in range(n_items)])
    ds = Dataset("synthetic", cat, [f"user-{u}" for u in range(n_users)], np.array(users, np.int64),
                 np.array(items, np.int64), np.array(stamps, np.int64), np.ones(len(users), np.float32))
    return ds, content
