"""Running TensorRT engines on torch CUDA tensors: the engine parity check's backend, and the
piece a `--backend trt` eval backend reuses.

`TrtEngineRunner` runs one engine with one input and one output. Inputs and outputs stay on
the GPU; per optimization profile it keeps one execution context and reuses one input and one
output buffer across batches (allocated once, at the profile's maximum shape). A batch runs
on the profile that fits its shape most tightly; a batch larger than every profile is split
into chunks of the largest maximum batch. Work is queued on torch's current CUDA stream, so
it is ordered with the caller's own torch operations without extra synchronisation.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from zsbench.errors import BackendUnavailableError, EngineError
from zsbench.export.engine_manifest import EngineManifest, ShapeProfile, check_engines_usable, load_engine_manifest


def choose_profile(profiles: list[ShapeProfile], shape: tuple[int, ...]) -> int | None:
    """Index of the profile that holds `shape` with the smallest maximum batch (None if none does)."""
    fitting = [index for index, profile in enumerate(profiles) if profile.contains(shape)]
    return min(fitting, key=lambda index: profiles[index].max[0]) if fitting else None


def split_batch(batch: int, max_batch: int) -> list[tuple[int, int]]:
    """(start, stop) chunks of at most `max_batch` rows covering `batch` rows."""
    return [(start, min(start + max_batch, batch)) for start in range(0, batch, max_batch)]


def _torch_dtype(trt: ModuleType, dtype: Any) -> torch.dtype:
    table = {
        trt.DataType.FLOAT: torch.float32,
        trt.DataType.HALF: torch.float16,
        trt.DataType.BF16: torch.bfloat16,
        trt.DataType.INT32: torch.int32,
        trt.DataType.INT64: torch.int64,
    }
    if dtype not in table:
        raise EngineError(f"Engine tensor dtype {dtype} is not one zsbench feeds (float32/16, bfloat16, int32/64).")
    return table[dtype]


class TrtEngineRunner:
    """One deserialised engine; `infer(x)` maps a CUDA (or CPU) tensor to the engine's output on the GPU."""

    def __init__(self, engine_path: Path, trt: ModuleType, device: torch.device) -> None:
        self.path = engine_path
        self.device = device
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
        with torch.cuda.device(device):
            self.engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise EngineError(
                f"{trt.__name__} could not load {engine_path}: built for another GPU or TensorRT version, or damaged. "
                "Rebuild it with `zsbench engine build <export folder> --force`."
            )
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise EngineError(f"{engine_path} has inputs {inputs} and outputs {outputs}; expected one of each.")
        self.input_name, self.output_name = inputs[0], outputs[0]
        self.input_dtype = _torch_dtype(trt, self.engine.get_tensor_dtype(self.input_name))
        self.output_dtype = _torch_dtype(trt, self.engine.get_tensor_dtype(self.output_name))
        self.profiles = [
            ShapeProfile(self.input_name, *(tuple(int(d) for d in s) for s in self.engine.get_tensor_profile_shape(self.input_name, p)))
            for p in range(self.engine.num_optimization_profiles)
        ]
        self.max_batch = max(p.max[0] for p in self.profiles)
        self._contexts: dict[int, Any] = {}
        self._inputs: dict[int, torch.Tensor] = {}
        self._outputs: dict[int, torch.Tensor] = {}

    def _context(self, index: int) -> Any:
        """The execution context of profile `index`, with its buffers (created on first use)."""
        if index not in self._contexts:
            context = self.engine.create_execution_context()
            stream = torch.cuda.current_stream(self.device).cuda_stream
            context.set_optimization_profile_async(index, stream)
            largest = self.profiles[index].max
            context.set_input_shape(self.input_name, largest)
            out_numel = int(torch.Size(tuple(context.get_tensor_shape(self.output_name))).numel())
            self._inputs[index] = torch.empty(int(torch.Size(largest).numel()), dtype=self.input_dtype, device=self.device)
            self._outputs[index] = torch.empty(out_numel, dtype=self.output_dtype, device=self.device)
            self._contexts[index] = context
        return self._contexts[index]

    def infer(self, values: torch.Tensor) -> torch.Tensor:
        """Runs the engine on `values` (CUDA or CPU: they are copied into the engine's input buffer
        either way); the result is a new GPU tensor in the engine's output dtype."""
        if values.shape[0] > self.max_batch:
            return torch.cat([self.infer(values[a:b]) for a, b in split_batch(values.shape[0], self.max_batch)])
        shape = tuple(values.shape)
        index = choose_profile(self.profiles, shape)
        if index is None:
            raise EngineError(
                f"Input shape {shape} fits no optimization profile of {self.path} "
                f"({', '.join(f'{p.min}..{p.max}' for p in self.profiles)}). Rebuild with wider --batch / --text-length."
            )
        context = self._context(index)
        staged = self._inputs[index][: values.numel()].view(shape)
        staged.copy_(values, non_blocking=True)
        context.set_input_shape(self.input_name, shape)
        out_shape = tuple(context.get_tensor_shape(self.output_name))
        output = self._outputs[index][: int(torch.Size(out_shape).numel())].view(out_shape)
        context.set_tensor_address(self.input_name, staged.data_ptr())
        context.set_tensor_address(self.output_name, output.data_ptr())
        if not context.execute_async_v3(torch.cuda.current_stream(self.device).cuda_stream):
            raise EngineError(f"TensorRT failed to run {self.path} on a batch of shape {shape}.")
        return output.clone()  # the buffer is the next call's output

    def close(self) -> None:
        """Frees the contexts, buffers and engine (GPU memory)."""
        self._contexts.clear()
        self._inputs.clear()
        self._outputs.clear()
        self.engine = None


class TrtArtifactRunner:
    """The vision and text engines of an engine folder, each loaded on first use.

    The engines are checked first (`check_engines_usable`): built with this process's
    TensorRT, for this GPU (or ahead of time), from the export's graphs as they are now.
    """

    def __init__(self, folder: Path, manifest: EngineManifest | None = None, device: torch.device | None = None) -> None:
        from zsbench.export.trt_build import current_onnx_digests, current_target
        from zsbench.export.manifest import load_export_manifest
        from zsbench.export.trt_flavor import select_trt_flavor, trt_modules

        if not torch.cuda.is_available():
            raise BackendUnavailableError("TensorRT engines run on a CUDA GPU; torch sees none here.")
        self.folder = folder
        self.device = device or torch.device("cuda")
        checked = manifest is None
        self.manifest = manifest or load_engine_manifest(folder)
        self.flavor = select_trt_flavor(self.manifest.flavor)  # type: ignore[arg-type]
        if checked:
            artifact = Path(self.manifest.artifact)
            onnx = current_onnx_digests(load_export_manifest(artifact), artifact)
            check_engines_usable(self.manifest, self.flavor.name, self.flavor.version, current_target(self.flavor), onnx)
        self._trt, _ = trt_modules(self.flavor)
        self._runners: dict[str, TrtEngineRunner] = {}

    def _runner(self, graph: str) -> TrtEngineRunner:
        if graph not in self._runners:
            self._runners[graph] = TrtEngineRunner(self.folder / self.manifest.engines[graph], self._trt, self.device)
        return self._runners[graph]

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._runner("vision").infer(pixels)

    def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self._runner("text").infer(input_ids)

    def describe(self) -> str:
        return f"{self.flavor} on {torch.cuda.get_device_name(self.device)}"

    def close(self) -> None:
        for runner in self._runners.values():
            runner.close()
        self._runners.clear()

    def __enter__(self) -> TrtArtifactRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
