"""Writers of tiny datasets in their real on-disk formats, for these tests and the eval harness's.

Each ``write_<dataset>(root)`` lays out a few 8x8 images exactly as the dataset ships (or as
torchvision, CLIP_benchmark's exporter or InternVL's fork arrange it), and returns what the
readers should find. `write_dataset(name, root)` writes a minimal fixture for any registered
name. Nothing here imports zsbench's readers.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

IMAGENET_WNIDS = ("n01440764", "n01443537", "n01484850")  # ImageNet-1k classes 0, 1, 2
IMAGENET_SUBSET_WNIDS = ("n01498041", "n01531178", "n12267677")  # in both ImageNet-A and -R; classes 6, 11, 988


def pixels(seed: int, size: tuple[int, int] = (8, 8)) -> np.ndarray:
    """Deterministic RGB pixels, different for each seed."""
    return np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)


def image_bytes(seed: int, fmt: str = "PNG", size: tuple[int, int] = (8, 8)) -> bytes:
    """An encoded image (PNG, JPEG, WEBP, PPM) of `pixels(seed)`."""
    buffer = io.BytesIO()
    Image.fromarray(pixels(seed, size)).save(buffer, format=fmt)
    return buffer.getvalue()


def write_image(path: Path, seed: int = 0, size: tuple[int, int] = (8, 8)) -> Path:
    """An image file whose format follows its extension."""
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".ppm": "PPM", ".webp": "WEBP"}[path.suffix.lower()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(seed, fmt, size))
    return path


def write_corrupt_images(folder: Path) -> dict[str, Path]:
    """Three unreadable ``.jpg`` files: empty, truncated half-way, and text."""
    folder.mkdir(parents=True, exist_ok=True)
    whole = image_bytes(7, "JPEG", (64, 64))
    files = {"empty": b"", "truncated": whole[: len(whole) // 2], "text": b"this is not an image\n"}
    for name, data in files.items():
        (folder / f"{name}.jpg").write_bytes(data)
    return {name: folder / f"{name}.jpg" for name in files}


def write_class_folders(folder: Path, classes: Sequence[str], per_class: int = 2, ext: str = ".jpg") -> list[Path]:
    """``folder/<class>/<i>.<ext>`` images; returns the paths in class, then name order."""
    paths = []
    for c, name in enumerate(classes):
        for i in range(per_class):
            paths.append(write_image(folder / name / f"{i:04d}{ext}", seed=100 * c + i))
    return paths


def write_imagenet_val(root: Path, wnids: Sequence[str] = IMAGENET_WNIDS, per_class: int = 2) -> Path:
    """``root/val/<wnid>/ILSVRC2012_val_*.JPEG``."""
    for c, wnid in enumerate(wnids):
        for i in range(per_class):
            write_image(root / "val" / wnid / f"ILSVRC2012_val_{c * per_class + i + 1:08d}.JPEG", seed=c * 10 + i)
    return root / "val"


def write_imagenet_subset(root: Path, wnids: Sequence[str] = IMAGENET_SUBSET_WNIDS, per_class: int = 2) -> Path:
    """ImageNet-A / -R style: ``root/<wnid>/*.jpg`` plus the README.txt the archives hold."""
    write_class_folders(root, wnids, per_class)
    (root / "README.txt").write_text("not a class\n")
    return root


def write_imagenetv2(root: Path, labels: Sequence[int] = (0, 5, 999), per_class: int = 2) -> Path:
    """``root/ImageNetV2-matched-frequency/<label>/<hash>.jpeg``."""
    folder = root / "ImageNetV2-matched-frequency"
    write_class_folders(folder, [str(label) for label in labels], per_class, ext=".jpeg")
    return folder


def write_objectnet(root: Path) -> list[str]:
    """ObjectNet 1.0 with four image folders, two of whose labels map to ImageNet; returns those classes."""
    base = root / "objectnet-1.0"
    write_class_folders(base / "images", ["air_freshener", "alarm_clock", "backpack", "bed_sheet"], ext=".png")
    labels = {"air_freshener": "Air freshener", "alarm_clock": "Alarm clock", "backpack": "Backpack", "bed_sheet": "Bed sheet"}
    overlap = {"Alarm clock": "analog clock; digital clock", "Backpack": "backpack, back pack, knapsack"}
    (base / "mappings").mkdir(parents=True)
    (base / "mappings" / "folder_to_objectnet_label.json").write_text(json.dumps(labels))
    (base / "mappings" / "objectnet_to_imagenet_1k.json").write_text(json.dumps(overlap))
    return ["alarm clock", "backpack"]


def _pickle(path: Path, value: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(value, handle, protocol=2)


def write_cifar(root: Path, classes: int = 10, count: int = 6) -> tuple[np.ndarray, list[int]]:
    """CIFAR-10 (or -100 with ``classes=100``) python batches; returns the test images (HWC) and labels."""
    rng = np.random.default_rng(classes)
    images = rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
    labels = [int(label) for label in rng.integers(0, classes, size=count)]
    data = images.transpose(0, 3, 1, 2).reshape(count, -1)
    if classes == 10:
        _pickle(root / "cifar-10-batches-py" / "test_batch", {"batch_label": "testing batch", "data": data, "labels": labels})
        _pickle(root / "cifar-10-batches-py" / "batches.meta", {"label_names": [f"class{i}" for i in range(10)]})
    else:
        _pickle(root / "cifar-100-python" / "test", {"data": data, "fine_labels": labels, "coarse_labels": labels})
        _pickle(root / "cifar-100-python" / "meta", {"fine_label_names": [f"fine_{i}" for i in range(classes)]})
    return images, labels


def write_mnist(root: Path, count: int = 5, prefix: str = "t10k") -> tuple[np.ndarray, list[int]]:
    """MNIST IDX files in ``root/MNIST/raw/``; returns the images and labels."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    images = np.random.default_rng(3).integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = [i % 10 for i in range(count)]
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(np.array([2051, count, 28, 28], ">u4").tobytes() + images.tobytes())
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(np.array([2049, count], ">u4").tobytes() + bytes(labels))
    return images, labels


def write_stl10(root: Path, count: int = 3) -> tuple[np.ndarray, list[int]]:
    """STL-10's binary test files; returns the images (HWC) and 0-based labels."""
    folder = root / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    images = np.random.default_rng(4).integers(0, 256, size=(count, 96, 96, 3), dtype=np.uint8)
    labels = [i % 10 for i in range(count)]
    # Stored channel by channel, each column-major: (N, C, W, H).
    (folder / "test_X.bin").write_bytes(images.transpose(0, 3, 2, 1).tobytes())
    (folder / "test_y.bin").write_bytes(bytes(label + 1 for label in labels))
    names = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
    (folder / "class_names.txt").write_text("\n".join(names) + "\n")
    return images, labels


def write_sun397(root: Path) -> None:
    base = root / "SUN397"
    base.mkdir(parents=True)
    (base / "ClassName.txt").write_text("/a/abbey\n/a/apartment_building/outdoor\n/b/bakery/shop\n")
    for c, folder in enumerate(["a/abbey", "a/apartment_building/outdoor", "b/bakery/shop"]):
        write_image(base / folder / f"sun_{c}a.jpg", seed=c)
        write_image(base / folder / f"sun_{c}b.jpg", seed=c + 10)


def write_food101(root: Path) -> None:
    base = root / "food-101"
    listing = {"baby_back_ribs": ["baby_back_ribs/2", "baby_back_ribs/1"], "apple_pie": ["apple_pie/7"]}
    for name, images in listing.items():
        for i, relative in enumerate(images):
            write_image(base / "images" / f"{relative}.jpg", seed=i)
    (base / "meta").mkdir(parents=True)
    (base / "meta" / "test.json").write_text(json.dumps(listing))


def write_dtd(root: Path) -> None:
    data = root / "dtd" / "dtd"
    entries = ["striped/striped_0001.jpg", "banded/banded_0004.jpg", "banded/banded_0002.jpg"]
    for i, entry in enumerate(entries):
        write_image(data / "images" / entry, seed=i)
    (data / "labels").mkdir(parents=True)
    (data / "labels" / "test1.txt").write_text("\n".join(entries) + "\n")


def write_fgvc_aircraft(root: Path) -> None:
    data = root / "fgvc-aircraft-2013b" / "data"
    for i, image in enumerate(["1514522", "0062781", "2233450"]):
        write_image(data / "images" / f"{image}.jpg", seed=i)
    (data / "variants.txt").write_text("707-320\n727-200\nA300B4\n")
    (data / "images_variant_test.txt").write_text("1514522 707-320\n0062781 A300B4\n2233450 727-200\n")


def write_cars(root: Path) -> None:
    import scipy.io

    base = root / "stanford_cars"
    annotations = np.zeros(3, dtype=[("bbox_x1", "O"), ("fname", "O"), ("class", "O")])
    for i, (fname, label) in enumerate([("00001.jpg", 2), ("00002.jpg", 1), ("00003.jpg", 2)]):
        annotations[i] = (np.array([[5]]), fname, np.array([[label]], dtype=np.uint8))
        write_image(base / "cars_test" / fname, seed=i)
    scipy.io.savemat(str(base / "cars_test_annos_withlabels.mat"), {"annotations": annotations})
    (base / "devkit").mkdir()
    names = np.array(["AM General Hummer SUV 2000", "Acura RL Sedan 2012"], dtype=object)
    scipy.io.savemat(str(base / "devkit" / "cars_meta.mat"), {"class_names": names.reshape(1, -1)})


def write_gtsrb(root: Path) -> None:
    base = root / "gtsrb"
    rows = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
    for i, label in enumerate([16, 1, 42]):
        write_image(base / "GTSRB" / "Final_Test" / "Images" / f"{i:05d}.ppm", seed=i)
        rows.append(f"{i:05d}.ppm;8;8;1;1;7;7;{label}")
    (base / "GT-final_test.csv").write_text("\n".join(rows) + "\n")


def write_pets(root: Path) -> None:
    base = root / "oxford-iiit-pet"
    lines = ["american_bulldog_100 2 2 1", "Abyssinian_201 1 1 1", "american_bulldog_101 2 2 1"]
    for i, line in enumerate(lines):
        write_image(base / "images" / f"{line.split()[0]}.jpg", seed=i)
    (base / "annotations").mkdir(parents=True)
    (base / "annotations" / "test.txt").write_text("\n".join(lines) + "\n")


def write_birdsnap(root: Path) -> list[str]:
    """species.txt, test_images_valid.txt and images; returns the class names."""
    root.mkdir(parents=True, exist_ok=True)
    species = [("1", "Acadian Flycatcher", "Empidonax virescens", "acadian_flycatcher"),
               ("2", "Acorn Woodpecker", "Melanerpes formicivorus", "acorn_woodpecker")]
    rows = [("id", "common", "scientific", "dir"), *species]
    (root / "species.txt").write_text("\n".join("\t".join(row) for row in rows) + "\n")
    images = ["Acorn_Woodpecker/100.jpg", "Acadian_Flycatcher/200.jpg"]
    for i, image in enumerate(images):
        write_image(root / image, seed=i)
    (root / "test_images_valid.txt").write_text("path\n" + "\n".join(images) + "\n")
    return [row[1] for row in species]


VOC_CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]


def write_voc2007(root: Path) -> dict[str, list[tuple[str, tuple[int, int, int, int]]]]:
    """VOC 2007 test files for three images; returns each image's (class, box) objects."""
    base = root / "VOCdevkit" / "VOC2007"
    objects = {"000001": [("dog", (1, 2, 20, 30)), ("person", (5, 5, 10, 12))], "000004": [("car", (0, 0, 31, 31))],
               "000006": [("dog", (3, 4, 8, 9))]}
    (base / "Annotations").mkdir(parents=True)
    (base / "ImageSets" / "Main").mkdir(parents=True)
    for i, (image_id, boxes) in enumerate(objects.items()):
        write_image(base / "JPEGImages" / f"{image_id}.jpg", seed=i, size=(32, 32))
        nodes = "".join(
            f"<object><name>{name}</name><pose>Left</pose><difficult>0</difficult><bndbox><xmin>{x0}</xmin>"
            f"<ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
            for name, (x0, y0, x1, y1) in boxes
        )
        xml = f"<annotation><filename>{image_id}.jpg</filename>{nodes}</annotation>"
        (base / "Annotations" / f"{image_id}.xml").write_text(xml)
    for name in VOC_CLASSES:
        lines = [f"{image_id} {1 if any(n == name for n, _ in boxes) else -1:2d}" for image_id, boxes in objects.items()]
        (base / "ImageSets" / "Main" / f"{name}_test.txt").write_text("\n".join(lines) + "\n")
    (base / "ImageSets" / "Main" / "test.txt").write_text("\n".join(objects) + "\n")
    return objects


def write_wds(
    root: Path,
    samples: Sequence[tuple[bytes, Any]],
    *,
    split: str = "test",
    dataset_type: str | None = None,
    classnames: Sequence[str] | None = None,
    templates: Sequence[str] | None = None,
    shard_size: int = 2,
    image_field: str = "webp",
) -> Path:
    """A CLIP_benchmark webdataset export, written with webdataset's own TarWriter.

    Targets are ints (``.cls``), caption lists (``.txt``, one per line) or arrays (``.npy``),
    following `dataset_type`.
    """
    import webdataset

    (root / split).mkdir(parents=True, exist_ok=True)
    field = {"retrieval": "txt", "multilabel": "npy"}.get(dataset_type or "", "cls")
    shards = [samples[start : start + shard_size] for start in range(0, len(samples), shard_size)]
    for number, shard in enumerate(shards):
        with webdataset.TarWriter(str(root / split / f"{number}.tar")) as sink:
            for offset, (data, target) in enumerate(shard):
                value = "\n".join(target) if field == "txt" else target
                sink.write({"__key__": f"s{number * shard_size + offset:07d}", image_field: data, field: value})
    (root / split / "nshards.txt").write_text(f"{len(shards)}\n")
    if dataset_type:
        (root / "dataset_type.txt").write_text(dataset_type + "\n")
    if classnames is not None:
        (root / "classnames.txt").write_text("\n".join(classnames) + "\n")
    if templates is not None:
        (root / "zeroshot_classification_templates.txt").write_text("\n".join(templates) + "\n")
    return root


def write_flickr(root: Path, captions: dict[str, list[str]], filename: str = "flickr30k_test_karpathy.txt") -> Path:
    """Flickr30K: ``Images/`` and a Karpathy-style caption file (header, then ``image.jpg,caption``)."""
    lines = ["image,caption"]
    for i, (image, texts) in enumerate(captions.items()):
        write_image(root / "Images" / image, seed=i)
        lines += [f"{image},{text}" for text in texts]
    (root / filename).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / filename


def write_coco(
    root: Path, captions: dict[str, list[str]], filename: str = "coco_test_karpathy.json", image_dir: str = "val2014"
) -> Path:
    """COCO captions JSON; image files are written under ``root/image_dir/<file_name>``. Ids are
    assigned in reverse order, so the readers' sorting by id is visible."""
    images, annotations = [], []
    for i, (file_name, texts) in enumerate(captions.items()):
        image_id = 1000 - i
        write_image(root / image_dir / file_name, seed=i)
        images.append({"id": image_id, "file_name": file_name, "height": 8, "width": 8})
        for text in texts:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "caption": text})
    content = {"images": images, "annotations": annotations}
    (root / filename).write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
    return root / filename


def write_xtd(root: Path, images: Sequence[str], captions: dict[str, Sequence[str]]) -> None:
    """XTD10's files as its repository names them, with the COCO images they index."""
    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(images):
        write_image(root / ("val2014" if "val" in name else "train2014") / name, seed=i)
    (root / "test_image_names.txt").write_text("\n".join(images) + "\n")
    for language, texts in captions.items():
        (root / f"test_1kcaptions_{language}.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")


FER2013_FOLDERS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
# The folder names the releases ship, in label order: read from the data file the loaders check them against
# (tests/data/test_image_folder.py checks that file against clip_benchmark's class names).
SHIPPED_FOLDERS: dict[str, list[str]] = json.loads(
    (Path(__file__).resolve().parents[2] / "zsbench" / "data" / "class_folders.json").read_text(encoding="utf-8")
)


def write_vtab(root: Path, name: str, classnames: Sequence[str] = ("first", "second")) -> Path:
    """A VTAB set's webdataset export where CLIP_benchmark's Hugging Face repository name puts it."""
    samples = [(image_bytes(i, "WEBP"), i % len(classnames)) for i in range(3)]
    return write_wds(root / f"wds_vtab-{name}", samples, classnames=classnames)


FIXTURE_WRITERS: dict[str, Callable[[Path], object]] = {
    "imagenet1k": write_imagenet_val,
    "imagenet-a": write_imagenet_subset,
    "imagenet-r": write_imagenet_subset,
    "imagenet_sketch": lambda root: write_class_folders(root, IMAGENET_WNIDS, ext=".JPEG"),
    "imagenetv2": write_imagenetv2,
    "objectnet": write_objectnet,
    "cifar10": write_cifar,
    "cifar100": lambda root: write_cifar(root, classes=100),
    "mnist": write_mnist,
    "stl10": write_stl10,
    "caltech101": lambda root: write_class_folders(
        root / "caltech101" / "101_ObjectCategories", SHIPPED_FOLDERS["caltech101"], per_class=1
    ),
    "fer2013": lambda root: write_class_folders(root / "test", FER2013_FOLDERS, per_class=1),
    "country211": lambda root: write_class_folders(root / "country211" / "test", SHIPPED_FOLDERS["country211"], 1),
    "eurosat": lambda root: write_class_folders(root / "eurosat" / "2750", SHIPPED_FOLDERS["eurosat"], 1),
    "renderedsst2": lambda root: write_class_folders(root / "rendered-sst2" / "test", ["negative", "positive"], ext=".png"),
    "sun397": write_sun397,
    "food101": write_food101,
    "dtd": write_dtd,
    "fgvc_aircraft": write_fgvc_aircraft,
    "cars": write_cars,
    "gtsrb": write_gtsrb,
    "pets": write_pets,
    "birdsnap": write_birdsnap,
    "voc2007": write_voc2007,
    "voc2007_multilabel": write_voc2007,
    "vtab/flowers": lambda root: write_vtab(root, "flowers", ["pink primrose", "globe thistle"]),
    "vtab/resisc45": lambda root: write_vtab(root, "resisc45", ["airplane", "airport"]),
    "flickr30k": lambda root: write_flickr(root, {"1000092795.jpg": ["Two young guys.", "Men outside."], "1.jpg": ["A dog."]}),
    "mscoco_captions": lambda root: write_coco(root, {"COCO_val2014_000000000042.jpg": ["A Cat.", "A cat sleeping."]}),
    "multilingual_mscoco_captions": lambda root: write_xtd(
        root, ["COCO_val2014_000000000042.jpg", "COCO_train2014_000000000009.jpg"], {"en": ["A Cat.", "A dog."]}
    ),
}


def write_dataset(name: str, root: Path) -> None:
    """A minimal fixture for a registered dataset name, in its own layout."""
    FIXTURE_WRITERS[name](root)
