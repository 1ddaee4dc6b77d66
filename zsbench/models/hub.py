"""`--pretrained` from the Hugging Face hub, fetched into huggingface_hub's cache where missing (`zsbench.hfhub`).

Two forms name weights on the hub (``--revision`` pins a branch, tag or commit; ``@REV`` in the hf:// form too):

    ORG/NAME                  a repository: its config, tokenizer and weights (safetensors when the
                              repository has them, else pytorch_model*.bin), e.g. OpenGVLab/InternVL-14B-224px
    hf://ORG/REPO[@REV]/FILE  one file of a repository, e.g. hf://OpenGVLab/InternVL/internvl_c_13b_224px.pth

ORG/NAME is a hub id only when it is not a path on this machine: not an existing path, no checkpoint
suffix (.pth, .bin, ...), and ORG no local folder (``pretrained/InternVL-14B-224px`` stays a path).
The cache is huggingface_hub's (``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ~/.cache/huggingface/hub):

    models--ORG--NAME/
    ├── refs/main                 # the commit hash the snapshot of `main` is stored under
    └── snapshots/<hash>/         # the checkpoint folder (config.json, *.safetensors, tokenizer.model)

A snapshot folder is an ordinary Hugging Face folder, so `--pretrained .../snapshots/<hash>` works as is.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from zsbench.errors import CheckpointError
from zsbench.offline import is_offline

HF_SCHEME = "hf://"
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt")
# ORG/NAME as the hub spells repository ids (no leading '.', no path separators beyond the one).
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
# The seed's weights, by the name its README saves them under: where they are on the hub.
SEED_WEIGHTS = {
    "internvl_c_13b_224px.pth": "hf://OpenGVLab/InternVL/internvl_c_13b_224px.pth",
    "InternVL-14B-224px": "OpenGVLab/InternVL-14B-224px",
}
# What a repository snapshot fetches: everything but the weights, then the weights in one format.
_FOLDER_FILES = ["*.json", "*.model", "*.txt"]
_WEIGHT_FORMATS = (["*.safetensors"], ["*.bin"])


@dataclass(frozen=True)
class HubWeights:
    """Weights on the hub: a repository, one file in it (None: the checkpoint folder), and a revision."""

    repo_id: str
    filename: str | None
    revision: str | None

    def hint(self) -> str:
        """The `hf download` command that fetches the same into the hub cache."""
        revision = f" --revision {self.revision}" if self.revision else ""
        return f"`hf download {self.repo_id}{' ' + self.filename if self.filename else ''}{revision}`."


def is_hub_id(pretrained: str) -> bool:
    """True for ORG/NAME that cannot be a path on this machine (see the module docstring)."""
    if not _HUB_ID.match(pretrained) or Path(pretrained).exists():
        return False
    return not pretrained.endswith(CHECKPOINT_SUFFIXES) and not Path(pretrained.split("/")[0]).is_dir()


def parse_hub_weights(pretrained: str, revision: str | None = None) -> HubWeights | None:
    """The hub weights `pretrained` names (see the module docstring), or None for a local path.

    Raises:
        CheckpointError: a malformed hf:// name, or a revision given twice.
    """
    if pretrained.startswith(HF_SCHEME):
        parts = pretrained.removeprefix(HF_SCHEME).split("/")
        if len(parts) < 2 or not all(parts):
            raise CheckpointError(f"--pretrained {pretrained}: expected hf://ORG/REPO[@REVISION][/FILE].")
        name, _, pinned = parts[1].partition("@")
        if pinned and revision and pinned != revision:
            raise CheckpointError(f"--pretrained {pretrained} pins @{pinned} and --revision says {revision}: pass one.")
        return HubWeights(f"{parts[0]}/{name}", "/".join(parts[2:]) or None, pinned or revision)
    if is_hub_id(pretrained):
        return HubWeights(pretrained, None, revision)
    return None


def _fetch_folder(weights: HubWeights) -> Path:
    from zsbench.hfhub import fetch_snapshot

    for formats in _WEIGHT_FORMATS:
        folder = fetch_snapshot(weights.repo_id, revision=weights.revision, patterns=[*_FOLDER_FILES, *formats],
                                fetch_hint=weights.hint())
        if any(folder.glob(pattern) for pattern in formats):
            break
    return folder


def resolve_pretrained(pretrained: str, revision: str | None = None) -> Path:
    """`pretrained` as a local path: itself, or the hub folder or file it names, fetched into the hub cache where
    missing (once per process and cache; offline, only the cache is read).

    Raises:
        OfflineError, DownloadError: the weights are not cached and cannot be fetched (one line each).
    """
    weights = parse_hub_weights(pretrained, revision)
    if weights is None:
        return Path(pretrained)
    from zsbench.hfhub import cache_dir

    return _resolve(weights, cache_dir(), is_offline())


@functools.cache
def _resolve(weights: HubWeights, cache: Path, offline: bool) -> Path:
    del cache, offline  # part of the memo's key only: another cache or mode resolves again
    if weights.filename is not None:
        from zsbench.hfhub import fetch_file

        return fetch_file(weights.repo_id, weights.filename, revision=weights.revision, fetch_hint=weights.hint())
    return _fetch_folder(weights)


def missing_checkpoint(pretrained: str) -> str | None:
    """Why `pretrained` cannot be loaded, found before any file is read: it is not on disk (as a path, or as a
    hub id in the local cache); None when it is there."""
    if resolve_pretrained(pretrained).exists():
        return None
    return f"Checkpoint {pretrained} does not exist. {missing_checkpoint_hint(pretrained)}"


def missing_checkpoint_hint(pretrained: str) -> str:
    """What to do about a `--pretrained` path that is not on disk: the seed's weights by their hub names, else the paths."""
    name = Path(pretrained).name
    if name in SEED_WEIGHTS:
        hub = SEED_WEIGHTS[name]
        weights = parse_hub_weights(hub)
        assert weights is not None
        local = f"--local-dir {Path(pretrained).parent}" if weights.filename else f"--local-dir {pretrained}"
        fetch = weights.hint().rstrip("`.") + f" {local}`"
        offline = " (zsbench is offline: fetch it where the network is reachable)" if is_offline() else ""
        return (f"It is on the hub: pass --pretrained {hub} (zsbench fetches it into the Hugging Face cache){offline}, "
                f"or fetch it to this path first: {fetch}.")
    return ("Pass a local .pth file or Hugging Face folder (see pretrained/README.md), a hub id such as "
            "OpenGVLab/InternVL-14B-224px, or one file of a hub repository as hf://ORG/REPO/FILE.")
