"""A small, dependency-free GGUF reader: validates a file before any runtime sees it.

It reads the header, the metadata and the tensor table, and checks that every
tensor's data lies inside the file, so a text file or a truncated download
gives :class:`InvalidModelFile` instead of a crash inside a runtime.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidModelFile, ModelNotFound

__all__ = ["GGUFInfo", "read_gguf"]

_MAGIC = b"GGUF"
# ggml type id -> (bytes per block, elements per block)
_TYPE_SIZES = {
    0: (4, 1), 1: (2, 1), 2: (18, 32), 3: (20, 32), 6: (22, 32), 7: (24, 32), 8: (34, 32),
    9: (36, 32), 10: (84, 256), 11: (110, 256), 12: (144, 256), 13: (176, 256), 14: (210, 256),
    15: (292, 256), 16: (66, 256), 17: (74, 256), 18: (98, 256), 19: (50, 256), 20: (18, 32),
    21: (110, 256), 22: (82, 256), 23: (136, 256), 24: (1, 1), 25: (2, 1), 26: (4, 1),
    27: (8, 1), 28: (8, 1), 29: (56, 256), 30: (2, 1), 34: (54, 256), 35: (66, 256),
    39: (17, 32),
}  # fmt: skip
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}  # fmt: skip
_STRING, _ARRAY = 8, 9
_MAX_STRING = 64 << 20


@dataclass(frozen=True)
class GGUFInfo:
    """What slmkit needs from a GGUF without loading it."""

    path: Path
    version: int
    metadata: dict[str, Any]
    tensor_count: int

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) else None

    @property
    def context_length(self) -> int | None:
        value = self.metadata.get(f"{self.architecture}.context_length")
        return int(value) if isinstance(value, int) else None


class _Reader:
    """Parses from a memory map: the token tables hold ~10^5 strings, so no per-item I/O."""

    def __init__(self, data: mmap.mmap | bytes, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def read(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise self.invalid("the file ends inside its header (truncated download?)")
        chunk = self.data[self.pos : end]
        self.pos = end
        return bytes(chunk)

    def scalar(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise self.invalid("the file ends inside its header (truncated download?)")
        value = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += size
        return value

    def string(self) -> str:
        length = self.scalar("<Q")
        if length > _MAX_STRING:
            raise self.invalid("a metadata string is implausibly long (corrupt file?)")
        return self.read(length).decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        data, pos, unpack = self.data, self.pos, struct.unpack_from
        for _ in range(count):
            pos += 8 + unpack("<Q", data, pos)[0]
        if pos > len(data):
            raise self.invalid("the file ends inside its header (truncated download?)")
        self.pos = pos

    def value(self, kind: int, keep: bool) -> Any:
        if kind in _SCALARS:
            return self.scalar(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item_kind, count = self.scalar("<I"), self.scalar("<Q")
            if not keep and item_kind in _SCALARS:
                self.pos += struct.calcsize(_SCALARS[item_kind]) * count
                return None
            if not keep and item_kind == _STRING:
                self.skip_strings(count)
                return None
            items = [self.value(item_kind, keep) for _ in range(count)]
            return items if keep else None
        raise self.invalid(f"unknown metadata value type {kind} (corrupt file?)")

    def invalid(self, why: str) -> InvalidModelFile:
        return InvalidModelFile(
            f"{self.path} is not a valid GGUF model: {why}; re-download or re-convert it"
        )


_KEEP_ARRAYS = ("tokenizer.ggml.eos_token_ids",)


def read_gguf(path: str | Path) -> GGUFInfo:
    """Validate ``path`` as a complete GGUF file and return its metadata."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelNotFound(f"model file {path} does not exist; check the path")
    if not path.is_file():
        raise InvalidModelFile(f"{path} is a directory, not a GGUF file; pass the .gguf file")
    size = path.stat().st_size
    if size < 24:
        raise InvalidModelFile(f"{path} is not a valid GGUF model: only {size} bytes")
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        reader = _Reader(data, path)
        if reader.read(4) != _MAGIC:
            raise reader.invalid("it does not start with the GGUF magic bytes")
        version = reader.scalar("<I")
        if version not in (2, 3):
            raise reader.invalid(f"unsupported GGUF version {version}")
        tensor_count, kv_count = reader.scalar("<Q"), reader.scalar("<Q")
        if tensor_count > 1_000_000 or kv_count > 1_000_000:
            raise reader.invalid("implausible tensor or metadata count (corrupt header)")
        metadata: dict[str, Any] = {}
        for _ in range(kv_count):
            key = reader.string()
            kind = reader.scalar("<I")
            value = reader.value(kind, keep=key in _KEEP_ARRAYS)
            if value is not None:
                metadata[key] = value
        data_end = 0
        for _ in range(tensor_count):
            reader.string()
            dims = [reader.scalar("<Q") for _ in range(reader.scalar("<I"))]
            ggml_type, offset = reader.scalar("<I"), reader.scalar("<Q")
            block = _TYPE_SIZES.get(ggml_type)
            elements = 1
            for d in dims:
                elements *= d
            nbytes = elements * block[0] // block[1] if block else 0
            data_end = max(data_end, offset + nbytes)
        alignment = int(metadata.get("general.alignment", 32)) or 32
        data_start = -(-reader.pos // alignment) * alignment
    if data_start + data_end > size:
        missing = data_start + data_end - size
        raise reader.invalid(f"it is truncated: {missing} bytes of tensor data are missing")
    return GGUFInfo(path=path, version=version, metadata=metadata, tensor_count=tensor_count)
