"""An embedding model on llama.cpp: the BERT GGUF ``slmkit convert MODEL --to gguf`` writes.

llama.cpp tokenizes (its WordPiece port) and pools (the GGUF's pooling type) itself, so
this engine replaces the shared batch loop; normalisation and the input limit still
come from the model's own files next to model.gguf.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ContextLengthExceeded, InvalidModelFile
from .engine import EmbeddingEngine
from .pooling import position_limit, read_config

if TYPE_CHECKING:
    import numpy as np

__all__ = ["LlamaCppEncoder"]

GGUF_FILE = "model.gguf"
#: Tokens llama.cpp decodes at once; sequences are packed up to this many.
_BATCH_TOKENS = 2048


class LlamaCppEncoder(EmbeddingEngine):
    """``llama_cpp.Llama(embedding=True)``; vectors pooled by llama.cpp."""

    def __init__(self, folder: Path, n_threads: int | None) -> None:
        import llama_cpp

        path = folder / GGUF_FILE
        self.config = read_config(folder, position_limit(folder))
        try:
            with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):
                self._llama = llama_cpp.Llama(
                    str(path),
                    embedding=True,
                    n_ctx=_BATCH_TOKENS,
                    n_batch=_BATCH_TOKENS,
                    n_ubatch=_BATCH_TOKENS,
                    n_threads=n_threads,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as exc:
            raise InvalidModelFile(f"llama.cpp cannot load {path}: {exc}") from exc
        self.artifact = str(path)
        self.context_length = self.config.max_tokens

    def forward(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        raise NotImplementedError("llama.cpp pools inside embed_batch")

    def embed_batch(self, texts: list[str], truncate: bool) -> tuple[list[list[float]], int]:
        limit = self.config.max_tokens
        if self.config.lowercase:
            texts = [text.lower() for text in texts]
        counts = [len(self._tokens(text)) for text in texts]
        too_long = [i for i, count in enumerate(counts) if count > limit]
        if too_long and not truncate:
            first = too_long[0]
            raise ContextLengthExceeded(
                f"input {first} is {counts[first]} tokens, more than this model's limit of "
                f"{limit}: shorten or split it, or pass truncate=True",
                prompt_tokens=counts[first],
                max_tokens=0,
                context_length=limit,
            )
        for i in too_long:  # keep [CLS] + the first tokens + [SEP], as the tokenizers do
            tokens = self._tokens(texts[i])
            texts[i] = self._llama.detokenize(tokens[1 : limit - 1]).decode("utf-8", "replace")
            counts[i] = len(self._tokens(texts[i]))
        vectors: Any = self._llama.embed(texts, normalize=self.config.normalize)
        return [list(map(float, vector)) for vector in vectors], sum(counts)

    def _tokens(self, text: str) -> list[int]:
        return list(self._llama.tokenize(text.encode("utf-8"), add_bos=True, special=False))

    def close(self) -> None:
        self._llama.close()
