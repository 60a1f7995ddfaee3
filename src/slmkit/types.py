"""Result types: what a generation returns. Plain dataclasses, cheap to import."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypedDict

__all__ = [
    "Chunk",
    "Completion",
    "Embeddings",
    "FinishReason",
    "Message",
    "ModelInfo",
    "Timings",
    "Usage",
]

FinishReason = Literal["stop", "length"]


class Message(TypedDict):
    """One chat message in OpenAI form."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Usage:
    """Token counts for one request."""

    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Timings:
    """Wall-clock figures for one request, as defined in docs/benchmarks.md.

    ``ttft_s``: request start to first generated token.
    ``decode_tokens_per_s``: tokens after the first, divided by the time after the first.
    """

    ttft_s: float
    total_s: float
    decode_tokens_per_s: float


@dataclass(frozen=True)
class Completion:
    """A finished generation."""

    text: str
    finish_reason: FinishReason
    usage: Usage
    timings: Timings
    backend: str
    model: str


@dataclass(frozen=True)
class Chunk:
    """One piece of a streamed generation. The last chunk carries finish_reason and usage."""

    text: str
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    timings: Timings | None = None


@dataclass(frozen=True)
class Embeddings:
    """One vector per input, in input order; ``usage.completion_tokens`` is always 0."""

    vectors: list[list[float]]
    dimensions: int
    usage: Usage
    model: str
    backend: str


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded LLM runs on. ``reason`` explains how the backend was chosen."""

    backend: str
    model: str
    artifact: str
    device: str
    context_length: int
    is_chat: bool
    reason: str = ""
    extra: dict[str, object] = field(default_factory=dict)
