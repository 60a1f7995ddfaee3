from __future__ import annotations

import struct
from pathlib import Path

import pytest

from slmkit import errors
from slmkit.gguf import read_gguf


def write_gguf(path: Path, tensor_bytes: int, data: bytes) -> Path:
    """A minimal valid GGUF v3: one metadata string and one F32 tensor."""

    def string(s: str) -> bytes:
        raw = s.encode()
        return struct.pack("<Q", len(raw)) + raw

    header = b"GGUF" + struct.pack("<IQQ", 3, 1, 1)
    header += string("general.architecture") + struct.pack("<I", 8) + string("tiny")
    header += string("w") + struct.pack("<I", 1) + struct.pack("<Q", tensor_bytes // 4)
    header += struct.pack("<IQ", 0, 0)  # F32, offset 0
    header += b"\0" * (-len(header) % 32)
    path.write_bytes(header + data)
    return path


def test_reads_metadata_of_a_complete_file(tmp_path: Path) -> None:
    info = read_gguf(write_gguf(tmp_path / "m.gguf", 64, b"\1" * 64))
    assert info.architecture == "tiny" and info.tensor_count == 1 and info.version == 3


def test_truncated_tensor_data_is_an_invalid_model_file(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", 64, b"\1" * 40)
    with pytest.raises(errors.InvalidModelFile, match="truncated: 24 bytes"):
        read_gguf(path)


def test_text_file_named_gguf_is_an_invalid_model_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.gguf"
    path.write_text("these are my notes, not a model\n" * 3)
    with pytest.raises(errors.InvalidModelFile, match="magic"):
        read_gguf(path)


def test_tiny_file_is_an_invalid_model_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"GGUF")
    with pytest.raises(errors.InvalidModelFile):
        read_gguf(path)


def test_header_cut_inside_metadata_is_an_invalid_model_file(tmp_path: Path) -> None:
    full = write_gguf(tmp_path / "m.gguf", 64, b"\1" * 64).read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(full[:40])
    with pytest.raises(errors.InvalidModelFile, match="ends inside its header"):
        read_gguf(cut)


def test_missing_file_is_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(errors.ModelNotFound, match="does not exist"):
        read_gguf(tmp_path / "nope.gguf")


def test_a_directory_is_not_a_gguf(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidModelFile, match="directory"):
        read_gguf(tmp_path)
