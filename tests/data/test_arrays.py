"""CIFAR, MNIST and STL-10: the pixels and labels come back exactly as written in the real formats."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from torchvision.datasets.mnist import read_image_file, read_label_file

from tests.data.fixtures import write_cifar, write_mnist, write_stl10
from zsbench.data import build_dataset
from zsbench.errors import DatasetLayoutError


def decoded(dataset: object) -> tuple[list[np.ndarray], list[int]]:
    samples = dataset.samples  # type: ignore[attr-defined]
    pairs = [samples[i] for i in range(len(samples))]
    return [np.asarray(image) for image, _ in pairs], [label for _, label in pairs]


@pytest.mark.parametrize(("name", "classes"), [("cifar10", 10), ("cifar100", 100)])
def test_cifar_pixels_labels_and_names(tmp_path: Path, name: str, classes: int) -> None:
    images, labels = write_cifar(tmp_path, classes=classes)
    dataset = build_dataset(name, tmp_path)
    ours, our_labels = decoded(dataset)
    assert our_labels == labels
    assert all(np.array_equal(a, b) for a, b in zip(ours, images))
    assert dataset.classnames == ([f"class{i}" for i in range(10)] if classes == 10 else [f"fine_{i}" for i in range(100)])


def test_a_cifar_batch_that_would_run_code_is_refused(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str, str]]:
            return (open, (str(marker), "w"))

    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({"data": Payload()}, protocol=2))
    with pytest.raises(DatasetLayoutError, match=r"io\.open, which a CIFAR batch never does"):
        build_dataset("cifar10", tmp_path)
    assert not marker.exists()


def test_mnist_matches_torchvisions_idx_reader(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    dataset = build_dataset("mnist", tmp_path)
    ours, labels = decoded(dataset)
    assert np.array_equal(np.stack(ours), read_image_file(str(raw / "t10k-images-idx3-ubyte")).numpy())
    assert labels == read_label_file(str(raw / "t10k-labels-idx1-ubyte")).tolist()
    assert dataset.samples[0][0].mode == "L"
    assert dataset.classnames[:3] == ["0", "1", "2"]


def test_a_file_that_is_not_idx_is_refused(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(b"\x1f\x8b gzip, not extracted")
    with pytest.raises(DatasetLayoutError, match="not an IDX file"):
        build_dataset("mnist", tmp_path)


def test_stl10_pixels_labels_and_names(tmp_path: Path) -> None:
    images, labels = write_stl10(tmp_path)
    dataset = build_dataset("stl10", tmp_path)
    ours, our_labels = decoded(dataset)
    assert our_labels == labels
    assert all(np.array_equal(a, b) for a, b in zip(ours, images))
    assert dataset.classnames[:2] == ["airplane", "bird"]


def test_a_short_stl10_file_is_refused(tmp_path: Path) -> None:
    write_stl10(tmp_path)
    path = tmp_path / "stl10_binary" / "test_X.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DatasetLayoutError, match="3 labels need"):
        build_dataset("stl10", tmp_path)


def rewrite_cifar_batch(root: Path, **changes: object) -> None:
    """Rewrites CIFAR-10's test batch (a protocol-2 pickle, as the release's) with some entries changed."""
    path = root / "cifar-10-batches-py" / "test_batch"
    with path.open("rb") as handle:
        batch = pickle.load(handle, encoding="latin1")
    with path.open("wb") as handle:
        pickle.dump({**batch, **changes}, handle, protocol=2)


def test_out_of_range_cifar_and_mnist_labels_are_refused(tmp_path: Path) -> None:
    """The sweep's cases: CIFAR label 50 and MNIST label 12 were accepted and scored as misses (acc1 0.0)."""
    _, labels = write_cifar(tmp_path / "cifar")
    rewrite_cifar_batch(tmp_path / "cifar", labels=[50, *labels[1:]])
    with pytest.raises(DatasetLayoutError, match=r"1 of its 6 labels are not class indices 0\.\.9 .*sample 0: 50"):
        build_dataset("cifar10", tmp_path / "cifar")

    write_mnist(tmp_path / "mnist", count=5)
    label_file = tmp_path / "mnist" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    data = bytearray(label_file.read_bytes())
    data[8 + 3] = 12  # the fourth label
    label_file.write_bytes(bytes(data))
    with pytest.raises(DatasetLayoutError, match=r"1 of its 5 labels are not class indices 0\.\.9 .*sample 3: 12"):
        build_dataset("mnist", tmp_path / "mnist")


@pytest.mark.parametrize(("changes", "message"), [
    ({"data": ["not pixels"] * 6}, "'data' is not 3072 uint8 pixels per image"),
    ({"data": np.zeros((6, 100), dtype=np.uint8)}, "'data' is not 3072 uint8 pixels per image"),
    ({"labels": ["cat"] * 6}, "'labels' is not a list of integers"),
    ({"labels": None}, "'labels' is not a list of integers"),
], ids=["string-data", "wrong-shape", "string-labels", "no-labels"])
def test_a_cifar_batch_of_the_wrong_types_or_shape_is_a_clear_error(tmp_path: Path, changes: dict, message: str) -> None:
    """The sweep's tracebacks: a CIFAR batch with string data or of the wrong shape."""
    write_cifar(tmp_path)
    rewrite_cifar_batch(tmp_path, **changes)
    with pytest.raises(DatasetLayoutError, match=message):
        build_dataset("cifar10", tmp_path)
