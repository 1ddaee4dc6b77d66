"""Timing a step repeatedly: warm-up calls first, the GPU waited for after each call."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def time_repeatedly(step: Callable[[], Any], device: torch.device, min_seconds: float, warmup: int = 2) -> tuple[float, int]:
    """(seconds, calls): `step` run at least 3 times and for at least `min_seconds`, after `warmup` calls."""
    from zsbench.runtime.encoder import synchronize

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
