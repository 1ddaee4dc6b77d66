"""Fetching from the Hugging Face hub through huggingface_hub: offline-aware, fast to fail, verified, one-line errors.

Datasets (`zsbench.data.hub_roots`, `zsbench.data.acquire`) and weights (`zsbench.models.hub`) go
through `fetch_snapshot` and `fetch_file`. huggingface_hub keeps its cache (``HF_HUB_CACHE``, else
``HF_HOME/hub``) and talks to its configured endpoint (``HF_ENDPOINT``, so mirrors work); it writes each
file under a temporary name and renames it once its size matches. zsbench adds:

- offline (`zsbench.offline`): the cache alone is read, and no socket is opened;
- a reachability check of the endpoint first, so an unreachable hub fails in seconds, in one line;
- checksums: every file fetched by this call is hashed and compared with the hub's own record (the
  LFS sha256, or the git blob sha1 of small files); a mismatch removes the file and names it;
- huggingface_hub's errors as one-line `DownloadError` / `OfflineError` messages.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from zsbench.errors import DownloadError
from zsbench.offline import check_reachable, is_offline, offline_error

RepoType = str  # "model" or "dataset"


def endpoint() -> str:
    """The hub endpoint huggingface_hub is configured with (``HF_ENDPOINT``, else https://huggingface.co).

    Read from the environment on each call (huggingface_hub reads it once, at import) and passed to every call.
    """
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def cache_dir() -> Path:
    """Where huggingface_hub caches repositories: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ~/.cache/huggingface/hub
    (read on each call, as `endpoint`)."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(constants.HF_HUB_CACHE)


def _storage(repo_id: str, repo_type: RepoType) -> Path:
    return cache_dir() / f"{repo_type}s--{repo_id.replace('/', '--')}"


def _verified_record(repo_id: str, repo_type: RepoType) -> Path:
    """zsbench's list of the blobs of a cached repository it has checked (one name per line), beside huggingface_hub's
    own folders, so that a blob fetched by a run that was killed before checking it is checked by the next run."""
    return _storage(repo_id, repo_type) / ".zsbench-verified"


def _verified(repo_id: str, repo_type: RepoType) -> set[str]:
    record = _verified_record(repo_id, repo_type)
    return set(record.read_text(encoding="utf-8").split()) if record.is_file() else set()


def git_blob_sha1(path: Path) -> str:
    """The git blob id of a file (what the hub records for files not stored in LFS)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())  # noqa: S324 - git's object id, not a security hash
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _quiet_progress(quiet: bool) -> None:
    if quiet:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()


def _where(repo_id: str, repo_type: RepoType, revision: str | None) -> str:
    kind = "dataset " if repo_type == "dataset" else ""
    return f"{kind}{repo_id}" + (f"@{revision}" if revision else "")


def _translate(err: Exception, repo_id: str, repo_type: RepoType, revision: str | None) -> DownloadError:
    """One line for a huggingface_hub error."""
    from huggingface_hub import errors

    where = f"{_where(repo_id, repo_type, revision)} on {endpoint()}"
    if isinstance(err, errors.GatedRepoError):
        return DownloadError(f"{where} is gated: accept its terms on the hub's page, then log in with `hf auth login`.")
    if isinstance(err, errors.RepositoryNotFoundError):
        return DownloadError(f"No repository {where} (or it is private: log in with `hf auth login`). Check the name.")
    if isinstance(err, errors.RevisionNotFoundError):
        return DownloadError(f"{where}: no such revision (branch, tag or commit). Check --revision or the @revision.")
    if isinstance(err, errors.RemoteEntryNotFoundError):
        return DownloadError(f"{where} has no such file ({err.response.url if err.response is not None else err}).")
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return DownloadError(f"Fetching {where} failed: {first_line}. Run the command again to retry; files already fetched are kept.")


def _verify(fetched: dict[str, Path], repo_id: str, repo_type: RepoType, commit: str) -> None:
    """Hashes each fetched file against the hub's record of it at `commit`; every mismatched file is removed, then
    the first is named."""
    if not fetched:
        return
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    records = {
        entry.path: entry
        for entry in HfApi(endpoint=endpoint()).list_repo_tree(repo_id, recursive=True, revision=commit, repo_type=repo_type)
        if isinstance(entry, RepoFile)
    }
    mismatches = []
    for name, path in sorted(fetched.items()):
        record = records.get(name)
        if record is None:
            raise DownloadError(f"{name} of {_where(repo_id, repo_type, commit)} is not in the hub's listing of that commit: not verified.")
        expected = record.lfs.sha256 if record.lfs is not None else record.blob_id
        found = _sha256(path) if record.lfs is not None else git_blob_sha1(path)
        if found != expected:
            real = path.resolve()
            path.unlink(missing_ok=True)
            real.unlink(missing_ok=True)
            kind = "sha256" if record.lfs is not None else "git blob sha1"
            mismatches.append(f"{name} of {_where(repo_id, repo_type, commit)}: {kind} {found}, the hub records {expected}")
    if mismatches:
        more = f" (and {len(mismatches) - 1} more)" if len(mismatches) > 1 else ""
        raise DownloadError(f"Checksum mismatch for {mismatches[0]}{more}. The file was removed; run the command again.")


def _files_under(folder: Path, names: Iterable[str]) -> dict[str, Path]:
    return {name: folder / name for name in names if (folder / name).is_file()}


def _listing(folder: Path) -> list[str]:
    """Repository paths of the files in a snapshot or local folder (huggingface_hub's own metadata skipped)."""
    found = []
    for directory, subfolders, files in os.walk(folder):
        subfolders[:] = [name for name in subfolders if not (Path(directory) == folder and name == ".cache")]
        found += [Path(directory, name).relative_to(folder).as_posix() for name in files]
    return sorted(found)


def fetch_snapshot(
    repo_id: str,
    *,
    repo_type: RepoType = "model",
    revision: str | None = None,
    patterns: Sequence[str] | None = None,
    local_dir: Path | None = None,
    quiet: bool = False,
    fetch_hint: str,
) -> Path:
    """The files of `repo_id` matching `patterns` (None: all), fetched where missing; returns the snapshot folder
    (in the hub cache, or `local_dir`).

    Offline, the cached snapshot is returned when it holds the files, else `OfflineError` (with `fetch_hint`,
    the command that fetches them). Online, the endpoint must answer within seconds, and every file this call
    fetched is verified against the hub's checksums.

    Raises:
        OfflineError, DownloadError: one line each, naming the repository and what to do.
    """
    from huggingface_hub import errors, snapshot_download

    what = f"{_where(repo_id, repo_type, revision)} is not in the local Hugging Face cache ({cache_dir()})"
    kwargs = dict(repo_id=repo_id, repo_type=repo_type, revision=revision, allow_patterns=list(patterns) if patterns else None,
                  local_dir=str(local_dir) if local_dir is not None else None, cache_dir=str(cache_dir()), endpoint=endpoint())
    if is_offline():
        try:
            return Path(snapshot_download(**kwargs, local_files_only=True))  # type: ignore[arg-type]
        except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled, FileNotFoundError) as err:
            raise offline_error(what, fetch_hint) from err
    check_reachable(endpoint(), f"fetch it where the network is reachable with {fetch_hint.rstrip('.')}, then run with "
                                "--offline (or ZSBENCH_OFFLINE=1).")
    _quiet_progress(quiet)
    try:
        folder = Path(snapshot_download(**kwargs))  # type: ignore[arg-type]
    except (errors.HfHubHTTPError, errors.LocalEntryNotFoundError, OSError, ValueError) as err:
        raise _translate(err, repo_id, repo_type, revision) from err
    if local_dir is not None:  # a folder of its own (fetched into once): every file is checked
        _verify(_files_under(folder, _listing(folder)), repo_id, repo_type, revision or "main")
        return folder
    # The hub cache: the blobs not checked by an earlier run (a blob's name is its etag, so one check per blob).
    verified = _verified(repo_id, repo_type)
    unchecked = {name: folder / name for name in _listing(folder) if (folder / name).resolve().name not in verified}
    _verify(unchecked, repo_id, repo_type, folder.name)
    if unchecked:
        with _verified_record(repo_id, repo_type).open("a", encoding="utf-8") as record:
            record.writelines(f"{path.resolve().name}\n" for path in unchecked.values())
    return folder


def fetch_file(repo_id: str, filename: str, *, revision: str | None = None, quiet: bool = False, fetch_hint: str) -> Path:
    """One file of a model repository (``hf://ORG/REPO/FILE``), fetched into the hub cache where missing; its path."""
    folder = fetch_snapshot(repo_id, revision=revision, patterns=[filename], quiet=quiet, fetch_hint=fetch_hint)
    path = folder / filename
    if not path.is_file():
        raise DownloadError(f"{repo_id}" + (f"@{revision}" if revision else "") + f" on {endpoint()} has no file {filename}.")
    return path


def split_size(repo_id: str, repo_type: RepoType, revision: str | None, folder: str) -> int:
    """The bytes of the files under `folder` of a repository, as the hub lists them (one metadata request)."""
    from huggingface_hub import HfApi, errors
    from huggingface_hub.hf_api import RepoFile

    check_reachable(endpoint(), "sizes are listed only when the hub answers.", timeout=5.0)
    try:
        entries = HfApi(endpoint=endpoint()).list_repo_tree(repo_id, path_in_repo=folder, recursive=True, revision=revision,
                                                           repo_type=repo_type)
        return sum((entry.lfs.size if entry.lfs is not None else entry.size) for entry in entries if isinstance(entry, RepoFile))
    except (errors.HfHubHTTPError, OSError, ValueError) as err:
        raise _translate(err, repo_id, repo_type, revision) from err
