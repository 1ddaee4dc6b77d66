"""The TensorRT backend: FP16 engines built from an export's fp16 graphs, run on torch CUDA tensors.

Engines are reused when their manifest matches this GPU, this TensorRT and the export's
graphs, rebuilt (with a message) when stale, and refused when their parity check against
PyTorch failed or never ran, unless the parity gate is off.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from zsbench.backends.artifacts import BackendOptions, find_or_export, preprocessing
from zsbench.backends.base import Encoder, LoadedModel
from zsbench.errors import BackendUnavailableError, ParityError
from zsbench.models.ref import ModelRef

if TYPE_CHECKING:
    from zsbench.export.engine_manifest import EngineManifest


class TrtEncoder(Encoder):
    """`encode_image` / `encode_text` through the engines of an engine folder (device tensors in and out)."""

    name = "trt"

    def __init__(self, folder: Path, manifest: EngineManifest, device: torch.device) -> None:
        from zsbench.export import TrtArtifactRunner

        super().__init__(device, "fp16")
        self.folder = folder
        # `manifest` is the one `build_engines` has just checked against this GPU, TensorRT and export.
        self.runner = TrtArtifactRunner(folder, manifest=manifest, device=device)

    # Batches go to the runner as they are: it copies them into its own GPU input buffer.
    def _encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.runner.encode_image(pixels)

    def _encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.runner.encode_text(input_ids)

    def describe(self) -> dict[str, object]:
        manifest = self.runner.manifest
        return {**super().describe(), "tensorrt": f"{manifest.flavor} {manifest.trt_version}", "gpu": manifest.device,
                "engines": str(self.folder)}


def load_trt(ref: ModelRef, device: torch.device, precision: str, options: BackendOptions) -> LoadedModel:
    """Finds (or exports) the fp16 export of `ref`, builds or reuses its engines, and opens them."""
    from zsbench.export import EngineConfig, build_engines, default_engine_dir
    from zsbench.export.engine_manifest import load_engine_manifest

    if device.type != "cuda" or not torch.cuda.is_available():
        raise BackendUnavailableError("--backend trt runs TensorRT engines on a CUDA GPU; use --device cuda on a machine with one.")
    if precision != "fp16":
        raise BackendUnavailableError(f"TensorRT engines are FP16 (built strongly typed from fp16 graphs), not {precision}; use --precision fp16.")
    folder, manifest = find_or_export(ref, "fp16", device, options)
    engines = default_engine_dir(folder, root=options.engine_root)
    try:
        result = build_engines(EngineConfig(artifact=folder, out=engines), log=options.log)
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
