"""`zsbench.data.download` and `zsbench.offline`: https-only fetches that resume, verify and never leave a partial
file in place; archives extracted with path checks; unreachable hosts failing fast, in one line."""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.loopback import LoopbackServer, closed_port, serve
from zsbench.data.download import download_file, extract_archive
from zsbench.errors import DownloadError
from zsbench.offline import check_reachable, check_url

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def server() -> Iterator[tuple[LoopbackServer, str]]:
    yield from serve(LoopbackServer(files={"/data/blob.bin": PAYLOAD}))


def md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()  # noqa: S324 - the catalog's torchvision checksums are md5


def test_a_download_lands_only_after_its_checksum_matches(server: tuple[LoopbackServer, str], tmp_path: Path) -> None:
    state, url = server
    target = download_file(f"{url}/data/blob.bin", tmp_path / "blob.bin", checksum=md5(PAYLOAD), size=len(PAYLOAD), quiet=True)
    assert target.read_bytes() == PAYLOAD
    assert not (tmp_path / "blob.bin.part").exists()


def test_a_download_cut_half_way_resumes_where_it_stopped(server: tuple[LoopbackServer, str], tmp_path: Path) -> None:
    state, url = server
    state.cut_after["/data/blob.bin"] = 300_000  # the server dies after 300 kB
    with pytest.raises(DownloadError, match="run the command again to resume") as failure:
        download_file(f"{url}/data/blob.bin", tmp_path / "blob.bin", checksum=md5(PAYLOAD), size=None, quiet=True)
    assert "\n" not in str(failure.value)
    # Never taken for a whole file: only the .part exists, holding what arrived.
    assert not (tmp_path / "blob.bin").exists()
    assert (tmp_path / "blob.bin.part").read_bytes() == PAYLOAD[:300_000]
    download_file(f"{url}/data/blob.bin", tmp_path / "blob.bin", checksum=md5(PAYLOAD), size=None, quiet=True)
    assert (tmp_path / "blob.bin").read_bytes() == PAYLOAD
    assert state.content_requests()[-1].headers.get("Range") == "bytes=300000-"


def test_a_checksum_mismatch_removes_the_file_and_names_it(server: tuple[LoopbackServer, str], tmp_path: Path) -> None:
    _, url = server
    with pytest.raises(DownloadError, match="Checksum mismatch for blob.bin") as failure:
        download_file(f"{url}/data/blob.bin", tmp_path / "blob.bin", checksum=md5(b"other bytes"), size=None, quiet=True)
    assert "\n" not in str(failure.value) and "removed" in str(failure.value)
    assert list(tmp_path.iterdir()) == []


def test_a_size_other_than_the_catalog_s_is_refused_before_the_transfer(server: tuple[LoopbackServer, str], tmp_path: Path) -> None:
    state, url = server
    with pytest.raises(DownloadError, match=f"is {len(PAYLOAD)} bytes, but 10 were expected"):
        download_file(f"{url}/data/blob.bin", tmp_path / "blob.bin", checksum=None, size=10, quiet=True)
    assert not (tmp_path / "blob.bin").exists()


def test_a_missing_file_is_one_line_with_the_http_status(server: tuple[LoopbackServer, str], tmp_path: Path) -> None:
    _, url = server
    with pytest.raises(DownloadError, match="HTTP 404") as failure:
        download_file(f"{url}/data/nothing.bin", tmp_path / "x.bin", checksum=None, size=None, quiet=True)
    assert "\n" not in str(failure.value) and f"{url}/data/nothing.bin" in str(failure.value)


def test_plain_http_only_to_loopback() -> None:
    check_url("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz")
    check_url("http://127.0.0.1:8000/x")
    check_url("http://localhost/x")
    for refused in ("http://www.cs.toronto.edu/x", "ftp://127.0.0.1/x", "file:///etc/passwd"):
        with pytest.raises(DownloadError, match="https only"):
            check_url(refused)


def test_a_closed_port_fails_fast_in_one_line_naming_the_host() -> None:
    port = closed_port()
    start = time.monotonic()
    with pytest.raises(DownloadError) as failure:
        check_reachable(f"http://127.0.0.1:{port}/x", "use --offline")
    assert time.monotonic() - start < 15
    message = str(failure.value)
    assert f"Cannot reach 127.0.0.1:{port}" in message and "--offline" in message and "\n" not in message


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as bundle:
        for info, data in members:
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


@pytest.mark.parametrize(
    "members",
    [
        [(_file("ok.txt"), b"fine"), (_file("../escaped.txt"), b"out")],
        [(_file("ok.txt"), b"fine"), (_file("/tmp/zsbench-absolute.txt"), b"out")],
        [(_symlink("link", "../../outside"), b""), (_file("ok.txt"), b"fine")],
    ],
    ids=["dot-dot", "absolute", "symlink-out"],
)
def test_unsafe_tar_members_are_refused_before_anything_is_written(tmp_path: Path, members: list) -> None:
    archive = _tar(tmp_path / "bad.tar.gz", members)
    target = tmp_path / "into" / "deep"
    with pytest.raises(DownloadError, match="Refusing to extract") as failure:
        extract_archive(archive, target)
    assert "\n" not in str(failure.value)
    assert list(target.iterdir()) == []
    assert not (tmp_path / "into" / "escaped.txt").exists() and not Path("/tmp/zsbench-absolute.txt").exists()


@pytest.mark.parametrize("name", ["../escaped.txt", "/tmp/zsbench-absolute.txt", "a/../../escaped.txt"])
def test_unsafe_zip_members_are_refused(tmp_path: Path, name: str) -> None:
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("ok.txt", "fine")
        bundle.writestr(zipfile.ZipInfo(name), "out")
    with pytest.raises(DownloadError, match="Refusing to extract"):
        extract_archive(archive, tmp_path / "into")
    assert list((tmp_path / "into").iterdir()) == []
    assert not (tmp_path / "escaped.txt").exists()


def test_a_zip_symlink_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        link = zipfile.ZipInfo("link")
        link.external_attr = (0o120777 << 16)
        bundle.writestr(link, "../../outside")
    with pytest.raises(DownloadError, match="symbolic link"):
        extract_archive(archive, tmp_path / "into")


def test_safe_archives_extract_in_place(tmp_path: Path) -> None:
    _tar(tmp_path / "good.tar.gz", [(_file("top/a.txt"), b"a"), (_symlink("top/b.txt", "a.txt"), b"")])
    extract_archive(tmp_path / "good.tar.gz", tmp_path / "t")
    assert (tmp_path / "t" / "top" / "b.txt").read_bytes() == b"a"
    with zipfile.ZipFile(tmp_path / "good.zip", "w") as bundle:
        bundle.writestr("z/c.txt", "c")
    extract_archive(tmp_path / "good.zip", tmp_path / "z")
    assert (tmp_path / "z" / "z" / "c.txt").read_text() == "c"


def test_a_verified_file_already_in_place_is_not_fetched_again(server: tuple[LoopbackServer, str], tmp_path: Path) -> None:
    """An archive whose extraction was cut short stays, verified: the next run uses it; a wrong one is fetched anew."""
    state, url = server
    (tmp_path / "blob.bin").write_bytes(PAYLOAD)
    download_file(f"{url}/data/blob.bin", tmp_path / "blob.bin", checksum=md5(PAYLOAD), size=None, quiet=True)
    assert state.content_requests() == []
    (tmp_path / "blob.bin").write_bytes(b"damaged")
    download_file(f"{url}/data/blob.bin", tmp_path / "blob.bin", checksum=md5(PAYLOAD), size=None, quiet=True)
    assert (tmp_path / "blob.bin").read_bytes() == PAYLOAD and len(state.content_requests()) == 1
