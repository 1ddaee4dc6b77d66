"""Result files are written atomically and validated; `zsbench build` tabulates them beside the paper."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from zsbench.cli import main
from zsbench.errors import ResultError
from zsbench.eval.results import read_result, why_not_reusable
from zsbench.jsonfiles import write_json_atomic


def result(dataset: str, model: str, task: str, metrics: dict, language: str = "en") -> dict:
    return {
        "dataset": dataset, "model": model, "pretrained": "./pretrained/x", "task": task, "metrics": metrics,
        "language": language, "backend": "torch", "precision": "fp16", "device": "cuda",
        "throughput": {"images_per_second": 812.5, "texts_per_second": 4000.0, "wall_seconds": 61.0},
    }


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "r.json"
    write_json_atomic(target, result("cifar10", "m", "zeroshot_classification", {"acc1": 0.5}))
    assert read_result(target)["metrics"] == {"acc1": 0.5}
    assert [p.name for p in target.parent.iterdir()] == ["r.json"]


def test_a_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    write_json_atomic(target, result("cifar10", "m", "zeroshot_classification", {"acc1": 0.5}))
    with pytest.raises(TypeError):
        write_json_atomic(target, {"not serialisable": object()})
    assert read_result(target)["metrics"] == {"acc1": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_truncated_or_foreign_files_do_not_count_as_finished(tmp_path: Path) -> None:
    (tmp_path / "truncated.json").write_text('{"dataset": "cifar10", "metr')
    (tmp_path / "other.json").write_text('{"hello": 1}')
    run = {key: result("cifar10", "m", "zeroshot_classification", {})[key]
           for key in ("model", "pretrained", "dataset", "task", "language", "backend", "precision")}
    assert "is not readable JSON" in (why_not_reusable(tmp_path / "truncated.json", run) or "")
    assert "lacks dataset, model" in (why_not_reusable(tmp_path / "other.json", run) or "")
    assert "does not exist" in (why_not_reusable(tmp_path / "missing.json", run) or "")
    with pytest.raises(ResultError, match="lacks dataset, model"):
        read_result(tmp_path / "other.json")


def test_build_csv_and_markdown_with_paper_numbers(tmp_path: Path) -> None:
    results = tmp_path / "results"
    write_json_atomic(results / "a.json", result("imagenet1k", "internvl_c_classification_hf", "zeroshot_classification",
                                            {"acc1": 0.8318, "acc5": 0.9732, "mean_per_class_recall": 0.832}))
    write_json_atomic(results / "nested" / "b.json", result("flickr30k", "internvl_g_retrieval_hf", "zeroshot_retrieval",
                                                       {"image_retrieval_recall@1": 0.85, "text_retrieval_recall@1": 0.957}, "cn"))
    runner = CliRunner()
    outcome = runner.invoke(main, ["build", str(results), "--output", str(tmp_path / "t.csv"), "--compare-paper"])
    assert outcome.exit_code == 0, outcome.output
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert len(rows) == 2
    imagenet = next(row for row in rows if row["dataset"] == "imagenet1k")
    # The paper's InternVL-C ImageNet-1K numbers (seed README), matched by model family.
    assert float(imagenet["paper_acc1"]) == 0.83178
    assert float(imagenet["delta_acc1"]) == pytest.approx(0.8318 - 0.83178)
    flickr_cn = next(row for row in rows if row["dataset"] == "flickr30k")
    assert float(flickr_cn["paper_image_retrieval_recall@1"]) == pytest.approx(0.7767999768257141)

    outcome = runner.invoke(main, ["build", str(results / "a.json"), "--output", str(tmp_path / "t.md"), "--compare-paper"])
    assert outcome.exit_code == 0, outcome.output
    table = (tmp_path / "t.md").read_text()
    assert "acc1 83.18" in table and "acc1 +0.00" in table and "812.5" in table


def test_build_rejects_bad_inputs(tmp_path: Path) -> None:
    runner = CliRunner()
    assert "does not exist" in runner.invoke(main, ["build", str(tmp_path / "nope"), "--output", "t.csv"]).output
    (tmp_path / "r.json").write_text(json.dumps(result("cifar10", "m", "zeroshot_classification", {"acc1": 1.0})))
    assert "must end in .csv or .md" in runner.invoke(main, ["build", str(tmp_path), "--output", str(tmp_path / "t.txt")]).output
