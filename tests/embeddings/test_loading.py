"""How an embedding model is found and loaded: catalog alias, folders, auto, one-shot helpers."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

import slmkit
from slmkit import errors, registry

from .conftest import MODEL


def test_one_shot_embed_defaults_to_the_embedding_model_on_a_backend_that_embeds(
    checkpoint: Path,
) -> None:
    result = slmkit.embed(["eating food", "eating bread"])
    assert result.model == MODEL and len(result.vectors) == 2
    assert registry.get_backend(result.backend).embeds
    again = asyncio.run(slmkit.aembed("eating food"))
    assert again.backend == result.backend
    assert (
        abs(sum(a * b for a, b in zip(again.vectors[0], result.vectors[0], strict=True)) - 1) < 1e-5
    )


def test_a_sentence_transformers_folder_loads_as_an_embedding_model(
    checkpoint: Path, tmp_path: Path
) -> None:
    folder = shutil.copytree(checkpoint, tmp_path / "my-encoder")
    with slmkit.load(str(folder), backend="transformers") as llm:
        assert not llm.info.is_chat and llm.info.context_length == 256
        assert llm.embed("hello").dimensions == 384


def test_the_onnx_export_folder_loads_by_path_on_onnx(checkpoint: Path) -> None:
    pytest.importorskip("onnxruntime", reason='needs onnxruntime: pip install "slmkit[onnx]"')
    folder = slmkit.convert(MODEL, to="onnx")
    assert (folder / "model.onnx").is_file() and (folder / "tokenizer.json").is_file()
    with slmkit.load(str(folder), backend="onnx") as llm:
        assert llm.embed("hello").dimensions == 384


def test_an_embedding_model_converts_only_to_encoder_formats(checkpoint: Path) -> None:
    with pytest.raises(errors.InvalidRequest, match="embedding model .* use one of: onnx, gguf"):
        slmkit.convert(MODEL, to="openvino")


def test_an_encoder_export_takes_fp32_or_int8(checkpoint: Path) -> None:
    with pytest.raises(errors.InvalidRequest, match="fp32 or int8"):
        slmkit.convert(MODEL, to="onnx", precision="int4")
