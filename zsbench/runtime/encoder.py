"""The one encoder interface the harness and the parity check use, and the timing every backend inherits.

A backend implements only `_encode_image` / `_encode_text`. The public methods check the
inputs, time the call (synchronising the GPU, so the time is the encoder's own) and count
what went through: that is where throughput numbers come from. The first call of each kind
is also recorded apart (`first_*_seconds`): it pays one-time costs (CUDA context, kernel
loading, TensorRT-RTX's JIT compilation), and `steady_*_per_second` leaves it out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


def _rate(items: int, seconds: float) -> float | None:
    return items / seconds if items and seconds > 0 else None


@dataclass
class EncoderStats:
    """Items encoded and seconds spent inside the encoders since the last reset (first calls included,
    and also kept apart)."""

    images: int = 0
    image_seconds: float = 0.0
    texts: int = 0
    text_seconds: float = 0.0
    first_images: int = 0
    first_image_seconds: float | None = None
    first_texts: int = 0
    first_text_seconds: float | None = None

    def add_images(self, count: int, seconds: float, first: bool) -> None:
        if first:
            self.first_images, self.first_image_seconds = count, seconds
        self.images += count
        self.image_seconds += seconds

    def add_texts(self, count: int, seconds: float, first: bool) -> None:
        if first:
            self.first_texts, self.first_text_seconds = count, seconds
        self.texts += count
        self.text_seconds += seconds

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "images": self.images,
            "texts": self.texts,
            "image_encode_seconds": self.image_seconds,
            "text_encode_seconds": self.text_seconds,
            "images_per_second": _rate(self.images, self.image_seconds),
            "texts_per_second": _rate(self.texts, self.text_seconds),
            "first_image_call_seconds": self.first_image_seconds,
            "first_text_call_seconds": self.first_text_seconds,
            "steady_images_per_second": _rate(self.images - self.first_images, self.image_seconds - (self.first_image_seconds or 0.0)),
            "steady_texts_per_second": _rate(self.texts - self.first_texts, self.text_seconds - (self.first_text_seconds or 0.0)),
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
        self._called: set[str] = set()  # "image", "text": kinds whose first call is behind us

    def _encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What the result JSON records about this backend (runtime, provider, versions)."""
        return {"backend": self.name, "precision": self.precision, "device": str(self.device)}

    def provenance(self) -> dict[str, Any]:
        """What produced this encoder's numbers, for the result's provenance record: the versions of the
        runtime libraries it runs on, the threads they use, and the SHA-256 of the artifact files it runs
        (file name -> digest; none for eager PyTorch)."""
        return {"versions": {"torch": torch.__version__}, "threads": {"torch": torch.get_num_threads()}, "artifacts": {}}

    def runtime_memory_mb(self) -> dict[str, float] | None:
        """GPU memory the runtime holds outside torch's allocator (None: none, or not known)."""
        return None

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.dim() != 4 or pixels.shape[1] != 3 or not pixels.is_floating_point():
            raise ValueError(f"expected float pixels (batch, 3, H, W), got {pixels.dtype} {tuple(pixels.shape)}")
        embeddings, seconds = self._timed(self._encode_image, pixels)
        self.stats.add_images(pixels.shape[0], seconds, first=self._first("image"))
        return embeddings

    def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        if input_ids.dim() != 2 or input_ids.dtype != torch.long:
            raise ValueError(f"expected int64 token ids (batch, length), got {input_ids.dtype} {tuple(input_ids.shape)}")
        embeddings, seconds = self._timed(self._encode_text, input_ids)
        self.stats.add_texts(input_ids.shape[0], seconds, first=self._first("text"))
        return embeddings

    def _timed(self, function: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor) -> tuple[torch.Tensor, float]:
        synchronize(self.device)
        start = time.perf_counter()
        embeddings = function(batch).float()
        synchronize(self.device)
        return embeddings, time.perf_counter() - start

    def _first(self, kind: str) -> bool:
        first = kind not in self._called
        self._called.add(kind)
        return first

    def reset_stats(self) -> None:
        """Zeroes the counters; later calls are not first calls again (their one-time costs are paid)."""
        self.stats = EncoderStats()

    def close(self) -> None:
        """Frees what the runtime holds (sessions, engines); the encoder cannot be used afterwards."""

    def __enter__(self) -> Encoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def synchronize(device: torch.device) -> None:
    """Waits for the GPU, so that wall-clock timings cover the work itself."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
