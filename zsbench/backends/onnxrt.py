"""The ONNX Runtime backend: an export's `vision.onnx` and `text.onnx` with the best provider present.

Providers, best first: TensorRT and CUDA (when this onnxruntime build has them and the
device is a GPU), else the CPU. On a GPU the graphs read and write torch CUDA tensors
through I/O binding, so batches never bounce through host memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from zsbench.backends.artifacts import BackendOptions, find_or_export, preprocessing
from zsbench.backends.base import Encoder, LoadedModel
from zsbench.export.ort_runner import OnnxGraphRunner, import_onnxruntime, numpy_dtype
from zsbench.models.ref import ModelRef

_GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def providers_for(device: torch.device) -> list[str]:
    """The execution providers to ask for on `device`, best first."""
    available = import_onnxruntime().get_available_providers()
    wanted = [*_GPU_PROVIDERS, "CPUExecutionProvider"] if device.type == "cuda" else ["CPUExecutionProvider"]
    return [provider for provider in wanted if provider in available]


class BoundGraph:
    """One graph run with I/O binding on torch CUDA tensors (input cast to the graph's dtype)."""

    def __init__(self, runner: OnnxGraphRunner, device: torch.device) -> None:
        self.session = runner.session
        self.device = device
        (graph_input,), (graph_output,) = self.session.get_inputs(), self.session.get_outputs()
        self.input_name, self.output_name = graph_input.name, graph_output.name
        self.input_dtype = _TORCH[runner.input_dtype]
        self.output_dtype = _TORCH[numpy_dtype(graph_output.type)]
        self.output_width = graph_output.shape[-1]

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        values = values.to(self.device, dtype=self.input_dtype).contiguous()
        output = torch.empty((values.shape[0], self.output_width), dtype=self.output_dtype, device=self.device)
        binding = self.session.io_binding()
        index = self.device.index or 0
        binding.bind_input(self.input_name, "cuda", index, _NUMPY[self.input_dtype], tuple(values.shape), values.data_ptr())
        binding.bind_output(self.output_name, "cuda", index, _NUMPY[self.output_dtype], tuple(output.shape), output.data_ptr())
        torch.cuda.current_stream(self.device).synchronize()  # ORT runs on its own stream
        self.session.run_with_iobinding(binding)
        return output


_NUMPY = {torch.float32: np.float32, torch.float16: np.float16, torch.int64: np.int64}
_TORCH = {np.dtype(numpy): dtype for dtype, numpy in _NUMPY.items()}


class OnnxEncoder(Encoder):
    """`encode_image` / `encode_text` through ONNX Runtime sessions of an export folder."""

    name = "onnx"

    def __init__(self, folder: Any, device: torch.device, precision: str) -> None:
        super().__init__(device, precision)
        self.folder = folder
        self.providers = providers_for(device)
        # The CPU gets as many threads as torch uses, so backends compare on equal terms.
        threads = torch.get_num_threads() if device.type == "cpu" else None
        runners = {graph: OnnxGraphRunner(folder / f"{graph}.onnx", self.providers, threads) for graph in ("vision", "text")}
        self.provider = runners["vision"].providers[0]
        on_gpu = self.provider in _GPU_PROVIDERS
        self.graphs = {graph: BoundGraph(runner, device) if on_gpu else runner for graph, runner in runners.items()}

    def _encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.graphs["vision"](pixels)

    def _encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.graphs["text"](input_ids)

    def describe(self) -> dict[str, object]:
        import onnxruntime

        return {**super().describe(), "onnxruntime": onnxruntime.__version__, "execution_provider": self.provider,
                "artifact": str(self.folder)}


def load_onnx(ref: ModelRef, device: torch.device, precision: str, options: BackendOptions) -> LoadedModel:
    """Finds (or exports) the `precision` export of `ref` and opens its graphs."""
    import_onnxruntime()
    folder, manifest = find_or_export(ref, precision, device, options)
    transform, tokenizer = preprocessing(manifest, ref)
    return LoadedModel(OnnxEncoder(folder, device, precision), transform, tokenizer)
