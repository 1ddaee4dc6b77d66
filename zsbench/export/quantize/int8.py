"""Static int8 quantization of one fp32 ONNX graph with ONNX Runtime's own quantizer.

`quantize_onnxruntime` runs `onnxruntime.quantization.quantize_static`: QDQ format, weights int8
per output channel and symmetric, activations calibrated on real model inputs (uint8 with a
zero point by default: x86 VNNI's u8 x s8 product; a family's `Quantization(activations="int8")`
gives symmetric int8), the nodes the family's policy keeps in fp32 excluded. Graphs keep their weights as
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

What limits the speed (ONNX Runtime 1.32's profiler, the width-768 bench model's vision graph, batch 8, 2
threads): ONNX Runtime fuses every quantized MatMul into one `MatMulIntegerToFloat` (no Q/DQ pair is left
over), and these run 2.8x as fast as the fp32 graph's MatMuls (1.87 s with their `QuantizeLinear`s, against
5.26 s). They are half of the int8 graph's time; the other half (1.6 s) is fp32 work that the fp32 graph does
at the same cost: `Attention` 19%, `BiasGelu` 10%, `RMSNormalization` 5%, `Add` 4%, `Split` 3%, the pooling
head's fp32 MatMuls 2.5%, `Mul` 1%, the patch embedding's `Conv` 1%. So the quantizer's settings move the
graph by a few percent at most, and the ones here are kept for accuracy: per-tensor weights ran no faster
than per-channel ones (within 1%), and `quantize_dynamic` (ranges measured per batch at run time) ran 4%
faster, but it would make an image's embedding depend on the other images of its batch.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from zsbench.errors import ExportError
from zsbench.export.quantize.calibration import CalibrationRecord, CalibrationSet, FeedReader
from zsbench.export.quantize.policy import resolve_policy
from zsbench.export.quantize.record import QuantizedGraph, Quantizer, dequantized_consumers
from zsbench.models.export_spec import GraphIO, PrecisionPolicy

Log = Callable[[str], None]
_CALIBRATION_METHODS = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}


class _QuietPreprocessAdvice(logging.Filter):
    """Drops ONNX Runtime's advice to run `quant_pre_process`, which is skipped on purpose (module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-process" not in record.getMessage() and "pre_process" not in record.getMessage()


def quantize_onnxruntime(
    source: Path,
    output: Path,
    io: GraphIO,
    calibration: CalibrationSet,
    policy: PrecisionPolicy,
    precision: str,
    log: Log = lambda message: None,
) -> QuantizedGraph:
    """Quantizes the fp32 graph `source` (graph `io`) to `output` (+ `output.data`), calibrated on `calibration`.

    Args:
        source: an fp32 graph (its weights may be external data); its folder must be writable.
        output: where to write the int8 graph; not `source`, and its folder must exist.
        io: which graph it is (its name and input).
        calibration: the calibration batches of every graph.
        policy: the family's policy for `precision` (with any `--keep_fp32` rules added).
        precision: the precision quantized to (int8).

    Raises:
        ExportError: output == source, no policy or a `--keep_fp32` pattern matching nothing, or ONNX Runtime
            failing to quantize the graph.
    """
    from onnxruntime import __version__ as ort_version
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if output.resolve() == source.resolve():
        raise ExportError(f"The {precision} graph would overwrite its fp32 source {source}; write it to another folder.")
    resolved = resolve_policy(source, policy, precision)
    settings = resolved.quantization
    feeds = calibration.feeds(io.name, io.input_name)
    start = time.perf_counter()
    log(f"  {source.name}: quantizing {len(resolved.quantized)} of {len(resolved.candidates)} nodes to {precision} with ONNX "
        f"Runtime, calibrating on {len(feeds)} batches")
    quiet = _QuietPreprocessAdvice()
    logging.getLogger().addFilter(quiet)
    try:
        quantize_static(
            str(source),
            str(output),
            FeedReader(feeds),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(settings.op_types) or None,
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
                "OpTypesToExcludeOutputQuantization": list(settings.fp32_outputs),
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
        quantizer=f"onnxruntime {ort_version} quantize_static (QDQ)",
        policy=(*settings.describe(), *resolved.describe(io.name)),
        kept_fp32={node: rule.what for node, rule in resolved.excluded.items()},
        quantized=dequantized_consumers(output),
        calibration=CalibrationRecord.of(calibration.name, feeds),
        seconds=round(time.perf_counter() - start, 2),
    )


def _check_installed() -> None:
    from zsbench.runtime.onnxrt import import_onnxruntime

    import_onnxruntime()


QUANTIZER = Quantizer("onnxruntime.quantization", _check_installed, quantize_onnxruntime)
