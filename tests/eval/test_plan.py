"""How `zsbench eval`'s flags expand into runs (CLIP_benchmark's cartesian product and templates)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from zsbench.cli import main


def dry_run(*args: str) -> list[dict]:
    result = CliRunner().invoke(main, ["eval", *args, "--dry-run"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.strip().splitlines()]


def test_lists_expand_to_the_cartesian_product_in_clip_benchmark_order() -> None:
    plans = dry_run(
        "--model_type", "internvl", "--model", "internvl_c_retrieval_hf", "internvl_g_retrieval_hf",
        "--pretrained", "ckpt/InternVL-14B-224px/", "--dataset", "flickr30k", "mscoco_captions",
        "--language", "en", "cn", "--dataset_root", "data/{dataset}",
    )
    assert [(p["model"], p["dataset"], p["language"]) for p in plans] == [
        (model, dataset, language)
        for model in ("internvl_c_retrieval_hf", "internvl_g_retrieval_hf")
        for dataset in ("flickr30k", "mscoco_captions")
        for language in ("en", "cn")
    ]
    assert plans[0]["dataset_root"] == "data/flickr30k"
    # The default output template, with the checkpoint's last path component.
    assert plans[0]["output"] == "flickr30k_InternVL-14B-224px_internvl_c_retrieval_hf_en_zeroshot_retrieval.json"


def test_repeated_flags_and_equals_form_are_accepted() -> None:
    plans = dry_run("--model_type=internvl", "--model=internvl_c_classification", "--pretrained", "a.pth",
                    "--dataset", "cifar10", "--dataset", "cifar100", "--language=en", "--recall_k", "1", "5")
    assert [p["dataset"] for p in plans] == ["cifar10", "cifar100"]


def test_dataset_list_from_a_file_and_templated_root(tmp_path: Path) -> None:
    (tmp_path / "suite.txt").write_text("cifar10\nvtab/flowers\n\nimagenet1k\n")
    plans = dry_run("--model_type", "internvl", "--model", "internvl_c_classification", "--pretrained", "x.pth",
                    "--dataset", str(tmp_path / "suite.txt"), "--dataset_root", "root/{dataset_cleaned}",
                    "--output", "out/{dataset}_{task}.json")
    assert [p["dataset"] for p in plans] == ["cifar10", "vtab/flowers", "imagenet1k"]
    assert plans[1]["dataset_root"] == "root/vtab-flowers"
    assert plans[1]["output"] == "out/vtab_flowers_zeroshot_classification.json"


def test_pretrained_model_pairs(tmp_path: Path) -> None:
    (tmp_path / "models.txt").write_text("ViT-B-32,ckpt/b32.pt\nViT-L-14,ckpt/l14.pt\n")
    plans = dry_run("--pretrained_model", "RN50,ckpt/rn50.pt", str(tmp_path / "models.txt"), "--dataset", "cifar10")
    assert [(p["model"], p["pretrained"]) for p in plans] == [
        ("RN50", "ckpt/rn50.pt"), ("ViT-B-32", "ckpt/b32.pt"), ("ViT-L-14", "ckpt/l14.pt")
    ]
    assert plans[0]["model_loader"] == "open_clip"


def test_auto_task_and_device_precision_defaults() -> None:
    plans = dry_run("--model_type", "internvl", "--model", "internvl_c_retrieval", "--pretrained", "x.pth",
                    "--dataset", "flickr30k", "cifar10")
    assert [p["task"] for p in plans] == ["zeroshot_retrieval", "zeroshot_classification"]
    assert plans[0]["device"] == "cpu" and plans[0]["precision"] == "fp32"  # no GPU here
    assert dry_run("--dataset", "cifar10", "--no_amp", "--device", "cuda")[0]["precision"] == "fp32"
    assert dry_run("--dataset", "cifar10", "--device", "cuda")[0]["precision"] == "fp16"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "zeroshot_segmentation"], "Invalid value for '--task'"),
        (["--task", "linear_probe"], "--task linear_probe (linear-probe evaluation) is not supported"),
        (["--no_amp", "--precision", "bf16"], "--no_amp forces fp32"),
        (["--model_type", "internvl", "--model", "internvl_x", "--pretrained", "p"], "Unknown InternVL model 'internvl_x'"),
        (["--dataset", "cifar11"], "Unknown dataset 'cifar11'. Did you mean: cifar10"),
        (["--pretrained_model", "no-comma"], "is not of the form 'model,pretrained'"),
        (["--output", "results/{dataset}"], "--output 'results/{dataset}' does not end in .json"),
        (["--output", "results/{dataset}.csv"], "Expected a JSON file name such as 'results/{dataset}_{model}.json'"),
    ],
)
def test_bad_flags_are_clear_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["eval", *args, "--dry-run"])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_auto_task_of_a_webdataset_export_under_a_parent_root(tmp_path: Path) -> None:
    """The demo's layout with the parent folder as --dataset_root (the loader reads <root>/<name>/): each
    dataset's task comes from its own dataset_type.txt."""
    from tests.data.fixtures import image_bytes, write_wds

    write_wds(tmp_path / "shapes_retrieval", [(image_bytes(0), ["a caption"])], dataset_type="retrieval")
    write_wds(tmp_path / "shapes_classification", [(image_bytes(0), 0)], classnames=["a"])
    plans = dry_run("--model_type", "internvl", "--model", "internvl_c_retrieval_hf", "--pretrained", "x",
                    "--dataset", "wds/shapes_retrieval", "wds/shapes_classification", "--dataset_root", str(tmp_path))
    assert [plan["task"] for plan in plans] == ["zeroshot_retrieval", "zeroshot_classification"]
