"""A stand-in for the `tensorrt` module that enforces the rules of TensorRT 10's runtime API our runner relies on.

It tests OUR runner logic (profile choice, padding, splitting, buffer sizing, call order,
stream use), not TensorRT: the "engine" is a JSON description, and "execution" reads the
input buffer at the address the runner set and writes a known function of each row to the
output address. Rules enforced, each a TensorRT 10 requirement or documented advice:

- an execution context selects its optimization profile (`set_optimization_profile_async`)
  before any `set_input_shape`; a profile serves one context at a time;
- `set_input_shape` returns False for a shape outside the active profile (TensorRT does);
- the output shape is queried (`get_tensor_shape`) after the last input shape was set and
  before `execute_async_v3`, i.e. the runner sized the output for this batch;
- both tensor addresses are set before execution;
- work goes to a stream that is not the legacy default stream (handle 0) nor the per-thread
  default stream (handle 2), and a runner keeps to one stream.

Memory is accessed through ctypes, so the runner is driven with CPU tensors and a host
stand-in for its CUDA stream.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

__version__ = "10.99-standin"
DEFAULT_STREAMS = (0, 2)  # cudaStreamLegacy's handle is 0 (also 1), cudaStreamPerThread's is 2


class DataType:
    FLOAT = "float32"
    HALF = "float16"
    BF16 = "bfloat16"
    INT32 = "int32"
    INT64 = "int64"


class TensorIOMode:
    INPUT = "input"
    OUTPUT = "output"


class Logger:
    ERROR = 1

    def __init__(self, severity: int) -> None:
        self.severity = severity


_CTYPES = {"float32": (ctypes.c_float, np.float32), "float16": (ctypes.c_uint16, np.float16),
           "int64": (ctypes.c_int64, np.int64), "int32": (ctypes.c_int32, np.int32)}


def _view(address: int, count: int, dtype: str) -> np.ndarray:
    ctype, numpy_type = _CTYPES[dtype]
    return np.ctypeslib.as_array((ctype * count).from_address(address)).view(numpy_type)


def expected_output(values: np.ndarray, width: int) -> np.ndarray:
    """What the stand-in engine computes per row: the row's sum plus the column index."""
    rows = values.reshape(values.shape[0], -1).astype(np.float64).sum(1)
    return rows[:, None] + np.arange(width)[None, :]


def write_engine(path: Path, input_name: str, input_dtype: str, rest: tuple[int | None, ...], profiles: list[list[list[int]]],
                 output_name: str, output_dtype: str, width: int) -> Path:
    """An engine file the stand-in runtime deserialises: its IO and optimization profiles."""
    path.write_text(json.dumps({"input": input_name, "input_dtype": input_dtype, "rest": list(rest), "profiles": profiles,
                                "output": output_name, "output_dtype": output_dtype, "width": width}))
    return path


class Runtime:
    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def deserialize_cuda_engine(self, data: bytes) -> Engine:
        return Engine(json.loads(data))


class RuntimeCache:
    def __init__(self) -> None:
        self.kernels: list[str] = []
        self.loaded: bytes | None = None

    def deserialize(self, blob: bytes) -> bool:
        if not bytes(blob).startswith(b"kernels:"):
            return False
        self.loaded = bytes(blob)
        self.kernels = [k for k in bytes(blob)[8:].decode().split(",") if k]
        return True

    def serialize(self) -> bytes:
        return ("kernels:" + ",".join(self.kernels)).encode()


class RuntimeConfig:
    def __init__(self) -> None:
        self.cache: RuntimeCache | None = None

    def create_runtime_cache(self) -> RuntimeCache:
        return RuntimeCache()

    def set_runtime_cache(self, cache: RuntimeCache) -> bool:
        self.cache = cache
        return True

    def get_runtime_cache(self) -> RuntimeCache | None:
        return self.cache


class Engine:
    device_memory_size_v2 = 3 * 2**20

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.num_io_tensors = 2
        self.num_optimization_profiles = len(spec["profiles"])
        self.contexts: list[Context] = []
        self.profiles_in_use: set[int] = set()

    def get_tensor_name(self, index: int) -> str:
        return [self.spec["input"], self.spec["output"]][index]

    def get_tensor_mode(self, name: str) -> str:
        return TensorIOMode.INPUT if name == self.spec["input"] else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str) -> str:
        return self.spec["input_dtype"] if name == self.spec["input"] else self.spec["output_dtype"]

    def get_tensor_profile_shape(self, name: str, profile: int) -> list[tuple[int, ...]]:
        assert name == self.spec["input"], f"profile shapes asked for {name}, which is not an input"
        return [tuple(shape) for shape in self.spec["profiles"][profile]]

    def create_runtime_config(self) -> RuntimeConfig:
        return RuntimeConfig()

    def create_execution_context(self, runtime_config: RuntimeConfig | None = None) -> Context:
        context = Context(self, runtime_config)
        self.contexts.append(context)
        return context


class Context:
    def __init__(self, engine: Engine, runtime_config: RuntimeConfig | None) -> None:
        self.engine = engine
        self.runtime_config = runtime_config
        self.profile: int | None = None
        self.input_shape: tuple[int, ...] | None = None
        self.output_sized = False
        self.addresses: dict[str, int] = {}
        self.stream: int | None = None
        self.executed_shapes: list[tuple[int, ...]] = []

    def _use_stream(self, stream: int) -> None:
        assert stream not in DEFAULT_STREAMS, f"work queued on a default CUDA stream (handle {stream})"
        assert self.stream in (None, stream), f"a context switched streams ({self.stream} -> {stream})"
        self.stream = stream

    def set_optimization_profile_async(self, index: int, stream: int) -> bool:
        self._use_stream(stream)
        assert 0 <= index < self.engine.num_optimization_profiles, f"profile {index} does not exist"
        assert index not in self.engine.profiles_in_use, f"profile {index} already serves another context"
        self.engine.profiles_in_use.add(index)
        self.profile = index
        return True

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        assert self.profile is not None, "set_input_shape before the context selected its optimization profile"
        assert name == self.engine.spec["input"], f"{name} is not the engine's input"
        low, _, high = self.engine.spec["profiles"][self.profile]
        shape = tuple(int(d) for d in shape)
        self.output_sized = False
        if len(shape) != len(low) or not all(lo <= s <= hi for lo, s, hi in zip(low, shape, high)):
            self.input_shape = None
            return False  # TensorRT logs an error and returns False
        self.input_shape = shape
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        if name == self.engine.spec["input"]:
            return self.input_shape or (-1, *self.engine.spec["rest"])
        if self.input_shape is None:
            return (-1, self.engine.spec["width"])
        self.output_sized = True
        return (self.input_shape[0], self.engine.spec["width"])

    def set_tensor_address(self, name: str, address: int) -> bool:
        assert address, f"null address for {name}"
        self.addresses[name] = address
        return True

    def execute_async_v3(self, stream: int) -> bool:
        self._use_stream(stream)
        spec = self.engine.spec
        assert self.input_shape is not None, "execute without a valid input shape"
        assert self.output_sized, "execute before the output shape was read for this input shape"
        assert set(self.addresses) == {spec["input"], spec["output"]}, "execute before both tensor addresses were set"
        count = int(np.prod(self.input_shape))
        values = _view(self.addresses[spec["input"]], count, spec["input_dtype"]).reshape(self.input_shape)
        output = _view(self.addresses[spec["output"]], self.input_shape[0] * spec["width"], spec["output_dtype"])
        output[:] = expected_output(values, spec["width"]).reshape(-1).astype(output.dtype)
        if self.runtime_config is not None and self.runtime_config.cache is not None:
            self.runtime_config.cache.kernels.append(f"profile{self.profile}")
        self.executed_shapes.append(self.input_shape)
        return True


class HostStream:
    """Stands in for the runner's CUDA stream: a handle that is not a default stream's."""

    handle = 0x5EED

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        yield

    def hand_over(self, tensor: torch.Tensor) -> None:
        del tensor
