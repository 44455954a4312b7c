"""Smoke training (loss falls), the exported towers (checker, manifest, goldens) and ONNX parity
from Node's onnxruntime against the PyTorch goldens."""
import hashlib
import json
import os
import shutil
import subprocess

import numpy as np
import onnx
import pytest
import torch

from montage_encoders.behaviour import data, train
from montage_encoders.behaviour.export import add_to_generation
from montage_encoders.behaviour.model import BehaviourConfig, SequenceModel
from montage_encoders.behaviour.synthetic import synthetic_log

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _tiny(**kw):
    base = dict(dim=32, width=16, heads=2, ffn=32, max_items=8, proj_dim=64, behaviour_hidden=32,
                max_epochs=12, patience=12, batch_size=16, bt_batch=16, lr=5e-3, w_bt=0.2, use_ids=False)
    return BehaviourConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    ds, content = synthetic_log(n_users=80, n_items=60, dim=32, topics=4, seed=0, mean_events=20)
    split = data.leave_one_out(data.sequences(ds))
    cfg = _tiny()
    model = SequenceModel(cfg, content, len(ds.catalogue.ids))
    info = train.fit(model, split.train, split.valid, cfg, log=None, select_use_ids=False)
    return model, info, split, cfg


def test_smoke_training_loss_falls_and_beats_chance(trained):
    model, info, split, cfg = trained
    losses = info["losses"]
    assert np.mean(losses[-10:]) < 0.95 * np.mean(losses[:5])
    hr, _ = train.evaluate(model, split.test, cfg, np.random.default_rng(0), use_ids=False)
    assert hr > 1.3 * 10 / 60  # topics make the next item predictable: above chance


def test_export_into_generation(trained, tmp_path):
    model, *_ = trained
    gen = tmp_path / "gen"
    gen.mkdir()
    (gen / "text.onnx").write_bytes(b"stand-in for another tower")
    (gen / "manifest.json").write_text(json.dumps({
        "schema_version": 1, "generation": "t", "version": "0", "dim": 32, "towers": {},
        "preprocessing": {"video": {}, "audio": {}, "text": {}}, "files": {}}))
    manifest = add_to_generation(str(gen), model, {"test_hr_at_10": 0.5})
    for tower in ("user", "behaviour"):
        onnx.checker.check_model(onnx.load(str(gen / f"{tower}.onnx")))
        assert manifest["towers"][tower]["output"] == {"name": "embedding", "shape": ["batch", 32]}
    assert manifest["towers"]["user"]["inputs"]["items"]["shape"] == ["batch", 8, 32]
    assert manifest["preprocessing"]["user"] == {"max_items": 8, "time_gap_unit_seconds": 3600.0}
    assert manifest["metrics"]["behaviour"] == {"test_hr_at_10": 0.5}
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((gen / rel).read_bytes()).hexdigest() == digest
    assert {"text.onnx", "user.onnx", "behaviour.onnx", "golden.json", "golden/user.items.bin"} <= set(manifest["files"])
    golden = json.loads((gen / "golden.json").read_text())
    out = np.fromfile(gen / golden["user"]["output"]["file"], "<f4").reshape(golden["user"]["output"]["shape"])
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-4)  # L2 norm inside the graph


NODE_PARITY = r"""
import ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
const gen = process.argv[1];
const golden = JSON.parse(readFileSync(gen + '/golden.json', 'utf8'));
const f32 = (p) => { const b = readFileSync(gen + '/' + p); return new Float32Array(b.buffer, b.byteOffset, b.length / 4); };
const worst = {};
for (const tower of ['user', 'behaviour']) {
  const s = await ort.InferenceSession.create(gen + '/' + tower + '.onnx');
  const feeds = {};
  for (const [name, t] of Object.entries(golden[tower].inputs)) feeds[name] = new ort.Tensor('float32', f32(t.file), t.shape);
  const got = (await s.run(feeds)).embedding.data;
  const want = f32(golden[tower].output.file);
  const d = golden[tower].output.shape[1];
  let min = 1;
  for (let r = 0; r < want.length / d; r++) {
    let dot = 0, a = 0, b = 0;
    for (let i = r * d; i < (r + 1) * d; i++) { dot += got[i] * want[i]; a += got[i] ** 2; b += want[i] ** 2; }
    min = Math.min(min, dot / Math.sqrt(a * b));
  }
  worst[tower] = min;
}
console.log(JSON.stringify(worst));
"""


@pytest.mark.skipif(shutil.which("node") is None or not os.path.isdir(os.path.join(REPO, "node_modules", "onnxruntime-node")),
                    reason="needs node and the onnxruntime-node package")
def test_onnx_parity_from_node(trained, tmp_path):
    model, *_ = trained
    gen = tmp_path / "gen"
    gen.mkdir()
    (gen / "manifest.json").write_text(json.dumps({"dim": 32, "towers": {}, "preprocessing": {}, "files": {}}))
    add_to_generation(str(gen), model)
    out = subprocess.run(["node", "--input-type=module", "-e", NODE_PARITY, str(gen)], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    worst = json.loads(out.stdout.strip().splitlines()[-1])
    assert worst["user"] >= 0.9999 and worst["behaviour"] >= 0.9999, worst
