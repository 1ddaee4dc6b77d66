"""`Quantizer`: what a precision's quantizer is (`PrecisionSpec.quantizer` names one), and `QuantizedGraph`: what
the manifest records of one quantized graph, whichever quantizer made it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zsbench.export.quantize.calibration import CalibrationRecord

if TYPE_CHECKING:
    from zsbench.export.quantize.calibration import CalibrationSet
    from zsbench.models.export_spec import GraphIO, PrecisionPolicy


@dataclass(frozen=True)
class Quantizer:
    """A quantizer of traced fp32 graphs.

    Attributes:
        name: the library that quantizes, as messages name it.
        check_installed: raises `BackendUnavailableError` (with the pip command) where the library is missing;
            called before the model is loaded, so a missing library costs no export.
        quantize: `(source, output, io, calibration, policy, precision, log) -> QuantizedGraph`.
    """

    name: str
    check_installed: Callable[[], None]
    quantize: Callable[[Path, Path, GraphIO, CalibrationSet, PrecisionPolicy, str, Callable[[str], None]], QuantizedGraph]


@dataclass(frozen=True)
class QuantizedGraph:
    """One quantized graph: how it was made (quantizer, policy), what it quantized, on what it was calibrated.

    Attributes:
        file: the graph's file name.
        quantizer: the library and call that made it (``onnxruntime 1.32.0 quantize_static``).
        policy: the policy as it met this graph (`ResolvedPolicy.describe`): the manifest's `graph_policy`.
        kept_fp32: node -> the rule that kept it out of quantization.
        quantized: the nodes that read dequantized (quantized) inputs in the written graph.
        calibration: the calibration set's record.
        seconds: how long quantizing took (calibration included).
    """

    file: str
    quantizer: str
    policy: tuple[str, ...]
    kept_fp32: dict[str, str]
    quantized: tuple[str, ...]
    calibration: CalibrationRecord
    seconds: float

    def graph_policy(self) -> tuple[str, ...]:
        """The manifest's `graph_policy` lines for this graph."""
        record = self.calibration
        return (f"quantized by {self.quantizer}", *self.policy,
                f"calibrated on {record.name}: {record.samples} samples in {record.batches} batches, sha256 {record.sha256[:16]}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["calibration"] = self.calibration.to_dict()
        data["policy"], data["quantized"] = list(self.policy), list(self.quantized)
        return data


def dequantized_consumers(graph: Path) -> tuple[str, ...]:
    """The nodes of a Q/DQ graph that read a `DequantizeLinear` output: the ones that compute on quantized inputs."""
    import onnx

    model = onnx.load(str(graph), load_external_data=False)
    dequantized = {out for node in model.graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    return tuple(
        node.name for node in model.graph.node
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") and any(name in dequantized for name in node.input)
    )
