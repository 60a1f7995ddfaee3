"""Schedulers: how the requests of one engine share it.

An :class:`~slmkit.LLM` never calls ``engine.run`` itself: it hands each request to the
engine's scheduler (``Engine.make_scheduler()``), and threads, async tasks and server
requests all go through that one seam. :class:`SerialScheduler` (the default for local
engines) runs one request at a time in arrival order; :class:`ConcurrentScheduler` (hosted
engines) lets them run together. A runtime that batches plugs in its own.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from .errors import LLMClosed

if TYPE_CHECKING:
    from .backends.base import Engine, EngineEvent, Request

__all__ = ["ConcurrentScheduler", "SchedulerStats", "SerialScheduler"]

#: How often a queued request looks at its cancel flag while it waits.
_POLL_S = 0.05


class SchedulerStats:
    """Queue depth and requests in flight, for metrics and backpressure."""

    __slots__ = ("running", "waiting")

    def __init__(self, waiting: int = 0, running: int = 0) -> None:
        self.waiting = waiting
        self.running = running


def _events(engine: Engine, request: Request, closed: Callable[[], bool]) -> Iterator[EngineEvent]:
    """``engine.run(request)``, ended with LLMClosed as soon as the scheduler closes."""
    events = engine.run(request)
    try:
        for event in events:
            if closed():
                raise LLMClosed("the LLM was closed while this request was generating")
            yield event
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


class SerialScheduler:
    """One request at a time, first come first served.

    A request takes its place in the queue when the consumer first asks for an event, so
    creating a stream costs nothing until it is read. ``close()`` wakes every waiting
    request with :class:`~slmkit.errors.LLMClosed` and ends the running one at its next
    event.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()
        self._running: object | None = None
        self._closed = False

    def submit(
        self, engine: Engine, request: Request, cancel: threading.Event | None = None
    ) -> Iterator[EngineEvent]:
        return self._run(engine, request, cancel)

    def stats(self) -> SchedulerStats:
        with self._cond:
            return SchedulerStats(len(self._queue), int(self._running is not None))

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _wait_turn(self, ticket: object, cancel: threading.Event | None) -> bool:
        """Block until ``ticket`` is first in line; False when cancelled while waiting."""
        with self._cond:
            if self._closed:
                raise LLMClosed()
            self._queue.append(ticket)
            try:
                while self._running is not None or self._queue[0] is not ticket:
                    if self._closed:
                        raise LLMClosed()
                    if cancel is not None and cancel.is_set():
                        return False
                    self._cond.wait(_POLL_S if cancel is not None else None)
            except BaseException:
                self._queue.remove(ticket)
                self._cond.notify_all()
                raise
            if cancel is not None and cancel.is_set():
                self._queue.remove(ticket)
                self._cond.notify_all()
                return False
            self._queue.popleft()
            self._running = ticket
            return True

    def _run(
        self, engine: Engine, request: Request, cancel: threading.Event | None
    ) -> Iterator[EngineEvent]:
        ticket = object()
        if not self._wait_turn(ticket, cancel):
            return
        try:
            yield from _events(engine, request, lambda: self._closed)
        finally:
            with self._cond:
                self._running = None
                self._cond.notify_all()


class ConcurrentScheduler:
    """Every request runs at once (a hosted service queues on its side)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._closed = False

    def submit(
        self, engine: Engine, request: Request, cancel: threading.Event | None = None
    ) -> Iterator[EngineEvent]:
        return self._run(engine, request)

    def stats(self) -> SchedulerStats:
        return SchedulerStats(0, self._running)

    def close(self) -> None:
        self._closed = True

    def _run(self, engine: Engine, request: Request) -> Iterator[EngineEvent]:
        if self._closed:
            raise LLMClosed()
        with self._lock:
            self._running += 1
        try:
            yield from _events(engine, request, lambda: self._closed)
        finally:
            with self._lock:
                self._running -= 1
