"""Reading a hosted stream: OpenAI-shaped chunks into engine events (text and tool-call
pieces), and the state of one stream (text so far, finish reason, usage) that the sync and
async readers share."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from time import monotonic
from typing import TYPE_CHECKING, Any

from ..errors import StreamInterrupted
from ..types import FinishReason, ToolCallDelta, Usage
from .base import EngineEvent, Finish, TextDelta

if TYPE_CHECKING:
    from ._hosted import HostedEngine

__all__ = ["StreamState", "achunk_events", "chunk_events", "finish_reason", "usage_of"]

#: OpenAI's finish reasons as slmkit names them (function_call is the legacy tool_calls).
_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def finish_reason(value: Any) -> FinishReason | None:
    """The service's finish reason in slmkit's terms; an unknown one reads as "stop"."""
    value = getattr(value, "value", value)  # str Enums too
    if not value:
        return None
    return _FINISH_REASONS.get(str(value), "stop")


def usage_of(counted: Any) -> Usage | None:
    """Usage only when the service reported both counts: never an invented zero."""
    prompt = getattr(counted, "prompt_tokens", None)
    completion = getattr(counted, "completion_tokens", None)
    if isinstance(prompt, int) and isinstance(completion, int):
        return Usage(prompt, completion)
    return None


def chunk_events(
    chunks: Iterable[Any], text_of: Callable[[Any], str | None]
) -> Iterator[EngineEvent]:
    """Events from OpenAI-shaped chunks (``choices[0]``, optional ``usage``), any SDK.

    A chunk that carries a finish reason or usage gives a partial :class:`Finish`;
    the reader merges them into the one final event.
    """
    for chunk in chunks:
        yield from events_of(chunk, text_of)


async def achunk_events(
    chunks: AsyncIterable[Any], text_of: Callable[[Any], str | None]
) -> AsyncIterator[EngineEvent]:
    """:func:`chunk_events` for an SDK's async stream."""
    async for chunk in chunks:
        for event in events_of(chunk, text_of):
            yield event


def events_of(chunk: Any, text_of: Callable[[Any], str | None]) -> list[EngineEvent]:
    """The events one OpenAI-shaped chunk carries."""
    usage = usage_of(getattr(chunk, "usage", None))
    if not chunk.choices:
        return [Finish(usage=usage)] if usage is not None else []
    choice = chunk.choices[0]
    events: list[EngineEvent] = []
    text = text_of(choice)
    if text:
        events.append(TextDelta(text))
    calls = _field(getattr(choice, "delta", None), "tool_calls") or ()
    events += [tool_call_delta(call, position) for position, call in enumerate(calls)]
    reason = finish_reason(choice.finish_reason)
    if reason is not None or usage is not None:
        events.append(Finish(reason, usage))
    return events


def tool_call_delta(call: Any, position: int) -> ToolCallDelta:
    """One piece of ``delta.tool_calls`` (any SDK's object, or a dict) as a ToolCallDelta;
    the core checks the assembled call against the tool's schema."""
    function = _field(call, "function")
    index = _field(call, "index")
    arguments = _field(function, "arguments")
    if arguments is not None and not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)  # an object, not OpenAI's text
    return ToolCallDelta(
        index if isinstance(index, int) else position,
        _field(call, "id") or None,
        _field(function, "name") or None,
        arguments or "",
    )


def _field(value: Any, name: str) -> Any:
    """``value.name``, or ``value[name]`` where an SDK model keeps undeclared fields
    (azure-ai-inference has no ``index`` on its tool-call updates)."""
    found = getattr(value, name, None)
    if found is None and isinstance(value, Mapping):
        found = value.get(name)
    return found


def _describe_chain(exc: BaseException) -> str:
    """``Type: message``, plus the underlying cause (SDKs wrap the transport's error)."""
    text = f"{type(exc).__name__}: {exc}"
    if exc.__cause__ is not None:
        text += f" ({type(exc.__cause__).__name__}: {exc.__cause__})"
    return text


class StreamState:
    """What one hosted stream has said so far: the text, the finish reason, the usage.

    Shared by the sync and async readers, so both break off and finish the same way.
    """

    def __init__(self, engine: HostedEngine, deadline: float) -> None:
        self._engine = engine
        self._deadline = deadline
        self._received: list[str] = []
        self._reason: FinishReason | None = None
        self._usage: Usage | None = None
        self._named: set[int] = set()

    def take(self, event: EngineEvent) -> EngineEvent | None:
        """Record ``event``; the event to pass on (text or a tool-call piece), else None."""
        if monotonic() > self._deadline:
            raise TimeoutError(f"the answer took longer than {self._engine.options.timeout:g} s")
        if isinstance(event, TextDelta):
            self._received.append(event.text)
            return event
        if isinstance(event, ToolCallDelta):
            # OpenAI names a call once; llama-cpp-python repeats id and name in every piece.
            if event.index in self._named:
                return replace(event, id=None, name=None)
            if event.name:
                self._named.add(event.index)
            return event
        if isinstance(event, Finish):
            self._reason = event.reason or self._reason
            self._usage = event.usage or self._usage
        return None

    def interrupted(self, exc: Exception) -> StreamInterrupted:
        cause = str(exc) if isinstance(exc, TimeoutError) else _describe_chain(exc)
        cause = self._engine.redact(cause)[:300]
        return StreamInterrupted(
            f"backend {self._engine.backend_name!r}: the stream broke off after "
            f"{len(''.join(self._received))} characters ({cause}); the partial answer is in "
            f".partial_text",
            partial_text="".join(self._received),
        )

    def finish(self) -> Finish:
        if self._reason is None:
            raise StreamInterrupted(
                f"backend {self._engine.backend_name!r}: the stream ended without a finish "
                f"reason after {len(''.join(self._received))} characters (connection closed "
                "early?)",
                partial_text="".join(self._received),
            )
        return Finish(self._reason, self._usage)
