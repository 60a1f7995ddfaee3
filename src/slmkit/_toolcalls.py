"""Tool calls in a stream: found in a local model's text per template family, checked at
the end of every stream (local or hosted), and assembled into ``Completion.tool_calls``.

Families: Hermes/Qwen (``<tool_call>{json}</tool_call>``), Llama 3.x (the whole answer is
``{"name": ..., "parameters": {...}}``, after ``<|python_tag|>`` or not), Mistral (the
whole answer is ``[TOOL_CALLS] [{...}]``; the marker is a control token a decoder may
drop) and a lenient fallback for every family: a fenced JSON block holding an offered
tool's name and its arguments. Prose is never read as a call.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Generator, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from .errors import ToolCallInvalid
from .tools import arguments_object
from .tools import call_id as new_call_id
from .types import Chunk, FinishReason, ToolCall, ToolCallDelta

if TYPE_CHECKING:
    from .tools import ToolSet

__all__ = [
    "CallChecker",
    "CallExtractor",
    "Family",
    "assemble",
    "awith_checked_calls",
    "template_family",
    "with_calls",
]

Family = Literal["hermes", "llama3", "mistral", "json"]

_HERMES = ("<tool_call>", "</tool_call>")
_FENCE = ("```", "```")
#: How an answer that is one JSON call (or list of calls) may begin.
_WHOLE_STARTS = ("{", "[", "[TOOL_CALLS]", "<|python_tag|>")
_TOOLS_WORD = re.compile(r"\btools\b")
_LANGUAGE_TAG = re.compile(r"^[A-Za-z0-9_+-]*\n")


def template_family(template: str) -> Family | None:
    """The tool-call format a chat template teaches; None when it has no tools section."""
    if _TOOLS_WORD.search(template) is None:
        return None
    if "<tool_call>" in template:
        return "hermes"
    if "[TOOL_CALLS]" in template:
        return "mistral"
    if "<|python_tag|>" in template or "ipython" in template:
        return "llama3"
    return "json"


def argument_key(family: Family) -> str:
    """The key a family puts the arguments under (Llama 3.x says "parameters")."""
    return "parameters" if family == "llama3" else "arguments"


class CallExtractor:
    """Splits one stream's text into prose and tool calls, as the text arrives.

    Text that may open a call is held back until the call closes (or proves to be prose);
    a whole answer that begins like a JSON call is held to the end. Whitespace around
    calls is dropped.
    """

    def __init__(self, toolset: ToolSet, family: Family) -> None:
        self._toolset = toolset
        self._spans = [_HERMES, _FENCE] if family == "hermes" else [_FENCE]
        self._buffer = ""
        self._mode: Literal["start", "free", "whole"] = "start"
        self._inside: tuple[str, str] | None = None
        self._space = ""  # whitespace held until it proves to sit between prose
        self.calls: list[ToolCall] = []

    def feed(self, text: str) -> tuple[str, list[ToolCallDelta]]:
        self._buffer += text
        if self._mode == "start":
            head = self._buffer.lstrip()
            if not head or any(s.startswith(head) and s != head for s in _WHOLE_STARTS):
                return "", []  # not enough text yet to tell
            self._mode = "whole" if head.startswith(_WHOLE_STARTS) else "free"
            self._buffer = head
        if self._mode == "whole":
            return "", []
        return self._scan()

    def end(self, reason: FinishReason) -> tuple[str, list[ToolCallDelta]]:
        """What remains once the stream ended with ``reason``."""
        rest, self._buffer = self._buffer, ""
        prose: list[str] = []
        deltas: list[ToolCallDelta] = []
        if self._mode == "whole":
            deltas = self._whole(rest, cut=reason == "length")
            if not deltas:
                prose.append(rest)
        elif self._inside is not None:
            opening, _ = self._inside
            body = rest[len(opening) :]
            if self._inside == _HERMES and reason != "length":  # EOS before </tool_call>
                deltas = self._hermes(body, rest)
            else:
                prose.append(rest)
        else:
            prose.append(rest)
        text = self._prose("".join(prose))
        if not self.calls:
            text, self._space = text + self._space, ""
        return text, deltas

    def _scan(self) -> tuple[str, list[ToolCallDelta]]:
        prose: list[str] = []
        deltas: list[ToolCallDelta] = []
        while True:
            if self._inside is not None:
                opening, closing = self._inside
                close_at = self._buffer.find(closing, len(opening))
                if close_at < 0:
                    break
                end = close_at + len(closing)
                whole, body = self._buffer[:end], self._buffer[len(opening) : close_at]
                self._buffer, self._inside = self._buffer[end:], None
                found = self._hermes(body, whole) if opening == _HERMES[0] else self._fenced(body)
                if found:
                    deltas += found
                else:
                    prose.append(self._prose(whole))
                continue
            starts = [(self._buffer.find(o), (o, c)) for o, c in self._spans]
            starts = [(at, span) for at, span in starts if at >= 0]
            if starts:
                at, span = min(starts, key=lambda s: s[0])
                prose.append(self._prose(self._buffer[:at]))
                self._buffer, self._inside = self._buffer[at:], span
                continue
            keep = _partial_marker(self._buffer, [o for o, _ in self._spans])
            cut = len(self._buffer) - keep
            prose.append(self._prose(self._buffer[:cut]))
            self._buffer = self._buffer[cut:]
            break
        return "".join(prose), deltas

    def _prose(self, text: str) -> str:
        """Text to emit now; trailing whitespace waits to see whether prose follows it."""
        if not text:
            return ""
        joined = self._space + text
        body = joined.rstrip()
        self._space = joined[len(body) :]
        return body

    def _hermes(self, body: str, whole: str) -> list[ToolCallDelta]:
        """An explicit ``<tool_call>``: it must be a good call, or it is an error."""
        try:
            value = json.loads(body)
        except json.JSONDecodeError as exc:
            raise ToolCallInvalid(f"the model's tool call is not JSON: {exc}", whole) from None
        if not isinstance(value, dict) or "name" not in value:
            raise ToolCallInvalid("the model's tool call has no name", whole)
        arguments = value.get("arguments", value.get("parameters", {}))
        return self._record([self._toolset.check(value["name"], arguments, whole)])

    def _fenced(self, body: str) -> list[ToolCallDelta]:
        """A fenced block is a call only when it is JSON naming an offered tool."""
        return self._record(self._json_calls(_LANGUAGE_TAG.sub("", body, count=1), body))

    def _whole(self, text: str, cut: bool) -> list[ToolCallDelta]:
        marked = text.startswith(("[TOOL_CALLS]", "<|python_tag|>"))
        body = text.removeprefix("[TOOL_CALLS]").removeprefix("<|python_tag|>")
        if cut:
            return []
        calls = self._json_calls(body, text)
        if marked and not calls:
            raise ToolCallInvalid("the model's tool call is not a JSON call", text)
        return self._record(calls)

    def _json_calls(self, body: str, text: str) -> list[ToolCall]:
        values = _json_values(body)
        if len(values) == 1 and isinstance(values[0], list):
            values = values[0]
        items = values
        shaped = [_call_shape(item) for item in items]
        if not items or any(s is None or self._toolset.get(s[0]) is None for s in shaped):
            return []
        return [self._toolset.check(name, arguments, text) for name, arguments in shaped]  # type: ignore[misc]

    def _record(self, calls: list[ToolCall]) -> list[ToolCallDelta]:
        deltas = []
        for call in calls:
            index = len(self.calls)
            self.calls.append(call)
            arguments = json.dumps(call.arguments, ensure_ascii=False)
            deltas.append(ToolCallDelta(index, call.id, call.name, arguments))
        if calls:
            self._space = ""
        return deltas


def _json_values(text: str) -> list[Any]:
    """The JSON values ``text`` holds one after another (a call a line, as Qwen writes
    several); empty when anything else is there."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return values
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            return []
        values.append(value)


def _call_shape(item: Any) -> tuple[str, Any] | None:
    """(name, arguments) of ``{"name": ..., "arguments"|"parameters": {...}}``, else None."""
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        return None
    arguments = item.get("arguments", item.get("parameters"))
    if not isinstance(arguments, (dict, str)) or set(item) - {
        "name",
        "arguments",
        "parameters",
        "type",
    }:
        return None
    return item["name"], arguments


def _partial_marker(text: str, markers: list[str]) -> int:
    """Length of the longest tail of ``text`` that begins one of ``markers``."""
    longest = 0
    for marker in markers:
        for size in range(min(len(marker) - 1, len(text)), 0, -1):
            if marker.startswith(text[-size:]):
                longest = max(longest, size)
                break
    return longest


def with_calls(
    chunks: Generator[Chunk, None, None], extractor: CallExtractor
) -> Generator[Chunk, None, None]:
    """A token engine's chunks with its tool calls taken out of the text as deltas."""
    try:
        for chunk in chunks:
            text, deltas = extractor.feed(chunk.text)
            if chunk.finish_reason is not None:
                tail, more = extractor.end(chunk.finish_reason)
                yield replace(chunk, text=text + tail, tool_calls=tuple(deltas + more))
            elif text or deltas:
                yield Chunk(text, tool_calls=tuple(deltas))
    finally:
        chunks.close()


class CallChecker:
    """Collects a stream's tool-call deltas; at the last chunk checks the calls against the
    tools (ToolCallInvalid on a malformed one) and makes the finish reason "tool_calls"."""

    def __init__(self, toolset: ToolSet) -> None:
        self._toolset = toolset
        self._deltas: list[ToolCallDelta] = []

    def take(self, chunk: Chunk) -> Chunk:
        self._deltas += chunk.tool_calls
        if chunk.finish_reason is None or not self._deltas:
            return chunk
        calls = assemble(self._deltas, self._toolset)
        if calls and chunk.finish_reason == "stop":
            return replace(chunk, finish_reason="tool_calls")
        return chunk


def checked_calls(
    chunks: Generator[Chunk, None, None], checker: CallChecker
) -> Generator[Chunk, None, None]:
    try:
        for chunk in chunks:
            yield checker.take(chunk)
    finally:
        chunks.close()


async def awith_checked_calls(
    chunks: AsyncIterator[Chunk], checker: CallChecker
) -> AsyncIterator[Chunk]:
    """Async twin of :func:`checked_calls`."""
    async for chunk in chunks:
        yield checker.take(chunk)


def assemble(deltas: Iterable[ToolCallDelta], toolset: ToolSet | None = None) -> list[ToolCall]:
    """The calls that ``deltas`` make, in index order; checked when ``toolset`` is given."""
    parts: dict[int, list[ToolCallDelta]] = {}
    for delta in deltas:
        parts.setdefault(delta.index, []).append(delta)
    calls = []
    for index in sorted(parts):
        pieces = parts[index]
        call_id = next((p.id for p in pieces if p.id), None)
        name = "".join(p.name for p in pieces if p.name)
        arguments = "".join(p.arguments for p in pieces)
        text = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
        if toolset is not None:
            calls.append(toolset.check(name, arguments, text, call_id))
            continue
        value = arguments_object(name, arguments, text)
        calls.append(ToolCall(call_id or new_call_id(), name, value))
    return calls
