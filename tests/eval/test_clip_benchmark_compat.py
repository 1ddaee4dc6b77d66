"""CLIP_benchmark's dataset collections and its remaining eval flags: accepted with CLIP_benchmark's
meaning, or refused in one line where zsbench deliberately does not implement them."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner
from clip_benchmark.datasets.builder import dataset_collection

from zsbench.cli import main
from zsbench.data import list_datasets
from zsbench.data.collections import COLLECTIONS, expand_collections

INTERNVL = ("--model_type", "internvl", "--model", "internvl_c_classification_hf", "--pretrained", "ckpt/InternVL-14B-224px")


def dry_run(*args: str, model: tuple[str, ...] = INTERNVL) -> list[dict]:
    result = CliRunner().invoke(main, ["eval", *model, *args, "--dry-run"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.strip().splitlines()]


@pytest.mark.parametrize("name", ["vtab", "vtab+", "imagenet_robustness", "retrieval"])
def test_collections_are_clip_benchmarks(name: str) -> None:
    assert list(COLLECTIONS[name]) == dataset_collection[name]


def test_internvl_paper_is_the_datasets_of_the_papers_tables() -> None:
    sections = json.loads((resources.files("zsbench.eval") / "paper_results.json").read_text(encoding="utf-8"))
    paper = list(dict.fromkeys(entry["dataset"] for section in sections for entry in section["expected"]))
    assert list(COLLECTIONS["internvl_paper"]) == paper
    assert expand_collections(["internvl_paper"]) == paper  # every one of them has a zsbench loader


def test_members_keep_clip_benchmarks_names_and_those_without_a_loader_read_its_webdataset_export() -> None:
    # vtab/<name> is CLIP_benchmark's own name, accepted as such (read from its webdataset export).
    assert expand_collections(["cifar10", "vtab"]) == ["cifar10", *COLLECTIONS["vtab"]]
    assert expand_collections(["vtab+"]) == list(COLLECTIONS["vtab+"])
    assert expand_collections(["retrieval"]) == ["mscoco_captions", "wds/flickr8k", "flickr30k"]
    assert "vtab/flowers" in list_datasets() and "vtab/caltech101" not in list_datasets()  # accepted, not registered


def test_collections_expand_in_the_dry_run_plan() -> None:
    plans = dry_run("--dataset", "imagenet_robustness", "retrieval", "--dataset_root", "data/{dataset_cleaned}")
    assert [plan["dataset"] for plan in plans] == [*COLLECTIONS["imagenet_robustness"], "mscoco_captions", "wds/flickr8k", "flickr30k"]
    assert [plan["task"] for plan in plans][-1] == "zeroshot_retrieval"
    assert plans[0]["dataset_root"] == "data/imagenetv2"


def test_test_split_is_split_and_feature_root_turns_on_the_feature_cache(tmp_path: Path) -> None:
    (plan,) = dry_run("--dataset", "cifar10", "--test_split", "val", "--feature_root", str(tmp_path / "features"))
    assert plan["split"] == "val"
    assert plan["cache_features"] is True and plan["cache_dir"] == str(tmp_path / "features")
    (plan,) = dry_run("--dataset", "cifar10", "--normalize")
    assert plan["split"] == "test" and plan["cache_features"] is False


def test_model_cache_dir_is_a_search_path_for_local_weights(tmp_path: Path) -> None:
    (tmp_path / "InternVL-14B-224px").mkdir()
    model = INTERNVL[:-2]
    (plan,) = dry_run("--pretrained", "InternVL-14B-224px", "--model_cache_dir", str(tmp_path), "--dataset", "cifar10", model=model)
    assert plan["pretrained"] == str(tmp_path / "InternVL-14B-224px")
    # A --pretrained that is nowhere stays as given (its loader then says what is missing).
    (plan,) = dry_run("--pretrained", "elsewhere/ckpt", "--model_cache_dir", str(tmp_path), "--dataset", "cifar10", model=model)
    assert plan["pretrained"] == "elsewhere/ckpt"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fewshot_k", "5"], "--fewshot_k (the few-shot linear probe's shots) is not supported"),
        (["--fewshot_epochs=3"], "--fewshot_epochs"),
        (["--fewshot_lr", "0.1"], "--fewshot_lr"),
        (["--train_split", "train"], "--train_split (the linear probe's training split) is not supported"),
        (["--val_proportion", "0.2"], "--val_proportion"),
        (["--task", "linear_probe"], "--task linear_probe (linear-probe evaluation) is not supported"),
        (["--task=captioning"], "--task captioning"),
        (["--wds_cache_dir", "/tmp/x"], "zsbench reads local shards only"),
    ],
)
def test_unsupported_clip_benchmark_flags_fail_in_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["eval", *INTERNVL, "--dataset", "cifar10", *args, "--dry-run"])
    assert result.exit_code == 1
    assert message in result.output
    assert "zero-shot classification and retrieval only" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("spelling", [["--no-normalize"], ["--normalize", "False"], ["--normalize", "false"]])
def test_no_normalize_is_refused_with_the_reason(spelling: list[str]) -> None:
    result = CliRunner().invoke(main, ["eval", *INTERNVL, "--dataset", "cifar10", *spelling, "--dry-run"])
    assert result.exit_code == 1
    assert "only to linear-probe features" in result.output


def test_normalize_true_as_clip_benchmark_spells_it() -> None:
    (plan,) = dry_run("--normalize", "True", "--dataset", "cifar10")
    assert plan["dataset"] == "cifar10"


def test_test_split_and_a_different_split_conflict() -> None:
    result = CliRunner().invoke(main, ["eval", *INTERNVL, "--dataset", "cifar10", "--split", "train", "--test_split", "val", "--dry-run"])
    assert result.exit_code == 1
    assert "pass only one" in result.output


def test_datasets_command_lists_the_collections() -> None:
    result = CliRunner().invoke(main, ["datasets"])
    assert result.exit_code == 0, result.output
    assert "Collections (expand to their datasets): imagenet_robustness, internvl_paper, retrieval, vtab, vtab+." in result.output
