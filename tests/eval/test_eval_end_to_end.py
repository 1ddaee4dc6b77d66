"""`zsbench eval` end to end on the tiny models and datasets in their real on-disk formats.

Expected metrics are computed here directly (one image / one prompt at a time, brute-force
ranking), not with zsbench's eval code.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file, save_file

from tests.data.fixtures import image_bytes, write_cifar, write_coco, write_corrupt_images, write_imagenet_val, write_wds
from zsbench.cli import main
from zsbench.data.files import DatasetWarning
from zsbench.models import load_clip

CAPTIONS = {
    "COCO_val2014_000000000001.jpg": ["a red circle on the left", "a small red circle"],
    "COCO_val2014_000000000002.jpg": ["a large blue square"],
    "COCO_val2014_000000000003.jpg": ["a green triangle above a yellow square", "green and yellow", "a triangle"],
    "COCO_val2014_000000000004.jpg": ["a dog and a cat"],
    "COCO_val2014_000000000005.jpg": ["a cat", "a small dog"],
    "COCO_val2014_000000000006.jpg": ["two circles"],
}


def run_eval(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["eval", "--model_type", "internvl", "--num_workers", "0", "--quiet", *args])
    return result.exit_code, result.output


@torch.no_grad()
def embed_images(model: torch.nn.Module, transform, images: list[Image.Image]) -> torch.Tensor:
    return torch.cat([F.normalize(model.encode_image(transform(image)[None]), dim=-1) for image in images])


@torch.no_grad()
def embed_texts(model: torch.nn.Module, tokenizer, texts: list[str]) -> torch.Tensor:
    return torch.cat([F.normalize(model.encode_text(tokenizer([text])), dim=-1) for text in texts])


def test_classification_on_cifar10(tmp_path: Path, tiny_hf_folder: Path) -> None:
    images, labels = write_cifar(tmp_path / "data", count=12)
    output = tmp_path / "out" / "{dataset}_{model}_{language}.json"
    code, log = run_eval("--model", "internvl_c_classification_hf", "--pretrained", str(tiny_hf_folder),
                         "--dataset", "cifar10", "--dataset_root", str(tmp_path / "data"), "--output", str(output),
                         "--batch_size", "5", "--dump_classnames", "--dump_templates")
    assert code == 0, log
    path = tmp_path / "out" / "cifar10_internvl_c_classification_hf_en.json"
    result = json.loads(path.read_text())
    assert str(path) in log and "acc1=" in log
    assert {"dataset", "model", "pretrained", "task", "metrics", "language", "backend", "precision", "device",
            "batch_size", "env", "throughput"} <= set(result)
    assert (result["backend"], result["precision"], result["device"], result["batch_size"]) == ("torch", "fp32", "cpu", 5)
    throughput = result["throughput"]
    assert throughput["images"] == 12 and throughput["images_per_second"] > 0
    assert throughput["texts"] == 10 * len(result["templates"])
    assert throughput["wall_seconds"] >= throughput["image_encode_seconds"] > 0
    assert throughput["data_loading_seconds"] >= 0 and throughput["peak_host_memory_mb"] > 0

    model, transform, tokenizer = load_clip("internvl", "internvl_c_classification_hf", tiny_hf_folder)
    classes = []
    for name in result["classnames"]:
        prompts = embed_texts(model, tokenizer, [template.format(c=name) for template in result["templates"]])
        classes.append(F.normalize(prompts.mean(dim=0), dim=-1))
    logits = embed_images(model, transform, [Image.fromarray(image) for image in images]) @ torch.stack(classes).T
    predictions = logits.argmax(dim=1).tolist()
    assert result["metrics"]["acc1"] == pytest.approx(sum(p == t for p, t in zip(predictions, labels)) / 12)
    top5 = logits.topk(5, dim=1).indices.tolist()
    assert result["metrics"]["acc5"] == pytest.approx(sum(t in row for row, t in zip(top5, labels)) / 12)
    present = sorted(set(labels))
    recall = [sum(p == c for p, t in zip(predictions, labels) if t == c) / labels.count(c) for c in present]
    assert result["metrics"]["mean_per_class_recall"] == pytest.approx(sum(recall) / len(recall))


def test_the_result_records_where_and_how_it_ran(tmp_path: Path, tiny_hf_folder: Path) -> None:
    write_cifar(tmp_path / "data", count=4)
    changed = tmp_path / "changed"
    shutil.copytree(tiny_hf_folder, changed)
    weights = load_file(changed / "model.safetensors")
    name = sorted(weights)[-1]
    weights[name] = weights[name] + 1e-3  # one tensor fine-tuned: another checkpoint
    save_file(weights, changed / "model.safetensors")
    envs = []
    for checkpoint, out in ((tiny_hf_folder, tmp_path / "original.json"), (changed, tmp_path / "changed.json")):
        code, log = run_eval("--model", "internvl_c_classification_hf", "--pretrained", str(checkpoint), "--dataset", "cifar10",
                             "--dataset_root", str(tmp_path / "data"), "--output", str(out), "--no-cache")
        assert code == 0, log
        envs.append(json.loads(out.read_text())["env"])
    env = envs[0]
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file() and "model name" in cpuinfo.read_text():
        assert env["cpu"]["model"] in cpuinfo.read_text() and env["cpu"]["model"] != "x86_64"
    assert env["versions"]["torch"] == torch.__version__ and env["threads"]["torch"] == torch.get_num_threads()
    assert env["gpu"] is None and env["artifacts"] == {}  # torch on the CPU: no GPU, no graph or engine
    repo = Path(__file__).resolve().parents[2]
    if (repo / ".git").exists() and shutil.which("git"):
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        assert env["zsbench"]["commit"] == head
    assert len(env["checkpoint"]) == 64 and envs[1]["checkpoint"] != env["checkpoint"]
    assert {key: value for key, value in envs[1].items() if key != "checkpoint"} == {k: v for k, v in env.items() if k != "checkpoint"}
    # `zsbench build --columns` adds any of it as a column.
    table = tmp_path / "t.csv"
    built = CliRunner().invoke(main, ["build", str(tmp_path / "original.json"), str(tmp_path / "changed.json"), "--output", str(table),
                                      "--columns", "pretrained,cpu,torch,threads,checkpoint,env.cpu.count,backend"])
    assert built.exit_code == 0, built.output
    rows = {"changed" if Path(row["pretrained"]) == changed else "original": row for row in csv.DictReader(table.open())}
    assert list(next(iter(rows.values())))[:7] == ["pretrained", "cpu", "torch", "threads", "checkpoint", "env.cpu.count", "backend"]
    for checkpoint, recorded in zip(("original", "changed"), envs):
        assert rows[checkpoint]["cpu"] == recorded["cpu"]["model"] and rows[checkpoint]["torch"] == torch.__version__
        assert rows[checkpoint]["checkpoint"] == recorded["checkpoint"] and rows[checkpoint]["threads"] == str(torch.get_num_threads())


def brute_force_recall(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor, owners: list[int], k: int) -> tuple[float, float]:
    scores = text_embeddings @ image_embeddings.T
    text_hits = [scores[t, owner] >= scores[t].topk(k).values[-1] for t, owner in enumerate(owners)]
    image_hits = []
    for image in range(len(image_embeddings)):
        threshold = scores[:, image].topk(min(k, len(owners))).values[-1]
        image_hits.append(any(scores[t, image] >= threshold for t, owner in enumerate(owners) if owner == image))
    return sum(text_hits) / len(text_hits), sum(image_hits) / len(image_hits)


@pytest.mark.parametrize("model_name", ["internvl_c_retrieval_hf", "internvl_g_retrieval_hf"])
def test_retrieval_on_coco_captions(tmp_path: Path, tiny_hf_folder: Path, model_name: str) -> None:
    write_coco(tmp_path / "coco", CAPTIONS)
    code, log = run_eval("--model", model_name, "--pretrained", str(tiny_hf_folder), "--dataset", "mscoco_captions",
                         "--dataset_root", str(tmp_path / "coco"), "--output", str(tmp_path / "r.json"),
                         "--batch_size", "4", "--recall_k", "1", "2", "5")
    assert code == 0, log
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["task"] == "zeroshot_retrieval"
    assert result["throughput"]["images"] == 6 and result["throughput"]["texts"] == 10

    model, transform, tokenizer = load_clip("internvl", model_name, tiny_hf_folder)
    # pycocotools orders images by id; the fixture numbers them in reverse.
    ordered = list(reversed(list(CAPTIONS)))
    images = embed_images(model, transform, [Image.open(tmp_path / "coco" / "val2014" / name) for name in ordered])
    texts = [text for name in ordered for text in CAPTIONS[name]]
    owners = [index for index, name in enumerate(ordered) for _ in CAPTIONS[name]]
    text_embeddings = embed_texts(model, tokenizer, texts)
    for k in (1, 2, 5):
        image_recall, text_recall = brute_force_recall(images, text_embeddings, owners, k)
        assert result["metrics"][f"image_retrieval_recall@{k}"] == pytest.approx(image_recall)
        assert result["metrics"][f"text_retrieval_recall@{k}"] == pytest.approx(text_recall)


def test_a_coco_image_without_captions_is_warned_about_and_counted(tmp_path: Path, tiny_hf_folder: Path) -> None:
    """The sweep's case: a COCO image without captions silently counted as a miss of text retrieval."""
    write_coco(tmp_path / "coco", {**CAPTIONS, "COCO_val2014_000000000007.jpg": []})
    with pytest.warns(DatasetWarning, match=r"coco_test_karpathy\.json: 1 of its 7 images have no caption \(e\.g\. .*000007\.jpg\)"):
        code, log = run_eval("--model", "internvl_c_retrieval_hf", "--pretrained", str(tiny_hf_folder), "--dataset",
                             "mscoco_captions", "--dataset_root", str(tmp_path / "coco"), "--output", str(tmp_path / "r.json"),
                             "--batch_size", "4", "--recall_k", "1", "5", "10")
    assert code == 0, log
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["images_without_captions"] == 1 and result["throughput"]["images"] == 7
    assert "| 1 image(s) without captions |" in log
    assert result["metrics"]["text_retrieval_recall@10"] == pytest.approx(6 / 7)  # kept, as clip_benchmark keeps it: a miss


def test_webdataset_classification_and_retrieval(tmp_path: Path, tiny_hf_folder: Path) -> None:
    write_wds(tmp_path / "cls", [(image_bytes(i), i % 3) for i in range(7)], classnames=["red", "green", "blue"],
              templates=["a photo of {c}.", "{c}"])
    write_wds(tmp_path / "ret", [(image_bytes(i), [f"caption {i}", "another"]) for i in range(5)], dataset_type="retrieval")
    code, log = run_eval("--model", "internvl_g_classification_hf", "--pretrained", str(tiny_hf_folder),
                         "--dataset", "wds/shapes", "--dataset_root", str(tmp_path / "cls"), "--output", str(tmp_path / "c.json"))
    assert code == 0, log
    metrics = json.loads((tmp_path / "c.json").read_text())["metrics"]
    assert 0 <= metrics["acc1"] <= 1 and metrics["acc5"] != metrics["acc5"]  # 3 classes: no acc5 (NaN)
    code, log = run_eval("--model", "internvl_g_retrieval_hf", "--pretrained", str(tiny_hf_folder), "--task", "zeroshot_retrieval",
                         "--dataset", "wds/captions", "--dataset_root", str(tmp_path / "ret"), "--output", str(tmp_path / "r.json"))
    assert code == 0, log
    assert json.loads((tmp_path / "r.json").read_text())["throughput"]["texts"] == 10


def test_threads_set_torch_and_onnx_runtime_threads_and_are_recorded(tmp_path: Path, tiny_hf_folder: Path) -> None:
    """`--threads N` as in `zsbench bench`: torch's intra-op threads (which ONNX Runtime sessions on the CPU
    take too), recorded in the result's env; without it, torch's default is recorded."""
    from zsbench.runtime.onnxrt import cpu_threads

    write_wds(tmp_path / "cls", [(image_bytes(i), i % 2) for i in range(3)], classnames=["red", "green"])
    before = torch.get_num_threads()
    try:
        for threads in (1, None):
            output = tmp_path / f"threads-{threads}.json"
            code, log = run_eval("--model", "internvl_c_classification_hf", "--pretrained", str(tiny_hf_folder), "--dataset",
                                 "wds/shapes", "--dataset_root", str(tmp_path / "cls"), "--output", str(output),
                                 *(["--threads", str(threads)] if threads else []))
            assert code == 0, log
            recorded = json.loads(output.read_text())["env"]["threads"]["torch"]
            assert recorded == (threads or torch.get_num_threads()) == cpu_threads(torch.device("cpu"))
            torch.set_num_threads(before)
    finally:
        torch.set_num_threads(before)
    code, log = run_eval("--threads", "0", "--dataset", "cifar10")
    assert code == 2 and "--threads" in log and "Traceback" not in log


def test_missing_data_and_missing_weights_are_reported_together_before_any_model_loads(tmp_path: Path, tiny_hf_folder: Path) -> None:
    """One run names every missing dataset root and checkpoint, instead of one per attempt."""
    code, log = run_eval("--model", "internvl_c_classification_hf", "--pretrained", str(tmp_path / "no-checkpoint"),
                         "--dataset", "imagenet1k", "cifar10", "--dataset_root", str(tmp_path / "nowhere" / "{dataset}"))
    assert code == 1 and "Traceback" not in log
    assert "3 problems, found before any model was loaded (nothing was evaluated):" in log
    assert "1. Cannot read dataset 'imagenet1k'" in log and "2. Cannot read dataset 'cifar10'" in log
    assert f"3. Checkpoint {tmp_path / 'no-checkpoint'} does not exist." in log
    # One problem alone keeps its own message.
    code, log = run_eval("--model", "internvl_c_classification_hf", "--pretrained", str(tiny_hf_folder),
                         "--dataset", "imagenet1k", "--dataset_root", str(tmp_path / "nowhere"))
    assert code == 1 and log.startswith("Error: Cannot read dataset 'imagenet1k'") and "problems" not in log
    assert str(tmp_path / "nowhere") in log and "val" in log


def test_task_that_does_not_fit_the_dataset(tmp_path: Path, tiny_hf_folder: Path) -> None:
    write_cifar(tmp_path / "data")
    code, log = run_eval("--model", "internvl_c_retrieval_hf", "--pretrained", str(tiny_hf_folder), "--dataset", "cifar10",
                         "--task", "zeroshot_retrieval", "--dataset_root", str(tmp_path / "data"))
    assert code == 1 and "is a zeroshot_classification dataset" in log


def test_corrupt_images_fail_with_their_path_or_are_skipped_and_counted(tmp_path: Path, tiny_hf_folder: Path) -> None:
    write_imagenet_val(tmp_path / "imagenet")
    bad = write_corrupt_images(tmp_path / "imagenet" / "val" / "n01443537")
    custom = tmp_path / "templates.json"
    custom.write_text(json.dumps({"imagenet1k": ["a photo of a {c}."]}))
    common = ["--model", "internvl_c_classification_hf", "--pretrained", str(tiny_hf_folder), "--dataset", "imagenet1k",
              "--dataset_root", str(tmp_path / "imagenet"), "--custom_template_file", str(custom), "--batch_size", "16"]
    code, log = run_eval(*common, "--output", str(tmp_path / "strict.json"))
    assert code == 1 and "Cannot read image" in log and str(next(iter(bad.values())).parent) in log
    assert not (tmp_path / "strict.json").exists()
    code, log = run_eval(*common, "--output", str(tmp_path / "skip.json"), "--skip-bad-images")
    assert code == 0, log
    result = json.loads((tmp_path / "skip.json").read_text())
    assert result["skipped_images"] == 3 and result["throughput"]["images"] == 6


def test_skip_existing_resumes_an_interrupted_suite(tmp_path: Path, tiny_hf_folder: Path) -> None:
    write_cifar(tmp_path / "data", count=4)
    write_cifar(tmp_path / "data", classes=100, count=4)
    outputs = {name: tmp_path / f"{name}.json" for name in ("cifar10", "cifar100")}
    outputs["cifar10"].write_text('{"dataset": "cifar10", "metr')  # a crash mid-write in another tool
    args = ["--model", "internvl_c_classification_hf", "--pretrained", str(tiny_hf_folder), "--dataset", "cifar10", "cifar100",
            "--dataset_root", str(tmp_path / "data"), "--output", str(tmp_path / "{dataset}.json"), "--skip_existing"]
    code, log = run_eval(*args)
    assert code == 0, log
    assert "2 evaluation(s) run, 0 skipped" in log
    finished = {name: path.stat().st_mtime_ns for name, path in outputs.items()}
    code, log = run_eval(*args)
    assert code == 0 and "0 evaluation(s) run, 2 skipped" in log
    assert {name: path.stat().st_mtime_ns for name, path in outputs.items()} == finished
