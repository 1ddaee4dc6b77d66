"""Whole-file SHA-256 digests remembered under a stat key a write cannot keep (`zsbench.digests`), and the
checkpoint fingerprint built on them. Digests are recomputed here with hashlib."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from zsbench.digests import USER_DIGEST_CACHE, cached_sha256
from zsbench.export.fingerprint import fingerprint_checkpoint

MIB = 1 << 20


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def overwrite_keeping_mtime(path: Path, offset: int, data: bytes) -> None:
    """Writes `data` at `offset` (same size) and restores the mtime, as `os.utime` or `rsync -a` would."""
    before = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_mtime_ns == before.st_mtime_ns and path.stat().st_size == before.st_size


def test_a_digest_is_remembered_until_the_file_is_written_even_with_its_mtime_restored(tmp_path: Path) -> None:
    path, cache = tmp_path / "vision.onnx.data", tmp_path / ".zsbench-digests.json"
    path.write_bytes(os.urandom(300_000))
    assert cached_sha256({"vision.onnx.data": path}, cache) == {"vision.onnx.data": sha256(path)}
    entry = json.loads(cache.read_text())["vision.onnx.data"]
    stat = path.stat()
    assert entry == {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns,
                     "inode": stat.st_ino, "device": stat.st_dev, "sha256": sha256(path)}

    # The remembered digest is what is returned while the file is untouched (it is not read again) ...
    cache.write_text(json.dumps({"vision.onnx.data": {**entry, "sha256": "a" * 64}}))
    assert cached_sha256({"vision.onnx.data": path}, cache)["vision.onnx.data"] == "a" * 64
    # ... and 200 kB zeroed with the mtime restored is hashed again: the write changed the ctime.
    overwrite_keeping_mtime(path, 50_000, b"\0" * 200_000)
    assert cached_sha256({"vision.onnx.data": path}, cache)["vision.onnx.data"] == sha256(path)


def test_a_damaged_or_unwritable_cache_costs_a_hash_not_the_answer(tmp_path: Path) -> None:
    path = tmp_path / "text.engine"
    path.write_bytes(b"engine bytes")
    damaged = tmp_path / "damaged.json"
    damaged.write_text("{not json")
    assert cached_sha256({"text.engine": path}, damaged) == {"text.engine": sha256(path)}
    blocked = tmp_path / "a-file" / "cache.json"  # the cache's folder is a file
    (tmp_path / "a-file").write_text("x")
    assert cached_sha256({"text.engine": path}, blocked) == {"text.engine": sha256(path)}


def test_the_checkpoint_fingerprint_covers_every_byte(tmp_path: Path, isolated_embedding_cache: Path) -> None:
    """The sweep's case: weights rewritten at the same size between the three 1 MiB windows once sampled."""
    checkpoint = tmp_path / "InternVL"
    checkpoint.mkdir()
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(os.urandom(4 * MIB))
    (checkpoint / "config.json").write_text("{}")
    config = {"hidden_size": 96}
    before = fingerprint_checkpoint(checkpoint, None, config)
    assert [entry.sha256 for entry in before.files] == [sha256(checkpoint / "config.json"), sha256(weights)]

    overwrite_keeping_mtime(weights, MIB + 4096, os.urandom(64 * 1024))  # between the head and middle windows
    after = fingerprint_checkpoint(checkpoint, None, config)
    assert after.digest != before.digest and after.files[1].sha256 == sha256(weights)

    # Hashed once: the digest is remembered, by absolute path and stat key, in zsbench's cache folder.
    remembered = json.loads((isolated_embedding_cache / USER_DIGEST_CACHE).read_text())
    assert remembered[str(weights.resolve())]["sha256"] == sha256(weights)
    # A copy elsewhere has the same fingerprint (names and contents, not paths).
    copy = tmp_path / "elsewhere" / "InternVL"
    copy.mkdir(parents=True)
    for name in ("model.safetensors", "config.json"):
        (copy / name).write_bytes((checkpoint / name).read_bytes())
    assert fingerprint_checkpoint(copy, None, config).digest == after.digest
