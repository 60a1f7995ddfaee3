"""OpenAI's wire format: the request bodies the server accepts and the bodies it answers.

Requests are strict (``extra="forbid"``, like OpenAI's own API): a field slmkit does not know
is a 400 naming it, and a known OpenAI field slmkit cannot honour (``logprobs``, penalties,
``n > 1``) is a 400 saying so, never ignored. ``tools`` and ``tool_choice`` go to the LLM as
given (the core checks them); tool calls are answered in OpenAI's shape. ``top_k`` and
``repetition_penalty`` (``repeat_penalty``, llama.cpp's name) are accepted as extensions,
as vLLM and llama.cpp's server do.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..types import ToolCall, ToolCallDelta

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "CompletionRequest",
    "EmbeddingRequest",
    "GenerationRequest",
    "UsageBody",
    "chat_chunk",
    "chat_completion",
    "completion_chunk",
    "text_completion",
    "tool_call_delta",
    "usage_chunk",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    """One message. ``developer`` is OpenAI's newer name for ``system``; an assistant
    message may carry ``tool_calls`` (content null), a ``tool`` message answers one."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = Field(None, description="Accepted for compatibility; not rendered.")
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    def as_slmkit(self) -> dict[str, Any]:
        """The message as slmkit takes it; the core validates the tool fields."""
        content = self.content
        text = content if not isinstance(content, list) else "".join(p.text for p in content)
        role = "system" if self.role == "developer" else self.role
        message: dict[str, Any] = {"role": role, "content": text}
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        if role == "tool":
            message["tool_call_id"] = self.tool_call_id
        return message


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")  # newer OpenAI fields change nothing here

    include_usage: bool = False


class GenerationRequest(_Strict):
    """Fields shared by /v1/chat/completions and /v1/completions."""

    model: str | None = Field(None, description="Served model id; default: the first one.")
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=1, description="One choice per request.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    # Known OpenAI fields that slmkit cannot honour yet: only their neutral value passes.
    frequency_penalty: float | None = Field(None, ge=0.0, le=0.0)
    presence_penalty: float | None = Field(None, ge=0.0, le=0.0)
    logit_bias: dict[str, float] | None = Field(None, max_length=0)
    # Extensions (vLLM, llama.cpp's server).
    top_k: int | None = Field(None, ge=0)
    repetition_penalty: float | None = Field(None, gt=0.0, le=10.0)
    repeat_penalty: float | None = Field(None, gt=0.0, le=10.0)

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    def budget(self) -> int | None:
        return self.max_tokens

    def params(self) -> dict[str, Any]:
        """The slmkit generation parameters this request sets (unset ones keep the model's
        defaults)."""
        penalty = self.repetition_penalty
        if penalty is None:
            penalty = self.repeat_penalty  # llama.cpp's name for it
        given = {
            "max_tokens": self.budget(),
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "stop": self.stop,
            "top_k": self.top_k,
            "repetition_penalty": penalty,
        }
        return {name: value for name, value in given.items() if value is not None}


class ChatRequest(GenerationRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: Literal[False] | None = None
    top_logprobs: None = None
    response_format: dict[str, Any] | None = None
    tools: list[Any] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None

    def budget(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def params(self) -> dict[str, Any]:
        """As for completions, plus the response format (OpenAI's shapes, read by
        :func:`slmkit.structured.parse_response_format`; "text" is no constraint) and tools."""
        given = {"tools": self.tools, "tool_choice": self.tool_choice}
        if self.response_format not in (None, {"type": "text"}):
            given["response_format"] = self.response_format
        return {**super().params(), **{k: v for k, v in given.items() if v is not None}}


class CompletionRequest(GenerationRequest):
    prompt: str | list[str] = Field(min_length=1)
    echo: Literal[False] | None = None
    suffix: None = None
    best_of: Literal[1] | None = None
    logprobs: None = None

    def text(self) -> str:
        if isinstance(self.prompt, str):
            return self.prompt
        if len(self.prompt) != 1:
            raise ValueError("prompt: one prompt per request; send a list of one, or a string")
        return self.prompt[0]


class EmbeddingRequest(_Strict):
    model: str | None = None
    input: str | list[str] = Field(min_length=1)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None


class UsageBody(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def _envelope(kind: str, request_id: str, model: str, created: int) -> dict[str, Any]:
    return {"id": request_id, "object": kind, "created": created, "model": model}


def chat_completion(
    request_id: str,
    model: str,
    text: str,
    finish_reason: str,
    usage: UsageBody,
    tool_calls: tuple[ToolCall, ...] = (),
) -> dict[str, Any]:
    body = _envelope("chat.completion", request_id, model, int(time.time()))
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:  # OpenAI's content is null beside calls unless the model also wrote text
        message = {
            "role": "assistant",
            "content": text or None,
            "tool_calls": [call.to_openai() for call in tool_calls],
        }
    body["choices"] = [
        {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": finish_reason,
        }
    ]
    body["usage"] = usage.model_dump()
    return body


def text_completion(
    request_id: str, model: str, text: str, finish_reason: str, usage: UsageBody
) -> dict[str, Any]:
    body = _envelope("text_completion", request_id, model, int(time.time()))
    body["choices"] = [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}]
    body["usage"] = usage.model_dump()
    return body


def tool_call_delta(delta: ToolCallDelta) -> dict[str, Any]:
    """One streamed piece of a call: OpenAI sends id, type and name with the first."""
    function: dict[str, str] = {"arguments": delta.arguments}
    piece: dict[str, Any] = {"index": delta.index, "function": function}
    if delta.id is not None:
        piece.update(id=delta.id, type="function")
    if delta.name is not None:
        function["name"] = delta.name
    return piece


def chat_chunk(
    request_id: str,
    model: str,
    created: int,
    delta: dict[str, Any],
    finish_reason: str | None,
    include_usage: bool,
) -> dict[str, Any]:
    body = _envelope("chat.completion.chunk", request_id, model, created)
    body["choices"] = [
        {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    ]
    if include_usage:
        body["usage"] = None  # the spec: null on every chunk but the last
    return body


def completion_chunk(
    request_id: str,
    model: str,
    created: int,
    text: str,
    finish_reason: str | None,
    include_usage: bool,
) -> dict[str, Any]:
    body = _envelope("text_completion", request_id, model, created)
    body["choices"] = [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}]
    if include_usage:
        body["usage"] = None
    return body


def usage_chunk(
    kind: str, request_id: str, model: str, created: int, usage: UsageBody
) -> dict[str, Any]:
    """The extra last chunk ``stream_options.include_usage`` asks for: no choices, usage."""
    body = _envelope(kind, request_id, model, created)
    body["choices"] = []
    body["usage"] = usage.model_dump()
    return body
