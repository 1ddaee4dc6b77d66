"""`--pretrained` on the hub: a hub id, one file as hf://ORG/REPO/FILE (the seed's .pth), `--revision`, open_clip's
pretrained tags; offline from the cache; advice for weights that are nowhere. Against a hub on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tests.conftest import DEMO_CHECKPOINT
from tests.data.fixtures import write_cifar
from tests.loopback import LoopbackServer, error_line, folder_files, serve
from tests.models.test_open_clip import TINY_OPEN_CLIP
from zsbench.cli import main
from zsbench.eval.cache import checkpoint_digest
from zsbench.models.hub import is_hub_id, parse_hub_weights
from zsbench.models.ref import ModelRef

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub(demo_pth_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LoopbackServer, str]]:
    """The seed's two repositories in miniature: one with the .pth file, one with the Hugging Face folder."""
    repos = {("model", "test-org/InternVL"): {demo_pth_file.name: demo_pth_file.read_bytes(), "README.md": b"weights"},
             ("model", "test-org/zsbench-demo"): folder_files(DEMO_CHECKPOINT)}
    monkeypatch.delenv("ZSBENCH_OFFLINE")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    for state, url in serve(LoopbackServer(repos=repos)):
        monkeypatch.setenv("HF_ENDPOINT", url)
        yield state, url


def info(pretrained: str, model: str = "internvl_c_retrieval_hf", *extra: str) -> tuple[int, str]:
    """`zsbench info`'s exit code and its JSON (stdout) when it succeeds, else its one-line error."""
    result = CliRunner().invoke(main, ["info", "--model", model, "--pretrained", pretrained, *extra])
    return result.exit_code, result.stdout if result.exit_code == 0 else error_line(result.stderr)


def test_hub_names_and_local_paths_are_told_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pretrained").mkdir()
    assert is_hub_id("OpenGVLab/InternVL-14B-224px")
    assert not is_hub_id("pretrained/InternVL-14B-224px")  # its first part is a folder here: a path
    assert not is_hub_id("weights/internvl_c_13b_224px.pth")  # a checkpoint file's name: a path
    weights = parse_hub_weights("hf://OpenGVLab/InternVL@v1/internvl_c_13b_224px.pth")
    assert (weights.repo_id, weights.filename, weights.revision) == ("OpenGVLab/InternVL", "internvl_c_13b_224px.pth", "v1")
    assert parse_hub_weights("hf://OpenGVLab/InternVL-14B-224px", "main").filename is None


def test_the_seed_s_pth_from_the_hub_loads_and_keys_the_caches_like_the_same_file_on_disk(
    hub: tuple[LoopbackServer, str], demo_pth_file: Path, tmp_path: Path
) -> None:
    state, _ = hub
    pth = f"hf://test-org/InternVL/{demo_pth_file.name}"
    options = ["--tokenizer", str(demo_pth_file.parent), "--model_config", str(demo_pth_file.parent / "demo_config.json")]
    code, log = info(pth, "internvl_c_classification", *options)
    assert code == 0, log
    assert [r.path.rsplit("/", 1)[1] for r in state.content_requests()] == [demo_pth_file.name]  # that file only
    code, local = info(str(demo_pth_file), "internvl_c_classification", *options)
    assert json.loads(log)["parameters"] == json.loads(local)["parameters"]
    hub_ref = ModelRef("internvl", "internvl_c_classification", pth, *options[1::2])
    local_ref = ModelRef("internvl", "internvl_c_classification", str(demo_pth_file), *options[1::2])
    assert checkpoint_digest(hub_ref) == checkpoint_digest(local_ref)
    # The embedding cache keys on the fetched file: a second evaluation is served from it.
    write_cifar(tmp_path / "data", count=4)
    outputs = []
    for run in range(2):
        result = CliRunner().invoke(main, ["eval", "--model_type", "internvl", "--model", "internvl_c_classification",
                                           "--pretrained", pth, *options, "--dataset", "cifar10", "--dataset_root",
                                           str(tmp_path / "data"), "--output", str(tmp_path / f"r{run}.json"), "--num_workers", "0"])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert "from cache" not in outputs[0] and re.search(r"from cache: 0 image\(s\), [1-9]\d* prompt\(s\)", outputs[1])
    assert len(state.content_requests()) == 1


def test_a_hub_id_fetches_the_folder_once_then_works_offline_without_a_socket(
    hub: tuple[LoopbackServer, str], monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    state, _ = hub
    code, online = info("test-org/zsbench-demo", "internvl_c_retrieval_hf", "--revision", "main")
    assert code == 0, online
    fetched = len(state.content_requests())
    assert fetched == 4  # config.json, model.safetensors, tokenizer.model, zsbench_demo_training.json (not README.md)
    request.getfixturevalue("no_sockets")
    monkeypatch.setenv("ZSBENCH_OFFLINE", "1")
    code, offline = info("test-org/zsbench-demo", "internvl_c_retrieval_hf", "--revision", "main")
    assert code == 0 and offline == online
    code, missing = info("test-org/not-fetched")
    assert code == 1
    assert "test-org/not-fetched is not in the local Hugging Face cache" in missing
    assert "zsbench is offline (ZSBENCH_OFFLINE)" in missing and "`hf download test-org/not-fetched`" in missing


def test_hub_errors_are_one_line(hub: tuple[LoopbackServer, str]) -> None:
    for args, message in [
        (["test-org/zsbench-demo", "internvl_c_retrieval_hf", "--revision", "v9"], "no such revision"),
        (["test-org/nothing-here"], "No repository test-org/nothing-here on http://127.0.0.1:"),
        (["hf://test-org/InternVL/missing.pth", "internvl_c_classification"], "has no file missing.pth"),
        (["hf://test-org/InternVL@main/x.pth", "internvl_c_classification", "--revision", "v2"], "pins @main and --revision says v2"),
    ]:
        code, log = info(*args)
        assert code == 1 and message in log, log


def test_a_missing_seed_checkpoint_path_names_its_hub_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pretrained").mkdir()
    code, log = info("pretrained/internvl_c_13b_224px.pth", "internvl_c_classification")
    assert code == 1
    assert "pass --pretrained hf://OpenGVLab/InternVL/internvl_c_13b_224px.pth" in log
    assert "`hf download OpenGVLab/InternVL internvl_c_13b_224px.pth --local-dir pretrained`" in log
    code, log = info("pretrained/InternVL-14B-224px")
    assert code == 1
    assert "pass --pretrained OpenGVLab/InternVL-14B-224px" in log
    assert "`hf download OpenGVLab/InternVL-14B-224px --local-dir pretrained/InternVL-14B-224px`" in log
    assert "huggingface-cli" not in log


OPEN_CLIP_WRAPPER = """
import sys, open_clip
from open_clip.pretrained import _PRETRAINED, _pcfg
open_clip.add_model_config(sys.argv[1])
# A tag in open_clip's own registry, as laion2b_s34b_b79k is for ViT-B-32: on the hub, in open_clip's default file.
_PRETRAINED["zsbench-tiny-vit"] = {"test_tag": _pcfg(hf_hub="test-org/tiny-clip/")}
from zsbench.cli import main
main(sys.argv[2:], prog_name="zsbench")
"""


@pytest.fixture
def open_clip_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LoopbackServer, Path]]:
    open_clip = pytest.importorskip("open_clip")
    config = tmp_path / "zsbench-tiny-vit.json"
    config.write_text(json.dumps(TINY_OPEN_CLIP))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    torch.save(open_clip.create_model("zsbench-tiny-vit").state_dict(), tmp_path / "open_clip_pytorch_model.bin")
    repos = {("model", "test-org/tiny-clip"): {"open_clip_pytorch_model.bin": (tmp_path / "open_clip_pytorch_model.bin").read_bytes()}}
    for state, url in serve(LoopbackServer(repos=repos)):
        monkeypatch.setenv("HF_ENDPOINT", url)
        yield state, config


def run_with_tag(config: Path, tmp_path: Path, *args: str, offline: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_CACHE": str(tmp_path / "hub-cache")}
    env.pop("ZSBENCH_OFFLINE", None)
    if offline:
        env["ZSBENCH_OFFLINE"] = "1"
    return subprocess.run([sys.executable, "-c", OPEN_CLIP_WRAPPER, str(config), *args], env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def test_an_open_clip_tag_is_fetched_through_open_clip_s_registry(open_clip_hub: tuple[LoopbackServer, Path], tmp_path: Path) -> None:
    state, config = open_clip_hub
    args = ["info", "--model_type", "open_clip", "--model", "zsbench-tiny-vit", "--pretrained", "test_tag"]
    online = run_with_tag(config, tmp_path, *args)
    assert online.returncode == 0, online.stderr
    # open_clip's hf_hub_download, its .safetensors alternative first (absent here), then the file its registry names.
    assert [r.path for r in state.content_requests()] == ["/test-org/tiny-clip/resolve/main/open_clip_pytorch_model.bin"]
    offline = run_with_tag(config, tmp_path, *args, offline=True)
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout) == json.loads(online.stdout)
    assert len(state.content_requests()) == 1


def test_an_open_clip_tag_not_fetched_names_its_command_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    open_clip = pytest.importorskip("open_clip")
    from open_clip.pretrained import _PRETRAINED, _pcfg

    config = tmp_path / "zsbench-tiny-vit.json"
    config.write_text(json.dumps(TINY_OPEN_CLIP))
    open_clip.add_model_config(config)
    monkeypatch.setitem(_PRETRAINED, "zsbench-tiny-vit", {"test_tag": _pcfg(hf_hub="test-org/tiny-clip/")})
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    code, log = info("test_tag", "zsbench-tiny-vit", "--model_type", "open_clip")
    assert code == 1
    assert "open_clip's zsbench-tiny-vit weights 'test_tag' are not in the local caches, and zsbench is offline" in log
    assert "`hf download test-org/tiny-clip`" in log


def test_clip_benchmark_s_default_tag_is_in_open_clip_s_registry() -> None:
    """`--model ViT-B-32-quickgelu --pretrained laion400m_e32` (CLIP_benchmark's defaults) resolve through open_clip's
    registry to a download; offline (as tests run) and not cached, it names the command that fetches it."""
    import open_clip

    assert open_clip.get_pretrained_cfg("ViT-B-32-quickgelu", "laion400m_e32")
    code, log = info("laion400m_e32", "ViT-B-32-quickgelu", "--model_type", "open_clip")
    assert code == 1 and "weights 'laion400m_e32' are not in the local caches, and zsbench is offline" in log
