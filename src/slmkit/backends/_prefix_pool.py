"""Prefix reuse for engines that hold their prompt state in a Python object (a KV cache,
a live generator): a small LRU of such states keyed by the tokens they hold.

A request continues a saved state and evaluates only the rest of its prompt. When the
runtime can copy a prefix (transformers), the state sharing most of the prompt is forked
at the shared part, or, if the prompt extends all of it, taken out and continued in
place. When it cannot (a live ONNX Runtime GenAI generator), the longest state the prompt
extends is continued (a conversation's next turn); failing that, the state sharing most
is cut back and taken over only when no slot is free, so that conversations taking turns
keep their own. After the request the engine puts the state back under its new tokens; the number of
saved states is capped and the least recently used one is dropped first.

A runtime that keeps its KV blocks itself and does not say how much of a prompt it found
(OpenVINO's prefix caching) gets a :class:`PrefixLedger` instead: the token sequences it
was last given, from which slmkit estimates the reused part in whole blocks.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["PrefixLedger", "PrefixPool", "common_prefix"]

S = TypeVar("S")


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    common = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        common += 1
    return common


class PrefixPool(Generic[S]):
    """Saved states keyed by the tokens whose KV they hold, least recently used first out.

    ``fork(state, n)``: a new state holding the first ``n`` tokens of ``state``, which
    stays as it was; None when the runtime cannot copy a prefix.
    """

    def __init__(self, entries: int, fork: Callable[[S, int], S] | None = None) -> None:
        self._entries = entries
        self._fork = fork
        self._states: OrderedDict[tuple[int, ...], S] = OrderedDict()

    @property
    def entries(self) -> int:
        """The cap on saved states."""
        return self._entries

    def take(self, prompt: Sequence[int]) -> tuple[S | None, int]:
        """The state to continue for ``prompt`` and how many of its leading tokens to keep
        (the engine truncates it to that many and evaluates the rest of the prompt);
        (None, 0) for a fresh start. At least the last prompt token is left to evaluate,
        which gives the logits of the first answer token."""
        shared = {key: min(common_prefix(key, prompt), len(prompt) - 1) for key in self._states}
        best = max(shared, key=shared.__getitem__, default=None)  # the oldest of a tie
        if best is None or not shared[best]:
            return None, 0
        if shared[best] < len(best) and self._fork is not None:
            self._states.move_to_end(best)
            return self._fork(self._states[best], shared[best]), shared[best]
        extended = [key for key, n in shared.items() if n == len(key)]
        if extended:  # continue the longest state the prompt extends, in place
            key = max(extended, key=len)
            return self._states.pop(key), shared[key]
        if len(self._states) < self._entries:  # a free slot: leave the others to their own
            return None, 0
        return self._states.pop(best), shared[best]

    def put(self, tokens: Sequence[int], state: S) -> None:
        """Save ``state`` as holding ``tokens``, evicting the oldest beyond the cap."""
        if self._entries <= 0 or not tokens:
            return
        key = tuple(tokens)
        self._states[key] = state
        self._states.move_to_end(key)
        while len(self._states) > self._entries:
            self._states.popitem(last=False)

    def __len__(self) -> int:
        return len(self._states)


class PrefixLedger:
    """The token sequences whose KV a runtime computed, least recently used first out, and
    an estimate of how many leading tokens of a prompt it finds in its own block cache.

    The estimate counts whole ``block``s of the longest prefix shared with a remembered
    sequence (the runtime keeps a partly filled block too, so it may reuse a little more),
    at most all but the last prompt token. It overstates once the runtime has overwritten
    blocks this ledger still remembers, and understates once the ledger has dropped a
    sequence the runtime still holds. Safe to use from several threads.
    """

    def __init__(self, entries: int, block: int) -> None:
        self._entries = entries
        self.block = block
        self._sequences: OrderedDict[tuple[int, ...], None] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, prompt: Sequence[int]) -> int:
        """The estimate for ``prompt``; the sequence it shares most with is used again."""
        with self._lock:
            shared = {key: common_prefix(key, prompt) for key in self._sequences}
            best = max(shared, key=shared.__getitem__, default=None)
            if best is None:
                return 0
            self._sequences.move_to_end(best)
            return min(shared[best], len(prompt) - 1) // self.block * self.block

    def add(self, tokens: Sequence[int]) -> None:
        """Remember ``tokens`` as evaluated; a remembered sequence they extend is dropped
        (a conversation keeps one entry), and the oldest beyond the cap."""
        key = tuple(tokens)
        if self._entries <= 0 or not key:
            return
        with self._lock:
            for old in [k for k in self._sequences if key[: len(k)] == k]:
                del self._sequences[old]
            self._sequences[key] = None
            while len(self._sequences) > self._entries:
                self._sequences.popitem(last=False)

    def __len__(self) -> int:
        return len(self._sequences)
