"""Backend ``azure``: Azure AI Inference (Azure AI Foundry models) through azure-ai-inference.

Endpoint from ``base_url`` / ``AZURE_AI_CHAT_ENDPOINT`` (the SDK samples' name) or
``AZURE_AI_ENDPOINT``, e.g. ``https://<resource>.services.ai.azure.com/models``. Key from
``api_key`` / ``AZURE_AI_CHAT_KEY`` or ``AZURE_AI_API_KEY``; with no key and azure-identity
installed, ``DefaultAzureCredential`` (Entra ID) is used. The SDK's own retry policy is set
to zero retries so that slmkit's retry layer is the only one.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

from ..errors import AuthenticationError
from ..structured import ResponseFormat
from ._hosted import Endpoint, HostedBackend, HostedEngine, HostedOptions, chunk_events
from .base import EngineEvent

__all__ = ["AzureBackend"]


class AzureEngine(HostedEngine):
    def __init__(
        self, backend: HostedBackend, endpoint: Endpoint, model_id: str, options: HostedOptions
    ) -> None:
        super().__init__(backend, endpoint, model_id, options)
        from azure.ai.inference import ChatCompletionsClient
        from azure.core.pipeline.policies import RetryPolicy

        self._timeouts: dict[str, Any] = {
            "connection_timeout": options.connect_timeout,
            "read_timeout": self.read_timeout,
        }
        self._client: Any = ChatCompletionsClient(
            endpoint=endpoint.url,
            credential=_credential(endpoint),
            retry_policy=RetryPolicy(retry_total=0),
            logging_enable=False,
            **self._timeouts,
        )
        self._endpoint = endpoint
        self._embeddings: Any = None

    def open_embeddings(self, texts: list[str]) -> tuple[list[list[float]], int]:
        if self._embeddings is None:  # made on first use: most engines only chat
            from azure.ai.inference import EmbeddingsClient
            from azure.core.pipeline.policies import RetryPolicy

            self._embeddings = EmbeddingsClient(
                endpoint=self._endpoint.url,
                credential=_credential(self._endpoint),
                retry_policy=RetryPolicy(retry_total=0),
                logging_enable=False,
                **self._timeouts,
            )
        result = self._embeddings.embed(
            input=texts,
            model=self.model_id,
            encoding_format="float",
            model_extras=self.options.extra_body or None,
            **self._timeouts,
        )
        data = sorted(result.data, key=lambda item: item.index)
        usage = getattr(result, "usage", None)
        return [list(item.embedding) for item in data], int(getattr(usage, "prompt_tokens", 0))

    def open_chat(
        self,
        messages: list[dict[str, Any]],
        params: Any,
        constraint: ResponseFormat | None,
        tools: Mapping[str, Any],
    ) -> Any:
        fields = self.sampling(params)
        extras = self.extensions(params)
        return self._client.complete(
            messages=messages,
            stream=True,
            model=self.model_id,
            max_tokens=fields["max_tokens"],
            temperature=fields["temperature"],
            top_p=fields["top_p"],
            seed=fields.get("seed"),
            stop=fields.get("stop"),
            model_extras=extras or None,
            response_format=_azure_format(constraint),
            tools=tools.get("tools"),
            tool_choice=tools.get("tool_choice"),
            **self._timeouts,
        )

    def events(self, stream: Any) -> Iterator[EngineEvent]:
        from azure.ai.inference.models import StreamingChatCompletionsUpdate

        # The SDK's own SSE reader rejects comment lines (": ping", valid SSE that
        # sse-starlette servers send while a slow answer is on its way), so the raw
        # response is read here; the SDK's models still parse each event.
        response = getattr(stream, "_response", None)
        updates: Iterable[Any] = (
            stream
            if response is None
            else (StreamingChatCompletionsUpdate(json.loads(d)) for d in sse_data(response))
        )
        return chunk_events(
            updates, lambda choice: choice.delta.content if choice.delta is not None else None
        )

    def describe(self, exc: Exception) -> tuple[str, int | None, str, Mapping[str, str] | None]:
        from azure.core.exceptions import (
            HttpResponseError,
            ServiceRequestError,
            ServiceRequestTimeoutError,
            ServiceResponseError,
            ServiceResponseTimeoutError,
        )

        if isinstance(exc, (ServiceRequestTimeoutError, ServiceResponseTimeoutError)):
            return "timeout", None, str(exc), None
        if isinstance(exc, HttpResponseError) and exc.status_code is not None:
            response: Any = exc.response
            headers = dict(response.headers) if response is not None else None
            return "status", exc.status_code, _azure_message(exc), headers
        if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
            text = f"{type(exc).__name__}: {exc}"
            if "timed out" in text.lower() or "timeout" in text.lower():
                return "timeout", None, text, None
            return "connection", None, text, None
        return "other", None, f"{type(exc).__name__}: {exc}", None

    def close(self) -> None:
        self._client.close()
        if self._embeddings is not None:
            self._embeddings.close()


def sse_data(response: Any) -> Iterator[str]:
    """The ``data:`` payloads of a server-sent-events body, up to ``[DONE]``."""
    pending = b""
    for block in response.iter_bytes():
        pending += block
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            line = raw.rstrip(b"\r")
            if not line.startswith(b"data:"):
                continue  # comments (": ping"), event:, id:, retry:, blank separators
            payload = line[5:].removeprefix(b" ").decode("utf-8")
            if payload == "[DONE]":
                return
            yield payload


def _azure_message(exc: Any) -> str:
    error = getattr(exc, "error", None)
    if error is not None and getattr(error, "message", None):
        return str(error.message)
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            body = response.json()
        except Exception:
            body = None
        if isinstance(body, dict):
            inner = body.get("error")
            if isinstance(inner, dict) and inner.get("message"):
                return str(inner["message"])
            for key in ("message", "detail"):
                if body.get(key):
                    return str(body[key])
    return str(getattr(exc, "reason", "") or "")


def _credential(endpoint: Endpoint) -> Any:
    if endpoint.api_key:
        from azure.core.credentials import AzureKeyCredential

        return AzureKeyCredential(endpoint.api_key)
    if importlib.util.find_spec("azure.identity") is not None:
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential()
    raise AuthenticationError(
        "backend 'azure' needs a key or an Entra ID credential: set AZURE_AI_CHAT_KEY "
        "(or pass api_key=...), or pip install azure-identity to use DefaultAzureCredential"
    )


def _azure_format(constraint: ResponseFormat | None) -> Any:
    """response_format in azure-ai-inference's form: "json_object" or a JsonSchemaFormat."""
    if constraint is None:
        return None
    if constraint.schema is None:
        return "json_object"
    from azure.ai.inference.models import JsonSchemaFormat

    assert constraint.openai is not None
    spec = constraint.openai["json_schema"]
    return JsonSchemaFormat(name=spec["name"], schema=spec["schema"], strict=spec["strict"])


class AzureBackend(HostedBackend):
    name: ClassVar[str] = "azure"
    description: ClassVar[str] = "Azure AI Inference (Azure AI Foundry models)"
    packages = (("azure.ai.inference", "azure-ai-inference"),)
    embeds = True
    key_env: ClassVar[tuple[str, ...]] = ("AZURE_AI_CHAT_KEY", "AZURE_AI_API_KEY")
    url_env: ClassVar[tuple[str, ...]] = ("AZURE_AI_CHAT_ENDPOINT", "AZURE_AI_ENDPOINT")
    default_url: ClassVar[str | None] = None

    @classmethod
    def needs(cls) -> str:
        return (
            "set AZURE_AI_CHAT_ENDPOINT and AZURE_AI_CHAT_KEY (or install azure-identity "
            "for an Entra ID credential)"
        )

    @classmethod
    def engine_class(cls) -> type[HostedEngine]:
        return AzureEngine
