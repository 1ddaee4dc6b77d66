"""`run_bench`: every encoder measured in the same process, after warm-up, in interleaved rounds (best
round kept); the ratio to torch fp32 and the fraction of the row's own peak rate (`zsbench.bench.peaks`,
measured in the same run) make rows comparable on noisy machines.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from zsbench.backends import BACKENDS, Encoder, LoadedModel, load_backend
from zsbench.bench.config import BenchConfig
from zsbench.bench.peaks import PeakRates
from zsbench.bench.rows import BenchRow, BenchRun, format_row, fraction_warnings
from zsbench.bench.timing import time_repeatedly
from zsbench.errors import UnknownNameError, ZsbenchError
from zsbench.models.families import InputSize, get_family
from zsbench.threads import apply_threads
from zsbench.types import resolve_device

Log = Callable[[str], None]


def count_flops(model: torch.nn.Module, pixels: torch.Tensor, input_ids: torch.Tensor) -> tuple[float, float]:
    """FLOPs of one image and one text through the eager model (matmuls, convolutions, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    flops = []
    for function, batch in ((model.encode_image, pixels[:1]), (model.encode_text, input_ids[:1])):
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            function(batch)
        flops.append(float(counter.get_total_flops()))
    return flops[0], flops[1]


def synthetic_inputs(size: InputSize, text_length: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised-looking pixels and token ids (BOS ... EOS) of a typical prompt's length, right-padded with 0 to the
    model's fixed text length if it has one."""
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randn(batch_size, 3, size.image_size, size.image_size, generator=generator)
    length = min(text_length, size.text_length or text_length)
    ids = torch.randint(3, size.vocab_size, (batch_size, length), generator=generator)
    ids[:, 0], ids[:, -1] = 1, 2
    if size.text_length is not None:
        ids = torch.nn.functional.pad(ids, (0, size.text_length - length))
    return pixels, ids


def _throughput(encoder: Encoder, pixels: torch.Tensor, ids: torch.Tensor, min_seconds: float) -> tuple[float, float]:
    device = encoder.device
    image_seconds, image_runs = time_repeatedly(lambda: encoder.encode_image(pixels), device, min_seconds)
    text_seconds, text_runs = time_repeatedly(lambda: encoder.encode_text(ids), device, min_seconds)
    return pixels.shape[0] * image_runs / image_seconds, ids.shape[0] * text_runs / text_seconds


def device_label(device: torch.device) -> str:
    """The device as a bench file and its figure name it: ``cuda:0 (NVIDIA H100 80GB HBM3)``, ``cpu (<model>, 2 threads)``."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.partition(":")[2].strip() for line in cpuinfo.read_text(errors="replace").splitlines() if line.startswith("model name")]
        model = names[0] if names else model
    return f"cpu ({model}, {torch.get_num_threads()} threads)"


def run_bench(config: BenchConfig, log: Log, warn: Log | None = None) -> BenchRun:
    """Measures every (backend, precision) that can run here; says why the others were skipped.

    All encoders are loaded first; then, batch size by batch size, they are measured in turn for
    `rounds` rounds and each keeps its best round, so a slow spell of the machine hits every
    backend alike instead of one row. `warn` (default: `log`) gets the rows whose fraction of their
    peak is impossible (above 100 %).
    """
    for backend in config.backends:  # a misspelt backend is an error, not a "skip"
        if backend not in BACKENDS:
            raise UnknownNameError("backend", backend, BACKENDS.names())
    apply_threads(config.threads)
    device = resolve_device(config.device)
    encoders: dict[tuple[str, str], LoadedModel] = {}
    skipped: list[str] = []
    for backend in config.backends:
        for precision in config.precisions:
            try:
                encoders[(backend, precision)] = load_backend(backend, config.model, device, precision, replace(config.artifacts, log=log))
            except ZsbenchError as err:  # BackendUnavailableError included: say why and go on
                log(f"skip {backend} {precision}: {err}")
                skipped.append(f"{backend} {precision}")
    if not encoders:  # nothing asked for runs here: an empty table would read as a measurement
        raise ZsbenchError(f"Nothing to measure: every backend and precision asked for was skipped ({', '.join(skipped)}; "
                           "the reasons are above). Ask for --backends/--precisions that run here (`zsbench doctor` lists them).")
    if ("torch", "fp32") not in encoders:
        encoders[("torch", "fp32")] = load_backend("torch", config.model, device, "fp32")
    model = encoders[("torch", "fp32")].encoder.model  # type: ignore[attr-defined]
    size = get_family(config.model.model_type).input_size(model)
    pixels, ids = synthetic_inputs(size, config.text_length, 1)
    flops_image, flops_text = count_flops(model, pixels, ids)
    padded = f", padded to {ids.shape[1]}" if ids.shape[1] != config.text_length else ""
    log(f"model: {flops_image / 1e9:.3f} GFLOP per image, {flops_text / 1e9:.3f} GFLOP per {config.text_length}-token text{padded}")
    peaks = PeakRates(device)
    for backend, precision in (key for key in encoders if key in _requested(config)):
        peak = peaks.get(backend, precision)
        log(f"peak of {backend} {precision}: {peak.flops_per_second / 1e9:.1f} GFLOP/s, {peak.measured_by}" if peak
            else f"peak of {backend} {precision}: none measured (no % of peak for its rows)")

    rows: list[BenchRow] = []
    for batch_size in config.batch_sizes:
        # On the device once: the timed calls measure the encoders, not the host-to-device copies.
        pixels, ids = (tensor.to(device) for tensor in synthetic_inputs(size, config.text_length, batch_size))
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
            peak = peaks.get(backend, precision)
            rows.append(
                BenchRow(
                    backend=backend,
                    precision=precision,
                    batch_size=batch_size,
                    images_per_s=images_per_s,
                    texts_per_s=texts_per_s,
                    images_vs_torch_fp32=images_per_s / reference[0],
                    texts_vs_torch_fp32=texts_per_s / reference[1],
                    image_matmul_fraction=images_per_s * flops_image / peak.flops_per_second if peak else None,
                    text_matmul_fraction=texts_per_s * flops_text / peak.flops_per_second if peak else None,
                    runtime=" ".join(f"{k}={v}" for k, v in describe.items() if k not in ("backend", "precision", "device")),
                    peak_flops_per_s=peak.flops_per_second if peak else None,
                    peak_measured_by=peak.measured_by if peak else None,
                )
            )
            log(format_row(rows[-1]))
    for warning in fraction_warnings(rows):
        (warn or log)(warning)
    return BenchRun(device_label(device), rows)


def _requested(config: BenchConfig) -> set[tuple[str, str]]:
    return {(backend, precision) for backend in config.backends for precision in config.precisions}


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
