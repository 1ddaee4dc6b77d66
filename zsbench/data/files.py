"""Small helpers the loaders share: checked paths, image listings, index-file reading.

Every helper raises `DatasetLayoutError` saying what it found; `build_dataset` adds the
dataset name, the expected tree and where to get the data.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from zsbench.data.catalog import Loaded
from zsbench.data.types import ImageRef
from zsbench.errors import DatasetLayoutError, ZsbenchWarning

# The extensions torchvision's ImageFolder accepts, so folder datasets list the same files.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

LabelledRefs = list[tuple[ImageRef, int]]
_CLASS_FOLDERS = Path(__file__).with_name("class_folders.json")


class DatasetWarning(ZsbenchWarning):
    """Something in a dataset that zsbench skipped or keeps with a caveat (a symbolic-link loop, a FIFO, an image without captions)."""


def image_ref(path: Path) -> ImageRef:
    """An undecoded image file."""
    return ImageRef(name=str(path), path=path)


def path_inside(folder: Path, name: str, listed_in: Path) -> Path:
    """`folder / name` for a file `name` that an index or annotation file (`listed_in`) names: an
    absolute name or one with a `..` component, which would read a file outside the dataset, is refused."""
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise DatasetLayoutError(
            f"{listed_in} names the file {name!r}, which is outside {folder}: expected a path inside the dataset "
            "(no leading / and no ..). The file is damaged, or was not made for this dataset."
        )
    return folder / relative


def listed_image(folder: Path, name: str, listed_in: Path) -> ImageRef:
    """The image `name` that `listed_in` names inside `folder` (see `path_inside`)."""
    return image_ref(path_inside(folder, name, listed_in))


def require_dir(path: Path) -> Path:
    """`path` if it is a folder, else an error saying what is there."""
    if not path.is_dir():
        raise DatasetLayoutError(f"{path} {describe_missing(path)}")
    return path


def describe_missing(path: Path) -> str:
    """Why `path` is not a folder: a file, a symbolic link that loops or points nowhere, or nothing."""
    if path.exists():
        return "is not a folder"
    if path.is_symlink():
        return f"is a symbolic link that loops or points nowhere ({os.readlink(path)})"
    return "does not exist"


def _is_dir(entry: os.DirEntry) -> bool:
    """`entry.is_dir()`, False for a symbolic link that loops (which raises ELOOP)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def require_file(path: Path) -> Path:
    """`path` if it is a file, else an error saying what is there."""
    if not path.is_file():
        raise DatasetLayoutError(f"{path} {'is not a file' if path.exists() else 'does not exist'}")
    return path


def first_existing(paths: Iterable[Path]) -> Path | None:
    """The first of `paths` that exists, if any."""
    return next((path for path in paths if path.exists()), None)


def read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file, without line ends.

    Lines end only at newlines (``\n``, ``\r\n``, ``\r``), as iterating a text file does;
    `str.splitlines` would also split captions at rarer separators such as U+2028.
    """
    try:
        with require_file(path).open(encoding="utf-8") as handle:
            lines = handle.read().split("\n")
    except UnicodeDecodeError as err:
        raise DatasetLayoutError(f"{path} is not UTF-8 text ({err})") from err
    return lines[:-1] if lines and not lines[-1] else lines


def describe_folder(path: Path, limit: int = 8) -> str:
    """What a folder holds, briefly: ``does not exist``, ``is empty`` or its first entries."""
    if not path.is_dir():
        return "is a file, not a folder" if path.exists() else describe_missing(path)
    names = sorted(entry.name + ("/" if _is_dir(entry) else "") for entry in os.scandir(path))
    if not names:
        return "is empty"
    more = f", ... ({len(names)} entries)" if len(names) > limit else ""
    return "holds " + ", ".join(names[:limit]) + more


def class_folders(folder: Path) -> list[str]:
    """Sorted names of the subfolders of `folder` (one per class, as ImageFolder reads them)."""
    names = sorted(entry.name for entry in os.scandir(require_dir(folder)) if _is_dir(entry))
    if not names:
        raise DatasetLayoutError(f"{folder} has no class folders ({describe_folder(folder)})")
    return names


def list_images(folder: Path, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files under `folder`, recursively, in ImageFolder's order (sorted folders, sorted names).

    Symbolic links to folders are followed (datasets are often assembled from links), but a folder
    is read once: a link to `folder` or above it (a loop), or to a folder already read, is skipped
    with a `DatasetWarning`, so no image is counted twice. A FIFO, socket or device with an image's
    name is skipped with a `DatasetWarning` too, never opened: reading a FIFO blocks for ever.
    """
    listed: list[tuple[str, list[str]]] = []
    # A link back to `folder` or any folder above it is a loop, whichever way the walk reaches it.
    seen = {_folder_identity(path) for path in (folder, *Path(os.path.realpath(folder)).parents)}
    pending = [str(folder)]
    while pending:  # depth first, sorted: the first path to reach a folder (in sorted order) is the one kept
        directory = pending.pop()
        subfolders, filenames = _folder_entries(directory, extensions)
        for name in sorted(subfolders):
            identity = _folder_identity(Path(directory) / name)
            if identity in seen or identity == _UNRESOLVED:
                warnings.warn(f"{Path(directory) / name} links to a folder already read (a symbolic-link loop?): skipped.",
                              DatasetWarning, stacklevel=2)
                subfolders.remove(name)
            seen.add(identity)
        pending.extend(str(Path(directory) / name) for name in sorted(subfolders, reverse=True))
        listed.append((directory, filenames))
    found = []
    for directory, filenames in sorted(listed):
        found.extend(Path(directory) / name for name in sorted(filenames))
    return found


def _folder_entries(directory: str, extensions: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The subfolders (links to folders included) and the image files of `directory`; an unreadable
    folder has none (as os.walk reads it). The file types come from the directory listing itself,
    so only entries that are neither files nor folders cost a stat call."""
    subfolders, files = [], []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return [], []
    for entry in entries:
        if _is_dir(entry):
            subfolders.append(entry.name)
        elif entry.name.lower().endswith(extensions):
            if entry.is_file() or not _exists(entry):  # a broken link is kept: it fails (or is skipped) when decoded
                files.append(entry.name)
            else:
                warnings.warn(f"{entry.path} is not a regular file (a FIFO, socket or device): skipped, not read.",
                              DatasetWarning, stacklevel=3)
    return subfolders, files


def _exists(entry: os.DirEntry) -> bool:
    try:
        entry.stat()
    except OSError:
        return False
    return True


_UNRESOLVED = (-1, -1)


def _folder_identity(path: str | Path) -> tuple[int, int]:
    """(device, inode) of the folder `path` resolves to; `_UNRESOLVED` when it cannot be (a loop)."""
    try:
        info = os.stat(path)
    except OSError:
        return _UNRESOLVED
    return (info.st_dev, info.st_ino)


def folder_samples(
    folder: Path, class_to_index: Mapping[str, int], extensions: tuple[str, ...] = IMAGE_EXTENSIONS
) -> LabelledRefs:
    """``(image, label)`` for the images in ``folder/<class>/``, classes in sorted order.

    A class folder without images is an error, as in ImageFolder: it means an incomplete copy.
    """
    samples: LabelledRefs = []
    for name in sorted(class_to_index):
        images = list_images(folder / name, extensions)
        if not images:
            raise DatasetLayoutError(f"{folder / name} holds no images ({', '.join(extensions)})")
        samples.extend((image_ref(path), class_to_index[name]) for path in images)
    return samples


@functools.cache
def shipped_class_folders(dataset: str) -> tuple[str, ...]:
    """The class folders `dataset`'s release ships, in label order (``class_folders.json``), for the
    datasets whose labels are positions in the sorted folder list matched against a fixed list of
    class names (clip_benchmark's): FER2013, EuroSAT, Caltech-101, Country211."""
    return tuple(json.loads(_CLASS_FOLDERS.read_text(encoding="utf-8"))[dataset])


def read_image_folder(folder: Path, extensions: tuple[str, ...] = IMAGE_EXTENSIONS, expected: Sequence[str] | None = None) -> Loaded:
    """ImageFolder's reading of ``folder/<class>/*``: classes sorted, labelled by position.

    With `expected` (the release's folder names, `shipped_class_folders`), the folders must be exactly
    those: a renamed, missing or extra folder would shift the labels of every class after it.
    """
    classes = class_folders(folder)
    if expected is not None and classes != list(expected):
        unexpected = [name for name in classes if name not in expected]
        missing = [name for name in expected if name not in classes]
        found = "; ".join(part for part in (
            f"unexpected: {', '.join(unexpected[:5])}{', ...' if len(unexpected) > 5 else ''}" if unexpected else "",
            f"missing: {', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}" if missing else "",
        ) if part)
        raise DatasetLayoutError(
            f"{folder} does not hold the {len(expected)} class folders of the release ({found}). Labels are positions in the "
            "sorted folder list, matched against a fixed list of class names, so a renamed, missing or extra folder would "
            f"give images another class's name; expected exactly: {', '.join(expected[:10])}{', ...' if len(expected) > 10 else ''}"
        )
    samples = folder_samples(folder, {name: i for i, name in enumerate(classes)}, extensions)
    return Loaded(samples, classnames=classes, num_classes=len(classes))


def check_first_image(samples: Sequence[tuple[ImageRef, Any]], listed_in: Path) -> None:
    """Fails early when the images an index file lists are not where they should be.

    Only the first is checked (one stat call); any other missing file fails when decoded,
    with its path.
    """
    if not samples:
        raise DatasetLayoutError(f"{listed_in} lists no images")
    first = samples[0][0].path
    if first is not None and not first.is_file():
        raise DatasetLayoutError(f"{listed_in} lists {first}, which does not exist")
