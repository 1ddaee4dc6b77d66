"""`zsbench report`: result JSONs of `zsbench eval` and `--output` files of `zsbench bench` ->
`report.md` with its PNG figures embedded, all in one folder, each file written atomically."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zsbench.bench.rows import BenchRow, format_table, read_rows
from zsbench.errors import ResultError
from zsbench.escape import markdown_text
from zsbench.eval.report import (
    build_rows,
    check_results,
    collect_result_files,
    metric_label,
    paper_metrics,
    to_markdown,
)
from zsbench.eval.results import check_output_path, read_result
from zsbench.jsonfiles import read_json_object, write_bytes_atomic, write_text_atomic
from zsbench.report.figures import (
    AccuracyEntry,
    ThroughputEntry,
    accuracy_figure,
    bench_figure,
    precision_figure,
    throughput_figure,
)
from zsbench.report.labels import result_label, series_name
from zsbench.report.precision import FALLBACK_BACKEND, compare_precisions, devices_of, precision_entries, precision_markdown

Log = Callable[[str], None]
# The metrics a figure shows per result: top-1 (mAP for multi-label) and retrieval R@1 both ways.
HEADLINE_METRICS = ("acc1", "mean_average_precision", "image_retrieval_recall@1", "text_retrieval_recall@1")
_FILE_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class ReportInputs:
    """What a report is drawn from: results (path, dict) and bench runs (path, info, rows)."""

    results: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    benches: list[tuple[Path, dict[str, Any], list[BenchRow]]] = field(default_factory=list)


def load_inputs(paths: list[Path], log: Log) -> ReportInputs:
    """Sorts the JSONs under `paths` into results and bench outputs; any other JSON is skipped
    with one warning line.

    Raises:
        ResultError: a path does not exist, or no file is a result or a bench output.
    """
    inputs = ReportInputs()
    for path in collect_result_files(paths):
        try:
            if "rows" in read_json_object(path, ResultError, "a result or bench JSON", "Re-run the command that writes it."):
                inputs.benches.append((path, *read_rows(path)))
            else:
                inputs.results.append((path, read_result(path)))
        except ResultError as err:
            log(f"warning: skipped {err}")
    if not inputs.results and not inputs.benches:
        raise ResultError(f"No result of `zsbench eval` nor output of `zsbench bench` under {', '.join(map(str, paths))}.")
    return inputs


def figure_results(results: list[tuple[Path, dict[str, Any]]], log: Log) -> list[tuple[Path, dict[str, Any]]]:
    """The results the figures draw: one per dataset, language, model family and series (backend and
    precision), since a figure has one bar for each. Where several files share one, the newest file
    (by modification time) is drawn and a warning names the others; the results table lists them all."""
    groups: dict[tuple[str, str], list[tuple[Path, dict[str, Any]]]] = {}
    for path, result in results:
        groups.setdefault((result_label(result), series_name(result)), []).append((path, result))
    chosen = []
    for (label, series), members in groups.items():
        newest = max(members, key=lambda member: (member[0].stat().st_mtime_ns, str(member[0])))
        if len(members) > 1:
            others = ", ".join(str(path) for path, _ in members if path != newest[0])
            log(f"warning: {newest[0]} and {others} are all {label} on {series}; the figures show {newest[0]} "
                "(the newest file), the results table lists every one.")
        chosen.append(newest)
    return chosen


def accuracy_entries(results: list[tuple[Path, dict[str, Any]]]) -> list[AccuracyEntry]:
    """One entry per (dataset, language, model family, headline metric), a measured value per series."""
    measured: dict[str, dict[str, float]] = {}
    paper: dict[str, float | None] = {}
    for _, result in results:
        reference = paper_metrics(result)
        for metric in HEADLINE_METRICS:
            value = result["metrics"].get(metric)
            if isinstance(value, (int, float)) and math.isfinite(value):
                label = f"{result_label(result)} · {metric_label(metric)}"
                measured.setdefault(label, {})[series_name(result)] = value
                paper[label] = reference.get(metric)
    return [AccuracyEntry(label, values, paper[label]) for label, values in measured.items()]


def throughput_entries(results: list[tuple[Path, dict[str, Any]]]) -> list[ThroughputEntry]:
    """One entry per (dataset, language, model family), (images/s, texts/s) per series."""
    rates: dict[str, dict[str, tuple[float | None, float | None]]] = {}
    for _, result in results:
        throughput = result.get("throughput") or {}
        label = result_label(result)
        rates.setdefault(label, {})[series_name(result)] = (throughput.get("images_per_second"), throughput.get("texts_per_second"))
    return [ThroughputEntry(label, values) for label, values in rates.items()]


def _bench_title(info: dict[str, Any]) -> str:
    model = info.get("model") or {}
    return f"zsbench bench: {model.get('model', '?')} ({Path(str(model.get('pretrained', '?'))).name}) on {info.get('device', '?')}"


def _result_sections(results: list[tuple[Path, dict[str, Any]]], figures: dict[str, bytes], log: Log) -> list[str]:
    """The accuracy and throughput figures (added to `figures`) and the results table, as Markdown lines."""
    sections = []
    repeated = check_results(results, log)
    drawn = figure_results(results, log)
    accuracy = accuracy_entries(drawn)
    if accuracy:  # results whose metrics include none of the headline ones get the table only
        figures["accuracy.png"] = accuracy_figure(accuracy)
        sections += [
            "", "## Accuracy against the paper", "",
            "![Zero-shot accuracy per dataset against the InternVL paper](accuracy.png)", "",
            "One bar per backend and precision, grey for the paper's number where it has one; the labels give "
            "the value in percent and the difference to the paper in points. Best first.",
        ]
    sections += _precision_section([result for _, result in drawn], figures)
    figures["throughput.png"] = throughput_figure(throughput_entries(drawn))
    return sections + [
        "", "## Throughput per dataset", "",
        "![Encoder throughput per dataset and backend](throughput.png)", "",
        "The encoders' own rates inside each evaluation (first calls included); `zsbench bench` measures steady rates.",
        "", "## Results", "", to_markdown(build_rows(results, compare_paper=True), show_files=repeated).rstrip(),
    ]


def _precision_section(results: list[dict[str, Any]], figures: dict[str, bytes]) -> list[str]:
    """Where some model ran at a precision other than fp32: its figure (added to `figures` as precision.png)
    and one table per dataset, as Markdown lines; nothing otherwise."""
    compared = compare_precisions(results)
    if not compared:
        return []
    device = devices_of(compared)
    sections = ["", "## Accuracy per precision", ""]
    entries = precision_entries(compared)
    if entries:  # runs whose metrics include none of the compared ones get the tables only
        figures["precision.png"] = precision_figure(device, entries)
        sections += [f"![Accuracy per precision against fp32 on {markdown_text(device)}](precision.png)", ""]
    return sections + [
        f"Each model run at a precision other than fp32, on {markdown_text(device)}: top-1 accuracy (mAP for multi-label "
        "datasets) or retrieval recall@5 both ways, and the difference in points to the fp32 run of the same model, "
        f"checkpoint and dataset on the same backend, else on {FALLBACK_BACKEND}. A run with neither has no difference, "
        "and says so.",
        *precision_markdown(compared),
    ]


def _bench_section(path: Path, info: dict[str, Any], rows: list[BenchRow], figures: dict[str, bytes]) -> list[str]:
    """One bench run's figure (added to `figures` as bench-<file name>.png, numbered when two files
    share a name) and its table, as Markdown lines."""
    stem = _FILE_NAME_UNSAFE.sub("_", path.stem)  # the figure's name is a link target: no spaces, brackets, ...
    name = f"bench-{stem}.png"
    if name in figures:
        name = f"bench-{stem}-{len(figures)}.png"
    figures[name] = bench_figure(_bench_title(info), rows)
    return [
        "", f"## Throughput against batch size ({markdown_text(path)})", "", f"![{markdown_text(_bench_title(info))}]({name})", "",
        "Top: items per second (log scale); bottom: the fraction of its own peak that each row reaches: the "
        "matrix-multiply rate of the row's runtime and precision, measured in the same run (a point above 100 % "
        "would be a measurement bug: it is marked at the top edge, off the scale).", "", "```", format_table(rows), "```",
    ]


def write_report(paths: list[Path], out: Path, log: Log) -> list[Path]:
    """Writes `out/report.md` and its figures for the JSONs under `paths`; returns the files written.

    Figures: `accuracy.png` and `throughput.png` when there are results, `precision.png` when some model
    ran at a precision other than fp32, `bench-<name>.png` per bench output (named after its file).
    """
    check_output_path(out, "--output_dir", folder=True)  # before any input is read or figure drawn
    inputs = load_inputs(paths, log)
    figures: dict[str, bytes] = {}
    sections = ["# zsbench report", "", f"{len(inputs.results)} result(s) and {len(inputs.benches)} bench run(s), "
                f"from {markdown_text(', '.join(map(str, paths)))}."]
    if inputs.results:
        sections += _result_sections(inputs.results, figures, log)
    for path, info, rows in inputs.benches:
        sections += _bench_section(path, info, rows, figures)
    for name, png in figures.items():
        write_bytes_atomic(out / name, png)
    write_text_atomic(out / "report.md", "\n".join(sections) + "\n")
    return [out / "report.md", *(out / name for name in figures)]
