"""A server on 127.0.0.1 for the fetch tests: static files (a stand-in for dataset hosts, reached through
``ZSBENCH_DATA_MIRROR``) and the Hugging Face hub endpoints huggingface_hub 2.x calls (reached through
``HF_ENDPOINT``), with every request recorded.

The hub endpoints, as read from huggingface_hub's source (``hf_api.py``, ``file_download.py``,
``_snapshot_download.py``):

- ``GET /api/{models|datasets}/<org>/<repo>/revision/<rev>``: repository info; ``sha`` is the commit.
- ``GET /api/{models|datasets}/<org>/<repo>/tree/<rev>[/<path>]?recursive=..``: the file listing
  (``oid``: git blob sha1; ``lfs.oid``: sha256 of LFS files), one page (no ``Link`` header).
- ``HEAD|GET /[datasets/]<org>/<repo>/resolve/<rev>/<path>``: ``X-Repo-Commit``, ``ETag`` (git sha1, or for
  LFS files ``X-Linked-Etag``: the sha256, and ``X-Linked-Size``), ``Content-Length``; GET honours ``Range``.
  A missing repository answers 404 with ``X-Error-Code: RepoNotFound``, a missing file ``EntryNotFound``.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS_SUFFIXES = (".tar", ".safetensors", ".pth", ".bin", ".model", ".gz", ".zip")
_API = re.compile(r"^/api/(models|datasets)/([^/]+/[^/]+)/(revision|tree)/([^/]+)(?:/(.*))?$")
_RESOLVE = re.compile(r"^/(datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324 - git's object id


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by its path relative to it (``/``-separated)."""
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class LoopbackServer:
    """Serves `files` (URL path -> bytes) and hub `repos` ((``model``|``dataset``, repo id) -> path -> bytes).

    `corrupt` holds hub paths served with other bytes than the listing records (a checksum test);
    `cut_after` makes the next GET of a path stop after that many bytes and close the connection
    (a download killed half way); `requests` records every request.
    """

    files: dict[str, bytes] = field(default_factory=dict)
    repos: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    corrupt: set[str] = field(default_factory=set)
    cut_after: dict[str, int] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def content_requests(self, needle: str = "") -> list[Request]:
        """GETs of file contents (static files or hub resolve URLs) whose path contains `needle`."""
        return [r for r in self.requests if r.method == "GET" and not r.path.startswith("/api/") and needle in r.path]

    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    server_state: LoopbackServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        del format, args

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        state = self.server_state
        path = unquote(urlsplit(self.path).path)
        state.requests.append(Request(self.command, path, dict(self.headers.items())))
        api = _API.match(path)
        if api:
            self._api(api.group(1).removesuffix("s"), api.group(2), api.group(3), api.group(4), api.group(5) or "")
            return
        resolve = _RESOLVE.match(path)
        if resolve:
            self._resolve("dataset" if resolve.group(1) else "model", resolve.group(2), resolve.group(3), resolve.group(4), body)
            return
        if path in state.files:
            self._send_bytes(path, state.files[path], {}, body)
            return
        self._reply(404, b"not found", {})

    def _repo(self, repo_type: str, repo_id: str) -> dict[str, bytes] | None:
        repo = self.server_state.repos.get((repo_type, repo_id))
        if repo is None:
            self._reply(404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"})
        return repo

    def _revision(self, revision: str) -> bool:
        """Whether `revision` exists (the default branch and the one commit); else a 404 RevisionNotFound."""
        if revision in ("main", COMMIT):
            return True
        self._reply(404, b'{"error": "Invalid rev id"}', {"X-Error-Code": "RevisionNotFound"})
        return False

    def _api(self, repo_type: str, repo_id: str, kind: str, revision: str, folder: str) -> None:
        repo = self._repo(repo_type, repo_id)
        if repo is None or not self._revision(revision):
            return
        if kind == "revision":
            info = {"id": repo_id, "sha": COMMIT, "siblings": [{"rfilename": name} for name in repo]}
            self._reply(200, json.dumps(info).encode(), {"Content-Type": "application/json"})
            return
        entries = []
        for name, data in sorted(repo.items()):
            if folder and not name.startswith(folder.rstrip("/") + "/"):
                continue
            entry = {"type": "file", "path": name, "size": len(data), "oid": git_blob_sha1(data)}
            if name.endswith(LFS_SUFFIXES):
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 130}
            entries.append(entry)
        self._reply(200, json.dumps(entries).encode(), {"Content-Type": "application/json"})

    def _resolve(self, repo_type: str, repo_id: str, revision: str, name: str, body: bool) -> None:
        repo = self._repo(repo_type, repo_id)
        if repo is None or not self._revision(revision):
            return
        if name not in repo:
            self._reply(404, b'{"error": "Entry not found"}', {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT})
            return
        data = repo[name]
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{git_blob_sha1(data)}"'}
        if name.endswith(LFS_SUFFIXES):
            headers.update({"X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Linked-Size": str(len(data))})
        if name in self.server_state.corrupt:
            data = bytes(reversed(data))
        self._send_bytes(name, data, headers, body)

    def _send_bytes(self, key: str, data: bytes, headers: dict[str, str], body: bool) -> None:
        start, status = 0, 200
        ranged = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
        if ranged and body:
            start = int(ranged.group(1))
            if start >= len(data):
                self._reply(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                return
            status = 206
            headers = {**headers, "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
        payload = data[start:]
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(payload)), "Accept-Ranges": "bytes"}.items():
            self.send_header(name, value)
        self.end_headers()
        if not body:
            return
        cut = self.server_state.cut_after.pop(key, None)
        if cut is not None:
            self.wfile.write(payload[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(payload)

    def _reply(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(payload))}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def serve(server: LoopbackServer) -> Iterator[tuple[LoopbackServer, str]]:
    """A fixture body: starts `server`, yields it with its base URL, stops it."""
    url = server.start()
    try:
        yield server, url
    finally:
        server.stop()


def error_line(output: str) -> str:
    """The error of a failed command, checked to be one line and the last (progress lines and bars may precede it)."""
    lines = [line for line in output.replace("\r", "\n").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in output, output
    return errors[0]


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
