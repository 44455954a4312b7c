"""int8 variants of a generation's content towers, written as an ONNX graph rewrite.

    cd encoders && /usr/bin/python3 -m montage_encoders.quantize --generation generations/<name> \\
        [--towers video,text] [--compare-clips 600]

There is no onnxruntime for Python on this machine, so this does by hand what ONNX Runtime's
`quantize_dynamic` does: every Conv, MatMul and Gemm whose weight is a constant becomes

    x ──DynamicQuantizeLinear──► (x_u8, x_scale, x_zp) ──ConvInteger / MatMulInteger(W_s8)──► int32
      ──Cast──► float ──Mul(x_scale · w_scale)──► (+ bias) ──► y

with the weight quantised symmetrically per output channel (int8, zero point 0) and the input
quantised per tensor at run time (uint8, its own min/max: no calibration set is needed and no
range can be stale). ONNX Runtime fuses the MatMul chain into DynamicQuantizeMatMul and runs
both kernels on its int8 GEMM (VNNI where the CPU has it).

Left in float32, on purpose: the audio tower's front end (`/frontend/`: the STFT convolution over
the raw waveform and the mel matrix over the power spectrum; a per-tensor 8-bit code of a waveform
or of a power spectrum spanning 60 dB would erase the quiet parts) and every product of two
activations (attention). Everything else (L2 normalisation, softmax, layer norm) stays float.

The audio tower is not quantised by default (`--towers video,text`): it must keep its front end in
float32, and that is most of its work, so its int8 graph was no faster (0.96x).

Writes `<tower>.int8.onnx` beside the float graphs, `variants.int8` in the manifest (file per
tower, method, the cosine of each int8 tower's vectors to float32 on the held-out clips, and
the held-out retrieval of the variant measured as served by `compare.py`), a section of the
model card, and refreshes the sha256 of every file it touched.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .files import sha256

VARIANT = "int8"
CONTENT_TOWERS = ("video", "audio", "text")
# The audio tower is left out by default: its int8 graph ran at 0.96x float32's speed (batch 32, one
# thread, bench/encoders.ts), because the STFT front end it must keep in float32 is most of its work.
DEFAULT_TOWERS = ("video", "text")
SKIP_DEFAULT = r"/frontend/"
DYNAMIC_OPS = ("MatMul", "Gemm")


def variant_file(tower: str) -> str:
    return f"{tower}.{VARIANT}.onnx"


def quantise_weight(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per channel along `axis`: (w_q int8, scale float32 per channel)."""
    other = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.abs(w).max(axis=other) if other else np.abs(w)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


class _Rewriter:
    """Collects new nodes and initializers while walking the graph once, in order."""

    def __init__(self, model: onnx.ModelProto, skip: str):
        self.graph = model.graph
        self.inits = {i.name: i for i in self.graph.initializer}
        self.skip = re.compile(skip) if skip else None
        self.new_inits: list[TensorProto] = []
        self.count = {op: 0 for op in DYNAMIC_OPS}
        self._dq: dict[str, tuple[str, str, str]] = {}

    def const(self, name: str, arr: np.ndarray) -> str:
        self.new_inits.append(numpy_helper.from_array(arr, name))
        return name

    def weight(self, name: str) -> np.ndarray | None:
        init = self.inits.get(name)
        return None if init is None else numpy_helper.to_array(init)

    def dynamic_quant(self, x: str, nodes: list) -> tuple[str, str, str]:
        """One DynamicQuantizeLinear per activation, shared by every consumer (q, scale, zero point)."""
        if x not in self._dq:
            base = f"{x}_dq"
            q, s, z = f"{base}_q", f"{base}_scale", f"{base}_zp"
            nodes.append(helper.make_node("DynamicQuantizeLinear", [x], [q, s, z], name=f"{base}/DynamicQuantizeLinear"))
            self._dq[x] = (q, s, z)
        return self._dq[x]

    def rescale(self, node, acc: str, x_scale: str, w_scale: np.ndarray, bias: np.ndarray | None,
                out: str, shape: list[int], nodes: list) -> None:
        """int32 accumulator -> float: Cast, Mul(x_scale * w_scale) [, Add bias], named as node's output."""
        n = node.name or out
        w_s = self.const(f"{n}_w_scale", w_scale.reshape(shape))
        scales, cast = f"{n}_scales", f"{n}_acc_f"
        nodes.append(helper.make_node("Mul", [x_scale, w_s], [scales], name=f"{n}/scales"))
        nodes.append(helper.make_node("Cast", [acc], [cast], name=f"{n}/cast", to=TensorProto.FLOAT))
        if bias is None:
            nodes.append(helper.make_node("Mul", [cast, scales], [out], name=f"{n}/rescale"))
            return
        scaled = f"{n}_scaled"
        nodes.append(helper.make_node("Mul", [cast, scales], [scaled], name=f"{n}/rescale"))
        b = self.const(f"{n}_bias", bias.astype(np.float32).reshape(shape))
        nodes.append(helper.make_node("Add", [scaled, b], [out], name=f"{n}/bias"))

    def matmul(self, node, nodes: list) -> bool:
        w = self.weight(node.input[1])
        if w is None or w.ndim != 2:
            return False  # a product of two activations (attention) stays float
        q, scale = quantise_weight(w, 1)  # (K, N): per output column
        x_q, x_s, x_z = self.dynamic_quant(node.input[0], nodes)
        n = node.name or node.output[0]
        acc = f"{n}_acc"
        nodes.append(helper.make_node("MatMulInteger", [x_q, self.const(f"{n}_w_q", q), x_z], [acc],
                                      name=f"{n}/MatMulInteger"))
        self.rescale(node, acc, x_s, scale, None, node.output[0], [-1], nodes)
        return True

    def gemm(self, node, nodes: list) -> bool:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        w = self.weight(node.input[1])
        if w is None or attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
            return False
        w = w.T if attrs.get("transB", 0) else w  # (K, N)
        bias = self.weight(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if len(node.input) > 2 and node.input[2] and bias is None:
            return False
        q, scale = quantise_weight(w, 1)
        x_q, x_s, x_z = self.dynamic_quant(node.input[0], nodes)
        n = node.name or node.output[0]
        acc = f"{n}_acc"
        nodes.append(helper.make_node("MatMulInteger", [x_q, self.const(f"{n}_w_q", q), x_z], [acc],
                                      name=f"{n}/MatMulInteger"))
        self.rescale(node, acc, x_s, scale, bias, node.output[0], [-1], nodes)
        return True

    def run(self) -> dict:
        nodes: list = []
        for node in self.graph.node:
            wanted = node.op_type in DYNAMIC_OPS and not (self.skip and self.skip.search(node.name))
            done = wanted and {"MatMul": self.matmul, "Gemm": self.gemm}[node.op_type](node, nodes)
            if done:
                self.count[node.op_type] += 1
            else:
                nodes.append(node)
        del self.graph.node[:]
        self.graph.node.extend(nodes)
        self.graph.initializer.extend(self.new_inits)
        used = {i for n in self.graph.node for i in n.input}
        keep = [i for i in self.graph.initializer if i.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(keep)
        return dict(self.count)


def _attr(node, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _set_attr(node, name: str, value) -> None:
    for i, a in enumerate(node.attribute):
        if a.name == name:
            del node.attribute[i]
            break
    node.attribute.append(helper.make_attribute(name, value))


def _fold(node, x: list[np.ndarray]) -> np.ndarray | None:
    """numpy value of the shape-arithmetic ops the exporter writes around Pad, else None."""
    op = node.op_type
    if op == "Cast":
        return x[0].astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[_attr(node, "to")])
    if op == "ConstantOfShape":
        value = _attr(node, "value")
        fill = numpy_helper.to_array(value) if value is not None else np.zeros(1, np.float32)
        return np.full(tuple(int(d) for d in x[0]), fill.reshape(-1)[0], dtype=fill.dtype)
    if op == "Concat":
        return np.concatenate(x, axis=_attr(node, "axis"))
    if op == "Reshape":
        return x[0].reshape(tuple(int(d) for d in x[1]))
    if op == "Transpose":
        return np.transpose(x[0], _attr(node, "perm"))
    if op == "Slice":
        starts, ends = x[1], x[2]
        axes = x[3] if len(x) > 3 else np.arange(len(starts))
        steps = x[4] if len(x) > 4 else np.ones(len(starts), np.int64)
        index = [slice(None)] * x[0].ndim
        for a, b, e, st in zip(axes, starts, ends, steps):
            big = np.iinfo(np.int64).max
            index[int(a)] = slice(int(b), None if int(e) <= -big or int(e) >= big else int(e), int(st))
        return x[0][tuple(index)]
    return None


def _constants(graph) -> dict[str, np.ndarray]:
    """Values known before running: initializers, Constant nodes, and the shape arithmetic on them."""
    out = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and _attr(node, "value") is not None:
            out[node.output[0]] = numpy_helper.to_array(_attr(node, "value"))
        elif node.input and all(i in out for i in node.input if i):
            value = _fold(node, [out[i] for i in node.input if i])
            if value is not None:
                out[node.output[0]] = value
    return out


def _consumers(graph) -> dict[str, list]:
    out: dict[str, list] = {}
    for node in graph.node:
        for i in node.input:
            out.setdefault(i, []).append(node)
    return out


def fold_pads(model: onnx.ModelProto) -> int:
    """Pad(constant 0, spatial axes only) feeding a single Conv becomes that Conv's `pads`
    (the exporter writes Keras' asymmetric "same" padding that way); numerically identical, and
    it leaves nothing between a quantised tensor and the convolution that reads it."""
    graph, consts, users = model.graph, _constants(model.graph), _consumers(model.graph)
    drop = []
    for pad in graph.node:
        if pad.op_type != "Pad" or _attr(pad, "mode", b"constant") not in (b"constant", "constant"):
            continue
        conv = users.get(pad.output[0], [])
        value = consts.get(pad.input[2]) if len(pad.input) > 2 and pad.input[2] else np.zeros(1)
        pads = consts.get(pad.input[1])
        if len(conv) != 1 or conv[0].op_type != "Conv" or pads is None or value is None or np.any(value != 0):
            continue
        conv, pads = conv[0], [int(p) for p in pads]
        r = len(pads) // 2
        if any(pads[:2]) or any(pads[r:r + 2]) or _attr(conv, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            continue
        current = list(_attr(conv, "pads", [0] * (2 * (r - 2))))
        _set_attr(conv, "pads", [a + b for a, b in zip(pads[2:r] + pads[r + 2:], current)])
        conv.input[0] = pad.input[0]
        drop.append(pad)
    for pad in drop:
        graph.node.remove(pad)
    return len(drop)


class ConvPlan:
    """Which convolutions become QLinearConv and which tensors need a calibrated range.

    A Conv with a constant weight is quantised with its input and its output; when its only
    consumer is Relu or Clip(0, 6), the activation is absorbed: the output's quantiser starts at 0
    (and stops at 6), which is the activation (ONNX Runtime's quantiser removes them the same way).
    """

    def __init__(self, model: onnx.ModelProto, skip: str = SKIP_DEFAULT):
        graph, consts, users = model.graph, _constants(model.graph), _consumers(model.graph)
        pattern = re.compile(skip) if skip else None
        self.convs: list[tuple[str, str, str]] = []  # (conv name, input tensor, output tensor)
        self.absorbed: dict[str, str] = {}  # activation node name -> its conv
        self.caps: dict[str, tuple[float, float | None]] = {}  # tensor -> (low, high cap) of an absorbed activation
        for node in graph.node:
            if node.op_type != "Conv" or node.input[1] not in consts or (pattern and pattern.search(node.name)):
                continue
            out = node.output[0]
            nxt = users.get(out, [])
            if len(nxt) == 1 and nxt[0].op_type == "Relu":
                out, self.caps[nxt[0].output[0]] = nxt[0].output[0], (0.0, None)
                self.absorbed[nxt[0].name] = node.name
            elif len(nxt) == 1 and nxt[0].op_type == "Clip":
                lo = consts.get(nxt[0].input[1]) if len(nxt[0].input) > 1 else None
                hi = consts.get(nxt[0].input[2]) if len(nxt[0].input) > 2 else None
                if lo is not None and hi is not None and float(lo) == 0.0:
                    out, self.caps[nxt[0].output[0]] = nxt[0].output[0], (0.0, float(hi))
                    self.absorbed[nxt[0].name] = node.name
            self.convs.append((node.name, node.input[0], out))

    def tensors(self) -> list[str]:
        """Every tensor the rewrite quantises, in graph order without repeats (the calibration outputs)."""
        return list(dict.fromkeys(t for _, x, y in self.convs for t in (x, y)))


def with_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """A copy of `model` that also outputs `names` (float32, shape left to the runtime)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    have = {o.name for o in out.graph.output}
    out.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names if n not in have)
    return out


def activation_qparams(lo: float, hi: float, cap: tuple[float, float | None] | None) -> tuple[np.float32, np.uint8]:
    """uint8 scale and zero point covering [lo, hi] and 0 (so zero padding is exact)."""
    if cap is not None:
        lo = cap[0]
        hi = hi if cap[1] is None else min(hi, cap[1])
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0 if hi > lo else 1.0
    return np.float32(scale), np.uint8(np.clip(np.rint(-lo / scale), 0, 255))


def quantise_convs(model: onnx.ModelProto, plan: ConvPlan, ranges: dict[str, list[float]]) -> int:
    """Static QDQ rewrite of the planned convolutions, in place: Q/DQ pairs on their inputs and
    outputs (calibrated), weights int8 per output channel and biases int32 behind DequantizeLinear.
    ONNX Runtime fuses each DQ -> Conv -> Q group into QLinearConv (and a residual Add between
    quantised tensors into QLinearAdd); the Q/DQ pair left between two fused groups cancels."""
    graph = model.graph
    consts = {i.name: i for i in graph.initializer}
    by_name = {n.name: n for n in graph.node}
    qp = {t: activation_qparams(*ranges[t], plan.caps.get(t)) for t in plan.tensors()}
    new_inits: list[TensorProto] = []
    for name, x, y in plan.convs:
        conv = by_name[name]
        w = numpy_helper.to_array(consts[conv.input[1]])
        q, w_scale = quantise_weight(w, 0)
        pre = f"{name}_q"
        new_inits += [numpy_helper.from_array(q, f"{pre}_w"), numpy_helper.from_array(w_scale, f"{pre}_w_scale"),
                      numpy_helper.from_array(np.zeros(len(w_scale), np.int8), f"{pre}_w_zp")]
        dq = [helper.make_node("DequantizeLinear", [f"{pre}_w", f"{pre}_w_scale", f"{pre}_w_zp"], [f"{pre}_w_dq"],
                               name=f"{pre}/w", axis=0)]
        if len(conv.input) > 2 and conv.input[2]:
            b_scale = (qp[x][0] * w_scale).astype(np.float32)
            b = numpy_helper.to_array(consts[conv.input[2]]).astype(np.float64)
            new_inits += [numpy_helper.from_array(np.rint(b / b_scale).astype(np.int32), f"{pre}_b"),
                          numpy_helper.from_array(b_scale, f"{pre}_b_scale"),
                          numpy_helper.from_array(np.zeros(len(b_scale), np.int32), f"{pre}_b_zp")]
            dq.append(helper.make_node("DequantizeLinear", [f"{pre}_b", f"{pre}_b_scale", f"{pre}_b_zp"],
                                       [f"{pre}_b_dq"], name=f"{pre}/b", axis=0))
            conv.input[2] = f"{pre}_b_dq"
        conv.input[1] = f"{pre}_w_dq"
        if y != conv.output[0]:  # the activation is absorbed: the conv writes its output directly
            conv.output[0] = y
        idx = list(graph.node).index(conv)
        for i, n in enumerate(dq):
            graph.node.insert(idx + i, n)
    for act in [n for n in graph.node if n.name in plan.absorbed]:
        graph.node.remove(act)
    for t, (scale, zp) in qp.items():
        _insert_qdq(graph, t, scale, zp, new_inits)
    graph.initializer.extend(new_inits)
    unused = {i.name for i in graph.initializer} - {i for n in graph.node for i in n.input}
    for init in [i for i in graph.initializer if i.name in unused]:
        graph.initializer.remove(init)
    return len(plan.convs)


def _insert_qdq(graph, t: str, scale: np.float32, zp: np.uint8, inits: list) -> None:
    """t -> QuantizeLinear -> DequantizeLinear -> every former reader of t, right after t's producer."""
    s, z, q, dq = f"{t}_scale", f"{t}_zp", f"{t}_quant", f"{t}_dequant"
    inits += [numpy_helper.from_array(np.array(scale, np.float32), s), numpy_helper.from_array(np.array(zp, np.uint8), z)]
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == t:
                node.input[i] = dq
    pair = [helper.make_node("QuantizeLinear", [t, s, z], [q], name=f"{t}/Q"),
            helper.make_node("DequantizeLinear", [q, s, z], [dq], name=f"{t}/DQ")]
    producers = [i for i, n in enumerate(graph.node) if t in n.output]
    at = producers[0] + 1 if producers else 0
    for i, n in enumerate(pair):
        graph.node.insert(at + i, n)


def prepared(model: onnx.ModelProto) -> onnx.ModelProto:
    """The float graph the rewrite starts from (Pads folded): calibration runs this one."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    fold_pads(out)
    return out


def quantise_model(model: onnx.ModelProto, ranges: dict[str, list[float]] | None = None,
                   skip: str = SKIP_DEFAULT) -> tuple[onnx.ModelProto, dict]:
    """The int8 copy of `model` and the number of nodes rewritten per op type. Convolutions are
    quantised statically when `ranges` (calibrated on `prepared(model)`, ConvPlan.tensors()) are
    given, else left in float32; MatMul/Gemm with a constant weight always dynamically."""
    out = prepared(model)
    counts = {"Conv": quantise_convs(out, ConvPlan(out, skip), ranges) if ranges is not None else 0}
    counts.update(_Rewriter(out, skip).run())
    out.doc_string = (model.doc_string + "\n" if model.doc_string else "") + \
        "int8 (static convolutions, dynamic MatMul/Gemm) by montage_encoders.quantize"
    onnx.checker.check_model(out)
    return out, counts


def prune(model: onnx.ModelProto) -> None:
    """Drops nodes nothing reads any more (the Clip bounds and Pad sizes the rewrite absorbed)."""
    graph = model.graph
    while True:
        read = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if not any(o in read for o in n.output)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    read = {i for n in graph.node for i in n.input}
    for init in [i for i in graph.initializer if i.name not in read]:
        graph.initializer.remove(init)


# ------------------------------------------------------------------ calibration and the generation
REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALIBRATION_CLIPS = 96


def calibration_inputs(manifest: dict, tower: str, n: int) -> np.ndarray:
    """The tower's input for n clips of the corpus's TRAIN split (never the held-out clips the
    variant is judged on), one 2 s segment each, starting at 0, 2 or 4 s as ingest cuts them."""
    from . import corpus
    from .data import _fit
    from .export import video_input

    seed = manifest.get("training", {}).get("config", {}).get("corpus_seed", 1234)  # data.build_split's "train" seed
    specs = corpus.sample_specs(n, "train", seed)
    starts = [2.0 * (i % 3) for i in range(n)]
    if tower == "video":
        v = manifest["preprocessing"]["video"]
        s, t = v["frame_size"], v["frames_per_segment"]
        rgb = np.stack([corpus.render_frames(sp, s, s, corpus.segment_times(t0, v["segment_seconds"], t))
                        for sp, t0 in zip(specs, starts)])
        return video_input(rgb.astype(np.uint8))
    a = manifest["preprocessing"]["audio"]
    return np.stack([_fit(corpus.render_audio(sp, a["sample_rate"], a["segment_seconds"], t0), a["samples"])
                     for sp, t0 in zip(specs, starts)])


def node_ranges(model: onnx.ModelProto, input_name: str, inputs: np.ndarray, tensors: list[str]) -> dict:
    """min/max of `tensors` over `inputs`, run by onnxruntime-node (encoders/node/ranges.ts)."""
    import subprocess

    with tempfile.TemporaryDirectory(prefix="montage-calib-") as tmp:
        onnx.save(with_outputs(model, tensors), os.path.join(tmp, "model.onnx"))
        np.ascontiguousarray(inputs, dtype="<f4").tofile(os.path.join(tmp, "inputs.f32"))
        req = {"model": os.path.join(tmp, "model.onnx"), "input": input_name, "file": os.path.join(tmp, "inputs.f32"),
               "shape": list(inputs.shape), "tensors": tensors, "out": os.path.join(tmp, "ranges.json")}
        with open(os.path.join(tmp, "request.json"), "w") as f:
            json.dump(req, f)
        node = os.path.join(REPO_DIR, "node_modules", ".bin", "node")
        done = subprocess.run([node if os.path.exists(node) else "node", os.path.join(REPO_DIR, "encoders", "node", "ranges.ts"),
                               os.path.join(tmp, "request.json")], cwd=REPO_DIR, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"calibration in Node failed: {done.stderr[-2000:]}")
        return json.load(open(req["out"]))


def quantise_tower(generation: str, manifest: dict, tower: str, clips: int = CALIBRATION_CLIPS) -> dict:
    """Writes `<tower>.int8.onnx` into the generation; returns what the manifest records of it."""
    model = onnx.load(os.path.join(generation, manifest["towers"][tower]["file"]))
    ranges = None
    if tower in ("video", "audio"):
        base = prepared(model)
        tensors = ConvPlan(base).tensors()
        ranges = node_ranges(base, next(iter(manifest["towers"][tower]["inputs"])),
                             calibration_inputs(manifest, tower, clips), tensors)
    q, counts = quantise_model(model, ranges)
    prune(q)
    path = os.path.join(generation, variant_file(tower))
    onnx.save(q, path + ".tmp")
    os.replace(path + ".tmp", path)
    return {"file": variant_file(tower), "quantised": {k: v for k, v in counts.items() if v},
            **({"calibration_clips": clips} if ranges is not None else {})}


def write_json_atomic(path: str, value: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".manifest.")
    with os.fdopen(fd, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def cosines(a: np.ndarray, b: np.ndarray) -> dict:
    """Per-row cosine of two (rows, D) sets of unit vectors: min and mean."""
    c = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"min": round(float(c.min()), 4), "mean": round(float(c.mean()), 4)}


CARD_TITLE = "## int8 variant"


def card_section(variant: dict) -> str:
    m = variant["metrics"]
    f32, q8 = m["float32"]["heldout"], m["heldout"]

    def r(x: dict) -> str:
        return f"{x['r1']:.3f} / {x['r5']:.3f} / {x['r10']:.3f}"

    rows = [f"| {k.replace('_to_', '→')} | {r(f32[k])} | {r(q8[k])} |" for k in q8]
    cos = ", ".join(f"{t} {c['mean']:.4f} (min {c['min']:.4f})" for t, c in m["cosine_to_float32"].items())
    files = ", ".join(f"`{t['file']}`" for t in variant["towers"].values())
    kept = [t for t in CONTENT_TOWERS if t not in variant["towers"]]
    return "\n".join([
        "", CARD_TITLE, "",
        f"{files} (`manifest.json` → `variants.int8`; {', '.join(kept) or 'no tower'} kept in float32), written by "
        "`cd encoders && /usr/bin/python3 -m montage_encoders.quantize --generation <this folder>`: "
        + variant["method"] + ".", "",
        f"Cosine of each int8 tower's vectors to float32's on the {m['clips']} held-out clips: {cos}.", "",
        f"Held-out retrieval as served (`compare.py`, {m['clips']} clips, same run), R@1 / R@5 / R@10:", "",
        "| direction | float32 | int8 |", "| --- | --- | --- |", *rows, "",
        "The service runs the variant with `MONTAGE_MODEL_PRECISION=int8`; speed in `bench/results/encoders.json`.", ""])


METHOD = ("convolutions static (QLinearConv: input and output per tensor uint8, calibrated min/max on "
          "{clips} training-split clips of the procedural corpus; weights int8 symmetric per output channel; "
          "Relu/Clip(0,6) absorbed into the output range), MatMul/Gemm with constant weights dynamic "
          "(DynamicQuantizeLinear + MatMulInteger, weights int8 per output column); attention products, "
          "normalisations and the word-vector table (already int8) stay as they were, and so would the audio "
          "front end (STFT and mel matrix) of a quantised audio tower")


def add_variant(generation: str, towers: tuple[str, ...] = DEFAULT_TOWERS, clips: int = CALIBRATION_CLIPS,
                compare_clips: int = 600) -> dict:
    """Quantise `towers` of the generation, measure the variant beside float32, record it in the
    manifest and model card; idempotent (a rerun replaces the variant)."""
    from .compare import embed_heldout, score

    manifest_path = os.path.join(generation, "manifest.json")
    manifest = json.load(open(manifest_path))
    entries = {}
    for tower in towers:
        entries[tower] = quantise_tower(generation, manifest, tower, clips)
        print(f"{tower}: {entries[tower]}", flush=True)
    variant = {"towers": entries, "method": METHOD.format(clips=clips),
               "command": "cd encoders && /usr/bin/python3 -m montage_encoders.quantize --generation "
                          f"generations/{manifest['generation']}"}
    files = manifest.setdefault("files", {})
    for stale in (manifest.get("variants", {}).get(VARIANT) or {}).get("towers", {}).values():
        if stale["file"] not in {e["file"] for e in entries.values()}:  # a tower no longer in the variant
            files.pop(stale["file"], None)
            if os.path.exists(os.path.join(generation, stale["file"])):
                os.remove(os.path.join(generation, stale["file"]))
    manifest.setdefault("variants", {})[VARIANT] = variant
    for e in entries.values():
        files[e["file"]] = sha256(os.path.join(generation, e["file"]))
    write_json_atomic(manifest_path, manifest)  # compare's Node side reads the variant's files from it

    _, f32 = embed_heldout(generation, compare_clips)
    _, q8 = embed_heldout(generation, compare_clips, VARIANT)
    pairs = {"video": "video", "audio": "audio", "text": "heldout"}  # tower -> embedding rows it produced
    metrics = {"clips": compare_clips, "protocol": "compare.py held-out clips (test split), float32 and int8 in the same run",
               "cosine_to_float32": {t: cosines(f32[k], q8[k]) for t, k in pairs.items() if t in entries}}
    f32_row, q8_row = score(generation, f32), score(generation, q8)
    metrics.update({k: q8_row[k] for k in ("heldout", "paraphrase", "text_benchmark")})
    metrics["float32"] = {k: f32_row[k] for k in ("heldout", "paraphrase", "text_benchmark")}
    variant["metrics"] = metrics
    write_card(generation, manifest)
    return variant


def write_card(generation: str, manifest: dict) -> None:
    """(Re)writes the model card's int8 section from the manifest and refreshes the sha256 entries."""
    card = os.path.join(generation, "README.md")
    text = open(card).read()
    if CARD_TITLE in text:  # replace the section up to the next one
        head, rest = text.split("\n" + CARD_TITLE, 1)
        nxt = rest.find("\n## ")
        text = head.rstrip("\n") + "\n" + (rest[nxt:] if nxt >= 0 else "")
    with open(card, "w") as f:
        f.write(text.rstrip("\n") + "\n" + card_section(manifest["variants"][VARIANT]))
    files = manifest["files"]
    files["README.md"] = sha256(card)
    manifest["files"] = dict(sorted(files.items()))
    write_json_atomic(os.path.join(generation, "manifest.json"), manifest)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--generation", required=True, help="generation folder to add the int8 variant to")
    p.add_argument("--towers", default=",".join(DEFAULT_TOWERS), help=f"any of {','.join(CONTENT_TOWERS)}")
    p.add_argument("--calibration-clips", type=int, default=CALIBRATION_CLIPS)
    p.add_argument("--compare-clips", type=int, default=600)
    args = p.parse_args(argv)
    variant = add_variant(args.generation, tuple(args.towers.split(",")), args.calibration_clips, args.compare_clips)
    print(json.dumps(variant["metrics"], indent=1))


if __name__ == "__main__":
    main()
