"""TensorRT engines as an `Encoder` (what `--backend trt` runs and the engine parity check drives).

`TrtEngineRunner` runs one engine (one input, one output) with TensorRT 10's API:

- Work goes to the runner's own CUDA stream (`CudaRunnerStream`), never the legacy default
  stream (on which TensorRT adds device-wide synchronisation). The stream first waits for the
  caller's current stream (the batch may still be being written there), and the caller's
  stream then waits for the runner's, so results are ordered with the caller's work.
- Engines are deserialised, contexts created and batches run under `torch.cuda.device(device)`,
  so a runner for `cuda:1` never touches `cuda:0`.
- One execution context per optimization profile, created on first use: the profile is set
  (`set_optimization_profile_async`) before any input shape; input and output buffers are
  allocated once per profile at its maximum shape and reused.
- `plan_batches` cuts a batch into chunks the profiles accept: the tightest profile that holds
  a chunk; chunks of the largest maximum when a batch exceeds every profile; a chunk between
  profiles or below every minimum is padded up to the nearest minimum (with copies of its last
  row) and the padding rows are dropped from the output.
- TensorRT-RTX compiles kernels for the GPU when an engine first runs; its runtime cache
  (`<engine>.runtime.cache` beside the engine) is loaded when present and saved after each new
  context's first run, so later processes skip the compilation.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import torch

from zsbench.errors import BackendUnavailableError, EngineError
from zsbench.jsonfiles import write_bytes_atomic
from zsbench.runtime.encoder import Encoder
from zsbench.runtime.engine_manifest import RUNTIME_CACHE_SUFFIX, EngineManifest, ShapeProfile, check_engines_usable
from zsbench.runtime.flavor import TrtFlavor, gpu_target, select_trt_flavor, trt_module


@dataclass(frozen=True)
class Chunk:
    """Rows `start:stop` of a batch, run on profile `profile` as `rows` rows (more than stop - start: padded)."""

    start: int
    stop: int
    profile: int
    rows: int


def choose_profile(profiles: list[ShapeProfile], shape: tuple[int, ...]) -> int | None:
    """Index of the profile that holds `shape` with the smallest maximum batch (None if none does)."""
    fitting = [index for index, profile in enumerate(profiles) if profile.contains(shape)]
    return min(fitting, key=lambda index: profiles[index].max[0]) if fitting else None


def plan_batches(profiles: list[ShapeProfile], shape: tuple[int, ...]) -> list[Chunk]:
    """How a batch of `shape` runs on `profiles` (see the module docstring); never refuses a batch size.

    Raises:
        EngineError: the dimensions after the batch (image size, text length) fit no profile.
    """
    rest = tuple(shape[1:])
    usable = [i for i, p in enumerate(profiles) if p.contains((p.min[0], *rest))]
    if not usable:
        ranges = ", ".join(f"{p.min}..{p.max}" for p in profiles)
        raise EngineError(
            f"Input shape {shape} fits no optimization profile ({ranges}) whatever the batch size. "
            "Rebuild the engines with a wider --text-length (or the export's image size)."
        )
    chosen = [profiles[i] for i in usable]
    largest = max(p.max[0] for p in chosen)
    chunks, start = [], 0
    while start < shape[0]:
        rows = min(shape[0] - start, largest)
        fitting = choose_profile(chosen, (rows, *rest))
        if fitting is not None:
            chunks.append(Chunk(start, start + rows, usable[fitting], rows))
        else:  # between two profiles, or below every minimum: pad up to the nearest minimum
            index = min((i for i in usable if profiles[i].min[0] > rows), key=lambda i: profiles[i].min[0])
            chunks.append(Chunk(start, start + rows, index, profiles[index].min[0]))
        start += rows
    return chunks


class RunnerStream(Protocol):
    """Where a runner's work goes: a stream `handle` for TensorRT, a scope that makes the device and
    stream current (ordered after the caller's work, and the caller after it), and `hand_over` for a
    tensor made inside that scope and used by the caller afterwards."""

    handle: int

    def scope(self) -> contextlib.AbstractContextManager[None]: ...

    def hand_over(self, tensor: torch.Tensor) -> None: ...


class CudaRunnerStream:
    """A dedicated CUDA stream on `device` (see `RunnerStream`)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.stream = torch.cuda.Stream(device)
        self.handle = self.stream.cuda_stream

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        with torch.cuda.device(self.device):
            caller = torch.cuda.current_stream(self.device)
            self.stream.wait_stream(caller)
            with torch.cuda.stream(self.stream):
                yield
            caller.wait_stream(self.stream)

    def hand_over(self, tensor: torch.Tensor) -> None:
        # Made on our stream, read on the caller's: the allocator must not reuse it before the caller is done.
        tensor.record_stream(torch.cuda.current_stream(self.device))


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
    """One deserialised engine; `infer(x)` maps a tensor (CUDA or CPU) to the engine's output on the device.

    `runtime_cache`: TensorRT-RTX's runtime cache file for this engine (None: standard TensorRT).
    `stream`: where the work goes (default: a new `CudaRunnerStream` on `device`).
    """

    def __init__(self, engine_path: Path, trt: ModuleType, device: torch.device, runtime_cache: Path | None = None,
                 stream: RunnerStream | None = None) -> None:
        # Declared first, so that when a runner is dropped without close() its contexts go before the engine.
        self._contexts: dict[int, Any] = {}
        self._inputs: dict[int, torch.Tensor] = {}
        self._outputs: dict[int, torch.Tensor] = {}
        self.path = engine_path
        self.device = device
        self.stream = stream if stream is not None else CudaRunnerStream(device)
        self.plan_bytes = engine_path.stat().st_size
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
        with self.stream.scope():
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
        self.runtime_cache = runtime_cache
        self.runtime_cache_loaded = False
        # The cache object is kept here: the config only refers to it, and it must outlive every context.
        self._runtime_config, self._runtime_cache = self._open_runtime_cache() if runtime_cache is not None else (None, None)

    def _open_runtime_cache(self) -> tuple[Any, Any]:
        """An IRuntimeConfig and the runtime cache it uses, filled from the cache file when it suits this GPU."""
        assert self.runtime_cache is not None
        config = self.engine.create_runtime_config()
        cache = config.create_runtime_cache()
        if self.runtime_cache.is_file():
            with self.stream.scope():  # deserialize compares against the current CUDA context
                self.runtime_cache_loaded = bool(cache.deserialize(self.runtime_cache.read_bytes()))
        config.set_runtime_cache(cache)
        return config, cache

    def _save_runtime_cache(self) -> None:
        if self._runtime_cache is None or self.runtime_cache is None:
            return
        try:
            write_bytes_atomic(self.runtime_cache, bytes(self._runtime_cache.serialize()))
        except OSError as err:  # a read-only engine folder costs the next process a recompilation, nothing else
            warnings.warn(f"Could not save TensorRT-RTX's runtime cache {self.runtime_cache}: {err}", stacklevel=2)

    def _context(self, index: int) -> Any:
        """The execution context of profile `index`, with its buffers (created on first use)."""
        if index not in self._contexts:
            if self._runtime_config is not None:
                context = self.engine.create_execution_context(self._runtime_config)
            else:
                context = self.engine.create_execution_context()
            if context is None:
                raise EngineError(f"TensorRT could not create an execution context for {self.path} (out of GPU memory?).")
            if not context.set_optimization_profile_async(index, self.stream.handle):
                raise EngineError(f"TensorRT could not select optimization profile {index} of {self.path}.")
            largest = self.profiles[index].max
            self._set_shape(context, largest)
            output_shape = tuple(context.get_tensor_shape(self.output_name))
            self._inputs[index] = torch.empty(int(torch.Size(largest).numel()), dtype=self.input_dtype, device=self.device)
            self._outputs[index] = torch.empty(int(torch.Size(output_shape).numel()), dtype=self.output_dtype, device=self.device)
            self._contexts[index] = context
        return self._contexts[index]

    def _set_shape(self, context: Any, shape: tuple[int, ...]) -> None:
        if not context.set_input_shape(self.input_name, shape):
            raise EngineError(f"TensorRT refused input shape {shape} for {self.path} (profiles: {self.profiles}).")

    def _run(self, values: torch.Tensor, chunk: Chunk) -> torch.Tensor:
        """Runs one chunk on its profile; returns its output rows (padding dropped) as a new tensor."""
        first_run = chunk.profile not in self._contexts
        context = self._context(chunk.profile)
        shape = (chunk.rows, *values.shape[1:])
        staged = self._inputs[chunk.profile][: int(torch.Size(shape).numel())].view(shape)
        real = chunk.stop - chunk.start
        staged[:real].copy_(values[chunk.start : chunk.stop], non_blocking=True)
        if chunk.rows > real:  # padding rows: copies of the last real row (valid input; dropped below)
            staged[real:].copy_(staged[real - 1 : real].expand(chunk.rows - real, *shape[1:]))
        self._set_shape(context, shape)
        output_shape = tuple(context.get_tensor_shape(self.output_name))
        output = self._outputs[chunk.profile][: int(torch.Size(output_shape).numel())].view(output_shape)
        context.set_tensor_address(self.input_name, staged.data_ptr())
        context.set_tensor_address(self.output_name, output.data_ptr())
        if not context.execute_async_v3(self.stream.handle):
            raise EngineError(f"TensorRT failed to run {self.path} on a batch of shape {shape}.")
        if first_run:
            self._save_runtime_cache()
        return output[:real].clone()  # the buffer is the next chunk's output

    def infer(self, values: torch.Tensor) -> torch.Tensor:
        """Runs the engine on `values` (copied into the engine's input buffer, wherever they are);
        the result is a new tensor on the device in the engine's output dtype."""
        chunks = plan_batches(self.profiles, tuple(values.shape))
        with self.stream.scope():
            parts = [self._run(values, chunk) for chunk in chunks]
            result = parts[0] if len(parts) == 1 else torch.cat(parts)
        self.stream.hand_over(result)
        return result

    def memory_bytes(self) -> dict[str, int]:
        """TensorRT's own GPU memory: the engine plan (its weights) and each created context's scratch memory."""
        # device_memory_size_v2 (TensorRT >= 10.1 and TensorRT-RTX) replaced device_memory_size.
        engine = self.engine
        per_context = engine.device_memory_size_v2 if hasattr(engine, "device_memory_size_v2") else engine.device_memory_size
        return {"engine": self.plan_bytes, "contexts": len(self._contexts) * int(per_context)}

    def close(self) -> None:
        """Frees the contexts, buffers and engine (GPU memory)."""
        self._contexts.clear()
        self._inputs.clear()
        self._outputs.clear()
        self._runtime_config = self._runtime_cache = None
        self.engine = None


class TrtEncoder(Encoder):
    """`encode_image` / `encode_text` through the engines of an engine folder (device tensors in and out).

    `manifest` is the engine folder's, as its loader read (and, for a build, checked) it; the runner
    does not re-read it. Before any engine is deserialised, `check_engines_usable` refuses engines
    built for another card or library: the one gate every engine passes before it runs.
    """

    name = "trt"

    def __init__(self, folder: Path, manifest: EngineManifest, device: torch.device) -> None:
        super().__init__(device, "fp16")
        if device.type != "cuda" or not torch.cuda.is_available():
            raise BackendUnavailableError("TensorRT engines run on a CUDA GPU; torch sees none here.")
        self.folder = Path(folder)
        self.manifest = manifest
        self.target = gpu_target(device)
        self.flavor: TrtFlavor = select_trt_flavor(manifest.flavor, self.target)
        check_engines_usable(manifest, self.folder, self.flavor.name, self.flavor.version, self.target)
        self._trt = trt_module(self.flavor)
        self._runners: dict[str, TrtEngineRunner] = {}

    def runner(self, graph: str) -> TrtEngineRunner:
        """The engine runner of `graph` ("vision", "text"), loaded on first use."""
        if graph not in self._runners:
            path = self.folder / self.manifest.engines[graph]
            cache = path.with_name(path.name + RUNTIME_CACHE_SUFFIX) if self.flavor.is_rtx else None
            self._runners[graph] = TrtEngineRunner(path, self._trt, self.device, cache)
        return self._runners[graph]

    def _encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.runner("vision").infer(pixels)

    def _encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.runner("text").infer(input_ids)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "tensorrt": str(self.flavor), "gpu": str(self.target),
                "engines_built_for": str(self.manifest.target), "engines": str(self.folder)}

    def runtime_label(self) -> str:
        """"tensorrt 10.13 on NVIDIA H100 (9.0)": the backend a parity report names."""
        return f"{self.flavor} on {self.target}"

    def runtime_memory_mb(self) -> dict[str, float] | None:
        totals = {"tensorrt_engines_mb": 0.0, "tensorrt_contexts_mb": 0.0}
        for runner in self._runners.values():
            memory = runner.memory_bytes()
            totals["tensorrt_engines_mb"] += memory["engine"] / 2**20
            totals["tensorrt_contexts_mb"] += memory["contexts"] / 2**20
        return totals

    def close(self) -> None:
        for runner in self._runners.values():
            runner.close()
        self._runners.clear()
