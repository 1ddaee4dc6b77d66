"""Fingerprints of checkpoints and ONNX graphs: what an artifact was made from.

A fingerprint holds:

- every file's path, size and mtime (recorded, for the eye);
- a SHA-256 of the resolved architecture config (canonical JSON);
- the SHA-256 of each file's whole contents.

`digest` hashes the config hash and each file's name and SHA-256, not paths or mtimes: copying
a checkpoint elsewhere keeps its digest, while any changed byte (one fine-tuned layer, weights
re-saved at the same size) changes it. Hashing a 28 GB checkpoint takes minutes, so each file
is hashed once and its digest remembered by a stat key any write changes (`zsbench.digests`):
later runs stat the files instead of reading them. The same scheme fingerprints ONNX graphs
(the graph file and its external-data file) for engine staleness checks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from zsbench.digests import user_cached_sha256


@dataclass(frozen=True)
class FileFingerprint:
    """One file: its path (as given), size, mtime and the SHA-256 of its contents."""

    path: str
    size: int
    mtime_ns: int
    sha256: str

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
            "method": "sha256 of config + per-file name and whole-file sha256",
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fingerprint:
        return cls(
            files=tuple(FileFingerprint.from_dict(f) for f in data["files"]),
            config_sha256=data.get("config_sha256"),
            digest=data["digest"],
        )


def fingerprint_files(paths: Iterable[Path], config: dict[str, Any] | None = None) -> Fingerprint:
    """Fingerprints `paths` (regular files, in the given order) and an optional config dict; each
    file is hashed whole, once (`zsbench.digests.user_cached_sha256`)."""
    return fingerprint_digests(user_cached_sha256(paths), config)


def fingerprint_digests(digests: Mapping[Path, str], config: dict[str, Any] | None = None) -> Fingerprint:
    """The fingerprint of files whose SHA-256 is known (path -> digest, in order) and an optional config dict."""
    files = []
    for path, sha256 in digests.items():
        stat = path.stat()
        files.append(FileFingerprint(str(path), stat.st_size, stat.st_mtime_ns, sha256))
    config_sha = None
    if config is not None:
        config_sha = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    digest = hashlib.sha256((config_sha or "").encode())
    for entry in files:
        digest.update(f"{Path(entry.path).name}:{entry.sha256}".encode())
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
