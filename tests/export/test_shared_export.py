"""One export per graph: a checkpoint's `*_classification_hf` and `*_retrieval_hf` names export
byte-identical graphs, so the second name finds and runs the first one's export (with its own
image transform) instead of exporting and parity-checking the same graphs again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tests.data.fixtures import image_bytes, write_wds
from zsbench.backends import load_backend
from zsbench.cli import main
from zsbench.eval.cache import transform_description
from zsbench.export import ExportConfig, ProbeConfig, export_model
from zsbench.models import ModelRef, load_clip

pytest.importorskip("onnxruntime", reason="exports are checked with ONNX Runtime: pip install 'zsbench[onnx]'")


def test_classification_and_retrieval_names_export_identical_graphs(tmp_path: Path, tiny_hf_folder: Path) -> None:
    folders = {}
    for model in ("internvl_c_classification_hf", "internvl_c_retrieval_hf"):
        config = ExportConfig(ModelRef("internvl", model, str(tiny_hf_folder)), out=tmp_path / model, precision="fp32",
                              device="cpu", probes=ProbeConfig(num_images=4))
        folders[model] = export_model(config).folder
    first, second = folders.values()
    names = sorted(path.name for path in first.iterdir() if path.suffix in (".onnx", ".data"))
    assert names == ["text.onnx", "text.onnx.data", "vision.onnx", "vision.onnx.data"]
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_the_retrieval_name_runs_the_classification_export(tmp_path: Path, tiny_hf_folder: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_hf_folder, tmp_path / "ckpt")
    samples = [(image_bytes(index, "PNG", (24, 12)), [f"a red circle {index}", "a small dog"]) for index in range(6)]
    write_wds(tmp_path / "data", samples, dataset_type="retrieval", image_field="png")

    def run(model: str, backend: str) -> tuple[dict, str]:
        args = ["eval", "--model_type", "internvl", "--model", model, "--pretrained", "ckpt", "--dataset", "wds/pairs",
                "--dataset_root", "data", "--output", f"{model}-{backend}.json", "--backend", backend,
                "--num_workers", "0", "--task", "zeroshot_retrieval", "--no-cache"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        return json.loads(Path(f"{model}-{backend}.json").read_text()), result.output

    _, log = run("internvl_c_classification_hf", "onnx")
    assert "exporting it now" in log
    retrieval, log = run("internvl_c_retrieval_hf", "onnx")
    assert "exporting it now" not in log
    assert [path.name for path in (tmp_path / "export").iterdir()] == ["internvl_c_hf-ckpt-fp32"]
    assert retrieval["artifact"] == str(Path("export") / "internvl_c_hf-ckpt-fp32")
    reference, _ = run("internvl_c_retrieval_hf", "torch")
    assert retrieval["metrics"] == pytest.approx(reference["metrics"], abs=1e-6)
    # Each task gets its own transform (retrieval squashes, classification crops) over the shared graphs, the
    # transform PyTorch's model gets for that task.
    loaded = load_backend("onnx", ModelRef("internvl", "internvl_c_retrieval_hf", "ckpt"), torch.device("cpu"), "fp32")
    shown = {}
    for task in ("zeroshot_retrieval", "zeroshot_classification"):
        shown[task] = transform_description(loaded.transform(task))
        assert shown[task] == transform_description(load_clip("internvl", "internvl_c_classification_hf", "ckpt", task=task)[1])
    assert shown["zeroshot_retrieval"] != shown["zeroshot_classification"]
