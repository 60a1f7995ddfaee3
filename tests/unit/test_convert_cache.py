"""The converter's cache and staging, with a tiny in-test target (no runtime needed)."""

from __future__ import annotations

import importlib
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from slmkit.convert import MARKER, Source, cached_artifact, convert
from slmkit.errors import ConversionError, InvalidRequest

_MODULE = "slmkit.convert._test_target"
# slmkit.convert is the function; the package is reached through importlib.
convert_mod = importlib.import_module("slmkit.convert")


class Recorder:
    def __init__(self) -> None:
        self.builds = 0
        self.fail_with: BaseException | None = None

    def variant(self, **options: Any) -> str:
        if set(options) - {"bits"}:
            raise InvalidRequest("only bits", field="options")
        return f"{options['bits']}bit" if "bits" in options else ""

    def build(self, source: Source, out: Path, **options: Any) -> None:
        self.builds += 1
        (out / "weights.bin").write_bytes(b"x" * 10)
        if self.fail_with is not None:
            raise self.fail_with


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Recorder:
    recorder = Recorder()
    module = types.ModuleType(_MODULE)
    module.NAME = "fake"  # type: ignore[attr-defined]
    module.PACKAGES = ()  # type: ignore[attr-defined]
    module.EXTRA = "fake"  # type: ignore[attr-defined]
    module.variant = recorder.variant  # type: ignore[attr-defined]
    module.build = recorder.build  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, _MODULE, module)
    monkeypatch.setitem(convert_mod.TARGETS, "fake", "_test_target")
    monkeypatch.setenv("SLMKIT_CACHE_DIR", str(tmp_path / "cache"))
    return recorder


@pytest.fixture
def gguf(tmp_path: Path) -> str:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 60)
    return str(path)


def test_second_convert_returns_the_cached_artifact_without_rebuilding(
    target: Recorder, gguf: str
) -> None:
    first = convert(gguf, to="fake")
    stamp = (first / MARKER).stat().st_mtime_ns
    second = convert(gguf, to="fake")
    assert second == first
    assert target.builds == 1
    assert (second / MARKER).stat().st_mtime_ns == stamp


def test_the_marker_records_source_target_and_options(target: Recorder, gguf: str) -> None:
    path = convert(gguf, to="fake", bits=4)
    marker = json.loads((path / MARKER).read_text())
    assert marker["target"] == "fake"
    assert marker["variant"] == "4bit"
    assert marker["options"] == {"bits": 4}
    assert path.name == "fake-4bit"


def test_variants_are_cached_apart(target: Recorder, gguf: str) -> None:
    assert convert(gguf, to="fake") != convert(gguf, to="fake", bits=4)
    assert target.builds == 2


def test_cached_artifact_never_converts(target: Recorder, gguf: str) -> None:
    assert cached_artifact(gguf, "fake") is None
    assert target.builds == 0
    built = convert(gguf, to="fake")
    assert cached_artifact(gguf, "fake") == built


def test_force_rebuilds(target: Recorder, gguf: str) -> None:
    convert(gguf, to="fake")
    convert(gguf, to="fake", force=True)
    assert target.builds == 2


def test_a_failed_build_leaves_nothing_behind(target: Recorder, gguf: str) -> None:
    target.fail_with = RuntimeError("boom")
    with pytest.raises(ConversionError, match="boom"):
        convert(gguf, to="fake")
    parent = convert_mod.artifact_dir(convert_mod.resolve_source(gguf), "fake", "").parent
    assert not parent.exists() or list(parent.iterdir()) == []


def test_an_interrupted_build_leaves_nothing_behind(target: Recorder, gguf: str) -> None:
    target.fail_with = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        convert(gguf, to="fake")
    parent = convert_mod.artifact_dir(convert_mod.resolve_source(gguf), "fake", "").parent
    assert not parent.exists() or list(parent.iterdir()) == []


def test_a_failed_rebuild_keeps_the_previous_artifact(target: Recorder, gguf: str) -> None:
    good = convert(gguf, to="fake")
    target.fail_with = RuntimeError("boom")
    with pytest.raises(ConversionError):
        convert(gguf, to="fake", force=True)
    assert (good / MARKER).is_file()


def test_out_dir_that_holds_other_files_is_refused(
    target: Recorder, gguf: str, tmp_path: Path
) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(InvalidRequest, match="not empty"):
        convert(gguf, to="fake", out=out)
    assert (out / "notes.txt").read_text() == "keep me"


def test_explicit_out_dir_is_used(target: Recorder, gguf: str, tmp_path: Path) -> None:
    out = tmp_path / "artifact"
    assert convert(gguf, to="fake", out=out) == out
    assert (out / "weights.bin").is_file()


def test_unknown_target_names_the_known_ones(gguf: str) -> None:
    with pytest.raises(InvalidRequest, match="hf"):
        convert(gguf, to="tflite")


def test_convert_is_the_function_even_after_the_subpackage_is_imported() -> None:
    import slmkit
    import slmkit.convert.progress

    assert callable(slmkit.convert)


class TestHfTargetOptions:
    """Option validation of --to hf runs without transformers."""

    def test_default_is_fp32_in_the_plain_cache_dir(self) -> None:
        from slmkit.convert import hf

        assert hf.variant() == ""
        assert hf.variant(precision="fp32") == ""

    def test_other_precisions_are_variants(self) -> None:
        from slmkit.convert import hf

        assert hf.variant(precision="bf16") == "bf16"
        assert hf.variant(precision="float16") == "fp16"

    def test_options_of_other_targets_are_refused(self) -> None:
        from slmkit.convert import hf

        with pytest.raises(InvalidRequest, match="bits"):
            hf.variant(bits=4)
        with pytest.raises(InvalidRequest, match="precision"):
            hf.variant(precision="int4")


class TestSourceIdentity:
    """The cache is keyed by what the source holds, not by its name and size."""

    def test_two_files_of_the_same_size_get_their_own_artifacts(
        self, target: Recorder, tmp_path: Path
    ) -> None:
        first, second = tmp_path / "a" / "model.gguf", tmp_path / "b" / "model.gguf"
        for path, fill in ((first, b"\1"), (second, b"\2")):
            path.parent.mkdir()
            path.write_bytes(b"GGUF" + fill * 60)
        assert convert(str(first), to="fake") != convert(str(second), to="fake")
        assert target.builds == 2

    def test_a_changed_source_converts_again(self, target: Recorder, gguf: str) -> None:
        convert(gguf, to="fake")
        Path(gguf).write_bytes(b"GGUF" + b"\3" * 60)  # same name, same size
        assert cached_artifact(gguf, "fake") is None
        convert(gguf, to="fake")
        assert target.builds == 2

    def test_a_marker_from_other_content_is_not_served(self, target: Recorder, gguf: str) -> None:
        built = convert(gguf, to="fake")
        marker = json.loads((built / MARKER).read_text())
        marker["source_identity"] = "sha256:" + "0" * 64
        (built / MARKER).write_text(json.dumps(marker))
        assert cached_artifact(gguf, "fake") is None
        assert convert(gguf, to="fake") == built
        assert target.builds == 2

    def test_a_new_converter_version_converts_again(
        self, target: Recorder, gguf: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        convert(gguf, to="fake")
        monkeypatch.setattr(sys.modules[_MODULE], "VERSION", 2, raising=False)
        assert cached_artifact(gguf, "fake") is None
        convert(gguf, to="fake")
        assert target.builds == 2


class TestOutFolder:
    def test_out_holding_another_models_artifact_is_refused(
        self, target: Recorder, gguf: str, tmp_path: Path
    ) -> None:
        other = tmp_path / "other.gguf"
        other.write_bytes(b"GGUF" + b"\7" * 60)
        out = tmp_path / "artifact"
        convert(str(other), to="fake", out=out)
        with pytest.raises(InvalidRequest, match="holds another artifact"):
            convert(gguf, to="fake", out=out)
        assert target.builds == 1

    def test_out_holding_the_same_conversion_is_reused(
        self, target: Recorder, gguf: str, tmp_path: Path
    ) -> None:
        out = tmp_path / "artifact"
        convert(gguf, to="fake", out=out)
        assert convert(gguf, to="fake", out=out) == out
        assert target.builds == 1

    def test_force_replaces_another_artifact_but_never_a_foreign_folder(
        self, target: Recorder, gguf: str, tmp_path: Path
    ) -> None:
        out = tmp_path / "artifact"
        convert(gguf, to="fake", bits=4, out=out)
        convert(gguf, to="fake", out=out, force=True)
        assert json.loads((out / MARKER).read_text())["variant"] == ""
        foreign = tmp_path / "foreign"
        foreign.mkdir()
        (foreign / "notes.txt").write_text("keep me")
        with pytest.raises(InvalidRequest, match="not empty"):
            convert(gguf, to="fake", out=foreign, force=True)
        assert (foreign / "notes.txt").read_text() == "keep me"

    def test_out_that_is_a_file_is_a_typed_error(
        self, target: Recorder, gguf: str, tmp_path: Path
    ) -> None:
        out = tmp_path / "a-file"
        out.write_text("x")
        with pytest.raises(InvalidRequest, match="is a file"):
            convert(gguf, to="fake", out=out)
