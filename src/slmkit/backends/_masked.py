"""The decode loop of an engine that applies structured output through a logits hook.

The engine builds a :class:`~slmkit.structured.TokenConstraint`, hands its ``apply`` to
the runtime's logits hook, and wraps the token ids the runtime yields in
:func:`masked_events`: each token advances the grammar, and a finished grammar ends the
answer there (nothing more may follow it).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from time import perf_counter
from typing import TYPE_CHECKING, Any

from .base import Finish, Token

if TYPE_CHECKING:
    from collections.abc import Callable

    from llguidance import LLTokenizer

    from ..structured import ResponseFormat, TokenConstraint

__all__ = ["GrammarTokenizer", "masked_events"]


def masked_events(
    tokens: Generator[int, None, None],
    constraint: TokenConstraint | None,
    facts: dict[str, Any],
    *,
    advance: bool = True,
) -> Iterator[Token | Finish]:
    """Token events for ``tokens``; closes them at the end, and records the mean mask time
    per token in ``facts`` (``mask_us_per_token``) when a constraint applied. With
    ``advance=False`` the runtime's hook has advanced the grammar by each token already."""
    try:
        for token in tokens:
            if constraint is not None and advance:
                constraint.consume(token)
            yield Token(token)
            if constraint is not None and constraint.done:
                yield Finish()
                return
    finally:
        tokens.close()
        if constraint is not None:
            facts["mask_us_per_token"] = constraint.mean_mask_us


class GrammarTokenizer:
    """llguidance's view of an engine's vocabulary: built on first use (about a second),
    kept for the engine's life; ``build_s`` says what the first constrained request paid."""

    def __init__(self, build: Callable[[], LLTokenizer]) -> None:
        self._build = build
        self._tokenizer: LLTokenizer | None = None
        self.build_s = 0.0

    def constraint(self, response_format: ResponseFormat | None) -> TokenConstraint | None:
        """A fresh constraint for one request, or None without a response format."""
        if response_format is None:
            return None
        from ..structured import TokenConstraint

        if self._tokenizer is None:
            began = perf_counter()
            self._tokenizer = self._build()
            self.build_s = perf_counter() - began
        return TokenConstraint(self._tokenizer, response_format)
