"""The ONNX Runtime backend: an export's graphs as an `OnnxEncoder` (`zsbench.runtime.onnxrt`), the same
encoder the export's parity check drives. Its artifacts are exports (`zsbench export`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from zsbench.backends import BackendOptions, BackendSpec, Log
from zsbench.precisions import graph_precisions

if TYPE_CHECKING:
    import torch

    from zsbench.backends.base import LoadedModel
    from zsbench.export.parity import ParityReport
    from zsbench.models.ref import ModelRef


def _available(device: torch.device) -> str | None:
    del device  # a CPU, or a GPU through onnxruntime-gpu's providers (the CPU's otherwise)
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed; it runs the exported graphs. Install it with `pip install 'zsbench[onnx]'` (or onnxruntime-gpu for CUDA)."
    return None


def build_export(ref: ModelRef, device: torch.device, precision: str, options: BackendOptions) -> Path:
    """Finds (or exports) the `precision` export of `ref`; its folder."""
    from zsbench.backends.artifacts import find_or_export

    return find_or_export(ref, precision, device, options)[0]


def load_onnx(ref: ModelRef, device: torch.device, precision: str, options: BackendOptions) -> LoadedModel:
    """Finds (or exports) the `precision` export of `ref` and opens its graphs."""
    from zsbench.backends.artifacts import export_inputs, find_or_export
    from zsbench.backends.base import LoadedModel
    from zsbench.export.checking import graph_files
    from zsbench.runtime.onnxrt import OnnxEncoder

    folder, manifest = find_or_export(ref, precision, device, options)
    tokenizer, transforms = export_inputs(manifest, ref)
    encoder = OnnxEncoder(graph_files(manifest, folder), device, precision, folder, manifest.file_digests(), manifest.calibration())
    return LoadedModel(encoder, tokenizer, transforms)


def check_parity(artifact: Path, device: str, engines: Path | None, log: Log) -> ParityReport:
    """Re-checks the export's graphs with ONNX Runtime (`engines` is not used)."""
    from zsbench.export import check_export_parity

    del engines
    return check_export_parity(artifact, device, log=log)


BACKEND = BackendSpec(
    name="onnx", runtime="onnxruntime", precisions=graph_precisions, available=_available, load=load_onnx, exported=True,
    build=build_export, check_parity=check_parity,
)
