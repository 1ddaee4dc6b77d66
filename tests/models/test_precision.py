"""fp16 and bf16 models agree with fp32 (cosine >= 0.999), on both embedding paths of C and G."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from zsbench.models import load_clip

TEXTS = ["a photo of a red circle.", "a large blue dog", "A small green triangle left of a yellow square."]


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("model_name", ["internvl_c_retrieval_hf", "internvl_g_retrieval_hf"])
def test_reduced_precision_matches_fp32(tiny_hf_folder: Path, precision: str, model_name: str) -> None:
    reference, _, tokenizer = load_clip("internvl", model_name, tiny_hf_folder, precision="fp32")
    model, _, _ = load_clip("internvl", model_name, tiny_hf_folder, precision=precision)
    pixels = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ids = tokenizer(TEXTS)
    with torch.no_grad():
        pairs = [
            (model.encode_image(pixels), reference.encode_image(pixels)),
            (model.encode_text(ids), reference.encode_text(ids)),
        ]
    for low, full in pairs:
        assert low.dtype == {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        cosine = F.cosine_similarity(low.float(), full, dim=-1)
        assert cosine.min().item() >= 0.999, cosine
