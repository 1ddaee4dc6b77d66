"""`zsbench doctor`: what this machine can run, and for what it cannot, the one command that fixes it.

`run_doctor` probes the machine (`zsbench.runtime.machine`: the driver through NVML in this
process; torch, a matmul on every GPU and the runtime libraries in a time-limited child), then
`diagnose` (a pure function of that probe) decides:

- each GPU: usable by torch, or why not (a CPU-only torch, a driver older than torch's CUDA, a
  failing kernel) with the fix;
- each backend and precision: ``ready`` (and where), ``build only`` (TensorRT-RTX ahead of time
  without a GPU), ``not installed`` / ``unsupported`` (with the fix or the alternative),
  ``untested`` (a TensorRT major the contract tests do not cover), or ``broken``.

What is installed and does not work (a GPU torch cannot use, a library that fails to import, a
polygraphy too old for the installed TensorRT) is a problem: the report is not ``ok`` and the
command exits 1. What is merely not installed is not a problem. Nothing is installed or downloaded.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass
from typing import Any

from zsbench.errors import ZsbenchError
from zsbench.runtime.flavor import (
    KNOWN_RTX_CAPABILITIES,
    TESTED_TRT_MAJORS,
    BuildTarget,
    Capability,
    default_rtx_targets,
    format_capabilities,
    install_command,
    needed_flavor,
    parse_capability,
    polygraphy_problem,
    version_tuple,
)
from zsbench.runtime.machine import (
    DriverReport,
    LibraryReport,
    ProcessProbe,
    TorchReport,
    cpu_model,
    nvml_report,
    probe_in_child,
    zsbench_source,
)

# The oldest Linux driver of each CUDA major version (CUDA's minor-version compatibility).
MIN_DRIVER = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}
TORCH_INDEX = {12: "cu126", 13: "cu130"}  # PyTorch's wheel index for a driver of that CUDA major
ONNX_EXTRA = "pip install 'zsbench[onnx]'"
# One install command per card family (README "Engines" says the same).
CARD_FAMILIES = (
    ("A100, H100/H200, B200 and other data-centre cards (driver >= 580: CUDA 13)", install_command("tensorrt", 13)),
    ("the same with a driver >= 525 and < 580 (CUDA 12)", install_command("tensorrt", 12)),
    ("RTX 20xx-50xx, A10/A40, L4/L40 and the cards TensorRT-RTX targets; no GPU (ahead of time)", install_command("tensorrt-rtx")),
)


@dataclass(frozen=True)
class MachineProbe:
    """Everything `diagnose` decides from: the machine, the driver (None: no NVIDIA driver), and the child's
    torch and library reports."""

    cpu: str
    cpu_count: int | None
    python: str
    platform: str
    zsbench: dict[str, Any]
    driver: DriverReport | None
    process: ProcessProbe
    cuda_visible_devices: str | None = None


def probe_machine(timeout: float) -> MachineProbe:
    """Probes this machine (see the module docstring); the child gets at most `timeout` seconds."""
    return MachineProbe(cpu_model(), os.cpu_count(), platform.python_version(), platform.platform(), zsbench_source(),
                        nvml_report(), probe_in_child(timeout), os.environ.get("CUDA_VISIBLE_DEVICES"))


@dataclass(frozen=True)
class GpuStatus:
    """One GPU: what it is, and whether torch can run kernels on it (else why, and the fix)."""

    index: int
    name: str
    compute_capability: str
    memory_gib: float
    usable: bool
    reason: str | None = None
    fix: str | None = None

    @property
    def target(self) -> BuildTarget:
        return BuildTarget(self.name, self.compute_capability)


@dataclass(frozen=True)
class BackendStatus:
    """Whether `backend` at `precision` runs here (`where`), and if not, the command that fixes it."""

    backend: str
    precision: str
    status: str  # ready, build only, untested, not installed, unsupported, broken
    where: str
    detail: str = ""
    fix: str | None = None


@dataclass(frozen=True)
class DoctorReport:
    """The diagnosis: the probe, each GPU, each backend and precision, and the problems (broken installs)."""

    probe: MachineProbe
    gpus: tuple[GpuStatus, ...]
    backends: tuple[BackendStatus, ...]
    problems: tuple[str, ...]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when everything installed works (what is merely not installed does not count)."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """The `--json` form."""
        probe = self.probe
        torch = probe.process.torch
        return {
            "ok": self.ok,
            "problems": list(self.problems),
            "zsbench": probe.zsbench,
            "python": probe.python,
            "platform": probe.platform,
            "cpu": {"model": probe.cpu, "count": probe.cpu_count},
            "driver": {"version": probe.driver.version, "cuda": probe.driver.cuda, "error": probe.driver.error}
            if probe.driver else None,
            "cuda_visible_devices": probe.cuda_visible_devices,
            "torch": {"version": torch.version, "cuda": torch.cuda, "cuda_available": torch.cuda_available,
                      "threads": torch.threads, "cuda_warning": torch.cuda_warning} if torch else None,
            "gpus": [asdict(gpu) for gpu in self.gpus],
            "libraries": {name: {"distribution": lib.distribution, "version": lib.version, "import_error": lib.import_error,
                                 **lib.details} for name, lib in probe.process.libraries.items()},
            "backends": [asdict(row) for row in self.backends],
            "install": {family: command for family, command in CARD_FAMILIES},
            "probe_error": probe.process.error,
            "seconds": self.seconds,
        }

    def render(self) -> str:
        """The human-readable report."""
        probe = self.probe
        source = probe.zsbench
        commit = f" (commit {source['commit'][:10]}{', modified' if source.get('modified') else ''})" if source.get("commit") else ""
        lines = [f"zsbench {source.get('version') or '?'}{commit}, Python {probe.python}, {probe.platform}",
                 f"CPU        {probe.cpu} ({probe.cpu_count} logical cores)"]
        driver = probe.driver
        lines.append(f"driver     {driver.version} (CUDA {driver.cuda})" if driver and driver.version else
                     f"driver     {driver.error}" if driver else "driver     none (no NVIDIA driver library)")
        torch = probe.process.torch
        lines.append(f"torch      {torch.version} (CUDA {torch.cuda or 'none: CPU-only build'}), {torch.threads} CPU threads"
                     if torch else f"torch      {probe.process.error}")
        lines.append(f"libraries  {_libraries_line(probe.process.libraries)}")
        if not self.gpus:
            lines.append("GPUs       none visible")
        for gpu in self.gpus:
            state = "kernels run" if gpu.usable else f"NOT USABLE: {gpu.reason}"
            lines.append(f"GPU {gpu.index:<6} {gpu.name} (compute capability {gpu.compute_capability}, {gpu.memory_gib} GiB): {state}")
            if gpu.fix:
                lines.append(f"           fix: {gpu.fix}")
        lines += ["", f"{'backend':<8} {'precision':<10} {'status':<14} {'where':<14} detail"]
        for row in self.backends:
            lines.append(f"{row.backend:<8} {row.precision:<10} {row.status:<14} {row.where:<14} {row.detail}".rstrip())
            if row.fix:
                lines.append(f"{'':<48} fix: {row.fix}")
        lines += ["", "TensorRT by card (the one pip command each):"]
        lines += [f"  {family}: {command}" for family, command in CARD_FAMILIES]
        lines.append("")
        if self.ok:
            lines.append(f"OK: everything installed works ({self.seconds:.1f} s).")
        else:
            lines += [f"PROBLEM: {problem}" for problem in self.problems]
        return "\n".join(lines)


def _libraries_line(libraries: dict[str, LibraryReport]) -> str:
    parts = []
    for name, lib in libraries.items():
        if not lib.installed:
            parts.append(f"{name} -")
            continue
        extra = ""
        if lib.import_error:
            extra = f" (BROKEN: {lib.import_error})"
        elif "providers" in lib.details:
            extra = f" ({', '.join(lib.details['providers'])})"
        elif "compute_capabilities" in lib.details:
            extra = f" (targets {', '.join(lib.details['compute_capabilities'])})"
        parts.append(f"{name} {lib.version}{extra}")
    return "; ".join(parts)


def torch_install_command(cuda_major: int) -> str:
    """The pip command for a torch built for CUDA `cuda_major` (PyTorch's own wheel index)."""
    return f"pip install --force-reinstall torch torchvision --index-url https://download.pytorch.org/whl/{TORCH_INDEX.get(cuda_major, 'cu126')}"


def _why_torch_cannot(torch: TorchReport, driver: DriverReport | None) -> tuple[str, str]:
    """(reason, fix) when torch cannot use a GPU the driver sees."""
    driver_cuda = driver.cuda_major if driver else None
    if torch.cuda is None:
        return (f"torch {torch.version} is a CPU-only build",
                torch_install_command(driver_cuda or 13))
    torch_major = torch.cuda_major or 0
    if driver and driver.version and driver_cuda is not None and driver_cuda < torch_major:
        return (f"driver {driver.version} supports CUDA up to {driver.cuda}; torch {torch.version} is built for CUDA {torch.cuda}, "
                f"which needs driver >= {MIN_DRIVER.get(torch_major, '?')}",
                f"update the NVIDIA driver to >= {MIN_DRIVER.get(torch_major, '?')}, or install torch for CUDA {driver_cuda}: "
                f"{torch_install_command(driver_cuda)}")
    said = torch.cuda_warning or "torch.cuda.is_available() is False"
    return f"torch {torch.version} cannot initialise CUDA: {said}", "check the driver with nvidia-smi, then reinstall torch"


def assess_gpus(probe: MachineProbe) -> tuple[list[GpuStatus], list[str]]:
    """Each GPU's status, and the problems (GPUs the driver sees but torch cannot use)."""
    torch, driver = probe.process.torch, probe.driver
    problems: list[str] = []
    if driver is not None and driver.error:
        problems.append(f"the NVIDIA driver library is installed but {driver.error}")
    driver_gpus = driver.gpus if driver else ()
    if torch is None:
        problems.append(str(probe.process.error))
        return [GpuStatus(g.index, g.name, g.compute_capability, g.memory_gib, False, "torch could not be probed")
                for g in driver_gpus], problems
    if torch.cuda_available:
        statuses = []
        for gpu in torch.gpus:
            usable = gpu.kernel in ("ok", None)
            reason = None if usable else f"a matmul on it failed: {gpu.kernel}"
            fix = None
            if not usable and "no kernel image" in str(gpu.kernel):
                fix = f"torch {torch.version} has no kernels for compute capability {gpu.compute_capability}: install a newer torch"
            statuses.append(GpuStatus(gpu.index, gpu.name, gpu.compute_capability, gpu.memory_gib, usable, reason, fix))
            if not usable:
                problems.append(f"GPU {gpu.index} ({gpu.name}) is visible but unusable: {reason}" + (f"; fix: {fix}" if fix else ""))
        return statuses, problems
    if not driver_gpus:
        return [], problems
    hidden = probe.cuda_visible_devices
    if hidden is not None and hidden.strip() in ("", "-1", "none", "NoDevFiles"):
        reason = f"hidden from CUDA by CUDA_VISIBLE_DEVICES={hidden!r}"
        return [GpuStatus(g.index, g.name, g.compute_capability, g.memory_gib, False, reason) for g in driver_gpus], problems
    reason, fix = _why_torch_cannot(torch, driver)
    problems.append(f"{len(driver_gpus)} GPU(s) visible to the driver but unusable by torch: {reason}; fix: {fix}")
    return [GpuStatus(g.index, g.name, g.compute_capability, g.memory_gib, False, reason, fix) for g in driver_gpus], problems


def _reinstall(lib: LibraryReport) -> str:
    return f"pip install --force-reinstall {lib.distribution or lib.name}"


def _torch_rows(probe: MachineProbe, usable: list[GpuStatus]) -> list[BackendStatus]:
    if probe.process.torch is None:
        return [BackendStatus("torch", p, "broken", "-", "torch could not be probed") for p in ("fp32", "fp16", "bf16")]
    where = "cuda" if usable else "cpu"
    rows = [BackendStatus("torch", "fp32", "ready", where)]
    rows.append(BackendStatus("torch", "fp16", "ready", where, "" if usable else "emulated on most CPUs: slower than fp32"))
    old = [gpu for gpu in usable if parse_capability(gpu.compute_capability) < (8, 0)]
    if old:
        rows.append(BackendStatus("torch", "bf16", "unsupported", where,
                                  f"bf16 needs compute capability >= 8.0; {old[0].name} is {old[0].compute_capability}: use fp16"))
    else:
        rows.append(BackendStatus("torch", "bf16", "ready", where))
    return rows


def _onnx_rows(libraries: dict[str, LibraryReport], usable: list[GpuStatus]) -> list[BackendStatus]:
    ort, exporter = libraries.get("onnxruntime", LibraryReport("onnxruntime")), libraries.get("onnx", LibraryReport("onnx"))
    if not ort.installed:
        return [BackendStatus("onnx", p, "not installed", "-", "onnxruntime runs the exported graphs", ONNX_EXTRA) for p in ("fp32", "fp16")]
    if ort.import_error:
        return [BackendStatus("onnx", p, "broken", "-", f"onnxruntime {ort.version} fails to import: {ort.import_error}",
                              _reinstall(ort)) for p in ("fp32", "fp16")]
    modules = exporter.details.get("modules", {})
    if not exporter.installed or not all(modules.values()):
        missing = [m for m, present in modules.items() if not present] or ["onnx", "onnxscript"]
        return [BackendStatus("onnx", p, "not installed", "-", f"exporting needs {', '.join(missing)}", ONNX_EXTRA)
                for p in ("fp32", "fp16")]
    providers = ort.details.get("providers", [])
    on_gpu = bool(usable) and "CUDAExecutionProvider" in providers
    where = "cuda" if on_gpu else "cpu"
    detail, fix = f"onnxruntime {ort.version} ({'CUDAExecutionProvider' if on_gpu else 'CPUExecutionProvider'})", None
    if usable and not on_gpu:
        detail += ": this onnxruntime has no CUDA provider, graphs run on the CPU"
        fix = "pip uninstall -y onnxruntime && pip install onnxruntime-gpu"
    rows = [BackendStatus("onnx", "fp16", "ready", where, detail, fix)]
    if version_tuple(ort.version or "0") < (1, 23):  # fp32 graphs are opset 23
        rows.insert(0, BackendStatus("onnx", "fp32", "broken", where, f"fp32 exports are opset 23, which onnxruntime {ort.version} "
                                     "cannot run", "pip install --upgrade 'onnxruntime>=1.23'"))
    else:
        rows.insert(0, BackendStatus("onnx", "fp32", "ready", where, detail, fix))
    return rows


def _rtx_targets(libraries: dict[str, LibraryReport]) -> tuple[Capability, ...]:
    listed = libraries.get("tensorrt-rtx", LibraryReport("tensorrt-rtx")).details.get("compute_capabilities")
    return tuple(parse_capability(c) for c in listed) if listed else KNOWN_RTX_CAPABILITIES


def _flavor_problem(flavor: str, libraries: dict[str, LibraryReport]) -> tuple[str, str] | None:
    """(detail, fix) when the installed `flavor` or the polygraphy it needs does not work."""
    lib = libraries[flavor]
    if lib.import_error:
        return f"{flavor} {lib.version} fails to import: {lib.import_error}", _reinstall(lib)
    polygraphy = libraries.get("polygraphy", LibraryReport("polygraphy"))
    if polygraphy.import_error:
        return f"polygraphy {polygraphy.version} fails to import: {polygraphy.import_error}", _reinstall(polygraphy)
    return polygraphy_problem(flavor, polygraphy.version)  # type: ignore[arg-type]


def _trt_cuda_major(probe: MachineProbe) -> int | None:
    """The CUDA major standard TensorRT should be installed for: torch's, capped by what the driver supports."""
    torch, driver = probe.process.torch, probe.driver
    majors = [m for m in (torch.cuda_major if torch else None, driver.cuda_major if driver else None) if m]
    return min(majors) if majors else None


def _trt_rows(probe: MachineProbe, usable: list[GpuStatus]) -> list[BackendStatus]:
    libraries = probe.process.libraries
    rtx_targets = _rtx_targets(libraries)
    cuda = _trt_cuda_major(probe)
    installed = frozenset(name for name in ("tensorrt", "tensorrt-rtx") if libraries.get(name, LibraryReport(name)).installed)
    if not usable:
        if "tensorrt-rtx" not in installed:
            return [BackendStatus("trt", "fp16", "not installed", "ahead of time",
                                  "no GPU here: TensorRT-RTX would build engines ahead of time", install_command("tensorrt-rtx", cuda))]
        broken = _flavor_problem("tensorrt-rtx", libraries)
        if broken:
            return [BackendStatus("trt", "fp16", "broken", "ahead of time", *broken)]
        version = libraries["tensorrt-rtx"].version
        return [BackendStatus("trt", "fp16", "build only", "ahead of time",
                              f"tensorrt-rtx {version} builds engines here for compute capability "
                              f"{format_capabilities(default_rtx_targets(rtx_targets))} (7.5 when asked); running them needs a GPU")]
    rows = []
    for gpu in {(g.name, g.compute_capability): g for g in usable}.values():
        target, where = gpu.target, f"cuda ({gpu.compute_capability})"
        try:
            flavor, why = needed_flavor("auto", target, installed, rtx_targets, cuda)
        except ZsbenchError as err:  # not raised for "auto" on a GPU; kept so a rule change cannot crash doctor
            rows.append(BackendStatus("trt", "fp16", "unsupported", where, str(err)))
            continue
        if flavor not in installed:
            rows.append(BackendStatus("trt", "fp16", "not installed", where, f"{flavor} is needed {why}", install_command(flavor, cuda)))
            continue
        broken = _flavor_problem(flavor, libraries)
        if broken:
            rows.append(BackendStatus("trt", "fp16", "broken", where, *broken))
            continue
        lib = libraries[flavor]
        if flavor == "tensorrt":
            distribution = lib.distribution or ""
            if distribution.endswith("cu13") and probe.driver and (probe.driver.cuda_major or 13) < 13:
                rows.append(BackendStatus("trt", "fp16", "broken", where,
                                          f"{distribution} needs an NVIDIA driver >= {MIN_DRIVER[13]} (CUDA 13); driver "
                                          f"{probe.driver.version} supports CUDA {probe.driver.cuda}",
                                          f"pip uninstall -y {distribution} && {install_command('tensorrt', 12)}"))
                continue
            major = version_tuple(lib.version or "0")[:1]
            if major and major[0] not in TESTED_TRT_MAJORS:
                rows.append(BackendStatus("trt", "fp16", "untested", where,
                                          f"tensorrt {lib.version}: zsbench is tested with TensorRT {' and '.join(map(str, TESTED_TRT_MAJORS))}",
                                          install_command("tensorrt", cuda)))
                continue
        rows.append(BackendStatus("trt", "fp16", "ready", where, f"{flavor} {lib.version} on {target}"))
    return rows


def diagnose(probe: MachineProbe, seconds: float = 0.0) -> DoctorReport:
    """The report for `probe` (see the module docstring): a pure function, so every case can be checked
    with the probe a machine would give."""
    gpus, problems = assess_gpus(probe)
    usable = [gpu for gpu in gpus if gpu.usable]
    rows = [*_torch_rows(probe, usable), *_onnx_rows(probe.process.libraries, usable), *_trt_rows(probe, usable)]
    problems += [f"{row.backend} {row.precision}: {row.detail}; fix: {row.fix}" for row in rows if row.status == "broken"
                 and probe.process.torch is not None]
    return DoctorReport(probe, tuple(gpus), tuple(rows), tuple(problems), round(seconds, 2))


def run_doctor(timeout: float = 30.0) -> DoctorReport:
    """Probes this machine and diagnoses it; the child probe (torch, GPUs, libraries) gets `timeout` seconds."""
    start = time.perf_counter()
    probe = probe_machine(timeout)
    return diagnose(probe, time.perf_counter() - start)
