"""Precision policies of quantized precisions matched against a saved graph: node names, traced module paths, weight
names, op types, and whether a node reads weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from zsbench.errors import ExportError
from zsbench.export.quantize.graphs import check_required_rules
from zsbench.export.quantize.policy import resolve_policy
from zsbench.models.export_spec import KeepInFloat, PrecisionPolicy, Quantization
from zsbench.models.families import export_spec

SCOPES = "pkg.torch.onnx.name_scopes"
QUANTIZE = Quantization()  # MatMul and Gemm


def _node(op: str, inputs: list[str], output: str, name: str, scopes: list[str] | None) -> onnx.NodeProto:
    node = helper.make_node(op, inputs, [output], name=name)
    if scopes is not None:
        entry = node.metadata_props.add()
        entry.key, entry.value = SCOPES, repr(scopes)
    return node


@pytest.fixture()
def graph(tmp_path: Path) -> Path:
    """x -> fc1 (blocks.0.mlp.fc1) -> fc2 (blocks.0.mlp.fc2) -> h2 @ h2^T (no weights) -> head (@ model.text_projection) -> Softmax."""
    weights = [numpy_helper.from_array(np.ones((4, 4), np.float32), name) for name in ("w1", "w2", "model.text_projection")]
    nodes = [
        _node("MatMul", ["x", "w1"], "h1", "node_linear", ["", "blocks.0", "blocks.0.mlp", "blocks.0.mlp.fc1", "linear"]),
        _node("MatMul", ["h1", "w2"], "h2", "node_linear_1", ["", "blocks.0", "blocks.0.mlp", "blocks.0.mlp.fc2", "linear_1"]),
        _node("Transpose", ["h2"], "h2t", "node_t", None),
        _node("MatMul", ["h2", "h2t"], "s", "node_scores", ["", "blocks.0", "blocks.0.attn", "matmul_2"]),
        _node("MatMul", ["s", "model.text_projection"], "h3", "node_matmul", ["", "matmul"]),
        _node("Softmax", ["h3"], "y", "node_softmax", None),
    ]
    model = helper.make_model(helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 4])],
                                                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 4])], weights))
    path = tmp_path / "graph.onnx"
    onnx.save(model, str(path))
    return path


def _kept(graph: Path, *rules: KeepInFloat) -> dict[str, str]:
    resolved = resolve_policy(graph, PrecisionPolicy(keep=rules, quantize=QUANTIZE), "int8")
    return {node: rule.what for node, rule in resolved.excluded.items()}


def test_rules_match_module_paths_weight_names_node_names_and_weight_reading(graph: Path) -> None:
    assert _kept(graph, KeepInFloat("m", "", names="*.mlp.fc2")) == {"node_linear_1": "m"}
    assert _kept(graph, KeepInFloat("enclosing", "", names="blocks.0.mlp")) == {"node_linear": "enclosing", "node_linear_1": "enclosing"}
    assert _kept(graph, KeepInFloat("weight", "", names="*text_projection*")) == {"node_matmul": "weight"}
    assert _kept(graph, KeepInFloat("node", "", names="node_linear")) == {"node_linear": "node"}
    assert _kept(graph, KeepInFloat("scope", "", scope=r"\.attn$")) == {"node_scores": "scope"}
    assert _kept(graph, KeepInFloat("products", "", op_types=("MatMul",), reads_weights=False)) == {"node_scores": "products"}
    # Softmax is not a quantized op type of this policy: no rule can select it, none needs to.
    assert _kept(graph, KeepInFloat("softmax", "", op_types=("Softmax",))) == {}


def test_the_resolved_policy_describes_what_it_quantizes_and_what_each_rule_kept(graph: Path) -> None:
    policy = PrecisionPolicy(keep=(KeepInFloat("final text projection", "embedding", names="*text_projection*"),),
                             notes=("norms: not quantized",), quantize=QUANTIZE)
    resolved = resolve_policy(graph, policy, "int8")
    assert resolved.quantized == ("node_linear", "node_linear_1", "node_scores")
    lines = resolved.describe("text")
    assert lines[0] == "quantized 3 of 4 MatMul nodes"
    assert any(line.startswith("fp32: final text projection") and line.endswith("(1 nodes)") for line in lines)
    assert lines[-1] == "fp32: norms: not quantized"
    # No op types named: every type ONNX Runtime quantizes is offered, Softmax included.
    everything = resolve_policy(graph, PrecisionPolicy(quantize=Quantization(op_types=(), fp32_outputs=())), "int8")
    assert "node_softmax" in everything.quantized


def test_keep_fp32_patterns_must_select_a_node_in_some_graph(graph: Path, tmp_path: Path) -> None:
    policy = PrecisionPolicy(quantize=QUANTIZE)
    check_required_rules({"text": graph}, policy.keeping(("*.fc1",)), "int8")  # matches: no error
    with pytest.raises(ExportError, match=r"'--keep_fp32 fc3' matches no quantized node of graph\.onnx"):
        check_required_rules({"text": graph}, policy.keeping(("fc3",)), "int8")
    kept = resolve_policy(graph, policy.keeping(("*.fc1",)), "int8").excluded
    assert list(kept) == ["node_linear"]


def test_a_family_without_a_policy_for_the_precision_is_refused(graph: Path) -> None:
    with pytest.raises(ExportError, match="declares no int8 policy"):
        resolve_policy(graph, PrecisionPolicy(), "int8")


@pytest.mark.parametrize("model_type, model", [("internvl", "internvl_c_retrieval_hf"), ("internvl", "internvl_g_retrieval_hf"),
                                               ("open_clip", "ViT-B-32")])
def test_every_exporting_family_declares_int8_and_fp8_policies_that_keep_the_embedding_heads(model_type: str, model: str) -> None:
    spec = export_spec(model_type, model, "test")
    for precision in ("int8", "fp8"):
        policy = spec.policy(precision)
        assert policy.quantize is not None
        assert any("projection" in rule.what for rule in policy.keep)
