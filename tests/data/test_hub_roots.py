"""`--dataset_root` as a Hugging Face hub dataset (the seed's https://huggingface.co/datasets/... form and hf://datasets/...),
and `--pretrained` as a hub id, against a hub on 127.0.0.1 reached through HF_ENDPOINT."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import DEMO_CHECKPOINT
from tests.loopback import closed_port, COMMIT, LoopbackServer, error_line, folder_files, serve
from zsbench.cli import main
from zsbench.data.hub_roots import HubRoot, fetch_hub_root, parse_hub_root
from zsbench.demo.generate import DemoDatasetSpec, generate_demo_data
from zsbench.errors import DatasetLayoutError, DownloadError, OfflineError

REPO = Path(__file__).resolve().parents[2]
DATASET = "clip-benchmark/wds_shapes_classification"
SEED_FORM = f"https://huggingface.co/datasets/{DATASET}/tree/main"


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's shapes in CLIP_benchmark's export layout, small: a test split of 3 shards and a train split. The
    demo checkpoint classifies them well, so equal metrics mean the same images, labels, names and templates."""
    spec = DemoDatasetSpec("shapes_classification", "classification", num_test=24, num_train=4, samples_per_shard=8)
    return generate_demo_data(tmp_path_factory.mktemp("hub-export"), datasets=(spec,))["shapes_classification"]


@pytest.fixture
def hub(export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LoopbackServer, str]]:
    """The hub on 127.0.0.1 with the export and the demo checkpoint (plus a .bin copy that must never be fetched);
    zsbench online, with an empty hub cache."""
    demo = {**folder_files(DEMO_CHECKPOINT), "pytorch_model.bin": b"never fetched: the repository has safetensors"}
    server = LoopbackServer(repos={("dataset", DATASET): folder_files(export), ("model", "test-org/zsbench-demo"): demo})
    monkeypatch.delenv("ZSBENCH_OFFLINE")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    for state, url in serve(server):
        monkeypatch.setenv("HF_ENDPOINT", url)
        yield state, url


def eval_args(root: str, pretrained: str, output: Path) -> list[str]:
    return ["eval", "--model_type", "internvl", "--model", "internvl_c_classification_hf", "--pretrained", pretrained,
            "--dataset", "wds/shapes_classification", "--dataset_root", root, "--output", str(output), "--num_workers", "0", "--batch_size", "4"]


def test_both_forms_name_the_same_repository() -> None:
    assert parse_hub_root(SEED_FORM) == HubRoot(DATASET, "main", "")
    assert parse_hub_root(f"hf://datasets/{DATASET}@main") == HubRoot(DATASET, "main", "")
    assert parse_hub_root(f"hf://datasets/{DATASET}") == HubRoot(DATASET, None, "")
    assert parse_hub_root(f"https://huggingface.co/datasets/{DATASET}/tree/v1.0/sub/dir") == HubRoot(DATASET, "v1.0", "sub/dir")
    assert parse_hub_root("data/imagenet-1k") is None
    assert HubRoot(DATASET).patterns("test") == ["test/*", "classnames.txt", "zeroshot_classification_templates.txt",
                                                 "dataset_type.txt"]


@pytest.mark.parametrize(
    ("root", "message"),
    [
        ("https://example.com/datasets/org/repo/tree/main", "set HF_ENDPOINT=https://example.com"),
        ("https://huggingface.co/org/repo", "not a Hugging Face hub dataset"),
        ("hf://org/repo", "expected hf://datasets/<org>/<repo>"),
        ("hf://datasets/org", "names no <org>/<repo>"),
    ],
)
def test_other_urls_are_refused_in_one_line(root: str, message: str) -> None:
    with pytest.raises(DatasetLayoutError, match=message) as failure:
        parse_hub_root(root)
    assert "\n" not in str(failure.value)


FETCH_IN_A_NEW_PROCESS = """
import sys
from zsbench.data.hub_roots import fetch_hub_root, parse_hub_root
print(fetch_hub_root(parse_hub_root(sys.argv[1]), "test", quiet=True))
"""


def test_seed_form_and_hf_form_score_like_the_shards_on_disk_and_the_second_run_fetches_nothing(
    hub: tuple[LoopbackServer, str], export: Path, tmp_path: Path
) -> None:
    state, url = hub
    # As a user runs it: a new process, whose huggingface_hub reads HF_ENDPOINT at import, the seed's URL host mapped onto it.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", FETCH_IN_A_NEW_PROCESS, SEED_FORM], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    cached = Path(os.environ["HF_HUB_CACHE"]) / f"datasets--{DATASET.replace('/', '--')}" / "snapshots" / COMMIT
    assert Path(done.stdout.strip()) == cached
    assert sorted(request.path for request in state.content_requests()) == sorted(
        f"/datasets/{DATASET}/resolve/{COMMIT}/{name}" for name in
        ["test/0.tar", "test/1.tar", "test/2.tar", "test/nshards.txt", "classnames.txt", "zeroshot_classification_templates.txt",
         "dataset_type.txt"]
    )  # the test split only
    dataset_files = len(state.content_requests())
    result = CliRunner().invoke(main, eval_args(SEED_FORM, "test-org/zsbench-demo", tmp_path / "seed.json"))
    assert result.exit_code == 0, result.output
    assert sorted(request.path for request in state.content_requests()[dataset_files:]) == [
        f"/test-org/zsbench-demo/resolve/{COMMIT}/{name}"
        for name in ["config.json", "model.safetensors", "tokenizer.model", "zsbench_demo_training.json"]
    ]  # the weights (safetensors only); the dataset came from the hub cache
    before = len(state.content_requests())
    result = CliRunner().invoke(main, eval_args(f"hf://datasets/{DATASET}@main", "test-org/zsbench-demo", tmp_path / "hf.json"))
    assert result.exit_code == 0, result.output
    assert len(state.content_requests()) == before  # everything came from the hub cache
    result = CliRunner().invoke(main, eval_args(str(export), str(DEMO_CHECKPOINT), tmp_path / "disk.json"))
    assert result.exit_code == 0, result.output
    metrics = [json.loads((tmp_path / name).read_text())["metrics"] for name in ("seed.json", "hf.json", "disk.json")]
    assert metrics[0] == metrics[1] == metrics[2]
    assert metrics[0]["acc1"] > 0.5  # 48 classes: far from chance, so the same data and weights were read


def test_a_shard_whose_bytes_do_not_match_the_hub_s_sha256_is_removed_and_named(hub: tuple[LoopbackServer, str]) -> None:
    state, _ = hub
    state.corrupt.add("test/1.tar")
    with pytest.raises(DownloadError, match=f"Checksum mismatch for test/1.tar of dataset {DATASET}@{COMMIT}: sha256") as failure:
        fetch_hub_root(HubRoot(DATASET, "main"), "test", quiet=True)
    assert "\n" not in str(failure.value)
    cache = Path(os.environ["HF_HUB_CACHE"]) / f"datasets--{DATASET.replace('/', '--')}"
    assert not (cache / "snapshots" / COMMIT / "test" / "1.tar").exists()
    state.corrupt.clear()
    folder = fetch_hub_root(HubRoot(DATASET, "main"), "test", quiet=True)
    assert (folder / "test" / "1.tar").is_file()
    assert len(state.content_requests("test/1.tar")) == 2 and len(state.content_requests("test/0.tar")) == 1


def test_a_missing_repository_or_revision_is_one_line(hub: tuple[LoopbackServer, str]) -> None:
    with pytest.raises(DownloadError, match="No repository dataset clip-benchmark/wds_nothing on http://127.0.0.1"):
        fetch_hub_root(HubRoot("clip-benchmark/wds_nothing"), "test", quiet=True)
    with pytest.raises(DownloadError, match="no such revision"):
        fetch_hub_root(HubRoot(DATASET, "v9"), "test", quiet=True)


def test_an_unreachable_hub_fails_fast_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    monkeypatch.delenv("ZSBENCH_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    start = time.monotonic()
    result = CliRunner().invoke(main, eval_args(SEED_FORM, str(DEMO_CHECKPOINT), tmp_path / "r.json"))
    assert time.monotonic() - start < 15
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: Cannot reach 127.0.0.1:{port}") and result.output.count("\n") == 1, result.output
    assert "--offline" in result.output


def test_offline_the_cache_serves_a_hub_root_and_what_is_missing_names_its_command(
    hub: tuple[LoopbackServer, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    fetch_hub_root(HubRoot(DATASET, "main"), "test", quiet=True)  # fetched online once
    request.getfixturevalue("no_sockets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert (fetch_hub_root(HubRoot(DATASET, "main"), "test") / "test" / "0.tar").is_file()
    with pytest.raises(OfflineError) as failure:
        fetch_hub_root(HubRoot(DATASET, "main"), "train")
    message = str(failure.value)
    assert "zsbench is offline (HF_HUB_OFFLINE)" in message and "\n" not in message
    assert f"`hf download {DATASET} --repo-type dataset --revision main --include 'train/*'" in message


@pytest.fixture
def flowers_mirror(export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """The catalog's mirror of vtab/flowers (clip-benchmark/wds_vtab-flowers), holding the small export."""
    monkeypatch.delenv("ZSBENCH_OFFLINE")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    for state, url in serve(LoopbackServer(repos={("dataset", "clip-benchmark/wds_vtab-flowers"): folder_files(export)})):
        monkeypatch.setenv("HF_ENDPOINT", url)
        yield state


def flowers_args(root: Path, output: Path) -> list[str]:
    return ["eval", "--model_type", "internvl", "--model", "internvl_c_classification_hf", "--pretrained", str(DEMO_CHECKPOINT),
            "--dataset", "vtab/flowers", "--dataset_root", str(root), "--output", str(output), "--num_workers", "0"]


def test_eval_fetches_a_mirrored_dataset_into_its_root_once(flowers_mirror: LoopbackServer, export: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, flowers_args(tmp_path / "data", tmp_path / "fetched.json"))
    assert result.exit_code == 0, result.output
    assert f"Fetching vtab/flowers into {tmp_path / 'data'}: clip-benchmark webdataset mirror" in result.output
    folder = tmp_path / "data" / "wds_vtab-flowers"  # where the loaders look for an export of vtab/flowers
    assert sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()) == [
        "classnames.txt", "dataset_type.txt", "test/0.tar", "test/1.tar", "test/2.tar", "test/nshards.txt",
        "zeroshot_classification_templates.txt",
    ]  # the test split only, no huggingface_hub bookkeeping left behind
    requests = len(flowers_mirror.requests)
    result = CliRunner().invoke(main, flowers_args(tmp_path / "data", tmp_path / "again.json"))
    assert result.exit_code == 0 and "Fetching" not in result.output
    assert len(flowers_mirror.requests) == requests  # read from the root: not even a metadata request
    result = CliRunner().invoke(main, flowers_args(export, tmp_path / "disk.json"))
    assert result.exit_code == 0, result.output
    metrics = [json.loads((tmp_path / name).read_text())["metrics"] for name in ("fetched.json", "again.json", "disk.json")]
    assert metrics[0] == metrics[1] == metrics[2]


def test_a_mirror_file_whose_bytes_do_not_match_is_removed_and_named(flowers_mirror: LoopbackServer, tmp_path: Path) -> None:
    flowers_mirror.corrupt.add("test/2.tar")
    result = CliRunner().invoke(main, ["datasets", "download", "vtab/flowers", "--dataset_root", str(tmp_path / "data")])
    assert result.exit_code == 1
    assert "Checksum mismatch for test/2.tar of dataset clip-benchmark/wds_vtab-flowers@main: sha256" in error_line(result.output)
    assert not (tmp_path / "data" / "wds_vtab-flowers" / "test" / "2.tar").exists()
    assert not (tmp_path / "data" / ".zsbench-fetched").exists()
    flowers_mirror.corrupt.clear()
    result = CliRunner().invoke(main, ["datasets", "download", "vtab/flowers", "--dataset_root", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert len(flowers_mirror.content_requests("test/2.tar")) == 2 and len(flowers_mirror.content_requests("test/0.tar")) == 1
