"""Calibration inputs for int8 quantization: real model inputs, made by the model's own transform and tokenizer.

A `CalibrationSet` holds the graphs' input batches (transformed images for ``vision``, token
ids for ``text``) and the prompts they came from. `build_calibration_set` makes one from any
images and prompts (a dataset's, in the later wiring); `synthetic_calibration` makes the
default one: drawn images of the same kinds as the parity probes' and ImageNet prompts, with
the parity probes themselves left out, so calibration and parity never share a sample:

- images come from their own random stream (`CALIBRATION_STREAM`, a numpy `SeedSequence`
  spawn key the probes do not use), and any image whose transformed pixels equal a parity
  probe's is dropped;
- prompts are drawn from CLIP_benchmark's ImageNet class names x templates minus every
  prompt the parity probes use.

`check_disjoint` verifies the same for any calibration set, sample by sample. The manifest
records a `CalibrationRecord` per graph: name, sample count and the SHA-256 of the exact
batches fed to the quantizer (`CalibrationRecord.of`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from zsbench.errors import ExportError
from zsbench.export.probes import IMAGE_KINDS, ProbeSet, imagenet_prompts, synthetic_image

# The spawn key of the calibration images' random stream: the parity probes draw from
# `default_rng(seed)` (no spawn key), so the two streams differ for every pair of seeds.
CALIBRATION_STREAM = 0xCA11B
_ALL_CLASSES, _ALL_TEMPLATES = 1000, 80  # every ImageNet class name and template CLIP_benchmark lists
Feed = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class CalibrationConfig:
    """The default (synthetic) calibration set: sample counts, random stream, batching.

    Every `pad_every`-th text batch is padded to the tokenizer's full context length, as the
    parity probes do and as InternVL's own pipeline pads every prompt, so the calibrated ranges
    cover padded positions too.
    """

    num_samples: int = 512
    seed: int = 0
    batch_size: int = 16
    pad_every: int = 4

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CalibrationRecord:
    """What the manifest records of the calibration of one graph."""

    name: str
    samples: int
    batches: int
    sha256: str  # of the exact batches fed, in order (`feeds_digest`)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, name: str, feeds: Sequence[Feed]) -> CalibrationRecord:
        """The record of `feeds` (samples counted along the first axis of each feed's first input)."""
        samples = sum(len(next(iter(feed.values()))) for feed in feeds)
        return cls(name, samples, len(feeds), feeds_digest(feeds))


@dataclass(frozen=True)
class CalibrationSet:
    """Input batches of each graph (``vision``: float32 pixels, ``text``: int64 ids) and their prompts."""

    name: str
    batches: Mapping[str, tuple[np.ndarray, ...]]
    texts: tuple[str, ...]

    def feeds(self, graph: str, input_name: str) -> list[dict[str, np.ndarray]]:
        """The feed dicts of `graph`, whose single input is called `input_name`."""
        return [{input_name: batch} for batch in self.batches[graph]]

    def stacked(self, graph: str) -> np.ndarray:
        """Every sample of `graph` in one array; token ids right-padded with 0 to the longest batch,
        which changes no embedding (the text graph masks and pools past padding)."""
        batches = self.batches[graph]
        if batches[0].ndim == 2:
            width = max(batch.shape[1] for batch in batches)
            batches = tuple(np.pad(batch, ((0, 0), (0, width - batch.shape[1]))) for batch in batches)
        return np.concatenate(batches)


def feeds_digest(feeds: Iterable[Feed]) -> str:
    """SHA-256 over every feed's input names, dtypes, shapes and bytes, in order."""
    digest = hashlib.sha256()
    for feed in feeds:
        for name in sorted(feed):
            array = np.ascontiguousarray(feed[name])
            digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


def _row_digest(row: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(row, dtype=np.float32).tobytes()).hexdigest()


def _pixels(value: Any) -> np.ndarray:
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype=np.float32)


def build_calibration_set(
    images: Iterable[Any],
    prompts: Iterable[str],
    transform: Callable,
    tokenizer: Callable,
    *,
    name: str,
    batch_size: int = 16,
    pad_every: int = 4,
) -> CalibrationSet:
    """Transforms `images` (PIL images) and tokenises `prompts` into batches of `batch_size`."""
    pixels = [_pixels(transform(image)) for image in images]
    texts = tuple(prompts)
    if not pixels or not texts:
        raise ExportError(f"Calibration set {name!r} has {len(pixels)} images and {len(texts)} prompts; it needs both.")
    context_length = getattr(tokenizer, "context_length", None)
    text_batches = []
    for number, start in enumerate(range(0, len(texts), batch_size)):
        chunk = list(texts[start : start + batch_size])
        pad = context_length is not None and number % pad_every == pad_every - 1
        ids = tokenizer(chunk, pad_to=context_length) if pad else tokenizer(chunk)
        text_batches.append(np.asarray(ids, dtype=np.int64))
    image_batches = tuple(np.stack(pixels[start : start + batch_size]) for start in range(0, len(pixels), batch_size))
    return CalibrationSet(name, {"vision": image_batches, "text": tuple(text_batches)}, texts)


def _synthetic_images(config: CalibrationConfig, exclude: set[str], transform: Callable) -> Iterator[Any]:
    """Drawn images from the calibration stream, skipping any whose transformed pixels are a parity probe's."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(CALIBRATION_STREAM,)))
    made = 0
    index = 0
    while made < config.num_samples:
        kind = IMAGE_KINDS[index % len(IMAGE_KINDS)]
        width, height = (int(v) for v in rng.integers(40, 400, 2))
        image = synthetic_image(kind, width, height, rng)
        mode = ("RGB", "RGB", "RGB", "L", "RGBA")[index % 5]
        image = image.convert(mode) if mode != "RGB" else image
        index += 1
        if _row_digest(_pixels(transform(image))) in exclude:
            continue
        made += 1
        yield image


def synthetic_calibration(transform: Callable, tokenizer: Callable, config: CalibrationConfig, parity: ProbeSet) -> CalibrationSet:
    """The default calibration set: `config.num_samples` drawn images and ImageNet prompts, none of them a parity probe.

    Args:
        transform, tokenizer: the model's own, so that the graphs see what they will see in eval.
        config: counts, seed and batching.
        parity: the parity probes to stay disjoint from (`zsbench.export.probes.build_probes`).
    """
    probe_pixels = {_row_digest(row) for row in _pixels(parity.pixels)}
    classnames, templates = imagenet_prompts(_ALL_CLASSES, _ALL_TEMPLATES)
    taken = set(parity.texts)
    pool = sorted({template.format(c=name) for name in classnames for template in templates} - taken)
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(CALIBRATION_STREAM, 1)))
    prompts = [pool[i] for i in rng.choice(len(pool), size=min(config.num_samples, len(pool)), replace=False)]
    return build_calibration_set(
        _synthetic_images(config, probe_pixels, transform), prompts, transform, tokenizer,
        name=f"synthetic (seed {config.seed}, {config.num_samples} images and ImageNet prompts, disjoint from the parity probes)",
        batch_size=config.batch_size, pad_every=config.pad_every,
    )


def check_disjoint(calibration: CalibrationSet, parity: ProbeSet) -> None:
    """Raises `ExportError` if a calibration image (by its transformed pixels) or prompt is also a parity probe."""
    probe_pixels = {_row_digest(row) for row in _pixels(parity.pixels)}
    shared_images = sum(_row_digest(row) in probe_pixels for batch in calibration.batches["vision"] for row in batch)
    shared_texts = sorted(set(calibration.texts) & set(parity.texts))
    if shared_images or shared_texts:
        raise ExportError(
            f"The calibration set {calibration.name!r} shares {shared_images} image(s) and {len(shared_texts)} prompt(s) "
            f"with the parity probes (e.g. {shared_texts[:2]}); a graph calibrated on its own test samples would pass "
            "parity for the wrong reason. Use other calibration data, or another calibration seed."
        )


class FeedReader:
    """ONNX Runtime's `CalibrationDataReader` protocol over a list of feed dicts.

    `get_next` hands them out in order (None at the end); `set_range` restricts it to a slice,
    which `quantize_static` uses for strided calibration (see `int8.py`); iterating starts over.
    """

    def __init__(self, feeds: Sequence[Feed]) -> None:
        self.feeds = list(feeds)
        self._pending = iter(self.feeds)

    def get_next(self) -> Feed | None:
        return next(self._pending, None)

    def __len__(self) -> int:
        return len(self.feeds)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._pending = iter(self.feeds[start_index:end_index])

    def __iter__(self) -> Iterator[Feed]:
        self._pending = iter(self.feeds)
        return iter(self.get_next, None)
