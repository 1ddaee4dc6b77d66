"""InternVL-G's image path: sizes from the config, cross-attention always applied, ensemble as the original."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from zsbench.models import load_clip


def test_g_embedding_is_sum_of_normalised_c_and_query_embeddings(tiny_hf_folder: Path) -> None:
    model_g, _, _ = load_clip("internvl", "internvl_g_retrieval_hf", tiny_hf_folder)
    model_c, _, _ = load_clip("internvl", "internvl_c_retrieval_hf", tiny_hf_folder)
    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        g = model_g.encode_image(pixels)
        c = model_c.encode_image(pixels)
        vision = model_g.vision_model(pixels)
        queries = model_g.qllama.encode_queries(model_g.query_tokens.expand(2, -1, -1), vision)
        q = model_g.clip_projector2(queries)
    torch.testing.assert_close(g, F.normalize(q, dim=-1) + F.normalize(c, dim=-1))
    assert not torch.allclose(g.norm(dim=-1), torch.ones(2))  # not renormalised


def test_cross_attention_runs_with_config_sizes(tiny_hf_folder: Path) -> None:
    # The tiny config has 6 queries and a 48-wide vision tower (the original hard-codes 96 and 3200
    # and would silently skip cross-attention here).
    model, _, _ = load_clip("internvl", "internvl_g_retrieval_hf", tiny_hf_folder)
    assert model.query_tokens.shape == (1, 6, 64)
    cross = [layer.cross_attn for layer in model.qllama.model.layers]
    assert [c is not None for c in cross] == [True, False, True]
    assert cross[0].k_proj.weight.shape == (64, 48)
    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model.encode_image(pixels)
        cross[2].o_proj.weight.mul_(2.0)
        after = model.encode_image(pixels)
    assert (before - after).abs().max() > 1e-4


def test_text_path_ignores_cross_attention_and_queries(tiny_hf_folder: Path) -> None:
    model_g, _, tokenizer = load_clip("internvl", "internvl_g_retrieval_hf", tiny_hf_folder)
    ids = tokenizer(["a photo of a red circle.", "a dog"])
    with torch.no_grad():
        before = model_g.encode_text(ids)
        model_g.qllama.model.layers[0].cross_attn.o_proj.weight.zero_()
        model_g.query_tokens.zero_()
        after = model_g.encode_text(ids)
    torch.testing.assert_close(before, after, rtol=0, atol=0)
