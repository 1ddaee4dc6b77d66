"""Dataset collections: one `--dataset` name that stands for a list, as CLIP_benchmark's
`vtab`, `vtab+`, `imagenet_robustness` and `retrieval`, plus the InternVL paper's suite.

The lists are CLIP_benchmark 1.6.2's (`clip_benchmark.datasets.builder.dataset_collection`),
spelled as CLIP_benchmark spells them; `expand_collections` reads a member that zsbench has no
loader for from CLIP_benchmark's webdataset export of it (``wds/<name>``), the format in which
those datasets are distributed.
"""

from __future__ import annotations

from zsbench.data.build import WDS_PREFIX, is_dataset_name

COLLECTIONS: dict[str, tuple[str, ...]] = {
    "vtab": (
        "vtab/caltech101", "vtab/cifar100", "vtab/clevr_count_all", "vtab/clevr_closest_object_distance",
        "vtab/diabetic_retinopathy", "vtab/dmlab", "vtab/dsprites_label_orientation",
        "vtab/dsprites_label_x_position", "vtab/dtd", "vtab/eurosat", "vtab/kitti_closest_vehicle_distance",
        "vtab/flowers", "vtab/pets", "vtab/pcam", "vtab/resisc45", "vtab/smallnorb_label_azimuth",
        "vtab/smallnorb_label_elevation", "sun397", "vtab/svhn",
    ),
    "vtab+": (
        "imagenet1k", "imagenetv2", "imagenet_sketch", "imagenet-a", "imagenet-r", "objectnet", "fer2013", "voc2007",
        "voc2007_multilabel", "sun397", "cars", "fgvc_aircraft", "mnist", "stl10", "gtsrb", "country211",
        "renderedsst2", "vtab/caltech101", "vtab/cifar10", "vtab/cifar100", "vtab/clevr_count_all",
        "vtab/clevr_closest_object_distance", "vtab/diabetic_retinopathy", "vtab/dmlab",
        "vtab/dsprites_label_orientation", "vtab/dsprites_label_x_position", "vtab/dtd", "vtab/eurosat",
        "vtab/kitti_closest_vehicle_distance", "vtab/flowers", "vtab/pets", "vtab/pcam", "vtab/resisc45",
        "vtab/smallnorb_label_azimuth", "vtab/smallnorb_label_elevation", "vtab/svhn",
    ),
    "imagenet_robustness": ("imagenetv2", "imagenet_sketch", "imagenet-a", "imagenet-r", "objectnet"),
    "retrieval": ("mscoco_captions", "flickr8k", "flickr30k"),
    # The datasets of the InternVL paper's zero-shot tables (Section 4.3), in the seed README's order;
    # its languages are chosen with --language, as for every dataset.
    "internvl_paper": (
        "imagenet1k", "imagenet-a", "imagenet-r", "imagenetv2", "imagenet_sketch", "objectnet", "cifar10", "cifar100",
        "mnist", "caltech101", "sun397", "fgvc_aircraft", "country211", "cars", "birdsnap", "dtd", "eurosat", "fer2013",
        "vtab/flowers", "food101", "gtsrb", "pets", "renderedsst2", "vtab/resisc45", "stl10", "voc2007", "flickr30k",
        "mscoco_captions", "multilingual_mscoco_captions",
    ),
}


def list_collections() -> list[str]:
    """The collection names `--dataset` accepts."""
    return sorted(COLLECTIONS)


def expand_collections(names: list[str]) -> list[str]:
    """`names` with every collection replaced by its datasets, in order, spelt as CLIP_benchmark spells
    them (``vtab/<name>`` too); a member zsbench has no loader for (``flickr8k``) becomes ``wds/<member>``
    (CLIP_benchmark's webdataset export of it)."""
    expanded: list[str] = []
    for name in names:
        if name not in COLLECTIONS:
            expanded.append(name)
            continue
        expanded.extend(member if is_dataset_name(member) else WDS_PREFIX + member for member in COLLECTIONS[name])
    return expanded
