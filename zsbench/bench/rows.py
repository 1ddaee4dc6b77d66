"""`BenchRow`: one `zsbench bench` measurement; the printed table, the `--output` file and its reader.

No torch here: `zsbench report` reads bench files and draws them without loading it.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zsbench.bench.config import BenchConfig


@dataclass(frozen=True)
class BenchRow:
    """One measurement: a backend and precision at one batch size.

    The fractions are the encoders' FLOP rates over `peak_flops_per_s`, the matrix-multiply rate of the
    row's own runtime and precision (`zsbench.bench.peaks`; `peak_measured_by` says how it was measured).
    """

    backend: str
    precision: str
    batch_size: int
    images_per_s: float
    texts_per_s: float
    images_vs_torch_fp32: float | None
    texts_vs_torch_fp32: float | None
    image_matmul_fraction: float | None
    text_matmul_fraction: float | None
    runtime: str
    # Absent from files written before peaks were measured per runtime and precision.
    peak_flops_per_s: float | None = None
    peak_measured_by: str | None = None

    def label(self) -> str:
        return f"{self.backend} {self.precision} batch {self.batch_size}"


@dataclass(frozen=True)
class BenchRun:
    """A bench run's rows and the device they were measured on, resolved and named (never "auto")."""

    device: str
    rows: list[BenchRow]


def impossible(fraction: float | None) -> bool:
    """A fraction of the peak above 1 (or not finite): a measurement bug, not a speed."""
    return fraction is not None and not (math.isfinite(fraction) and fraction <= 1.0)


def format_fraction(fraction: float | None) -> str:
    """A fraction of the peak as a 6-character cell: ``' 73.4%'``, ``'     -'`` when there is no peak, and
    ``'>100%!'`` when it is impossible (see `fraction_warnings`)."""
    if fraction is None:
        return "     -"
    return ">100%!" if impossible(fraction) else f"{100 * fraction:5.1f}%"


def fraction_warnings(rows: list[BenchRow]) -> list[str]:
    """One warning per encoder of a row whose fraction of its peak is above 100 %, naming the row and the peak."""
    warnings = []
    for row in rows:
        for encoder, fraction in (("image", row.image_matmul_fraction), ("text", row.text_matmul_fraction)):
            if impossible(fraction):
                warnings.append(
                    f"warning: {row.label()}: the {encoder} encoder ran at {100 * fraction:.0f}% of the peak it is measured "
                    f"against ({row.peak_measured_by or 'unknown'}). Above 100% is impossible: a FLOP count or a peak "
                    "measured in the wrong arithmetic. The table shows >100%!; please report it."
                )
    return warnings


def format_row(row: BenchRow) -> str:
    def ratio(value: float | None) -> str:
        return f"{value:6.2f}x" if value is not None else "     - "

    return (
        f"{row.backend:<6} {row.precision:<5} batch {row.batch_size:>4} | "
        f"{row.images_per_s:9.1f} img/s {ratio(row.images_vs_torch_fp32)} {format_fraction(row.image_matmul_fraction)} | "
        f"{row.texts_per_s:9.1f} txt/s {ratio(row.texts_vs_torch_fp32)} {format_fraction(row.text_matmul_fraction)}"
    )


def format_table(rows: list[BenchRow]) -> str:
    """The rows as a table: throughput, ratio to torch fp32 at the same batch size, % of the row's own peak."""
    header = "backend precision batch |     images/s  vs fp32   peak% |      texts/s  vs fp32   peak%"
    return "\n".join([header, *(format_row(row) for row in rows)])


def write_rows(path: Path, run: BenchRun, config: BenchConfig) -> None:
    """`--output bench.json`: the configuration, the device measured on, the rows and the environment."""
    from zsbench.jsonfiles import write_json_atomic
    from zsbench.runtime.provenance import machine_record

    write_json_atomic(path, {"model": config.model.to_dict(), "device": run.device, "rows": [asdict(row) for row in run.rows],
                             "env": machine_record()})


def read_rows(path: Path) -> tuple[dict[str, Any], list[BenchRow]]:
    """Reads a `--output` file of `zsbench bench`: (its model, device and env; its rows).

    Raises:
        ResultError: the file is not JSON, or not a bench output.
    """
    from zsbench.errors import ResultError
    from zsbench.jsonfiles import read_json_object

    data = read_json_object(path, ResultError, "a `zsbench bench --output` file", "Re-run the bench that writes it.")
    known = {field.name for field in fields(BenchRow)}
    required = {field.name for field in fields(BenchRow) if field.default is MISSING}
    rows = data.get("rows")
    if not isinstance(rows, list) or not rows or not all(isinstance(row, dict) and required <= set(row) <= known for row in rows):
        raise ResultError(f"{path} is not a `zsbench bench --output` file: expected a non-empty rows list of {', '.join(sorted(required))}.")
    info = {key: value for key, value in data.items() if key != "rows"}
    return info, [BenchRow(**row) for row in rows]
