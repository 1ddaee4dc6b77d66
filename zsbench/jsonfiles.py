"""JSON files written atomically and read with errors that say what the file should have been."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from zsbench.errors import ZsbenchError


def write_json_atomic(path: Path, data: Any) -> None:
    """Writes `data` as JSON to `path` through a temp file and a rename: a reader (or a crash) never
    sees half a file, and a failed write leaves the previous file as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False, encoding="utf-8")
    try:
        with handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def read_json_object(path: Path, error: type[ZsbenchError], what: str, fix: str) -> dict[str, Any]:
    """Reads a JSON object from `path`, raising `error` (naming `what` the file should be and the `fix`)
    when it is missing, not JSON, or not an object."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError as err:
        raise error(f"{path} does not exist: expected {what}. {fix}") from err
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise error(f"{path} is not readable JSON ({err}): expected {what}. {fix}") from err
    if not isinstance(data, dict):
        raise error(f"{path} holds a JSON {type(data).__name__}: expected {what} (an object). {fix}")
    return data
