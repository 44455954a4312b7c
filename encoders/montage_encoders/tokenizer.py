r"""Tokenizers written as Hugging Face tokenizer.json files that the service runs unchanged.

The service loads tokenizer.json with @huggingface/transformers (offline); `encode()` here
reproduces what that library produces, so ids match across the two sides (tests/test_tokenizer.py
runs both on the same texts).

`WordPieceTokenizer` (the open-vocabulary tokenizer, from generation mtg-2026.12-cpu on) is the
uncased BERT pipeline without special tokens:
- normaliser BertNormalizer (clean_text, CJK characters spaced, lowercase, accents stripped:
  NFD then drop \p{Mn}), as transformers.js writes it;
- pre-tokenizer BertPreTokenizer: runs of characters that are neither whitespace (JS `\s`) nor
  punctuation (`\p{P}` or ASCII symbols), and each punctuation character alone;
- WordPiece: greedy longest match, `##` for pieces inside a word, a word of more than
  `max_input_chars_per_word` characters or with no matching piece -> [UNK].
Unicode tables come from Python's `unicodedata` and from Node's ICU: the two agree on everything
but characters added in very recent Unicode versions.

`WordTokenizer` is the closed vocabulary of generation mtg-2026.11-cpu and earlier:
- normaliser Lowercase (JS `toLowerCase`),
- pre-tokenizer Whitespace, which transformers.js runs as `/\w+|[^\w\s]+/g` WITHOUT the
  unicode flag: `\w` is ASCII-only there while `\s` is Unicode whitespace. The Rust
  `tokenizers` library uses a Unicode `\w`, so non-ASCII letters split differently there; the
  service is what matters, so this follows JS.
- WordLevel lookup, unknown -> [UNK]; no special tokens added; pad with [PAD] (id 0).
"""
from __future__ import annotations

import json
import os
import re
import unicodedata
from collections import Counter
from typing import Iterable

PAD, UNK = "[PAD]", "[UNK]"
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_WORD = "A-Za-z0-9_"
_PATTERN = re.compile(f"[{_WORD}]+|[^{_WORD}{_JS_SPACE}]+")


def pre_tokenize(text: str) -> list[str]:
    return _PATTERN.findall(text.lower())


class _Tokenizer:
    """What both tokenizers share: ids -> padded arrays, and the tokenizer.json / tokenizer_config.json files
    (subclasses give `tokens` and the normaliser/pre-tokenizer/model parts of `to_json`)."""

    vocab: dict[str, int]
    max_length: int

    def __len__(self) -> int:
        return len(self.vocab)

    def tokens(self, text: str) -> list[int]:
        raise NotImplementedError

    def to_json(self) -> dict:
        raise NotImplementedError

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
    def _json_header(self) -> dict:
        special = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                    "normalized": False, "special": True} for t, i in ((PAD, 0), (UNK, 1))]
        return {
            "version": "1.0",
            "truncation": {"direction": "Right", "max_length": self.max_length, "strategy": "LongestFirst", "stride": 0},
            "padding": None,
            "added_tokens": special,
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


class WordTokenizer(_Tokenizer):
    def __init__(self, vocab: dict[str, int], max_length: int = 32):
        if vocab.get(PAD) != 0 or vocab.get(UNK) != 1:
            raise ValueError("vocabulary must map [PAD]=0 and [UNK]=1")
        self.vocab = dict(vocab)
        self.max_length = max_length

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

    # ------------------------------------------------------------ files
    def to_json(self) -> dict:
        return {
            **self._json_header(),
            "normalizer": {"type": "Lowercase"},
            "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": None,
            "decoder": None,
            "model": {"type": "WordLevel", "vocab": self.vocab, "unk_token": UNK},
        }

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


# ====================================================================== open vocabulary
CONTINUE = "##"
_JS_SPACE_SET = frozenset("\t\n\v\f\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff"
                          + "".join(chr(c) for c in range(0x2000, 0x200B)))
_SPECIAL_SPLIT = re.compile(r"(\[PAD\]|\[UNK\])")


def _is_chinese(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def bert_normalize(text: str) -> str:
    """transformers.js BertNormalizer {clean_text, handle_chinese_chars, lowercase, strip_accents}."""
    out = []
    for ch in text:
        if ch in "\t\n\r":
            out.append(" ")
            continue
        if ch in ("\x00", "\ufffd") or unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs"):
            continue
        out.append(" " if ch in _JS_SPACE_SET else ch)
    # JS walks UTF-16 units here, so only BMP ideographs get spaces around them
    text = "".join(f" {c} " if ord(c) < 0x10000 and _is_chinese(ord(c)) else c for c in out)
    text = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in text if unicodedata.category(c) != "Mn")


def _is_punct(ch: str) -> bool:
    cp = ord(ch)
    return (0x21 <= cp <= 0x2F or 0x3A <= cp <= 0x40 or 0x5B <= cp <= 0x60 or 0x7B <= cp <= 0x7E
            or unicodedata.category(ch).startswith("P"))


def bert_pre_tokenize(text: str) -> list[str]:
    """`/[^\\s PUNCT]+|[PUNCT]/gu`: words between whitespace and punctuation; each punctuation alone."""
    words, current = [], []
    for ch in text:
        if ch in _JS_SPACE_SET or _is_punct(ch):
            if current:
                words.append("".join(current))
                current = []
            if ch not in _JS_SPACE_SET:
                words.append(ch)
        else:
            current.append(ch)
    if current:
        words.append("".join(current))
    return words


def word_pieces(word: str, vocab: dict[str, int], max_chars: int = 100) -> list[str] | None:
    """Greedy longest-match-first WordPiece; None when the word cannot be covered (-> [UNK])."""
    if len(word) > max_chars:
        return None
    pieces, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while start < end:
            sub = word[start:end] if start == 0 else CONTINUE + word[start:end]
            if sub in vocab:
                found = sub
                break
            end -= 1
        if found is None:
            return None
        pieces.append(found)
        start = end
    return pieces


class WordPieceTokenizer(_Tokenizer):
    """Whole words plus `##` pieces; ids 0 and 1 are [PAD] and [UNK]. No special tokens are added."""

    kind = "WordPiece"

    def __init__(self, vocab: dict[str, int], max_length: int = 48, max_input_chars_per_word: int = 100):
        if vocab.get(PAD) != 0 or vocab.get(UNK) != 1:
            raise ValueError("vocabulary must map [PAD]=0 and [UNK]=1")
        if sorted(vocab.values()) != list(range(len(vocab))):
            raise ValueError("vocabulary ids must be 0..N-1")
        self.vocab = dict(vocab)
        self.max_length = max_length
        self.max_chars = max_input_chars_per_word

    def id_to_token(self) -> list[str]:
        out = [""] * len(self.vocab)
        for t, i in self.vocab.items():
            out[i] = t
        return out

    def pieces(self, text: str) -> list[str]:
        """The token strings of `text`, as transformers.js produces them."""
        out: list[str] = []
        for section in _SPECIAL_SPLIT.split(text):
            if section in (PAD, UNK):
                out.append(section)
                continue
            if not section:
                continue
            for word in bert_pre_tokenize(bert_normalize(section)):
                got = word_pieces(word, self.vocab, self.max_chars)
                out.extend(got if got is not None else [UNK])
        return out

    def tokens(self, text: str) -> list[int]:
        return [self.vocab[t] for t in self.pieces(text)]

    # ------------------------------------------------------------ files
    def to_json(self) -> dict:
        return {
            **self._json_header(),
            "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                           "strip_accents": True, "lowercase": True},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": None,
            "decoder": {"type": "WordPiece", "prefix": CONTINUE, "cleanup": True},
            "model": {"type": "WordPiece", "unk_token": UNK, "continuing_subword_prefix": CONTINUE,
                      "max_input_chars_per_word": self.max_chars, "vocab": self.vocab},
        }


def load_tokenizer(folder_or_file: str, max_length: int | None = None):
    """A generation's or run's tokenizer.json, whichever model it holds (WordLevel or WordPiece)."""
    path = os.path.join(folder_or_file, "tokenizer.json") if os.path.isdir(folder_or_file) else folder_or_file
    with open(path) as f:
        data = json.load(f)
    model = data["model"]
    ml = max_length or (data.get("truncation") or {}).get("max_length") or 32
    if model.get("type") == "WordLevel":
        return WordTokenizer(model["vocab"], ml)
    if model.get("type") == "WordPiece":
        return WordPieceTokenizer(model["vocab"], ml, model.get("max_input_chars_per_word", 100))
    raise ValueError(f"{path}: unsupported tokenizer model {model.get('type')!r}")
