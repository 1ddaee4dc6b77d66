"""FP8 and INT8 Q/DQ graphs for TensorRT engines, made by NVIDIA Model Optimizer's ONNX post-training quantization.

`modelopt_quantize_graph` runs `modelopt.onnx.quantization.quantize` on an fp32 graph exported at
opset 18 (what TensorRT builds from; `zsbench.export.onnx_export.FP16_OPSET`), calibrated on a
zsbench calibration set on ONNX Runtime's CPU provider, with the nodes the precision policy
keeps in fp32 excluded. The result is a strongly typed Q/DQ graph: weights and activations of
the quantized ops in fp8 (e4m3) or int8, everything else in fp16, which TensorRT-RTX builds ahead
of time on a CPU-only machine (FP8 only for targets with FP8 hardware: SM 8.9 and 12.x; it
refuses SM 8.6 with "model contains HW-specific datatypes: fp8_e4m3").

Model Optimizer lives in an environment of its own (`pip install 'zsbench[fp8]'`, see
pyproject.toml): its own `[onnx]` extra pins onnx and onnxruntime-gpu versions that clash with
zsbench's. Checked with nvidia-modelopt 0.47.0, onnx 1.23 and onnxruntime 1.32 (CPU), no GPU.

Deliberate choices, each for a measured reason:
- calibration method "max": the default "entropy" histogram raises "Too many bins for data range"
  on the text graph, some of whose tensors are constant over every calibration sample;
- the quantizer writes into a private folder (it leaves intermediate graphs beside a failed
  output), and the result is saved with zsbench's external-data name (`<graph>.onnx.data`).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from zsbench.errors import BackendUnavailableError, ExportError
from zsbench.export.quantize.calibration import CalibrationRecord
from zsbench.export.quantize.policy import resolve_policy
from zsbench.models.precision_policy import Int8Policy

QdqMode = Literal["fp8", "int8"]
CALIBRATION_METHOD = "max"


@dataclass(frozen=True)
class ModelOptGraph:
    """A Model Optimizer Q/DQ graph, for its manifest."""

    file: str
    mode: QdqMode
    policy: tuple[str, ...]
    kept_fp32: dict[str, str]  # node -> the policy rule's reason
    quantize_linear_nodes: int
    calibration: CalibrationRecord
    modelopt: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["calibration"] = self.calibration.to_dict()
        return data


def import_modelopt_quantization() -> Any:
    """`modelopt.onnx.quantization`, or a clear error naming the extra that installs it."""
    try:
        import modelopt.onnx.quantization as quantization
    except ImportError as err:
        raise BackendUnavailableError(
            f"NVIDIA Model Optimizer's ONNX quantization is not importable ({err}); it makes the FP8/INT8 Q/DQ graphs "
            "TensorRT engines are built from. Install it in an environment of its own: pip install 'zsbench[fp8]'."
        ) from err
    return quantization


def modelopt_quantize_graph(
    source: Path,
    output: Path,
    calibration: Mapping[str, np.ndarray],
    mode: QdqMode,
    policy: Int8Policy,
    *,
    calibration_name: str,
) -> ModelOptGraph:
    """Quantizes the fp32 (opset 18) graph `source` to a `mode` Q/DQ graph `output` (+ `output.data`).

    Args:
        source: an fp32 graph exported at opset 18.
        output: the Q/DQ graph to write; its folder must exist.
        calibration: the graph's input name -> all calibration samples stacked (`CalibrationSet.stacked`).
        mode: "fp8" (e4m3) or "int8".
        policy: what is quantized and what stays in higher precision (its `fp32_outputs` are moot:
            Model Optimizer places Q/DQ pairs on inputs only, as TensorRT expects).
        calibration_name: what the samples are, for the manifest.

    Raises:
        BackendUnavailableError: Model Optimizer is not installed.
        ExportError: it could not quantize the graph.
    """
    import onnx

    quantization = import_modelopt_quantization()
    from modelopt import __version__ as modelopt_version

    # Model Optimizer places Q/DQ pairs on inputs only (what TensorRT fuses): results are never rounded.
    resolved = resolve_policy(source, replace(policy, fp32_outputs=()))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=".modelopt-", dir=output.parent) as private:
        written = Path(private) / output.name
        try:
            quantization.quantize(
                str(source),
                quantize_mode=mode,
                calibration_data=dict(calibration),
                calibration_method=CALIBRATION_METHOD,
                calibration_eps=["cpu"],
                op_types_to_quantize=list(policy.quantize_op_types) or None,
                nodes_to_exclude=list(resolved.excluded),
                use_external_data_format=True,
                output_path=str(written),
                log_level="ERROR",
            )
        except (ValueError, RuntimeError, KeyError, AssertionError) as err:  # Model Optimizer raises these untyped
            raise ExportError(f"Model Optimizer {modelopt_version} could not quantize {source} to {mode}: {type(err).__name__}: {err}") from err
        model = onnx.load(str(written))
    onnx.save(model, str(output), save_as_external_data=True, all_tensors_to_one_file=True, location=output.name + ".data")
    feeds = [dict(calibration)]
    return ModelOptGraph(
        file=output.name,
        mode=mode,
        policy=(f"{mode} Q/DQ (NVIDIA Model Optimizer {modelopt_version}, calibration '{CALIBRATION_METHOD}'), other ops fp16",
                *resolved.describe()),
        kept_fp32={node: rule.reason for node, rule in resolved.excluded.items()},
        quantize_linear_nodes=sum(node.op_type == "QuantizeLinear" for node in model.graph.node),
        calibration=CalibrationRecord.of(calibration_name, feeds),
        modelopt=modelopt_version,
        seconds=round(time.perf_counter() - start, 2),
    )
