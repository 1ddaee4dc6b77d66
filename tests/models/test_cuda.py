"""The CUDA paths: weights loaded straight onto the GPU, and fp16/bf16 there agree with fp32 on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from zsbench.models import load_clip

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)"),
]

TEXTS = ["a photo of a red circle.", "a large blue dog", "A small green triangle left of a yellow square."]


@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("model_name", ["internvl_c_retrieval_hf", "internvl_g_retrieval_hf"])
def test_cuda_matches_cpu_fp32(tiny_hf_folder: Path, precision: str, model_name: str) -> None:
    reference, _, tokenizer = load_clip("internvl", model_name, tiny_hf_folder)
    model, _, _ = load_clip("internvl", model_name, tiny_hf_folder, device="cuda", precision=precision)
    assert {p.device.type for p in model.parameters()} == {"cuda"}
    pixels = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ids = tokenizer(TEXTS)
    with torch.no_grad():
        image = model.encode_image(pixels.cuda()).float().cpu()
        text = model.encode_text(ids.cuda()).float().cpu()
        expected_image, expected_text = reference.encode_image(pixels), reference.encode_text(ids)
    minimum = 0.99999 if precision == "fp32" else 0.999
    assert F.cosine_similarity(image, expected_image).min() >= minimum
    assert F.cosine_similarity(text, expected_text).min() >= minimum
