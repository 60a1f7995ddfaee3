"""What a conversion source *is*: a content hash, computed again only when the file changes.

Keying the cache by name and size served one model's artifact for another file of the
same size. Hashing a 500 MB GGUF takes about a second, so the hash is remembered next
to a cheap stamp (size and modification time of every file); a changed stamp means
hashing again, never trusting the old hash.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..paths import cache_dir

__all__ = ["content_identity"]

_CHUNK = 1 << 20


def content_identity(path: Path) -> str:
    """``sha256:<hex>`` of a file, or of a folder's files (their relative paths and bytes)."""
    path = path.resolve()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    stamp = [[_relative(f, path), f.stat().st_size, f.stat().st_mtime_ns] for f in files]
    memo = cache_dir("identity") / f"{hashlib.sha256(str(path).encode()).hexdigest()[:32]}.json"
    try:
        remembered = json.loads(memo.read_text())
        if remembered["stamp"] == stamp:
            return str(remembered["identity"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = hashlib.sha256()
    for file in files:
        digest.update(_relative(file, path).encode() + b"\0")
        with file.open("rb") as handle:
            while block := handle.read(_CHUNK):
                digest.update(block)
    identity = f"sha256:{digest.hexdigest()}"
    memo.parent.mkdir(parents=True, exist_ok=True)
    temporary = memo.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"stamp": stamp, "identity": identity}))
    temporary.replace(memo)
    return identity


def _relative(file: Path, root: Path) -> str:
    return file.name if file == root else file.relative_to(root).as_posix()
