"""The open vocabulary: whole English words with their word vectors, plus WordPiece fallback.

Vocabulary layout (ids never depend on training data, only on the word-vector list and the
sizes): [PAD]=0, [UNK]=1, then single characters (each also as a `##` piece, so any word made
of known characters gets pieces instead of [UNK]), then the `words` most frequent word-vector
entries that survive the tokenizer's normaliser and pre-tokenizer as one token, then `pieces`
frequent word-initial and `##` substrings of the rarer words.

The table (one 100-d row per token): a whole word's row is its word vector; character and piece
rows are fitted by least squares so that the MEAN of the rows of a rarer word's pieces comes as
close as it can to that word's vector (weighted towards frequent words), the way fastText gives
unseen words a vector from their parts. The fit uses only the word-vector list. Characters
outside the word list's alphabet (textvocab.EXTRA_RANGES) have no word to fit and stay zero;
CJK, Arabic, Devanagari and emoji are not in the vocabulary and become [UNK].

    python3 -m montage_encoders.textvocab --measure    # coverage and text benchmark per size
"""
from __future__ import annotations

import argparse
import json
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass

import numpy as np

from . import wordvec
from .tokenizer import CONTINUE, PAD, UNK, WordPieceTokenizer, bert_normalize, bert_pre_tokenize

ASCII = [chr(c) for c in range(0x21, 0x7F)]
# Characters kept whatever the word list says (it is nearly all ASCII): Latin-1 and Latin
# Extended-A/B, Greek, Cyrillic, general punctuation, currency, letterlike symbols and number
# forms, so "12°c", "straße" or "москва" get pieces, not [UNK]. Their rows have no word to be
# fitted to and stay ~zero: they keep the words around them, not a meaning of their own.
EXTRA_RANGES = ((0xA1, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x2010, 0x205E), (0x20A0, 0x20C0),
                (0x2100, 0x218B))


def extra_chars() -> list[str]:
    out = []
    for lo, hi in EXTRA_RANGES:
        for cp in range(lo, hi + 1):
            c = chr(cp)
            if unicodedata.category(c) != "Cn" and bert_normalize(c) == c and bert_pre_tokenize(c) == [c]:
                out.append(c)
    return out


def _clean_words(wv: wordvec.WordVectors) -> list[tuple[int, str]]:
    """(rank, word) for entries that the tokenizer keeps as exactly one pre-token."""
    out = []
    for rank, w in enumerate(wv.words):
        norm = bert_normalize(w)
        if norm == w and bert_pre_tokenize(norm) == [w]:
            out.append((rank, w))
    return out


def build_vocab(wv: wordvec.WordVectors, words: int, pieces: int, min_char_count: int = 30,
                piece_pool: int = 200_000) -> tuple[dict[str, int], list[int]]:
    """Returns (vocab, word_rank): word_rank[i] = the word-vector row of token i, or -1 for
    specials, characters and pieces."""
    clean = _clean_words(wv)
    chars = Counter(c for _, w in clean[:piece_pool] for c in w)
    charset = sorted(set(ASCII) | set(extra_chars()) | {c for c, n in chars.items() if n >= min_char_count})
    vocab: dict[str, int] = {PAD: 0, UNK: 1}
    rank: list[int] = [-1, -1]

    def add(token: str, r: int = -1) -> None:
        if token not in vocab:
            vocab[token] = len(vocab)
            rank.append(r)
        elif r >= 0 and rank[vocab[token]] < 0:  # a character that is also a word keeps its vector
            rank[vocab[token]] = r

    for c in charset:
        add(c)
        add(CONTINUE + c)
    kept = clean[:words]
    for r, w in kept:
        add(w, r)
    for p in _frequent_pieces(clean[words:words + piece_pool], pieces):
        add(p)
    return vocab, rank


def _frequent_pieces(rare: list[tuple[int, str]], n: int) -> list[str]:
    """Word-initial substrings (3-8 chars) and `##` substrings (2-8 chars) of the rarer words,
    counted once per word type; the n most common, longer pieces first on ties."""
    counts: Counter = Counter()
    for _, w in rare:
        if len(w) < 4:
            continue
        seen = set()
        for a in range(len(w)):
            for b in range(a + (3 if a == 0 else 2), min(len(w), a + 8) + 1):
                if a == 0 and b == len(w):
                    continue  # the whole word is what we lack
                seen.add(w[a:b] if a == 0 else CONTINUE + w[a:b])
        counts.update(seen)
    return [p for p, _ in sorted(counts.items(), key=lambda kv: (-kv[1], -len(kv[0]), kv[0]))[:n]]


def fit_table(wv: wordvec.WordVectors, tok: WordPieceTokenizer, rank: list[int], fit_words: int = 150_000,
              ridge: float = 1.0) -> tuple[np.ndarray, dict]:
    """(V, d) table: word rows copied, character/piece rows fitted (see the module doc)."""
    d = wv.dim
    table = np.zeros((len(tok), d), np.float32)
    fixed = np.array([r >= 0 for r in rank])
    for i, r in enumerate(rank):
        if r >= 0:
            table[i] = wv.vectors[r]
    free = np.flatnonzero(~fixed)
    free = free[free > 1]  # [PAD] and [UNK] stay zero
    col = {int(t): k for k, t in enumerate(free)}
    vocab_words = {w for w, i in tok.vocab.items() if rank[i] >= 0}
    p = len(free)
    rows_i, rows_j, rows_v = [], [], []  # A^T W A as (i, j, value) triplets
    aty = np.zeros((p, d), np.float64)
    used = 0
    for r, w in enumerate(wv.words[: fit_words + len(vocab_words) + 50_000]):
        if w in vocab_words or used >= fit_words:
            continue
        if bert_pre_tokenize(bert_normalize(w)) != [w]:
            continue
        ids = tok.tokens(w)
        if len(ids) < 2 or 1 in ids:
            continue
        k = len(ids)
        cols = Counter(col[i] for i in ids if not fixed[i])
        if not cols:
            continue
        weight = 1.0 / np.sqrt(1.0 + r / 10_000.0)  # frequent words count more
        target = wv.vectors[r] - table[[i for i in ids if fixed[i]]].sum(axis=0) / k
        idx = np.fromiter(cols.keys(), dtype=np.int64)
        coef = np.fromiter(cols.values(), dtype=np.float64) / k
        rows_i.append(np.repeat(idx, len(idx)))
        rows_j.append(np.tile(idx, len(idx)))
        rows_v.append(weight * np.outer(coef, coef).ravel())
        aty[idx] += weight * coef[:, None] * target[None]
        used += 1
    ata = np.zeros(p * p, np.float64)
    if rows_i:
        np.add.at(ata, np.concatenate(rows_i) * p + np.concatenate(rows_j), np.concatenate(rows_v))
    ata = ata.reshape(p, p)
    ata[np.diag_indices(p)] += ridge * 1e-3
    solution = np.linalg.solve(ata, aty).astype(np.float32)
    table[free] = solution
    return table, {"fit_words": used, "fitted_rows": p}


@dataclass
class TextVocab:
    tok: WordPieceTokenizer
    table: np.ndarray  # (V, d) float32
    is_word: np.ndarray  # (V,) bool: the row is a word vector (else special, character or piece)
    info: dict

    @property
    def centre(self) -> np.ndarray:
        """Mean of the whole-word rows: subtracted so unrelated phrases sit near cosine 0."""
        return self.table[self.is_word].mean(axis=0).astype(np.float32)


def build(words: int = 50_000, pieces: int = 4_000, max_length: int = 48,
          wv: wordvec.WordVectors | None = None, fit_words: int = 150_000) -> TextVocab:
    """Tokenizer + float32 table (V, 100) + which rows are words + build info."""
    wv = wv or wordvec.load()
    started = time.time()
    vocab, rank = build_vocab(wv, words, pieces)
    tok = WordPieceTokenizer(vocab, max_length)
    table, info = fit_table(wv, tok, rank, fit_words=fit_words)
    info.update({"words": sum(r >= 0 for r in rank), "vocab_size": len(vocab), "pieces_requested": pieces,
                 "seconds": round(time.time() - started, 1), "source": wordvec.PACKAGE})
    return TextVocab(tok, table, np.array([r >= 0 for r in rank]), info)


# ------------------------------------------------------------------ measurement
def english_sample(max_lines: int = 20_000) -> list[str]:
    """Everyday English lines for the coverage measurement: Debian's `fortunes-min` when installed."""
    import glob

    lines: list[str] = []
    for path in sorted(glob.glob("/usr/share/games/fortunes/*")):
        if path.endswith((".dat", ".u8")):
            continue
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines.extend(x.strip() for x in f if x.strip() and x.strip() != "%")
        except (IsADirectoryError, OSError):
            continue
    return lines[:max_lines]


def measure(sizes=(10_000, 20_000, 35_000, 50_000, 80_000, 120_000), pieces: int = 4_000) -> list[dict]:
    """Per vocabulary size: share of alphabetic words in the English sample kept whole, share of
    words that fell to [UNK], the text benchmark of the mean of word vectors, and the bytes of
    the int8 table."""
    from . import textbench

    wv = wordvec.load()
    sample = english_sample()
    alpha = [w for line in sample for w in bert_pre_tokenize(bert_normalize(line)) if w.isalpha()]
    rows = []
    for n in sizes:
        tv = build(n, pieces, wv=wv)
        tok, table, info = tv.tok, tv.table, tv.info
        whole = sum(1 for w in alpha if w in tok.vocab) / max(1, len(alpha))
        unk = sum(1 for w in alpha if tok.tokens(w) == [1]) / max(1, len(alpha))
        centre = tv.centre
        bench = textbench.score(textbench.mean_vector_encoder(tok, table))
        bench_c = textbench.score(textbench.mean_vector_encoder(tok, table, centre))
        row = {"words": n, "vocab_size": len(tok), "sample_words": len(alpha), "whole_word_share": round(whole, 4),
               "unk_share": round(unk, 4), "int8_table_mb": round(len(tok) * (table.shape[1] + 4) / 1e6, 2),
               "mean_vectors": bench, "mean_vectors_centred": bench_c, "build_seconds": info["seconds"]}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--measure", action="store_true")
    ap.add_argument("--sizes", default="10000,20000,35000,50000,80000,120000")
    ap.add_argument("--out", default=None, help="write the measurement rows as JSON here")
    args = ap.parse_args(argv)
    if args.measure:
        rows = measure(tuple(int(x) for x in args.sizes.split(",")))
        if args.out:
            with open(args.out, "w") as f:
                json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
