"""Zero-shot image-text retrieval: recall@k both ways, several captions per image."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from zsbench.backends import Encoder
from zsbench.eval.encoding import LoaderClock, encode_image_batch, encode_texts, timed_batches
from zsbench.eval.metrics import retrieval_metrics


def evaluate_retrieval(
    encoder: Encoder,
    tokenizer: Callable[[list[str]], torch.Tensor],
    loader: torch.utils.data.DataLoader,
    recall_k: tuple[int, ...],
    clock: LoaderClock,
    quiet: bool,
) -> dict[str, Any]:
    """Encodes every image and every caption once, then computes recall@k for each k."""
    image_embeddings, texts, text_to_image = [], [], []
    kept = 0  # images are numbered in the order they are kept; a skipped image takes its captions along
    for batch_index, batch in enumerate(timed_batches(loader, clock, "images", quiet)):
        image_embeddings.append(encode_image_batch(encoder, batch["images"], batch_index))
        for captions in batch["targets"]:
            texts.extend(captions)
            text_to_image.extend([kept] * len(captions))
            kept += 1
    images = torch.cat(image_embeddings)
    text_embeddings = encode_texts(encoder, tokenizer, texts, loader.batch_size or 64, "captions", quiet)
    # Both embeddings are on the encoder's device (the Encoder contract).
    owners = torch.tensor(text_to_image, device=images.device)
    return retrieval_metrics(images, text_embeddings, owners, recall_k)
