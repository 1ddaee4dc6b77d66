"""Flickr30K, COCO and XTD10: the files the fork reads, its caption cleaning, its language choices."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.fixtures import image_bytes, write_coco, write_flickr, write_wds, write_xtd
from zsbench.data import build_dataset, clean_caption
from zsbench.errors import DatasetLayoutError, UnknownNameError


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("A man, in a Red shirt!!  Is (running).", "a man, in a red shirt is running"),
        ("Two dogs: one ~black~ & one *white*; #pets", "two dogs one black & one white pets"),
        ('She said "hi" -- twice?', "she said hi -- twice?"),
        ("  padded\n", "padded"),
        ("one\nline break stays, two\n\nfold", "one\nline break stays, two fold"),
        ("tab\tstays", "tab\tstays"),
        ("一只狗在草地上奔跑。", "一只狗在草地上奔跑。"),  # no spaces: one word, Chinese punctuation kept
        ("两只猫：在 沙发上. 睡觉!", "两只猫：在 沙发上 睡觉"),
    ],
)
def test_clean_caption_follows_the_fork_step_for_step(raw: str, cleaned: str) -> None:
    assert clean_caption(raw) == cleaned


def test_clean_caption_keeps_fifty_words() -> None:
    words = [f"w{i}" for i in range(60)]
    assert clean_caption(" ".join(words)) == " ".join(words[:50])
    assert clean_caption(" ".join(words[:50])) == " ".join(words[:50])


def test_flickr_groups_captions_per_image_in_file_order(tmp_path: Path) -> None:
    write_flickr(tmp_path, {"2.jpg": ["A dog, running.", "Dog."], "1.jpg": ["A CAT.jpg, sitting"]})
    dataset = build_dataset("flickr30k", tmp_path)
    pairs = [dataset.samples[i] for i in range(2)]
    assert [picture.path for picture, _ in pairs] == [tmp_path / "Images" / "2.jpg", tmp_path / "Images" / "1.jpg"]
    assert [captions for _, captions in pairs] == [["a dog, running", "dog"], ["a cat jpg, sitting"]]


def test_flickr_cn_reads_its_own_file_and_annotation_file_wins(tmp_path: Path) -> None:
    write_flickr(tmp_path, {"1.jpg": ["A dog."]})
    write_flickr(tmp_path, {"1.jpg": ["一只狗。", "狗在跑."]}, filename="flickr30k_cn_test.txt")
    assert build_dataset("flickr30k", tmp_path, language="cn").samples[0][1] == ["一只狗。", "狗在跑"]
    other = write_flickr(tmp_path, {"1.jpg": ["Other file."]}, filename="mine.txt")
    assert build_dataset("flickr30k", tmp_path, language="cn", annotation_file=other).samples[0][1] == ["other file"]


def test_a_malformed_flickr_line_is_named(tmp_path: Path) -> None:
    path = write_flickr(tmp_path, {"1.jpg": ["A dog."]})
    path.write_text("image,caption\n1.jpg,A dog.\n1.png,not a jpg\n")
    with pytest.raises(DatasetLayoutError, match="line 3 is not '<image>.jpg,<caption>'"):
        build_dataset("flickr30k", tmp_path)


def test_coco_images_are_sorted_by_id_with_cleaned_captions(tmp_path: Path) -> None:
    write_coco(tmp_path, {"COCO_val2014_1.jpg": ["A Cat!", "Cat."], "COCO_val2014_2.jpg": ["Dog: brown."]})
    dataset = build_dataset("mscoco_captions", tmp_path)
    # write_coco numbers images downwards, so the second file has the smaller id.
    assert [dataset.samples[i][0].path.name for i in range(2)] == ["COCO_val2014_2.jpg", "COCO_val2014_1.jpg"]
    assert [dataset.samples[i][1] for i in range(2)] == [["dog brown"], ["a cat", "cat"]]


def test_coco_cn_names_images_relative_to_the_root(tmp_path: Path) -> None:
    captions = {"train2014/COCO_train2014_9.jpg": ["一只猫。"], "val2014/COCO_val2014_4.jpg": ["一只狗!"]}
    write_coco(tmp_path, captions, filename="coco-cn_test.json", image_dir=".")
    dataset = build_dataset("mscoco_captions", tmp_path, language="cn")
    assert {dataset.samples[i][0].path for i in range(2)} == {tmp_path / name for name in captions}
    assert sorted(dataset.samples[i][1][0] for i in range(2)) == ["一只狗", "一只猫。"]


def test_a_broken_coco_file_is_a_layout_error(tmp_path: Path) -> None:
    (tmp_path / "val2014").mkdir()
    (tmp_path / "coco_test_karpathy.json").write_text('{"images": [{"file_name": "x.jpg"}], "annotations": []}')
    with pytest.raises(DatasetLayoutError, match="is not a COCO captions file"):
        build_dataset("mscoco_captions", tmp_path)


def test_xtd_pairs_line_i_with_image_i_and_keeps_captions_as_stored(tmp_path: Path) -> None:
    images = ["COCO_val2014_1.jpg", "COCO_train2014_2.jpg"]
    write_xtd(tmp_path, images, {"es": ["Un Perro.", "Dos gatos!"], "jp": ["犬。", "猫"]})
    dataset = build_dataset("multilingual_mscoco_captions", tmp_path, language="es")
    assert [dataset.samples[i][0].path for i in range(2)] == [
        tmp_path / "val2014" / images[0],
        tmp_path / "train2014" / images[1],
    ]
    assert [dataset.samples[i][1] for i in range(2)] == [["Un Perro."], ["Dos gatos!"]]
    assert build_dataset("multilingual_mscoco_captions", tmp_path, language="jp").samples[1][1] == ["猫"]


def test_xtd_reads_the_names_the_fork_saves_its_files_under(tmp_path: Path) -> None:
    write_xtd(tmp_path, ["COCO_val2014_1.jpg"], {"ko": ["개"]})
    (tmp_path / "test_image_names.txt").rename(tmp_path / "multilingual_coco_images.txt")
    (tmp_path / "test_1kcaptions_ko.txt").rename(tmp_path / "raw_multilingual_coco_captions_ko.txt")
    assert build_dataset("multilingual_mscoco_captions", tmp_path, language="ko").samples[0][1] == ["개"]


def test_xtd_refuses_a_caption_count_that_does_not_fit_and_unknown_languages(tmp_path: Path) -> None:
    write_xtd(tmp_path, ["COCO_val2014_1.jpg", "COCO_val2014_2.jpg"], {"fr": ["Un chien."]})
    with pytest.raises(DatasetLayoutError, match="has 1 captions for the 2 images"):
        build_dataset("multilingual_mscoco_captions", tmp_path, language="fr")
    with pytest.raises(UnknownNameError, match="Available: en, es, fr, it, jp, ko, pl, ru, tr, zh"):
        build_dataset("multilingual_mscoco_captions", tmp_path, language="de")


def test_a_registered_retrieval_set_read_from_its_export_has_its_captions_cleaned(tmp_path: Path) -> None:
    """The hub mirror of Flickr30K or COCO read under the seed's name scores as the seed's own files do: the stored
    captions go through the fork's cleaning; ``wds/<name>`` reads them as stored, as the fork's webdataset path does."""
    write_wds(tmp_path / "wds_flickr30k", [(image_bytes(0), ["A Dog, running!", "Two  cats."])], dataset_type="retrieval")
    for name in ("flickr30k", "mscoco_captions"):
        assert build_dataset(name, tmp_path / "wds_flickr30k").samples[0][1] == ["a dog, running", "two cats"]
    assert build_dataset("wds/flickr30k", tmp_path).samples[0][1] == ["A Dog, running!", "Two  cats."]
