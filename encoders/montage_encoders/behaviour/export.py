"""user.onnx and behaviour.onnx into an existing model generation (the brief's contract).

    user.onnx       items (B, N, D) float32 content vectors, oldest first, left-padded
                    mask  (B, N) float32, 1 = item present
                    age   (B, N) float32, (now - event time) / time_gap_unit_seconds
                    -> embedding (B, D), L2-normalised in the graph
    behaviour.onnx  content (B, D) float32 -> embedding (B, D), L2-normalised in the graph

Opset 14, dynamic batch axis, golden inputs/outputs in golden/, and the manifest updated:
towers.user/behaviour, preprocessing.user, training.behaviour, metrics.behaviour, files (sha256).
"""
from __future__ import annotations

import json
import os

import numpy as np
import onnx
import torch

from ..export import file_hashes
from .model import BehaviourConfig, SequenceModel


def _write_atomic(path: str, payload: bytes) -> None:
    with open(path + ".tmp", "wb") as f:
        f.write(payload)
    os.replace(path + ".tmp", path)


def golden_inputs(cfg: BehaviourConfig, batch: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """Unit content vectors, left padding of varied lengths (one full row), ages from seconds to months."""
    rng = np.random.default_rng(seed)
    n, d = cfg.max_items, cfg.dim
    items = rng.standard_normal((batch, n, d)).astype(np.float32)
    items /= np.linalg.norm(items, axis=-1, keepdims=True)
    mask = np.zeros((batch, n), np.float32)
    for b, length in enumerate(np.linspace(n, 1, batch).astype(int)):
        mask[b, n - length:] = 1.0
    items *= mask[..., None]
    age = (10.0 ** rng.uniform(-3, 3.5, (batch, n))).astype(np.float32) * mask
    age = np.sort(age, axis=1)[:, ::-1].copy()  # oldest first = largest age first
    content = rng.standard_normal((batch, d)).astype(np.float32)
    content /= np.linalg.norm(content, axis=-1, keepdims=True)
    return {"items": items, "mask": mask, "age": age * mask, "content": content}


def _export(module: torch.nn.Module, args: tuple, names: list[str], path: str) -> None:
    axes = {name: {0: "batch"} for name in names + ["embedding"]}
    torch.onnx.export(module, args, path, input_names=names, output_names=["embedding"],
                      dynamic_axes=axes, opset_version=14, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))


def _tower_entry(file: str, inputs: dict[str, list], dim: int) -> dict:
    return {"file": file, "inputs": {k: {"shape": v, "dtype": "float32"} for k, v in inputs.items()},
            "output": {"name": "embedding", "shape": ["batch", dim]}}


def add_to_generation(gen_dir: str, model: SequenceModel, metrics: dict | None = None,
                      training: dict | None = None) -> dict:
    """Export both towers into gen_dir, write goldens, update manifest.json; returns the manifest."""
    cfg = model.cfg
    manifest_path = os.path.join(gen_dir, "manifest.json")
    with open(manifest_path) as f:
        manifest = json.load(f)
    if int(manifest["dim"]) != cfg.dim:
        raise ValueError(f"{gen_dir}: generation dim {manifest['dim']} != behaviour model dim {cfg.dim}")
    model = model.cpu().eval()
    g = golden_inputs(cfg)
    t = {k: torch.from_numpy(v) for k, v in g.items()}
    _export(model.user, (t["items"], t["mask"], t["age"]), ["items", "mask", "age"],
            os.path.join(gen_dir, "user.onnx"))
    _export(model.behaviour, (t["content"],), ["content"], os.path.join(gen_dir, "behaviour.onnx"))
    with torch.no_grad():
        outputs = {"user": model.user(t["items"], t["mask"], t["age"]).numpy(),
                   "behaviour": model.behaviour(t["content"]).numpy()}
    _write_goldens(gen_dir, g, outputs)
    n, d = cfg.max_items, cfg.dim
    manifest["towers"]["user"] = _tower_entry(
        "user.onnx", {"items": ["batch", n, d], "mask": ["batch", n], "age": ["batch", n]}, d)
    manifest["towers"]["behaviour"] = _tower_entry("behaviour.onnx", {"content": ["batch", d]}, d)
    manifest["preprocessing"]["user"] = {"max_items": n, "time_gap_unit_seconds": cfg.time_gap_unit_seconds}
    manifest.setdefault("training", {})["behaviour"] = {**cfg.to_dict(), **(training or {})}
    manifest.setdefault("metrics", {})["behaviour"] = metrics or {}
    manifest["files"] = file_hashes(gen_dir)
    _write_atomic(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest


def _write_goldens(gen_dir: str, g: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> None:
    os.makedirs(os.path.join(gen_dir, "golden"), exist_ok=True)
    golden_path = os.path.join(gen_dir, "golden.json")
    golden = json.load(open(golden_path)) if os.path.exists(golden_path) else {}
    towers = {"user": ["items", "mask", "age"], "behaviour": ["content"]}
    for tower, names in towers.items():
        entry = {"inputs": {}, "output": {}}
        for name in names:
            rel = f"golden/{tower}.{name}.bin"
            _write_atomic(os.path.join(gen_dir, rel), g[name].astype("<f4").tobytes())
            entry["inputs"][name] = {"file": rel, "shape": list(g[name].shape), "dtype": "float32"}
        rel = f"golden/{tower}.embedding.bin"
        _write_atomic(os.path.join(gen_dir, rel), outputs[tower].astype("<f4").tobytes())
        entry["output"] = {"file": rel, "shape": list(outputs[tower].shape)}
        golden[tower] = entry
    _write_atomic(golden_path, (json.dumps(golden, indent=2) + "\n").encode())


