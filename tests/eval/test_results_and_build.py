"""Result files are written atomically and validated; `zsbench build` tabulates them beside the paper."""

from __future__ import annotations

import csv
import json
import re
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
    assert columns[-6:] == ["images_per_second", "texts_per_second", "cached_images", "cached_texts", "wall_seconds", "file"]
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


def with_env(entry: dict, gpu: str | None, torch_version: str = "2.14.1") -> dict:
    """A result with the provenance fields `build --columns` reads (`zsbench.runtime.provenance`'s layout)."""
    return {**entry, "env": {"gpu": {"name": gpu, "compute_capability": "9.0"} if gpu else None, "cpu": {"model": "AMD EPYC 9654"},
                             "versions": {"torch": torch_version}, "artifacts": {"vision.engine": "ab" * 32}}}


def test_build_columns_add_provenance_fields(tmp_path: Path) -> None:
    results = tmp_path / "results"
    write_json_atomic(results / "gpu.json", with_env(result("cifar10", "m", "zeroshot_classification", {"acc1": 0.5}), "NVIDIA H100 80GB HBM3"))
    write_json_atomic(results / "cpu.json", with_env({**result("cifar10", "m", "zeroshot_classification", {"acc1": 0.4}),
                                                      "backend": "onnx"}, None))
    outcome = CliRunner().invoke(main, ["build", str(results), "--output", str(tmp_path / "t.csv"),
                                        "--columns", "gpu,compute_capability,backend,precision,env.versions.torch,artifacts"])
    assert outcome.exit_code == 0, outcome.output
    rows = {row["backend"]: row for row in csv.DictReader((tmp_path / "t.csv").open())}
    assert list(rows["torch"])[:7] == ["gpu", "compute_capability", "backend", "precision", "env.versions.torch", "artifacts", "acc1"]
    assert rows["torch"]["gpu"] == "NVIDIA H100 80GB HBM3" and rows["torch"]["compute_capability"] == "9.0"
    assert rows["onnx"]["gpu"] == "" and rows["onnx"]["env.versions.torch"] == "2.14.1"
    assert json.loads(rows["torch"]["artifacts"]) == {"vision.engine": "ab" * 32}
    outcome = CliRunner().invoke(main, ["build", str(results), "--output", "-", "--columns", "gpu,backend"])
    assert outcome.exit_code == 0, outcome.output
    lines = [line for line in outcome.output.splitlines() if line.startswith("|")]
    assert lines[0] == "| gpu | backend | acc1 % | images/s | texts/s |"
    assert "| - | onnx | 40.00 |" in outcome.output and "| NVIDIA H100 80GB HBM3 | torch | 50.00 |" in outcome.output


def test_build_columns_refuses_a_field_no_result_has(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "r.json", result("cifar10", "m", "zeroshot_classification", {"acc1": 0.5}))
    outcome = CliRunner().invoke(main, ["build", str(tmp_path / "r.json"), "--output", "-", "--columns", "gpu,env.gpu.nmae,gpus"])
    assert outcome.exit_code == 1 and "Traceback" not in outcome.output
    assert "--columns env.gpu.nmae, gpus: none of the 1 result(s) has it" in outcome.output and "compute_capability" in outcome.output
    known = CliRunner().invoke(main, ["build", str(tmp_path / "r.json"), "--output", "-", "--columns", "gpu,backend"])
    assert known.exit_code == 0 and "| - | torch | 50.00 |" in known.output  # a short name no result fills: empty cells


def test_strings_from_result_files_cannot_break_out_of_their_cells(tmp_path: Path) -> None:
    hostile = "A|B ![x](http://attacker.example/x.png) <script>\nnext"
    write_json_atomic(tmp_path / "r.json", with_env(result("cifar10", "m", "zeroshot_classification", {"acc1": 0.5}), hostile))
    outcome = CliRunner().invoke(main, ["build", str(tmp_path / "r.json"), "--output", "-", "--columns", "gpu"])
    (row,) = [line for line in outcome.output.splitlines() if line.startswith("| A")]
    assert row.count(" | ") == 3 and "<script>" not in row and "](" not in row.replace("\\](", "")
    write_json_atomic(tmp_path / "r.json", with_env(result("cifar10", "m", "zeroshot_classification", {"acc1": 0.5}), "=HYPERLINK(1)"))
    CliRunner().invoke(main, ["build", str(tmp_path / "r.json"), "--output", str(tmp_path / "t.csv"), "--columns", "gpu"])
    assert next(csv.DictReader((tmp_path / "t.csv").open()))["gpu"] == "'=HYPERLINK(1)"
def test_non_finite_metrics_are_shown_and_flagged_not_tabulated_as_numbers(tmp_path: Path) -> None:
    """The sweep's case: NaN and Infinity (valid in Python's JSON) were tabulated as if numbers."""
    path = tmp_path / "r.json"
    path.write_text(json.dumps(result("cifar10", "m", "zeroshot_classification",
                                      {"acc1": float("nan"), "acc5": float("inf"), "mean_per_class_recall": 0.5})))
    assert "NaN" in path.read_text() and "Infinity" in path.read_text()
    runner = CliRunner()
    outcome = runner.invoke(main, ["build", str(path), "--output", "-"])
    assert outcome.exit_code == 0, outcome.output
    (row,) = markdown_tables(outcome.stdout)["zeroshot_classification"]
    assert (row["acc1 %"], row["acc5 %"], row["mean_per_class_recall %"]) == ("NaN", "Inf", "50.00")
    assert f"warning: {path} holds non-finite metrics (acc1 NaN, acc5 Inf): shown as such" in outcome.stderr
    outcome = runner.invoke(main, ["build", str(path), "--output", str(tmp_path / "t.csv")])
    (cells,) = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert (cells["acc1"], cells["acc5"], cells["mean_per_class_recall"]) == ("NaN", "Inf", "0.5")


@pytest.mark.parametrize(("content", "message"), [
    ("[" * 100_000 + "]" * 100_000, "nests JSON arrays or objects too deeply"),
    (json.dumps({**result("cifar10", "m", "zeroshot_classification", {"acc1": 0.5}), "throughput": "fast"}),
     "'throughput' is a str, expected an object"),
    (json.dumps(result("cifar10", "m", "zeroshot_classification", {"acc1": "high"})), "metric 'acc1' is 'high', expected a number"),
    (json.dumps({**result("cifar10", "m", "zeroshot_classification", {"acc1": 0.5}), "dataset": ["cifar10"]}),
     "'dataset' is a list, expected a string"),
], ids=["deeply-nested", "throughput-string", "metric-string", "dataset-list"])
def test_malformed_results_are_skipped_with_a_warning_by_build_and_report(tmp_path: Path, content: str, message: str) -> None:
    """The sweep's tracebacks: RecursionError on deeply nested JSON, AttributeError on "throughput": "fast"."""
    write_json_atomic(tmp_path / "results" / "good.json", result("cifar10", "m", "zeroshot_classification", {"acc1": 0.5}))
    (tmp_path / "results" / "bad.json").write_text(content)
    for command in (["build", str(tmp_path / "results"), "--output", str(tmp_path / "t.md")],
                    ["report", str(tmp_path / "results"), "--out", str(tmp_path / "report")]):
        outcome = CliRunner().invoke(main, command)
        assert outcome.exit_code == 0, outcome.output
        assert "Traceback" not in outcome.output and message in outcome.stderr
        assert f"warning: skipped {tmp_path / 'results' / 'bad.json'}" in outcome.stderr


def test_build_output_is_checked_before_any_result_is_read(tmp_path: Path) -> None:
    """The sweep's case: `build --output` naming a folder (IsADirectoryError after reading every result)."""
    (tmp_path / "r.json").write_text(json.dumps(result("cifar10", "m", "zeroshot_classification", {"acc1": 1.0})))
    (tmp_path / "taken.md").mkdir()
    (tmp_path / "file").write_text("x")
    runner = CliRunner()
    for output, message in ((tmp_path / "taken.md", f"--output {tmp_path / 'taken.md'} is a folder; expected the path of a file"),
                            (tmp_path / "file" / "t.md", f"--output {tmp_path / 'file' / 't.md'}: {tmp_path / 'file'} is a file")):
        outcome = runner.invoke(main, ["build", str(tmp_path / "missing-results"), "--output", str(output)])
        assert outcome.exit_code == 1 and message in outcome.output and "Traceback" not in outcome.output, outcome.output
        assert len(outcome.output.strip().splitlines()) == 1


HOSTILE = "x|y\nz <script>alert(1)</script> ![](http://attacker.example/x.png) [link](http://attacker.example) *b* `c`"


def test_strings_from_result_files_are_escaped_in_markdown_and_csv(tmp_path: Path) -> None:
    """The sweep's unsafe cases: dataset/model strings verbatim in table.md, and =HYPERLINK(...) in a CSV."""
    hostile = result(HOSTILE, "=HYPERLINK(\"http://attacker.example\",\"click\")", "zeroshot_classification", {"acc1": 0.5})
    hostile["pretrained"] = "@SUM(1+1)"
    write_json_atomic(tmp_path / "r.json", hostile)
    runner = CliRunner()
    outcome = runner.invoke(main, ["build", str(tmp_path / "r.json"), "--output", str(tmp_path / "t.md")])
    assert outcome.exit_code == 0, outcome.output
    table = (tmp_path / "t.md").read_text()
    assert "<script>" not in table and "![](" not in table and "x|y" not in table
    assert not re.search(r"(?<!\\)\]\(", table)  # no link or image target: every bracket is escaped
    header, _, row = table.splitlines()[2:5]
    unescaped_pipes = re.compile(r"(?<!\\)\|")
    assert len(unescaped_pipes.findall(row)) == len(unescaped_pipes.findall(header))  # still one cell per column
    assert "&lt;script&gt;" in row and r"!\[\](http://attacker.example/x.png)" in row

    outcome = runner.invoke(main, ["build", str(tmp_path / "r.json"), "--output", str(tmp_path / "t.csv")])
    (cells,) = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert cells["model"] == "'=HYPERLINK(\"http://attacker.example\",\"click\")" and cells["pretrained"] == "'@SUM(1+1)"
    assert cells["dataset"] == HOSTILE and cells["acc1"] == "0.5"


def test_two_results_of_the_same_run_are_both_tabulated_with_their_files(tmp_path: Path) -> None:
    """The sweep's case: `build` showed duplicate rows with nothing to tell them apart."""
    write_json_atomic(tmp_path / "old" / "r.json", result("cifar10", "m", "zeroshot_classification", {"acc1": 0.5}))
    write_json_atomic(tmp_path / "new" / "r.json", result("cifar10", "m", "zeroshot_classification", {"acc1": 0.7}))
    write_json_atomic(tmp_path / "other.json", result("cifar100", "m", "zeroshot_classification", {"acc1": 0.2}))
    outcome = CliRunner().invoke(main, ["build", str(tmp_path), "--output", "-"])
    assert outcome.exit_code == 0, outcome.output
    assert (f"warning: {tmp_path / 'new' / 'r.json'}, {tmp_path / 'old' / 'r.json'} hold the same run" in outcome.stderr)
    rows = markdown_tables(outcome.stdout)["zeroshot_classification"]
    assert [(row["acc1 %"], row["file"]) for row in rows] == [
        ("70.00", str(tmp_path / "new" / "r.json")), ("50.00", str(tmp_path / "old" / "r.json")), ("20.00", str(tmp_path / "other.json"))]
