"""Result types: what a generation returns. Plain dataclasses, cheap to import."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

__all__ = [
    "Chunk",
    "Completion",
    "Embeddings",
    "FinishReason",
    "Message",
    "ModelInfo",
    "Timings",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
]

#: Why a generation ended, in OpenAI's terms: "stop" (end of turn or a stop sequence),
#: "length" (max_tokens), "tool_calls", "content_filter" (a hosted service refused).
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


class FrozenDict(dict[str, Any]):
    """A read-only dict: JSON, pickle and deepcopy work as for a dict; mutation raises."""

    def _readonly(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("this mapping is read-only (a frozen copy made by slmkit)")

    __setitem__ = __delitem__ = _readonly
    clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]
    __ior__ = _readonly  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict:
        return self  # immutable all the way down: a copy would be the same

    def __copy__(self) -> FrozenDict:
        return self

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=lambda kv: kv[0])))


_EMPTY: Mapping[str, Any] = FrozenDict()


def freeze(value: Any) -> Any:
    """A read-only deep copy: dicts become FrozenDicts, lists tuples."""
    if isinstance(value, Mapping):
        return FrozenDict({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


class _Turn(TypedDict):
    role: Literal["system", "user", "assistant", "tool"]
    content: str


class Message(_Turn, total=False):
    """One chat message in OpenAI form.

    An assistant turn that called tools has ``tool_calls`` (OpenAI's shape); a tool's
    result is ``{"role": "tool", "tool_call_id": ..., "content": ...}``.
    """

    tool_calls: list[dict[str, Any]]
    tool_call_id: str
    name: str


@dataclass(frozen=True)
class ToolCall:
    """One call of a tool the model made: ``arguments`` validated against its schema."""

    id: str
    name: str
    arguments: dict[str, Any]

    def to_openai(self) -> dict[str, Any]:
        """The call in OpenAI's message shape (``arguments`` as a JSON string)."""
        import json

        arguments = json.dumps(self.arguments, ensure_ascii=False)
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": arguments},
        }


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call as it forms, in a stream chunk (and an engine event).

    Pieces with the same ``index`` make one call: ``id`` and ``name`` come once,
    ``arguments`` are fragments of its JSON text, concatenated in order.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class Usage:
    """Token counts for one request.

    ``cached_tokens``: how many of the prompt tokens were not evaluated again because the
    engine kept them from an earlier request (prefix reuse), as OpenAI reports it.
    """

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0

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
    """A finished generation.

    ``usage`` is None only when a hosted service reported no usage: slmkit never
    invents token counts. ``runtime`` holds this request's own runtime figures, when the
    backend reports any (OpenVINO's perf metrics, for instance).
    """

    text: str
    finish_reason: FinishReason
    usage: Usage | None
    timings: Timings
    backend: str
    model: str
    runtime: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    #: The validated value under ``response_format`` (a pydantic instance, a dict, the
    #: matched text); None without one, or when the answer did not end with "stop".
    parsed: Any = None
    #: The tools the model called (``finish_reason == "tool_calls"``); empty otherwise.
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def message(self) -> Message:
        """This answer as the assistant message to append to the conversation."""
        message: Message = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = [call.to_openai() for call in self.tool_calls]
        return message


@dataclass(frozen=True)
class Chunk:
    """One piece of a streamed generation.

    The last chunk has a ``finish_reason`` and carries ``usage`` (None when a hosted
    service did not report it), ``timings``, ``runtime`` and, under ``response_format``,
    ``parsed`` (as on Completion). ``tool_calls`` holds the tool-call pieces that formed
    since the previous chunk.
    """

    text: str
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    timings: Timings | None = None
    runtime: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    parsed: Any = None
    tool_calls: tuple[ToolCallDelta, ...] = ()


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
    """What a loaded LLM runs on. ``reason`` explains how the backend was chosen.

    Immutable, ``extra`` included (a read-only copy of the engine's static facts taken at
    load time); per-request figures are on each ``Completion.runtime``.
    """

    backend: str
    model: str
    artifact: str
    device: str
    context_length: int
    is_chat: bool
    reason: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", freeze(self.extra))
