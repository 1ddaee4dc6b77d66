"""The readers of torchvision's layouts agree with torchvision's own dataset classes on the same files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from torchvision import datasets

from tests.data.fixtures import write_dataset
from zsbench.data import build_dataset
from zsbench.data.types import load_picture

TORCHVISION: dict[str, Callable[[Path], Any]] = {
    "country211": lambda root: datasets.Country211(root, split="test"),
    "eurosat": lambda root: datasets.EuroSAT(root),
    "renderedsst2": lambda root: datasets.RenderedSST2(root, split="test"),
    "sun397": lambda root: datasets.SUN397(root),
    "food101": lambda root: datasets.Food101(root, split="test"),
    "dtd": lambda root: datasets.DTD(root, split="test"),
    "fgvc_aircraft": lambda root: datasets.FGVCAircraft(root, split="test"),
    "cars": lambda root: datasets.StanfordCars(root, split="test"),
    "gtsrb": lambda root: datasets.GTSRB(root, split="test"),
    "pets": lambda root: datasets.OxfordIIITPet(root, split="test"),
}
# CLIP_benchmark's edits of torchvision's class names; None: it names them from its JSON instead.
CLIP_BENCHMARK_NAMES: dict[str, Callable[[str], str] | None] = {
    "country211": None,
    "eurosat": None,
    "gtsrb": None,
    "food101": lambda name: name.replace("_", " "),
    "sun397": lambda name: name.replace("_", " ").replace("/", " "),
}


def content(pairs: list[tuple[Any, int]]) -> list[tuple[bytes, int]]:
    """Order-free view of (image, label) pairs: each image's RGB bytes with its label."""
    return sorted((np.asarray(image.convert("RGB")).tobytes(), int(label)) for image, label in pairs)


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_same_images_labels_and_class_names_as_torchvision(tmp_path: Path, name: str) -> None:
    write_dataset(name, tmp_path)
    ours = build_dataset(name, tmp_path)
    theirs = TORCHVISION[name](tmp_path)
    assert len(ours.samples) == len(theirs)
    our_pairs = [(load_picture(picture), label) for picture, label in (ours.samples[i] for i in range(len(ours.samples)))]
    assert content(our_pairs) == content([theirs[i] for i in range(len(theirs))])
    rename = CLIP_BENCHMARK_NAMES.get(name, lambda name: name)
    if rename is not None:
        assert ours.classnames == [rename(name) for name in theirs.classes]
