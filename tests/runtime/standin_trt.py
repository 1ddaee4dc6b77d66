"""A stand-in for the `tensorrt` module that enforces the rules of TensorRT 10's runtime API our runner relies on,
and (`tensorrt_11()`) the differences of TensorRT 11 that zsbench's code could meet.

It tests OUR runner logic (profile choice, padding, splitting, buffer sizing, call order,
stream use, object lifetimes), not TensorRT: the "engine" is a JSON description, and
"execution" reads the input buffer at the address the runner set and writes a known function
of each row to the output address. Rules enforced, each a TensorRT 10 requirement or documented advice:

- an execution context selects its optimization profile (`set_optimization_profile_async`)
  before any `set_input_shape`; a profile serves one context at a time;
- `set_input_shape` returns False for a shape outside the active profile (TensorRT does);
- the output shape is queried (`get_tensor_shape`) after the last input shape was set and
  before `execute_async_v3`, i.e. the runner sized the output for this batch;
- both tensor addresses are set before execution;
- work goes to a stream that is not the legacy default stream (handle 0) nor the per-thread
  default stream (handle 2), and a runner keeps to one stream;
- objects are released after those that depend on them (the C++ objects hold plain pointers):
  contexts before the runtime config, runtime cache and engine they use, a runtime config
  before the engine, the engine before the runtime. Like the C++ objects, the stand-ins hold
  only weak references to what they use; each release is logged in `RELEASED`, and a release
  that leaves a dependent alive, or finds what it used already gone, in `VIOLATIONS`;
- TensorRT-RTX's runtime cache gains one kernel per (profile, input shape) an execution
  compiles for.

TensorRT 11 (`tensorrt_11()`), from NVIDIA's 10.x -> 11.x migration guide: the precision
builder flags are gone (FP16, BF16, INT8, FP8, INT4, FP4, OBEY/PREFER_PRECISION_CONSTRAINTS,
DIRECT_IO; TF32 stays), `ICudaEngine.device_memory_size` is gone (device_memory_size_v2 stays),
and NetworkDefinitionCreationFlag.STRONGLY_TYPED is deprecated (ignored: every network is
strongly typed); `tensorrt_11(strongly_typed_flag=False)` models its announced removal.

Memory is accessed through ctypes, so the runner is driven with CPU tensors and a host
stand-in for its CUDA stream.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import sys
import types
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

__version__ = "10.99-standin"
DEFAULT_STREAMS = (0, 2)  # cudaStreamLegacy's handle is 0 (also 1), cudaStreamPerThread's is 2
RELEASED: list[str] = []  # the kind of each stand-in object released, in order
VIOLATIONS: list[str] = []  # releases out of dependency order


def _alive(ref: weakref.ref | None) -> bool:
    return ref is None or ref() is not None


class _Tracked:
    """A stand-in object whose release is logged, and checked against what it uses and what uses it."""

    kind = "object"

    def __init__(self, uses: tuple[Any, ...] = ()) -> None:
        self._uses = [weakref.ref(used) for used in uses if used is not None]
        self._users: list[weakref.ref] = []
        for used in uses:
            if used is not None:
                used._users.append(weakref.ref(self))

    def __del__(self) -> None:
        RELEASED.append(self.kind)
        gone = [ref for ref in self._uses if ref() is None]
        if gone:
            VIOLATIONS.append(f"a {self.kind} was released after an object it uses")
        alive = [user().kind for user in self._users if user() is not None]
        if alive:
            VIOLATIONS.append(f"a {self.kind} was released while its {', '.join(alive)} still used it")


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


class Dims:
    """TensorRT's shape type: iterable and indexable from 0 (conservatively: no negative index, as a C array)."""

    def __init__(self, values: tuple[int, ...]) -> None:
        self._values = tuple(values)

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[int]:
        return iter(self._values)

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < len(self._values):
            raise IndexError(f"Dims index {index} out of range")
        return self._values[index]


class Runtime(_Tracked):
    kind = "runtime"

    def __init__(self, logger: Logger) -> None:
        super().__init__()
        self.logger = logger

    def deserialize_cuda_engine(self, data: bytes) -> Engine:
        return sys.modules[type(self).__module__].Engine(json.loads(data), self)


class RuntimeCache(_Tracked):
    kind = "runtime cache"

    def __init__(self, engine: Engine) -> None:
        super().__init__((engine,))
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


class RuntimeConfig(_Tracked):
    kind = "runtime config"

    def __init__(self, engine: Engine) -> None:
        super().__init__((engine,))
        self._engine = weakref.ref(engine)
        self._cache: weakref.ref | None = None

    @property
    def cache(self) -> RuntimeCache | None:
        return self._cache() if self._cache is not None else None

    def create_runtime_cache(self) -> RuntimeCache:
        return RuntimeCache(self._engine())

    def set_runtime_cache(self, cache: RuntimeCache) -> bool:
        self._cache = weakref.ref(cache)  # a plain pointer in C++: the caller keeps the cache alive
        cache._users.append(weakref.ref(self))
        return True

    def get_runtime_cache(self) -> RuntimeCache | None:
        return self.cache


class Engine(_Tracked):
    kind = "engine"
    device_memory_size = 3 * 2**20  # TensorRT 10.0; removed in 11
    device_memory_size_v2 = 3 * 2**20  # TensorRT >= 10.1

    def __init__(self, spec: dict[str, Any], runtime: Runtime) -> None:
        super().__init__((runtime,))
        self.spec = spec
        self.num_io_tensors = 2
        self.num_optimization_profiles = len(spec["profiles"])
        self._contexts: list[weakref.ref] = []
        self.profiles_in_use: set[int] = set()

    @property
    def contexts(self) -> list[Context]:
        """The execution contexts created from this engine that are still alive, in creation order."""
        return [context for ref in self._contexts if (context := ref()) is not None]

    def get_tensor_name(self, index: int) -> str:
        return [self.spec["input"], self.spec["output"]][index]

    def get_tensor_mode(self, name: str) -> str:
        return TensorIOMode.INPUT if name == self.spec["input"] else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str) -> str:
        return self.spec["input_dtype"] if name == self.spec["input"] else self.spec["output_dtype"]

    def get_tensor_profile_shape(self, name: str, profile: int) -> list[tuple[int, ...]]:
        assert name == self.spec["input"], f"profile shapes asked for {name}, which is not an input"
        return [tuple(shape) for shape in self.spec["profiles"][profile]]

    def get_tensor_shape(self, name: str) -> Dims:
        """The engine-level shape: -1 where it depends on the context's input shape (the batch)."""
        return Dims((-1, *self.spec["rest"]) if name == self.spec["input"] else (-1, self.spec["width"]))

    def create_runtime_config(self) -> RuntimeConfig:
        return RuntimeConfig(self)

    def create_execution_context(self, runtime_config: RuntimeConfig | None = None) -> Context:
        context = Context(self, runtime_config)
        self._contexts.append(weakref.ref(context))
        return context


class Context(_Tracked):
    kind = "context"

    def __init__(self, engine: Engine, runtime_config: RuntimeConfig | None) -> None:
        cache = runtime_config.cache if runtime_config is not None else None
        super().__init__((engine, runtime_config, cache))
        self._engine = weakref.ref(engine)
        self._runtime_config = weakref.ref(runtime_config) if runtime_config is not None else None
        self.profile: int | None = None
        self.input_shape: tuple[int, ...] | None = None
        self.output_sized = False
        self.addresses: dict[str, int] = {}
        self.stream: int | None = None
        self.executed_shapes: list[tuple[int, ...]] = []

    @property
    def engine(self) -> Engine:
        engine = self._engine()
        assert engine is not None, "a context was used after its engine was released"
        return engine

    @property
    def runtime_config(self) -> RuntimeConfig | None:
        return self._runtime_config() if self._runtime_config is not None else None

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

    def get_tensor_shape(self, name: str) -> Dims:
        if name == self.engine.spec["input"]:
            return Dims(self.input_shape or (-1, *self.engine.spec["rest"]))
        if self.input_shape is None:
            return Dims((-1, self.engine.spec["width"]))
        self.output_sized = True
        return Dims((self.input_shape[0], self.engine.spec["width"]))

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
        config = self.runtime_config
        if config is not None and config.cache is not None:
            kernel = f"p{self.profile}:{'x'.join(map(str, self.input_shape))}"
            if kernel not in config.cache.kernels:  # compiled once per profile and shape, then served from the cache
                config.cache.kernels.append(kernel)
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


# The builder side zsbench's own code touches (polygraphy does the rest): flags on the builder config.
class BuilderFlag:
    """TensorRT 10's precision and format flags (a subset; the names are what matters)."""

    FP16, BF16, INT8, FP8, INT4, FP4 = "FP16", "BF16", "INT8", "FP8", "INT4", "FP4"
    TF32 = "TF32"
    OBEY_PRECISION_CONSTRAINTS, PREFER_PRECISION_CONSTRAINTS, DIRECT_IO = (
        "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO")
    REFIT = "REFIT"


class NetworkDefinitionCreationFlag:
    EXPLICIT_BATCH = "EXPLICIT_BATCH"  # deprecated in 10 (networks are explicit batch)
    STRONGLY_TYPED = "STRONGLY_TYPED"


class BuilderConfig:
    """IBuilderConfig's flags: TF32 is on by default; only flags the module defines may be set or cleared."""

    def __init__(self, flags: type) -> None:
        self._known = {name for name in vars(flags) if not name.startswith("_")}
        self.flags = {"TF32"} if "TF32" in self._known else set()

    def set_flag(self, flag: str) -> None:
        assert flag in self._known, f"set_flag({flag}): no such builder flag"
        self.flags.add(flag)

    def clear_flag(self, flag: str) -> None:
        assert flag in self._known, f"clear_flag({flag}): no such builder flag"
        self.flags.discard(flag)


REMOVED_IN_11 = ("FP16", "BF16", "INT8", "FP8", "INT4", "FP4", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS",
                 "DIRECT_IO")


def tensorrt_11(strongly_typed_flag: bool = True) -> types.ModuleType:
    """A stand-in TensorRT 11: this module with 11's removals (see the module docstring); without
    `strongly_typed_flag`, NetworkDefinitionCreationFlag has lost STRONGLY_TYPED as well."""
    module = types.ModuleType(f"standin_tensorrt_11{'' if strongly_typed_flag else '_no_strongly_typed'}")
    module.__dict__.update({name: value for name, value in globals().items() if not name.startswith("__")})
    module.__version__ = "11.99-standin"

    class Engine11(Engine):
        @property
        def device_memory_size(self) -> int:  # type: ignore[override]
            raise AttributeError("'ICudaEngine' object has no attribute 'device_memory_size' (removed in TensorRT 11)")

    module.Engine = Engine11
    module.BuilderFlag = type("BuilderFlag", (), {k: v for k, v in vars(BuilderFlag).items() if k not in REMOVED_IN_11})
    network_flags = {"STRONGLY_TYPED": "STRONGLY_TYPED"} if strongly_typed_flag else {}
    module.NetworkDefinitionCreationFlag = type("NetworkDefinitionCreationFlag", (), network_flags)
    module.Runtime = type("Runtime", (Runtime,), {"__module__": module.__name__})
    sys.modules[module.__name__] = module  # Runtime finds its Engine class through its module
    return module
