"""Deterministic probe inputs for parity checks: synthetic images through the model's real
transform, and the model's real prompts (CLIP_benchmark's English ImageNet templates x class
names) through its tokenizer, in batches of varied sizes and padded lengths.

No dataset is read: images are drawn (gradients, shapes, noise, checkerboards, stripes,
blobs; RGB, greyscale and RGBA; varied sizes and aspect ratios) from a seeded generator, so
the same probes are rebuilt anywhere from the `ProbeConfig` recorded in parity.json.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from zsbench.export.config import ProbeConfig

IMAGE_KINDS = ("gradient", "shapes", "noise", "checkerboard", "stripes", "blobs")


@dataclass(frozen=True)
class TextBatch:
    """Token ids of some probe texts (their indices into `ProbeSet.texts`)."""

    indices: tuple[int, ...]
    input_ids: torch.Tensor


@dataclass(frozen=True)
class ProbeSet:
    """Transformed images with their batches, tokenised prompts with their batches and classes."""

    pixels: torch.Tensor
    image_names: tuple[str, ...]
    image_batches: tuple[tuple[int, int], ...]
    texts: tuple[str, ...]
    text_classes: tuple[int, ...]
    text_batches: tuple[TextBatch, ...]
    classnames: tuple[str, ...]

    def describe_image(self, index: int) -> str:
        start, stop = next(b for b in self.image_batches if b[0] <= index < b[1])
        return f"image {index} ({self.image_names[index]}, in a batch of {stop - start})"

    def describe_text(self, index: int) -> str:
        batch = next(b for b in self.text_batches if index in b.indices)
        row = batch.indices.index(index)
        tokens = int((batch.input_ids[row] > 0).sum())
        return (
            f"text {index} {self.texts[index]!r} ({tokens} tokens, in a batch of {len(batch.indices)} "
            f"padded to {batch.input_ids.shape[1]})"
        )


def imagenet_prompts(num_classes: int, num_templates: int) -> tuple[list[str], list[str]]:
    """Class names and templates spread evenly over CLIP_benchmark's English ImageNet-1k lists."""
    from zsbench.data.prompts import package_classnames, package_templates

    classnames, templates = package_classnames("en")["imagenet1k"], package_templates("en")["imagenet1k"]
    pick = lambda items, n: [items[i] for i in np.linspace(0, len(items) - 1, min(n, len(items))).round().astype(int)]  # noqa: E731
    return pick(classnames, num_classes), pick(templates, num_templates)


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))  # type: ignore[return-value]


def synthetic_image(kind: str, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """One drawn RGB image of `kind` (see IMAGE_KINDS)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == "gradient":
        angle = rng.uniform(0, np.pi)
        t = xs * np.cos(angle) + ys * np.sin(angle)
        t = (t - t.min()) / max(float(np.ptp(t)), 1.0)
        start, end = np.array(_colour(rng)), np.array(_colour(rng))
        array = start + t[..., None] * (end - start)
    elif kind == "noise":
        array = rng.integers(0, 256, (height, width, 3))
        image = Image.fromarray(array.astype(np.uint8))
        return image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 3))))
    elif kind == "checkerboard":
        cell = int(rng.integers(3, 40))
        board = ((xs // cell + ys // cell) % 2)[..., None]
        array = board * np.array(_colour(rng)) + (1 - board) * np.array(_colour(rng))
    elif kind == "stripes":
        frequency, angle = rng.uniform(0.02, 0.4), rng.uniform(0, np.pi)
        wave = 0.5 + 0.5 * np.sin(frequency * (xs * np.cos(angle) + ys * np.sin(angle)))
        array = wave[..., None] * np.array(_colour(rng)) + (1 - wave[..., None]) * np.array(_colour(rng))
    elif kind == "blobs":
        array = np.zeros((height, width, 3))
        for _ in range(int(rng.integers(2, 6))):
            cx, cy, radius = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(5, max(width, height) / 2)
            weight = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * radius**2))
            array += weight[..., None] * np.array(_colour(rng))
        array = np.clip(array, 0, 255)
    else:  # shapes
        image = Image.new("RGB", (width, height), _colour(rng))
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(1, 7))):
            x0, x1 = sorted(rng.integers(0, width, 2))
            y0, y1 = sorted(rng.integers(0, height, 2))
            box = (int(x0), int(y0), int(x1) + 2, int(y1) + 2)
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=_colour(rng))
        return image
    return Image.fromarray(np.asarray(array, dtype=np.float64).round().clip(0, 255).astype(np.uint8))


def _batches(total: int, sizes: tuple[int, ...]) -> list[tuple[int, int]]:
    """(start, stop) ranges covering `total` items, cycling through `sizes`."""
    batches: list[tuple[int, int]] = []
    start = 0
    while start < total:
        size = sizes[len(batches) % len(sizes)]
        batches.append((start, min(start + size, total)))
        start += size
    return batches


@dataclass(frozen=True)
class TextPadding:
    """How a text graph of any length is fed the full context: right-padded with `pad_id` to `context_length`."""

    context_length: int
    pad_id: int

    def pad(self, ids: torch.Tensor) -> torch.Tensor:
        """`ids` right-padded to the context length (unchanged when already that long)."""
        return torch.nn.functional.pad(ids, (0, max(0, self.context_length - ids.shape[1])), value=self.pad_id)


def build_probes(transform: Callable, tokenizer: Callable, config: ProbeConfig, padding: TextPadding | None = None) -> ProbeSet:
    """Draws the images, transforms them, tokenises the prompts, and cuts both into batches (with `padding`,
    every `pad_every`-th text batch is padded to the full context)."""
    rng = np.random.default_rng(config.seed)
    pixels, names = [], []
    for index in range(config.num_images):
        kind = IMAGE_KINDS[index % len(IMAGE_KINDS)]
        width, height = (int(v) for v in rng.integers(40, 400, 2))
        image = synthetic_image(kind, width, height, rng)
        mode = ("RGB", "RGB", "RGB", "L", "RGBA")[index % 5]
        if mode != "RGB":
            image = image.convert(mode)
        pixels.append(transform(image))
        names.append(f"{kind} {width}x{height} {mode}")

    classnames, templates = imagenet_prompts(config.num_classes, config.num_templates)
    texts = [template.format(c=name) for name in classnames for template in templates]
    classes = [index for index in range(len(classnames)) for _ in templates]
    order = rng.permutation(len(texts))
    text_batches = []
    for number, (start, stop) in enumerate(_batches(len(texts), config.text_batch_sizes)):
        indices = tuple(int(i) for i in order[start:stop])
        ids = tokenizer([texts[i] for i in indices])
        if padding is not None and number % config.pad_every == config.pad_every - 1:
            ids = padding.pad(ids)
        text_batches.append(TextBatch(indices, ids))
    return ProbeSet(
        pixels=torch.stack(pixels),
        image_names=tuple(names),
        image_batches=tuple(_batches(config.num_images, config.image_batch_sizes)),
        texts=tuple(texts),
        text_classes=tuple(classes),
        text_batches=tuple(text_batches),
        classnames=tuple(classnames),
    )
