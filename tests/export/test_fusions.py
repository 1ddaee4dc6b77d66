"""The opset-23 rewrites of `zsbench.export.fusions` on hand-built graphs: what they fold, what they
leave alone, and that ONNX Runtime computes the same values before and after."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
from onnx import TensorProto, helper

from zsbench.export.fusions import rewrite_for_fusion

HEADS, HEAD_DIM, SEQ = 4, 8, 6
WIDTH = HEADS * HEAD_DIM


def _constant(name: str, values: np.ndarray) -> onnx.TensorProto:
    return onnx.numpy_helper.from_array(values, name)


def rope_attention_graph(lower_start: int = 0) -> onnx.ModelProto:
    """q, k = RoPE(x W) in (batch, seq, heads, head_dim); attention over heads-first tensors, as the
    exporter writes it. `lower_start` > 0 shifts the second slice: same shapes, not a rotate-half."""
    half = HEAD_DIM // 2
    frequencies = np.outer(np.arange(SEQ), 1.0 / 10000 ** (np.arange(0, HEAD_DIM, 2) / HEAD_DIM)).astype(np.float32)
    table = np.concatenate([frequencies, frequencies], axis=-1)[:, None, :]  # (seq, 1, head_dim), folded as for static lengths
    rng = np.random.default_rng(0)
    initializers = [
        _constant("cos", np.cos(table)), _constant("sin", np.sin(table)),
        _constant("heads_shape", np.array([0, 0, HEADS, HEAD_DIM], np.int64)),
        _constant("out_shape", np.array([0, 0, WIDTH], np.int64)),
        _constant("end", np.array([2**62], np.int64)), _constant("half", np.array([half], np.int64)),
        _constant("lower", np.array([lower_start], np.int64)), _constant("lower_end", np.array([lower_start + half], np.int64)),
        _constant("last", np.array([3], np.int64)), _constant("step", np.array([1], np.int64)),
    ]
    nodes = []
    for name in ("q", "k", "v"):
        initializers.append(_constant(f"w_{name}", rng.standard_normal((WIDTH, WIDTH)).astype(np.float32)))
        nodes += [helper.make_node("MatMul", ["x", f"w_{name}"], [f"{name}_3d"]),
                  helper.make_node("Reshape", [f"{name}_3d", "heads_shape"], [f"{name}_4d"])]
    for name in ("q", "k"):
        nodes += [
            helper.make_node("Slice", [f"{name}_4d", "half", "end", "last", "step"], [f"{name}_hi"]),
            helper.make_node("Neg", [f"{name}_hi"], [f"{name}_neg"]),
            helper.make_node("Slice", [f"{name}_4d", "lower", "lower_end", "last", "step"], [f"{name}_lo"]),
            helper.make_node("Concat", [f"{name}_neg", f"{name}_lo"], [f"{name}_rot"], axis=-1),
            helper.make_node("Mul", [f"{name}_4d", "cos"], [f"{name}_cos"]),
            helper.make_node("Mul", [f"{name}_rot", "sin"], [f"{name}_sin"]),
            helper.make_node("Add", [f"{name}_cos", f"{name}_sin"], [f"{name}_rope"]),
        ]
    nodes += [helper.make_node("Transpose", [f"{n}_rope" if n != "v" else "v_4d"], [f"{n}_t"], perm=[0, 2, 1, 3]) for n in "qkv"]
    nodes += [helper.make_node("Attention", ["q_t", "k_t", "v_t"], ["attended"]),
              helper.make_node("Transpose", ["attended"], ["attended_t"], perm=[0, 2, 1, 3]),
              helper.make_node("Reshape", ["attended_t", "out_shape"], ["y"])]
    graph = helper.make_graph(nodes, "rope_attention", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", SEQ, WIDTH])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", SEQ, WIDTH])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    return onnx.shape_inference.infer_shapes(model, data_prop=True)


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _rewritten(model: onnx.ModelProto) -> tuple[onnx.ModelProto, tuple[str, ...]]:
    graph = ir.from_proto(model)
    done = rewrite_for_fusion(graph)
    rewritten = ir.to_proto(graph)
    onnx.checker.check_model(rewritten, full_check=True)
    return rewritten, done


def test_rope_and_head_transposes_fold_into_opset_23_ops_with_the_same_values() -> None:
    model = rope_attention_graph()
    rewritten, done = _rewritten(model)
    ops = [node.op_type for node in rewritten.graph.node]
    assert ops.count("RotaryEmbedding") == 2 and ops.count("Attention") == 1
    assert not {"Neg", "Slice", "Concat", "Transpose", "Sin", "Cos"} & set(ops)
    (attention,) = [node for node in rewritten.graph.node if node.op_type == "Attention"]
    assert {a.name: a.i for a in attention.attribute if a.name.endswith("num_heads")} == {"q_num_heads": HEADS, "kv_num_heads": HEADS}
    assert len(done) == 2 and "(2 nodes)" in done[0] and "(1 nodes)" in done[1]
    x = np.random.default_rng(1).standard_normal((3, SEQ, WIDTH)).astype(np.float32)
    np.testing.assert_allclose(_run(rewritten, x), _run(model, x), rtol=1e-5, atol=1e-5)


def test_a_rope_lookalike_is_left_alone() -> None:
    # cat(-x[..., 4:], x[..., 1:5]) is not rotate-half: no RotaryEmbedding may replace it.
    model = rope_attention_graph(lower_start=1)
    rewritten, _ = _rewritten(model)
    ops = [node.op_type for node in rewritten.graph.node]
    assert "RotaryEmbedding" not in ops and ops.count("Neg") == 2
    x = np.random.default_rng(2).standard_normal((2, SEQ, WIDTH)).astype(np.float32)
    np.testing.assert_allclose(_run(rewritten, x), _run(model, x), rtol=1e-5, atol=1e-5)
