"""`zsbench eval` on a GPU: fp16 by default (as the seed runs), GPU memory reported, metrics as on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tests.data.fixtures import write_cifar
from zsbench.cli import main

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)"),
]


def test_eval_on_cuda_defaults_to_fp16_and_matches_cpu(tmp_path: Path, tiny_hf_folder: Path) -> None:
    write_cifar(tmp_path / "data", count=40)
    common = ["eval", "--model_type", "internvl", "--model", "internvl_c_classification_hf", "--pretrained", str(tiny_hf_folder),
              "--dataset", "cifar10", "--dataset_root", str(tmp_path / "data"), "--quiet", "--num_workers", "2"]
    runner = CliRunner()
    assert runner.invoke(main, [*common, "--output", str(tmp_path / "gpu.json")]).exit_code == 0
    assert runner.invoke(main, [*common, "--device", "cpu", "--output", str(tmp_path / "cpu.json")]).exit_code == 0
    gpu, cpu = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("gpu", "cpu"))
    assert (gpu["device"], gpu["precision"]) == ("cuda", "fp16")
    assert gpu["throughput"]["peak_gpu_memory_mb"] > 0 and gpu["env"]["gpu"]
    # fp16 may flip a near-tie or two among 40 images; anything more is a numerics bug.
    assert abs(gpu["metrics"]["acc1"] - cpu["metrics"]["acc1"]) <= 2 / 40
