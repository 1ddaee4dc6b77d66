"""Accuracy per precision: each model's runs at a precision other than fp32 (fp16, bf16, int8, ...) beside
the fp32 run of the same model, checkpoint and dataset, and the difference in points.

A run is compared with the fp32 run of its own backend (onnx int8 with onnx fp32: what quantizing cost),
else with torch fp32 (the reference every backend is checked against). Where neither exists, the run is
shown without a difference and says why: a baseline is never made up from another model or dataset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zsbench.escape import markdown_text
from zsbench.eval.report import metric_label, percent_text
from zsbench.precisions import precision_names
from zsbench.report.figures import PrecisionEntry
from zsbench.report.labels import dataset_label, device_name, result_label, series_name

# The metric compared per task: top-1 (mAP for multi-label datasets) and retrieval recall@5 both ways.
COMPARED_METRICS = ("acc1", "mean_average_precision", "image_retrieval_recall@5", "text_retrieval_recall@5")
BASELINE_PRECISION = "fp32"
FALLBACK_BACKEND = "torch"  # whose fp32 run a backend without one of its own is compared with
# What makes runs comparable: one model with one checkpoint on one dataset, language and task.
GROUP_KEYS = ("dataset", "language", "task", "model", "pretrained")
NO_BASELINE = f"none: no {BASELINE_PRECISION} run of this backend or of {FALLBACK_BACKEND}"


@dataclass(frozen=True)
class ComparedRun:
    """One result and the fp32 result it is compared with (itself for an fp32 run; None when there is none)."""

    result: dict[str, Any]
    baseline: dict[str, Any] | None

    @property
    def is_baseline(self) -> bool:
        return self.baseline is self.result

    def delta(self, metric: str) -> float | None:
        """The metric minus the baseline's (a fraction), where both are finite numbers and the run is not its own baseline."""
        if self.baseline is None or self.is_baseline:
            return None
        value, reference = self.result["metrics"].get(metric), self.baseline["metrics"].get(metric)
        if not all(isinstance(number, (int, float)) and math.isfinite(number) for number in (value, reference)):
            return None
        return value - reference

    def against(self) -> str:
        """What the delta is taken against, as the table and figure say it."""
        if self.baseline is None:
            return NO_BASELINE
        return f"{BASELINE_PRECISION} baseline" if self.is_baseline else series_name(self.baseline)


def _precision_rank(result: dict[str, Any]) -> tuple[int, str, str]:
    """fp32 first, then the registry's order (fp16, bf16, int8, fp8); precisions zsbench does not know last."""
    names = precision_names()
    precision = str(result.get("precision"))
    return (names.index(precision) if precision in names else len(names), precision, str(result.get("backend")))


def compare_precisions(results: list[dict[str, Any]]) -> list[list[ComparedRun]]:
    """The runs of each model and dataset that has one at a precision other than fp32, each with its fp32
    baseline; one list per model and dataset (first-seen order), fp32 runs first. `results` hold one run
    per backend and precision of each (`zsbench.report.document.figure_results`); results that record no
    precision (CLIP_benchmark's own) take no part."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for result in results:
        if not isinstance(result.get("precision"), str):
            continue
        groups.setdefault(tuple(str(result.get(key)) for key in GROUP_KEYS), []).append(result)
    compared = []
    for members in groups.values():
        if all(member.get("precision") == BASELINE_PRECISION for member in members):
            continue
        fp32 = {str(member.get("backend")): member for member in members if member.get("precision") == BASELINE_PRECISION}
        compared.append([
            ComparedRun(member, fp32.get(str(member.get("backend")), fp32.get(FALLBACK_BACKEND)))
            for member in sorted(members, key=_precision_rank)
        ])
    return compared


def _metrics_of(runs: list[ComparedRun]) -> list[str]:
    return [metric for metric in COMPARED_METRICS if any(metric in run.result["metrics"] for run in runs)]


def _calibration_text(result: dict[str, Any]) -> str:
    """The calibration a quantized run's graphs were made with (`"calibration"` of its result): name and samples."""
    calibration = result.get("calibration")
    if not isinstance(calibration, dict):
        return "-"
    entries = [entry for entry in calibration.values() if isinstance(entry, dict)]
    described = dict.fromkeys(f"{entry.get('name', '?')} ({entry.get('samples', '?')} samples)" for entry in entries)
    return "; ".join(described) or "-"


def _table(runs: list[ComparedRun]) -> list[str]:
    """One Markdown table: a row per run, each compared metric in percent with its difference in points."""
    metrics = _metrics_of(runs)
    header = ["model", "pretrained", "backend", "precision", "device", "calibration"]
    header += [title for metric in metrics for title in (f"{metric_label(metric)} %", f"{metric_label(metric)} Δ pts")]
    header.append("Δ against")
    lines = ["| " + " | ".join(markdown_text(title) for title in header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        result = run.result
        cells = [str(result.get("model")), Path(str(result.get("pretrained"))).name, str(result.get("backend")),
                 str(result.get("precision")), device_name(result), _calibration_text(result)]
        cells = [markdown_text(cell) for cell in cells]  # every string is the result file's: escaped
        for metric in metrics:
            cells += [percent_text(result["metrics"].get(metric)), percent_text(run.delta(metric), signed=True)]
        cells.append(markdown_text(run.against()))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def precision_markdown(compared: list[list[ComparedRun]]) -> list[str]:
    """One table per dataset (and language), the runs of every model on it, as Markdown lines."""
    datasets: dict[str, list[ComparedRun]] = {}
    for runs in compared:
        datasets.setdefault(dataset_label(runs[0].result), []).extend(runs)
    lines = []
    for dataset, runs in datasets.items():
        lines += ["", f"### {markdown_text(dataset)}", "", *_table(runs)]
    return lines


def precision_entries(compared: list[list[ComparedRun]]) -> list[PrecisionEntry]:
    """One figure entry per model, dataset and compared metric: the value per series, annotated with its difference."""
    entries = []
    for runs in compared:
        for metric in _metrics_of(runs):
            measured: dict[str, float] = {}
            notes: dict[str, str] = {}
            for run in runs:
                value = run.result["metrics"].get(metric)
                if not (isinstance(value, (int, float)) and math.isfinite(value)):
                    continue
                series = series_name(run.result)
                measured[series] = value
                delta = run.delta(metric)
                notes[series] = run.against() if delta is None else f"{100 * delta:+.2f} pts vs {run.against()}"
            if measured:
                entries.append(PrecisionEntry(f"{result_label(runs[0].result)} · {metric_label(metric)}", measured, notes))
    return entries


def devices_of(compared: list[list[ComparedRun]]) -> str:
    """The devices the compared runs ran on, named (``cpu (Intel(R) Xeon(R) Processor)``), for titles."""
    return ", ".join(sorted({device_name(run.result) for runs in compared for run in runs}))
