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
  (`<engine>.runtime.cache` beside the engine) is loaded when present, saved after each new
  context's first run, and saved again when the runner closes if it grew since (kernels for
  other text lengths, a last partial batch), so later processes skip the compilation.
- A runner owns its TensorRT objects (`_TrtObjects`) and releases them in dependency order:
  execution contexts, then the runtime config and the runtime cache they use, then the
  engine, then the runtime that deserialised it. `close()`, the context manager and a
  finaliser (a runner dropped without closing, as at interpreter exit) all run that one release.
- A batch of 0 rows returns an empty (0, width) result without running the engine.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import torch

from zsbench.errors import BackendUnavailableError, EngineError
from zsbench.jsonfiles import write_bytes_atomic
from zsbench.runtime.encoder import Encoder
from zsbench.runtime.engine_manifest import RUNTIME_CACHE_SUFFIX, EngineManifest, ShapeProfile, check_engines_usable
from zsbench.runtime.flavor import TrtFlavor, gpu_target, select_trt_flavor, trt_module
from zsbench.runtime.trust import digests_key


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


@dataclass
class _TrtObjects:
    """What a runner owns, so that its finaliser can release it without keeping the runner alive."""

    runtime: Any = None
    engine: Any = None
    runtime_config: Any = None
    runtime_cache: Any = None  # kept here: the config only refers to it, and it must outlive every context
    contexts: dict[int, Any] = field(default_factory=dict)
    buffers: list[dict[int, torch.Tensor]] = field(default_factory=list)
    cache_path: Path | None = None
    cache_digest: str | None = None  # SHA-256 of the cache as last loaded or saved: what "grew" is measured against

    def save_cache(self) -> None:
        """Writes the runtime cache to its file when it differs from what was last loaded or saved."""
        if self.runtime_cache is None or self.cache_path is None:
            return
        blob = bytes(self.runtime_cache.serialize())
        digest = hashlib.sha256(blob).hexdigest()
        if digest == self.cache_digest:
            return
        try:
            write_bytes_atomic(self.cache_path, blob)
            self.cache_digest = digest
        except OSError as err:  # a read-only engine folder costs the next process a recompilation, nothing else
            warnings.warn(f"Could not save TensorRT-RTX's runtime cache {self.cache_path}: {err}", stacklevel=2)

    def release(self) -> None:
        """Saves a grown runtime cache, then drops every object after those that depend on it: contexts,
        their buffers, the runtime config and cache, the engine, the runtime."""
        try:
            self.save_cache()
        finally:
            self.contexts.clear()
            for buffers in self.buffers:
                buffers.clear()
            self.runtime_config = None
            self.runtime_cache = None
            self.engine = None
            self.runtime = None


class TrtEngineRunner:
    """One deserialised engine; `infer(x)` maps a tensor (CUDA or CPU) to the engine's output on the device.

    `runtime_cache`: TensorRT-RTX's runtime cache file for this engine (None: standard TensorRT).
    `stream`: where the work goes (default: a new `CudaRunnerStream` on `device`).
    Use it as a context manager, or call `close()`; a runner that is dropped is released the same way.
    """

    def __init__(self, engine_path: Path, trt: ModuleType, device: torch.device, runtime_cache: Path | None = None,
                 stream: RunnerStream | None = None) -> None:
        self._owned = _TrtObjects()
        self._inputs: dict[int, torch.Tensor] = {}
        self._outputs: dict[int, torch.Tensor] = {}
        self._owned.buffers = [self._inputs, self._outputs]
        self._release = weakref.finalize(self, self._owned.release)
        self.path = engine_path
        self.device = device
        self.stream = stream if stream is not None else CudaRunnerStream(device)
        self.plan_bytes = engine_path.stat().st_size
        self._owned.runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
        with self.stream.scope():
            self._owned.engine = self._owned.runtime.deserialize_cuda_engine(engine_path.read_bytes())
        engine = self.engine
        if engine is None:
            self.close()
            raise EngineError(
                f"{trt.__name__} could not load {engine_path}: built for another GPU or TensorRT version, or damaged. "
                "Rebuild it with `zsbench engine build <export folder> --force`."
            )
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            self.close()
            raise EngineError(f"{engine_path} has inputs {inputs} and outputs {outputs}; expected one of each.")
        self.input_name, self.output_name = inputs[0], outputs[0]
        self.input_dtype = _torch_dtype(trt, engine.get_tensor_dtype(self.input_name))
        self.output_dtype = _torch_dtype(trt, engine.get_tensor_dtype(self.output_name))
        self.output_width = int(tuple(engine.get_tensor_shape(self.output_name))[-1])  # the embedding width (fixed)
        self.profiles = [
            ShapeProfile(self.input_name, *(tuple(int(d) for d in s) for s in engine.get_tensor_profile_shape(self.input_name, p)))
            for p in range(engine.num_optimization_profiles)
        ]
        self.runtime_cache = runtime_cache
        self.runtime_cache_loaded = False
        if runtime_cache is not None:
            self._open_runtime_cache(runtime_cache)

    @property
    def engine(self) -> Any:
        """The deserialised ICudaEngine (None once closed)."""
        return self._owned.engine

    @property
    def closed(self) -> bool:
        return not self._release.alive

    def _open_runtime_cache(self, path: Path) -> None:
        """An IRuntimeConfig and the runtime cache it uses, filled from the cache file when it suits this GPU."""
        owned = self._owned
        owned.runtime_config = self.engine.create_runtime_config()
        owned.runtime_cache = owned.runtime_config.create_runtime_cache()
        owned.cache_path = path
        if path.is_file():
            blob = path.read_bytes()
            with self.stream.scope():  # deserialize compares against the current CUDA context
                self.runtime_cache_loaded = bool(owned.runtime_cache.deserialize(blob))
            if self.runtime_cache_loaded:
                owned.cache_digest = hashlib.sha256(blob).hexdigest()
        owned.runtime_config.set_runtime_cache(owned.runtime_cache)

    def _context(self, index: int) -> Any:
        """The execution context of profile `index`, with its buffers (created on first use)."""
        contexts = self._owned.contexts
        if index not in contexts:
            if self._owned.runtime_config is not None:
                context = self.engine.create_execution_context(self._owned.runtime_config)
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
            contexts[index] = context
        return contexts[index]

    def _set_shape(self, context: Any, shape: tuple[int, ...]) -> None:
        if not context.set_input_shape(self.input_name, shape):
            raise EngineError(f"TensorRT refused input shape {shape} for {self.path} (profiles: {self.profiles}).")

    def _run(self, values: torch.Tensor, chunk: Chunk) -> torch.Tensor:
        """Runs one chunk on its profile; returns its output rows (padding dropped) as a new tensor."""
        first_run = chunk.profile not in self._owned.contexts
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
            self._owned.save_cache()
        return output[:real].clone()  # the buffer is the next chunk's output

    def infer(self, values: torch.Tensor) -> torch.Tensor:
        """Runs the engine on `values` (copied into the engine's input buffer, wherever they are);
        the result is a new tensor on the device in the engine's output dtype (0 rows in: 0 rows out)."""
        if self.closed:
            raise EngineError(f"The runner of {self.path} was closed; open the engine again to run it.")
        chunks = plan_batches(self.profiles, tuple(values.shape))  # checks the dimensions after the batch, even of 0 rows
        if not chunks:
            return torch.empty((0, self.output_width), dtype=self.output_dtype, device=self.device)
        with self.stream.scope():
            parts = [self._run(values, chunk) for chunk in chunks]
            result = parts[0] if len(parts) == 1 else torch.cat(parts)
        self.stream.hand_over(result)
        return result

    def memory_bytes(self) -> dict[str, int]:
        """TensorRT's own GPU memory: the engine plan (its weights) and each created context's scratch memory."""
        # device_memory_size_v2 (TensorRT >= 10.1 and TensorRT-RTX) replaced device_memory_size, which 11 removed.
        engine = self.engine
        if engine is None:
            return {"engine": 0, "contexts": 0}
        per_context = engine.device_memory_size_v2 if hasattr(engine, "device_memory_size_v2") else engine.device_memory_size
        return {"engine": self.plan_bytes, "contexts": len(self._owned.contexts) * int(per_context)}

    def close(self) -> None:
        """Saves a grown runtime cache, then frees the contexts, buffers, runtime config and cache, engine
        and runtime, in that order (GPU memory). Closing twice does nothing."""
        self._release()

    def __enter__(self) -> TrtEngineRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class TrtEncoder(Encoder):
    """`encode_image` / `encode_text` through the engines of an engine folder (device tensors in and out).

    `manifest` is the engine folder's, as its loader read (and, for a build, checked) it; the runner
    does not re-read it. Before any engine is deserialised, `check_engines_usable` refuses engines
    built for another card or library: the one gate every engine passes before it runs.
    """

    name = "trt"

    def __init__(self, folder: Path, manifest: EngineManifest, device: torch.device, precision: str = "fp16",
                 calibration: dict[str, Any] | None = None) -> None:
        super().__init__(device, precision)
        self.calibration = calibration  # what a quantized export's graphs were calibrated on (its manifest's record)
        if device.type != "cuda" or not torch.cuda.is_available():
            raise BackendUnavailableError("TensorRT engines run on a CUDA GPU; torch sees none here.")
        self.folder = Path(folder)
        self.manifest = manifest
        self.target = gpu_target(device)
        self.flavor: TrtFlavor = select_trt_flavor(manifest.flavor, self.target)
        check_engines_usable(manifest, self.folder, self.flavor.name, self.flavor.version, self.target)
        self._trt = trt_module(self.flavor)
        self._runners: dict[str, TrtEngineRunner] = {}  # each runner releases its own TensorRT objects (close or finaliser)

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
        described: dict[str, object] = {**super().describe(), "tensorrt": str(self.flavor), "gpu": str(self.target),
                                        "engines_built_for": str(self.manifest.target), "engines": str(self.folder)}
        if self.manifest.engine_sha256:  # caches key on the very engines run: a rebuild in the same folder is other engines
            described["engines_sha256"] = digests_key(self.manifest.engine_sha256)
        if self.calibration:
            described["calibration"] = self.calibration
        return described

    def provenance(self) -> dict[str, Any]:
        record = super().provenance()
        record["versions"][self.flavor.name] = self.flavor.version
        record["versions"]["polygraphy"] = self.manifest.versions.get("polygraphy")  # the one that built the engines
        record["engines_built_for"] = list(self.manifest.compute_capabilities or [self.manifest.compute_capability])
        record["artifacts"] = dict(self.manifest.engine_sha256)
        return record

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
