"""PyTorch weights back out of a generation's ONNX files, checked against its golden outputs.

A generation ships ONNX graphs only (no checkpoints: the trainers' runs/ are not committed), so a
fine-tune that must start from the served weights reads them from the graphs. torch.onnx.export
keeps a parameter's name when the graph uses it as is (`blocks.0.ln1.weight`) and stores a
Linear weight that feeds a MatMul transposed under a generated name (`onnx::MatMul_191`). Named
initializers are matched by name; the generated ones, in the order the graph consumes them, to the
remaining 2-D parameters in module order whose transposed shape fits. That rule is a heuristic, so
`load_tower` proves the result: the rebuilt module must reproduce the generation's golden outputs
(golden.json, the PyTorch outputs stored at export time, which the Node parity test also checks
the ONNX files against), or it raises.
"""
from __future__ import annotations

import json
import os

import numpy as np
import onnx
import torch
from onnx import numpy_helper

GOLDEN_TOLERANCE = 1e-4  # max abs difference of unit vectors; float32 reorderings stay far below it


def onnx_state(module: torch.nn.Module, path: str, prefix: str = "") -> tuple[dict, list[str]]:
    """A state dict for `module` from the initializers of the ONNX file at `path` (names inside the
    graph start with `prefix`, e.g. "tower." for the text tower's export wrapper). Returns
    (state, keys of module.state_dict() that the graph did not provide)."""
    graph = onnx.load(path).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    want = module.state_dict()
    state: dict[str, torch.Tensor] = {}
    generated = []
    for name, arr in inits.items():
        key = name[len(prefix):] if name.startswith(prefix) else None
        if key in want and tuple(want[key].shape) == arr.shape:
            state[key] = torch.from_numpy(arr.copy())
        else:
            generated.append(name)
    consumed = [n for node in graph.node for n in node.input if n in generated]
    order = list(dict.fromkeys(consumed))  # first use, graph order
    remaining = [k for k, v in want.items() if k not in state and v.ndim == 2]
    for name in order:
        arr = inits[name]
        if arr.ndim != 2:
            continue
        for k in remaining:
            if tuple(want[k].shape) == arr.T.shape:
                state[k] = torch.from_numpy(arr.T.copy())
                remaining.remove(k)
                break
    return state, [k for k in want if k not in state]


def golden_arrays(gen_dir: str, tower: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The golden inputs (name -> array) and output of one tower of a generation."""
    with open(os.path.join(gen_dir, "golden.json")) as f:
        g = json.load(f)[tower]

    def read(entry: dict, dtype: str) -> np.ndarray:
        return np.fromfile(os.path.join(gen_dir, entry["file"]), dtype=np.dtype(entry.get("dtype", dtype)).newbyteorder("<")
                           ).reshape(entry["shape"])

    inputs = {k: read(v, "float32") for k, v in g["inputs"].items()}
    return inputs, read(g["output"], "float32")


@torch.no_grad()
def load_tower(module: torch.nn.Module, gen_dir: str, tower: str, prefix: str = "",
               forward=None) -> float:
    """Loads `<gen_dir>/<tower>.onnx` into `module` and checks it on the tower's golden inputs.
    `forward(module, inputs)` runs it (default: module(*inputs in golden order)). Returns the max
    abs difference; raises when parameters are missing or the outputs differ."""
    state, missing = onnx_state(module, os.path.join(gen_dir, f"{tower}.onnx"), prefix)
    if missing:
        raise ValueError(f"{gen_dir}/{tower}.onnx: no initializer for {missing[:5]} "
                         f"({len(missing)} in all); is the architecture in the manifest's training config?")
    module.load_state_dict(state)
    was_training = module.training
    module.eval()
    inputs, expected = golden_arrays(gen_dir, tower)
    tensors = {k: torch.from_numpy(v.astype(v.dtype.newbyteorder("="))) for k, v in inputs.items()}
    out = forward(module, tensors) if forward else module(*tensors.values())
    diff = float(np.abs(out.numpy() - expected).max())
    module.train(was_training)
    if not diff < GOLDEN_TOLERANCE:
        raise ValueError(f"{gen_dir}/{tower}.onnx: the weights read back do not reproduce golden.json "
                         f"(max abs difference {diff:.2e}); the architecture differs from the exported one")
    return diff
