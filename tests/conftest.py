"""Session fixtures: tiny InternVL checkpoints in their real on-disk formats, generated here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from zsbench.models import InternVL, builtin_config, create_model
from zsbench.models.checkpoints import save_hf_checkpoint, save_pth_checkpoint
from zsbench.models.config import InternVLConfig
from zsbench.models.tokenizer import train_tokenizer

CAPTION_WORDS = ["red", "green", "blue", "yellow", "circle", "square", "triangle", "small", "large", "dog", "cat"]


def caption_corpus() -> list[str]:
    """Short captions covering the words the tests tokenise."""
    texts = []
    for first in CAPTION_WORDS:
        for second in CAPTION_WORDS:
            texts.append(f"a photo of a {first} {second}.")
            texts.append(f"A {first} thing left of a {second}, with 日本 and ñ!")
    return texts


def randomize_(model: InternVL, seed: int) -> InternVL:
    """Fills every parameter with seeded random values of a scale that keeps activations O(1)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if name.endswith(("norm.weight", "norm1.weight", "norm2.weight", "layernorm.weight")) or "norm1_" in name:
                values = 1.0 + 0.1 * torch.randn(param.shape, generator=generator)
            elif name.endswith((".ls1", ".ls2")):
                values = 0.5 + 0.1 * torch.randn(param.shape, generator=generator)
            else:
                fan_in = param.shape[-1] if param.dim() > 1 else 16
                values = torch.randn(param.shape, generator=generator) / fan_in**0.5
            param.copy_(values)
    return model


def random_internvl(config: InternVLConfig, checkpoint_format: str, image_head: str = "c", seed: int = 0) -> InternVL:
    """A tiny InternVL with seeded random weights, on the CPU in fp32."""
    return randomize_(create_model(config, checkpoint_format, image_head, device="cpu"), seed)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def tiny_config() -> InternVLConfig:
    return builtin_config("internvl_tiny")


@pytest.fixture(scope="session")
def tokenizer_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sentencepiece model in LLaMA's conventions (unk 0, bos 1, eos 2), within the tiny vocabulary."""
    return train_tokenizer(caption_corpus(), tmp_path_factory.mktemp("tokenizer") / "tokenizer.model", vocab_size=300)


@pytest.fixture(scope="session")
def tiny_hf_folder(tmp_path_factory: pytest.TempPathFactory, tiny_config: InternVLConfig, tokenizer_file: Path) -> Path:
    """A Hugging Face InternVL folder (config.json, model.safetensors, tokenizer.model) with random weights."""
    folder = tmp_path_factory.mktemp("hf") / "InternVL-tiny"
    save_hf_checkpoint(random_internvl(tiny_config, "hf", seed=1), tiny_config.to_hf_dict(), folder, tokenizer_file)
    return folder


@pytest.fixture(scope="session")
def tiny_pth_file(tmp_path_factory: pytest.TempPathFactory, tiny_config: InternVLConfig, tokenizer_file: Path) -> Path:
    """A `.pth` InternVL-C checkpoint with `tokenizer.model` beside it and its config as `tiny_config.json`."""
    folder = tmp_path_factory.mktemp("pth")
    save_pth_checkpoint(random_internvl(tiny_config, "pth", seed=2), folder / "internvl_c_tiny.pth")
    (folder / "tokenizer.model").write_bytes(tokenizer_file.read_bytes())
    (folder / "tiny_config.json").write_text(json.dumps(tiny_config.to_hf_dict()))
    return folder / "internvl_c_tiny.pth"


DEMO_CHECKPOINT = Path(__file__).resolve().parents[1] / "pretrained" / "zsbench-demo"


@pytest.fixture(scope="session")
def demo_pth_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed demo checkpoint's InternVL-C weights as a `.pth` file, with `tokenizer.model` and
    `demo_config.json` beside it: trained weights, so zero-shot probes have real margins."""
    from zsbench.models import load_clip

    folder = tmp_path_factory.mktemp("demo_pth")
    model, _, _ = load_clip("internvl", "internvl_c_classification_hf", DEMO_CHECKPOINT)
    save_pth_checkpoint(model, folder / "internvl_c_demo.pth")
    (folder / "tokenizer.model").write_bytes((DEMO_CHECKPOINT / "tokenizer.model").read_bytes())
    (folder / "demo_config.json").write_text((DEMO_CHECKPOINT / "config.json").read_text())
    return folder / "internvl_c_demo.pth"


@pytest.fixture(autouse=True)
def isolated_embedding_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty embedding cache (never the user's ~/.cache/zsbench)."""
    folder = tmp_path_factory.mktemp("embedding_cache")
    monkeypatch.setenv("ZSBENCH_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(autouse=True)
def offline_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach the network: zsbench starts offline (the fetch tests turn it back on, against servers they
    start on 127.0.0.1), and what a test's `--offline` switches on is switched back after it."""
    from huggingface_hub import constants

    # Set (not deleted) so that monkeypatch restores them even when a test's --offline sets them.
    monkeypatch.setenv("ZSBENCH_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    monkeypatch.setenv("ZSBENCH_DATA_MIRROR", "")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection or resolve a name fails the test (offline must mean no socket)."""
    import socket

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"zsbench used the network: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
