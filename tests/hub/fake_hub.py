"""A Hugging Face hub on 127.0.0.1, speaking the protocol huggingface_hub's client uses.

Endpoints (as huggingface_hub 2.x calls them):

- ``GET /api/models/{repo}/revision/{rev}[?blobs=true]``: model info, siblings with
  size, git blob id and LFS sha256 (``model_info(files_metadata=True)``);
- ``GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=...``: the file listing
  (``list_repo_tree``, which ``snapshot_download`` calls);
- ``HEAD|GET /{repo}/resolve/{rev}/{path}``: X-Repo-Commit, ETag (sha256 for LFS files,
  git's blob sha1 otherwise), X-Linked-Etag/X-Linked-Size for LFS, Content-Length;
  GET honours ``Range: bytes=N-`` with 206.

Faults, set per test: ``cut_after`` (send that many bytes of a file, then drop the
connection, ``cuts`` times), ``corrupt`` (paths served with one byte flipped),
``wrong_etag`` (paths whose HEAD ETag is not the content's hash), gated repos
(401 ``X-Error-Code: GatedRepo`` on file requests without the token).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".gguf", ".onnx", ".data", ".safetensors", ".bin")
_REPO = r"(?P<repo>[^/]+/[^/]+)"


@dataclass
class HubFile:
    """One file of a repo: bytes in memory, or a file on disk (served in chunks)."""

    data: bytes | None = None
    source: Path | None = None
    _sha256: str | None = None
    _git_sha1: str | None = None

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.source.stat().st_size  # type: ignore[union-attr]

    def chunks(self, start: int) -> Any:
        if self.data is not None:
            yield self.data[start:]
            return
        with self.source.open("rb") as stream:  # type: ignore[union-attr]
            stream.seek(start)
            while block := stream.read(1 << 20):
                yield block

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            digest = hashlib.sha256()
            for block in self.chunks(0):
                digest.update(block)
            self._sha256 = digest.hexdigest()
        return self._sha256

    @property
    def git_sha1(self) -> str:
        if self._git_sha1 is None:
            digest = hashlib.sha1(f"blob {self.size}\0".encode())
            for block in self.chunks(0):
                digest.update(block)
            self._git_sha1 = digest.hexdigest()
        return self._git_sha1

    def is_lfs(self, path: str) -> bool:
        return path.endswith(LFS_SUFFIXES) or self.size > 1_000_000


@dataclass
class Repo:
    files: dict[str, HubFile]
    gated: bool = False
    commit: str = "1f2e3d4c5b6a79880716253443526170f1e2d3c4"


@dataclass
class FakeHub:
    repos: dict[str, Repo] = field(default_factory=dict)
    token: str = "hf_test_token_0123456789"
    cut_after: int | None = None
    cuts: int = 0
    corrupt: set[str] = field(default_factory=set)
    wrong_etag: set[str] = field(default_factory=set)
    #: (method, path, Range header or None) of every request, in order.
    log: list[tuple[str, str, str | None]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def add(self, repo: str, files: dict[str, bytes | Path | HubFile], gated: bool = False) -> Repo:
        entries = {name: _as_file(v) for name, v in files.items()}
        self.repos[repo] = Repo(entries, gated)
        return self.repos[repo]

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            state = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def gets(self, path_suffix: str) -> list[str | None]:
        """The Range headers of the GETs of one file."""
        return [r for m, p, r in self.log if m == "GET" and p.endswith("/" + path_suffix)]


class _Handler(BaseHTTPRequestHandler):
    state: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._route(body=False)

    def do_GET(self) -> None:
        self._route(body=True)

    def _route(self, body: bool) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        self.state.log.append((self.command, path, self.headers.get("Range")))
        if m := re.fullmatch(rf"/api/models/{_REPO}(?:/revision/(?P<rev>[^/]+))?", path):
            return self._model_info(m["repo"])
        if m := re.fullmatch(rf"/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<sub>.*))?", path):
            return self._tree(m["repo"], m["sub"] or "")
        if m := re.fullmatch(rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", path):
            return self._resolve(m["repo"], m["file"], body)
        self._error(404, "RepoNotFound", "not found")

    # -- API --------------------------------------------------------------------------

    def _repo(self) -> Repo | None:
        match = re.match(rf"/(?:api/models/)?{_REPO}", unquote(urlsplit(self.path).path))
        return self.state.repos.get(match["repo"]) if match else None

    def _model_info(self, name: str) -> None:
        repo = self._repo()
        if repo is None:
            return self._error(401, "RepoNotFound", "Repository not found")
        siblings = []
        for path, file in sorted(repo.files.items()):
            entry: dict[str, Any] = {"rfilename": path, "size": file.size, "blobId": file.git_sha1}
            if file.is_lfs(path):
                entry["lfs"] = {"sha256": file.sha256, "size": file.size, "pointerSize": 134}
            siblings.append(entry)
        gated = "auto" if repo.gated else False
        info = {"id": name, "modelId": name, "sha": repo.commit, "private": False, "gated": gated}
        # fields the hub always sends (older clients require them)
        info |= {"downloads": 0, "likes": 0, "tags": [], "lastModified": "2026-12-01T00:00:00.000Z"}
        self._json({**info, "siblings": siblings})

    def _tree(self, name: str, sub: str) -> None:
        repo = self._repo()
        if repo is None:
            return self._error(401, "RepoNotFound", "Repository not found")
        query = parse_qs(urlsplit(self.path).query)
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        prefix = f"{sub.rstrip('/')}/" if sub else ""
        entries = []
        for path, file in sorted(repo.files.items()):
            if not path.startswith(prefix) or (not recursive and "/" in path[len(prefix) :]):
                continue
            entry: dict[str, Any] = {
                "type": "file",
                "oid": file.git_sha1,
                "size": file.size,
                "path": path,
            }
            if file.is_lfs(path):
                entry["lfs"] = {"oid": file.sha256, "size": file.size, "pointerSize": 134}
            entries.append(entry)
        self._json(entries)

    # -- files ------------------------------------------------------------------------

    def _resolve(self, name: str, path: str, body: bool) -> None:
        repo = self._repo()
        if repo is None:
            return self._error(401, "RepoNotFound", "Repository not found")
        if repo.gated and self.headers.get("Authorization") != f"Bearer {self.state.token}":
            return self._error(401, "GatedRepo", f"Access to model {name} is restricted.")
        file = repo.files.get(path)
        if file is None:
            return self._error(404, "EntryNotFound", f"{path} does not exist", repo.commit)
        etag = file.sha256 if file.is_lfs(path) else file.git_sha1
        if path in self.state.wrong_etag:
            etag = hashlib.sha256(b"not this file").hexdigest()
        start = _range_start(self.headers.get("Range"))
        self.send_response(206 if start else 200)
        self.send_header("X-Repo-Commit", repo.commit)
        self.send_header("ETag", f'"{etag}"')
        if file.is_lfs(path):
            self.send_header("X-Linked-Etag", f'"{etag}"')
            self.send_header("X-Linked-Size", str(file.size))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(file.size - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{file.size - 1}/{file.size}")
        self.end_headers()
        if body:
            self._send_body(file, path, start)

    def _send_body(self, file: HubFile, path: str, start: int) -> None:
        state = self.state
        limit = None
        if state.cut_after is not None and state.cuts > 0 and file.size - start > state.cut_after:
            state.cuts -= 1
            limit = state.cut_after
        sent, first = 0, True
        for block in file.chunks(start):
            if first and start == 0 and path in state.corrupt:
                block = bytes([block[0] ^ 0xFF]) + block[1:]
            first = False
            if limit is not None and sent + len(block) >= limit:
                self.wfile.write(block[: limit - sent])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # the network breaks mid-file
                self.close_connection = True
                return
            self.wfile.write(block)
            sent += len(block)

    def _json(self, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, code: str, message: str, commit: str | None = None) -> None:
        data = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def _as_file(value: bytes | Path | HubFile) -> HubFile:
    if isinstance(value, HubFile):
        return value  # shared between tests: its hashes are computed once
    return HubFile(source=value) if isinstance(value, Path) else HubFile(data=value)


def _range_start(header: str | None) -> int:
    if not header:
        return 0
    match = re.fullmatch(r"bytes=(\d+)-", header.strip())
    return int(match[1]) if match else 0
