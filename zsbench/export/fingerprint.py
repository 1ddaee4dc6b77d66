"""Cheap fingerprints of checkpoints and ONNX graphs: what an artifact was made from.

Hashing a 28 GB checkpoint would take minutes, so a fingerprint reads a sample instead:

- every file's path, size and mtime (recorded, for the eye);
- a SHA-256 of the resolved architecture config (canonical JSON);
- a SHA-256 over each file's name and size and over three 1 MiB windows of its bytes (head,
  middle and tail; the whole file when it is smaller than 3 MiB).

`digest` hashes the config hash and the per-file sample hashes, not paths or mtimes: copying
a checkpoint elsewhere keeps its digest, while re-saving different weights of the same size
changes it unless every difference falls outside the sampled windows, which a fine-tune
almost never manages (every tensor changes). The same scheme fingerprints ONNX graphs
(the graph file and its external-data file) for engine staleness checks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

WINDOW = 1 << 20


@dataclass(frozen=True)
class FileFingerprint:
    """One file: its path (as given), size, mtime and the hash of its sampled bytes."""

    path: str
    size: int
    mtime_ns: int
    sample_sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileFingerprint:
        return cls(**data)


@dataclass(frozen=True)
class Fingerprint:
    """The files of a checkpoint (or graph) plus, optionally, the hash of its config."""

    files: tuple[FileFingerprint, ...]
    config_sha256: str | None
    digest: str

    @property
    def short(self) -> str:
        return self.digest[:12]

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [f.to_dict() for f in self.files],
            "config_sha256": self.config_sha256,
            "digest": self.digest,
            "method": "sha256 of config + per-file name, size and three 1 MiB windows (head, middle, tail)",
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fingerprint:
        return cls(
            files=tuple(FileFingerprint.from_dict(f) for f in data["files"]),
            config_sha256=data.get("config_sha256"),
            digest=data["digest"],
        )


def _sample_hash(path: Path, size: int) -> str:
    digest = hashlib.sha256(f"{path.name}:{size}".encode())
    with open(path, "rb") as handle:
        if size <= 3 * WINDOW:
            digest.update(handle.read())
        else:
            for offset in (0, (size - WINDOW) // 2, size - WINDOW):
                handle.seek(offset)
                digest.update(handle.read(WINDOW))
    return digest.hexdigest()


def fingerprint_files(paths: Iterable[Path], config: dict[str, Any] | None = None) -> Fingerprint:
    """Fingerprints `paths` (regular files, read in the given order) and an optional config dict."""
    files = []
    for path in paths:
        stat = path.stat()
        files.append(FileFingerprint(str(path), stat.st_size, stat.st_mtime_ns, _sample_hash(path, stat.st_size)))
    config_sha = None
    if config is not None:
        config_sha = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    digest = hashlib.sha256((config_sha or "").encode())
    for entry in files:
        digest.update(entry.sample_sha256.encode())
    return Fingerprint(tuple(files), config_sha, digest.hexdigest())


def fingerprint_checkpoint(pretrained: Path, tokenizer_file: Path | None, config: dict[str, Any]) -> Fingerprint:
    """What an export records of its checkpoint: the checkpoint's files, its tokenizer, its resolved config."""
    return fingerprint_files(checkpoint_files(pretrained, tokenizer_file), config)


def checkpoint_files(pretrained: Path, tokenizer_file: Path | None = None) -> list[Path]:
    """The files a checkpoint consists of: a .pth file, or every regular file of a folder, sorted;
    plus the tokenizer, which decides the ids the text graph is fed."""
    if pretrained.is_dir():
        paths = sorted(p for p in pretrained.iterdir() if p.is_file() and not p.name.startswith("."))
    else:
        paths = [pretrained]
    if tokenizer_file is not None and tokenizer_file not in paths:
        paths.append(tokenizer_file)
    return paths
