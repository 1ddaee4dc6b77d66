"""Datasets stored as pixel arrays in torchvision's layouts: CIFAR-10/100, MNIST, STL-10.

Their samples are PIL images made from the arrays (nothing to decode, nothing to fail).
torchvision's own classes would verify the MD5 of every train and test file before reading
the test split; these readers need only the test files and check their sizes instead.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from zsbench.data.catalog import DatasetRequest, Loaded, register_dataset
from zsbench.data.files import read_lines, require_file
from zsbench.digests import stat_key
from zsbench.errors import DatasetLayoutError


class ArraySamples:
    """``(PIL image, label)`` pairs from a uint8 array of shape (N, H, W) or (N, H, W, 3)."""

    def __init__(self, images: np.ndarray, labels: list[int]) -> None:
        self.images = images
        self.targets = labels

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.images[index]), self.targets[index]

    def image_identity(self) -> str:
        """The SHA-256 of the pixels (tens of MB at most, already in memory) and their shape."""
        digest = hashlib.sha256(str(self.images.shape).encode())
        digest.update(np.ascontiguousarray(self.images).tobytes())
        return digest.hexdigest()


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR's python batches: dicts of lists, bytes and numpy arrays, nothing else.

    The batches are pickles; allowing only numpy's array reconstruction keeps a tampered
    file from running code.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a CIFAR batch never does")
        return super().find_class(module, name)


def _unpickle_batch(path: Path) -> dict[str, Any]:
    try:
        with require_file(path).open("rb") as handle:
            batch = _BatchUnpickler(handle, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
        raise DatasetLayoutError(f"{path} is not a CIFAR python batch ({err})") from err
    if not isinstance(batch, dict):
        raise DatasetLayoutError(f"{path} is not a CIFAR python batch (it holds a {type(batch).__name__})")
    return batch


def _read_cifar(folder: Path, batch_name: str, meta_name: str, labels_key: str, names_key: str) -> Loaded:
    batch = _unpickle_batch(folder / batch_name)
    names = _unpickle_batch(folder / meta_name).get(names_key)
    if "data" not in batch or labels_key not in batch or names is None:
        raise DatasetLayoutError(f"{folder} has batches without the '{labels_key}' / '{names_key}' entries of CIFAR's")
    path = folder / batch_name
    try:
        pixels = np.asarray(batch["data"])
        if pixels.dtype.kind not in "ui" or pixels.ndim != 2 or pixels.shape[1] != 3 * 32 * 32:
            raise ValueError(f"found {pixels.dtype} values of shape {pixels.shape}")
        if pixels.size and not 0 <= pixels.min() <= pixels.max() <= 255:
            raise ValueError(f"found values {pixels.min()}..{pixels.max()}")
    except (ValueError, TypeError) as err:
        raise DatasetLayoutError(f"{path}: 'data' is not 3072 uint8 pixels per image, as in CIFAR's batches ({err})") from err
    images = pixels.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    raw_labels = batch[labels_key]
    if not isinstance(raw_labels, (list, np.ndarray)) or not all(isinstance(label, (int, np.integer)) for label in raw_labels):
        raise DatasetLayoutError(f"{path}: '{labels_key}' is not a list of integers, as in CIFAR's batches "
                                 f"(found {type(raw_labels).__name__})")
    labels = [int(label) for label in raw_labels]
    if len(labels) != len(images):
        raise DatasetLayoutError(f"{path} has {len(images)} images but {len(labels)} labels")
    return Loaded(ArraySamples(images, labels), classnames=list(names), num_classes=len(names))


@register_dataset("cifar10", loader="cifar_batches")
def load_cifar10(request: DatasetRequest) -> Loaded:
    """CIFAR-10's 10,000 test images (torchvision's layout).

    Layout::

        <root>/
        └── cifar-10-batches-py/
            ├── batches.meta
            ├── test_batch
            └── data_batch_1 ... data_batch_5     (not read)

    Source: https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, extracted into <root>.
    """
    return _read_cifar(request.root / "cifar-10-batches-py", "test_batch", "batches.meta", "labels", "label_names")


@register_dataset("cifar100", loader="cifar_batches")
def load_cifar100(request: DatasetRequest) -> Loaded:
    """CIFAR-100's 10,000 test images with their 100 fine labels (torchvision's layout).

    Layout::

        <root>/
        └── cifar-100-python/
            ├── meta
            ├── test
            └── train          (not read)

    Source: https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz, extracted into <root>.
    """
    return _read_cifar(request.root / "cifar-100-python", "test", "meta", "fine_labels", "fine_label_names")


def _read_idx(path: Path, magic: int, dims: int) -> np.ndarray:
    """An IDX file of unsigned bytes (the MNIST format): a big-endian header, then the values."""
    data = require_file(path).read_bytes()
    header = np.frombuffer(data[: 4 * (dims + 1)], dtype=">u4") if len(data) >= 4 * (dims + 1) else None
    if header is None or int(header[0]) != magic:
        raise DatasetLayoutError(f"{path} is not an IDX file of {dims}-d unsigned bytes (magic number {magic})")
    shape = tuple(int(size) for size in header[1:])
    values = np.frombuffer(data, dtype=np.uint8, offset=4 * (dims + 1))
    if values.size != int(np.prod(shape)):
        raise DatasetLayoutError(f"{path} holds {values.size} values, its header says {shape}")
    return values.reshape(shape)


@register_dataset("mnist", loader="mnist_idx", classnames_key="mnist")
def load_mnist(request: DatasetRequest) -> Loaded:
    """MNIST's 10,000 test digits, as torchvision stores them (IDX files, uncompressed).

    Layout::

        <root>/
        └── MNIST/
            └── raw/
                ├── t10k-images-idx3-ubyte
                └── t10k-labels-idx1-ubyte

    Source: t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from
    https://yann.lecun.com/exdb/mnist/ (or torchvision's mirror), gunzipped into <root>/MNIST/raw/.
    """
    raw = request.root / "MNIST" / "raw"
    images = _read_idx(raw / "t10k-images-idx3-ubyte", 2051, 3)
    labels = _read_idx(raw / "t10k-labels-idx1-ubyte", 2049, 1)
    if len(images) != len(labels):
        raise DatasetLayoutError(f"{raw} has {len(images)} test images but {len(labels)} labels")
    return Loaded(ArraySamples(images, [int(label) for label in labels]), num_classes=10)


class Stl10Samples:
    """STL-10 images read one at a time from the binary file (it is 220 MB for the test split)."""

    IMAGE_BYTES = 3 * 96 * 96

    def __init__(self, path: Path, labels: list[int]) -> None:
        self.path = path
        self.targets = labels

    def __len__(self) -> int:
        return len(self.targets)

    def image_identity(self) -> str:
        """The binary file's stat key (any write changes it) and the number of images read from it."""
        return json.dumps({"file": str(self.path), "stat": stat_key(self.path), "images": len(self.targets)}, sort_keys=True)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        with self.path.open("rb") as handle:
            handle.seek(index * self.IMAGE_BYTES)
            pixels = np.frombuffer(handle.read(self.IMAGE_BYTES), dtype=np.uint8)
        # Stored channel by channel, each channel column-major.
        return Image.fromarray(pixels.reshape(3, 96, 96).transpose(2, 1, 0)), self.targets[index]


@register_dataset("stl10", loader="stl10_binary")
def load_stl10(request: DatasetRequest) -> Loaded:
    """STL-10's 8,000 test images, from the binary release torchvision reads.

    Layout::

        <root>/
        └── stl10_binary/
            ├── class_names.txt
            ├── test_X.bin
            └── test_y.bin

    Source: https://cs.stanford.edu/~acoates/stl10/ (stl10_binary.tar.gz), extracted into <root>.
    """
    folder = request.root / "stl10_binary"
    classnames = [line for line in read_lines(folder / "class_names.txt") if line]
    labels = [int(label) - 1 for label in require_file(folder / "test_y.bin").read_bytes()]
    images = require_file(folder / "test_X.bin")
    if images.stat().st_size != len(labels) * Stl10Samples.IMAGE_BYTES:
        raise DatasetLayoutError(
            f"{images} has {images.stat().st_size} bytes; {len(labels)} labels need {len(labels) * Stl10Samples.IMAGE_BYTES}"
        )
    if labels and not 0 <= min(labels) <= max(labels) < len(classnames):
        raise DatasetLayoutError(f"{folder / 'test_y.bin'} has labels outside 1..{len(classnames)}")
    return Loaded(Stl10Samples(images, labels), classnames=classnames, num_classes=len(classnames))
