"""ChunkStream: the iterator stream() returns, and what close() can end from outside."""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

from .errors import LLMClosed
from .types import Chunk

if TYPE_CHECKING:
    from ._llm import LLM

__all__ = ["ChunkStream"]


class ChunkStream(Iterator[Chunk]):
    """Chunks of one generation. Iterate it, or ``close()`` it to stop generating.

    It holds its LLM's engine until it ends. ``LLM.close()`` ends it from any thread:
    the next read raises :class:`~slmkit.errors.LLMClosed`.
    """

    __slots__ = (
        "__weakref__",
        "_chunks",
        "_done",
        "_ended_by_close",
        "_llm",
        "_started",
        "_step",
        "_sync",
        "reader",
    )

    def __init__(self, chunks: Generator[Chunk, None, None], llm: LLM, sync: bool) -> None:
        self._chunks = chunks
        self._llm = llm
        self._sync = sync
        self._step = threading.Lock()  # held while a chunk is being made
        self._started = False
        self._done = False
        self._ended_by_close = False
        self.reader: int | None = None

    def __iter__(self) -> ChunkStream:
        return self

    def __next__(self) -> Chunk:
        with self._step:
            if self._ended_by_close:
                raise LLMClosed("the LLM was closed while this stream was open")
            if self._done:
                raise StopIteration
            if not self._started:
                self._started = True
                if self._sync:
                    self._begin_reading()
            try:
                return next(self._chunks)
            except BaseException:
                self._finish()
                raise

    def close(self) -> None:
        """Stop generating; what was not read is dropped."""
        with self._step:
            self._end()

    def abort(self, timeout: float) -> None:
        """End the stream because its LLM closes (waits for a chunk in progress)."""
        if self._step.acquire(timeout=timeout):
            try:
                if not self._done:
                    self._ended_by_close = True
                    self._end()
            finally:
                self._step.release()

    def _begin_reading(self) -> None:
        try:
            self._llm._start_reading(self)
        except BaseException:
            self._end()
            raise

    def _end(self) -> None:
        if not self._done:
            try:
                self._chunks.close()
            finally:
                self._finish()

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._llm._stop_reading(self)
            self._llm._release(self)

    def __del__(self) -> None:
        if not getattr(self, "_done", True):
            self.close()
