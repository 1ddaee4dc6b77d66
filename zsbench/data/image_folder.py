"""Datasets stored as one folder of images per class: ImageNet and its variants, ObjectNet,
Caltech-101, FER2013, and Birdsnap's list files.

Labels of the ImageNet family are positions in ImageNet-1k's class order (the 1000 ILSVRC-2012
wnids, sorted), taken from timm's ImageNet metadata (installed with open_clip), so a partial
copy still gets the right labels. ImageNet-A and -R are 200-class subsets: their classes are
the wnid folders found on disk, named from the ImageNet-1k class names of the language asked.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from zsbench.data.catalog import DatasetRequest, Loaded, register_dataset
from zsbench.data.files import (
    check_first_image,
    class_folders,
    first_existing,
    folder_samples,
    listed_image,
    read_image_folder,
    read_lines,
    require_dir,
    require_file,
    shipped_class_folders,
)
from zsbench.data.prompts import package_classnames
from zsbench.errors import DatasetLayoutError

IMAGENET_CLASSES = 1000


@functools.cache
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ImageNet-1k wnids in class-index order."""
    from timm.data import ImageNetInfo

    return tuple(ImageNetInfo("imagenet-1k").label_names())


@functools.cache
def _imagenet_index() -> dict[str, int]:
    return {wnid: i for i, wnid in enumerate(imagenet_wnids())}


def _wnid_folders(folder: Path) -> list[str]:
    """The wnid folders under `folder`, checked against ImageNet-1k's classes."""
    wnids = class_folders(folder)
    unknown = [wnid for wnid in wnids if wnid not in _imagenet_index()]
    if unknown:
        raise DatasetLayoutError(
            f"{folder} has {len(unknown)} folders that are not ImageNet-1k wnids (e.g. {', '.join(unknown[:3])})"
        )
    return wnids


def _imagenet_labelled(folder: Path) -> Loaded:
    """Images in ``folder/<wnid>/``, labelled with ImageNet-1k class indices."""
    samples = folder_samples(folder, {wnid: _imagenet_index()[wnid] for wnid in _wnid_folders(folder)})
    return Loaded(samples, num_classes=IMAGENET_CLASSES)


def _imagenet_subset(request: DatasetRequest) -> Loaded:
    """A 200-class subset: the wnid folders present, in sorted order, named from ImageNet-1k's names."""
    wnids = _wnid_folders(request.root)
    names = package_classnames(request.language)["imagenet1k"]
    samples = folder_samples(request.root, {wnid: position for position, wnid in enumerate(wnids)})
    return Loaded(samples, classnames=[names[_imagenet_index()[wnid]] for wnid in wnids], num_classes=len(wnids))


@register_dataset("imagenet1k", loader="imagenet_folder", classnames_key="imagenet1k")
def load_imagenet1k(request: DatasetRequest) -> Loaded:
    """ImageNet-1k's 50,000 validation images, one folder per wnid (the test split reads ``val/``).

    Layout::

        <root>/
        └── val/
            ├── n01440764/
            │   ├── ILSVRC2012_val_00000293.JPEG
            │   └── ...
            ├── n01443537/
            └── ...                (1000 wnid folders)

    Source: ILSVRC2012_img_val.tar from https://image-net.org/ (free registration), its images
    moved into one folder per wnid (e.g. with the widely used valprep.sh).
    """
    return _imagenet_labelled(request.root / "val")


@register_dataset("imagenet_sketch", loader="imagenet_folder", classnames_key="imagenet1k")
def load_imagenet_sketch(request: DatasetRequest) -> Loaded:
    """ImageNet-Sketch: 50,889 sketches in the 1000 ImageNet-1k classes.

    Layout::

        <root>/                    (or <root>/sketch/, as the zip extracts)
        ├── n01440764/
        │   ├── n01440764_10043-1.JPEG
        │   └── ...
        └── ...                    (1000 wnid folders)

    Source: ImageNet-Sketch.zip from https://github.com/HaohanWang/ImageNet-Sketch.
    """
    sketch = request.root / "sketch"
    return _imagenet_labelled(sketch if sketch.is_dir() else request.root)


@register_dataset("imagenet-a", loader="imagenet_folder")
def load_imagenet_a(request: DatasetRequest) -> Loaded:
    """ImageNet-A: 7,500 adversarially filtered images in 200 ImageNet-1k classes.

    Layout::

        <root>/
        ├── n01498041/
        │   ├── 0.000116_digital clock _ digital clock_0.865662.jpg
        │   └── ...
        ├── ...                    (200 wnid folders)
        └── README.txt

    Source: https://people.eecs.berkeley.edu/~hendrycks/imagenet-a.tar; its imagenet-a/ folder is <root>.
    """
    return _imagenet_subset(request)


@register_dataset("imagenet-r", loader="imagenet_folder")
def load_imagenet_r(request: DatasetRequest) -> Loaded:
    """ImageNet-R: 30,000 renditions (art, cartoons, ...) of 200 ImageNet-1k classes.

    Layout::

        <root>/
        ├── n01443537/
        │   ├── art_0.jpg
        │   └── ...
        ├── ...                    (200 wnid folders)
        └── README.txt

    Source: https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar; its imagenet-r/ folder is <root>.
    """
    return _imagenet_subset(request)


@register_dataset("imagenetv2", loader="imagenetv2_folder", classnames_key="imagenet1k")
def load_imagenetv2(request: DatasetRequest) -> Loaded:
    """ImageNetV2 matched-frequency: 10,000 images, folders named by ImageNet-1k class index.

    Layout::

        <root>/
        └── ImageNetV2-matched-frequency/      (or imagenetv2-matched-frequency-format-val/)
            ├── 0/
            │   ├── 7e8ac9d3b9d1d8bd4e0a4e8b3d5e5c1d5a8b3c2e.jpeg
            │   └── ...
            ├── 1/
            └── ...                            (1000 folders, 0 to 999)

    Source: imagenetv2-matched-frequency.tar.gz from https://github.com/modestyachts/ImageNetV2.
    """
    names = ("ImageNetV2-matched-frequency", "imagenetv2-matched-frequency-format-val")
    folder = first_existing(request.root / name for name in names) or request.root / names[0]
    classes = class_folders(folder)
    if not all(name.isdigit() and int(name) < IMAGENET_CLASSES for name in classes):
        raise DatasetLayoutError(f"{folder} should hold folders named 0 to 999, found {', '.join(classes[:5])}, ...")
    # The original reads only *.jpeg, which is all the release holds.
    samples = folder_samples(folder, {name: int(name) for name in classes}, extensions=(".jpeg",))
    return Loaded(samples, num_classes=IMAGENET_CLASSES)


@register_dataset("objectnet", loader="objectnet_folder")
def load_objectnet(request: DatasetRequest) -> Loaded:
    """ObjectNet 1.0's 113 classes that overlap ImageNet-1k, as their own 113-way task.

    Classes are the image folders whose ObjectNet label appears in the dataset's own
    ``objectnet_to_imagenet_1k.json``, sorted by folder name and named by their lower-cased
    ObjectNet label; the mapping files are read from ``mappings/`` or copies in <root>.

    Layout::

        <root>/
        └── objectnet-1.0/                 (or <root> itself is this folder)
            ├── images/
            │   ├── air_freshener/
            │   │   ├── 0a1b2c3d4e5f.png
            │   │   └── ...
            │   └── ...                    (313 folders)
            └── mappings/
                ├── folder_to_objectnet_label.json
                └── objectnet_to_imagenet_1k.json

    Source: objectnet-1.0.zip from https://objectnet.dev/download.html (password on that page).
    """
    base = request.root / "objectnet-1.0"
    base = base if base.is_dir() else request.root
    images = require_dir(base / "images")

    def mapping(filename: str) -> dict[str, str]:
        path = first_existing([base / "mappings" / filename, request.root / filename]) or base / "mappings" / filename
        try:
            return json.loads(require_file(path).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DatasetLayoutError(f"{path} is not valid JSON ({err})") from err

    folder_to_label = mapping("folder_to_objectnet_label.json")
    overlapping = mapping("objectnet_to_imagenet_1k.json")
    folders = sorted(folder for folder, label in folder_to_label.items() if label in overlapping)
    if not folders:
        raise DatasetLayoutError(f"no ObjectNet label in {base / 'mappings'} maps to ImageNet-1k")
    samples = folder_samples(images, {folder: i for i, folder in enumerate(folders)})
    return Loaded(samples, classnames=[folder_to_label[folder].lower() for folder in folders], num_classes=len(folders))


@register_dataset("caltech101", loader="caltech101_folder", classnames_key="caltech101")
def load_caltech101(request: DatasetRequest) -> Loaded:
    """Caltech-101 with its background class kept (102 classes), every image (no split).

    Layout::

        <root>/
        └── caltech101/
            └── 101_ObjectCategories/
                ├── accordion/
                │   ├── image_0001.jpg
                │   └── ...
                ├── BACKGROUND_Google/
                └── ...                    (102 folders)

    Source: caltech-101.zip from https://data.caltech.edu/records/mzrjq-6wc02
    (101_ObjectCategories.tar.gz, extracted into <root>/caltech101/).
    """
    return read_image_folder(request.root / "caltech101" / "101_ObjectCategories", extensions=(".jpg",),
                             expected=shipped_class_folders("caltech101"))


@register_dataset("fer2013", loader="image_folder", classnames_key="fer2013")
def load_fer2013(request: DatasetRequest) -> Loaded:
    """FER2013's 7,178 test faces, one folder per expression (the Kaggle image release).

    Layout::

        <root>/
        └── test/
            ├── angry/
            │   ├── PrivateTest_10131363.jpg
            │   └── ...
            ├── disgust/  fear/  happy/  neutral/  sad/
            └── surprise/

    Source: https://www.kaggle.com/datasets/msambare/fer2013, extracted into <root>.
    """
    return read_image_folder(request.root / request.split, expected=shipped_class_folders("fer2013"))


@register_dataset("birdsnap", loader="birdsnap_lists")
def load_birdsnap(request: DatasetRequest) -> Loaded:
    """Birdsnap's test images that could be fetched, as InternVL's CLIP_benchmark fork reads them.

    ``species.txt`` is tab-separated with a header; its second column names the classes and
    its last the image folder. ``test_images_valid.txt`` lists, after a header line, test
    images as ``<Folder>/<file>.jpg``; a folder matches its species case-insensitively.

    Layout::

        <root>/
        ├── species.txt
        ├── test_images_valid.txt
        ├── Acadian_Flycatcher/
        │   ├── 100344.jpg
        │   └── ...
        └── ...                    (500 species folders)

    Source: Birdsnap 1.1 (http://thomasberg.org/, birdsnap.tgz: species.txt, and images fetched
    from the URLs in images.txt) plus test_images_valid.txt, the fork's list of readable test images.
    """
    species_file = request.root / "species.txt"
    species = [line.split("\t") for line in read_lines(species_file)[1:] if line.strip()]
    if not species or any(len(row) < 3 for row in species):
        raise DatasetLayoutError(f"{species_file} should hold a header, then tab-separated rows: id, common name, ..., folder")
    folder_to_label = {row[-1].lower(): i for i, row in enumerate(species)}
    listing = request.root / "test_images_valid.txt"
    samples = []
    for line in read_lines(listing)[1:]:
        if not line.strip():
            continue
        folder = line.split("/")[0].lower()
        if folder not in folder_to_label:
            raise DatasetLayoutError(f"{listing} lists {line}, whose folder is not a species in species.txt")
        samples.append((listed_image(request.root, line, listing), folder_to_label[folder]))
    check_first_image(samples, listing)
    return Loaded(samples, classnames=[row[1] for row in species], num_classes=len(species))
