"""Fetching one file over https, verified and resumable, and extracting archives with path checks.

`download_file` writes to ``<name>.part`` beside the target and renames it into place only after its
size and checksum match; an interrupted download leaves the ``.part``, which the next call resumes
with an HTTP range request (or restarts, when the server ignores the range), so a partial file is
never taken for a whole one. A checksum mismatch removes the file and names it.

`extract_archive` unpacks .tar/.tar.gz/.tgz with tarfile's ``data`` filter (no absolute paths, no
``..``, no links leaving the target, no device files) and .zip with the same checks done here;
a lone .gz is decompressed. Nothing runs a shell.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable
from http.client import HTTPException, HTTPResponse
from pathlib import Path, PurePosixPath
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import HTTPRedirectHandler, Request, build_opener

from zsbench.errors import DownloadError
from zsbench.offline import check_url

CHUNK = 1 << 20
READ_TIMEOUT = 60.0  # seconds without a byte before a transfer is given up (it resumes on the next run)
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip", ".gz")
_HASHES = ("md5", "sha1", "sha256")


class _CheckedRedirects(HTTPRedirectHandler):
    """Follows redirects only to URLs `check_url` allows (no downgrade to plain http)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        check_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def parse_checksum(checksum: str) -> tuple[str, str]:
    """``"sha256:<hex>"`` -> (algorithm, hex digest)."""
    algorithm, _, digest = checksum.partition(":")
    if algorithm not in _HASHES or not digest:
        raise ValueError(f"checksum {checksum!r} is not <{'|'.join(_HASHES)}>:<hex digest>")
    return algorithm, digest.lower()


def file_digest(path: Path, algorithm: str) -> str:
    """The hex digest of a whole file."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _open(url: str, start: int) -> HTTPResponse:
    check_url(url)
    headers = {"User-Agent": "zsbench", "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        return build_opener(_CheckedRedirects()).open(Request(url, headers=headers), timeout=READ_TIMEOUT)
    except HTTPError as err:
        if err.code == 416 and start:  # the .part already holds every byte
            return err  # type: ignore[return-value]
        raise DownloadError(f"Cannot fetch {url}: HTTP {err.code} {err.reason}.") from err
    except (URLError, HTTPException, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"Cannot fetch {url}: {reason}. Run the command again to resume.") from err


def _total_size(response: HTTPResponse, start: int) -> int | None:
    """The whole file's size, from Content-Range (a resumed transfer) or Content-Length."""
    content_range = response.headers.get("Content-Range", "")
    if response.status == 206 and "/" in content_range and not content_range.endswith("*"):
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    return int(length) + (start if response.status == 206 else 0) if length and length.isdigit() else None


def _progress(total: int | None, initial: int, name: str, quiet: bool):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                disable=True if quiet else None, leave=False)  # None: no bar when stderr is no terminal


def download_file(url: str, target: Path, *, checksum: str | None, size: int | None, quiet: bool = False) -> Path:
    """Fetches `url` to `target` (see the module docstring); returns `target`.

    Args:
        checksum: ``"<md5|sha1|sha256>:<hex>"`` the file must have, or None where no source publishes one
            (the size is then the only check).
        size: the size in bytes the file must have, where known; else the server's own.

    Raises:
        DownloadError: naming the URL or the file: HTTP errors, a transfer cut short (the ``.part`` stays,
            for the next run to resume), a size or checksum mismatch (the file is removed).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file() and _matches(target, checksum, size):  # fetched earlier, its extraction cut short
        return target
    target.unlink(missing_ok=True)
    part = target.with_name(target.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    response = _open(url, start)
    with response:
        if response.status == 416:
            expected = size if size is not None else start
        else:
            if start and response.status != 206:
                start = 0  # the server ignored the range: start over
            expected = _total_size(response, start)
            if size is not None and expected is not None and expected != size:
                raise DownloadError(f"{url} is {expected} bytes, but {size} were expected: not fetched. Is the source (or the mirror) right?")
            expected = size if size is not None else expected
            with part.open("ab" if start else "wb") as sink, _progress(expected, start, target.name, quiet) as bar:
                written = start
                try:
                    for block in iter(lambda: response.read(CHUNK), b""):
                        sink.write(block)
                        written += len(block)
                        bar.update(len(block))
                except (HTTPException, OSError) as err:
                    raise DownloadError(
                        f"Fetching {url} stopped after {written} bytes ({type(err).__name__}: {err}); "
                        f"{part} is kept: run the command again to resume."
                    ) from err
    got = part.stat().st_size
    if expected is not None and got != expected:
        raise DownloadError(f"Fetching {url} stopped after {got} of {expected} bytes; {part} is kept: run the command again to resume.")
    if checksum is not None:
        algorithm, wanted = parse_checksum(checksum)
        found = file_digest(part, algorithm)
        if found != wanted:
            part.unlink()
            raise DownloadError(f"Checksum mismatch for {target.name} from {url}: {algorithm} {found}, expected {wanted}. "
                                "The file was removed; run the command again, or check the source (or the mirror).")
    os.replace(part, target)
    return target


def _matches(path: Path, checksum: str | None, size: int | None) -> bool:
    """Whether a file already there is the one to fetch: its size and checksum, where known, match (neither known: no)."""
    if checksum is None and size is None:
        return False
    if size is not None and path.stat().st_size != size:
        return False
    if checksum is None:
        return True
    algorithm, wanted = parse_checksum(checksum)
    return file_digest(path, algorithm) == wanted


def _inside(root: Path, name: str) -> Path:
    """The path `name` extracts to under `root`, refused when it is absolute or leaves `root`."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise DownloadError(f"member {name!r} would be written outside {root}")
    return root.joinpath(*pure.parts)


def _extract_zip(archive: Path, into: Path) -> None:
    with zipfile.ZipFile(archive) as bundle:
        members = bundle.infolist()
        for member in members:  # every member is checked before anything is written
            _inside(into, member.filename)
            if stat.S_ISLNK(member.external_attr >> 16):
                raise DownloadError(f"member {member.filename!r} is a symbolic link (zsbench extracts none from zip files)")
        for member in members:
            destination = _inside(into, member.filename)
            if member.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(member) as source, destination.open("wb") as sink:
                shutil.copyfileobj(source, sink, CHUNK)


def _extract_tar(archive: Path, into: Path) -> None:
    with tarfile.open(archive) as bundle:
        members = bundle.getmembers()
        for member in members:  # every member is checked before anything is written
            _inside(into, member.name)  # absolute names are refused, not stripped as the data filter would
        if hasattr(tarfile, "data_filter"):
            for member in members:
                try:
                    tarfile.data_filter(member, str(into))
                except tarfile.FilterError as err:
                    raise DownloadError(str(err)) from err
            bundle.extractall(into, members, filter="data")
            return
        # Pythons without extraction filters (3.10 before 3.10.12): the same rules, checked here.
        for member in members:
            if member.issym() or member.islnk():
                target = PurePosixPath(member.name).parent / member.linkname if member.issym() else PurePosixPath(member.linkname)
                _inside(into, str(target))
            elif not (member.isfile() or member.isdir()):
                raise DownloadError(f"member {member.name!r} is a device or FIFO")
        bundle.extractall(into)  # noqa: S202 - every member checked above


def _gunzip(archive: Path, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    with gzip.open(archive, "rb") as source, (into / archive.name.removesuffix(".gz")).open("wb") as sink:
        shutil.copyfileobj(source, sink, CHUNK)


def is_archive(name: str) -> bool:
    """Whether `name` is a kind of archive `extract_archive` unpacks."""
    return name.endswith(ARCHIVE_SUFFIXES)


def extract_archive(archive: Path, into: Path) -> None:
    """Unpacks `archive` into the folder `into` (see the module docstring).

    Raises:
        DownloadError: a member that would leave `into` (absolute, ``..``, a link out), or an unreadable archive.
    """
    into.mkdir(parents=True, exist_ok=True)
    extractors: dict[str, Callable[[Path, Path], None]] = {".zip": _extract_zip, ".gz": _gunzip}
    name = archive.name
    kind = ".zip" if name.endswith(".zip") else ".gz" if name.endswith(".gz") and not name.endswith(".tar.gz") else ".tar"
    try:
        (extractors.get(kind) or _extract_tar)(archive, into)
    except DownloadError as err:
        raise DownloadError(f"Refusing to extract {archive}: {err}. The archive is unsafe; it was not unpacked.") from err
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
        raise DownloadError(f"Cannot extract {archive}: {err}. Remove it and fetch it again.") from err


def host_of(url: str) -> str:
    """The host a URL names (for one-line messages)."""
    return urlsplit(url).hostname or url
