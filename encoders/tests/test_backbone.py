"""Frame backbone: the nsfwjs MobileNetV2 converted to PyTorch must match the original tfjs model.

The reference output comes from running the tfjs model in Node (@tensorflow/tfjs, CPU) on
/usr/share/darknet/data/dog.jpg: `npx node scripts/extract-nsfwjs.ts` writes it into
.cache/nsfwjs together with the model. If that folder is missing, this test runs the script
once (offline, from node_modules); it skips, saying why, only if that is impossible.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

ENCODERS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(ENCODERS_DIR)
sys.path.insert(0, ENCODERS_DIR)

torch = pytest.importorskip("torch")
from montage_encoders.backbone import (BACKBONE_MEAN, BACKBONE_STD, backbone_channels,  # noqa: E402
                                       backbone_stride, default_weights_dir, load_mobilenet_v2)
from montage_encoders.tfjs import read_tfjs  # noqa: E402


@pytest.fixture(scope="module")
def weights_dir() -> str:
    folder = os.environ.get("MONTAGE_NSFWJS_DIR", default_weights_dir())
    if os.path.exists(os.path.join(folder, "reference.json")):
        return folder
    if shutil.which("npx") is None or not os.path.isdir(os.path.join(REPO_DIR, "node_modules", "nsfwjs")):
        pytest.skip(f"{folder} missing and npx/node_modules/nsfwjs unavailable: "
                    "run `npx node scripts/extract-nsfwjs.ts --out .cache/nsfwjs` from the repo root")
    done = subprocess.run(["npx", "node", "scripts/extract-nsfwjs.ts", "--out", folder], cwd=REPO_DIR,
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"scripts/extract-nsfwjs.ts failed, cannot build {folder}: {done.stderr[-800:]}")
    return folder


@pytest.fixture(scope="module")
def reference(weights_dir):
    with open(os.path.join(weights_dir, "reference.json")) as f:
        ref = json.load(f)
    x = np.fromfile(os.path.join(weights_dir, ref["input"]["file"]), dtype="<f4").reshape(ref["input"]["shape"])
    return ref, torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW, [0,1]


def _normalise(x01: "torch.Tensor") -> "torch.Tensor":
    mean = torch.tensor(BACKBONE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(BACKBONE_STD).view(1, 3, 1, 1)
    return (x01 - mean) / std


def test_full_network_matches_tfjs_probabilities(weights_dir, reference):
    ref, x01 = reference
    model = load_mobilenet_v2(weights_dir, up_to="full")
    assert model.loaded_weights == set(read_tfjs(weights_dir).weights), "every tfjs weight must be used"
    with torch.no_grad():
        probs = model(_normalise(x01)).numpy()[0]
    diff = np.abs(probs - np.array(ref["probabilities"])).max()
    assert diff < 1e-4, f"max |p_torch - p_tfjs| = {diff:.2e}"
    assert int(np.argmax(probs)) == int(np.argmax(ref["probabilities"]))


def test_block_10_features_match_tfjs(weights_dir, reference):
    ref, x01 = reference
    model = load_mobilenet_v2(weights_dir)  # default up_to="block_10"
    with torch.no_grad():
        feats = model(_normalise(x01)).permute(0, 2, 3, 1).numpy()  # back to NHWC
    expected = np.array(ref["block_10"]["values"], np.float32).reshape(ref["block_10"]["shape"])
    assert feats.shape == expected.shape == (1, 14, 14, backbone_channels())
    diff = np.abs(feats - expected).max()
    assert diff < 1e-4 * max(1.0, np.abs(expected).max()), f"max abs diff {diff:.2e}"


def test_freeze_follows_topology_trainable_flags(weights_dir):
    tfjs = read_tfjs(weights_dir)
    assert not tfjs.trainable("block_10_project") and tfjs.trainable("block_11_expand")
    model = load_mobilenet_v2(weights_dir, up_to="block_12", freeze=True)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("layers.block_10_") for n in frozen) and "layers.Conv1.weight" in frozen
    assert trainable and all(n.startswith(("layers.block_11_", "layers.block_12_")) for n in trainable)
    model.train()
    assert not model.layers["bn_Conv1"].training and model.layers["block_11_expand_BN"].training


def test_normalisation_matches_shipped_batchnorm_statistics(weights_dir, reference):
    _, x01 = reference
    model = load_mobilenet_v2(weights_dir, up_to="block_0")
    bn = model.layers["bn_Conv1"]
    seen = []
    bn.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].mean((0, 2, 3))))
    with torch.no_grad():
        model(_normalise(x01))
        model(x01 * 2 - 1)  # Keras ImageNet scaling, for contrast
    ok = bn.running_var > 1e-6
    z = [((m - bn.running_mean)[ok] / bn.running_var[ok].sqrt()).abs().mean().item() for m in seen]
    assert z[0] < 0.5 and z[0] < z[1], f"BACKBONE_MEAN/STD off the BN statistics: |z| {z}"


def test_random_init_has_same_architecture_and_shapes():
    scratch = load_mobilenet_v2(None)
    out = scratch(torch.randn(2, 3, 96, 96))
    assert out.shape == (2, backbone_channels("block_10"), 6, 6) and backbone_stride("block_10") == 16
    assert backbone_channels("block_10") == 96 and backbone_channels("Conv_1") == 1280
    assert all(p.requires_grad for p in scratch.parameters())
    with pytest.raises(ValueError):
        load_mobilenet_v2(None, up_to="block_99")
