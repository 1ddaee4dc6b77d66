"""Result JSON files: CLIP_benchmark's keys plus backend, precision, device, env and throughput.

Written atomically (temp file + rename), so an interrupted suite never leaves a truncated
file that `--skip_existing` would count as done.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import torch

from zsbench.errors import ResultError

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


def write_result(path: Path, result: dict[str, Any]) -> None:
    """Writes `result` as JSON to `path` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False, encoding="utf-8")
    try:
        with handle:
            json.dump(result, handle, indent=2, allow_nan=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def read_result(path: Path) -> dict[str, Any]:
    """Reads a result JSON, checking it holds CLIP_benchmark's keys."""
    try:
        with open(path, encoding="utf-8") as handle:
            result = json.load(handle)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ResultError(f"{path} is not a readable result file: {err}") from err
    missing = [key for key in REQUIRED_KEYS if not isinstance(result, dict) or key not in result]
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
