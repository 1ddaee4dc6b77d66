"""Class names and templates: clip_benchmark's files per language, the fork's addition, custom overrides."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import pytest

from tests.data.fixtures import FIXTURE_WRITERS, image_bytes, write_cifar, write_imagenet_val, write_wds
from zsbench.data import PromptsError, build_dataset
from zsbench.errors import DatasetLayoutError, UnknownNameError


def package_table(filename: str) -> dict[str, list[str]]:
    return json.loads((files("clip_benchmark.datasets") / filename).read_text(encoding="utf-8"))


@pytest.mark.parametrize("language", ["en", "cn", "jp", "ar", "it"])
def test_imagenet_names_and_templates_per_language(tmp_path: Path, language: str) -> None:
    write_imagenet_val(tmp_path, per_class=1)
    dataset = build_dataset("imagenet1k", tmp_path, language=language)
    assert dataset.classnames == package_table(f"{language}_classnames.json")["imagenet1k"]
    assert dataset.templates == package_table(f"{language}_zeroshot_classification_templates.json")["imagenet1k"]


def test_datasets_take_their_own_templates_or_imagenets(tmp_path: Path) -> None:
    templates = package_table("en_zeroshot_classification_templates.json")
    write_cifar(tmp_path)
    assert build_dataset("cifar10", tmp_path).templates == templates["cifar10"]
    FIXTURE_WRITERS["objectnet"](tmp_path)
    assert build_dataset("objectnet", tmp_path).templates == templates["imagenet1k"]


def test_other_languages_keep_data_names_but_need_json_names_where_clip_benchmark_uses_them(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    dataset = build_dataset("cifar10", tmp_path, language="cn")
    assert dataset.classnames[0] == "class0"
    assert dataset.templates == package_table("cn_zeroshot_classification_templates.json")["imagenet1k"]
    FIXTURE_WRITERS["gtsrb"](tmp_path)
    with pytest.raises(PromptsError, match="no cn class names for 'gtsrb'.*--custom_classname_file"):
        build_dataset("gtsrb", tmp_path, language="cn")


def test_custom_files_override_by_full_then_short_name(tmp_path: Path) -> None:
    FIXTURE_WRITERS["vtab/flowers"](tmp_path)
    names, templates = tmp_path / "names.json", tmp_path / "templates.json"
    names.write_text(json.dumps({"flowers": ["rose", "thistle"], "cifar10": ["x"]}))
    templates.write_text(json.dumps({"imagenet1k": ["fallback {c}"], "vtab/flowers": ["a {c} flower"]}))
    dataset = build_dataset("vtab/flowers", tmp_path, custom_classname_file=names, custom_template_file=templates)
    assert dataset.classnames == ["rose", "thistle"] and dataset.templates == ["a {c} flower"]
    write_cifar(tmp_path)
    with pytest.raises(PromptsError, match="the data has 10 classes but --custom_classname_file names 1"):
        build_dataset("cifar10", tmp_path, custom_classname_file=names)
    assert build_dataset("cifar10", tmp_path, custom_template_file=templates).templates == ["fallback {c}"]


@pytest.mark.parametrize(
    "content", ["not json", '["a list"]', '{"cifar10": "a string"}', '{"cifar10": {"airplane": ["a {c}"]}}']
)
def test_a_malformed_custom_file_says_what_it_should_hold(tmp_path: Path, content: str) -> None:
    write_cifar(tmp_path)
    custom = tmp_path / "custom.json"
    custom.write_text(content)
    with pytest.raises(PromptsError, match="custom_template_file"):
        build_dataset("cifar10", tmp_path, custom_template_file=custom)


def test_a_missing_custom_file_is_named(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    with pytest.raises(PromptsError, match="nope.json"):
        build_dataset("cifar10", tmp_path, custom_classname_file=tmp_path / "nope.json")


def test_a_vtab_set_takes_the_languages_that_have_templates(tmp_path: Path) -> None:
    FIXTURE_WRITERS["vtab/flowers"](tmp_path)
    with pytest.raises(UnknownNameError, match="language of vtab/flowers 'xx'"):
        build_dataset("vtab/flowers", tmp_path, language="xx")


@pytest.mark.parametrize(("templates", "message"), [
    ([], r"--custom_template_file .*templates\.json gives 'cifar10' no templates"),
    (["a photo of a thing."], r"the template 'a photo of a thing\.' for 'cifar10' has no \{c\}"),
    (["a {d} photo of a {c}."], r"the template 'a \{d\} photo of a \{c\}\.' for 'cifar10' uses \{d\}; the only placeholder is \{c\}"),
    (["a photo of a {c} }"], r"is not a valid template \(Single '\}' encountered"),
], ids=["empty-list", "no-c", "unknown-placeholder", "stray-brace"])
def test_templates_that_cannot_make_one_prompt_per_class_are_refused(tmp_path: Path, templates: list[str], message: str) -> None:
    """The sweep's cases: an empty list (torch.cat of nothing, after encoding every image), a template without {c}
    (acc1 0.0) and {d} (KeyError)."""
    write_cifar(tmp_path)
    custom = tmp_path / "templates.json"
    custom.write_text(json.dumps({"cifar10": templates}))
    with pytest.raises(PromptsError, match=message):
        build_dataset("cifar10", tmp_path, custom_template_file=custom)


def test_an_empty_templates_file_of_an_export_is_refused(tmp_path: Path) -> None:
    write_wds(tmp_path, [(image_bytes(0, "WEBP"), 0)], classnames=["a", "b"], templates=[])
    assert (tmp_path / "zeroshot_classification_templates.txt").read_text().strip() == ""
    with pytest.raises(PromptsError, match=r"the export's zeroshot_classification_templates\.txt gives 'wds/x' no templates"):
        build_dataset("wds/x", tmp_path)


def test_a_language_an_export_does_not_have_is_refused_not_recorded(tmp_path: Path) -> None:
    """The sweep's case: `--language zh` on an English-only export wrote "language": "zh"."""
    write_wds(tmp_path / "cls", [(image_bytes(0, "WEBP"), 0)], classnames=["a", "b"], templates=["a photo of a {c}."])
    with pytest.raises(PromptsError, match=r"--language zh: 'wds/x' is a webdataset export, whose class names"):
        build_dataset("wds/x", tmp_path / "cls", language="zh")
    # Class names and templates in the language, from custom files, make it a run in that language.
    names, templates = tmp_path / "names.json", tmp_path / "templates.json"
    names.write_text(json.dumps({"wds/x": ["甲", "乙"]}), encoding="utf-8")
    templates.write_text(json.dumps({"wds/x": ["{c}的照片"]}), encoding="utf-8")
    dataset = build_dataset("wds/x", tmp_path / "cls", language="zh", custom_classname_file=names, custom_template_file=templates)
    assert dataset.classnames == ["甲", "乙"] and dataset.templates == ["{c}的照片"]

    write_wds(tmp_path / "ret", [(image_bytes(0, "WEBP"), ["a caption"])], dataset_type="retrieval")
    with pytest.raises(DatasetLayoutError, match=r"is a webdataset export \(English captions\); --language zh"):
        build_dataset("wds/x", tmp_path / "ret", language="zh")
