"""How a sentence-transformers folder turns token states into one vector, read from its files.

``modules.json`` lists the pipeline (Transformer, Pooling, Normalize);
``1_Pooling/config.json`` says which pooling; ``sentence_bert_config.json`` the
sequence limit the model was trained with (often below the position limit, e.g.
256 of 512 for all-MiniLM-L6-v2). A folder without ``modules.json`` is pooled the
way sentence-transformers pools a plain checkpoint: mean, not normalised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..catalog.encoders import MODULES, read_json, sentence_modules
from ..errors import InvalidModelFile

if TYPE_CHECKING:
    import numpy as np

__all__ = ["EncoderConfig", "pool", "position_limit", "read_config"]

#: Pooling modes in the order sentence-transformers concatenates them.
_MODES = ("cls_token", "max_tokens", "mean_tokens", "mean_sqrt_len_tokens", "lasttoken")
_LAYERS = ("Transformer", "Pooling", "Normalize")


@dataclass(frozen=True)
class EncoderConfig:
    """Pooling, normalisation and input limit of one embedding model."""

    pooling: tuple[str, ...]
    normalize: bool
    max_tokens: int
    lowercase: bool = False


def position_limit(folder: Path) -> int:
    """The longest input the model's position embeddings allow (config.json; BERT's 512)."""
    path = folder / "config.json"
    config = read_json(path) if path.is_file() else {}
    return int(config.get("max_position_embeddings") or config.get("n_positions") or 512)


def read_config(folder: Path, position_limit: int) -> EncoderConfig:
    """The folder's pooling config; ``position_limit`` caps the input length."""
    modules = sentence_modules(folder)
    if modules is None:
        return EncoderConfig(("mean_tokens",), False, position_limit)
    pooling: tuple[str, ...] = ()
    normalize = False
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind not in _LAYERS:
            raise InvalidModelFile(
                f"{folder / MODULES} has a {kind} module, which slmkit does not run "
                f"(it runs {', '.join(_LAYERS)}); use sentence-transformers for this model"
            )
        if kind == "Pooling":
            pooling = _pooling_modes(folder / str(module.get("path", "")) / "config.json")
        normalize = normalize or kind == "Normalize"
    settings = folder / "sentence_bert_config.json"
    st = read_json(settings) if settings.is_file() else {}
    limit = int(st.get("max_seq_length") or position_limit)
    return EncoderConfig(
        pooling or ("mean_tokens",),
        normalize,
        min(limit, position_limit),
        bool(st.get("do_lower_case")),
    )


def _pooling_modes(path: Path) -> tuple[str, ...]:
    config = read_json(path)
    if config.get("pooling_mode_weightedmean_tokens"):
        raise InvalidModelFile(f"{path}: weighted-mean pooling is not supported by slmkit")
    if config.get("pooling_mode"):  # newer files name one mode
        wanted = {"cls": "cls_token", "mean": "mean_tokens", "max": "max_tokens"}.get(
            config["pooling_mode"], config["pooling_mode"]
        )
        config = {f"pooling_mode_{wanted}": True}
    modes = tuple(mode for mode in _MODES if config.get(f"pooling_mode_{mode}"))
    if not modes:
        raise InvalidModelFile(f"{path} names no pooling mode slmkit knows ({', '.join(_MODES)})")
    return modes


def pool(hidden: np.ndarray, mask: np.ndarray, config: EncoderConfig) -> np.ndarray:
    """Sentence vectors (batch, dims) from token states (batch, tokens, hidden)."""
    import numpy as np

    hidden = hidden.astype(np.float32, copy=False)
    weights = mask.astype(np.float32)[:, :, None]
    lengths = np.clip(weights.sum(axis=1), 1e-9, None)
    parts = []
    for mode in config.pooling:
        if mode == "cls_token":
            parts.append(hidden[:, 0])
        elif mode == "max_tokens":
            parts.append(np.where(weights > 0, hidden, -1e9).max(axis=1))
        elif mode == "mean_tokens":
            parts.append((hidden * weights).sum(axis=1) / lengths)
        elif mode == "mean_sqrt_len_tokens":
            parts.append((hidden * weights).sum(axis=1) / np.sqrt(lengths))
        else:  # lasttoken: inputs are padded on the right
            last = mask.sum(axis=1).astype(np.int64) - 1
            parts.append(hidden[np.arange(hidden.shape[0]), last])
    vectors = np.concatenate(parts, axis=1)
    if config.normalize:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.clip(norms, 1e-12, None)
    return vectors
