"""Backends: one `Encoder` interface (encode_image, encode_text) over PyTorch, ONNX Runtime, TensorRT.

To add a backend, write its `Encoder` subclass (in `zsbench/runtime/` when it runs exported
artifacts, so the export's parity check can drive the same class) and a loader
`backends/<runtime>.py`: `(ModelRef, device, precision, options) -> LoadedModel`, which finds
the artifacts and applies the gates. Register the loader below by a ``"module:function"``
string (the runtime is imported only when the backend is chosen): `--backend`, `bench --backends`
and `demo --backends` take their choices from `BACKENDS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from zsbench.lazy import lazy_attributes
from zsbench.registry import Registry
from zsbench.types import EXPORTED_BACKENDS

if TYPE_CHECKING:
    import torch

    from zsbench.backends.artifacts import BackendOptions
    from zsbench.backends.base import LoadedModel
    from zsbench.models.ref import ModelRef

BackendLoader = Callable[["ModelRef", "torch.device", str, "BackendOptions"], "LoadedModel"]

BACKENDS: Registry[BackendLoader] = Registry("backend")
BACKENDS.add("torch", "zsbench.backends.pyt:load_torch")
BACKENDS.add("onnx", "zsbench.backends.onnxrt:load_onnx")
BACKENDS.add("trt", "zsbench.backends.trt:load_trt")


def load_backend(
    backend: str, ref: ModelRef, device: torch.device, precision: str, options: BackendOptions | None = None
) -> LoadedModel:
    """Loads `ref` on `backend` (``torch``, ``onnx``, ``trt``) and returns its encoder, transform and tokenizer."""
    from zsbench.backends.artifacts import BackendOptions

    return BACKENDS.get(backend)(ref, device, precision, options or BackendOptions())


_EXPORTS = {
    "BackendOptions": "zsbench.backends.artifacts",
    "Encoder": "zsbench.runtime.encoder",
    "EncoderStats": "zsbench.runtime.encoder",
    "LoadedModel": "zsbench.backends.base",
    "ModelRef": "zsbench.models.ref",
}
__all__ = ["BACKENDS", "EXPORTED_BACKENDS", "load_backend", *_EXPORTS]
__getattr__ = lazy_attributes(__name__, _EXPORTS)
