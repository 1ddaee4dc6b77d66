"""The dataset registry: names -> small loader functions, with what each one needs to be described.

A loader takes a `DatasetRequest` and returns what it `Loaded` from disk; `build_dataset`
(in `zsbench.data.build`) adds class names, templates and error context. Each loader's
docstring draws the on-disk tree it expects (a ``Layout::`` block) and says where the data
comes from (a ``Source:`` paragraph): that text is the one copy shown in errors and by
``zsbench datasets --layout NAME``.

Adding a dataset: write ``load_<name>(request) -> Loaded`` in the module for its format (a new
module is imported in ``build.py``), decorate it with `register_dataset`, draw its tree in the
docstring, and give ``tests/data/fixtures.py`` a writer for it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from zsbench.data.types import SampleSource
from zsbench.registry import Registry
from zsbench.types import Task

Kind = Literal["classification", "multilabel", "retrieval"]

CLASSIFICATION: Task = "zeroshot_classification"
RETRIEVAL: Task = "zeroshot_retrieval"


@dataclass(frozen=True)
class DatasetRequest:
    """What the caller asked for: a dataset name, its root, and the options loaders may use."""

    name: str
    root: Path
    split: str = "test"
    language: str = "en"
    annotation_file: Path | None = None


@dataclass(frozen=True)
class Loaded:
    """What a loader found on disk.

    Attributes:
        samples: ``(picture, target)`` pairs, as `ClassificationDataset.samples` holds them.
        classnames: the dataset's own class names (``None`` where they come from clip_benchmark's JSON).
        num_classes: how many classes the labels index into, where the data says so; checked
            against the class names finally used.
        templates: prompt templates shipped with the data (only webdataset exports have them).
        kind: what the data holds; ``None`` means what the registry entry says.
    """

    samples: SampleSource
    classnames: list[str] | None = None
    num_classes: int | None = None
    templates: list[str] | None = None
    kind: Kind | None = None


Loader = Callable[[DatasetRequest], Loaded]


@dataclass(frozen=True)
class DatasetEntry:
    """One registered dataset.

    Attributes:
        name: the name `--dataset` takes (CLIP_benchmark's spelling).
        load: the loader function.
        loader: a short name of the on-disk format, for plans and listings.
        task: the task `--task auto` picks.
        multilabel: targets are multi-hot vectors, scored by mAP.
        classnames_key: key of clip_benchmark's ``<lang>_classnames.json`` that names the classes,
            or ``None`` where the loader reads them from the data.
        languages: caption languages a retrieval loader has files for (``None``: any language
            with class names and templates).
        splits: the splits the loader can read (``None``: whatever split folders the data has).
    """

    name: str
    load: Loader
    loader: str
    task: Task = CLASSIFICATION
    multilabel: bool = False
    classnames_key: str | None = None
    languages: tuple[str, ...] | None = None
    splits: tuple[str, ...] | None = ("test",)

    @property
    def layout(self) -> str:
        """The on-disk tree drawn in the loader's docstring."""
        return _docstring_section(self.load, "Layout::")

    @property
    def source(self) -> str:
        """Where users get the data, from the loader's docstring."""
        return _docstring_section(self.load, "Source:")


DATASETS: Registry[DatasetEntry] = Registry("dataset")


def register_dataset(
    name: str,
    *,
    loader: str,
    task: Task = CLASSIFICATION,
    multilabel: bool = False,
    classnames_key: str | None = None,
    languages: Sequence[str] | None = None,
    splits: Sequence[str] | None = ("test",),
) -> Callable[[Loader], Loader]:
    """Decorator that registers a loader function under `name` (see `DatasetEntry` for the fields)."""

    def decorator(load: Loader) -> Loader:
        entry = DatasetEntry(
            name,
            load,
            loader,
            task,
            multilabel,
            classnames_key,
            tuple(languages) if languages is not None else None,
            tuple(splits) if splits is not None else None,
        )
        DATASETS.add(name, entry)
        return load

    return decorator


def short_name(name: str) -> str:
    """The name without a ``wds/`` or ``vtab/`` prefix (how clip_benchmark keys its JSON files)."""
    prefix, _, rest = name.partition("/")
    return rest if rest and prefix in ("wds", "vtab") else name


def export_candidates(name: str, root: Path) -> list[Path]:
    """Folders that may hold a CLIP_benchmark webdataset export of `name`, in the order looked at.

    The root itself, then ``wds_<name>`` (the Hugging Face repository name, ``/`` written ``-``),
    then ``<name>`` as a relative path (``vtab/flowers``).
    """
    stem = name.removeprefix("wds/")
    candidates = [root, root / f"wds_{stem.replace('/', '-')}", root / stem]
    return list(dict.fromkeys(candidates))


def _docstring_section(function: Callable[..., object], header: str) -> str:
    """A section of a docstring: the indented block after ``Layout::`` or the paragraph after ``Source:``."""
    doc = inspect.getdoc(function)
    if doc is None:  # python -OO strips docstrings
        return "(not available: docstrings were stripped by python -OO)"
    lines = doc.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith(header)), None)
    if start is None:
        return ""
    if header.endswith("::"):
        block = []
        for line in lines[start + 1 :]:
            if line.strip() and not line.startswith(" "):
                break
            block.append(line)
        return inspect.cleandoc("\n".join(block))
    paragraph = [lines[start].strip().removeprefix(header).strip()]
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        paragraph.append(line.strip())
    return " ".join(part for part in paragraph if part)
