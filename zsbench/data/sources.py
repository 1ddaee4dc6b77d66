"""The catalog of where each dataset comes from: one `DatasetSource` per (dataset name, language).

A source is what the seed (InternVL's CLIP_benchmark fork) fetches for that name, verified:

- torchvision's own archives, at the URLs and with the md5 checksums of torchvision's dataset classes,
  where the seed builds the dataset with torchvision (``tests/data/test_sources.py`` compares them with
  the installed torchvision); a URL torchvision gives as plain http is fetched over https (same host and
  path: the checksum pins the bytes);
- the clip-benchmark webdataset mirror on the Hugging Face hub (``clip-benchmark/wds_<name>``, the names of
  CLIP_benchmark's ``benchmark/webdatasets.txt``), checked against the hub's sha256 of every shard, for
  the names whose original needs a login, a password, Kaggle, gdown, or publishes no checksum;
- the annotation files the seed fetches for COCO, Flickr30K and XTD10, pinned to a commit with their sha256.

Some data cannot be fetched by anyone but the user (Kaggle's Flickr30K images, COCO-CN's annotations,
Birdsnap's images from Flickr): the source says so in `manual`, and zsbench fetches the rest.

``ZSBENCH_DATA_MIRROR=<base URL>`` makes every archive URL ``https://host/path`` come from
``<base URL>/host/path`` instead (a local mirror, or a test server); the checksums stay the catalog's.
Hub mirrors follow ``HF_ENDPOINT``, as huggingface_hub does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from zsbench.errors import UnknownNameError
from zsbench.registry import Registry

MIRROR_VARIABLE = "ZSBENCH_DATA_MIRROR"
WDS_PREFIX = "wds/"

# CLIP_benchmark's benchmark/webdatasets.txt: the datasets the clip-benchmark organisation mirrors on the hub.
WEBDATASETS = (
    "mscoco_captions", "flickr8k", "flickr30k", "imagenet1k", "imagenetv2", "imagenet_sketch", "imagenet-a",
    "imagenet-r", "imagenet-o", "objectnet", "fer2013", "voc2007", "voc2007_multilabel", "sun397", "cars",
    "fgvc_aircraft", "mnist", "stl10", "gtsrb", "country211", "renderedsst2", "vtab/caltech101", "vtab/cifar10",
    "vtab/cifar100", "vtab/clevr_count_all", "vtab/clevr_closest_object_distance", "vtab/diabetic_retinopathy",
    "vtab/dmlab", "vtab/dsprites_label_orientation", "vtab/dsprites_label_x_position", "vtab/dsprites_label_y_position",
    "vtab/dtd", "vtab/eurosat", "vtab/kitti_closest_vehicle_distance", "vtab/flowers", "vtab/pets", "vtab/pcam",
    "vtab/resisc45", "vtab/smallnorb_label_azimuth", "vtab/smallnorb_label_elevation", "vtab/svhn",
)


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch into the dataset root.

    Attributes:
        url: where it is published (https).
        into: the folder under the root it is saved in and, for an archive, extracted into.
        checksum: ``"<md5|sha1|sha256>:<hex>"``, or None where no source publishes one (then only the size
            the server announces is checked, and listings say "unverified").
        size: its size in bytes, where published.
        inner: archives inside it, relative to `into`, that are extracted too (Caltech-101's zip holds a .tar.gz).
        checksum_from: who publishes the checksum (shown in listings).
        approx: its size in words where the exact size is not published (``about 37 GB``).
    """

    url: str
    into: str = ""
    checksum: str | None = None
    size: int | None = None
    inner: tuple[str, ...] = ()
    checksum_from: str = ""
    approx: str | None = None

    @property
    def filename(self) -> str:
        """The file's name: the last component of its URL."""
        return urlsplit(self.url).path.rsplit("/", 1)[-1]

    def fetch_url(self) -> str:
        """`url`, or its copy under ``$ZSBENCH_DATA_MIRROR`` (``<mirror>/<host>/<path>``) when that is set."""
        mirror = os.environ.get(MIRROR_VARIABLE, "").strip()
        if not mirror:
            return self.url
        parts = urlsplit(self.url)
        return f"{mirror.rstrip('/')}/{parts.hostname}{parts.path}"


@dataclass(frozen=True)
class HubMirror:
    """A CLIP_benchmark webdataset export on the Hugging Face hub, fetched into ``<root>/wds_<name>/``
    (where the loaders look for an export) for the split asked."""

    name: str
    revision: str = "main"

    @property
    def repo_id(self) -> str:
        return f"clip-benchmark/{self.folder}"

    @property
    def folder(self) -> str:
        """``wds_<name>`` with ``/`` written ``-``: the repository's name, and the folder under the root."""
        return "wds_" + self.name.replace("/", "-")


@dataclass(frozen=True)
class DatasetSource:
    """Where one dataset (in one language) comes from.

    Attributes:
        dataset: the `--dataset` name it serves.
        origin: what the files are, in a few words (shown by ``datasets download --dry-run``).
        files: archives and annotation files fetched into the root.
        mirror: the hub mirror fetched instead, when the catalog uses one.
        manual: what the user must put in the root by hand (None: zsbench fetches everything).
    """

    dataset: str
    origin: str
    files: tuple[RemoteFile, ...] = ()
    mirror: HubMirror | None = None
    manual: str | None = None


SourceBuilder = Callable[[str], DatasetSource]
SOURCES: Registry[SourceBuilder] = Registry("dataset source")


def _source(name: str, languages: tuple[str, ...] | None = None) -> Callable[[SourceBuilder], SourceBuilder]:
    """Registers a builder `(language) -> DatasetSource` under `name` (`languages`: the ones it serves; None: any)."""

    def decorate(build: SourceBuilder) -> SourceBuilder:
        def checked(language: str) -> DatasetSource:
            if languages is not None and language not in languages:
                raise UnknownNameError(f"language with a source for {name}", language, languages)
            return build(language)

        SOURCES.add(name, checked)
        return build

    return decorate


def _torchvision(name: str, origin: str, *files: RemoteFile) -> None:
    """Registers a dataset fetched as torchvision's archives (any language: class names are zsbench's)."""
    source = DatasetSource(name, f"torchvision's {origin} archives", tuple(replace(file, checksum_from="torchvision") for file in files))
    SOURCES.add(name, lambda language: source)


def _mirror_source(name: str, mirrored: str | None = None, why: str = "") -> DatasetSource:
    mirror = HubMirror(mirrored or name)
    origin = f"clip-benchmark webdataset mirror {mirror.repo_id}" + (f" ({why})" if why else "")
    return DatasetSource(name, origin, mirror=mirror)


def _mirror(name: str, mirrored: str | None = None, why: str = "") -> None:
    """Registers a dataset fetched from its clip-benchmark hub mirror (in any language)."""
    source = _mirror_source(name, mirrored, why)
    _source(name)(lambda language: source)


_torchvision("cifar10", "CIFAR10", RemoteFile("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
             checksum="md5:c58f30108f718f92721af3b95e74349a", size=170498071))
_torchvision("cifar100", "CIFAR100", RemoteFile("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
             checksum="md5:eb9058c3a382ffc7106e4002c42a8d85", size=169001437))
_torchvision(
    "mnist", "MNIST (test files only)",
    RemoteFile("https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz", "MNIST/raw",
               "md5:9fb629c4189551a2d022fa330f9573f3", 1648877),
    RemoteFile("https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz", "MNIST/raw",
               "md5:ec29112dd5afa0611ce80d1b7f02629c", 4542),
)
_torchvision("stl10", "STL10", RemoteFile("https://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
             checksum="md5:91f7769df0f17e558f3565bffb0c7dfb", approx="about 2.5 GB"))
_torchvision("sun397", "SUN397", RemoteFile("https://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz",
             checksum="md5:8ca2778205c41d23104230ba66911c7a", approx="about 37 GB"))
_torchvision("food101", "Food101", RemoteFile("https://data.vision.ee.ethz.ch/cvl/food-101.tar.gz",
             checksum="md5:85eeb15f3717b99a5da872d97d918f87", approx="about 5 GB"))
_torchvision("dtd", "DTD", RemoteFile("https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz", "dtd",
             "md5:fff73e5086ae6bdbea199a49dfb8a4c1", approx="about 600 MB"))
_torchvision("country211", "Country211", RemoteFile("https://openaipublic.azureedge.net/clip/data/country211.tgz",
             checksum="md5:84988d7644798601126c29e9877aab6a", approx="about 11 GB"))
_torchvision("renderedsst2", "RenderedSST2", RemoteFile("https://openaipublic.azureedge.net/clip/data/rendered-sst2.tgz",
             checksum="md5:2384d08e9dcfa4bd55b324e610496ee5"))
_torchvision("eurosat", "EuroSAT", RemoteFile(
    "https://huggingface.co/datasets/torchgeo/eurosat/resolve/c877bcd43f099cd0196738f714544e355477f3fd/EuroSAT.zip",
    "eurosat", "md5:c8fa014336c82ac7804f0398fcb19387", approx="about 90 MB"))
_torchvision(
    "gtsrb", "GTSRB (test files only)",
    RemoteFile("https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/GTSRB_Final_Test_Images.zip", "gtsrb",
               "md5:c7e4e6327067d32654124b0fe9e82185", approx="about 90 MB"),
    RemoteFile("https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/GTSRB_Final_Test_GT.zip", "gtsrb",
               "md5:fe31e9c9270bbcd7b84b7f21a9d9d9e5", approx="about 100 kB"),
)
_torchvision(
    "pets", "OxfordIIITPet",
    RemoteFile("https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz", "oxford-iiit-pet",
               "md5:5c4f3ee8e5d25df40f4fd59a7f44e54c", approx="about 800 MB"),
    RemoteFile("https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz", "oxford-iiit-pet",
               "md5:95a8c909bbe2e81eed6a22bccdf3f68f", approx="about 20 MB"),
)
_torchvision("caltech101", "Caltech101", RemoteFile(
    "https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip", "caltech101",
    "md5:3138e1922a9193bfa496528edbbc45d0", inner=("caltech-101/101_ObjectCategories.tar.gz",), approx="about 130 MB"))

# Originals that need a login (ImageNet), a password (ObjectNet), Kaggle (FER2013), gdown (ImageNet-Sketch),
# or that torchvision can no longer fetch (Stanford Cars) or fetches without a checksum (FGVC-Aircraft,
# ImageNet-A/-R, ImageNetV2, VOC2007): their clip-benchmark mirror, checked against the hub's sha256.
for _name in ("imagenet1k", "imagenetv2", "imagenet_sketch", "imagenet-a", "imagenet-r", "objectnet", "fer2013",
              "voc2007", "voc2007_multilabel", "cars", "fgvc_aircraft", "vtab/flowers", "vtab/resisc45"):
    _mirror(_name, why="the seed's own download needs a login, a password, Kaggle or gdown, or has no checksum")
for _name in WEBDATASETS:
    _mirror(WDS_PREFIX + _name, _name)

# COCO's image archives, with the md5 checksums Salesforce LAVIS's COCO builder records.
COCO_VAL2014 = RemoteFile("https://images.cocodataset.org/zips/val2014.zip", checksum="md5:a3d79f5ed8d289b7a7554ce06a5782b3",
                          checksum_from="Salesforce LAVIS", approx="about 6.2 GB")
COCO_TRAIN2014 = RemoteFile("https://images.cocodataset.org/zips/train2014.zip", checksum="md5:0da8c0bd3d6becc4dcb32757491aca88",
                            checksum_from="Salesforce LAVIS", approx="about 13 GB")
INTERNVL_COMMIT = "2410d1dbf208f0e799459aff9376e5747dbf41a2"
XTD10_COMMIT = "d77ff16148468c84287f3efcbf602a015c5e4954"
_XTD10 = f"https://raw.githubusercontent.com/adobe-research/Cross-lingual-Test-Dataset-XTD10/{XTD10_COMMIT}"
# (sha256, bytes) of XTD10's files at that commit; jp is STAIR's and fr MIC's, as the seed fetches them.
XTD10_FILES: dict[str, tuple[str, str, int]] = {
    "test_image_names.txt": ("XTD10", "504a472dfd40e44f2d0facd6320b9dc1c7d64c58aac9840f0b1da4807cb3a30a", 31600),
    "en": ("XTD10", "ac5531b6842c1d469fba80aa6f44e2af054e84a41da8f9eaf01d831e943039b9", 65828),
    "es": ("XTD10", "cacc43d4e7af56b02033865531ea70494049f1d0dd3ea89ff2a217e7e190c4f2", 66315),
    "fr": ("MIC", "84aa16954706a0f654b59788ffb6a3bcb1b1d9d12dc9d7a3de26730bc04664b5", 79287),
    "it": ("XTD10", "b4095d3550eb1accf8c9c78314b4bef45847a3929b5c5fe15a1264ea31dec7cc", 65178),
    "jp": ("STAIR", "20908aa5763ee7b1bacc1f29aa507532d3dc6a7e6a8c43e6acd2ec72d1e80c10", 63028),
    "ko": ("XTD10", "92d35e082cd081724560c9abdb2b45753ceb52aaabddb9a0f79dc04967a36800", 70124),
    "pl": ("XTD10", "b6af6b7941f44e902b50736dcf9a7221af28e755a259511652c599cf6ae89c78", 66605),
    "ru": ("XTD10", "7d93631ff85b53592091b3cbfd9ca963397e77038fb3d0fdd9374b1b02ae98a3", 95035),
    "tr": ("XTD10", "147e9763dcb6e6ebba0b98fc799f0145c7d90005fa03ca8ec5a7cf29a04dd136", 71756),
    "zh": ("XTD10", "17229ff02ac85dd2d165f8316515a24fbe5100dbf486c22aaa12105dfb3353bf", 58660),
}


def _xtd10_file(key: str) -> RemoteFile:
    folder, sha256, size = XTD10_FILES[key]
    name = key if key.endswith(".txt") else f"test_1kcaptions_{key}.txt"
    return RemoteFile(f"{_XTD10}/{folder}/{name}", checksum=f"sha256:{sha256}", size=size, checksum_from="the pinned commit")


@_source("multilingual_mscoco_captions", tuple(key for key in XTD10_FILES if not key.endswith(".txt")))
def _xtd10(language: str) -> DatasetSource:
    return DatasetSource(
        "multilingual_mscoco_captions", "XTD10's image list and captions (the seed's files) and COCO 2014's images",
        (_xtd10_file("test_image_names.txt"), _xtd10_file(language), COCO_VAL2014, COCO_TRAIN2014),
    )


@_source("flickr30k", ("en", "cn"))
def _flickr30k(language: str) -> DatasetSource:
    if language == "en":  # the captions are cleaned as the seed cleans them when zsbench reads the export
        return _mirror_source("flickr30k", why="Karpathy test split; the original images are on Kaggle only")
    captions = RemoteFile(
        f"https://raw.githubusercontent.com/OpenGVLab/InternVL/{INTERNVL_COMMIT}/clip_benchmark/data/flickr30k/flickr30k_cn_test.txt",
        checksum="sha256:b0ea95e42d3c7b1319ff183e914e12b4dac911063e61a0ee8527b03a9c8b5234", size=379574, checksum_from="the pinned commit",
    )
    return DatasetSource(
        "flickr30k", "Flickr30K-CN's test captions from InternVL's repository", (captions,),
        manual="the Flickr30K images, as <root>/Images/ (Kaggle's adityajn105/flickr30k, as the seed gets them: "
               "`kaggle datasets download -d adityajn105/flickr30k`, then unzip it into <root>)",
    )


@_source("mscoco_captions", ("en", "cn"))
def _mscoco_captions(language: str) -> DatasetSource:
    if language == "en":  # 5,000 Karpathy test images instead of val2014.zip's 40,504 (6.2 GB)
        return _mirror_source("mscoco_captions", why="Karpathy test split")
    return DatasetSource(
        "mscoco_captions", "COCO 2014's images", (COCO_VAL2014, COCO_TRAIN2014),
        manual="COCO-CN's test annotations as <root>/coco-cn_test.json (the seed fetches none; COCO-CN is "
               "published at https://github.com/li-xirong/coco-cn)",
    )


@_source("birdsnap")
def _birdsnap(language: str) -> DatasetSource:
    return DatasetSource(
        "birdsnap", "Birdsnap 1.1",
        manual="Birdsnap: species.txt and the test images the seed's own script fetches one by one from Flickr "
               "(many are gone), with InternVL's test_images_valid.txt; see `zsbench datasets --layout birdsnap`",
    )


def dataset_source(name: str, language: str = "en") -> DatasetSource:
    """The source of dataset `name` read in `language`.

    Raises:
        UnknownNameError: no source for the name (or for that language of it).
    """
    return SOURCES.get(name)(language)


def has_source(name: str) -> bool:
    """Whether the catalog names a source for `name` (in some language)."""
    return name in SOURCES


# Where the seed's command lines look for each dataset under their data folder (``--dataset_root ./data/...``);
# `zsbench datasets download --root DIR` puts each dataset there, so those command lines run unchanged.
SEED_FOLDERS = {
    "imagenet1k": "imagenet-1k", "imagenet-a": "imagenet-a", "imagenet-r": "imagenet-r", "imagenetv2": "imagenetv2",
    "imagenet_sketch": "imagenet-sketch", "objectnet": "objectnet-1.0", "birdsnap": "birdsnap", "fer2013": "fer2013",
    "flickr30k": "flickr30k", "mscoco_captions": "mscoco_captions", "multilingual_mscoco_captions": "mscoco_captions",
}


def seed_folder(name: str) -> str:
    """The folder under a shared data folder where the seed's command lines read `name` ("" for the data folder itself)."""
    return SEED_FOLDERS.get(name, "")
