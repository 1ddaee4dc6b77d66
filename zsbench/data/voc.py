"""PASCAL VOC 2007 test set, as CLIP_benchmark poses it: one sample per object box (voc2007),
or one multi-hot sample per image (voc2007_multilabel, scored by mAP).

The 20 classes are read from the devkit's per-class lists (``ImageSets/Main/<class>_test.txt``),
in sorted order; every object counts, "difficult" ones included, as in CLIP_benchmark.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from zsbench.data.catalog import DatasetRequest, Loaded, register_dataset
from zsbench.data.files import check_first_image, path_inside, read_lines, require_dir, require_file
from zsbench.data.types import ImageRef
from zsbench.errors import DatasetLayoutError

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class _VocImage:
    path: Path
    objects: list[tuple[int, Box]]  # (class index, (xmin, ymin, xmax, ymax))


def _read_voc(root: Path, split: str) -> tuple[list[str], list[_VocImage]]:
    """The class names and, for each image of `split`, its annotated objects."""
    base = root / "VOCdevkit" / "VOC2007"
    lists = require_dir(base / "ImageSets" / "Main")
    suffix = f"_{split}.txt"
    classes = sorted(path.name.removesuffix(suffix) for path in lists.glob(f"*{suffix}"))
    if not classes:
        raise DatasetLayoutError(f"{lists} has no per-class lists <class>{suffix}")
    index = {name: i for i, name in enumerate(classes)}
    image_ids = [line.split()[0] for line in read_lines(lists / f"{classes[0]}{suffix}") if line.strip()]
    images = []
    for image_id in image_ids:
        annotation = require_file(path_inside(base / "Annotations", f"{image_id}.xml", lists / f"{classes[0]}{suffix}"))
        objects = []
        try:
            for node in ElementTree.parse(annotation).getroot().iter("object"):
                name = node.findtext("name", "").strip()
                box = tuple(int(float(node.findtext(f"bndbox/{edge}", ""))) for edge in ("xmin", "ymin", "xmax", "ymax"))
                if name not in index:
                    raise DatasetLayoutError(f"{annotation} has an object of class '{name}', which has no {name}{suffix}")
                objects.append((index[name], box))
        except (ElementTree.ParseError, ValueError) as err:
            raise DatasetLayoutError(f"{annotation} is not a VOC annotation with numeric bndbox edges ({err})") from err
        images.append(_VocImage(base / "JPEGImages" / f"{image_id}.jpg", objects))  # image_id was checked above
    return classes, images


@register_dataset("voc2007", loader="voc2007_boxes")
def load_voc2007(request: DatasetRequest) -> Loaded:
    """VOC 2007 test objects: each annotated box, cropped from its image, is one sample.

    Layout::

        <root>/
        └── VOCdevkit/
            └── VOC2007/
                ├── Annotations/
                │   ├── 000001.xml
                │   └── ...
                ├── ImageSets/
                │   └── Main/
                │       ├── aeroplane_test.txt     (lines: 000001 -1)
                │       └── ...                    (one per class, 20)
                └── JPEGImages/
                    ├── 000001.jpg
                    └── ...

    Source: VOCtest_06-Nov-2007.tar from http://host.robots.ox.ac.uk/pascal/VOC/voc2007/, extracted into <root>.
    """
    classes, images = _read_voc(request.root, request.split)
    samples = [
        (ImageRef(name=f"{image.path} (box {box})", path=image.path, crop=box), label)
        for image in images
        for label, box in image.objects
    ]
    check_first_image(samples, request.root / "VOCdevkit" / "VOC2007" / "Annotations")
    return Loaded(samples, classnames=classes, num_classes=len(classes))


@register_dataset("voc2007_multilabel", loader="voc2007_labels", multilabel=True)
def load_voc2007_multilabel(request: DatasetRequest) -> Loaded:
    """VOC 2007 test images, each with a multi-hot vector of the classes it contains.

    Layout::

        <root>/
        └── VOCdevkit/
            └── VOC2007/
                ├── Annotations/
                │   ├── 000001.xml
                │   └── ...
                ├── ImageSets/
                │   └── Main/
                │       ├── aeroplane_test.txt     (lines: 000001 -1)
                │       └── ...                    (one per class, 20)
                └── JPEGImages/
                    ├── 000001.jpg
                    └── ...

    Source: VOCtest_06-Nov-2007.tar from http://host.robots.ox.ac.uk/pascal/VOC/voc2007/, extracted into <root>.
    """
    import torch  # here, so that listing datasets never loads torch

    classes, images = _read_voc(request.root, request.split)
    samples = []
    for image in images:
        target = torch.zeros(len(classes))
        for label, _ in image.objects:
            target[label] = 1.0
        samples.append((ImageRef(name=str(image.path), path=image.path), target))
    check_first_image(samples, request.root / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main")
    return Loaded(samples, classnames=classes, num_classes=len(classes))
