"""A byte-reproducible writer for CLIP_benchmark's webdataset layout.

Tar headers carry no time, owner or permissions of this machine (mtime 0, uid/gid 0, no
user names, mode 0644, ustar format) and members are written in sorted order, so the same
samples always give the same bytes.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

# A sample as written: its key and {extension: file bytes}.
SampleFiles = tuple[str, Mapping[str, bytes]]


def _member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info, io.BytesIO(data)


def write_tar(path: Path, samples: Iterable[SampleFiles]) -> None:
    """Writes one shard: for each ``(key, {extension: bytes})``, members ``key.extension``.

    Samples must come in key order; webdataset groups consecutive members by key.
    """
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for key, files in samples:
            for extension in sorted(files):
                tar.addfile(*_member(f"{key}.{extension}", files[extension]))


def _chunks(items: Iterable[SampleFiles], size: int) -> Iterator[list[SampleFiles]]:
    chunk: list[SampleFiles] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_split(folder: Path, samples: Iterable[SampleFiles], samples_per_shard: int) -> int:
    """Writes ``folder/0.tar, 1.tar, ...`` and ``folder/nshards.txt``; returns the shard count."""
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for count, chunk in enumerate(_chunks(samples, samples_per_shard), start=1):
        write_tar(folder / f"{count - 1}.tar", chunk)
    (folder / "nshards.txt").write_text(f"{count}\n", encoding="utf-8")
    return count


def sample_key(index: int) -> str:
    """The key of sample `index`: ``s000123``."""
    return f"s{index:06d}"
