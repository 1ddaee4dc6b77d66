"""How the report names a result in its figures: the series (backend and precision) it belongs to, the
dataset and model it measures, and the device it ran on."""

from __future__ import annotations

from typing import Any

from zsbench.eval.report import model_family


def series_name(result: dict[str, Any]) -> str:
    """``backend precision``, e.g. ``onnx int8``: one bar colour in every figure."""
    return f"{result.get('backend') or '?'} {result.get('precision') or '?'}"


def dataset_label(result: dict[str, Any]) -> str:
    """``dataset [language]`` (the language only when it is not English)."""
    language = "" if result["language"] == "en" else f" [{result['language']}]"
    return f"{result['dataset']}{language}"


def result_label(result: dict[str, Any]) -> str:
    """``dataset [language] · model family``."""
    return f"{dataset_label(result)} · {model_family(result['model'])}"


def device_name(result: dict[str, Any]) -> str:
    """The device a result ran on as its provenance record names it: ``cpu (<CPU model>)``, ``cuda:0 (<GPU name>)``;
    the bare device where the record lacks the name (results of older versions)."""
    device = str(result.get("device") or "?")
    env = result.get("env") if isinstance(result.get("env"), dict) else {}
    probe, field = ("gpu", "name") if device.startswith("cuda") else ("cpu", "model")
    record = env.get(probe)
    name = record.get(field) if isinstance(record, dict) else None
    return f"{device} ({name})" if isinstance(name, str) and name else device
