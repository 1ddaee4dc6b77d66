"""`--dataset_root` as a Hugging Face hub dataset, as CLIP_benchmark takes it: the split's shards and the text files
of a webdataset export, fetched into the hub cache, then read from there like any local export.

Two spellings name one dataset repository (and optionally a revision and a folder in it):

    https://huggingface.co/datasets/<org>/<repo>/tree/<revision>[/<folder>]   (the seed's form)
    hf://datasets/<org>/<repo>[@<revision>][/<folder>]                       (huggingface_hub's form)

Both go to the endpoint huggingface_hub is configured with (``HF_ENDPOINT``): the seed's
``huggingface.co`` host is mapped onto it, so a hub mirror serves the seed's command lines unchanged.
Only ``<split>/*`` and the export's ``classnames.txt``, ``zeroshot_classification_templates.txt`` and
``dataset_type.txt`` are fetched; a second run finds them in the cache and fetches no file again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from zsbench.errors import DatasetLayoutError

EXPORT_TEXT_FILES = ("classnames.txt", "zeroshot_classification_templates.txt", "dataset_type.txt")
HUB_HOSTS = ("huggingface.co", "hf.co")


@dataclass(frozen=True)
class HubRoot:
    """A dataset repository on the hub, a revision (None: the default branch) and a folder in it ("" for the top)."""

    repo_id: str
    revision: str | None = None
    folder: str = ""

    def patterns(self, split: str) -> list[str]:
        """The repository paths one split of the export needs."""
        prefix = f"{self.folder}/" if self.folder else ""
        return [f"{prefix}{split}/*", *(prefix + name for name in EXPORT_TEXT_FILES)]

    def fetch_hint(self, split: str) -> str:
        """The command that fetches the same files into the hub cache."""
        revision = f" --revision {self.revision}" if self.revision else ""
        includes = " ".join(f"--include '{pattern}'" for pattern in self.patterns(split))
        return f"`hf download {self.repo_id} --repo-type dataset{revision} {includes}` (or this command without --offline)."


def _endpoint_host() -> str:
    from zsbench.hfhub import endpoint

    return urlsplit(endpoint()).hostname or ""


def _split_repo(path: str, root: str) -> tuple[str, str]:
    """``org/repo/rest...`` -> (``org/repo``, ``rest``)."""
    parts = [part for part in path.split("/") if part]
    if len(parts) < 2:
        raise DatasetLayoutError(f"--dataset_root {root} names no <org>/<repo> dataset repository on the hub.")
    return f"{parts[0]}/{parts[1]}", "/".join(parts[2:])


def parse_hub_root(root: str) -> HubRoot | None:
    """The hub dataset `root` names, or None when `root` is a local folder (see the module docstring).

    Raises:
        DatasetLayoutError: a URL that is not a hub dataset in one of the two forms.
    """
    if root.startswith("hf://"):
        rest = root.removeprefix("hf://")
        if not rest.startswith("datasets/"):
            raise DatasetLayoutError(f"--dataset_root {root}: expected hf://datasets/<org>/<repo>[@<revision>][/<folder>].")
        repo, rest = _split_repo(rest.removeprefix("datasets/"), root)
        name, _, revision = repo.partition("@")
        return HubRoot(name, unquote(revision) or None, rest)
    if "://" not in root:
        return None
    parts = urlsplit(root)
    if parts.scheme != "https" or not parts.path.startswith("/datasets/"):
        raise DatasetLayoutError(
            f"--dataset_root {root} is a URL but not a Hugging Face hub dataset: expected "
            "https://huggingface.co/datasets/<org>/<repo>/tree/<revision> or hf://datasets/<org>/<repo>[@<revision>]."
        )
    if parts.hostname not in (*HUB_HOSTS, _endpoint_host()):
        raise DatasetLayoutError(
            f"--dataset_root {root} is on {parts.hostname}, not the hub zsbench talks to ({_endpoint_host()}): "
            f"to use a hub mirror, set HF_ENDPOINT=https://{parts.hostname}, or write the root as hf://datasets/<org>/<repo>."
        )
    repo, rest = _split_repo(unquote(parts.path).removeprefix("/datasets/"), root)
    kind, _, rest = rest.partition("/")
    if kind not in ("", "tree"):
        raise DatasetLayoutError(f"--dataset_root {root}: expected .../datasets/<org>/<repo>/tree/<revision>[/<folder>].")
    revision, _, folder = rest.partition("/")
    return HubRoot(repo, revision or None, folder.strip("/"))


def fetch_hub_root(hub: HubRoot, split: str, quiet: bool = False) -> Path:
    """The local folder holding `split` of the export at `hub` (in the hub cache), fetched where missing."""
    from zsbench.hfhub import fetch_snapshot

    folder = fetch_snapshot(hub.repo_id, repo_type="dataset", revision=hub.revision, patterns=hub.patterns(split),
                            quiet=quiet, fetch_hint=hub.fetch_hint(split))
    return folder / hub.folder if hub.folder else folder
