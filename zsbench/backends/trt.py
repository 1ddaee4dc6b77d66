"""The TensorRT backend: FP16 engines built from an export's fp16 graphs, run by `TrtEncoder`
(`zsbench.runtime.trt`), the same encoder the engine parity check drives.

Engines already in the engine folder are reused with the settings they were built with
(profiles, workspace, flavor: `EngineConfig.as_built`); they are rebuilt (with a message)
only when stale for this GPU, this TensorRT or the export's graphs, and refused when their
parity check against PyTorch failed, unless the parity gate is off.
"""

from __future__ import annotations

from pathlib import Path

import torch

from zsbench.backends.artifacts import BackendOptions, artifact_folder, find_or_export, preprocessing
from zsbench.backends.base import LoadedModel
from zsbench.errors import BackendUnavailableError, EngineError, ParityError
from zsbench.models.ref import ModelRef


def load_trt(ref: ModelRef, device: torch.device, precision: str, options: BackendOptions) -> LoadedModel:
    """Finds (or exports) the fp16 export of `ref`, builds or reuses its engines, and opens them."""
    from zsbench.artifact_paths import MANIFEST
    from zsbench.export import EngineConfig, build_engines, default_engine_dir
    from zsbench.runtime.engine_manifest import load_engine_manifest
    from zsbench.runtime.trt import TrtEncoder

    if device.type != "cuda" or not torch.cuda.is_available():
        raise BackendUnavailableError("--backend trt runs TensorRT engines on a CUDA GPU; use --device cuda on a machine with one.")
    if precision != "fp16":
        raise BackendUnavailableError(f"TensorRT engines are FP16 (built strongly typed from fp16 graphs), not {precision}; use --precision fp16.")
    folder, manifest = find_or_export(ref, "fp16", device, options)
    export = folder.resolve()

    def built_from_export(candidate: Path) -> bool:
        try:
            return Path(load_engine_manifest(candidate).artifact) == export
        except EngineError:
            return False

    engines = artifact_folder(options.engine_root, default_engine_dir(folder).name, built_from_export)
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
    if options.parity_gate and result is not None and not result.parity:
        raise ParityError(
            f"{engines}: the engines' parity check against PyTorch {result.parity.status}. "
            "Pass --no-parity-gate to use them anyway.",
            result.parity,
        )
    # Engines that failed parity were kept (marked failed); with the gate off they are used as built.
    engine_manifest = result.manifest if result is not None else load_engine_manifest(engines)
    transform, tokenizer = preprocessing(manifest, ref)
    return LoadedModel(TrtEncoder(engines, engine_manifest, device), transform, tokenizer)
