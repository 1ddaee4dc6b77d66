"""The InternVL tokenizer: prefix, BOS/EOS, padding with 0 on the right, truncation at 80."""

from __future__ import annotations

from pathlib import Path

import pytest
import sentencepiece
import torch

from zsbench.errors import TokenizerError
from zsbench.models import InternVLTokenizer, load_clip
from zsbench.models.config import InternVLConfig, TextConfig


@pytest.fixture(scope="module")
def tokenizer(tokenizer_file: Path, tiny_config: InternVLConfig) -> InternVLTokenizer:
    return InternVLTokenizer(tokenizer_file, tiny_config.text)


def test_prefix_bos_eos_and_right_padding(tokenizer: InternVLTokenizer, tokenizer_file: Path) -> None:
    sp = sentencepiece.SentencePieceProcessor(model_file=str(tokenizer_file))
    batch = tokenizer(["a dog", "a photo of a red circle."])
    long_ids = [1, *sp.encode("summarize:a photo of a red circle."), 2]
    short_ids = [1, *sp.encode("summarize:a dog"), 2]
    assert batch.dtype == torch.long
    assert batch.shape == (2, len(long_ids))  # padded to the longest, not to 80
    assert batch[1].tolist() == long_ids
    assert batch[0].tolist() == short_ids + [0] * (len(long_ids) - len(short_ids))


def test_prefix_has_no_space(tokenizer: InternVLTokenizer, tokenizer_file: Path) -> None:
    sp = sentencepiece.SentencePieceProcessor(model_file=str(tokenizer_file))
    assert tokenizer.encode("a dog")[1:-1] == sp.encode("summarize:a dog")
    assert tokenizer.encode("a dog") != tokenizer.encode(" a dog")


def test_truncation_keeps_bos_and_eos_within_80(tokenizer: InternVLTokenizer, tokenizer_file: Path) -> None:
    sp = sentencepiece.SentencePieceProcessor(model_file=str(tokenizer_file))
    text = " ".join(["red circle"] * 100)
    ids = tokenizer.encode(text)
    assert len(ids) == 80
    assert ids[0] == 1 and ids[-1] == 2
    assert ids[1:-1] == sp.encode("summarize:" + text)[:78]
    assert tokenizer([text, "a"]).shape == (2, 80)


def test_pad_to_fixed_length(tokenizer: InternVLTokenizer) -> None:
    batch = tokenizer(["a dog"], pad_to=80)
    assert batch.shape == (1, 80)
    assert (batch[0, len(tokenizer.encode("a dog")):] == 0).all()


def test_special_tokens_in_text_map_to_their_ids(tokenizer: InternVLTokenizer) -> None:
    ids = tokenizer.encode("a</s>b")
    assert 2 in ids[1:-1]


def test_matches_transformers_llama_tokenizer(tokenizer: InternVLTokenizer, tokenizer_file: Path, tmp_path: Path) -> None:
    """transformers' LlamaTokenizer (legacy) as an independent reference for ordinary text."""
    transformers = pytest.importorskip("transformers")
    (tmp_path / "tokenizer.model").write_bytes(tokenizer_file.read_bytes())
    reference = transformers.LlamaTokenizer.from_pretrained(
        str(tmp_path), legacy=True, add_bos_token=True, add_eos_token=True
    )
    texts = ["a photo of a dog.", "A small green triangle, left of a yellow square!", "日本 ñ", "a</s>b", "x" * 200]
    for text in texts:
        expected = reference("summarize:" + text, max_length=80, truncation=True)["input_ids"]
        assert tokenizer.encode(text) == expected, text


def test_whitespace_runs_follow_sentencepiece(tokenizer: InternVLTokenizer, tokenizer_file: Path) -> None:
    """The original's slow LlamaTokenizer hands text to sentencepiece unchanged; transformers 5's
    converted fast tokenizer merges runs of spaces differently, so sentencepiece is the reference here."""
    sp = sentencepiece.SentencePieceProcessor(model_file=str(tokenizer_file))
    assert tokenizer.encode("  two  spaces")[1:-1] == sp.encode("summarize:  two  spaces")


def test_padding_to_longest_equals_padding_to_80(tiny_hf_folder: Path) -> None:
    for model_name in ("internvl_c_retrieval_hf", "internvl_g_retrieval_hf"):
        model, _, tokenizer = load_clip("internvl", model_name, tiny_hf_folder)
        texts = ["a dog", "a photo of a small red circle above a blue square.", "cat"]
        with torch.no_grad():
            longest = model.encode_text(tokenizer(texts))
            fixed = model.encode_text(tokenizer(texts, pad_to=80))
            alone = torch.cat([model.encode_text(tokenizer([text])) for text in texts])
        assert tokenizer(texts).shape[1] < 80
        torch.testing.assert_close(longest, fixed, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(longest, alone, rtol=1e-5, atol=1e-5)


def test_special_ids_are_checked_against_the_model(tokenizer_file: Path, tiny_config: InternVLConfig) -> None:
    other = TextConfig(**{**tiny_config.text.__dict__, "eos_token_id": 3})
    with pytest.raises(TokenizerError, match="special ids"):
        InternVLTokenizer(tokenizer_file, other)
    small = TextConfig(**{**tiny_config.text.__dict__, "vocab_size": 100})
    with pytest.raises(TokenizerError, match="300 pieces"):
        InternVLTokenizer(tokenizer_file, small)
