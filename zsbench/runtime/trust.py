"""What an export or engine folder must prove before its files run: their bytes, and a parity verdict about them.

Two checks, shared by `--backend onnx`, `--backend trt` and `zsbench engine build`:

- `verify_files`: every graph / weights / engine file has the SHA-256 its manifest recorded when
  it was written. A foreign `vision.onnx`, a half-zeroed `.onnx.data` or a swapped
  `vision.engine` is refused, naming the file. Hashing a 12 GB graph takes a minute, so a
  digest is remembered per folder in `.zsbench-digests.json`, keyed by file name, size and
  mtime: any write to a file changes its mtime and gets it hashed again. (A cache, not a
  guard against someone who edits files and restores their mtimes on purpose.)
- `check_verdict`: the parity verdict comes from the folder's parity.json, and counts only if
  that report names the digests of the very files being loaded and the checkpoint fingerprint
  the manifest records. A manifest flag alone (`parity_passed: true`) proves nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zsbench.artifact_paths import PARITY
from zsbench.errors import ParityError, ZsbenchError
from zsbench.jsonfiles import read_json_object, write_json_atomic

DIGEST_CACHE = ".zsbench-digests.json"
_CHUNK = 16 << 20


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 16 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_digests(folder: Path, names: list[str]) -> dict[str, str]:
    """SHA-256 of each file `names` in `folder`, reusing the folder's cached digests whose size and
    mtime still match; the cache is updated when it can be (a read-only folder is hashed each time)."""
    cache_path = folder / DIGEST_CACHE
    try:
        cache = read_json_object(cache_path, ZsbenchError, "a digest cache", "") if cache_path.is_file() else {}
    except ZsbenchError:  # a damaged cache is only a cache
        cache = {}
    digests, changed = {}, False
    for name in names:
        stat = (folder / name).stat()
        entry = cache.get(name)
        if isinstance(entry, dict) and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
            digests[name] = str(entry["sha256"])
            continue
        digests[name] = sha256_file(folder / name)
        cache[name] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digests[name]}
        changed = True
    if changed:
        try:
            write_json_atomic(cache_path, cache)
        except OSError:
            pass
    return digests


def recorded_digests(digests: Mapping[str, Any], files: list[str]) -> dict[str, str]:
    """`digests` (file name -> SHA-256) as read from a manifest, if it vouches for every one of `files`:
    a manifest that stopped recording a file's digest would otherwise let that file run unchecked.

    Raises:
        ValueError: naming the files without a digest (manifest readers report it as incomplete).
    """
    missing = [name for name in files if name not in digests]
    if missing:
        raise ValueError(f"no SHA-256 recorded for {', '.join(missing)}")
    return {str(name): str(digest) for name, digest in digests.items()}


def verify_files(folder: Path, recorded: Mapping[str, str], error: type[ZsbenchError], fix: str) -> None:
    """Checks that each file of `recorded` (name -> SHA-256) in `folder` has the recorded digest.

    Raises:
        `error`: naming the missing or changed file(s), and `fix`.
    """
    missing = [name for name in recorded if not (folder / name).is_file()]
    if missing:
        raise error(f"{folder} lacks {', '.join(missing)}, which its manifest records. {fix}")
    now = file_digests(folder, list(recorded))
    changed = [name for name in recorded if now[name] != recorded[name]]
    if changed:
        details = "; ".join(f"{name}: sha256 {now[name][:12]}, recorded {recorded[name][:12]}" for name in changed)
        raise error(
            f"{', '.join(str(folder / name) for name in changed)} {'is' if len(changed) == 1 else 'are'} not the "
            f"file(s) its manifest recorded ({details}): replaced or damaged after they were written. {fix}"
        )


def check_verdict(folder: Path, files: Mapping[str, str], checkpoint: str, fix: str) -> dict[str, Any]:
    """The parity report of `folder`, if it passed for exactly these `files` (name -> SHA-256) and
    this `checkpoint` fingerprint digest.

    Raises:
        ParityError: the report is missing, did not pass, or is about other files or another checkpoint.
    """
    if not (folder / PARITY).is_file():
        raise ParityError(f"{folder}: its parity check against PyTorch never ran (no {PARITY}). {fix}")
    report = read_json_object(folder / PARITY, ParityError, "a parity report", fix)
    status = report.get("status")
    if status != "passed":
        reason = f": {report['reason']}" if report.get("reason") else ""
        raise ParityError(f"{folder}: its parity check against PyTorch {status or 'has no status'}{reason} (see {PARITY}). {fix}")
    checked = report.get("files")
    if not isinstance(checked, dict) or dict(checked) != dict(files):
        raise ParityError(
            f"{folder}: {PARITY} is not about the files here (it names {sorted(checked) if isinstance(checked, dict) else 'no files'} "
            f"with other digests, or none): the verdict cannot be trusted. {fix}"
        )
    if report.get("checkpoint") != checkpoint:
        raise ParityError(
            f"{folder}: {PARITY} checked a model from checkpoint {str(report.get('checkpoint'))[:12]}, "
            f"not {checkpoint[:12]} as the manifest records. {fix}"
        )
    return report
