"""Turning token ids into safe text: incremental detokenizing and stop sequences.

These run once per generated token, so they stay small and allocation-light.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Sequence
from typing import Protocol

__all__ = ["ByteDetokenizer", "Detokenizer", "StopMatcher", "WindowDetokenizer"]


class Detokenizer(Protocol):
    """Turns a stream of token ids into text pieces that are always valid UTF-8."""

    def add(self, token_id: int) -> str: ...

    def flush(self) -> str: ...


class ByteDetokenizer:
    """For runtimes that give each token's raw bytes (llama.cpp).

    Bytes of a multi-byte character split across tokens are held back until complete.
    """

    def __init__(self, token_bytes: Callable[[int], bytes]) -> None:
        self._token_bytes = token_bytes
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def add(self, token_id: int) -> str:
        return self._decoder.decode(self._token_bytes(token_id))

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)


class WindowDetokenizer:
    """For runtimes whose tokenizer decodes id sequences to str (HF tokenizers, ORT, ...).

    Decodes a short window of recent ids so that leading-space rules and byte-fallback
    tokens come out right; text ending in U+FFFD (an incomplete character) waits.
    """

    def __init__(self, decode: Callable[[Sequence[int]], str]) -> None:
        self._decode = decode
        self._ids: list[int] = []
        self._prefix_offset = 0
        self._read_offset = 0

    def add(self, token_id: int) -> str:
        self._ids.append(token_id)
        return self._advance(final=False)

    def flush(self) -> str:
        return self._advance(final=True)

    def _advance(self, final: bool) -> str:
        ids = self._ids
        if self._read_offset == len(ids):
            return ""
        prefix = self._decode(ids[self._prefix_offset : self._read_offset])
        text = self._decode(ids[self._prefix_offset :])
        if len(text) > len(prefix) and (final or not text.endswith("\ufffd")):
            self._prefix_offset = self._read_offset
            self._read_offset = len(ids)
            return text[len(prefix) :]
        return ""


class StopMatcher:
    """Finds stop sequences in streamed text, even when split across pieces.

    Text that might be the start of a stop sequence is held back; a stop sequence
    itself is never emitted.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Return the text that is safe to emit; sets ``stopped`` when a stop is found."""
        if not self._stops:
            return text
        buffer = self._held + text
        cut = min((i for i in (buffer.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self._held = ""
            self.stopped = True
            return buffer[:cut]
        keep = self._partial_match_length(buffer)
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """Release held-back text at the end of generation."""
        held, self._held = self._held, ""
        return held

    def _partial_match_length(self, buffer: str) -> int:
        best = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(buffer)), best, -1):
                if buffer.endswith(stop[:k]):
                    best = k
                    break
        return best
