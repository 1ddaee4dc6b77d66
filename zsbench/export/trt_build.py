"""ONNX -> TensorRT engines through polygraphy, with standard TensorRT or TensorRT-RTX.

Engines are built from an fp16 export, or from the Q/DQ graphs of an int8 or fp8 export made for
them (NVIDIA Model Optimizer's: `zsbench.precisions.ENGINE_TARGET`), STRONGLY TYPED: TensorRT 11
removed weakly typed builds (and the FP16 builder flag), and on 10.x this is what keeps the fp32
islands the graph declares (RMSNorm statistics, QLLaMA softmax, reductions) instead of letting the
builder pick fp16 for them, and what makes a Q/DQ graph's quantized ops int8 or fp8. TF32 is
switched off, so the few fp32 operations really run in fp32. FP8 engines are built only for GPUs
with FP8 units (compute capability >= 8.9: `PrecisionSpec.min_compute_capability`).

Standard TensorRT needs a GPU and keeps a persistent timing cache (`engines/timing.cache`,
shared by all builds). TensorRT-RTX builds ahead of time on a CPU-only machine (portable
engines; compiled for the GPU at load time) or for the present GPU; it takes no timing cache
(its documentation: the cache has no effect on its engines and forces a GPU query). Its builds
always name their compute-capability targets (`build_targets`), and the manifest records them.

TensorRT 10 and 11 differ where a build could touch them: 11 removed the precision builder
flags (FP16, INT8, ...; zsbench sets none: strongly typed graphs carry their types) and
deprecated the STRONGLY_TYPED network flag (every network is strongly typed; `network_options`
asks for it only where it exists); `fp32_stays_fp32` clears TF32 only where the flag exists.
polygraphy >= 0.53.4 (`POLYGRAPHY_MINIMUM`) handles the rest of 11's builder changes.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

import torch

from zsbench.artifact_paths import MANIFEST, PARITY
from zsbench.errors import BackendUnavailableError, EngineError, ParityError
from zsbench.export.checking import engine_parity, recorded_parity_settings
from zsbench.export.manifest import ExportManifest, load_export_manifest, package_version
from zsbench.export.parity import ParityReport
from zsbench.export.config import EngineConfig
from zsbench.export.staging import staged_folder
from zsbench.export.store import default_engine_dir
from zsbench.jsonfiles import write_json_atomic
from zsbench.precisions import PRECISIONS, engine_precisions
from zsbench.runtime.engine_manifest import (
    ENGINE_FILES,
    BuildRequest,
    EngineManifest,
    ShapeProfile,
    load_engine_manifest,
    read_engine_json,
    rebuild_fix,
    stale_reasons,
)
from zsbench.runtime.trust import check_verdict, file_digests, verify_files
from zsbench.runtime.flavor import (
    POLYGRAPHY_MINIMUM,
    BuildTarget,
    TrtFlavor,
    default_rtx_targets,
    format_capabilities,
    format_capability,
    gpu_target,
    parse_capability,
    polygraphy_problem,
    rtx_capabilities,
    select_trt_flavor,
    trt_module,
)

Log = Callable[[str], None]


def build_targets(flavor: TrtFlavor, target: BuildTarget, requested: tuple[str, ...], precision: str = "fp16") -> tuple[str, ...] | None:
    """The compute capabilities a build targets (recorded in the manifest): for TensorRT-RTX the requested
    ones, else ahead of time every one the installed TensorRT-RTX lists but the opt-in 7.5 (and, for a precision
    with a `min_compute_capability` such as fp8, none older than it), else this GPU's; for standard TensorRT None
    (its engines are for the GPU that builds them).

    Raises:
        EngineError: a target the installed TensorRT-RTX does not list, targets asked of standard TensorRT, or a GPU
            or target older than the precision needs.
    """
    minimum = PRECISIONS.get(precision).min_compute_capability
    oldest = parse_capability(minimum) if minimum else None
    if oldest is not None and target.capability is not None and target.capability < oldest:
        raise EngineError(f"{precision} engines need a GPU of compute capability >= {minimum}; {target} has none of its "
                          f"units. Use --precision int8 or fp16 on this GPU.")
    if not flavor.is_rtx:
        if requested:
            raise EngineError("--compute_capabilities chooses TensorRT-RTX's targets; standard TensorRT builds for "
                              f"the GPU it runs on ({target}). Drop the option, or use --trt-flavor tensorrt-rtx.")
        return None
    supported = rtx_capabilities(trt_module(flavor))
    wanted = tuple(sorted({parse_capability(text) for text in requested}))
    unknown = [c for c in wanted if c not in supported]
    if unknown:
        raise EngineError(f"--compute_capabilities {format_capabilities(unknown)}: {flavor} builds for compute capability "
                          f"{format_capabilities(supported)} only.")
    too_old = [c for c in wanted if oldest is not None and c < oldest]
    if too_old:
        raise EngineError(f"--compute_capabilities {format_capabilities(too_old)}: {precision} engines need compute capability "
                          f">= {minimum} (its units); drop those targets, or build --precision int8 or fp16 engines for them.")
    if not wanted:
        wanted = default_rtx_targets(supported) if target.capability is None else (target.capability,)
        wanted = tuple(c for c in wanted if oldest is None or c >= oldest)
    return tuple(format_capability(c) for c in wanted)


def network_options(trt: ModuleType) -> dict[str, bool]:
    """polygraphy's network options: strongly typed. TensorRT 11 builds every network strongly typed and
    deprecated its STRONGLY_TYPED flag (kept but ignored), so it is asked for only where the flag exists."""
    return {"strongly_typed": True} if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED") else {}


def fp32_stays_fp32(trt: ModuleType) -> Callable[[object, object, object], None]:
    """A polygraphy config post-processor that switches TF32 off (it is on by default), so the graph's fp32
    islands run in fp32; it touches no flag the library lacks (TensorRT 11 removed the precision flags)."""

    def postprocess(builder: object, network: object, config: object) -> None:
        del builder, network
        if hasattr(trt.BuilderFlag, "TF32"):
            config.clear_flag(trt.BuilderFlag.TF32)  # type: ignore[attr-defined]

    return postprocess


def import_polygraphy(flavor: TrtFlavor) -> ModuleType:
    """polygraphy's TensorRT backend, after checking that the installed polygraphy can build `flavor`'s engines.

    Raises:
        BackendUnavailableError: polygraphy is missing or too old (the message has the pip command).
    """
    problem = polygraphy_problem(flavor.name, package_version("polygraphy"))
    if problem:
        raise BackendUnavailableError(f"{problem[0]}. Fix: {problem[1]}")
    try:
        import polygraphy.backend.trt as ptrt

        if flavor.is_rtx:
            from polygraphy.backend.tensorrt_rtx import CreateConfigRTX  # noqa: F401 - checked here, used by _build_one
    except ImportError as err:
        raise BackendUnavailableError(
            f"polygraphy {package_version('polygraphy')} cannot build {flavor} engines ({err}). "
            f"Reinstall it: pip install --force-reinstall 'polygraphy>={POLYGRAPHY_MINIMUM[flavor.name]}'"
        ) from err
    return ptrt


@dataclass(frozen=True)
class EngineBuildResult:
    folder: Path
    manifest: EngineManifest
    parity: ParityReport
    reused: bool


def graph_profiles(export: ExportManifest, config: EngineConfig) -> dict[str, tuple[ShapeProfile, ...]]:
    """Optimization profiles of each graph's input, from its IO spec: the first axis takes the batch profiles,
    a dynamic ``length`` axis the text-length profile (capped at the context length), fixed axes their size."""
    context = int(export.text.get("context_length", 80))
    length = tuple(min(v, context) for v in config.text_length)
    profiles: dict[str, tuple[ShapeProfile, ...]] = {}
    for graph, spec in export.graphs.items():
        (io,) = spec.inputs
        entries = []
        for batch in config.batch_profiles:
            shapes = [[value] for value in batch]  # min, opt, max
            for dim in io.shape[1:]:
                for position, shape in enumerate(shapes):
                    shape.append(length[position] if dim == "length" else int(dim))
            entries.append(ShapeProfile(io.name, *(tuple(shape) for shape in shapes)))
        profiles[graph] = tuple(entries)
    return profiles


def current_onnx_digests(export: ExportManifest, artifact: Path) -> dict[str, str]:
    """Each graph's fingerprint, once every graph file is checked against the SHA-256 the manifest records.

    Raises:
        EngineError: a graph file was replaced or damaged after the export.
    """
    verify_files(artifact, export.file_digests(), EngineError, export.reexport_fix(artifact))
    return {graph: spec.fingerprint.digest for graph, spec in export.graphs.items()}


def _build_one(onnx_path: Path, opset: int, profiles: tuple[ShapeProfile, ...], flavor: TrtFlavor,
               targets: tuple[str, ...] | None, workspace: int, timing_cache: Path | None, engine_path: Path) -> None:
    trt = trt_module(flavor)
    ptrt = import_polygraphy(flavor)
    from polygraphy.exception import PolygraphyException
    from polygraphy.logger import G_LOGGER

    network = ptrt.NetworkFromOnnxPath(str(onnx_path), **network_options(trt))
    trt_profiles = [ptrt.Profile().add(p.input, p.min, p.opt, p.max) for p in profiles]
    common = {"profiles": trt_profiles, "memory_pool_limits": {trt.MemoryPoolType.WORKSPACE: workspace}}
    if flavor.is_rtx:
        from polygraphy.backend.tensorrt_rtx import CreateConfigRTX

        create = CreateConfigRTX(compute_capabilities=[parse_capability(c) for c in targets or ()], **common)
    else:
        create = ptrt.CreateConfig(load_timing_cache=str(timing_cache) if timing_cache else None, **common)
    try:
        with G_LOGGER.verbosity(G_LOGGER.ERROR), warnings.catch_warnings():
            # polygraphy always attaches a timing cache; TensorRT-RTX deprecates that API (a no-op there).
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*[Tt]iming cache")
            engine = ptrt.EngineBytesFromNetwork(
                network, ptrt.PostprocessConfig(create, fp32_stays_fp32(trt)), save_timing_cache=str(timing_cache) if timing_cache else None
            )()
    except PolygraphyException as err:
        hint = (
            f" The graph uses opset {opset}: from opset 23 an fp32 softmax the family's fp16 policy keeps is the `Attention` node's "
            "softmax_precision, which TensorRT's ONNX parser rejects (TensorRT-RTX 1.7 does); re-export with the "
            "default --opset 18."
            if opset >= 23
            else ""
        )
        raise EngineError(f"{flavor} could not build an engine from {onnx_path}: {err} (its messages are above).{hint}") from err
    with open(engine_path, "wb") as handle:
        handle.write(engine)


def build_engines(config: EngineConfig, log: Log = lambda message: None) -> EngineBuildResult:
    """Builds (or reuses) the FP16 engines of an fp16 export, then checks their parity when a GPU is present.

    Raises:
        EngineError: the export is not fp16, failed parity, or changed on disk; the build failed.
        BackendUnavailableError: no TensorRT library, or standard TensorRT without a GPU.
        ParityError: the engines fail parity (they are kept, marked failed, and never reused).
    """
    config.validate()
    artifact = Path(config.artifact)
    export = load_export_manifest(artifact)
    kind = PRECISIONS.get(export.precision)
    if not kind.engine:
        wanted = " or ".join(engine_precisions())
        raise EngineError(
            f"{artifact} is an {export.precision} export; engines are built from {wanted} graphs. "
            f"Run `zsbench export --precision {wanted} ...` and build from that folder."
        )
    if export.target != kind.target(for_engines=True):
        raise EngineError(
            f"{artifact} holds {export.precision} graphs made for ONNX Runtime; TensorRT engines are built from the "
            f"{export.precision} Q/DQ graphs made for them. Run `zsbench export --model_type {export.model_type} --model "
            f"{export.model_name} --pretrained {export.pretrained} --precision {export.precision} --engine trt`."
        )
    try:
        verify_files(artifact, export.file_digests(), EngineError, export.reexport_fix(artifact))
        check_verdict(artifact, export.file_digests(), export.checkpoint.digest, "Fix the export before building engines.")
    except ParityError as err:
        raise EngineError(f"Engines are built only from graphs proven equal to PyTorch: {err}") from err
    target = gpu_target(config.device)
    flavor = select_trt_flavor(config.flavor, target)
    targets = build_targets(flavor, target, config.compute_capabilities, export.precision)
    folder = config.out or default_engine_dir(artifact)
    timing_cache = None if flavor.is_rtx else (config.timing_cache or folder.parent / "timing.cache")
    timing_cache = timing_cache.resolve() if timing_cache else None
    wanted = EngineManifest(
        artifact=str(artifact.resolve()),
        model_name=export.model_name,
        flavor=flavor.name,
        trt_version=flavor.version,
        device=target.device,
        compute_capability=target.compute_capability,
        strongly_typed=True,
        workspace_bytes=int(config.workspace_gib * 2**30),
        profiles=graph_profiles(export, config),
        onnx=current_onnx_digests(export, artifact),
        engines=dict(ENGINE_FILES),
        timing_cache=str(timing_cache) if timing_cache else None,
        build_seconds={},
        parity_status="not run",
        versions={"polygraphy": package_version("polygraphy"), flavor.name: flavor.version, "torch": torch.__version__},
        compute_capabilities=targets,
    )
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MANIFEST).is_file():
        raise EngineError(
            f"{folder} holds files but no manifest.json: it is not an engine folder, and building would replace it. "
            "Choose another --out, or empty it yourself."
        )
    if (folder / MANIFEST).exists() and not config.force:
        try:
            built = load_engine_manifest(folder)
            request = BuildRequest(wanted.onnx, wanted.profiles, wanted.workspace_bytes, targets)
            reasons = stale_reasons(built, folder, flavor.name, flavor.version, target, request)
        except EngineError as err:
            reasons = [str(err)]
        if not reasons:
            verify_files(folder, built.engine_sha256, EngineError, rebuild_fix(built.artifact, folder))
            log(f"Reusing the engines in {folder} ({built.flavor} {built.trt_version}, {built.device}); they match.")
            report = ParityReport.from_dict(_read_parity(folder, built))
            if report.status == "not run" and not target.ahead_of_time:
                # Built ahead of time (no GPU then): their parity is checked on this GPU once, and recorded.
                report = engine_parity(export, folder, built, _device(config), config.probes, None, log=log)
                update_engine_parity(folder, report)
                built = replace(built, parity_status=report.status, parity_reason=report.reason)
                report.raise_if_failed()
            return EngineBuildResult(folder, built, report, reused=True)
        log(f"Rebuilding the engines in {folder}: {'; '.join(reasons)}.")
    for_what = f"compute capability {', '.join(targets)}" if targets else target.device
    log(f"Building {export.precision.upper()} strongly typed engines with {flavor} for {for_what} into {folder}")
    on_device = contextlib.nullcontext() if target.ahead_of_time else torch.cuda.device(_device(config))
    with staged_folder(folder) as staging, on_device:
        seconds = {}
        for graph, engine_file in ENGINE_FILES.items():
            start = time.perf_counter()
            _build_one(artifact / export.graphs[graph].file, export.opset, wanted.profiles[graph], flavor, targets,
                       wanted.workspace_bytes, timing_cache, staging / engine_file)
            seconds[graph] = round(time.perf_counter() - start, 2)
            log(f"  {engine_file}: {(staging / engine_file).stat().st_size / 2**20:.1f} MiB, {seconds[graph]} s")
        wanted = replace(wanted, engine_sha256=file_digests(staging, list(ENGINE_FILES.values())))  # cached for the first run
        report = _engine_parity_after_build(export, staging, folder, wanted, config, log)
        manifest = replace(wanted, build_seconds=seconds, parity_status=report.status, parity_reason=report.reason)
        write_json_atomic(staging / PARITY, report.to_dict())
        write_json_atomic(staging / MANIFEST, manifest.to_dict(folder))
    report.raise_if_failed()
    log(report.summary())
    return EngineBuildResult(folder, manifest, report, reused=False)


def _read_parity(folder: Path, built: EngineManifest) -> dict:
    if (folder / PARITY).exists():
        return read_engine_json(folder / PARITY, "engine parity report")
    return ParityReport.not_run(built.artifact, f"{built.flavor} {built.trt_version}", "fp16", "no parity.json").to_dict()


def _engine_parity_after_build(export: ExportManifest, staging: Path, folder: Path, wanted: EngineManifest,
                               config: EngineConfig, log: Log) -> ParityReport:
    backend = f"{wanted.flavor} {wanted.trt_version}"
    if wanted.target.ahead_of_time:
        return ParityReport.not_run(str(folder), backend, export.precision,
                                    "no GPU here: the engines were built ahead of time; run `zsbench parity --backend trt` on a GPU",
                                    config.probes).about(wanted.engine_sha256, export.checkpoint.digest)
    return engine_parity(export, staging, wanted, _device(config), config.probes, None, label=str(folder), log=log)


def _device(config: EngineConfig) -> torch.device:
    """The GPU engines are built for and checked on."""
    return config.device or torch.device("cuda", torch.cuda.current_device())


def update_engine_parity(folder: Path, report: ParityReport) -> None:
    """Records a parity verdict run after the build: parity.json, and the manifest's status (failed
    engines are then rebuilt)."""
    write_json_atomic(folder / PARITY, report.to_dict())
    built = load_engine_manifest(folder)
    updated = replace(built, parity_status=report.status, parity_reason=report.reason)
    write_json_atomic(folder / MANIFEST, updated.to_dict(folder))


def check_engine_parity(artifact: Path, device: str = "auto", engines: Path | None = None,
                        log: Log = lambda message: None) -> ParityReport:
    """Reruns the parity check of the engines built from an export (default folder: `engines/<export name>`) on
    this GPU, with the probes recorded in the export's parity.json, and records the verdict beside them."""
    from zsbench.types import resolve_device

    export = load_export_manifest(artifact)
    probe_config, thresholds = recorded_parity_settings(artifact)
    engine_folder = engines or default_engine_dir(artifact)
    report = engine_parity(export, engine_folder, load_engine_manifest(engine_folder), resolve_device(device), probe_config,
                           thresholds, log=log)
    update_engine_parity(engine_folder, report)
    return report
