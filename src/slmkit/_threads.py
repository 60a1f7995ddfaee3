"""Driving a blocking iterator from asyncio, with a bounded hand-off.

Local runtimes block while they compute, so the async API runs their streams in a worker
thread. The worker may run at most ``max_ahead`` items ahead of the consumer: a slow
consumer slows generation instead of letting it fill memory. When the consumer stops
(finished, cancelled, or an error), ``cancel`` is set and the worker closes the iterator.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

__all__ = ["iterate_in_thread"]

T = TypeVar("T")
_ITEM, _ERROR, _DONE = 0, 1, 2


async def iterate_in_thread(
    items: Iterator[T], cancel: threading.Event | None = None, max_ahead: int = 8
) -> AsyncIterator[T]:
    """Yield ``items`` in the event loop while a worker thread produces them."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
    room = threading.Semaphore(max_ahead)
    stop = cancel or threading.Event()

    def post(kind: int, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop is gone: nobody is listening any more
            stop.set()

    def work() -> None:
        try:
            for item in items:
                while not room.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                post(_ITEM, item)
        except BaseException as exc:
            post(_ERROR, exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
            post(_DONE, None)

    worker = threading.Thread(target=work, name="slmkit-async", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == _ITEM:
                room.release()
                yield value
            elif kind == _ERROR:
                raise value
            else:
                return
    finally:
        stop.set()
