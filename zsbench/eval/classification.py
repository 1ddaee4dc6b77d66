"""Zero-shot classification: class embeddings from prompt templates, then image-vs-class logits."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from zsbench.backends import Encoder
from zsbench.eval.encoding import LoaderClock, encode_image_batch, encode_texts, timed_batches


def build_classifier(
    encoder: Encoder,
    tokenizer: Callable[[list[str]], torch.Tensor],
    classnames: Sequence[str],
    templates: Sequence[str],
    batch_size: int,
    quiet: bool = True,
) -> torch.Tensor:
    """Class embeddings (D, C): per class, the mean of its L2-normalised template embeddings, renormalised.

    All class x template prompts are encoded together in length-sorted batches (many classes
    per forward pass), which gives the same embeddings as CLIP_benchmark's class-by-class loop.
    """
    prompts = [template.format(c=name) for name in classnames for template in templates]
    embeddings = encode_texts(encoder, tokenizer, prompts, batch_size, "prompts", quiet)
    per_class = embeddings.view(len(classnames), len(templates), -1).mean(dim=1)
    return F.normalize(per_class, dim=-1).T


def zero_shot_logits(
    encoder: Encoder,
    tokenizer: Callable[[list[str]], torch.Tensor],
    loader: torch.utils.data.DataLoader,
    classnames: Sequence[str],
    templates: Sequence[str],
    multilabel: bool,
    clock: LoaderClock,
    quiet: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image logits (N, C) on the CPU, in the loader's order, and the targets: what the metrics are computed from."""
    classifier = build_classifier(encoder, tokenizer, classnames, templates, loader.batch_size or 64, quiet)
    logits, targets = [], []
    for batch_index, batch in enumerate(timed_batches(loader, clock, "images", quiet)):
        # CLIP_benchmark scales the cosine logits by 100; it changes no metric but keeps scores comparable.
        logits.append((100.0 * encode_image_batch(encoder, batch["images"], batch_index) @ classifier).cpu())
        targets.extend(batch["targets"])
    target_tensor = torch.stack(targets) if multilabel else torch.tensor(targets)
    return torch.cat(logits), target_tensor
