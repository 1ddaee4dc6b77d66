"""`zsbench report`'s accuracy per precision: each run at a precision other than fp32 beside the fp32 run of the
same model and dataset (its own backend's, else torch's), the difference in points, and no difference where no
fp32 run exists. The result files carry the fields `zsbench eval` writes (copied from real torch fp32, onnx fp32
and onnx int8 runs of the demo), with metric values chosen here, so every expected difference is known."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from PIL import Image

from zsbench.cli import main
from zsbench.eval.results import read_result, write_result
from zsbench.report.figures import precision_plot
from zsbench.report.precision import compare_precisions, devices_of, precision_entries

DEMO = "pretrained/zsbench-demo"
CPU = "Test CPU 9000 (AVX-512)"
CALIBRATION = {"name": "wds/shapes_classification (train, 512 images)", "samples": 512, "batches": 32, "sha256": "ab" * 32}


def result(dataset: str, model: str, backend: str, precision: str, metrics: dict[str, float], device: str = "cpu") -> dict[str, Any]:
    """A result as `zsbench eval` writes it (its keys and their types), with the metrics and run chosen by the test."""
    task = "zeroshot_retrieval" if "retrieval" in dataset else "zeroshot_classification"
    gpu = {"name": "NVIDIA Test GPU", "compute_capability": "9.0", "memory_gib": 80.0} if device.startswith("cuda") else None
    written: dict[str, Any] = {
        "dataset": dataset, "model": model, "pretrained": DEMO, "task": task, "metrics": metrics, "language": "en",
        "run": {"model_type": "internvl", "dataset_root": "data/zsbench-demo", "split": "test", "samples": 2000},
        "backend": backend, "precision": precision, "device": device, "batch_size": 128, "world_size": 1,
        "throughput": {"images": 2000, "texts": 288, "images_per_second": 400.0, "texts_per_second": 1600.0, "wall_seconds": 6.0},
        "cache": {"dir": None, "image_features": False},
        "env": {"format": "zsbench-provenance/1", "cpu": {"model": CPU, "count": 2}, "gpu": gpu, "threads": {"torch": 2}},
    }
    if backend == "onnx":
        written.update({"onnxruntime": "1.32.0", "execution_provider": "CPUExecutionProvider", "graphs_sha256": "0123456789abcdef"})
    if precision == "int8":
        written["calibration"] = {"vision": CALIBRATION, "text": CALIBRATION}
    return written


def classification(acc1: float) -> dict[str, float]:
    return {"acc1": acc1, "acc5": 1.0, "mean_per_class_recall": acc1 - 0.01}


def retrieval(image_r5: float, text_r5: float) -> dict[str, float]:
    return {"image_retrieval_recall@1": 0.5, "text_retrieval_recall@1": 0.6, "image_retrieval_recall@5": image_r5,
            "text_retrieval_recall@5": text_r5, "image_retrieval_recall@10": 0.99, "text_retrieval_recall@10": 0.98}


def write_all(folder: Path, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for number, written in enumerate(results):
        write_result(folder / f"{number}-{written.get('backend')}-{written.get('precision')}.json", written)
    return [read_result(path) for path in sorted(folder.glob("*.json"))]


def report(inputs: Path, out: Path) -> str:
    outcome = CliRunner().invoke(main, ["report", str(inputs), "--output_dir", str(out)])
    assert outcome.exit_code == 0, outcome.output
    return (out / "report.md").read_text(encoding="utf-8")


def precision_tables(markdown: str) -> dict[str, list[dict[str, str]]]:
    """The tables of the "Accuracy per precision" section: heading -> rows as {column title: cell}."""
    section = markdown.split("## Accuracy per precision", 1)[1].split("\n## ", 1)[0]
    tables = {}
    for heading, body in re.findall(r"^### (.*)\n\n((?:\|.*\n)+)", section, re.MULTILINE):
        header, _, *rows = [[cell.strip() for cell in line.strip().strip("|").split(" | ")] for line in body.splitlines()]
        tables[heading] = [dict(zip(header, row, strict=True)) for row in rows]
    return tables


def test_each_precision_is_compared_with_the_fp32_run_of_its_backend_else_torch(tmp_path: Path) -> None:
    results = write_all(tmp_path / "results", [
        result("wds/shapes_classification", "internvl_c_classification_hf", "torch", "fp32", classification(0.9605)),
        result("wds/shapes_classification", "internvl_c_classification_hf", "onnx", "fp32", classification(0.9600)),
        result("wds/shapes_classification", "internvl_c_classification_hf", "onnx", "int8", classification(0.9550)),
        # onnx int8 without an onnx fp32 run: compared with torch fp32
        result("wds/shapes_retrieval", "internvl_c_retrieval_hf", "torch", "fp32", retrieval(0.9725, 0.9320)),
        result("wds/shapes_retrieval", "internvl_c_retrieval_hf", "onnx", "int8", retrieval(0.9705, 0.9330)),
        # G ran in fp32 only: nothing to compare, so it is not in the precision section
        result("wds/shapes_classification", "internvl_g_classification_hf", "torch", "fp32", classification(0.9705)),
    ])
    markdown = report(tmp_path / "results", tmp_path / "report")

    tables = precision_tables(markdown)
    assert list(tables) == ["wds/shapes_classification", "wds/shapes_retrieval"]
    cls = {(row["backend"], row["precision"]): row for row in tables["wds/shapes_classification"]}
    assert [row["model"] for row in cls.values()] == ["internvl_c_classification_hf"] * 3  # no G row
    assert cls["torch", "fp32"]["acc1 %"] == "96.05" and cls["torch", "fp32"]["acc1 Δ pts"] == "-"
    assert cls["torch", "fp32"]["Δ against"] == cls["onnx", "fp32"]["Δ against"] == "fp32 baseline"
    assert cls["onnx", "int8"]["acc1 %"] == "95.50"
    assert cls["onnx", "int8"]["acc1 Δ pts"] == "-0.50" and cls["onnx", "int8"]["Δ against"] == "onnx fp32"  # 95.50 - 96.00
    assert cls["onnx", "int8"]["calibration"] == "wds/shapes_classification (train, 512 images) (512 samples)"
    assert cls["onnx", "int8"]["device"] == f"cpu ({CPU})" and cls["torch", "fp32"]["calibration"] == "-"

    ret = {(row["backend"], row["precision"]): row for row in tables["wds/shapes_retrieval"]}
    assert ret["onnx", "int8"]["Δ against"] == "torch fp32"
    assert ret["onnx", "int8"]["image R@5 %"] == "97.05" and ret["onnx", "int8"]["image R@5 Δ pts"] == "-0.20"  # 97.05 - 97.25
    assert ret["onnx", "int8"]["text R@5 %"] == "93.30" and ret["onnx", "int8"]["text R@5 Δ pts"] == "+0.10"  # 93.30 - 93.20

    assert f"![Accuracy per precision against fp32 on cpu ({CPU})](precision.png)" in markdown
    with Image.open(tmp_path / "report" / "precision.png") as image:
        assert image.format == "PNG" and len(image.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 10
    # The figure: titled with the CPU (not "auto"), each bar labelled with its value and its difference.
    compared = compare_precisions(results)
    figure = precision_plot(devices_of(compared), precision_entries(compared))
    (axes,) = figure.axes
    assert axes.get_title() == f"Accuracy per precision against fp32, on cpu ({CPU})"
    labels = {text.get_text().strip() for text in axes.texts}
    assert {"95.50 (-0.50 pts vs onnx fp32)", "96.00 (fp32 baseline)", "97.05 (-0.20 pts vs torch fp32)",
            "93.30 (+0.10 pts vs torch fp32)"} <= labels
    assert [tick.get_text() for tick in axes.get_yticklabels()] == [
        "wds/shapes_classification · InternVL-C · acc1", "wds/shapes_retrieval · InternVL-C · image R@5",
        "wds/shapes_retrieval · InternVL-C · text R@5"]

    table = CliRunner().invoke(main, ["build", str(tmp_path / "results"), "--output", "-"])
    assert table.exit_code == 0, table.output
    assert "| backend | precision |" in table.output and "| onnx | int8 | 95.50 |" in table.output


def test_runs_without_an_fp32_baseline_say_so_and_get_no_difference(tmp_path: Path) -> None:
    """A GPU folder with torch fp16 and onnx int8 but no fp32 run; a folder of fp32 runs and of a result that records
    no precision gets no precision section."""
    results = write_all(tmp_path / "results", [
        result("wds/shapes_classification", "internvl_c_classification_hf", "torch", "fp16", classification(0.9600), "cuda:0"),
        result("wds/shapes_classification", "internvl_c_classification_hf", "onnx", "int8", classification(0.9550), "cuda:0"),
    ])
    markdown = report(tmp_path / "results", tmp_path / "report")
    (rows,) = precision_tables(markdown).values()
    assert [(row["precision"], row["acc1 %"], row["acc1 Δ pts"], row["Δ against"]) for row in rows] == [
        ("fp16", "96.00", "-", "none: no fp32 run of this backend or of torch"),
        ("int8", "95.50", "-", "none: no fp32 run of this backend or of torch"),
    ]
    compared = compare_precisions(results)
    figure = precision_plot(devices_of(compared), precision_entries(compared))
    assert figure.axes[0].get_title() == "Accuracy per precision against fp32, on cuda:0 (NVIDIA Test GPU)"
    assert {text.get_text().strip() for text in figure.axes[0].texts} == {
        "96.00 (none: no fp32 run of this backend or of torch)", "95.50 (none: no fp32 run of this backend or of torch)"}

    clip_benchmark = {key: value for key, value in result("wds/shapes_classification", "internvl_c_classification_hf", "torch", "fp32",
                                                         classification(0.95)).items() if key not in ("backend", "precision")}
    write_all(tmp_path / "fp32", [
        *(result("wds/shapes_classification", "internvl_c_classification_hf", backend, "fp32", classification(0.96)) for backend in ("torch", "onnx")),
        clip_benchmark,  # CLIP_benchmark's own result: no backend, no precision
    ])
    markdown = report(tmp_path / "fp32", tmp_path / "fp32-report")
    assert "Accuracy per precision" not in markdown and not (tmp_path / "fp32-report" / "precision.png").exists()


def test_strings_from_result_files_are_escaped_in_the_precision_section(tmp_path: Path) -> None:
    hostile = "x|y\nz <script>alert(1)</script> ![](http://attacker.example/x.png) $\\nosuch{$"
    fp32 = result(hostile, "m|<b>", "torch", "fp32", classification(0.9))
    int8 = result(hostile, "m|<b>", "onnx", "int8", classification(0.8))
    int8["calibration"]["vision"] = {**CALIBRATION, "name": "[click](http://attacker.example) <img src=x>"}
    write_all(tmp_path / "results", [fp32, int8])
    markdown = report(tmp_path / "results", tmp_path / "report")
    section = markdown.split("## Accuracy per precision", 1)[1]
    assert "<script>" not in section and "x|y" not in section and "![](http" not in section and "<img" not in section
    (heading,) = precision_tables(markdown)
    assert heading == r"x\|y z &lt;script&gt;alert(1)&lt;/script&gt; !\[\](http://attacker.example/x.png) $\\nosuch{$"
    (rows,) = precision_tables(markdown).values()
    assert [row["model"] for row in rows] == [r"m\|&lt;b&gt;"] * 2
    assert rows[1]["calibration"].startswith(r"\[click\](http://attacker.example) &lt;img src=x&gt; (512 samples)")
    assert rows[1]["acc1 Δ pts"] == "-10.00"  # 80 - 90: the hostile names still group the two runs
    assert (tmp_path / "report" / "precision.png").stat().st_size > 0  # `$...$` drawn as text, not parsed as mathtext
