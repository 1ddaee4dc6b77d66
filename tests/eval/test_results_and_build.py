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
    assert "is not readable JSON" in (why_not_reusable(tmp_path / "truncated.json", run, {}) or "")
    assert "lacks dataset, model" in (why_not_reusable(tmp_path / "other.json", run, {}) or "")
    assert "does not exist" in (why_not_reusable(tmp_path / "missing.json", run, {}) or "")
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
    header, rule, row = (tmp_path / "t.md").read_text().splitlines()[2:5]
    cells = dict(zip(header.strip("|").split(" | "), row.strip("|").split(" | ")))
    assert cells["acc1 %"] == "83.18" and cells["images/s"] == "812.5"
    assert [cell for cell in cells if cell.endswith("paper")] == ["acc1 paper", "acc5 paper", "mean_per_class_recall paper"]


def markdown_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """The `**task**` sections of `build`'s Markdown, each as a list of {column: cell}."""
    tables = {}
    for section in text.split("**")[1::2]:
        lines = text.split(f"**{section}**", 1)[1].strip().splitlines()
        rows = [line for line in lines if line.startswith("|")]
        header = [cell.strip() for cell in rows[0].strip("|").split("|")]
        tables[section] = [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")))) for line in rows[2:]]
    return tables


def test_build_has_one_column_per_metric_with_paper_and_delta_beside_it(tmp_path: Path) -> None:
    results = tmp_path / "results"
    write_json_atomic(results / "in1k.json", result("imagenet1k", "internvl_c_classification_hf", "zeroshot_classification",
                                               {"acc1": 0.8418, "acc5": 0.9732, "mean_per_class_recall": 0.832}))
    write_json_atomic(results / "c10.json", result("cifar10", "internvl_c_classification_hf", "zeroshot_classification",
                                              {"acc1": 0.99, "acc5": 1.0, "mean_per_class_recall": 0.99}))
    write_json_atomic(results / "coco.json", result("mscoco_captions", "internvl_g_retrieval_hf", "zeroshot_retrieval",
                                               {"image_retrieval_recall@1": 0.5, "text_retrieval_recall@1": 0.7}))
    runner = CliRunner()
    outcome = runner.invoke(main, ["build", str(results), "--output", str(tmp_path / "t.csv"), "--compare-paper"])
    assert outcome.exit_code == 0, outcome.output
    with (tmp_path / "t.csv").open() as handle:
        reader = csv.DictReader(handle)
        columns, rows = reader.fieldnames, list(reader)
    assert columns[:8] == ["model", "pretrained", "dataset", "language", "task", "backend", "precision", "device"]
    assert columns[8:11] == ["acc1", "paper_acc1", "delta_acc1"]
    assert columns.index("image_retrieval_recall@1") + 1 == columns.index("paper_image_retrieval_recall@1")
    assert columns[-4:] == ["images_per_second", "texts_per_second", "wall_seconds", "file"]
    assert [row["dataset"] for row in rows] == ["cifar10", "imagenet1k", "mscoco_captions"]  # sorted by task, dataset
    assert float(rows[1]["delta_acc1"]) == pytest.approx(0.8418 - 0.83178)

    outcome = runner.invoke(main, ["build", str(results), "--output", "-", "--compare-paper"])
    assert outcome.exit_code == 0, outcome.output
    tables = markdown_tables(outcome.stdout)
    assert list(tables) == ["zeroshot_classification", "zeroshot_retrieval"]
    classification = tables["zeroshot_classification"]
    assert list(classification[0])[6:10] == ["acc1 %", "acc1 paper", "acc1 Δ pts", "acc5 %"]
    imagenet = classification[1]
    assert (imagenet["dataset"], imagenet["acc1 %"], imagenet["acc1 paper"], imagenet["acc1 Δ pts"]) == ("imagenet1k", "84.18", "83.18", "+1.00")
    assert classification[0]["acc1 paper"] == "99.35"  # InternVL-C on CIFAR-10 in the paper (seed README)
    assert list(tables["zeroshot_retrieval"][0])[6:9] == ["image R@1 %", "image R@1 paper", "image R@1 Δ pts"]
    assert "3 result(s)" in outcome.stderr


def test_a_stray_json_is_skipped_with_one_warning(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "r.json", result("cifar10", "m", "zeroshot_classification", {"acc1": 0.5}))
    write_json_atomic(tmp_path / "manifest.json", {"format": "something else"})
    (tmp_path / "broken.json").write_text("{")
    outcome = CliRunner().invoke(main, ["build", str(tmp_path), "--output", str(tmp_path / "t.csv")])
    assert outcome.exit_code == 0, outcome.output
    warnings = [line for line in outcome.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2
    assert any("manifest.json" in line and "lacks dataset" in line for line in warnings)
    assert any("broken.json" in line and "not readable JSON" in line for line in warnings)
    assert "1 result(s)" in outcome.stdout
    assert len(list(csv.DictReader((tmp_path / "t.csv").open()))) == 1


def test_build_rejects_bad_inputs(tmp_path: Path) -> None:
    runner = CliRunner()
    assert "does not exist" in runner.invoke(main, ["build", str(tmp_path / "nope"), "--output", "t.csv"]).output
    (tmp_path / "r.json").write_text(json.dumps(result("cifar10", "m", "zeroshot_classification", {"acc1": 1.0})))
    assert "must end in .csv or .md" in runner.invoke(main, ["build", str(tmp_path), "--output", str(tmp_path / "t.txt")]).output
