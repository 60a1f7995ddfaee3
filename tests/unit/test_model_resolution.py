"""Model resolution looks only where a model can be: never a walk of a whole tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import slmkit
from slmkit import errors
from slmkit.backends.base import ModelRef
from slmkit.backends.llamacpp import resolve_gguf
from slmkit.backends.onnx import pick_variant
from slmkit.catalog import search

pytestmark = pytest.mark.timeout(60)


def _genai(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "genai_config.json").write_text(json.dumps({"model": {"decoder": {}}}))
    return folder


def _gguf(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF")
    return path


def test_an_empty_model_name_is_an_error_not_the_current_directory() -> None:
    for name in ("", "  "):
        with pytest.raises(errors.InvalidRequest, match="model is empty"):
            slmkit.load(name, backend="onnx")


def test_onnx_does_not_search_deep_below_the_given_folder(tmp_path: Path) -> None:
    _genai(tmp_path / "cache" / "slmkit" / "converted" / "some-model" / "onnx-int4-cpu")
    with pytest.raises(errors.ModelNotFound, match="genai_config.json"):
        pick_variant(tmp_path / "cache", "cpu", "~/.cache")


def test_onnx_takes_the_one_model_at_the_top_level(tmp_path: Path) -> None:
    only = _genai(tmp_path / "mine")
    assert pick_variant(tmp_path, "cpu", "folder") == only


def test_onnx_names_several_local_candidates_instead_of_picking_one(tmp_path: Path) -> None:
    _genai(tmp_path / "model-a")
    _genai(tmp_path / "model-b")
    with pytest.raises(errors.ModelNotFound, match="model-a, model-b"):
        pick_variant(tmp_path, "cpu", "folder")


def test_gguf_takes_the_one_file_at_the_top_level(tmp_path: Path) -> None:
    file = _gguf(tmp_path / "model.gguf")
    _gguf(tmp_path / "deep" / "down" / "other.gguf")
    assert resolve_gguf(ModelRef(str(tmp_path), path=tmp_path)) == file


def test_gguf_ignores_files_below_the_top_level_of_a_local_folder(tmp_path: Path) -> None:
    _gguf(tmp_path / "sub" / "model.gguf")
    with pytest.raises(errors.ModelNotFound, match="top level"):
        resolve_gguf(ModelRef(str(tmp_path), path=tmp_path))


def test_gguf_names_several_local_candidates(tmp_path: Path) -> None:
    _gguf(tmp_path / "a-Q4_K_M.gguf")
    _gguf(tmp_path / "b-Q8_0.gguf")
    with pytest.raises(errors.ModelNotFound, match="a-Q4_K_M.gguf, b-Q8_0.gguf"):
        resolve_gguf(ModelRef(str(tmp_path), path=tmp_path))


def test_a_huge_folder_is_refused_after_a_bounded_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "MAX_ENTRIES", 50)
    for index in range(60):
        (tmp_path / f"dir{index:02d}").mkdir()
    with pytest.raises(errors.ModelNotFound, match="more than 50 entries"):
        pick_variant(tmp_path, "cpu", "big folder")
