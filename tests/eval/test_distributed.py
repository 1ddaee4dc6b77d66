"""`torchrun --nproc_per_node 2 zsbench eval` (gloo, CPU) against one process: same metrics, one result
written by rank 0 with `world_size` 2 and the ranks' counts summed; a rank that raises fails the run
and leaves no result. Data: the demo's generated sets at uneven sizes (1,001 and 201 images)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.data.fixtures import image_bytes, write_wds
from zsbench.cli import main
from zsbench.demo.generate import DemoDatasetSpec, generate_demo_data
from zsbench.errors import DistributedError
from zsbench.eval.distributed import RankGroup, rank_device, rank_from_env

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "pretrained" / "zsbench-demo"
TORCHRUN = Path(sys.executable).with_name("torchrun")
pytestmark = pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside this Python")


def eval_args(root: Path, output: str, *extra: str) -> list[str]:
    return ["eval", "--model_type", "internvl", "--model", "internvl_c_classification_hf", "--pretrained", str(DEMO),
            "--dataset", "wds/shapes_classification", "wds/shapes_retrieval", "--dataset_root", f"{root}/{{dataset}}",
            "--output", output, "--batch_size", "64", "--num_workers", "0", "--quiet", *extra]


def torchrun(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "zsbench", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=REPO)


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo_data")
    generate_demo_data(root, datasets=(
        DemoDatasetSpec("shapes_classification", "classification", num_test=1001, num_train=1, samples_per_shard=400),
        DemoDatasetSpec("shapes_retrieval", "retrieval", num_test=201, num_train=1, samples_per_shard=100),
    ))
    return root


def test_two_ranks_give_the_single_process_metrics(demo_data: Path, tmp_path: Path, isolated_embedding_cache: Path) -> None:
    single = CliRunner().invoke(main, eval_args(demo_data, f"{tmp_path}/single/{{dataset}}.json", "--no-cache"))
    assert single.exit_code == 0, single.output
    ran = torchrun(eval_args(demo_data, f"{tmp_path}/ranks/{{dataset}}.json", "--distributed", "--cache_features"))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.count("evaluation(s) run") == 1  # rank 0 alone reports

    for name, images in (("shapes_classification", 1001), ("shapes_retrieval", 201)):
        reference = json.loads((tmp_path / "single" / f"{name}.json").read_text())
        result = json.loads((tmp_path / "ranks" / f"{name}.json").read_text())
        assert (reference["world_size"], result["world_size"]) == (1, 2)
        # Every image and text is encoded in the batch one process gives it, so the embeddings and
        # the metrics are the same to the bit (not merely within 1e-6).
        assert result["metrics"] == reference["metrics"]
        assert result["throughput"]["images"] == reference["throughput"]["images"] == images
        assert result["throughput"]["texts"] == reference["throughput"]["texts"]
    # Rank 0 wrote the gathered image features, in dataset order, for the next run; a second
    # torchrun run is served by both caches, each rank reading its share, with the same metrics.
    assert len(list((isolated_embedding_cache / "images").glob("*.safetensors"))) == 2
    again = torchrun(eval_args(demo_data, f"{tmp_path}/warm/{{dataset}}.json", "--cache_features"))
    assert again.returncode == 0, again.stdout + again.stderr
    for name, images in (("shapes_classification", 1001), ("shapes_retrieval", 201)):
        reference = json.loads((tmp_path / "single" / f"{name}.json").read_text())
        result = json.loads((tmp_path / "warm" / f"{name}.json").read_text())
        assert result["throughput"]["images"] == 0 and result["throughput"]["cached_images"] == images
        for key, value in reference["metrics"].items():
            assert result["metrics"][key] == pytest.approx(value, abs=1e-6), key
    classification = json.loads((tmp_path / "warm" / "shapes_classification.json").read_text())
    assert classification["throughput"]["texts"] == 0 and classification["throughput"]["cached_texts"] > 0


def test_a_rank_that_raises_fails_the_run_without_a_result(tmp_path: Path) -> None:
    samples = [(image_bytes(index, "PNG", (16, 16)), index % 2) for index in range(8)]
    samples[6] = (b"not an image", 0)  # in rank 1's half (images 4-7)
    root = write_wds(tmp_path / "data" / "shapes_classification", samples, dataset_type="classification",
                     classnames=("circle", "square"), templates=("a photo of a {c}.",), image_field="png")
    output = tmp_path / "out" / "result.json"
    args = eval_args(tmp_path / "data", str(output))
    args[args.index("wds/shapes_retrieval")] = "--no-cache"
    ran = torchrun(args)
    assert ran.returncode != 0
    log = ran.stdout + ran.stderr
    assert "Cannot read image" in log and "s0000006" in log
    root_cause = log[log.index("Root Cause"):]
    assert "rank      : 1" in root_cause  # torchrun names the rank that raised, not the one it left waiting
    assert not output.exists() and not list(output.parent.glob("*.json"))
    assert root.is_dir()


@pytest.mark.parametrize("count", [0, 1, 7, 1001])
@pytest.mark.parametrize("world_size", [1, 2, 3, 8])
@pytest.mark.parametrize("unit", [1, 64])
def test_shards_cover_every_item_once_in_order(count: int, world_size: int, unit: int) -> None:
    shards = [RankGroup(rank, world_size).shard(count, unit) for rank in range(world_size)]
    assert [index for shard in shards for index in shard] == list(range(count))
    if -(-count // unit) >= world_size:  # whole batches: each rank's batches are the single process's
        assert all(shard.start % unit == 0 for shard in shards)
        assert max(map(len, shards)) - min(map(len, shards)) <= unit
    else:
        assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_rank_comes_from_torchruns_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert rank_from_env() == (0, 1, 0)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(DistributedError, match="outside 0..WORLD_SIZE-1"):
        rank_from_env()
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(DistributedError, match="RANK='one' is not an integer"):
        rank_from_env()
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert rank_from_env() == (3, 4, 1)
    assert rank_device("cuda", 1) == "cuda:1" and rank_device("cpu", 1) == "cpu"
