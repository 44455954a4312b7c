"""The three views of a user's history for Barlow Twins (CL4SRec's augmentations).

Each takes the history as parallel arrays (items, ages) and returns (items, ages, masked),
`masked` a boolean array marking positions whose item the model must not see (it gets the
learned mask token instead). A view never comes out empty.
"""
from __future__ import annotations

import numpy as np


def mask(items: np.ndarray, ages: np.ndarray, rng: np.random.Generator, ratio: float = 0.3):
    """Hide a `ratio` of the positions; length and order are kept, at least one item stays visible."""
    n = len(items)
    k = min(int(np.floor(ratio * n)), n - 1)
    hidden = np.zeros(n, bool)
    if k > 0:
        hidden[rng.choice(n, size=k, replace=False)] = True
    return items.copy(), ages.copy(), hidden


def crop(items: np.ndarray, ages: np.ndarray, rng: np.random.Generator, ratio: float = 0.6):
    """Keep one contiguous span of ceil(ratio * n) items, in order."""
    n = len(items)
    k = max(1, int(np.ceil(ratio * n)))
    start = int(rng.integers(0, n - k + 1))
    return items[start:start + k].copy(), ages[start:start + k].copy(), np.zeros(k, bool)


def reorder(items: np.ndarray, ages: np.ndarray, rng: np.random.Generator, ratio: float = 0.3):
    """Shuffle one contiguous span of ceil(ratio * n) items (each keeps its own age)."""
    n = len(items)
    k = max(1, int(np.ceil(ratio * n)))
    start = int(rng.integers(0, n - k + 1))
    perm = np.arange(n)
    perm[start:start + k] = start + rng.permutation(k)
    return items[perm].copy(), ages[perm].copy(), np.zeros(n, bool)


AUGMENTATIONS = (mask, crop, reorder)


def random_view(items: np.ndarray, ages: np.ndarray, rng: np.random.Generator,
                ratios: tuple[float, float, float] = (0.3, 0.6, 0.3)):
    """One augmentation chosen uniformly, as in CL4SRec."""
    which = int(rng.integers(0, len(AUGMENTATIONS)))
    return AUGMENTATIONS[which](items, ages, rng, ratios[which])
