"""Runs planned evaluations: datasets validated first, each model loaded once, results written atomically."""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from zsbench.backends import LoadedModel, load_backend
from zsbench.data import build_dataset
from zsbench.data.acquire import open_or_fetch
from zsbench.data.catalog import RETRIEVAL
from zsbench.data.types import ClassificationDataset, EvalDataset, RetrievalDataset, sample_targets
from zsbench.digests import sha256_file
from zsbench.errors import CheckpointError, DatasetLayoutError, ZsbenchError
from zsbench.eval.cache import EmbeddingCache, checkpoint_digest, content_key, encoder_fields, open_cache
from zsbench.eval.classification import targets_tensor, zero_shot_classifier, zero_shot_logits
from zsbench.eval.distributed import SINGLE, RankGroup, join_group, leave_group, rank_device
from zsbench.eval.encoding import LoaderClock
from zsbench.eval.features import ImageShard, image_features
from zsbench.eval.metrics import classification_metrics
from zsbench.eval.plan import EvalRun, cache_folder
from zsbench.eval.results import check_output_path, format_rate, why_not_reusable, write_result
from zsbench.eval.retrieval import evaluate_retrieval
from zsbench.models.hub import missing_checkpoint
from zsbench.runtime.provenance import provenance_record
from zsbench.threads import apply_threads
from zsbench.types import resolve_device


@dataclass(frozen=True)
class RunOutcome:
    """What happened to one planned evaluation."""

    run: EvalRun
    status: str  # "done" or "skipped"
    result: dict[str, Any] | None = None


def _optional_path(value: str | None) -> Path | None:
    return Path(value) if value else None


def dataset_key(run: EvalRun) -> tuple:
    """What decides the dataset a run reads: runs with equal keys share one built dataset."""
    options = run.options
    return (run.dataset, run.dataset_root, run.language, run.task, options.split, options.annotation_file,
            options.custom_classname_file, options.custom_template_file)


def run_identity(run: EvalRun) -> dict[str, str]:
    """The values of `RUN_KEYS` a result of `run` records (what `--skip_existing` compares)."""
    return {"model": run.model.model, "pretrained": run.model.pretrained, "dataset": run.dataset, "task": run.task,
            "language": run.language, "backend": run.options.backend, "precision": run.options.precision}


def _resolved(path: str | None) -> str | None:
    return str(Path(path).resolve()) if path else None


def run_record(run: EvalRun, dataset: EvalDataset | None = None, checkpoint: str | None = None) -> dict[str, Any]:
    """What a result of `run` computed, beyond CLIP_benchmark's keys: every setting that changes its
    numbers (the result's "run" block, which `--skip_existing` compares with the run asked for).

    The fields read from the data (the sample count, the digests of the targets, class names and
    templates) are left out without `dataset`, and the checkpoint's whole-file fingerprint without
    `checkpoint`, so a run can be compared cheaply before its dataset is opened and its weights hashed.
    Where and how the run ran (hardware, versions) is the result's `env`, not part of this.
    """
    options = run.options
    annotation = options.annotation_file
    record: dict[str, Any] = {
        "model_type": run.model.model_type,
        "tokenizer": _resolved(run.model.tokenizer),
        "model_config": _resolved(run.model.model_config),
        "dataset_root": _resolved(run.dataset_root),
        "split": options.split,
        "annotation_file": {"path": _resolved(annotation), "sha256": sha256_file(Path(annotation))}
        if annotation and Path(annotation).is_file() else _resolved(annotation),
        "skip_bad_images": options.skip_bad_images,
    }
    if run.task == RETRIEVAL:
        record["recall_k"] = sorted(set(options.recall_k))
    if checkpoint is not None:  # the weights' fingerprint: a checkpoint rewritten in place is another run
        record["checkpoint"] = checkpoint
    if dataset is not None:
        targets = [target.tolist() if isinstance(target, torch.Tensor) else target for target in sample_targets(dataset.samples)]
        record["samples"] = len(dataset.samples)
        record["targets_sha256"] = content_key({"targets": targets})
        if isinstance(dataset, ClassificationDataset):
            record["classnames_sha256"] = content_key({"classnames": dataset.classnames})
            record["templates_sha256"] = content_key({"templates": dataset.templates})
    return record


def open_dataset(run: EvalRun, log: Callable[[str], None] = print, quiet: bool = False) -> EvalDataset:
    """Builds (and so validates) the run's dataset, checking it suits the task; a dataset its root does not hold
    is fetched first (`zsbench.data.acquire`), a line through `log` saying so."""
    options = run.options

    def build(root: Path) -> EvalDataset:
        return build_dataset(
            run.dataset,
            root,
            split=options.split,
            language=run.language,
            annotation_file=_optional_path(options.annotation_file),
            custom_classname_file=_optional_path(options.custom_classname_file),
            custom_template_file=_optional_path(options.custom_template_file),
        )

    dataset = open_or_fetch(run.dataset, run.dataset_root, build, split=options.split, language=run.language,
                            quiet=quiet, log=log)
    if dataset.task != run.task:
        asked = f"--task auto chose {run.task}" if options.task == "auto" else f"--task {run.task} was asked for"
        raise DatasetLayoutError(f"{run.dataset} at {run.dataset_root} is a {dataset.task} dataset, but {asked}. Use --task {dataset.task}.")
    return dataset


@dataclass(frozen=True)
class EvalContext:
    """What is shared by every run of one `run_evaluations` call: the ranks and the embedding cache
    (None: off). `cache_features` also caches image embeddings."""

    group: RankGroup = SINGLE
    cache: EmbeddingCache | None = None
    cache_features: bool = False


def _classify(run: EvalRun, dataset: ClassificationDataset, loaded: LoadedModel, context: EvalContext,
              images: ImageShard, quiet: bool, fields: dict[str, Any] | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Every rank's logits (N, C) and targets in dataset order, and the prompts served from the cache
    (`fields`: the encoder's cache key fields, `encoder_fields`)."""
    group = context.group
    classifier, cached_prompts = zero_shot_classifier(
        loaded.encoder, loaded.tokenizer, dataset.classnames, dataset.templates, run.options.batch_size, quiet, group,
        context.cache, fields,
    )
    logits = group.gather_rows(zero_shot_logits(classifier, images))
    targets = group.gather_rows(targets_tensor(images.targets, dataset.multilabel))
    return logits, targets, cached_prompts


def classification_logits(run: EvalRun, dataset: ClassificationDataset, loaded: LoadedModel) -> torch.Tensor:
    """Per-image zero-shot logits (N, C) of a classification run, in dataset order: what its metrics
    are computed from, for comparing backends sample by sample (e.g. top-1 agreement)."""
    torch.manual_seed(run.options.seed)
    images = image_features(run, dataset, loaded, SINGLE, None, None, LoaderClock(), quiet=True)
    logits, _, _ = _classify(run, dataset, loaded, EvalContext(), images, quiet=True)
    return logits


# How each throughput field of the ranks combines into the run's: counts and rates add up (the
# ranks work at the same time), durations and first calls take the slowest rank.
_COMBINE: dict[str, Callable[[list[float]], float]] = {
    "images": sum, "texts": sum, "cached_images": sum, "images_per_second": sum, "texts_per_second": sum,
    "steady_images_per_second": sum, "steady_texts_per_second": sum, "skipped_images": sum,
    "cached_texts": max,  # every rank serves the same class rows
    "image_encode_seconds": max, "text_encode_seconds": max, "first_image_call_seconds": max,
    "first_text_call_seconds": max, "data_loading_seconds": max, "wall_seconds": max,
    "peak_host_memory_mb": max, "peak_gpu_memory_mb": max,
}


def combine_ranks(group: RankGroup, values: dict[str, float | int | None]) -> dict[str, float | int | None]:
    """The run's throughput fields from every rank's (`_COMBINE` says how); None where no rank has a value."""
    names = [name for name in _COMBINE if name in values]
    rows = group.gather_values([math.nan if values[name] is None else float(values[name]) for name in names])  # type: ignore[arg-type]
    combined: dict[str, float | int | None] = {}
    for column, name in enumerate(names):
        present = [row[column] for row in rows if not math.isnan(row[column])]
        value = _COMBINE[name](present) if present else None
        combined[name] = int(value) if isinstance(values[name], int) and value is not None else value
    return {**values, **combined}


def evaluate_run(run: EvalRun, dataset: EvalDataset, loaded: LoadedModel, quiet: bool,
                 context: EvalContext = EvalContext()) -> dict[str, Any]:
    """Evaluates one run (this rank's share of it) and returns its result dict (CLIP_benchmark's keys
    plus zsbench's); every rank returns the same metrics and combined throughput."""
    options = run.options
    encoder, group = loaded.encoder, context.group
    torch.manual_seed(options.seed)
    encoder.reset_stats()
    if encoder.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(encoder.device)
    clock = LoaderClock()
    start = time.perf_counter()
    feature_cache = context.cache if context.cache_features else None
    # The encoder's cache key fingerprints the checkpoint: computed once per run, for both caches and the provenance record.
    fields = encoder_fields(run.model, encoder.describe()) if context.cache is not None else None
    checkpoint = fields["checkpoint"] if fields is not None else checkpoint_digest(run.model)
    images = image_features(run, dataset, loaded, group, feature_cache, fields, clock, quiet)
    cached_prompts = 0
    if isinstance(dataset, ClassificationDataset):
        logits, targets, cached_prompts = _classify(run, dataset, loaded, context, images, quiet, fields)
        metrics = classification_metrics(logits, targets, dataset.multilabel)
    else:
        metrics = evaluate_retrieval(encoder, loaded.tokenizer, images, options.recall_k, options.batch_size, quiet, group)
    wall = time.perf_counter() - start
    throughput = combine_ranks(group, {
        **encoder.stats.to_dict(),
        # Rows served from the caches: encoder counts and rates above cover only what was encoded.
        "cached_images": images.cached,
        "cached_texts": cached_prompts,
        "data_loading_seconds": clock.seconds,
        "wall_seconds": wall,
        "peak_host_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_memory_mb": torch.cuda.max_memory_allocated(encoder.device) / 2**20
        if encoder.device.type == "cuda"
        else None,
        "skipped_images": clock.skipped_images,
    })
    skipped = throughput.pop("skipped_images")
    result: dict[str, Any] = {
        "dataset": run.dataset,
        "model": run.model.model,
        "pretrained": run.model.pretrained,
        "task": run.task,
        "metrics": metrics,
        "language": run.language,
        "run": run_record(run, dataset, checkpoint),
        **encoder.describe(),
        "batch_size": options.batch_size,
        "world_size": group.world_size,
        "throughput": {
            **throughput,
            # GPU memory the runtime holds outside torch's allocator (TensorRT's engines and contexts).
            "runtime_gpu_memory_mb": encoder.runtime_memory_mb(),
        },
        "cache": {"dir": str(context.cache.root) if context.cache is not None else None,
                  "image_features": feature_cache is not None},
        "env": provenance_record(encoder, checkpoint, run.model.model_type),
    }
    if options.skip_bad_images:
        result["skipped_images"] = skipped
    if isinstance(dataset, RetrievalDataset):  # each such image is a miss of text retrieval, as in clip_benchmark
        result["images_without_captions"] = sum(not captions for captions in sample_targets(dataset.samples))
    if isinstance(dataset, ClassificationDataset):
        if options.dump_classnames:
            result["classnames"] = dataset.classnames
        if options.dump_templates:
            result["templates"] = dataset.templates
    return result


def summary_line(result: dict[str, Any], output: str) -> str:
    """One line per finished evaluation: the headline metrics and throughput."""
    metrics = result["metrics"]
    keys = ["acc1", "acc5", "mean_per_class_recall", "mean_average_precision"] + [
        key for key in metrics if key.endswith(("recall@1", "recall@5"))
    ]
    shown = " ".join(f"{key}={metrics[key]:.4f}" for key in keys if key in metrics)
    rates = result["throughput"]
    speed = ", ".join(
        f"{kind} {shown}" if shown in ("cached", "-") else f"{shown} {unit}"
        for kind, unit in (("images", "img/s"), ("texts", "txt/s"))
        for shown in [format_rate(rates, kind)]
    )
    skipped = f" | skipped {result['skipped_images']} unreadable image(s)" if "skipped_images" in result else ""
    if result.get("images_without_captions"):
        skipped += f" | {result['images_without_captions']} image(s) without captions"
    cached = (f" | from cache: {rates['cached_images']} image(s), {rates['cached_texts']} prompt(s)"
              if rates.get("cached_images") or rates.get("cached_texts") else "")
    return (f"{result['dataset']} [{result['language']}] {result['task']}: {shown} | {speed}{cached}{skipped} | "
            f"{rates['wall_seconds']:.1f}s -> {output}")


def _silent(message: str) -> None:
    del message


def run_evaluations(
    runs: list[EvalRun], quiet: bool, log: Callable[[str], None], progress: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[RunOutcome]:
    """Runs `runs` in order. Every dataset is opened before any model loads, so a wrong root fails
    in seconds; a model is loaded once for its consecutive runs; finished outputs are skipped with
    `--skip_existing`, so an interrupted suite resumes where it stopped.

    `log` gets what happened to each run (skipped, recomputed, its summary); `progress` (default: `log`)
    how the backends find or make their artifacts; `warn` (default: `log`) what the embedding cache
    could not use or write; `quiet` hides the progress bars.

    Under torchrun every rank runs this with the same runs and evaluates its share of each
    (`zsbench.eval.distributed`); rank 0 alone logs and writes, once every rank is done.
    """
    if not runs:
        return []
    first = runs[0].options
    apply_threads(first.threads)
    group = join_group(first.device)
    try:
        log = log if group.is_main else _silent
        progress = (progress or log) if group.is_main else _silent
        warn = (warn or log) if group.is_main else _silent
        context = EvalContext(group, open_cache(cache_folder(first), not first.no_cache, warn), first.cache_features)
        return _run_all(runs, quiet or not group.is_main, log, progress, context)
    finally:
        leave_group(group)


def open_inputs(runs: list[EvalRun], log: Callable[[str], None] = print, quiet: bool = False,
                checkpoints_of: list[EvalRun] | None = None) -> dict[tuple, EvalDataset]:
    """Every run's dataset, built once per `dataset_key` (its files walked, its annotations parsed), after
    checking that every checkpoint is on disk: all before any model loads, so a wrong root or path costs
    seconds, and every missing dataset and checkpoint is reported in one error instead of one per run.

    Raises:
        ZsbenchError: the one problem found (its own error), or several, listed in one message.
    """
    opened: dict[tuple, EvalDataset] = {}
    problems: list[ZsbenchError] = []
    for run in runs:
        if dataset_key(run) in opened:
            continue
        try:
            opened[dataset_key(run)] = open_dataset(run, log, quiet)
        except ZsbenchError as err:
            problems.append(err)
    for pretrained in dict.fromkeys(run.model.pretrained for run in (runs if checkpoints_of is None else checkpoints_of)):
        problem = missing_checkpoint(pretrained)
        if problem is not None:
            problems.append(CheckpointError(problem))
    if len(problems) == 1:
        raise problems[0]
    if problems:
        listed = "\n".join(f"{number}. {problem}" for number, problem in enumerate(problems, 1))
        raise ZsbenchError(f"{len(problems)} problems, found before any model was loaded (nothing was evaluated):\n{listed}")
    return opened


def _run_all(runs: list[EvalRun], quiet: bool, log: Callable[[str], None], progress: Callable[[str], None],
             context: EvalContext) -> list[RunOutcome]:
    group = context.group
    outcomes: dict[int, RunOutcome] = {}
    opened: dict[tuple, EvalDataset] = {}  # a dataset several runs read is built (its files walked) once

    def dataset_of(run: EvalRun) -> EvalDataset:
        if dataset_key(run) not in opened:
            opened[dataset_key(run)] = open_dataset(run, log, quiet)
        return opened[dataset_key(run)]

    # --skip_existing: the settings are compared first, then (for a run that may be skipped) what its
    # dataset holds now; the ranks decide together, so a run one of them would evaluate is evaluated by all.
    maybe_done: list[tuple[int, EvalRun]] = []
    pending: list[tuple[int, EvalRun]] = []
    for index, run in enumerate(runs):
        output = Path(run.output)
        if not run.options.skip_existing:
            pending.append((index, run))
            continue
        reason = why_not_reusable(output, run_identity(run), run_record(run)) if output.exists() else None
        if group.all(output.exists() and reason is None):
            maybe_done.append((index, run))
            continue
        if output.exists():
            log(f"recompute {run.output}: {reason or 'another rank cannot read it'}")
        pending.append((index, run))
    # Every output is checked before any dataset is read or model loaded: a typo costs seconds, not a run.
    if group.is_main:
        for _, run in pending:
            check_output_path(Path(run.output))
    # Rank 0 opens first, so a missing dataset is fetched once, then found by the others; every missing dataset
    # and checkpoint is reported in one error.
    if not group.is_main:
        group.barrier()
    opened.update(open_inputs([run for _, run in (*maybe_done, *pending)], log, quiet, checkpoints_of=[run for _, run in pending]))
    if group.is_main:
        group.barrier()
    for index, run in maybe_done:
        reason = why_not_reusable(Path(run.output), run_identity(run), run_record(run, dataset_of(run), checkpoint_digest(run.model)))
        if group.all(reason is None):
            log(f"skip {run.output}: it holds this run's finished result")
            outcomes[index] = RunOutcome(run, "skipped")
            continue
        log(f"recompute {run.output}: {reason or 'another rank cannot read it'}")
        if group.is_main:
            check_output_path(Path(run.output))
        pending.append((index, run))
    pending.sort(key=lambda item: item[0])
    datasets = {index: dataset_of(run) for index, run in pending}

    loaded: LoadedModel | None = None
    loaded_key: tuple | None = None
    for index, run in pending:
        options = run.options
        key = (run.model, options.backend, options.device, options.precision, options.artifacts)
        if key != loaded_key:
            loaded = None  # release the previous model before loading the next
            backend_options = replace(options.artifacts, log=progress)
            device = resolve_device(rank_device(options.device, group.local_rank))
            # Rank 0 loads first, so a missing export or engine is made once, then found by the others.
            if not group.is_main:
                group.barrier()
            loaded = load_backend(options.backend, run.model, device, options.precision, backend_options)
            if group.is_main:
                group.barrier()
            loaded_key = key
        assert loaded is not None
        result = evaluate_run(run, datasets[index], loaded, quiet, context)
        group.barrier()  # every rank finished its share: only now may rank 0 write the result
        if group.is_main:
            write_result(Path(run.output), result)
            log(summary_line(result, run.output))
        outcomes[index] = RunOutcome(run, "done", result)
    return [outcomes[index] for index in range(len(runs))]
