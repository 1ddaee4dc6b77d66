"""Calibration sets: disjoint from the parity probes by construction, and recorded by a digest of the exact feeds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tests.conftest import DEMO_CHECKPOINT
from zsbench.errors import ExportError
from zsbench.export.probes import ProbeConfig, build_probes
from zsbench.export.quantize.calibration import (
    CalibrationConfig,
    CalibrationRecord,
    CalibrationSet,
    FeedReader,
    check_disjoint,
    calibration_set,
    feeds_digest,
)
from zsbench.models import load_clip

SMALL = CalibrationConfig(num_samples=6, batch_size=4)


@pytest.fixture(scope="module")
def demo_io() -> tuple:
    _, transform, tokenizer = load_clip("internvl", "internvl_c_retrieval_hf", DEMO_CHECKPOINT)
    return transform, tokenizer, build_probes(transform, tokenizer, ProbeConfig(num_images=6, num_classes=4, num_templates=2))


def _rows(calibration: CalibrationSet) -> list[bytes]:
    return [row.tobytes() for row in np.concatenate(calibration.batches["vision"])]


def test_an_image_that_is_a_parity_probe_is_skipped(demo_io: tuple) -> None:
    transform, tokenizer, probes = demo_io
    first = calibration_set(transform, tokenizer, None, SMALL, probes)
    # Pretend the first calibration image were also a parity probe: it must be left out, and replaced.
    shared = torch.from_numpy(first.batches["vision"][0][:1])
    probes_with_it = dataclasses.replace(probes, pixels=torch.cat([probes.pixels, shared]))
    second = calibration_set(transform, tokenizer, None, SMALL, probes_with_it)
    assert _rows(second)[:-1] == _rows(first)[1:]
    assert shared.numpy().tobytes() not in _rows(second) and len(_rows(second)) == SMALL.num_samples
    check_disjoint(second, probes_with_it)


def test_prompts_never_include_a_parity_prompt(demo_io: tuple) -> None:
    transform, tokenizer, probes = demo_io
    first = calibration_set(transform, tokenizer, None, SMALL, probes)
    probes_with_them = dataclasses.replace(probes, texts=probes.texts + first.texts[:3])
    second = calibration_set(transform, tokenizer, None, SMALL, probes_with_them)
    assert not set(second.texts) & set(probes_with_them.texts) and len(second.texts) == SMALL.num_samples
    # The text batches are the tokenised prompts, every fourth padded to the full context length.
    assert sum(len(batch) for batch in second.batches["text"]) == SMALL.num_samples
    assert second.batches["text"][0].dtype == np.int64


def test_check_disjoint_refuses_a_calibration_set_made_of_parity_probes(demo_io: tuple) -> None:
    _, _, probes = demo_io
    images = CalibrationSet("probes", {"vision": (probes.pixels.numpy()[:2],), "text": ()}, ("a photo of a dog.",))
    with pytest.raises(ExportError, match="shares 2 image\\(s\\) and 0 prompt"):
        check_disjoint(images, probes)
    prompts = CalibrationSet("prompts", {"vision": (), "text": ()}, probes.texts[:1])
    with pytest.raises(ExportError, match="shares 0 image\\(s\\) and 1 prompt"):
        check_disjoint(prompts, probes)


def test_the_record_digest_covers_values_dtypes_shapes_and_order() -> None:
    a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((1, 3), dtype=np.float32)
    feeds = [{"x": a}, {"x": b}]
    digest = feeds_digest(feeds)
    assert digest == feeds_digest([{"x": a.copy()}, {"x": b.copy()}])
    changed = a.copy()
    changed[1, 2] += 1e-6
    assert feeds_digest([{"x": changed}, {"x": b}]) != digest
    assert feeds_digest([{"x": b}, {"x": a}]) != digest
    assert feeds_digest([{"x": a.astype(np.float64)}, {"x": b}]) != digest
    assert feeds_digest([{"x": a.reshape(3, 2)}, {"x": b}]) != digest
    assert CalibrationRecord.of("name", feeds) == CalibrationRecord("name", 3, 2, digest)


def test_feed_reader_follows_onnxruntimes_reader_protocol() -> None:
    feeds = [{"x": np.full((1,), i)} for i in range(5)]
    reader = FeedReader(feeds)
    assert len(reader) == 5
    assert [int(feed["x"][0]) for feed in iter(reader.get_next, None)] == [0, 1, 2, 3, 4]
    reader.set_range(1, 3)
    assert [int(feed["x"][0]) for feed in iter(reader.get_next, None)] == [1, 2]
    assert [int(feed["x"][0]) for feed in reader] == [0, 1, 2, 3, 4]


def test_stacked_pads_token_ids_with_zeros_and_keeps_images() -> None:
    ids = (np.array([[1, 5, 2]]), np.array([[1, 5, 6, 7, 2], [1, 2, 0, 0, 0]]))
    pixels = (np.zeros((2, 3, 4, 4), np.float32), np.ones((1, 3, 4, 4), np.float32))
    calibration = CalibrationSet("t", {"vision": pixels, "text": ids}, ("a", "b", "c"))
    assert calibration.stacked("text").tolist() == [[1, 5, 2, 0, 0], [1, 5, 6, 7, 2], [1, 2, 0, 0, 0]]
    assert calibration.stacked("vision").shape == (3, 3, 4, 4) and calibration.stacked("vision")[2].min() == 1


def test_a_dataset_calibrates_on_its_images_and_class_prompts_of_the_split_asked(demo_io: tuple, tmp_path) -> None:
    from zsbench.demo.generate import DemoDatasetSpec, generate_demo_data
    from zsbench.data import build_dataset

    transform, tokenizer, probes = demo_io
    spec = DemoDatasetSpec("shapes_classification", "classification", num_test=4, num_train=12, samples_per_shard=6)
    root = generate_demo_data(tmp_path, datasets=(spec,))["shapes_classification"].parent
    config = CalibrationConfig(dataset="wds/shapes_classification", root=root, split="train", num_samples=8, batch_size=4)
    made = calibration_set(transform, tokenizer, None, config, probes)
    assert "wds/shapes_classification (train" in made.name
    # Every calibration image is one of the train split's images, transformed; none is a test image.
    train = build_dataset("wds/shapes_classification", root, split="train")
    test = build_dataset("wds/shapes_classification", root, split="test")
    def pixels(dataset) -> set[bytes]:
        from zsbench.data.types import load_picture
        return {np.asarray(transform(load_picture(path))).tobytes() for path, _ in dataset.samples}
    rows = set(_rows(made))
    assert len(rows) == 8 and rows <= pixels(train) and not rows & pixels(test)
    prompts = {template.format(c=name) for name in train.classnames for template in train.templates}
    assert set(made.texts) <= prompts and len(made.texts) == 8
