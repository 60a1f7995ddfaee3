"""Where an embedding model's converted exports (ONNX, BERT GGUF) come from.

Each backend's ``load()`` asks here first: a non-None answer means "this is an
encoder, load it with slmkit.embeddings"; None means "not an embedding model, carry on".
"""

from __future__ import annotations

from pathlib import Path

from ..catalog import ModelRef
from ..catalog.encoders import is_embedding_model
from ..errors import ModelNotFound

__all__ = ["ONNX_FILE", "encoder_export", "encoder_gguf"]

ONNX_FILE = "model.onnx"


def encoder_gguf(model: ModelRef) -> Path | None:
    """The BERT GGUF folder (``slmkit convert MODEL --to gguf``) of an embedding model."""
    if not is_embedding_model(model):
        return None
    if model.path is not None and (model.path / "model.gguf").is_file():
        return model.path
    return _converted(model, "gguf", "llamacpp", {}, "")


def encoder_export(model: ModelRef, precision: str, backend: str) -> Path | None:
    """The ONNX export (model.onnx + tokenizer + pooling config) of an embedding model.

    A folder that holds model.onnx is used as it is; a catalog alias or a checkpoint
    folder needs ``slmkit convert ... --to onnx`` once. None for any other model.
    """
    if not is_embedding_model(model):
        return None
    if model.path is not None and (model.path / ONNX_FILE).is_file():
        return model.path
    flags = "" if precision == "fp32" else f"--precision {precision}"
    return _converted(model, "onnx", backend, {"precision": precision}, flags)


def _converted(model: ModelRef, to: str, backend: str, options: dict[str, str], flags: str) -> Path:
    from ..convert import cached_artifact, missing_artifact_error

    if model.spec is None and model.path is None:
        raise ModelNotFound(
            f"backend {backend!r} runs an embedding model from its {to} export: download "
            f"{model.name}, run `slmkit convert FOLDER --to {to}` and load that folder"
        )
    name = model.spec.alias if model.spec is not None else str(model.path)
    found = cached_artifact(name, to, **options)
    if found is None:
        raise missing_artifact_error(name, to, backend, flags)
    return found
