"""A small, dependency-free GGUF reader: validates a file before any runtime sees it.

It reads the header, the metadata and the tensor table, and checks that every
tensor's data lies inside the file, so a text file, a truncated download or a
corrupt header gives :class:`InvalidModelFile` instead of a crash inside a runtime.
Every count and length is checked against the bytes left in the file before
anything is read or allocated, so no header, however damaged, makes the reader
hang or allocate more than the file holds.
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
# ggml type id -> (name, bytes per block, elements per block)
_TYPES = {
    0: ("F32", 4, 1), 1: ("F16", 2, 1), 2: ("Q4_0", 18, 32), 3: ("Q4_1", 20, 32),
    6: ("Q5_0", 22, 32), 7: ("Q5_1", 24, 32), 8: ("Q8_0", 34, 32), 9: ("Q8_1", 36, 32),
    10: ("Q2_K", 84, 256), 11: ("Q3_K", 110, 256), 12: ("Q4_K", 144, 256),
    13: ("Q5_K", 176, 256), 14: ("Q6_K", 210, 256), 15: ("Q8_K", 292, 256),
    16: ("IQ2_XXS", 66, 256), 17: ("IQ2_XS", 74, 256), 18: ("IQ3_XXS", 98, 256),
    19: ("IQ1_S", 50, 256), 20: ("IQ4_NL", 18, 32), 21: ("IQ3_S", 110, 256),
    22: ("IQ2_S", 82, 256), 23: ("IQ4_XS", 136, 256), 24: ("I8", 1, 1), 25: ("I16", 2, 1),
    26: ("I32", 4, 1), 27: ("I64", 8, 1), 28: ("F64", 8, 1), 29: ("IQ1_M", 56, 256),
    30: ("BF16", 2, 1), 34: ("TQ1_0", 54, 256), 35: ("TQ2_0", 66, 256), 39: ("MXFP4", 17, 32),
}  # fmt: skip
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}  # fmt: skip
_STRING, _ARRAY = 8, 9
_MAX_STRING = 64 << 20
_MAX_COUNT = 1_000_000  # tensors, metadata keys
_MAX_DIMS = 4  # GGML_MAX_DIMS
_MAX_NESTING = 8  # arrays of arrays: real files use none


@dataclass(frozen=True)
class GGUFInfo:
    """What slmkit needs from a GGUF without loading it."""

    path: Path
    version: int
    metadata: dict[str, Any]
    tensor_count: int
    #: Where the tensor data starts (the header's size, aligned).
    data_offset: int = 0
    #: The ggml types of its tensors ("Q4_K", "Q6_K", "F32", ...): its quantization mix.
    tensor_types: frozenset[str] = frozenset()

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

    def need(self, n: int) -> None:
        """Raise unless ``n`` more bytes are left: every read and skip asks first."""
        if self.pos + n > len(self.data):
            raise self.invalid(
                f"it is truncated: the file ends inside its header ({len(self.data)} bytes, "
                f"{self.pos + n} needed; an incomplete download?)"
            )

    def read(self, n: int) -> bytes:
        self.need(n)
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return bytes(chunk)

    def skip(self, n: int) -> None:
        self.need(n)
        self.pos += n

    def scalar(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        self.need(size)
        value = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += size
        return value

    def count(self, item_bytes: int) -> int:
        """A u64 count of items of at least ``item_bytes`` each that must fit in the file."""
        count: int = self.scalar("<Q")
        self.need(count * item_bytes)
        return count

    def string(self) -> str:
        length = self.scalar("<Q")
        if length > _MAX_STRING:
            raise self.invalid("a metadata string is implausibly long (corrupt file?)")
        return self.read(length).decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        data, pos, end, unpack = self.data, self.pos, len(self.data), struct.unpack_from
        for _ in range(count):
            if pos + 8 > end:
                self.pos = pos
                self.need(8)
            pos += 8 + unpack("<Q", data, pos)[0]
        self.pos = pos
        self.need(0)

    def value(self, kind: int, keep: bool, depth: int = 0) -> Any:
        if kind in _SCALARS:
            return self.scalar(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind != _ARRAY:
            raise self.invalid(f"unknown metadata value type {kind} (corrupt file?)")
        if depth >= _MAX_NESTING:
            raise self.invalid("metadata arrays nested implausibly deep (corrupt file?)")
        item_kind = self.scalar("<I")
        if item_kind in _SCALARS:
            item_bytes = struct.calcsize(_SCALARS[item_kind])
        elif item_kind in (_STRING, _ARRAY):
            item_bytes = 8 if item_kind == _STRING else 12  # its length / its type + count
        else:
            raise self.invalid(f"unknown metadata array type {item_kind} (corrupt file?)")
        count = self.count(item_bytes)
        if not keep and item_kind in _SCALARS:
            self.skip(item_bytes * count)
            return None
        if not keep and item_kind == _STRING:
            self.skip_strings(count)
            return None
        items = [self.value(item_kind, keep, depth + 1) for _ in range(count)]
        return items if keep else None

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
        raise InvalidModelFile(
            f"{path} is not a valid GGUF model: only {size} bytes (truncated or empty); "
            "re-download or re-convert it"
        )
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return _parse(_Reader(data, path), size)


def _parse(reader: _Reader, size: int) -> GGUFInfo:
    if reader.read(4) != _MAGIC:
        raise reader.invalid("it does not start with the GGUF magic bytes")
    version = reader.scalar("<I")
    if version not in (2, 3):
        raise reader.invalid(f"unsupported GGUF version {version}")
    tensor_count, kv_count = reader.scalar("<Q"), reader.scalar("<Q")
    if tensor_count > _MAX_COUNT or kv_count > _MAX_COUNT:
        raise reader.invalid("implausible tensor or metadata count (corrupt header)")
    metadata: dict[str, Any] = {}
    for _ in range(kv_count):
        key = reader.string()
        kind = reader.scalar("<I")
        value = reader.value(kind, keep=key in _KEEP_ARRAYS)
        if value is not None:
            metadata[key] = value
    data_end, types = 0, set()
    for _ in range(tensor_count):
        reader.string()
        n_dims = reader.scalar("<I")
        if n_dims > _MAX_DIMS:
            raise reader.invalid(f"a tensor with {n_dims} dimensions (corrupt tensor table)")
        dims = [reader.scalar("<Q") for _ in range(n_dims)]
        ggml_type, offset = reader.scalar("<I"), reader.scalar("<Q")
        name, block_bytes, block_elements = _TYPES.get(ggml_type, (f"type{ggml_type}", 0, 1))
        types.add(name)
        elements = 1
        for d in dims:
            elements *= d
        data_end = max(data_end, offset + elements * block_bytes // block_elements)
    alignment = metadata.get("general.alignment", 32)
    if not isinstance(alignment, int) or isinstance(alignment, bool) or alignment <= 0:
        raise reader.invalid(f"general.alignment is {alignment!r}, not a positive integer")
    data_start = -(-reader.pos // alignment) * alignment
    if data_start + data_end > size:
        missing = data_start + data_end - size
        raise reader.invalid(f"it is truncated: {missing} bytes of tensor data are missing")
    return GGUFInfo(
        path=reader.path,
        version=version,
        metadata=metadata,
        tensor_count=tensor_count,
        data_offset=data_start,
        tensor_types=frozenset(types),
    )
