"""bf16 on the CPU for the torch backend: autocast where the CPU multiplies bf16 natively, a clear refusal where it does not.

Both paths go through the seam the backend itself asks, `zsbench.runtime.cpu_features.native_bf16`;
where this CPU lacks bf16 hardware, the supported path is reached by making the seam say it has it
(torch then computes the same bf16 arithmetic through its emulation, only slower).
"""

from __future__ import annotations

import platform
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import DEMO_CHECKPOINT
from zsbench.backends import ModelRef, load_backend
from zsbench.errors import UnsupportedPrecisionError
from zsbench.runtime import cpu_features

CPU = torch.device("cpu")


@pytest.mark.parametrize("head", ["c", "g"])
def test_bf16_autocast_stays_within_bf16_tolerance_of_fp32(monkeypatch: pytest.MonkeyPatch, head: str) -> None:
    if cpu_features.native_bf16() is None:
        monkeypatch.setattr(cpu_features, "native_bf16", lambda: "AVX512-BF16")
    ref = ModelRef("internvl", f"internvl_{head}_retrieval_hf", str(DEMO_CHECKPOINT))
    bf16, fp32 = load_backend("torch", ref, CPU, "bf16"), load_backend("torch", ref, CPU, "fp32")
    encoder = bf16.encoder
    # Autocast: the weights stay fp32, the matrix multiplies run in bf16.
    assert {p.dtype for p in encoder.model.parameters()} == {torch.float32}
    pixels = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    ids = bf16.tokenizer(["a photo of a red circle.", "a large blue square", "two green triangles."])
    assert encoder._encode_image(pixels).dtype == torch.bfloat16
    for low, full in ((encoder.encode_image(pixels), fp32.encoder.encode_image(pixels)),
                      (encoder.encode_text(ids), fp32.encoder.encode_text(ids))):
        cosine = F.cosine_similarity(low, full, dim=-1)
        assert cosine.min().item() >= 0.999, cosine
        assert not torch.equal(low, full)
    assert encoder.describe()["autocast"].startswith("bfloat16 (")


def test_bf16_is_refused_on_a_cpu_without_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_features, "native_bf16", lambda: None)
    ref = ModelRef("internvl", "internvl_c_retrieval_hf", str(DEMO_CHECKPOINT))
    with pytest.raises(UnsupportedPrecisionError, match="needs native bf16 arithmetic") as caught:
        load_backend("torch", ref, CPU, "bf16")
    assert "\n" not in str(caught.value) and "Use --precision fp32" in str(caught.value)
    assert load_backend("torch", ref, CPU, "fp32").encoder.autocast is None  # fp32 never asks


@pytest.mark.skipif(platform.machine() != "x86_64" or not Path("/proc/cpuinfo").is_file(), reason="reads x86 Linux CPU flags")
def test_the_seam_agrees_with_the_kernels_cpu_flags() -> None:
    flags = set(next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split())
    assert (cpu_features.native_bf16() is not None) == bool(flags & {"avx512_bf16", "amx_bf16"})
