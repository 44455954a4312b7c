"""The int8 graph rewrite on a small hand-built graph (the numerics of the real towers through
onnxruntime-node are tested in test/integration/encoders-int8.test.ts)."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from montage_encoders.quantize import ConvPlan, fold_pads, prepared, prune, quantise_model, quantise_weight


def test_weight_quantisation_is_symmetric_per_channel():
    w = np.array([[0.5, -1.0, 0.25], [2.0, 1.0, -4.0]], dtype=np.float32)  # (K=2, N=3)
    q, scale = quantise_weight(w, 1)
    assert q.dtype == np.int8 and scale.shape == (3,)
    assert np.abs(q).max(axis=0).tolist() == [127, 127, 127]  # each column's largest weight maps to 127
    assert np.all(np.abs(q * scale - w) <= scale / 2 + 1e-7)


def _graph() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(size=4).astype(np.float32), "b1"),
             numpy_helper.from_array(rng.normal(size=(2, 4, 1, 1)).astype(np.float32), "w2"),
             numpy_helper.from_array(rng.normal(size=(2 * 7 * 7, 5)).astype(np.float32), "wm"),
             numpy_helper.from_array(np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64), "pads"),
             numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
             numpy_helper.from_array(np.array(6.0, np.float32), "hi")]
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"], name="pad", mode="constant"),
             helper.make_node("Conv", ["p", "w1", "b1"], ["c1"], name="conv1", strides=[1, 1]),
             helper.make_node("Clip", ["c1", "lo", "hi"], ["a1"], name="relu6"),
             helper.make_node("Conv", ["a1", "w2"], ["c2"], name="conv2"),
             helper.make_node("Flatten", ["c2"], ["f"], name="flat"),
             helper.make_node("MatMul", ["f", "wm"], ["y"], name="mm")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def test_pad_folds_into_the_convolution():
    model = _graph()
    assert fold_pads(model) == 1
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    assert conv.input[0] == "x"
    assert list(next(a for a in conv.attribute if a.name == "pads").ints) == [0, 0, 1, 1]


def test_rewrite_quantises_convolutions_statically_and_matmul_dynamically():
    model = _graph()
    plan = ConvPlan(prepared(model))
    assert plan.tensors() == ["x", "a1", "c2"]  # conv1's ReLU6 is absorbed into its output's range
    q, counts = quantise_model(model, {t: [-1.0, 7.0] for t in plan.tensors()})
    prune(q)
    ops = [n.op_type for n in q.graph.node]
    assert counts == {"Conv": 2, "MatMul": 1, "Gemm": 0}
    assert "Pad" not in ops and "Clip" not in ops
    assert ops.count("QuantizeLinear") == 3 and "MatMulInteger" in ops and "DynamicQuantizeLinear" in ops
    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    assert inits["a1_zp"] == 0 and abs(float(inits["a1_scale"]) - 6.0 / 255) < 1e-7  # capped at 6, starts at 0
    assert inits["conv1_q_w"].dtype == np.int8 and inits["conv1_q_b"].dtype == np.int32
    assert not any(i in inits for i in ("w1", "w2", "wm", "pads", "lo", "hi"))  # float weights are gone
    onnx.checker.check_model(q)
