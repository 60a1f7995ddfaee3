"""Tokenizing for encoders with the ``tokenizers`` package alone (no transformers at run time).

A model's tokenizer.json often carries the padding and truncation its exporter
used (128 tokens, fixed, for all-MiniLM-L6-v2): both are switched off, so an input
is never cut without the caller asking, and each batch pads only to its longest.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ContextLengthExceeded, InvalidModelFile

if TYPE_CHECKING:
    import numpy as np

__all__ = ["EncoderTokenizer"]


class EncoderTokenizer:
    """Token ids for a list of texts, checked against the model's input limit."""

    def __init__(self, tokenizer: Any, max_tokens: int, lowercase: bool = False) -> None:
        padding = tokenizer.padding or {}
        self.pad_id = int(padding.get("pad_id", 0))
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self._tokenizer = tokenizer
        self.max_tokens = max_tokens
        self._lowercase = lowercase

    @classmethod
    def from_folder(cls, folder: Path, max_tokens: int, lowercase: bool) -> EncoderTokenizer:
        """The folder's tokenizer.json."""
        import tokenizers

        path = folder / "tokenizer.json"
        if not path.is_file():
            raise InvalidModelFile(
                f"{folder} has no tokenizer.json; export the model with "
                "`slmkit convert MODEL --to onnx`, which writes one next to the model"
            )
        try:
            return cls(tokenizers.Tokenizer.from_file(str(path)), max_tokens, lowercase)
        except Exception as exc:  # the Rust tokenizer raises its own exception type
            raise InvalidModelFile(f"cannot read {path}: {exc}") from exc

    def encode(self, texts: list[str], truncate: bool) -> list[Any]:
        """One encoding per text; an input over the limit raises unless ``truncate``."""
        if self._lowercase:
            texts = [text.lower() for text in texts]
        encodings = self._tokenizer.encode_batch(texts)
        too_long = [i for i, e in enumerate(encodings) if len(e.ids) > self.max_tokens]
        if too_long and not truncate:
            first = too_long[0]
            size = len(encodings[first].ids)
            raise ContextLengthExceeded(
                f"input {first} is {size} tokens, more than this model's limit of "
                f"{self.max_tokens}"
                + (f" ({len(too_long)} inputs are too long)" if len(too_long) > 1 else "")
                + ": shorten or split it, or pass truncate=True to embed only the first "
                f"{self.max_tokens} tokens",
                prompt_tokens=size,
                max_tokens=0,
                context_length=self.max_tokens,
            )
        if too_long:
            self._tokenizer.enable_truncation(self.max_tokens)
            try:
                cut = self._tokenizer.encode_batch([texts[i] for i in too_long])
            finally:
                self._tokenizer.no_truncation()
            for i, encoding in zip(too_long, cut, strict=True):
                encodings[i] = encoding
        return list(encodings)

    def pad(self, encodings: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """input_ids, attention_mask and token_type_ids (int64), padded on the right."""
        import numpy as np

        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            size = len(encoding.ids)
            ids[row, :size] = encoding.ids
            mask[row, :size] = 1
            types[row, :size] = encoding.type_ids
        return ids, mask, types
