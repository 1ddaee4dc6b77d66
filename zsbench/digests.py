"""SHA-256 of whole files, remembered in JSON caches under a stat key that a write cannot keep.

Hashing a 28 GB checkpoint or a 12 GB graph takes minutes, so a digest is remembered beside the
file's stat key: size, mtime_ns, ctime_ns, inode and device. Any write to a file sets its ctime to
the current time, and nothing short of changing the system clock sets it back: `os.utime`,
`touch -d` and `rsync -a` restore an mtime, never a ctime. A file replaced by another (`cp`, `mv`,
an editor's save) has another inode or ctime. So a file whose stat key matches the remembered one
has not been written since it was hashed; anything else is hashed again.

Two kinds of cache use it: the `.zsbench-digests.json` of each export or engine folder (keyed by
file name, `zsbench.runtime.trust`), and the user's `file-digests.json` in zsbench's cache folder
(keyed by absolute path) for checkpoints (`zsbench.export.fingerprint`). A cache is only a cache:
a damaged or unwritable one costs a re-hash, never a run.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from zsbench.jsonfiles import write_json_atomic

USER_DIGEST_CACHE = "file-digests.json"
_CHUNK = 16 << 20


def default_cache_dir() -> Path:
    """zsbench's cache folder: `$ZSBENCH_CACHE_DIR`, else `$XDG_CACHE_HOME/zsbench`, else `~/.cache/zsbench`."""
    if os.environ.get("ZSBENCH_CACHE_DIR"):
        return Path(os.environ["ZSBENCH_CACHE_DIR"])
    base = Path(os.environ["XDG_CACHE_HOME"]) if os.environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "zsbench"


def stat_key(path: Path) -> dict[str, int]:
    """What any write to `path` changes (and `os.utime` cannot restore): size, mtime, ctime, inode, device."""
    stat = os.stat(path)
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns,
            "inode": stat.st_ino, "device": stat.st_dev}


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 16 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _read_cache(cache_file: Path) -> dict[str, object]:
    try:
        data = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent, unreadable or damaged: only a cache
        return {}
    return data if isinstance(data, dict) else {}


def cached_sha256(files: Mapping[str, Path], cache_file: Path) -> dict[str, str]:
    """The SHA-256 of each file of `files` (cache key -> path), reusing the digests `cache_file`
    remembers under the same key and stat key; new digests are written back when the cache can be.

    A digest is remembered only when the file's stat key was the same before and after hashing it,
    so a file still being written is hashed again next time.
    """
    cache = _read_cache(cache_file)
    digests: dict[str, str] = {}
    changed = False
    for key, path in files.items():
        before = stat_key(path)
        entry = cache.get(key)
        if isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and all(
            entry.get(field) == value for field, value in before.items()
        ):
            digests[key] = entry["sha256"]
            continue
        digests[key] = sha256_file(path)
        if stat_key(path) == before:
            cache[key] = {**before, "sha256": digests[key]}
            changed = True
    if changed:
        try:
            write_json_atomic(cache_file, cache)
        except OSError:  # a read-only folder, or a file where the cache folder should be: hashed again next time
            pass
    return digests


def user_cached_sha256(paths: Iterable[Path]) -> dict[Path, str]:
    """The SHA-256 of each of `paths`, remembered by absolute path in `<cache dir>/file-digests.json`."""
    files = {str(Path(path).resolve()): Path(path) for path in paths}
    digests = cached_sha256(files, default_cache_dir() / USER_DIGEST_CACHE)
    return {path: digests[key] for key, path in files.items()}
