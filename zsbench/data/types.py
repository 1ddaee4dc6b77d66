"""What a dataset builder returns: typed, transform-free datasets of undecoded images.

Builders list samples and validate the layout; they never decode an image nor apply a model's
transform. `TransformedDataset` (the eval harness's view) decodes and transforms in worker
processes, and either fails on an unreadable image with its path or skips and counts it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Union

import numpy as np
from PIL import Image

from zsbench.digests import stat_key
from zsbench.errors import BadImageError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ImageRef:
    """An image not decoded yet: a file on disk, or the bytes of an archive member.

    `name` identifies it in errors: the file path, or ``shard.tar:member``. `crop` is a
    ``(left, top, right, bottom)`` box cut out after decoding (VOC2007's per-object samples).
    """

    name: str
    path: Path | None = None
    data: bytes | None = None
    crop: tuple[int, int, int, int] | None = None

    def load(self) -> Image.Image:
        """Decodes the whole image (so truncated files fail here, not later). A path that is not a regular
        file (a FIFO, whose reading would block for ever, a device, a folder) is not opened."""
        if self.path is not None and os.path.exists(self.path) and not os.path.isfile(self.path):
            raise BadImageError(
                f"Cannot read image {self.name}: it is not a regular file (a FIFO, device or folder), so it is not opened. "
                "Replace or remove it, or pass --skip-bad-images to skip unreadable images and count them in the result."
            )
        try:
            image = Image.open(self.path if self.path is not None else io.BytesIO(self.data or b""))
            image.load()
        except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as err:
            raise BadImageError(
                f"Cannot read image {self.name}: {err}. Replace or remove the file, or pass "
                "--skip-bad-images to skip unreadable images and count them in the result."
            ) from err
        return image if self.crop is None else image.crop(self.crop)


Picture = Union[Image.Image, ImageRef]


class SampleSource(Protocol):
    """A map-style dataset: `len()` and `[index] -> (Picture, target)`.

    Loaders return a list of ``(ImageRef, target)``, or an object that also tells, without
    reading any image, its `targets` and an `image_identity()` (see the functions below).
    """

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[Picture, Any]: ...


def sample_targets(samples: SampleSource) -> Sequence[Any]:
    """The target of every sample, in order, without decoding (nor reading) any image."""
    if isinstance(samples, list):
        return [target for _, target in samples]
    return samples.targets  # type: ignore[attr-defined]


def image_identity(samples: SampleSource) -> str:
    """A digest of which image each sample is and what its file holds, without reading any image:
    for files, their names, crops and stat keys (`zsbench.digests.stat_key`: a replaced or rewritten
    file changes it); objects that are not lists give their own (`image_identity()`)."""
    if not isinstance(samples, list):
        return samples.image_identity()  # type: ignore[attr-defined]
    digest = hashlib.sha256()
    for picture, _ in samples:
        digest.update(json.dumps(_picture_identity(picture), sort_keys=True).encode())
    return digest.hexdigest()


def _picture_identity(picture: Picture) -> dict[str, Any]:
    if not isinstance(picture, ImageRef):
        return {"pixels": hashlib.sha256(picture.tobytes()).hexdigest(), "mode": picture.mode, "size": picture.size}
    identity: dict[str, Any] = {"name": picture.name, "crop": picture.crop}
    if picture.data is not None:
        identity["sha256"] = hashlib.sha256(picture.data).hexdigest()
    elif picture.path is not None:
        try:
            identity["stat"] = stat_key(picture.path)
        except OSError:  # missing: it fails (or is skipped) when decoded
            identity["stat"] = None
    return identity


@dataclass(frozen=True)
class ClassificationDataset:
    """Zero-shot classification data.

    `samples[i]` is ``(picture, target)``: target is the class index, or for multi-label
    datasets a multi-hot float tensor of length ``len(classnames)``. `templates` hold ``{c}``
    where the class name goes.
    """

    name: str
    samples: SampleSource
    classnames: list[str]
    templates: list[str]
    multilabel: bool = False

    task: str = field(default="zeroshot_classification", init=False)


@dataclass(frozen=True)
class RetrievalDataset:
    """Image-text retrieval data: `samples[i]` is ``(picture, [caption, ...])``."""

    name: str
    samples: SampleSource

    task: str = field(default="zeroshot_retrieval", init=False)


EvalDataset = Union[ClassificationDataset, RetrievalDataset]


# Greyscale modes wider than 8 bits: PIL opens 16-bit PNGs and TIFFs as I;16 / I;16B, 16-bit PGMs as I.
_WIDE_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def eight_bit(image: Image.Image) -> Image.Image:
    """`image`, with 16-bit greyscale rescaled to 8-bit ``L`` (0..65535 -> 0..255, rounded).

    PIL's ``convert("RGB")`` clips such values at 255 instead, which turns a 16-bit image all white.
    ``I`` (32-bit) is read as 16-bit data, which is what PIL decodes into it from image files.
    """
    if image.mode not in _WIDE_GREY_MODES:
        return image
    values = np.asarray(image).astype(np.float64)
    return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8))  # 2-d uint8: mode L


def load_picture(picture: Picture) -> Image.Image:
    """A PIL image from a `Picture`, at most 8 bits per channel (`eight_bit`): every loader's images
    are decoded here."""
    return eight_bit(picture.load() if isinstance(picture, ImageRef) else picture)


class TransformedDataset:
    """Decodes and transforms the pictures of a `SampleSource` (a map-style dataset for torch's DataLoader).

    With `skip_bad_images`, an unreadable image yields ``None`` (the collate function drops it
    and counts it); otherwise it raises `BadImageError` naming the file.
    """

    def __init__(self, samples: SampleSource, transform: Callable[[Image.Image], torch.Tensor], skip_bad_images: bool) -> None:
        self.samples = samples
        self.transform = transform
        self.skip_bad_images = skip_bad_images

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor, Any] | None:
        picture, target = self.samples[index]
        try:
            image = load_picture(picture)
        except BadImageError:
            if self.skip_bad_images:
                return None
            raise
        return index, self.transform(image), target


def collate_samples(batch: Sequence[tuple[int, torch.Tensor, Any] | None]) -> dict[str, Any]:
    """Stacks images; keeps targets as a list (ints, tensors or caption lists); counts skipped items."""
    import torch  # here, so that listing datasets never loads torch

    kept = [item for item in batch if item is not None]
    return {
        "indices": [item[0] for item in kept],
        "images": torch.stack([item[1] for item in kept]) if kept else torch.empty(0),
        "targets": [item[2] for item in kept],
        "skipped": len(batch) - len(kept),
    }
