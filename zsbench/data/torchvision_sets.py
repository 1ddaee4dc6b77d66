"""Datasets in the layouts torchvision's dataset classes read (with ``download=False``).

Each reader lists the same files, labels and class names as the torchvision class of the same
name (the tests check that against torchvision on the same files), but returns undecoded
`ImageRef`s: torchvision's classes decode in ``__getitem__``, and only recent versions let a
caller swap their image loader. Class-name tweaks (``_`` -> space) are CLIP_benchmark's.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from zsbench.data.catalog import DatasetRequest, Loaded, register_dataset
from zsbench.data.files import (
    LabelledRefs,
    check_first_image,
    image_ref,
    listed_image,
    read_image_folder,
    read_lines,
    require_dir,
    require_file,
    shipped_class_folders,
)
from zsbench.errors import DatasetLayoutError


@register_dataset("country211", loader="torchvision_country211", classnames_key="country211")
def load_country211(request: DatasetRequest) -> Loaded:
    """Country211's 21,100 test photos, one folder per ISO country code.

    Layout::

        <root>/
        └── country211/
            └── test/
                ├── AD/
                │   ├── 1034596.jpg
                │   └── ...
                └── ...            (211 folders)

    Source: https://openaipublic.azureedge.net/clip/data/country211.tgz, extracted into <root>.
    """
    return read_image_folder(request.root / "country211" / "test", expected=shipped_class_folders("country211"))


@register_dataset("eurosat", loader="torchvision_eurosat", classnames_key="eurosat")
def load_eurosat(request: DatasetRequest) -> Loaded:
    """EuroSAT RGB's 27,000 satellite images (no split, as in CLIP_benchmark).

    Layout::

        <root>/
        └── eurosat/
            └── 2750/
                ├── AnnualCrop/
                │   ├── AnnualCrop_1.jpg
                │   └── ...
                └── ...            (10 folders)

    Source: EuroSAT.zip (RGB) from https://github.com/phelber/EuroSAT, extracted into <root>/eurosat/.
    """
    return read_image_folder(request.root / "eurosat" / "2750", expected=shipped_class_folders("eurosat"))


@register_dataset("renderedsst2", loader="torchvision_renderedsst2")
def load_renderedsst2(request: DatasetRequest) -> Loaded:
    """Rendered SST2's 1,821 test sentences rendered as images.

    Layout::

        <root>/
        └── rendered-sst2/
            └── test/
                ├── negative/
                │   ├── 0.png
                │   └── ...
                └── positive/

    Source: https://openaipublic.azureedge.net/clip/data/rendered-sst2.tgz, extracted into <root>.
    """
    return read_image_folder(request.root / "rendered-sst2" / "test", extensions=(".png",))


@register_dataset("sun397", loader="torchvision_sun397")
def load_sun397(request: DatasetRequest) -> Loaded:
    """SUN397's 108,754 scene images (no split, as in CLIP_benchmark).

    Classes are the lines of ``ClassName.txt`` (``/a/abbey`` -> ``abbey``); an image's class is
    its folder path below the letter folder. Names get ``_`` and ``/`` turned into spaces.

    Layout::

        <root>/
        └── SUN397/
            ├── ClassName.txt
            ├── a/
            │   ├── abbey/
            │   │   ├── sun_aaalbzqrimafwbiv.jpg
            │   │   └── ...
            │   └── apartment_building/
            │       └── outdoor/
            │           └── sun_*.jpg
            └── ...

    Source: http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz, extracted into <root>.
    """
    folder = require_dir(request.root / "SUN397")
    classes = [line[3:].strip() for line in read_lines(folder / "ClassName.txt") if line.strip()]
    index = {name: i for i, name in enumerate(classes)}
    samples: LabelledRefs = []
    for path in sorted(folder.rglob("sun_*.jpg")):
        label = "/".join(path.relative_to(folder).parts[1:-1])
        if label not in index:
            raise DatasetLayoutError(f"{path} is in a folder that ClassName.txt does not list ({label})")
        samples.append((image_ref(path), index[label]))
    if not samples:
        raise DatasetLayoutError(f"{folder} holds no sun_*.jpg images")
    names = [name.replace("_", " ").replace("/", " ") for name in classes]
    return Loaded(samples, classnames=names, num_classes=len(classes))


@register_dataset("food101", loader="torchvision_food101")
def load_food101(request: DatasetRequest) -> Loaded:
    """Food-101's 25,250 test images, listed in ``meta/test.json`` (class -> ``class/id``).

    Layout::

        <root>/
        └── food-101/
            ├── meta/
            │   └── test.json
            └── images/
                ├── apple_pie/
                │   ├── 1011328.jpg
                │   └── ...
                └── ...            (101 folders)

    Source: http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz, extracted into <root>.
    """
    base = request.root / "food-101"
    listing = base / "meta" / "test.json"
    try:
        metadata = json.loads(require_file(listing).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetLayoutError(f"{listing} is not valid JSON ({err})") from err
    classes = sorted(metadata)
    index = {name: i for i, name in enumerate(classes)}
    samples = [
        (listed_image(base / "images", f"{relative}.jpg", listing), index[name])
        for name, relatives in metadata.items()
        for relative in relatives
    ]
    check_first_image(samples, listing)
    return Loaded(samples, classnames=[name.replace("_", " ") for name in classes], num_classes=len(classes))


@register_dataset("dtd", loader="torchvision_dtd")
def load_dtd(request: DatasetRequest) -> Loaded:
    """DTD's textures in the test set of its first split (``labels/test1.txt``).

    Layout::

        <root>/
        └── dtd/
            └── dtd/
                ├── labels/
                │   └── test1.txt          (lines: banded/banded_0004.jpg)
                └── images/
                    ├── banded/
                    │   └── banded_0004.jpg
                    └── ...                (47 folders)

    Source: https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz, extracted into <root>/dtd/.
    """
    data = request.root / "dtd" / "dtd"
    listing = data / "labels" / "test1.txt"
    entries = [line.strip().split("/") for line in read_lines(listing) if line.strip()]
    if any(len(entry) != 2 for entry in entries):
        raise DatasetLayoutError(f"{listing} should hold lines '<class>/<file>.jpg'")
    classes = sorted({name for name, _ in entries})
    index = {name: i for i, name in enumerate(classes)}
    samples = [(listed_image(data / "images", f"{name}/{file}", listing), index[name]) for name, file in entries]
    check_first_image(samples, listing)
    return Loaded(samples, classnames=classes, num_classes=len(classes))


@register_dataset("fgvc_aircraft", loader="torchvision_fgvc_aircraft")
def load_fgvc_aircraft(request: DatasetRequest) -> Loaded:
    """FGVC-Aircraft's 3,333 test images, labelled by variant (100 classes).

    Layout::

        <root>/
        └── fgvc-aircraft-2013b/
            └── data/
                ├── variants.txt
                ├── images_variant_test.txt    (lines: 1514522 707-320)
                └── images/
                    ├── 1514522.jpg
                    └── ...

    Source: https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz,
    extracted into <root>.
    """
    data = request.root / "fgvc-aircraft-2013b" / "data"
    classes = [line.strip() for line in read_lines(data / "variants.txt") if line.strip()]
    index = {name: i for i, name in enumerate(classes)}
    listing = data / "images_variant_test.txt"
    samples = []
    for line in read_lines(listing):
        if line.strip():
            image, _, variant = line.strip().partition(" ")
            if variant not in index:
                raise DatasetLayoutError(f"{listing} labels {image} '{variant}', which variants.txt does not list")
            samples.append((listed_image(data / "images", f"{image}.jpg", listing), index[variant]))
    check_first_image(samples, listing)
    return Loaded(samples, classnames=classes, num_classes=len(classes))


@register_dataset("cars", loader="torchvision_stanford_cars")
def load_cars(request: DatasetRequest) -> Loaded:
    """Stanford Cars' 8,041 test images, with the labelled test annotations (MATLAB files).

    Layout::

        <root>/
        └── stanford_cars/
            ├── cars_test_annos_withlabels.mat
            ├── devkit/
            │   └── cars_meta.mat
            └── cars_test/
                ├── 00001.jpg
                └── ...

    Source: cars_test.tgz, car_devkit.tgz and cars_test_annos_withlabels.mat of
    https://ai.stanford.edu/~jkrause/cars/car_dataset.html (offline now; mirrors exist, e.g. on
    Kaggle), extracted into <root>/stanford_cars/ as torchvision's StanfordCars reads them.
    """
    import scipy.io

    base = request.root / "stanford_cars"

    def load_mat(path: Path) -> dict[str, np.ndarray]:
        try:
            return scipy.io.loadmat(require_file(path), squeeze_me=True)
        except (ValueError, TypeError, OSError) as err:
            raise DatasetLayoutError(f"{path} is not a readable MATLAB file ({err})") from err

    annotations_file = base / "cars_test_annos_withlabels.mat"
    annotations = np.atleast_1d(load_mat(annotations_file).get("annotations"))
    classes = [str(name) for name in np.atleast_1d(load_mat(base / "devkit" / "cars_meta.mat").get("class_names"))]
    try:
        # Class numbers in the annotations start at 1.
        samples = [(listed_image(base / "cars_test", str(row["fname"]), annotations_file), int(row["class"]) - 1)
                   for row in annotations]
    except (ValueError, IndexError, TypeError) as err:
        raise DatasetLayoutError(f"{annotations_file} has no 'annotations' struct with 'fname' and 'class' fields") from err
    check_first_image(samples, annotations_file)
    return Loaded(samples, classnames=classes, num_classes=len(classes))


@register_dataset("gtsrb", loader="torchvision_gtsrb", classnames_key="gtsrb")
def load_gtsrb(request: DatasetRequest) -> Loaded:
    """GTSRB's 12,630 test signs, labelled by ``GT-final_test.csv`` (``;``-separated).

    Layout::

        <root>/
        └── gtsrb/
            ├── GT-final_test.csv      (columns: Filename;Width;...;ClassId)
            └── GTSRB/
                └── Final_Test/
                    └── Images/
                        ├── 00000.ppm
                        └── ...

    Source: GTSRB_Final_Test_Images.zip and GTSRB_Final_Test_GT.zip from
    https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/, extracted into <root>/gtsrb/.
    """
    base = request.root / "gtsrb"
    listing = base / "GT-final_test.csv"
    images = base / "GTSRB" / "Final_Test" / "Images"
    rows = csv.DictReader(read_lines(listing), delimiter=";", skipinitialspace=True)
    try:
        samples = [(listed_image(images, row["Filename"], listing), int(row["ClassId"])) for row in rows]
    except (KeyError, ValueError, TypeError) as err:
        raise DatasetLayoutError(f"{listing} should have ';'-separated columns Filename and ClassId ({err!r})") from err
    check_first_image(samples, listing)
    return Loaded(samples)


@register_dataset("pets", loader="torchvision_oxford_iiit_pet")
def load_pets(request: DatasetRequest) -> Loaded:
    """Oxford-IIIT Pet's 3,669 test images (37 breeds), listed in ``annotations/test.txt``.

    Class names come from the image names (``american_bulldog_100`` -> ``American Bulldog``),
    ordered by class number, as torchvision derives them.

    Layout::

        <root>/
        └── oxford-iiit-pet/
            ├── annotations/
            │   └── test.txt           (lines: Abyssinian_201 1 1 1)
            └── images/
                ├── Abyssinian_201.jpg
                └── ...

    Source: images.tar.gz and annotations.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/pets/,
    extracted into <root>/oxford-iiit-pet/.
    """
    base = request.root / "oxford-iiit-pet"
    listing = base / "annotations" / "test.txt"
    entries = []
    for line in read_lines(listing):
        fields = line.split()
        if fields:
            if len(fields) != 4 or not fields[1].isdigit():
                raise DatasetLayoutError(f"{listing} should hold lines '<image> <class> <species> <breed>', found {line!r}")
            entries.append((fields[0], int(fields[1]) - 1))
    samples = [(listed_image(base / "images", f"{image}.jpg", listing), label) for image, label in entries]
    check_first_image(samples, listing)
    breeds = sorted({(image.rsplit("_", 1)[0], label) for image, label in entries}, key=lambda pair: pair[1])
    classes = [" ".join(part.title() for part in breed.split("_")) for breed, _ in breeds]
    return Loaded(samples, classnames=classes, num_classes=len(classes))
