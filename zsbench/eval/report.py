"""`zsbench build`: result JSONs -> one CSV or Markdown table, optionally beside the paper's numbers."""

from __future__ import annotations

import csv
import io
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

from zsbench.errors import ResultError
from zsbench.eval.results import read_result

THROUGHPUT_COLUMNS = ("images_per_second", "texts_per_second", "wall_seconds")


def collect_result_files(paths: list[Path]) -> list[Path]:
    """Result files from files and folders (folders are searched recursively for *.json)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.rglob("*.json")))
        elif path.is_file():
            files.append(path)
        else:
            raise ResultError(f"{path} does not exist: pass result files or folders holding them.")
    if not files:
        raise ResultError(f"No result files found in {', '.join(map(str, paths))}.")
    return files


def model_family(model: str) -> str:
    """InternVL-C or InternVL-G for InternVL names (the .pth and HF checkpoints hold the same weights); else the name."""
    for family in ("c", "g"):
        if model.startswith(f"internvl_{family}_"):
            return f"InternVL-{family.upper()}"
    return model


def paper_results() -> dict[tuple[str, str, str, str], dict[str, float]]:
    """The InternVL paper's published metrics, keyed by (model family, dataset, language, task)."""
    text = (resources.files("zsbench.eval") / "paper_results.json").read_text(encoding="utf-8")
    table = {}
    for section in json.loads(text):
        for entry in section["expected"]:
            key = (model_family(entry["model"]), entry["dataset"], entry["language"], entry["task"])
            table[key] = {name: value for name, value in entry["metrics"].items() if value is not None}
    return table


def build_rows(files: list[Path], compare_paper: bool) -> list[dict[str, Any]]:
    """One row per result: identity, every metric, throughput, and (optionally) paper value and difference."""
    paper = paper_results() if compare_paper else {}
    rows = []
    for path in files:
        result = read_result(path)
        row: dict[str, Any] = {
            key: result.get(key) for key in ("model", "pretrained", "dataset", "language", "task", "backend", "precision", "device")
        }
        row["model_fullname"] = f"{result['model']} {result['pretrained']}"
        row.update(result["metrics"])
        row.update({key: (result.get("throughput") or {}).get(key) for key in THROUGHPUT_COLUMNS})
        if compare_paper:
            reference = paper.get((model_family(result["model"]), result["dataset"], result["language"], result["task"]), {})
            for metric, value in reference.items():
                row[f"paper_{metric}"] = value
                measured = result["metrics"].get(metric)
                row[f"delta_{metric}"] = measured - value if isinstance(measured, (int, float)) else None
        row["file"] = str(path)
        rows.append(row)
    return rows


def to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV with the union of all columns, in first-seen order."""
    columns = list(dict.fromkeys(column for row in rows for column in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _percent(value: Any, signed: bool = False) -> str:
    if not isinstance(value, (int, float)) or math.isnan(value):
        return "-"
    return f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"


def _rate(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "-"


def metric_names(row: dict[str, Any]) -> list[str]:
    """The metrics of a row, in their result-file order."""
    skip = {"model", "pretrained", "dataset", "language", "task", "backend", "precision", "device", "model_fullname", "file", *THROUGHPUT_COLUMNS}
    return [key for key in row if key not in skip and not key.startswith(("paper_", "delta_"))]


def to_markdown(rows: list[dict[str, Any]], compare_paper: bool) -> str:
    """A Markdown table: metrics in percent, throughput in items per second, paper differences in points."""
    header = ["model", "pretrained", "dataset", "lang", "task", "backend", "precision", "metrics (%)"]
    if compare_paper:
        header.append("vs paper (points)")
    header += ["images/s", "texts/s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        names = metric_names(row)
        cells = [
            row["model"], Path(str(row["pretrained"])).name, row["dataset"], row["language"],
            row["task"].removeprefix("zeroshot_"), row["backend"] or "-", row["precision"] or "-",
            ", ".join(f"{name} {_percent(row[name])}" for name in names),
        ]
        if compare_paper:
            deltas = [f"{name} {_percent(row[f'delta_{name}'], signed=True)}" for name in names if f"delta_{name}" in row]
            cells.append(", ".join(deltas) or "no paper number")
        cells += [_rate(row["images_per_second"]), _rate(row["texts_per_second"])]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def build_table(paths: list[Path], output: Path, compare_paper: bool) -> int:
    """Writes the table for the results under `paths` to `output` (.csv or .md); returns the row count."""
    if output.suffix not in (".csv", ".md"):
        raise ResultError(f"--output {output} must end in .csv or .md.")
    rows = build_rows(collect_result_files(paths), compare_paper)
    text = to_csv(rows) if output.suffix == ".csv" else to_markdown(rows, compare_paper)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return len(rows)
