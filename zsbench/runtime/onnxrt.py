"""ONNX Runtime: an export's graphs as an `Encoder` (what `--backend onnx` runs and the export's parity check drives).

Providers, best first: TensorRT and CUDA (when this onnxruntime build has them and the
device is a GPU), else the CPU. On a GPU the graphs read and write torch CUDA tensors through
I/O binding, so batches never bounce through host memory; on the CPU inputs are cast to the
graph's input dtype (float32 pixels stay float32: an fp16 graph casts itself).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zsbench.errors import BackendUnavailableError, ExportError
from zsbench.precisions import PRECISIONS
from zsbench.runtime.encoder import Encoder
from zsbench.runtime.trust import digests_key

GRAPHS = ("vision", "text")
_GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
_ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64", "tensor(int32)": "int32"}
_TORCH_DTYPES = {np.dtype("float32"): torch.float32, np.dtype("float16"): torch.float16, np.dtype("int64"): torch.int64}


def import_onnxruntime() -> Any:
    """The onnxruntime module, imported with its telemetry off.

    Since 1.2x, ONNX Runtime's Linux wheels start Microsoft's 1DS telemetry when they are imported: a
    device id and an event database under ~/.cache/Microsoft/DeveloperTools/, and uploads. The only
    switch that stops all of it is the ORT_DISABLE_TELEMETRY environment variable, read once, at import
    (`disable_telemetry_events()` comes too late); a value the user set is kept.
    """
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    try:
        import onnxruntime
    except ImportError as err:
        raise BackendUnavailableError(
            "onnxruntime is not installed; it runs the exported graphs. Install it with "
            "`pip install 'zsbench[onnx]'` (or onnxruntime-gpu for CUDA)."
        ) from err
    return onnxruntime


def providers_for(device: torch.device) -> list[str]:
    """The execution providers to ask for on `device`, best first."""
    available = import_onnxruntime().get_available_providers()
    wanted = [*_GPU_PROVIDERS, "CPUExecutionProvider"] if device.type == "cuda" else ["CPUExecutionProvider"]
    return [provider for provider in wanted if provider in available]


def cpu_threads(device: torch.device) -> int | None:
    """Intra-op threads of a session on `device`: on the CPU as many as torch uses (`--threads`), so that
    backends compare on equal terms; on a GPU ONNX Runtime's own choice."""
    return torch.get_num_threads() if device.type == "cpu" else None


def session_options(threads: int | None) -> Any:
    """The `SessionOptions` every zsbench session opens with (the encoders' and `zsbench bench`'s peak MatMul)."""
    options = import_onnxruntime().SessionOptions()
    options.log_severity_level = 3  # errors only: ORT's fp16 warnings are expected
    if threads:
        options.intra_op_num_threads = threads
    return options


def numpy_dtype(ort_type: str) -> np.dtype:
    """The numpy dtype of an ONNX Runtime type name such as "tensor(float16)" (float32 for others)."""
    return np.dtype(_ORT_DTYPES.get(ort_type, "float32"))


class OnnxGraphRunner:
    """One graph in an `InferenceSession`: a single input, a single output.

    On a GPU provider, `device` tensors are bound in place (I/O binding) and the output is a
    new tensor on `device`; on the CPU the output is a float32 CPU tensor.
    """

    def __init__(self, path: Path, providers: list[str], device: torch.device, threads: int | None = None,
                 disabled_optimizers: tuple[str, ...] = ()) -> None:
        ort = import_onnxruntime()
        try:
            self.session = ort.InferenceSession(str(path), session_options(threads), providers=providers,
                                                disabled_optimizers=list(disabled_optimizers))
        except Exception as err:  # onnxruntime raises its own untyped exceptions
            raise ExportError(
                f"ONNX Runtime {ort.__version__} cannot load {path}: {err}. Opset-23 graphs (the fp32 default) need "
                "onnxruntime >= 1.23: upgrade it, or re-export with `zsbench export --force --opset 18`."
            ) from err
        (graph_input,), (graph_output,) = self.session.get_inputs(), self.session.get_outputs()
        self.input_name, self.output_name = graph_input.name, graph_output.name
        self.input_dtype = numpy_dtype(graph_input.type)
        self.output_dtype = numpy_dtype(graph_output.type)
        self.output_width = graph_output.shape[-1]
        self.provider = self.session.get_providers()[0]
        self.device = device
        self.bound = self.provider in _GPU_PROVIDERS and device.type == "cuda"

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        return self._run_bound(values) if self.bound else self._run_host(values)

    def _run_host(self, values: torch.Tensor) -> torch.Tensor:
        array = values.detach().cpu().numpy().astype(self.input_dtype, copy=False)
        (output,) = self.session.run(None, {self.input_name: array})
        return torch.from_numpy(np.asarray(output, dtype=np.float32)).to(self.device)

    def _run_bound(self, values: torch.Tensor) -> torch.Tensor:
        values = values.to(self.device, dtype=_TORCH_DTYPES[self.input_dtype]).contiguous()
        output = torch.empty((values.shape[0], self.output_width), dtype=_TORCH_DTYPES[self.output_dtype], device=self.device)
        binding = self.session.io_binding()
        index = self.device.index or 0
        binding.bind_input(self.input_name, "cuda", index, self.input_dtype, tuple(values.shape), values.data_ptr())
        binding.bind_output(self.output_name, "cuda", index, self.output_dtype, tuple(output.shape), output.data_ptr())
        torch.cuda.current_stream(self.device).synchronize()  # ORT runs on its own stream
        self.session.run_with_iobinding(binding)
        return output


class OnnxEncoder(Encoder):
    """`encode_image` / `encode_text` through ONNX Runtime sessions of an export's graphs.

    `graphs` maps "vision" and "text" to their .onnx files. Each session opens on first use
    and `close(graph)` drops one, so a check can hold one graph's weights at a time. `digests`:
    the SHA-256 of the export's files as its manifest records them (checked before they were opened);
    `calibration`: what a quantized export was calibrated on, as its manifest records it.
    """

    name = "onnx"

    def __init__(self, graphs: Mapping[str, Path], device: torch.device, precision: str, artifact: Path | None = None,
                 digests: Mapping[str, str] | None = None, calibration: Mapping[str, Any] | None = None) -> None:
        super().__init__(device, precision)
        self.digests = dict(digests or {})
        self.calibration = dict(calibration) if calibration else None
        missing = [str(graphs[g]) for g in GRAPHS if g not in graphs or not Path(graphs[g]).is_file()]
        if missing:
            raise ExportError(f"The export's graph file(s) {', '.join(missing)} are missing. Re-export with `zsbench export --force`.")
        self.graphs = {graph: Path(graphs[graph]) for graph in GRAPHS}
        self.folder = artifact if artifact is not None else self.graphs["vision"].parent
        self.providers = providers_for(device)
        self.threads = cpu_threads(device)
        # ONNX Runtime 1.32's NCHWc layout transformer (a CPU layout for fp32 convolutions) crashes the process
        # (SIGSEGV) while opening open_clip's fp16 ViT graphs, both of them; graphs in another dtype than fp32
        # are opened without it, which they never use.
        self.disabled_optimizers = () if PRECISIONS.get(precision).torch_dtype == "float32" else ("NchwcTransformer",)
        self._runners: dict[str, OnnxGraphRunner] = {}

    def runner(self, graph: str) -> OnnxGraphRunner:
        """The session of `graph`, opened on first use."""
        if graph not in self._runners:
            self._runners[graph] = OnnxGraphRunner(self.graphs[graph], self.providers, self.device, self.threads,
                                                   self.disabled_optimizers)
        return self._runners[graph]

    @property
    def provider(self) -> str:
        return self.runner("vision").provider

    def _encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.runner("vision")(pixels)

    def _encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.runner("text")(input_ids)

    def describe(self) -> dict[str, object]:
        """The runtime and the artifact; the graphs' digest (so that caches key on the very graphs run: a quantized
        export re-made with another calibration set is other graphs in the same folder) and the calibration set."""
        onnxruntime = import_onnxruntime()
        described: dict[str, object] = {**super().describe(), "onnxruntime": onnxruntime.__version__,
                                        "execution_provider": self.provider, "artifact": str(self.folder)}
        if self.digests:
            described["graphs_sha256"] = digests_key(self.digests)
        if self.calibration:
            described["calibration"] = self.calibration
        return described

    def provenance(self) -> dict[str, Any]:
        import onnxruntime

        record = super().provenance()
        record["versions"]["onnxruntime"] = onnxruntime.__version__
        record["execution_provider"] = self.provider
        record["threads"]["onnxruntime"] = self.threads  # intra-op threads; None: ONNX Runtime's default (GPU providers)
        record["artifacts"] = dict(self.digests)
        return record

    def runtime_label(self) -> str:
        """"onnxruntime 1.32.0 (CPUExecutionProvider)": the backend a parity report names."""
        onnxruntime = import_onnxruntime()
        return f"onnxruntime {onnxruntime.__version__} ({self.provider})"

    def close(self, graph: str | None = None) -> None:
        """Drops sessions (all, or one graph's) to free their copy of the weights."""
        for name in [graph] if graph else list(self._runners):
            self._runners.pop(name, None)
