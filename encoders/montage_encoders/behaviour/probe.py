"""Few-label user classification (the paper's setting): a logistic-regression probe on frozen vectors."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

FRACTIONS = (0.01, 0.05, 0.1, 1.0)


def stratified_split(labels: np.ndarray, seed: int, test: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Indices of labelled users split 80/20 within each class (seeded)."""
    rng = np.random.default_rng(seed)
    tr, te = [], []
    for c in np.unique(labels[labels >= 0]):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(test * len(idx)))
        te.extend(idx[:k])
        tr.extend(idx[k:])
    return np.array(sorted(tr)), np.array(sorted(te))


def label_subset(train_idx: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded random `fraction` of the training users (at least 2)."""
    if fraction >= 1.0:
        return train_idx
    rng = np.random.default_rng(seed + 7919)
    k = max(2, int(round(fraction * len(train_idx))))
    return np.sort(rng.choice(train_idx, size=k, replace=False))


def logistic_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, classes: int,
                   l2: float = 0.1, iters: int = 100) -> np.ndarray:
    """Multinomial logistic regression (L-BFGS, L2 penalty) on standardised features -> predictions."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    xt = torch.as_tensor((x_train - mu) / sd, dtype=torch.float64)
    xs = torch.as_tensor((x_test - mu) / sd, dtype=torch.float64)
    y = torch.as_tensor(y_train)
    w = torch.zeros(xt.shape[1], classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xt @ w + b, y) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return (xs @ w + b).argmax(1).numpy()


def probe_accuracies(vectors: np.ndarray, labels: np.ndarray, classes: int, seed: int) -> dict[str, float]:
    """{fraction: test accuracy} for one attribute; `vectors` and `labels` indexed by user."""
    tr, te = stratified_split(labels, seed)
    out = {}
    for f in FRACTIONS:
        sub = label_subset(tr, f, seed)
        pred = logistic_probe(vectors[sub], labels[sub], vectors[te], classes)
        out[str(f)] = float((pred == labels[te]).mean())
    return out
