"""Convert a tfjs *graph model* (model.json with a TF GraphDef + binary shards) into an ONNX graph.

A small, exact translator for the ops a frozen TF detector uses, written with `onnx.helper` only
(no tf2onnx, no TensorFlow on this machine). TF's NHWC layout is kept everywhere, so every op whose
semantics depend on an axis (Concat, Reshape, StridedSlice, Mean, TopK, Gather) is translated as it
is; only the ops ONNX defines on NCHW (Conv, MaxPool, Resize) are wrapped in a pair of Transposes.
ONNX Runtime's transpose optimiser cancels the pairs between consecutive convolutions at load time,
so the wrapping costs nothing at inference.

Weights: tfjs stores them in the shards in manifest order, optionally quantised; float16-quantised
weights are kept as float16 initializers followed by a Cast, so the ONNX file stays as small as the
tfjs one and computes on the same float32 values tfjs restores.

Unsupported ops and attributes raise NotImplementedError naming the node, never a silent guess.
"""
from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .tfjs import _DTYPES, _dequantise, _entry_bytes

OPSET = 13
_TF_TO_ONNX_DTYPE = {"DT_FLOAT": TensorProto.FLOAT, "DT_INT32": TensorProto.INT32, "DT_INT64": TensorProto.INT64,
                     "DT_BOOL": TensorProto.BOOL, "DT_HALF": TensorProto.FLOAT16, "DT_UINT8": TensorProto.UINT8}
_TO_NCHW, _TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]
_ELEMENTWISE = {"Add": "Add", "AddV2": "Add", "Sub": "Sub", "Mul": "Mul", "RealDiv": "Div", "Maximum": "Max",
                "Minimum": "Min", "Equal": "Equal", "Greater": "Greater", "Less": "Less"}
_UNARY = {"Relu": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Exp": "Exp", "Floor": "Floor", "Sqrt": "Sqrt"}


@dataclass
class GraphModel:
    nodes: list[dict]                    # the GraphDef's nodes, as in model.json
    weights: dict[str, np.ndarray]       # Const name -> value (float32 restored, ints as stored)
    float16: set[str]                    # Const names that were stored as float16
    signature: dict

    def node(self, name: str) -> dict:
        for n in self.nodes:
            if n["name"] == name:
                return n
        raise KeyError(f"node {name!r} not in the graph")


def read_graph_model(json_path: str) -> GraphModel:
    """Load a tfjs graph-model JSON and its shards (paths relative to the JSON's folder)."""
    folder = os.path.dirname(os.path.abspath(json_path))
    with open(json_path) as f:
        model = json.load(f)
    if model.get("format") != "graph-model":
        raise ValueError(f"{json_path}: format {model.get('format')!r}, expected 'graph-model'")
    weights: dict[str, np.ndarray] = {}
    float16: set[str] = set()
    for group in model["weightsManifest"]:
        blob = b"".join(open(os.path.join(folder, p), "rb").read() for p in group["paths"])
        offset = 0
        for entry in group["weights"]:
            size = _entry_bytes(entry)
            if offset + size > len(blob):
                raise ValueError(f"{json_path}: shard too short for weight {entry['name']}")
            raw = blob[offset:offset + size]
            if "quantization" in entry:
                value = _dequantise(raw, entry)
                if entry["quantization"]["dtype"] == "float16":
                    float16.add(entry["name"])
            else:
                value = np.frombuffer(raw, dtype=_DTYPES[entry["dtype"]]).copy()
            weights[entry["name"]] = value.reshape(entry["shape"])
            offset += size
        if offset != len(blob):
            raise ValueError(f"{json_path}: {len(blob) - offset} unread bytes after the last weight")
    return GraphModel(nodes=model["modelTopology"]["node"], weights=weights, float16=float16,
                      signature=model.get("signature", {}))


def _attr(node: dict, key: str, default=None):
    """One attribute's plain value: ints, floats, bools, strings (base64-decoded), int lists."""
    a = node.get("attr", {}).get(key)
    if a is None:
        return default
    if "list" in a:
        lst = a["list"]
        if "i" in lst:
            return [int(v) for v in lst["i"]]
        if "s" in lst:
            return [base64.b64decode(v).decode() for v in lst["s"]]
        return []
    if "s" in a:
        return base64.b64decode(a["s"]).decode()
    if "i" in a:
        return int(a["i"])
    if "f" in a:
        return float(a["f"])
    if "b" in a:
        return bool(a["b"])
    if "type" in a:
        return a["type"]
    return a


def _split_ref(ref: str) -> tuple[str, int]:
    """'name:1' -> ('name', 1); 'name' -> ('name', 0). Control inputs ('^name') are not data."""
    if ":" in ref:
        name, idx = ref.rsplit(":", 1)
        return name, int(idx)
    return ref, 0


@dataclass
class _Builder:
    model: GraphModel
    nodes: list = field(default_factory=list)
    inits: dict = field(default_factory=dict)       # name -> TensorProto
    alias: dict = field(default_factory=dict)       # TF tensor ref -> ONNX value name
    counter: int = 0

    # -- helpers ------------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        self.counter += 1
        return f"{base}__{self.counter}"

    def add(self, op: str, inputs: list[str], base: str, n_out: int = 1, **attrs) -> list[str]:
        outs = [self.fresh(base) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=self.fresh(base + "/" + op), **attrs))
        return outs

    def const(self, base: str, value: np.ndarray) -> str:
        name = self.fresh(base)
        self.inits[name] = numpy_helper.from_array(np.asarray(value), name)
        return name

    def const_value(self, ref: str) -> np.ndarray:
        """The value of a Const input (shapes, axes, sizes must be constants here)."""
        name, _ = _split_ref(ref)
        node = self.model.node(name)
        if node["op"] != "Const":
            raise NotImplementedError(f"{name} must be a Const (it feeds a shape/axis), but is {node['op']}")
        return self.model.weights[name]

    def value(self, ref: str) -> str:
        """The ONNX name of a TF tensor reference, materialising Const weights on first use."""
        name, idx = _split_ref(ref)
        key = f"{name}:{idx}"
        if key in self.alias:
            return self.alias[key]
        if name in self.model.weights and idx == 0:
            w = self.model.weights[name]
            if name in self.model.float16:
                half = self.const(name + "/f16", w.astype(np.float16))
                self.alias[key] = self.add("Cast", [half], name, to=TensorProto.FLOAT)[0]
            else:
                self.alias[key] = self.const(name, w)
            return self.alias[key]
        raise KeyError(f"tensor {ref} used before it was converted")

    def nchw(self, fn, x: str, base: str) -> str:
        """Run an NCHW-only ONNX op on an NHWC tensor."""
        t = self.add("Transpose", [x], base, perm=_TO_NCHW)[0]
        y = fn(t)
        return self.add("Transpose", [y], base, perm=_TO_NHWC)[0]

    # -- ops ----------------------------------------------------------------------------------
    def conv(self, node: dict, depthwise: bool) -> str:
        if _attr(node, "data_format", "NHWC") != "NHWC":
            raise NotImplementedError(f"{node['name']}: data_format {_attr(node, 'data_format')}")
        name = node["name"]
        x = self.value(node["input"][0])
        kernel = self.const_value(node["input"][1])  # (kh, kw, in, out) or depthwise (kh, kw, C, M)
        strides = _attr(node, "strides", [1, 1, 1, 1])[1:3]
        dilations = _attr(node, "dilations", [1, 1, 1, 1])[1:3]
        padding = _attr(node, "padding")
        if padding not in ("SAME", "VALID"):
            raise NotImplementedError(f"{name}: padding {padding}")
        if depthwise:
            kh, kw, c, m = kernel.shape
            w = kernel.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw)  # output channel c*M+m, as TF
            group = c
        else:
            w, group = kernel.transpose(3, 2, 0, 1), 1
        w_name = self._weight(node["input"][1], np.ascontiguousarray(w))
        bias, activation = self._fused(node)
        inputs = [w_name] + ([self.value(bias)] if bias else [])
        pads = {"auto_pad": "SAME_UPPER"} if padding == "SAME" else {"pads": [0, 0, 0, 0]}
        y = self.nchw(lambda t: self.add("Conv", [t] + inputs, name, strides=strides, dilations=dilations,
                                         group=group, **pads)[0], x, name)
        return self._activate(y, activation, node)

    def _weight(self, ref: str, value: np.ndarray) -> str:
        name, _ = _split_ref(ref)
        if name in self.model.float16:
            half = self.const(name + "/f16", value.astype(np.float16))
            return self.add("Cast", [half], name, to=TensorProto.FLOAT)[0]
        return self.const(name, value.astype(np.float32))

    def _fused(self, node: dict) -> tuple[str | None, str | None]:
        """_FusedConv2D / FusedDepthwiseConv2dNative: [BiasAdd] then at most one activation."""
        if not node["op"].startswith(("_Fused", "Fused")):
            return None, None
        ops = _attr(node, "fused_ops", [])
        if not ops or ops[0] != "BiasAdd" or len(ops) > 2 or _attr(node, "num_args", 1) != 1:
            raise NotImplementedError(f"{node['name']}: fused_ops {ops} (only BiasAdd[+activation])")
        return node["input"][2], (ops[1] if len(ops) == 2 else None)

    def _activate(self, x: str, activation: str | None, node: dict) -> str:
        base = node["name"]
        if activation is None:
            return x
        if activation == "Relu":
            return self.add("Relu", [x], base)[0]
        if activation == "Relu6":
            return self.relu6(x, base)
        if activation == "LeakyRelu":
            return self.add("LeakyRelu", [x], base, alpha=_attr(node, "leakyrelu_alpha", 0.2))[0]
        if activation == "Sigmoid":
            return self.add("Sigmoid", [x], base)[0]
        raise NotImplementedError(f"{base}: fused activation {activation}")

    def relu6(self, x: str, base: str) -> str:
        lo = self.const(base + "/zero", np.array(0, np.float32))
        hi = self.const(base + "/six", np.array(6, np.float32))
        return self.add("Clip", [x, lo, hi], base)[0]

    def int64(self, ref: str, base: str) -> str:
        return self.const(base, self.const_value(ref).astype(np.int64).reshape(-1))

    def resize_bilinear(self, node: dict) -> str:
        name = node["name"]
        if _attr(node, "align_corners", False):
            mode = "align_corners"
        elif _attr(node, "half_pixel_centers", False):
            mode = "half_pixel"
        else:
            mode = "asymmetric"
        size = self.const_value(node["input"][1]).astype(np.int64).reshape(2)

        def resize(t: str) -> str:
            shape = self.add("Shape", [t], name)[0]
            nc = self.add("Slice", [shape, self.const(name + "/s0", np.array([0], np.int64)),
                                    self.const(name + "/s2", np.array([2], np.int64))], name)[0]
            sizes = self.add("Concat", [nc, self.const(name + "/hw", size)], name, axis=0)[0]
            empty = self.const(name + "/roi", np.array([], np.float32))
            return self.add("Resize", [t, empty, empty, sizes], name, mode="linear",
                            coordinate_transformation_mode=mode)[0]
        return self.nchw(resize, self.value(node["input"][0]), name)

    def max_pool(self, node: dict) -> str:
        name = node["name"]
        ksize = _attr(node, "ksize")[1:3]
        strides = _attr(node, "strides")[1:3]
        padding = _attr(node, "padding")
        pads = {"auto_pad": "SAME_UPPER"} if padding == "SAME" else {"pads": [0, 0, 0, 0]}
        return self.nchw(lambda t: self.add("MaxPool", [t], name, kernel_shape=ksize, strides=strides, **pads)[0],
                         self.value(node["input"][0]), name)

    def strided_slice(self, node: dict) -> str:
        name = node["name"]
        if _attr(node, "ellipsis_mask", 0) or _attr(node, "new_axis_mask", 0):
            raise NotImplementedError(f"{name}: ellipsis/new_axis masks")
        begin, end, strides = (self.const_value(r).astype(np.int64) for r in node["input"][1:4])
        bm, em, sm = (_attr(node, k, 0) for k in ("begin_mask", "end_mask", "shrink_axis_mask"))
        big = np.iinfo(np.int64).max
        starts, ends = begin.copy(), end.copy()
        for i, step in enumerate(strides):
            if bm >> i & 1:
                starts[i] = 0 if step > 0 else -1
            if em >> i & 1:
                ends[i] = big if step > 0 else -big
            if sm >> i & 1:
                ends[i] = starts[i] + 1 if starts[i] != -1 else big
        axes = np.arange(len(strides), dtype=np.int64)
        y = self.add("Slice", [self.value(node["input"][0]), self.const(name + "/starts", starts),
                               self.const(name + "/ends", ends), self.const(name + "/axes", axes),
                               self.const(name + "/steps", strides)], name)[0]
        shrink = [i for i in range(len(strides)) if sm >> i & 1]
        if shrink:
            y = self.add("Squeeze", [y, self.const(name + "/sq", np.array(shrink, np.int64))], name)[0]
        return y

    def floor_div(self, node: dict) -> str:
        name = node["name"]
        a, b = (self.value(r) for r in node["input"][:2])
        if _attr(node, "T") == "DT_FLOAT":
            return self.add("Floor", [self.add("Div", [a, b], name)[0]], name)[0]
        # Integer Div truncates towards zero; TF floors. q -= 1 where the remainder is non-zero and
        # has the opposite sign of the divisor.
        q = self.add("Div", [a, b], name)[0]
        r = self.add("Sub", [a, self.add("Mul", [q, b], name)[0]], name)[0]
        zero = self.const(name + "/zero", np.array(0, np.int32))
        nonzero = self.add("Not", [self.add("Equal", [r, zero], name)[0]], name)[0]
        opposite = self.add("Less", [self.add("Mul", [r, b], name)[0], zero], name)[0]
        fix = self.add("Cast", [self.add("And", [nonzero, opposite], name)[0]], name, to=TensorProto.INT32)[0]
        return self.add("Sub", [q, fix], name)[0]

    def floor_mod(self, node: dict) -> str:
        name = node["name"]
        a, b = (self.value(r) for r in node["input"][:2])
        if _attr(node, "T") == "DT_FLOAT":  # a - floor(a / b) * b
            f = self.add("Floor", [self.add("Div", [a, b], name)[0]], name)[0]
            return self.add("Sub", [a, self.add("Mul", [f, b], name)[0]], name)[0]
        return self.add("Mod", [a, b], name, fmod=0)[0]  # integer Mod takes the divisor's sign, as TF

    def convert(self, node: dict) -> list[str]:
        op, name, ins = node["op"], node["name"], [i for i in node.get("input", []) if not i.startswith("^")]
        if op in ("_FusedConv2D", "Conv2D"):
            return [self.conv(node, depthwise=False)]
        if op in ("FusedDepthwiseConv2dNative", "DepthwiseConv2dNative"):
            return [self.conv(node, depthwise=True)]
        if op in _ELEMENTWISE:
            return self.add(_ELEMENTWISE[op], [self.value(i) for i in ins], name)
        if op in _UNARY:
            return self.add(_UNARY[op], [self.value(ins[0])], name)
        if op == "BiasAdd":
            return self.add("Add", [self.value(i) for i in ins], name)
        if op == "Relu6":
            return [self.relu6(self.value(ins[0]), name)]
        if op == "LeakyRelu":
            return self.add("LeakyRelu", [self.value(ins[0])], name, alpha=_attr(node, "alpha", 0.2))
        if op == "Identity":
            return [self.value(ins[0])]
        if op == "Mean":
            axes = [int(a) for a in self.const_value(ins[1]).reshape(-1)]
            return self.add("ReduceMean", [self.value(ins[0])], name, axes=axes,
                            keepdims=int(_attr(node, "keep_dims", False)))
        if op == "ConcatV2":
            axis = int(self.const_value(ins[-1]))
            return self.add("Concat", [self.value(i) for i in ins[:-1]], name, axis=axis)
        if op == "Reshape":
            return self.add("Reshape", [self.value(ins[0]), self.int64(ins[1], name + "/shape")], name)
        if op == "ExpandDims":
            return self.add("Unsqueeze", [self.value(ins[0]), self.int64(ins[1], name + "/axes")], name)
        if op == "Cast":
            return self.add("Cast", [self.value(ins[0])], name, to=_TF_TO_ONNX_DTYPE[_attr(node, "DstT")])
        if op == "TopKV2":
            k = self.int64(ins[1], name + "/k")
            values, indices = self.add("TopK", [self.value(ins[0]), k], name, n_out=2, axis=-1, largest=1, sorted=1)
            return [values, self.add("Cast", [indices], name, to=TensorProto.INT32)[0]]  # TF returns int32
        if op == "GatherV2":
            if _attr(node, "batch_dims", 0):
                raise NotImplementedError(f"{name}: GatherV2 batch_dims")
            return self.add("Gather", [self.value(ins[0]), self.value(ins[1])], name,
                            axis=int(self.const_value(ins[2])))
        if op == "StridedSlice":
            return [self.strided_slice(node)]
        if op == "FloorDiv":
            return [self.floor_div(node)]
        if op == "FloorMod":
            return [self.floor_mod(node)]
        if op == "ResizeBilinear":
            return [self.resize_bilinear(node)]
        if op == "MaxPool":
            return [self.max_pool(node)]
        raise NotImplementedError(f"op {op} ({name}) has no ONNX translation here")


def _needed(model: GraphModel, outputs: list[str]) -> list[dict]:
    """The non-Const nodes the outputs depend on, in a topological order."""
    by_name = {n["name"]: n for n in model.nodes}
    order: list[dict] = []
    seen: set[str] = set()

    def visit(name: str) -> None:  # iterative DFS would be needed past Python's recursion limit
        if name in seen:
            return
        seen.add(name)
        node = by_name[name]
        for ref in node.get("input", []):
            if not ref.startswith("^"):
                visit(_split_ref(ref)[0])
        if node["op"] != "Const":
            order.append(node)
    for out in outputs:
        visit(_split_ref(out)[0])
    return order


def convert_graph(model: GraphModel, inputs: dict[str, str], outputs: dict[str, tuple[str, list[int]]],
                  squeeze_batch: bool = False, doc: str = "") -> onnx.ModelProto:
    """Translate the part of the graph that `outputs` need.

    inputs: TF Placeholder name -> ONNX input name; outputs: TF tensor ref -> (ONNX output name, its
    float32 shape as the ONNX graph returns it). squeeze_batch drops the leading batch axis of 1 from
    every output ([1, N, K] -> [N, K]).
    """
    b = _Builder(model)
    graph_inputs = []
    for tf_name, onnx_name in inputs.items():
        node = model.node(tf_name)
        dims = [int(d["size"]) for d in _attr(node, "shape")["shape"]["dim"]]
        graph_inputs.append(helper.make_tensor_value_info(onnx_name, _TF_TO_ONNX_DTYPE[_attr(node, "dtype")], dims))
        b.alias[f"{tf_name}:0"] = onnx_name
    for node in _needed(model, list(outputs)):
        if node["op"] == "Placeholder":
            if f"{node['name']}:0" not in b.alias:
                raise ValueError(f"placeholder {node['name']} is not among the inputs {list(inputs)}")
            continue
        for i, out in enumerate(b.convert(node)):
            b.alias[f"{node['name']}:{i}"] = out
    graph_outputs = []
    for tf_ref, (onnx_name, shape) in outputs.items():
        src = b.value(tf_ref)
        if squeeze_batch:
            b.nodes.append(helper.make_node("Squeeze", [src, b.const("batch_axis", np.array([0], np.int64))],
                                            [onnx_name], name=onnx_name + "/Squeeze"))
        else:
            b.nodes.append(helper.make_node("Identity", [src], [onnx_name], name=onnx_name + "/Identity"))
        graph_outputs.append(helper.make_tensor_value_info(onnx_name, TensorProto.FLOAT, shape))
    graph = helper.make_graph(b.nodes, "tfjs_graph", graph_inputs, graph_outputs, list(b.inits.values()))
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="montage",
                              doc_string=doc)
    proto.ir_version = 8  # readable by any ONNX Runtime >= 1.10
    onnx.checker.check_model(proto)
    return proto
