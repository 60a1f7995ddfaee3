"""Embedding models: encoders that turn texts into vectors (``LLM.embed``).

``engine`` holds the contract and the shared run (tokenize, batch, pool, normalise);
``pooling`` reads a model's own pooling config; ``source`` finds its converted exports
(``slmkit.catalog.encoders`` says whether a model is an encoder and where its checkpoint
is); one module per runtime (``transformers``, ``onnx``, ``openvino``, ``llamacpp``) holds
that runtime's encoder. Importing this package imports no runtime and no numpy.
"""

from __future__ import annotations

from ..catalog.encoders import encoder_checkpoint, is_embedding_model
from .engine import Embedder, EmbeddingEngine, check_inputs, embeddings_of
from .source import encoder_export, encoder_gguf

__all__ = [
    "Embedder",
    "EmbeddingEngine",
    "check_inputs",
    "embeddings_of",
    "encoder_checkpoint",
    "encoder_export",
    "encoder_gguf",
    "is_embedding_model",
]
