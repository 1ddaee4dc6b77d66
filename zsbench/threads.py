"""`--threads`: how many CPU threads torch and ONNX Runtime use, applied by one function for every command that
measures speed (`eval`, `demo`, `bench`; the option is declared once, in `zsbench.cli_args`)."""

from __future__ import annotations


def apply_threads(threads: int | None) -> int:
    """Sets torch's intra-op threads to `threads` (None: leaves torch's default); ONNX Runtime sessions on
    the CPU open with the same count (`zsbench.runtime.onnxrt.cpu_threads`). Returns the count in use."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()
