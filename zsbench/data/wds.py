"""CLIP_benchmark's webdataset export layout, read map-style.

Each shard is indexed once with `tarfile` (member names, data offsets and the small label
members), and ``samples[i]`` reads one image's bytes at its offset. So the order is the
shards' order, any number of DataLoader workers sees the same samples, and nothing needs the
webdataset library. Members are grouped into samples as webdataset does: the key is the path
up to the first dot of the file name, the rest (lower-cased) is the field.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zsbench.data.catalog import DatasetRequest, Kind, Loaded, export_candidates, register_dataset
from zsbench.data.files import read_lines, require_file
from zsbench.data.types import ImageRef
from zsbench.digests import stat_key
from zsbench.errors import DatasetLayoutError

if TYPE_CHECKING:
    import torch

IMAGE_FIELDS = ("webp", "png", "jpg", "jpeg")  # the first present is the sample's image
LABEL_FIELDS: dict[Kind, str] = {"classification": "cls", "multilabel": "npy", "retrieval": "txt"}


@dataclass(frozen=True)
class _ImageMember:
    shard: int
    name: str
    offset: int
    size: int


class WdsSamples:
    """``(ImageRef with the image bytes, target)`` for each sample of the shards, in order."""

    def __init__(self, shards: list[Path], images: list[_ImageMember], targets: list[Any]) -> None:
        self.shards = shards
        self.images = images
        self.targets = targets

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[ImageRef, Any]:
        member = self.images[index]
        shard = self.shards[member.shard]
        with shard.open("rb") as handle:
            handle.seek(member.offset)
            data = handle.read(member.size)
        return ImageRef(name=f"{shard}:{member.name}", data=data), self.targets[index]

    def image_identity(self) -> str:
        """Each shard's stat key (a shard rewritten or replaced changes it) and where each image is in it."""
        return json.dumps({
            "shards": [{"file": str(shard), "stat": stat_key(shard)} for shard in self.shards],
            "images": [[member.shard, member.name, member.offset, member.size] for member in self.images],
        }, sort_keys=True)


def _parse_target(kind: Kind, raw: bytes) -> Any:
    if kind == "classification":
        return int(raw.decode("utf-8").strip())
    if kind == "retrieval":
        return raw.decode("utf-8").splitlines()  # as clip_benchmark: str.splitlines
    import torch  # here, so that listing datasets never loads torch

    return torch.from_numpy(np.load(io.BytesIO(raw), allow_pickle=False).astype(np.float32))


def _split_key(member_name: str) -> tuple[str, str] | None:
    """``dir/key.field.ext`` -> (``dir/key``, ``field.ext``); names without a field are not sample files."""
    directory, _, filename = member_name.rpartition("/")
    stem, dot, field = filename.partition(".")
    if not stem or not dot:
        return None
    return (f"{directory}/{stem}" if directory else stem), field.lower()


def _index_shard(path: Path, shard: int, kind: Kind) -> tuple[list[_ImageMember], list[Any]]:
    images: list[_ImageMember] = []
    targets: list[Any] = []
    label_field = LABEL_FIELDS[kind]
    try:
        # Plain tar only ("r:"): data offsets into a compressed stream would not be file offsets.
        with tarfile.open(require_file(path), mode="r:") as tar:
            groups: dict[str, dict[str, tarfile.TarInfo]] = {}
            for member in tar:
                split = _split_key(member.name) if member.isfile() else None
                if split is not None:
                    groups.setdefault(split[0], {})[split[1]] = member
            for key, fields in groups.items():
                image = next((fields[field] for field in IMAGE_FIELDS if field in fields), None)
                label = fields.get(label_field)
                if image is None or label is None:
                    raise DatasetLayoutError(
                        f"{path}: sample '{key}' has fields {', '.join(sorted(fields))}; a {kind} export needs "
                        f"an image ({'/'.join(IMAGE_FIELDS)}) and a .{label_field}"
                    )
                handle = tar.extractfile(label)
                try:
                    targets.append(_parse_target(kind, handle.read() if handle else b""))
                except (ValueError, UnicodeDecodeError) as err:
                    raise DatasetLayoutError(f"{path}: '{label.name}' is not a valid .{label_field} ({err})") from err
                images.append(_ImageMember(shard, image.name, image.offset_data, image.size))
    except (tarfile.TarError, OSError) as err:
        raise DatasetLayoutError(f"{path} is not a readable tar file ({err})") from err
    return images, targets


def _optional_lines(path: Path) -> list[str] | None:
    return [line.strip() for line in read_lines(path) if line.strip()] if path.is_file() else None


def find_export(name: str, root: Path, split: str) -> Path | None:
    """The folder holding `name`'s webdataset export under `root`: the first of `export_candidates` (the
    root, ``wds_<name>``, ``<name>``) with ``<split>/nshards.txt``. The one rule the loaders and
    `--task auto` (reading its ``dataset_type.txt``) follow."""
    return next((folder for folder in export_candidates(name, root) if (folder / split / "nshards.txt").is_file()), None)


def export_kind(folder: Path) -> Kind:
    """What an export's ``dataset_type.txt`` states: retrieval, multilabel, or (absent) classification."""
    type_file = folder / "dataset_type.txt"
    stated = type_file.read_text(encoding="utf-8").strip().lower() if type_file.is_file() else "classification"
    return stated if stated in ("retrieval", "multilabel") else "classification"  # type: ignore[return-value]


def read_export(folder: Path, split: str) -> Loaded:
    """Reads an export folder (see `load_wds_export` for the layout)."""
    count_file = folder / split / "nshards.txt"
    try:
        count = int(require_file(count_file).read_text(encoding="utf-8").strip())
    except (ValueError, UnicodeDecodeError) as err:
        raise DatasetLayoutError(f"{count_file} should hold the number of shards ({err})") from err
    kind = export_kind(folder)
    shards = [folder / split / f"{index}.tar" for index in range(count)]
    images: list[_ImageMember] = []
    targets: list[Any] = []
    for index, shard in enumerate(shards):
        shard_images, shard_targets = _index_shard(shard, index, kind)
        images += shard_images
        targets += shard_targets
    if not images:
        raise DatasetLayoutError(f"{folder / split} has {count} shards but no samples")
    classnames = None if kind == "retrieval" else _optional_lines(folder / "classnames.txt")
    templates = None if kind == "retrieval" else _optional_lines(folder / "zeroshot_classification_templates.txt")
    num_classes = len(classnames) if classnames is not None else None
    if num_classes is not None and not all(_fits(target, num_classes) for target in targets):
        raise DatasetLayoutError(f"{folder / split} has targets that do not fit the {num_classes} classes of classnames.txt")
    return Loaded(WdsSamples(shards, images, targets), classnames, num_classes, templates, kind)


def _fits(target: int | torch.Tensor, num_classes: int) -> bool:
    """A class index below `num_classes`, or a multi-hot vector of that length."""
    return 0 <= target < num_classes if isinstance(target, int) else tuple(target.shape) == (num_classes,)


def load_wds_export(request: DatasetRequest) -> Loaded:
    """A CLIP_benchmark webdataset export (``clip_benchmark_export_wds``, or the
    ``clip-benchmark/wds_*`` repositories on Hugging Face).

    Looked for in <root>, then <root>/wds_<name> (``/`` in the name written ``-``), then
    <root>/<name>. ``dataset_type.txt`` says ``retrieval`` or ``multilabel``; without it the
    export is single-label classification. Images are ``.webp``, ``.png``, ``.jpg`` or ``.jpeg``;
    targets ``.cls`` (class index), ``.npy`` (multi-hot) or ``.txt`` (captions, one per line).

    Layout::

        <root>/                                    (or <root>/wds_<name>/)
        ├── classnames.txt                         (classification: one name per line)
        ├── zeroshot_classification_templates.txt  (optional: one template per line, with {c})
        ├── dataset_type.txt                       (optional: retrieval | multilabel)
        └── test/
            ├── nshards.txt                        (number of shards, n)
            ├── 0.tar                              (s0000000.webp + s0000000.cls, ...)
            └── ... n-1.tar

    Source: https://huggingface.co/datasets/clip-benchmark/wds_<name> (e.g. wds_vtab-flowers), which
    `zsbench datasets download wds/<name> --dataset_root <root>` fetches into <root>/wds_<name>/ (or pass
    that URL itself as --dataset_root); or made with clip_benchmark_export_wds.
    """
    folder = find_export(request.name, request.root, request.split)
    if folder is None:
        looked = ", ".join(str(candidate / request.split / "nshards.txt") for candidate in export_candidates(request.name, request.root))
        raise DatasetLayoutError(f"no webdataset export found (looked for {looked})")
    return read_export(folder, request.split)


# The `vtab/<name>` sets of CLIP_benchmark 1.6.2 (`clip_benchmark.datasets.builder.build_vtab_dataset`).
# CLIP_benchmark reads them through tensorflow-datasets; zsbench reads its webdataset export of the same
# splits, whose classnames.txt holds the tfds class names CLIP_benchmark would use, with CLIP_benchmark's
# templates for the name (`zsbench.data.build.dataset_entry`).
VTAB_DATASETS = (
    "caltech101", "cars", "cifar10", "cifar100", "clevr_closest_object_distance", "clevr_count_all", "cub",
    "diabetic_retinopathy", "dmlab", "dsprites_label_orientation", "dsprites_label_scale", "dsprites_label_shape",
    "dsprites_label_x_position", "dsprites_label_y_position", "dtd", "eurosat", "flowers", "food101", "inaturalist",
    "kitti_closest_vehicle_distance", "pcam", "pets", "resisc45", "smallnorb_label_azimuth", "smallnorb_label_category",
    "smallnorb_label_elevation", "smallnorb_label_lighting", "sun397", "svhn",
)
# The two of them in the InternVL paper's tables are registered (listed by `zsbench datasets`, with fixtures).
for _name in ("vtab/flowers", "vtab/resisc45"):
    register_dataset(_name, loader="wds", splits=None)(load_wds_export)
