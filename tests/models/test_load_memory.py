"""Loading does not hold two copies of the weights in host memory (measured in a fresh process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from zsbench.models import InternVLConfig
from zsbench.models.checkpoints import save_hf_checkpoint

from ..conftest import random_internvl

MEASURE = """
import json, sys, threading, time
import torch
from zsbench.models import load_clip
import zsbench.models.transform  # torchvision, which load_clip's transform imports: a module, not a copy of the weights

def private_mb():  # anonymous memory: the checkpoint file pages are not copies
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssAnon")) / 1024

peak, done = [private_mb()], threading.Event()
def sample():
    while not done.is_set():
        peak.append(private_mb())
        time.sleep(0.002)
before = peak[0]
sampler = threading.Thread(target=sample)
sampler.start()
model, _, _ = load_clip("internvl", "internvl_c_retrieval_hf", sys.argv[1], precision=sys.argv[2])
checksum = sum(float(p.float().sum()) for p in model.parameters())  # touch every weight
done.set()
sampler.join()
print(json.dumps({"peak_increase_mb": max(peak) - before,
                  "weights_mb": sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20}))
"""

@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_peak_host_memory_is_about_one_copy(tmp_path: Path, tiny_config: InternVLConfig, tokenizer_file: Path, precision: str) -> None:
    # A ~40M-parameter model (160 MB in fp32): big enough that a second copy would show.
    data = tiny_config.to_hf_dict()
    data["vision_config"].update(hidden_size=512, intermediate_size=2048, num_hidden_layers=8, num_attention_heads=8)
    data["qllama_config"].update(hidden_size=512, intermediate_size=1024, num_hidden_layers=6)
    config = InternVLConfig.from_hf_dict(data)
    folder = tmp_path / "medium"
    save_hf_checkpoint(random_internvl(config, "hf", seed=0), config.to_hf_dict(), folder, tokenizer_file)
    output = subprocess.run(
        [sys.executable, "-c", MEASURE, str(folder), precision], check=True, capture_output=True, text=True
    ).stdout
    measured = json.loads(output.strip().splitlines()[-1])
    file_mb = (folder / "model.safetensors").stat().st_size / 2**20
    assert measured["weights_mb"] > 50
    # At most one private copy of the weights in the target dtype (a naive load holds the whole file
    # in memory and the converted copy beside it).
    assert measured["peak_increase_mb"] < 1.25 * measured["weights_mb"] + 30, (measured, file_mb)
