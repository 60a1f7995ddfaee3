"""The one generation loop: token ids (or hosted deltas) in, Chunks out.

Every backend goes through here, so EOS, max_tokens, stop sequences, UTF-8 safety,
usage and timings behave the same everywhere.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterable
from time import perf_counter

from .backends.base import Delta, TokenEngine
from .errors import GenerationError, SlmkitError
from .params import GenerationParams
from .textstream import StopMatcher
from .types import Chunk, Completion, FinishReason, Timings, Usage

__all__ = ["collect", "run_deltas", "run_tokens"]


def _timings(start: float, first: float | None, last: float, generated: int) -> Timings:
    ttft = (first - start) if first is not None else (last - start)
    decode_time = last - first if first is not None else 0.0
    rate = (generated - 1) / decode_time if generated > 1 and decode_time > 0 else 0.0
    return Timings(ttft_s=ttft, total_s=last - start, decode_tokens_per_s=rate)


def run_tokens(
    engine: TokenEngine,
    prompt_ids: list[int],
    params: GenerationParams,
    start: float,
    cancel: threading.Event | None = None,
) -> Generator[Chunk, None, None]:
    """Drive ``engine.generate_tokens`` and apply the core's policy to what it yields."""
    detokenizer = engine.detokenizer()
    stops = StopMatcher(params.stop)
    eos = engine.eos_token_ids
    max_tokens = params.max_tokens
    generated = 0
    first: float | None = None
    reason: FinishReason = "length"
    tokens = engine.generate_tokens(prompt_ids, params)
    try:
        for token in tokens:
            if first is None:
                first = perf_counter()
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
        close = getattr(tokens, "close", None)
        if close is not None:
            close()
    tail = "" if stops.stopped else stops.feed(detokenizer.flush())
    if not stops.stopped:
        tail += stops.flush()
    last = perf_counter()
    usage = Usage(prompt_tokens=len(prompt_ids), completion_tokens=generated)
    yield Chunk(
        tail, finish_reason=reason, usage=usage, timings=_timings(start, first, last, generated)
    )


def run_deltas(
    deltas: Iterable[Delta],
    params: GenerationParams,
    start: float,
    cancel: threading.Event | None = None,
) -> Generator[Chunk, None, None]:
    """Apply the core's stop-sequence policy and timing to a hosted stream."""
    stops = StopMatcher(params.stop)
    first: float | None = None
    pieces = 0
    reason: FinishReason = "stop"
    usage: Usage | None = None
    iterator = iter(deltas)
    try:
        for delta in iterator:
            if delta.text:
                if first is None:
                    first = perf_counter()
                pieces += 1
                text = stops.feed(delta.text)
                if text:
                    yield Chunk(text)
                if stops.stopped:
                    reason = "stop"
                    break
            if delta.usage is not None:
                usage = delta.usage
            if delta.finish_reason is not None:
                reason = delta.finish_reason
            if cancel is not None and cancel.is_set():
                break
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    tail = "" if stops.stopped else stops.flush()
    last = perf_counter()
    if usage is None:
        usage = Usage(prompt_tokens=0, completion_tokens=pieces)
    yield Chunk(
        tail,
        finish_reason=reason,
        usage=usage,
        timings=_timings(start, first, last, usage.completion_tokens),
    )


def collect(chunks: Iterable[Chunk], backend: str, model: str) -> Completion:
    """Drain a stream into one Completion: the non-streaming path is the streaming one."""
    parts: list[str] = []
    last: Chunk | None = None
    for chunk in chunks:
        parts.append(chunk.text)
        last = chunk
    if last is None or last.finish_reason is None or last.usage is None or last.timings is None:
        raise GenerationError(f"backend {backend!r} ended the stream without a final chunk")
    return Completion(
        text="".join(parts),
        finish_reason=last.finish_reason,
        usage=last.usage,
        timings=last.timings,
        backend=backend,
        model=model,
    )
