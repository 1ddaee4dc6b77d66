"""`--threads`: how many CPU threads torch and ONNX Runtime use, declared once for every command that
measures speed (`eval`, `demo`, `bench`), and applied by one function."""

from __future__ import annotations

from typing import Any

from zsbench.options import cli_field


def threads_field() -> Any:
    """The `threads` field of a command's config (`--threads N`; None: torch's default, one per core)."""
    return cli_field(
        None, min=1, show_default="torch's default (one per core)",
        help="CPU threads of torch and ONNX Runtime (intra-op). Set it below the free cores for stable numbers on a shared machine.",
    )


def apply_threads(threads: int | None) -> int:
    """Sets torch's intra-op threads to `threads` (None: leaves torch's default); ONNX Runtime sessions on
    the CPU open with the same count (`zsbench.runtime.onnxrt.cpu_threads`). Returns the count in use."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()
