"""`zsbench bench`: encoder throughput of every available backend and precision, side by side in one run.

Every encoder is measured in the same process, after warm-up, in interleaved rounds (best
round kept); the ratio to torch fp32 and the fraction of the machine's matrix-multiply rate
(measured in the same run, in the row's dtype) make rows comparable on noisy machines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from zsbench.backends import BACKENDS, Encoder, LoadedModel, ModelRef, load_backend
from zsbench.runtime.encoder import synchronize
from zsbench.errors import UnknownNameError, ZsbenchError
from zsbench.models import DTYPES
from zsbench.choices import BACKEND_CHOICES, PRECISION_CHOICES
from zsbench.models.families import get_family
from zsbench.options import cli_field, cli_group
from zsbench.types import Backend, Device, Precision, resolve_device

Log = Callable[[str], None]


@dataclass(frozen=True)
class BenchConfig:
    """What to measure: one model on several backends, precisions and batch sizes."""

    model: ModelRef = cli_group()
    backends: tuple[Backend, ...] = cli_field(("torch", "onnx", "trt"), comma_list=True, choices=BACKEND_CHOICES, help="Comma-separated backends.")
    precisions: tuple[Precision, ...] = cli_field(("fp32", "fp16"), comma_list=True, choices=PRECISION_CHOICES, help="Comma-separated precisions.")
    batch_sizes: tuple[int, ...] = cli_field((1, 8, 32), comma_list=True, help="Comma-separated batch sizes.")
    text_length: int = cli_field(20, min=3, max=80, help="Tokens per text (a typical prompt, BOS and EOS included).")
    device: Device = cli_field("auto", help="auto (cuda when present, else cpu), cpu, cuda or cuda:N.")
    min_seconds: float = cli_field(1.0, min=0.05, help="Measure each row for at least this long, over all rounds.")
    rounds: int = cli_field(3, min=1, help="Interleaved rounds per batch size; each row keeps its best round.")
    threads: int | None = cli_field(None, min=1, show_default="torch's choice", help="torch CPU threads.")


@dataclass(frozen=True)
class BenchRow:
    """One measurement: a backend and precision at one batch size."""

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


def measure_matmul_rate(device: torch.device, dtype: torch.dtype, size: int = 1024, min_seconds: float = 0.5) -> float:
    """FLOP/s of a square matrix multiply on `device` in `dtype` (the machine's reference rate)."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    seconds, runs = _time_repeatedly(lambda: torch.mm(a, b), device, min_seconds)
    return 2 * size**3 * runs / seconds


def _time_repeatedly(step: Callable[[], Any], device: torch.device, min_seconds: float, warmup: int = 2) -> tuple[float, int]:
    for _ in range(warmup):
        step()
    synchronize(device)
    runs, start = 0, time.perf_counter()
    while True:
        step()
        runs += 1
        synchronize(device)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and runs >= 3:
            return elapsed, runs


def count_flops(model: torch.nn.Module, pixels: torch.Tensor, input_ids: torch.Tensor) -> tuple[float, float]:
    """FLOPs of one image and one text through the eager model (matmuls, convolutions, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    flops = []
    for function, batch in ((model.encode_image, pixels[:1]), (model.encode_text, input_ids[:1])):
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            function(batch)
        flops.append(float(counter.get_total_flops()))
    return flops[0], flops[1]


def synthetic_inputs(image_size: int, text_length: int, vocab_size: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised-looking pixels and unpadded token ids (BOS ... EOS) of a typical prompt's length."""
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randn(batch_size, 3, image_size, image_size, generator=generator)
    ids = torch.randint(3, vocab_size, (batch_size, text_length), generator=generator)
    ids[:, 0], ids[:, -1] = 1, 2
    return pixels, ids


def _throughput(encoder: Encoder, pixels: torch.Tensor, ids: torch.Tensor, min_seconds: float) -> tuple[float, float]:
    device = encoder.device
    image_seconds, image_runs = _time_repeatedly(lambda: encoder.encode_image(pixels), device, min_seconds)
    text_seconds, text_runs = _time_repeatedly(lambda: encoder.encode_text(ids), device, min_seconds)
    return pixels.shape[0] * image_runs / image_seconds, ids.shape[0] * text_runs / text_seconds


def run_bench(config: BenchConfig, log: Log) -> list[BenchRow]:
    """Measures every (backend, precision) that can run here; says why the others were skipped.

    All encoders are loaded first; then, batch size by batch size, they are measured in turn for
    `rounds` rounds and each keeps its best round, so a slow spell of the machine hits every
    backend alike instead of one row.
    """
    for backend in config.backends:  # a misspelt backend is an error, not a "skip"
        if backend not in BACKENDS:
            raise UnknownNameError("backend", backend, BACKENDS.names())
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    encoders: dict[tuple[str, str], LoadedModel] = {}
    for backend in config.backends:
        for precision in config.precisions:
            try:
                encoders[(backend, precision)] = load_backend(backend, config.model, device, precision)
            except ZsbenchError as err:  # BackendUnavailableError included: say why and go on
                log(f"skip {backend} {precision}: {err}")
    if ("torch", "fp32") not in encoders:
        encoders[("torch", "fp32")] = load_backend("torch", config.model, device, "fp32")
    model = encoders[("torch", "fp32")].encoder.model  # type: ignore[attr-defined]
    image_size, vocab = get_family(config.model.model_type).input_size(model)
    flops_image, flops_text = count_flops(model, *synthetic_inputs(image_size, config.text_length, vocab, 1))
    log(f"model: {flops_image / 1e9:.3f} GFLOP per image, {flops_text / 1e9:.3f} GFLOP per {config.text_length}-token text")
    matmul = {precision: measure_matmul_rate(device, DTYPES[precision]) for precision in {p for _, p in encoders}}
    for precision, rate in matmul.items():
        log(f"matmul rate on {device} in {precision}: {rate / 1e9:.1f} GFLOP/s")

    rows: list[BenchRow] = []
    for batch_size in config.batch_sizes:
        # On the device once: the timed calls measure the encoders, not the host-to-device copies.
        pixels, ids = (tensor.to(device) for tensor in synthetic_inputs(image_size, config.text_length, vocab, batch_size))
        best = dict.fromkeys(encoders, (0.0, 0.0))
        for _ in range(config.rounds):
            for key, loaded in encoders.items():
                rates = _throughput(loaded.encoder, pixels, ids, config.min_seconds / config.rounds)
                best[key] = (max(best[key][0], rates[0]), max(best[key][1], rates[1]))
        reference = best[("torch", "fp32")]
        for (backend, precision), (images_per_s, texts_per_s) in best.items():
            if (backend, precision) == ("torch", "fp32") and ("torch", "fp32") not in _requested(config):
                continue
            describe = encoders[(backend, precision)].encoder.describe()
            rows.append(
                BenchRow(
                    backend=backend,
                    precision=precision,
                    batch_size=batch_size,
                    images_per_s=images_per_s,
                    texts_per_s=texts_per_s,
                    images_vs_torch_fp32=images_per_s / reference[0],
                    texts_vs_torch_fp32=texts_per_s / reference[1],
                    image_matmul_fraction=images_per_s * flops_image / matmul[precision],
                    text_matmul_fraction=texts_per_s * flops_text / matmul[precision],
                    runtime=" ".join(f"{k}={v}" for k, v in describe.items() if k not in ("backend", "precision", "device")),
                )
            )
            log(format_row(rows[-1]))
    return rows


def _requested(config: BenchConfig) -> set[tuple[str, str]]:
    return {(backend, precision) for backend in config.backends for precision in config.precisions}


def format_row(row: BenchRow) -> str:
    def ratio(value: float | None) -> str:
        return f"{value:6.2f}x" if value is not None else "     - "

    return (
        f"{row.backend:<6} {row.precision:<5} batch {row.batch_size:>4} | "
        f"{row.images_per_s:9.1f} img/s {ratio(row.images_vs_torch_fp32)} {100 * (row.image_matmul_fraction or 0):5.1f}% | "
        f"{row.texts_per_s:9.1f} txt/s {ratio(row.texts_vs_torch_fp32)} {100 * (row.text_matmul_fraction or 0):5.1f}%"
    )


def format_table(rows: list[BenchRow]) -> str:
    """The rows as a table: throughput, ratio to torch fp32 at the same batch size, % of matmul rate."""
    header = "backend precision batch |     images/s  vs fp32  matmul% |      texts/s  vs fp32  matmul%"
    return "\n".join([header, *(format_row(row) for row in rows)])


def write_rows(path: Path, rows: list[BenchRow], config: BenchConfig) -> None:
    """`--output bench.json`: the configuration and the rows."""
    from zsbench.runtime.provenance import machine_record
    from zsbench.jsonfiles import write_json_atomic

    write_json_atomic(path, {"model": config.model.to_dict(), "device": config.device, "rows": [asdict(row) for row in rows], "env": machine_record()})


def read_rows(path: Path) -> tuple[dict[str, Any], list[BenchRow]]:
    """Reads a `--output` file of `zsbench bench`: (its model, device and env; its rows).

    Raises:
        ResultError: the file is not JSON, or not a bench output.
    """
    from zsbench.errors import ResultError
    from zsbench.jsonfiles import read_json_object

    data = read_json_object(path, ResultError, "a `zsbench bench --output` file", "Re-run the bench that writes it.")
    fields = set(BenchRow.__dataclass_fields__)
    rows = data.get("rows")
    if not isinstance(rows, list) or not rows or not all(isinstance(row, dict) and set(row) == fields for row in rows):
        raise ResultError(f"{path} is not a `zsbench bench --output` file: expected a non-empty rows list of {', '.join(sorted(fields))}.")
    info = {key: value for key, value in data.items() if key != "rows"}
    return info, [BenchRow(**row) for row in rows]


def create_random_checkpoint(config_file: Path, folder: Path, seed: int = 0) -> Path:
    """A Hugging Face InternVL folder with seeded random weights and a tokenizer, for benchmarking sizes
    that have no published weights (the speed of a network does not depend on its weight values)."""
    from zsbench.export.probes import imagenet_prompts
    from zsbench.models import load_config_file
    from zsbench.models.checkpoints import save_hf_checkpoint
    from zsbench.models.internvl import create_initialized_model
    from zsbench.models.tokenizer import train_tokenizer

    config = load_config_file(config_file)
    folder.mkdir(parents=True, exist_ok=True)
    classnames, templates = imagenet_prompts(1000, 20)
    train_tokenizer([t.format(c=c) for c in classnames for t in templates], folder / "tokenizer.model",
                    vocab_size=min(config.text.vocab_size, 512))
    model = create_initialized_model(config, seed)
    save_hf_checkpoint(model, config.to_hf_dict(), folder, None)
    return folder
