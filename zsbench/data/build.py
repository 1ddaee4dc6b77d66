"""`build_dataset` and the lookups around it: the public entry points of `zsbench.data`.

A registered name is read from its own layout, unless its root holds a CLIP_benchmark
webdataset export (``<root>/<split>/nshards.txt``, also looked for in ``<root>/wds_<name>/``
and ``<root>/<name>/``), which is then read instead. ``wds/<name>`` always reads an export,
with the export's own class names and templates, as clip_benchmark does.
"""

from __future__ import annotations

import difflib
import textwrap
from pathlib import Path

# Importing the format modules registers their loaders.
from zsbench.data import arrays, image_folder, retrieval, torchvision_sets, voc  # noqa: F401
from zsbench.data.catalog import (
    CLASSIFICATION,
    DATASETS,
    RETRIEVAL,
    DatasetEntry,
    DatasetRequest,
    Kind,
    Loaded,
    Task,
    export_candidates,
    short_name,
)
from zsbench.data.files import describe_folder
from zsbench.data.prompts import (
    check_templates,
    load_custom_table,
    prompt_languages,
    resolve_classnames,
    resolve_templates,
)
from zsbench.data.retrieval import CLEANED_CAPTIONS, clean_export_captions
from zsbench.data.types import ClassificationDataset, RetrievalDataset, SampleSource, sample_targets
from zsbench.data.wds import VTAB_DATASETS, export_kind, find_export, load_wds_export, read_export
from zsbench.errors import DatasetLayoutError, PromptsError, UnknownNameError

WDS_PREFIX = "wds/"
VTAB_PREFIX = "vtab/"


def list_datasets() -> list[str]:
    """The registered dataset names, sorted (``wds/<name>`` and CLIP_benchmark's ``vtab/<name>`` are accepted besides these)."""
    return DATASETS.names()


def is_dataset_name(name: str) -> bool:
    """Whether `dataset_entry` knows `name` (a registered name, ``wds/<name>`` or a CLIP_benchmark ``vtab/<name>``)."""
    try:
        dataset_entry(name)
    except UnknownNameError:
        return False
    return True


def default_task(name: str, root: Path | None = None, split: str = "test") -> Task:
    """The task `--task auto` picks for `name`.

    For ``wds/<name>`` it is what the export the loader would read under `root` states in its
    ``dataset_type.txt`` (`find_export`: the root, ``wds_<name>`` or ``<name>``; the only disk
    access); when there is none yet, the task of ``<name>`` when that is registered (so
    ``wds/flickr30k`` is retrieval, as clip_benchmark strips the prefix before guessing), else
    classification.
    """
    if name.startswith(WDS_PREFIX) and name != WDS_PREFIX:
        export = find_export(name, root, split) if root is not None else None
        if export is not None:
            return RETRIEVAL if export_kind(export) == "retrieval" else CLASSIFICATION
        inner = name.removeprefix(WDS_PREFIX)
        return DATASETS.get(inner).task if inner in DATASETS else CLASSIFICATION
    return dataset_entry(name).task


def dataset_entry(name: str) -> DatasetEntry:
    """The registry entry for `name`; ``wds/<name>`` gets the generic export reader, and so does every
    CLIP_benchmark ``vtab/<name>`` (its export, with CLIP_benchmark's templates for the name).

    Raises:
        UnknownNameError: any other name; "did you mean" names the same dataset's other spelling first
            (``vtab/mnist`` -> ``mnist``, ``flowers`` -> ``vtab/flowers``).
    """
    if name in DATASETS:
        return DATASETS.get(name)
    if name.startswith(WDS_PREFIX) and name != WDS_PREFIX:
        return DatasetEntry(name, load_wds_export, "wds", default_task(name), splits=None)
    if name.startswith(VTAB_PREFIX) and name.removeprefix(VTAB_PREFIX) in VTAB_DATASETS:
        return DatasetEntry(name, load_wds_export, "wds", CLASSIFICATION, splits=None)
    spellings = [*list_datasets(), *(VTAB_PREFIX + vtab for vtab in VTAB_DATASETS if VTAB_PREFIX + vtab not in DATASETS)]
    same = [spelling for spelling in spellings if short_name(spelling) == short_name(name)]
    raise UnknownNameError("dataset", name, list_datasets(), preferred=[*same, *difflib.get_close_matches(name, spellings, n=3, cutoff=0.6)])


def dataset_loader_name(name: str) -> str:
    """The name of the format `name` is read in (for a dry-run plan); never touches the disk.

    This is the dataset's own layout; a root that holds a webdataset export is read by
    ``wds`` instead, which only building can tell.
    """
    return dataset_entry(name).loader


def _export_note(name: str) -> str:
    places = ", ".join(str(path) for path in export_candidates(name, Path("<root>"))[1:])
    return (
        f"A CLIP_benchmark webdataset export is read instead when <root>/<split>/nshards.txt exists "
        f"(also looked for under {places}; `zsbench datasets --layout wds/{name}` draws it)."
    )


def dataset_layout(name: str) -> str:
    """What `name` expects on disk: its tree, where to get the data, and the export alternative."""
    entry = dataset_entry(name)
    parts = [f"{name}: {entry.task}, loader {entry.loader}", entry.layout, f"Source: {entry.source}"]
    if entry.loader != "wds":
        parts.append(_export_note(name))
    return "\n\n".join(parts)


def _layout_message(entry: DatasetEntry, request: DatasetRequest, found: str) -> str:
    lines = [
        f"Cannot read dataset '{entry.name}' from {request.root}: {found}.",
        f"Found: {request.root} {describe_folder(request.root)}.",
        "Expected layout:",
        textwrap.indent(entry.layout, "    "),
        f"Get the data: {entry.source}",
    ]
    if entry.loader != "wds":
        lines.append(_export_note(entry.name))
    lines.append(f"Then pass the folder drawn as <root> as --dataset_root (`zsbench datasets --layout {entry.name}`).")
    return "\n".join(lines)


def _expected_kind(entry: DatasetEntry) -> Kind:
    if entry.task == RETRIEVAL:
        return "retrieval"
    return "multilabel" if entry.multilabel else "classification"


def _check_options(entry: DatasetEntry, request: DatasetRequest) -> None:
    if entry.splits is not None and request.split not in entry.splits:
        raise UnknownNameError(f"split of {entry.name}", request.split, entry.splits)
    if not entry.name.startswith(WDS_PREFIX):  # wds/<name> may hold anything: checked when its prompts are read
        languages = entry.languages if entry.languages is not None else prompt_languages()
        if request.language not in languages:
            raise UnknownNameError(f"language of {entry.name}", request.language, languages)


def _load(entry: DatasetEntry, request: DatasetRequest) -> Loaded:
    """Runs the loader (or reads an export found in the root), adding context to layout errors."""
    try:
        export = None
        if entry.loader != "wds":
            export = find_export(entry.name, request.root, request.split)
        loaded = read_export(export, request.split) if export is not None else entry.load(request)
        if export is not None and entry.name in CLEANED_CAPTIONS:
            loaded = clean_export_captions(loaded)
        if not entry.name.startswith(WDS_PREFIX) and (loaded.kind or _expected_kind(entry)) != _expected_kind(entry):
            raise DatasetLayoutError(f"it holds a {loaded.kind} export, but {entry.name} is {_expected_kind(entry)} data")
        from_export = export is not None or entry.loader == "wds"
        if from_export and (loaded.kind or _expected_kind(entry)) == "retrieval" and request.language != "en":
            raise DatasetLayoutError(
                f"{export or request.root} is a webdataset export (English captions); --language {request.language} "
                "reads the caption files of the dataset's own layout"
            )
    except DatasetLayoutError as err:
        raise DatasetLayoutError(_layout_message(entry, request, str(err))) from err
    return loaded


def build_dataset(
    name: str,
    root: Path,
    *,
    split: str = "test",
    language: str = "en",
    annotation_file: Path | None = None,
    custom_classname_file: Path | None = None,
    custom_template_file: Path | None = None,
) -> ClassificationDataset | RetrievalDataset:
    """Reads dataset `name` from the local folder `root`: lists its samples, never decodes them.

    Args:
        name: a registered name (`list_datasets`) or ``wds/<name>``.
        root: the folder `--dataset_root` names (``zsbench datasets --layout NAME`` draws it).
        split: the split to read (zero-shot evaluation reads ``test``).
        language: class names and templates (en, cn, jp, ar, it), or captions for retrieval.
        annotation_file: replaces the caption file of a retrieval dataset.
        custom_classname_file: JSON of dataset name -> class names, overriding the defaults.
        custom_template_file: JSON of dataset name -> prompt templates, overriding the defaults.

    Raises:
        UnknownNameError: an unknown dataset name, split or language.
        DatasetLayoutError: `root` is missing or not laid out as expected (the message draws the tree).
        PromptsError: class names or templates are missing or do not fit the data.
    """
    entry = dataset_entry(name)
    request = DatasetRequest(name, Path(root), split, language, Path(annotation_file) if annotation_file else None)
    _check_options(entry, request)
    loaded = _load(entry, request)
    if len(loaded.samples) == 0:
        raise DatasetLayoutError(_layout_message(entry, request, f"it holds no {request.split} samples"))
    kind = loaded.kind or _expected_kind(entry)
    if kind == "retrieval":
        return RetrievalDataset(name, loaded.samples)
    custom_names = load_custom_table(Path(custom_classname_file), "--custom_classname_file") if custom_classname_file else None
    custom_templates = load_custom_table(Path(custom_template_file), "--custom_template_file") if custom_template_file else None
    classnames, names_source = resolve_classnames(name, language, entry.classnames_key, loaded.classnames, custom_names)
    export_templates = loaded.templates if name.startswith(WDS_PREFIX) else None
    templates, templates_source = resolve_templates(
        name, language, export_templates, custom_templates, Path(custom_template_file) if custom_template_file else None
    )
    check_templates(name, templates, templates_source)
    if name.startswith(WDS_PREFIX) and language != "en" and (names_source == "the data" or templates is export_templates):
        raise PromptsError(
            f"--language {language}: '{name}' is a webdataset export, whose class names (classnames.txt) and templates "
            f"are its own, in English, so the result would say {language} of English prompts. Use --language en, or pass "
            f"--custom_classname_file and --custom_template_file with {language} names and templates for '{name}'."
        )
    if loaded.num_classes is not None and len(classnames) != loaded.num_classes:
        problem = f"the data has {loaded.num_classes} classes but {names_source} names {len(classnames)}"
        if names_source == "--custom_classname_file":
            raise PromptsError(f"'{name}': {problem}; fix its list in {custom_classname_file}.")
        raise DatasetLayoutError(_layout_message(entry, request, f"{problem} (a class folder missing or extra?)"))
    if kind != "multilabel":
        problem = _labels_outside(loaded.samples, len(classnames), names_source)
        if problem:
            raise DatasetLayoutError(_layout_message(entry, request, problem))
    return ClassificationDataset(name, loaded.samples, classnames, templates, multilabel=kind == "multilabel")


def _labels_outside(samples: SampleSource, num_classes: int, names_source: str) -> str | None:
    """What is wrong with the labels of single-label `samples` that are not class indices below
    `num_classes` (each would score as a miss, or crash); None when all are."""
    targets = sample_targets(samples)
    bad = [index for index, target in enumerate(targets)
           if not isinstance(target, int) or isinstance(target, bool) or not 0 <= target < num_classes]
    if not bad:
        return None
    first = bad[0]
    where = samples[first][0].name if isinstance(samples, list) else f"sample {first}"
    return (f"{len(bad)} of its {len(targets)} labels are not class indices 0..{num_classes - 1} (the {num_classes} classes "
            f"{names_source} names), e.g. {where}: {targets[first]!r}. Its label file is damaged or belongs to another "
            "dataset (or a different version of it)")
