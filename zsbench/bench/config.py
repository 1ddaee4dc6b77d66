"""`BenchConfig`: what `zsbench bench` measures. Its fields are the command's options (`zsbench.options`);
this module imports no torch, so `zsbench bench --help` starts fast."""

from __future__ import annotations

from dataclasses import dataclass

from zsbench.choices import BACKEND_CHOICES, PRECISION_CHOICES
from zsbench.models.ref import ModelRef
from zsbench.options import cli_field, cli_group
from zsbench.threads import threads_field
from zsbench.types import Backend, Device, Precision


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
    threads: int | None = threads_field()
