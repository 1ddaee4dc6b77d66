"""Bad input to `zsbench export`: unknown model, unreadable checkpoint, occupied folder, full disk, interruption."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from zsbench.cli import main
from zsbench.errors import EngineError, ExportError
from zsbench.export import default_export_dir
from zsbench.models import ModelRef
from zsbench.export.staging import remove_stale_staging, staged_folder

from .conftest import MODELS, export_tiny


def _export(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["export", "--device", "cpu", *args])
    return result.exit_code, result.output


def test_unknown_model_suggests_close_names(tiny_hf_folder: Path, tmp_path: Path) -> None:
    code, output = _export(["--model", "internvl_g_retreival_hf", "--pretrained", str(tiny_hf_folder), "--out", str(tmp_path / "x")])
    assert code == 1 and "Did you mean: internvl_g_retrieval_hf" in output and "Traceback" not in output
    assert not (tmp_path / "x").exists()


def test_unreadable_checkpoint_is_refused(tmp_path: Path, tiny_pth_file: Path) -> None:
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    (tmp_path / "tokenizer.model").write_bytes((tiny_pth_file.parent / "tokenizer.model").read_bytes())
    code, output = _export(["--model", "internvl_c_classification", "--pretrained", str(broken),
                            "--model_config", str(tiny_pth_file.parent / "tiny_config.json"), "--out", str(tmp_path / "x")])
    assert code == 1 and "not a readable PyTorch checkpoint" in output
    assert not (tmp_path / "x").exists()


def test_open_clip_architectures_without_vit_towers_are_not_exported(tmp_path: Path) -> None:
    code, output = _export(["--model_type", "open_clip", "--model", "RN50", "--pretrained", str(tmp_path / "none.pt")])
    assert code == 1 and "open_clip model RN50 does not export to ONNX; the open_clip models that do: " in output
    assert "ViT-B-32, ViT-B-32-256" in output and "ViT-S-32," in output and len(output.strip().splitlines()) == 1, output
    code, output = _export(["--model_type", "open_clip", "--model", "ViT-B-32", "--pretrained", str(tmp_path / "none.pt")])
    assert code == 1 and "is not a file, nor a pretrained tag of ViT-B-32" in output, output


def test_folder_with_another_models_export_needs_force(exports: dict, copy_export, tiny_hf_folder: Path) -> None:
    folder = copy_export(exports[("c", "fp32")])
    before = (folder / "manifest.json").read_text()
    code, output = _export(["--model", MODELS["g"], "--pretrained", str(tiny_hf_folder), "--precision", "fp32", "--out", str(folder)])
    assert code == 1, output
    assert f"holds the export of {MODELS['c']} (fp32)" in output and "--force" in output
    assert (folder / "manifest.json").read_text() == before
    code, output = _export(["--model", MODELS["g"], "--pretrained", str(tiny_hf_folder), "--precision", "fp32",
                            "--out", str(folder), "--force", "--parity_images", "40"])
    assert code == 0, output
    assert json.loads((folder / "manifest.json").read_text())["model_name"] == MODELS["g"]
    assert not list(folder.parent.glob(f".{folder.name}.*"))


def test_folder_with_same_model_from_another_checkpoint_needs_force(exports: dict, copy_export, tiny_hf_folder: Path) -> None:
    folder = copy_export(exports[("c", "fp32")])
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["checkpoint"]["digest"] = "f" * 64  # as if exported from other weights
    (folder / "manifest.json").write_text(json.dumps(manifest))
    code, output = _export(["--model", MODELS["c"], "--pretrained", str(tiny_hf_folder), "--precision", "fp32", "--out", str(folder)])
    assert code == 1 and "[checkpoint ffffffffffff]" in output and "--force" in output


def test_folder_with_unrelated_files_is_never_replaced(tmp_path: Path, tiny_hf_folder: Path) -> None:
    folder = tmp_path / "occupied"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    for force in ([], ["--force"]):
        code, output = _export(["--model", MODELS["c"], "--pretrained", str(tiny_hf_folder), "--out", str(folder), *force])
        assert code == 1 and "is not a zsbench export" in output
        assert (folder / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("failure", ["disk full", "interrupt"])
def test_failed_export_leaves_the_previous_export_untouched(
    exports: dict, copy_export, tiny_hf_folder: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    from torch.onnx._internal.exporter._onnx_program import ONNXProgram

    folder = copy_export(exports[("c", "fp32")])
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real_save = ONNXProgram.save

    def save_then_fail(self: ONNXProgram, destination: str | os.PathLike, **kwargs: object) -> None:
        real_save(self, destination, **kwargs)  # the first graph completes
        if Path(destination).name == "text.onnx":
            Path(destination).with_name("text.onnx.data").write_bytes(b"half")
            if failure == "interrupt":
                raise KeyboardInterrupt
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ONNXProgram, "save", save_then_fail)
    expected = KeyboardInterrupt if failure == "interrupt" else ExportError
    with pytest.raises(expected) as caught:
        export_tiny(MODELS["c"], tiny_hf_folder, folder, "fp32")
    if failure == "disk full":
        assert "disk" in str(caught.value) and "nothing was changed" in str(caught.value)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert not list(folder.parent.glob(f".{folder.name}.*"))


def test_interrupted_first_export_leaves_nothing(tiny_hf_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from zsbench.export import onnx_export

    def fail(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_export, "check_graph", fail)
    with pytest.raises(KeyboardInterrupt):
        export_tiny(MODELS["c"], tiny_hf_folder, tmp_path / "new", "fp32")
    assert list(tmp_path.iterdir()) == []


def test_staging_folders_of_dead_processes_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "artifact"
    dead = tmp_path / f".artifact.tmp-{2**22 + 12345}-abcd1234"  # above any pid_max default: never alive
    alive = tmp_path / f".artifact.tmp-{os.getpid()}-abcd1234"
    dead.mkdir()
    alive.mkdir()
    remove_stale_staging(target)
    assert not dead.exists() and alive.exists()
    with staged_folder(target) as staging:
        (staging / "file").write_text("complete")
    assert (target / "file").read_text() == "complete"


def test_default_output_folder_name() -> None:
    def folder(model: str, pretrained: str, precision: str, model_type: str = "internvl") -> Path:
        return default_export_dir(ModelRef(model_type, model, pretrained), precision)

    assert folder("internvl_c_classification", "pretrained/internvl_c_13b_224px.pth", "fp16") == Path(
        "export/internvl_c-internvl_c_13b_224px-fp16"
    )
    assert folder("internvl_g_retrieval_hf", "/w/InternVL-14B-224px", "fp32") == Path("export/internvl_g_hf-InternVL-14B-224px-fp32")
    # Both tasks of a checkpoint export the same graphs, so they share one folder.
    assert folder("internvl_c_retrieval_hf", "ckpt", "fp16") == folder("internvl_c_classification_hf", "ckpt", "fp16")
    # An open_clip export is named after its architecture.
    assert folder("ViT-B-32-quickgelu", "weights/vit_b_32.pt", "fp16", "open_clip") == Path("export/ViT-B-32-quickgelu-vit_b_32-fp16")


def test_engines_are_built_only_from_fp16_exports(exports: dict) -> None:
    from zsbench.export.trt_build import EngineConfig, build_engines

    with pytest.raises(EngineError, match="fp32 export"):
        build_engines(EngineConfig(exports[("c", "fp32")].folder))


def test_import_and_help_need_no_onnx_or_tensorrt() -> None:
    blocked = ["onnx", "onnxruntime", "onnxscript", "onnx_ir", "tensorrt", "tensorrt_rtx", "polygraphy"]
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "import zsbench, zsbench.export, zsbench.cli\n"
        "from click.testing import CliRunner\n"
        "for args in (['--help'], ['export', '--help'], ['parity', '--help'], ['engine', 'build', '--help']):\n"
        "    result = CliRunner().invoke(zsbench.cli.main, args)\n"
        "    assert result.exit_code == 0, result.output\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
