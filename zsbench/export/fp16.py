"""Where an fp16 graph computes in fp32: the explicit casts that keep the original's numerics.

An fp16 graph is exported from the model loaded in fp16, so every cast the PyTorch code makes
is already a `Cast` node in the graph (InternVL's RMSNorm statistics and `.pth` layer scale, rotary
tables computed in fp32); LayerNorm exports as `LayerNormalization` (opset >= 17) whose default
`stash_type=1` keeps mean and variance in fp32, as PyTorch's half LayerNorm does. The family's
fp16 policy (`zsbench.models.export_spec.PrecisionPolicy`) records those as notes.

What PyTorch does in fp32 without a cast in the traced code is added here, by the policy's
`keep` rules: each node they select (fed fp16, optionally inside a module scope) is wrapped in
Cast(fp32) -> node -> Cast(fp16). For example:

- InternVL's QLLaMA attention softmax: the original calls `softmax(..., dtype=torch.float32)`,
  while zsbench's eager model uses `scaled_dot_product_attention` (fp32-accumulating kernels).
  In the graph the decomposed `Softmax` would run in fp16. The scores feeding it stay fp16,
  exactly as in the original. (At opset >= 23 attention is one `Attention` node: its
  `softmax_precision` is set to fp32 instead.)
- fp16 reductions (pooling means, L2 norms): PyTorch accumulates half reductions in fp32 and
  rounds the result; a strongly typed engine would accumulate in fp16 and can overflow.

Since TensorRT 11 engines are built strongly typed, the engine computes exactly these types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zsbench.errors import ExportError
from zsbench.export.nodes import SCOPES_KEY, ir_node_names

if TYPE_CHECKING:
    import onnx_ir as ir
    from torch import nn

    from zsbench.models.export_spec import KeepInFloat, PrecisionPolicy

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


def _selected(graph: ir.Graph, rule: KeepInFloat) -> list[ir.Node]:
    """The nodes `rule` keeps in fp32: fed fp16, and selected by the rule (op type, scope, names)."""
    import onnx_ir as ir

    return [node for node in graph if node.inputs[0] is not None and node.inputs[0].dtype == ir.DataType.FLOAT16
            and rule.matches(ir_node_names(node))]


def apply_fp16_policy(model: ir.Model, policy: PrecisionPolicy, source: nn.Module, graph_name: str) -> tuple[str, ...]:
    """Adds the policy's fp32 islands to the fp16 `ir.Model` of graph `graph_name` (traced from `source`), in place.

    Returns:
        The policy lines recorded in the manifest: the policy's notes, then one line per rule that selected nodes.

    Raises:
        ExportError: a rule expects another number of nodes than the graph holds (the exporter did not record
            module scopes, as torch >= 2.6 does, so the nodes cannot be told apart); the graph is not written.
    """
    import onnx_ir as ir

    graph = model.graph
    lines = list(policy.lines(graph_name))
    for rule in policy.keep:
        nodes = _selected(graph, rule)
        expected = rule.expected(source, graph_name) if rule.expected is not None else None
        if expected is not None and len(nodes) != expected:
            raise ExportError(
                f"Expected {expected} node(s) of {rule.what} ({' or '.join(rule.op_types)}) in the fp16 {graph_name} graph, "
                f"found {len(nodes)}: this torch.onnx exporter does not record module scopes ('{SCOPES_KEY}') as "
                "torch >= 2.6 does, so they cannot be placed. Use a supported torch, or --precision fp32."
            )
        for node in nodes:
            if node.op_type == "Attention":  # opset >= 23: the node's own softmax precision says the same thing
                node.attributes["softmax_precision"] = ir.AttrInt64("softmax_precision", ir.DataType.FLOAT.value)
            else:
                _compute_in_fp32(graph, node)
        if nodes:
            lines.append(f"{rule.what} ({len(nodes)} nodes), {rule.why}")
    return tuple(lines)
