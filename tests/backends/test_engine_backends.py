"""`zsbench eval --backend onnx|trt`: artifacts found or made, wrong ones refused, parity gate, same metrics."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tests.data.fixtures import write_cifar
from zsbench.backends import BackendOptions, ModelRef, load_backend
from zsbench.cli import main
from zsbench.errors import BackendUnavailableError, ExportError, NotExportableError, ParityError, UnsupportedPrecisionError
from zsbench.eval.plan import EvalOptions, plan_runs
from zsbench.eval.runner import classification_logits, open_dataset

onnxruntime = pytest.importorskip("onnxruntime", reason="the onnx backend needs the onnx extra: pip install 'zsbench[onnx]'")


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_hf_folder: Path) -> Path:
    """A working directory with a copy of the tiny checkpoint; export/ and engines/ land here."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_hf_folder, tmp_path / "ckpt")
    return tmp_path


def eval_cifar(backend: str, output: str, *extra: str) -> dict:
    args = ["eval", "--model_type", "internvl", "--model", "internvl_c_classification_hf", "--pretrained", "ckpt",
            "--dataset", "cifar10", "--dataset_root", "data", "--output", output, "--backend", backend, "--quiet",
            "--num_workers", "0", *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return json.loads(Path(output).read_text())


def per_sample_top1(backend: str, device: str, precision: str) -> torch.Tensor:
    """Each cifar image's zero-shot top-1 class on `backend`, as eval computes it."""
    options = EvalOptions(model_type="internvl", models=("internvl_c_classification_hf",), pretrained=("ckpt",),
                          datasets=("cifar10",), dataset_root="data", backend=backend, device=device, precision=precision,
                          num_workers=0)
    (run,) = plan_runs(options)
    loaded = load_backend(backend, run.model, torch.device(device), precision)
    return classification_logits(run, open_dataset(run), loaded).argmax(1)  # type: ignore[arg-type]


def test_onnx_backend_exports_on_demand_and_matches_torch(workdir: Path) -> None:
    write_cifar(workdir / "data", count=30)
    torch_result = eval_cifar("torch", "torch.json", "--batch_size", "8")
    onnx_result = eval_cifar("onnx", "onnx.json", "--batch_size", "8")
    assert (workdir / "export" / "internvl_c_hf-ckpt-fp32" / "manifest.json").is_file()
    assert onnx_result["metrics"] == torch_result["metrics"]
    assert onnx_result["backend"] == "onnx" and onnx_result["execution_provider"] == "CPUExecutionProvider"
    assert onnx_result["onnxruntime"] and onnx_result["throughput"]["images_per_second"] > 0
    throughput = onnx_result["throughput"]
    assert throughput["first_image_call_seconds"] > 0 and throughput["steady_images_per_second"] > 0  # 4 calls: 1 + 3
    assert throughput["runtime_gpu_memory_mb"] is None  # ONNX Runtime on the CPU holds no GPU memory
    assert torch.equal(per_sample_top1("onnx", "cpu", "fp32"), per_sample_top1("torch", "cpu", "fp32"))
    # The provenance record names the graph files that produced the numbers, by their bytes.
    export = workdir / "export" / "internvl_c_hf-ckpt-fp32"
    graph_files = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in export.iterdir()
                   if path.name.endswith((".onnx", ".onnx.data"))}
    env = onnx_result["env"]
    assert env["artifacts"] == graph_files and {"vision.onnx", "text.onnx"} <= set(graph_files)
    assert env["versions"]["onnxruntime"] == onnxruntime.__version__ and env["execution_provider"] == "CPUExecutionProvider"
    assert env["threads"] == {"torch": torch.get_num_threads(), "onnxruntime": torch.get_num_threads()}
    assert torch_result["env"]["artifacts"] == {} and torch_result["env"]["checkpoint"] == env["checkpoint"]
    assert env["checkpoint"] == json.loads((export / "manifest.json").read_text())["checkpoint"]["digest"]
    # Reused, not re-exported, the second time.
    mtime = (workdir / "export" / "internvl_c_hf-ckpt-fp32" / "vision.onnx").stat().st_mtime_ns
    eval_cifar("onnx", "again.json")
    assert (workdir / "export" / "internvl_c_hf-ckpt-fp32" / "vision.onnx").stat().st_mtime_ns == mtime


def test_eval_finds_an_export_made_with_out_through_export_dir(workdir: Path) -> None:
    write_cifar(workdir / "data", count=6)
    made = CliRunner().invoke(main, ["export", "--model", "internvl_c_classification_hf", "--pretrained", "ckpt",
                                     "--precision", "fp32", "--device", "cpu", "--out", "mine/c32", "--parity_images", "20"])
    assert made.exit_code == 0, made.output
    mtime = (workdir / "mine" / "c32" / "vision.onnx").stat().st_mtime_ns
    for export_dir in ("mine/c32", "mine"):  # the export folder itself, or the folder holding it under another name
        result = eval_cifar("onnx", f"{export_dir.replace('/', '_')}.json", "--export_dir", export_dir)
        assert result["artifact"] == str(Path("mine") / "c32")
    assert not (workdir / "export").exists()  # nothing was re-exported into the default folder
    assert (workdir / "mine" / "c32" / "vision.onnx").stat().st_mtime_ns == mtime


def test_an_older_opset_export_is_used_with_a_hint_to_re_export(workdir: Path) -> None:
    from zsbench.export import ExportConfig, export_model

    ref = ModelRef("internvl", "internvl_c_retrieval_hf", "ckpt")
    folder = workdir / "export" / "internvl_c_hf-ckpt-fp32"
    export_model(ExportConfig(ref, out=folder, precision="fp32", opset=18, device="cpu"))
    messages: list[str] = []
    loaded = load_backend("onnx", ref, torch.device("cpu"), "fp32", BackendOptions(log=messages.append))
    assert loaded.encoder.describe()["artifact"] == str(Path("export") / folder.name)
    (hint,) = [m for m in messages if "opset-18 export" in m]
    assert "--force" in hint and "opset 23" in hint


def test_artifacts_of_another_checkpoint_are_refused(workdir: Path) -> None:
    ref = ModelRef("internvl", "internvl_c_retrieval_hf", "ckpt")
    load_backend("onnx", ref, torch.device("cpu"), "fp32")
    # Different weights under the same path: the export no longer describes this checkpoint.
    from safetensors.torch import load_file, save_file

    state = load_file("ckpt/model.safetensors")
    state["logit_scale"] = state["logit_scale"] + 1
    save_file(state, "ckpt/model.safetensors")
    with pytest.raises(ExportError, match="as it is on disk now"):
        load_backend("onnx", ref, torch.device("cpu"), "fp32")


def test_parity_gate_refuses_failed_or_missing_parity(workdir: Path) -> None:
    ref = ModelRef("internvl", "internvl_c_retrieval_hf", "ckpt")
    loaded = load_backend("onnx", ref, torch.device("cpu"), "fp16")
    folder = Path(loaded.encoder.folder)  # type: ignore[attr-defined]
    report = json.loads((folder / "parity.json").read_text())
    report["status"] = "failed"
    (folder / "parity.json").write_text(json.dumps(report))
    with pytest.raises(ParityError, match="failed"):
        load_backend("onnx", ref, torch.device("cpu"), "fp16")
    (folder / "parity.json").unlink()
    with pytest.raises(ParityError, match="never ran.*--no-parity-gate"):
        load_backend("onnx", ref, torch.device("cpu"), "fp16")
    assert load_backend("onnx", ref, torch.device("cpu"), "fp16", BackendOptions(parity_gate=False)).encoder.name == "onnx"


def test_unsupported_combinations_say_why(workdir: Path) -> None:
    ref = ModelRef("internvl", "internvl_c_retrieval_hf", "ckpt")
    with pytest.raises(UnsupportedPrecisionError, match="bf16 runs on --backend torch"):
        load_backend("onnx", ref, torch.device("cpu"), "bf16")
    with pytest.raises(BackendUnavailableError, match="CUDA GPU"):
        load_backend("trt", ref, torch.device("cpu"), "fp16")
    with pytest.raises(NotExportableError, match="open_clip model RN50 does not export to ONNX.* Evaluate RN50 with --backend torch"):
        load_backend("onnx", ModelRef("open_clip", "RN50", "x.pt"), torch.device("cpu"), "fp32")


@pytest.mark.gpu
@pytest.mark.trt
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
def test_trt_backend_matches_torch_on_gpu(workdir: Path) -> None:
    from zsbench.runtime.flavor import choose_flavor, gpu_target, installed_flavors

    try:  # whichever TensorRT this card can use: standard TensorRT or TensorRT-RTX
        flavor = choose_flavor("auto", gpu_target(), installed_flavors())
    except BackendUnavailableError as err:
        pytest.skip(str(err))
    write_cifar(workdir / "data", count=200)
    trt_result = eval_cifar("trt", "trt.json", "--device", "cuda", "--precision", "fp16")
    assert trt_result["backend"] == "trt" and trt_result["tensorrt"].startswith(flavor)
    memory = trt_result["throughput"]["runtime_gpu_memory_mb"]
    assert memory["tensorrt_engines_mb"] > 0 and memory["tensorrt_contexts_mb"] >= 0
    assert trt_result["throughput"]["first_image_call_seconds"] > 0
    # Per sample, not only acc1: the engines' top-1 class agrees with torch fp32 on >= 99.5% of images.
    agreement = (per_sample_top1("trt", "cuda", "fp16") == per_sample_top1("torch", "cuda", "fp32").cpu()).float().mean()
    assert agreement >= 0.995, f"top-1 agreement {agreement:.4f} with torch fp32"


def test_bench_measures_backends_side_by_side(workdir: Path) -> None:
    result = CliRunner().invoke(main, ["bench", "--model", "internvl_c_retrieval_hf", "--pretrained", "ckpt", "--backends", "torch,onnx",
                                       "--precisions", "fp32", "--batch_sizes", "1,4", "--min_seconds", "0.05", "--threads", "1",
                                       "--output", "bench.json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(Path("bench.json").read_text())["rows"]
    assert [(row["backend"], row["batch_size"]) for row in rows] == [("torch", 1), ("onnx", 1), ("torch", 4), ("onnx", 4)]
    for row in rows:
        assert row["images_per_s"] > 0 and row["texts_per_s"] > 0 and 0 < row["image_matmul_fraction"] < 1
    assert rows[0]["images_vs_torch_fp32"] == 1.0
    assert rows[1]["images_vs_torch_fp32"] == pytest.approx(rows[1]["images_per_s"] / rows[0]["images_per_s"])
    assert rows[1]["runtime"].startswith("onnxruntime=")
    assert "vs fp32" in result.output


def test_bench_random_init_needs_a_config(workdir: Path) -> None:
    result = CliRunner().invoke(main, ["bench", "--model", "internvl_c_retrieval_hf", "--pretrained", "new", "--random_init"])
    assert result.exit_code != 0 and "--random_init needs --model_config" in result.output
