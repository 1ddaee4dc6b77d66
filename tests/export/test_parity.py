"""The parity check itself: it can fail, it says where, its report round-trips, the CLI reruns it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

from zsbench.cli import main
from zsbench.errors import ParityError
from zsbench.export import ParityReport, ParityThresholds, ProbeConfig, check_export_parity
from zsbench.export.parity import GraphParity
from zsbench.export.probes import IMAGE_KINDS, TextPadding, build_probes, imagenet_prompts, synthetic_image


def _perturb_largest_weight(graph: Path, scale: float) -> str:
    """Adds noise to the graph's largest initializer, in its external-data file (the graph proto is untouched)."""
    proto = onnx.load(str(graph), load_external_data=False)
    tensor = max(proto.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    location = {entry.key: entry.value for entry in tensor.external_data}
    offset, length = int(location["offset"]), int(location["length"])
    data_file = graph.parent / location["location"]
    dtype = numpy_helper.helper.tensor_dtype_to_np_dtype(tensor.data_type)
    with open(data_file, "r+b") as handle:
        handle.seek(offset)
        values = np.frombuffer(handle.read(length), dtype=dtype).copy()
        rng = np.random.default_rng(0)
        values += (scale * np.abs(values).mean() * rng.standard_normal(values.shape)).astype(dtype)
        handle.seek(offset)
        handle.write(values.tobytes())
    return tensor.name


def test_perturbed_graph_is_rejected_and_named(exports: dict, copy_export) -> None:
    folder = copy_export(exports[("c", "fp16")])
    _perturb_largest_weight(folder / "vision.onnx", scale=0.5)
    report = check_export_parity(folder, device="cpu")
    assert not report and report.status == "failed"
    vision, text = report.graph("vision"), report.graph("text")
    assert not vision.passed and text.passed
    assert "cosine" in vision.reason and vision.worst and vision.worst[0].startswith("image ")
    assert json.loads((folder / "manifest.json").read_text())["parity_passed"] is False
    saved = json.loads((folder / "parity.json").read_text())
    assert saved["passed"] is False and saved["graphs"]["vision"]["passed"] is False and saved["graphs"]["text"]["passed"] is True
    with pytest.raises(ParityError) as caught:
        report.raise_if_failed()
    assert caught.value.report is report
    assert "vision: failed" in str(caught.value) and "worst: image" in str(caught.value)


def test_small_perturbation_still_fails_fp32_thresholds(exports: dict, copy_export) -> None:
    folder = copy_export(exports[("g", "fp32")])
    _perturb_largest_weight(folder / "text.onnx", scale=0.01)
    result = CliRunner().invoke(main, ["parity", "--artifact", str(folder), "--device", "cpu"])
    assert result.exit_code == 1, result.output
    assert "text: failed" in result.output and "worst: text" in result.output and "Traceback" not in result.output


def test_parity_cli_reruns_a_passing_check_showing_its_progress(exports: dict) -> None:
    """One progress line per stage on stderr (the reference, then each graph), none with -q."""
    folder = exports[("g", "fp16")].folder
    result = CliRunner().invoke(main, ["parity", "--artifact", str(folder), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.stdout and "zero_shot: passed" in result.stdout
    stages = [line for line in result.stderr.splitlines() if line.startswith("Parity: ")]
    assert [line.split(":")[1].split()[0] for line in stages] == ["PyTorch", "vision.onnx", "text.onnx"], result.stderr
    assert "200 probe images" in stages[0] and "prompts" in stages[2]
    quiet = CliRunner().invoke(main, ["parity", "--artifact", str(folder), "--device", "cpu", "-q"])
    assert quiet.exit_code == 0 and quiet.stderr == "" and "PASSED" in quiet.stdout


def test_parity_cli_refuses_a_changed_checkpoint(exports: dict, copy_export, tmp_path: Path) -> None:
    folder = copy_export(exports[("c", "fp32")])
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["checkpoint"]["digest"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(main, ["parity", "--artifact", str(folder), "--device", "cpu"])
    assert result.exit_code == 1 and "changed since it was exported" in result.output


def test_report_round_trips_and_is_truthy_only_when_passing(exports: dict) -> None:
    report = exports[("g", "fp16")].parity
    assert ParityReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    assert bool(report) is True
    failed = ParityReport(**{**report.__dict__, "status": "failed"})
    not_run = ParityReport.not_run("engines/x", "tensorrt-rtx", "fp16", "no GPU")
    assert not failed and not not_run
    not_run.raise_if_failed()  # a check that could not run is not a failure
    assert "not run (no GPU)" in not_run.summary()
    assert GraphParity.from_dict(report.graph("vision").to_dict()) == report.graph("vision")


def test_default_thresholds() -> None:
    assert ParityThresholds.for_precision("fp32") == ParityThresholds(0.99999, 1.0, 0.995)
    assert ParityThresholds.for_precision("fp16") == ParityThresholds(0.999, 0.99, 0.995)


def test_probes_are_deterministic_and_varied(tiny_hf_folder: Path) -> None:
    from zsbench.models import load_clip

    _, transform, tokenizer = load_clip("internvl", "internvl_c_classification_hf", tiny_hf_folder)
    config = ProbeConfig(num_images=12, num_classes=6, num_templates=4)
    padding = TextPadding(context_length=80, pad_id=0)  # what a text graph of any length gets (InternVL's)
    first, second = build_probes(transform, tokenizer, config, padding), build_probes(transform, tokenizer, config, padding)
    assert (first.pixels == second.pixels).all() and first.texts == second.texts
    assert first.pixels.shape == (12, 3, 32, 32)
    assert {name.split()[0] for name in first.image_names} == set(IMAGE_KINDS)
    assert {name.split()[-1] for name in first.image_names} == {"RGB", "L", "RGBA"}
    assert {b - a for a, b in first.image_batches} >= {1, 2, 5}
    lengths = {batch.input_ids.shape[1] for batch in first.text_batches}
    assert len(lengths) > 1 and 80 in lengths  # padded to the longest, and to the full context
    padded = next(batch for batch in first.text_batches if batch.input_ids.shape[1] == 80)
    assert (padded.input_ids == tokenizer([first.texts[i] for i in padded.indices], pad_to=80)).all()
    classnames, templates = imagenet_prompts(6, 4)
    assert classnames[0] == "tench" and "{c}" in templates[0]
    assert first.texts[0] == templates[0].format(c="tench") and len(first.texts) == 24
    image = synthetic_image("shapes", 50, 70, np.random.default_rng(0))
    assert image.size == (50, 70) and image.mode == "RGB"
