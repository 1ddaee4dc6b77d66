"""Zero-shot classification: class embeddings from prompt templates, then image-vs-class logits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from zsbench.backends import Encoder
from zsbench.eval.cache import EmbeddingCache, cached_class_rows, store_class_rows
from zsbench.eval.distributed import SINGLE, RankGroup
from zsbench.eval.encoding import encode_texts
from zsbench.eval.features import ImageShard


def build_classifier(
    encoder: Encoder,
    tokenizer: Callable[[list[str]], torch.Tensor],
    classnames: Sequence[str],
    templates: Sequence[str],
    batch_size: int,
    quiet: bool = True,
    group: RankGroup = SINGLE,
) -> torch.Tensor:
    """Class embeddings (D, C): per class, the mean of its L2-normalised template embeddings, renormalised.

    All class x template prompts are encoded together in length-sorted batches (many classes
    per forward pass), which gives the same embeddings as CLIP_benchmark's class-by-class loop.
    """
    prompts = [template.format(c=name) for name in classnames for template in templates]
    embeddings = encode_texts(encoder, tokenizer, prompts, batch_size, "prompts", quiet, group)
    per_class = embeddings.view(len(classnames), len(templates), -1).mean(dim=1)
    return F.normalize(per_class, dim=-1).T


def zero_shot_classifier(
    encoder: Encoder,
    tokenizer: Callable[[list[str]], torch.Tensor],
    classnames: Sequence[str],
    templates: Sequence[str],
    batch_size: int,
    quiet: bool,
    group: RankGroup = SINGLE,
    cache: EmbeddingCache | None = None,
    fields: dict[str, Any] | None = None,
) -> tuple[torch.Tensor, int]:
    """The classifier (D, C) and how many of its prompts were served from `cache` (not encoded).

    Classes whose embedding `cache` holds (under `fields`, which name the encoder; the templates
    are added here) are taken from it; the others are encoded, sharded over `group`, and rank 0
    adds them to the cache. Every rank encodes the classes missing on any rank, so all ranks
    run the same collectives.
    """
    class_fields = {**(fields or {}), "templates": list(templates)}
    cached = cached_class_rows(cache, class_fields, list(classnames))
    unique = list(dict.fromkeys(classnames))
    missing_mask = group.any(torch.tensor([name not in cached for name in unique]))
    missing = [name for name, flag in zip(unique, missing_mask.tolist()) if flag]
    rows = {name: row.to(encoder.device) for name, row in cached.items() if name not in missing}
    if missing:
        encoded = build_classifier(encoder, tokenizer, missing, templates, batch_size, quiet, group).T
        new_rows = dict(zip(missing, encoded))
        rows.update(new_rows)
        if cache is not None and group.is_main:
            store_class_rows(cache, class_fields, new_rows)
    served = sum(name not in missing for name in unique) * len(templates)
    return torch.stack([rows[name] for name in classnames]).T, served


def zero_shot_logits(classifier: torch.Tensor, images: ImageShard) -> torch.Tensor:
    """Logits (K, C) of this rank's images on the CPU. CLIP_benchmark scales the cosine logits by
    100; it changes no metric but keeps scores comparable."""
    return (100.0 * images.embeddings @ classifier).cpu()


def targets_tensor(targets: list[Any], multilabel: bool) -> torch.Tensor:
    """Class indices (K,), or multi-hot rows (K, C) for multi-label data."""
    return torch.stack(targets) if multilabel else torch.tensor(targets, dtype=torch.long)
