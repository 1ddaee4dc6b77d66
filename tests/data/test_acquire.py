"""Fetching a dataset through the catalog's source, against a server on 127.0.0.1 reached through
``ZSBENCH_DATA_MIRROR``: `datasets download`, eval fetching on demand, and the ways a fetch fails."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.data.fixtures import write_cifar
from tests.loopback import closed_port, LoopbackServer, error_line, serve
from zsbench.cli import main
from zsbench.data.sources import MIRROR_VARIABLE, SOURCES, dataset_source

CIFAR_PATH = "/www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
REPO = Path(__file__).resolve().parents[2]


def cifar_archive(tmp_path: Path) -> bytes:
    """torchvision's cifar-10-python.tar.gz layout (cifar-10-batches-py/...), of the tests' small generated batches."""
    write_cifar(tmp_path / "cifar-source", count=8)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        bundle.add(tmp_path / "cifar-source" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return buffer.getvalue()


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LoopbackServer, str]]:
    """A mirror serving the generated CIFAR-10 archive at the catalog's host and path; zsbench online and pointed at it."""
    monkeypatch.delenv("ZSBENCH_OFFLINE")
    for state, url in serve(LoopbackServer(files={CIFAR_PATH: cifar_archive(tmp_path)})):
        monkeypatch.setenv(MIRROR_VARIABLE, url)
        yield state, url


@pytest.fixture
def catalog_checksum(mirror: tuple[LoopbackServer, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalog's cifar10 source (its URL, folder and extraction) with the generated archive's md5 and size,
    since torchvision's md5 pins the real archive."""
    data = mirror[0].files[CIFAR_PATH]
    real = dataset_source("cifar10")
    file = replace(real.files[0], checksum="md5:" + hashlib.md5(data).hexdigest(), size=len(data))  # noqa: S324
    monkeypatch.setitem(SOURCES._entries, "cifar10", lambda language: replace(real, files=(file,)))


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def evaluate(root: Path, output: Path, model: Path, *extra: str) -> tuple[int, str]:
    return run("eval", "--model_type", "internvl", "--model", "internvl_c_classification_hf", "--pretrained", str(model),
               "--dataset", "cifar10", "--dataset_root", str(root), "--output", str(output), "--num_workers", "0", *extra)


@pytest.mark.usefixtures("catalog_checksum")
def test_download_fetches_verifies_extracts_once(mirror: tuple[LoopbackServer, str], tmp_path: Path) -> None:
    state, _ = mirror
    code, log = run("datasets", "download", "cifar10", "--dataset_root", str(tmp_path / "data"))
    assert code == 0, log
    assert (tmp_path / "data" / "cifar-10-batches-py" / "test_batch").is_file()
    assert not (tmp_path / "data" / "cifar-10-python.tar.gz").exists()  # extracted, then removed
    assert f"zsbench eval --dataset cifar10 --dataset_root {tmp_path / 'data'}" in log
    code, log = run("datasets", "download", "cifar10", "--dataset_root", str(tmp_path / "data"))
    assert code == 0, log
    assert len(state.content_requests()) == 1


@pytest.mark.usefixtures("catalog_checksum")
def test_eval_fetches_a_missing_dataset_and_scores_it_as_the_same_data_on_disk(
    mirror: tuple[LoopbackServer, str], tmp_path: Path, tiny_hf_folder: Path
) -> None:
    state, _ = mirror
    code, log = evaluate(tmp_path / "fetched", tmp_path / "fetched.json", tiny_hf_folder)
    assert code == 0, log
    assert f"Fetching cifar10 into {tmp_path / 'fetched'}" in log and log.count("Fetching ") == 1
    write_cifar(tmp_path / "local", count=8)
    code, log = evaluate(tmp_path / "local", tmp_path / "local.json", tiny_hf_folder)
    assert code == 0, log
    fetched = json.loads((tmp_path / "fetched.json").read_text())["metrics"]
    assert fetched == json.loads((tmp_path / "local.json").read_text())["metrics"]
    code, log = evaluate(tmp_path / "fetched", tmp_path / "again.json", tiny_hf_folder)
    assert code == 0 and "Fetching" not in log
    assert len(state.content_requests()) == 1


@pytest.mark.usefixtures("catalog_checksum")
def test_a_wrong_checksum_is_one_line_naming_the_file_and_leaves_nothing(mirror: tuple[LoopbackServer, str], tmp_path: Path) -> None:
    state, _ = mirror
    state.files[CIFAR_PATH] = bytes(reversed(state.files[CIFAR_PATH]))  # same size, other bytes
    code, log = run("datasets", "download", "cifar10", "--dataset_root", str(tmp_path / "data"))
    assert code == 1
    assert error_line(log).startswith("Error: Checksum mismatch for cifar-10-python.tar.gz from http://127.0.0.1:")
    assert "The file was removed" in log
    assert [path.name for path in (tmp_path / "data").rglob("*")] == []


def test_the_catalog_s_size_is_checked_before_the_transfer(mirror: tuple[LoopbackServer, str], tmp_path: Path) -> None:
    """The real catalog entry (torchvision's archive is 170,498,071 bytes) against the small generated one."""
    code, log = run("datasets", "download", "cifar10", "--dataset_root", str(tmp_path / "data"))
    assert code == 1
    assert "is 30" in error_line(log) and "bytes, but 170498071 were expected: not fetched" in log
    assert [path.name for path in (tmp_path / "data").rglob("*")] == []


@pytest.mark.usefixtures("catalog_checksum")
def test_a_server_killed_mid_file_resumes_on_the_next_run(mirror: tuple[LoopbackServer, str], tmp_path: Path) -> None:
    state, _ = mirror
    state.cut_after[CIFAR_PATH] = 5_000
    code, log = run("datasets", "download", "cifar10", "--dataset_root", str(tmp_path / "data"))
    assert code == 1 and "stopped after 5000 " in error_line(log) and "resume" in log, log
    assert not (tmp_path / "data" / "cifar-10-batches-py").exists()
    code, log = run("datasets", "download", "cifar10", "--dataset_root", str(tmp_path / "data"))
    assert code == 0, log
    assert state.content_requests()[-1].headers.get("Range") == "bytes=5000-"
    assert (tmp_path / "data" / "cifar-10-batches-py" / "test_batch").is_file()


def test_a_missing_file_on_the_server_is_one_line(mirror: tuple[LoopbackServer, str], tmp_path: Path) -> None:
    del mirror[0].files[CIFAR_PATH]
    code, log = run("datasets", "download", "cifar10", "--dataset_root", str(tmp_path / "data"))
    assert code == 1 and "HTTP 404" in error_line(log), log


def test_a_closed_port_fails_fast_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    monkeypatch.delenv("ZSBENCH_OFFLINE")
    monkeypatch.setenv(MIRROR_VARIABLE, f"http://127.0.0.1:{port}")
    start = time.monotonic()
    code, log = run("datasets", "download", "cifar10", "--dataset_root", str(tmp_path / "data"))
    assert time.monotonic() - start < 15
    assert code == 1
    assert f"Cannot reach 127.0.0.1:{port}" in error_line(log) and "--offline" in log


@pytest.mark.parametrize("switch", ["--offline", "ZSBENCH_OFFLINE", "HF_HUB_OFFLINE"])
@pytest.mark.usefixtures("no_sockets")
def test_offline_a_missing_dataset_names_the_command_that_fetches_it(
    switch: str, tmp_path: Path, tiny_hf_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZSBENCH_OFFLINE")
    if switch != "--offline":
        monkeypatch.setenv(switch, "1")
    code, log = evaluate(tmp_path / "data", tmp_path / "r.json", tiny_hf_folder, *(["--offline"] if switch == "--offline" else []))
    assert code == 1, log
    assert "Cannot read dataset 'cifar10'" in log and "zsbench is offline" in log
    assert f"`zsbench datasets download cifar10 --dataset_root {tmp_path / 'data'}`" in log
    assert "Traceback" not in log and not (tmp_path / "data").exists()


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0, reason="needs unshare -n as root")
def test_offline_needs_no_network_at_all(tmp_path: Path, tiny_hf_folder: Path) -> None:
    """The same run with networking removed from the process (a new network namespace, loopback down)."""
    command = ["unshare", "-n", sys.executable, "-m", "zsbench", "eval", "--offline", "--model_type", "internvl",
               "--model", "internvl_c_classification_hf", "--pretrained", str(tiny_hf_folder), "--dataset", "cifar10",
               "--dataset_root", str(tmp_path / "data"), "--output", str(tmp_path / "r.json")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("ZSBENCH_OFFLINE", None)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    assert "zsbench is offline (ZSBENCH_OFFLINE, HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE)" in done.stderr
    assert "Traceback" not in done.stderr


def test_download_options_fail_in_one_line() -> None:
    for args, message in [
        (["datasets", "download"], "Missing argument 'NAMES...'"),
        (["datasets", "download", "cifar10"], "Pass --root DIR"),
        (["datasets", "download", "cifar10", "--root", "a", "--dataset_root", "b"], "not both"),
        (["datasets", "download", "cifar1O", "--root", "a"], "Unknown dataset with a source 'cifar1O'. Did you mean: cifar10"),
        (["datasets", "download", "cifar10", "--root", "a", "--split", "nope", "--dry-run"], None),
    ]:
        code, log = run(*args)
        if message is None:  # a split is checked when the data is read; a dry run only lists
            assert code == 0, log
            continue
        assert code != 0 and message in log and "Traceback" not in log, log
