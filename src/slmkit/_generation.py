"""The one generation loop: token ids (or hosted deltas) in, Chunks out.

Every backend goes through here, so EOS, max_tokens, stop sequences, UTF-8 safety,
usage and timings behave the same everywhere.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Generator, Iterable, Iterator
from time import perf_counter

from ._toolcalls import assemble
from .backends.base import EngineEvent, Finish, Prefill, Request, TextDelta, Token, TokenEngine
from .errors import GenerationError, SlmkitError
from .textstream import StopMatcher
from .types import Chunk, Completion, FinishReason, Timings, ToolCallDelta, Usage, freeze

__all__ = ["arun_text", "collect", "run_text", "run_tokens"]


def _timings(start: float, first: float | None, last: float, generated: int) -> Timings:
    ttft = (first - start) if first is not None else (last - start)
    decode_time = last - first if first is not None else 0.0
    rate = (generated - 1) / decode_time if generated > 1 and decode_time > 0 else 0.0
    return Timings(ttft_s=ttft, total_s=last - start, decode_tokens_per_s=rate)


def run_tokens(
    engine: TokenEngine,
    events: Iterator[EngineEvent],
    request: Request,
    start: float,
    cancel: threading.Event | None = None,
) -> Generator[Chunk, None, None]:
    """Apply the core's policy to a token engine's events: EOS, max_tokens, stop
    sequences, UTF-8-safe text, usage and timings."""
    params = request.params
    detokenizer = engine.detokenizer()
    stops = StopMatcher(params.stop)
    eos = engine.eos_token_ids
    max_tokens = params.max_tokens
    generated = 0
    first: float | None = None
    reason: FinishReason = "length"
    cached = 0
    try:
        for event in events:
            if type(event) is not Token:
                if isinstance(event, Finish):
                    reason = event.reason or ("stop" if generated < max_tokens else "length")
                    break
                if isinstance(event, Prefill):
                    cached = event.cached_tokens
                continue
            if first is None:
                first = perf_counter()
            token = event.id
            if token in eos:
                reason = "stop"
                break
            generated += 1
            text = detokenizer.add(token)
            if text:
                text = stops.feed(text)
                if text:
                    yield Chunk(text)
                if stops.stopped:
                    reason = "stop"
                    break
            if generated >= max_tokens or (cancel is not None and cancel.is_set()):
                break
        else:  # the runtime ended by itself (it consumed the end-of-sequence token)
            if generated < max_tokens:
                reason = "stop"
    except SlmkitError:
        raise
    except Exception as exc:
        raise GenerationError(
            f"the runtime failed while generating: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        _close(events)
    tail = "" if stops.stopped else stops.feed(detokenizer.flush())
    if not stops.stopped:
        tail += stops.flush()
    last = perf_counter()
    prompt_tokens = len(request.prompt_ids or ())
    yield Chunk(
        tail,
        finish_reason=reason,
        usage=Usage(prompt_tokens, generated, cached),
        timings=_timings(start, first, last, generated),
        runtime=freeze(request.facts),
    )


class _TextPolicy:
    """Stop sequences, usage and timings for a hosted stream, shared by the sync and the
    async loop so both behave the same."""

    def __init__(self, request: Request, start: float) -> None:
        self.request = request
        self.start = start
        self.stops = StopMatcher(request.params.stop)
        self.first: float | None = None
        self.pieces = 0
        self.reason: FinishReason = "stop"
        self.usage: Usage | None = None
        self.done = False

    def take(self, event: EngineEvent) -> Chunk | None:
        """The chunk to emit for ``event`` (None for none); sets ``done`` when it ends."""
        if type(event) is TextDelta:
            if not event.text:
                return None
            if self.first is None:
                self.first = perf_counter()
            self.pieces += 1
            text = self.stops.feed(event.text)
            if self.stops.stopped:
                self.reason, self.done = "stop", True
            return Chunk(text) if text else None
        if isinstance(event, ToolCallDelta):
            if self.first is None:
                self.first = perf_counter()
            return Chunk("", tool_calls=(event,))
        if isinstance(event, Finish):
            self.usage = event.usage
            self.reason = event.reason or "stop"
            self.done = True
        return None

    def last(self) -> Chunk:
        tail = "" if self.stops.stopped else self.stops.flush()
        # Without usage from the service the decode rate counts text pieces, not tokens.
        counted = self.usage.completion_tokens if self.usage is not None else self.pieces
        return Chunk(
            tail,
            finish_reason=self.reason,
            usage=self.usage,
            timings=_timings(self.start, self.first, perf_counter(), counted),
            runtime=freeze(self.request.facts),
        )


def run_text(
    events: Iterator[EngineEvent],
    request: Request,
    start: float,
    cancel: threading.Event | None = None,
) -> Generator[Chunk, None, None]:
    """Apply the core's stop-sequence policy, usage and timings to a hosted stream."""
    policy = _TextPolicy(request, start)
    try:
        for event in events:
            chunk = policy.take(event)
            if chunk is not None:
                yield chunk
            if policy.done or (cancel is not None and cancel.is_set()):
                break
    finally:
        _close(events)
    yield policy.last()


async def arun_text(
    events: AsyncIterator[EngineEvent], request: Request, start: float
) -> AsyncIterator[Chunk]:
    """run_text() for a hosted engine's async stream (``RemoteEngine.arun``)."""
    policy = _TextPolicy(request, start)
    try:
        async for event in events:
            chunk = policy.take(event)
            if chunk is not None:
                yield chunk
            if policy.done:
                break
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()
    yield policy.last()


def _close(events: Iterator[EngineEvent]) -> None:
    close = getattr(events, "close", None)
    if close is not None:
        close()


def collect(chunks: Iterable[Chunk], backend: str, model: str) -> Completion:
    """Drain a stream into one Completion: the non-streaming path is the streaming one."""
    parts: list[str] = []
    deltas: list[ToolCallDelta] = []
    last: Chunk | None = None
    for chunk in chunks:
        parts.append(chunk.text)
        deltas += chunk.tool_calls
        last = chunk
    if last is None or last.finish_reason is None or last.timings is None:
        raise GenerationError(f"backend {backend!r} ended the stream without a final chunk")
    return Completion(
        text="".join(parts),
        finish_reason=last.finish_reason,
        usage=last.usage,
        timings=last.timings,
        backend=backend,
        model=model,
        runtime=last.runtime,
        parsed=last.parsed,
        tool_calls=tuple(assemble(deltas)),
    )
