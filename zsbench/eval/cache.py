"""Content-keyed embedding caches: class embeddings (the zero-shot classifier) and image features.

Every entry is two files under the cache folder (`--cache_dir`, default `default_cache_dir()`):

```
<cache_dir>/
├── classes/<key>.safetensors   per-class embeddings ("rows", (C, D)) for one encoder and template set
├── classes/<key>.json          the key's fields, the class names of the rows, sha256 of the .safetensors
├── images/<key>.safetensors    image embeddings ("embeddings", (K, D)) and kept sample indices ("indices")
└── images/<key>.json           the key's fields and sha256 of the .safetensors
```

`<key>` is the sha256 of the canonical JSON of the key's fields, so any change of a field (another
checkpoint, backend, precision, template, transform, split, ...) is another entry. No pickles:
tensors are safetensors, keys JSON; both are written atomically. On load the key file must name
the same fields and the tensor file must hash to the recorded digest; anything else (a truncated
or edited file) is reported as a warning and the entry is recomputed and rewritten.

A class-embedding entry is keyed by the encoder and the templates and holds rows for every class
name it has seen: one class's embedding depends only on its name and the templates, so ImageNet's
variants that share the 1,000 names (IN-V2, IN-Sketch) and the 200-class subsets (IN-A, IN-R) are
served from the rows IN-1k wrote, and a new dataset encodes only the names not seen before.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from zsbench.digests import default_cache_dir
from zsbench.errors import CacheError
from zsbench.jsonfiles import write_bytes_atomic, write_json_atomic
from zsbench.models.ref import ModelRef

FORMAT = "zsbench-embedding-cache/1"


def content_key(fields: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of `fields` (sorted keys, no whitespace)."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def checkpoint_digest(ref: ModelRef) -> str:
    """A digest of the checkpoint's files, tokenizer and config, as its family describes them (the export
    fingerprint's); for open_clip, of the file `--pretrained` resolves to (a pretrained tag's downloaded file included)."""
    from zsbench.export.store import checkpoint_fingerprint

    return checkpoint_fingerprint(ref).digest


def encoder_fields(ref: ModelRef, describe: dict[str, Any]) -> dict[str, Any]:
    """The key fields every entry shares: model, checkpoint digest and the backend as the encoder
    describes itself (runtime, precision, versions, artifact folder); the device by its type only."""
    described = {**describe, "device": str(describe.get("device", "cpu")).split(":")[0]}
    return {"format": FORMAT, "model_type": ref.model_type, "model": ref.model, "checkpoint": checkpoint_digest(ref),
            "encoder": described}


def transform_description(transform: Callable) -> str:
    """The transform's repr without object addresses (which differ from process to process)."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(transform))


@dataclass(frozen=True)
class CacheEntry:
    """What a cache entry holds: its tensors and the extra JSON fields stored beside the key."""

    tensors: dict[str, torch.Tensor]
    extra: dict[str, Any]


class EmbeddingCache:
    """One cache folder. `load` returns None for a missing or unusable entry (warning through `warn`,
    once per entry, when it was there but damaged); `save` writes an entry atomically."""

    def __init__(self, root: Path, warn: Callable[[str], None]) -> None:
        self.root = root
        self.warn = warn
        self._warned: set[Path] = set()

    def _warn_once(self, path: Path, message: str) -> None:
        if path not in self._warned:
            self._warned.add(path)
            self.warn(message)

    def _paths(self, kind: str, fields: dict[str, Any]) -> tuple[Path, Path]:
        key = content_key(fields)
        return self.root / kind / f"{key}.safetensors", self.root / kind / f"{key}.json"

    def load(self, kind: str, fields: dict[str, Any]) -> CacheEntry | None:
        """The entry of `kind` keyed by `fields`, verified against its digest; None when absent or damaged."""
        tensor_path, key_path = self._paths(kind, fields)
        if not key_path.exists() and not tensor_path.exists():
            return None
        try:
            record = json.loads(key_path.read_text(encoding="utf-8"))
            if not isinstance(record, dict) or record.get("key") != fields:
                raise ValueError(f"{key_path.name} does not hold this entry's key")
            data = tensor_path.read_bytes()
            found = hashlib.sha256(data).hexdigest()
            if found != record.get("sha256"):
                raise ValueError(f"{tensor_path.name} hashes to {found[:12]}, its key file records {str(record.get('sha256'))[:12]}")
            return CacheEntry(load_safetensors(data), record.get("extra", {}))
        except (OSError, ValueError, SafetensorError) as err:
            self._warn_once(tensor_path, f"warning: cache entry {tensor_path} is damaged ({err}); recomputing it.")
            return None

    def save(self, kind: str, fields: dict[str, Any], tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        """Writes an entry (tensors first, then the key file naming their digest). A cache that cannot
        be written costs speed, not the run: the failure is logged and the run goes on."""
        tensor_path, key_path = self._paths(kind, fields)
        data = save_safetensors({name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()})
        try:
            write_bytes_atomic(tensor_path, data)
            write_json_atomic(key_path, {"key": fields, "sha256": hashlib.sha256(data).hexdigest(), "extra": extra})
        except OSError as err:
            self._warn_once(tensor_path, f"warning: could not write the cache entry {tensor_path} ({err.strerror or err}); "
                            "the next run recomputes it. Fix the folder's permissions or pass another --cache_dir.")


def cached_class_rows(cache: EmbeddingCache | None, fields: dict[str, Any], classnames: list[str]) -> dict[str, torch.Tensor]:
    """The class embeddings `cache` holds for any of `classnames` (name -> (D,) row)."""
    entry = cache.load("classes", fields) if cache is not None else None
    if entry is None:
        return {}
    names, rows = entry.extra.get("classnames", []), entry.tensors.get("rows")
    if rows is None or len(names) != len(rows):
        return {}
    wanted = set(classnames)
    return {name: row for name, row in zip(names, rows) if name in wanted}


def store_class_rows(cache: EmbeddingCache, fields: dict[str, Any], rows: dict[str, torch.Tensor]) -> None:
    """Adds `rows` to the class-embedding entry keyed by `fields`, keeping the rows it already holds."""
    entry = cache.load("classes", fields)
    merged: dict[str, torch.Tensor] = {}
    if entry is not None and "rows" in entry.tensors and len(entry.extra.get("classnames", [])) == len(entry.tensors["rows"]):
        merged.update(zip(entry.extra["classnames"], entry.tensors["rows"]))
    merged.update({name: row.detach().cpu() for name, row in rows.items()})
    names = sorted(merged)
    cache.save("classes", fields, {"rows": torch.stack([merged[name] for name in names])}, {"classnames": names})


def open_cache(cache_dir: str | None, enabled: bool, warn: Callable[[str], None]) -> EmbeddingCache | None:
    """The cache at `cache_dir` (default `default_cache_dir()`), or None when caching is off; `warn`
    gets what the cache could not use or write.

    Raises:
        CacheError: the folder is a file, naming where it came from (--cache_dir or $ZSBENCH_CACHE_DIR).
    """
    if not enabled:
        return None
    if cache_dir:
        root, origin, fix = Path(cache_dir), f"--cache_dir {cache_dir}", "Choose another --cache_dir"
    elif os.environ.get("ZSBENCH_CACHE_DIR"):
        root = default_cache_dir()
        origin, fix = f"ZSBENCH_CACHE_DIR={root}", "Point ZSBENCH_CACHE_DIR at a folder (or unset it), pass --cache_dir"
    else:
        root = default_cache_dir()
        origin, fix = f"The default cache folder {root}", "Pass --cache_dir"
    if root.exists() and not root.is_dir():
        raise CacheError(f"{origin} is a file; expected a folder for the embedding caches. {fix}, or pass --no-cache.")
    return EmbeddingCache(root, warn)
