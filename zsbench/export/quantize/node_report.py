"""Which quantized nodes of an int8 graph lose the most: the per-node report behind `--keep_fp32`.

The int8 graph and its fp32 source run the same inputs side by side (ONNX Runtime, every
node's tensors exposed as graph outputs), and for each node that computes on int8 inputs the
report gives, as signal-to-quantization-noise ratios (SQNR, dB, higher is better; ONNX
Runtime's `qdq_loss_debug` definition, 20 log10(|x| / |x - x_q|)):

- `activation_db`: its activation inputs before and after their QuantizeLinear/DequantizeLinear
  pair, inside the int8 graph -- the noise this node's own input quantization adds;
- `weight_db`: its weights against their dequantized int8 values;
- `output_db`: its output against the fp32 graph's -- the error accumulated up to it.

Nodes are ranked by their own noise, min(activation_db, weight_db), lowest first: those are
the ones to keep in fp32 (`--keep_fp32 PATTERN`, which the report suggests: the node's module
path where that module holds nothing else, such as one Linear, else the node's name). Sums of squares are accumulated batch by batch, so memory
holds one batch's tensors, never the whole run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zsbench.export.quantize.calibration import Feed
from zsbench.export.nodes import graph_nodes
from zsbench.models.export_spec import NodeNames

_DEBUG_SUFFIX = ".node-report.onnx"


@dataclass(frozen=True)
class NodeError:
    """One quantized node's errors (SQNR in dB, higher is better; None where it has no such input)."""

    node: str
    op_type: str
    module: str
    keep_fp32_pattern: str  # what `--keep_fp32` takes to keep this node in fp32: its module if only its own ops are in it, else its name
    activation_db: float | None
    weight_db: float | None
    output_db: float | None

    @property
    def own_db(self) -> float:
        """The noise this node's own quantization adds: its worst input SQNR."""
        return min(value for value in (self.activation_db, self.weight_db, math.inf) if value is not None)

    def describe(self) -> str:
        def db(value: float | None) -> str:
            return f"{value:.1f} dB" if value is not None else "-"

        where = f", {self.module}" if self.module else ""
        return (f"{self.node} ({self.op_type}{where}): input activations {db(self.activation_db)}, weights {db(self.weight_db)}, "
                f"output vs fp32 {db(self.output_db)}")


@dataclass(frozen=True)
class NodeErrorReport:
    """Every quantized node of one graph, worst (lowest own SQNR) first."""

    graph: str
    samples: int
    nodes: tuple[NodeError, ...]

    def worst(self, count: int) -> tuple[NodeError, ...]:
        return self.nodes[:count]

    def keep_fp32_hint(self, count: int = 3) -> str:
        """The `--keep_fp32` options that would keep the `count` worst nodes in fp32."""
        patterns = dict.fromkeys(node.keep_fp32_pattern for node in self.worst(count))
        return " ".join(f"--keep_fp32 '{pattern}'" for pattern in patterns)

    def summary(self, count: int = 5) -> str:
        lines = [f"{self.graph}: the {min(count, len(self.nodes))} quantized nodes with the most quantization noise "
                 f"(of {len(self.nodes)}, on {self.samples} samples; SQNR, higher is better):"]
        lines += [f"  {node.describe()}" for node in self.worst(count)]
        lines.append(f"  to keep them in fp32, re-export with {self.keep_fp32_hint(count)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"graph": self.graph, "samples": self.samples, "nodes": [asdict(node) for node in self.nodes]}


def _sqnr_db(signal: float, noise: float) -> float:
    """20 log10(|x| / |x - y|) from the two squared norms (ONNX Runtime's `qdq_loss_debug` definition, same floor)."""
    epsilon = float(np.finfo(np.float32).eps)
    return 20 * math.log10(max(math.sqrt(signal), epsilon) / max(math.sqrt(noise), epsilon))


@dataclass(frozen=True)
class _QuantizedInput:
    node: str
    pre: str | None  # activation tensor before QuantizeLinear (None for a weight)
    post: str  # DequantizeLinear output the node reads
    weight: str | None  # float initializer name, for a weight


def _quantized_inputs(model: Any) -> list[_QuantizedInput]:
    """For every node reading a DequantizeLinear output: what was quantized (an activation or a weight)."""
    from onnxruntime.quantization.quant_utils import TENSOR_NAME_QUANT_SUFFIX

    producers = {out: node for node in model.graph.node for out in node.output}
    initializers = {tensor.name for tensor in model.graph.initializer}
    found = []
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        for name in node.input:
            dequantize = producers.get(name)
            if dequantize is None or dequantize.op_type != "DequantizeLinear":
                continue
            source = dequantize.input[0]
            quantize = producers.get(source)
            if quantize is not None and quantize.op_type == "QuantizeLinear":
                found.append(_QuantizedInput(node.name, quantize.input[0], name, None))
            elif source in initializers:
                found.append(_QuantizedInput(node.name, None, name, source.removesuffix(TENSOR_NAME_QUANT_SUFFIX)))
    return found


def _tensor(model: Any, name: str, folder: Path) -> np.ndarray:
    """One initializer as an array, its external data read into a copy (the model stays without its weights)."""
    import onnx
    from onnx.external_data_helper import load_external_data_for_tensor, uses_external_data

    tensor = onnx.TensorProto()
    tensor.CopyFrom(next(t for t in model.graph.initializer if t.name == name))
    if uses_external_data(tensor):
        load_external_data_for_tensor(tensor, str(folder))
    return onnx.numpy_helper.to_array(tensor)


def _weight_db(qdq_model: Any, quantized: _QuantizedInput, float_model: Any, folders: tuple[Path, Path]) -> float:
    """SQNR of a float weight against its DequantizeLinear(int8) values."""
    producers = {out: node for node in qdq_model.graph.node for out in node.output}
    dequantize = producers[quantized.post]
    values = _tensor(qdq_model, dequantize.input[0], folders[1]).astype(np.float64)
    scale = _tensor(qdq_model, dequantize.input[1], folders[1]).astype(np.float64)
    zero = _tensor(qdq_model, dequantize.input[2], folders[1]).astype(np.float64) if len(dequantize.input) > 2 else np.zeros_like(scale)
    axis = next((attribute.i for attribute in dequantize.attribute if attribute.name == "axis"), 1)
    if scale.ndim == 1 and scale.size > 1:  # per channel: broadcast along `axis`
        shape = [1] * values.ndim
        shape[axis] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    weight = _tensor(float_model, quantized.weight, folders[0]).astype(np.float64)
    dequantized = (values - zero) * scale
    return _sqnr_db(float((weight**2).sum()), float(((weight - dequantized) ** 2).sum()))


def _session_with_outputs(model: Any, names: Sequence[str], path: Path) -> Any:
    """An ONNX Runtime session of `model` that also returns `names`; the proto is saved beside the
    graph (`path`) so that its external data resolves, and removed once the session holds it."""
    import onnx
    import onnxruntime

    inferred = onnx.shape_inference.infer_shapes(model)
    types = {info.name: info.type.tensor_type.elem_type for info in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)}
    augmented = onnx.ModelProto()
    augmented.CopyFrom(model)
    present = {output.name for output in augmented.graph.output}
    for name in names:
        if name not in present:
            augmented.graph.output.append(onnx.helper.make_tensor_value_info(name, types.get(name, onnx.TensorProto.FLOAT), None))
    debug_path = path.with_name(path.stem + _DEBUG_SUFFIX)
    onnx.save(augmented, str(debug_path))
    try:
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # No fusions: every tensor named in the graph must exist at run time.
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        return onnxruntime.InferenceSession(str(debug_path), options, providers=["CPUExecutionProvider"])
    finally:
        debug_path.unlink()


def node_error_report(float_graph: Path, int8_graph: Path, feeds: Sequence[Feed], graph: str) -> NodeErrorReport:
    """Ranks the quantized nodes of `int8_graph` by the quantization noise they add (module docstring).

    Args:
        float_graph: the fp32 graph `int8_graph` was quantized from.
        int8_graph: its quantized Q/DQ graph (`quantize_onnxruntime`, `quantize_modelopt`).
        feeds: inputs to run (a few batches are enough; they need not be calibration samples).
        graph: the graph's name for the report (``vision``, ``text``).
    """
    import onnx

    float_model = onnx.load(str(float_graph), load_external_data=False)
    int8_model = onnx.load(str(int8_graph), load_external_data=False)
    quantized = _quantized_inputs(int8_model)
    nodes = sorted({item.node for item in quantized}, key=[n.name for n in int8_model.graph.node].index)
    float_names = {name for node in float_model.graph.node for name in node.output}
    outputs = {node: next(n for n in int8_model.graph.node if n.name == node).output[0] for node in nodes}
    compared = [name for name in outputs.values() if name in float_names]
    activations = [item for item in quantized if item.pre is not None]
    float_session = _session_with_outputs(float_model, compared, float_graph)
    int8_session = _session_with_outputs(int8_model, [*compared, *{a.pre for a in activations}, *{a.post for a in activations}], int8_graph)

    sums: dict[tuple[str, str], list[float]] = {}  # (kind, name) -> [signal, noise] squared norms

    def add(key: tuple[str, str], reference: np.ndarray, value: np.ndarray) -> None:
        reference, value = reference.astype(np.float64), value.astype(np.float64)
        total = sums.setdefault(key, [0.0, 0.0])
        total[0] += float((reference**2).sum())
        total[1] += float(((reference - value) ** 2).sum())

    samples = 0
    for feed in feeds:
        samples += len(next(iter(feed.values())))
        float_values = dict(zip([o.name for o in float_session.get_outputs()], float_session.run(None, dict(feed))))
        int8_values = dict(zip([o.name for o in int8_session.get_outputs()], int8_session.run(None, dict(feed))))
        for name in compared:
            add(("output", name), float_values[name], int8_values[name])
        for item in activations:
            add(("activation", item.post), int8_values[item.pre], int8_values[item.post])

    names: dict[str, NodeNames] = {node.name: node for node in graph_nodes(float_graph)}
    # A module that encloses other modules (a whole layer) would keep all of them in fp32: name the node instead.
    enclosing = {module for node in names.values() for module in node.modules[:-1]}
    folders = (float_graph.parent, int8_graph.parent)
    report = []
    for node in nodes:
        inputs = [item for item in quantized if item.node == node]
        activation = [_sqnr_db(*sums[("activation", item.post)]) for item in inputs if item.pre is not None]
        weight = [_weight_db(int8_model, item, float_model, folders) for item in inputs if item.weight is not None]
        output = sums.get(("output", outputs[node]))
        described = names.get(node)
        module = described.module if described else ""
        report.append(NodeError(
            node=node,
            op_type=described.op_type if described else next(n.op_type for n in int8_model.graph.node if n.name == node),
            module=module,
            keep_fp32_pattern=module if module and module not in enclosing else node,
            activation_db=min(activation) if activation else None,
            weight_db=min(weight) if weight else None,
            output_db=_sqnr_db(*output) if output else None,
        ))
    report.sort(key=lambda node: node.own_db)
    return NodeErrorReport(graph, samples, tuple(report))
