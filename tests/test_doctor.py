"""`zsbench doctor`: its real report on this machine (no GPU here), its JSON schema, and the machines this
one cannot be, given to `diagnose` as the probe they would produce: the driver's report read through a
stand-in NVML, torch's report and the library reports with the fields those machines have, and the
libraries this Python really has. The flavor and compute-capability rules are the real ones."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tests.runtime.test_machine import H100, StandInNvml
from zsbench.doctor import MIN_DRIVER, MachineProbe, diagnose
from zsbench.export.quantize.modelopt_qdq import INSTALL as MODELOPT_INSTALL
from zsbench.runtime.cpu_features import native_bf16
from zsbench.runtime.machine import (
    MODELOPT_MODULES,
    LibraryReport,
    ProcessProbe,
    TorchGpu,
    TorchReport,
    probe_libraries,
    read_nvml,
)

REPO = Path(__file__).resolve().parents[1]
A100 = ("NVIDIA A100-SXM4-80GB", 8, 0, 85_899_345_920)
RTX4090 = ("NVIDIA GeForce RTX 4090", 8, 9, 25_757_220_864)
T4 = ("Tesla T4", 7, 5, 16_106_127_360)
TORCH_CU130 = "2.14.1+cu130"


@pytest.fixture(scope="module")
def libraries() -> dict[str, LibraryReport]:
    """This Python's real library reports (onnxruntime, polygraphy, TensorRT-RTX as installed here)."""
    return probe_libraries()


def torch_on(gpus: list[tuple[str, int, int, int]], kernel: str = "ok", cuda: str | None = "13.0") -> TorchReport:
    return TorchReport(TORCH_CU130, cuda, bool(gpus), tuple(
        TorchGpu(i, name, f"{major}.{minor}", round(memory / 2**30, 1), kernel) for i, (name, major, minor, memory) in enumerate(gpus)), 16)


def machine(libraries: dict[str, LibraryReport], gpus: list | None = None, torch_report: TorchReport | None = None,
            driver: tuple[str, int] = ("580.65.06", 13000), visible: str | None = None, error: str | None = None) -> MachineProbe:
    nvml = read_nvml(StandInNvml(gpus, driver=driver[0], cuda=driver[1])) if gpus is not None else None
    report = torch_report if torch_report is not None or error else torch_on(gpus or [])
    return MachineProbe("AMD EPYC 9654 96-Core Processor", 192, "3.11.7", "Linux", {"version": "0.1.0", "commit": None},
                        nvml, ProcessProbe(report, libraries, error), visible)


def with_library(libraries: dict[str, LibraryReport], name: str, **fields: object) -> dict[str, LibraryReport]:
    return {**libraries, name: replace(libraries.get(name, LibraryReport(name)), **fields)}


def without(libraries: dict[str, LibraryReport], *names: str) -> dict[str, LibraryReport]:
    return {**libraries, **{name: LibraryReport(name) for name in names}}


def row(report, backend: str, precision: str = "fp16"):  # noqa: ANN001, ANN201
    (found,) = [r for r in report.backends if (r.backend, r.precision) == (backend, precision)]
    return found


RTX_17 = {"compute_capabilities": ["7.5", "8.0", "8.6", "8.9", "12.0", "12.1"]}
RTX_16 = {"compute_capabilities": ["7.5", "8.6", "8.9", "12.0", "12.1"]}
POLYGRAPHY = {"distribution": "polygraphy", "version": "0.53.6", "import_error": None, "details": {"tensorrt_rtx_backend": True}}


def rtx_only(libraries: dict[str, LibraryReport], listed: dict = RTX_17) -> dict[str, LibraryReport]:
    rtx = with_library(without(libraries, "tensorrt"), "tensorrt-rtx", distribution="tensorrt-rtx-cu13", version="1.7.1.116",
                       import_error=None, details=listed)
    return with_library(rtx, "polygraphy", **POLYGRAPHY)


def standard(libraries: dict[str, LibraryReport], distribution: str = "tensorrt-cu13", version: str = "11.1.0.106") -> dict:
    return with_library(rtx_only(libraries), "tensorrt", distribution=distribution, version=version, import_error=None)


def with_modelopt(libraries: dict[str, LibraryReport], *absent: str) -> dict[str, LibraryReport]:
    """Model Optimizer installed (as `zsbench[fp8]` installs it), less the modules named in `absent`."""
    return with_library(libraries, "modelopt", distribution="nvidia-modelopt", version="0.47.0",
                        details={"modules": {module: module not in absent for module in MODELOPT_MODULES}})


# --- this machine, for real ---------------------------------------------------------------------

def test_doctor_reports_this_machine_and_its_json_schema() -> None:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "zsbench", "doctor", "--json"], capture_output=True, text=True, timeout=120, cwd=REPO)
    wall = time.perf_counter() - start
    report = json.loads(done.stdout)
    assert done.returncode == (0 if report["ok"] else 1), done.stderr
    assert set(report) == {"ok", "problems", "zsbench", "python", "platform", "cpu", "driver", "cuda_visible_devices", "torch",
                           "gpus", "libraries", "backends", "install", "probe_error", "seconds"}
    assert report["torch"]["version"] == torch.__version__ and report["torch"]["cuda"] == torch.version.cuda
    assert report["cpu"]["model"] and report["cpu"]["model"] not in ("x86_64", "aarch64")
    if (REPO / ".git").exists() and shutil.which("git"):  # run from this checkout
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        assert report["zsbench"]["commit"] == head
    assert set(report["libraries"]) == {"onnxruntime", "tensorrt", "tensorrt-rtx", "polygraphy", "onnx", "modelopt"}
    for entry in report["backends"]:
        assert set(entry) == {"backend", "precision", "status", "where", "detail", "fix"}
        assert entry["status"] in ("ready", "build only", "untested", "not installed", "unsupported", "broken")
    rows = {(entry["backend"], entry["precision"]): entry for entry in report["backends"]}
    assert {("torch", "fp32"), ("torch", "fp16"), ("torch", "bf16"), ("onnx", "fp32"), ("onnx", "fp16"), ("onnx", "int8"),
            ("trt", "fp16"), ("trt", "int8"), ("trt", "fp8")} <= set(rows)
    assert report["torch"]["native_bf16"] == native_bf16()  # the seam the torch backend asks
    if report["libraries"]["onnxruntime"]["version"]:
        assert rows[("onnx", "int8")]["status"] == "ready"
    if not report["libraries"]["modelopt"]["version"]:  # `make test`'s environment: no Model Optimizer
        assert rows[("trt", "int8")]["status"] == "not installed" and rows[("trt", "int8")]["fix"].startswith(MODELOPT_INSTALL)
    assert all("pypi.nvidia.com" in command for family, command in report["install"].items() if "data-centre" in family)
    if not torch.cuda.is_available():  # this development machine: no GPU
        assert report["gpus"] == [] and report["ok"] and report["problems"] == []
        assert rows[("torch", "fp32")]["where"] == "cpu"
        assert rows[("torch", "bf16")]["status"] == ("ready" if native_bf16() else "unsupported")
        trt = rows[("trt", "fp16")]
        rtx = report["libraries"]["tensorrt-rtx"]
        if rtx["version"]:  # what `make` installs: TensorRT-RTX, which builds ahead of time here
            assert trt["status"] == "build only" and trt["where"] == "ahead of time" and "running them needs a GPU" in trt["detail"]
            assert "8.0, 8.6, 8.9" in trt["detail"] and "7.5 when asked" in trt["detail"]
        else:
            assert trt["status"] == "not installed" and trt["fix"] == "pip install 'zsbench[trt-rtx]'"
    # The target is 10 s on an idle machine; a generous bound here, for a shared 2-core CI.
    assert report["seconds"] < 30 and wall < 60


def test_doctor_keeps_torch_and_the_runtimes_out_of_its_own_process() -> None:
    """They are imported in the time-limited child only, so a hung CUDA or a crashing library cannot hang doctor."""
    code = "import sys, zsbench.doctor; print(sorted(m for m in ('torch', 'onnxruntime', 'tensorrt', 'tensorrt_rtx') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.stdout.strip() == "[]", done.stderr


def test_doctor_text_report_on_this_machine() -> None:
    from click.testing import CliRunner

    from zsbench.cli import main

    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 0, result.output
    for heading in ("CPU ", "driver ", "torch ", "libraries ", "backend  precision  status", "TensorRT by card", "OK: everything installed works"):
        assert heading in result.output


# --- other machines, as their probes --------------------------------------------------------------

def test_a_gpu_the_driver_sees_but_torch_cannot_use_is_a_failure_with_the_reason(libraries: dict) -> None:
    # An H100 on driver 535 (CUDA 12.2) under a torch built for CUDA 13: what torch.cuda.is_available() warns, then False.
    old_torch = TorchReport(TORCH_CU130, "13.0", False, (), 16,
                            "CUDA initialization: The NVIDIA driver on your system is too old (found version 12020).")
    report = diagnose(machine(libraries, [H100], old_torch, driver=("535.104.05", 12020)))
    assert not report.ok
    (gpu,) = report.gpus
    assert not gpu.usable and gpu.name == "NVIDIA H100 80GB HBM3" and gpu.compute_capability == "9.0"
    assert gpu.reason == ("driver 535.104.05 supports CUDA up to 12.2; torch 2.14.1+cu130 is built for CUDA 13.0, "
                          f"which needs driver >= {MIN_DRIVER[13]}")
    assert "download.pytorch.org/whl/cu126" in str(gpu.fix) and MIN_DRIVER[13] in str(gpu.fix)
    assert "unusable by torch" in report.problems[0]
    assert row(report, "torch", "fp32").where == "cpu"  # what still runs
    assert "NOT USABLE" in report.render() and "PROBLEM:" in report.render()


def test_a_cpu_only_torch_on_a_gpu_machine_is_a_failure(libraries: dict) -> None:
    cpu_torch = TorchReport("2.14.1+cpu", None, False, (), 16)
    report = diagnose(machine(libraries, [A100], cpu_torch))
    assert not report.ok and report.gpus[0].reason == "torch 2.14.1+cpu is a CPU-only build"
    assert report.gpus[0].fix and report.gpus[0].fix.endswith("download.pytorch.org/whl/cu130")


def test_a_failing_kernel_is_a_failure_and_hidden_gpus_are_not(libraries: dict) -> None:
    failing = diagnose(machine(libraries, [H100], torch_on([H100], kernel="RuntimeError: CUDA error: no kernel image is available")))
    assert not failing.ok and not failing.gpus[0].usable and "no kernels for compute capability 9.0" in str(failing.gpus[0].fix)
    hidden = diagnose(machine(libraries, [H100], torch_on([]), visible=""))
    assert hidden.ok and "CUDA_VISIBLE_DEVICES" in str(hidden.gpus[0].reason)


def test_a_probe_that_did_not_finish_is_a_failure(libraries: dict) -> None:
    report = diagnose(machine(libraries, [H100], None, error="the torch and library probe did not finish in 30 s"))
    assert not report.ok and "did not finish" in report.problems[0]
    assert all(r.status == "broken" for r in report.backends if r.backend == "torch")


def test_a_card_the_installed_flavor_does_not_target_gets_the_install_command(libraries: dict) -> None:
    report = diagnose(machine(rtx_only(libraries), [H100]))
    trt = row(report, "trt")
    assert report.ok  # not installed is not broken
    assert trt.status == "not installed" and trt.where == "cuda (9.0)"
    assert "tensorrt is needed for NVIDIA H100 80GB HBM3 (9.0), which TensorRT-RTX does not target" in trt.detail
    assert trt.fix == "pip install --extra-index-url https://pypi.nvidia.com 'zsbench[trt-cu13]'"
    # The same card on a CUDA 12 driver: the CUDA 12 wheels.
    cuda12 = diagnose(machine(rtx_only(libraries), [H100], driver=("550.54.15", 12040)))
    assert row(cuda12, "trt").fix == "pip install --extra-index-url https://pypi.nvidia.com 'zsbench[trt-cu12]'"


def test_the_a100_follows_the_installed_tensorrt_rtx_list(libraries: dict) -> None:
    assert row(diagnose(machine(rtx_only(libraries, RTX_17), [A100])), "trt").status == "ready"
    older = row(diagnose(machine(rtx_only(libraries, RTX_16), [A100])), "trt")
    assert older.status == "not installed" and "pypi.nvidia.com" in str(older.fix)


def test_no_tensorrt_at_all(libraries: dict) -> None:
    none = without(libraries, "tensorrt", "tensorrt-rtx")
    cpu = row(diagnose(machine(none)), "trt")
    assert cpu.status == "not installed" and cpu.where == "ahead of time" and cpu.fix == "pip install 'zsbench[trt-rtx]'"
    rtx = row(diagnose(machine(none, [RTX4090])), "trt")
    assert rtx.status == "not installed" and rtx.fix == "pip install 'zsbench[trt-rtx]'"
    h100 = diagnose(machine(none, [H100]))
    assert h100.ok and "pypi.nvidia.com" in str(row(h100, "trt").fix)


def test_installed_but_broken_libraries_fail(libraries: dict) -> None:
    broken = with_library(standard(libraries), "tensorrt", import_error="OSError: libnvinfer.so.11: cannot open shared object file")
    report = diagnose(machine(broken, [H100]))
    assert not report.ok and row(report, "trt").status == "broken"
    assert row(report, "trt").fix == "pip install --force-reinstall tensorrt-cu13"
    old_polygraphy = with_library(rtx_only(libraries), "polygraphy", version="0.49.24", details={"tensorrt_rtx_backend": False})
    report = diagnose(machine(old_polygraphy, [RTX4090]))
    assert not report.ok and row(report, "trt").fix == "pip install --upgrade 'polygraphy>=0.50.3'"
    cu13_on_old_driver = diagnose(machine(standard(libraries), [H100], driver=("550.54.15", 12040)))
    assert not cu13_on_old_driver.ok and "needs an NVIDIA driver >= 580.65.06" in row(cu13_on_old_driver, "trt").detail


def test_tensorrt_10_and_11_run_and_12_is_untested(libraries: dict) -> None:
    for version, status in (("10.13.3.9", "ready"), ("11.1.0.106", "ready"), ("12.0.0.1", "untested")):
        report = diagnose(machine(standard(libraries, version=version), [H100]))
        assert row(report, "trt").status == status and report.ok


def test_bf16_on_a_turing_card_is_unsupported(libraries: dict) -> None:
    report = diagnose(machine(libraries, [T4]))
    assert row(report, "torch", "bf16").status == "unsupported" and "use fp16" in row(report, "torch", "bf16").detail
    assert row(report, "torch", "fp16").where == "cuda"


def test_onnxruntime_without_a_cuda_provider_runs_on_the_cpu(libraries: dict) -> None:
    cpu_only = with_library(libraries, "onnxruntime", distribution="onnxruntime", version="1.32.0", import_error=None,
                            details={"providers": ["CPUExecutionProvider"]})
    onnx = row(diagnose(machine(cpu_only, [H100])), "onnx", "fp32")
    assert onnx.status == "ready" and onnx.where == "cpu" and onnx.fix == "pip uninstall -y onnxruntime && pip install onnxruntime-gpu"
    gpu = with_library(cpu_only, "onnxruntime", distribution="onnxruntime-gpu", details={"providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]})
    assert row(diagnose(machine(gpu, [H100])), "onnx", "fp16").where == "cuda"
    missing = row(diagnose(machine(without(libraries, "onnxruntime"))), "onnx", "fp32")
    assert missing.status == "not installed" and missing.fix == "pip install 'zsbench[onnx]'"


def test_bf16_on_the_cpu_needs_native_bf16_and_on_a_gpu_ampere(libraries: dict) -> None:
    emulating = row(diagnose(machine(libraries)), "torch", "bf16")
    assert emulating.status == "unsupported" and emulating.where == "cpu"
    assert "no native bf16 arithmetic" in emulating.detail and "use fp32 here, or bf16 on a GPU" in emulating.detail
    amx = row(diagnose(machine(libraries, torch_report=replace(torch_on([]), native_bf16="AMX-BF16"))), "torch", "bf16")
    assert (amx.status, amx.where) == ("ready", "cpu") and "AMX-BF16" in amx.detail
    a100 = row(diagnose(machine(libraries, [A100])), "torch", "bf16")  # the GPU decides, whatever the CPU has
    assert (a100.status, a100.where) == ("ready", "cuda")


def test_onnx_int8_is_ready_wherever_onnxruntime_runs_opset_23(libraries: dict) -> None:
    ort = with_library(libraries, "onnxruntime", distribution="onnxruntime", version="1.32.0", import_error=None,
                       details={"providers": ["CPUExecutionProvider"]})
    int8 = row(diagnose(machine(ort, [H100])), "onnx", "int8")
    assert int8.status == "ready" and int8.where == "cpu"
    missing = row(diagnose(machine(without(libraries, "onnxruntime"))), "onnx", "int8")
    assert missing.status == "not installed" and missing.fix == "pip install 'zsbench[onnx]'"
    old = diagnose(machine(with_library(ort, "onnxruntime", version="1.22.1")))
    assert [row(old, "onnx", p).status for p in ("fp32", "fp16", "int8")] == ["broken", "ready", "broken"]
    assert old.problems == ("onnx fp32, int8: its exports are opset 23, which onnxruntime 1.22.1 cannot run (>= 1.23 can); "
                            "fix: pip install --upgrade 'onnxruntime>=1.23'",)


def test_quantized_engines_need_model_optimizer_and_the_cards_flavor(libraries: dict) -> None:
    install_trt = "pip install --extra-index-url https://pypi.nvidia.com 'zsbench[trt-cu13]'"
    both = diagnose(machine(without(rtx_only(libraries), "modelopt"), [H100]))  # the GPU machine: neither installed
    assert both.ok
    for precision in ("int8", "fp8"):
        quantized = row(both, "trt", precision)
        assert quantized.status == "not installed" and quantized.fix == f"{MODELOPT_INSTALL} && {install_trt}"
        assert "tensorrt is needed for NVIDIA H100" in quantized.detail and "NVIDIA Model Optimizer makes the Q/DQ graphs" in quantized.detail
    no_modelopt = diagnose(machine(without(standard(libraries), "modelopt"), [H100]))
    assert row(no_modelopt, "trt", "fp16").status == "ready"
    assert row(no_modelopt, "trt", "int8").status == "not installed" and row(no_modelopt, "trt", "int8").fix == MODELOPT_INSTALL
    half = row(diagnose(machine(with_modelopt(standard(libraries), "onnx_graphsurgeon"), [H100])), "trt", "int8")
    assert half.status == "not installed" and "needs onnx_graphsurgeon" in half.detail and half.fix == MODELOPT_INSTALL
    ready = diagnose(machine(with_modelopt(standard(libraries)), [H100]))
    for precision in ("int8", "fp8"):
        assert row(ready, "trt", precision).status == "ready" and row(ready, "trt", precision).where == "cuda (9.0)"
        assert row(ready, "trt", precision).detail.endswith("; Q/DQ graphs by nvidia-modelopt 0.47.0")
    assert "trt      fp8        ready          cuda (9.0)" in ready.render()


def test_fp8_engines_need_compute_capability_8_9(libraries: dict) -> None:
    for card, name in ((A100, "NVIDIA A100-SXM4-80GB is 8.0"), (T4, "Tesla T4 is 7.5")):
        report = diagnose(machine(with_modelopt(standard(libraries)), [card]))
        fp8 = row(report, "trt", "fp8")
        assert fp8.status == "unsupported" and fp8.fix is None
        assert fp8.detail == f"fp8 engines need compute capability >= 8.9; {name}: use int8 or fp16 engines on it"
        assert row(report, "trt", "int8").status == "ready"
    assert row(diagnose(machine(with_modelopt(rtx_only(libraries)), [RTX4090])), "trt", "fp8").status == "ready"
    # Unsupported says more than "not installed": installing nothing makes fp8 run on an A100.
    assert row(diagnose(machine(without(rtx_only(libraries), "modelopt"), [A100])), "trt", "fp8").status == "unsupported"


def test_quantized_engines_ahead_of_time_target_the_cards_their_precision_runs_on(libraries: dict) -> None:
    report = diagnose(machine(with_modelopt(rtx_only(libraries))))
    int8, fp8 = row(report, "trt", "int8"), row(report, "trt", "fp8")
    assert (int8.status, int8.where) == (fp8.status, fp8.where) == ("build only", "ahead of time")
    assert "for compute capability 8.0, 8.6, 8.9, 12.0 and 12.1 (7.5 when asked); running them needs a GPU" in int8.detail
    assert "for compute capability 8.9, 12.0 and 12.1; running them needs a GPU" in fp8.detail
    old_rtx = with_library(with_modelopt(rtx_only(libraries)), "tensorrt-rtx", details={"compute_capabilities": ["7.5", "8.0", "8.6"]})
    assert row(diagnose(machine(old_rtx)), "trt", "fp8").status == "unsupported"


def test_a_broken_flavor_breaks_every_engine_precision_and_is_one_problem(libraries: dict) -> None:
    broken = with_library(with_modelopt(standard(libraries)), "tensorrt", import_error="OSError: libnvinfer.so.11: cannot open")
    report = diagnose(machine(broken, [H100]))
    assert [row(report, "trt", p).status for p in ("fp16", "int8", "fp8")] == ["broken"] * 3
    assert [problem for problem in report.problems if problem.startswith("trt")] == [
        "trt fp16, int8, fp8: tensorrt 11.1.0.106 fails to import: OSError: libnvinfer.so.11: cannot open; "
        "fix: pip install --force-reinstall tensorrt-cu13"]
