"""Backends: one `Encoder` interface (encode_image, encode_text) over PyTorch, ONNX Runtime, TensorRT.

To add a backend, write its `Encoder` subclass (in `zsbench/runtime/` when it runs exported
artifacts, so the export's parity check can drive the same class) and a loader
`backends/<runtime>.py`: `(ModelRef, device, precision, options) -> LoadedModel`, which finds
the artifacts and applies the gates. Register the loader here by a ``"module:function"``
string so the runtime is imported only when the backend is chosen.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from zsbench.backends.artifacts import BackendOptions
from zsbench.backends.base import LoadedModel
from zsbench.runtime.encoder import Encoder, EncoderStats
from zsbench.models.ref import ModelRef
from zsbench.registry import Registry

BackendLoader = Callable[[ModelRef, torch.device, str, BackendOptions], LoadedModel]

BACKENDS: Registry[BackendLoader] = Registry("backend")
BACKENDS.add("torch", "zsbench.backends.pyt:load_torch")
BACKENDS.add("onnx", "zsbench.backends.onnxrt:load_onnx")
BACKENDS.add("trt", "zsbench.backends.trt:load_trt")


def load_backend(
    backend: str, ref: ModelRef, device: torch.device, precision: str, options: BackendOptions | None = None
) -> LoadedModel:
    """Loads `ref` on `backend` (``torch``, ``onnx``, ``trt``) and returns its encoder, transform and tokenizer."""
    return BACKENDS.get(backend)(ref, device, precision, options or BackendOptions())


__all__ = ["BACKENDS", "BackendOptions", "Encoder", "EncoderStats", "LoadedModel", "ModelRef", "load_backend"]
