"""Result JSON files: CLIP_benchmark's keys plus backend, precision, device, env (the provenance record,
`zsbench.runtime.provenance`) and throughput.

Results are written atomically (`zsbench.jsonfiles.write_json_atomic`), so an interrupted suite
never leaves a truncated file that `--skip_existing` would count as done.
"""

from __future__ import annotations

import json
import math
import tempfile
import uuid
from pathlib import Path
from typing import Any

from zsbench.errors import ResultError
from zsbench.jsonfiles import read_json_object, write_json_atomic

REQUIRED_KEYS = ("dataset", "model", "pretrained", "task", "metrics", "language")
# What makes two results the same run, for `--skip_existing`.
RUN_KEYS = ("model", "pretrained", "dataset", "task", "language", "backend", "precision")


def format_rate(throughput: dict[str, Any], kind: str) -> str:
    """A result's `kind` ("images" or "texts") per second as every table and summary prints it: the rate to one
    decimal; ``cached`` when the embedding caches served every row, so nothing was encoded (no speed to show);
    ``-`` when there is no rate at all."""
    value = throughput.get(f"{kind}_per_second")
    if isinstance(value, (int, float)) and math.isfinite(value):
        return f"{value:.1f}"
    return "cached" if throughput.get(f"cached_{kind}") else "-"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_result(path: Path) -> dict[str, Any]:
    """Reads a result JSON, checking it holds CLIP_benchmark's keys with the types they have: strings
    naming the run, numbers as metrics (NaN and Infinity included: they are reported as such), and a
    `throughput` object of numbers, if any."""
    result = read_json_object(path, ResultError, "a result file of `zsbench eval`", "Re-run the evaluation that writes it.")
    missing = [key for key in REQUIRED_KEYS if key not in result]
    if missing or not isinstance(result.get("metrics"), dict):
        raise ResultError(f"{path} is not a zsbench/CLIP_benchmark result: it lacks {', '.join(missing) or 'a metrics object'}.")
    wrong = [f"'{key}' is a {type(result[key]).__name__}, expected a string" for key in REQUIRED_KEYS
             if key != "metrics" and not isinstance(result[key], str)]
    wrong += [f"metric '{key}' is {value!r}, expected a number" for key, value in result["metrics"].items() if not _is_number(value)]
    throughput = result.get("throughput")
    if throughput is not None and not isinstance(throughput, dict):
        wrong.append(f"'throughput' is a {type(throughput).__name__}, expected an object")
    elif throughput is not None:
        wrong += [f"throughput '{key}' is {value!r}, expected a number" for key, value in throughput.items()
                  if value is not None and not _is_number(value)]
    if wrong:
        raise ResultError(f"{path} is not a zsbench/CLIP_benchmark result: {'; '.join(wrong[:3])}.")
    return result


def why_not_reusable(path: Path, expected: dict[str, str], record: dict[str, Any]) -> str | None:
    """None when `path` holds the finished run `expected` (the `RUN_KEYS` values) computed with the
    settings `record` (every field of it equal to the result's "run" block, `zsbench.eval.runner.run_record`)
    and non-empty, finite metrics, so `--skip_existing` may skip it; otherwise why it must be recomputed."""
    try:
        result = read_result(path)
    except ResultError as err:
        return str(err)
    differing = [f"{key} {result.get(key)!r} (this run: {expected[key]!r})" for key in RUN_KEYS if result.get(key) != expected[key]]
    if differing:
        return "it holds another run: " + ", ".join(differing)
    recorded = result.get("run")
    if not isinstance(recorded, dict):
        return ("it does not record the settings it was computed with (split, dataset root, templates, recall_k, ...: "
                "written by an older zsbench), so they cannot be compared")
    differing = [f"{key} {_shown(recorded.get(key))} (this run: {_shown(value)})" for key, value in record.items()
                 if recorded.get(key) != value]
    if differing:
        return "it was computed with other settings: " + ", ".join(differing)
    metrics = result["metrics"]
    if not metrics:
        return "its metrics are empty"
    bad = [key for key, value in metrics.items() if not isinstance(value, (int, float)) or not math.isfinite(value)]
    if bad:
        return f"its metrics {', '.join(bad)} are not finite numbers"
    return None


def _shown(value: Any) -> str:
    """A recorded setting as a message shows it: digests shortened to 12 characters."""
    if isinstance(value, str) and len(value) == 64 and all(char in "0123456789abcdef" for char in value):
        return value[:12]
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_shown(item)}" for key, item in value.items()) + "}"
    return repr(value)


def check_output_path(path: Path, option: str = "--output", example: str = "result.json", folder: bool = False) -> None:
    """Fails before any work when what `option` names could not be written to `path`: a file path that is
    a folder (with `folder`: a folder path that is a file), a parent that is a file, or a folder that cannot
    be created or written (tried in the nearest folder that exists, so a refused or failed command leaves
    no empty folder behind). (`eval --output`, `build --output`, `report --output_dir`.)"""
    if folder and path.exists() and not path.is_dir():
        raise ResultError(f"{option} {path} is a file; expected a folder (created if missing). Choose another {option}.")
    if not folder and path.is_dir():
        raise ResultError(f"{option} {path} is a folder; expected the path of a file (e.g. {path / example}).")
    directory = path if folder else path.parent
    ancestor = directory
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ResultError(f"{option} {path}: {ancestor} is a file, so it cannot hold {'this folder' if folder else 'its folder'}. "
                          f"Choose another {option}.")
    try:
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as err:
        raise ResultError(
            f"{option} {path}: cannot write in {ancestor} ({err.strerror or err}). Expected a writable folder; "
            f"fix its permissions or choose another {option}."
        ) from err


def write_result(path: Path, result: dict[str, Any]) -> None:
    """Writes `result` to `path` atomically. When that fails (a full disk, a folder gone read-only),
    the computed metrics are not lost: the whole result goes to a fallback file (beside `path`, else
    in the temp folder) and the error prints the metrics and says where the fallback is."""
    try:
        write_json_atomic(path, result)
        return
    except OSError as err:
        failure = f"Could not write the result to {path} ({err.strerror or err})"
        cause = err
    metrics = json.dumps(result.get("metrics"))
    candidates = [path.with_name(f"{path.name}.unsaved.json"), Path(tempfile.gettempdir()) / f"zsbench-{uuid.uuid4().hex[:8]}-{path.name}"]
    attempts = []
    for fallback in candidates:
        try:
            write_json_atomic(fallback, result)
        except OSError as err:
            attempts.append(f"{fallback} ({err.strerror or err})")
            continue
        raise ResultError(
            f"{failure}. The computed metrics were kept: {metrics}. The whole result is in {fallback}: "
            f"move it to {path} once the problem is fixed."
        ) from cause
    raise ResultError(
        f"{failure}, nor to a fallback file ({'; '.join(attempts)}). The computed metrics were: {metrics}. "
        "Free space or fix the folder's permissions, then re-run."
    ) from cause
