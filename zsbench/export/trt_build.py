"""ONNX -> FP16 TensorRT engines through polygraphy, with standard TensorRT or TensorRT-RTX.

Engines are built from the fp16 export, STRONGLY TYPED: TensorRT 11 removed weakly typed
builds (and the FP16 builder flag), and on 10.x this is what keeps the fp32 islands the graph
declares (RMSNorm statistics, QLLaMA softmax, reductions) instead of letting the builder pick
fp16 for them. TF32 is switched off, so the few fp32 operations really run in fp32.

Standard TensorRT needs a GPU and keeps a persistent timing cache (`engines/timing.cache`,
shared by all builds). TensorRT-RTX builds ahead of time on a CPU-only machine (portable
engines; compiled for the GPU at load time) or for the present GPU; it takes no timing cache
(its documentation: the cache has no effect on its engines and forces a GPU query).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from zsbench.errors import BackendUnavailableError, EngineError
from zsbench.export.engine_manifest import (
    AHEAD_OF_TIME,
    ENGINE_FILES,
    BuildTarget,
    EngineManifest,
    ShapeProfile,
    load_engine_manifest,
    read_engine_json,
    stale_reasons,
)
from zsbench.export.fingerprint import fingerprint_files
from zsbench.export.manifest import MANIFEST, PARITY, ExportManifest, load_export_manifest, package_version
from zsbench.export.parity import ParityReport, ParityThresholds, compare_embeddings, run_probes
from zsbench.export.probes import ProbeConfig
from zsbench.export.staging import staged_folder
from zsbench.export.trt_flavor import FlavorRequest, TrtFlavor, select_trt_flavor, trt_modules
from zsbench.jsonfiles import write_json_atomic

ENGINE_ROOT = Path("engines")
Log = Callable[[str], None]


@dataclass(frozen=True)
class EngineConfig:
    """What `zsbench engine build` was asked.

    `batch_profiles`: (min, opt, max) batch sizes, one optimization profile each (the runner
    picks the profile that fits a batch, and splits batches beyond the largest). Text
    profiles span `text_length` (min, opt, max), capped at the tokenizer's context length.
    """

    artifact: Path
    out: Path | None = None
    flavor: FlavorRequest = "auto"
    batch_profiles: tuple[tuple[int, int, int], ...] = ((1, 16, 64),)
    text_length: tuple[int, int, int] = (1, 32, 80)
    workspace_gib: float = 4.0
    timing_cache: Path | None = None
    force: bool = False
    probes: ProbeConfig = field(default_factory=ProbeConfig)

    def validate(self) -> None:
        for lo, opt, hi in (*self.batch_profiles, self.text_length):
            if not 1 <= lo <= opt <= hi:
                raise EngineError(f"Profile ({lo}, {opt}, {hi}): expected 1 <= min <= opt <= max.")


@dataclass(frozen=True)
class EngineBuildResult:
    folder: Path
    manifest: EngineManifest
    parity: ParityReport
    reused: bool


def default_engine_dir(artifact: Path, root: Path = ENGINE_ROOT) -> Path:
    """`engines/<export folder name>`."""
    return root / Path(artifact).resolve().name


def current_target(flavor: TrtFlavor) -> BuildTarget:
    """This machine's GPU, or ahead of time (TensorRT-RTX without a GPU)."""
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        return BuildTarget(torch.cuda.get_device_name(), f"{major}.{minor}")
    if flavor.is_rtx:
        return BuildTarget(AHEAD_OF_TIME, AHEAD_OF_TIME)
    raise BackendUnavailableError(
        "Standard TensorRT builds engines on a GPU, and torch sees none here. Build on a GPU machine, or "
        "use --trt-flavor tensorrt-rtx to build ahead of time on this CPU."
    )


def graph_profiles(export: ExportManifest, config: EngineConfig) -> dict[str, tuple[ShapeProfile, ...]]:
    """Optimization profiles of each graph's input, from its IO spec and the requested ranges."""
    context = int(export.text.get("context_length", 80))
    lo_len, opt_len, hi_len = (min(v, context) for v in config.text_length)
    profiles: dict[str, tuple[ShapeProfile, ...]] = {}
    for graph, spec in export.graphs.items():
        (io,) = spec.inputs
        fixed = tuple(int(d) for d in io.shape[1:] if not isinstance(d, str))
        entries = []
        for lo, opt, hi in config.batch_profiles:
            if graph == "text":
                entries.append(ShapeProfile(io.name, (lo, lo_len), (opt, opt_len), (hi, hi_len)))
            else:
                entries.append(ShapeProfile(io.name, (lo, *fixed), (opt, *fixed), (hi, *fixed)))
        profiles[graph] = tuple(entries)
    return profiles


def current_onnx_digests(export: ExportManifest, artifact: Path) -> dict[str, str]:
    """Each graph's fingerprint as it is on disk now, checked against the export's manifest."""
    digests = {}
    for graph, spec in export.graphs.items():
        paths = [artifact / spec.file] + ([artifact / spec.external_data] if (artifact / spec.external_data).exists() else [])
        digest = fingerprint_files(paths).digest
        if digest != spec.fingerprint.digest:
            raise EngineError(
                f"{artifact / spec.file} differs from what its manifest records (modified after export?). "
                "Re-export with `zsbench export --force`."
            )
        digests[graph] = digest
    return digests


def _build_one(onnx_path: Path, opset: int, profiles: tuple[ShapeProfile, ...], flavor: TrtFlavor, target: BuildTarget,
               workspace: int, timing_cache: Path | None, engine_path: Path) -> None:
    trt, ptrt = trt_modules(flavor)
    from polygraphy.exception import PolygraphyException
    from polygraphy.logger import G_LOGGER

    def no_tf32(builder: object, network: object, config: object) -> None:
        config.clear_flag(trt.BuilderFlag.TF32)  # type: ignore[attr-defined]

    network = ptrt.NetworkFromOnnxPath(str(onnx_path), strongly_typed=True)
    trt_profiles = [ptrt.Profile().add(p.input, p.min, p.opt, p.max) for p in profiles]
    common = {"profiles": trt_profiles, "memory_pool_limits": {trt.MemoryPoolType.WORKSPACE: workspace}}
    if flavor.is_rtx:
        from polygraphy.backend.tensorrt_rtx import CreateConfigRTX

        create = CreateConfigRTX(use_gpu=not target.ahead_of_time, **common)
    else:
        create = ptrt.CreateConfig(load_timing_cache=str(timing_cache) if timing_cache else None, **common)
    try:
        with G_LOGGER.verbosity(G_LOGGER.ERROR), warnings.catch_warnings():
            # polygraphy always attaches a timing cache; TensorRT-RTX deprecates that API (a no-op there).
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*[Tt]iming cache")
            engine = ptrt.EngineBytesFromNetwork(
                network, ptrt.PostprocessConfig(create, no_tf32), save_timing_cache=str(timing_cache) if timing_cache else None
            )()
    except PolygraphyException as err:
        hint = (
            f" The graph uses opset {opset}: from opset 23 QLLaMA's fp32 softmax is the `Attention` node's "
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
    if export.precision != "fp16":
        raise EngineError(
            f"{artifact} is an {export.precision} export; FP16 engines are built from the fp16 graphs. "
            f"Run `zsbench export --precision fp16 ...` and build from that folder."
        )
    if not export.parity_passed:
        raise EngineError(f"{artifact} failed its ONNX parity check (see its parity.json); fix the export before building engines.")
    flavor = select_trt_flavor(config.flavor)
    target = current_target(flavor)
    folder = config.out or default_engine_dir(artifact)
    timing_cache = None if flavor.is_rtx else (config.timing_cache or folder.parent / "timing.cache")
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
    )
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MANIFEST).is_file():
        raise EngineError(
            f"{folder} holds files but no manifest.json: it is not an engine folder, and building would replace it. "
            "Choose another --out, or empty it yourself."
        )
    if (folder / MANIFEST).exists() and not config.force:
        try:
            built = load_engine_manifest(folder)
            reasons = stale_reasons(built, wanted, folder)
        except EngineError as err:
            reasons = [str(err)]
        if not reasons:
            log(f"Reusing the engines in {folder} ({built.flavor} {built.trt_version}, {built.device}); they match.")
            return EngineBuildResult(folder, built, ParityReport.from_dict(_read_parity(folder, built)), reused=True)
        log(f"Rebuilding the engines in {folder}: {'; '.join(reasons)}.")
    log(f"Building FP16 strongly typed engines with {flavor} for {target.device} into {folder}")
    with staged_folder(folder) as staging:
        seconds = {}
        for graph, engine_file in ENGINE_FILES.items():
            start = time.perf_counter()
            _build_one(artifact / export.graphs[graph].file, export.opset, wanted.profiles[graph], flavor, target,
                       wanted.workspace_bytes, timing_cache, staging / engine_file)
            seconds[graph] = round(time.perf_counter() - start, 2)
            log(f"  {engine_file}: {(staging / engine_file).stat().st_size / 2**20:.1f} MiB, {seconds[graph]} s")
        report = _engine_parity_after_build(export, staging, folder, wanted, config, log)
        manifest = replace(wanted, build_seconds=seconds, parity_status=report.status, parity_reason=report.reason)
        write_json_atomic(staging / PARITY, report.to_dict())
        write_json_atomic(staging / MANIFEST, manifest.to_dict())
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
                                    config.probes)
    return engine_parity(export, staging, torch.device("cuda"), config.probes, None, manifest=wanted,
                         label=str(folder), log=log)


def engine_parity(export: ExportManifest, engine_folder: Path, device: torch.device, probe_config: ProbeConfig,
                  thresholds: ParityThresholds | None, manifest: EngineManifest | None = None,
                  label: str | None = None, log: Log = lambda message: None) -> ParityReport:
    """Parity of the engines in `engine_folder` against the export's PyTorch model in fp32, with the
    same probes and thresholds as the ONNX graphs.

    Raises:
        BackendUnavailableError: no GPU (TensorRT engines run only on one).
        EngineError: the engines are stale for this process, GPU or export.
    """
    from zsbench.export.pipeline import compute_reference, load_reference_model
    from zsbench.export.trt_runner import TrtArtifactRunner

    if device.type != "cuda" or not torch.cuda.is_available():
        raise BackendUnavailableError("Engine parity runs the engines, which needs a CUDA GPU; torch sees none here.")
    log("Checking engine parity against PyTorch fp32")
    probes, reference = compute_reference(lambda: load_reference_model(export, device), probe_config, device)
    with TrtArtifactRunner(engine_folder, manifest=manifest) as runner:
        candidate = run_probes(runner, probes)
        backend = runner.describe()
    return compare_embeddings(
        reference, candidate, probes, thresholds or ParityThresholds.for_precision(export.precision),
        artifact=label or str(engine_folder), backend=backend, precision=export.precision,
        reference_name=f"torch {torch.__version__} fp32 on {device} (TF32 off)", probe_config=probe_config,
    )


def update_engine_parity(folder: Path, report: ParityReport) -> None:
    """Records a rerun parity verdict in the engine manifest (failed engines are then refused and rebuilt)."""
    built = load_engine_manifest(folder)
    updated = replace(built, parity_status=report.status, parity_reason=report.reason)
    write_json_atomic(folder / MANIFEST, updated.to_dict())
