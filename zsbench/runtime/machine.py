"""What this machine and this Python have: the CPU, the GPUs (as the driver and as torch see them),
and the runtime libraries. `zsbench doctor` reports it; every result's provenance record is built
from the same functions (`zsbench.runtime.provenance`).

Two views of the GPUs, because they disagree exactly when something is broken:

- the driver's (`nvml_report`, through NVIDIA's management library, libnvidia-ml, with ctypes):
  the driver version, the newest CUDA it supports, and every GPU it sees (name, compute
  capability, memory), whatever torch can do;
- torch's (`torch_report`): the CUDA version torch was built for, the GPUs it can use, and with
  `kernels=True` a real 64x64 matmul on each, compared with the CPU's (the first CUDA call is
  where a driver too old for torch's CUDA, or a torch without kernels for the card, shows up).

`probe_libraries` imports onnxruntime (for its providers) and the TensorRT flavors (their
versions and TensorRT-RTX's target list), which may hang or crash on a broken install; doctor runs
it and `torch_report` in a child process with a time limit (`python -m zsbench.runtime.machine`),
and reads what the child prints. Nothing here installs or downloads anything.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import warnings
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

NVML_LIBRARY = "libnvidia-ml.so.1" if sys.platform != "win32" else "nvml.dll"
# Distribution names each runtime library is published under (the first installed one is reported).
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "torchvision": ("torchvision",),
    "onnxruntime": ("onnxruntime-gpu", "onnxruntime"),
    "onnx": ("onnx",),
    "tensorrt": ("tensorrt-cu13", "tensorrt-cu12", "tensorrt", "tensorrt-cu13-bindings", "tensorrt-cu12-bindings"),
    "tensorrt-rtx": ("tensorrt-rtx-cu13", "tensorrt-rtx-cu12", "tensorrt-rtx", "tensorrt_rtx"),
    "polygraphy": ("polygraphy",),
    "modelopt": ("nvidia-modelopt",),
    "open_clip_torch": ("open_clip_torch", "open-clip-torch"),
    "zsbench": ("zsbench",),
}
# What NVIDIA Model Optimizer's ONNX quantization imports beyond onnx and onnxruntime (`zsbench[fp8]` installs them).
MODELOPT_MODULES = ("modelopt", "onnx_graphsurgeon", "onnxslim", "onnxconverter_common", "ml_dtypes", "lief", "cppimport")


def installed_distribution(library: str) -> tuple[str, str] | None:
    """(distribution name, version) of the first installed distribution of `library` (`DISTRIBUTIONS`), or None."""
    for name in DISTRIBUTIONS.get(library, (library,)):
        try:
            return name, metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def library_version(library: str) -> str | None:
    """The installed version of `library` (a key of `DISTRIBUTIONS`), without importing it."""
    found = installed_distribution(library)
    return found[1] if found else None


def cpu_model() -> str:
    """The CPU's model name ("AMD EPYC 7763 64-Core Processor"), not just its architecture."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                return value.strip()
    if sys.platform == "darwin" and shutil.which("sysctl"):
        try:
            found = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5)
            if found.returncode == 0 and found.stdout.strip():
                return found.stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
    return platform.processor() or platform.machine()


@functools.cache  # one process runs one checkout: asked once, not for every result of a suite
def zsbench_source() -> dict[str, Any]:
    """zsbench's version, and when it runs from a git checkout, the commit and whether files differ from it."""
    source: dict[str, Any] = {"version": library_version("zsbench"), "commit": None, "modified": None}
    checkout = Path(__file__).resolve().parents[2]
    git = shutil.which("git")
    if git is None or not (checkout / ".git").exists():
        return source
    try:
        commit = subprocess.run([git, "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        status = subprocess.run([git, "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return source
    if commit.returncode == 0:
        source["commit"] = commit.stdout.strip()
        source["modified"] = bool(status.stdout.strip()) if status.returncode == 0 else None
    return source


# --- the driver's view: NVML -------------------------------------------------------------------


@dataclass(frozen=True)
class DriverGpu:
    """A GPU as the driver sees it."""

    index: int
    name: str
    compute_capability: str
    memory_gib: float


@dataclass(frozen=True)
class DriverReport:
    """The NVIDIA driver: its version, the newest CUDA it supports ("12.4"), its GPUs; `error` when NVML
    loaded but failed (the GPUs are then unknown)."""

    version: str | None
    cuda: str | None
    gpus: tuple[DriverGpu, ...] = ()
    error: str | None = None

    @property
    def cuda_major(self) -> int | None:
        return int(self.cuda.split(".")[0]) if self.cuda else None


class _NvmlMemory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


class NvmlError(Exception):
    """An NVML call that did not return NVML_SUCCESS."""


def _nvml_call(lib: Any, name: str, *args: Any) -> None:
    code = getattr(lib, name)(*args)
    if code != 0:
        describe = getattr(lib, "nvmlErrorString", None)
        text = describe(code) if describe is not None else None
        raise NvmlError(f"{name}: {text.decode() if isinstance(text, bytes) else text or f'error {code}'}")


def read_nvml(lib: Any) -> DriverReport:
    """The driver report, through an NVML library object (a `ctypes.CDLL` of libnvidia-ml)."""
    try:
        _nvml_call(lib, "nvmlInit_v2")
    except NvmlError as err:
        return DriverReport(None, None, (), f"NVML could not start ({err}): is the NVIDIA driver loaded?")
    try:
        version = ctypes.create_string_buffer(96)
        _nvml_call(lib, "nvmlSystemGetDriverVersion", version, ctypes.c_uint(96))
        cuda = ctypes.c_int()
        _nvml_call(lib, "nvmlSystemGetCudaDriverVersion_v2", ctypes.byref(cuda))
        count = ctypes.c_uint()
        _nvml_call(lib, "nvmlDeviceGetCount_v2", ctypes.byref(count))
        gpus = []
        for index in range(count.value):
            handle = ctypes.c_void_p()
            _nvml_call(lib, "nvmlDeviceGetHandleByIndex_v2", ctypes.c_uint(index), ctypes.byref(handle))
            name = ctypes.create_string_buffer(96)
            _nvml_call(lib, "nvmlDeviceGetName", handle, name, ctypes.c_uint(96))
            major, minor = ctypes.c_int(), ctypes.c_int()
            _nvml_call(lib, "nvmlDeviceGetCudaComputeCapability", handle, ctypes.byref(major), ctypes.byref(minor))
            memory = _NvmlMemory()
            _nvml_call(lib, "nvmlDeviceGetMemoryInfo", handle, ctypes.byref(memory))
            gpus.append(DriverGpu(index, name.value.decode(errors="replace"), f"{major.value}.{minor.value}",
                                  round(memory.total / 2**30, 1)))
        cuda_text = f"{cuda.value // 1000}.{cuda.value % 1000 // 10}"
        return DriverReport(version.value.decode(errors="replace"), cuda_text, tuple(gpus))
    except NvmlError as err:
        return DriverReport(None, None, (), f"NVML failed: {err}")
    finally:
        try:
            _nvml_call(lib, "nvmlShutdown")
        except NvmlError:
            pass


def nvml_report(library: str = NVML_LIBRARY) -> DriverReport | None:
    """The NVIDIA driver's report, or None where no NVIDIA driver is installed (no libnvidia-ml)."""
    try:
        lib = ctypes.CDLL(library)
    except OSError:
        return None
    lib.nvmlErrorString.restype = ctypes.c_char_p
    return read_nvml(lib)


# --- torch's view ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TorchGpu:
    """A GPU as torch sees it; `kernel` is "ok", why a matmul failed on it, or None (not tried)."""

    index: int
    name: str
    compute_capability: str
    memory_gib: float
    kernel: str | None = None


@dataclass(frozen=True)
class TorchReport:
    """torch: its version, the CUDA it was built for (None: a CPU-only build), whether CUDA works and
    what it said when not, its GPUs, its CPU threads, and the instruction set through which the CPU
    multiplies bf16 natively (`zsbench.runtime.cpu_features.native_bf16`; None: torch would emulate bf16)."""

    version: str
    cuda: str | None
    cuda_available: bool
    gpus: tuple[TorchGpu, ...]
    threads: int
    cuda_warning: str | None = None
    native_bf16: str | None = None

    @property
    def cuda_major(self) -> int | None:
        return int(self.cuda.split(".")[0]) if self.cuda else None


def torch_gpu(index: int) -> TorchGpu:
    """GPU `index` as torch describes it (the CUDA context must be available)."""
    import torch

    properties = torch.cuda.get_device_properties(index)
    return TorchGpu(index, properties.name, f"{properties.major}.{properties.minor}", round(properties.total_memory / 2**30, 1))


def matmul_check(index: int) -> str:
    """"ok" when a 64x64 fp32 matmul on GPU `index` equals the CPU's (to 1e-3), else what went wrong."""
    import torch

    generator = torch.Generator().manual_seed(index)
    values = torch.randn(64, 64, generator=generator)
    try:
        with torch.cuda.device(index):
            on_gpu = values.to(f"cuda:{index}")
            result = (on_gpu @ on_gpu).cpu()
            torch.cuda.synchronize(index)
    except Exception as err:  # noqa: BLE001 - any CUDA failure is the answer (driver, missing kernels, ...)
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".strip()
    error = float((result - values @ values).abs().max())
    return "ok" if error <= 1e-3 * max(1.0, float((values @ values).abs().max())) else f"wrong result: max abs error {error:.3g}"


def torch_report(kernels: bool) -> TorchReport:
    """torch's view of the GPUs (with `kernels`, a matmul on each: `matmul_check`) and of the CPU's bf16."""
    import torch

    from zsbench.runtime.cpu_features import native_bf16

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = torch.cuda.is_available()
    said = [str(w.message).strip() for w in caught if "cuda" in str(w.message).lower() or "driver" in str(w.message).lower()]
    gpus = []
    if available:
        for index in range(torch.cuda.device_count()):
            gpu = torch_gpu(index)
            gpus.append(TorchGpu(**{**asdict(gpu), "kernel": matmul_check(index) if kernels else None}))
    return TorchReport(torch.__version__, torch.version.cuda, available, tuple(gpus), torch.get_num_threads(),
                       " ".join(said) or None, native_bf16())


# --- runtime libraries -------------------------------------------------------------------------


@dataclass(frozen=True)
class LibraryReport:
    """One runtime library: installed (distribution and version), imported or why not, and what it offers
    (onnxruntime's providers, TensorRT-RTX's compute-capability targets, polygraphy's TensorRT-RTX backend)."""

    name: str
    distribution: str | None = None
    version: str | None = None
    import_error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def installed(self) -> bool:
        return self.distribution is not None or self.version is not None

    @property
    def usable(self) -> bool:
        return self.installed and self.import_error is None


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _import(name: str, module: str, details: Any) -> LibraryReport:
    """Imports `module` (if installed) and fills the report with `details(module)`."""
    found = installed_distribution(name)
    if found is None and not _importable(module):
        return LibraryReport(name)
    distribution, version = found if found else (None, None)
    try:
        imported = importlib.import_module(module)
    except Exception as err:  # noqa: BLE001 - ImportError, OSError (missing .so), anything a broken install raises
        return LibraryReport(name, distribution, version, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
    return LibraryReport(name, distribution, str(getattr(imported, "__version__", version)), None, details(imported))


def probe_libraries() -> dict[str, LibraryReport]:
    """Every runtime library zsbench can use, imported where that tells something (see the module docstring)."""
    from zsbench.runtime.flavor import format_capability, rtx_capabilities

    reports = {
        "onnxruntime": _import("onnxruntime", "onnxruntime", lambda ort: {"providers": list(ort.get_available_providers())}),
        "tensorrt": _import("tensorrt", "tensorrt", lambda trt: {}),
        "tensorrt-rtx": _import("tensorrt-rtx", "tensorrt_rtx", lambda trt: {
            "compute_capabilities": [format_capability(c) for c in rtx_capabilities(trt)]}),
        "polygraphy": _import("polygraphy", "polygraphy", lambda poly: {
            "tensorrt_rtx_backend": _importable("polygraphy.backend.tensorrt_rtx")}),
    }
    for name, modules in {"onnx": ("onnx", "onnxscript"), "modelopt": MODELOPT_MODULES}.items():
        found = installed_distribution(name)  # not imported: slow (modelopt) or not a runtime (onnx)
        reports[name] = LibraryReport(name, *(found or (None, None)),
                                      details={"modules": {m: _importable(m) for m in modules}} if found else {})
    return reports


# --- the child process doctor runs -------------------------------------------------------------


@dataclass(frozen=True)
class ProcessProbe:
    """What the time-limited child reported: torch's view and the libraries (None where it failed: `error`)."""

    torch: TorchReport | None
    libraries: dict[str, LibraryReport]
    error: str | None = None
    seconds: float | None = None


def _from_json(data: dict[str, Any]) -> ProcessProbe:
    torch_data = data["torch"]
    report = TorchReport(**{**torch_data, "gpus": tuple(TorchGpu(**g) for g in torch_data["gpus"])})
    return ProcessProbe(report, {name: LibraryReport(**value) for name, value in data["libraries"].items()})


def probe_in_child(timeout: float, python: str = sys.executable) -> ProcessProbe:
    """Runs `torch_report(kernels=True)` and `probe_libraries()` in a child Python, at most `timeout` seconds."""
    import time

    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                                   os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run([python, "-m", "zsbench.runtime.machine"], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return ProcessProbe(None, {}, f"the torch and library probe did not finish in {timeout:.0f} s (a hung CUDA "
                                      "initialisation or driver?); run `python -c 'import torch; torch.zeros(1).cuda()'` to see where")
    seconds = round(time.perf_counter() - start, 2)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        how = f"signal {-done.returncode}" if done.returncode < 0 else f"exit status {done.returncode}"
        return ProcessProbe(None, {}, f"the torch and library probe failed ({how}): {last}", seconds)
    try:
        probe = _from_json(json.loads(done.stdout.strip().splitlines()[-1]))
    except (ValueError, KeyError, TypeError, IndexError) as err:
        return ProcessProbe(None, {}, f"the torch and library probe printed no report ({err!r})", seconds)
    return ProcessProbe(probe.torch, probe.libraries, None, seconds)


def _child_main() -> None:
    libraries = probe_libraries()  # before torch: a library that needs torch imports it itself
    report = torch_report(kernels=True)
    print(json.dumps({"torch": asdict(report), "libraries": {name: asdict(value) for name, value in libraries.items()}}))


if __name__ == "__main__":
    _child_main()
