"""The committed demo checkpoint: a Hugging Face InternVL folder that every `*_hf` name loads strictly."""

from __future__ import annotations

from pathlib import Path

import pytest

from zsbench.demo.train import CONFIG_FILE
from zsbench.demo.validate import classification_metrics, demo_model_names, demo_test_samples, retrieval_metrics
from zsbench.models import load_clip
from zsbench.models.config import load_config_file

DEMO_CHECKPOINT = Path(__file__).resolve().parents[2] / "pretrained" / "zsbench-demo"


def test_folder_is_small_and_complete() -> None:
    names = {path.name for path in DEMO_CHECKPOINT.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.model"} <= names
    assert sum(path.stat().st_size for path in DEMO_CHECKPOINT.iterdir()) < 5_000_000
    assert load_config_file(DEMO_CHECKPOINT / "config.json") == load_config_file(CONFIG_FILE)


def test_serves_internvl_c_and_g_for_both_tasks() -> None:
    assert demo_model_names() == {
        "internvl_c_classification_hf": "classification",
        "internvl_c_retrieval_hf": "retrieval",
        "internvl_g_classification_hf": "classification",
        "internvl_g_retrieval_hf": "retrieval",
    }


@pytest.mark.parametrize("name", demo_model_names())
def test_loads_strictly_and_works(name: str) -> None:
    """load_clip refuses any missing, unexpected or mis-shaped key; a few test scenes check the weights
    are the trained ones (the full targets are asserted through the evaluation harness)."""
    model, transform, tokenizer = load_clip("internvl", name, DEMO_CHECKPOINT)
    assert model.image_head == name.split("_")[1]
    if demo_model_names()[name] == "classification":
        samples = demo_test_samples("classification", count=100)
        metrics = classification_metrics(model.encode_image, model.encode_text, transform, tokenizer, samples)
        assert metrics["acc1"] >= 0.8
    else:
        samples = demo_test_samples("retrieval", count=100)
        metrics = retrieval_metrics(model.encode_image, model.encode_text, transform, tokenizer, samples)
        assert metrics["image_retrieval_recall@5"] >= 0.8 and metrics["text_retrieval_recall@5"] >= 0.8
