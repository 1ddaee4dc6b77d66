"""The ImageNet family, ObjectNet, Caltech-101, FER2013 and Birdsnap: labels, class names, subsets."""

from __future__ import annotations

import json
import shutil
from importlib.resources import files
from pathlib import Path

import pytest

from tests.data.fixtures import (
    FER2013_FOLDERS,
    IMAGENET_SUBSET_WNIDS,
    SHIPPED_FOLDERS,
    write_birdsnap,
    write_class_folders,
    write_imagenet_subset,
    write_imagenet_val,
    write_imagenetv2,
    write_objectnet,
)
from zsbench.data import build_dataset
from zsbench.data.image_folder import imagenet_wnids
from zsbench.data.types import load_picture
from zsbench.errors import DatasetLayoutError


def package_classnames(language: str) -> dict[str, list[str]]:
    return json.loads((files("clip_benchmark.datasets") / f"{language}_classnames.json").read_text(encoding="utf-8"))


def targets(dataset: object) -> list[object]:
    samples = dataset.samples  # type: ignore[attr-defined]
    return [samples[i][1] for i in range(len(samples))]


def test_the_imagenet_class_order_is_clip_benchmarks() -> None:
    from clip_benchmark.datasets.builder import all_imagenet_wordnet_ids

    assert list(imagenet_wnids()) == all_imagenet_wordnet_ids


def test_imagenet1k_labels_by_wnid_and_names_per_language(tmp_path: Path) -> None:
    write_imagenet_val(tmp_path, per_class=2)
    dataset = build_dataset("imagenet1k", tmp_path, language="jp")
    assert dataset.classnames == package_classnames("jp")["imagenet1k"]
    assert targets(dataset) == [0, 0, 1, 1, 2, 2]
    first = load_picture(dataset.samples[0][0])
    assert first.size == (8, 8) and dataset.samples[0][0].path.name == "ILSVRC2012_val_00000001.JPEG"


def test_imagenet_subsets_take_their_classes_from_the_folders(tmp_path: Path) -> None:
    write_imagenet_subset(tmp_path, per_class=1)
    index = [list(imagenet_wnids()).index(wnid) for wnid in IMAGENET_SUBSET_WNIDS]
    for name in ("imagenet-a", "imagenet-r"):
        for language in ("en", "cn"):
            dataset = build_dataset(name, tmp_path, language=language)
            assert dataset.classnames == [package_classnames(language)["imagenet1k"][i] for i in index]
            assert targets(dataset) == [0, 1, 2]


def test_folders_that_are_not_imagenet_classes_are_refused(tmp_path: Path) -> None:
    write_class_folders(tmp_path, ["n01498041", "cats"], per_class=1)
    with pytest.raises(DatasetLayoutError, match="1 folders that are not ImageNet-1k wnids"):
        build_dataset("imagenet-r", tmp_path)


def test_imagenet_sketch_reads_the_sketch_folder_the_zip_extracts(tmp_path: Path) -> None:
    write_class_folders(tmp_path / "sketch", ["n01440764", "n15075141"], per_class=1, ext=".JPEG")
    assert targets(build_dataset("imagenet_sketch", tmp_path)) == [0, 999]


def test_imagenetv2_labels_are_folder_numbers(tmp_path: Path) -> None:
    write_imagenetv2(tmp_path, labels=(3, 10, 999), per_class=1)
    (tmp_path / "ImageNetV2-matched-frequency" / "3" / "notes.txt").write_text("ignored")
    dataset = build_dataset("imagenetv2", tmp_path)
    assert sorted(targets(dataset)) == [3, 10, 999] and len(dataset.classnames) == 1000


def test_objectnet_keeps_the_classes_that_map_to_imagenet(tmp_path: Path) -> None:
    expected = write_objectnet(tmp_path)
    dataset = build_dataset("objectnet", tmp_path)
    assert dataset.classnames == expected
    assert targets(dataset) == [0, 0, 1, 1]
    assert {dataset.samples[i][0].path.parent.name for i in range(4)} == {"alarm_clock", "backpack"}


def test_objectnet_reads_mapping_copies_in_the_root(tmp_path: Path) -> None:
    write_objectnet(tmp_path)
    for mapping in (tmp_path / "objectnet-1.0" / "mappings").iterdir():
        mapping.rename(tmp_path / mapping.name)
    assert build_dataset("objectnet", tmp_path).classnames == ["alarm clock", "backpack"]


def test_caltech101_keeps_every_folder_including_background(tmp_path: Path) -> None:
    write_class_folders(tmp_path / "caltech101" / "101_ObjectCategories", SHIPPED_FOLDERS["caltech101"], per_class=1)
    dataset = build_dataset("caltech101", tmp_path)
    assert dataset.classnames == package_classnames("en")["caltech101"]
    assert targets(dataset) == list(range(102))


def test_birdsnap_matches_folders_to_species_case_insensitively(tmp_path: Path) -> None:
    classnames = write_birdsnap(tmp_path)
    dataset = build_dataset("birdsnap", tmp_path)
    assert dataset.classnames == classnames
    assert targets(dataset) == [1, 0]
    assert dataset.templates == ["a photo of a {c}, a type of bird."]
    (tmp_path / "test_images_valid.txt").write_text("path\nCommon_Loon/1.jpg\n")
    with pytest.raises(DatasetLayoutError, match="whose folder is not a species"):
        build_dataset("birdsnap", tmp_path)


def test_fer2013_reads_the_split_folder(tmp_path: Path) -> None:
    classes = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    paths = write_class_folders(tmp_path / "test", classes, per_class=1)
    dataset = build_dataset("fer2013", tmp_path)
    assert dataset.classnames == package_classnames("en")["fer2013"]
    assert [dataset.samples[i][0].path for i in range(7)] == paths
    assert targets(dataset) == list(range(7))


@pytest.mark.parametrize("name", ["fer2013", "eurosat", "caltech101", "country211"])
def test_the_shipped_folder_lists_align_with_clip_benchmarks_class_names(name: str) -> None:
    """Labels are positions in the sorted folder list: each list must be sorted as the loader sorts, and name as
    many classes as clip_benchmark's list, whose n-th name is the n-th folder's class."""
    folders = SHIPPED_FOLDERS[name]
    assert folders == sorted(folders) and len(set(folders)) == len(folders)
    assert len(folders) == len(package_classnames("en")[name])


@pytest.mark.parametrize(("renamed", "found"), [("zangry", "unexpected: zangry; missing: angry"), (None, "missing: angry")])
def test_a_renamed_or_missing_class_folder_is_refused_not_shifted(tmp_path: Path, renamed: str | None, found: str) -> None:
    """The sweep's case: FER2013's `angry` renamed `zangry` sorted last, and every label shifted by one."""
    write_class_folders(tmp_path / "test", FER2013_FOLDERS, per_class=1)
    angry = tmp_path / "test" / "angry"
    if renamed:
        angry.rename(tmp_path / "test" / renamed)
    else:
        shutil.rmtree(angry)
    with pytest.raises(DatasetLayoutError, match=f"does not hold the 7 class folders of the release \\({found}\\)"):
        build_dataset("fer2013", tmp_path)
