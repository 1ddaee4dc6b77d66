"""What a policy rule (`zsbench.models.export_spec.KeepInFloat`) sees of a graph's nodes: their names, read from an
in-memory `onnx_ir` graph (the fp16 pass, before the graph is saved) or from a saved ONNX file (quantization).

The modules a node was traced inside come from the torch exporter's ``pkg.torch.onnx.name_scopes`` metadata
(outermost first; its last entry, the op's own name, is dropped), so ``*.mlp.down_proj`` or a scope regex over
``qllama`` select the same nodes whichever way the graph is read.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

from zsbench.errors import ExportError
from zsbench.models.export_spec import NodeNames

if TYPE_CHECKING:
    import onnx_ir as ir

SCOPES_KEY = "pkg.torch.onnx.name_scopes"


def traced_modules(scopes: str | None) -> tuple[str, ...]:
    """The module paths of a ``name_scopes`` metadata value, outermost first, without the op's own name."""
    if not scopes:
        return ()
    return tuple(scope for scope in ast.literal_eval(scopes)[:-1] if scope)


def ir_node_names(node: ir.Node) -> NodeNames:
    """The names of a node of an in-memory `onnx_ir` graph."""
    weights = tuple(value.name for value in node.inputs if value is not None and value.is_initializer() and value.name)
    return NodeNames(node.name or "", node.op_type, traced_modules(node.metadata_props.get(SCOPES_KEY)), weights)


def graph_nodes(graph: Path) -> list[NodeNames]:
    """Every node of the saved graph `graph` with its names (read without its external weights).

    Raises:
        ExportError: the graph's node names are not unique (rules and quantizers address nodes by name).
    """
    import onnx

    model = onnx.load(str(graph), load_external_data=False)
    initializers = {tensor.name for tensor in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        scopes = next((prop.value for prop in node.metadata_props if prop.key == SCOPES_KEY), None)
        nodes.append(NodeNames(node.name, node.op_type, traced_modules(scopes), tuple(name for name in node.input if name in initializers)))
    if len({node.name for node in nodes}) != len(nodes) or any(not node.name for node in nodes):
        raise ExportError(f"{graph} has unnamed or duplicate node names; quantizing it needs unique names. This is a bug in the export.")
    return nodes
