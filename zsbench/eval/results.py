"""Result JSON files: CLIP_benchmark's keys plus backend, precision, device, env and throughput.

Results are written atomically (`zsbench.jsonfiles.write_json_atomic`), so an interrupted suite
never leaves a truncated file that `--skip_existing` would count as done.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch

from zsbench.errors import ResultError
from zsbench.jsonfiles import read_json_object

REQUIRED_KEYS = ("dataset", "model", "pretrained", "task", "metrics", "language")


def environment() -> dict[str, Any]:
    """Versions and hardware, for the result's `env` block."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("zsbench", "torch", "torchvision", "onnxruntime", "tensorrt", "tensorrt_rtx", "open_clip_torch"):
        try:
            versions[package] = version(package.replace("_", "-") if package == "open_clip_torch" else package)
        except PackageNotFoundError:
            continue
    return {
        "versions": versions,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def read_result(path: Path) -> dict[str, Any]:
    """Reads a result JSON, checking it holds CLIP_benchmark's keys."""
    result = read_json_object(path, ResultError, "a result file of `zsbench eval`", "Re-run the evaluation that writes it.")
    missing = [key for key in REQUIRED_KEYS if key not in result]
    if missing or not isinstance(result.get("metrics"), dict):
        raise ResultError(f"{path} is not a zsbench/CLIP_benchmark result: it lacks {', '.join(missing) or 'a metrics object'}.")
    return result


def is_finished(path: Path) -> bool:
    """True when `path` holds a complete, valid result (what `--skip_existing` skips)."""
    if not path.is_file():
        return False
    try:
        read_result(path)
    except ResultError:
        return False
    return True
