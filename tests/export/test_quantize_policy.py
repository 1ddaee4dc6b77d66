"""Precision policies matched against a graph: node names, traced module paths, weight names, op types."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from zsbench.errors import ExportError
from zsbench.export.quantize.policy import resolve_policy
from zsbench.models.families.internvl_int8 import INTERNVL_INT8_POLICY
from zsbench.models.precision_policy import Int8Policy, KeepFp32

SCOPES = "pkg.torch.onnx.name_scopes"


def _node(op: str, inputs: list[str], output: str, name: str, scopes: list[str] | None) -> onnx.NodeProto:
    node = helper.make_node(op, inputs, [output], name=name)
    if scopes is not None:
        entry = node.metadata_props.add()
        entry.key, entry.value = SCOPES, repr(scopes)
    return node


@pytest.fixture()
def graph(tmp_path: Path) -> Path:
    """x -> fc1 (MatMul in blocks.0.mlp.fc1) -> fc2 (blocks.0.mlp.fc2) -> head (@ model.text_projection) -> Softmax."""
    weights = [numpy_helper.from_array(np.ones((4, 4), np.float32), name) for name in ("w1", "w2", "model.text_projection")]
    nodes = [
        _node("MatMul", ["x", "w1"], "h1", "node_linear", ["", "blocks.0", "blocks.0.mlp", "blocks.0.mlp.fc1", "linear"]),
        _node("MatMul", ["h1", "w2"], "h2", "node_linear_1", ["", "blocks.0", "blocks.0.mlp", "blocks.0.mlp.fc2", "linear_1"]),
        _node("MatMul", ["h2", "model.text_projection"], "h3", "node_matmul", ["", "matmul"]),
        _node("Softmax", ["h3"], "y", "node_softmax", None),
    ]
    model = helper.make_model(helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                                                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], weights))
    path = tmp_path / "graph.onnx"
    onnx.save(model, str(path))
    return path


def _kept(graph: Path, *rules: KeepFp32) -> dict[str, str]:
    return {node: rule.pattern for node, rule in resolve_policy(graph, Int8Policy(keep_fp32=rules)).excluded.items()}


def test_rules_match_module_paths_weights_names_and_op_types(graph: Path) -> None:
    assert _kept(graph, KeepFp32("*.mlp.fc2", "m")) == {"node_linear_1": "*.mlp.fc2"}
    assert _kept(graph, KeepFp32("blocks.0.mlp", "enclosing module")) == {"node_linear": "blocks.0.mlp", "node_linear_1": "blocks.0.mlp"}
    assert _kept(graph, KeepFp32("*text_projection*", "weight")) == {"node_matmul": "*text_projection*"}
    assert _kept(graph, KeepFp32("node_linear", "node name")) == {"node_linear": "node_linear"}
    assert _kept(graph, KeepFp32("*", "all softmax", op_type="Softmax")) == {}  # Softmax is not a quantized op type here
    assert _kept(graph, KeepFp32("*", "all MatMul", op_type="MatMul")).keys() == {"node_linear", "node_linear_1", "node_matmul"}


def test_resolved_policy_lists_what_it_quantizes_and_keeps(graph: Path) -> None:
    resolved = resolve_policy(graph, INTERNVL_INT8_POLICY)
    assert resolved.quantized == ("node_linear", "node_linear_1")
    assert [node.name for node in resolved.candidates] == ["node_linear", "node_linear_1", "node_matmul"]
    lines = resolved.describe()
    assert lines[0] == "int8 quantized: 2 of 3 MatMul nodes"
    assert "fp32: final text projection (*text_projection*): 1 nodes" in lines
    everything = resolve_policy(graph, Int8Policy.everything())
    assert "node_softmax" in everything.quantized  # ONNX Runtime quantizes Softmax when no op types are named


def test_user_patterns_must_match_and_policies_round_trip(graph: Path) -> None:
    with pytest.raises(ExportError, match="--keep_fp32 'fc3' matches no quantized node of graph.onnx"):
        resolve_policy(graph, INTERNVL_INT8_POLICY.with_keep_fp32(["fc3"]))
    policy = INTERNVL_INT8_POLICY.with_keep_fp32(["*.fc1"])
    assert Int8Policy.from_dict(policy.to_dict()) == policy
    assert policy.describe()[-1] == "fp32: activations, residual additions and reductions"
    assert "fp32: --keep_fp32 (*.fc1)" in policy.describe()
