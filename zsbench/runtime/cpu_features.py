"""What this CPU computes natively: the one place that decides whether bf16 runs on it.

bf16 on a CPU pays only where the CPU multiplies bf16 in hardware (x86: AVX512-BF16 or AMX-BF16,
whose dot products take bf16 pairs; Arm: the BF16 extension). Elsewhere torch emulates it by
converting to fp32 and back, which is slower than fp32 itself, so zsbench refuses it there.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

_CPUINFO = Path("/proc/cpuinfo")


def _arm_flags() -> set[str]:
    if not _CPUINFO.is_file():
        return set()
    for line in _CPUINFO.read_text(errors="replace").splitlines():
        if line.startswith("Features"):
            return set(line.partition(":")[2].split())
    return set()


def native_bf16() -> str | None:
    """The instruction set through which this CPU multiplies bf16 natively, or None (torch would emulate bf16)."""
    if platform.machine().lower() in ("x86_64", "amd64"):
        # torch's own capability queries (what its kernels dispatch on); AMX CPUs all have AMX-BF16.
        if torch.cpu._is_amx_tile_supported():
            return "AMX-BF16"
        if torch.cpu._is_avx512_bf16_supported():
            return "AVX512-BF16"
        return None
    if platform.machine().lower() in ("aarch64", "arm64") and "bf16" in _arm_flags():
        return "Arm BF16"
    return None
