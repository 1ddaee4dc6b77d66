"""Encoding loops shared by the tasks: batched texts, and images streamed from a DataLoader."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from zsbench.backends import Encoder


@dataclass
class LoaderClock:
    """Seconds the harness spent waiting for the DataLoader (decoding and transforms not hidden by workers)."""

    seconds: float = 0.0
    skipped_images: int = 0


def timed_batches(loader: torch.utils.data.DataLoader, clock: LoaderClock, desc: str, quiet: bool) -> Iterator[dict[str, Any]]:
    """Yields collated batches, charging the time spent waiting for each to `clock`."""
    iterator = iter(loader)
    with tqdm(total=len(loader.dataset), desc=desc, unit="img", disable=quiet, leave=False) as progress:  # type: ignore[arg-type]
        while True:
            start = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                return
            clock.seconds += time.perf_counter() - start
            clock.skipped_images += batch["skipped"]
            progress.update(len(batch["indices"]) + batch["skipped"])
            if batch["indices"]:
                yield batch


def encode_texts(
    encoder: Encoder,
    tokenizer: Callable[[list[str]], torch.Tensor],
    texts: Sequence[str],
    batch_size: int,
    desc: str,
    quiet: bool,
) -> torch.Tensor:
    """L2-normalised embeddings of `texts` (N, D), each text tokenised once.

    Texts are batched in order of length so that padding to the longest in a batch stays
    short; the embeddings come back in the input order.
    """
    order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
    chunks = []
    for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch", disable=quiet, leave=False):
        batch = [texts[index] for index in order[start : start + batch_size]]
        chunks.append(F.normalize(encoder.encode_text(tokenizer(batch)), dim=-1))
    embeddings = torch.cat(chunks)
    return embeddings[torch.tensor(order, device=embeddings.device).argsort()]


def encode_image_batch(encoder: Encoder, images: torch.Tensor) -> torch.Tensor:
    """L2-normalised image embeddings of one batch."""
    return F.normalize(encoder.encode_image(images), dim=-1)
