"""The TensorRT backend: engines built from an export's graphs, run by `TrtEncoder` (`zsbench.runtime.trt`),
the same encoder the engine parity check drives.

Engines already in the engine folder are reused with the settings they were built with
(profiles, workspace, flavor: `EngineConfig.as_built`); they are rebuilt (with a message)
only when stale for this GPU, this TensorRT or the export's graphs, and refused unless their
parity.json shows a passed check of these very engine files (or the parity gate is off).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from zsbench.backends import BackendOptions, BackendSpec, Log
from zsbench.precisions import engine_precisions

if TYPE_CHECKING:
    import torch

    from zsbench.backends.base import LoadedModel
    from zsbench.export import EngineManifest
    from zsbench.export.parity import ParityReport
    from zsbench.models.ref import ModelRef


def _available(device: torch.device) -> str | None:
    import torch

    from zsbench.runtime.flavor import install_command, installed_flavors

    if device.type != "cuda" or not torch.cuda.is_available():
        return "--backend trt runs TensorRT engines on a CUDA GPU; use --device cuda on a machine with one."
    if not installed_flavors():
        return (f"neither tensorrt nor tensorrt_rtx is installed (data-centre cards: {install_command('tensorrt')}; "
                f"RTX cards and ahead-of-time builds: {install_command('tensorrt-rtx')}; `zsbench doctor` says which this "
                "machine needs)")
    return None


def _engines(ref: ModelRef, device: torch.device, precision: str, options: BackendOptions) -> tuple[Path, Path, EngineManifest]:
    """(export folder, engine folder, engine manifest): the export found or made, its engines built or reused."""
    from zsbench.artifact_paths import MANIFEST
    from zsbench.backends.artifacts import find_or_export
    from zsbench.errors import EngineError, ParityError
    from zsbench.export import EngineConfig, build_engines, load_engine_manifest
    from zsbench.export.store import find_engines, trusted_engines

    folder, manifest = find_or_export(ref, precision, device, options, for_engines=True)
    engines = find_engines(options.engine_root, folder)
    config = EngineConfig(artifact=folder, out=engines, device=device)
    if (engines / MANIFEST).is_file():
        try:
            config = EngineConfig.as_built(folder, engines, load_engine_manifest(engines), device)
        except EngineError as err:  # a damaged manifest: build_engines says so and rebuilds
            options.log(f"{engines}: {err}")
    try:
        result = build_engines(config, log=options.log)
    except ParityError:
        if options.parity_gate:
            raise
        result = None
    # Engines that failed parity were kept (marked failed); with the gate off they are used as built.
    engine_manifest = result.manifest if result is not None else load_engine_manifest(engines)
    trusted_engines(engines, engine_manifest, folder, manifest, options.parity_gate)
    return folder, engines, engine_manifest


def build_engine_folder(ref: ModelRef, device: torch.device, precision: str, options: BackendOptions) -> Path:
    """Finds (or exports) the export of `ref`, builds or reuses its engines; the engine folder."""
    return _engines(ref, device, precision, options)[1]


def load_trt(ref: ModelRef, device: torch.device, precision: str, options: BackendOptions) -> LoadedModel:
    """Finds (or exports) the export of `ref`, builds or reuses its engines, and opens them on the GPU."""
    from zsbench.backends.artifacts import export_inputs
    from zsbench.backends.base import LoadedModel
    from zsbench.export import load_export_manifest
    from zsbench.runtime.trt import TrtEncoder

    folder, engines, engine_manifest = _engines(ref, device, precision, options)
    export = load_export_manifest(folder)
    tokenizer, transforms = export_inputs(export, ref)
    return LoadedModel(TrtEncoder(engines, engine_manifest, device, export.precision, export.calibration()), tokenizer, transforms)


def check_parity(artifact: Path, device: str, engines: Path | None, log: Log) -> ParityReport:
    """Re-checks the engines built from the export in `artifact` (default folder: engines/<export name>) on this GPU."""
    from zsbench.export import check_engine_parity

    return check_engine_parity(artifact, device, engines, log=log)


BACKEND = BackendSpec(
    name="trt", runtime="tensorrt", precisions=engine_precisions, available=_available, load=load_trt, exported=True,
    build=build_engine_folder, check_parity=check_parity,
)
