"""`zsbench doctor`: what this machine can run, and for what it cannot, the one command that fixes it.

`run_doctor` probes the machine (`zsbench.runtime.machine`: the driver through NVML in this
process; torch, a matmul on every GPU and the runtime libraries in a time-limited child), then
`diagnose` (a pure function of that probe) decides:

- each GPU: usable by torch, or why not (a CPU-only torch, a driver older than torch's CUDA, a
  failing kernel) with the fix;
- each backend and the precisions it runs (`zsbench.precisions`: torch fp32/fp16/bf16, ONNX Runtime
  fp32/fp16/int8, TensorRT fp16/int8/fp8): ``ready`` (and where), ``build only`` (TensorRT-RTX ahead
  of time without a GPU), ``not installed`` / ``unsupported`` (with the fix or the alternative),
  ``untested`` (a TensorRT major the contract tests do not cover), or ``broken``. bf16 on a CPU needs
  native bf16 arithmetic, on a GPU compute capability 8.0; int8 and fp8 engines are built from Q/DQ
  graphs NVIDIA Model Optimizer makes, and fp8 engines run on compute capability >= 8.9 only.

What is installed and does not work (a GPU torch cannot use, a library that fails to import, a
polygraphy too old for the installed TensorRT) is a problem: the report is not ``ok`` and the
command exits 1. What is merely not installed is not a problem. Nothing is installed or downloaded.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from zsbench.errors import ZsbenchError
from zsbench.precisions import PRECISIONS, engine_precisions, graph_precisions
from zsbench.runtime.flavor import (
    KNOWN_RTX_CAPABILITIES,
    OPT_IN_RTX_CAPABILITIES,
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
# Model Optimizer makes the Q/DQ graphs int8 and fp8 engines are built from (`zsbench.export.quantize.modelopt_qdq.INSTALL`,
# not imported here: that module loads numpy and the export stage).
MODELOPT_EXTRA = "pip install 'zsbench[fp8]'"
ORT_FOR_OPSET = {23: "1.23"}  # the oldest onnxruntime that runs graphs of this opset (fused attention, RoPE, RMSNorm)
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
                      "threads": torch.threads, "cuda_warning": torch.cuda_warning, "native_bf16": torch.native_bf16}
            if torch else None,
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
    rows.append(_torch_bf16_row(probe.process.torch.native_bf16, usable))
    return rows


def _torch_bf16_row(native_bf16: str | None, usable: list[GpuStatus]) -> BackendStatus:
    """bf16 on the GPUs (compute capability >= 8.0), or without one on the CPU (native bf16 only: `zsbench.backends.pyt`)."""
    if usable:
        old = [gpu for gpu in usable if parse_capability(gpu.compute_capability) < (8, 0)]
        if old:
            return BackendStatus("torch", "bf16", "unsupported", "cuda",
                                 f"bf16 needs compute capability >= 8.0; {old[0].name} is {old[0].compute_capability}: use fp16")
        return BackendStatus("torch", "bf16", "ready", "cuda")
    if native_bf16 is None:
        return BackendStatus("torch", "bf16", "unsupported", "cpu",
                             "this CPU has no native bf16 arithmetic (AVX512-BF16 or AMX on x86, BF16 on Arm), so torch would "
                             "emulate bf16, slower than fp32: use fp32 here, or bf16 on a GPU")
    return BackendStatus("torch", "bf16", "ready", "cpu", f"fp32 weights under bf16 autocast, natively through {native_bf16}")


def _onnx_rows(libraries: dict[str, LibraryReport], usable: list[GpuStatus]) -> list[BackendStatus]:
    """One row for each precision ONNX Runtime runs graphs of (int8: quantized by onnxruntime's own quantizer)."""
    precisions = graph_precisions()
    ort, exporter = libraries.get("onnxruntime", LibraryReport("onnxruntime")), libraries.get("onnx", LibraryReport("onnx"))
    if not ort.installed:
        return [BackendStatus("onnx", p, "not installed", "-", "onnxruntime runs the exported graphs", ONNX_EXTRA) for p in precisions]
    if ort.import_error:
        return [BackendStatus("onnx", p, "broken", "-", f"onnxruntime {ort.version} fails to import: {ort.import_error}",
                              _reinstall(ort)) for p in precisions]
    modules = exporter.details.get("modules", {})
    if not exporter.installed or not all(modules.values()):
        missing = [m for m, present in modules.items() if not present] or ["onnx", "onnxscript"]
        return [BackendStatus("onnx", p, "not installed", "-", f"exporting needs {', '.join(missing)}", ONNX_EXTRA)
                for p in precisions]
    providers = ort.details.get("providers", [])
    on_gpu = bool(usable) and "CUDAExecutionProvider" in providers
    where = "cuda" if on_gpu else "cpu"
    detail, fix = f"onnxruntime {ort.version} ({'CUDAExecutionProvider' if on_gpu else 'CPUExecutionProvider'})", None
    if usable and not on_gpu:
        detail += ": this onnxruntime has no CUDA provider, graphs run on the CPU"
        fix = "pip uninstall -y onnxruntime && pip install onnxruntime-gpu"
    rows = []
    for precision in precisions:
        opset = PRECISIONS.get(precision).opset
        needed = ORT_FOR_OPSET.get(opset or 0)
        if needed and version_tuple(ort.version or "0") < version_tuple(needed):
            rows.append(BackendStatus("onnx", precision, "broken", where, f"its exports are opset {opset}, which onnxruntime "
                                      f"{ort.version} cannot run (>= {needed} can)", f"pip install --upgrade 'onnxruntime>={needed}'"))
        else:
            rows.append(BackendStatus("onnx", precision, "ready", where, detail, fix))
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
    """For each distinct usable GPU (or, without one, ahead of time): the fp16 row (the flavor this card needs), then a
    row for each quantized engine precision (the same flavor, Model Optimizer for the graphs, the precision's minimum
    compute capability)."""
    libraries = probe.process.libraries
    rtx_targets = _rtx_targets(libraries)
    cuda = _trt_cuda_major(probe)
    installed = frozenset(name for name in ("tensorrt", "tensorrt-rtx") if libraries.get(name, LibraryReport(name)).installed)
    cards: list[GpuStatus | None] = list({(g.name, g.compute_capability): g for g in usable}.values()) or [None]
    rows = []
    for gpu in cards:
        if gpu is None:
            fp16 = _trt_ahead_of_time_row(libraries, installed, rtx_targets, cuda)
        else:
            fp16 = _trt_gpu_row(probe, gpu, installed, rtx_targets, cuda)
        rows.append(fp16)
        rows += [_trt_quantized_row(fp16, precision, gpu, libraries, rtx_targets) for precision in engine_precisions()
                 if precision != "fp16"]
    return rows


def _trt_ahead_of_time_row(libraries: dict[str, LibraryReport], installed: frozenset[str], rtx_targets: tuple[Capability, ...],
                           cuda: int | None) -> BackendStatus:
    if "tensorrt-rtx" not in installed:
        return BackendStatus("trt", "fp16", "not installed", "ahead of time",
                             "no GPU here: TensorRT-RTX would build engines ahead of time", install_command("tensorrt-rtx", cuda))
    broken = _flavor_problem("tensorrt-rtx", libraries)
    if broken:
        return BackendStatus("trt", "fp16", "broken", "ahead of time", *broken)
    return BackendStatus("trt", "fp16", "build only", "ahead of time", _build_only_detail(libraries, rtx_targets, None))


def _build_only_detail(libraries: dict[str, LibraryReport], rtx_targets: tuple[Capability, ...], minimum: Capability | None) -> str:
    """What the installed TensorRT-RTX builds ahead of time: its default targets (from `minimum` on), and the opt-in ones."""
    targets = [c for c in default_rtx_targets(rtx_targets) if minimum is None or c >= minimum]
    opt_in = [c for c in OPT_IN_RTX_CAPABILITIES if minimum is None or c >= minimum]
    asked = f" ({format_capabilities(opt_in)} when asked)" if opt_in else ""
    return (f"tensorrt-rtx {libraries['tensorrt-rtx'].version} builds engines here for compute capability "
            f"{format_capabilities(targets)}{asked}; running them needs a GPU")


def _trt_gpu_row(probe: MachineProbe, gpu: GpuStatus, installed: frozenset[str], rtx_targets: tuple[Capability, ...],
                 cuda: int | None) -> BackendStatus:
    libraries = probe.process.libraries
    target, where = gpu.target, f"cuda ({gpu.compute_capability})"
    try:
        flavor, why = needed_flavor("auto", target, installed, rtx_targets, cuda)
    except ZsbenchError as err:  # not raised for "auto" on a GPU; kept so a rule change cannot crash doctor
        return BackendStatus("trt", "fp16", "unsupported", where, str(err))
    if flavor not in installed:
        return BackendStatus("trt", "fp16", "not installed", where, f"{flavor} is needed {why}", install_command(flavor, cuda))
    broken = _flavor_problem(flavor, libraries)
    if broken:
        return BackendStatus("trt", "fp16", "broken", where, *broken)
    lib = libraries[flavor]
    if flavor == "tensorrt":
        distribution = lib.distribution or ""
        if distribution.endswith("cu13") and probe.driver and (probe.driver.cuda_major or 13) < 13:
            return BackendStatus("trt", "fp16", "broken", where,
                                 f"{distribution} needs an NVIDIA driver >= {MIN_DRIVER[13]} (CUDA 13); driver "
                                 f"{probe.driver.version} supports CUDA {probe.driver.cuda}",
                                 f"pip uninstall -y {distribution} && {install_command('tensorrt', 12)}")
        major = version_tuple(lib.version or "0")[:1]
        if major and major[0] not in TESTED_TRT_MAJORS:
            return BackendStatus("trt", "fp16", "untested", where,
                                 f"tensorrt {lib.version}: zsbench is tested with TensorRT {' and '.join(map(str, TESTED_TRT_MAJORS))}",
                                 install_command("tensorrt", cuda))
    return BackendStatus("trt", "fp16", "ready", where, f"{flavor} {lib.version} on {target}")


def _graph_maker_missing(libraries: dict[str, LibraryReport]) -> tuple[str, str] | None:
    """(detail, fix) when NVIDIA Model Optimizer, which makes the Q/DQ graphs quantized engines are built from, or a
    module its ONNX quantization imports is missing; None when it is installed."""
    modelopt = libraries.get("modelopt", LibraryReport("modelopt"))
    if not modelopt.installed:
        return "NVIDIA Model Optimizer makes the Q/DQ graphs these engines are built from", MODELOPT_EXTRA
    missing = [module for module, present in modelopt.details.get("modules", {}).items() if not present]
    if missing:
        return f"NVIDIA Model Optimizer's ONNX quantization needs {', '.join(missing)}", MODELOPT_EXTRA
    return None


def _trt_quantized_row(fp16: BackendStatus, precision: str, gpu: GpuStatus | None, libraries: dict[str, LibraryReport],
                       rtx_targets: tuple[Capability, ...]) -> BackendStatus:
    """`precision`'s engines where `fp16` says how the flavor stands: unsupported below the precision's minimum compute
    capability, else the flavor's status, and where the flavor works, Model Optimizer's (its graphs come first)."""
    spec = PRECISIONS.get(precision)
    minimum = parse_capability(spec.min_compute_capability) if spec.min_compute_capability else None
    if minimum is not None and gpu is not None and parse_capability(gpu.compute_capability) < minimum:
        return replace(fp16, precision=precision, status="unsupported", fix=None,
                       detail=f"{precision} engines need compute capability >= {spec.min_compute_capability}; "
                              f"{gpu.name} is {gpu.compute_capability}: use int8 or fp16 engines on it")
    if minimum is not None and gpu is None and not any(c >= minimum for c in rtx_targets):
        return replace(fp16, precision=precision, status="unsupported", fix=None,
                       detail=f"{precision} engines need compute capability >= {spec.min_compute_capability}, which "
                              f"the installed TensorRT-RTX does not target")
    missing = _graph_maker_missing(libraries) if spec.engine_quantizer else None  # every engine quantizer is Model Optimizer's
    if fp16.status in ("ready", "build only"):
        if missing:
            return replace(fp16, precision=precision, status="not installed", detail=missing[0], fix=missing[1])
        if fp16.status == "build only":
            return replace(fp16, precision=precision, detail=_build_only_detail(libraries, rtx_targets, minimum))
        return replace(fp16, precision=precision, detail=f"{fp16.detail}; Q/DQ graphs by nvidia-modelopt {libraries['modelopt'].version}")
    if missing and fp16.status != "broken":  # both to install: Model Optimizer's command, then the flavor's
        return replace(fp16, precision=precision, detail=f"{fp16.detail}; {missing[0]}",
                       fix=" && ".join(fix for fix in (missing[1], fp16.fix) if fix))
    return replace(fp16, precision=precision)


def _broken_problems(rows: list[BackendStatus]) -> list[str]:
    """One problem per broken install, naming every precision it breaks."""
    grouped: dict[tuple[str, str, str | None], list[str]] = {}
    for row in rows:
        if row.status == "broken":
            grouped.setdefault((row.backend, row.detail, row.fix), []).append(row.precision)
    return [f"{backend} {', '.join(precisions)}: {detail}; fix: {fix}" for (backend, detail, fix), precisions in grouped.items()]


def diagnose(probe: MachineProbe, seconds: float = 0.0) -> DoctorReport:
    """The report for `probe` (see the module docstring): a pure function, so every case can be checked
    with the probe a machine would give."""
    gpus, problems = assess_gpus(probe)
    usable = [gpu for gpu in gpus if gpu.usable]
    rows = [*_torch_rows(probe, usable), *_onnx_rows(probe.process.libraries, usable), *_trt_rows(probe, usable)]
    if probe.process.torch is not None:  # else the probe's failure is the problem, and every row says so
        problems += _broken_problems(rows)
    return DoctorReport(probe, tuple(gpus), tuple(rows), tuple(problems), round(seconds, 2))


def run_doctor(timeout: float = 30.0) -> DoctorReport:
    """Probes this machine and diagnoses it; the child probe (torch, GPUs, libraries) gets `timeout` seconds."""
    start = time.perf_counter()
    probe = probe_machine(timeout)
    return diagnose(probe, time.perf_counter() - start)
