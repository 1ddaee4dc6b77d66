"""What an export or engine folder must prove before its files run: their bytes, and a parity verdict about them.

Two checks, shared by `--backend onnx`, `--backend trt` and `zsbench engine build`:

- `verify_files`: every graph / weights / engine file has the SHA-256 its manifest recorded when
  it was written. A foreign `vision.onnx`, a half-zeroed `.onnx.data` or a swapped
  `vision.engine` is refused, naming the file. Hashing a 12 GB graph takes a minute, so a
  digest is remembered per folder in `.zsbench-digests.json`, keyed by file name and the stat
  key any write changes (size, mtime, ctime, inode, device: `zsbench.digests`), so a damaged
  file whose mtime was restored (`os.utime`, `rsync -a`) is hashed again.
- `check_verdict`: the parity verdict comes from the folder's parity.json, and counts only if
  that report names the digests of the very files being loaded and the checkpoint fingerprint
  the manifest records. A manifest flag alone (`parity_passed: true`) proves nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zsbench.artifact_paths import PARITY
from zsbench.digests import cached_sha256
from zsbench.errors import ParityError, ZsbenchError
from zsbench.jsonfiles import read_json_object

DIGEST_CACHE = ".zsbench-digests.json"


def file_digests(folder: Path, names: list[str]) -> dict[str, str]:
    """SHA-256 of each file `names` in `folder`, reusing the digests the folder's `.zsbench-digests.json`
    remembers for files not written since (`zsbench.digests`); a read-only folder is hashed each time."""
    return cached_sha256({name: folder / name for name in names}, folder / DIGEST_CACHE)


def digests_key(digests: Mapping[str, str]) -> str:
    """A short key for a set of file digests (name -> SHA-256): what an encoder's `describe` gives caches, so that an
    entry keys on the very files run, not only on the folder holding them."""
    return hashlib.sha256(json.dumps(dict(digests), sort_keys=True).encode()).hexdigest()[:16]


def local_name(name: Any) -> str:
    """`name`, if it names a file directly in a manifest's own folder.

    Raises:
        ValueError: a path with a folder in it (`../x`, `/abs/x`, `sub/x`), or not a name at all.
    """
    if not isinstance(name, str) or not name or name in (".", "..") or Path(name).name != name:
        raise ValueError(f"it names the file {name!r}, which is not in its own folder (a manifest names the files it "
                         "holds by name alone)")
    return name


def recorded_digests(digests: Mapping[str, Any], files: list[str]) -> dict[str, str]:
    """`digests` (file name -> SHA-256) as read from a manifest, if it vouches for every one of `files`
    and names only files of its own folder: a manifest that stopped recording a file's digest would
    otherwise let that file run unchecked, and one naming `../x` would have a file outside checked and run.

    Raises:
        ValueError: naming the files outside the folder or without a digest (manifest readers report it).
    """
    for name in [*files, *digests]:
        local_name(name)
    missing = [name for name in files if name not in digests]
    if missing:
        raise ValueError(f"no SHA-256 recorded for {', '.join(missing)}")
    return {str(name): str(digest) for name, digest in digests.items()}


def manifest_problem(err: KeyError | TypeError | ValueError) -> str:
    """What a manifest reader's error says about the manifest, in words (no exception repr)."""
    return f"it lacks the entry {err.args[0]!r}" if isinstance(err, KeyError) and err.args else str(err)


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
