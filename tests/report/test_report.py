"""`zsbench report`: report.md with its PNG figures, from result files written by zsbench's own
result writer and a bench file written by `zsbench bench`'s writer; stray JSONs are skipped."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from zsbench.backends import ModelRef
from zsbench.bench import BenchConfig, BenchRow, write_rows
from zsbench.bench.rows import BenchRun
from zsbench.cli import main
from zsbench.eval.results import write_result
from zsbench.jsonfiles import write_json_atomic
from zsbench.report.figures import BENCH_HEIGHT_INCHES, DPI, WIDTH_INCHES, figure_height

DEMO = "pretrained/zsbench-demo"
CLASSIFICATION = {"acc1": 0.9605, "acc5": 1.0, "mean_per_class_recall": 0.9593}
RETRIEVAL = {f"{tower}_retrieval_recall@{k}": 0.5 + k / 40 for tower in ("image", "text") for k in (1, 5, 10)}


def eval_result(dataset: str, model: str, task: str, metrics: dict, backend: str, images_per_second: float) -> dict:
    return {
        "dataset": dataset, "model": model, "pretrained": DEMO, "task": task, "metrics": metrics, "language": "en",
        "backend": backend, "precision": "fp32", "device": "cpu", "batch_size": 128,
        "throughput": {"images_per_second": images_per_second, "texts_per_second": 9000.0, "wall_seconds": 2.0},
    }


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """The demo's eight results (C and G, classification and retrieval, torch and onnx), an
    ImageNet-1K result the paper has a number for, a `zsbench bench` file and a stray JSON."""
    folder = tmp_path / "results"
    for backend, speed in (("torch", 900.0), ("onnx", 1500.0)):
        for family in ("c", "g"):
            write_result(folder / backend / f"cls_{family}.json", eval_result(
                "wds/shapes_classification", f"internvl_{family}_classification_hf", "zeroshot_classification", CLASSIFICATION, backend, speed))
            write_result(folder / backend / f"ret_{family}.json", eval_result(
                "wds/shapes_retrieval", f"internvl_{family}_retrieval_hf", "zeroshot_retrieval", RETRIEVAL, backend, speed))
    write_result(folder / "imagenet.json", eval_result(
        "imagenet1k", "internvl_c_classification", "zeroshot_classification", {"acc1": 0.8, "acc5": 0.95, "mean_per_class_recall": 0.8}, "torch", 50.0))
    rows = [
        BenchRow(backend, precision, batch, images_per_s=100.0 * batch ** 0.5, texts_per_s=400.0 * batch ** 0.5,
                 images_vs_torch_fp32=1.0, texts_vs_torch_fp32=1.0, image_matmul_fraction=0.05 * batch ** 0.3,
                 text_matmul_fraction=0.02 * batch ** 0.3, runtime="")
        for backend in ("torch", "onnx") for precision in ("fp32", "fp16") for batch in (1, 8, 64)
    ]
    write_rows(folder / "bench" / "demo.json", BenchRun("cpu (a test CPU, 2 threads)", rows), BenchConfig(ModelRef("internvl", "internvl_c_retrieval_hf", DEMO)))
    write_json_atomic(folder / "notes.json", {"hello": "world"})
    return folder


def test_report_writes_markdown_with_its_figures(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    outcome = CliRunner().invoke(main, ["report", str(inputs), "--out", str(out)])
    assert outcome.exit_code == 0, outcome.output
    warnings = [line for line in outcome.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "notes.json" in warnings[0]
    assert sorted(path.name for path in out.iterdir()) == ["accuracy.png", "bench-demo.png", "report.md", "throughput.png"]

    markdown = (out / "report.md").read_text()
    assert re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown) == ["accuracy.png", "throughput.png", "bench-demo.png"]
    assert "9 result(s) and 1 bench run(s)" in markdown
    table_header = next(line for line in markdown.splitlines() if line.startswith("| model") and "acc1 %" in line)
    assert "| acc1 % | acc1 paper | acc1 Δ pts | acc5 % |" in table_header
    assert "| 80.00 | 83.18 | -3.18 |" in markdown  # the ImageNet-1K row beside the paper's InternVL-C number
    assert "backend precision batch" in markdown  # the bench table under its figure

    width = round(WIDTH_INCHES * DPI)
    # accuracy: 7 entries (2 classification acc1, 4 retrieval R@1 image/text, ImageNet acc1) x 3 series
    # (torch fp32, onnx fp32, paper); throughput: 5 entries x 2 series; bench: a fixed 2 x 2 grid.
    expected = {"accuracy.png": figure_height(7 * 3), "throughput.png": figure_height(5 * 2), "bench-demo.png": BENCH_HEIGHT_INCHES}
    for name, height in expected.items():
        with Image.open(out / name) as image:
            image.verify()  # a complete, valid PNG
        with Image.open(out / name) as image:
            assert image.format == "PNG"
            assert image.size[0] == width and abs(image.size[1] - height * DPI) <= 1, (name, image.size)
            assert len(image.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 10  # drawn, not blank


def test_report_of_bench_files_alone_and_of_nothing_usable(inputs: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "demo.json").write_bytes((inputs / "bench" / "demo.json").read_bytes())
    write_json_atomic(tmp_path / "other" / "empty.json", {"model": {}, "device": "cpu", "rows": []})
    outcome = runner.invoke(main, ["report", str(inputs / "bench" / "demo.json"), str(tmp_path / "other"), "--out", str(tmp_path / "bench")])
    assert outcome.exit_code == 0, outcome.output
    # Two bench files of the same name get two figures; one without rows is skipped, saying why.
    assert sorted(path.name for path in (tmp_path / "bench").iterdir()) == ["bench-demo-1.png", "bench-demo.png", "report.md"]
    assert "empty.json is not a `zsbench bench --output` file" in outcome.stderr

    outcome = runner.invoke(main, ["report", str(inputs / "notes.json"), "--out", str(tmp_path / "none")])
    assert outcome.exit_code == 1
    assert "No result of `zsbench eval` nor output of `zsbench bench`" in outcome.output
    assert not (tmp_path / "none").exists()


def _row(backend: str, precision: str, batch: int, image_fraction: float) -> BenchRow:
    return BenchRow(backend, precision, batch, images_per_s=100.0 * batch, texts_per_s=400.0 * batch, images_vs_torch_fp32=1.0,
                    texts_vs_torch_fp32=1.0, image_matmul_fraction=image_fraction, text_matmul_fraction=0.1, runtime="",
                    peak_flops_per_s=1e9, peak_measured_by=f"{backend} MatMul {precision}")


def test_a_bench_row_above_its_peak_is_flagged_and_does_not_flatten_the_others(tmp_path: Path) -> None:
    """A fraction above 100 % is a measurement bug: the table says so instead of printing the number, a
    warning names the row and its peak, and the figure keeps the other rows' scale."""
    from zsbench.bench.rows import format_table, fraction_warnings
    from zsbench.report.figures import bench_plot

    rows = [_row("torch", "fp32", batch, 0.05 * batch) for batch in (1, 2, 4)] + [_row("onnx", "fp16", 8, 55.88)]
    table = format_table(rows)
    assert ">100%!" in table and "5588" not in table and " 20.0%" in table
    (warning,) = fraction_warnings(rows)
    assert "onnx fp16 batch 8" in warning and "image encoder" in warning and "5588%" in warning and "onnx MatMul fp16" in warning
    figure = bench_plot("title", rows)
    image_fraction, text_fraction = figure.axes[2], figure.axes[3]
    assert image_fraction.get_ylim()[1] < 30 and text_fraction.get_ylim()[1] < 30  # scaled to the possible rows (at most 20 %)
    assert any("a bug" in text.get_text() for text in image_fraction.get_legend().get_texts())
    assert figure.axes[0].get_yscale() == "log"

    write_rows(tmp_path / "bench.json", BenchRun("cuda:0 (NVIDIA Test GPU)", rows), BenchConfig(ModelRef("internvl", "m", DEMO)))
    outcome = CliRunner().invoke(main, ["report", str(tmp_path / "bench.json"), "--out", str(tmp_path / "report")])
    assert outcome.exit_code == 0, outcome.output
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "on cuda:0 (NVIDIA Test GPU)]" in markdown and ">100%!" in markdown


def test_bench_files_written_before_per_runtime_peaks_still_read(tmp_path: Path) -> None:
    from dataclasses import asdict

    from zsbench.bench import read_rows

    row = {key: value for key, value in asdict(_row("torch", "fp32", 1, 0.1)).items() if not key.startswith("peak_")}
    write_json_atomic(tmp_path / "old.json", {"model": {"model": "m"}, "device": "auto", "rows": [row]})
    _, (read,) = read_rows(tmp_path / "old.json")
    assert read.peak_flops_per_s is None and read.image_matmul_fraction == 0.1
@pytest.mark.parametrize("case", ["file", "under-a-file"])
def test_report_output_folder_is_checked_before_anything_is_drawn(inputs: Path, tmp_path: Path, case: str) -> None:
    """The sweep's cases: `report --out` naming a file (FileExistsError) or a folder under a file (NotADirectoryError)."""
    (tmp_path / "file").write_text("not a folder")
    out, message = {
        "file": (tmp_path / "file", f"--output_dir {tmp_path / 'file'} is a file; expected a folder"),
        "under-a-file": (tmp_path / "file" / "report", f"--output_dir {tmp_path / 'file' / 'report'}: {tmp_path / 'file'} is a file"),
    }[case]
    outcome = CliRunner().invoke(main, ["report", str(inputs), "--out", str(out)])
    assert outcome.exit_code == 1 and message in outcome.output and "Traceback" not in outcome.output, outcome.output
    assert len(outcome.output.strip().splitlines()) == 1 and (tmp_path / "file").read_text() == "not a folder"


def test_report_names_which_of_two_results_of_the_same_run_its_figures_show(tmp_path: Path) -> None:
    """The sweep's case: `report` silently kept one of two results of the same run in its figures."""
    older, newer = tmp_path / "results" / "run1.json", tmp_path / "results" / "run2.json"
    write_result(newer, eval_result("cifar10", "internvl_c_classification_hf", "zeroshot_classification", {"acc1": 0.7}, "torch", 900.0))
    write_result(older, eval_result("cifar10", "internvl_c_classification_hf", "zeroshot_classification", {"acc1": 0.5}, "torch", 800.0))
    os.utime(older, ns=(newer.stat().st_atime_ns, newer.stat().st_mtime_ns - 10**9))  # run1.json is a second older
    outcome = CliRunner().invoke(main, ["report", str(tmp_path / "results"), "--out", str(tmp_path / "report")])
    assert outcome.exit_code == 0, outcome.output
    assert (f"warning: {newer} and {older} are all cifar10 · InternVL-C on torch fp32; the figures show {newer} "
            "(the newest file)") in outcome.stderr
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| 70.00 |" in markdown and "| 50.00 |" in markdown  # the table keeps both, with their files
    assert f"| {newer} |" in markdown and f"| {older} |" in markdown


def test_strings_from_result_files_are_escaped_in_the_report(tmp_path: Path) -> None:
    """The sweep's unsafe case: a dataset name with `|`, a newline, <script> and a remote image in report.md;
    a `$...$` in it is text in the figures, not mathtext that fails to parse."""
    hostile = "x|y\nz <script>alert(1)</script> ![](http://attacker.example/x.png) $\\nosuch{$"
    write_result(tmp_path / "r.json", eval_result(hostile, "m", "zeroshot_classification", {"acc1": 0.5}, "torch", 10.0))
    outcome = CliRunner().invoke(main, ["report", str(tmp_path / "r.json"), "--out", str(tmp_path / "report")])
    assert outcome.exit_code == 0, outcome.output
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "<script>" not in markdown and "x|y" not in markdown and "![](http" not in markdown
    assert r"z &lt;script&gt;alert(1)&lt;/script&gt; !\[\](http://attacker.example/x.png)" in markdown
