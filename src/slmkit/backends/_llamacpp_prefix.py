"""Prefix reuse for llama.cpp: evaluate only the part of a prompt the model has not seen.

llama-cpp-python's ``generate()`` already keeps the KV cache of the *live* sequence and
evaluates only the new suffix when the caller does not reset. This module adds what the
engine needs around that: how many prompt tokens will be reused (for
``Usage.cached_tokens``), and a small LRU of saved states, so that two conversations
taking turns (or server requests with the same system prompt) each find their prefix.
The number of saved states is capped; the least recently used one is dropped first.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._prefix_pool import common_prefix

__all__ = ["PrefixCache", "SavedState", "reusable_prefix"]


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
        self._states: OrderedDict[tuple[int, ...], SavedState] = OrderedDict()

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
            restore(self._llama, self._states[chosen])
            self._states.move_to_end(chosen)
        return best

    def remember(self) -> None:
        """Save the live state (after a request), evicting the oldest beyond the cap."""
        if self._entries <= 0 or self._llama.n_tokens == 0:
            return
        key = tuple(self._live())
        self._states[key] = save(self._llama)
        self._states.move_to_end(key)
        while len(self._states) > self._entries:
            self._states.popitem(last=False)

    def __len__(self) -> int:
        return len(self._states)


@dataclass(frozen=True)
class SavedState:
    """What a prefix needs back: its tokens, llama.cpp's own state (the KV cache) and the
    seed. Not llama-cpp-python's LlamaState: save_state() also copies the logits rows it
    keeps (up to n_batch x n_vocab floats, 311 MB for Qwen2.5 at n_batch 512: 0.35 s per
    save, which the last token of every reusing request waited for), and load_state()
    zeroes them again (0.6 s). Restoring marks the last token for a fresh evaluation, as
    load_state() does, so those rows are never read."""

    input_ids: Any
    n_tokens: int
    data: bytes
    seed: int


def save(llama: Any) -> SavedState:
    from llama_cpp import llama_cpp

    size = llama_cpp.llama_state_get_size(llama._ctx.ctx)
    buffer = (ctypes.c_uint8 * int(size))()
    used = int(llama_cpp.llama_state_get_data(llama._ctx.ctx, buffer, size))
    data = ctypes.string_at(buffer, used)
    return SavedState(llama.input_ids.copy(), llama.n_tokens, data, llama._seed)


def restore(llama: Any, state: SavedState) -> None:
    from llama_cpp import llama_cpp

    buffer = (ctypes.c_uint8 * len(state.data)).from_buffer_copy(state.data)
    if llama_cpp.llama_state_set_data(llama._ctx.ctx, buffer, len(state.data)) != len(state.data):
        raise RuntimeError("llama.cpp refused a saved prefix state")
    llama.input_ids = state.input_ids.copy()
    llama.n_tokens = state.n_tokens
    llama._requires_eval = True
    llama._seed = state.seed
