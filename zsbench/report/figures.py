"""The report's figures as PNG bytes, drawn with matplotlib's Agg canvas (no display, no pyplot state).

Each figure is `WIDTH_INCHES` x `figure_height(bars)` inches at `DPI`, laid out by matplotlib's
constrained layout inside that size (never cropped), so its pixel size is known in advance. Bars and series are sorted and coloured the same way in every
figure: one colour per backend and precision, grey for the paper.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from zsbench.bench import BenchRow

WIDTH_INCHES = 10.0
DPI = 100
BENCH_HEIGHT_INCHES = 7.0
PAPER_COLOR = "0.6"
SERIES_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


@dataclass(frozen=True)
class AccuracyEntry:
    """One metric of one dataset and model: the measured value per series (backend and precision),
    and the paper's value when it has one. Values are fractions."""

    label: str
    measured: dict[str, float]
    paper: float | None


@dataclass(frozen=True)
class ThroughputEntry:
    """One dataset and model: (images/s, texts/s) per series."""

    label: str
    rates: dict[str, tuple[float | None, float | None]]


def figure_height(bars: int) -> float:
    """Inches for a horizontal bar chart of `bars` bars: a fixed margin plus 0.22 inch per bar."""
    return max(3.0, 1.6 + 0.22 * bars)


def _png(figure: Figure) -> bytes:
    # Labels come from result and bench files: a `$...$` in a dataset name is text, not mathtext to parse.
    for text in figure.findobj(Text):
        text.set_parse_math(False)
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def series_colors(names: Sequence[str]) -> dict[str, str]:
    """A fixed colour per series name, in sorted order."""
    return {name: SERIES_COLORS[index % len(SERIES_COLORS)] for index, name in enumerate(sorted(names))}


def _grouped_barh(
    axes: Axes,
    labels: list[str],
    series: list[str],
    value_of: Callable[[str, str], float | None],
    colors: dict[str, str],
    text_of: Callable[[str, str, float], str],
) -> None:
    """Horizontal bars, one group per label at y = its index, one bar per series, each annotated."""
    height = 0.8 / len(series)
    in_legend: set[str] = set()
    for rank, label in enumerate(labels):
        for offset, name in enumerate(series):
            value = value_of(label, name)
            if value is None:
                continue
            y = rank + (offset - (len(series) - 1) / 2) * height
            axes.barh(y, value, height=height, color=colors[name], label=None if name in in_legend else name)
            in_legend.add(name)
            axes.text(value, y, " " + text_of(label, name, value), va="center", fontsize=7)
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    axes.grid(axis="x", alpha=0.3)


def accuracy_figure(entries: list[AccuracyEntry]) -> bytes:
    """Measured accuracy per dataset beside the paper's number, sorted best first; each measured
    bar is annotated with its value and its difference to the paper in points."""
    entries = sorted(entries, key=lambda entry: -max(entry.measured.values()))
    measured_series = sorted({name for entry in entries for name in entry.measured})
    series = measured_series + (["paper"] if any(entry.paper is not None for entry in entries) else [])
    colors = {**series_colors(measured_series), "paper": PAPER_COLOR}
    by_label = {entry.label: entry for entry in entries}

    def value_of(label: str, name: str) -> float | None:
        entry = by_label[label]
        value = entry.paper if name == "paper" else entry.measured.get(name)
        return None if value is None else 100 * value

    def text_of(label: str, name: str, value: float) -> str:
        paper = by_label[label].paper
        if name == "paper" or paper is None:
            return f"{value:.1f}"
        return f"{value:.1f} ({value - 100 * paper:+.1f} vs paper)"

    figure = Figure(figsize=(WIDTH_INCHES, figure_height(len(entries) * len(series))), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    _grouped_barh(axes, [entry.label for entry in entries], series, value_of, colors, text_of)
    axes.invert_yaxis()  # first entry on top
    axes.set_xlim(0, 115)  # room for the annotations right of a 100% bar
    axes.set_xlabel("accuracy / recall (%)")
    has_paper = "paper" in series
    axes.set_title("Zero-shot accuracy per dataset" + (", against the InternVL paper" if has_paper else " (the paper has none of these)"))
    axes.legend(loc="lower right", fontsize=8, title="backend precision", title_fontsize=8)
    return _png(figure)


def throughput_figure(entries: list[ThroughputEntry]) -> bytes:
    """Encoder throughput per dataset and series inside the evaluations: images/s and texts/s side by side."""
    entries = sorted(entries, key=lambda entry: entry.label)
    series = sorted({name for entry in entries for name in entry.rates})
    colors = series_colors(series)
    by_label = {entry.label: entry for entry in entries}
    figure = Figure(figsize=(WIDTH_INCHES, figure_height(len(entries) * len(series))), dpi=DPI, layout="constrained")
    panels = figure.subplots(1, 2, sharey=True)
    for column, (axes, unit, title) in enumerate(zip(panels, ("images/s", "texts/s"), ("image encoder", "text encoder"))):

        def value_of(label: str, name: str, column: int = column) -> float | None:
            rates = by_label[label].rates.get(name)
            return None if rates is None else rates[column]

        _grouped_barh(axes, list(by_label), series, value_of, colors, lambda label, name, value: f"{value:.0f}")
        axes.set_xlabel(f"{unit} (higher is better)")
        axes.set_title(title, fontsize=10)
        axes.margins(x=0.2)  # room for the value labels
    panels[0].invert_yaxis()  # first entry on top (the y axis is shared)
    figure.suptitle("Throughput inside the evaluations, per dataset and backend")
    figure.legend(*panels[0].get_legend_handles_labels(), loc="outside lower center", ncol=len(series), fontsize=8)
    return _png(figure)


def bench_figure(title: str, rows: list[BenchRow]) -> bytes:
    """`zsbench bench` rows: throughput against batch size (top) and the fraction of the machine's
    matmul rate reached (bottom), per backend and precision, images left and texts right."""
    series = sorted({f"{row.backend} {row.precision}" for row in rows})
    colors = series_colors(series)
    batches = sorted({row.batch_size for row in rows})
    figure = Figure(figsize=(WIDTH_INCHES, BENCH_HEIGHT_INCHES), dpi=DPI, layout="constrained")
    grid = figure.subplots(2, 2, sharex=True)
    panels = (
        (grid[0][0], "images_per_s", 1.0, "images/s"), (grid[0][1], "texts_per_s", 1.0, "texts/s"),
        (grid[1][0], "image_matmul_fraction", 100.0, "% of matmul rate"), (grid[1][1], "text_matmul_fraction", 100.0, "% of matmul rate"),
    )
    for axes, field, scale, unit in panels:
        for name in series:
            chosen = sorted((row for row in rows if f"{row.backend} {row.precision}" == name), key=lambda row: row.batch_size)
            points = [(row.batch_size, getattr(row, field)) for row in chosen if getattr(row, field) is not None]
            axes.plot([x for x, _ in points], [scale * y for _, y in points], marker="o", color=colors[name], label=name)
        axes.set_xscale("log", base=2)
        axes.set_xticks(batches, [str(batch) for batch in batches])
        axes.set_ylabel(unit)
        axes.set_ylim(bottom=0)
        axes.grid(alpha=0.3)
    grid[0][0].set_title("image encoder", fontsize=10)
    grid[0][1].set_title("text encoder", fontsize=10)
    for axes in grid[1]:
        axes.set_xlabel("batch size")
    grid[0][0].legend(fontsize=8, title="backend precision", title_fontsize=8)
    figure.suptitle(title)
    return _png(figure)
