"""Save/load round trips in both formats, and strict-loading errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from zsbench.errors import CheckpointError, ConfigError, TokenizerError
from zsbench.models import load_clip
from zsbench.models.checkpoints import save_pth_checkpoint
from zsbench.models.config import InternVLConfig

from ..conftest import random_internvl

TEXTS = ["a photo of a red circle.", "a large blue dog", "a small green triangle left of a yellow square."]


def embeddings(model: torch.nn.Module, tokenizer, image_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = torch.randn(3, 3, image_size, image_size, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        return model.encode_image(pixels), model.encode_text(tokenizer(TEXTS))


def copy_folder(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


@pytest.mark.parametrize("head", ["c", "g"])
def test_hf_round_trip_gives_identical_embeddings(tiny_hf_folder: Path, tiny_config: InternVLConfig, head: str) -> None:
    reference = random_internvl(tiny_config, "hf", head, seed=1)  # the weights tiny_hf_folder was saved with
    model, _, tokenizer = load_clip("internvl", f"internvl_{head}_retrieval_hf", tiny_hf_folder)
    assert model.image_head == head
    for ours, theirs in zip(embeddings(model, tokenizer), embeddings(reference, tokenizer)):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_pth_round_trip_gives_identical_embeddings(tiny_pth_file: Path, tiny_config: InternVLConfig) -> None:
    reference = random_internvl(tiny_config, "pth", seed=2)
    model, _, tokenizer = load_clip(
        "internvl", "internvl_c_classification", tiny_pth_file, model_config=tiny_pth_file.parent / "tiny_config.json"
    )
    for ours, theirs in zip(embeddings(model, tokenizer), embeddings(reference, tokenizer)):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_pth_and_hf_formats_compute_the_same_internvl_c(tiny_config: InternVLConfig, tmp_path: Path, tokenizer_file: Path) -> None:
    hf_model = random_internvl(tiny_config, "hf", seed=3)
    save_pth_checkpoint(hf_model, tmp_path / "c.pth")  # keeps the InternVL-C weights only
    shutil.copyfile(tokenizer_file, tmp_path / "tokenizer.model")
    (tmp_path / "config.json").write_text(json.dumps(tiny_config.to_hf_dict()))
    pth_model, _, tokenizer = load_clip("internvl", "internvl_c_retrieval", tmp_path / "c.pth", model_config=tmp_path / "config.json")
    for ours, theirs in zip(embeddings(pth_model, tokenizer), embeddings(hf_model, tokenizer)):
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("layout", ["bin", "sharded_safetensors", "sharded_bin"])
def test_hf_weight_file_layouts(tiny_hf_folder: Path, tmp_path: Path, layout: str) -> None:
    folder = copy_folder(tiny_hf_folder, tmp_path / "ckpt")
    (folder / "model.safetensors").unlink()
    state = random_internvl(InternVLConfig.from_hf_dict(json.loads((folder / "config.json").read_text())), "hf", seed=1).state_dict()
    if layout == "bin":
        torch.save(state, folder / "pytorch_model.bin")
    else:
        keys = sorted(state)
        halves = {"00001": keys[: len(keys) // 2], "00002": keys[len(keys) // 2 :]}
        suffix = "safetensors" if layout == "sharded_safetensors" else "bin"
        prefix = "model" if suffix == "safetensors" else "pytorch_model"
        weight_map = {}
        for number, shard_keys in halves.items():
            name = f"{prefix}-{number}-of-00002.{suffix}"
            shard = {key: state[key].contiguous() for key in shard_keys}
            save_file(shard, str(folder / name)) if suffix == "safetensors" else torch.save(shard, folder / name)
            weight_map.update(dict.fromkeys(shard_keys, name))
        (folder / f"{prefix}.{suffix}.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    model, _, tokenizer = load_clip("internvl", "internvl_g_retrieval_hf", folder)
    reference, _, _ = load_clip("internvl", "internvl_g_retrieval_hf", tiny_hf_folder)
    for ours, theirs in zip(embeddings(model, tokenizer), embeddings(reference, tokenizer)):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_weights_load_straight_into_the_requested_dtype(tiny_hf_folder: Path) -> None:
    model, _, _ = load_clip("internvl", "internvl_c_retrieval_hf", tiny_hf_folder, precision="bf16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert not any(p.is_meta for p in model.parameters())


def rewrite_state(folder: Path, edit) -> None:
    from safetensors.torch import load_file

    state = load_file(str(folder / "model.safetensors"))
    edit(state)
    save_file(state, str(folder / "model.safetensors"))


def test_missing_unexpected_and_misshaped_keys_are_listed(tiny_hf_folder: Path, tmp_path: Path) -> None:
    folder = copy_folder(tiny_hf_folder, tmp_path / "bad")

    def edit(state: dict) -> None:
        del state["qllama.model.norm.weight"]
        state["vision_model.extra.weight"] = torch.zeros(2)
        state["text_projection"] = torch.zeros(3, 3)

    rewrite_state(folder, edit)
    with pytest.raises(CheckpointError) as info:
        load_clip("internvl", "internvl_c_retrieval_hf", folder)
    message = str(info.value)
    assert "missing keys: qllama.model.norm.weight" in message
    assert "unexpected keys: vision_model.extra.weight" in message
    assert "mis-shaped keys: text_projection [3, 3] (model: [64, 32])" in message


def test_unused_heads_and_rotary_buffers_are_accepted_and_dropped(tiny_hf_folder: Path, tmp_path: Path) -> None:
    folder = copy_folder(tiny_hf_folder, tmp_path / "heads")

    def edit(state: dict) -> None:
        state["qllama.lm_head.weight"] = torch.randn(320, 64)
        state["itm_head.weight"] = torch.randn(2, 64)
        state["itm_head.bias"] = torch.randn(2)
        state["qllama.model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.randn(8)

    rewrite_state(folder, edit)
    model, _, _ = load_clip("internvl", "internvl_c_retrieval_hf", folder)
    assert "qllama.lm_head.weight" not in model.state_dict()


def test_token_embedding_is_read_from_its_own_key_even_when_tied(tiny_hf_folder: Path, tmp_path: Path) -> None:
    folder = copy_folder(tiny_hf_folder, tmp_path / "tied")
    config = json.loads((folder / "config.json").read_text())
    config["tie_word_embeddings"] = True
    (folder / "config.json").write_text(json.dumps(config))
    lm_head = torch.randn(320, 64)
    rewrite_state(folder, lambda state: state.__setitem__("qllama.lm_head.weight", lm_head))
    model, _, _ = load_clip("internvl", "internvl_c_retrieval_hf", folder)
    reference, _, _ = load_clip("internvl", "internvl_c_retrieval_hf", tiny_hf_folder)
    torch.testing.assert_close(model.qllama.model.embed_tokens.weight, reference.qllama.model.embed_tokens.weight)


def test_pth_rotary_inv_freq_is_dropped(tiny_pth_file: Path, tmp_path: Path) -> None:
    state = torch.load(tiny_pth_file, weights_only=True)
    state["transformer.layers.0.self_attn.rotary_emb.inv_freq"] = torch.randn(8)
    torch.save(state, tmp_path / "with_inv_freq.pth")
    shutil.copyfile(tiny_pth_file.parent / "tokenizer.model", tmp_path / "tokenizer.model")
    load_clip("internvl", "internvl_c_retrieval", tmp_path / "with_inv_freq.pth", model_config=tiny_pth_file.parent / "tiny_config.json")


def test_file_that_is_not_a_checkpoint(tiny_pth_file: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pth"
    bogus.write_text("this is not a checkpoint")
    shutil.copyfile(tiny_pth_file.parent / "tokenizer.model", tmp_path / "tokenizer.model")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_clip("internvl", "internvl_c_retrieval", bogus, model_config=tiny_pth_file.parent / "tiny_config.json")


class Payload:
    """A pickled object that weights_only loading must refuse."""


def test_pickled_objects_are_refused(tiny_pth_file: Path, tmp_path: Path) -> None:
    torch.save({"weights": Payload()}, tmp_path / "unsafe.pth")
    shutil.copyfile(tiny_pth_file.parent / "tokenizer.model", tmp_path / "tokenizer.model")
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_clip("internvl", "internvl_c_retrieval", tmp_path / "unsafe.pth", model_config=tiny_pth_file.parent / "tiny_config.json")


def test_folder_without_config_json(tiny_hf_folder: Path, tmp_path: Path) -> None:
    folder = copy_folder(tiny_hf_folder, tmp_path / "noconfig")
    (folder / "config.json").unlink()
    with pytest.raises(CheckpointError, match="has no config.json"):
        load_clip("internvl", "internvl_c_retrieval_hf", folder)


def test_config_of_another_model_type(tiny_hf_folder: Path, tmp_path: Path) -> None:
    folder = copy_folder(tiny_hf_folder, tmp_path / "llama")
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    with pytest.raises(ConfigError, match="not an InternVL configuration.*model_type 'llama'"):
        load_clip("internvl", "internvl_c_retrieval_hf", folder)


def test_config_without_a_size_is_refused(tiny_hf_folder: Path, tmp_path: Path) -> None:
    folder = copy_folder(tiny_hf_folder, tmp_path / "nosize")
    config = json.loads((folder / "config.json").read_text())
    del config["qllama_config"]["vocab_size"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="lacks vocab_size"):
        load_clip("internvl", "internvl_c_retrieval_hf", folder)


def test_wrong_format_for_the_model_name(tiny_hf_folder: Path, tiny_pth_file: Path) -> None:
    with pytest.raises(CheckpointError, match="reads a .pth file, but .* is a folder"):
        load_clip("internvl", "internvl_c_retrieval", tiny_hf_folder)
    with pytest.raises(CheckpointError, match="reads a Hugging Face folder, but .* is a file"):
        load_clip("internvl", "internvl_c_retrieval_hf", tiny_pth_file)


def test_pth_without_tokenizer_names_both_places(tiny_pth_file: Path, tmp_path: Path) -> None:
    lonely = tmp_path / "lonely.pth"
    shutil.copyfile(tiny_pth_file, lonely)
    with pytest.raises(TokenizerError, match=r"expected --tokenizer DIR .* or \S+/tokenizer\.model"):
        load_clip("internvl", "internvl_c_retrieval", lonely, model_config=tiny_pth_file.parent / "tiny_config.json")
    model, _, _ = load_clip(
        "internvl", "internvl_c_retrieval", lonely, tokenizer_path=tiny_pth_file.parent,
        model_config=tiny_pth_file.parent / "tiny_config.json",
    )
    assert model.checkpoint_format == "pth"


def test_pth_defaults_to_the_full_size_config(tiny_pth_file: Path) -> None:
    # Without --model_config a .pth file gets the full-size InternVL-C config; a tiny file cannot fit it.
    with pytest.raises(CheckpointError, match="mis-shaped keys"):
        load_clip("internvl", "internvl_c_retrieval", tiny_pth_file)
