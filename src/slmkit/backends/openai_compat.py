"""Backend ``openai``: any OpenAI-compatible server (vLLM, TGI, SGLang, Ollama, llama.cpp's
server, LM Studio, api.openai.com), through the official ``openai`` package.

Configure with ``base_url`` / ``api_key`` options or ``SLMKIT_OPENAI_BASE_URL`` /
``OPENAI_BASE_URL`` and ``SLMKIT_OPENAI_API_KEY`` / ``OPENAI_API_KEY``. A server of your
own needs no key.
"""

from __future__ import annotations

from typing import ClassVar

from ._openai_compatible import OpenAICompatibleBackend
from .base import ModelRef

__all__ = ["OpenAIBackend"]


class OpenAIBackend(OpenAICompatibleBackend):
    name: ClassVar[str] = "openai"
    description: ClassVar[str] = "any OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp...)"
    key_env: ClassVar[tuple[str, ...]] = ("SLMKIT_OPENAI_API_KEY", "OPENAI_API_KEY")
    url_env: ClassVar[tuple[str, ...]] = ("SLMKIT_OPENAI_BASE_URL", "OPENAI_BASE_URL")
    default_url: ClassVar[str | None] = "https://api.openai.com/v1"

    def model_id(self, model: ModelRef) -> str:
        """A self-hosted server names models as its operator likes: an alias without an
        ``openai`` id in the catalog is sent as the alias itself."""
        if model.spec is not None and "openai" not in model.spec.hosted:
            return model.spec.alias
        return super().model_id(model)
