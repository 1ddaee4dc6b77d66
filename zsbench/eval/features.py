"""A rank's share of a dataset's image embeddings: read from the image-feature cache, or encoded.

The cache (`--cache_features`) is keyed by the encoder (model, checkpoint, backend, precision),
the dataset (name, root, split, number of samples, and which image each sample is and what its
file holds: `zsbench.data.types.image_identity`), the transform and `--skip-bad-images`, not by
prompts, class names or language: a re-run with other templates or captions in another language
only runs the text side, while a replaced shard or image file is encoded again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zsbench.backends import LoadedModel
from zsbench.data.types import EvalDataset, TransformedDataset, collate_samples, image_identity
from zsbench.errors import BadImageError
from zsbench.eval.cache import EmbeddingCache, transform_description
from zsbench.eval.distributed import RankGroup
from zsbench.eval.encoding import LoaderClock, check_shard_not_empty, encode_image_batch, timed_batches
from zsbench.eval.plan import EvalRun


@dataclass
class ImageShard:
    """This rank's images in dataset order: L2-normalised embeddings (K, D) on the encoder's device,
    the kept samples' dataset indices (K,), their targets, and how many rows came from the cache."""

    embeddings: torch.Tensor
    indices: torch.Tensor
    targets: list[Any]
    cached: int = 0


def image_loader(run: EvalRun, dataset: EvalDataset, loaded: LoadedModel, indices: range) -> torch.utils.data.DataLoader:
    """Batches of the decoded, transformed images `indices` of `dataset` (in order)."""
    options = run.options
    images = TransformedDataset(dataset.samples, loaded.transform(run.task), options.skip_bad_images)
    return torch.utils.data.DataLoader(
        torch.utils.data.Subset(images, indices),
        batch_size=options.batch_size,
        num_workers=options.num_workers,
        collate_fn=collate_samples,
        pin_memory=loaded.encoder.device.type == "cuda",
    )


def encode_images(loaded: LoadedModel, loader: torch.utils.data.DataLoader, clock: LoaderClock, quiet: bool) -> ImageShard:
    """Encodes every image `loader` yields (unreadable ones skipped or failing, as the loader decides)."""
    embeddings, indices, targets = [], [], []
    for batch_index, batch in enumerate(timed_batches(loader, clock, "images", quiet)):
        embeddings.append(encode_image_batch(loaded.encoder, batch["images"], batch_index))
        indices.extend(batch["indices"])
        targets.extend(batch["targets"])
    if not embeddings:
        raise BadImageError(f"None of the {len(loader.dataset)} images to encode here could be read "  # type: ignore[arg-type]
                            f"({clock.skipped_images} skipped). Expected readable images; check the dataset's files.")
    return ImageShard(torch.cat(embeddings), torch.tensor(indices, dtype=torch.long), targets)


def feature_fields(run: EvalRun, dataset: EvalDataset, loaded: LoadedModel, encoder_key: dict[str, Any]) -> dict[str, Any]:
    """What decides a dataset's image embeddings: the key of its image-feature cache entry
    (`encoder_key`: the encoder's fields, `zsbench.eval.cache.encoder_fields`)."""
    options = run.options
    return {
        **encoder_key,
        "dataset": run.dataset,
        "dataset_root": str(Path(run.dataset_root).resolve()),
        "split": options.split,
        "annotation_file": str(Path(options.annotation_file).resolve()) if options.annotation_file else None,
        "samples": len(dataset.samples),
        "images": image_identity(dataset.samples),
        "transform": transform_description(loaded.transform(run.task)),
        "skip_bad_images": options.skip_bad_images,
    }


def image_features(run: EvalRun, dataset: EvalDataset, loaded: LoadedModel, group: RankGroup,
                   cache: EmbeddingCache | None, encoder_key: dict[str, Any] | None, clock: LoaderClock,
                   quiet: bool) -> ImageShard:
    """This rank's contiguous share of the dataset's image embeddings.

    With a `cache` (and `encoder_key`, the encoder's key fields), an entry every rank can read is used (targets are read from the samples,
    images are not decoded); otherwise the images are encoded and the gathered embeddings are
    written (by rank 0) for the next run.
    """
    fields = feature_fields(run, dataset, loaded, encoder_key) if cache is not None and encoder_key is not None else None
    entry = cache.load("images", fields) if cache is not None and fields is not None else None
    if entry is not None and not {"embeddings", "indices"} <= entry.tensors.keys():
        entry = None  # another writer's file under this key: recompute (and replace) it
    if group.all(entry is not None):
        assert entry is not None
        rows = group.shard(len(entry.tensors["indices"]))
        check_shard_not_empty(len(rows), group, "images")
        indices = entry.tensors["indices"][rows.start : rows.stop]
        embeddings = entry.tensors["embeddings"][rows.start : rows.stop].to(loaded.encoder.device)
        return ImageShard(embeddings, indices, [dataset.samples[int(index)][1] for index in indices], cached=len(indices))
    # Whole batches per rank: each image is encoded in the batch a single process would give it.
    indices = group.shard(len(dataset.samples), run.options.batch_size)
    check_shard_not_empty(len(indices), group, "images")
    shard = encode_images(loaded, image_loader(run, dataset, loaded, indices), clock, quiet)
    if cache is not None and fields is not None:
        embeddings, kept = group.gather_rows(shard.embeddings), group.gather_rows(shard.indices)
        if group.is_main:
            cache.save("images", fields, {"embeddings": embeddings, "indices": kept}, {})
    return shard
