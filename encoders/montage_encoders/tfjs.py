"""Read a tfjs layers-model folder (model.json + binary shards) into numpy arrays.

Used to convert the MobileNetV2 that ships inside the nsfwjs npm package (see
scripts/extract-nsfwjs.ts) into the PyTorch frame backbone. numpy only.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

_DTYPES = {"float32": np.float32, "int32": np.int32, "uint8": np.uint8, "uint16": np.uint16,
           "float16": np.float16, "bool": np.bool_}


@dataclass
class TfjsModel:
    topology: dict                  # the Keras model_config ({"class_name": "Model", "config": {...}})
    weights: dict[str, np.ndarray]  # "Conv1/kernel" -> float32 array in Keras layout
    generated_by: str

    @property
    def layers(self) -> list[dict]:
        return self.topology["config"]["layers"]

    def layer(self, name: str) -> dict:
        for layer in self.layers:
            if layer["name"] == name:
                return layer
        raise KeyError(f"layer {name!r} not in the tfjs topology")

    def trainable(self, name: str) -> bool:
        return bool(self.layer(name)["config"].get("trainable", True))


def _dequantise(raw: bytes, entry: dict) -> np.ndarray:
    """Decode one weight; tfjs stores q and restores value = q * scale + min (or float16)."""
    quant = entry.get("quantization")
    if quant is None:
        return np.frombuffer(raw, dtype=_DTYPES[entry["dtype"]]).astype(np.float32)
    q = np.frombuffer(raw, dtype=_DTYPES[quant["dtype"]])
    if quant["dtype"] == "float16":
        return q.astype(np.float32)
    if "scale" not in quant:
        raise ValueError(f"{entry['name']}: unsupported quantisation {quant}")
    return (q.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])).astype(np.float32)


def _entry_bytes(entry: dict) -> int:
    count = int(np.prod(entry["shape"], dtype=np.int64))
    dtype = entry.get("quantization", {}).get("dtype", entry["dtype"])
    return count * np.dtype(_DTYPES[dtype]).itemsize


def read_tfjs(folder: str) -> TfjsModel:
    """Load model.json and its shards; raise with the folder named if anything is missing."""
    path = os.path.join(folder, "model.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found; run `npx node scripts/extract-nsfwjs.ts --out {folder}`")
    with open(path) as f:
        model = json.load(f)
    weights: dict[str, np.ndarray] = {}
    for group in model["weightsManifest"]:
        blob = b"".join(open(os.path.join(folder, p), "rb").read() for p in group["paths"])
        offset = 0
        for entry in group["weights"]:
            size = _entry_bytes(entry)
            if offset + size > len(blob):
                raise ValueError(f"{folder}: shard too short for weight {entry['name']}")
            weights[entry["name"]] = _dequantise(blob[offset:offset + size], entry).reshape(entry["shape"])
            offset += size
        if offset != len(blob):
            raise ValueError(f"{folder}: {len(blob) - offset} unread bytes after the last weight")
    topology = model["modelTopology"]
    return TfjsModel(topology=topology.get("model_config", topology), weights=weights,
                     generated_by=str(model.get("generatedBy", "")))
