"""Item content vectors for a catalogue that has only metadata (titles, tags, descriptions).

The text tower must know the catalogue's own words, so we do what a deployment would do with its
titles: build a word-level vocabulary from the catalogue (same normalisation and
pre-tokenisation as the generation's tokenizer.json: lowercase, `\\w+|[^\\w\\s]+`, [PAD]=0,
[UNK]=1) and fit the text tower architecture of towers.py (narrower, for CPU) on the metadata
with a contrastive loss between two views of each item: its title (words dropped at random) and
its tags + year + description. The content vector of an item is the tower's embedding of its
whole text. Vocabularies and vectors stay in memory (or var/): MovieLens-derived tables are never
committed.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..config import Config
from ..towers import TextTower
from .data import Catalogue

WORD = re.compile(r"\w+|[^\w\s]+")
YEAR = re.compile(r"\((\d{4})\)")


@dataclass
class TextSettings:
    max_length: int = 32
    width: int = 128
    layers: int = 2
    heads: int = 4
    ffn: int = 256
    steps: int = 150
    batch_size: int = 256
    lr: float = 2e-3
    temperature: float = 0.07
    word_dropout: float = 0.2


class CatalogueTokenizer:
    """WordLevel tokenizer over the catalogue's words ([PAD]=0, [UNK]=1)."""

    def __init__(self, texts: list[str], min_count: int = 1):
        counts = Counter(w for t in texts for w in self.words(t))
        self.vocab = {"[PAD]": 0, "[UNK]": 1}
        for word, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            if n >= min_count:
                self.vocab[word] = len(self.vocab)

    @staticmethod
    def words(text: str) -> list[str]:
        return WORD.findall(text.lower())

    def encode(self, texts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.zeros(len(texts), max_length, dtype=torch.long)
        for i, t in enumerate(texts):
            toks = [self.vocab.get(w, 1) for w in self.words(t)][:max_length] or [1]
            ids[i, :len(toks)] = torch.tensor(toks)
        return ids, (ids != 0).long()


def _views(cat: Catalogue, idx: np.ndarray, rng: np.random.Generator, drop: float) -> tuple[list, list]:
    titles, others = [], []
    for i in idx:
        words = [w for w in YEAR.sub(" ", cat.titles[i]).split() if rng.random() > drop]
        titles.append(" ".join(words) or cat.titles[i])
        year = YEAR.search(cat.titles[i])
        others.append(" ".join([*cat.tags[i], year.group(1) if year else "", cat.descriptions[i]]))
    return titles, others


def fit_content_vectors(cat: Catalogue, dim: int, seed: int, settings: TextSettings | None = None,
                        log=print) -> np.ndarray:
    """Fit a text tower on the catalogue's metadata; return (V, dim) unit content vectors."""
    s = settings or TextSettings()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    texts = [cat.text(i) for i in range(len(cat.ids))]
    tok = CatalogueTokenizer(texts)
    cfg = Config(dim=dim, max_length=s.max_length, text_width=s.width, text_layers=s.layers,
                 text_heads=s.heads, text_ffn=s.ffn)
    tower = TextTower(cfg, len(tok.vocab))
    opt = torch.optim.AdamW(tower.parameters(), lr=s.lr, weight_decay=0.01)
    tower.train()
    for step in range(s.steps):
        idx = rng.choice(len(texts), size=min(s.batch_size, len(texts)), replace=False)
        a_txt, b_txt = _views(cat, idx, rng, s.word_dropout)
        a, b = tower(*tok.encode(a_txt, s.max_length)), tower(*tok.encode(b_txt, s.max_length))
        logits = a @ b.T / s.temperature
        labels = torch.arange(len(idx))
        loss = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if log and (step % 50 == 0 or step == s.steps - 1):
            log(f"  text tower step {step} contrastive loss {loss.item():.3f}")
    tower.eval()
    with torch.no_grad():
        out = [tower(*tok.encode(texts[i:i + 512], s.max_length)) for i in range(0, len(texts), 512)]
    return torch.cat(out).numpy().astype(np.float32)
