"""A WordLevel tokenizer built from the training text, written as a Hugging Face tokenizer.json.

The service loads it with @huggingface/transformers (offline). `encode()` here reproduces what
that library produces, so ids match across the two sides:
- normaliser Lowercase (JS `toLowerCase`),
- pre-tokenizer Whitespace, which transformers.js runs as `/\\w+|[^\\w\\s]+/g` WITHOUT the
  unicode flag: `\\w` is ASCII-only there while `\\s` is Unicode whitespace. The Rust
  `tokenizers` library uses a Unicode `\\w`, so non-ASCII letters split differently there; the
  service is what matters, so this follows JS.
- WordLevel lookup, unknown -> [UNK]; no special tokens added; pad with [PAD] (id 0).
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from typing import Iterable

PAD, UNK = "[PAD]", "[UNK]"
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_WORD = "A-Za-z0-9_"
_PATTERN = re.compile(f"[{_WORD}]+|[^{_WORD}{_JS_SPACE}]+")


def pre_tokenize(text: str) -> list[str]:
    return _PATTERN.findall(text.lower())


class WordTokenizer:
    def __init__(self, vocab: dict[str, int], max_length: int = 32):
        if vocab.get(PAD) != 0 or vocab.get(UNK) != 1:
            raise ValueError("vocabulary must map [PAD]=0 and [UNK]=1")
        self.vocab = dict(vocab)
        self.max_length = max_length

    def __len__(self) -> int:
        return len(self.vocab)

    # ------------------------------------------------------------ building
    @classmethod
    def build(cls, texts: Iterable[str], max_length: int = 32, min_count: int = 1,
              words: Iterable[str] = ()) -> "WordTokenizer":
        """Vocabulary = [PAD], [UNK], then `words` (e.g. every corpus attribute), then words of
        `texts` seen at least `min_count` times, most frequent first (ties alphabetical)."""
        vocab = {PAD: 0, UNK: 1}
        tok = cls(vocab, max_length)
        tok.extend(w for word in words for w in pre_tokenize(word))
        counts = Counter(t for text in texts for t in pre_tokenize(text))
        ranked = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        tok.extend(ranked)
        return tok

    def extend(self, words: Iterable[str]) -> int:
        """Append unseen words at the end (existing ids never move). Returns how many were added."""
        added = 0
        for word in words:
            for piece in pre_tokenize(word):
                if piece not in self.vocab:
                    self.vocab[piece] = len(self.vocab)
                    added += 1
        return added

    # ------------------------------------------------------------ encoding
    def tokens(self, text: str) -> list[int]:
        return [self.vocab.get(t, 1) for t in pre_tokenize(text)]

    def encode(self, text: str) -> tuple[list[int], list[int]]:
        """(input_ids, attention_mask), truncated then right-padded to max_length."""
        ids = self.tokens(text)[: self.max_length]
        pad = self.max_length - len(ids)
        return ids + [0] * pad, [1] * len(ids) + [0] * pad

    def encode_batch(self, texts: list[str]):
        import numpy as np

        pairs = [self.encode(t) for t in texts]
        return (np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.int64))

    # ------------------------------------------------------------ files
    def to_json(self) -> dict:
        special = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                    "normalized": False, "special": True} for t, i in ((PAD, 0), (UNK, 1))]
        return {
            "version": "1.0",
            "truncation": {"direction": "Right", "max_length": self.max_length, "strategy": "LongestFirst", "stride": 0},
            "padding": None,
            "added_tokens": special,
            "normalizer": {"type": "Lowercase"},
            "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": None,
            "decoder": None,
            "model": {"type": "WordLevel", "vocab": self.vocab, "unk_token": UNK},
        }

    def config_json(self) -> dict:
        return {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": self.max_length,
            "pad_token": PAD,
            "unk_token": UNK,
            "padding_side": "right",
            "truncation_side": "right",
            "do_lower_case": True,
            "clean_up_tokenization_spaces": False,
        }

    def save(self, folder: str) -> list[str]:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "tokenizer.json"), "w") as f:
            json.dump(self.to_json(), f, ensure_ascii=False, indent=1)
        with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
            json.dump(self.config_json(), f, indent=1)
        return ["tokenizer.json", "tokenizer_config.json"]

    @classmethod
    def load(cls, folder_or_file: str, max_length: int | None = None) -> "WordTokenizer":
        path = folder_or_file
        if os.path.isdir(path):
            path = os.path.join(path, "tokenizer.json")
        with open(path) as f:
            data = json.load(f)
        model = data["model"]
        if model.get("type") != "WordLevel":
            raise ValueError(f"{path}: expected a WordLevel model, got {model.get('type')}")
        ml = max_length or (data.get("truncation") or {}).get("max_length") or 32
        return cls(model["vocab"], ml)
