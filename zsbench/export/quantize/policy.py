"""A precision policy (`zsbench.models.precision_policy.Int8Policy`) applied to one ONNX graph.

A rule is an `fnmatch` pattern, optionally limited to one op type; it matches a node when it
matches any of the node's names:

- the node's own name (``node_linear_27``);
- the module it was traced from, as the torch exporter records it in the node's metadata
  (``model.qllama.model.layers.3.mlp.down_proj``), and every enclosing module;
- the names of its weights (initializer inputs, e.g. ``model.text_projection``).

So ``*.mlp.down_proj`` keeps every MLP down projection in fp32, and ``*layers.3.*`` a whole layer.
Ops whose type is not quantized (norms, softmax/``Attention``, ``RotaryEmbedding``, ``Gelu``...)
compute in fp32 whatever the rules say.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zsbench.errors import ExportError
from zsbench.models.precision_policy import USER_REASON, Int8Policy, KeepFp32, describe_rule

_SCOPES_KEY = "pkg.torch.onnx.name_scopes"


@dataclass(frozen=True)
class NodeNames:
    """What a policy rule can match of one node (see the module docstring)."""

    name: str
    op_type: str
    modules: tuple[str, ...] = ()
    weights: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        """The innermost module the node was traced from ('' when the exporter recorded none)."""
        return self.modules[-1] if self.modules else ""

    def names(self) -> tuple[str, ...]:
        return (self.name, *self.modules, *self.weights)

    def label(self) -> str:
        """``name (op, module)``: how reports name the node."""
        where = f", {self.module}" if self.module else ""
        return f"{self.name} ({self.op_type}{where})"


@dataclass(frozen=True)
class ResolvedPolicy:
    """A policy applied to one graph: the nodes offered to the quantizer, and those its rules keep in fp32."""

    policy: Int8Policy
    candidates: tuple[NodeNames, ...]
    excluded: dict[str, KeepFp32] = field(default_factory=dict)  # node name -> the first rule that matched it

    @property
    def quantized(self) -> tuple[str, ...]:
        return tuple(node.name for node in self.candidates if node.name not in self.excluded)

    def describe(self) -> tuple[str, ...]:
        """Manifest lines: the policy, with how many nodes of this graph each rule kept in fp32."""
        op_types = "/".join(sorted({node.op_type for node in self.candidates})) or "quantizable"
        lines = [f"int8 quantized: {len(self.quantized)} of {len(self.candidates)} {op_types} nodes"]
        if self.policy.fp32_outputs:
            lines.append(f"fp32 results of {', '.join(self.policy.fp32_outputs)} (int8 inputs, no rounding of the result)")
        for rule in self.policy.keep_fp32:
            count = sum(1 for matched in self.excluded.values() if matched is rule)
            lines.append(f"fp32: {describe_rule(rule)}: {count} nodes")
        lines += [f"fp32: {line}" for line in self.policy.fp32_ops]
        return tuple(lines)


def _modules(node: Any) -> tuple[str, ...]:
    """The module paths recorded by the torch exporter, outermost first (the op's own name dropped)."""
    for prop in node.metadata_props:
        if prop.key == _SCOPES_KEY:
            scopes = [scope for scope in ast.literal_eval(prop.value) if scope]
            return tuple(scopes[:-1])
    return ()


def graph_nodes(graph: Path) -> list[NodeNames]:
    """Every node of `graph` with its names (the graph is read without its external weights)."""
    import onnx

    model = onnx.load(str(graph), load_external_data=False)
    initializers = {tensor.name for tensor in model.graph.initializer}
    return [
        NodeNames(node.name, node.op_type, _modules(node), tuple(name for name in node.input if name in initializers))
        for node in model.graph.node
    ]


def quantizable_op_types() -> tuple[str, ...]:
    """Every op type `quantize_static` quantizes when given none (what `Int8Policy.everything()` offers it)."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return tuple(sorted(set(QDQRegistry) | set(QLinearOpsRegistry)))


def resolve_policy(graph: Path, policy: Int8Policy) -> ResolvedPolicy:
    """Matches `policy` against the nodes of `graph`.

    Raises:
        ExportError: a `--keep_fp32` pattern matches no quantizable node (a typo would otherwise
            silently quantize what the user meant to keep), or the graph's node names are not unique.
    """
    nodes = graph_nodes(graph)
    if len({node.name for node in nodes}) != len(nodes) or any(not node.name for node in nodes):
        raise ExportError(f"{graph} has unnamed or duplicate node names; int8 export needs unique names. This is a bug in the export.")
    op_types = policy.quantize_op_types or quantizable_op_types()
    candidates = tuple(node for node in nodes if node.op_type in op_types)
    excluded: dict[str, KeepFp32] = {}
    for rule in policy.keep_fp32:
        matched = [node for node in candidates if rule.matches(node)]
        if not matched and rule.reason == USER_REASON:
            raise ExportError(
                f"--keep_fp32 {rule.pattern!r} matches no quantized node of {graph.name}. A pattern matches a node's name, "
                f"its module (e.g. '*.mlp.down_proj') or its weights' names; quantized nodes are e.g. "
                f"{', '.join(node.label() for node in candidates[:3])}."
            )
        for node in matched:
            excluded.setdefault(node.name, rule)
    return ResolvedPolicy(policy, candidates, excluded)
