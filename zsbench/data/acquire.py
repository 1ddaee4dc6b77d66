"""Getting a dataset that is not on this machine: the catalog's source (`zsbench.data.sources`) fetched into the
dataset root, or a hub dataset root (`zsbench.data.hub_roots`) fetched into the hub cache.

`open_or_fetch` is what `zsbench eval` calls: a local root is read as it is; only when it does not hold
the dataset is the dataset's source fetched into it (one line per dataset), then read again. A hub
root is fetched (or found in the cache) first. `fetch_dataset` is `zsbench datasets download`.

Each archive or file fetched is recorded by a marker in ``<root>/.zsbench-fetched/``, written only
after it was verified and extracted: a root is never fetched into twice, and an interrupted fetch
(no marker) resumes on the next run.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from zsbench.data.download import download_file, extract_archive, is_archive
from zsbench.data.hub_roots import EXPORT_TEXT_FILES, fetch_hub_root, parse_hub_root
from zsbench.data.sources import SOURCES, DatasetSource, HubMirror, RemoteFile, dataset_source, has_source, seed_folder
from zsbench.errors import DatasetLayoutError, DownloadError, UnknownNameError
from zsbench.offline import check_reachable, is_offline, offline_error

T = TypeVar("T")
MARKERS = ".zsbench-fetched"


def human_size(size: int | None) -> str:
    """Bytes in words (``163 MB``), or ``size unknown``."""
    if size is None:
        return "size unknown"
    value, unit = float(size), "B"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            break
        value /= 1000
    return f"{value:.0f} {unit}" if unit in ("B", "kB") or value >= 10 else f"{value:.1f} {unit}"


@dataclass(frozen=True)
class FetchItem:
    """One thing a source fetches into a root: a file (from its URL) or a hub mirror's split."""

    name: str
    origin: str
    size: int | None
    approx: str | None
    verified: str
    marker: Path

    @property
    def done(self) -> bool:
        return self.marker.is_file()

    def size_text(self) -> str:
        return human_size(self.size) if self.size is not None else self.approx or "size unknown"


def _file_item(file: RemoteFile, root: Path) -> FetchItem:
    check = f"{file.checksum.partition(':')[0]} from {file.checksum_from}" if file.checksum else "unverified: no published checksum"
    return FetchItem(file.filename, file.fetch_url(), file.size, file.approx, check, root / MARKERS / f"{file.filename}.done")


def _mirror_item(mirror: HubMirror, root: Path, split: str) -> FetchItem:
    marker = root / MARKERS / f"{mirror.folder}@{mirror.revision}.{split}.done"
    return FetchItem(f"{mirror.folder}/ ({split} split)", f"hf://datasets/{mirror.repo_id}@{mirror.revision}", None, None,
                     "sha256 from the hub", marker)


def fetch_items(source: DatasetSource, root: Path, split: str) -> list[FetchItem]:
    """What `source` fetches into `root` for `split`, small files first."""
    items = [_file_item(file, root) for file in sorted(source.files, key=lambda file: is_archive(file.filename))]
    if source.mirror is not None:
        items.append(_mirror_item(source.mirror, root, split))
    return items


def download_hint(name: str, root: Path, language: str, split: str) -> str:
    """The `zsbench datasets download` command that fetches `name` into the dataset root `root`."""
    extra = (f" --language {language}" if language != "en" else "") + (f" --split {split}" if split != "test" else "")
    return f"`zsbench datasets download {name} --dataset_root {root}{extra}`."


def _write_marker(item: FetchItem) -> None:
    item.marker.parent.mkdir(parents=True, exist_ok=True)
    item.marker.write_text(json.dumps({"from": item.origin, "verified": item.verified}) + "\n", encoding="utf-8")


def _fetch_file(file: RemoteFile, item: FetchItem, root: Path, quiet: bool) -> None:
    folder = root / file.into
    target = download_file(item.origin, folder / file.filename, checksum=file.checksum, size=file.size, quiet=quiet)
    if is_archive(file.filename):
        extract_archive(target, folder)
        for inner in file.inner:
            extract_archive(folder / inner, folder)
            (folder / inner).unlink()
        target.unlink()  # extracted and recorded: the archive itself is not kept
    _write_marker(item)


def _fetch_mirror(mirror: HubMirror, item: FetchItem, root: Path, split: str, quiet: bool, hint: str) -> None:
    from zsbench.hfhub import fetch_snapshot

    fetch_snapshot(mirror.repo_id, repo_type="dataset", revision=mirror.revision, patterns=[f"{split}/*", *EXPORT_TEXT_FILES],
                   local_dir=root / mirror.folder, quiet=quiet, fetch_hint=hint)
    shutil.rmtree(root / mirror.folder / ".cache", ignore_errors=True)  # huggingface_hub's bookkeeping of a finished fetch
    _write_marker(item)


def fetch_dataset(name: str, root: Path, *, split: str = "test", language: str = "en", quiet: bool = False,
                  log: Callable[[str], None] = print) -> DatasetSource:
    """Fetches what the catalog names for `name` into `root` (what is already there is kept); returns the source.

    Raises:
        UnknownNameError: no source for `name` in `language`.
        OfflineError: something is missing and zsbench is offline.
        DownloadError: a fetch failed (unreachable host, HTTP error, checksum mismatch, unsafe archive).
    """
    source = dataset_source(name, language)
    pending = [item for item in fetch_items(source, root, split) if not item.done]
    if not pending:
        return source
    hint = download_hint(name, root, language, split)
    if is_offline():
        raise offline_error(f"{name} is not in {root}", hint)
    sizes = ", ".join(f"{item.name} {item.size_text()}" for item in pending)
    log(f"Fetching {name} into {root}: {source.origin}: {sizes}")
    files = {file.filename: file for file in source.files}
    for item in pending:
        if item.name in files:
            check_reachable(item.origin, f"fetch it where the network is reachable with {hint.rstrip('.')}, then run with "
                                         "--offline (or ZSBENCH_OFFLINE=1).")
            _fetch_file(files[item.name], item, root, quiet)
        else:
            assert source.mirror is not None
            _fetch_mirror(source.mirror, item, root, split, quiet, hint)
    return source


def open_or_fetch(name: str, root: str, build: Callable[[Path], T], *, split: str = "test", language: str = "en",
                  quiet: bool = False, log: Callable[[str], None] = print) -> T:
    """`build(folder)` on the dataset root: a hub root is fetched into the hub cache first; a local root that does
    not hold the dataset (`build` raises `DatasetLayoutError`) gets the catalog's source fetched into it, then is
    built again. Offline, the layout error names the command that would fetch the data."""
    hub = parse_hub_root(root)
    if hub is not None:
        return build(fetch_hub_root(hub, split, quiet))
    folder = Path(root)
    try:
        return build(folder)
    except DatasetLayoutError as err:
        if not has_source(name):
            raise
        try:
            source = dataset_source(name, language)
        except UnknownNameError:
            raise err from None
        if all(item.done for item in fetch_items(source, folder, split)):
            raise _with_manual_part(err, source) from None
        if is_offline():
            raise offline_error(f"{err}\n{name} is not in {folder}", download_hint(name, folder, language, split)) from None
        fetch_dataset(name, folder, split=split, language=language, quiet=quiet, log=log)
    try:
        return build(folder)
    except DatasetLayoutError as err:
        raise _with_manual_part(err, source) from None


def _with_manual_part(err: DatasetLayoutError, source: DatasetSource) -> DatasetLayoutError:
    """The layout error, with what the user must add by hand where the source cannot fetch everything."""
    if source.manual is None:
        return DatasetLayoutError(f"{err}\nzsbench fetched {source.dataset}'s files into this root (markers in {MARKERS}/); "
                                  "remove that folder to fetch them again.")
    return DatasetLayoutError(f"{err}\nzsbench fetches the rest of {source.dataset}; put by hand: {source.manual}.")


@dataclass(frozen=True)
class DownloadOptions:
    """`zsbench datasets download`."""

    names: tuple[str, ...]
    root: Path | None = None
    dataset_root: Path | None = None
    languages: tuple[str, ...] = ("en",)
    split: str = "test"
    dry_run: bool = False


def _target(options: DownloadOptions, name: str) -> Path:
    if options.dataset_root is not None:
        return options.dataset_root
    assert options.root is not None
    return options.root / seed_folder(name) if seed_folder(name) else options.root


def _mirror_size(mirror: HubMirror, split: str) -> int | None:
    """The bytes of a mirror's split as the hub lists them (metadata only); None offline or when the hub does not answer."""
    if is_offline():
        return None
    from zsbench.hfhub import split_size

    try:
        return split_size(mirror.repo_id, "dataset", mirror.revision, split)
    except DownloadError:
        return None


def _describe(name: str, language: str, source: DatasetSource, root: Path, split: str) -> list[str]:
    lines = [f"{name} [{language}] -> {root}: {source.origin}"]
    for item in fetch_items(source, root, split):
        if item.done:
            state = "already fetched"
        elif source.mirror is not None and item.size is None:
            size = _mirror_size(source.mirror, split)
            state = human_size(size) if size is not None else "size unknown (the hub lists it when reachable)"
        else:
            state = item.size_text()
        lines.append(f"  {item.name}: {state}; {item.verified}; from {item.origin}")
    if source.manual:
        lines.append(f"  by hand: {source.manual}")
    return lines


def download_datasets(options: DownloadOptions, *, quiet: bool = False, log: Callable[[str], None] = print) -> list[str]:
    """Fetches (or with `dry_run` describes) every (dataset, language) of `options`; returns the result lines.

    A language a dataset has no source for (Flickr30K in jp) is skipped with a line saying so.
    """
    from zsbench.data.collections import expand_collections

    lines: list[str] = []
    seen: set[tuple[str, Path, DatasetSource]] = set()
    for name in expand_collections(list(options.names)):
        if not has_source(name):
            raise UnknownNameError("dataset with a source", name, SOURCES.names())
        for language in options.languages:
            try:
                source = dataset_source(name, language)
            except UnknownNameError as err:
                lines.append(f"{name} [{language}]: skipped: {err}")
                continue
            root = _target(options, name)
            if (name, root, source) in seen:  # a source that is the same in every language is fetched once
                continue
            seen.add((name, root, source))
            if options.dry_run:
                lines += _describe(name, language, source, root, options.split)
                continue
            fetch_dataset(name, root, split=options.split, language=language, quiet=quiet, log=log)
            manual = f"; put by hand: {source.manual}" if source.manual else ""
            lines.append(f"{name} [{language}]: in {root} (zsbench eval --dataset {name} --dataset_root {root}){manual}")
    return lines
