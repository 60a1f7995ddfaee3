"""Conversation: a chat that remembers its messages, for engines that reuse their prefix.

``llm.conversation(system=...)`` keeps the history; each turn sends the whole history
through ``llm.chat()``, so its answers are exactly what stateless ``chat()`` gives on the
same messages. On an engine that reuses the evaluated prefix (``prefix_reuse=True``;
on by default on OpenVINO) only the new turn is evaluated;
``Completion.usage.cached_tokens`` says how many prompt tokens were reused.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._messages import as_messages
from .errors import InvalidRequest, UnsupportedFeature
from .types import Chunk, Completion, Message

if TYPE_CHECKING:
    from ._llm import LLM

__all__ = ["Conversation"]

_FORMAT = "slmkit.conversation/1"


class Conversation:
    """A growing list of messages on one LLM. A turn is appended only when it finished:
    a failed or abandoned turn leaves ``messages`` as it was."""

    def __init__(
        self,
        llm: LLM,
        messages: list[Message] | None = None,
        *,
        system: str | None = None,
        tools: Any = None,
    ) -> None:
        if tools is not None:
            raise UnsupportedFeature(
                "conversation(tools=...) is not supported yet: pass tools= to llm.chat() with "
                "the history (docs/tools.md), or leave tools out"
            )
        history = as_messages(messages) if messages else []
        if system is not None:
            if history and history[0]["role"] == "system":
                raise InvalidRequest(
                    "the messages already start with a system message; pass system= or a "
                    "system message, not both",
                    field="system",
                )
            history = [{"role": "system", "content": system}, *history]
        self._llm = llm
        self.messages: list[Message] = history

    def chat(self, message: str | Message, **params: Any) -> Completion:
        """Send one user turn; the answer and the turn are appended to ``messages``."""
        turn = self._turn(message)
        result = self._llm.chat([*self.messages, turn], **params)
        self._append(turn, result.text)
        return result

    def stream(self, message: str | Message, **params: Any) -> Iterator[Chunk]:
        """Stream one user turn; appended to ``messages`` once the stream has finished."""
        turn = self._turn(message)
        chunks = self._llm.stream([*self.messages, turn], **params)
        return self._recording(turn, chunks)

    async def achat(self, message: str | Message, **params: Any) -> Completion:
        turn = self._turn(message)
        result = await self._llm.achat([*self.messages, turn], **params)
        self._append(turn, result.text)
        return result

    async def astream(self, message: str | Message, **params: Any) -> AsyncIterator[Chunk]:
        turn = self._turn(message)
        parts: list[str] = []
        async for chunk in self._llm.astream([*self.messages, turn], **params):
            parts.append(chunk.text)
            if chunk.finish_reason is not None:
                self._append(turn, "".join(parts))
            yield chunk

    def copy(self) -> Conversation:
        """An independent conversation with the same history, on the same LLM."""
        return Conversation(self._llm, [dict(m) for m in self.messages])  # type: ignore[misc]

    def to_json(self) -> str:
        return json.dumps({"format": _FORMAT, "messages": self.messages}, ensure_ascii=False)

    @classmethod
    def from_json(cls, llm: LLM, text: str) -> Conversation:
        """A conversation saved with to_json()/save(), continued on ``llm``."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidRequest(f"not a saved conversation: {exc}", field="json") from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise InvalidRequest(
                f"not a saved conversation: expected format {_FORMAT!r}", field="json"
            )
        return cls(llm, data.get("messages") or [])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, llm: LLM, path: str | Path) -> Conversation:
        return cls.from_json(llm, Path(path).read_text(encoding="utf-8"))

    def __len__(self) -> int:
        return len(self.messages)

    def __repr__(self) -> str:
        return f"<Conversation {len(self.messages)} messages on {self._llm!r}>"

    # -- internals -------------------------------------------------------------------

    def _turn(self, message: str | Message) -> Message:
        if isinstance(message, str):
            return as_messages(message)[0]
        return as_messages([message])[0]

    def _append(self, turn: Message, answer: str) -> None:
        self.messages.extend([turn, {"role": "assistant", "content": answer}])

    def _recording(self, turn: Message, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
        parts: list[str] = []
        for chunk in chunks:
            parts.append(chunk.text)
            if chunk.finish_reason is not None:
                self._append(turn, "".join(parts))
            yield chunk
