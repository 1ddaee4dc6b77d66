"""The machine probe: NVML read through a stand-in of NVIDIA's library (the real ctypes calls, its C
semantics: out-parameters, return codes), the CPU's model name, and the time-limited child."""

from __future__ import annotations

import ctypes
import os
import stat
import sys
from pathlib import Path

import pytest

from zsbench.runtime.machine import (
    DriverGpu,
    DriverReport,
    cpu_model,
    installed_distribution,
    nvml_report,
    probe_in_child,
    probe_libraries,
    read_nvml,
)

NVML_SUCCESS, NVML_ERROR_DRIVER_NOT_LOADED, NVML_ERROR_UNKNOWN = 0, 9, 999


class StandInNvml:
    """libnvidia-ml's calls zsbench makes, with their C contract: results through pointer arguments, an
    nvmlReturn_t code, nothing usable before nvmlInit_v2 or after nvmlShutdown."""

    def __init__(self, gpus: list[tuple[str, int, int, int]], driver: str = "550.54.15", cuda: int = 12040,
                 init_code: int = NVML_SUCCESS, fail: str | None = None) -> None:
        self.gpus, self.driver, self.cuda, self.init_code, self.fail = gpus, driver, cuda, init_code, fail
        self.started = False
        self.shut_down = False

    def _ok(self, name: str) -> int:
        assert self.started and not self.shut_down, f"{name} called outside nvmlInit/nvmlShutdown"
        return NVML_ERROR_UNKNOWN if self.fail == name else NVML_SUCCESS

    def nvmlInit_v2(self) -> int:  # noqa: N802 - NVML's names
        self.started = self.init_code == NVML_SUCCESS
        return self.init_code

    def nvmlShutdown(self) -> int:  # noqa: N802
        self.shut_down = True
        return NVML_SUCCESS

    def nvmlErrorString(self, code: int) -> bytes:  # noqa: N802
        return {NVML_ERROR_DRIVER_NOT_LOADED: b"Driver Not Loaded", NVML_ERROR_UNKNOWN: b"Unknown Error"}[code]

    def nvmlSystemGetDriverVersion(self, buffer: ctypes.Array, length: ctypes.c_uint) -> int:  # noqa: N802
        assert length.value >= len(self.driver) + 1
        buffer.value = self.driver.encode()
        return self._ok("nvmlSystemGetDriverVersion")

    def nvmlSystemGetCudaDriverVersion_v2(self, version: object) -> int:  # noqa: N802
        version._obj.value = self.cuda  # type: ignore[attr-defined] - byref(c_int)
        return self._ok("nvmlSystemGetCudaDriverVersion_v2")

    def nvmlDeviceGetCount_v2(self, count: object) -> int:  # noqa: N802
        count._obj.value = len(self.gpus)  # type: ignore[attr-defined]
        return self._ok("nvmlDeviceGetCount_v2")

    def nvmlDeviceGetHandleByIndex_v2(self, index: ctypes.c_uint, handle: object) -> int:  # noqa: N802
        assert 0 <= index.value < len(self.gpus)
        handle._obj.value = 0x1000 + index.value  # type: ignore[attr-defined]
        return self._ok("nvmlDeviceGetHandleByIndex_v2")

    def _gpu(self, handle: ctypes.c_void_p) -> tuple[str, int, int, int]:
        return self.gpus[handle.value - 0x1000]

    def nvmlDeviceGetName(self, handle: ctypes.c_void_p, buffer: ctypes.Array, length: ctypes.c_uint) -> int:  # noqa: N802
        buffer.value = self._gpu(handle)[0].encode()
        return self._ok("nvmlDeviceGetName")

    def nvmlDeviceGetCudaComputeCapability(self, handle: ctypes.c_void_p, major: object, minor: object) -> int:  # noqa: N802
        major._obj.value, minor._obj.value = self._gpu(handle)[1:3]  # type: ignore[attr-defined]
        return self._ok("nvmlDeviceGetCudaComputeCapability")

    def nvmlDeviceGetMemoryInfo(self, handle: ctypes.c_void_p, memory: object) -> int:  # noqa: N802
        memory._obj.total = self._gpu(handle)[3]  # type: ignore[attr-defined]
        return self._ok("nvmlDeviceGetMemoryInfo")


H100 = ("NVIDIA H100 80GB HBM3", 9, 0, 85_520_809_984)


def test_nvml_reports_the_driver_its_cuda_and_each_gpu() -> None:
    lib = StandInNvml([H100, ("NVIDIA A100-SXM4-80GB", 8, 0, 85_899_345_920)], driver="535.104.05", cuda=12020)
    report = read_nvml(lib)
    assert report == DriverReport("535.104.05", "12.2", (
        DriverGpu(0, "NVIDIA H100 80GB HBM3", "9.0", 79.6), DriverGpu(1, "NVIDIA A100-SXM4-80GB", "8.0", 80.0)))
    assert report.cuda_major == 12 and lib.shut_down


def test_nvml_failures_are_reported_not_raised() -> None:
    not_loaded = read_nvml(StandInNvml([H100], init_code=NVML_ERROR_DRIVER_NOT_LOADED))
    assert not_loaded.gpus == () and "NVML could not start (nvmlInit_v2: Driver Not Loaded)" in str(not_loaded.error)
    lib = StandInNvml([H100], fail="nvmlDeviceGetMemoryInfo")
    failed = read_nvml(lib)
    assert failed.error == "NVML failed: nvmlDeviceGetMemoryInfo: Unknown Error" and lib.shut_down


def test_no_nvidia_library_means_no_driver_report(tmp_path: Path) -> None:
    assert nvml_report(str(tmp_path / "libnvidia-ml.so.1")) is None


def test_the_cpu_is_named_by_model() -> None:
    name = cpu_model()
    assert name and name not in ("x86_64", "aarch64", "AMD64")
    if Path("/proc/cpuinfo").is_file() and "model name" in Path("/proc/cpuinfo").read_text():
        assert name in Path("/proc/cpuinfo").read_text()


def test_the_libraries_this_python_has() -> None:
    libraries = probe_libraries()
    assert set(libraries) == {"onnxruntime", "tensorrt", "tensorrt-rtx", "polygraphy", "onnx", "modelopt"}
    for name in ("onnxruntime", "polygraphy", "tensorrt-rtx"):
        found = installed_distribution(name)
        assert libraries[name].installed == (found is not None)
        if found:
            assert libraries[name].usable and libraries[name].version
    if libraries["onnxruntime"].usable:
        assert "CPUExecutionProvider" in libraries["onnxruntime"].details["providers"]
    if libraries["tensorrt-rtx"].usable:
        import tensorrt_rtx

        listed = [name for name in tensorrt_rtx.ComputeCapability.__members__ if name.startswith("SM")]
        assert len(libraries["tensorrt-rtx"].details["compute_capabilities"]) == len(listed)


def _fake_python(tmp_path: Path, body: str) -> str:
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for the child Python")
def test_a_hung_or_crashed_probe_is_reported_within_its_time(tmp_path: Path) -> None:
    hung = probe_in_child(1.0, python=_fake_python(tmp_path, "sleep 30"))
    assert hung.torch is None and "did not finish in 1 s" in str(hung.error)
    crashed = probe_in_child(10.0, python=_fake_python(tmp_path, "echo 'Fatal Python error: Segmentation fault' >&2; kill -SEGV $$"))
    assert crashed.torch is None and f"signal {int(__import__('signal').SIGSEGV)}" in str(crashed.error)
    assert "Segmentation fault" in str(crashed.error)
    silent = probe_in_child(10.0, python=_fake_python(tmp_path, "echo not json"))
    assert silent.torch is None and "printed no report" in str(silent.error)


def test_the_child_probe_of_this_machine() -> None:
    import torch

    probe = probe_in_child(120.0)
    assert probe.error is None and probe.torch is not None, probe.error
    assert probe.torch.version == torch.__version__ and probe.torch.cuda == torch.version.cuda
    assert probe.torch.cuda_available == torch.cuda.is_available()
    assert len(probe.torch.gpus) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert all(gpu.kernel == "ok" for gpu in probe.torch.gpus)
    assert probe.torch.threads >= 1 and os.cpu_count()
