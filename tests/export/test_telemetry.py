"""ONNX Runtime's telemetry stays off: its Linux wheels write a device id and an event database under
~/.cache/Microsoft/DeveloperTools/ (and upload events) unless ORT_DISABLE_TELEMETRY is set before import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.data.fixtures import write_cifar

REPO = Path(__file__).resolve().parents[2]


def test_an_onnx_run_writes_nothing_into_the_home_folder(tmp_path: Path, tiny_hf_folder: Path) -> None:
    """The sweep's case, with a fake HOME: `eval --backend onnx` (exporting on the way) leaves no telemetry files."""
    home = tmp_path / "home"
    home.mkdir()
    write_cifar(tmp_path / "cifar", count=4)
    environment = {key: value for key, value in os.environ.items() if key not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME")}
    environment.update(HOME=str(home), PYTHONPATH=str(REPO), ZSBENCH_CACHE_DIR=str(tmp_path / "cache"))
    command = [sys.executable, "-m", "zsbench", "eval", "--model_type", "internvl", "--model", "internvl_c_classification_hf",
               "--pretrained", str(tiny_hf_folder), "--dataset", "cifar10", "--dataset_root", str(tmp_path / "cifar"),
               "--output", str(tmp_path / "r.json"), "--backend", "onnx", "--export_dir", str(tmp_path / "export"),
               "--device", "cpu", "--num_workers", "0", "--quiet"]
    run = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "r.json").is_file()
    assert sorted(str(path.relative_to(home)) for path in home.rglob("*")) == []
