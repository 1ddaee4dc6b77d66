"""An export's quantized graphs: each traced fp32 graph quantized by the precision's quantizer for the export's
target, and, when the parity gate fails, the per-node report of the failing graphs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from zsbench.errors import ExportError
from zsbench.export.manifest import GraphSpec
from zsbench.export.onnx_export import describe_graph
from zsbench.export.parity import ParityReport
from zsbench.export.quantize.calibration import CalibrationSet
from zsbench.export.quantize.node_report import node_error_report
from zsbench.export.quantize.policy import resolve_policy
from zsbench.export.quantize.record import QuantizedGraph, Quantizer
from zsbench.models.export_spec import ExportSpec, PrecisionPolicy

Log = Callable[[str], None]
REPORTED_NODES = 5  # the worst nodes a failing graph's report names
REPORT_BATCHES = 2  # calibration batches the per-node report runs (a few are enough to rank the nodes)


def weight_bytes(graph: Path) -> int:
    """Bytes of a saved graph's initializers (external data lengths, or inline data), read without the weights."""
    import onnx
    from onnx.external_data_helper import uses_external_data

    model = onnx.load(str(graph), load_external_data=False)
    total = 0
    for tensor in model.graph.initializer:
        if uses_external_data(tensor):
            total += int(next((entry.value for entry in tensor.external_data if entry.key == "length"), 0))
        else:
            total += len(tensor.raw_data)
    return total


def check_required_rules(traced: dict[str, Path], policy: PrecisionPolicy, precision: str) -> None:
    """Refuses a required rule (a `--keep_fp32` pattern) that selects no quantizable node in any graph, before any
    graph is quantized (a pattern need only match in one graph: ``*clip_projector*`` is in the vision graph alone).

    Raises:
        ExportError: naming the pattern and example nodes.
    """
    resolved = [resolve_policy(source, policy, precision) for source in traced.values()]
    for rule in policy.keep:
        if rule.required and not any(rule.matches(node) for graph in resolved for node in graph.candidates):
            examples = ", ".join(node.label() for node in resolved[0].candidates[:3])
            raise ExportError(
                f"{rule.what!r} matches no quantized node of {' or '.join(path.name for path in traced.values())}. A pattern "
                f"matches a node's name, its module (e.g. '*.mlp.down_proj') or its weights' names; quantized nodes are "
                f"e.g. {examples}."
            )


def quantize_graphs(
    quantizer: Quantizer, traced: dict[str, Path], folder: Path, spec: ExportSpec, policy: PrecisionPolicy, precision: str,
    calibration: CalibrationSet, log: Log,
) -> tuple[dict[str, GraphSpec], dict[str, QuantizedGraph]]:
    """Quantizes each traced fp32 graph (`traced`: graph name -> file) into `folder` with `quantizer`
    (`PrecisionSpec.quantizer_for`), under the family's `policy` for `precision`.

    Returns:
        The graphs' manifest specs, and what was quantized and on what calibration set.

    Raises:
        ExportError: a `--keep_fp32` pattern matches nothing; the quantizer fails.
    """
    check_required_rules(traced, policy, precision)
    specs: dict[str, GraphSpec] = {}
    records: dict[str, QuantizedGraph] = {}
    for name, source in traced.items():
        record = quantizer.quantize(source, folder / source.name, spec.io(name), calibration, policy, precision, log)
        specs[name] = describe_graph(folder / record.file, weight_bytes(folder / record.file))
        records[name] = record
        log(f"  {record.file}: {len(record.quantized)} nodes quantized, {len(record.kept_fp32)} kept in fp32 by the policy, "
            f"{specs[name].weight_bytes / 2**20:.1f} MiB of weights, {record.seconds:.1f} s")
    return specs, records


def failure_advice(report: ParityReport, traced: dict[str, Path], folder: Path, spec: ExportSpec, calibration: CalibrationSet) -> str:
    """For each graph that failed parity, the quantized nodes with the most quantization noise against the traced
    fp32 graph, and the `--keep_fp32` options that would keep them in fp32 ("" when no graph of its own failed)."""
    failing = [graph.graph for graph in report.graphs if graph.status == "failed" and graph.graph in traced]
    parts = []
    for name in failing:
        io = spec.io(name)
        feeds = calibration.feeds(name, io.input_name)[:REPORT_BATCHES]
        nodes = node_error_report(traced[name], folder / traced[name].name, feeds, name)
        parts.append(nodes.summary(REPORTED_NODES))
    return "\n".join(parts)
