"""One request's generation: wait for its turn, stream, measure, and always clean up.

Streamed and non-streamed answers share :meth:`Generation.chunks`; the non-streamed
answer drains it. Leaving that generator early (the client hung up, the server is
cancelling) closes the LLM's stream, which stops generation in the worker thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from time import perf_counter, time
from typing import TYPE_CHECKING, Any, Literal

from .._toolcalls import assemble
from ..errors import SlmkitError
from ..types import Chunk, ToolCallDelta
from . import schemas
from .admission import Ticket
from .errors import APIError, from_slmkit
from .metrics import Metrics

if TYPE_CHECKING:
    from starlette.requests import Request

    from .._llm import LLM

__all__ = ["ClientGone", "Generation", "raw_prompt_stream", "until_disconnect"]

log = logging.getLogger("slmkit.server")

Kind = Literal["chat", "completion"]


def raw_prompt_stream(llm: LLM, prompt: str, params: dict[str, Any]) -> AsyncIterator[Chunk]:
    """The one place the server streams a raw prompt (no chat template) through an LLM."""
    return llm.astream_generate(prompt, **params)


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


async def until_disconnect(request: Request, work: Any) -> Any:
    """Await ``work``; if the client hangs up first, cancel it and raise ClientGone."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise ClientGone
    return task.result()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


@dataclass
class Generation:
    """A validated request, holding its ticket, until its stream ends."""

    kind: Kind
    endpoint: str
    model: str
    ticket: Ticket
    stream: AsyncIterator[Chunk]
    metrics: Metrics
    started: float
    include_usage: bool = False
    request_id: str = field(default_factory=lambda: schemas.new_id("chatcmpl"))
    created: int = field(default_factory=lambda: int(time()))

    async def chunks(self) -> AsyncIterator[Chunk]:
        """The LLM's chunks once this request's turn comes; records the figures."""
        finished = False
        first: float | None = None
        try:
            await self.ticket.wait()
            async for chunk in self.stream:
                if first is None and (chunk.text or chunk.tool_calls or chunk.finish_reason):
                    first = perf_counter()
                    self.metrics.observe(
                        "slmkit_time_to_first_token_seconds", first - self.started, model=self.model
                    )
                if chunk.finish_reason is not None:
                    finished = True
                    self._record(chunk, first)
                yield chunk
        except (asyncio.CancelledError, GeneratorExit):
            if not finished:
                self.metrics.count("slmkit_requests_cancelled_total", model=self.model)
            raise
        finally:
            was_running = self.ticket.running
            self.ticket.release()
            aclose = getattr(self.stream, "aclose", None)
            if aclose is not None:
                await aclose()
            duration = perf_counter() - self.started
            if was_running:
                self.ticket.admission.record_duration(duration)
            self.metrics.observe("slmkit_request_duration_seconds", duration, model=self.model)

    def _record(self, last: Chunk, first: float | None) -> None:
        if last.usage is None:
            return
        self.metrics.count("slmkit_prompt_tokens_total", last.usage.prompt_tokens, model=self.model)
        self.metrics.count(
            "slmkit_completion_tokens_total", last.usage.completion_tokens, model=self.model
        )
        generated = last.usage.completion_tokens
        if first is not None and generated > 1:
            per_token = (perf_counter() - first) / (generated - 1)
            name = "slmkit_time_per_output_token_seconds"
            self.metrics.observe(name, per_token, model=self.model)

    async def answer(self) -> dict[str, Any]:
        """The whole answer as one OpenAI body (the non-streamed form)."""
        parts: list[str] = []
        deltas: list[ToolCallDelta] = []
        last: Chunk | None = None
        async for chunk in self.chunks():
            parts.append(chunk.text)
            deltas += chunk.tool_calls
            last = chunk
        if last is None or last.finish_reason is None:
            raise APIError(500, "the model ended without finishing", type="server_error")
        usage, text = _usage(last), "".join(parts)
        if self.kind == "completion":
            return schemas.text_completion(
                self.request_id, self.model, text, last.finish_reason, usage
            )
        calls = tuple(assemble(deltas))  # checked against the tools by the LLM already
        return schemas.chat_completion(
            self.request_id, self.model, text, last.finish_reason, usage, calls
        )

    async def events(self) -> AsyncIterator[str]:
        """Server-sent events in OpenAI's streaming form, ending with ``data: [DONE]``."""
        try:
            started_reply = False
            async for chunk in self.chunks():
                if self.kind == "chat" and not started_reply:
                    started_reply = True
                    yield self._event({"role": "assistant", "content": ""}, None)
                if chunk.text:
                    yield self._event(chunk.text, None)
                if chunk.tool_calls:
                    calls = [schemas.tool_call_delta(d) for d in chunk.tool_calls]
                    yield self._event({"tool_calls": calls}, None)
                if chunk.finish_reason is not None:
                    yield self._event({} if self.kind == "chat" else "", chunk.finish_reason)
                    if self.include_usage:
                        kind = "chat.completion.chunk" if self.kind == "chat" else "text_completion"
                        body = schemas.usage_chunk(
                            kind, self.request_id, self.model, self.created, _usage(chunk)
                        )
                        yield _sse(body)
            yield "data: [DONE]\n\n"
        except SlmkitError as exc:
            yield self._error_event(from_slmkit(exc))
        except APIError as exc:
            yield self._error_event(exc)
        except Exception:
            log.exception("stream %s failed", self.request_id)
            yield self._error_event(APIError(500, "internal server error", type="server_error"))

    def _event(self, delta: Any, finish_reason: str | None) -> str:
        if self.kind == "chat":
            if isinstance(delta, str):
                delta = {"content": delta}
            body = schemas.chat_chunk(
                self.request_id, self.model, self.created, delta, finish_reason, self.include_usage
            )
        else:
            body = schemas.completion_chunk(
                self.request_id, self.model, self.created, delta, finish_reason, self.include_usage
            )
        return _sse(body)

    def _error_event(self, error: APIError) -> str:
        """An error after the 200 header went out: OpenAI's clients read it from the stream."""
        self.metrics.count(
            "slmkit_errors_total", endpoint=self.endpoint, code=error.code or str(error.status)
        )
        return _sse(error.body())


def _usage(chunk: Chunk) -> schemas.UsageBody:
    usage = chunk.usage
    prompt = usage.prompt_tokens if usage else 0
    completion = usage.completion_tokens if usage else 0
    return schemas.UsageBody(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def _sse(body: dict[str, Any]) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False, separators=(',', ':'))}\n\n"
