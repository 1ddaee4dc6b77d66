"""A family's policy for a quantized precision (`zsbench.models.export_spec.PrecisionPolicy`) applied to one saved graph.

The quantizer is offered the nodes of the op types `PrecisionPolicy.quantize` names (every type it
supports when it names none), minus those a `KeepInFloat` rule selects. A rule selects by op type,
by a regular expression over the modules a node was traced inside, and by an `fnmatch` pattern over
the node's names (`zsbench.export.nodes`): its own name (``node_linear_27``), its modules
(``model.qllama.model.layers.3.mlp.down_proj`` and every enclosing one) and its weights
(``model.text_projection``). So ``--keep_fp32 '*.mlp.down_proj'`` keeps every MLP down projection in
fp32, and ``'*layers.3.*'`` a whole layer. Ops whose type is not quantized (norms, softmax or
``Attention``, ``RotaryEmbedding``, ``Gelu``...) compute in fp32 whatever the rules say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from zsbench.errors import ExportError
from zsbench.export.nodes import graph_nodes
from zsbench.models.export_spec import KeepInFloat, NodeNames, PrecisionPolicy, Quantization


@dataclass(frozen=True)
class ResolvedPolicy:
    """A policy applied to one graph: the nodes offered to the quantizer, and those its rules keep in fp32."""

    policy: PrecisionPolicy
    quantization: Quantization
    candidates: tuple[NodeNames, ...]
    excluded: dict[str, KeepInFloat] = field(default_factory=dict)  # node name -> the first rule that selected it

    @property
    def quantized(self) -> tuple[str, ...]:
        """The nodes offered to the quantizer."""
        return tuple(node.name for node in self.candidates if node.name not in self.excluded)

    def describe(self, graph: str) -> tuple[str, ...]:
        """Policy lines: how many nodes are quantized, how many of this graph each rule kept in fp32, and the notes
        (each quantizer puts its own settings first)."""
        op_types = "/".join(sorted({node.op_type for node in self.candidates})) or "quantizable"
        lines = [f"quantized {len(self.quantized)} of {len(self.candidates)} {op_types} nodes"]
        for rule in self.policy.keep:
            count = sum(1 for matched in self.excluded.values() if matched is rule)
            lines.append(f"fp32: {rule.describe()} ({count} nodes)")
        lines += [f"fp32: {line}" for line in self.policy.lines(graph)]
        return tuple(lines)


def quantizable_op_types() -> tuple[str, ...]:
    """Every op type ONNX Runtime's `quantize_static` quantizes when given none."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return tuple(sorted(set(QDQRegistry) | set(QLinearOpsRegistry)))


def resolve_policy(graph: Path, policy: PrecisionPolicy, precision: str) -> ResolvedPolicy:
    """Matches `policy` against the nodes of the saved graph `graph`.

    Raises:
        ExportError: the family declares nothing to quantize at `precision`.
    """
    if policy.quantize is None:
        raise ExportError(f"This model's family declares no {precision} policy (what is quantized, what stays in fp32), so "
                          f"its graphs are not quantized to {precision}. Use --precision fp32 or fp16.")
    nodes = graph_nodes(graph)
    op_types = policy.quantize.op_types or quantizable_op_types()
    candidates = tuple(node for node in nodes if node.op_type in op_types)
    excluded: dict[str, KeepInFloat] = {}
    for rule in policy.keep:
        for node in candidates:
            if rule.matches(node):
                excluded.setdefault(node.name, rule)
    return ResolvedPolicy(policy, policy.quantize, candidates, excluded)
