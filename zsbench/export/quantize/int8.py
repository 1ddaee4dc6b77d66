"""Static int8 quantization of one fp32 ONNX graph with ONNX Runtime's own quantizer.

`quantize_graph` runs `onnxruntime.quantization.quantize_static`: QDQ format, weights int8
per output channel and symmetric, activations calibrated on real model inputs (uint8 with a
zero point by default: x86 VNNI's u8 x s8 product; `Int8Settings(activations="int8")` gives
symmetric int8), the nodes the policy keeps in fp32 excluded. Graphs keep their weights as
external data whatever their size (`use_external_data_format=True`), so graphs over 2 GB work.

Deliberate departures from ONNX Runtime's defaults, each for a measured reason:

- `quant_pre_process` is not run. Its symbolic shape inference asserts on opset 23's
  `Attention` (it takes it for the com.microsoft contrib op of the same name), and its
  optimisation pass leaves zsbench's graphs as they are (same ops, same counts: the export
  already folds and fuses). ONNX shape inference, which quantization needs, runs inside
  `quantize_static` by path, which works with external data.
- Calibration ranges are merged batch by batch (`CalibStridedMinMax=1`, which despite its
  name strides every calibration method): memory holds one batch's activations, and the
  per-batch shapes may differ (text lengths), which ONNX Runtime 1.32's histogram
  collectors cannot stack. `CalibMaxIntermediateOutputs` is not used: in ONNX Runtime 1.32 it
  drops the collected batches instead of merging them (microsoft/onnxruntime#18893).
- ONNX Runtime writes (and removes) a shape-inferred copy of its input's proto beside it,
  `<name>-inferred.onnx`, so the source's folder must be writable. onnx refuses external data
  reached through a symbolic or hard link, so a private linked copy is not an option; the int8
  export quantizes the fp32 graph it has just written into its own staging folder.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from zsbench.errors import ExportError
from zsbench.export.quantize.calibration import CalibrationRecord, Feed, FeedReader
from zsbench.export.quantize.policy import ResolvedPolicy, resolve_policy
from zsbench.models.precision_policy import Int8Policy

Log = Callable[[str], None]
_CALIBRATION_METHODS = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}


@dataclass(frozen=True)
class Int8Settings:
    """How activations are quantized and calibrated (weights are always int8, per channel, symmetric)."""

    activations: Literal["uint8", "int8"] = "uint8"
    calibration_method: Literal["minmax", "percentile", "entropy"] = "minmax"

    def describe(self) -> str:
        activations = "uint8 with a zero point" if self.activations == "uint8" else "int8 symmetric"
        return (f"static QDQ (onnxruntime.quantization.quantize_static): weights int8 per channel, symmetric; "
                f"activations {activations}, calibrated ({self.calibration_method})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class QuantizedGraph:
    """What an int8 graph is, for its manifest: file, how it was made, what it quantized and on what it was calibrated."""

    file: str
    settings: Int8Settings
    policy: tuple[str, ...]  # the resolved policy's lines (graph_policy)
    kept_fp32: dict[str, str]  # node -> the rule's reason, for nodes the policy excluded
    quantized: tuple[str, ...]  # nodes that read int8 (dequantized) inputs in the written graph
    calibration: CalibrationRecord
    onnxruntime: str
    seconds: float

    def graph_policy(self) -> tuple[str, ...]:
        """The manifest's `graph_policy` lines for this graph."""
        return (self.settings.describe(), *self.policy, f"calibrated on {self.calibration.name}: "
                f"{self.calibration.samples} samples, sha256 {self.calibration.sha256[:16]}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["calibration"] = self.calibration.to_dict()
        data["quantized"] = list(self.quantized)
        return data


class _QuietPreprocessAdvice(logging.Filter):
    """Drops ONNX Runtime's advice to run `quant_pre_process`, which is skipped on purpose (module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-process" not in record.getMessage() and "pre_process" not in record.getMessage()


def dequantized_consumers(graph: Path) -> tuple[str, ...]:
    """The nodes of a QDQ graph that read a `DequantizeLinear` output: the ones that compute on int8 inputs."""
    import onnx

    model = onnx.load(str(graph), load_external_data=False)
    dequantized = {out for node in model.graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    return tuple(
        node.name for node in model.graph.node
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") and any(name in dequantized for name in node.input)
    )


def quantize_graph(
    source: Path,
    output: Path,
    feeds: Sequence[Feed],
    policy: Int8Policy,
    *,
    calibration_name: str,
    settings: Int8Settings = Int8Settings(),
    log: Log = lambda message: None,
) -> QuantizedGraph:
    """Quantizes the fp32 graph `source` to `output` (+ `output.data`), calibrated on `feeds`.

    Args:
        source: an fp32 graph (its weights may be external data).
        output: where to write the int8 graph; not `source`, and its folder must exist.
        feeds: calibration batches, each a dict of the graph's input name -> array.
        policy: what is quantized and what stays in fp32 (with any `--keep_fp32` rules added).
        calibration_name: what the feeds are, for the manifest.
        settings: activation type and calibration method.

    Raises:
        ExportError: no calibration feeds, output == source, a `--keep_fp32` pattern matching
            nothing, or ONNX Runtime failing to quantize the graph.
    """
    from onnxruntime import __version__ as ort_version
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if not feeds:
        raise ExportError(f"No calibration data for {source.name}: expected at least one batch of inputs.")
    if output.resolve() == source.resolve():
        raise ExportError(f"The int8 graph would overwrite its fp32 source {source}; write it to another folder.")
    resolved: ResolvedPolicy = resolve_policy(source, policy)
    start = time.perf_counter()
    log(f"  {source.name}: quantizing {len(resolved.quantized)} of {len(resolved.candidates)} nodes, "
        f"calibrating on {len(feeds)} batches")
    quiet = _QuietPreprocessAdvice()
    logging.getLogger().addFilter(quiet)
    try:
        quantize_static(
            str(source),
            str(output),
            FeedReader(feeds),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(policy.quantize_op_types) or None,
            per_channel=True,
            reduce_range=False,
            activation_type=QuantType.QUInt8 if settings.activations == "uint8" else QuantType.QInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=list(resolved.excluded),
            use_external_data_format=True,
            calibrate_method=getattr(CalibrationMethod, _CALIBRATION_METHODS[settings.calibration_method]),
            extra_options={
                "CalibStridedMinMax": 1,
                "WeightSymmetric": True,
                "ActivationSymmetric": settings.activations == "int8",
                "OpTypesToExcludeOutputQuantization": list(policy.fp32_outputs),
            },
        )
    except (ValueError, RuntimeError, KeyError, TypeError) as err:  # ONNX Runtime's quantizer raises these untyped
        raise ExportError(f"ONNX Runtime {ort_version} could not quantize {source}: {type(err).__name__}: {err}") from err
    finally:
        logging.getLogger().removeFilter(quiet)
    # onnx writes the external data file private (0600); give it the permissions of the fp32 graph's.
    for made, model in ((output, source), (output.with_name(output.name + ".data"), source.with_name(source.name + ".data"))):
        if made.exists() and model.exists():
            shutil.copymode(model, made)
    return QuantizedGraph(
        file=output.name,
        settings=settings,
        policy=resolved.describe(),
        kept_fp32={node: rule.reason for node, rule in resolved.excluded.items()},
        quantized=dequantized_consumers(output),
        calibration=CalibrationRecord.of(calibration_name, feeds),
        onnxruntime=ort_version,
        seconds=round(time.perf_counter() - start, 2),
    )
