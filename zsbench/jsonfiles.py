"""Files written atomically, and JSON read with errors that say what the file should have been."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from zsbench.errors import ZsbenchError


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Writes `data` to `path` through a temp file and a rename: a reader (or a crash) never
    sees half a file, and a failed write leaves the previous file as it was.

    The file gets the permissions of any new file (0666 less the umask), so results and manifests
    are as readable by the team as the folder they are in (a `tempfile` would make them 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Writes `text` (UTF-8) to `path` atomically (see `write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, data: Any) -> None:
    """Writes `data` as indented JSON to `path` atomically (see `write_bytes_atomic`); data that
    cannot be serialised raises before anything is written."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


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
    except RecursionError as err:  # Python's parser gives up on a few thousand nested brackets
        raise error(f"{path} nests JSON arrays or objects too deeply to be read: expected {what}. {fix}") from err
    if not isinstance(data, dict):
        raise error(f"{path} holds a JSON {type(data).__name__}: expected {what} (an object). {fix}")
    return data
