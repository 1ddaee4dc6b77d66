"""Where an fp16 graph computes in fp32: the explicit casts that keep the original's numerics.

An fp16 graph is exported from the model loaded in fp16, so every cast the PyTorch code
makes is already a `Cast` node in the graph:

- RMSNorm statistics in fp32 (`layers.RMSNorm`, InternViT and QLLaMA, as the originals);
- layer scale multiplied in fp32 for `.pth` checkpoints (`LayerScale(force_fp32=True)`);
- rotary cos/sin tables computed in fp32, then cast;
- LayerNorm (the attention-pooling heads) exports as `LayerNormalization` (opset >= 17) whose
  default `stash_type=1` keeps mean and variance in fp32, as PyTorch's half LayerNorm does.

Two things PyTorch does in fp32 are invisible in the traced code and are added here:

- QLLaMA's attention softmax: the original calls `softmax(..., dtype=torch.float32)`, while
  zsbench's eager model uses `scaled_dot_product_attention` (fp32-accumulating kernels). In
  the graph the decomposed `Softmax` would run in fp16, so it is wrapped in Cast(fp32) ->
  Softmax -> Cast(fp16). The scores feeding it stay fp16, exactly as in the original. (At
  opset >= 23 attention is one `Attention` node: its `softmax_precision` is set to fp32.)
  InternViT's and the pooling heads' softmax stay fp16, as in the original.
- fp16 reductions (the pooling heads' mean over tokens, InternVL-G's L2 norms): PyTorch
  accumulates half reductions in fp32 and rounds the result; a strongly typed engine would
  accumulate in fp16 and can overflow (a sum over 257 tokens of InternViT-6B's large
  activations exceeds 65504). They get the same Cast(fp32) -> op -> Cast(fp16) wrapping.

Since TensorRT 11 engines are built strongly typed, the engine computes exactly these types.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from zsbench.errors import ExportError

if TYPE_CHECKING:
    import onnx_ir as ir

_REDUCTIONS = frozenset({"ReduceMean", "ReduceSum", "ReduceL2", "ReduceL1", "ReduceSumSquare", "ReduceLogSumExp"})
_QLLAMA_SCOPE = re.compile(r"(^|\.)qllama(\.|$)")
_SCOPES_KEY = "pkg.torch.onnx.name_scopes"

BASE_POLICY = (
    "weights and activations fp16",
    "RMSNorm statistics in fp32 (Cast in the model code, as the original)",
    "rotary cos/sin computed in fp32, then cast to fp16",
    "LayerNormalization (opset >= 17) with stash_type=1: mean and variance in fp32",
)
PTH_LAYER_SCALE = "layer scale multiplied in fp32 (.pth checkpoint, LayerScale(force_fp32=True))"


def _in_qllama(node: ir.Node) -> bool:
    scopes = node.metadata_props.get(_SCOPES_KEY)
    if not scopes:
        return False
    return any(_QLLAMA_SCOPE.search(scope) for scope in ast.literal_eval(scopes))


def _compute_in_fp32(graph: ir.Graph, node: ir.Node) -> None:
    """Rewrites `x -> node -> y` (fp16) into `x -> Cast(fp32) -> node -> Cast(fp16) -> y`."""
    import onnx_ir as ir

    source = node.inputs[0]
    assert source is not None and source.dtype == ir.DataType.FLOAT16
    cast_in = ir.node("Cast", [source], {"to": ir.DataType.FLOAT}, name=f"{node.name}_in_fp32")
    cast_in.outputs[0].dtype = ir.DataType.FLOAT
    cast_in.outputs[0].shape = source.shape
    graph.insert_before(node, cast_in)
    node.replace_input_with(0, cast_in.outputs[0])

    result = node.outputs[0]
    uses = list(result.uses())
    cast_out = ir.node("Cast", [result], {"to": ir.DataType.FLOAT16}, name=f"{node.name}_out_fp16")
    cast_out.outputs[0].dtype = ir.DataType.FLOAT16
    cast_out.outputs[0].shape = result.shape
    result.dtype = ir.DataType.FLOAT
    graph.insert_after(node, cast_out)
    for consumer, index in uses:
        consumer.replace_input_with(index, cast_out.outputs[0])
    if result.is_graph_output():
        position = list(graph.outputs).index(result)
        name = result.name
        result.name = f"{name}_fp32"
        cast_out.outputs[0].name = name
        graph.outputs[position] = cast_out.outputs[0]


def apply_fp16_policy(model: ir.Model, expected_qllama_softmax: int) -> tuple[str, ...]:
    """Adds the fp32 islands described in the module docstring to an fp16 `ir.Model`, in place.

    Args:
        model: the exported fp16 graph (before saving).
        expected_qllama_softmax: how many QLLaMA attention softmaxes the graph must contain
            (self-attention layers, plus cross-attention layers on InternVL-G's image path).

    Returns:
        The policy lines recorded in the manifest.

    Raises:
        ExportError: the exporter did not record module scopes, so QLLaMA's softmaxes cannot
            be told apart; the graph is not written.
    """
    import onnx_ir as ir

    graph = model.graph
    # Below opset 23 attention is decomposed (MatMul, Softmax, MatMul); from 23 on it is one
    # `Attention` node whose `softmax_precision` attribute says the same thing.
    softmaxes = [n for n in graph if n.op_type in ("Softmax", "Attention") and _in_qllama(n)]
    reductions = [
        n for n in graph if n.op_type in _REDUCTIONS and n.inputs[0] is not None and n.inputs[0].dtype == ir.DataType.FLOAT16
    ]
    if len(softmaxes) != expected_qllama_softmax:
        raise ExportError(
            f"Expected {expected_qllama_softmax} QLLaMA attention (Softmax or Attention) nodes in the fp16 graph, found "
            f"{len(softmaxes)}: this torch.onnx exporter does not record module scopes ('{_SCOPES_KEY}') as "
            "torch >= 2.6 does, so the fp32 softmax cannot be placed. Use a supported torch, or --precision fp32."
        )
    for node in softmaxes:
        if node.op_type == "Attention":
            node.attributes["softmax_precision"] = ir.AttrInt64("softmax_precision", ir.DataType.FLOAT.value)
        else:
            _compute_in_fp32(graph, node)
    for node in reductions:
        _compute_in_fp32(graph, node)
    policy = list(BASE_POLICY)
    if softmaxes:
        policy.append(f"QLLaMA attention softmax in fp32 ({len(softmaxes)} nodes), as the original's softmax(dtype=float32)")
    if reductions:
        kinds = sorted({n.op_type for n in reductions})
        policy.append(
            f"fp16 reductions accumulate in fp32 ({len(reductions)} nodes: {', '.join(kinds)}), as PyTorch's half reductions do"
        )
    return tuple(policy)
