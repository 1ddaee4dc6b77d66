"""Zero-shot image-text retrieval: recall@k both ways, several captions per image."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from zsbench.backends import Encoder
from zsbench.eval.distributed import SINGLE, RankGroup
from zsbench.eval.encoding import encode_texts
from zsbench.eval.features import ImageShard
from zsbench.eval.metrics import retrieval_metrics


def evaluate_retrieval(
    encoder: Encoder,
    tokenizer: Callable[[list[str]], torch.Tensor],
    images: ImageShard,
    recall_k: tuple[int, ...],
    batch_size: int,
    quiet: bool,
    group: RankGroup = SINGLE,
) -> dict[str, Any]:
    """Gathers every rank's image embeddings and captions in dataset order, encodes the captions
    (sharded over the ranks in the batches one process would form) and computes recall@k for each k.

    A skipped image takes its captions along.
    """
    counts = group.gather_rows(torch.tensor([len(captions) for captions in images.targets], dtype=torch.long))
    texts = group.gather_texts([caption for captions in images.targets for caption in captions])
    text_embeddings = encode_texts(encoder, tokenizer, texts, batch_size, "captions", quiet, group)
    image_embeddings = group.gather_rows(images.embeddings)
    # Both embeddings are on the encoder's device (the Encoder contract).
    owners = torch.repeat_interleave(torch.arange(len(counts)), counts).to(image_embeddings.device)
    return retrieval_metrics(image_embeddings, text_embeddings, owners, recall_k)
