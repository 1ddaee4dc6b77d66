"""The one encoder interface the harness uses, and the timing every backend inherits.

A backend implements only `_encode_image` / `_encode_text`. The public methods check the
inputs, time the call (synchronising the GPU, so the time is the encoder's own) and count
what went through: that is where throughput numbers come from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class EncoderStats:
    """Items encoded and seconds spent inside the encoders since the last reset."""

    images: int = 0
    image_seconds: float = 0.0
    texts: int = 0
    text_seconds: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {
            "images": self.images,
            "texts": self.texts,
            "image_encode_seconds": self.image_seconds,
            "text_encode_seconds": self.text_seconds,
            "images_per_second": self.images / self.image_seconds if self.image_seconds else None,
            "texts_per_second": self.texts / self.text_seconds if self.text_seconds else None,
        }


class Encoder:
    """Base class: image pixels (B, 3, H, W) float -> (B, D); token ids (B, L) int64 -> (B, D).

    Embeddings come back unnormalised, as float32, on `self.device` (the harness normalises).
    Subclasses set `name`, `device`, `precision` and implement the two `_encode_*` methods.
    """

    name: str = "base"

    def __init__(self, device: torch.device, precision: str) -> None:
        self.device = device
        self.precision = precision
        self.stats = EncoderStats()

    def _encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What the result JSON records about this backend (runtime, provider, versions)."""
        return {"backend": self.name, "precision": self.precision, "device": str(self.device)}

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.dim() != 4 or pixels.shape[1] != 3 or not pixels.is_floating_point():
            raise ValueError(f"expected float pixels (batch, 3, H, W), got {pixels.dtype} {tuple(pixels.shape)}")
        embeddings, seconds = self._timed(self._encode_image, pixels)
        self.stats.images += pixels.shape[0]
        self.stats.image_seconds += seconds
        return embeddings

    def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        if input_ids.dim() != 2 or input_ids.dtype != torch.long:
            raise ValueError(f"expected int64 token ids (batch, length), got {input_ids.dtype} {tuple(input_ids.shape)}")
        embeddings, seconds = self._timed(self._encode_text, input_ids)
        self.stats.texts += input_ids.shape[0]
        self.stats.text_seconds += seconds
        return embeddings

    def _timed(self, function: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor) -> tuple[torch.Tensor, float]:
        synchronize(self.device)
        start = time.perf_counter()
        embeddings = function(batch).float()
        synchronize(self.device)
        return embeddings, time.perf_counter() - start

    def reset_stats(self) -> None:
        self.stats = EncoderStats()


def synchronize(device: torch.device) -> None:
    """Waits for the GPU, so that wall-clock timings cover the work itself."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class LoadedModel:
    """What a backend loader returns: the encoder, and the transform and tokenizer that feed it."""

    encoder: Encoder
    transform: Callable
    tokenizer: Callable
