"""Validation of what users pass as a prompt or a conversation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from .errors import InvalidRequest
from .types import Message

__all__ = ["as_messages", "check_prompt"]

ROLES = ("system", "user", "assistant")


def check_prompt(prompt: Any) -> str:
    if not isinstance(prompt, str):
        raise InvalidRequest(
            f"prompt must be a str, not {type(prompt).__name__}; for a conversation use chat()",
            field="prompt",
        )
    if not prompt:
        raise InvalidRequest("prompt is empty; pass some text to continue", field="prompt")
    return prompt


def as_messages(value: Any) -> list[Message]:
    """A bare string is one user message; a list must hold {role, content} dicts."""
    if isinstance(value, str):
        if not value:
            raise InvalidRequest("message is empty; pass some text", field="messages")
        return [{"role": "user", "content": value}]
    if not isinstance(value, Sequence) or isinstance(value, bytes):
        raise InvalidRequest(
            f"messages must be a str or a list of {{'role', 'content'}} dicts, "
            f"not {type(value).__name__}",
            field="messages",
        )
    if not value:
        raise InvalidRequest(
            "messages is an empty list; pass at least one {'role': 'user', 'content': ...}",
            field="messages",
        )
    messages: list[Message] = []
    for index, item in enumerate(value):
        where = f"messages[{index}]"
        if not isinstance(item, Mapping):
            raise InvalidRequest(
                f"{where} must be a dict with 'role' and 'content', not {type(item).__name__}",
                field=where,
            )
        unknown = set(item) - {"role", "content"}
        if unknown:
            raise InvalidRequest(
                f"{where} has unsupported key(s) {', '.join(sorted(map(str, unknown)))}; "
                "only 'role' and 'content' are supported",
                field=where,
            )
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            raise InvalidRequest(
                f"{where}.role is {role!r}; use one of {', '.join(ROLES)}", field=f"{where}.role"
            )
        if not isinstance(content, str):
            raise InvalidRequest(
                f"{where}.content must be a str, not {type(content).__name__}",
                field=f"{where}.content",
            )
        messages.append(cast(Message, {"role": role, "content": content}))
    return messages
