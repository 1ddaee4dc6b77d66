"""The image transforms reproduce InternVL's: computed here independently with PIL and numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zsbench.models import PreprocessConfig, build_transform
from zsbench.models.transform import IMAGENET_MEAN, IMAGENET_STD


def reference(image: Image.Image, size: int, mode: str) -> torch.Tensor:
    image = image.convert("RGB")
    width, height = image.size
    if mode == "squash":
        image = image.resize((size, size), Image.BICUBIC)
    else:
        scale = size / min(width, height)
        new = (size, int(height * scale)) if width <= height else (int(width * scale), size)
        image = image.resize(new, Image.BICUBIC)
        left, top = round((new[0] - size) / 2), round((new[1] - size) / 2)
        image = image.crop((left, top, left + size, top + size))
    array = (np.asarray(image, dtype=np.float32) / 255.0 - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


@pytest.mark.parametrize("mode", ["shortest", "squash"])
@pytest.mark.parametrize("image_mode", ["RGB", "RGBA", "L", "P"])
@pytest.mark.parametrize("shape", [(50, 40), (40, 71), (32, 32)])
def test_transform_matches_pil_reference(mode: str, image_mode: str, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(shape[1], shape[0], 4), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGBA").convert(image_mode)
    ours = build_transform(PreprocessConfig(32, mode))(image)
    assert ours.shape == (3, 32, 32)
    torch.testing.assert_close(ours, reference(image, 32, mode), rtol=0, atol=1e-5)


def test_classification_keeps_aspect_and_retrieval_squashes() -> None:
    # A wide image with a red left half: the centre crop of the classification transform cuts
    # the sides off, the retrieval transform keeps them.
    pixels = np.zeros((32, 96, 3), dtype=np.uint8)
    pixels[:, :24, 0] = 255
    image = Image.fromarray(pixels)
    crop = build_transform(PreprocessConfig(32, "shortest"))(image)
    squash = build_transform(PreprocessConfig(32, "squash"))(image)
    red = (1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    assert crop[0, :, 0].mean() < red / 2  # crop starts at column 32 of 96: no red left
    assert squash[0, :, 0].mean() == pytest.approx(red, abs=1e-3)
