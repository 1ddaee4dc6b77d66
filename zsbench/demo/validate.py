"""A minimal zero-shot validation of the demo checkpoint, in plain torch, on the demo test splits.

The demo itself and CI evaluate through zsbench's harness; this only lets the training script
report progress and final numbers without it. The metrics are the harness's own
(`zsbench.eval.metrics`, CLIP_benchmark's definitions); the class embedding is the mean of
the normalised template embeddings, renormalised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from zsbench.demo.generate import DEMO_DATASETS
from zsbench.demo.scenes import CLASSNAMES, SAMPLERS, TEMPLATES, Sample, Task
from zsbench.eval import metrics as harness_metrics
from zsbench.models import INTERNVL_GRAPHS, INTERNVL_MODELS, load_clip

Encoder = Callable[[torch.Tensor], torch.Tensor]
Transform = Callable[[Image.Image], torch.Tensor]
Tokenizer = Callable[[list[str]], torch.Tensor]
BATCH_SIZE = 256
RECALL_KS = (1, 5, 10)


def demo_test_samples(task: Task, seed: int = 0, count: int | None = None) -> list[Sample]:
    """The first `count` samples of a test split (all the demo dataset holds by default)."""
    if count is None:
        count = next(spec.num_test for spec in DEMO_DATASETS if spec.task == task)
    return [SAMPLERS[task](seed, "test", index) for index in range(count)]


@torch.no_grad()
def _embed_images(encode_image: Encoder, transform: Transform, images: Sequence[Image.Image]) -> torch.Tensor:
    chunks = []
    for start in range(0, len(images), BATCH_SIZE):
        pixels = torch.stack([transform(image) for image in images[start : start + BATCH_SIZE]])
        chunks.append(F.normalize(encode_image(pixels).float(), dim=-1))
    return torch.cat(chunks)


@torch.no_grad()
def _embed_texts(encode_text: Encoder, tokenizer: Tokenizer, texts: Sequence[str]) -> torch.Tensor:
    chunks = []
    for start in range(0, len(texts), BATCH_SIZE):
        chunks.append(F.normalize(encode_text(tokenizer(list(texts[start : start + BATCH_SIZE]))).float(), dim=-1))
    return torch.cat(chunks)


def classification_metrics(
    encode_image: Encoder,
    encode_text: Encoder,
    transform: Transform,
    tokenizer: Tokenizer,
    samples: Sequence[Sample],
) -> dict[str, float]:
    """Zero-shot acc1, acc5 and mean per-class recall with the demo's class names and templates."""
    prompts = [template.format(c=name) for name in CLASSNAMES for template in TEMPLATES]
    per_prompt = _embed_texts(encode_text, tokenizer, prompts).view(len(CLASSNAMES), len(TEMPLATES), -1)
    classifier = F.normalize(per_prompt.mean(dim=1), dim=-1)
    images = _embed_images(encode_image, transform, [sample.image for sample in samples])
    targets = torch.tensor([sample.target for sample in samples])
    return harness_metrics.classification_metrics(images @ classifier.T, targets, multilabel=False)


def retrieval_metrics(
    encode_image: Encoder,
    encode_text: Encoder,
    transform: Transform,
    tokenizer: Tokenizer,
    samples: Sequence[Sample],
) -> dict[str, float]:
    """Recall@1/5/10 in both directions, under CLIP_benchmark's metric names."""
    captions: list[list[str]] = [sample.target for sample in samples]  # type: ignore[misc]
    texts = [caption for image_captions in captions for caption in image_captions]
    text_image = torch.tensor([index for index, image_captions in enumerate(captions) for _ in image_captions])
    images = _embed_images(encode_image, transform, [sample.image for sample in samples])
    return harness_metrics.retrieval_metrics(images, _embed_texts(encode_text, tokenizer, texts), text_image, RECALL_KS)


def demo_model_names() -> dict[str, str]:
    """The model names that read the demo checkpoint (all Hugging Face folder names), with their task."""
    names = {name: INTERNVL_MODELS.get(name) for name in INTERNVL_MODELS.names()}
    return {name: entry.task.removeprefix("zeroshot_") for name, entry in names.items()
            if INTERNVL_GRAPHS.get(entry.graph).checkpoint_format == "hf"}


def validate_checkpoint(folder: Path, seed: int = 0) -> dict[str, dict[str, float]]:
    """Loads `folder` through `load_clip` under each demo model name and validates it on its task."""
    samples = {task: demo_test_samples(task, seed) for task in SAMPLERS}
    metric_functions = {"classification": classification_metrics, "retrieval": retrieval_metrics}
    results = {}
    for name, task in demo_model_names().items():
        model, transform, tokenizer = load_clip("internvl", name, folder)
        metrics = metric_functions[task]
        results[name] = metrics(model.encode_image, model.encode_text, transform, tokenizer, samples[task])
    return results
