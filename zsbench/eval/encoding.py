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
from zsbench.errors import NonFiniteError, ZsbenchError
from zsbench.eval.distributed import SINGLE, RankGroup


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
    group: RankGroup = SINGLE,
) -> torch.Tensor:
    """L2-normalised embeddings of `texts` (N, D), each text tokenised once.

    Texts are batched in order of length so that padding to the longest in a batch stays
    short; the embeddings come back in the input order. Each rank of `group` encodes a
    contiguous run of those batches and the runs are gathered, so every text is encoded in
    the batch a single process would give it (fewer texts than ranks: every rank encodes all).
    """
    order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
    sharded = len(order) >= group.world_size
    rows = group.shard(len(order), batch_size) if sharded else range(len(order))
    mine = order[rows.start : rows.stop]
    chunks = []
    starts = range(0, len(mine), batch_size)
    for batch_index, start in enumerate(tqdm(starts, desc=desc, unit="batch", disable=quiet, leave=False)):
        batch = [texts[index] for index in mine[start : start + batch_size]]
        embeddings = check_finite(encoder.encode_text(tokenizer(batch)), encoder, "text", batch_index)
        chunks.append(F.normalize(embeddings, dim=-1))
    embeddings = torch.cat(chunks)
    if sharded:
        embeddings = group.gather_rows(embeddings)
    return embeddings[torch.tensor(order, device=embeddings.device).argsort()]


def check_shard_not_empty(count: int, group: RankGroup, what: str) -> None:
    """Refuses a rank with no images to encode: its embeddings' width would be unknown to the gather."""
    if count == 0 and group.world_size == 1:
        raise ZsbenchError(f"There are no {what} to encode: the dataset holds none. Expected at least one; check --dataset_root.")
    if count == 0:
        raise ZsbenchError(f"Rank {group.rank} of {group.world_size} got no {what} to encode: there are fewer {what} "
                           "than processes. Expected at least one per process; start torchrun with fewer processes.")


def encode_image_batch(encoder: Encoder, images: torch.Tensor, batch_index: int) -> torch.Tensor:
    """L2-normalised image embeddings of one batch (the `batch_index`-th of the loader)."""
    embeddings = check_finite(encoder.encode_image(images), encoder, "image", batch_index)
    return F.normalize(embeddings, dim=-1)


def check_finite(embeddings: torch.Tensor, encoder: Encoder, tower: str, batch_index: int) -> torch.Tensor:
    """`embeddings` if every value is finite; else `NonFiniteError` naming the encoder, batch and backend.

    normalize() would turn one Inf into NaN and argmax would still pick a class, so a broken
    checkpoint or an fp16 overflow would otherwise end as plausible-looking (wrong) metrics.
    """
    finite = torch.isfinite(embeddings)
    if bool(finite.all()):
        return embeddings
    rows = (~finite).any(dim=-1).sum().item()
    kind = "NaN" if bool(torch.isnan(embeddings).any()) else "Inf"
    raise NonFiniteError(
        f"The {tower} encoder returned {kind} embeddings in batch {batch_index} ({rows} of its {len(embeddings)} rows) "
        f"on backend {encoder.name} ({encoder.precision}, {encoder.device}); no result was written. "
        "Expected finite embeddings. Causes: weights holding NaN/Inf or huge values (check the checkpoint), or "
        "activations that overflow fp16 (try --precision fp32)."
    )
