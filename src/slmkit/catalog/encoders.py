"""Whether a model is an embedding model (a sentence-transformers encoder) and where its
checkpoint lies. Model resolution, not embedding: the converters and every backend's
``load()`` ask here, and ``slmkit.embeddings`` builds on it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InvalidModelFile, ModelNotFound
from . import HubArtifact, ModelRef, hfcache

__all__ = [
    "encoder_checkpoint",
    "is_embedding_model",
    "is_encoder_folder",
    "read_json",
    "sentence_modules",
]

MODULES = "modules.json"


def read_json(path: Path) -> Any:
    """A model file's JSON; an unreadable or broken file is ``InvalidModelFile`` naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidModelFile(f"cannot read {path}: {exc}") from exc


def sentence_modules(folder: Path) -> list[dict[str, Any]] | None:
    """The folder's ``modules.json`` pipeline; None when it has none."""
    path = folder / MODULES
    if not path.is_file():
        return None
    modules = read_json(path)
    if not isinstance(modules, list):
        raise InvalidModelFile(f"{path} is not a list of modules")
    return modules


def is_encoder_folder(folder: Path) -> bool:
    """True for a sentence-transformers folder (its modules.json has a Pooling module)."""
    modules = sentence_modules(folder) if folder.is_dir() else None
    return any(str(m.get("type", "")).endswith(".Pooling") for m in modules or ())


def is_embedding_model(model: ModelRef) -> bool:
    """What the catalog says, else whether the local or cached folder is a sentence-transformer."""
    if model.spec is not None:
        return model.spec.is_embedding
    if model.path is not None:
        return is_encoder_folder(model.path)
    if "/" in model.name:
        cached = hfcache.find_cached(HubArtifact(model.name))
        return cached is not None and is_encoder_folder(cached)
    return False


def encoder_checkpoint(model: ModelRef) -> Path | None:
    """The transformers checkpoint folder of an embedding model; None for any other model."""
    if not is_embedding_model(model):
        return None
    spec = model.spec
    if spec is None:
        return model.path or hfcache.resolve(HubArtifact(model.name), model.name)
    packaged = spec.packaged_data.get("hf")
    hub = spec.hub.get("hf")
    if packaged is not None:
        from .offline import packaged_path

        try:
            return packaged_path(packaged)
        except ModelNotFound:
            if hub is None or hfcache.find_cached(hub) is None:
                raise
    if hub is None:
        raise ModelNotFound(f"{spec.alias} has no transformers checkpoint in the catalog")
    return hfcache.resolve(hub, f"{spec.alias} (sentence-transformers checkpoint)")
