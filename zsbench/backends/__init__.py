"""Backends: one `Encoder` interface (encode_image, encode_text) over PyTorch, ONNX Runtime, TensorRT.

To add a backend, write `backends/<runtime>.py` with an `Encoder` subclass and a loader
`(ModelRef, device, precision) -> LoadedModel`, and register the loader here by a
``"module:function"`` string so the runtime is imported only when the backend is chosen.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from zsbench.backends.base import Encoder, EncoderStats, LoadedModel
from zsbench.backends.model_ref import ModelRef
from zsbench.registry import Registry

BackendLoader = Callable[[ModelRef, torch.device, str], LoadedModel]

BACKENDS: Registry[BackendLoader] = Registry("backend")
BACKENDS.add("torch", "zsbench.backends.pyt:load_torch")


def list_backends() -> list[str]:
    """Names `--backend` accepts."""
    return BACKENDS.names()


def load_backend(backend: str, ref: ModelRef, device: torch.device, precision: str) -> LoadedModel:
    """Loads `ref` on `backend` (``torch``, ...) and returns its encoder, transform and tokenizer."""
    return BACKENDS.get(backend)(ref, device, precision)


__all__ = ["BACKENDS", "Encoder", "EncoderStats", "LoadedModel", "ModelRef", "list_backends", "load_backend"]
