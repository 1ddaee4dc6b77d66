"""Every registered dataset, through `build_dataset`: loads from a fixture in its real format, and
explains itself when its root is missing or empty."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.data.fixtures import FIXTURE_WRITERS, image_bytes, write_cifar, write_dataset, write_imagenet_val, write_wds
from zsbench.data import (
    ClassificationDataset,
    RetrievalDataset,
    build_dataset,
    dataset_entry,
    dataset_layout,
    dataset_loader_name,
    default_task,
    list_datasets,
)
from zsbench.data.types import load_picture
from zsbench.errors import DatasetLayoutError, UnknownNameError

# The names of the InternVL paper's eval commands (seed/expected_results.json), plus voc2007_multilabel.
SEED_NAMES = {
    "imagenet1k", "imagenet-a", "imagenet-r", "imagenetv2", "imagenet_sketch", "objectnet", "cifar10", "cifar100",
    "mnist", "caltech101", "sun397", "fgvc_aircraft", "country211", "cars", "birdsnap", "dtd", "eurosat", "fer2013",
    "vtab/flowers", "food101", "gtsrb", "pets", "renderedsst2", "vtab/resisc45", "stl10", "voc2007",
    "voc2007_multilabel", "flickr30k", "mscoco_captions", "multilingual_mscoco_captions",
}  # fmt: skip
RETRIEVAL_NAMES = {"flickr30k", "mscoco_captions", "multilingual_mscoco_captions"}


def test_the_registry_holds_the_seed_names_and_a_fixture_for_each() -> None:
    assert set(list_datasets()) == SEED_NAMES
    assert set(FIXTURE_WRITERS) == SEED_NAMES


@pytest.mark.parametrize("name", list_datasets())
def test_loads_from_its_fixture(name: str, tmp_path: Path) -> None:
    write_dataset(name, tmp_path)
    dataset = build_dataset(name, tmp_path)
    assert dataset.name == name and dataset.task == default_task(name)
    assert len(dataset.samples) > 0
    picture, target = dataset.samples[len(dataset.samples) - 1]
    assert load_picture(picture).size[0] > 0
    if name in RETRIEVAL_NAMES:
        assert isinstance(dataset, RetrievalDataset)
        assert target and all(isinstance(caption, str) for caption in target)
    else:
        assert isinstance(dataset, ClassificationDataset)
        assert dataset.templates and all("{c}" in template for template in dataset.templates)
        assert dataset.multilabel == (name == "voc2007_multilabel")
        if dataset.multilabel:
            assert isinstance(target, torch.Tensor) and target.shape == (len(dataset.classnames),)
        else:
            assert isinstance(target, int) and 0 <= target < len(dataset.classnames)


@pytest.mark.parametrize("name", list_datasets())
@pytest.mark.parametrize("state", ["missing", "empty"])
def test_a_missing_or_empty_root_draws_the_expected_tree(name: str, state: str, tmp_path: Path) -> None:
    root = tmp_path / "data" / "here"
    if state == "empty":
        root.mkdir(parents=True)
    with pytest.raises(DatasetLayoutError) as caught:
        build_dataset(name, root)
    message = str(caught.value)
    entry = dataset_entry(name)
    assert f"'{name}'" in message and str(root) in message
    assert ("does not exist" if state == "missing" else "is empty") in message
    tree = entry.layout.splitlines()
    assert tree[0].startswith("<root>/") and len(tree) >= 3
    assert all(line in message for line in tree)
    assert f"Get the data: {entry.source}" in message and "http" in entry.source


@pytest.mark.parametrize("name", list_datasets())
def test_the_layout_text_names_task_loader_and_source(name: str) -> None:
    text = dataset_layout(name)
    assert text.startswith(f"{name}: {default_task(name)}, loader {dataset_loader_name(name)}")
    assert dataset_entry(name).layout in text and "Source: " in text


def test_default_task_and_loader_need_no_disk() -> None:
    assert {name for name in list_datasets() if default_task(name) == "zeroshot_retrieval"} == RETRIEVAL_NAMES
    assert dataset_loader_name("imagenet1k") == "imagenet_folder"
    assert dataset_loader_name("mscoco_captions") == "coco_captions"
    assert dataset_loader_name("vtab/flowers") == dataset_loader_name("wds/anything") == "wds"
    # wds/<name> takes <name>'s task when <name> is registered, as CLIP_benchmark strips the prefix.
    assert default_task("wds/flickr30k") == "zeroshot_retrieval"
    assert default_task("wds/vtab/cifar10") == "zeroshot_classification"


def test_unknown_names_splits_and_languages_are_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean: imagenet1k"):
        build_dataset("imagenet_1k", tmp_path)
    with pytest.raises(UnknownNameError, match="Did you mean: cifar10"):
        default_task("cifar_10")
    with pytest.raises(UnknownNameError, match="split of cifar10 'train'. Available: test"):
        build_dataset("cifar10", tmp_path, split="train")
    with pytest.raises(UnknownNameError, match="language of cifar10 'de'. Available: ar, cn, en, it, jp"):
        build_dataset("cifar10", tmp_path, language="de")
    with pytest.raises(UnknownNameError, match="language of flickr30k 'jp'. Available: cn, en"):
        build_dataset("flickr30k", tmp_path, language="jp")


def test_a_registered_name_reads_a_webdataset_export_in_its_root(tmp_path: Path) -> None:
    samples = [(image_bytes(i, "PNG"), i % 3) for i in range(4)]
    write_wds(tmp_path / "wds_cifar10", samples, classnames=["cat", "dog", "emu"], templates=["{c} from the export"])
    dataset = build_dataset("cifar10", tmp_path)
    assert isinstance(dataset, ClassificationDataset)
    assert dataset.classnames == ["cat", "dog", "emu"]
    # Templates stay the named dataset's (per language), not the export's English copy.
    assert "{c} from the export" not in dataset.templates and len(dataset.templates) > 1
    assert [target for _, target in (dataset.samples[i] for i in range(4))] == [0, 1, 2, 0]


def test_an_export_found_in_the_root_wins_over_the_native_layout(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    write_wds(tmp_path, [(image_bytes(0, "PNG"), 1)], classnames=["a", "b"])
    assert len(build_dataset("cifar10", tmp_path).samples) == 1


def test_imagenet_from_an_export_is_named_in_the_language_asked(tmp_path: Path) -> None:
    write_wds(tmp_path, [(image_bytes(0, "PNG"), 0)], classnames=[f"class {i}" for i in range(1000)])
    english = build_dataset("imagenet1k", tmp_path)
    chinese = build_dataset("imagenet1k", tmp_path, language="cn")
    assert english.classnames[0] == "tench" and chinese.classnames[0] != "tench"


def test_an_export_of_the_wrong_kind_is_refused(tmp_path: Path) -> None:
    write_wds(tmp_path, [(image_bytes(0, "PNG"), ["a caption"])], dataset_type="retrieval")
    with pytest.raises(DatasetLayoutError, match="holds a retrieval export, but cifar10 is classification data"):
        build_dataset("cifar10", tmp_path)
    with pytest.raises(DatasetLayoutError, match="English captions"):
        build_dataset("flickr30k", tmp_path, language="cn")
    assert isinstance(build_dataset("flickr30k", tmp_path), RetrievalDataset)


def test_an_extra_class_folder_is_a_layout_error(tmp_path: Path) -> None:
    FIXTURE_WRITERS["fer2013"](tmp_path)
    (tmp_path / "test" / "contempt").mkdir()
    (tmp_path / "test" / "contempt" / "0.jpg").write_bytes(image_bytes(0, "JPEG"))
    with pytest.raises(DatasetLayoutError, match=r"does not hold the 7 class folders of the release \(unexpected: contempt\)"):
        build_dataset("fer2013", tmp_path)


def test_imagenet_accepts_a_partial_copy_with_the_right_labels(tmp_path: Path) -> None:
    write_imagenet_val(tmp_path, wnids=["n01443537", "n15075141"], per_class=1)
    dataset = build_dataset("imagenet1k", tmp_path)
    assert len(dataset.classnames) == 1000
    assert [dataset.samples[i][1] for i in range(2)] == [1, 999]
