"""Decoding happens in `TransformedDataset`: unreadable files fail with their path, or are skipped and counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.data.fixtures import FER2013_FOLDERS, image_bytes, pixels, write_corrupt_images, write_imagenet_val, write_wds
from zsbench.data import ImageRef, TransformedDataset, build_dataset, collate_samples
from zsbench.errors import BadImageError


def to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB").resize((8, 8)), dtype=np.float32)).permute(2, 0, 1)


@pytest.fixture
def imagenet_with_bad_files(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    write_imagenet_val(tmp_path, per_class=1)
    return tmp_path, write_corrupt_images(tmp_path / "val" / "n01443537")


def test_builders_list_bad_files_without_decoding_them(imagenet_with_bad_files: tuple[Path, dict[str, Path]]) -> None:
    root, bad = imagenet_with_bad_files
    dataset = build_dataset("imagenet1k", root)
    listed = {picture.path for picture, _ in (dataset.samples[i] for i in range(len(dataset.samples)))}
    assert set(bad.values()) <= listed and len(listed) == 6


@pytest.mark.parametrize("kind", ["empty", "truncated", "text"])
def test_a_bad_image_raises_naming_its_path(imagenet_with_bad_files: tuple[Path, dict[str, Path]], kind: str) -> None:
    root, bad = imagenet_with_bad_files
    samples = build_dataset("imagenet1k", root).samples
    view = TransformedDataset(samples, to_tensor, skip_bad_images=False)
    index = next(i for i in range(len(samples)) if samples[i][0].path == bad[kind])
    with pytest.raises(BadImageError) as caught:
        view[index]
    assert str(bad[kind]) in str(caught.value) and "--skip-bad-images" in str(caught.value)


def test_skipped_bad_images_are_counted_by_the_collate_function(imagenet_with_bad_files: tuple[Path, dict[str, Path]]) -> None:
    root, _ = imagenet_with_bad_files
    samples = build_dataset("imagenet1k", root).samples
    loader = torch.utils.data.DataLoader(
        TransformedDataset(samples, to_tensor, skip_bad_images=True), batch_size=4, collate_fn=collate_samples
    )
    batches = list(loader)
    assert sum(batch["skipped"] for batch in batches) == 3
    assert sum(len(batch["targets"]) for batch in batches) == 3
    assert sorted(target for batch in batches for target in batch["targets"]) == [0, 1, 2]
    assert all(batch["images"].shape[1:] == (3, 8, 8) for batch in batches if batch["targets"])


def test_a_bad_archive_member_is_named_by_shard_and_member(tmp_path: Path) -> None:
    write_wds(tmp_path, [(image_bytes(0, "PNG"), 0), (b"\x89PNG broken", 1)], image_field="png", classnames=["a", "b"])
    view = TransformedDataset(build_dataset("wds/x", tmp_path).samples, to_tensor, skip_bad_images=False)
    assert view[0][2] == 0
    with pytest.raises(BadImageError, match=r"0\.tar:s0000001\.png"):
        view[1]


def test_an_image_ref_crops_after_decoding(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(image_bytes(3, "PNG", (16, 12)))
    cropped = ImageRef(name=str(path), path=path, crop=(2, 3, 10, 7)).load()
    assert cropped.size == (8, 4)
    assert np.array_equal(np.asarray(cropped), pixels(3, (16, 12))[3:7, 2:10])


def write_wide_grey(path: Path, values: np.ndarray) -> None:
    """A 16-bit greyscale file as cameras and scanners write them: PNG (I;16), big-endian TIFF (I;16B)
    or a 16-bit PGM (P5 with maxval 65535, which PIL opens as mode I)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".pgm":
        height, width = values.shape
        path.write_bytes(f"P5\n{width} {height}\n65535\n".encode() + values.astype(">u2").tobytes())
    elif path.suffix == ".tif":
        Image.fromarray(values.astype(">u2")).save(path)
    else:
        Image.fromarray(values.astype("<u2")).save(path)


@pytest.mark.parametrize(("suffix", "mode"), [(".png", "I;16"), (".tif", "I;16B"), (".pgm", "I")])
def test_16_bit_greyscale_is_rescaled_to_8_bits_not_clipped_white(tmp_path: Path, suffix: str, mode: str) -> None:
    """The sweep's case: a 16-bit greyscale PNG went all white through convert("RGB") (acc1 0.25 -> 0.03)."""
    values = np.linspace(0, 65535, 64).round().reshape(8, 8).astype(np.uint16)
    for name in FER2013_FOLDERS:  # FER2013's layout, read by the generic class-folder loader
        write_wide_grey(tmp_path / "test" / name / f"face{suffix}", values)
    assert Image.open(tmp_path / "test" / "angry" / f"face{suffix}").mode == mode
    dataset = build_dataset("fer2013", tmp_path)
    images = TransformedDataset(dataset.samples, lambda image: np.asarray(image.convert("RGB")), skip_bad_images=False)
    _, rgb, _ = images[0]  # type: ignore[misc]
    expected = np.rint(values / 257.0).astype(np.uint8)  # 0..65535 onto 0..255
    assert rgb.shape == (8, 8, 3) and all((rgb[..., channel] == expected).all() for channel in range(3))
