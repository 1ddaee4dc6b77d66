"""open_clip's ViT architectures export like InternVL, through the same code path: their own family's export
spec, ONNX fp32 and fp16 graphs through the same parity gate, TensorRT-RTX engines ahead of time, and
`zsbench eval --backend onnx` giving `--backend torch`'s metrics. The weights are random
(`open_clip.create_model(name)` saved to a file: nothing is downloaded); the exports are made once per
module, in a project folder's default export location, where `eval` and `bench` find them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tests.data.fixtures import image_bytes, write_wds
from zsbench.cli import main
from zsbench.export import ExportConfig, ExportResult, ProbeConfig, export_model
from zsbench.export.store import default_export_dir
from zsbench.models import ModelRef

from .test_trt import FLAVOR, needs_builder

open_clip = pytest.importorskip("open_clip")

ARCHITECTURES = ("ViT-S-32", "ViT-B-32")
PRECISIONS = ("fp32", "fp16")
# Fewer probes than the default 200 images: a ViT-B-32 text tower costs ~6 GFLOP per 77-token prompt.
PROBES = ProbeConfig(num_images=50, num_classes=10, num_templates=4)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder: `pretrained/` holds the random checkpoints, `export/` their exports."""
    folder = tmp_path_factory.mktemp("open_clip_project")
    for name in ARCHITECTURES:
        torch.manual_seed(0)
        model = open_clip.create_model(name)  # open_clip's own initialisation, no pretrained tag: no download
        (folder / "pretrained").mkdir(exist_ok=True)
        torch.save(model.state_dict(), folder / "pretrained" / f"{name.lower()}.pt")
    return folder


def _ref(project: Path, name: str) -> ModelRef:
    return ModelRef("open_clip", name, str(project / "pretrained" / f"{name.lower()}.pt"))


@pytest.fixture(scope="module")
def exports(project: Path) -> dict[tuple[str, str], ExportResult]:
    """(architecture, precision) -> its export, in the project's default export folder."""
    results = {}
    for name in ARCHITECTURES:
        ref = _ref(project, name)
        for precision in PRECISIONS:
            out = default_export_dir(ref, precision, root=project / "export")
            results[(name, precision)] = export_model(ExportConfig(ref, out=out, precision=precision, device="cpu", probes=PROBES))
    return results


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_vit_architectures_export_and_pass_parity(exports: dict, name: str, precision: str) -> None:
    result = exports[(name, precision)]
    assert result.parity, result.parity.summary()
    assert result.folder.name == f"{name}-{name.lower()}-{precision}"
    manifest = result.manifest
    assert (manifest.model_type, manifest.graph, manifest.precision) == ("open_clip", name, precision)
    assert manifest.opset == {"fp32": 23, "fp16": 18}[precision]
    # open_clip adds a positional table of the context length: the text graph takes every text padded to it.
    assert manifest.graphs["text"].inputs[0].shape == ("batch", 77)
    assert manifest.graphs["vision"].inputs[0].shape == ("batch", 3, 224, 224)
    assert list(manifest.preprocess["mean"]) == list(open_clip.OPENAI_DATASET_MEAN)
    if precision == "fp16":
        assert any("LayerNormalization" in line for line in manifest.graph_policy["vision"])
        cosine = min(graph.min_cosine for graph in result.parity.graphs if graph.min_cosine is not None)
        assert cosine >= 0.999


def _write_dataset(root: Path) -> None:
    classnames = ["red square", "green circle", "blue triangle", "yellow star", "black line", "white dot"]
    samples = [(image_bytes(index, "PNG", (40, 30)), index % len(classnames)) for index in range(12)]
    write_wds(root, samples, classnames=classnames, templates=["a photo of a {c}.", "a drawing of a {c}."], image_field="png")


def _eval(backend: str, precision: str, checkpoint: str) -> dict:
    args = ["eval", "--model_type", "open_clip", "--model", "ViT-B-32", "--pretrained", checkpoint, "--dataset", "wds/shapes",
            "--dataset_root", "data", "--task", "zeroshot_classification", "--backend", backend, "--precision", precision,
            "--device", "cpu", "--num_workers", "0", "--no-cache", "--output", f"{backend}-{precision}.json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "exporting it now" not in result.output  # found in the project's export/, not made again
    return json.loads(Path(f"{backend}-{precision}.json").read_text())


def test_eval_on_onnx_gives_torch_metrics_at_fp32(exports: dict, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    _write_dataset(project / "data")
    checkpoint = f"pretrained/{'ViT-B-32'.lower()}.pt"
    torch_result, onnx_result = _eval("torch", "fp32", checkpoint), _eval("onnx", "fp32", checkpoint)
    assert onnx_result["artifact"] == str(Path("export") / exports[("ViT-B-32", "fp32")].folder.name)
    assert onnx_result["metrics"] == pytest.approx(torch_result["metrics"], abs=1e-6)
    assert {key: onnx_result[key] for key in ("dataset", "model", "pretrained", "task", "language")} == {
        key: torch_result[key] for key in ("dataset", "model", "pretrained", "task", "language")}


def test_bench_measures_the_onnx_export(exports: dict, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    args = ["bench", "--model_type", "open_clip", "--model", "ViT-S-32", "--pretrained", "pretrained/vit-s-32.pt",
            "--backends", "torch,onnx", "--precisions", "fp32", "--batch_sizes", "2", "--min_seconds", "0.05", "--rounds", "1",
            "--device", "cpu", "--output", "bench.json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(Path("bench.json").read_text())["rows"]
    assert [(row["backend"], row["precision"]) for row in rows] == [("torch", "fp32"), ("onnx", "fp32")]
    assert all(row["images_per_s"] > 0 and row["texts_per_s"] > 0 for row in rows)
    assert f"artifact=export/{exports[('ViT-S-32', 'fp32')].folder.name}" in rows[1]["runtime"]


@pytest.mark.trt
@needs_builder
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_engines_build_from_the_fp16_graphs(exports: dict, tmp_path: Path, name: str) -> None:
    from zsbench.export.trt_build import EngineConfig, build_engines

    result = build_engines(EngineConfig(exports[(name, "fp16")].folder, out=tmp_path / "engines", flavor=FLAVOR,
                                        batch_profiles=((1, 4, 8),), probes=PROBES))
    manifest = result.manifest
    assert all((tmp_path / "engines" / file).stat().st_size > 0 for file in manifest.engines.values())
    # The text graph's length is fixed (77): its profile spans batches only.
    (text,) = manifest.profiles["text"]
    assert (text.min, text.opt, text.max) == ((1, 77), (4, 77), (8, 77))
    assert result.parity.status == ("passed" if torch.cuda.is_available() else "not run"), result.parity.summary()


def test_models_lists_the_exporting_architectures() -> None:
    output = CliRunner().invoke(main, ["models"]).output
    line = next(line for line in output.splitlines() if "export to ONNX and TensorRT" in line)
    assert "ViT-B-32," in line and "ViT-S-32," in line and "ViT-L-14-quickgelu," in line
    assert "RN50" not in line and "convnext" not in line and "EVA" not in line and "roberta" not in line
