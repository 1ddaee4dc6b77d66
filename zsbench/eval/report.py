"""`zsbench build`: result JSONs -> one CSV or Markdown table, one column per metric, optionally
with the InternVL paper's number and the difference beside each metric.

`--columns` chooses the columns before the metrics: any field of a result, by a short name
(`COLUMN_PATHS`: gpu, cpu, driver, torch, commit, checkpoint, ...: the provenance record in `env`)
or by its dotted path (`env.gpu.compute_capability`, `throughput.steady_images_per_second`).
Strings from result files are escaped for Markdown and neutralised for spreadsheets."""

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
from zsbench.eval.results import check_output_path, format_rate, read_result
from zsbench.jsonfiles import write_text_atomic

IDENTITY_COLUMNS = ("model", "pretrained", "dataset", "language", "task", "backend", "precision", "device")
MARKDOWN_COLUMNS = ("model", "pretrained", "dataset", "language", "backend", "precision")  # one table per task
# cached_*: rows the embedding caches served (a rate is then missing: nothing was encoded).
THROUGHPUT_COLUMNS = ("images_per_second", "texts_per_second", "cached_images", "cached_texts", "wall_seconds")
# Short names for the provenance record's fields (`zsbench.runtime.provenance`); any dotted path works too.
COLUMN_PATHS: dict[str, str] = {
    "gpu": "env.gpu.name", "compute_capability": "env.gpu.compute_capability", "gpu_memory_gib": "env.gpu.memory_gib",
    "driver": "env.gpu.driver", "cuda": "env.gpu.cuda_runtime", "cuda_driver": "env.gpu.cuda_driver",
    "cpu": "env.cpu.model", "cpu_count": "env.cpu.count", "threads": "env.threads.torch",
    "onnxruntime_threads": "env.threads.onnxruntime", "torch": "env.versions.torch", "torchvision": "env.versions.torchvision",
    "onnxruntime": "env.versions.onnxruntime", "execution_provider": "env.execution_provider",
    "tensorrt": "env.versions.tensorrt", "tensorrt_rtx": "env.versions.tensorrt-rtx", "polygraphy": "env.versions.polygraphy",
    "engines_built_for": "env.engines_built_for", "zsbench": "env.zsbench.version", "commit": "env.zsbench.commit",
    "python": "env.python", "platform": "env.platform", "checkpoint": "env.checkpoint", "artifacts": "env.artifacts",
}
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


def column_value(result: dict[str, Any], column: str) -> Any:
    """The value of `column` (a short name of `COLUMN_PATHS`, a top-level key or a dotted path) in `result`; None if absent."""
    value: Any = result
    for key in COLUMN_PATHS.get(column, column).split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def check_columns(columns: tuple[str, ...], results: list[tuple[Path, dict[str, Any]]]) -> None:
    """Refuses a column that is neither a known name (identity, `COLUMN_PATHS`) nor a field any of the
    results has (a typo); a known name that no result fills (`gpu` on CPU runs) shows as empty cells.

    Raises:
        ResultError: naming the column, the short names, and how to give a dotted path.
    """
    known = {*IDENTITY_COLUMNS, *COLUMN_PATHS}
    unknown = [c for c in columns if c not in known and all(column_value(r, c) is None for _, r in results)]
    if unknown:
        raise ResultError(
            f"--columns {', '.join(unknown)}: none of the {len(results)} result(s) has it. Expected a result field, a short name "
            f"({', '.join(COLUMN_PATHS)}) or a dotted path into a result such as env.gpu.compute_capability."
        )


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


def build_rows(results: list[tuple[Path, dict[str, Any]]], compare_paper: bool,
               columns: tuple[str, ...] = IDENTITY_COLUMNS) -> list[dict[str, Any]]:
    """One row per result, sorted: identity (and the chosen `columns`), each metric followed by its paper
    value and difference (with `compare_paper`, where the paper has the metric), throughput, and the file."""
    rows = []
    for path, result in results:
        row: dict[str, Any] = {key: result.get(key) for key in IDENTITY_COLUMNS}
        row.update({column: column_value(result, column) for column in columns})
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


def metric_names(rows: list[dict[str, Any]], columns: tuple[str, ...] = IDENTITY_COLUMNS) -> list[str]:
    """The metrics of `rows`, in first-seen order."""
    skip = {*IDENTITY_COLUMNS, *columns, *THROUGHPUT_COLUMNS, "file"}
    return list(dict.fromkeys(key for row in rows for key in row if key not in skip and not key.startswith(("paper_", "delta_"))))


def table_columns(rows: list[dict[str, Any]], columns: tuple[str, ...] = IDENTITY_COLUMNS) -> list[str]:
    """`columns`, then each metric with its paper value and difference beside it (where any row has
    them), then throughput and the file."""
    present = {key for row in rows for key in row}
    metrics = [
        column for metric in metric_names(rows, columns)
        for column in (metric, f"paper_{metric}", f"delta_{metric}") if column in present
    ]
    return [*columns, *metrics, *THROUGHPUT_COLUMNS, "file"]


def _text(value: Any) -> str:
    """A cell's text: JSON for lists and objects (e.g. env.artifacts), str otherwise."""
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)


def _csv_value(value: Any) -> Any:
    """Numbers as they are (non-finite ones written NaN / Inf); text a spreadsheet would run as a formula quoted."""
    if isinstance(value, float) and not math.isfinite(value):
        return _non_finite(value)
    return value if value is None or isinstance(value, (int, float)) else csv_cell(_text(value))


def _markdown_cell(value: Any) -> str:
    """Text from a result file, made inert in a Markdown table (`zsbench.escape`)."""
    return markdown_text(_text(value))


def to_csv(rows: list[dict[str, Any]], columns: tuple[str, ...] = IDENTITY_COLUMNS) -> str:
    """CSV, one column per metric (fractions, as in the result files), sortable in any spreadsheet;
    non-finite metrics are written NaN / Inf, and text a spreadsheet would run as a formula is quoted."""
    buffer = io.StringIO()
    fields = table_columns(rows, columns)
    writer = csv.DictWriter(buffer, fieldnames=fields, restval="", extrasaction="ignore")
    writer.writeheader()
    writer.writerows({key: _csv_value(row.get(key)) for key in fields} for row in rows)
    return buffer.getvalue()


def metric_label(metric: str) -> str:
    """A short column title: `image_retrieval_recall@5` -> `image R@5`."""
    for tower in ("image", "text"):
        prefix = f"{tower}_retrieval_recall@"
        if metric.startswith(prefix):
            return f"{tower} R@{metric.removeprefix(prefix)}"
    return metric


def percent_text(value: Any, signed: bool = False) -> str:
    """A fraction as a table shows it: percent to two decimals (points, signed, with `signed`); ``-`` for no number, NaN / Inf as such."""
    if not isinstance(value, (int, float)):
        return "-"
    if not math.isfinite(value):
        return _non_finite(value)
    return f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"


def _descriptive_cell(column: str, value: Any) -> str:
    if value is None or value == "":
        return "-"
    return _markdown_cell(Path(str(value)).name if column == "pretrained" else value)


def _markdown_table(rows: list[dict[str, Any]], columns: tuple[str, ...], show_files: bool) -> list[str]:
    present = {key for row in rows for key in row}
    header = ["lang" if column == "language" else column for column in columns]
    # Every string a result file holds is escaped: it is the file's, not zsbench's.
    cells_of: list[Callable[[dict[str, Any]], str]] = [lambda row, c=column: _descriptive_cell(c, row.get(c)) for column in columns]
    for metric in metric_names(rows, columns):
        header.append(f"{metric_label(metric)} %")
        cells_of.append(lambda row, m=metric: percent_text(row.get(m)))
        if f"paper_{metric}" in present:
            header += [f"{metric_label(metric)} paper", f"{metric_label(metric)} Δ pts"]
            cells_of.append(lambda row, m=metric: percent_text(row.get(f"paper_{m}")))
            cells_of.append(lambda row, m=metric: percent_text(row.get(f"delta_{m}"), signed=True))
    header += ["images/s", "texts/s"]
    cells_of += [lambda row: format_rate(row, "images"), lambda row: format_rate(row, "texts")]
    if show_files:
        header.append("file")
        cells_of.append(lambda row: _markdown_cell(row["file"]))
    lines = ["| " + " | ".join(_markdown_cell(title) for title in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(row) for cell in cells_of) + " |" for row in rows]
    return lines


def to_markdown(rows: list[dict[str, Any]], columns: tuple[str, ...] = MARKDOWN_COLUMNS, show_files: bool = False) -> str:
    """One Markdown table per task, one column per metric (percent), the paper's number and the
    difference in points beside each metric that has one, throughput in items per second; with
    `show_files`, the file each row comes from."""
    sections = []
    for task in dict.fromkeys(row["task"] for row in rows):
        chosen = [row for row in rows if row["task"] == task]
        sections.append("\n".join([f"**{_markdown_cell(task)}**", "", *_markdown_table(chosen, columns, show_files)]))
    return "\n\n".join(sections) + "\n"


def render_table(paths: list[Path], table_format: TableFormat, compare_paper: bool, log: Log,
                 columns: tuple[str, ...] = ()) -> tuple[str, int]:
    """The table of the results under `paths` as text, and its row count; other JSONs are skipped,
    non-finite metrics and files of the same run flagged, with a warning through `log`. `columns`: the
    columns before the metrics (default: the identity)."""
    results = read_results(collect_result_files(paths), log)
    check_columns(columns, results)
    repeated = check_results(results, log)
    chosen = columns or (IDENTITY_COLUMNS if table_format == "csv" else MARKDOWN_COLUMNS)
    rows = build_rows(results, compare_paper, chosen)
    return (to_csv(rows, chosen) if table_format == "csv" else to_markdown(rows, chosen, show_files=repeated)), len(rows)


def table_format_of(output: Path) -> TableFormat:
    """csv or md, from `--output`'s suffix."""
    if output.suffix not in (".csv", ".md"):
        raise ResultError(f"--output {output} must end in .csv or .md (or be - for Markdown on stdout).")
    return "csv" if output.suffix == ".csv" else "md"


def build_table(paths: list[Path], output: Path, compare_paper: bool, log: Log, columns: tuple[str, ...] = ()) -> int:
    """Writes the table of the results under `paths` to `output` (.csv or .md) atomically; returns the row count."""
    table_format = table_format_of(output)
    check_output_path(output, example=f"table.{table_format}")  # before any result is read
    text, count = render_table(paths, table_format, compare_paper, log, columns)
    write_text_atomic(output, text)
    return count
