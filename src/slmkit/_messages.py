"""Validation of what users pass as a prompt or a conversation."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from .errors import InvalidRequest
from .types import Message

__all__ = ["MAX_TEXT_CHARS", "as_messages", "check_prompt", "check_text"]

ROLES = ("system", "user", "assistant")

#: The longest string accepted in any one field: far past every context window
#: (1M tokens), short enough that tokenizing it cannot exhaust memory.
MAX_TEXT_CHARS = 8_000_000

#: Characters no text may hold. NUL ends a C string, so runtimes would cut the text there
#: silently; a lone surrogate has no UTF-8 form, so no runtime can receive it. Everything
#: else (BOM, bidi marks, control characters) is text and reaches the model intact.
_REFUSED = re.compile("[\x00\ud800-\udfff]")


def check_text(text: str, field: str) -> str:
    """Refuse text a runtime would silently alter (NUL, lone surrogates) or cannot hold."""
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidRequest(
            f"{field} is {len(text):,} characters, more than the {MAX_TEXT_CHARS:,} accepted; "
            "shorten it",
            field=field,
        )
    bad = _REFUSED.search(text)
    if bad is not None:
        char = bad.group()
        what, hint = (
            ("a NUL character", "remove it")
            if char == "\x00"
            else (
                f"a lone surrogate (U+{ord(char):04X})",
                "decode the text strictly; errors='surrogateescape' leaves these behind",
            )
        )
        raise InvalidRequest(
            f"{field} holds {what} at position {bad.start()}, which no model can receive "
            f"intact: {hint}",
            field=field,
        )
    return text


def check_prompt(prompt: Any) -> str:
    if not isinstance(prompt, str):
        raise InvalidRequest(
            f"prompt must be a str, not {type(prompt).__name__}; for a conversation use chat()",
            field="prompt",
        )
    if not prompt:
        raise InvalidRequest("prompt is empty; pass some text to continue", field="prompt")
    return check_text(prompt, "prompt")


def as_messages(value: Any) -> list[Message]:
    """A bare string is one user message; a list must hold {role, content} dicts."""
    if isinstance(value, str):
        if not value:
            raise InvalidRequest("message is empty; pass some text", field="messages")
        return [{"role": "user", "content": check_text(value, "messages")}]
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
        check_text(content, f"{where}.content")
        messages.append(cast(Message, {"role": role, "content": content}))
    return messages
