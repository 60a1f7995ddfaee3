"""The OpenAI wire protocol through the official ``openai`` package.

Shared by ``openai`` (any compatible server), ``nim`` and ``github``: they differ only in
their default endpoint, environment variables and model ids. The SDK's own retries are
off (``max_retries=0``): slmkit's retry layer is the only one.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, ClassVar

from ..structured import ResponseFormat
from ._hosted import (
    Endpoint,
    HostedBackend,
    HostedEngine,
    HostedOptions,
    achunk_events,
    chunk_events,
)
from .base import EngineEvent

__all__ = ["OpenAICompatibleBackend", "OpenAICompatibleEngine"]

#: Sent when the endpoint needs no key: the SDK insists on one, servers ignore it.
NO_KEY = "no-key-required"


class OpenAICompatibleEngine(HostedEngine):
    """Chat, completions and embeddings over ``/v1/chat/completions``, ``/v1/completions``
    and ``/v1/embeddings``.

    The async API goes through ``openai.AsyncOpenAI`` (one client per event loop: an
    httpx async client belongs to the loop that first used it).
    """

    has_async = True

    def __init__(
        self, backend: HostedBackend, endpoint: Endpoint, model_id: str, options: HostedOptions
    ) -> None:
        super().__init__(backend, endpoint, model_id, options)
        import openai

        self._settings: dict[str, Any] = {
            "api_key": endpoint.api_key or NO_KEY,
            "base_url": endpoint.url,
            "timeout": openai.Timeout(self.read_timeout, connect=options.connect_timeout),
            "max_retries": 0,
        }
        self._client: Any = openai.OpenAI(**self._settings)
        self._async_clients: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def _request(self, params: Any, **fields: Any) -> dict[str, Any]:
        return {
            "model": self.model_id,
            "stream": True,
            "stream_options": {"include_usage": True},
            "extra_body": self.extensions(params) or None,
            **self.sampling(params),
            **fields,
        }

    def open_chat(
        self,
        messages: list[dict[str, Any]],
        params: Any,
        constraint: ResponseFormat | None,
        tools: Mapping[str, Any],
    ) -> Any:
        fields = _format_fields(constraint)
        return self._client.chat.completions.create(
            **self._request(params, messages=messages, **fields, **tools)
        )

    def open_completion(self, prompt: str, params: Any) -> Any:
        return self._client.completions.create(**self._request(params, prompt=prompt))

    def open_embeddings(self, texts: list[str]) -> tuple[list[list[float]], int]:
        response = self._client.embeddings.create(
            model=self.model_id,
            input=texts,
            encoding_format="float",
            extra_body=self.options.extra_body or None,
        )
        data = sorted(response.data, key=lambda item: item.index)
        usage = getattr(response, "usage", None)
        return [list(item.embedding) for item in data], int(getattr(usage, "prompt_tokens", 0))

    def events(self, stream: Any) -> Iterator[EngineEvent]:
        return chunk_events(stream, _text_of)

    def _async_client(self) -> Any:
        import openai

        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = self._async_clients[loop] = openai.AsyncOpenAI(**self._settings)
        return client

    async def aopen_chat(
        self,
        messages: list[dict[str, Any]],
        params: Any,
        constraint: ResponseFormat | None,
        tools: Mapping[str, Any],
    ) -> Any:
        chat = self._async_client().chat.completions
        fields = _format_fields(constraint)
        return await chat.create(**self._request(params, messages=messages, **fields, **tools))

    async def aopen_completion(self, prompt: str, params: Any) -> Any:
        completions = self._async_client().completions
        return await completions.create(**self._request(params, prompt=prompt))

    def aevents(self, stream: Any) -> AsyncIterator[EngineEvent]:
        return achunk_events(stream, _text_of)

    def describe(self, exc: Exception) -> tuple[str, int | None, str, Mapping[str, str] | None]:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return "timeout", None, str(exc), None
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            return "connection", None, f"{type(cause or exc).__name__}: {cause or exc}", None
        if isinstance(exc, openai.APIStatusError):
            return (
                "status",
                exc.status_code,
                _server_message(exc.body, exc.message),
                exc.response.headers,
            )
        name = type(exc).__name__
        if "Timeout" in name:
            return "timeout", None, f"{name}: {exc}", None
        return "other", None, f"{name}: {exc}", None

    def close(self) -> None:
        self._client.close()


def _text_of(choice: Any) -> str | None:
    delta = getattr(choice, "delta", None)  # chat chunks have a delta, completions a text
    return delta.content if delta is not None else getattr(choice, "text", None)


def _server_message(body: object, fallback: str) -> str:
    """The human part of an error body: OpenAI's {"error": {"message"}}, FastAPI's detail."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        for key in ("message", "detail"):
            if body.get(key):
                return str(body[key])
    if isinstance(body, str) and body:
        return body
    return fallback


class OpenAICompatibleBackend(HostedBackend):
    """Base for backends that speak the OpenAI protocol."""

    packages = (("openai", "openai"),)
    embeds = True
    #: Whether the server takes top_k / repetition_penalty and /v1/completions.
    sampling_extensions: ClassVar[bool] = True
    supports_completion: ClassVar[bool] = True

    @classmethod
    def engine_class(cls) -> type[HostedEngine]:
        return OpenAICompatibleEngine


def _format_fields(constraint: ResponseFormat | None) -> dict[str, Any]:
    """OpenAI's response_format field (the core checked the type is one it has)."""
    return {} if constraint is None else {"response_format": constraint.openai}
