"""The demo training script: its losses and embeddings agree with the model's own, and a short run
writes a checkpoint that every demo model name loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from zsbench.demo.train import CONFIG_FILE, TrainConfig, contrastive_loss, image_embeddings, init_demo_model, train
from zsbench.demo.validate import demo_model_names
from zsbench.models import create_model, load_clip
from zsbench.models.config import load_config_file



def test_image_embeddings_are_what_encode_image_computes() -> None:
    config = load_config_file(CONFIG_FILE)
    model = init_demo_model(config, seed=0).eval()
    pixels = torch.randn(3, 3, config.image_size, config.image_size)
    with torch.no_grad():
        embeddings = image_embeddings(model, pixels)
        model_c = create_model(config, "hf", "c", device="cpu")
        model_c.load_state_dict(model.state_dict())
        torch.testing.assert_close(embeddings.g, model.encode_image(pixels))
        torch.testing.assert_close(embeddings.c, model_c.encode_image(pixels))


def test_contrastive_loss_is_clip_loss_when_pairs_are_distinct() -> None:
    generator = torch.Generator().manual_seed(0)
    image, text = torch.randn(6, 8, generator=generator), torch.randn(6, 8, generator=generator)
    scale = torch.tensor(10.0)
    logits = scale * F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).T
    labels = torch.arange(6)
    expected = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    torch.testing.assert_close(contrastive_loss(image, text, torch.eye(6), scale), expected)


def test_contrastive_loss_spreads_targets_over_positives() -> None:
    # Two samples showing the same thing: their four pairs are equally right.
    image = text = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    positives = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.float)
    loss = contrastive_loss(image, text, positives, torch.tensor(50.0))
    # Each row's softmax is ~1/2 on each positive, which are also the targets: only their entropy is left.
    assert loss.item() == pytest.approx((2 * torch.log(torch.tensor(2.0)).item() + 0.0) / 3, abs=1e-4)


def test_short_run_writes_a_loadable_checkpoint(tmp_path: Path) -> None:
    train(tmp_path, TrainConfig(steps=2, batch_size=8, warmup_steps=1, monitor_samples=4, workers=0, threads=1))
    for name in demo_model_names():
        model, transform, tokenizer = load_clip("internvl", name, tmp_path)
        assert model.encode_text(tokenizer(["a photo of a red circle."])).shape == (1, model.embed_dim)
