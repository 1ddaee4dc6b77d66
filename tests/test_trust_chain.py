"""Issue 11's trust chain, as a user meets it: bad weights, results, outputs, configs, checkpoints and data
never end in a score, a traceback or a lost result.

Every case runs `zsbench` (click's CliRunner, or a subprocess where a signal, a resource limit, a mount or
the network is involved) on fixtures generated here, and asserts the exit code, the specific message, and
that no result file is left (or the previous one, byte for byte). Items 1-2 of the issue (artifact digests,
parity reports) need real exports and engines, and are tested beside them in tests/export/test_artifact_trust.py.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from tests.data.fixtures import image_bytes, write_cifar, write_class_folders, write_corrupt_images, write_wds
from zsbench.cli import main
from zsbench.data.files import DatasetWarning
from zsbench.errors import ZsbenchError
from zsbench.models import load_clip

REPO = Path(__file__).resolve().parents[1]
MODEL = "internvl_c_classification_hf"
FER_CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


def zsbench(*args: str) -> tuple[int, str]:
    """`zsbench ARGS` in this process: (exit code, stdout and stderr)."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def eval_args(pretrained: Path, data: Path, output: Path | str, *extra: str) -> list[str]:
    return ["eval", "--model_type", "internvl", "--model", MODEL, "--pretrained", str(pretrained), "--dataset", "cifar10",
            "--dataset_root", str(data), "--output", str(output), "--num_workers", "0", "--quiet", "--batch_size", "4", *extra]


def zsbench_process(*args: str, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.Popen:
    """`python -m zsbench ARGS` as a child process of this checkout (stdout and stderr piped together)."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "zsbench", *args], env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def cifar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    write_cifar(root, count=6)
    return root


def edited_checkpoint(source: Path, target: Path, edit: object) -> Path:
    """A copy of the HF folder `source` whose weights `edit(state)` changed (in place)."""
    shutil.copytree(source, target)
    state = load_file(target / "model.safetensors")
    edit(state)  # type: ignore[operator]
    save_file(state, str(target / "model.safetensors"), metadata={"format": "pt"})
    return target


# 3. Non-finite outputs are an error, not a result.

def _fill(key: str, value: float) -> object:
    return lambda state: state[key].fill_(value)


def _scale(key: str, factor: float) -> object:
    return lambda state: state[key].mul_(factor)


@pytest.mark.parametrize(("edit", "precision", "message"), [
    (_fill("clip_projector.cross_attn.proj.weight", math.nan), "fp32", "The image encoder returned NaN embeddings in batch 0"),
    (_fill("text_projection", 1e38), "fp32", "The text encoder returned"),
    # Finite in fp32 (the same checkpoint scores there), beyond fp16's 65504 after the last projection.
    (_scale("clip_projector.cross_attn.proj.weight", 3e4), "fp16", "The image encoder returned Inf embeddings in batch 0"),
], ids=["nan-weights", "1e38-weights", "fp16-overflow"])
def test_non_finite_embeddings_stop_the_run_and_keep_the_old_result(
    tmp_path: Path, tiny_hf_folder: Path, cifar: Path, edit: object, precision: str, message: str
) -> None:
    broken = edited_checkpoint(tiny_hf_folder, tmp_path / "broken", edit)
    output = tmp_path / "result.json"
    output.write_bytes(b'{"an": "older result"}\n')
    code, log = zsbench(*eval_args(broken, cifar, output, "--precision", precision, "--device", "cpu"))
    assert code == 1, log
    assert message in log and f"on backend torch ({precision}, cpu)" in log and "no result was written" in log
    assert "Traceback" not in log
    assert output.read_bytes() == b'{"an": "older result"}\n'
    if precision == "fp16":  # the overflow is fp16's: fp32 computes finite embeddings from these weights
        code, log = zsbench(*eval_args(broken, cifar, tmp_path / "fp32.json", "--precision", "fp32", "--device", "cpu"))
        assert code == 0, log


# 4. --skip_existing skips only the same finished run.

@pytest.mark.parametrize(("change", "reason"), [
    ({"precision": "fp16"}, "it holds another run: precision 'fp16' (this run: 'fp32')"),
    ({"backend": "onnx"}, "it holds another run: backend 'onnx' (this run: 'torch')"),
    ({"language": "it"}, "it holds another run: language 'it' (this run: 'en')"),
    ({"pretrained": "other/checkpoint"}, "it holds another run: pretrained 'other/checkpoint'"),
    ({"metrics": {}}, "its metrics are empty"),
    ({"metrics": {"acc1": math.nan, "acc5": 1.0}}, "its metrics acc1 are not finite numbers"),
], ids=["precision", "backend", "language", "pretrained", "empty-metrics", "nan-metrics"])
def test_skip_existing_recomputes_anything_but_the_same_finished_run(
    tmp_path: Path, tiny_hf_folder: Path, cifar: Path, change: dict, reason: str
) -> None:
    output = tmp_path / "result.json"
    args = eval_args(tiny_hf_folder, cifar, output, "--device", "cpu", "--skip_existing")
    code, log = zsbench(*args)
    assert code == 0, log
    finished = output.read_bytes()
    code, log = zsbench(*args)
    assert code == 0 and f"skip {output}: it holds this run's finished result" in log and "0 evaluation(s) run, 1 skipped" in log
    assert output.read_bytes() == finished

    output.write_text(json.dumps({**json.loads(finished), **change}))
    code, log = zsbench(*args)
    assert code == 0, log
    assert f"recompute {output}: {reason}" in log and "1 evaluation(s) run, 0 skipped" in log
    assert json.loads(output.read_text())["metrics"] == json.loads(finished)["metrics"]


def _shapes_export(root: Path, dataset_type: str | None = None) -> Path:
    """A webdataset export with a test and a train split of other images (captions for retrieval)."""
    for split, seed in (("test", 0), ("train", 50)):
        if dataset_type == "retrieval":
            samples = [(image_bytes(seed + i, "PNG", (16, 16)), [f"a photo of thing {i}", f"thing {i}"]) for i in range(6)]
        else:
            samples = [(image_bytes(seed + i, "PNG", (16, 16)), i) for i in range(6)]
        write_wds(root, samples, split=split, dataset_type=dataset_type, classnames=None if dataset_type else ["a", "b", "c", "d", "e", "f"],
                  templates=None if dataset_type else ["a photo of a {c}."], image_field="png")
    return root


def _skip_case(case: str, tmp_path: Path, cifar: Path) -> tuple[list[str], list[str], str]:
    """(first run's arguments, second run's arguments, what the recompute line must name) for one sweep case."""
    if case in ("split", "recall_k"):
        retrieval = case == "recall_k"
        root = _shapes_export(tmp_path / "shapes", "retrieval" if retrieval else None)
        model = "internvl_c_retrieval_hf" if retrieval else MODEL
        first = ["--model", model, "--dataset", "wds/shapes", "--dataset_root", str(root)]
        second = [*first, "--recall_k", "1", "5", "10", "20"] if retrieval else [*first, "--split", "train"]
        return first, second, "recall_k [1, 5, 10] (this run: [1, 5, 10, 20])" if retrieval else "split 'test' (this run: 'train')"
    first = ["--model", MODEL, "--dataset", "cifar10", "--dataset_root", str(cifar)]
    if case == "dataset_root":
        shutil.copytree(cifar, tmp_path / "copy")
        return first, [*first[:-1], str(tmp_path / "copy")], f"dataset_root {str(cifar.resolve())!r}"
    templates = tmp_path / "templates.json"
    templates.write_text(json.dumps({"cifar10": ["a blurry photo of a {c}."]}))
    return first, [*first, "--custom_template_file", str(templates)], "templates_sha256"


@pytest.mark.parametrize("case", ["split", "dataset_root", "custom_template_file", "recall_k"])
def test_skip_existing_recomputes_a_run_with_other_settings(tmp_path: Path, tiny_hf_folder: Path, cifar: Path, case: str) -> None:
    """The sweep's cases: another --split, --dataset_root, --custom_template_file or --recall_k was skipped."""
    first, second, named = _skip_case(case, tmp_path, cifar)
    output = tmp_path / "result.json"
    common = ["eval", "--model_type", "internvl", "--pretrained", str(tiny_hf_folder), "--output", str(output),
              "--num_workers", "0", "--quiet", "--batch_size", "4", "--device", "cpu", "--skip_existing"]
    code, log = zsbench(*common, *first)
    assert code == 0, log
    code, log = zsbench(*common, *first)
    assert code == 0 and "0 evaluation(s) run, 1 skipped" in log, log
    code, log = zsbench(*common, *second)
    assert code == 0, log
    assert f"recompute {output}: it was computed with other settings: " in log and named in log, log
    assert "1 evaluation(s) run, 0 skipped" in log
    recorded = json.loads(output.read_text())
    if case == "recall_k":
        assert "image_retrieval_recall@20" in recorded["metrics"] and recorded["run"]["recall_k"] == [1, 5, 10, 20]
    code, log = zsbench(*common, *second)
    assert code == 0 and "0 evaluation(s) run, 1 skipped" in log, log


def test_skip_existing_recomputes_a_run_whose_checkpoint_was_rewritten_in_place(tmp_path: Path, tiny_hf_folder: Path,
                                                                                cifar: Path) -> None:
    """Same path, same size, same mtime, other weights (a partial fine-tune written in place): not the finished run."""
    from tests.eval.test_cache import rewrite_tensor_in_place

    checkpoint = tmp_path / "ckpt"
    shutil.copytree(tiny_hf_folder, checkpoint)
    output = tmp_path / "result.json"
    args = eval_args(checkpoint, cifar, output, "--device", "cpu", "--skip_existing")
    code, log = zsbench(*args)
    assert code == 0, log
    code, log = zsbench(*args)
    assert code == 0 and "0 evaluation(s) run, 1 skipped" in log, log
    weights = checkpoint / "model.safetensors"
    name = next(key for key in json.loads(weights.read_bytes()[8 : 8 + int.from_bytes(weights.read_bytes()[:8], "little")])
                if key.endswith("mlp.down_proj.weight"))
    rewrite_tensor_in_place(weights, name)
    code, log = zsbench(*args)
    assert code == 0, log
    assert f"recompute {output}: it was computed with other settings: checkpoint " in log and "1 evaluation(s) run" in log, log


def test_skip_existing_recomputes_a_result_that_records_no_settings(tmp_path: Path, tiny_hf_folder: Path, cifar: Path) -> None:
    output = tmp_path / "result.json"
    args = eval_args(tiny_hf_folder, cifar, output, "--device", "cpu", "--skip_existing")
    code, log = zsbench(*args)
    assert code == 0, log
    older = json.loads(output.read_text())
    del older["run"]  # as zsbench wrote results before it recorded the settings
    output.write_text(json.dumps(older))
    code, log = zsbench(*args)
    assert code == 0, log
    assert f"recompute {output}: it does not record the settings it was computed with" in log
    assert "run" in json.loads(output.read_text())


@pytest.mark.parametrize(("templates", "message"), [
    ([], "--custom_template_file {file} gives 'cifar10' no templates"),
    (["a {d} of a {c}"], "the template 'a {{d}} of a {{c}}' for 'cifar10' uses {{d}}"),
], ids=["empty-list", "unknown-placeholder"])
def test_templates_are_checked_before_any_model_loads_or_image_is_encoded(tmp_path: Path, cifar: Path, templates: list[str],
                                                                          message: str) -> None:
    """The sweep's tracebacks: torch.cat of no prompts after encoding every image, and a KeyError for {d}. The
    checkpoint here does not exist: the templates are refused before it would be opened, in the same error
    that lists the missing checkpoint (every problem found before loading is reported at once)."""
    custom = tmp_path / "templates.json"
    custom.write_text(json.dumps({"cifar10": templates}))
    code, log = zsbench(*eval_args(tmp_path / "no-checkpoint", cifar, tmp_path / "r.json", "--custom_template_file", str(custom)))
    assert code == 1 and message.format(file=custom) in log and "Traceback" not in log, log
    lines = log.strip().splitlines()
    assert lines[0].endswith("2 problems, found before any model was loaded (nothing was evaluated):") and len(lines) == 3, log
    assert lines[1].startswith("1. ") and lines[2].startswith(f"2. Checkpoint {tmp_path / 'no-checkpoint'} does not exist")
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("language", ["en\nx", "en\tb", ""])
def test_a_language_with_a_control_character_is_refused(tmp_path: Path, cifar: Path, language: str) -> None:
    """The sweep's case: a newline in --language became a newline in the result's file name."""
    code, log = zsbench(*eval_args(tmp_path / "ckpt", cifar, tmp_path / "{language}.json", "--language", language))
    assert code == 1 and f"--language {language!r} is empty or holds a control character" in log, log
    assert len(log.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


def test_an_empty_dataset_in_one_process_is_a_dataset_error_not_a_torchrun_one(tmp_path: Path) -> None:
    """The sweep's unclear case: "Rank 0 of 1 got no images ... start torchrun with fewer processes" without torchrun."""
    from tests.data.fixtures import write_mnist
    from zsbench.eval.distributed import SINGLE
    from zsbench.eval.encoding import check_shard_not_empty

    write_mnist(tmp_path / "mnist", count=0)
    code, log = zsbench("eval", "--model_type", "internvl", "--model", MODEL, "--pretrained", str(tmp_path / "no-checkpoint"),
                        "--dataset", "mnist", "--dataset_root", str(tmp_path / "mnist"), "--output", str(tmp_path / "r.json"))
    assert code == 1 and "Cannot read dataset 'mnist'" in log and "it holds no test samples" in log, log
    assert "Rank" not in log and "torchrun" not in log and "Traceback" not in log
    with pytest.raises(ZsbenchError, match=r"^There are no images to encode: the dataset holds none") as caught:
        check_shard_not_empty(0, SINGLE, "images")
    assert "torchrun" not in str(caught.value)


def test_quiet_hides_library_warnings_but_not_zsbenchs(tmp_path: Path) -> None:
    """The sweep's unclear case: a torch UserWarning printed despite -q. A real one (torch's warning about a
    read-only NumPy array) and a zsbench warning, under -q and without."""
    script = (
        "import sys, warnings, numpy, torch\n"
        "from zsbench.console import Console\n"
        "from zsbench.data.files import DatasetWarning\n"
        "Console.from_flags(quiet=sys.argv[1] == 'quiet', verbose=False)\n"
        "array = numpy.zeros(3)\n"
        "array.flags.writeable = False\n"
        "torch.from_numpy(array)\n"
        "warnings.warn('x.png is not a regular file: skipped', DatasetWarning)\n"
    )
    logs = {}
    for mode in ("quiet", "normal"):
        run = subprocess.run([sys.executable, "-c", script, mode], env={**os.environ, "PYTHONPATH": str(REPO)},
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        logs[mode] = run.stderr
    assert "not writable" in logs["normal"]  # the torch warning is real, and shown without -q
    assert "not writable" not in logs["quiet"]
    for log in logs.values():
        assert "warning: x.png is not a regular file: skipped\n" in log and "DatasetWarning" not in log


# 5. Outputs are checked before compute; a failed final write keeps the metrics.

@pytest.mark.parametrize("case", ["folder", "parent-is-file", "unwritable"])
def test_unusable_output_fails_before_any_model_or_dataset_is_read(tmp_path: Path, case: str) -> None:
    (tmp_path / "taken.json").mkdir()
    (tmp_path / "file").write_text("not a folder")
    output, message = {
        "folder": (tmp_path / "taken.json", f"--output {tmp_path / 'taken.json'} is a folder"),
        "parent-is-file": (tmp_path / "file" / "sub" / "r.json", f"{tmp_path / 'file'} is a file, so it cannot hold"),
        # /proc takes no new files, not even from root (a chmod'ed folder would not stop root).
        "unwritable": (Path("/proc/zsbench-results/r.json"), "--output /proc/zsbench-results/r.json: cannot write in"),
    }[case]
    # Neither the checkpoint nor the dataset exists: the output is what is checked first.
    code, log = zsbench(*eval_args(tmp_path / "no-checkpoint", tmp_path / "no-data", output))
    assert code == 1 and message in log, log
    assert "no-checkpoint" not in log and "no-data" not in log and "Traceback" not in log
    assert (tmp_path / "file").read_text() == "not a folder" and not any((tmp_path / "taken.json").iterdir())


def _run_in_namespace_with_full_disk(mount: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """`zsbench ARGS` in a private mount namespace where `mount` is a tmpfs filled to the last byte."""
    script = 'mount -t tmpfs -o size=128k tmpfs "$1" || exit 97; head -c 1M /dev/zero > "$1/filler" 2>/dev/null; shift; exec "$@"'
    command = ["unshare", "--map-root-user", "--mount", "sh", "-c", script, "sh", str(mount), sys.executable, "-m", "zsbench", *args]
    return subprocess.run(command, env={**os.environ, "PYTHONPATH": str(REPO), **env}, capture_output=True, text=True, timeout=300)


def test_a_full_disk_at_the_final_write_keeps_the_metrics_in_a_fallback_file(tmp_path: Path, tiny_hf_folder: Path, cifar: Path) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) to mount a small tmpfs")
    mount, temp = tmp_path / "small-disk", tmp_path / "tmp"
    mount.mkdir()
    temp.mkdir()
    output = mount / "results" / "r.json"
    done = _run_in_namespace_with_full_disk(mount, eval_args(tiny_hf_folder, cifar, output, "--device", "cpu"), {"TMPDIR": str(temp)})
    if done.returncode == 97 or "unshare:" in done.stderr:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {done.stderr.strip()}")
    log = done.stdout + done.stderr
    assert done.returncode == 1, log
    assert f"Could not write the result to {output} (No space left on device)" in log
    assert "The computed metrics were kept: {\"acc1\": " in log and "Traceback" not in log
    fallbacks = list(temp.glob("zsbench-*-r.json"))  # beside the output is the same full disk: the temp folder took it
    assert len(fallbacks) == 1 and f"The whole result is in {fallbacks[0]}" in log
    kept = json.loads(fallbacks[0].read_text())
    assert kept["dataset"] == "cifar10" and json.dumps(kept["metrics"]) in log
    assert not output.exists()  # the namespace's tmpfs is gone; the folder under it is what the next run sees


def test_when_no_file_can_be_written_the_metrics_are_printed(tmp_path: Path, tiny_hf_folder: Path, cifar: Path) -> None:
    import resource

    def small_files_only() -> None:  # runs in the child: writes past 512 bytes fail with EFBIG instead of killing it
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))

    output = tmp_path / "r.json"
    output.write_bytes(b'{"an": "older result"}\n')
    child = zsbench_process(*eval_args(tiny_hf_folder, cifar, output, "--device", "cpu"), env={"TMPDIR": str(tmp_path)},
                            preexec_fn=small_files_only)
    log, _ = child.communicate(timeout=300)
    assert child.returncode == 1, log
    assert f"Could not write the result to {output} (File too large), nor to a fallback file" in log
    assert "The computed metrics were: {\"acc1\": " in log and "Traceback" not in log
    assert output.read_bytes() == b'{"an": "older result"}\n'
    assert sorted(path.name for path in tmp_path.iterdir()) == ["r.json"]


# 6. Output templates are safe and complete.

def test_backend_and_precision_placeholders_and_sanitised_values(tmp_path: Path) -> None:
    out = tmp_path / "results"
    template = str(out / "{backend}-{precision}" / "{language}_{dataset}.json")
    code, log = zsbench("eval", "--dataset", "cifar10", "--dataset_root", str(tmp_path), "--task", "zeroshot_classification",
                        "--language", "../../x", "--language", "..", "--output", template, "--device", "cpu", "--dry-run")
    assert code == 0, log
    outputs = [Path(json.loads(line)["output"]) for line in log.splitlines()]
    assert outputs == [out / "torch-fp32" / ".._.._x_cifar10.json", out / "torch-fp32" / "___cifar10.json"]
    assert all(os.path.normpath(path).startswith(str(out / "torch-fp32")) for path in outputs)


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--output", "{dataset}_{foo}.json", "--output '{dataset}_{foo}.json' uses {foo}, which zsbench does not fill. Expected only {model}"),
    ("--output", "{dataset.json", "--output '{dataset.json' is not a valid template (expected '}' before end of string)"),
    ("--output", "results}/x.json", "is not a valid template (Single '}' encountered in format string)"),
    ("--output", "{dataset!r}.json", "uses {dataset!r}, which zsbench does not fill"),
    ("--dataset_root", "data/{dataset", "--dataset_root 'data/{dataset' is not a valid template"),
], ids=["unknown", "unclosed", "stray-close", "conversion", "dataset-root"])
def test_bad_templates_are_clear_errors(option: str, value: str, message: str) -> None:
    code, log = zsbench("eval", "--dataset", "cifar10", "--task", "zeroshot_classification", option, value, "--device", "cpu", "--dry-run")
    assert code == 1 and message in log and "Traceback" not in log, log


# 7. export --force deletes only a zsbench export.

@pytest.mark.parametrize("manifest", ['{"name": "my app", "version": 3}', '{"format": "other-tool/1"}', "[1, 2]"],
                         ids=["no-format", "other-format", "not-an-object"])
def test_export_force_never_replaces_a_folder_that_is_not_a_zsbench_export(tmp_path: Path, tiny_hf_folder: Path, manifest: str) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "manifest.json").write_text(manifest)
    (folder / "notes.txt").write_text("keep me")
    code, log = zsbench("export", "--model", MODEL, "--pretrained", str(tiny_hf_folder), "--out", str(folder), "--force",
                        "--precision", "fp32", "--device", "cpu")
    assert code == 1, log
    assert "It is not a zsbench export, so --force will not replace it" in log and "Traceback" not in log
    assert sorted(path.name for path in folder.iterdir()) == ["manifest.json", "notes.txt"]
    assert (folder / "manifest.json").read_text() == manifest and (folder / "notes.txt").read_text() == "keep me"


# 8. Offline means no network: not even the text tower that transformers builds from the hub.

def test_open_clip_hugging_face_text_tower_never_reaches_the_hub_offline(tmp_path: Path, cifar: Path) -> None:
    pytest.importorskip("open_clip")
    pytest.importorskip("transformers")
    listener = socket.create_server(("127.0.0.1", 0))
    requests: list[bytes] = []

    def record() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                requests.append(connection.recv(256))

    threading.Thread(target=record, daemon=True).start()
    checkpoint = tmp_path / "roberta.pt"
    torch.save({"logit_scale": torch.ones(())}, checkpoint)
    # The hub is this machine's listener, nothing is cached, and only zsbench's --offline is set.
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{listener.getsockname()[1]}", "HF_HOME": str(tmp_path / "hf-home"),
           "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0", "ZSBENCH_OFFLINE": "0"}
    child = zsbench_process("eval", "--offline", "--model_type", "open_clip", "--model", "roberta-ViT-B-32", "--pretrained",
                            str(checkpoint), "--dataset", "cifar10", "--dataset_root", str(cifar), "--output",
                            str(tmp_path / "r.json"), "--device", "cpu", "--num_workers", "0", "--quiet", env=env)
    log, _ = child.communicate(timeout=300)
    listener.close()
    assert child.returncode == 1, log
    assert "builds its text tower from the Hugging Face model 'roberta-base'" in log
    assert "`hf download roberta-base`" in log and "Traceback" not in log
    assert requests == []
    assert not (tmp_path / "r.json").exists()


# 9. No tracebacks for input errors.

def _hf_with_config(source: Path, target: Path, section: str | None, key: str, value: object) -> Path:
    shutil.copytree(source, target)
    config = json.loads((target / "config.json").read_text())
    (config[section] if section else config)[key] = value
    (target / "config.json").write_text(json.dumps(config))
    return target


@pytest.mark.parametrize(("section", "key", "value", "message"), [
    ("vision_config", "hidden_size", "96", "vision_config: hidden_size must be an int, found '96' (str)"),
    (None, "vision_config", None, "vision_config must be an object of sizes, found null"),
    ("qllama_config", "num_hidden_layers", -2, "qllama_config: num_hidden_layers must be at least 1, found -2"),
    ("qllama_config", "rms_norm_eps", [1e-6], "qllama_config: rms_norm_eps must be a float, found [1e-06] (list)"),
    (None, "num_query_token", 2.5, "num_query_token must be an int, found 2.5 (float)"),
], ids=["string-size", "null-section", "negative-layers", "list-eps", "float-count"])
def test_bad_config_fields_are_named(tmp_path: Path, tiny_hf_folder: Path, cifar: Path, section: str | None, key: str,
                                     value: object, message: str) -> None:
    folder = _hf_with_config(tiny_hf_folder, tmp_path / "hf", section, key, value)
    code, log = zsbench(*eval_args(folder, cifar, tmp_path / "r.json", "--device", "cpu"))
    assert code == 1 and message in log and "Traceback" not in log, log
    assert not (tmp_path / "r.json").exists()


def test_integer_weight_tensor_is_refused(tmp_path: Path, tiny_hf_folder: Path, cifar: Path) -> None:
    def to_int(state: dict) -> None:
        state["text_projection"] = state["text_projection"].round().to(torch.int64)

    folder = edited_checkpoint(tiny_hf_folder, tmp_path / "hf", to_int)
    code, log = zsbench(*eval_args(folder, cifar, tmp_path / "r.json", "--device", "cpu"))
    assert code == 1 and "mis-typed keys (integer vs floating point): text_projection int64 (model: float32)" in log, log
    assert "Traceback" not in log and not (tmp_path / "r.json").exists()


def test_shard_index_pointing_outside_the_folder_is_refused(tmp_path: Path, tiny_hf_folder: Path, cifar: Path) -> None:
    folder = tmp_path / "hf"
    shutil.copytree(tiny_hf_folder, folder)
    (folder / "model.safetensors").rename(tmp_path / "elsewhere.safetensors")
    keys = load_file(tmp_path / "elsewhere.safetensors").keys()
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {key: "../elsewhere.safetensors" for key in keys}}))
    code, log = zsbench(*eval_args(folder, cifar, tmp_path / "r.json", "--device", "cpu"))
    assert code == 1 and "lists shards outside" in log and "../elsewhere.safetensors" in log and "Traceback" not in log, log
    assert not (tmp_path / "r.json").exists()


class WritesAFile:
    """A pickle whose loading would run code (create a file): weights_only loading must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize(("case", "message"), [
    ("truncated", "is not a readable PyTorch checkpoint"),
    ("pickled", "holds pickled objects other than tensors and was not loaded"),
    ("legacy-pickled", "holds pickled objects other than tensors and was not loaded"),
], ids=["truncated", "pickled", "legacy-pickled"])
def test_open_clip_checkpoints_that_are_truncated_or_pickled(tmp_path: Path, cifar: Path, case: str, message: str) -> None:
    checkpoint, marker = tmp_path / "model.pt", tmp_path / "code-ran"
    if case == "truncated":
        torch.save({"logit_scale": torch.ones(()), "w": torch.zeros(64, 64)}, checkpoint)
        checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    else:
        torch.save({"logit_scale": torch.ones(()), "payload": WritesAFile(marker)}, checkpoint,
                   _use_new_zipfile_serialization=case == "pickled")
    code, log = zsbench("eval", "--model_type", "open_clip", "--model", "ViT-B-32", "--pretrained", str(checkpoint), "--dataset",
                        "cifar10", "--dataset_root", str(cifar), "--output", str(tmp_path / "r.json"), "--device", "cpu")
    assert code == 1 and message in log and "Traceback" not in log, log
    assert not marker.exists() and not (tmp_path / "r.json").exists()


def test_legacy_non_zip_pth_of_tensors_loads(tmp_path: Path, tiny_pth_file: Path) -> None:
    legacy = tmp_path / "legacy.pth"
    torch.save(torch.load(tiny_pth_file, weights_only=True), legacy, _use_new_zipfile_serialization=False)
    for name in ("tokenizer.model", "tiny_config.json"):
        shutil.copyfile(tiny_pth_file.parent / name, tmp_path / name)
    config = tmp_path / "tiny_config.json"
    zipped, _, tokenizer = load_clip("internvl", "internvl_c_retrieval", tiny_pth_file, model_config=config)
    old, _, _ = load_clip("internvl", "internvl_c_retrieval", legacy, model_config=config)
    tokens = tokenizer(["a photo of a red circle."])
    with torch.no_grad():
        assert torch.equal(old.encode_text(tokens), zipped.encode_text(tokens))


def test_device_tpu_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    code, log = zsbench(*eval_args(tmp_path / "no-checkpoint", tmp_path / "no-data", tmp_path / "r.json", "--device", "tpu"))
    assert code == 1 and "--device tpu is not a device: expected auto, cpu, cuda or cuda:N." in log and "Traceback" not in log, log


def test_symbolic_link_loop_as_dataset_root(tmp_path: Path, tiny_hf_folder: Path) -> None:
    (tmp_path / "root").symlink_to(tmp_path / "root")
    code, log = zsbench("eval", "--model_type", "internvl", "--model", MODEL, "--pretrained", str(tiny_hf_folder), "--dataset",
                        "fer2013", "--dataset_root", str(tmp_path / "root"), "--output", str(tmp_path / "r.json"), "--device", "cpu")
    assert code == 1 and f"{tmp_path / 'root'} is a symbolic link that loops or points nowhere" in log and "Traceback" not in log, log


def test_symbolic_link_loops_inside_class_folders_are_skipped_once(tmp_path: Path, tiny_hf_folder: Path) -> None:
    write_class_folders(tmp_path / "fer" / "test", FER_CLASSES, per_class=1)
    (tmp_path / "fer" / "test" / "angry" / "up").symlink_to("..")  # back to test/: every class again
    (tmp_path / "fer" / "test" / "happy" / "itself").symlink_to(".")
    (tmp_path / "fer" / "test" / "sad" / "dangling").symlink_to("dangling")  # ELOOP when resolved
    args = ["eval", "--model_type", "internvl", "--model", MODEL, "--pretrained", str(tiny_hf_folder), "--dataset", "fer2013",
            "--dataset_root", str(tmp_path / "fer"), "--output", str(tmp_path / "r.json"), "--num_workers", "0", "--quiet",
            "--device", "cpu"]
    with pytest.warns(DatasetWarning) as caught:
        code, log = zsbench(*args)
    assert code == 0, log
    warned = sorted(str(warning.message).split(" links to")[0] for warning in caught)
    assert warned == [str(tmp_path / "fer" / "test" / "angry" / "up"), str(tmp_path / "fer" / "test" / "happy" / "itself")]
    assert json.loads((tmp_path / "r.json").read_text())["throughput"]["images"] == len(FER_CLASSES)


# 10. Results are readable by the team.

@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)], ids=["022", "027", "002"])
def test_results_and_manifests_honour_the_umask(tmp_path: Path, tiny_hf_folder: Path, cifar: Path, umask: int, mode: int) -> None:
    from zsbench.jsonfiles import write_json_atomic

    previous = os.umask(umask)
    try:
        code, log = zsbench(*eval_args(tiny_hf_folder, cifar, tmp_path / "r.json", "--device", "cpu"))
        write_json_atomic(tmp_path / "export" / "manifest.json", {"format": "zsbench-onnx-export/2"})
    finally:
        os.umask(previous)
    assert code == 0, log
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "export" / "manifest.json").stat().st_mode) == mode


# 11. Ctrl-C exits 130; --skip-bad-images says how many it skipped.

def _sigint_as_in_a_terminal() -> None:
    # A CI runner may start the tests with SIGINT ignored (as shells do for background jobs); the
    # child inherits that and Python then installs no KeyboardInterrupt handler. A user's Ctrl-C
    # reaches a foreground process whose SIGINT has its default action, so the child gets that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_sigint_exits_130_keeps_finished_results_and_writes_no_other(tmp_path: Path, tiny_hf_folder: Path, cifar: Path) -> None:
    """Ctrl-C during the second of two runs: the first run's result stays, the second writes none."""
    big = image_bytes(3, "JPEG", (512, 512))  # decoding and resizing 420 of these takes seconds
    for name in FER_CLASSES:
        (tmp_path / "fer" / "test" / name).mkdir(parents=True)
        for index in range(60):
            (tmp_path / "fer" / "test" / name / f"{index:04d}.jpg").write_bytes(big)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cifar10").symlink_to(cifar)
    (tmp_path / "data" / "fer2013").symlink_to(tmp_path / "fer")
    child = zsbench_process("eval", "--model_type", "internvl", "--model", MODEL, "--pretrained", str(tiny_hf_folder),
                            "--dataset", "cifar10", "fer2013", "--dataset_root", str(tmp_path / "data" / "{dataset}"),
                            "--output", str(tmp_path / "{dataset}.json"), "--num_workers", "0", "--quiet", "--device", "cpu",
                            preexec_fn=_sigint_as_in_a_terminal)
    deadline = time.monotonic() + 240
    while not (tmp_path / "cifar10.json").exists():  # the first run is finished: the second has begun
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()[0]
        time.sleep(0.01)
    child.send_signal(signal.SIGINT)
    log, _ = child.communicate(timeout=120)
    assert child.returncode == 130, log
    assert "Interrupted." in log and "Traceback" not in log
    assert json.loads((tmp_path / "cifar10.json").read_text())["dataset"] == "cifar10"
    assert not (tmp_path / "fer2013.json").exists()


def test_a_fifo_named_like_an_image_is_skipped_not_read(tmp_path: Path, tiny_hf_folder: Path) -> None:
    """The sweep's hang: a FIFO named *.png in an image folder blocked for ever, even with --skip-bad-images."""
    write_class_folders(tmp_path / "fer" / "test", FER_CLASSES, per_class=1)
    os.mkfifo(tmp_path / "fer" / "test" / "angry" / "0001.png")
    child = zsbench_process("eval", "--model_type", "internvl", "--model", MODEL, "--pretrained", str(tiny_hf_folder),
                            "--dataset", "fer2013", "--dataset_root", str(tmp_path / "fer"), "--output", str(tmp_path / "r.json"),
                            "--num_workers", "0", "--device", "cpu", "--skip-bad-images")
    try:
        log, _ = child.communicate(timeout=240)
    finally:
        child.kill()
    assert child.returncode == 0, log
    assert f"{tmp_path / 'fer' / 'test' / 'angry' / '0001.png'} is not a regular file (a FIFO, socket or device): skipped" in log
    assert json.loads((tmp_path / "r.json").read_text())["throughput"]["images"] == len(FER_CLASSES)


def test_a_fifo_an_index_file_names_is_a_bad_image_not_a_hang(tmp_path: Path) -> None:
    from zsbench.data import ImageRef
    from zsbench.errors import BadImageError

    fifo = tmp_path / "1000092795.jpg"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            ImageRef(name=str(fifo), path=fifo).load()
            outcome.append(None)
        except BaseException as err:  # noqa: BLE001 - handed to the test thread
            outcome.append(err)

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(timeout=30)
    if reader.is_alive():  # blocked opening the FIFO: let it go, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=30)
        pytest.fail("reading a FIFO blocked")
    assert isinstance(outcome[0], BadImageError) and "is not a regular file (a FIFO, device or folder)" in str(outcome[0])


def test_skip_bad_images_says_how_many_it_skipped(tmp_path: Path, tiny_hf_folder: Path) -> None:
    write_class_folders(tmp_path / "fer" / "test", FER_CLASSES, per_class=1)
    write_corrupt_images(tmp_path / "fer" / "test" / "sad")
    code, log = zsbench("eval", "--model_type", "internvl", "--model", MODEL, "--pretrained", str(tiny_hf_folder), "--dataset",
                        "fer2013", "--dataset_root", str(tmp_path / "fer"), "--output", str(tmp_path / "r.json"), "--num_workers",
                        "0", "--quiet", "--device", "cpu", "--skip-bad-images")
    assert code == 0, log
    assert "| skipped 3 unreadable image(s) |" in log
    assert json.loads((tmp_path / "r.json").read_text())["skipped_images"] == 3
