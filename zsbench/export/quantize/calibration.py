"""Calibration inputs for quantization: real model inputs, made by the model's own transform and tokenizer.

A `CalibrationSet` holds each graph's input batches (transformed images for ``vision``, token ids
for ``text``) and the prompts they came from. `calibration_set` makes the one a `CalibrationConfig`
asks for (`zsbench export --calibration_dataset/--calibration_root/--calibration_samples`):

- from a dataset zsbench reads: a seeded sample of its images, and as prompts the class names x
  templates of a classification dataset, or the captions of a retrieval dataset;
- by default, synthetic images of the kinds the parity probes are drawn from, from a random stream
  of their own (`CALIBRATION_STREAM`, a numpy `SeedSequence` spawn key the probes do not use), and
  CLIP_benchmark's ImageNet class names x templates.

Either way calibration and parity never share a sample: an image whose transformed pixels equal a
parity probe's, and every parity prompt, are left out, and `check_disjoint` verifies the result
sample by sample. The manifest records a `CalibrationRecord` per graph: the set's name, the sample
count and the SHA-256 of the exact batches fed to the quantizer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from zsbench.errors import ExportError
from zsbench.export.config import CalibrationConfig
from zsbench.export.probes import IMAGE_KINDS, ProbeSet, TextPadding, imagenet_prompts, synthetic_image

# The spawn key of the calibration images' random stream: the parity probes draw from
# `default_rng(seed)` (no spawn key), so the two streams differ for every pair of seeds.
CALIBRATION_STREAM = 0xCA11B
_ALL_CLASSES, _ALL_TEMPLATES = 1000, 80  # every ImageNet class name and template CLIP_benchmark lists
Feed = Mapping[str, np.ndarray]


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
    def from_dict(cls, data: dict[str, Any]) -> CalibrationRecord:
        return cls(str(data["name"]), int(data["samples"]), int(data["batches"]), str(data["sha256"]))

    @classmethod
    def of(cls, name: str, feeds: Sequence[Feed]) -> CalibrationRecord:
        """The record of `feeds` (samples counted along the first axis of each feed's first input)."""
        samples = sum(len(next(iter(feed.values()))) for feed in feeds)
        return cls(name, samples, len(feeds), feeds_digest(feeds))


@dataclass(frozen=True)
class CalibrationSet:
    """Input batches of each graph (``vision``: float32 pixels, ``text``: int64 ids), their prompts, and the id
    token ids are padded with."""

    name: str
    batches: Mapping[str, tuple[np.ndarray, ...]]
    texts: tuple[str, ...]
    pad_id: int = 0

    def feeds(self, graph: str, input_name: str) -> list[dict[str, np.ndarray]]:
        """The feed dicts of `graph`, whose single input is called `input_name`."""
        return [{input_name: batch} for batch in self.batches[graph]]

    def stacked(self, graph: str) -> np.ndarray:
        """Every sample of `graph` in one array; token ids right-padded to the longest batch, which changes no
        embedding (the text graph masks and pools past padding)."""
        batches = self.batches[graph]
        if batches[0].ndim == 2:
            width = max(batch.shape[1] for batch in batches)
            batches = tuple(np.pad(batch, ((0, 0), (0, width - batch.shape[1])), constant_values=self.pad_id) for batch in batches)
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


def _probe_pixels(parity: ProbeSet) -> set[str]:
    return {_row_digest(row) for row in _pixels(parity.pixels)}


def build_calibration_set(
    images: Iterable[Any],
    prompts: Iterable[str],
    transform: Callable,
    tokenizer: Callable,
    padding: TextPadding | None,
    config: CalibrationConfig,
    parity: ProbeSet,
    *,
    name: str,
) -> CalibrationSet:
    """Transforms `images` (PIL images) and tokenises `prompts` into batches of `config.batch_size`, leaving out
    any image whose pixels are a parity probe's and every parity prompt, until `config.num_samples` of each are
    taken. With `padding` (a text graph of any length), every `config.pad_every`-th text batch is padded to the
    full context, as the parity probes are and as InternVL's own pipeline pads every prompt.

    Raises:
        ExportError: no image or no prompt is left.
    """
    excluded = _probe_pixels(parity)
    pixels = []
    for image in images:
        row = _pixels(transform(image))
        if _row_digest(row) not in excluded:
            pixels.append(row)
        if len(pixels) == config.num_samples:
            break
    taken = set(parity.texts)
    texts = tuple(text for text in dict.fromkeys(prompts) if text not in taken)[: config.num_samples]
    if not pixels or not texts:
        raise ExportError(f"The calibration set ({name}) has {len(pixels)} images and {len(texts)} prompts apart from the "
                          "parity probes; it needs both. Point --calibration_dataset at other data.")
    text_batches = []
    for number, start in enumerate(range(0, len(texts), config.batch_size)):
        ids = tokenizer(list(texts[start : start + config.batch_size]))
        if padding is not None and number % config.pad_every == config.pad_every - 1:
            ids = padding.pad(ids)
        text_batches.append(np.asarray(ids, dtype=np.int64))
    image_batches = tuple(np.stack(pixels[start : start + config.batch_size]) for start in range(0, len(pixels), config.batch_size))
    return CalibrationSet(name, {"vision": image_batches, "text": tuple(text_batches)}, texts, padding.pad_id if padding else 0)


def _synthetic_images(config: CalibrationConfig) -> Iterator[Any]:
    """Drawn images from the calibration stream (the parity probes' kinds, sizes and modes)."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(CALIBRATION_STREAM,)))
    index = 0
    while True:
        kind = IMAGE_KINDS[index % len(IMAGE_KINDS)]
        width, height = (int(v) for v in rng.integers(40, 400, 2))
        image = synthetic_image(kind, width, height, rng)
        mode = ("RGB", "RGB", "RGB", "L", "RGBA")[index % 5]
        index += 1
        yield image.convert(mode) if mode != "RGB" else image


def _sample(items: Sequence[Any], count: int, seed: int, stream: int) -> list[Any]:
    """`count` of `items` (all of them when fewer), drawn without replacement by the calibration stream, in draw order."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(CALIBRATION_STREAM, stream)))
    return [items[int(i)] for i in rng.permutation(len(items))[:count]]


def _dataset_source(config: CalibrationConfig) -> tuple[Iterator[Any], list[str], str]:
    """(images, prompts, name) of a dataset zsbench reads: a seeded sample of its images; its class names x
    templates, or its captions. More candidates than needed are offered, so that any left out still leave enough."""
    from zsbench.data import build_dataset
    from zsbench.data.types import ClassificationDataset, load_picture

    assert config.dataset is not None and config.root is not None
    dataset = build_dataset(config.dataset, config.root, split=config.split)
    order = _sample(range(len(dataset.samples)), len(dataset.samples), config.seed, 0)
    images = (load_picture(dataset.samples[index][0]) for index in order)
    if isinstance(dataset, ClassificationDataset):
        prompts = [template.format(c=name) for name in dataset.classnames for template in dataset.templates]
        what = "class names x templates"
    else:
        prompts = [caption for index in order for caption in dataset.samples[index][1]]
        what = "captions"
    prompts = _sample(prompts, 2 * config.num_samples, config.seed, 1)
    return images, prompts, f"dataset {config.dataset} ({config.split}, {config.root}): its images and {what}"


def calibration_set(transform: Callable, tokenizer: Callable, padding: TextPadding | None, config: CalibrationConfig,
                    parity: ProbeSet) -> CalibrationSet:
    """The calibration set `config` asks for, none of it a parity probe (see the module docstring).

    Args:
        transform, tokenizer: the model's own, so that the graphs see what they will see in eval.
        padding: how text batches are padded to the full context (a text graph of any length), else None.
        config: the source (a dataset, or synthetic), counts, seed and batching.
        parity: the parity probes to stay disjoint from (`zsbench.export.probes.build_probes`).

    Raises:
        ExportError: too few images or prompts apart from the parity probes.
        DatasetLayoutError, UnknownNameError, PromptsError: the dataset cannot be read.
    """
    if config.dataset is not None:
        images, prompts, name = _dataset_source(config)
    else:
        classnames, templates = imagenet_prompts(_ALL_CLASSES, _ALL_TEMPLATES)
        pool = sorted({template.format(c=classname) for classname in classnames for template in templates} - set(parity.texts))
        images, prompts = _synthetic_images(config), _sample(pool, config.num_samples, config.seed, 1)
        name = f"synthetic (seed {config.seed}): drawn images and ImageNet prompts"
    made = build_calibration_set(images, prompts, transform, tokenizer, padding, config, parity, name=name)
    check_disjoint(made, parity)
    return made


def check_disjoint(calibration: CalibrationSet, parity: ProbeSet) -> None:
    """Raises `ExportError` if a calibration image (by its transformed pixels) or prompt is also a parity probe."""
    probe_pixels = _probe_pixels(parity)
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
