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
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["PrefixPool", "common_prefix"]

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
