"""Runs planned evaluations: datasets validated first, each model loaded once, results written atomically."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zsbench.backends import BackendOptions, LoadedModel, load_backend
from zsbench.data import build_dataset
from zsbench.data.types import ClassificationDataset, EvalDataset, TransformedDataset, collate_samples
from zsbench.errors import DatasetLayoutError
from zsbench.eval.classification import zero_shot_logits
from zsbench.eval.metrics import classification_metrics
from zsbench.eval.encoding import LoaderClock
from zsbench.eval.plan import EvalRun
from zsbench.eval.results import check_output_path, environment, why_not_reusable, write_result
from zsbench.eval.retrieval import evaluate_retrieval
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


def open_dataset(run: EvalRun) -> EvalDataset:
    """Builds (and so validates) the run's dataset, checking it suits the task."""
    options = run.options
    dataset = build_dataset(
        run.dataset,
        Path(run.dataset_root),
        split=options.split,
        language=run.language,
        annotation_file=_optional_path(options.annotation_file),
        custom_classname_file=_optional_path(options.custom_classname_file),
        custom_template_file=_optional_path(options.custom_template_file),
    )
    if dataset.task != run.task:
        raise DatasetLayoutError(
            f"{run.dataset} at {run.dataset_root} is a {dataset.task} dataset, but --task {run.task} was asked for. "
            f"Use --task {dataset.task} (or auto)."
        )
    return dataset


def _image_loader(run: EvalRun, dataset: EvalDataset, loaded: LoadedModel) -> torch.utils.data.DataLoader:
    options = run.options
    return torch.utils.data.DataLoader(
        TransformedDataset(dataset.samples, loaded.transform, options.skip_bad_images),
        batch_size=options.batch_size,
        num_workers=options.num_workers,
        collate_fn=collate_samples,
        pin_memory=loaded.encoder.device.type == "cuda",
    )


def classification_logits(run: EvalRun, dataset: ClassificationDataset, loaded: LoadedModel) -> torch.Tensor:
    """Per-image zero-shot logits (N, C) of a classification run, in dataset order: what its metrics
    are computed from, for comparing backends sample by sample (e.g. top-1 agreement)."""
    torch.manual_seed(run.options.seed)
    logits, _ = zero_shot_logits(loaded.encoder, loaded.tokenizer, _image_loader(run, dataset, loaded), dataset.classnames,
                                 dataset.templates, dataset.multilabel, LoaderClock(), quiet=True)
    return logits


def evaluate_run(run: EvalRun, dataset: EvalDataset, loaded: LoadedModel, quiet: bool) -> dict[str, Any]:
    """Evaluates one run and returns its result dict (CLIP_benchmark's keys plus zsbench's)."""
    options = run.options
    encoder = loaded.encoder
    torch.manual_seed(options.seed)
    encoder.reset_stats()
    if encoder.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(encoder.device)
    clock = LoaderClock()
    loader = _image_loader(run, dataset, loaded)
    start = time.perf_counter()
    if isinstance(dataset, ClassificationDataset):
        logits, targets = zero_shot_logits(
            encoder, loaded.tokenizer, loader, dataset.classnames, dataset.templates, dataset.multilabel, clock, quiet
        )
        metrics = classification_metrics(logits, targets, dataset.multilabel)
    else:
        metrics = evaluate_retrieval(encoder, loaded.tokenizer, loader, options.recall_k, clock, quiet)
    wall = time.perf_counter() - start
    result: dict[str, Any] = {
        "dataset": run.dataset,
        "model": run.model.model,
        "pretrained": run.model.pretrained,
        "task": run.task,
        "metrics": metrics,
        "language": run.language,
        **encoder.describe(),
        "batch_size": options.batch_size,
        "throughput": {
            **encoder.stats.to_dict(),
            "data_loading_seconds": clock.seconds,
            "wall_seconds": wall,
            "peak_host_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_gpu_memory_mb": torch.cuda.max_memory_allocated(encoder.device) / 2**20
            if encoder.device.type == "cuda"
            else None,
            # GPU memory the runtime holds outside torch's allocator (TensorRT's engines and contexts).
            "runtime_gpu_memory_mb": encoder.runtime_memory_mb(),
        },
        "env": environment(),
    }
    if options.skip_bad_images:
        result["skipped_images"] = clock.skipped_images
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
    speed = f"{rates['images_per_second'] or 0:.1f} img/s, {rates['texts_per_second'] or 0:.1f} txt/s"
    skipped = f" | skipped {result['skipped_images']} unreadable image(s)" if "skipped_images" in result else ""
    return f"{result['dataset']} [{result['language']}] {result['task']}: {shown} | {speed}{skipped} | {rates['wall_seconds']:.1f}s -> {output}"


def run_evaluations(
    runs: list[EvalRun], quiet: bool, log: Callable[[str], None], progress: Callable[[str], None] | None = None
) -> list[RunOutcome]:
    """Runs `runs` in order. Every dataset is opened before any model loads, so a wrong root fails
    in seconds; a model is loaded once for its consecutive runs; finished outputs are skipped with
    `--skip_existing`, so an interrupted suite resumes where it stopped.

    `log` gets what happened to each run (skipped, recomputed, its summary); `progress` (default: `log`)
    how the backends find or make their artifacts; `quiet` hides the progress bars."""
    outcomes: dict[int, RunOutcome] = {}
    pending = []
    for index, run in enumerate(runs):
        output = Path(run.output)
        if run.options.skip_existing and output.exists():
            reason = why_not_reusable(output, run_identity(run))
            if reason is None:
                log(f"skip {run.output}: it holds this run's finished result")
                outcomes[index] = RunOutcome(run, "skipped")
                continue
            log(f"recompute {run.output}: {reason}")
        pending.append((index, run))
    # Every output is checked before any dataset is read or model loaded: a typo costs seconds, not a run.
    for _, run in pending:
        check_output_path(Path(run.output))
    # A dataset several models are evaluated on is built (its files walked, its annotations parsed) once.
    opened: dict[tuple, EvalDataset] = {}
    for _, run in pending:
        if dataset_key(run) not in opened:
            opened[dataset_key(run)] = open_dataset(run)
    datasets = {index: opened[dataset_key(run)] for index, run in pending}

    loaded: LoadedModel | None = None
    loaded_key: tuple | None = None
    for index, run in pending:
        options = run.options
        key = (run.model, options.backend, options.device, options.precision, options.no_parity_gate,
               options.export_dir, options.engine_dir)
        if key != loaded_key:
            loaded = None  # release the previous model before loading the next
            backend_options = BackendOptions(parity_gate=not options.no_parity_gate, export_root=Path(options.export_dir),
                                             engine_root=Path(options.engine_dir), log=progress or log)
            loaded = load_backend(options.backend, run.model, resolve_device(options.device), options.precision, backend_options)
            loaded_key = key
        assert loaded is not None
        result = evaluate_run(run, datasets[index], loaded, quiet)
        write_result(Path(run.output), result)
        log(summary_line(result, run.output))
        outcomes[index] = RunOutcome(run, "done", result)
    return [outcomes[index] for index in range(len(runs))]
