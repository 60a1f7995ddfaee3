"""Validation of what users pass as a prompt or a conversation."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from .errors import InvalidRequest
from .types import Message

__all__ = ["MAX_TEXT_CHARS", "as_messages", "as_openai", "check_prompt", "check_text"]

ROLES = ("system", "user", "assistant", "tool")
#: Keys a message may have beyond role and content, by role.
_EXTRA_KEYS = {"assistant": {"tool_calls"}, "tool": {"tool_call_id", "name"}}

#: The longest string accepted in any one field: far past every context window
#: (1M tokens), short enough that tokenizing it cannot exhaust memory.
MAX_TEXT_CHARS = 8_000_000

#: Characters no text may hold. NUL ends a C string, so runtimes would cut the text there
#: silently; a lone surrogate has no UTF-8 form, so no runtime can receive it. Everything
#: else (BOM, bidi marks, control characters) is text and reaches the model intact.
_REFUSED = re.compile("[\x00\ud800-\udfff]")
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


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
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            raise InvalidRequest(
                f"{where}.role is {role!r}; use one of {', '.join(ROLES)}", field=f"{where}.role"
            )
        allowed = {"role", "content"} | _EXTRA_KEYS.get(role, set())
        unknown = set(item) - allowed
        if unknown:
            raise InvalidRequest(
                f"{where} has unsupported key(s) {', '.join(sorted(map(str, unknown)))}; "
                f"a {role} message takes {', '.join(sorted(allowed))}",
                field=where,
            )
        calls = item.get("tool_calls")
        if content is None and calls:
            content = ""  # OpenAI's assistant turn that only called tools
        if not isinstance(content, str):
            raise InvalidRequest(
                f"{where}.content must be a str, not {type(content).__name__}",
                field=f"{where}.content",
            )
        message = cast(Message, {"role": role, "content": check_text(content, f"{where}.content")})
        if calls:
            message["tool_calls"] = _tool_calls(calls, f"{where}.tool_calls")
        if role == "tool":
            message["tool_call_id"] = _short_text(item.get("tool_call_id"), f"{where}.tool_call_id")
            if "name" in item:
                message["name"] = _short_text(item["name"], f"{where}.name")
        messages.append(message)
    return messages


def _short_text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{field} must be a non-empty str", field=field)
    return check_text(value, field)


def _tool_name(value: Any, field: str) -> str:
    """A called tool's name: templates write it raw, so only OpenAI's name characters."""
    if not isinstance(value, str) or _TOOL_NAME.match(value) is None:
        raise InvalidRequest(
            f"{field} is {value!r}; a tool name is 1-64 letters, digits, '_' or '-'", field=field
        )
    return value


def _tool_calls(value: Any, where: str) -> list[dict[str, Any]]:
    """OpenAI's tool_calls with ``arguments`` as a dict, the form chat templates render
    (Qwen2.5's writes ``arguments | tojson``: a JSON string would be encoded twice)."""
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise InvalidRequest(f"{where} must be a list of calls", field=where)
    calls = []
    for index, call in enumerate(value):
        at = f"{where}[{index}]"
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            raise InvalidRequest(
                f"{at} must be {{'id': ..., 'type': 'function', 'function': {{'name': ..., "
                f"'arguments': ...}}}}",
                field=at,
            )
        arguments = function.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as exc:
                raise InvalidRequest(f"{at}.function.arguments is not JSON: {exc}", at) from None
        if not isinstance(arguments, Mapping):
            raise InvalidRequest(f"{at}.function.arguments must be a JSON object", field=at)
        check_text(json.dumps(arguments, ensure_ascii=False), f"{at}.function.arguments")
        calls.append(
            {
                "id": _short_text(call.get("id"), f"{at}.id"),
                "type": "function",
                "function": {
                    "name": _tool_name(function.get("name"), f"{at}.function.name"),
                    "arguments": dict(arguments),
                },
            }
        )
    return calls


def as_openai(messages: list[Message]) -> list[dict[str, Any]]:
    """The messages as an OpenAI-compatible service takes them (arguments as JSON text)."""
    sent: list[dict[str, Any]] = []
    for message in messages:
        out: dict[str, Any] = dict(message)
        if "tool_calls" in message:
            out["tool_calls"] = [
                {
                    **call,
                    "function": {
                        "name": call["function"]["name"],
                        "arguments": json.dumps(call["function"]["arguments"], ensure_ascii=False),
                    },
                }
                for call in message["tool_calls"]
            ]
        sent.append(out)
    return sent
