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

from zsbench.bench.rows import BenchRow, impossible

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
class PrecisionEntry:
    """One metric of one model and dataset: the value per series (backend and precision, fractions) and
    what each bar's label adds after the value (its difference to the fp32 baseline, or why there is none)."""

    label: str
    measured: dict[str, float]
    notes: dict[str, str]


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


def precision_plot(device: str, entries: list[PrecisionEntry]) -> Figure:
    """Each model's accuracy per backend and precision on the datasets it ran at several precisions, every
    bar annotated with its value and its difference to the fp32 baseline; titled with the device measured on."""
    series = sorted({name for entry in entries for name in entry.measured})
    by_label = {entry.label: entry for entry in entries}

    def value_of(label: str, name: str) -> float | None:
        value = by_label[label].measured.get(name)
        return None if value is None else 100 * value

    def text_of(label: str, name: str, value: float) -> str:
        return f"{value:.2f} ({by_label[label].notes[name]})"  # as the table: a 0.05-point difference shows

    figure = Figure(figsize=(WIDTH_INCHES, figure_height(len(entries) * len(series))), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    _grouped_barh(axes, list(by_label), series, value_of, series_colors(series), text_of)
    axes.invert_yaxis()  # first entry on top
    axes.set_xlim(0, 135)  # room for the annotations right of a 100% bar
    axes.set_xlabel("accuracy / recall (%)")
    axes.set_title(f"Accuracy per precision against fp32, on {device}")
    # Below the axes: the annotations of 100% bars reach the right edge, where a legend inside would hide them.
    figure.legend(*axes.get_legend_handles_labels(), loc="outside lower center", ncol=len(series), fontsize=8)
    return figure


def precision_figure(device: str, entries: list[PrecisionEntry]) -> bytes:
    """`precision_plot` as PNG bytes."""
    return _png(precision_plot(device, entries))


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


def _series_points(rows: list[BenchRow], name: str, field: str) -> list[tuple[int, float]]:
    chosen = sorted((row for row in rows if f"{row.backend} {row.precision}" == name), key=lambda row: row.batch_size)
    return [(row.batch_size, getattr(row, field)) for row in chosen if getattr(row, field) is not None]


def _plot_fractions(axes: Axes, rows: list[BenchRow], series: list[str], colors: dict[str, str], field: str) -> None:
    """Percent of each row's own peak. A fraction above 100 % is a measurement bug (`zsbench.bench.rows.impossible`):
    it is left out of the scale, so it cannot flatten the others, and marked at the top edge instead."""
    possible = [100 * value for name in series for _, value in _series_points(rows, name, field) if not impossible(value)]
    top = 1.15 * max(possible, default=100.0)
    for name in series:
        points = _series_points(rows, name, field)
        kept = [(x, 100 * y) for x, y in points if not impossible(y)]
        axes.plot([x for x, _ in kept], [y for _, y in kept], marker="o", color=colors[name], label=name)
        wrong = [x for x, y in points if impossible(y)]
        if wrong:
            axes.plot(wrong, [0.97 * top] * len(wrong), linestyle="none", marker="^", markersize=9, color=colors[name],
                      markeredgecolor="red", label=f"{name}: >100%, a bug (off the scale)")
    axes.set_ylim(0, top)
    axes.set_ylabel("% of the row's own peak")


def bench_plot(title: str, rows: list[BenchRow]) -> Figure:
    """`zsbench bench` rows: throughput against batch size (top, log scale: backends and batch sizes differ by
    orders of magnitude, and a fast row must not flatten the slow ones) and the fraction of each row's own
    peak rate reached (bottom), per backend and precision, images left and texts right."""
    series = sorted({f"{row.backend} {row.precision}" for row in rows})
    colors = series_colors(series)
    batches = sorted({row.batch_size for row in rows})
    figure = Figure(figsize=(WIDTH_INCHES, BENCH_HEIGHT_INCHES), dpi=DPI, layout="constrained")
    grid = figure.subplots(2, 2, sharex=True)
    for axes, field, unit in ((grid[0][0], "images_per_s", "images/s (log scale)"), (grid[0][1], "texts_per_s", "texts/s (log scale)")):
        for name in series:
            points = [(x, y) for x, y in _series_points(rows, name, field) if y > 0]
            axes.plot([x for x, _ in points], [y for _, y in points], marker="o", color=colors[name], label=name)
        axes.set_yscale("log")
        axes.set_ylabel(unit)
    for axes, field in ((grid[1][0], "image_matmul_fraction"), (grid[1][1], "text_matmul_fraction")):
        _plot_fractions(axes, rows, series, colors, field)
        axes.set_xlabel("batch size")
        if any(impossible(getattr(row, field)) for row in rows):
            axes.legend(fontsize=7)
    for axes in (*grid[0], *grid[1]):
        axes.set_xscale("log", base=2)
        axes.set_xticks(batches, [str(batch) for batch in batches])
        axes.grid(alpha=0.3)
    grid[0][0].set_title("image encoder", fontsize=10)
    grid[0][1].set_title("text encoder", fontsize=10)
    grid[0][0].legend(fontsize=8, title="backend precision", title_fontsize=8)
    figure.suptitle(title)
    return figure


def bench_figure(title: str, rows: list[BenchRow]) -> bytes:
    """`bench_plot` as PNG bytes."""
    return _png(bench_plot(title, rows))
