"""`--pretrained` as a Hugging Face hub id already in the local cache: found on disk, never downloaded.

The cache is laid out by huggingface_hub (`huggingface-cli download ORG/NAME` fills it):

    $HF_HUB_CACHE (default $HF_HOME/hub, default ~/.cache/huggingface/hub)
    └── models--ORG--NAME/
        ├── refs/main                 # the commit hash the snapshot of `main` is stored under
        └── snapshots/<hash>/         # the checkpoint folder (config.json, *.safetensors, tokenizer.model)

A snapshot folder is an ordinary Hugging Face folder, so `--pretrained .../snapshots/<hash>` works as is.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# ORG/NAME as the hub spells repository ids (no leading '.', no path separators beyond the one).
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def hub_cache_dir() -> Path:
    """Where huggingface_hub keeps downloaded repositories (its environment variables, then its default)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ["HF_HOME"]) if os.environ.get("HF_HOME") else Path.home() / ".cache" / "huggingface"
    return home / "hub"


def is_hub_id(pretrained: str) -> bool:
    """True for ORG/NAME that is not a path on this machine."""
    return bool(_HUB_ID.match(pretrained)) and not Path(pretrained).exists()


def cached_snapshot(hub_id: str) -> Path | None:
    """The cached snapshot folder of `hub_id` (the one `refs/main` names, else the only one), or None."""
    repo = hub_cache_dir() / ("models--" + hub_id.replace("/", "--"))
    ref = repo / "refs" / "main"
    if ref.is_file():
        snapshot = repo / "snapshots" / ref.read_text(encoding="utf-8").strip()
        if snapshot.is_dir():
            return snapshot
    snapshots = sorted(path for path in (repo / "snapshots").glob("*") if path.is_dir())
    return snapshots[0] if len(snapshots) == 1 else None


def resolve_pretrained(pretrained: str) -> Path:
    """`pretrained` as a local path: itself, or the cached snapshot of a hub id (unchanged when neither exists,
    so the loader reports the missing checkpoint with `missing_checkpoint_hint`)."""
    if is_hub_id(pretrained):
        snapshot = cached_snapshot(pretrained)
        if snapshot is not None:
            return snapshot
    return Path(pretrained)


def missing_checkpoint(pretrained: str) -> str | None:
    """Why `pretrained` cannot be loaded, found before any file is read: it is not on disk (as a path, or as a
    hub id in the local cache); None when it is there."""
    if resolve_pretrained(pretrained).exists():
        return None
    return f"Checkpoint {pretrained} does not exist. {missing_checkpoint_hint(pretrained)}"


def missing_checkpoint_hint(pretrained: str) -> str:
    """What to do about a `--pretrained` that is not on disk: download a hub id first, or fix the path."""
    if is_hub_id(pretrained):
        return (
            f"It is not in the local Hugging Face cache ({hub_cache_dir()}) either, and zsbench never downloads: run "
            f"`huggingface-cli download {pretrained}` first (or pass the folder it was downloaded to)."
        )
    return "Put the weights under pretrained/ (see pretrained/README.md), or pass a hub id already in the local Hugging Face cache."
