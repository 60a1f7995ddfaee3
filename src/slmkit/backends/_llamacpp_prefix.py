"""Prefix reuse for llama.cpp: evaluate only the part of a prompt the model has not seen.

llama-cpp-python's ``generate()`` already keeps the KV cache of the *live* sequence and
evaluates only the new suffix when the caller does not reset. This module adds what the
engine needs around that: how many prompt tokens will be reused (for
``Usage.cached_tokens``), and a small LRU of saved states, so that two conversations
taking turns (or server requests with the same system prompt) each find their prefix.
The number of saved states is capped; the least recently used one is dropped first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from ._prefix_pool import common_prefix

__all__ = ["PrefixCache", "reusable_prefix"]


def reusable_prefix(seen: Sequence[int], prompt: Sequence[int], requires_eval: bool = True) -> int:
    """Prompt tokens llama-cpp-python will not evaluate again, given the live sequence.

    Mirrors ``Llama.generate``: the longest common prefix, less one token when the whole
    prompt is cached (it replays the last token to get fresh logits) unless the cached
    logits are live.
    """
    common = common_prefix(seen, prompt)
    if common == len(prompt):
        if len(seen) == len(prompt) and not requires_eval:
            return common
        return max(0, common - 1)
    return common


class PrefixCache:
    """Saved llama.cpp states keyed by the tokens they hold, least recently used first out."""

    def __init__(self, llama: Any, entries: int) -> None:
        self._llama = llama
        self._entries = entries
        self._states: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    def _live(self) -> list[int]:
        return [int(t) for t in self._llama.input_ids[: self._llama.n_tokens]]

    def prepare(self, prompt: Sequence[int]) -> int:
        """Load the saved state that shares most of ``prompt`` if it beats the live one;
        return how many prompt tokens will be reused."""
        best = reusable_prefix(self._live(), prompt, self._llama._requires_eval)
        chosen: tuple[int, ...] | None = None
        for key in self._states:
            reuse = reusable_prefix(key, prompt)
            if reuse > best:
                best, chosen = reuse, key
        if chosen is not None:
            self._llama.load_state(self._states[chosen])
            self._states.move_to_end(chosen)
        return best

    def remember(self) -> None:
        """Save the live state (after a request), evicting the oldest beyond the cap."""
        if self._entries <= 0 or self._llama.n_tokens == 0:
            return
        key = tuple(self._live())
        self._states[key] = self._llama.save_state()
        self._states.move_to_end(key)
        while len(self._states) > self._entries:
            self._states.popitem(last=False)

    def __len__(self) -> int:
        return len(self._states)
