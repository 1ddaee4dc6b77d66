"""scripts/readme_numbers.py: steps chosen by name, and the precision ladder's reading of what zsbench prints
(a refusal's one-line reason, the rows `zsbench bench` skips) and its accuracy cells."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "readme_numbers.py"


@pytest.fixture(scope="module")
def readme_numbers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_numbers", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def zsbench_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_an_unknown_step_is_refused_in_one_line_before_anything_runs() -> None:
    completed = subprocess.run([sys.executable, str(SCRIPT), "precision-ladder", "bench-nope"], capture_output=True, text=True)
    assert completed.returncode == 2
    error = completed.stderr.strip().splitlines()[-1]
    assert "unknown step bench-nope" in error and "precision-ladder" in error and "Traceback" not in completed.stderr


def test_a_refusal_is_returned_as_the_tools_one_line_reason(readme_numbers: ModuleType, tmp_path: Path) -> None:
    refused, errors = readme_numbers.run_zsbench(
        ["eval", "--model_type", "internvl", "--model", "internvl_c_classification_hf", "--pretrained", "pretrained/zsbench-demo",
         "--dataset", "wds/shapes_classification", "--dataset_root", str(tmp_path), "--backend", "torch", "--precision", "int8",
         "--output", str(tmp_path / "result.json")], zsbench_env())
    assert refused is not None and not refused.startswith("Error")
    assert "--precision int8" in refused and "onnx" in refused  # what it needs, and where it runs
    assert f"Error: {refused}" in errors
    assert not (tmp_path / "result.json").exists()


def test_a_failure_that_is_not_a_refusal_stops_the_script(readme_numbers: ModuleType) -> None:
    with pytest.raises(SystemExit, match="failed"):
        readme_numbers.run_zsbench(["no-such-command"], zsbench_env())


@pytest.mark.slow
def test_the_rows_bench_skips_are_read_with_their_reasons(readme_numbers: ModuleType, tmp_path: Path) -> None:
    """A real `zsbench bench`: torch int8 is skipped (the reason kept), torch fp32 is measured."""
    output = tmp_path / "bench.json"
    refused, errors = readme_numbers.run_zsbench(
        ["bench", "--model", "internvl_c_retrieval_hf", "--pretrained", "pretrained/zsbench-demo", "--backends", "torch",
         "--precisions", "fp32,int8", "--batch_sizes", "1", "--min_seconds", "0.05", "--rounds", "1", "--threads", "1",
         "--output", str(output)], zsbench_env())
    assert refused is None and output.is_file()
    skipped = readme_numbers.skipped_by_bench(errors)
    assert list(skipped) == [("torch", "int8")]
    assert "--precision int8" in skipped[("torch", "int8")] and "onnx" in skipped[("torch", "int8")]


def result(metrics: dict[str, float]) -> dict:
    return {"metrics": metrics}


def test_accuracy_cells_show_the_reference_in_percent_and_other_runs_as_changes_in_points(readme_numbers: ModuleType) -> None:
    reference = {
        "internvl_c_classification_hf": result({"acc1": 0.9605}),
        "internvl_g_classification_hf": result({"acc1": 0.9705}),
        "internvl_c_retrieval_hf": result({"image_retrieval_recall@5": 0.9705, "text_retrieval_recall@5": 0.932}),
        "internvl_g_retrieval_hf": result({"image_retrieval_recall@5": 0.9775, "text_retrieval_recall@5": 0.936}),
    }
    quantized = {
        "internvl_c_classification_hf": result({"acc1": 0.9590}),
        "internvl_g_classification_hf": result({"acc1": 0.9705}),
        "internvl_c_retrieval_hf": result({"image_retrieval_recall@5": 0.9715, "text_retrieval_recall@5": 0.930}),
        "internvl_g_retrieval_hf": result({"image_retrieval_recall@5": 0.9775, "text_retrieval_recall@5": 0.941}),
    }
    assert readme_numbers.accuracy_cells(reference, reference) == ["96.05 / 97.05", "97.05 / 97.75", "93.20 / 93.60"]
    assert readme_numbers.accuracy_cells(quantized, reference) == ["-0.15 / +0.00", "+0.10 / +0.00", "-0.20 / +0.50"]


def test_each_refusal_reason_gets_one_footnote(readme_numbers: ModuleType) -> None:
    notes = readme_numbers.Footnotes()
    cells = [notes.cell("needs a | GPU"), notes.cell("runs on onnx"), notes.cell("needs a | GPU")]
    assert cells == ["refused [1]", "refused [2]", "refused [1]"]
    assert notes.lines() == ["[1] needs a \\| GPU  ", "[2] runs on onnx  "]
