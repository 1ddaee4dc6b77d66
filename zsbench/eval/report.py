"""`zsbench build`: result JSONs -> one CSV or Markdown table, one column per metric, optionally
with the InternVL paper's number and the difference beside each metric."""

from __future__ import annotations

import csv
import functools
import io
import json
import math
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from zsbench.errors import ResultError
from zsbench.escape import csv_cell, markdown_text
from zsbench.eval.results import check_output_path, read_result
from zsbench.jsonfiles import write_text_atomic

IDENTITY_COLUMNS = ("model", "pretrained", "dataset", "language", "task", "backend", "precision", "device")
THROUGHPUT_COLUMNS = ("images_per_second", "texts_per_second", "wall_seconds")
# Rows sort by what a reader scans for first: the task, then the dataset, then who ran it how.
SORT_COLUMNS = ("task", "dataset", "language", "model", "backend", "precision")
TableFormat = Literal["csv", "md"]
Log = Callable[[str], None]


def collect_result_files(paths: list[Path]) -> list[Path]:
    """JSON files from files and folders (folders are searched recursively for *.json)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.rglob("*.json")))
        elif path.is_file():
            files.append(path)
        else:
            raise ResultError(f"{path} does not exist: pass result files or folders holding them.")
    if not files:
        raise ResultError(f"No JSON files found in {', '.join(map(str, paths))}: expected result files of `zsbench eval`.")
    return files


def read_results(files: list[Path], log: Log) -> list[tuple[Path, dict[str, Any]]]:
    """The results among `files`; any other JSON (a bench output, a manifest, a stray file) is
    skipped with one warning line, so one foreign file in a results folder never stops a build.

    Raises:
        ResultError: none of the files is a result.
    """
    results = []
    for path in files:
        try:
            results.append((path, read_result(path)))
        except ResultError as err:
            log(f"warning: skipped {err}")
    if not results:
        raise ResultError(f"None of the {len(files)} JSON file(s) is a result of `zsbench eval`; pass result files or their folders.")
    return results


def model_family(model: str) -> str:
    """InternVL-C or InternVL-G for InternVL names (the .pth and HF checkpoints hold the same weights); else the name."""
    for family in ("c", "g"):
        if model.startswith(f"internvl_{family}_"):
            return f"InternVL-{family.upper()}"
    return model


@functools.cache
def paper_results() -> dict[tuple[str, str, str, str], dict[str, float]]:
    """The InternVL paper's published metrics, keyed by (model family, dataset, language, task)."""
    text = (resources.files("zsbench.eval") / "paper_results.json").read_text(encoding="utf-8")
    table = {}
    for section in json.loads(text):
        for entry in section["expected"]:
            key = (model_family(entry["model"]), entry["dataset"], entry["language"], entry["task"])
            table[key] = {name: value for name, value in entry["metrics"].items() if value is not None}
    return table


def paper_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The paper's metrics for the run of `result` ({} when the paper has none)."""
    return paper_results().get((model_family(result["model"]), result["dataset"], result["language"], result["task"]), {})


def check_results(results: list[tuple[Path, dict[str, Any]]], log: Log) -> bool:
    """Warns (through `log`) about what a table would otherwise hide: non-finite metrics (shown as NaN or
    Inf, never as numbers) and files holding the same run (all kept). True when some files hold the
    same run, so that tables add a column naming each row's file."""
    for path, result in results:
        odd = [f"{key} {_non_finite(value)}" for key, value in result["metrics"].items() if not math.isfinite(value)]
        if odd:
            log(f"warning: {path} holds non-finite metrics ({', '.join(odd)}): shown as such, not as numbers.")
    groups: dict[tuple, list[Path]] = {}
    for path, result in results:
        groups.setdefault(tuple(str(result.get(key)) for key in IDENTITY_COLUMNS), []).append(path)
    repeated = [paths for paths in groups.values() if len(paths) > 1]
    for paths in repeated:
        log(f"warning: {', '.join(map(str, paths))} hold the same run (model, checkpoint, dataset, language, task, backend, "
            "precision and device alike): every one is tabulated, and the file column tells them apart.")
    return bool(repeated)


def _non_finite(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Inf" if value > 0 else "-Inf")


def build_rows(results: list[tuple[Path, dict[str, Any]]], compare_paper: bool) -> list[dict[str, Any]]:
    """One row per result, sorted: identity, each metric followed by its paper value and difference
    (with `compare_paper`, where the paper has the metric), throughput, and the file."""
    rows = []
    for path, result in results:
        row: dict[str, Any] = {key: result.get(key) for key in IDENTITY_COLUMNS}
        reference = paper_metrics(result) if compare_paper else {}
        for metric, value in result["metrics"].items():
            row[metric] = value
            if metric in reference:
                row[f"paper_{metric}"] = reference[metric]
                row[f"delta_{metric}"] = value - reference[metric] if isinstance(value, (int, float)) else None
        row.update({key: (result.get("throughput") or {}).get(key) for key in THROUGHPUT_COLUMNS})
        row["file"] = str(path)
        rows.append(row)
    return sorted(rows, key=lambda row: tuple(str(row[key] or "") for key in SORT_COLUMNS))


def metric_names(rows: list[dict[str, Any]]) -> list[str]:
    """The metrics of `rows`, in first-seen order."""
    skip = {*IDENTITY_COLUMNS, *THROUGHPUT_COLUMNS, "file"}
    return list(dict.fromkeys(key for row in rows for key in row if key not in skip and not key.startswith(("paper_", "delta_"))))


def table_columns(rows: list[dict[str, Any]]) -> list[str]:
    """Identity, then each metric with its paper value and difference beside it (where any row has
    them), then throughput and the file."""
    present = {key for row in rows for key in row}
    metrics = [
        column for metric in metric_names(rows)
        for column in (metric, f"paper_{metric}", f"delta_{metric}") if column in present
    ]
    return [*IDENTITY_COLUMNS, *metrics, *THROUGHPUT_COLUMNS, "file"]


def _csv_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return _non_finite(value)
    return csv_cell(value)


def to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV, one column per metric (fractions, as in the result files), sortable in any spreadsheet;
    non-finite metrics are written NaN / Inf, and text a spreadsheet would run as a formula is quoted."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=table_columns(rows), restval="")
    writer.writeheader()
    writer.writerows({key: _csv_value(value) for key, value in row.items()} for row in rows)
    return buffer.getvalue()


def metric_label(metric: str) -> str:
    """A short column title: `image_retrieval_recall@5` -> `image R@5`."""
    for tower in ("image", "text"):
        prefix = f"{tower}_retrieval_recall@"
        if metric.startswith(prefix):
            return f"{tower} R@{metric.removeprefix(prefix)}"
    return metric


def _percent(value: Any, signed: bool = False) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    if not math.isfinite(value):
        return _non_finite(value)
    return f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"


def _rate(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "-"


def _markdown_table(rows: list[dict[str, Any]], show_files: bool) -> list[str]:
    present = {key for row in rows for key in row}
    header = ["model", "pretrained", "dataset", "lang", "backend", "precision"]
    # Every string a result file holds is escaped: it is the file's, not zsbench's.
    cells_of: list[Callable[[dict[str, Any]], str]] = [
        lambda row: markdown_text(row["model"]), lambda row: markdown_text(Path(str(row["pretrained"])).name),
        lambda row: markdown_text(row["dataset"]), lambda row: markdown_text(row["language"]),
        lambda row: markdown_text(row["backend"] or "-"), lambda row: markdown_text(row["precision"] or "-"),
    ]
    for metric in metric_names(rows):
        header.append(f"{metric_label(metric)} %")
        cells_of.append(lambda row, m=metric: _percent(row.get(m)))
        if f"paper_{metric}" in present:
            header += [f"{metric_label(metric)} paper", f"{metric_label(metric)} Δ pts"]
            cells_of.append(lambda row, m=metric: _percent(row.get(f"paper_{m}")))
            cells_of.append(lambda row, m=metric: _percent(row.get(f"delta_{m}"), signed=True))
    header += ["images/s", "texts/s"]
    cells_of += [lambda row: _rate(row["images_per_second"]), lambda row: _rate(row["texts_per_second"])]
    if show_files:
        header.append("file")
        cells_of.append(lambda row: markdown_text(row["file"]))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(row) for cell in cells_of) + " |" for row in rows]
    return lines


def to_markdown(rows: list[dict[str, Any]], show_files: bool = False) -> str:
    """One Markdown table per task, one column per metric (percent), the paper's number and the
    difference in points beside each metric that has one, throughput in items per second; with
    `show_files`, the file each row comes from."""
    sections = []
    for task in dict.fromkeys(row["task"] for row in rows):
        chosen = [row for row in rows if row["task"] == task]
        sections.append("\n".join([f"**{markdown_text(task)}**", "", *_markdown_table(chosen, show_files)]))
    return "\n\n".join(sections) + "\n"


def render_table(paths: list[Path], table_format: TableFormat, compare_paper: bool, log: Log) -> tuple[str, int]:
    """The table of the results under `paths` as text, and its row count; other JSONs are skipped,
    non-finite metrics and files of the same run flagged, with a warning through `log`."""
    results = read_results(collect_result_files(paths), log)
    repeated = check_results(results, log)
    rows = build_rows(results, compare_paper)
    return (to_csv(rows) if table_format == "csv" else to_markdown(rows, show_files=repeated)), len(rows)


def table_format_of(output: Path) -> TableFormat:
    """csv or md, from `--output`'s suffix."""
    if output.suffix not in (".csv", ".md"):
        raise ResultError(f"--output {output} must end in .csv or .md (or be - for Markdown on stdout).")
    return "csv" if output.suffix == ".csv" else "md"


def build_table(paths: list[Path], output: Path, compare_paper: bool, log: Log) -> int:
    """Writes the table of the results under `paths` to `output` (.csv or .md) atomically; returns the row count."""
    table_format = table_format_of(output)
    check_output_path(output, example=f"table.{table_format}")  # before any result is read
    text, count = render_table(paths, table_format, compare_paper, log)
    write_text_atomic(output, text)
    return count
