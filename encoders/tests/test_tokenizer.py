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
