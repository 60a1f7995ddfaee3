"""The encoder contract: texts in, one pooled vector per text out.

An embedding model shares the registry, catalog, errors and server with the
generative models, not the generation loop: a local runtime implements
:meth:`EmbeddingEngine.forward` (padded token ids to token states) and this class
does the rest the same way on every runtime (tokenize, batch, pool, normalise).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..backends.base import Capabilities, Engine, EngineEvent, Request
from ..errors import InvalidRequest, UnsupportedFeature
from ..types import Embeddings, Usage
from .pooling import EncoderConfig, pool

if TYPE_CHECKING:
    import numpy as np

    from .tokens import EncoderTokenizer

__all__ = ["Embedder", "EmbeddingEngine", "check_inputs", "embeddings_of"]

#: Texts per forward pass: large enough to amortise the call, small enough for a laptop.
BATCH_SIZE = 32


@runtime_checkable
class Embedder(Protocol):
    """Anything that embeds: a local :class:`EmbeddingEngine` or a hosted engine."""

    def embed_batch(self, texts: list[str], truncate: bool) -> tuple[list[list[float]], int]:
        """Vectors for ``texts`` in order, and the prompt tokens they took."""
        ...


class EmbeddingEngine(Engine):
    """A local encoder. Subclasses load the model, set the attributes, implement forward()."""

    config: EncoderConfig
    tokenizer: EncoderTokenizer
    batch_size: int = BATCH_SIZE
    capabilities = Capabilities(embeddings=True, raw_prompt=False, sampling=frozenset())

    def run(self, request: Request) -> Iterator[EngineEvent]:
        """An encoder generates nothing; the LLM refuses chat()/generate() before this."""
        raise UnsupportedFeature("an embedding model generates no text: use embed()")

    @abstractmethod
    def forward(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        """Token states (batch, tokens, hidden) for a padded batch."""

    def embed_batch(self, texts: list[str], truncate: bool) -> tuple[list[list[float]], int]:
        """Vectors in input order; batches group inputs of similar length to pad less."""
        encodings = self.tokenizer.encode(texts, truncate)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            ids, mask, types = self.tokenizer.pad([encodings[i] for i in rows])
            pooled = pool(self.forward(ids, mask, types), mask, self.config)
            for row, vector in zip(rows, pooled.tolist(), strict=True):
                vectors[row] = vector
        return vectors, sum(len(e.ids) for e in encodings)


def check_inputs(inputs: str | Sequence[str]) -> list[str]:
    """A list of non-empty strings, or InvalidRequest naming the bad one."""
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, Sequence) or not texts:
        raise InvalidRequest("embed() takes a string or a non-empty list of strings", field="input")
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text:
            raise InvalidRequest(
                f"input {i} is {type(text).__name__ if not isinstance(text, str) else 'empty'}: "
                "every input must be a non-empty string",
                field="input",
            )
    return list(texts)


def embeddings_of(
    embedder: Embedder, texts: list[str], truncate: bool, model: str, backend: str
) -> Embeddings:
    vectors, prompt_tokens = embedder.embed_batch(texts, truncate)
    return Embeddings(
        vectors=vectors,
        dimensions=len(vectors[0]),
        usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=0),
        model=model,
        backend=backend,
    )
