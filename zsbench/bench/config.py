"""`BenchConfig`: what `zsbench bench` measures (the command-line layer declares its options: `zsbench.cli_args`);
this module imports no torch, so `zsbench bench --help` starts fast."""

from __future__ import annotations

from dataclasses import dataclass, field

from zsbench.backends import BackendOptions
from zsbench.models.ref import ModelRef
from zsbench.types import Backend, Device, Precision


@dataclass(frozen=True)
class BenchConfig:
    """What to measure: one model on several backends, precisions and batch sizes."""

    model: ModelRef
    backends: tuple[Backend, ...] = ("torch", "onnx", "trt")
    precisions: tuple[Precision, ...] = ("fp32", "fp16")
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    text_length: int = 20
    device: Device = "auto"
    min_seconds: float = 1.0
    rounds: int = 3
    threads: int | None = None
    artifacts: BackendOptions = field(default_factory=BackendOptions)  # where onnx/trt find their exports and engines
