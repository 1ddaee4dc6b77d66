"""scripts/gpu_check.sh: doctor's report first, rows as they finish, and a table even when it is stopped.

The script runs for real (on this machine its first rows are doctor's and the CUDA rows, skipped
without a GPU; then the first export starts) and is stopped while that export runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(sys.platform == "win32" or not Path("/proc/self").is_dir(), reason="a bash script, Linux /proc")


def start_check(tmp_path: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.Popen(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--workdir", str(tmp_path / "work")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)


def wait_for_rows(process: subprocess.Popen, count: int, timeout: float = 180.0) -> list[str]:
    """The progress lines of the first `count` rows (stderr), read as they come."""
    assert process.stderr is not None
    finished, deadline = [], time.monotonic() + timeout
    while len(finished) < count:
        line = process.stderr.readline()
        assert line and time.monotonic() < deadline, f"the check ended or stalled after {finished}"
        if line.startswith("["):
            finished.append(line.strip())
    return finished


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def finish(process: subprocess.Popen) -> tuple[int, str]:
    out, _ = process.communicate(timeout=120)
    return process.returncode, out


def test_sigterm_after_the_first_rows_still_prints_them(tmp_path: Path) -> None:
    process = start_check(tmp_path)
    first = wait_for_rows(process, 3)  # gpu, torch fp16, torch bf16: the export is running now
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)  # to the script, as `timeout` or a scheduler would
    status, out = finish(process)
    assert status == 143, out
    assert out.index("backend  precision  status") < out.index("check ")  # doctor's report comes first
    table = out[out.index("check "):]
    for line in first:
        check = line.split("] ", 1)[1].split(" (")[0]
        assert f"\n{check}" in table, (check, table)
    assert "stopped" in table and "SIGTERM after" in table and "the rest did not run" in table
    assert "onnx fp32 export+parity" not in table  # it was running: no row, no false result


def test_a_killed_check_still_shows_its_finished_rows(tmp_path: Path) -> None:
    process = start_check(tmp_path)
    wait_for_rows(process, 2)
    (timeout_pid,) = children(process.pid)
    (python_pid,) = children(timeout_pid)
    os.kill(python_pid, signal.SIGKILL)  # what `timeout --kill-after` does to a check that ignores SIGTERM
    status, out = finish(process)
    assert status != 0
    assert "stopped (exit status" in out and "before printing its table; the rows it finished:" in out
    rows = out[out.index("the rows it finished:"):].splitlines()[1:]
    assert rows[0].split()[:2] == ["check", "status"] and rows[1].startswith("gpu ")


def load_gpu_check():  # noqa: ANN201 - the script as a module
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["gpu_check"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_rows_on_machines_this_one_is_not() -> None:
    """The rows' decisions for an H100 with only TensorRT-RTX (skip with the install command, never fail) and for
    a GPU torch cannot use (fail with doctor's reason), from doctor's diagnosis of those machines' probes."""
    from tests.runtime.test_machine import H100
    from tests.test_doctor import TORCH_CU130, machine, rtx_only
    from zsbench.doctor import diagnose
    from zsbench.runtime.machine import TorchReport, probe_libraries

    gpu_check = load_gpu_check()
    libraries = rtx_only(probe_libraries())
    h100 = gpu_check.Machine(diagnose(machine(libraries, [H100])))
    install = "pip install --extra-index-url https://pypi.nvidia.com 'zsbench[trt-cu13]'"
    assert h100.device == "cuda"
    for status, detail in (gpu_check.flavor_row(h100), gpu_check.build_row(h100, gpu_check.CLASSIFY),
                           gpu_check.eval_row(h100, "trt", "fp16", {}), gpu_check.agreement_row(h100, "trt", "fp16", {}, [])):
        assert status == "skip" and detail.startswith(install), detail
    assert gpu_check.gpu_row(h100)[0] == "pass"
    old_driver = TorchReport(TORCH_CU130, "13.0", False, (), 16, "The NVIDIA driver on your system is too old")
    broken = gpu_check.Machine(diagnose(machine(libraries, [H100], old_driver, driver=("535.104.05", 12020))))
    status, detail = gpu_check.gpu_row(broken)
    assert status == "fail" and "NVIDIA H100 80GB HBM3 (9.0) unusable: driver 535.104.05 supports CUDA up to 12.2" in detail
    assert broken.device == "cpu" and gpu_check.torch_precision_row(broken, "fp16") == ("skip", "GPU unusable (see the gpu row)")
    assert gpu_check.eval_row(broken, "trt", "fp16", {}) == ("skip", "GPU unusable (see the gpu row)")


def test_quantized_rows_skip_with_the_command_that_installs_what_is_missing() -> None:
    """The GPU machine this check is for (torch with CUDA, a CPU onnxruntime, neither TensorRT nor Model Optimizer):
    the trt int8/fp8 rows skip with both install commands; fp8 on an Ampere card skips as unsupported, whatever is
    installed; onnx int8 without onnxruntime skips with its extra."""
    from tests.runtime.test_machine import H100
    from tests.test_doctor import A100, machine, standard, with_modelopt, without
    from zsbench.doctor import diagnose
    from zsbench.export.quantize.modelopt_qdq import INSTALL as MODELOPT_INSTALL
    from zsbench.runtime.machine import probe_libraries

    gpu_check = load_gpu_check()
    libraries = probe_libraries()
    bare = gpu_check.Machine(diagnose(machine(without(libraries, "tensorrt", "tensorrt-rtx", "polygraphy", "modelopt"), [H100])))
    for precision in ("int8", "fp8"):
        status, detail = gpu_check.build_row(bare, gpu_check.CLASSIFY, precision)
        assert status == "skip", detail
        assert detail.startswith(f"{MODELOPT_INSTALL} && pip install --extra-index-url https://pypi.nvidia.com 'zsbench[trt-cu13]'")
    a100 = gpu_check.Machine(diagnose(machine(with_modelopt(standard(libraries)), [A100])))
    assert gpu_check.build_row(a100, gpu_check.CLASSIFY, "fp8") == (
        "skip", "unsupported: fp8 engines need compute capability >= 8.9; NVIDIA A100-SXM4-80GB is 8.0: use int8 or fp16 engines on it")
    no_onnxruntime = gpu_check.Machine(diagnose(machine(without(libraries, "onnxruntime"))))
    status, detail = gpu_check.export_row(no_onnxruntime, gpu_check.CLASSIFY, "int8")
    assert status == "skip" and detail.startswith("pip install 'zsbench[onnx]'")


def test_torch_bf16_on_the_cpu_runs_only_where_the_cpu_has_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the seam the torch backend asks (`cpu_features.native_bf16`): the refusal is the skip reason; with native
    bf16 (made to say so where this CPU lacks it: torch then emulates the same bf16 arithmetic) the probes run."""
    from tests.test_doctor import machine
    from zsbench.doctor import diagnose
    from zsbench.export import ProbeConfig
    from zsbench.runtime import cpu_features
    from zsbench.runtime.machine import probe_libraries

    gpu_check = load_gpu_check()
    cpu = gpu_check.Machine(diagnose(machine(probe_libraries())))
    monkeypatch.setattr(cpu_features, "native_bf16", lambda: None)
    status, detail = gpu_check.torch_precision_row(cpu, "bf16", "cpu")
    assert status == "skip" and detail.startswith("--precision bf16 on the CPU needs native bf16 arithmetic") and "\n" not in detail
    monkeypatch.setattr(cpu_features, "native_bf16", lambda: "AVX512-BF16")
    monkeypatch.setattr(gpu_check, "PROBES", ProbeConfig(num_images=32, num_classes=8, num_templates=2))  # a short run
    status, detail = gpu_check.torch_precision_row(cpu, "bf16", "cpu")
    assert status == "pass" and detail.startswith("min cosine image 0.99"), detail
