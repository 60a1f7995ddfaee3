"""An embedding model on transformers: the checkpoint as shipped, run with ``AutoModel``."""

# transformers' public functions are partly unannotated.
# mypy: disallow-untyped-calls=False
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidModelFile, UnsupportedFeature
from .engine import EmbeddingEngine
from .pooling import read_config
from .tokens import EncoderTokenizer

if TYPE_CHECKING:
    import numpy as np

__all__ = ["TransformersEncoder"]


class TransformersEncoder(EmbeddingEngine):
    """``AutoModel`` + the folder's pooling; the reference the other runtimes are held to."""

    def __init__(self, folder: Path, device: str, options: Any) -> None:
        import torch
        import transformers

        if options.quantization is not None:
            raise UnsupportedFeature(
                "backend 'transformers': quantization= applies to generative models; an "
                "embedding model runs as shipped (for int8 use backend='onnx', precision='int8')"
            )
        if options.n_threads:
            torch.set_num_threads(options.n_threads)
        trust = options.trust_remote_code
        try:
            self._model = transformers.AutoModel.from_pretrained(
                str(folder), dtype=_dtype(options.dtype, device), trust_remote_code=trust
            ).to(device)
            fast = transformers.AutoTokenizer.from_pretrained(str(folder), trust_remote_code=trust)
        except (OSError, ValueError) as exc:
            raise InvalidModelFile(f"transformers cannot load {folder}: {exc}") from exc
        self._model.eval()
        backend_tokenizer = getattr(fast, "backend_tokenizer", None)
        if backend_tokenizer is None:
            raise InvalidModelFile(f"{folder} has no fast (tokenizers) tokenizer")
        position_limit = int(getattr(self._model.config, "max_position_embeddings", 0) or 512)
        self.config = read_config(folder, position_limit)
        self.tokenizer = EncoderTokenizer(
            backend_tokenizer, self.config.max_tokens, self.config.lowercase
        )
        self._takes_types = int(getattr(self._model.config, "type_vocab_size", 0) or 0) > 0
        self._torch = torch
        self.artifact = str(folder)
        self.device = device
        self.context_length = self.config.max_tokens

    def forward(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        torch = self._torch
        device = self._model.device
        inputs = {
            "input_ids": torch.from_numpy(ids).to(device),
            "attention_mask": torch.from_numpy(mask).to(device),
        }
        if self._takes_types:
            inputs["token_type_ids"] = torch.from_numpy(types).to(device)
        with torch.inference_mode():
            hidden = self._model(**inputs).last_hidden_state
        return hidden.float().cpu().numpy()

    def close(self) -> None:
        del self._model


def _dtype(wanted: str, device: str) -> Any:
    import torch

    if wanted == "auto":
        return torch.float32 if device == "cpu" else torch.float16
    return getattr(torch, wanted)
