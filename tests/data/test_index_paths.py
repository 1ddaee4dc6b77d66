"""Index and annotation files decide which images are read, never where: a file name that leaves the
dataset (`../`, an absolute path) is refused before any image is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.data.fixtures import write_coco, write_flickr, write_food101, write_image, write_voc2007
from zsbench.data import build_dataset
from zsbench.errors import DatasetLayoutError


@pytest.mark.parametrize("escape", ["../../../../outside.jpg", "/abs/outside.jpg"], ids=["dotdot", "absolute"])
def test_a_coco_file_name_outside_the_root_is_refused(tmp_path: Path, escape: str) -> None:
    """The sweep's case: a COCO file_name of ../../../outside.jpg was read from outside the root."""
    outside = write_image(tmp_path / "outside.jpg")  # exists, so only the rule can stop it
    annotation = write_coco(tmp_path / "data" / "coco" / "root", {"COCO_val2014_1.jpg": ["a cat"]})
    content = json.loads(annotation.read_text())
    content["images"][0]["file_name"] = escape if escape.startswith("..") else str(outside)
    annotation.write_text(json.dumps(content))
    assert (annotation.parent / "val2014" / content["images"][0]["file_name"]).resolve() == outside.resolve()
    with pytest.raises(DatasetLayoutError, match=r"coco_test_karpathy\.json names the file .*outside\.jpg'?, which is outside .*val2014"):
        build_dataset("mscoco_captions", tmp_path / "data" / "coco" / "root")


def test_a_flickr_caption_line_naming_a_file_outside_the_images_is_refused(tmp_path: Path) -> None:
    write_image(tmp_path / "secret.jpg")
    write_flickr(tmp_path / "flickr", {"1.jpg": ["a dog"]})
    listing = tmp_path / "flickr" / "flickr30k_test_karpathy.txt"
    listing.write_text(listing.read_text() + "../../secret.jpg,a stolen image\n")
    with pytest.raises(DatasetLayoutError, match=r"names the file '\.\./\.\./secret\.jpg', which is outside"):
        build_dataset("flickr30k", tmp_path / "flickr")


def test_other_index_files_cannot_leave_the_dataset_either(tmp_path: Path) -> None:
    write_food101(tmp_path / "food")
    listing = tmp_path / "food" / "food-101" / "meta" / "test.json"
    listing.write_text(json.dumps({"apple_pie": ["../../../../etc/passwd_"]}))
    with pytest.raises(DatasetLayoutError, match=r"test\.json names the file '\.\./\.\./\.\./\.\./etc/passwd_\.jpg'"):
        build_dataset("food101", tmp_path / "food")

    write_voc2007(tmp_path / "voc")
    main = tmp_path / "voc" / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main"
    (main / "aeroplane_test.txt").write_text("../../../../../outside -1\n")
    with pytest.raises(DatasetLayoutError, match=r"aeroplane_test\.txt names the file '\.\./\.\./\.\./\.\./\.\./outside\.xml'"):
        build_dataset("voc2007", tmp_path / "voc")
