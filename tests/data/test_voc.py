"""VOC 2007 as CLIP_benchmark poses it: one cropped sample per box, or one multi-hot target per image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.data.fixtures import VOC_CLASSES, write_voc2007
from zsbench.data import build_dataset
from zsbench.data.types import load_picture
from zsbench.errors import DatasetLayoutError


def test_each_box_is_a_cropped_sample(tmp_path: Path) -> None:
    objects = write_voc2007(tmp_path)
    dataset = build_dataset("voc2007", tmp_path)
    assert dataset.classnames == VOC_CLASSES
    expected = [(image_id, name, box) for image_id, boxes in objects.items() for name, box in boxes]
    assert len(dataset.samples) == len(expected)
    for i, (image_id, name, box) in enumerate(expected):
        picture, label = dataset.samples[i]
        assert VOC_CLASSES[label] == name
        whole = Image.open(tmp_path / "VOCdevkit" / "VOC2007" / "JPEGImages" / f"{image_id}.jpg")
        assert np.array_equal(np.asarray(load_picture(picture)), np.asarray(whole.crop(box)))


def test_multilabel_targets_mark_every_class_present(tmp_path: Path) -> None:
    objects = write_voc2007(tmp_path)
    dataset = build_dataset("voc2007_multilabel", tmp_path)
    assert dataset.multilabel and len(dataset.samples) == len(objects)
    for i, boxes in enumerate(objects.values()):
        expected = torch.zeros(20)
        for name, _ in boxes:
            expected[VOC_CLASSES.index(name)] = 1.0
        assert torch.equal(dataset.samples[i][1], expected)


def test_an_object_of_an_unlisted_class_is_refused(tmp_path: Path) -> None:
    write_voc2007(tmp_path)
    (tmp_path / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "dog_test.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="000001.xml has an object of class 'dog'"):
        build_dataset("voc2007", tmp_path)
