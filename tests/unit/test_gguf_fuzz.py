"""The GGUF reader on damaged files: a typed error every time, no hang, no memory blow-up.

Two sources: a synthetic GGUF shaped like a real one (tokenizer arrays, nested types,
several tensors), which runs everywhere, and the real Gemma 3 270M header (from the
``test-models`` extra). Files of the real model's full size are the real header
followed by a sparse hole: the reader checks the size, never reads tensor data.
"""

from __future__ import annotations

import struct
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import pytest

hypothesis = pytest.importorskip(
    "hypothesis", reason="hypothesis not installed (pip install hypothesis)"
)
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from slmkit import errors  # noqa: E402
from slmkit.gguf import read_gguf  # noqa: E402

pytestmark = pytest.mark.timeout(120)

FUZZ = settings(
    max_examples=25,
    deadline=5000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
#: Files up to this size are read under tracemalloc (slow: 7x on the real header) and may
#: allocate at most MEMORY_BASE + 4x their size (measured: 10 kB for the real header).
TRACED_SIZE = 1 << 20
MEMORY_BASE = 1 << 20
HUGE = st.sampled_from([2**64 - 1, 2**63, 2**62 + 1, 2**32 - 1, 2**32, 2**31, 1 << 40])


@dataclass(frozen=True, repr=False)
class Source:
    """A valid GGUF header, the file size it declares, and where its fields are."""

    name: str
    header: bytes
    size: int
    #: (offset, byte width) of every count, length, type and dimension field walked.
    fields: tuple[tuple[int, int], ...]
    #: Offsets where a metadata entry or a tensor entry begins.
    boundaries: tuple[int, ...]

    def __repr__(self) -> str:  # hypothesis prints it with every failing example
        return f"<Source {self.name}: {len(self.header)}-byte header, {self.size} bytes>"


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _synthetic() -> tuple[bytes, int]:
    """A small GGUF with the shapes a real one has: strings, scalars, string and int
    arrays, a nested array, and Q4_K / F32 tensors."""
    kvs = [
        _string("general.architecture") + struct.pack("<I", 8) + _string("tiny"),
        _string("tiny.context_length") + struct.pack("<II", 4, 128),
        _string("general.alignment") + struct.pack("<II", 4, 32),
        _string("tokenizer.ggml.tokens")
        + struct.pack("<IIQ", 9, 8, 50)
        + b"".join(_string(f"tok{i}") for i in range(50)),
        _string("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 50) + b"\0" * 200,
        _string("tokenizer.ggml.eos_token_ids")
        + struct.pack("<IIQ", 9, 5, 2)
        + b"\1\0\0\0\2\0\0\0",
        _string("nested") + struct.pack("<IIQ", 9, 9, 1) + struct.pack("<IQ", 4, 2) + b"\0" * 8,
        _string("tokenizer.chat_template") + struct.pack("<I", 8) + _string("{{ messages }}"),
    ]
    tensors = [
        (_string("blk.0.w"), (256, 4), 12, 0),  # Q4_K: 4 blocks of 144 bytes
        (_string("blk.0.norm"), (256,), 0, 576),  # F32
    ]
    table = b"".join(
        name + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        + struct.pack("<IQ", kind, offset)
        for name, dims, kind, offset in tensors
    )  # fmt: skip
    header = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + table
    header += b"\0" * (-len(header) % 32)
    return header, len(header) + 576 + 1024


class _Walker:
    """Walks a valid header recording field offsets; the test's own reading of the format."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0
        self.fields: list[tuple[int, int]] = []
        self.boundaries: list[int] = []

    def field(self, width: int) -> int:
        self.fields.append((self.pos, width))
        value: int = struct.unpack_from("<Q" if width == 8 else "<I", self.data, self.pos)[0]
        self.pos += width
        return value

    def string(self, record: bool = True) -> None:
        if record:
            length = self.field(8)
        else:
            length = struct.unpack_from("<Q", self.data, self.pos)[0]
            self.pos += 8
        self.pos += length

    def value(self, kind: int) -> None:
        sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
        if kind in sizes:
            self.pos += sizes[kind]
        elif kind == 8:
            self.string()
        else:
            item, count = self.field(4), self.field(8)
            for index in range(count):
                if item == 8:
                    self.string(record=index < 3)
                else:
                    self.value(item)

    def walk(self) -> None:
        self.pos = 8
        tensors, kvs = self.field(8), self.field(8)
        for _ in range(kvs):
            self.boundaries.append(self.pos)
            self.string()
            self.value(self.field(4))
        for _ in range(tensors):
            self.boundaries.append(self.pos)
            self.string()
            for _ in range(self.field(4)):
                self.field(8)
            self.field(4)
            self.field(8)
        self.boundaries.append(self.pos)


def _source(name: str, header: bytes, size: int) -> Source:
    walker = _Walker(header)
    walker.walk()
    return Source(name, header, size, tuple(walker.fields), tuple(walker.boundaries))


@pytest.fixture(scope="module", params=["synthetic", "gemma-3-270m"])
def source(request: pytest.FixtureRequest) -> Source:
    if request.param == "synthetic":
        return _source("synthetic", *_synthetic())
    from slmkit import catalog
    from slmkit.catalog.offline import assemble

    try:
        path = assemble(catalog.get("gemma-3-270m").packaged)  # type: ignore[arg-type]
    except errors.ModelNotFound as exc:
        pytest.skip(f"the test-models extra is not installed ({exc})")
    info = read_gguf(path)
    with path.open("rb") as handle:
        header = handle.read(info.data_offset)
    return _source("gemma-3-270m", header, path.stat().st_size)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gguf-fuzz")


def _write(path: Path, head: bytes, size: int) -> Path:
    """``head`` then a sparse hole up to ``size`` bytes (no tensor data is ever read)."""
    with path.open("wb") as handle:
        handle.write(head[:size])
        handle.truncate(size)
    return path


def _read_bounded(path: Path) -> errors.InvalidModelFile | None:
    """read_gguf; the typed error it raised, or None. Anything else fails the test, as do
    a slow read or, for a small file, allocating more than a few times its size."""
    size = path.stat().st_size
    traced = size <= TRACED_SIZE
    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    try:
        read_gguf(path)
    except errors.InvalidModelFile as exc:
        return exc
    finally:
        elapsed = time.perf_counter() - start
        if traced:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert peak < MEMORY_BASE + 4 * size, f"read_gguf allocated {peak} bytes"
        assert elapsed < 5, f"read_gguf took {elapsed:.1f} s"
    return None


def test_the_whole_source_reads_cleanly(source: Source, workdir: Path) -> None:
    path = _write(workdir / f"{source.name}-full.gguf", source.header, source.size)
    assert _read_bounded(path) is None


@FUZZ
@given(data=st.data())
def test_every_prefix_is_a_truncated_invalid_model_file(
    source: Source, workdir: Path, data: st.DataObject
) -> None:
    header_end = len(source.header)
    near_boundary = st.tuples(st.sampled_from(source.boundaries), st.integers(-9, 9))
    length = data.draw(
        st.one_of(
            st.integers(0, 32),  # inside magic, version, counts
            near_boundary.map(sum),  # around the start of a metadata or tensor entry
            st.integers(0, header_end),  # anywhere in the metadata or tensor table
            st.integers(header_end, source.size - 1),  # inside the tensor data
            st.just(source.size - 1),
        ).filter(lambda n: 0 <= n < source.size),
        label="prefix length",
    )
    path = _write(workdir / f"{source.name}-prefix.gguf", source.header, length)
    error = _read_bounded(path)
    assert error is not None, f"a {length}-byte prefix read as a complete model"
    assert "truncated" in str(error) and str(path) in str(error)


@FUZZ
@given(data=st.data())
def test_flipped_counts_and_lengths_are_typed_errors(
    source: Source, workdir: Path, data: st.DataObject
) -> None:
    offset, width = data.draw(st.sampled_from(source.fields), label="field")
    value = data.draw(st.one_of(HUGE, st.integers(0, 2**16)), label="value")
    value %= 2 ** (8 * width)
    patched = bytearray(source.header)
    patched[offset : offset + width] = value.to_bytes(width, "little")
    path = _write(workdir / f"{source.name}-flipped.gguf", bytes(patched), source.size)
    _read_bounded(path)  # a typed error or a valid read; any other exception fails


@FUZZ
@given(data=st.data())
def test_random_bytes_after_a_valid_start_are_typed_errors(
    source: Source, workdir: Path, data: st.DataObject
) -> None:
    cut = data.draw(st.sampled_from([24, *source.boundaries]), label="valid bytes kept")
    noise = data.draw(st.binary(min_size=1, max_size=4096), label="noise")
    declared = data.draw(st.sampled_from([cut + len(noise), source.size]), label="file size")
    path = _write(workdir / f"{source.name}-noise.gguf", source.header[:cut] + noise, declared)
    _read_bounded(path)


@FUZZ
@given(count=HUGE, kind=st.sampled_from([4, 8, 9, 10]))
def test_huge_array_counts_right_after_the_header_are_typed_errors(
    workdir: Path, count: int, kind: int
) -> None:
    head = (
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + _string("k") + struct.pack("<IIQ", 9, kind, count)
    )
    path = _write(workdir / "huge-array.gguf", head, len(head) + 64)
    error = _read_bounded(path)
    assert error is not None and "truncated" in str(error)


def test_deeply_nested_arrays_are_refused(workdir: Path) -> None:
    nested = b"".join(struct.pack("<IQ", 9, 1) for _ in range(4000))
    head = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + _string("k") + struct.pack("<I", 9) + nested
    error = _read_bounded(_write(workdir / "nested.gguf", head, len(head)))
    assert error is not None and "nested" in str(error)


def test_a_non_integer_alignment_is_a_typed_error(workdir: Path) -> None:
    head = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + _string("general.alignment")
    head += struct.pack("<I", 8) + _string("thirty-two")
    error = _read_bounded(_write(workdir / "alignment.gguf", head, len(head) + 32))
    assert error is not None and "alignment" in str(error)


@pytest.fixture(scope="module")
def default_model() -> Path:
    from slmkit import catalog
    from slmkit.catalog.models import DEFAULT_MODEL
    from slmkit.catalog.offline import assemble

    try:
        return assemble(catalog.get(DEFAULT_MODEL).packaged)  # type: ignore[arg-type]
    except errors.ModelNotFound as exc:
        pytest.skip(f"the default-model extra is not installed ({exc})")


def test_first_two_million_bytes_of_the_default_model_are_truncated(
    default_model: Path, tmp_path: Path
) -> None:
    cut = tmp_path / "default-prefix.gguf"
    with default_model.open("rb") as handle:
        cut.write_bytes(handle.read(2_000_000))
    with pytest.raises(errors.InvalidModelFile, match="truncated") as caught:
        read_gguf(cut)
    assert str(cut) in str(caught.value)
