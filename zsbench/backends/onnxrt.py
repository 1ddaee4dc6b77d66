"""The ONNX Runtime backend: an export's `vision.onnx` and `text.onnx` as an `OnnxEncoder`
(`zsbench.runtime.onnxrt`), the same encoder the export's parity check drove."""

from __future__ import annotations

import torch

from zsbench.backends.artifacts import BackendOptions, find_or_export, preprocessing
from zsbench.backends.base import LoadedModel
from zsbench.models.ref import ModelRef


def load_onnx(ref: ModelRef, device: torch.device, precision: str, options: BackendOptions) -> LoadedModel:
    """Finds (or exports) the `precision` export of `ref` and opens its graphs."""
    from zsbench.export.checking import graph_files
    from zsbench.runtime.onnxrt import OnnxEncoder, import_onnxruntime

    import_onnxruntime()
    folder, manifest = find_or_export(ref, precision, device, options)
    transform, tokenizer = preprocessing(manifest, ref)
    encoder = OnnxEncoder(graph_files(manifest, folder), device, precision, folder, manifest.file_digests())
    return LoadedModel(encoder, transform, tokenizer)
