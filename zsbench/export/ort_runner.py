"""Running an export's ONNX graphs with ONNX Runtime (the parity check's backend; reusable by an
ONNX eval backend): torch or numpy in, float32 torch tensors out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from zsbench.errors import BackendUnavailableError, ExportError


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as err:
        raise BackendUnavailableError(
            "onnxruntime is not installed; it runs the exported graphs. Install it with "
            "`pip install 'zsbench[onnx]'` (or onnxruntime-gpu for CUDA)."
        ) from err
    return onnxruntime


def default_providers() -> list[str]:
    """CUDA when this onnxruntime build has it, else the CPU."""
    available = import_onnxruntime().get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


class OnnxGraphRunner:
    """One graph in an `InferenceSession`: a single input, a single output.

    Inputs are cast to the graph's input dtype (e.g. float32 pixels stay float32; the graph
    casts to fp16 itself); the output comes back as float32 on the CPU.
    """

    def __init__(self, path: Path, providers: list[str] | None = None, threads: int | None = None) -> None:
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: ORT's fp16 warnings are expected
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers or default_providers())
        except Exception as err:  # onnxruntime raises its own untyped exceptions
            raise ExportError(
                f"ONNX Runtime {ort.__version__} cannot load {path}: {err}. Opset-23 graphs (the fp32 default) need "
                "onnxruntime >= 1.23: upgrade it, or re-export with `zsbench export --force --opset 18`."
            ) from err
        (graph_input,) = self.session.get_inputs()
        self.input_name = graph_input.name
        self.input_dtype = numpy_dtype(graph_input.type)
        self.providers = self.session.get_providers()

    def __call__(self, values: torch.Tensor | np.ndarray) -> torch.Tensor:
        array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
        (output,) = self.session.run(None, {self.input_name: array.astype(self.input_dtype, copy=False)})
        return torch.from_numpy(np.asarray(output, dtype=np.float32))


_ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64", "tensor(int32)": "int32"}


def numpy_dtype(ort_type: str) -> np.dtype:
    """The numpy dtype of an ONNX Runtime type name such as "tensor(float16)" (float32 for others)."""
    return np.dtype(_ORT_DTYPES.get(ort_type, "float32"))


class OnnxArtifactRunner:
    """The vision and text graphs of an export folder; each session opens on first use."""

    def __init__(self, folder: Path, providers: list[str] | None = None) -> None:
        self.folder = folder
        self.providers = providers
        self._runners: dict[str, OnnxGraphRunner] = {}

    def _runner(self, graph: str) -> OnnxGraphRunner:
        if graph not in self._runners:
            self._runners[graph] = OnnxGraphRunner(self.folder / f"{graph}.onnx", self.providers)
        return self._runners[graph]

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._runner("vision")(pixels)

    def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self._runner("text")(input_ids)

    def close(self, graph: str | None = None) -> None:
        """Drops sessions (all, or one graph's) to free their copy of the weights."""
        for name in [graph] if graph else list(self._runners):
            self._runners.pop(name, None)

    def describe(self) -> str:
        import onnxruntime

        providers = self.providers or default_providers()
        return f"onnxruntime {onnxruntime.__version__} ({providers[0]})"
