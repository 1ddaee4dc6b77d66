"""FP8 and INT8 Q/DQ graphs for TensorRT engines, made by NVIDIA Model Optimizer's ONNX post-training quantization.

`quantize_modelopt` runs `modelopt.onnx.quantization.quantize` on an fp32 graph exported at
opset 18 (what TensorRT builds from; `zsbench.precisions.ENGINE_OPSET`), calibrated on a zsbench
calibration set on ONNX Runtime's CPU provider, with the nodes the family's precision policy
keeps in fp32 excluded. The result is a strongly typed Q/DQ graph: weights and activations of
the quantized ops in fp8 (e4m3) or int8, everything else in fp32, which TensorRT-RTX builds ahead
of time on a CPU-only machine (FP8 only for targets with FP8 hardware: SM 8.9 and 12.x; it
refuses SM 8.6 with "model contains HW-specific datatypes: fp8_e4m3").

Model Optimizer is the `fp8` extra (`pip install 'zsbench[fp8]'`, see pyproject.toml: the
modules its ONNX quantization imports; its own `[onnx]` extra pins onnx and onnxruntime-gpu
versions that clash with zsbench's), and runs in a child process (`_quantize`). Checked with nvidia-modelopt 0.47.0, onnx 1.23 and onnxruntime 1.32 (CPU), no GPU.

Deliberate choices, each for a measured reason:
- calibration method "max": the default "entropy" histogram raises "Too many bins for data range"
  on the text graph, some of whose tensors are constant over every calibration sample;
- the ops left unquantized stay fp32 (`HIGH_PRECISION`), not Model Optimizer's default fp16: with
  fp16 (softmax, norms and attention accumulation included) the demo's INT8 graph failed the gate
  (zero-shot agreement 0.985), with fp32 it passes (1.000), as the ONNX Runtime int8 graph does;
- the quantizer writes into a private folder (it leaves intermediate graphs beside a failed
  output), and the result is saved with zsbench's external-data name (`<graph>.onnx.data`).
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from zsbench.errors import BackendUnavailableError, ExportError
from zsbench.export.quantize.calibration import CalibrationRecord, CalibrationSet
from zsbench.export.quantize.policy import resolve_policy
from zsbench.export.quantize.record import QuantizedGraph, Quantizer, dequantized_consumers
from zsbench.models.export_spec import GraphIO, PrecisionPolicy

Log = Callable[[str], None]
CALIBRATION_METHOD = "max"
HIGH_PRECISION = "fp32"  # what the ops left unquantized compute in (module docstring)
MODES = ("fp8", "int8")  # the precisions Model Optimizer's ONNX quantization makes Q/DQ graphs in
INSTALL = "pip install 'zsbench[fp8]'"


def import_modelopt_quantization() -> Any:
    """`modelopt.onnx.quantization`.

    Raises:
        BackendUnavailableError: in one line, with the pip command, where Model Optimizer is not importable.
    """
    try:
        import modelopt.onnx.quantization as quantization
    except ImportError as err:
        raise BackendUnavailableError(
            f"NVIDIA Model Optimizer is not installed ({err}); it makes the FP8/INT8 Q/DQ graphs TensorRT engines are built "
            f"from: {INSTALL}"
        ) from err
    return quantization


def _quantize(source: str, arguments: dict[str, Any]) -> None:
    """`modelopt.onnx.quantization.quantize(source, **arguments)` (run in a child process: `quantize_modelopt`)."""
    import_modelopt_quantization().quantize(source, **arguments)


def quantize_modelopt(
    source: Path,
    output: Path,
    io: GraphIO,
    calibration: CalibrationSet,
    policy: PrecisionPolicy,
    precision: str,
    log: Log = lambda message: None,
) -> QuantizedGraph:
    """Quantizes the fp32 (opset 18) graph `source` (graph `io`) to a `precision` Q/DQ graph `output` (+ `output.data`).

    Args:
        source: an fp32 graph exported at opset 18.
        output: the Q/DQ graph to write; its folder must exist.
        io: which graph it is (its name and input).
        calibration: the calibration batches of every graph (stacked into one array per input).
        policy: the family's policy for `precision` (its `fp32_outputs` are moot: Model Optimizer places Q/DQ
            pairs on inputs only, as TensorRT expects).
        precision: "fp8" (e4m3) or "int8".

    Raises:
        BackendUnavailableError: Model Optimizer is not installed.
        ExportError: another precision, no policy, or Model Optimizer could not quantize the graph.
    """
    import onnx

    if precision not in MODES:
        raise ExportError(f"Model Optimizer makes {' or '.join(MODES)} Q/DQ graphs, not {precision}.")
    import_modelopt_quantization()
    from modelopt import __version__ as modelopt_version

    resolved = resolve_policy(source, policy, precision)
    samples = calibration.stacked(io.name)
    start = time.perf_counter()
    log(f"  {source.name}: quantizing {len(resolved.quantized)} of {len(resolved.candidates)} nodes to {precision} with "
        f"NVIDIA Model Optimizer {modelopt_version}, calibrating on {len(samples)} samples")
    with tempfile.TemporaryDirectory(prefix=".modelopt-", dir=output.parent) as private:
        written = Path(private) / output.name
        arguments = {
            "quantize_mode": precision,
            "calibration_data": {io.input_name: samples},
            "calibration_method": CALIBRATION_METHOD,
            "calibration_eps": ["cpu"],
            "high_precision_dtype": HIGH_PRECISION,
            "mha_accumulation_dtype": HIGH_PRECISION,
            "op_types_to_quantize": list(resolved.quantization.op_types) or None,
            "nodes_to_exclude": list(resolved.excluded),
            "use_external_data_format": True,
            "output_path": str(written),
            "log_level": "ERROR",
        }
        # In a child process: Model Optimizer patches ONNX Runtime's quantization modules (calibrators, op registries)
        # while it quantizes, after which ONNX Runtime's own quantize_static, in the same process, fails on the
        # demo's graphs ("Quantization parameters are not specified for param mul_27").
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as child:
            try:
                child.submit(_quantize, str(source), arguments).result()
            except (ValueError, RuntimeError, KeyError, AssertionError) as err:  # Model Optimizer raises these untyped
                raise ExportError(f"Model Optimizer {modelopt_version} could not quantize {source} to {precision}: "
                                  f"{type(err).__name__}: {err}") from err
        model = onnx.load(str(written))
    onnx.save(model, str(output), save_as_external_data=True, all_tensors_to_one_file=True, location=output.name + ".data")
    return QuantizedGraph(
        file=output.name,
        quantizer=f"nvidia-modelopt {modelopt_version} ({precision} Q/DQ, calibration '{CALIBRATION_METHOD}', other ops {HIGH_PRECISION})",
        policy=(f"{precision}: weights and activations of the quantized ops, symmetric (Q/DQ pairs on their inputs)", *resolved.describe(io.name)),
        kept_fp32={node: rule.what for node, rule in resolved.excluded.items()},
        quantized=dequantized_consumers(output),
        calibration=CalibrationRecord.of(calibration.name, [{io.input_name: samples}]),
        seconds=round(time.perf_counter() - start, 2),
    )


QUANTIZER = Quantizer("NVIDIA Model Optimizer", import_modelopt_quantization, quantize_modelopt)
