"""Datasets read from local roots in their own on-disk formats (never downloaded).

`build_dataset(name, root, ...)` returns a transform-free `ClassificationDataset` or
`RetrievalDataset`; `TransformedDataset` decodes and transforms it for a DataLoader.
`zsbench datasets` lists the names; `zsbench datasets --layout NAME` draws a layout.
"""

from __future__ import annotations

from zsbench.data.build import (
    build_dataset,
    dataset_entry,
    dataset_layout,
    dataset_loader_name,
    default_task,
    list_datasets,
)
from zsbench.data.catalog import DATASETS, DatasetEntry, DatasetRequest, Loaded, register_dataset
from zsbench.errors import PromptsError
from zsbench.data.retrieval import clean_caption
from zsbench.data.types import (
    ClassificationDataset,
    EvalDataset,
    ImageRef,
    RetrievalDataset,
    TransformedDataset,
    collate_samples,
)

__all__ = [
    "DATASETS",
    "ClassificationDataset",
    "DatasetEntry",
    "DatasetRequest",
    "EvalDataset",
    "ImageRef",
    "Loaded",
    "PromptsError",
    "RetrievalDataset",
    "TransformedDataset",
    "build_dataset",
    "clean_caption",
    "collate_samples",
    "dataset_entry",
    "dataset_layout",
    "dataset_loader_name",
    "default_task",
    "list_datasets",
    "register_dataset",
]
